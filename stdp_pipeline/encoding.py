"""Input encoding: Poisson rate coding of pixel intensities, as spike *events*, never stored.

A pixel of intensity ``p`` (0..255) is a Poisson process of rate
``r = p / 255 * (rate_max_hz + level * retry_rate_step_hz)`` (``level`` = retry level, 0 at first).
The ``P`` processes of a digit are drawn as their superposition: at step ``t`` of length ``dt`` the
number of input spikes is ``n_t ~ Poisson(dt * sum_i r_i)`` and each of them comes from input ``i``
with probability ``r_i / sum_j r_j`` (inverse-CDF sampling). This is the same point process as
independent per-input Poisson trains discretised to the step, but it draws ``T * (1 + n_t)``
random numbers per digit instead of ``T * 784``: a digit carries about 2,300 input spikes in
350 ms, so a dense raster would be over 99 % zeros.

Random numbers come from a counter-based generator: uniform number ``c`` of stream ``s`` of a
presentation is a hash of ``(seed, stage, digit index, retry level, s, c)``. A digit's spikes are
therefore a pure function of those values, whatever the batch it is simulated in: reruns, resumed
runs, training and inference see bit-identical input, and a batch is drawn in one vectorised op.

Shapes: ``B`` digits, ``T`` steps per presentation, ``K`` spike slots per step, ``P`` inputs
(784 for whole digits). Empty slots hold the index ``P`` (a zero row appended to the weights).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ._tf import tf

#: Most input spikes one step can hold. At the Diehl & Cook rates a step carries 3.3 input spikes
#: on average (8 for the brightest digits); spikes beyond this are dropped and counted.
SLOTS = 48

#: Stage identifiers folded into the key, so each stage sees its own input spikes.
STAGE_IDS = {"train": 1, "assign": 2, "evaluate": 3, "encode": 4, "reconstruct": 5}

_MASK = 0xFFFFFFFF


def _mul32(x: tf.Tensor, c: int) -> tf.Tensor:
    """``(x * c) mod 2**32`` for int64 ``x`` in ``[0, 2**32)``, without int64 overflow."""
    lo, hi = c & 0xFFFF, c >> 16
    return (x * lo + tf.bitwise.left_shift((x * hi) & 0xFFFF, 16)) & _MASK


def hash32(x: tf.Tensor) -> tf.Tensor:
    """A 32-bit integer hash (xorshift-multiply, "lowbias32") of int64 values in ``[0, 2**32)``."""
    shr = tf.bitwise.right_shift
    x = x & _MASK
    x = x ^ shr(x, 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ shr(x, 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ shr(x, 16)


def presentation_keys(
    seed: int, stage: str, indices: tf.Tensor, level: tf.Tensor | int, epoch: tf.Tensor | int = 0
) -> tf.Tensor:
    """``[B]`` int64 keys of the presentations of digits ``indices`` at retry ``level`` in pass
    ``epoch`` over the data (each pass over the training digits draws fresh spikes)."""
    if stage not in STAGE_IDS:
        raise ValueError(f"stage {stage!r}: must be one of {', '.join(STAGE_IDS)}")
    seed_key = hash32(tf.constant(seed, tf.int64))  # seed < 2**31: a bijection, no collisions
    base = hash32(seed_key ^ hash32(tf.constant(STAGE_IDS[stage] + 0x1000, tf.int64)))
    base = hash32(base ^ hash32(tf.cast(epoch, tf.int64) + 0x5BD1E995))
    idx = tf.cast(indices, tf.int64) * 256 + tf.cast(level, tf.int64)
    return hash32(base ^ hash32(idx))


def uniforms(keys: tf.Tensor, stream: int, counters: tf.Tensor) -> tf.Tensor:
    """Uniform float32 numbers in ``[0, 1)``: shape ``keys.shape + counters.shape``."""
    k = tf.reshape(keys, tf.concat([tf.shape(keys), tf.ones_like(tf.shape(counters))], 0))
    x = hash32(k ^ hash32(tf.cast(counters, tf.int64) + (stream << 28)))
    x = hash32(x + 0x9E3779B9)
    return tf.cast(tf.bitwise.right_shift(x, 8), tf.float32) * (1.0 / (1 << 24))


def intensity_rates(
    images: tf.Tensor,
    rate_max_hz: float,
    level: tf.Tensor | float = 0.0,
    retry_rate_step_hz: float = 0.0,
) -> tf.Tensor:
    """Rates in Hz of uint8 images ``[..., P]``: ``p / 255 * (rate_max_hz + level * step)``."""
    peak = rate_max_hz + tf.cast(level, tf.float32) * retry_rate_step_hz
    return tf.cast(images, tf.float32) * (peak / 255.0)


def poisson_counts(lam: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """Inverse-CDF Poisson draws: ``lam`` ``[B]`` means, ``u`` ``[B, T]`` uniforms -> ``[B, T]``
    int32 counts, ``min{k : CDF(k) > u}``. The CDF table reaches 12 standard deviations past the
    largest mean (at least ``SLOTS + 1`` entries), so counts are exact far beyond ``SLOTS``."""
    lam = tf.maximum(tf.cast(lam, tf.float32), 1e-30)
    top = tf.reduce_max(lam)
    reach = tf.cast(tf.math.ceil(top + 12.0 * tf.sqrt(top) + 12.0), tf.int32)
    size = tf.maximum(SLOTS + 1, reach)
    k = tf.range(size, dtype=tf.float32)
    lam = lam[:, None]
    cdf = tf.cumsum(tf.exp(k * tf.math.log(lam) - lam - tf.math.lgamma(k + 1.0)), axis=1)
    return tf.reduce_sum(tf.cast(u[:, :, None] >= cdf[:, None, :], tf.int32), axis=2)


class Events(NamedTuple):
    """Input spikes of a batch of presentations as a flat event list, ordered by digit, step and
    slot. ``segment`` ``[E]``: ``b * T + t``; ``slot`` ``[E]``: position ``k`` within the step;
    ``source`` ``[E]``: input index; ``dropped`` ``[B]``: spikes beyond ``SLOTS`` in a step;
    ``busiest`` ``[B]``: each digit's most spikes in one step."""

    segment: tf.Tensor
    slot: tf.Tensor
    source: tf.Tensor
    dropped: tf.Tensor
    busiest: tf.Tensor


def _uniform_at(keys: tf.Tensor, stream: int, counters: tf.Tensor) -> tf.Tensor:
    """Elementwise form of :func:`uniforms`: ``keys`` and ``counters`` of the same shape."""
    x = hash32(tf.cast(keys, tf.int64) ^ hash32(tf.cast(counters, tf.int64) + (stream << 28)))
    x = hash32(x + 0x9E3779B9)
    return tf.cast(tf.bitwise.right_shift(x, 8), tf.float32) * (1.0 / (1 << 24))


def batch_events(
    images: tf.Tensor,
    keys: tf.Tensor,
    *,
    rate_max_hz: float,
    dt_ms: float,
    steps: int,
    level: tf.Tensor | int = 0,
    retry_rate_step_hz: float = 0.0,
) -> Events:
    """Draw one presentation of each digit of a batch, as events (see :class:`Events`).

    Args:
      images: ``[B, P]`` uint8 intensities. ``keys``: ``[B]`` from :func:`presentation_keys`.
      rate_max_hz, level, retry_rate_step_hz: the rate code (see :func:`intensity_rates`).
      dt_ms: step length, ms. steps: ``T``.

    Step ``t`` of digit ``b`` holds ``n_bt ~ Poisson(dt * sum_i r_bi)`` spikes (at most ``SLOTS``);
    spike ``k`` of the step comes from input ``searchsorted(cdf_b, u * total_b)`` with ``u`` the
    uniform number ``t * SLOTS + k`` of stream 2 of the digit's key. Only the ``E`` spikes that
    occur are drawn: no random number is spent on empty slots.
    """
    rates = intensity_rates(images, rate_max_hz, level, retry_rate_step_hz)
    cdf = tf.cumsum(rates, axis=1)
    total = cdf[:, -1]
    counts = poisson_counts(total * (dt_ms / 1000.0), uniforms(keys, 1, tf.range(steps)))
    dropped = tf.reduce_sum(tf.maximum(counts - SLOTS, 0), axis=1)
    counts = tf.minimum(counts, SLOTS)
    b = tf.shape(images)[0]
    flat = tf.reshape(counts, [-1])
    n_events = tf.reduce_sum(flat)
    segment = tf.repeat(tf.range(b * steps), flat)
    slot = tf.range(n_events) - tf.gather(tf.cumsum(flat, exclusive=True), segment)
    digit = segment // steps
    u = _uniform_at(tf.gather(keys, digit), 2, (segment % steps) * SLOTS + slot)
    value = u * tf.gather(total, digit)
    # Search each digit's own CDF: lay the values out as [B, most events of a digit].
    per_digit = tf.reduce_sum(counts, axis=1)
    rank = tf.range(n_events) - tf.gather(tf.cumsum(per_digit, exclusive=True), digit)
    where = tf.stack([digit, rank], axis=1)
    table = tf.scatter_nd(where, value, tf.stack([b, tf.maximum(tf.reduce_max(per_digit), 1)]))
    found = tf.gather_nd(tf.searchsorted(cdf, table, side="right", out_type=tf.int32), where)
    # u * total can round up to total in float32: such a spike belongs to the last lit pixel.
    last_lit = tf.searchsorted(cdf, total[:, None], side="left", out_type=tf.int32)[:, 0]
    source = tf.minimum(found, tf.gather(last_lit, digit))
    return Events(segment, slot, source, dropped, tf.reduce_max(counts, axis=1))


def batch_slots(
    images: tf.Tensor, keys: tf.Tensor, **rate_code: Any
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The events of :func:`batch_events` (same arguments) laid out per step, for the learning
    simulation.

    Returns:
      ``slots`` ``[B, T, K]`` int32 input indices (``P`` where empty), ``K`` the most spikes of any
      step of the batch (at least 1); ``dropped`` ``[B]`` spikes beyond ``SLOTS``; ``busiest``
      ``[B]`` each digit's most spikes in one step. The slot at ``(b, t, k)`` does not depend on
      ``K`` or on the other digits of the batch.
    """
    ev = batch_events(images, keys, **rate_code)
    b = tf.shape(images)[0]
    width = tf.maximum(tf.reduce_max(ev.busiest), 1)
    flat_index = ev.segment * width + ev.slot
    steps = rate_code["steps"]
    slots = tf.fill([b * steps * width], tf.constant(images.shape[-1], tf.int32))
    slots = tf.tensor_scatter_nd_update(slots, flat_index[:, None], ev.source)
    return tf.reshape(slots, [b, steps, width]), ev.dropped, ev.busiest


def raster(slots: np.ndarray, n_inputs: int) -> np.ndarray:
    """Dense boolean raster ``[T, P]`` of one presentation's slots ``[T, K]`` (plots, tests)."""
    steps = slots.shape[0]
    out = np.zeros((steps, n_inputs + 1), dtype=bool)
    out[np.repeat(np.arange(steps), slots.shape[1]), slots.ravel()] = True
    return out[:, :-1]
