"""Fixed wiring: the named matrices on their diagonal, and the O(N) products against them."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from stdp_pipeline.sim import wiring


def test_one_to_one_is_a_scaled_identity():
    """one_to_one(n, s): s on the diagonal, 0 elsewhere."""
    m = wiring.one_to_one(5, 10.4).numpy()
    assert m.shape == (5, 5)
    assert m.dtype == np.float32
    np.testing.assert_array_equal(np.diag(m), np.full(5, 10.4, np.float32))
    np.testing.assert_array_equal(m[~np.eye(5, dtype=bool)], 0.0)


def test_hollow_has_a_zero_diagonal():
    """hollow(n, s): 0 on the diagonal, s everywhere else."""
    m = wiring.hollow(6, 17.0).numpy()
    assert m.shape == (6, 6)
    np.testing.assert_array_equal(np.diag(m), 0.0)
    np.testing.assert_array_equal(m[~np.eye(6, dtype=bool)], 17.0)


@pytest.mark.parametrize("shape", [(5, 7), (7,)])
def test_apply_equals_the_matrix_product(shape):
    """one_to_one_apply / hollow_apply equal spikes @ matrix for 0/1 spikes [5, n] and [n]."""
    rng = np.random.default_rng(3)
    n = shape[-1]
    spikes = (rng.random(shape) < 0.4).astype(np.float32)
    spikes.reshape(-1, n)[0, :2] = 1.0  # at least two spikes: the hollow sum is not trivial
    s = tf.constant(spikes)
    eye = np.eye(n, dtype=np.float32)
    np.testing.assert_allclose(
        wiring.one_to_one_apply(s, 10.4).numpy(), spikes @ (10.4 * eye), rtol=1e-6
    )
    np.testing.assert_allclose(
        wiring.hollow_apply(s, 17.0).numpy(), spikes @ (17.0 * (1.0 - eye)), rtol=1e-6
    )
    # and against the library's own matrices
    np.testing.assert_allclose(
        wiring.hollow_apply(s, 17.0).numpy(), spikes @ wiring.hollow(n, 17.0).numpy(), rtol=1e-6
    )
    np.testing.assert_allclose(
        wiring.one_to_one_apply(s, 10.4).numpy(),
        spikes @ wiring.one_to_one(n, 10.4).numpy(),
        rtol=1e-6,
    )


def test_hollow_apply_spares_the_partner():
    """A single inhibitory spike reaches every excitatory neuron but its partner."""
    out = wiring.hollow_apply(tf.constant([0.0, 1.0, 0.0, 0.0]), 2.5).numpy()
    np.testing.assert_array_equal(out, [2.5, 0.0, 2.5, 2.5])
