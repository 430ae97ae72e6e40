"""Accuracy against training progress: every checkpoint of a run scored on a few digits.

A training run keeps a checkpoint every ``train.checkpoint_every`` digits and at its end
(:mod:`.train`). :func:`score_checkpoints` builds the network once and, for each checkpoint, sets
its learned state (weights ``[P, N]``, thresholds ``[N]``), presents the first ``digits`` digits
of the run's assignment slice and of its test slice with learning off, and scores them as
``assign`` and ``evaluate`` do (:func:`~.evaluate.score_network`: labels and the linear read-out
from the assignment digits, accuracy on the test digits). Nothing in the run is changed;
:func:`plot_accuracy_curve` draws the table. With ``digits`` equal to both slices, the row of the
last checkpoint is what ``assign`` + ``evaluate`` record for the final model (a test).

Cost: ``2 x digits`` inference presentations per checkpoint (at 6,400 neurons about 37 digits/s
on 2 cores: 1,000 digits each, 12 checkpoints, about 11 minutes).
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import artefacts
from stdp_pipeline.io.rundir import RunDir

#: Columns of the table :func:`score_checkpoints` returns (accuracies in %).
COLUMNS = (
    "position", "passes", "all_activity", "proportion", "linear", "spikes_per_digit", "wall_s",
    "digits",
)  # fmt: skip


def score_checkpoints(
    run: RunDir,
    *,
    digits: int = 1000,
    positions: Sequence[int] | None = None,
    progress: bool | None = None,
) -> pd.DataFrame:
    """Score the checkpoints of ``run`` (all, or those at ``positions``) on the first ``digits``
    assignment and test digits. Returns one row per checkpoint (:data:`COLUMNS`): position
    (digits trained), passes (position / digits per pass), the accuracies in %, test spikes per
    digit, seconds taken, the digits scored on. Raises :class:`PipelineError` for a run without
    checkpoints, an unknown position, or ``digits`` outside ``1 .. min(assignment, test
    digits)``."""
    from stdp_pipeline.sim.network import SpikingNetwork
    from stdp_pipeline.stages.evaluate import score_network

    found = run.checkpoints()
    if not found:
        raise PipelineError(
            f"{run} has no checkpoints: `stdp-pipeline train` writes one every "
            "train.checkpoint_every digits and at the end"
        )
    wanted = sorted(found) if positions is None else sorted(set(positions))
    missing = [p for p in wanted if p not in found]
    if missing:
        raise PipelineError(
            f"{run} has no checkpoint at position {missing[0]}: "
            f"available positions are {', '.join(str(p) for p in found)}"
        )
    config = run.config()
    fitted = artefacts.load_encoded(run, "assign", config)
    test = artefacts.load_encoded(run, "test", config)
    most = min(len(fitted["indices"]), len(test["indices"]))
    if not 1 <= digits <= most:
        raise PipelineError(
            f"--digits {digits}: must be between 1 and {most} (the assignment slice has "
            f"{len(fitted['indices'])} digits, the test slice {len(test['indices'])})"
        )
    fitted = {k: v[:digits] for k, v in fitted.items()}
    test = {k: v[:digits] for k, v in test.items()}
    n_inputs = fitted["images"].shape[1]
    net = SpikingNetwork(config, n_inputs)
    rows = []
    for position in wanted:
        t0 = time.perf_counter()
        ckpt = artefacts.load_checkpoint(run, position, config, n_inputs)
        net.set_state({"weights": ckpt["weights"], "theta": ckpt["theta"]})
        scores = score_network(net, fitted, test, progress=progress)
        rows.append(
            {
                "position": position,
                "passes": round(position / int(ckpt["digits_per_epoch"]), 4),
                **{k: round(100 * scores[k], 2) for k in ("all_activity", "proportion", "linear")},
                "spikes_per_digit": round(scores["spikes_per_digit"], 2),
                "wall_s": round(time.perf_counter() - t0, 1),
                "digits": digits,
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def accuracy_axis_range(values: np.ndarray) -> tuple[float, float]:
    """The y range (%) that shows accuracies ``values`` (any shape, in %) at a glance: from
    ``lowest - pad`` to ``highest + pad`` with ``pad = max(0.5, 0.1 * (highest - lowest))``,
    rounded out to whole percent and kept within [0, 100]. A curve of late checkpoints (94.5 to
    95.5 %) gets 94-96 % rather than a flat line near the top of 0-100 %. Cells that are not
    numbers (NaN) are left out; with none left the range is 0-100 %."""
    finite = np.asarray(values, float)
    finite = finite[np.isfinite(finite)]
    if finite.size == 0:
        return 0.0, 100.0
    lowest, highest = float(finite.min()), float(finite.max())
    pad = max(0.5, 0.1 * (highest - lowest))
    return max(0.0, math.floor(lowest - pad)), min(100.0, math.ceil(highest + pad))


def plot_accuracy_curve(
    table: pd.DataFrame, path: str | os.PathLike[str], title: str, digits: int
) -> None:
    """Accuracy (%) of each scheme against the digits trained, one marker per checkpoint, a
    vertical line at each full pass within the checkpoints scored; the y axis spans the curves
    (:func:`accuracy_axis_range`), with chance (10 %) dotted when it is in view."""
    import matplotlib.ticker

    from stdp_pipeline.stages.plots import _save, plt

    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    x = table["position"].to_numpy()
    for column, label in (
        ("all_activity", "all-activity voting"),
        ("proportion", "proportion voting"),
        ("linear", "linear read-out"),
    ):
        ax.plot(x, table[column], marker="o", ms=3.5, label=label)
    values = table[["all_activity", "proportion", "linear"]].to_numpy(float)
    floor, top = accuracy_axis_range(values)
    if floor < 10.0:
        ax.axhline(10.0, color="0.6", ls=":", lw=1, label="chance")
    if len(x) and table["passes"].iloc[-1] > 0:
        per_pass = round(x[-1] / table["passes"].iloc[-1])  # digits per pass
        for k in range(max(1, math.ceil(x.min() / per_pass)), int(x.max() // per_pass) + 1):
            ax.axvline(k * per_pass, color="0.8", lw=1)
    ax.set_xlabel("digits trained (grey lines: full passes)")
    ax.xaxis.set_major_formatter(matplotlib.ticker.StrMethodFormatter("{x:,.0f}"))
    ax.set_ylabel(f"accuracy on {digits:,} test digits (%)")
    ax.set_ylim(floor, top)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(f"{title}\nlabels and read-out from {digits:,} assignment digits", fontsize=10)
    _save(fig, path)
