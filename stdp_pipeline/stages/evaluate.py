"""Evaluation: predict test digits from excitatory spike counts and the label assignment.

Voting schemes, for counts ``x`` ``[N]`` of one digit and an :class:`~.assign.Assignment`:

* ``all_activity`` (Diehl & Cook): ``score[c] = mean of x[j] over neurons j assigned to c``;
* ``proportion`` (proportion weighting): ``score[c] = sum over neurons j assigned to c of
  proportions[c, j] * x[j]``, divided by the number of neurons assigned to ``c``: each vote
  counts as much as the neuron is selective for its class.

The prediction is ``argmax_c score[c]`` (a digit that made no neuron fire scores 0 everywhere and
counts as class 0, i.e. almost surely wrong, as in the original code). Labels are never assigned
on the test digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from stdp_pipeline.io import artefacts
from stdp_pipeline.io.rundir import RunDir, locked
from stdp_pipeline.labels import N_CLASSES
from stdp_pipeline.progress import Progress
from stdp_pipeline.stages.assign import Assignment, load_trained

if TYPE_CHECKING:
    from stdp_pipeline.sim.network import SpikingNetwork

SCHEMES = ("all_activity", "proportion")


def class_scores(counts: np.ndarray, assignment: Assignment, scheme: str) -> np.ndarray:
    """Scores ``[M, C]`` of digits' counts ``[M, N]`` under a voting ``scheme``."""
    counts = np.asarray(counts, np.float64)
    scores = np.zeros((counts.shape[0], N_CLASSES))
    for c in range(N_CLASSES):
        members = assignment.classes == c
        n = int(members.sum())
        if n == 0:
            continue
        if scheme == "all_activity":
            scores[:, c] = counts[:, members].sum(axis=1) / n
        elif scheme == "proportion":
            scores[:, c] = (counts[:, members] * assignment.proportions[c, members]).sum(1) / n
        else:
            raise ValueError(f"scheme {scheme!r}: must be one of {', '.join(SCHEMES)}")
    return scores


def predict(counts: np.ndarray, assignment: Assignment, scheme: str = "all_activity") -> np.ndarray:
    """Predicted classes ``[M]`` (int) of digits' spike counts ``[M, N]``."""
    return class_scores(counts, assignment, scheme).argmax(axis=1)


def confusion(labels: np.ndarray, predicted: np.ndarray, n_classes: int = N_CLASSES) -> np.ndarray:
    """Confusion matrix ``[C, C]``: rows true class, columns predicted class."""
    out = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(out, (np.asarray(labels, np.int64), np.asarray(predicted, np.int64)), 1)
    return out


@locked("evaluate")
def run_evaluate(run: RunDir, *, progress: bool | None = None) -> dict:
    """The ``evaluate`` stage: present the test digits (learning off), predict with each voting
    scheme and with a linear read-out fitted on the assignment slice (:mod:`.readout`), write
    ``metrics.json``, ``confusion.csv`` and ``confusion.png``. Returns the metrics.

    ``metrics["pixels_linear"]``: the baseline the read-out is judged against, the same logistic
    regression fitted on the raw pixels of the assignment digits, tested on the same test digits
    (49-74 s for 60,000 digits on 2 cores, measured; then read from the on-disk cache for the
    same digits, :mod:`stdp_pipeline.io.cache`)."""
    from stdp_pipeline.sim.present import respond
    from stdp_pipeline.stages.plots import plot_confusion

    run.require("assign", for_stage="evaluate")
    config = run.config()
    assigned = artefacts.load_assignments(
        run, config, keys=("classes", "rates", "proportions", "counts", "labels")
    )
    assignment = Assignment(assigned["classes"], assigned["rates"], assigned["proportions"])
    net, data = load_trained(run, "test")
    labels = data["labels"].astype(np.int64)
    train_info = run.manifest()["stages"]["train"]
    with run.stage("evaluate") as record:
        with Progress(len(labels), "evaluate", enabled=progress) as bar:
            counts, retries = respond(
                net, data["images"], data["indices"], "evaluate", progress=bar.update
            )
        wall = record.elapsed_s()  # presenting the test digits
        accuracy, matrices = {}, {}
        for scheme in SCHEMES:
            pred = predict(counts, assignment, scheme)
            accuracy[scheme] = float((pred == labels).mean())
            matrices[scheme] = confusion(labels, pred)
        metrics = {
            "run": run.name,
            "config": config.name,
            "accuracy": accuracy,
            "n_excitatory": config.network.n_excitatory,
            "train_digits": int(train_info.get("digits_seen", 0)),
            "train_passes": int(train_info.get("epochs", 1)),
            "assign_digits": int(len(assigned["labels"])),
            "test_digits": int(len(labels)),
            "wall_s": round(wall, 3),
            "train_wall_s": _training_seconds(train_info),
            "test_spikes_per_digit": float(counts.sum(axis=1).mean()),
            "test_retries_per_digit": float(retries.mean()),
            "per_class_accuracy": {
                scheme: {str(c): float(m[c, c] / max(1, m[c].sum())) for c in range(N_CLASSES)}
                for scheme, m in matrices.items()
            },
        }
        from stdp_pipeline.stages.readout import fit_readout, pixel_baseline

        readout = fit_readout(assigned["counts"], assigned["labels"])
        accuracy["linear"] = float((readout.predict(counts) == labels).mean())
        fitted = artefacts.load_encoded(run, "assign", config)
        metrics["pixels_linear"] = pixel_baseline(
            fitted["images"], fitted["labels"], data["images"], labels
        )
        best = max(accuracy, key=accuracy.get)
        frame = pd.DataFrame(
            matrices["all_activity"],
            index=pd.Index(range(N_CLASSES), name="true"),
            columns=[f"pred_{c}" for c in range(N_CLASSES)],
        )
        run.write_text("confusion.csv", frame.to_csv())
        title = (
            f"{run.name}: {config.name}, {config.network.n_excitatory} neurons\n"
            f"test accuracy {100 * accuracy['all_activity']:.2f} % (all activity), "
            f"{100 * accuracy['proportion']:.2f} % (proportion)"
        )
        plot_confusion(matrices["all_activity"], run.file("confusion.png"), title)
        record.add_output("confusion.png")
        run.save_arrays("test_counts.npz", {"counts": counts, "labels": labels}, compressed=True)
        run.write_json("metrics.json", metrics)
        record.info.update(accuracy=accuracy, best_scheme=best, digits=int(len(labels)))
    return metrics


def _training_seconds(train_info: dict) -> float | None:
    """The train stage's wall time plus the training seconds of the sessions before a resumed
    run's checkpoint (``earlier_s``; absent or None when unknown: this session's time only)."""
    wall = train_info.get("wall_s")
    earlier = train_info.get("earlier_s")
    if wall is None or earlier is None:
        return wall
    return round(wall + earlier, 3)


def rescore(
    run: RunDir, overrides: Sequence[str] = (), *, progress: bool | None = None
) -> dict[str, float]:
    """Present a trained run's assignment and test digits again with inference settings
    ``overrides`` (``evaluate.*`` keys only, e.g. ``evaluate.inh_to_exc_weight=4``): assign
    labels, fit the linear read-out and score the test digits as ``assign`` and ``evaluate``
    do, writing nothing. Learned state is read from ``model.npz`` and never changed. Returns
    ``{"all_activity", "proportion", "linear"}`` (fractions) and ``spikes_per_digit`` (test).

    With no overrides the accuracies are those ``evaluate`` records (the same counts, bit for
    bit). Raises :class:`PipelineError` for a key outside ``evaluate``."""
    from stdp_pipeline.errors import PipelineError
    from stdp_pipeline.io.config import parse_override

    for item in overrides:
        key, _ = parse_override(item)
        if not key.startswith("evaluate."):
            raise PipelineError(
                f"{item}: only evaluate.* keys change how a trained network is presented "
                "(e.g. evaluate.inh_to_exc_weight=4); other keys need a new run"
            )
    run.require("train", for_stage="rescore")
    net, test = load_trained(run, "test", overrides)
    fitted = artefacts.load_encoded(run, "assign", run.config())
    return score_network(net, fitted, test, progress=progress)


def score_network(
    net: SpikingNetwork, fitted: dict, test: dict, *, progress: bool | None = None
) -> dict[str, float]:
    """Score ``net`` as ``assign`` and ``evaluate`` do, writing nothing: present the digits of
    ``fitted`` (assignment digits: ``images`` ``[D, P]``, ``indices``, ``labels``) and of ``test``
    with learning off, assign labels and fit the linear read-out on ``fitted``'s counts, predict
    ``test``. Returns ``{"all_activity", "proportion", "linear"}`` (fractions of ``test`` right)
    and ``spikes_per_digit`` (mean over ``test``)."""
    from stdp_pipeline.sim.present import respond
    from stdp_pipeline.stages.assign import assign_labels
    from stdp_pipeline.stages.readout import fit_readout

    found = {}
    for name, split, stage in (("assign", fitted, "assign"), ("test", test, "evaluate")):
        with Progress(len(split["indices"]), name, enabled=progress) as bar:
            found[name] = respond(
                net, split["images"], split["indices"], stage, progress=bar.update
            )[0]
    labels = test["labels"].astype(np.int64)
    assignment = assign_labels(found["assign"], fitted["labels"])
    scores = {s: float((predict(found["test"], assignment, s) == labels).mean()) for s in SCHEMES}
    readout = fit_readout(found["assign"], fitted["labels"])
    scores["linear"] = float((readout.predict(found["test"]) == labels).mean())
    scores["spikes_per_digit"] = float(found["test"].sum(axis=1).mean())
    return scores
