"""``stdp-pipeline fields / reconstruct / curves / compare``: figures and the comparison table.

The lead CLI adds these with ``main.add_command(...)``; each also works on its own (e.g. with
``CliRunner().invoke(fields, [...])``). A :class:`~stdp_pipeline.errors.PipelineError` leaves as
``Error: <one line>`` with exit status 2, never as a traceback.
"""

from __future__ import annotations

from pathlib import Path

import click

from stdp_pipeline.cli.common import CONTEXT, QUIET, RUN_DIR, echo_result, friendly
from stdp_pipeline.stages.table import stage

__all__ = ["compare", "curves", "fields", "reconstruct"]

_FIELDS = stage("fields").defaults
_RECONSTRUCT = stage("reconstruct").defaults


@click.command(context_settings=CONTEXT)
@RUN_DIR
@click.option(
    "--sort",
    type=click.Choice(["class", "index"]),
    default=None,
    help="Order of the cells: by assigned class, or by neuron index "
    "[default: class when the run has assignments, else index].",
)
@click.option(
    "--checkpoint",
    type=int,
    default=None,
    metavar="N",
    help="Draw the checkpoint taken after N training digits (writes fields-<N>.png).",
)
@click.option(
    "--all-checkpoints",
    is_flag=True,
    help="One grid per checkpoint, plus the final model, on one colour scale: watch the fields "
    "form.",
)
@click.option(
    "--max-neurons",
    type=int,
    default=_FIELDS["max_neurons"],
    show_default=True,
    help="Most cells in one grid; larger models show an evenly spaced subset (said in the title).",
)
@QUIET
@friendly
def fields(
    run_dir: Path,
    sort: str | None,
    checkpoint: int | None,
    all_checkpoints: bool,
    max_neurons: int,
) -> None:
    """Draw every excitatory neuron's receptive field (its input weights) as a grid.

    Writes RUN_DIR/fields.png (the trained model) or fields-<position>.png (a checkpoint). Each
    cell is labelled with the neuron's assigned class once `assign` has run; patched models show
    one block of patch-sized fields per patch position.

    \b
    Examples:
      stdp-pipeline fields results/dc100
      stdp-pipeline fields results/dc100 --sort index
      stdp-pipeline fields results/dc100 --checkpoint 10000
      stdp-pipeline fields results/dc100 --all-checkpoints
    """
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.fields import run_fields

    run = RunDir(run_dir)
    written = run_fields(
        run,
        sort=sort,
        checkpoint=checkpoint,
        all_checkpoints=all_checkpoints,
        max_neurons=max_neurons,
    )
    echo_result("fields", run, written)


@click.command(context_settings=CONTEXT)
@RUN_DIR
@click.option(
    "--digits",
    type=int,
    default=_RECONSTRUCT["digits"],
    show_default=True,
    help="Test digits shown in the figure (the error table always covers all of them).",
)
@click.option(
    "--scale",
    type=click.Choice(["range", "max", "lsq"]),
    default=_RECONSTRUCT["scale"],
    show_default=True,
    help="How a reconstruction is mapped to the pixel range [0, 1] (see above).",
)
@QUIET
@friendly
def reconstruct(run_dir: Path, digits: int, scale: str) -> None:
    """Rebuild the test digits from the network's spike responses.

    A digit is rebuilt as the sum over excitatory neurons of (its spike count for that digit) x
    (the neuron's receptive field, i.e. its input weights); for patched models each patch is
    rebuilt from its own group and the patches are folded back onto the 28x28 grid, averaging
    where they overlap. The result is in arbitrary units and is mapped to [0, 1] by --scale:

    \b
      range  darkest pixel 0, brightest 1 (default; uses nothing of the original, and
             removes the grey floor every field keeps on the background)
      max    brightest pixel 1 (gain only)
      lsq    least-squares gain and offset against the original (peeks at its brightness,
             so the error measures the shape alone)

    Writes RUN_DIR/reconstruction.png (originals above their reconstructions) and
    reconstruction.csv (mean squared error per pixel on [0, 1], per class and overall, beside
    the error of the mean test image as a baseline). Needs the `evaluate` stage.

    \b
    Examples:
      stdp-pipeline reconstruct results/dc100
      stdp-pipeline reconstruct results/dc100 --digits 32 --scale lsq
    """
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.reconstruct import run_reconstruct

    run = RunDir(run_dir)
    echo_result("reconstruct", run, run_reconstruct(run, digits=digits, scale=scale))


@click.command(context_settings=CONTEXT)
@RUN_DIR
@QUIET
@friendly
def curves(run_dir: Path) -> None:
    """Draw the learning curves of a training run.

    Writes RUN_DIR/curves.png from train_curve.csv and train_log.csv: spikes per digit (with a
    rolling mean), re-presentations, the adaptive threshold (mean and max), weight statistics
    and training speed against the digits presented. Needs the `train` stage.

    \b
    Example:
      stdp-pipeline curves results/dc100
    """
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.curves import run_curves

    run = RunDir(run_dir)
    echo_result("curves", run, run_curves(run))


@click.command(context_settings=CONTEXT)
@click.argument(
    "results_dirs",
    nargs=-1,
    metavar="[RESULTS_DIR ...]",
    type=click.Path(file_okay=False, path_type=Path),
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("results/comparison"),
    show_default=True,
    help="Folder for comparison.md, comparison.csv and comparison.png.",
)
@click.option(
    "--sweeps",
    type=click.Choice(["best", "all", "none"]),
    default="best",
    show_default=True,
    help="For a sweep folder (`stdp-pipeline sweep`): its best point (mean over seeds), every "
    "run, or nothing.",
)
@click.option(
    "--keep",
    "keep",
    multiple=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="An earlier comparison.csv whose measured rows stay (runs made on another machine); "
    "a run found again replaces its kept rows. Repeatable.",
)
@friendly
def compare(results_dirs: tuple[Path, ...], out: Path, sweeps: str, keep: tuple[Path, ...]) -> None:
    """Compare this project's runs with published MNIST results.

    Rows: every published result shipped with the package (Diehl & Cook's four sizes and the
    seed slides' table of spiking networks), and every run directory found under RESULTS_DIR
    (searched recursively, links to folders followed; a run counts once it has metrics.json),
    one row per voting scheme,
    with its config, neurons, training digits, accuracy and training time (RESULTS_DIR defaults
    to ./results). A sweep folder counts as its best point, its accuracy the mean over the
    point's seeds (--sweeps). Writes a Markdown table, a CSV file and a bar chart grouped by
    method family into --out.

    \b
    Examples:
      stdp-pipeline compare results
      stdp-pipeline compare results/dc100 results/dc400 --out results/comparison
      stdp-pipeline compare results/dc100 results/sweeps/dc100-seeds
      stdp-pipeline compare results/esp1600 --keep results/comparison/comparison.csv
    """
    from stdp_pipeline.stages.report import write_comparison

    folders = list(results_dirs)
    if not folders and Path("results").is_dir():
        folders = [Path("results")]
    frame, paths = write_comparison(folders, out, sweeps=sweeps, keep=keep)
    n_runs = frame.loc[frame["source"] == "measured", "run"].nunique()
    if not n_runs:
        where = ", ".join(str(f) for f in folders) or "results (missing)"
        click.echo(f"no evaluated run directory under {where}: published results only")
    click.echo(
        f"{len(frame)} rows ({n_runs} measured run(s)) in {paths['md']}, {paths['csv']} and "
        f"{paths['png']}"
    )
