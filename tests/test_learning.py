"""Learning rules on small hand-made arrays, with every expected number written out."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from stdp_pipeline import learning


def _f(x):
    return tf.constant(np.array(x, np.float32))


def test_trace_pre_update_depresses_and_clips():
    """rows - nu_pre * post1, clipped to [0, w_max] (here nu_pre = 0.1)."""
    rows = _f([[0.5, 0.02, 0.9], [0.05, 0.3, 1.2]])
    post1 = _f([1.0, 0.5, 0.0])
    got = learning.trace_pre_update(rows, post1, 0.1, 1.0).numpy()
    want = [
        [0.4, 0.0, 0.9],  # 0.5 - 0.1; 0.02 - 0.05 < 0 -> 0; post1 = 0: unchanged
        [0.0, 0.25, 1.0],  # 0.05 - 0.1 < 0 -> 0; 0.3 - 0.05; 1.2 > w_max -> 1
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_trace_pre_update_diehl_cook_rate():
    """At the paper's nu_pre = 1e-4 a fresh post trace takes 1e-4 off each weight."""
    got = learning.trace_pre_update(_f([[0.3, 0.00004]]), _f([1.0, 1.0]), 1e-4, 1.0).numpy()
    np.testing.assert_allclose(got, [[0.2999, 0.0]], rtol=1e-6, atol=1e-8)


def test_trace_post_update_potentiates_firing_columns_only():
    """w + nu_post * pre * post2_before on firing columns, clipped; silent columns untouched."""
    w = _f([[0.1, 0.2, 0.7], [0.3, 0.4, 0.5], [0.6, 1.5, 0.8]])
    pre = _f([1.0, 0.5, 0.0])
    post2 = _f([0.8, 0.4, 1.0])
    spikes = _f([1.0, 0.0, 1.0])
    got = learning.trace_post_update(w, pre, post2, spikes, 0.5, 1.0).numpy()
    want = [
        [0.1 + 0.5 * 1.0 * 0.8, 0.2, 1.0],  # 0.7 + 0.5 = 1.2 -> w_max
        [0.3 + 0.5 * 0.5 * 0.8, 0.4, 0.5 + 0.5 * 0.5 * 1.0],
        [0.6, 1.5, 0.8],  # pre = 0: no change; the silent column keeps even 1.5
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_trace_post_update_first_spike_has_no_effect():
    """post2_before = 0 (neuron never fired before): potentiation is zero."""
    w = _f([[0.2], [0.4]])
    got = learning.trace_post_update(w, _f([1.0, 1.0]), _f([0.0]), _f([1.0]), 0.01, 1.0)
    np.testing.assert_array_equal(got.numpy(), w.numpy())


def test_event_update_blank_pixel_fix():
    """A firing neuron potentiates recent inputs and depresses every silent one (eta = 0.1)."""
    w = _f([[0.5, 0.5], [0.5, 0.5], [0.0, 0.3]])
    recent = _f([1.0, 0.0, 0.0])
    spikes = _f([1.0, 0.0])
    got = learning.event_update(w, recent, spikes, 0.1, 1.0, 1.0, 0.01, 1.0).numpy()
    want = [
        [0.5 + 0.1 * (1.0 - 0.5 * 1.01), 0.5],  # 0.5495
        [0.5 - 0.1 * 0.5 * 1.01, 0.5],  # 0.4495: input that did not fire is depressed
        [0.0, 0.3],  # already 0 stays 0; silent neuron's column unchanged
    ]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_event_update_asymmetric_rates_and_clipping():
    """a_plus and a_minus scale their own terms; results are clipped to [0, w_max]."""
    w = _f([[0.2], [0.4], [0.2], [0.5]])
    recent = _f([1.0, 0.0, 1.0, 0.0])
    got = learning.event_update(w, recent, _f([1.0]), 0.1, 2.0, 0.5, 0.01, 1.0).numpy()
    want = [[0.2 + 0.1 * 2.0 * (1.0 - 0.202)], [0.4 - 0.1 * 0.5 * 0.404]]
    want += [want[0], [0.5 - 0.1 * 0.5 * 0.505]]
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # eta = 1: 0.2 + 2 * (1 - 0.202) = 1.796 -> w_max; 0.5 - 2 * 0.505 < 0 -> 0
    got = learning.event_update(w, recent, _f([1.0]), 1.0, 2.0, 2.0, 0.01, 1.0).numpy()
    np.testing.assert_allclose(got[:, 0], [1.0, 0.0, 1.0, 0.0], atol=1e-7)


def test_event_update_w_max_is_a_fixed_point_below_bound():
    """With lambda > 0, w = w_max recent moves to w_max + eta (w_max - w_max (1 + lam))."""
    got = learning.event_update(_f([[1.0]]), _f([1.0]), _f([1.0]), 0.1, 1.0, 1.0, 0.01, 1.0)
    np.testing.assert_allclose(got.numpy(), [[0.999]], rtol=1e-6)


def test_normalise_columns():
    """Each column rescaled to sum to weight_sum; an all-zero column stays zero; 0 disables."""
    w = _f([[1.0, 0.0, 0.2], [3.0, 0.0, 0.2]])
    got = learning.normalise_columns(w, 2.0).numpy()
    np.testing.assert_allclose(got, [[0.5, 0.0, 1.0], [1.5, 0.0, 1.0]], rtol=1e-6)
    np.testing.assert_allclose(got.sum(axis=0), [2.0, 0.0, 2.0], rtol=1e-6)
    np.testing.assert_array_equal(learning.normalise_columns(w, 0.0).numpy(), w.numpy())
