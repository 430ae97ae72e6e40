"""Learning rules for the input -> excitatory weights ``W`` (``[P, N]``: input rows, neuron
columns), as event-driven updates plus dense references used by the tests.

Trace STDP (Diehl & Cook 2015). Traces are set to 1 at their neuron's spike and decay
exponentially (``pre``: tau_pre, ``post1``: tau_post1, ``post2``: tau_post2)::

    presynaptic spike of input i:   W[i, :] <- clip(W[i, :] - nu_pre * post1, 0, w_max)
    postsynaptic spike of neuron j:
        W[:, j] <- clip(W[:, j] + nu_post * pre * post2_before[j], 0, w_max)

Event-based postsynaptic STDP (Tavanaei, Masquelier & Maida 2018). Only when neuron ``j`` fires,
all its incoming weights change; ``recent[i]`` is 1 if input ``i`` fired within the window::

    W[:, j] += eta * a_plus  * (w_max - W[:, j] (1 + lambda))   where recent
    W[:, j] -= eta * a_minus * W[:, j] (1 + lambda)             elsewhere

so a firing neuron depresses the weights of silent inputs: the rule carries its own weight decay,
which is what cures the blank-pixel problem.

Normalisation (Diehl & Cook): before each digit each column is rescaled to sum to ``weight_sum``.
"""

from __future__ import annotations

from ._tf import tf


def trace_pre_update(rows: tf.Tensor, post1: tf.Tensor, nu_pre: float, w_max: float) -> tf.Tensor:
    """Depression at presynaptic spikes: rows ``[K, N]`` of the spiking inputs, post1 ``[N]``."""
    return tf.clip_by_value(rows - nu_pre * post1, 0.0, w_max)


def trace_post_update(
    w: tf.Tensor,
    pre: tf.Tensor,
    post2_before: tf.Tensor,
    spikes: tf.Tensor,
    nu_post: float,
    w_max: float,
) -> tf.Tensor:
    """Potentiation at postsynaptic spikes, dense form: ``w`` ``[P, N]``, ``pre`` ``[P]``,
    ``post2_before`` and ``spikes`` ``[N]`` (0/1). Columns of silent neurons are unchanged."""
    dw = nu_post * pre[:, None] * (post2_before * spikes)[None, :]
    return tf.where(spikes[None, :] > 0, tf.clip_by_value(w + dw, 0.0, w_max), w)


def event_update(
    w: tf.Tensor,
    recent: tf.Tensor,
    spikes: tf.Tensor,
    eta: float,
    a_plus: float,
    a_minus: float,
    lam: float,
    w_max: float,
) -> tf.Tensor:
    """Event-based STDP, dense form: ``w`` ``[P, N]``, ``recent`` ``[P]`` 0/1, ``spikes`` ``[N]``
    0/1. Only columns of firing neurons change."""
    recent = recent[:, None]
    dw = eta * (
        recent * a_plus * (w_max - w * (1.0 + lam)) - (1.0 - recent) * a_minus * w * (1.0 + lam)
    )
    return tf.clip_by_value(w + dw * spikes[None, :], 0.0, w_max)


def normalise_columns(w: tf.Tensor, weight_sum: float) -> tf.Tensor:
    """Rescale each column of ``w`` ``[P, N]`` to sum to ``weight_sum`` (no-op when 0)."""
    if weight_sum <= 0:
        return w
    total = tf.reduce_sum(w, axis=0, keepdims=True)
    return w * (weight_sum / tf.maximum(total, 1e-12))
