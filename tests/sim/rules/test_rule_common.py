"""What every learning rule shares (:mod:`stdp_pipeline.sim.rules.base`)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from stdp_pipeline.sim.rules import base


def _f(x):
    return tf.constant(np.array(x, np.float32))


def test_normalise_columns():
    """Each column rescaled to sum to weight_sum; an all-zero column stays zero; 0 disables."""
    w = _f([[1.0, 0.0, 0.2], [3.0, 0.0, 0.2]])
    got = base.normalise_columns(w, 2.0).numpy()
    np.testing.assert_allclose(got, [[0.5, 0.0, 1.0], [1.5, 0.0, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(got.sum(axis=0), [2.0, 0.0, 2.0], rtol=1e-6)
    np.testing.assert_array_equal(base.normalise_columns(w, 0.0).numpy(), w.numpy())


def test_last_spike_times_and_note_spikes():
    """Every input (and the padding entry) starts long silent; note_spikes writes now_ms at the
    given inputs only."""
    last = base.last_spike_times(3)
    assert last.shape == (4,)
    assert (last.numpy() <= -1e8).all()
    last = base.note_spikes(last, tf.constant([2, 0]), tf.constant(1.5))
    last = base.note_spikes(last, tf.constant([2]), tf.constant(3.0))
    np.testing.assert_array_equal(last.numpy(), [1.5, -1e9, 3.0, -1e9])


def test_fired_in_order():
    """The indices of the neurons that fired, ascending, in the first n_fired places; jitted
    (the learning programs run it under XLA)."""
    spikes = _f([0, 1, 0, 0, 1, 1, 0, 1])
    order, n_fired = base.fired_in_order(spikes)
    assert int(n_fired) == 4
    np.testing.assert_array_equal(order.numpy()[:4], [1, 4, 5, 7])
    jitted = tf.function(base.fired_in_order, jit_compile=True)
    order, n_fired = jitted(_f([0, 0, 0]))
    assert int(n_fired) == 0 and order.shape == (3,)
    rng = np.random.default_rng(0)
    s = (rng.random(500) < 0.05).astype(np.float32)
    order, n_fired = jitted(tf.constant(s))
    np.testing.assert_array_equal(order.numpy()[: int(n_fired)], np.flatnonzero(s))
