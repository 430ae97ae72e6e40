"""Showing digits to a network: with learning, one after another; without, in batches.

Both paths retry a digit that drew too few excitatory spikes (Diehl & Cook): while the layer
fires fewer than ``encoding.min_spikes`` spikes, the digit is shown again at the next retry level
of the input code (Poisson: a higher rate), at most ``encoding.max_retries`` times; its result is
that of the last presentation. :func:`with_retries` is that loop, once, for both.

* :func:`train_chunk`: learning on, digits in order, one compiled program per presentation;
  :func:`train_chunks` chunk after chunk, the next chunk's input spikes drawn on a second thread.
* :func:`respond`: learning off, batches of digits at once (input currents by one sparse product,
  one compiled simulation per batch), a batch per core; learned state bit-identical.
* :func:`present`: either, chosen by the explicit ``learn`` argument.
"""

from __future__ import annotations

import concurrent.futures
import os
from collections.abc import Callable, Iterator, Sequence
from typing import NamedTuple, TypeVar

import numpy as np

from stdp_pipeline._tf import tf
from stdp_pipeline.sim.network import SLOT_WIDTHS, SpikingNetwork

#: Most bytes of input currents ``[B, T, G * Ng]`` float32 one inference batch may take.
CURRENTS_BYTES = 128 << 20
#: Most excitatory neurons (digits x neurons) one inference batch simulates: a step's state then
#: stays in the core's cache. Measured on 2 cores (digits/s, batch in brackets): 100 neurons
#: 1,100 (16-64) against 700 (479); 400 neurons 500 (16-24) against 310-390 (119); 1,600 neurons
#: 140 (4) against 100 (29).
BATCH_NEURONS = 8192
#: Digits per inference batch of the native engine (digits run one after another in a batch,
#: batches side by side on the cores).
NATIVE_BATCH = 100

T = TypeVar("T")


class TrainStats(NamedTuple):
    """Per-digit outcome of a training chunk (arrays of length ``B``).

    ``neuron_spikes`` ``[B, N]`` (float32) holds each excitatory neuron's spikes in the accepted
    presentation (``N = G * Ng``, group-major), so ``spikes == neuron_spikes.sum(axis=1)``; it is
    what the learning program returns anyway and is kept for the training health checks
    (:mod:`stdp_pipeline.stages.health`). None when a caller builds stats without it."""

    spikes: np.ndarray  # excitatory spikes in the accepted presentation
    retries: np.ndarray  # extra presentations at raised input levels
    dropped: np.ndarray  # input spikes beyond the per-step slots (normally 0)
    neuron_spikes: np.ndarray | None = None  # [B, N] spikes per neuron, accepted presentation


def with_retries(
    show: Callable[[np.ndarray, int], np.ndarray],
    todo: np.ndarray,
    min_spikes: int,
    max_retries: int,
) -> None:
    """Show digits ``todo`` at retry level 0, then again at levels 1, 2, ... those that drew
    fewer than ``min_spikes`` excitatory spikes, at most ``max_retries`` times.

    ``show(digits, level)`` presents ``digits`` (an index array) at ``level``, records what it
    needs, and returns their total excitatory spikes ``[len(digits)]``."""
    level = 0
    while True:
        totals = show(todo, level)
        todo = todo[totals < min_spikes]
        if not len(todo) or level >= max_retries:
            return
        level += 1


def training_chunks(
    start: int, total: int, per_epoch: int, chunk: int, every: int | None = None
) -> Iterator[tuple[int, int, int]]:
    """The training schedule from position ``start`` to ``total`` (position ``p`` is digit
    ``p % per_epoch`` of pass ``p // per_epoch``) in chunks of at most ``chunk`` digits that never
    cross a pass or a multiple of ``every`` (the checkpoints). Yields ``(epoch, offset, stop)``:
    digits ``offset .. offset + stop - p`` of pass ``epoch`` end at position ``stop``."""
    p = start
    while p < total:
        epoch, offset = divmod(p, per_epoch)
        stop = min(p + chunk, (epoch + 1) * per_epoch, total)
        if every:
            stop = min(stop, (p // every + 1) * every)
        yield epoch, offset, stop
        p = stop


class ChunkInputs(NamedTuple):
    """The input spikes of a training chunk at retry level 0 (numpy, from
    :meth:`SpikingNetwork.input_slots`): ``slots`` ``[B, T, K]`` int32 image pixels per step,
    ``dropped`` ``[B]`` spikes beyond the slots, ``busiest`` ``[B]`` each digit's busiest step."""

    slots: np.ndarray
    dropped: np.ndarray
    busiest: np.ndarray


def chunk_inputs(
    net: SpikingNetwork, images: np.ndarray, indices: np.ndarray, epoch: int = 0
) -> ChunkInputs:
    """The input spikes :func:`train_chunk` shows at retry level 0. They depend only on the seed
    and ``(indices, epoch)``, never on the learned state, so the training stage draws the next
    chunk's on another thread while the current chunk learns. With ``train.engine = "native"``
    they are drawn in C, bit for bit the same."""
    learner = net.native_learner()
    if learner is not None:
        return ChunkInputs(*learner.input_slots(images, indices, 0, "train", epoch))
    slots, dropped, busiest = net.input_slots(
        tf.constant(images, tf.uint8),
        tf.constant(indices, tf.int32),
        tf.constant(0),
        "train",
        tf.constant(epoch, tf.int64),
    )
    return ChunkInputs(slots.numpy(), dropped.numpy(), busiest.numpy())


def train_chunk(
    net: SpikingNetwork,
    images: np.ndarray,
    indices: np.ndarray,
    epoch: int = 0,
    inputs: ChunkInputs | None = None,
) -> TrainStats:
    """Learn from ``images`` (``[B, n_inputs]`` uint8) in order, retrying quiet digits.

    ``indices`` (``[B]``) are the digits' indices in their split and ``epoch`` the pass over the
    data: together they fix the input spikes. ``inputs``: those spikes drawn beforehand by
    :func:`chunk_inputs` for the same arguments (drawn here when None). Updates the network's
    ``weights`` and ``theta``."""
    enc = net.config.encoding
    images_t = tf.constant(images, tf.uint8)
    indices_t = tf.constant(indices, tf.int32)
    epoch_t = tf.constant(epoch, tf.int64)
    if inputs is None:
        inputs = chunk_inputs(net, images, indices, epoch)
    slots, busiest = inputs.slots, inputs.busiest
    dropped = inputs.dropped.copy()  # retries add theirs
    b = len(indices)
    if slots.shape[0] != b:
        raise ValueError(f"inputs hold {slots.shape[0]} digits, the chunk {b}")
    spikes = np.zeros(b, np.float32)
    retries = np.zeros(b, np.int32)
    neuron_spikes = np.zeros((b, net.n), np.float32)
    learner = net.native_learner()  # None: the compiled TensorFlow program

    def show(digit: np.ndarray, level: int) -> np.ndarray:
        i = int(digit[0])
        if level == 0:
            s, k = slots[i], int(busiest[i])
        else:
            if learner is not None:
                s1, d1, k1 = learner.input_slots(
                    images[i : i + 1], indices[i : i + 1], level, "train", epoch
                )
            else:
                s1, d1, k1 = (
                    x.numpy()
                    for x in net.input_slots(
                        images_t[i : i + 1],
                        indices_t[i : i + 1],
                        tf.constant(level),
                        "train",
                        epoch_t,
                    )
                )
            s, k = s1[0], int(k1[0])
            dropped[i] += int(d1[0])
        if learner is not None:
            per_neuron = learner.present(s[:, : max(k, 1)])
        else:
            width = next(w for w in SLOT_WIDTHS if w >= k)
            x = s[:, :width]
            if x.shape[1] < width:
                x = np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=net.n_inputs)
            per_neuron = net.learning_program(width)(tf.constant(x)).numpy()
        count = float(per_neuron.sum())
        spikes[i], retries[i], neuron_spikes[i] = count, level, per_neuron
        return np.array([count])

    if learner is not None:
        learner.pull()
    try:
        for i in range(b):
            with_retries(show, np.array([i]), enc.min_spikes, enc.max_retries)
    finally:
        if learner is not None:
            learner.push()
    return TrainStats(spikes, retries, dropped, neuron_spikes)


def train_chunks(
    net: SpikingNetwork,
    images: np.ndarray,
    indices: np.ndarray,
    chunks: Sequence[tuple[int, slice]],
) -> Iterator[TrainStats]:
    """Learn from the chunks ``(epoch, digits)`` in order (``digits`` a slice of ``images`` and
    ``indices``), yielding each chunk's :class:`TrainStats` as it finishes. The next chunk's input
    spikes (:func:`chunk_inputs`) are drawn on a second thread while the current chunk learns:
    the same weights, bit for bit, as :func:`train_chunk` chunk after chunk."""
    for (epoch, sel), inputs in drawn_ahead(
        chunks, lambda epoch, sel: chunk_inputs(net, images[sel], indices[sel], epoch)
    ):
        yield train_chunk(net, images[sel], indices[sel], epoch=epoch, inputs=inputs)


def drawn_ahead(
    chunks: Sequence[tuple[int, slice]], draw: Callable[[int, slice], T]
) -> Iterator[tuple[tuple[int, slice], T]]:
    """Each chunk ``(epoch, digits)`` with ``draw(epoch, digits)``, in order; the next chunk's
    draw runs on a second thread while the caller works on the current one."""
    if not len(chunks):
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pending = pool.submit(draw, *chunks[0])
        for i, chunk in enumerate(chunks):
            drawn = pending.result()
            if i + 1 < len(chunks):
                pending = pool.submit(draw, *chunks[i + 1])
            yield chunk, drawn


def inference_batch_size(net: SpikingNetwork) -> int:
    """Digits per inference batch: ``evaluate.batch_digits``, capped so that the input currents
    of one batch take at most :data:`CURRENTS_BYTES` and a batch simulates at most
    :data:`BATCH_NEURONS` excitatory neurons (``evaluate.engine = "native"``: at most
    :data:`NATIVE_BATCH` digits, simulated one after another). The counts do not depend on the
    batch size."""
    if net.config.evaluate.engine == "native":
        return max(1, min(net.config.evaluate.batch_digits, NATIVE_BATCH))
    per_digit = net.config.encoding.steps * net.n * 4
    cap = min(CURRENTS_BYTES // per_digit, BATCH_NEURONS // net.n)
    return max(1, min(net.config.evaluate.batch_digits, cap))


def inference_workers() -> int:
    """Inference threads: one per core, at most 4 (each compiled simulation runs on one
    thread)."""
    return max(1, min(4, os.cpu_count() or 1))


def respond(
    net: SpikingNetwork,
    images: np.ndarray,
    indices: np.ndarray,
    stage: str,
    progress: Callable[[int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Spike counts ``[B, N]`` (float32) of the excitatory layer for each digit, learning off.

    Digits are simulated :func:`inference_batch_size` at a time, batches on every core;
    ``progress(n)`` is called as each batch of ``n`` digits finishes. Returns
    ``(counts, retries)``. Learned state is never written: weights and theta stay
    bit-identical."""
    enc = net.config.encoding
    total = len(indices)
    counts = np.zeros((total, net.n), np.float32)
    retries = np.zeros(total, np.int32)
    bs = inference_batch_size(net)
    engine = net.native_responder()  # None: the compiled TensorFlow program
    if engine is not None:
        w = np.ascontiguousarray(net.weights.numpy(), np.float32)
        theta = np.ascontiguousarray(net.theta.numpy(), np.float32)

        def native_counts(sel: np.ndarray, level: int) -> np.ndarray:
            slots = engine.input_slots(images[sel], indices[sel], level, stage)[0]
            return engine.respond(slots, w, theta)

    def simulate(batch: np.ndarray) -> int:
        """One batch, with the retries of its quiet digits; fills counts and retries."""

        def show(todo: np.ndarray, level: int) -> np.ndarray:
            if engine is not None:  # digits one by one: no padding
                c = native_counts(todo, level)
                counts[todo], retries[todo] = c, level
                return c.sum(axis=1)
            # Retries are few: pad them to a power of two, not to a whole batch.
            width = bs if level == 0 else min(bs, max(8, 1 << (len(todo) - 1).bit_length()))
            sel = np.concatenate([todo, np.full(width - len(todo), todo[0])])
            cur = net.input_currents(
                tf.constant(images[sel], tf.uint8),
                tf.constant(indices[sel], tf.int32),
                tf.constant(level),
                stage,
            )
            c = net.simulate(cur).numpy()[: len(todo)]
            counts[todo], retries[todo] = c, level
            return c.sum(axis=1)

        with_retries(show, batch, enc.min_spikes, enc.max_retries)
        return len(batch)

    batches = [np.arange(lo, min(total, lo + bs)) for lo in range(0, total, bs)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=inference_workers()) as pool:
        for done in pool.map(simulate, batches):
            if progress is not None:
                progress(done)
    return counts, retries


def present(
    net: SpikingNetwork, images: np.ndarray, indices: np.ndarray, *, learn: bool, stage: str
) -> np.ndarray:
    """Show digits to the network and return the excitatory spike counts.

    ``learn=True``: digits one after another with plasticity (``stage`` must be "train");
    returns the total excitatory spikes per digit ``[B]``. ``learn=False``: batched, no
    plasticity, learned state untouched (bit-identical); returns spike counts ``[B, N]``.
    """
    if learn:
        if stage != "train":
            raise ValueError(f"stage {stage!r}: learning happens only in the 'train' stage")
        return train_chunk(net, images, indices).spikes
    return respond(net, images, indices, stage)[0]
