"""The accuracy comparison: published MNIST results beside the runs this project measured.

Rows (:func:`comparison_table`, a pandas DataFrame, one row per result):

* every published result of ``published.csv`` (shipped with the package; the seed slides' table
  plus Diehl & Cook's four network sizes): ``source = "published"``;
* every run directory found under the given folders (a folder holding ``metrics.json`` and
  ``config.json``), one row per voting scheme: ``source = "measured"``, with the model (config
  name), neurons, training digits, voting scheme, accuracy and wall times from its
  ``metrics.json``;
* the raw-pixel baseline of each run's digits (``metrics["pixels_linear"]``, the same logistic
  regression as the linear read-out, on the pixels): ``source = "baseline"``, one row per set
  of fitting and test digits;
* for a sweep folder (one holding ``sweep.json``, :mod:`stdp_pipeline.sweep`), by default
  (``sweeps="best"``) not each of its runs but its best point: one row per voting scheme, the
  mean over the point's seeds (:func:`sweep_rows`); ``sweeps="all"`` lists every run,
  ``"none"`` leaves sweeps out.

Columns: ``source, group, reference, year, model, neurons, train_digits, scheme, accuracy``
(fraction), ``train_wall_s, eval_wall_s, run, note``. :func:`markdown_table` renders it without
``tabulate``; :func:`plot_comparison` draws a horizontal bar chart grouped by method family, with
the measured rows hatched and starred. :func:`write_comparison` writes ``comparison.md``,
``comparison.csv`` and ``comparison.png`` atomically.
"""

from __future__ import annotations

import dataclasses
import importlib.resources
import math
import os
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import atomic

PUBLISHED_COLUMNS = ("group", "reference", "year", "neurons", "accuracy", "note")
COLUMNS = (
    "source",
    "group",
    "reference",
    "year",
    "model",
    "neurons",
    "train_digits",
    "scheme",
    "accuracy",
    "train_wall_s",
    "eval_wall_s",
    "run",
    "note",
)
#: The family the measured rows belong to (all of this project's models learn by local STDP).
MEASURED_GROUP = "STDP (unsupervised, local)"
MEASURED_REFERENCE = "this project (stdp_pipeline)"
SCHEME_NAMES = {"all_activity": "all activity", "proportion": "proportion weighting"}
#: The raw-pixel baseline of every evaluated run (``metrics["pixels_linear"]``): the run's linear
#: read-out, fitted on the raw pixels of the same digits. A read-out row is worth only as much as
#: it beats this row; runs on the same digits share one row.
BASELINE_GROUP = "Baseline (no network)"
BASELINE_REFERENCE = "logistic regression on the 784 raw pixels"


def load_published(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """The published results (``published.csv`` of the package unless ``path`` is given), with
    the columns :data:`PUBLISHED_COLUMNS`; ``neurons`` is a nullable integer, ``accuracy`` a
    fraction."""
    if path is None:
        source = importlib.resources.files("stdp_pipeline").joinpath("published.csv")
        with source.open("r", encoding="utf-8") as fh:
            frame = pd.read_csv(fh, dtype={"neurons": "Int64", "year": "Int64"})
    else:
        frame = pd.read_csv(path, dtype={"neurons": "Int64", "year": "Int64"})
    missing = [c for c in PUBLISHED_COLUMNS if c not in frame.columns]
    if missing:
        raise PipelineError(f"published results lack the column(s) {', '.join(missing)}")
    frame["note"] = frame["note"].fillna("")
    return frame.loc[:, list(PUBLISHED_COLUMNS)]


def find_runs(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Run directories under ``folders`` (recursively, the folders themselves included): every
    folder holding both ``metrics.json`` and ``config.json``, sorted, without duplicates.
    Symbolic links to folders are followed (a run kept elsewhere and linked into ``results/``
    counts); a run reached twice (a link beside its target, a link loop) counts once, under the
    first path the sorted walk meets.

    Raises :class:`PipelineError` for a folder that does not exist."""
    folders = [Path(folder) for folder in folders]
    for root in folders:
        if not root.is_dir():
            raise PipelineError(f"{root} is not a folder: give folders that hold run directories")
    found: set[Path] = set()
    for here, dirs, files in _walk(folders):
        if "metrics.json" in files and "config.json" in files:
            found.add(Path(here))
            dirs[:] = [d for d in dirs if d not in ("checkpoints", "encoded", "tensorboard")]
    return sorted(found)


def _walk(folders: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk`` (top down) over each of ``folders`` with links to folders followed and each
    real folder walked once (a link beside its target, a link loop); sub-folders in sorted order,
    hidden ones left out. The caller may prune the yielded ``dirs`` in place."""
    visited: set[str] = set()  # real paths walked already
    for folder in folders:
        for here, dirs, files in os.walk(Path(folder), followlinks=True):
            real = os.path.realpath(here)
            if real in visited:
                dirs[:] = []
                continue
            visited.add(real)
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            yield here, dirs, files


def measured_rows(run_dir: str | os.PathLike[str], *, seed: bool = True) -> list[dict]:
    """One row per voting scheme of the run directory ``run_dir`` (from its ``metrics.json``
    and ``config.json``); the note is :func:`run_notes` (``seed``: with the run's seed). Raises
    :class:`PipelineError` if either cannot be read, or if the run's manifest says its
    ``evaluate`` stage is stale (a stage before it ran again since)."""
    from stdp_pipeline.io.artefacts import check_metrics

    path = Path(run_dir)
    _refuse_stale(path)
    metrics = _read_json(path / "metrics.json")
    config = _read_json(path / "config.json")
    check_metrics(metrics, f"{path}/metrics.json", f": run `stdp-pipeline evaluate {path}` again")
    accuracy = metrics["accuracy"]
    notes = run_notes(config if isinstance(config, dict) else {}, metrics, seed=seed)
    rows = []
    for scheme, value in accuracy.items():
        rows.append(
            {
                "source": "measured",
                "group": MEASURED_GROUP,
                "reference": MEASURED_REFERENCE,
                "year": pd.NA,
                "model": metrics.get("config") or config.get("name", ""),
                "neurons": metrics.get("n_excitatory"),
                "train_digits": metrics.get("train_digits"),
                "scheme": SCHEME_NAMES.get(scheme, scheme),
                "accuracy": float(value),
                "train_wall_s": metrics.get("train_wall_s"),
                "eval_wall_s": metrics.get("wall_s"),
                "run": str(path),
                "note": "; ".join(notes),
            }
        )
    pixels = metrics.get("pixels_linear")
    if isinstance(pixels, (int, float)) and 0.0 <= pixels <= 1.0:
        test_digits = metrics.get("test_digits")
        test = f"{test_digits:,}" if test_digits is not None else "the same"
        rows.append(
            {
                "source": "baseline",
                "group": BASELINE_GROUP,
                "reference": BASELINE_REFERENCE,
                "year": pd.NA,
                "model": "raw pixels",
                "neurons": pd.NA,
                "train_digits": metrics.get("assign_digits"),
                "scheme": "linear",
                "accuracy": float(pixels),
                "train_wall_s": np.nan,
                "eval_wall_s": np.nan,
                "run": str(path),
                "note": f"fitted on the run's labelled digits, tested on its {test} test digits",
            }
        )
    return rows


def run_notes(config: dict, metrics: dict, *, seed: bool = True) -> list[str]:
    """What a row's note says about the run, from its resolved ``config`` (``config.json``) and
    ``metrics``: the model's departures from the plain Diehl & Cook network (patches, learning
    rule, neuron, input code), the switches of the authors' code (:func:`fidelity_notes`), the
    passes over the training digits, the seed (``seed``), the labelled digits, an inference
    inhibition of its own, a test set other than the 10,000 digits and the native engine
    (``train.engine``, ``evaluate.engine``)."""
    encoding = config.get("encoding") or {}
    learning = config.get("learning") or {}
    network = config.get("network") or {}
    notes = []
    if encoding.get("patch_size_px", 28) < 28:
        notes.append(
            f"{encoding['patch_size_px']} px patches, stride {encoding.get('patch_stride_px')}"
        )
    if learning.get("rule", "trace") != "trace":
        notes.append(f"{learning['rule']} STDP")
    if network.get("neuron", "conductance") != "conductance":
        notes.append(f"{network['neuron']} neurons")
    if encoding.get("code", "poisson") != "poisson":
        notes.append(f"{encoding['code']} code")
    notes += fidelity_notes(config)
    notes += constant_notes(config)
    passes = metrics.get("train_passes")
    if isinstance(passes, int) and passes >= 1:
        notes.append(f"{passes} pass" + ("es" if passes > 1 else ""))
    if seed and isinstance(config.get("seed"), int):
        notes.append(f"seed {config['seed']}")
    assign_digits = metrics.get("assign_digits")
    if isinstance(assign_digits, int):
        notes.append(f"labels and read-out from {assign_digits:,} training digits")
    inference = config.get("evaluate") or {}
    if inference.get("inh_to_exc_weight") is not None:
        notes.append(f"inference inhibition {inference['inh_to_exc_weight']:g}")
    test_digits = metrics.get("test_digits")
    if test_digits is not None and test_digits != 10000:
        notes.append(f"{test_digits:,} test digits")
    native = [
        stage
        for stage, section in (("trained", "train"), ("inference", "evaluate"))
        if (config.get(section) or {}).get("engine", "xla") != "xla"
    ]
    if native == ["trained", "inference"]:
        notes.append("native engine")
    elif native:
        notes.append(f"{native[0]} on the native engine")
    return notes


def fidelity_notes(config: dict) -> list[str]:
    """The switches of the authors' code (README "Fidelity") that the resolved ``config``
    (``config.json``) sets away from their section defaults, in words: a simulated rest,
    exponential membrane, Euler conductances, the spike block, a membrane that integrates while
    refractory, input delays, initial weights, the retry cap."""
    from stdp_pipeline.io.config import EncodingConfig, LearningConfig
    from stdp_pipeline.sim.neurons.conductance import ExcitatoryConfig

    enc, learn = config.get("encoding") or {}, config.get("learning") or {}
    layers = [config.get("excitatory") or {}, config.get("inhibitory") or {}]
    exc = layers[0]
    notes = []
    if enc.get("rest", EncodingConfig.rest) == "simulate":
        notes.append("simulated rest")
    for key, value, words in (
        ("membrane", "exponential", "exponential membrane"),
        ("integration", "euler", "Euler conductances"),
        ("refractory_v", "integrate", "membrane integrated while refractory"),
    ):
        which = [i for i, layer in enumerate(layers) if layer.get(key) == value]
        if which:
            notes.append(words + ("" if len(which) == 2 else f" ({key}, {len(which)} of 2 layers)"))
    block = exc.get("spike_block_ms", ExcitatoryConfig.spike_block_ms)
    if block != ExcitatoryConfig.spike_block_ms:
        notes.append(f"spike block {block:g} ms")
    delay = (config.get("network") or {}).get("input_delay_max_ms", 0.0)
    if delay:
        notes.append(f"input delays 0-{delay:g} ms")
    lo = learn.get("w_init_min", LearningConfig.w_init_min)
    hi = learn.get("w_init_max", LearningConfig.w_init_max)
    if (lo, hi) != (LearningConfig.w_init_min, LearningConfig.w_init_max):
        notes.append(f"initial weights {lo:g}-{hi:g}")
    retries = enc.get("max_retries", EncodingConfig.max_retries)
    if retries != EncodingConfig.max_retries:
        notes.append(f"retries up to {retries}")
    return notes


#: keys that :func:`fidelity_notes` words (or that belong to one of its switches)
_SWITCH_KEYS = frozenset(
    {"membrane", "integration", "refractory_v", "spike_block_ms", "v_init_offset_mv"}
    | {"input_delay_max_ms", "w_init_min", "w_init_max", "max_retries", "rest"}
)


def constant_notes(config: dict) -> list[str]:
    """The Diehl & Cook constants that the resolved ``config`` (``config.json``) of a Diehl & Cook
    model (conductance neurons, trace STDP) sets away from their section defaults, beyond the
    switches of :func:`fidelity_notes`: ``"excitatory.tau_theta_ms = 2e+07"``, one per value, in
    section order (the sections of the parts in use, from the model registry: excitatory,
    inhibitory, trace_stdp, the input code's; then network weights, learning, encoding timing).
    Empty for other models, whose own constants are theirs."""
    from stdp_pipeline.io.config import sections
    from stdp_pipeline.sim import registry

    network, learning = config.get("network") or {}, config.get("learning") or {}
    neuron, rule = network.get("neuron", "conductance"), learning.get("rule", "trace")
    if (neuron, rule) != ("conductance", "trace"):
        return []
    code = (config.get("encoding") or {}).get("code", "poisson")
    parts = (registry.neuron(neuron), registry.rule(rule), registry.code(code))
    names = [name for part in parts for name in part.SECTIONS] + ["network", "learning", "encoding"]
    classes = sections()
    notes = []
    for name in names:
        values = config.get(name) or {}
        for field in dataclasses.fields(classes[name]):
            value, default = values.get(field.name), field.default
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
            if field.name in _SWITCH_KEYS or not numeric or field.name == "n_excitatory":
                continue
            if isinstance(value, (int, float)) and value != default:
                notes.append(f"{name}.{field.name} = {value:g}")
    return notes


def kept_rows(path: str | os.PathLike[str]) -> list[dict]:
    """The measured and baseline rows of an earlier ``comparison.csv`` (as
    :func:`write_comparison` wrote it), for runs that are no longer on this machine. Raises
    :class:`PipelineError` if the file cannot be read or is not a comparison table."""
    from stdp_pipeline.io.artefacts import read_csv

    hint = ": give a comparison.csv that `stdp-pipeline compare` wrote"
    frame = read_csv(path, str(path), COLUMNS, hint, keep_default_na=False, na_values=[""])
    frame = frame[frame["source"].isin(["measured", "baseline"])]
    return [
        {c: (None if _missing(v) else v) for c, v in row.items()}
        for row in frame[list(COLUMNS)].to_dict("records")
    ]


def comparison_table(
    folders: Iterable[str | os.PathLike[str]] = (),
    published: pd.DataFrame | None = None,
    sweeps: str = "best",
    keep: Iterable[str | os.PathLike[str]] = (),
) -> pd.DataFrame:
    """Published rows, then the measured rows of every run under ``folders`` (sorted by model,
    neurons, training digits and scheme); the columns :data:`COLUMNS`. The runs of a sweep folder
    count as ``sweeps`` says (:data:`SWEEP_MODES`: its best point, every run, or none).

    ``keep``: earlier ``comparison.csv`` files whose measured and baseline rows stay in the table
    (:func:`kept_rows`: runs made on another machine), except those of a run found again under
    ``folders``, whose new rows replace them."""
    pub = load_published() if published is None else published
    rows = [
        {
            "source": "published",
            **{c: r[c] for c in PUBLISHED_COLUMNS},
            "model": "",
            "train_digits": pd.NA,
            "scheme": "",
            "train_wall_s": np.nan,
            "eval_wall_s": np.nan,
            "run": "",
        }
        for _, r in pub.iterrows()
    ]
    folders = list(folders)
    measured = [row for run in _plain_runs(folders, sweeps) for row in measured_rows(run)]
    if sweeps == "best":
        measured += [row for sweep in find_sweeps(folders) for row in sweep_rows(sweep)]
    found_runs = {row["run"] for row in measured}
    for table in keep:
        measured += [row for row in kept_rows(table) if row["run"] not in found_runs]
    seen: set = set()
    kept = []
    for row in measured:  # one baseline row per set of digits
        if row["source"] == "baseline":
            key = (row["train_digits"], row["note"], row["accuracy"])
            if key in seen:
                continue
            seen.add(key)
        kept.append(row)
    measured = kept
    measured.sort(
        key=lambda r: (r["source"] != "baseline", _neurons(r), r["model"], r["run"], r["scheme"])
    )
    frame = pd.DataFrame(rows + measured, columns=list(COLUMNS))
    for col in ("year", "neurons", "train_digits"):
        frame[col] = pd.array([None if _missing(v) else int(v) for v in frame[col]], dtype="Int64")
    for col in ("accuracy", "train_wall_s", "eval_wall_s"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in ("model", "scheme", "run", "note"):
        frame[col] = frame[col].fillna("").astype(str)
    return frame


def markdown_table(frame: pd.DataFrame) -> str:
    """The comparison as a GitHub Markdown table (written here: ``tabulate`` is not a
    dependency). Accuracies in percent with two decimals; measured rows in bold."""
    header = [
        "source",
        "group",
        "reference / model",
        "neurons",
        "training digits",
        "voting",
        "accuracy",
        "training time",
        "run",
        "note",
    ]
    align = ["---", "---", "---", "---:", "---:", "---", "---:", "---:", "---", "---"]
    lines = [_md_row(header), _md_row(align)]
    for _, r in frame.iterrows():
        measured = r["source"] == "measured"
        what = f"{r['model']}, {r['reference']}" if measured else str(r["reference"])
        cells = [
            r["source"],
            r["group"],
            what,
            "" if _missing(r["neurons"]) else f"{int(r['neurons']):,}",
            "" if _missing(r["train_digits"]) else f"{int(r['train_digits']):,}",
            r["scheme"],
            f"{100 * r['accuracy']:.2f} %",
            _duration(r["train_wall_s"]),
            f"`{r['run']}`" if r["run"] else "",
            r["note"],
        ]
        if measured:
            cells[2], cells[6] = f"**{cells[2]}**", f"**{cells[6]}**"
        lines.append(_md_row(cells))
    return "\n".join(lines) + "\n"


def bar_label(row: pd.Series) -> str:
    """The short label of a row in the chart: first author(s) and year for published rows,
    config name and voting scheme for measured ones."""
    neurons = "" if _missing(row["neurons"]) else f"{int(row['neurons']):,} neurons"
    if row["source"] == "measured":
        scheme = str(row["scheme"]).replace(" weighting", "")
        size = f" ({neurons})" if neurons else ""
        return f"★ ours: {row['model']}{size}, {scheme}"
    parts = _split_outside_parens(str(row["reference"]))
    authors = parts[:-1] or parts
    who = authors[0] if len(authors) == 1 else f"{authors[0]} et al."
    if "(" in who and ")" not in who:
        who = who.split(" (")[0]
    label = f"{who} {'' if _missing(row['year']) else int(row['year'])}".strip()
    return f"{label}, {neurons}" if neurons else label


def plot_comparison(frame: pd.DataFrame, path: str | os.PathLike[str], title: str) -> None:
    """Horizontal bars of accuracy, one per row, grouped by method family (a header per family,
    families in the order of first appearance; within a family by network size, measured rows
    after the published row of the same size); measured rows are drawn dark and hatched, their
    labels starred and bold. The value is written at the end of each bar."""
    from stdp_pipeline.stages.plots import _save, plt

    families = list(dict.fromkeys(frame["group"]))
    measured = frame[frame["source"] == "measured"]
    runs_per_model = measured.groupby("model")["run"].nunique()
    shared = set(runs_per_model[runs_per_model > 1].index)  # name the run where models repeat
    palette = plt.get_cmap("tab10")
    ys, labels, values, colours, hatches, bold, heads = [], [], [], [], [], [], []
    y = 0.0
    for i, fam in enumerate(families):
        heads.append((y, fam))
        y += 1.0
        part = frame[frame["group"] == fam].assign(
            _n=lambda f: f["neurons"].astype("Float64").fillna(np.inf),
            _ours=lambda f: f["source"] == "measured",
        )
        part = part.sort_values(["_n", "_ours"], kind="stable")  # ours beside the same size
        for _, r in part.iterrows():
            ours = r["source"] == "measured"
            ys.append(y)
            label = bar_label(r)
            if ours and r["model"] in shared:
                label += f" [{Path(r['run']).name}]"
            labels.append(label)
            values.append(100 * r["accuracy"])
            colours.append("#222222" if ours else palette(i % 10))
            hatches.append("////" if ours else "")
            bold.append(ours)
            y += 1.0
        y += 0.6
    low = max(0.0, math.floor((min(values) - 5) / 10) * 10) if values else 0.0
    fig, ax = plt.subplots(figsize=(11, 0.34 * y + 1.6))
    bars = ax.barh(ys, [v - low for v in values], left=low, color=colours, height=0.72)
    for bar, hatch, ours in zip(bars, hatches, bold, strict=True):
        bar.set_hatch(hatch)
        if ours:
            bar.set_edgecolor("#f0a030")
    for yy, v, ours in zip(ys, values, bold, strict=True):
        ax.text(
            v + 0.3,
            yy,
            f"{v:.2f} %",
            va="center",
            fontsize=8.5,
            fontweight="bold" if ours else None,
        )
    for yy, fam in heads:
        ax.text(low + 0.3, yy, fam, va="center", ha="left", fontsize=10, fontweight="bold")
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=9)
    for tick, ours in zip(ax.get_yticklabels(), bold, strict=True):
        if ours:
            tick.set_fontweight("bold")
    ax.set_ylim(y - 0.3, -0.8)
    ax.set_xlim(low, 100 + (4 if values else 0))
    ax.set_xlabel(f"MNIST test accuracy (%); the axis starts at {low:.0f} %")
    ax.grid(axis="x", alpha=0.3)
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title, fontsize=11, loc="left")
    _save(fig, path, palette=True)


def write_comparison(
    folders: Sequence[str | os.PathLike[str]],
    out: str | os.PathLike[str],
    sweeps: str = "best",
    keep: Sequence[str | os.PathLike[str]] = (),
) -> tuple[pd.DataFrame, dict[str, Path]]:
    """Build the comparison of the runs under ``folders`` and write ``comparison.md``,
    ``comparison.csv`` and ``comparison.png`` into ``out`` (atomically). Returns the table and
    the paths written. ``sweeps``, ``keep``: see :func:`comparison_table`."""
    frame = comparison_table(folders, sweeps=sweeps, keep=keep)
    out = Path(out)
    n_runs = frame.loc[frame["source"] == "measured", "run"].nunique()
    paths = {k: out / f"comparison.{k}" for k in ("md", "csv", "png")}
    where = ", ".join(str(f) for f in folders) or "no folder"
    if keep:
        where += "; rows of runs made elsewhere kept from " + ", ".join(str(k) for k in keep)
    intro = (
        "# MNIST accuracy: published results and this project's runs\n\n"
        f"{int((frame['source'] == 'published').sum())} published results, "
        f"{int((frame['source'] == 'baseline').sum())} raw-pixel baseline(s) and "
        f"{n_runs} measured run(s) (found under {where}), one row per voting scheme. "
        "Measured rows are in bold; accuracies are on the test digits each run evaluated "
        "(see the note when fewer than 10,000).\n\n"
    )
    atomic.write_text(paths["md"], intro + markdown_table(frame))
    atomic.write_text(paths["csv"], frame.to_csv(index=False))
    plot_comparison(
        frame,
        paths["png"],
        f"MNIST test accuracy: {n_runs} run(s) of this project (★, hatched) "
        "beside published spiking networks",
    )
    return frame, paths


# --- sweeps --------------------------------------------------------------------------------------
#: What :func:`comparison_table` does with a sweep folder's runs: its best point only (mean over
#: seeds), every run as a run of its own, or none.
SWEEP_MODES = ("best", "all", "none")


def find_sweeps(folders: Iterable[str | os.PathLike[str]]) -> list[Path]:
    """Sweep folders under ``folders`` (recursively, the folders themselves included): every
    folder holding ``sweep.json``, sorted. Links to folders are followed, as in
    :func:`find_runs` (a seeds folder kept elsewhere and linked into ``results/`` counts)."""
    from stdp_pipeline.sweep import SWEEP_FILE

    found: set[Path] = set()
    for here, dirs, files in _walk(folders):
        if SWEEP_FILE in files:
            found.add(Path(here))
            dirs[:] = []  # a sweep's run directories hold no sweeps
    return sorted(found)


def sweep_rows(sweep_dir: str | os.PathLike[str]) -> list[dict]:
    """The rows of a sweep's best point (by the sweep's metric), one per voting scheme, like
    :func:`measured_rows` but with the mean accuracy and training time over the point's finished
    seeds; ``model`` is ``<sweep>: <point>``, ``run`` the point's folder, and the note says how
    many points and seeds. A seeds folder (``run --seeds``) gives its config's rows with the mean
    over its seeds, ``run`` the folder. Empty when no run of the sweep has finished."""
    from stdp_pipeline.sweep.summary import best_point

    best = best_point(sweep_dir)
    if best is None:
        return []
    per_seed = [measured_rows(run, seed=False) for run in best["runs"]]
    # a seeds folder (``run --seeds``): its runs lie in the folder itself, not in a point folder
    seeds_folder = all(Path(run).parent == Path(sweep_dir) for run in best["runs"])
    rows = []
    for row in per_seed[0]:
        if row["source"] == "baseline":  # the digits' baseline, not a mean over seeds
            rows.append(row)
            continue
        scheme = {v: k for k, v in SCHEME_NAMES.items()}.get(row["scheme"], row["scheme"])
        walls = [r["train_wall_s"] for seed in per_seed for r in seed
                 if r["source"] == "measured" and r["scheme"] == row["scheme"]
                 and not _missing(r["train_wall_s"])]  # fmt: skip
        spread = best["std"].get(scheme, float("nan"))
        seeds = f"mean of {best['seeds']} seed(s) ({', '.join(map(str, best['seed_list']))})" + (
            "" if math.isnan(spread) else f" ± {100 * spread:.2f}"
        )
        if seeds_folder:  # one config, several seeds: the folder is the row
            note, model, run = seeds, row["model"], str(Path(sweep_dir))
        else:
            note = f"best of {best['points']} point(s) of sweep {best['sweep']}, {seeds}"
            model = f"{best['sweep']}: {best['point']}"
            run = str(Path(sweep_dir) / best["point"])
        rows.append(
            {
                **row,
                "model": model,
                "accuracy": best["mean"].get(scheme, row["accuracy"]),
                "train_wall_s": sum(walls) / len(walls) if walls else None,
                "run": run,
                "note": "; ".join(n for n in (note, row["note"]) if n),
            }
        )
    return rows


def _plain_runs(folders: Sequence[str | os.PathLike[str]], sweeps: str) -> list[Path]:
    """The run directories under ``folders``, without those inside a sweep folder unless
    ``sweeps == "all"``."""
    if sweeps not in SWEEP_MODES:
        raise PipelineError(f"sweeps = {sweeps!r}: must be one of {', '.join(SWEEP_MODES)}")
    runs = find_runs(folders)
    if sweeps == "all":
        return runs
    roots = [s.resolve() for s in find_sweeps(folders)]
    return [r for r in runs if not any(root in r.resolve().parents for root in roots)]


# --- helpers -------------------------------------------------------------------------------------
def _read_json(path: Path) -> dict:
    """A JSON object of a run directory (bounded in size, UTF-8 checked)."""
    from stdp_pipeline.io.reading import read_json

    evaluated = path.name == "metrics.json"
    hint = f": run `stdp-pipeline evaluate {path.parent}` again" if evaluated else ""
    data = read_json(path, hint=hint)
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: must hold a JSON object")
    return data


def _refuse_stale(run_dir: Path) -> None:
    """Refuse a run whose manifest flags its ``evaluate`` stage stale (an earlier stage ran again
    after it: its metrics.json describes an older model). Runs without a manifest pass."""
    from stdp_pipeline.io.rundir import MANIFEST_FILE, RunDir

    if not (run_dir / MANIFEST_FILE).exists():
        return
    run = RunDir(run_dir)
    if run.stale_after("evaluate") is not None:
        run.require("evaluate", for_stage="compare", hint=f", or leave {run_dir} out")


def _neurons(row: dict) -> int:
    """A row's network size for sorting (0 for none)."""
    return 0 if _missing(row["neurons"]) else int(row["neurons"])


def _missing(value: object) -> bool:
    if value is None or value is pd.NA:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _duration(seconds: float) -> str:
    if _missing(seconds):
        return ""
    seconds = float(seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _md_row(cells: Sequence[object]) -> str:
    text = [str(c).replace("|", "\\|").replace("\n", " ") for c in cells]
    return "| " + " | ".join(text) + " |"


def _split_outside_parens(text: str) -> list[str]:
    """``text`` split at the commas that are not inside parentheses, parts stripped."""
    parts, depth, current = [], 0, []
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    parts.append("".join(current).strip())
    return [p for p in parts if p]
