"""Label assignment (Diehl & Cook): with learning off, present labelled digits, record each
excitatory neuron's spike counts, and give each neuron the class to which it responds most.

For counts ``X`` ``[M, N]`` (M digits, N neurons) and labels ``y`` ``[M]``::

    rates[c, j]       = mean of X[m, j] over the digits m of class c        ([C, N])
    classes[j]        = argmax_c rates[c, j]  (-1 for a neuron that never fired)
    proportions[c, j] = rates[c, j] / sum_c' rates[c', j]                   (selectivity)

The stage (:func:`run_assign`) presents the run's assignment slice (never test digits) and writes
``assignments.npz`` with the counts, so evaluation and read-outs need not simulate them again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import artefacts
from stdp_pipeline.io.rundir import RunDir, locked
from stdp_pipeline.labels import N_CLASSES
from stdp_pipeline.progress import Progress

if TYPE_CHECKING:
    from stdp_pipeline.sim.network import SpikingNetwork


@dataclass(frozen=True)
class Assignment:
    """Per-neuron class (``classes`` ``[N]`` int, -1 = silent), mean response per class
    (``rates`` ``[C, N]``) and selectivity (``proportions`` ``[C, N]``, columns sum to 1 or 0).
    ``counts`` ``[M, N]`` and ``labels`` ``[M]``: the responses it was made from, when kept (a
    linear read-out is fitted on them)."""

    classes: np.ndarray
    rates: np.ndarray
    proportions: np.ndarray
    counts: np.ndarray | None = None
    labels: np.ndarray | None = None


def assign_labels(counts: np.ndarray, labels: np.ndarray, n_classes: int = N_CLASSES) -> Assignment:
    """Assign each neuron the class with its highest mean spike count (see module docstring)."""
    given_counts, given_labels = np.asarray(counts), np.asarray(labels)
    counts = np.asarray(counts, np.float64)
    labels = np.asarray(labels).astype(np.int64)
    if counts.ndim != 2 or counts.shape[0] != labels.shape[0]:
        raise PipelineError(
            f"spike counts of shape {counts.shape} do not match {labels.shape[0]} labels"
        )
    rates = np.zeros((n_classes, counts.shape[1]))
    for c in range(n_classes):
        members = labels == c
        if members.any():
            rates[c] = counts[members].mean(axis=0)
    total = rates.sum(axis=0)
    classes = np.where(total > 0, rates.argmax(axis=0), -1)
    proportions = np.divide(rates, total, out=np.zeros_like(rates), where=total > 0)
    return Assignment(classes.astype(np.int64), rates, proportions, given_counts, given_labels)


def load_trained(
    run: RunDir, split: str, overrides: Sequence[str] = ()
) -> tuple[SpikingNetwork, dict[str, np.ndarray]]:
    """The run's trained network (learned state of ``model.npz``) and its encoded ``split``
    (``encoded/<split>.npz``: ``images``, ``labels``, ``indices``), both checked against the
    run's config (:mod:`stdp_pipeline.io.artefacts`) before the network is built; the network
    is built with the run's config plus ``overrides`` (``section.key=value``)."""
    config = run.config()
    data = artefacts.load_encoded(run, split, config)
    n_inputs = data["images"].shape[1]
    state = artefacts.load_model(run, config, n_inputs)
    from stdp_pipeline.sim.network import SpikingNetwork

    net = SpikingNetwork(config.with_overrides(overrides) if overrides else config, n_inputs)
    net.set_state(state)
    return net, data


@locked("assign")
def run_assign(run: RunDir, *, progress: bool | None = None) -> Assignment:
    """The ``assign`` stage: present the assignment slice with learning off, assign labels.

    Needs the ``train`` stage. Writes ``assignments.npz`` (``classes``, ``rates``,
    ``proportions``, ``counts``, ``labels``, ``retries``)."""
    from stdp_pipeline.sim.present import respond

    run.require("train", for_stage="assign")
    net, data = load_trained(run, "assign")
    images, indices, labels = data["images"], data["indices"], data["labels"]
    with run.stage("assign") as record:
        with Progress(len(indices), "assign", enabled=progress) as bar:
            counts, retries = respond(net, images, indices, "assign", progress=bar.update)
        result = assign_labels(counts, labels)
        run.save_arrays(
            "assignments.npz",
            {
                "classes": result.classes,
                "rates": result.rates,
                "proportions": result.proportions,
                "counts": counts,
                "labels": labels,
                "retries": retries,
            },
            compressed=True,
        )
        record.info.update(
            digits=int(len(indices)),
            simulate_s=round(record.elapsed_s(), 3),
            silent_neurons=int((result.classes < 0).sum()),
            neurons_per_class=np.bincount(result.classes[result.classes >= 0], minlength=N_CLASSES)
            .astype(int)
            .tolist(),
        )
    return result
