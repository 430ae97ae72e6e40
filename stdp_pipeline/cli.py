"""``stdp-pipeline``: the command line, a thin shell over the library's stage functions.

Each command parses its options, calls one library function and reports where the results are.
A :class:`~stdp_pipeline.errors.PipelineError` leaves as ``Error: <one line>`` with exit status 2.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from . import __version__
from .cli_common import CONTEXT, friendly
from .cli_data import data
from .cli_report import compare, curves, fields, reconstruct


def _progress(ctx: click.Context) -> bool | None:
    return False if ctx.obj and ctx.obj.get("quiet") else None


_RUN_DIR = click.argument("run_dir", type=click.Path(file_okay=False, path_type=Path))
_CONFIG = click.option(
    "--config",
    "config_source",
    required=True,
    metavar="PRESET|FILE",
    help="A preset name (see `stdp-pipeline config presets`) or a .toml/.yaml/.json file.",
)
_SET = click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override one config key, e.g. --set network.n_excitatory=100 (repeatable).",
)
_DATA_DIR = click.option(
    "--data-dir",
    default=None,
    metavar="DIR",
    help="Folder with the data set's IDX files [default: $STDP_DATA_DIR, else ./data/<dataset>].",
)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="stdp-pipeline")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
@click.pass_context
def main(ctx: click.Context, quiet: bool) -> None:
    """Unsupervised MNIST learning by STDP in TensorFlow spiking networks (Diehl & Cook 2015).

    \b
    Stages, each reading and writing one run directory:
      encode       resolve the config, select the digits, store what the network sees
      train        learn without labels (STDP), with checkpoints and --resume
      assign       give each neuron the class it answers most (learning off)
      evaluate     classify the test digits; metrics.json and a confusion matrix
      fields       every neuron's receptive field in a grid (also per checkpoint)
      reconstruct  rebuild test digits from the spike responses
      curves       learning curves from the training log
      run          all of the above in order
    And across runs:
      compare      the accuracy table against published results

    \b
    Examples:
      stdp-pipeline data check
      stdp-pipeline run results/dc100 --config diehl-cook-100
      stdp-pipeline encode results/quick --config diehl-cook-100 \\
          --set data.train_digits=2000 --set data.assign_start=2000 \\
          --set data.assign_digits=1000 --set data.allow_overlap=false
      stdp-pipeline train results/quick
      stdp-pipeline assign results/quick && stdp-pipeline evaluate results/quick
    """
    ctx.ensure_object(dict)
    ctx.obj["quiet"] = quiet


main.add_command(data)
for _command in (fields, reconstruct, curves, compare):
    main.add_command(_command)


@main.group()
def config() -> None:
    """Inspect presets and config keys.

    \b
    Examples:
      stdp-pipeline config presets
      stdp-pipeline config show diehl-cook-400 --set network.n_excitatory=100
      stdp-pipeline config keys
    """


@config.command("presets")
def config_presets() -> None:
    """List the shipped presets."""
    from .config import load_config, preset_names

    for name in preset_names():
        c = load_config(name)
        click.echo(
            f"{name:20s} {c.network.n_excitatory:5d} neurons  {c.network.neuron:11s} neurons  "
            f"{c.learning.rule:5s} STDP  {c.train.epochs} epoch(s)"
        )


@config.command("show")
@click.argument("source", metavar="PRESET|FILE")
@_SET
@friendly
def config_show(source: str, overrides: tuple[str, ...]) -> None:
    """Print the resolved config (a preset or file plus --set overrides) as TOML."""
    from .config import load_config, to_toml

    click.echo(to_toml(load_config(source, overrides)))


@config.command("keys")
def config_keys() -> None:
    """List every config key with its default value."""
    from .config import ExperimentConfig, all_keys

    flat = ExperimentConfig().to_dict()
    for key in all_keys():
        value: Any = flat
        for part in key.split("."):
            value = value[part]
        click.echo(f"{key:32s} {json.dumps(value)}")


@main.command()
@_RUN_DIR
@_CONFIG
@_SET
@_DATA_DIR
@click.pass_context
@friendly
def encode(
    ctx: click.Context,
    run_dir: Path,
    config_source: str,
    overrides: tuple[str, ...],
    data_dir: str | None,
) -> None:
    """Resolve the config and store the digits each stage will see.

    Writes RUN_DIR/config.json, manifest.json, encoded/{train,assign,test}.npz and
    input_raster.png (the Poisson input spikes of the first digits). Spikes are never stored:
    each digit's spikes are a pure function of (seed, stage, digit index).

    \b
    Examples:
      stdp-pipeline encode results/dc100 --config diehl-cook-100
      stdp-pipeline encode results/dc100-s1 --config diehl-cook-100 --set seed=1
    """
    from .config import load_config
    from .encode import run_encode

    cfg = load_config(config_source, overrides)
    run = run_encode(run_dir, cfg, data_dir=data_dir, command=sys.argv)
    info = run.manifest()["stages"]["encode"]
    click.echo(
        f"encoded {info['train_digits']} training, {info['assign_digits']} assignment and "
        f"{info['test_digits']} test digits into {run_dir} (config {cfg.name}, "
        f"fingerprint {cfg.fingerprint()})"
    )


@main.command()
@_RUN_DIR
@click.option(
    "--epochs",
    type=int,
    default=None,
    help="Passes over the training digits [default: train.epochs of the config].",
)
@click.option("--limit", type=int, default=None, help="Use only the first N training digits.")
@click.option(
    "--resume",
    is_flag=True,
    help="Continue from the newest checkpoint; ends with the same weights as an uninterrupted run.",
)
@click.pass_context
@friendly
def train(
    ctx: click.Context, run_dir: Path, epochs: int | None, limit: int | None, resume: bool
) -> None:
    """Learn without labels: STDP on the training digits, in order.

    Writes RUN_DIR/model.npz (weights, thresholds), train_log.csv (one row per digit),
    train_curve.csv (one row per chunk) and checkpoints/ every train.checkpoint_every digits.

    \b
    Examples:
      stdp-pipeline train results/dc100
      stdp-pipeline train results/dc100 --limit 2000
      stdp-pipeline train results/dc100 --resume      # after an interruption
    """
    from .rundir import RunDir
    from .train import run_train

    s = run_train(
        RunDir(run_dir), epochs=epochs, limit=limit, resume=resume, progress=_progress(ctx)
    )
    click.echo(
        f"trained on {s['digits_seen']} digits in {s['wall_s']:.1f} s "
        f"({s['digits_per_s']} digits/s, {s['spikes_per_digit']:.1f} spikes per digit); "
        f"weights in {run_dir / 'model.npz'}"
    )


@main.command()
@_RUN_DIR
@click.pass_context
@friendly
def assign(ctx: click.Context, run_dir: Path) -> None:
    """Assign each neuron the class it responds to most (learning off).

    Presents the assignment slice (labelled training digits, never test digits) and writes
    RUN_DIR/assignments.npz.

    \b
    Example:
      stdp-pipeline assign results/dc100
    """
    import numpy as np

    from .assign import run_assign
    from .rundir import RunDir

    result = run_assign(RunDir(run_dir), progress=_progress(ctx))
    per_class = np.bincount(result.classes[result.classes >= 0], minlength=10)
    click.echo(
        f"assigned {len(result.classes)} neurons; per class {per_class.tolist()}, "
        f"{int((result.classes < 0).sum())} silent"
    )


@main.command()
@_RUN_DIR
@click.pass_context
@friendly
def evaluate(ctx: click.Context, run_dir: Path) -> None:
    """Classify the test digits by the assigned neurons' votes.

    Writes RUN_DIR/metrics.json (accuracy per voting scheme, "all_activity" and "proportion",
    and of a linear read-out fitted on the assignment slice, "linear"), confusion.csv and
    confusion.png.

    \b
    Example:
      stdp-pipeline evaluate results/dc100
    """
    from .evaluate import run_evaluate
    from .rundir import RunDir

    m = run_evaluate(RunDir(run_dir), progress=_progress(ctx))
    acc = m["accuracy"]
    click.echo(
        f"test accuracy on {m['test_digits']} digits: {100 * acc['all_activity']:.2f} % "
        f"(all activity), {100 * acc['proportion']:.2f} % (proportion weighting), "
        f"{100 * acc['linear']:.2f} % (linear read-out); "
        f"{run_dir / 'metrics.json'}"
    )


@main.command("run")
@_RUN_DIR
@_CONFIG
@_SET
@_DATA_DIR
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--limit", type=int, default=None, help="Train on the first N digits only.")
@click.pass_context
def run_all(
    ctx: click.Context,
    run_dir: Path,
    config_source: str,
    overrides: tuple[str, ...],
    data_dir: str | None,
    epochs: int | None,
    limit: int | None,
) -> None:
    """Run every stage in order: encode, train, assign, evaluate, fields, reconstruct, curves.

    \b
    Examples:
      stdp-pipeline run results/dc100 --config diehl-cook-100
      stdp-pipeline run results/quick --config scripts/configs/diehl-cook-100-quick.toml
    """
    ctx.invoke(
        encode, run_dir=run_dir, config_source=config_source, overrides=overrides, data_dir=data_dir
    )
    ctx.invoke(train, run_dir=run_dir, epochs=epochs, limit=limit, resume=False)
    ctx.invoke(assign, run_dir=run_dir)
    ctx.invoke(evaluate, run_dir=run_dir)
    ctx.invoke(fields, run_dir=run_dir, sort=None, checkpoint=None, all_checkpoints=False,
               max_neurons=1600)  # fmt: skip
    ctx.invoke(reconstruct, run_dir=run_dir, digits=16, scale="range")
    ctx.invoke(curves, run_dir=run_dir)


if __name__ == "__main__":  # pragma: no cover
    main()
