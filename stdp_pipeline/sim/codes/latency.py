"""Time-to-first-spike latency code: each pixel fires once, brighter pixels earlier.

A pixel of intensity ``p`` (0..255), scaled on a retry to ``q = min(255, p (1 + level *
retry_gain))``, fires a single spike at::

    t = (1 - q / 255) * window_ms + jitter_ms * u        (u uniform in [0, 1), per pixel)

if ``q >= min_intensity`` and ``t`` falls inside the presentation; dimmer pixels stay silent.
The whole digit thus arrives as one volley within ``window_ms + jitter_ms``, ordered by
brightness. The jitter (drawn from the presentation's counter-based key, so reproducible) spreads
the many saturated pixels of an MNIST digit over several steps; without it they would all share
step 0 and overflow its ``SLOTS`` spike slots (dropped spikes are counted, as for every code).
A retry (too few excitatory spikes) brightens the image: more pixels pass the cut-off, and all
fire earlier. Config section: ``latency``.

A volley carries far fewer input spikes than a Poisson presentation (one per lit pixel, about 150
for an MNIST digit, against about 2,300), so the Diehl & Cook thresholds (theta starting at
20 mV) leave the excitatory layer silent: use it with a lower ``excitatory.theta_init_mv`` or a
larger ``learning.weight_sum``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from stdp_pipeline._tf import tf
from stdp_pipeline.params import Section, num
from stdp_pipeline.sim.codes.base import SLOTS, Events, uniforms

if TYPE_CHECKING:
    from stdp_pipeline.io.config import ExperimentConfig


@dataclass(frozen=True)
class LatencyConfig(Section):
    """Latency code (``encoding.code = "latency"``): one spike per pixel at
    ``(1 - q / 255) * window_ms + jitter_ms * u``, for ``q >= min_intensity``; a retry scales
    intensities by ``1 + level * retry_gain``."""

    _section = "latency"
    window_ms: float = num(50.0, gt=0)
    jitter_ms: float = num(5.0, ge=0)
    min_intensity: float = num(32.0, ge=0, le=255)
    retry_gain: float = num(0.5, ge=0)


SECTIONS = {"latency": LatencyConfig}


class Params(NamedTuple):
    """Window and jitter (ms), intensity cut-off (0..255), intensity gain per retry level."""

    window_ms: float
    jitter_ms: float
    min_intensity: float
    retry_gain: float


def params(config: ExperimentConfig) -> Params:
    """The code's parameters from the ``latency`` section."""
    c = config.latency
    return Params(c.window_ms, c.jitter_ms, c.min_intensity, c.retry_gain)


def describe(p: Params) -> str:
    """For plot titles."""
    return f"latency code, {p.window_ms:g} ms window, {p.jitter_ms:g} ms jitter"


def spike_steps(
    p: Params, images: tf.Tensor, keys: tf.Tensor, level: tf.Tensor | int, steps: int, dt_ms: float
) -> tf.Tensor:
    """``[B, P]`` int32 step of each pixel's spike, or ``steps`` for a pixel that stays silent."""
    gain = 1.0 + tf.cast(level, tf.float32) * p.retry_gain
    q = tf.minimum(tf.cast(images, tf.float32) * gain, 255.0)
    n_pixels = tf.shape(images)[1]
    u = uniforms(keys, 3, tf.range(n_pixels))
    # In steps: (255 - q) window / (255 dt) is exact where it is a whole number (an exactly
    # representable quotient), so a spike on a step boundary is not floored a step early.
    delay = (255.0 - q) * p.window_ms / (255.0 * dt_ms) + u * (p.jitter_ms / dt_ms)
    step = tf.cast(tf.floor(delay), tf.int32)
    fires = tf.logical_and(q >= p.min_intensity, q > 0.0)
    return tf.where(tf.logical_and(fires, step < steps), step, steps)


def events(
    p: Params,
    images: tf.Tensor,
    keys: tf.Tensor,
    *,
    level: tf.Tensor | int = 0,
    steps: int,
    dt_ms: float,
) -> Events:
    """One volley per digit of a batch (``images`` ``[B, P]`` uint8, ``keys`` ``[B]``), as
    events ordered by digit, step and input index; at most ``SLOTS`` spikes a step."""
    b = tf.shape(images)[0]
    step = spike_steps(p, images, keys, level, steps, dt_ms)
    where = tf.cast(tf.where(step < steps), tf.int32)  # [E, 2] (digit, pixel), row-major
    digit, pixel = where[:, 0], where[:, 1]
    segment = digit * steps + tf.gather_nd(step, where)
    order = tf.argsort(segment, stable=True)  # by (digit, step), then pixel
    segment, pixel = tf.gather(segment, order), tf.gather(pixel, order)
    counts = tf.math.unsorted_segment_sum(tf.ones_like(segment), segment, b * steps)
    slot = tf.range(tf.shape(segment)[0]) - tf.gather(tf.cumsum(counts, exclusive=True), segment)
    keep = slot < SLOTS
    counts = tf.reshape(counts, [b, steps])
    dropped = tf.reduce_sum(tf.maximum(counts - SLOTS, 0), axis=1)
    busiest = tf.reduce_max(tf.minimum(counts, SLOTS), axis=1)
    return Events(
        tf.boolean_mask(segment, keep),
        tf.boolean_mask(slot, keep),
        tf.boolean_mask(pixel, keep),
        dropped,
        busiest,
    )
