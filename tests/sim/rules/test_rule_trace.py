"""Trace STDP (:mod:`stdp_pipeline.sim.rules.trace`) on small hand-made arrays, with every
expected number written out: the dense forms and the event-driven functions the loop calls."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.sim.rules import trace


def _f(x):
    return tf.constant(np.array(x, np.float32))


def test_pre_update_depresses_and_clips():
    """rows - nu_pre * post1, clipped to [0, w_max] (here nu_pre = 0.1)."""
    rows = _f([[0.5, 0.02, 0.9], [0.05, 0.3, 1.2]])
    post1 = _f([1.0, 0.5, 0.0])
    got = trace.pre_update(rows, post1, 0.1, 1.0).numpy()
    want = [
        [0.4, 0.0, 0.9],  # 0.5 - 0.1; 0.02 - 0.05 < 0 -> 0; post1 = 0: unchanged
        [0.0, 0.25, 1.0],  # 0.05 - 0.1 < 0 -> 0; 0.3 - 0.05; 1.2 > w_max -> 1
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_pre_update_diehl_cook_rate():
    """At the paper's nu_pre = 1e-4 a fresh post trace takes 1e-4 off each weight."""
    got = trace.pre_update(_f([[0.3, 0.00004]]), _f([1.0, 1.0]), 1e-4, 1.0).numpy()
    np.testing.assert_allclose(got, [[0.2999, 0.0]], rtol=1e-6, atol=1e-8)


def test_post_update_potentiates_firing_columns_only():
    """w + nu_post * pre * post2_before on firing columns, clipped; silent columns untouched."""
    w = _f([[0.1, 0.2, 0.7], [0.3, 0.4, 0.5], [0.6, 1.5, 0.8]])
    pre = _f([1.0, 0.5, 0.0])
    post2 = _f([0.8, 0.4, 1.0])
    spikes = _f([1.0, 0.0, 1.0])
    got = trace.post_update(w, pre, post2, spikes, 0.5, 1.0).numpy()
    want = [
        [0.1 + 0.5 * 1.0 * 0.8, 0.2, 1.0],  # 0.7 + 0.5 = 1.2 -> w_max
        [0.3 + 0.5 * 0.5 * 0.8, 0.4, 0.5 + 0.5 * 0.5 * 1.0],
        [0.6, 1.5, 0.8],  # pre = 0: no change; the silent column keeps even 1.5
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_post_update_first_spike_has_no_effect():
    """post2_before = 0 (neuron never fired before): potentiation is zero."""
    w = _f([[0.2], [0.4]])
    got = trace.post_update(w, _f([1.0, 1.0]), _f([0.0]), _f([1.0]), 0.01, 1.0)
    np.testing.assert_array_equal(got.numpy(), w.numpy())


P = trace.Params(
    tau_pre_ms=20.0, tau_post1_ms=20.0, tau_post2_ms=40.0, nu_pre=0.1, nu_post=0.5, w_max=1.0
)


def test_params_from_the_config():
    """trace_stdp's values and learning.w_max."""
    config = ExperimentConfig().with_overrides(["trace_stdp.nu_post=0.02", "learning.w_max=0.9"])
    assert trace.params(config) == trace.Params(20.0, 20.0, 40.0, 0.0001, 0.02, 0.9)
    assert set(trace.SECTIONS) == {"trace_stdp"}


def test_event_driven_traces_and_pre_factor():
    """init: no trace, every input long silent; decay: post1 by exp(-dt/20), post2 by
    exp(-dt/40); after_post sets the traces of the neurons that fired to 1; pre_factor is
    exp(-(now - t_last) / tau_pre) of each input's last spike (0 for inputs that never fired)."""
    s = trace.init(P, [1, 3], 4)
    assert s.post1.shape == (1, 3) and s.last_pre.shape == (5,)
    np.testing.assert_array_equal(s.post1.numpy(), np.zeros((1, 3)))
    np.testing.assert_array_equal(trace.pre_factor(P, s, tf.constant(0.0)).numpy(), np.zeros(5))
    s = trace.after_post(P, s, _f([[1.0, 0.0, 1.0]]))
    np.testing.assert_array_equal(s.post1.numpy(), [[1.0, 0.0, 1.0]])
    np.testing.assert_array_equal(s.post2.numpy(), [[1.0, 0.0, 1.0]])
    s = trace.decay(P, s, 0.5)
    s = trace.decay(P, s, 0.5)
    np.testing.assert_allclose(s.post1.numpy(), [[math.exp(-1 / 20), 0.0, math.exp(-1 / 20)]])
    np.testing.assert_allclose(s.post2.numpy(), [[math.exp(-1 / 40), 0.0, math.exp(-1 / 40)]])
    # after_post does not touch the traces of silent neurons
    s2 = trace.after_post(P, s, _f([[0.0, 1.0, 0.0]]))
    np.testing.assert_allclose(s2.post1.numpy(), [[math.exp(-1 / 20), 1.0, math.exp(-1 / 20)]])

    # inputs 1 and 3 fire at 2 ms, input 1 again at 4 ms
    rows = tf.zeros([1, 2, 3])
    s, _ = trace.on_pre(P, s, rows, tf.constant([1, 3]), tf.constant(2.0))
    s, _ = trace.on_pre(P, s, rows[:, :1], tf.constant([1]), tf.constant(4.0))
    np.testing.assert_array_equal(s.last_pre.numpy()[[1, 3]], [4.0, 2.0])
    got = trace.pre_factor(P, s, tf.constant(10.0)).numpy()
    np.testing.assert_allclose(got, [0.0, math.exp(-6 / 20), 0.0, math.exp(-8 / 20), 0.0])


def test_on_pre_depresses_the_spiking_rows_by_post1():
    """on_pre returns the rows [G, K, Ng] minus nu_pre * post1 of each group, clipped."""
    s = trace.init(P, [2, 2], 3)._replace(post1=_f([[1.0, 0.5], [0.0, 0.2]]))
    rows = _f([[[0.5, 0.5], [0.05, 0.9]], [[0.5, 0.5], [0.05, 0.9]]])
    s, new = trace.on_pre(P, s, rows, tf.constant([0, 2]), tf.constant(1.5))
    want = [[[0.4, 0.45], [0.0, 0.85]], [[0.5, 0.48], [0.05, 0.88]]]
    np.testing.assert_allclose(new.numpy(), want, rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(s.last_pre.numpy()[[0, 2]], [1.5, 1.5])


def test_on_post_potentiates_by_pre_factor_and_post2_before():
    """on_post: the column of neuron (group, j) grows by nu_post * factor * post2[group, j],
    clipped at w_max: the dense post_update for one firing neuron."""
    s = trace.init(P, [2, 2], 3)._replace(post2=_f([[0.8, 0.0], [0.4, 0.6]]))
    column = _f([0.1, 0.3, 0.9, 0.0])  # the last row is the padding input
    factor = _f([1.0, 0.5, 1.0, 0.0])
    got = trace.on_post(P, s, column, factor, tf.constant(1), tf.constant(1)).numpy()
    # post2 = 0.6: 0.1 + 0.3, 0.3 + 0.15, 0.9 + 0.3 -> 1
    np.testing.assert_allclose(got, [0.4, 0.45, 1.0, 0.0], rtol=1e-6)
    got = trace.on_post(P, s, column, factor, tf.constant(0), tf.constant(1)).numpy()
    np.testing.assert_array_equal(got, column.numpy())  # post2 = 0: first spike, no change
