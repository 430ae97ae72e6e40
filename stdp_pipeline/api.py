"""The Python API, for notebooks and scripts: the functions the CLI's stages are built on.

Everything works on arrays; nothing touches a run directory (the stages in
:mod:`stdp_pipeline.stages` add files, checkpoints and manifests around the same calls)::

    import stdp_pipeline as sp

    config = sp.load_config("diehl-cook-100", ["data.train_digits=2000"])
    net = sp.build_network(config)
    train = sp.load_digits("mnist", "train")              # images [60000, 784] uint8, labels
    test = sp.load_digits("mnist", "test")

    sp.train(net, train.images[:2000])                      # learning on (STDP)
    assignment = sp.assign(net, train.images[2000:3000], train.labels[2000:3000])  # learning off
    scores = sp.evaluate(net, assignment, test.images[:1000], test.labels[:1000])
    scores["accuracy"]                                      # {"all_activity": ..., ...}
    fields = sp.receptive_fields(net)                       # [N, k, k] weights as images

Learning is on only in :func:`train` (and :func:`present` with ``learn=True``); :func:`respond`,
:func:`assign` and :func:`evaluate` leave the learned state bit-identical. Each digit's input
spikes are a pure function of ``(config.seed, stage, index, pass, retry)``: ``indices`` (default
``0..M-1``) name the digits, so the same digit gets the same spikes wherever it is shown.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

import stdp_pipeline
from stdp_pipeline.io.config import ExperimentConfig, load_config
from stdp_pipeline.io.data import load_split
from stdp_pipeline.progress import Progress

if TYPE_CHECKING:
    from stdp_pipeline.sim.network import SpikingNetwork
    from stdp_pipeline.sim.present import TrainStats
    from stdp_pipeline.stages.assign import Assignment

__all__ = list(stdp_pipeline._API)  # one list: the package re-exports these lazily


@dataclass(frozen=True)
class Digits:
    """A split of a data set as the network sees it: ``images`` ``[M, 784]`` uint8, ``labels``
    ``[M]`` uint8, read-only."""

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def load_digits(
    dataset: str = "mnist",
    split: str = "train",
    data_dir: str | None = None,
    *,
    download: bool | None = None,
) -> Digits:
    """One split (``"train"``/``"test"``) of ``dataset``, images flattened to ``[M, 784]``; the
    data set is downloaded on first use (see :func:`stdp_pipeline.io.data.load_split`)."""
    ds = load_split(dataset, split, data_dir, download=download)
    return Digits(ds.images.reshape(len(ds), -1), ds.labels)


def build_network(
    config: str | ExperimentConfig, overrides: Iterable[str] = (), *, n_inputs: int = 784
) -> SpikingNetwork:
    """A fresh network (initial weights from ``config.seed``) from a config object, a preset
    name or a config file, with ``section.key=value`` overrides."""
    from stdp_pipeline.sim.network import SpikingNetwork

    if not isinstance(config, ExperimentConfig):
        config = load_config(config, overrides)
    elif overrides:
        config = config.with_overrides(overrides)
    return SpikingNetwork(config, n_inputs=n_inputs)


def _indices(images: np.ndarray, indices: np.ndarray | None) -> np.ndarray:
    if indices is None:
        return np.arange(len(images))
    indices = np.asarray(indices)
    if indices.shape != (len(images),):
        raise ValueError(f"indices of shape {indices.shape}: expected ({len(images)},)")
    return indices


def train(
    net: SpikingNetwork,
    images: np.ndarray,
    indices: np.ndarray | None = None,
    *,
    epochs: int = 1,
    progress: bool | None = None,
    on_chunk: Callable[[int, TrainStats], None] | None = None,
) -> TrainStats:
    """Learn from ``images`` ``[M, 784]`` (uint8), ``epochs`` passes in order, learning on.

    Digits go ``config.train.chunk_digits`` at a time to the compiled presentations;
    ``on_chunk(position, stats)`` is called after each chunk (its stats hold the per-neuron
    spike counts ``neuron_spikes`` ``[B, N]`` of the chunk). Returns the per-presentation
    :class:`~stdp_pipeline.sim.present.TrainStats` of all ``epochs * M`` presentations, without
    ``neuron_spikes`` (None: ``[M, N]`` would take 1.5 GB for 60,000 digits at 6,400 neurons)."""
    from stdp_pipeline.sim.present import TrainStats, train_chunk, training_chunks

    if epochs < 1:
        raise ValueError(f"epochs = {epochs}: must be >= 1")
    indices = _indices(images, indices)
    n = len(indices)
    parts = []
    with Progress(epochs * n, "train", enabled=progress) as bar:
        p = 0
        for epoch, offset, stop in training_chunks(0, epochs * n, n, net.config.train.chunk_digits):
            sel = slice(offset, offset + stop - p)
            stats = train_chunk(net, images[sel], indices[sel], epoch=epoch)
            parts.append(stats[:3])  # spikes, retries, dropped: not the [B, N] counts
            bar.update(stop - p, spikes=f"{stats.spikes.mean():.1f}")
            if on_chunk is not None:
                on_chunk(stop, stats)
            p = stop
    return TrainStats(*(np.concatenate(x) for x in zip(*parts, strict=True)))


def respond(
    net: SpikingNetwork,
    images: np.ndarray,
    indices: np.ndarray | None = None,
    *,
    stage: str = "evaluate",
    progress: bool | None = None,
) -> np.ndarray:
    """Excitatory spike counts ``[M, N]`` of ``images`` ``[M, 784]``, learning off (batched;
    ``stage`` is folded into the input spikes' keys: "assign", "evaluate", ...)."""
    from stdp_pipeline.sim.present import respond as _respond

    indices = _indices(images, indices)
    with Progress(len(indices), stage, enabled=progress) as bar:
        counts, _ = _respond(net, images, indices, stage, progress=bar.update)
    return counts


def present(
    net: SpikingNetwork,
    images: np.ndarray,
    indices: np.ndarray | None = None,
    *,
    learn: bool,
    stage: str,
) -> np.ndarray:
    """Show digits with learning explicitly on or off (see
    :func:`stdp_pipeline.sim.present.present`)."""
    from stdp_pipeline.sim.present import present as _present

    return _present(net, images, _indices(images, indices), learn=learn, stage=stage)


def assign(
    net: SpikingNetwork,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray | None = None,
    *,
    progress: bool | None = None,
) -> Assignment:
    """Label each neuron with the class it answers most (learning off). The returned
    :class:`~stdp_pipeline.stages.assign.Assignment` keeps the spike counts and labels it was
    fitted on (``counts``, ``labels``), from which :func:`evaluate` fits its linear read-out."""
    from stdp_pipeline.stages.assign import assign_labels

    counts = respond(net, images, indices, stage="assign", progress=progress)
    return assign_labels(counts, labels)


def evaluate(
    net: SpikingNetwork,
    assignment: Assignment,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray | None = None,
    *,
    progress: bool | None = None,
) -> dict[str, Any]:
    """Classify ``images`` by the assigned neurons' votes (``all_activity``, ``proportion``) and
    by a linear read-out fitted on the assignment digits (``linear``); learning off.

    Returns ``{"accuracy": {scheme: fraction}, "counts": [M, N], "predicted": {scheme: [M]}}``.
    """
    from stdp_pipeline.stages.evaluate import SCHEMES, predict
    from stdp_pipeline.stages.readout import fit_readout

    labels = np.asarray(labels).astype(np.int64)
    counts = respond(net, images, indices, stage="evaluate", progress=progress)
    predicted = {scheme: predict(counts, assignment, scheme) for scheme in SCHEMES}
    if assignment.counts is not None and assignment.labels is not None:
        readout = fit_readout(assignment.counts, assignment.labels)
        predicted["linear"] = readout.predict(counts)
    accuracy = {k: float((v == labels).mean()) for k, v in predicted.items()}
    return {"accuracy": accuracy, "counts": counts, "predicted": predicted}


def receptive_fields(net: SpikingNetwork) -> np.ndarray:
    """Every excitatory neuron's input weights as an image: ``[N, k, k]`` (``k`` = 28, or the
    patch size; for a shared patch group, one image per neuron of the group), in the order of
    the network's outputs."""
    from stdp_pipeline.stages.fields import receptive_fields as field_set

    return field_set(net.weights.numpy(), net.layout).images
