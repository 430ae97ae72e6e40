"""Event STDP (:mod:`stdp_pipeline.sim.rules.event`) on small hand-made arrays, with every
expected number written out: the dense form and the event-driven functions the loop calls."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.sim.rules import event


def _f(x):
    return tf.constant(np.array(x, np.float32))


def test_update_blank_pixel_fix():
    """A firing neuron potentiates recent inputs and depresses every silent one (eta = 0.1)."""
    w = _f([[0.5, 0.5], [0.5, 0.5], [0.0, 0.3]])
    recent = _f([1.0, 0.0, 0.0])
    spikes = _f([1.0, 0.0])
    got = event.update(w, recent, spikes, 0.1, 1.0, 1.0, 0.01, 1.0).numpy()
    want = [
        [0.5 + 0.1 * (1.0 - 0.5 * 1.01), 0.5],  # 0.5495
        [0.5 - 0.1 * 0.5 * 1.01, 0.5],  # 0.4495: input that did not fire is depressed
        [0.0, 0.3],  # already 0 stays 0; silent neuron's column unchanged
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_update_asymmetric_rates_and_clipping():
    """a_plus and a_minus scale their own terms; results are clipped to [0, w_max]."""
    w = _f([[0.2], [0.4], [0.2], [0.5]])
    recent = _f([1.0, 0.0, 1.0, 0.0])
    got = event.update(w, recent, _f([1.0]), 0.1, 2.0, 0.5, 0.01, 1.0).numpy()
    want = [[0.2 + 0.1 * 2.0 * (1.0 - 0.202)], [0.4 - 0.1 * 0.5 * 0.404]]
    want += [want[0], [0.5 - 0.1 * 0.5 * 0.505]]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # eta = 1: 0.2 + 2 * (1 - 0.202) = 1.796 -> w_max; 0.5 - 2 * 0.505 < 0 -> 0
    got = event.update(w, recent, _f([1.0]), 1.0, 2.0, 2.0, 0.01, 1.0).numpy()
    np.testing.assert_allclose(got[:, 0], [1.0, 0.0, 1.0, 0.0], atol=1e-7)


def test_update_w_max_is_a_fixed_point_below_bound():
    """With lambda > 0, w = w_max recent moves to w_max + eta (w_max - w_max (1 + lam))."""
    got = event.update(_f([[1.0]]), _f([1.0]), _f([1.0]), 0.1, 1.0, 1.0, 0.01, 1.0)
    np.testing.assert_allclose(got.numpy(), [[0.999]], rtol=1e-6)


P = event.Params(eta=0.1, a_plus=1.0, a_minus=1.0, lambda_=0.01, event_window_ms=2.0, w_max=1.0)


def test_params_from_the_config():
    """event_stdp's values and learning.w_max."""
    config = ExperimentConfig().with_overrides(["event_stdp.eta=0.02", "learning.w_max=0.5"])
    assert event.params(config) == event.Params(0.02, 1.0, 1.0, 0.01, 2.0, 0.5)
    assert set(event.SECTIONS) == {"event_stdp"}


def test_recent_window_from_presynaptic_spike_times():
    """pre_factor is 1 for inputs that fired less than event_window_ms before now, else 0; on_pre
    notes spike times and leaves the weights alone; decay and after_post change nothing."""
    s = event.init(P, [1, 2], 4)
    np.testing.assert_array_equal(event.pre_factor(P, s, tf.constant(0.0)).numpy(), np.zeros(5))
    rows = tf.ones([1, 2, 2])
    s, new = event.on_pre(P, s, rows, tf.constant([0, 2]), tf.constant(3.0))
    assert new is None
    s, _ = event.on_pre(P, s, rows[:, :1], tf.constant([1]), tf.constant(4.5))
    assert event.decay(P, s, 0.5) is s
    assert event.after_post(P, s, _f([[1.0, 0.0]])) is s
    np.testing.assert_array_equal(event.pre_factor(P, s, tf.constant(4.5)).numpy(), [1, 1, 1, 0, 0])
    # at 5 ms input 0 and 2 fired exactly 2 ms before: outside the window (strict)
    np.testing.assert_array_equal(event.pre_factor(P, s, tf.constant(5.0)).numpy(), [0, 1, 0, 0, 0])
    np.testing.assert_array_equal(event.pre_factor(P, s, tf.constant(4.9)).numpy(), [1, 1, 1, 0, 0])


def test_on_post_is_the_dense_update_of_one_firing_neuron():
    """on_post moves the column toward w_max where the factor is 1, toward 0 elsewhere."""
    s = event.init(P, [1, 2], 3)
    column = _f([0.5, 0.5, 0.0, 0.0])
    got = event.on_post(P, s, column, _f([1.0, 0.0, 0.0, 0.0]), tf.constant(0), tf.constant(1))
    np.testing.assert_allclose(got.numpy(), [0.5495, 0.4495, 0.0, 0.0], rtol=1e-6)
