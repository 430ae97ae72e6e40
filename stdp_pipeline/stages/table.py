"""The pipeline's stages in one table: their order, what each does and needs, how ``run`` calls it.

:data:`STAGES` lists the stages in the order ``stdp-pipeline run`` runs them. Each row names the
stage, says in one line what it does (the CLI's help lists these lines), names the stages that
must have finished before it, and gives the library function that does the work with the
keyword arguments ``run`` passes to it (:attr:`Stage.defaults`; the ``fields`` and
``reconstruct`` commands take their option defaults from there too). :meth:`Stage.describe` is
the one-line result a stage command prints, and ``run`` prints it after each stage.

Every function takes the :class:`~stdp_pipeline.io.rundir.RunDir` first, except the stage that
makes the run directory (``encode``, :attr:`Stage.creates_run`), which takes its path and the
config and returns the ``RunDir``.

The stage functions are imported only when a stage runs (:meth:`Stage.load`), so reading the
table (e.g. for ``stdp-pipeline --help``) imports neither TensorFlow nor pandas.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pathlib import Path

    import pandas as pd

    from stdp_pipeline.io.config import ExperimentConfig
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.assign import Assignment


@dataclass(frozen=True, eq=False)
class Stage:
    """One row of the stage table.

    ``name`` is the stage (and CLI command) name; ``summary`` one line of what it does; ``needs``
    the stages that must have finished before it (each of those needs its own); ``function`` the
    library function as ``"module:attribute"``; ``defaults`` the keyword arguments ``run`` calls it
    with (read-only; their keys are every keyword ``run`` may pass); ``result_line`` makes the
    one-line result from ``(run directory, function's return value)``; ``creates_run`` marks the
    stage whose function makes the run directory: it takes ``(path, config, **defaults)`` and
    returns the ``RunDir``.
    """

    name: str
    summary: str
    needs: tuple[str, ...]
    function: str
    defaults: Mapping[str, Any]
    result_line: Callable[[RunDir, Any], str]
    creates_run: bool = False

    def load(self) -> Callable[..., Any]:
        """The stage's library function (imported now)."""
        module, _, attribute = self.function.partition(":")
        return getattr(importlib.import_module(module), attribute)

    def arguments(self, **given: Any) -> dict[str, Any]:
        """:attr:`defaults` with the values of ``given`` put in; keys the stage does not take
        raise ``TypeError``."""
        unknown = sorted(set(given) - set(self.defaults))
        if unknown:
            raise TypeError(
                f"stage '{self.name}' takes no argument(s) {', '.join(unknown)}; "
                f"it takes {', '.join(self.defaults) or 'none'}"
            )
        return {**self.defaults, **given}

    def describe(self, run: RunDir, result: Any) -> str:
        """The one-line result of the stage, from the value its function returned."""
        return self.result_line(run, result)


# --- one-line results ---------------------------------------------------------------------------
def _encoded(run: RunDir, result: RunDir) -> str:
    info = run.manifest()["stages"]["encode"]
    config = run.config()
    return (
        f"encoded {info['train_digits']} training, {info['assign_digits']} assignment and "
        f"{info['test_digits']} test digits into {run} (config {config.name}, "
        f"fingerprint {config.fingerprint()})"
    )


def _trained(run: RunDir, summary: dict) -> str:
    flags = summary.get("health_flags") or {}
    health = f"; training health flags: {', '.join(flags)} (see curves.png)" if flags else ""
    start = summary.get("resumed_from") or 0
    this = f"digits {start} to {summary['digits_seen']} " if start else ""  # this session's
    return (
        f"trained on {summary['digits_seen']} digits ({this}in {summary['wall_s']:.1f} s, "
        f"{summary['digits_per_s']} digits/s, {summary['spikes_per_digit']:.1f} spikes per "
        f"digit); weights in {run.file('model.npz')}{health}"
    )


def _assigned(run: RunDir, result: Assignment) -> str:
    import numpy as np

    from stdp_pipeline.labels import N_CLASSES

    per_class = np.bincount(result.classes[result.classes >= 0], minlength=N_CLASSES)
    return (
        f"assigned {len(result.classes)} neurons; per class {per_class.tolist()}, "
        f"{int((result.classes < 0).sum())} silent"
    )


def _evaluated(run: RunDir, metrics: dict) -> str:
    acc = metrics["accuracy"]
    return (
        f"test accuracy on {metrics['test_digits']} digits: {100 * acc['all_activity']:.2f} % "
        f"(all activity), {100 * acc['proportion']:.2f} % (proportion weighting), "
        f"{100 * acc['linear']:.2f} % (linear read-out; "
        f"{100 * metrics['pixels_linear']:.2f} % on the raw pixels); "
        f"{run.file('metrics.json')}"
    )


def _drawn_fields(run: RunDir, written: list[Path]) -> str:
    if len(written) == 1:
        return f"receptive fields in {written[0]}"
    return f"{len(written)} receptive-field grids in {run}: " + ", ".join(p.name for p in written)


def _reconstructed(run: RunDir, table: pd.DataFrame) -> str:
    overall = table.loc[table["class"] == "all"].iloc[0]
    return (
        f"reconstruction MSE {overall['mse']:.4f} over {int(overall['digits'])} test digits "
        f"(mean test image: {overall['mse_mean_image']:.4f}); "
        f"{run.file('reconstruction.png')}, {run.file('reconstruction.csv')}"
    )


def _drawn_curves(run: RunDir, path: str) -> str:
    return f"learning curves in {path}"


# --- the table ----------------------------------------------------------------------------------
def _stage(
    name: str,
    summary: str,
    needs: tuple[str, ...],
    function: str,
    defaults: Mapping[str, Any],
    result_line: Callable[[RunDir, Any], str],
    *,
    creates_run: bool = False,
) -> Stage:
    return Stage(
        name, summary, needs, function, MappingProxyType(dict(defaults)), result_line, creates_run
    )


#: Every stage, in the order ``stdp-pipeline run`` runs them.
STAGES: tuple[Stage, ...] = (
    _stage(
        "encode",
        "resolve the config, select the digits, store what the network sees",
        (),
        "stdp_pipeline.stages.encode:run_encode",
        {"data_dir": None, "command": None, "progress": None},
        _encoded,
        creates_run=True,
    ),
    _stage(
        "train",
        "learn without labels (STDP), with checkpoints and --resume",
        ("encode",),
        "stdp_pipeline.stages.train:run_train",
        {"epochs": None, "limit": None, "resume": False, "progress": None, "strict": False},
        _trained,
    ),
    _stage(
        "assign",
        "give each neuron the class it answers most (learning off)",
        ("train",),
        "stdp_pipeline.stages.assign:run_assign",
        {"progress": None},
        _assigned,
    ),
    _stage(
        "evaluate",
        "classify the test digits; metrics.json and a confusion matrix",
        ("assign",),
        "stdp_pipeline.stages.evaluate:run_evaluate",
        {"progress": None},
        _evaluated,
    ),
    _stage(
        "fields",
        "every neuron's receptive field in a grid (also per checkpoint)",
        ("train",),
        "stdp_pipeline.stages.fields:run_fields",
        {"sort": None, "checkpoint": None, "all_checkpoints": False, "max_neurons": 1600},
        _drawn_fields,
    ),
    _stage(
        "reconstruct",
        "rebuild test digits from the spike responses",
        ("evaluate",),
        "stdp_pipeline.stages.reconstruct:run_reconstruct",
        {"digits": 16, "scale": "range"},
        _reconstructed,
    ),
    _stage(
        "curves",
        "learning curves from the training log",
        ("train",),
        "stdp_pipeline.stages.curves:run_curves",
        {},
        _drawn_curves,
    ),
)

#: The stage names in table order.
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)


def stage(name: str) -> Stage:
    """The table row of stage ``name`` (``KeyError`` naming the stages if there is none)."""
    for s in STAGES:
        if s.name == name:
            return s
    raise KeyError(f"no stage {name!r}: the stages are {', '.join(STAGE_NAMES)}")


def upstream(name: str) -> tuple[str, ...]:
    """Every stage that stage ``name`` needs, directly or through others, in table order (empty
    for a name that is not in the table)."""
    rows = {s.name: s for s in STAGES}
    found: set[str] = set()
    todo = [name]
    while todo:
        row = rows.get(todo.pop())
        for need in row.needs if row is not None else ():
            if need not in found:
                found.add(need)
                todo.append(need)
    return tuple(n for n in STAGE_NAMES if n in found)


def dependents(name: str) -> tuple[str, ...]:
    """Every stage downstream of stage ``name`` (that needs it, directly or through others), in
    table order: what a new run of ``name`` makes stale (empty for a name not in the table)."""
    return tuple(s for s in STAGE_NAMES if name in upstream(s))


def run_stages(
    path: str | os.PathLike[str],
    config: ExperimentConfig,
    *,
    data_dir: str | os.PathLike[str] | None = None,
    command: list[str] | None = None,
    progress: bool | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    on_result: Callable[[Stage, RunDir, Any], None] | None = None,
) -> RunDir:
    """Run every stage of the table, in order, on the run directory ``path`` made from ``config``.

    Each stage's function is called with its :attr:`Stage.defaults`, with ``data_dir``,
    ``command`` and ``progress`` put in for the stages that take them, and then
    ``options[stage name]`` (e.g. ``{"train": {"epochs": 2, "limit": 500}}``; a key a stage does
    not take raises ``TypeError`` before anything runs). After each stage ``on_result(stage, run,
    value returned)`` is called, e.g. to print :meth:`Stage.describe`. Returns the run directory.
    A stage that fails raises and stops the run; the stages before it stay recorded. The run
    directory's lock is held from the first stage to the last, so no other process can start a
    stage on it in between.
    """
    options = dict(options or {})
    names = [s.name for s in STAGES]
    unknown = sorted(set(options) - set(names))
    if unknown:
        raise TypeError(
            f"options for unknown stage(s) {', '.join(unknown)}: the stages are {', '.join(names)}"
        )
    if not STAGES[0].creates_run:
        raise ValueError(f"the first stage, '{STAGES[0].name}', does not make the run directory")
    shared = {"data_dir": data_dir, "command": command, "progress": progress}
    calls = []  # every stage's arguments, checked before the first stage starts
    for s in STAGES:
        given = {k: v for k, v in shared.items() if k in s.defaults}
        calls.append((s, s.arguments(**{**given, **options.get(s.name, {})})))
    from stdp_pipeline.io.rundir import RunDir

    run = None
    with RunDir(path).lock("run", create=True):  # one lock across the stages
        for s, kwargs in calls:
            if s.creates_run:
                run = result = s.load()(path, config, **kwargs)
            else:
                result = s.load()(run, **kwargs)
            if on_result is not None:
                on_result(s, run, result)
    return run
