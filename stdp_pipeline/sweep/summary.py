"""What a sweep found: one row per run, one row per point, the best point, and the plot.

Everything is read from the sweep folder (``sweep.json`` and the run directories), so the
summary of an interrupted sweep, of a resumed one, or of one still running elsewhere is as
complete as the folder. Written by :func:`write_summary` into the sweep folder:

* ``runs.csv``: one row per run (point, seed, status ``finished``/``failed``/``pending``, the
  swept values, the three accuracies, training time, the checkpoint a rerun resumed from, the
  TensorFlow threads, the host, the one-line error);
* ``summary.csv``: one row per point, ranked: the swept values, finished and failed seeds, the
  mean and standard deviation over seeds (``std``, with ``ddof=1``: empty for a single seed) of
  the ranking metric (``accuracy_mean``, ``accuracy_std``) and of each accuracy, the mean
  training time, the first error; sorted by ``accuracy_mean``, points without a result last;
* ``summary.md``: the same table for people, accuracies in percent;
* ``accuracy.png``: accuracy against each swept key, each run a dot, each point its mean and
  spread over seeds.

Accuracies are fractions in the CSV files, as in ``metrics.json``. Nothing here imports Ray.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import atomic
from stdp_pipeline.sweep import FAILED_FILE, SWEEP_FILE, WORKER_FILE

#: The accuracies of ``metrics.json``, in the order the tables show them.
SCHEMES = ("all_activity", "proportion", "linear")
SCHEME_NAMES = {"all_activity": "all activity", "proportion": "proportion", "linear": "linear"}
RUN_COLUMNS = (
    "point",
    "seed",
    "status",
    *SCHEMES,
    "train_wall_s",
    "resumed_from",
    "tf_threads",
    "host",
    "error",
    "path",
)


def read_plan(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The sweep's ``sweep.json``; :class:`PipelineError` if ``folder`` is not a sweep folder."""
    path = Path(folder) / SWEEP_FILE
    if not path.is_file():
        raise PipelineError(f"{folder} is not a sweep folder (it has no {SWEEP_FILE})")
    data = _json(path)
    if not isinstance(data, dict) or "runs" not in data:
        raise PipelineError(f"{path}: not a sweep record (no 'runs'); run the sweep again")
    return data


def run_status(run_dir: Path, stages: Sequence[str]) -> str:
    """``finished`` when the run directory records every stage of ``stages`` as done (and not
    stale), ``failed`` when its last task failed, else ``pending``."""
    from stdp_pipeline.io.rundir import CONFIG_FILE, MANIFEST_FILE, RunDir

    if (run_dir / CONFIG_FILE).is_file() and (run_dir / MANIFEST_FILE).is_file():
        run = RunDir(run_dir)
        try:
            if all(run.stage_done(s) for s in stages):
                return "finished"
        except PipelineError:
            pass
    return "failed" if (run_dir / FAILED_FILE).is_file() else "pending"


def collect_runs(folder: str | os.PathLike[str]) -> pd.DataFrame:
    """One row per run of the sweep in ``folder`` (columns :data:`RUN_COLUMNS` with the swept
    keys after ``status``), in the order of ``sweep.json``."""
    folder = Path(folder)
    plan = read_plan(folder)
    keys = [a["key"] for a in plan.get("axes", [])]
    overrides = {p["name"]: p["overrides"] for p in plan.get("points", [])}
    stages = plan.get("stages", ["evaluate"])
    rows = []
    for entry in plan["runs"]:
        run_dir = folder / entry["path"]
        status = run_status(run_dir, stages)
        row: dict[str, Any] = {
            "point": entry["point"],
            "seed": int(entry["seed"]),
            "status": status,
            **{k: overrides.get(entry["point"], {}).get(k) for k in keys},
            **dict.fromkeys(SCHEMES, np.nan),
            "train_wall_s": np.nan,
            "resumed_from": np.nan,
            "tf_threads": np.nan,
            "host": "",
            "error": "",
            "path": entry["path"],
        }
        worker = _json_or_none(run_dir / WORKER_FILE)
        if worker:
            row["tf_threads"] = worker.get("tf_threads", np.nan)
            row["host"] = worker.get("host", "")
        if status == "finished":
            metrics = _json_or_none(run_dir / "metrics.json") or {}
            for scheme in SCHEMES:
                row[scheme] = (metrics.get("accuracy") or {}).get(scheme, np.nan)
            row["train_wall_s"] = metrics.get("train_wall_s", np.nan)
            manifest = _json_or_none(run_dir / "manifest.json") or {}
            train = manifest.get("stages", {}).get("train", {})
            row["resumed_from"] = train.get("resumed_from", np.nan)
        elif status == "failed":
            failed = _json_or_none(run_dir / FAILED_FILE) or {}
            row["error"] = str(failed.get("error", "failed (no message)"))
        rows.append(row)
    columns = ["point", "seed", "status", *keys, *RUN_COLUMNS[3:]]
    frame = pd.DataFrame(rows, columns=columns)
    for col in (*SCHEMES, "train_wall_s", "resumed_from", "tf_threads"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    return frame


def summarize(runs: pd.DataFrame, keys: Sequence[str], metric: str) -> pd.DataFrame:
    """One row per point of ``runs`` (from :func:`collect_runs`): ``rank``, ``point``, the swept
    ``keys``, ``seeds`` (finished), ``failed``, ``pending``, ``accuracy_mean``/``accuracy_std``
    (of ``metric``), ``<scheme>_mean``/``<scheme>_std`` for each scheme, ``train_wall_s_mean``
    and ``error`` (the first failed run's). Sorted by ``accuracy_mean``, best first; points
    without a finished run last (no rank)."""
    rows = []
    for point, group in runs.groupby("point", sort=False):
        done = group[group["status"] == "finished"]
        errors = group.loc[group["status"] == "failed", "error"]
        row: dict[str, Any] = {
            "point": point,
            **{k: group[k].iloc[0] for k in keys},
            "seeds": len(done),
            "failed": int((group["status"] == "failed").sum()),
            "pending": int((group["status"] == "pending").sum()),
            "accuracy_mean": done[metric].mean() if len(done) else np.nan,
            "accuracy_std": done[metric].std() if len(done) > 1 else np.nan,
        }
        for scheme in SCHEMES:
            row[f"{scheme}_mean"] = done[scheme].mean() if len(done) else np.nan
            row[f"{scheme}_std"] = done[scheme].std() if len(done) > 1 else np.nan
        row["train_wall_s_mean"] = done["train_wall_s"].mean() if len(done) else np.nan
        row["error"] = errors.iloc[0] if len(errors) else ""
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame(columns=["rank", "point", *keys, "seeds", "failed", "accuracy_mean"])
    frame = frame.sort_values("accuracy_mean", ascending=False, na_position="last", kind="stable")
    ranked = frame["accuracy_mean"].notna()
    frame.insert(0, "rank", pd.array([None] * len(frame), dtype="Int64"))
    frame.loc[ranked, "rank"] = range(1, int(ranked.sum()) + 1)
    return frame.reset_index(drop=True)


def best_point(folder: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The best point of the sweep in ``folder`` by its metric: ``{"sweep", "point", "metric",
    "runs" (run directories of its finished seeds), "mean", "std" (per scheme, fractions),
    "points" (how many points have a result), "seeds" (how many), "seed_list" (which)}``; None
    when no run has finished."""
    folder = Path(folder)
    plan = read_plan(folder)
    runs = collect_runs(folder)
    keys = [a["key"] for a in plan.get("axes", [])]
    metric = plan.get("metric", "all_activity")
    table = summarize(runs, keys, metric)
    if table.empty or pd.isna(table["accuracy_mean"].iloc[0]):
        return None
    top = table.iloc[0]
    done = runs[(runs["point"] == top["point"]) & (runs["status"] == "finished")]
    return {
        "sweep": plan.get("name", folder.name),
        "point": str(top["point"]),
        "metric": metric,
        "runs": [folder / p for p in done["path"]],
        "mean": {s: float(top[f"{s}_mean"]) for s in SCHEMES},
        "std": {s: float(top[f"{s}_std"]) for s in SCHEMES},
        "points": int(table["accuracy_mean"].notna().sum()),
        "seeds": int(top["seeds"]),
        "seed_list": sorted(int(seed) for seed in done["seed"]),
    }


def write_summary(folder: str | os.PathLike[str]) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Write ``runs.csv``, ``summary.csv``, ``summary.md`` and ``accuracy.png`` into the sweep
    folder (atomically). Returns the per-point table and the paths written."""
    folder = Path(folder)
    plan = read_plan(folder)
    axes = plan.get("axes", [])
    keys = [a["key"] for a in axes]
    metric = plan.get("metric", "all_activity")
    runs = collect_runs(folder)
    table = summarize(runs, keys, metric)
    paths = {
        "summary": folder / "summary.csv",
        "runs": folder / "runs.csv",
        "markdown": folder / "summary.md",
        "plot": folder / "accuracy.png",
    }
    atomic.write_text(paths["runs"], runs.to_csv(index=False))
    atomic.write_text(paths["summary"], table.to_csv(index=False))
    atomic.write_text(paths["markdown"], markdown(plan, table, runs))
    plot_sweep(runs, table, axes, metric, paths["plot"], _title(plan, runs))
    return table, paths


def markdown(plan: Mapping[str, Any], table: pd.DataFrame, runs: pd.DataFrame) -> str:
    """The per-point table as Markdown: accuracies in percent, ``mean ± std`` over seeds."""
    keys = [a["key"] for a in plan.get("axes", [])]
    metric = plan.get("metric", "all_activity")
    head = ["rank", "point", *keys, "seeds", "failed", *(SCHEME_NAMES[s] for s in SCHEMES)]
    head += ["training time", "error"]
    lines = [
        f"# Sweep {plan.get('name', '')}",
        "",
        f"Base `{plan.get('base', '')}`; {len(table)} point(s) x {len(plan.get('seeds', []))} "
        f"seed(s) = {len(runs)} run(s): {_counts(runs)}. Ranked by {SCHEME_NAMES[metric]} "
        "test accuracy (mean ± standard deviation over seeds).",
        "",
        _md_row(head),
        _md_row(
            ["---:", "---", *(["---:"] * len(keys)), "---:", "---:", "---:", "---:", "---:"]
            + ["---:", "---"]
        ),  # fmt: skip
    ]
    for _, r in table.iterrows():
        cells = [
            "" if pd.isna(r["rank"]) else int(r["rank"]),
            f"`{r['point']}`",
            *(_plain(r[k]) for k in keys),
            int(r["seeds"]),
            int(r["failed"]),
            *(_pct(r[f"{s}_mean"], r[f"{s}_std"], bold=s == metric) for s in SCHEMES),
            _seconds(r["train_wall_s_mean"]),
            r["error"],
        ]
        lines.append(_md_row(cells))
    return "\n".join(lines) + "\n"


def plot_sweep(
    runs: pd.DataFrame,
    table: pd.DataFrame,
    axes: Sequence[Mapping[str, Any]],
    metric: str,
    path: str | os.PathLike[str],
    title: str,
) -> None:
    """Accuracy (``metric``, percent) against each swept key, one panel per key: every finished
    run a small dot, every point its mean over seeds with the standard deviation as an error bar.
    Keys given on a log scale (``logrange``, ``loguniform``) get a log axis; text and true/false
    values are spread evenly. With nothing swept, one panel against the seed."""
    from stdp_pipeline.stages.plots import _save, plt

    done = runs[runs["status"] == "finished"]
    panels = list(axes) or [{"key": "seed", "log": False}]
    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig, grid = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    for ax in grid.flat[len(panels) :]:
        ax.set_visible(False)
    for ax, axis in zip(grid.flat, panels, strict=False):
        key = axis["key"]
        source = done if key == "seed" else table[table["seeds"] > 0]
        values = list(dict.fromkeys(runs[key])) if key in runs else []
        numeric = all(_is_number(v) for v in values) and values
        position = (lambda v: float(v)) if numeric else (lambda v, vs=values: vs.index(v))
        if not done.empty:
            ax.scatter(
                [position(v) for v in done[key]],
                100 * done[metric],
                s=12,
                color="#999999",
                alpha=0.7,
                label="one run",
                zorder=2,
            )
        if key != "seed" and not source.empty:
            ax.errorbar(
                [position(v) for v in source[key]],
                100 * source["accuracy_mean"],
                yerr=100 * source["accuracy_std"].fillna(0.0),
                fmt="o",
                color="#1f5fa8",
                ecolor="#1f5fa8",
                capsize=3,
                label="point: mean ± std over seeds",
                zorder=3,
            )
        if numeric and (axis.get("log") or _spans_decades(values)):
            ax.set_xscale("log")
        if not numeric:
            ax.set_xticks(range(len(values)))
            ax.set_xticklabels([_plain(v) for v in values], rotation=30, ha="right")
        ax.set_xlabel(key)
        ax.set_ylabel(f"{SCHEME_NAMES[metric]} accuracy (%)")
        ax.grid(alpha=0.3)
    handles, labels = grid.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=2, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    _save(fig, path)


# --- helpers -------------------------------------------------------------------------------------
def _title(plan: Mapping[str, Any], runs: pd.DataFrame) -> str:
    metric = plan.get("metric", "all_activity")
    return (
        f"sweep {plan.get('name', '')} (base {plan.get('base', '')}): "
        f"{SCHEME_NAMES[metric]} test accuracy; {_counts(runs)}"
    )


def _counts(runs: pd.DataFrame) -> str:
    counts = runs["status"].value_counts()
    parts = [f"{int(counts.get(s, 0))} {s}" for s in ("finished", "failed", "pending")]
    return ", ".join(p for p in parts if not p.startswith("0 ")) or "no runs"


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise PipelineError(f"{path} cannot be read ({err})") from None


def _json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _spans_decades(values: Sequence[Any]) -> bool:
    """Whether positive numbers span a factor of 100 or more (then a log axis reads better)."""
    numbers = [float(v) for v in values]
    return bool(numbers) and min(numbers) > 0 and max(numbers) / min(numbers) >= 100


def _plain(value: Any) -> str:
    from stdp_pipeline.sweep.spec import format_value

    if isinstance(value, np.generic):
        value = value.item()
    return format_value(value)


def _pct(mean: float, std: float, bold: bool = False) -> str:
    if pd.isna(mean):
        return ""
    text = f"{100 * mean:.2f} %" + ("" if pd.isna(std) else f" ± {100 * std:.2f}")
    return f"**{text}**" if bold else text


def _seconds(value: float) -> str:
    if pd.isna(value):
        return ""
    return f"{value:.0f} s" if value < 120 else f"{value / 60:.1f} min"


def _md_row(cells: Sequence[object]) -> str:
    text = [str(c).replace("|", "\\|").replace("\n", " ") for c in cells]
    return "| " + " | ".join(text) + " |"
