"""What every input code shares: counter-based random keys, spike events, per-step slots.

An input code turns a batch of images into input spike *events*, never stored. A code is a
module with:

* ``SECTIONS``: its config sections, ``{name: frozen Section class}``;
* ``Params`` (NamedTuple) and ``params(config) -> Params``;
* ``events(p, images, keys, *, level, steps, dt_ms) -> Events``: the spikes of one presentation
  of each image ``[B, P]`` uint8, as an :class:`Events` list (ordered by digit, step and slot);
  ``keys`` ``[B]`` come from :func:`presentation_keys`; ``level`` is the retry level (0 at first;
  each code says what a retry changes);
* ``describe(p) -> str``: a few words for plot titles.

Random numbers come from a counter-based generator: uniform number ``c`` of stream ``s`` of a
presentation is a hash of ``(seed, stage, digit index, retry level, s, c)``. A digit's spikes are
therefore a pure function of those values, whatever the batch it is simulated in: reruns, resumed
runs, training and inference see bit-identical input, and a batch is drawn in one vectorised op.

Shapes: ``B`` digits, ``T`` steps per presentation, ``K`` spike slots per step, ``P`` inputs
(784 for whole digits). Empty slots hold the index ``P`` (a zero row appended to the weights).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from stdp_pipeline._tf import tf

REQUIRED = ("SECTIONS", "Params", "params", "events", "describe")

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


def uniform_at(keys: tf.Tensor, stream: int, counters: tf.Tensor) -> tf.Tensor:
    """Elementwise form of :func:`uniforms`: ``keys`` and ``counters`` of the same shape."""
    x = hash32(tf.cast(keys, tf.int64) ^ hash32(tf.cast(counters, tf.int64) + (stream << 28)))
    x = hash32(x + 0x9E3779B9)
    return tf.cast(tf.bitwise.right_shift(x, 8), tf.float32) * (1.0 / (1 << 24))


def slots(events: Events, n_images: tf.Tensor, steps: int, n_inputs: int) -> tf.Tensor:
    """The events laid out per step for the learning simulation: ``[B, T, K]`` int32 input
    indices (``n_inputs`` where empty), ``K`` the most spikes of any step of the batch (at least
    1). The slot at ``(b, t, k)`` does not depend on ``K`` or on the other digits of the batch."""
    width = tf.maximum(tf.reduce_max(events.busiest), 1)
    flat_index = events.segment * width + events.slot
    out = tf.fill([n_images * steps * width], tf.constant(n_inputs, tf.int32))
    out = tf.tensor_scatter_nd_update(out, flat_index[:, None], events.source)
    return tf.reshape(out, [n_images, steps, width])


def from_counts(counts: tf.Tensor, steps: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Lay out ``counts`` ``[B, T]`` spikes per step (``T = steps``) as events: ``segment``
    (``b * T + t``), ``slot`` (rank in the step) and ``digit`` of each event, ``[E]`` each."""
    b = tf.shape(counts)[0]
    flat = tf.reshape(counts, [-1])
    n_events = tf.reduce_sum(flat)
    segment = tf.repeat(tf.range(b * steps), flat)
    slot = tf.range(n_events) - tf.gather(tf.cumsum(flat, exclusive=True), segment)
    return segment, slot, segment // steps


def raster(slots: np.ndarray, n_inputs: int) -> np.ndarray:
    """Dense boolean raster ``[T, P]`` of one presentation's slots ``[T, K]`` (plots, tests)."""
    steps = slots.shape[0]
    out = np.zeros((steps, n_inputs + 1), dtype=bool)
    out[np.repeat(np.arange(steps), slots.shape[1]), slots.ravel()] = True
    return out[:, :-1]
