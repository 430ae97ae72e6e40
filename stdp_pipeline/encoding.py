"""Input encoding: Poisson rate coding of pixel intensities, as spike *events*, never stored.

A pixel of intensity ``p`` (0..255) is a Poisson process of rate ``r = p / 255 * rate_max_hz``.
The 784 processes of a digit are drawn as their superposition: at step ``t`` of length ``dt`` the
number of input spikes is ``n_t ~ Poisson(dt * sum_i r_i)`` and each of them comes from input ``i``
with probability ``r_i / sum_j r_j`` (inverse-CDF sampling). This is the same point process as
independent per-input Poisson trains, discretised to the step, but it draws ``T * (1 + K)`` random
numbers per digit instead of ``T * 784``: a digit carries about 2,300 input spikes in 350 ms, so the
dense raster would be over 99 % zeros.

Every digit's spikes are a pure function of ``(seed, stage, digit index, retry level)`` through
TensorFlow's stateless random ops: reruns, resumed runs and any batch size see the same input.

Shapes: ``T`` steps per presentation, ``K`` spike slots per step (``SLOTS``), ``P = 784`` inputs
(or ``patch_size_px**2`` per patch). Padding slots hold the index ``P`` (a zero row of the weights).
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

#: Spike slots drawn per step. At the default rates a step carries 3.3 input spikes on average
#: (8 for the brightest digits); a step with more than SLOTS spikes drops the excess and the drop
#: is counted (it has not happened on MNIST at the Diehl & Cook rates).
SLOTS = 48

#: Stage identifiers folded into the random seed, so each stage sees its own input spikes.
STAGE_IDS = {"train": 1, "assign": 2, "evaluate": 3, "encode": 4, "reconstruct": 5}


def digit_seed(seed: int | tf.Tensor, stage: str, index: tf.Tensor, level: tf.Tensor) -> tf.Tensor:
    """Stateless seed (shape ``[2]``, int32) of one presentation of one digit.

    ``index`` is the digit's index in its data split; ``level`` the retry level (0 for the first
    presentation). Distinct ``(seed, stage, index, level)`` give independent streams.
    """
    base = tf.cast(seed, tf.int32) * 16 + STAGE_IDS[stage]
    other = tf.cast(index, tf.int32) * 128 + tf.cast(level, tf.int32)
    return tf.stack([base, other])


def event_slots(
    rates_hz: tf.Tensor, dt_ms: float, steps: int, seed: tf.Tensor, pad_index: int | None = None
) -> tuple[tf.Tensor, tf.Tensor]:
    """Draw one presentation's input spikes as per-step slots.

    Args:
      rates_hz: ``[P]`` float32 firing rates of the inputs, Hz.
      dt_ms: step length, ms. ``steps``: number of steps ``T``.
      seed: stateless seed ``[2]`` from :func:`digit_seed`.
      pad_index: index written into empty slots (default ``P``).

    Returns:
      ``slots``: ``[T, SLOTS]`` int32 input indices, ``pad_index`` where empty;
      ``dropped``: int32 scalar, spikes beyond ``SLOTS`` in a step (normally 0).
    """
    n_inputs = rates_hz.shape[-1]
    pad = n_inputs if pad_index is None else pad_index
    cdf = tf.cumsum(rates_hz)
    total = cdf[-1]
    seed_n = tf.random.experimental.stateless_fold_in(seed, 1)
    seed_u = tf.random.experimental.stateless_fold_in(seed, 2)
    counts = poisson_counts(total * (dt_ms / 1000.0), steps, seed_n)
    u = tf.random.stateless_uniform([steps, SLOTS], seed_u, dtype=tf.float32)
    src = _search_right(cdf, u * total)
    valid = tf.range(SLOTS)[None, :] < counts[:, None]
    slots = tf.where(valid, src, pad)
    dropped = tf.reduce_sum(tf.maximum(counts - SLOTS, 0))
    return slots, dropped


def _search_right(cdf: tf.Tensor, values: tf.Tensor) -> tf.Tensor:
    """Index of the first ``cdf`` entry greater than each value (``searchsorted(side="right")``),
    clipped to ``len(cdf) - 1``; a plain binary search of ``ceil(log2(P))`` gathers, which XLA
    compiles well (its own searchsorted compares every value with every entry)."""
    n = cdf.shape[-1]
    lo = tf.zeros(tf.shape(values), tf.int32)
    hi = tf.fill(tf.shape(values), n - 1)
    for _ in range(max(1, math.ceil(math.log2(n)))):
        mid = (lo + hi) // 2
        go_right = tf.gather(cdf, mid) <= values
        lo = tf.where(go_right, mid + 1, lo)
        hi = tf.where(go_right, hi, mid)
    return lo


def poisson_counts(lam: tf.Tensor, steps: int, seed: tf.Tensor) -> tf.Tensor:
    """``[steps]`` int32 draws of ``Poisson(lam)`` by inverse-CDF lookup of one uniform each
    (XLA has no Poisson sampler). Values above ``SLOTS`` come out as ``SLOTS + 1``."""
    k = tf.range(SLOTS + 1, dtype=tf.float32)
    lam = tf.maximum(tf.cast(lam, tf.float32), 1e-30)
    log_pmf = k * tf.math.log(lam) - lam - tf.math.lgamma(k + 1.0)
    cdf = tf.cumsum(tf.exp(log_pmf))
    u = tf.random.stateless_uniform([steps], seed, dtype=tf.float32)
    return tf.reduce_sum(tf.cast(u[:, None] >= cdf[None, :], tf.int32), axis=1)


def intensity_rates(
    images: tf.Tensor,
    rate_max_hz: float,
    level: tf.Tensor | float = 0.0,
    retry_rate_step_hz: float = 0.0,
) -> tf.Tensor:
    """Rates in Hz of flattened uint8 images ``[..., P]``:
    ``r = p / 255 * (rate_max_hz + level * retry_rate_step_hz)``."""
    peak = rate_max_hz + tf.cast(level, tf.float32) * retry_rate_step_hz
    return tf.cast(images, tf.float32) * (peak / 255.0)


def raster(
    image: np.ndarray,
    *,
    seed: int,
    stage: str,
    index: int,
    rate_max_hz: float,
    dt_ms: float,
    steps: int,
) -> np.ndarray:
    """Dense boolean raster ``[T, P]`` of one digit's first presentation (for plots and tests)."""
    rates = intensity_rates(tf.reshape(tf.constant(image), [-1]), rate_max_hz)
    slots, _ = event_slots(rates, dt_ms, steps, digit_seed(seed, stage, tf.constant(index), 0))
    slots = slots.numpy()
    out = np.zeros((steps, rates.shape[0] + 1), dtype=bool)
    rows = np.repeat(np.arange(steps), slots.shape[1])
    out[rows, slots.ravel()] = True
    return out[:, :-1]
