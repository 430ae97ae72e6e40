"""Learning curves of a training run: ``curves.png`` from ``train_curve.csv`` and ``train_log.csv``.

Six panels against the number of digits presented (a vertical dotted line marks each new epoch):

* excitatory spikes per digit: every digit (faint) and a rolling mean;
* re-presentations per digit (digits that drew fewer than ``encoding.min_spikes`` spikes are
  shown again with a stronger input), rolling mean;
* adaptive threshold theta, mean and maximum over the neurons, and (dashed) the mean that the
  layer's firing holds (the health signal ``theta_budget``, where the run has it);
* input weights, mean and standard deviation;
* largest input weight;
* training speed, digits per second of each chunk.

Training health flags (:mod:`stdp_pipeline.stages.health`, the ``flag_*`` columns of
``train_curve.csv``) are shaded over the chunks that raised them, each on the panel it concerns
(thresholds on theta, retry cap on re-presentations, spikes, silent and dominant neurons on spikes
per digit, alike fields on the weights, stalled weights on the largest weight), and listed under
the panels with the digit where each was first raised. Runs trained before the flags existed
have no such columns and no shading.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import artefacts
from stdp_pipeline.io.rundir import RunDir, locked
from stdp_pipeline.stages import health
from stdp_pipeline.stages.train import CURVE_COLUMNS, HEALTH_COLUMNS

#: Columns of ``train_log.csv`` (written by the ``train`` stage) that the panels read.
LOG_COLUMNS = ("position", "epoch", "spikes", "retries")


#: The panel that shows each training health flag (see :func:`plot_curves`), and its colour.
FLAG_PANELS = {
    "thresholds_uniform": ("theta", "#d62728"),
    "retry_cap": ("retries", "#ff7f0e"),
    "spikes_high": ("spikes", "#d62728"),
    "spikes_low": ("spikes", "#9467bd"),
    "silent_neurons": ("spikes", "#8c564b"),
    "dominant_neuron": ("spikes", "#e377c2"),
    "weights_stalled": ("weight_max", "#7f7f7f"),
    "fields_alike": ("weights", "#bcbd22"),
    "thresholds_at_rest": ("theta", "#17becf"),
    "theta_budget_low": ("theta", "#9467bd"),
}


def flag_spans(curve: pd.DataFrame, column: str) -> list[tuple[float, float]]:
    """The stretches of digits over which flag ``column`` was raised: ``[(start, end), ...]``,
    a chunk running from the previous row's position (0 for the first row) to its own."""
    if column not in curve.columns or not len(curve):
        return []
    ends = curve["position"].to_numpy(float)
    starts = np.concatenate([[0.0], ends[:-1]])
    raised = curve[column].fillna(0).to_numpy() > 0
    spans: list[tuple[float, float]] = []
    for start, end, on in zip(starts, ends, raised, strict=True):
        if not on:
            continue
        if spans and spans[-1][1] == start:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    return spans


def rolling_window(n: int) -> int:
    """Digits averaged by the rolling means: about 1 % of the run, between 1 and 1,000."""
    return int(np.clip(round(n / 100), 1, 1000))


def plot_curves(
    curve: pd.DataFrame,
    log: pd.DataFrame,
    path: str | os.PathLike[str],
    title: str,
    *,
    theta_unit: str = "mV",
) -> None:
    """Draw the six panels (see the module docstring) to ``path`` (PNG, atomically).

    ``curve`` has the columns :data:`CURVE_COLUMNS` (one row per chunk, ``position`` = digits
    presented at the chunk's end), ``log`` the columns :data:`LOG_COLUMNS` (one row per digit)."""
    from matplotlib.ticker import FuncFormatter

    from stdp_pipeline.stages.plots import _save, plt

    base = tuple(c for c in CURVE_COLUMNS if c not in HEALTH_COLUMNS)  # older runs lack those
    for frame, cols, name in ((curve, base, "train_curve"), (log, LOG_COLUMNS, "log")):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise PipelineError(f"{name} lacks the column(s) {', '.join(missing)}")
    window = rolling_window(len(log))
    x_log = log["position"].to_numpy() + 1
    x = curve["position"].to_numpy()
    mk = {"marker": "o", "ms": 3} if len(curve) <= 60 else {}  # few chunks: show each one
    fig, axes = plt.subplots(3, 2, figsize=(12, 10), sharex=True)
    (a_spk, a_ret), (a_th, a_w), (a_wmax, a_rate) = axes

    if window > 1:
        a_spk.plot(
            x_log, log["spikes"], ".", ms=2, color="#8a9bb3", alpha=0.35, mew=0, label="each digit"
        )
    a_spk.plot(
        x_log,
        log["spikes"].rolling(window, min_periods=1).mean(),
        color="#0b3d91",
        lw=1.6,
        label=f"rolling mean of {window} digits" if window > 1 else "each digit",
    )
    a_spk.set_ylabel("excitatory spikes per digit")
    a_spk.set_title("spikes per digit")
    top = float(np.nanpercentile(log["spikes"], 99.5)) if len(log) else 1.0
    a_spk.set_ylim(0, max(1.0, 1.1 * top))

    a_ret.plot(x_log, log["retries"].rolling(window, min_periods=1).mean(), color="#b5451b", lw=1.6)
    a_ret.set_ylabel(
        f"re-presentations per digit\n(rolling mean of {window})"
        if window > 1
        else "re-presentations per digit"
    )
    a_ret.set_title("digits shown again for too few spikes")
    a_ret.set_ylim(bottom=0)

    a_th.plot(x, curve["theta_mean"], color="#0b3d91", lw=1.6, **mk, label="mean")
    a_th.plot(x, curve["theta_max"], color="#b5451b", lw=1.6, **mk, label="max")
    if "theta_budget" in curve.columns and curve["theta_budget"].notna().any():
        a_th.plot(
            x, curve["theta_budget"], color="#0b3d91", ls="--", lw=1.2,
            label="mean the firing holds (budget)",
        )  # fmt: skip
    a_th.set_ylabel(f"theta ({theta_unit})" if theta_unit else "theta")
    a_th.set_title("adaptive threshold theta over the neurons")

    mean, std = curve["weight_mean"], curve["weight_std"]
    a_w.plot(x, mean, color="#0b3d91", lw=1.6, **mk, label="mean")
    a_w.fill_between(x, mean - std, mean + std, color="#9db4d6", alpha=0.5, label="mean ± std")
    a_w.set_ylabel("input weight")
    a_w.set_title("input weights: mean and standard deviation")
    a_w.set_ylim(0, 1.1 * max(float((mean + std).max()), 1e-9))

    a_wmax.plot(x, curve["weight_max"], color="#b5451b", lw=1.6, **mk)
    a_wmax.set_ylabel("largest input weight")
    a_wmax.set_title("largest input weight")
    a_wmax.set_ylim(0, 1.1 * max(float(curve["weight_max"].max()), 1e-9))

    a_rate.plot(x, curve["digits_per_s"], color="#2f7d32", lw=1.2, **mk)
    a_rate.set_ylabel("digits per second")
    a_rate.set_title("training speed (per chunk; the first includes compiling)")
    a_rate.set_ylim(bottom=0)

    panels = {
        "spikes": a_spk, "retries": a_ret, "theta": a_th, "weights": a_w, "weight_max": a_wmax,
    }  # fmt: skip
    raised, shaded = [], set()
    for check in health.CHECKS:
        spans = flag_spans(curve, check.column)
        if not spans:
            continue
        panel, colour = FLAG_PANELS.get(check.name, ("spikes", "#d62728"))
        for i, (start, end) in enumerate(spans):
            panels[panel].axvspan(
                start, end, color=colour, alpha=0.18, lw=0,
                label=f"flag: {check.label}" if i == 0 else None,
            )  # fmt: skip
        shaded.add(panel)
        first = float(curve.loc[curve[check.column].fillna(0) > 0, "position"].iloc[0])
        raised.append(f"{check.label} (first at digit {first:,.0f})")
    for panel in shaded & {"retries", "weight_max"}:  # the others have a legend anyway
        panels[panel].legend(fontsize=8, loc="best")
    if raised:
        fig.text(
            0.01, 0.005, "training health flags (shaded): " + "; ".join(raised),
            ha="left", fontsize=8, color="#b00020",
        )  # fmt: skip

    epochs = log.groupby("epoch")["position"].min().to_numpy()[1:] if len(log) else []
    for ax in axes.flat:
        for start in epochs:
            ax.axvline(start, color="0.5", ls=":", lw=1)
        ax.grid(alpha=0.3)
        ax.tick_params(labelsize=9)
    for ax in (a_spk, a_th, a_w):
        ax.legend(fontsize=8, loc="best")
    for ax in axes[-1]:
        ax.set_xlabel("digits presented")
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}"))
    if len(epochs):
        fig.text(0.99, 0.005, "dotted lines: start of a new epoch", ha="right", fontsize=8)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout(rect=(0, 0.01, 1, 0.97))
    _save(fig, path)


@locked("curves")
def run_curves(run: RunDir) -> str:
    """The ``curves`` stage: draw ``curves.png`` of a trained run (needs the ``train`` stage).
    Returns the path written."""
    config = run.config()
    run.require("train", for_stage="curves")
    curve = _read_csv(run, "train_curve.csv")
    log = _read_csv(run, "train_log.csv")
    if curve.empty or log.empty:
        raise PipelineError(f"{run}/train_curve.csv or train_log.csv has no rows: train again")
    info = run.manifest()["stages"]["train"]
    epochs = int(log["epoch"].max()) + 1
    title = (
        f"{run.name}: {config.name}, {config.network.n_excitatory:,} excitatory neurons; "
        f"learning curves over {len(log):,} digits ({epochs} epoch{'s' if epochs > 1 else ''}), "
        f"{float(info.get('wall_s', 0.0)) / 60:.1f} min"
    )
    from stdp_pipeline.sim import registry

    unit = registry.neuron(config.network.neuron).THETA_UNIT
    with run.stage("curves") as record:
        plot_curves(curve, log, run.file("curves.png"), title, theta_unit=unit)
        record.add_output("curves.png")
    return str(run.file("curves.png"))


def _read_csv(run: RunDir, rel: str) -> pd.DataFrame:
    """``train_curve.csv`` or ``train_log.csv``, with the columns the panels read, each numeric."""
    columns, required = (
        (CURVE_COLUMNS, ("position",)) if rel == "train_curve.csv" else (LOG_COLUMNS, LOG_COLUMNS)
    )
    hint = f": run `stdp-pipeline train {run}` again"
    return artefacts.read_table(run, rel, columns, hint, required=required)
