"""``stdp-pipeline sweep``: parameter grids, random samples and repeated seeds, run on Ray.

The lead CLI adds the command with ``main.add_command(sweep)``. Ray is imported only when a sweep
actually has runs to do (:mod:`stdp_pipeline.sweep.engine`), never when the command line starts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from stdp_pipeline.cli.common import (
    CONTEXT,
    DATA_DIR,
    QUIET,
    Interrupted,
    friendly,
    progress_setting,
)
from stdp_pipeline.cli.seeds import STACK

__all__ = ["sweep"]

#: Failed runs listed by name at the end; the rest are counted (all are in runs.csv).
_SHOW_FAILED = 10


@click.command(context_settings=CONTEXT)
@click.argument("sweep_file", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The sweep folder [default: results/sweeps/<the sweep's name>].",
)
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=None,
    help="Runs at a time [default: one per core on a local Ray; on a cluster, as many as fit].",
)
@click.option(
    "--address",
    default=None,
    metavar="ADDR",
    help="An existing Ray cluster (auto, HOST:6379 or ray://HOST:10001) [default: a local Ray "
    "started for this sweep].",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Continue the sweep in the folder: finished runs are skipped, cut-off runs run again "
    "(training from their last checkpoint), failed runs stay failed.",
)
@click.option(
    "--retry-failed",
    is_flag=True,
    help="With --resume (implied): run the failed runs again too.",
)
@STACK
@DATA_DIR
@QUIET
@click.pass_context
@friendly
def sweep(
    ctx: click.Context,
    sweep_file: Path,
    out: Path | None,
    workers: int | None,
    address: str | None,
    resume: bool,
    retry_failed: bool,
    stack: int,
    data_dir: str | None,
) -> None:
    """Run every point of a sweep file, each seed an ordinary run directory, as Ray tasks.

    SWEEP_FILE (TOML, YAML or JSON) names a base preset or config, the keys to vary ([grid]:
    values, { range = [lo, hi], num = N }, { logrange = ... }; [random]: samples drawn from
    { uniform | loguniform | randint | choice = ... }), the seeds and the stages (see
    scripts/sweeps/). Every point's config is built and checked before anything runs. Each run
    goes to OUT/<point>/seed=<s>/, named from the swept values, e.g.
    OUT/eta=0.001,event_window_ms=5/seed=0.

    A run that fails is recorded with its one-line error (OUT/<run>/failed.json) and the others go
    on; Ray reruns a run whose worker died, from its last checkpoint. With --stack N, up to N
    seeds of a point go to one worker and their networks train as one compiled program. Points
    that differ only in evaluate.* (e.g. the inference inhibition) train once per seed: the
    others take that training over and run assign and evaluate with their own settings. Ctrl-C
    stops cleanly; run the same command with --resume to continue (--retry-failed: failed runs
    too). At the end:
    OUT/summary.csv (one row per point: mean and spread over seeds, best first), summary.md,
    runs.csv and accuracy.png (accuracy against each swept key). Exit status 1 when some run
    failed.

    \b
    Examples:
      stdp-pipeline sweep scripts/sweeps/smoke.toml --out results/sweeps/smoke
      stdp-pipeline sweep scripts/sweeps/dc100-seeds.toml --workers 2
      stdp-pipeline sweep scripts/sweeps/dc100-seeds.toml --resume
      stdp-pipeline sweep scripts/sweeps/dc100-seeds.toml --retry-failed
      stdp-pipeline sweep scripts/sweeps/event-rule-grid.toml --address auto
    """
    from stdp_pipeline.sweep.engine import SweepInterrupted, default_folder, run_sweep
    from stdp_pipeline.sweep.spec import load_sweep

    spec = load_sweep(sweep_file)
    folder = out if out is not None else default_folder(spec)
    try:
        outcome = run_sweep(
            spec,
            folder,
            workers=workers,
            address=address,
            resume=resume,
            retry_failed=retry_failed,
            data_dir=data_dir,
            progress=progress_setting(ctx),
            command=sys.argv,
            say=click.echo,
            stack=stack,
        )
    except SweepInterrupted as stop:
        raise Interrupted(str(stop)) from None
    done = outcome.skipped + outcome.finished
    click.echo(
        f"sweep {spec.name}: {done} of {outcome.total} run(s) finished"
        + (f" ({outcome.skipped} before)" if outcome.skipped else "")
        + f", {len(outcome.failed)} failed"
        + (f" ({outcome.failed_before} before)" if outcome.failed_before else "")
        + f"; summary in {outcome.summary['summary']} "
        f"(also {outcome.summary['markdown'].name}, {outcome.summary['runs'].name}, "
        f"{outcome.summary['plot'].name})"
    )
    if outcome.best is not None:
        point, accuracy, seeds = outcome.best
        scheme = spec.metric.replace("_", " ")
        click.echo(
            f"best: {point}: {100 * accuracy:.2f} % ({scheme}, mean of {seeds} seed(s)); "
            f"{outcome.folder / point}"
        )
    for path, error in outcome.failed[:_SHOW_FAILED]:
        click.echo(f"failed: {path}: {error}", err=True)
    if len(outcome.failed) > _SHOW_FAILED:
        more = len(outcome.failed) - _SHOW_FAILED
        click.echo(f"failed: and {more} more (see {outcome.summary['runs']})", err=True)
    if outcome.failed:
        ctx.exit(1)
