"""Several seeds of one config at once: ``run --seeds``, ``encode --seeds``, and ``train``,
``assign``, ``evaluate`` on the folder they make.

A *seeds folder* holds one ordinary run directory per seed, ``<folder>/seed=<s>/``, and the
record ``sweep.json``: it is a sweep with one point, so the runs go as Ray tasks (one per core on
a local Ray, ``--workers`` at most), the summary (``summary.csv``, ``summary.md``, ``runs.csv``:
mean and spread over the seeds) is written at the end, and ``compare`` lists the folder as one row
with its mean. Running the same command again continues: seeds whose stages are done are skipped.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from stdp_pipeline.cli.common import Interrupted, one_line, progress_setting
from stdp_pipeline.errors import PipelineError

__all__ = [
    "SEEDS",
    "STACK",
    "WORKERS",
    "is_seeds_folder",
    "new_seeds_spec",
    "run_seeds",
    "seeds_option",
]


def _parse_seeds(ctx: click.Context, param: click.Parameter, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        seeds = [int(part) for part in value.split(",")]
    except ValueError:
        raise one_line(
            f"--seeds {value!r}: give seeds as whole numbers separated by commas, e.g. 0,1,2"
        ) from None
    if any(s < 0 for s in seeds):
        raise one_line(f"--seeds {value!r}: seeds must be >= 0")
    if len(set(seeds)) != len(seeds):
        raise one_line(f"--seeds {value!r}: a seed appears twice")
    return seeds


def seeds_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A ``--seeds S,S,...`` option (distinct whole numbers >= 0) with the given help."""
    return click.option(
        "--seeds", default=None, metavar="S,S,...", callback=_parse_seeds, help=help
    )


#: ``--seeds 0,1,2`` of ``run`` and ``encode``: one run directory ``RUN_DIR/seed=<s>`` per seed.
SEEDS = seeds_option(
    "Several seeds: one run directory per seed, RUN_DIR/seed=<s>, run side by side on a "
    "local Ray (one per core), with the mean and spread in RUN_DIR/summary.csv."
)
#: ``--stack N``: seeds whose networks train as one compiled program, per worker.
STACK = click.option(
    "--stack",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="With several seeds: train up to N seeds' networks in one worker as one compiled "
    "program (each with its own spikes, retries and results; faster for small networks, "
    "README 'Speed'); 1 trains each alone.",
)
#: ``--workers N``: seeds at a time.
WORKERS = click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="With several seeds: runs at a time [default: one per core].",
)


def is_seeds_folder(path: Path) -> bool:
    """Whether ``path`` is a folder of runs made by ``--seeds`` (or a sweep): it has sweep.json."""
    from stdp_pipeline.sweep import SWEEP_FILE

    return (path / SWEEP_FILE).is_file()


def new_seeds_spec(
    run_dir: Path,
    config_source: str,
    overrides: tuple[str, ...],
    seeds: list[int],
    stages: tuple[str, ...],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """The plan of ``run --seeds`` / ``encode --seeds`` into ``run_dir``, checked before anything
    runs: a folder that already holds a single run is refused. Into an existing seeds folder the
    seeds join those it holds (earlier ones first): its record and summary keep every seed, the
    finished ones are skipped, and a config other than the folder's is refused when it runs."""
    from stdp_pipeline.io.rundir import CONFIG_FILE
    from stdp_pipeline.sweep.spec import seeds_sweep
    from stdp_pipeline.sweep.summary import read_plan

    if (run_dir / CONFIG_FILE).is_file():
        raise PipelineError(
            f"{run_dir} holds a single run, not a seeds folder: give a new RUN_DIR for --seeds"
        )
    if run_dir.is_dir() and any(run_dir.iterdir()) and not is_seeds_folder(run_dir):
        raise PipelineError(f"{run_dir} is not empty and holds no seeds folder: give a new RUN_DIR")
    if is_seeds_folder(run_dir):
        plan = read_plan(run_dir)
        if not plan.get("axes"):  # a seeds folder, not a sweep over values
            earlier = [int(run["seed"]) for run in plan["runs"]]
            seeds = list(dict.fromkeys([*earlier, *seeds]))
    return seeds_sweep(
        config_source,
        overrides,
        seeds,
        name=run_dir.absolute().name,
        stages=stages,
        options=options,
    )


def run_seeds(
    ctx: click.Context,
    run_dir: Path,
    spec: Any,
    *,
    workers: int | None,
    data_dir: str | None,
    only_seeds: list[int] | None = None,
    stack: int = 1,
) -> None:
    """Run ``spec`` (a seeds plan) into ``run_dir`` as Ray tasks (``only_seeds``: those seeds'
    runs alone) and print one line per seed run, the mean over the seeds and where the summary
    is; exit status 1 if a seed failed. ``stack``: seeds per worker trained as one stack."""
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.table import stage
    from stdp_pipeline.sweep.engine import SweepInterrupted, run_sweep

    try:
        outcome = run_sweep(
            spec,
            run_dir,
            workers=workers,
            resume=True,  # the same command again continues; a changed config is refused
            retry_failed=True,  # and runs the seeds that failed again
            data_dir=data_dir,
            progress=progress_setting(ctx),
            command=sys.argv,
            say=click.echo,
            only_seeds=only_seeds,
            stack=stack,
            hints={
                "continue": "run the same command again to continue",
                "changed": "this seeds folder was made with the other config",
            },
        )
    except SweepInterrupted as stop:
        raise Interrupted(str(stop)) from None
    failed = dict(outcome.failed)
    # each seed's line: its evaluation where it was evaluated, else its last stage of the first four
    shown = [n for n in spec.stages if n in ("encode", "train", "assign", "evaluate")]
    last = stage(shown[-1] if shown else spec.stages[-1])
    for run in spec.runs:
        if only_seeds is not None and run.seed not in only_seeds:
            continue
        path = outcome.folder / run.relpath
        if run.relpath in failed:
            click.echo(f"seed {run.seed}: failed: {failed[run.relpath]}", err=True)
            continue
        rd = RunDir(path)
        result: Any
        if last.name == "evaluate":
            result = rd.read_json("metrics.json")
        elif last.name == "encode":
            result = rd
        elif last.name == "assign":
            from stdp_pipeline.stages.assign import assign_labels

            saved = rd.load_arrays("assignments.npz")
            result = assign_labels(saved["counts"], saved["labels"])
        elif last.name == "train":  # its manifest record holds what its result line needs
            result = rd.manifest()["stages"]["train"]
        else:  # a drawing stage alone (fields, reconstruct, curves): its outputs
            record = rd.manifest()["stages"][last.name]
            click.echo(f"seed {run.seed}: {last.name}: {', '.join(record.get('outputs', []))}")
            continue
        click.echo(f"seed {run.seed}: {last.describe(rd, result)}")
    if outcome.best is not None and "evaluate" in spec.stages:
        table = _summary_row(outcome.summary["summary"])
        parts = []
        for scheme in ("all_activity", "proportion", "linear"):
            mean, std = table[f"{scheme}_mean"], table[f"{scheme}_std"]
            spread = f" ± {100 * std:.2f}" if std == std else ""  # NaN with one seed
            parts.append(f"{100 * mean:.2f} %{spread} ({scheme.replace('_', ' ')})")
        click.echo(
            f"{int(table['seeds'])} seed(s), mean ± standard deviation: {', '.join(parts)}; "
            f"summary in {outcome.summary['summary']}"
        )
    if failed:
        ctx.exit(1)


def _summary_row(path: Path) -> Mapping[str, Any]:
    import pandas as pd

    return pd.read_csv(path).iloc[0].to_dict()
