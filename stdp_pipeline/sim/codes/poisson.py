"""Poisson rate code: each pixel a Poisson process whose rate grows with its intensity.

A pixel of intensity ``p`` (0..255) fires at ``r = p / 255 * (rate_max_hz + level *
retry_rate_step_hz)`` Hz (Diehl & Cook: ``p / 4`` Hz, at most 63.75 Hz; ``level`` = retry level,
0 at first). With ``target_rate_hz > 0`` the rates of an image are instead scaled so that they
sum to that target (times the same retry factor): pixel ``i`` fires at
``r_i = p_i / sum_j p_j * target_rate_hz * (1 + level * retry_rate_step_hz / rate_max_hz)``, so
every image drives the network with the same total input, whatever its brightness (see
:class:`PoissonConfig`).

The ``P`` processes of a digit are drawn as their superposition: at step ``t`` of length ``dt`` the
number of input spikes is ``n_t ~ Poisson(dt * sum_i r_i)`` and each of them comes from input ``i``
with probability ``r_i / sum_j r_j`` (inverse-CDF sampling). This is the same point process as
independent per-input Poisson trains discretised to the step, but it draws ``T * (1 + n_t)`` random
numbers per digit instead of ``T * 784``: a digit carries about 2,300 input spikes in 350 ms, so a
dense raster would be over 99 % zeros. Config section: ``poisson``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from stdp_pipeline._tf import tf
from stdp_pipeline.params import Section, num
from stdp_pipeline.sim.codes.base import SLOTS, Events, from_counts, uniform_at, uniforms

if TYPE_CHECKING:
    from stdp_pipeline.io.config import ExperimentConfig


#: Mean total input rate of an MNIST training digit at the default ``rate_max_hz`` (63.75 Hz at
#: intensity 255): ``mean(sum(p)) / 255 * 63.75`` over the first 10,000 training digits is
#: 6,554 Hz (5th to 95th percentile: 3,300 to 10,500 Hz). The natural ``target_rate_hz`` for
#: data that should drive the network as MNIST does.
MNIST_MEAN_RATE_HZ = 6550.0


@dataclass(frozen=True)
class PoissonConfig(Section):
    """Poisson rate code (``encoding.code = "poisson"``): a pixel of intensity ``p`` (0..255)
    fires at ``p / 255 * rate_max_hz`` Hz (Diehl & Cook: ``p / 4`` Hz, at most 63.75 Hz). A retry
    (too few excitatory spikes) adds ``retry_rate_step_hz`` (at 255) to the maximum rate.

    ``target_rate_hz`` (Hz, total over the image; 0 = off, the rates above) makes the input
    drive adapt to the data: the rates of each image are scaled to sum to the target,
    ``r_i = p_i / sum_j p_j * target_rate_hz``, and a retry multiplies them by ``1 + level *
    retry_rate_step_hz / rate_max_hz`` (the same factor the peak rate gets when it is off).
    Why: the Diehl & Cook constants (theta, inhibition, ``min_spikes``) are tuned to MNIST, whose
    digits sum to about 6,550 Hz at ``p / 4`` Hz (:data:`MNIST_MEAN_RATE_HZ`). Brighter images
    (Fashion-MNIST's mean intensity is about 2.2 times MNIST's) drive every neuron at once, all
    thresholds climb together and training degenerates (see :mod:`stdp_pipeline.stages.health`);
    with a target the total drive per image is MNIST's whatever the brightness, and only where
    the intensity lies (the pattern) differs. An image with few lit pixels gets higher per-pixel
    rates than ``rate_max_hz``; an all-black image still draws no spike. At most 50 kHz (25
    input spikes per 0.5 ms step on average; a step holds 48)."""

    _section = "poisson"
    rate_max_hz: float = num(63.75, gt=0, le=1000)
    retry_rate_step_hz: float = num(31.875, ge=0)
    target_rate_hz: float = num(0.0, ge=0, le=50000)


SECTIONS = {"poisson": PoissonConfig}


class Params(NamedTuple):
    """Peak rate at intensity 255 and its increase per retry level, Hz; the total rate of each
    image, Hz (0: off, rates follow the intensities alone)."""

    rate_max_hz: float
    retry_rate_step_hz: float
    target_rate_hz: float = 0.0


def params(config: ExperimentConfig) -> Params:
    """The code's parameters from the ``poisson`` section."""
    c = config.poisson
    return Params(c.rate_max_hz, c.retry_rate_step_hz, c.target_rate_hz)


def describe(p: Params) -> str:
    """For plot titles."""
    if p.target_rate_hz > 0:
        return f"Poisson rate code, {p.target_rate_hz:g} Hz per image"
    return f"Poisson rate code, peak {p.rate_max_hz:g} Hz"


def intensity_rates(
    images: tf.Tensor,
    rate_max_hz: float,
    level: tf.Tensor | float = 0.0,
    retry_rate_step_hz: float = 0.0,
) -> tf.Tensor:
    """Rates in Hz of uint8 images ``[..., P]``: ``p / 255 * (rate_max_hz + level * step)``."""
    peak = rate_max_hz + tf.cast(level, tf.float32) * retry_rate_step_hz
    return tf.cast(images, tf.float32) * (peak / 255.0)


def target_rates(
    images: tf.Tensor,
    target_rate_hz: float,
    rate_max_hz: float,
    level: tf.Tensor | float = 0.0,
    retry_rate_step_hz: float = 0.0,
) -> tf.Tensor:
    """Rates in Hz of uint8 images ``[..., P]`` that sum to the target over each image:
    ``p_i / sum_j p_j * target_rate_hz * (1 + level * retry_rate_step_hz / rate_max_hz)``
    (all zero for an all-black image). Sums of uint8 pixels are exact in float32."""
    x = tf.cast(images, tf.float32)
    total = tf.reduce_sum(x, axis=-1, keepdims=True)
    gain = target_rate_hz * (1.0 + tf.cast(level, tf.float32) * (retry_rate_step_hz / rate_max_hz))
    return x * (gain / tf.maximum(total, 1.0))


def count_table(lam: tf.Tensor) -> tf.Tensor:
    """The Poisson CDF of each mean ``lam`` ``[B]``: ``[B, S]`` float32, ``CDF(k)`` for
    ``k < S``. The table reaches 12 standard deviations past the largest mean (at least
    ``SLOTS + 1`` entries), so counts are exact far beyond ``SLOTS``."""
    lam = tf.maximum(tf.cast(lam, tf.float32), 1e-30)
    top = tf.reduce_max(lam)
    reach = tf.cast(tf.math.ceil(top + 12.0 * tf.sqrt(top) + 12.0), tf.int32)
    size = tf.maximum(SLOTS + 1, reach)
    k = tf.range(size, dtype=tf.float32)
    lam = lam[:, None]
    return tf.cumsum(tf.exp(k * tf.math.log(lam) - lam - tf.math.lgamma(k + 1.0)), axis=1)


def poisson_counts(lam: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """Inverse-CDF Poisson draws: ``lam`` ``[B]`` means, ``u`` ``[B, T]`` uniforms -> ``[B, T]``
    int32 counts, ``min{k : CDF(k) > u}`` (the entries of :func:`count_table` at or below
    ``u``)."""
    return counts_from_table(count_table(lam), u)


def counts_from_table(table: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """Inverse-CDF draws from each row's CDF ``table`` ``[B, S]`` and uniforms ``u`` ``[B, T]``:
    ``[B, T]`` int32, the number of the row's entries at or below ``u``."""
    return tf.reduce_sum(tf.cast(u[:, :, None] >= table[:, None, :], tf.int32), axis=2)


def rate_tables(
    p: Params, images: tf.Tensor, level: tf.Tensor | int, dt_ms: float
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """What :func:`events` draws from: the cumulative rates ``[B, P]`` (Hz) of each image, their
    totals ``[B]`` and the Poisson CDF of the spikes per step ``[B, S]`` (:func:`count_table`).
    The native engine (:mod:`stdp_pipeline.sim.native`) draws the same events from them."""
    if p.target_rate_hz > 0:
        rates = target_rates(images, p.target_rate_hz, p.rate_max_hz, level, p.retry_rate_step_hz)
    else:  # off: the Diehl & Cook rates, the same program as before the option existed
        rates = intensity_rates(images, p.rate_max_hz, level, p.retry_rate_step_hz)
    cdf = tf.cumsum(rates, axis=1)
    total = cdf[:, -1]
    return cdf, total, count_table(total * (dt_ms / 1000.0))


def events(
    p: Params,
    images: tf.Tensor,
    keys: tf.Tensor,
    *,
    level: tf.Tensor | int = 0,
    steps: int,
    dt_ms: float,
) -> Events:
    """Draw one presentation of each digit of a batch, as events (see :class:`Events`).

    Args:
      images: ``[B, P]`` uint8 intensities. ``keys``: ``[B]`` from ``presentation_keys``.
      level: retry level (raises the peak rate, or the total rate with ``target_rate_hz``).
      steps: ``T``. dt_ms: step length, ms.

    Step ``t`` of digit ``b`` holds ``n_bt ~ Poisson(dt * sum_i r_bi)`` spikes (at most ``SLOTS``);
    spike ``k`` of the step comes from input ``searchsorted(cdf_b, u * total_b)`` with ``u`` the
    uniform number ``t * SLOTS + k`` of stream 2 of the digit's key. Only the ``E`` spikes that
    occur are drawn: no random number is spent on empty slots.
    """
    cdf, total, table = rate_tables(p, images, level, dt_ms)
    counts = counts_from_table(table, uniforms(keys, 1, tf.range(steps)))
    dropped = tf.reduce_sum(tf.maximum(counts - SLOTS, 0), axis=1)
    counts = tf.minimum(counts, SLOTS)
    b = tf.shape(images)[0]
    segment, slot, digit = from_counts(counts, steps)
    n_events = tf.shape(segment)[0]
    u = uniform_at(tf.gather(keys, digit), 2, (segment % steps) * SLOTS + slot)
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
