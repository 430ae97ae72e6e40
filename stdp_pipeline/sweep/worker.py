"""One run of a sweep, as a Ray task runs it: the stages on one run directory, resumable.

:func:`run_group` is what each Ray task calls (the engine wraps it with ``ray.remote``; this
module never imports Ray, so it can be called and tested without it): :func:`run_point` for a
task of one run, or several seeds of one point whose networks train as one stack. It

* caps TensorFlow's thread pools at the task's CPU share before TensorFlow starts in this worker
  process (``TF_NUM_INTRAOP_THREADS``/``TF_NUM_INTEROP_THREADS``, ``OMP_NUM_THREADS``, or
  ``tf.config.threading``), so that tasks sharing a machine do not fight over its cores;
* skips the stages the run directory records as finished, and trains with ``resume=True`` when
  the run has checkpoints: a task rerun after its worker died (Ray reruns it, up to
  ``max_retries`` times) continues from the last checkpoint and ends with the same weights;
* returns a small dict, never raises for a failing stage: ``{"status": "failed", "error":
  "<stage>: <one line>", ...}``, so that one bad point never stops the others.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import socket
import sys
import time
import traceback
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stdp_pipeline.sweep import WORKER_FILE

#: Environment variables that fix TensorFlow's (and OpenMP's) thread pools when read at start-up.
THREAD_VARIABLES = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS")
#: The threads per pool TensorFlow started with in this process, where set here.
_TF_THREADS: int | None = None


def limit_threads(threads: int, *, gpu: bool = False) -> int | None:
    """Cap TensorFlow at ``threads`` threads per pool in this process; returns the count
    TensorFlow runs with (None where it had started earlier at a count not set here).

    Before TensorFlow starts, the environment variables are enough (TensorFlow reads them when it
    creates its pools), so a task that fails before it needs TensorFlow never imports it. Where
    TensorFlow was imported but has not started yet, ``tf.config.threading`` sets the pools; where
    it has started (an earlier task in the same worker process, given the same share by the same
    sweep), its pools stay as they are.
    """
    global _TF_THREADS
    if gpu:  # several tasks may share one GPU: take memory as needed, not all of it at once
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    if "tensorflow" not in sys.modules:
        for name in THREAD_VARIABLES:
            os.environ[name] = str(threads)
        _TF_THREADS = threads
        return threads
    from stdp_pipeline._tf import tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        _TF_THREADS = threads
    except RuntimeError:  # TensorFlow already running in this worker
        pass
    return _TF_THREADS


def run_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run the stages ``task["stages"]`` on the run directory ``task["path"]``.

    ``task`` holds ``path`` (absolute), ``config`` (``ExperimentConfig.to_dict()``), ``stages``
    (names, in table order), ``data_dir`` (or None), ``command`` (recorded in the manifest),
    ``threads`` (TensorFlow threads), ``gpu`` (whether the task holds a GPU share) and
    ``options`` (optional: per stage name, arguments beyond the stage's defaults, e.g.
    ``{"train": {"epochs": 2}}``).

    Returns ``{"status": "finished" | "failed", "error": one line or None, "stage": the stage
    that failed or None, "traceback": text or None, "accuracy": metrics.json's accuracy or None,
    "tf_threads", "host", "pid", "wall_s", "resumed_from"}``.
    """
    t0 = time.perf_counter()
    path = Path(task["path"])
    out = _new_result()
    current = None
    try:
        from stdp_pipeline.io.rundir import RunDir

        out["tf_threads"] = limit_threads(int(task["threads"]), gpu=bool(task.get("gpu")))
        with RunDir(path).lock("sweep", create=True):  # one process per run directory
            _note_worker(path, out)
            if task.get("trained_in"):
                current = "train"
                _take_training(path, task)
            for current in task["stages"]:
                value = _run_stage(current, path, task)
                if current == "train":
                    out["resumed_from"] = int(value.get("resumed_from", 0))
                if current == "evaluate":
                    out["accuracy"] = dict(value["accuracy"])
            current = None
        out["status"] = "finished"
    except Exception as err:  # noqa: BLE001 - every failure is recorded, none stops the sweep
        _failed(out, current, err)
    out["wall_s"] = round(time.perf_counter() - t0, 3)
    return out


def run_group(tasks: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Run several runs of one point (configs equal but for the seed) in this process, their
    networks training as one stack (:func:`stdp_pipeline.stages.train.run_train_stack`): each
    stage before and after ``train`` runs per run as :func:`run_point` runs it; a run that fails
    a stage drops out of the later ones; a failed stacked training fails every run in it.
    Returns one :func:`run_point` result per task, in order."""
    if len(tasks) == 1:
        return [run_point(tasks[0])]
    t0 = time.perf_counter()
    outs = [_new_result() for _ in tasks]
    alive = list(range(len(tasks)))
    try:
        from stdp_pipeline.io.rundir import RunDir

        threads = limit_threads(int(tasks[0]["threads"]), gpu=bool(tasks[0].get("gpu")))
        with contextlib.ExitStack() as held:
            for task, out in zip(tasks, outs, strict=True):
                out["tf_threads"] = threads
                held.enter_context(RunDir(Path(task["path"])).lock("sweep", create=True))
                _note_worker(Path(task["path"]), out)
            for name in tasks[0]["stages"]:
                if name == "train":
                    alive = _train_group(tasks, outs, alive)
                    continue
                for k in list(alive):
                    try:
                        value = _run_stage(name, Path(tasks[k]["path"]), tasks[k])
                    except Exception as err:  # noqa: BLE001 - recorded; the others go on
                        _failed(outs[k], name, err)
                        alive.remove(k)
                        continue
                    if name == "evaluate":
                        outs[k]["accuracy"] = dict(value["accuracy"])
    except Exception as err:  # noqa: BLE001 - every failure is recorded, none stops the sweep
        for k in alive:
            _failed(outs[k], None, err)
        alive = []
    for k in alive:
        outs[k]["status"] = "finished"
    wall = round(time.perf_counter() - t0, 3)
    for out in outs:
        out["wall_s"] = wall
    return outs


def _new_result() -> dict[str, Any]:
    """A run's result before anything ran: failed, with no error yet."""
    return {
        "status": "failed",
        "error": None,
        "stage": None,
        "traceback": None,
        "accuracy": None,
        "resumed_from": None,
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }


def _train_group(
    tasks: Sequence[Mapping[str, Any]], outs: list[dict[str, Any]], alive: list[int]
) -> list[int]:
    """The ``train`` stage of the runs ``alive`` (indices into ``tasks``) as one stack: those
    that finished it before are skipped. Returns the runs still alive."""
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.table import stage
    from stdp_pipeline.stages.train import run_train_stack

    todo = []
    for k in alive:
        run = RunDir(Path(tasks[k]["path"]))
        if run.stage_done("train"):
            outs[k]["resumed_from"] = int(run.manifest()["stages"]["train"].get("resumed_from", 0))
        else:
            todo.append(k)
    if not todo:
        return alive
    row = stage("train")
    task = tasks[todo[0]]
    shared = {"progress": False}
    given = {k: v for k, v in shared.items() if k in row.defaults}
    kwargs = row.arguments(**given, **task.get("options", {}).get("train", {}))
    kwargs["resume"] = True  # runs with checkpoints go on from them (a rerun task); others start
    try:
        summaries = run_train_stack([RunDir(Path(tasks[k]["path"])) for k in todo], **kwargs)
    except Exception as err:  # noqa: BLE001 - recorded for every run of the stack
        for k in todo:
            _failed(outs[k], "train", err)
        return [k for k in alive if k not in todo]
    for k, summary in zip(todo, summaries, strict=True):
        outs[k]["resumed_from"] = int(summary.get("resumed_from", 0))
    return alive


def _failed(out: dict[str, Any], stage: str | None, err: BaseException) -> None:
    """Record ``err`` (raised in ``stage``) in a run's result, as :func:`run_point` does."""
    from stdp_pipeline.errors import PipelineError

    line = " ".join(str(err).split()) or type(err).__name__
    if not isinstance(err, PipelineError):
        line = f"{type(err).__name__}: {line}"
    out["stage"] = stage
    out["error"] = f"{stage}: {line}" if stage else line
    out["traceback"] = "".join(traceback.format_exception(err))


def _run_stage(name: str, path: Path, task: Mapping[str, Any]) -> Any:
    """Run stage ``name`` unless the run directory records it as finished (then return what the
    manifest holds for it)."""
    from stdp_pipeline.io.config import ExperimentConfig
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.table import stage

    row = stage(name)
    run = RunDir(path)
    if run.finished(name):  # done before this task
        if name == "evaluate":
            return run.read_json("metrics.json")
        return run.manifest()["stages"][name]
    shared = {"data_dir": task.get("data_dir"), "command": list(task["command"]), "progress": False}
    given = {k: v for k, v in shared.items() if k in row.defaults}
    kwargs = row.arguments(**given, **task.get("options", {}).get(name, {}))
    if name == "train":
        kwargs["resume"] = bool(run.checkpoints())  # a task rerun after its worker died
    if row.creates_run:
        return row.load()(path, ExperimentConfig.from_dict(task["config"]), **kwargs)
    return row.load()(run, **kwargs)


def _take_training(path: Path, task: Mapping[str, Any]) -> None:
    """Make the run directory ``path`` (unless it trained already) with ``encode`` and ``train``
    taken over from the run directory ``task["trained_in"]``, whose config must differ from this
    run's only in the sections read after training
    (:data:`~stdp_pipeline.sweep.spec.AFTER_TRAINING`)."""
    from stdp_pipeline.errors import PipelineError
    from stdp_pipeline.io.config import ExperimentConfig, diff
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.sweep.spec import training_key

    run = RunDir(path)
    if run.finished("train"):
        return
    config = ExperimentConfig.from_dict(task["config"])
    source = RunDir(task["trained_in"])
    theirs = source.config()
    if training_key(theirs) != training_key(config):
        keys = "; ".join(diff(theirs.to_dict(), config.to_dict())[:3])
        raise PipelineError(f"{source} cannot lend its training to {path}: configs differ ({keys})")
    run = RunDir.create(path, config, command=list(task["command"]))
    run.adopt(source, ("encode", "train"))


def _note_worker(path: Path, info: Mapping[str, Any]) -> None:
    """Write ``worker.json`` (host, process id, start time) into the run directory."""
    from stdp_pipeline.io import atomic

    path.mkdir(parents=True, exist_ok=True)
    record = {
        "host": info["host"],
        "pid": info["pid"],
        "tf_threads": info.get("tf_threads"),
        "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    atomic.write_json(path / WORKER_FILE, record)
