"""``stdp-pipeline``: the command line, a thin shell over the library's stage functions.

Each command parses its options, calls one library function and reports where the results are.
The stages, their order (the order of ``run``), their summaries in the help and their one-line
results come from the stage table, :mod:`stdp_pipeline.stages.table`. A
:class:`~stdp_pipeline.errors.PipelineError` leaves as ``Error: <one line>`` with exit status 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from stdp_pipeline import __version__
from stdp_pipeline.cli.common import (
    CONTEXT,
    DATA_DIR,
    QUIET,
    RUN_DIR,
    Interrupted,
    echo_result,
    friendly,
    one_line,
    progress_setting,
    resume_hint,
)
from stdp_pipeline.cli.data import data
from stdp_pipeline.cli.report import compare, curves, fields, reconstruct
from stdp_pipeline.cli.seeds import SEEDS, STACK, WORKERS, seeds_option
from stdp_pipeline.cli.sweep import sweep
from stdp_pipeline.stages.table import STAGES

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

_ENGINE = click.option(
    "--engine",
    type=click.Choice(["xla", "native"]),
    default=None,
    help="Sets train.engine and evaluate.engine: xla (compiled TensorFlow, every model, CPU or "
    "GPU) or native (C, Diehl & Cook whole-digit networks, 4-8x faster on a CPU; README "
    "'Speed'). A --set of either key wins.",
)


def _with_engine(engine: str | None, overrides: tuple[str, ...]) -> tuple[str, ...]:
    """``--engine`` as the two overrides it stands for, before the explicit ``--set``s."""
    if engine is None:
        return overrides
    return (f"train.engine={engine}", f"evaluate.engine={engine}", *overrides)


def _doc(text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give the decorated function the docstring ``text`` (click shows it as the help)."""

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        fn.__doc__ = text
        return fn

    return decorate


def _rows(*commands: tuple[str, str]) -> list[str]:
    """Help lines ``  name  summary`` with the summaries aligned."""
    return [f"  {name:12s} {summary}" for name, summary in commands]


def _main_help() -> str:
    """The group help; its stage list is the stage table, in the order `run` runs them."""
    return "\n".join(
        [
            "Unsupervised MNIST learning by STDP in TensorFlow spiking networks "
            "(Diehl & Cook 2015).",
            "",
            "\b",
            "Stages, each reading and writing one run directory:",
            *_rows(*((s.name, s.summary) for s in STAGES)),
            *_rows(("run", "all of the above in order")),
            "And across runs:",
            *_rows(
                ("compare", "the accuracy table against published results"),
                ("sweep", "grids, random samples and seeds of runs, on Ray"),
            ),
            "",
            "\b",
            "Examples:",
            "  stdp-pipeline data check",
            "  stdp-pipeline run results/dc100 --config diehl-cook-100",
            "  stdp-pipeline run results/dc6400 --config diehl-cook-6400",
            "  stdp-pipeline encode results/quick --config diehl-cook-100 \\",
            "      --set data.train_digits=2000 --set data.assign_start=2000 \\",
            "      --set data.assign_digits=1000 --set data.allow_overlap=false",
            "  stdp-pipeline train results/quick",
            "  stdp-pipeline assign results/quick && stdp-pipeline evaluate results/quick",
        ]
    )


def _run_help() -> str:
    """The help of `run`; the stage order is the stage table's."""
    return "\n".join(
        [
            f"Run every stage in order: {', '.join(s.name for s in STAGES)}.",
            "",
            "Each stage runs with the defaults of its own command and prints the same one-line "
            "result.",
            "",
            "\b",
            "Examples:",
            "  stdp-pipeline run results/dc100 --config diehl-cook-100",
            "  stdp-pipeline run results/quick --config scripts/configs/diehl-cook-100-quick.toml",
            "  stdp-pipeline run results/dc100-seeds --config diehl-cook-100 --seeds 0,1,2",
            "  stdp-pipeline run results/dc100-4 --config diehl-cook-100 --seeds 0,1,2,3 \\",
            "      --stack 2 --engine xla --set network.input_delay_max_ms=0",
            "",
            "With --seeds: one run directory per seed, RUN_DIR/seed=<s>, side by side on a local "
            "Ray; the mean and spread over the seeds in RUN_DIR/summary.csv. The same command "
            "again continues. With --stack N each worker trains up to N seeds' networks as one "
            "compiled TensorFlow program (not with input delays or the native engine: those "
            "train one by one).",
        ]
    )


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="stdp-pipeline")
@QUIET
@_doc(_main_help())
def main() -> None:
    pass


main.add_command(data)
main.add_command(sweep)
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
    from stdp_pipeline.io.config import load_config, preset_names

    for name in preset_names():
        c = load_config(name)
        click.echo(
            f"{name:20s} {c.network.n_excitatory:5d} neurons  {c.network.neuron:11s} neurons  "
            f"{c.learning.rule:5s} STDP  {c.train.epochs} epoch(s)"
        )


@config.command("show")
@click.argument("source", metavar="PRESET|FILE")
@_SET
@_ENGINE
@friendly
def config_show(source: str, overrides: tuple[str, ...], engine: str | None) -> None:
    """Print the resolved config (a preset or file plus --set overrides) as TOML."""
    from stdp_pipeline.io.config import load_config, to_toml

    click.echo(to_toml(load_config(source, _with_engine(engine, overrides))))


@config.command("keys")
def config_keys() -> None:
    """List every config key with its default value."""
    from stdp_pipeline.io.config import ExperimentConfig, all_keys

    flat = ExperimentConfig().to_dict()
    for key in all_keys():
        value: Any = flat
        for part in key.split("."):
            value = value[part]
        click.echo(f"{key:32s} {json.dumps(value)}")


@main.command()
@RUN_DIR
@_CONFIG
@_SET
@_ENGINE
@DATA_DIR
@SEEDS
@WORKERS
@QUIET
@click.pass_context
@friendly
def encode(
    ctx: click.Context,
    run_dir: Path,
    config_source: str,
    overrides: tuple[str, ...],
    engine: str | None,
    data_dir: str | None,
    seeds: list[int] | None,
    workers: int | None,
) -> None:
    """Resolve the config and store the digits each stage will see.

    Writes RUN_DIR/config.json, manifest.json, encoded/{train,assign,test}.npz and
    input_raster.png (the input spikes of the first digits). Spikes are never stored: each
    digit's spikes are a pure function of (seed, stage, digit index). A data set that is not in
    the data folder is downloaded there first (checksummed; STDP_NO_DOWNLOAD=1 turns that off).

    With --seeds S,S,...: a seeds folder, one run directory RUN_DIR/seed=<s> per seed, which
    train, assign and evaluate then take as a whole (each seed's run, side by side).

    \b
    Examples:
      stdp-pipeline encode results/dc100 --config diehl-cook-100
      stdp-pipeline encode results/dc100-s1 --config diehl-cook-100 --set seed=1
      stdp-pipeline encode results/dc100-seeds --config diehl-cook-100 --seeds 0,1,2
      stdp-pipeline encode results/dc400-c --config diehl-cook-400 --engine native
    """
    from stdp_pipeline.io.config import load_config
    from stdp_pipeline.stages.encode import run_encode

    overrides = _with_engine(engine, overrides)
    if seeds is not None:
        _seeds(ctx, run_dir, config_source, overrides, seeds, ("encode",), {}, workers, data_dir)
        return

    cfg = load_config(config_source, overrides)
    run = run_encode(
        run_dir, cfg, data_dir=data_dir, command=sys.argv, progress=progress_setting(ctx)
    )
    echo_result("encode", run, run)


@main.command()
@RUN_DIR
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
    help="Continue from the newest checkpoint; ends with the same weights as an uninterrupted run. "
    "With a larger --epochs than the checkpoint's, adds passes to a finished run.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Stop at the first training health flag (a degenerate run), with a checkpoint to "
    "--resume from; without it each flag prints one warning line.",
)
@seeds_option("On a seeds folder (encode --seeds): train these seeds only [default: all of them].")
@WORKERS
@STACK
@QUIET
@click.pass_context
@friendly
def train(
    ctx: click.Context,
    run_dir: Path,
    epochs: int | None,
    limit: int | None,
    resume: bool,
    strict: bool,
    seeds: list[int] | None,
    workers: int | None,
    stack: int,
) -> None:
    """Learn without labels: STDP on the training digits, in order.

    Writes RUN_DIR/model.npz (weights, thresholds), train_log.csv (one row per digit),
    train_curve.csv (one row per chunk) and checkpoints/ every train.checkpoint_every digits.

    RUN_DIR may be a seeds folder (made by encode --seeds or run --seeds): then every seed's
    network is trained, side by side on a local Ray (--workers at a time, default one per core);
    seeds already trained are skipped and a cut-off seed resumes from its checkpoint. With
    --stack N each worker trains up to N seeds' networks as one compiled program.

    \b
    Examples:
      stdp-pipeline train results/dc100
      stdp-pipeline train results/dc100 --limit 2000
      stdp-pipeline train results/dc100 --resume      # after an interruption
      stdp-pipeline train results/dc100 --epochs 3 --resume   # two more passes
      stdp-pipeline train results/dc100 --strict      # stop if training degenerates
      stdp-pipeline train results/dc100-seeds --seeds 0,1
      stdp-pipeline train results/dc100-seeds --stack 4
    """
    from stdp_pipeline.io.atomic import WriteError
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.train import run_train

    options = _train_options(epochs, limit, strict)
    if _on_folder(ctx, run_dir, "train", seeds, workers, options, stack):
        return
    _no_stack(stack, run_dir)

    run = RunDir(run_dir)
    try:
        summary = run_train(
            run,
            epochs=epochs,
            limit=limit,
            resume=resume,
            progress=progress_setting(ctx),
            strict=strict,
        )
    except KeyboardInterrupt:
        raise Interrupted(f"training stopped; {resume_hint(run_dir, epochs, limit)}") from None
    except WriteError as err:  # e.g. a full disk at a checkpoint: say how to go on
        raise one_line(f"{err}; after that, {resume_hint(run_dir, epochs, limit)}") from None
    echo_result("train", run, summary)


@main.command()
@RUN_DIR
@WORKERS
@QUIET
@click.pass_context
@friendly
def assign(ctx: click.Context, run_dir: Path, workers: int | None) -> None:
    """Assign each neuron the class it responds to most (learning off).

    Presents the assignment slice (labelled training digits, never test digits) and writes
    RUN_DIR/assignments.npz. On a seeds folder: every seed's run.

    \b
    Example:
      stdp-pipeline assign results/dc100
    """
    if _on_folder(ctx, run_dir, "assign", None, workers, {}):
        return
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.assign import run_assign

    run = RunDir(run_dir)
    echo_result("assign", run, run_assign(run, progress=progress_setting(ctx)))


@main.command()
@RUN_DIR
@WORKERS
@QUIET
@click.pass_context
@friendly
def evaluate(ctx: click.Context, run_dir: Path, workers: int | None) -> None:
    """Classify the test digits by the assigned neurons' votes.

    Writes RUN_DIR/metrics.json (accuracy per voting scheme, "all_activity" and "proportion",
    and of a linear read-out fitted on the assignment slice, "linear"), confusion.csv and
    confusion.png. On a seeds folder: every seed's run, then the mean and spread over the seeds
    in RUN_DIR/summary.csv.

    \b
    Example:
      stdp-pipeline evaluate results/dc100
    """
    if _on_folder(ctx, run_dir, "evaluate", None, workers, {}):
        return
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.evaluate import run_evaluate

    run = RunDir(run_dir)
    echo_result("evaluate", run, run_evaluate(run, progress=progress_setting(ctx)))


@main.command("run")
@RUN_DIR
@_CONFIG
@_SET
@_ENGINE
@DATA_DIR
@click.option("--epochs", type=int, default=None, help="Override train.epochs.")
@click.option("--limit", type=int, default=None, help="Train on the first N digits only.")
@click.option("--strict", is_flag=True, help="Stop training at the first training health flag.")
@SEEDS
@WORKERS
@STACK
@QUIET
@click.pass_context
@friendly
@_doc(_run_help())
def run_all(
    ctx: click.Context,
    run_dir: Path,
    config_source: str,
    overrides: tuple[str, ...],
    engine: str | None,
    data_dir: str | None,
    epochs: int | None,
    limit: int | None,
    strict: bool,
    seeds: list[int] | None,
    workers: int | None,
    stack: int,
) -> None:
    from stdp_pipeline.io.atomic import WriteError
    from stdp_pipeline.io.config import load_config
    from stdp_pipeline.stages.table import STAGE_NAMES, run_stages

    overrides = _with_engine(engine, overrides)
    finished: list[str] = []
    train_options = _train_options(epochs, limit, strict)
    if seeds is not None:
        options = {"train": train_options}
        stages = STAGE_NAMES
        _seeds(
            ctx, run_dir, config_source, overrides, seeds, stages, options, workers, data_dir, stack
        )
        return
    _no_stack(stack, run_dir)

    def on_result(stage: Any, run: Any, result: Any) -> None:
        finished.append(stage.name)
        click.echo(stage.describe(run, result))

    try:
        run_stages(
            run_dir,
            load_config(config_source, overrides),
            data_dir=data_dir,
            command=sys.argv,
            progress=progress_setting(ctx),
            options={"train": train_options},
            on_result=on_result,
        )
    except (KeyboardInterrupt, WriteError) as err:
        current = STAGE_NAMES[len(finished)] if len(finished) < len(STAGE_NAMES) else "?"
        rest = ", ".join(STAGE_NAMES[len(finished) + 1 :]) or "none"
        if current == "train":
            how = f"{resume_hint(run_dir, epochs, limit)}; then run the stages after it ({rest})"
        elif current == "encode":
            how = "run the same `stdp-pipeline run` again"
        else:
            how = f"run `stdp-pipeline {current} {run_dir}` and the stages after it ({rest})"
        if isinstance(err, WriteError):
            raise one_line(f"{err}; after that, {how}") from None
        raise Interrupted(f"`stdp-pipeline run` stopped in stage '{current}'; {how}") from None


def _train_options(epochs: int | None, limit: int | None, strict: bool) -> dict[str, Any]:
    """The train stage's arguments from ``--epochs``, ``--limit`` and ``--strict``."""
    options: dict[str, Any] = {"epochs": epochs, "limit": limit}
    if strict:  # only when given; the train stage's default is False
        options["strict"] = True
    return options


def _seeds(
    ctx: click.Context,
    run_dir: Path,
    config_source: str,
    overrides: tuple[str, ...],
    seeds: list[int],
    stages: tuple[str, ...],
    options: dict[str, Any],
    workers: int | None,
    data_dir: str | None,
    stack: int = 1,
) -> None:
    """``encode``/``run`` with ``--seeds``: one run directory per seed in the seeds folder."""
    from stdp_pipeline.cli.seeds import new_seeds_spec, run_seeds

    spec = new_seeds_spec(run_dir, config_source, overrides, seeds, stages, options)
    run_seeds(ctx, run_dir, spec, workers=workers, data_dir=data_dir, stack=stack)


def _no_stack(stack: int, run_dir: Path) -> None:
    """``--stack`` is for several seeds: refuse it on a single run."""
    if stack != 1:
        raise one_line(
            f"--stack {stack}: {run_dir} is a single run; --stack trains several seeds at once "
            "(run --seeds 0,1,2, or train on a seeds folder)"
        )


def _on_folder(
    ctx: click.Context,
    run_dir: Path,
    name: str,
    seeds: list[int] | None,
    workers: int | None,
    options: dict[str, Any],
    stack: int = 1,
) -> bool:
    """Run stage ``name`` on every run of the seeds folder ``run_dir`` (``seeds``: these only);
    False when ``run_dir`` is not a seeds folder (the stage then runs on it as on one run)."""
    from stdp_pipeline.cli.seeds import is_seeds_folder, run_seeds
    from stdp_pipeline.sweep.spec import folder_sweep

    if not is_seeds_folder(run_dir):
        if seeds is not None:
            raise one_line(
                f"--seeds: {run_dir} is a single run, not a seeds folder (make one with "
                "`stdp-pipeline encode RUN_DIR --config ... --seeds 0,1,2`)"
            )
        return False
    spec = folder_sweep(run_dir, (name,), options={name: options} if options else None)
    run_seeds(ctx, run_dir, spec, workers=workers, data_dir=None, only_seeds=seeds, stack=stack)
    return True


if __name__ == "__main__":  # pragma: no cover
    main()
