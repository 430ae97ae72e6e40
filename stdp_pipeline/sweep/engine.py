"""Running a sweep on Ray: a local Ray started for the sweep, or an existing cluster.

:func:`run_sweep` takes a resolved :class:`~stdp_pipeline.sweep.spec.SweepSpec` and a sweep
folder and

1. checks the folder (a new sweep needs an empty or new folder; ``resume`` continues one) and
   every existing run directory's config against the sweep's, before anything runs;
2. skips the runs that have finished every stage (their results stay in the summary), and those
   that failed before unless ``retry_failed``; Ray starts only if some run is left to do;
3. starts Ray (only now is Ray imported): with no ``address``, a local Ray for this sweep alone
   (no dashboard front end, its files in a temporary folder under /tmp, its workers' output
   kept off the terminal) with ``workers`` task slots (default: one per core); with
   ``address``, the existing cluster at that address (``auto``, ``host:6379`` or
   ``ray://host:10001``);
4. runs each remaining run as one Ray task (:func:`~stdp_pipeline.sweep.worker.run_point`),
   or, with ``stack`` > 1, up to ``stack`` seeds of one point as one task whose networks train
   as one stack (:func:`~stdp_pipeline.sweep.worker.run_group`), each task requesting
   ``cpus_per_task`` CPUs (default: the cores divided among the workers, at least 1; on a
   cluster 1) and, where the cluster has GPUs, a share of one; TensorFlow in the task uses
   that many threads. Ray reruns a task whose worker process died (``max_retries``, default 2);
   the rerun resumes training from the run's last checkpoint;
   Runs whose configs differ only in ``evaluate.*`` share one training
   (:func:`shared_training`): one trains, the others wait for it and take its ``encode`` and
   ``train`` over (:meth:`~stdp_pipeline.io.rundir.RunDir.adopt`), then run the later stages;
5. records each failed run's one-line error in ``<run>/failed.json`` (the others go on), and
   shows one progress bar: runs done out of those to do, failed so far, ETA, and the best point
   so far (mean over its finished seeds); Ray's own messages go to ``<sweep folder>/ray.log``;
6. on Ctrl-C cancels what runs, shuts Ray down, and still writes the summary; the runs that were
   cut off keep their checkpoints, and ``--resume`` continues them;
7. writes the summary (:func:`~stdp_pipeline.sweep.summary.write_summary`).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stdp_pipeline._quiet import stderr_to_devnull
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import atomic
from stdp_pipeline.progress import Progress
from stdp_pipeline.sweep import FAILED_FILE, SWEEP_FILE
from stdp_pipeline.sweep.spec import AFTER_TRAINING, RunSpec, SweepSpec, training_key
from stdp_pipeline.sweep.summary import run_status, write_summary

#: Seconds between two checks for finished tasks (the Ctrl-C latency, too).
_POLL_S = 0.5
#: Ray's own messages during a sweep (a worker died, a task retried), in the sweep folder.
RAY_LOG = "ray.log"
#: The local Ray's shared-memory object store: tasks pass small dicts only.
_OBJECT_STORE_BYTES = 128 * 1024**2


#: The advice in messages of ``sweep`` (``run_sweep``'s ``hints`` rewords it for other commands).
_HINTS = {
    "continue": "continue with --resume",
    "changed": "the sweep file changed since this run was made: give another --out, or remove "
    "that run directory",
}


class SweepInterrupted(Exception):
    """Ctrl-C stopped the sweep; the message says what finished and how to continue."""


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did: the folder, the counts (``skipped``: finished before;
    ``failed_before``: failed before and not run again), the failed runs (path, error; those of
    before too), the best point (name, mean accuracy, seeds) and the summary files."""

    folder: Path
    total: int
    skipped: int
    failed_before: int = 0
    finished: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)
    best: tuple[str, float, int] | None = None
    summary: dict[str, Path] = field(default_factory=dict)
    ray: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Slots:
    """How the sweep uses Ray: ``workers`` tasks at once (None: as many as the cluster fits),
    ``cpus`` and ``gpus`` requested per task, ``threads`` for TensorFlow in each task."""

    workers: int | None
    cpus: float
    gpus: float
    threads: int


def cores() -> int:
    """The cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def default_folder(spec: SweepSpec) -> Path:
    """Where a sweep goes without ``--out``: ``results/sweeps/<name>``."""
    return Path("results") / "sweeps" / spec.name


def run_sweep(
    spec: SweepSpec,
    folder: str | os.PathLike[str],
    *,
    workers: int | None = None,
    address: str | None = None,
    resume: bool = False,
    retry_failed: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    progress: bool | None = None,
    command: Sequence[str] = (),
    say: Callable[[str], None] | None = None,
    only_seeds: Sequence[int] | None = None,
    hints: Mapping[str, str] | None = None,
    stack: int = 1,
) -> SweepOutcome:
    """Run the sweep ``spec`` into ``folder`` (see the module docstring). Returns what was done;
    raises :class:`SweepInterrupted` after Ctrl-C (the summary is written first) and
    :class:`PipelineError` for a folder or setting that cannot work. ``say`` gets a line or two
    about what is about to run (the CLI prints them).

    ``resume`` continues the sweep in ``folder``: finished runs are skipped, runs cut off (Ctrl-C,
    a lost cluster) run again from their checkpoints, and runs that failed stay failed (as in Ray
    Tune) unless ``retry_failed`` (which implies ``resume``) runs them again too.
    ``only_seeds`` runs those seeds' runs alone; the others stay as they are, in the record and
    the summary (``train FOLDER --seeds 0,2`` on a seeds folder). ``hints`` words the advice
    in messages for another command than ``sweep``: ``"continue"`` (after Ctrl-C) and
    ``"changed"`` (a run directory made under another config). ``stack``: at most that many
    seeds of one point go to one Ray task, whose networks train as one stack
    (:func:`~stdp_pipeline.sweep.worker.run_group`)."""
    hints = {**_HINTS, **(hints or {})}
    if workers is not None and workers < 1:
        raise PipelineError(f"--workers {workers}: must be >= 1")
    if stack < 1:
        raise PipelineError(f"--stack {stack}: must be >= 1")
    folder = Path(folder).absolute()
    resume = resume or retry_failed
    _check_folder(folder, spec, resume, hints["changed"])
    if only_seeds is not None:
        missing = sorted(set(only_seeds) - set(spec.seeds))
        if missing:
            raise PipelineError(
                f"--seeds: seed {missing[0]} is not in {folder} (its seeds: "
                f"{', '.join(map(str, spec.seeds))})"
            )
    chosen = [r for r in spec.runs if only_seeds is None or r.seed in only_seeds]
    status = {r.relpath: run_status(folder / r.relpath, spec.stages) for r in chosen}
    done = [r for r in chosen if status[r.relpath] == "finished"]
    kept = [] if retry_failed else [r for r in chosen if status[r.relpath] == "failed"]
    todo = [r for r in chosen if r not in done and r not in kept]
    # all the first seeds first, so that the whole grid shows early
    todo.sort(key=lambda r: spec.seeds.index(r.seed))
    outcome = SweepOutcome(folder, len(chosen), skipped=len(done), failed_before=len(kept))
    outcome.failed = [(r.relpath, _recorded_error(folder / r.relpath)) for r in kept]
    # only encode reads the data set; the later stages read what encode stored in each run
    encodes = todo and "encode" in spec.stages
    data = _data_dir(spec, data_dir, progress, local=address is None) if encodes else None
    plan = {**spec.plan(), "updated": _now()}
    atomic.write_json(folder / SWEEP_FILE, plan)
    say = say or (lambda line: None)
    before = [f"{len(done)} finished before, skipped"] if done else []
    if kept:
        before.append(f"{len(kept)} failed before, skipped (--retry-failed runs them again)")
    if spec.axes or len(spec.points) > 1:
        what = f"sweep {spec.name}: {len(spec.points)} point(s) x {len(spec.seeds)} seed(s) = "
    else:  # a seeds folder: one config, several seeds
        seeds = [r.seed for r in chosen]
        what = f"{', '.join(spec.stages)} of seeds {','.join(map(str, seeds))}: "
    say(f"{what}{len(chosen)} run(s) in {folder}" + "".join(f"; {b}" for b in before))
    if todo:
        try:
            _run_on_ray(
                spec, folder, todo, outcome, workers, address, data, progress, command, say, stack,
                shared_training(spec, folder, todo),
            )  # fmt: skip
        except KeyboardInterrupt:
            outcome.summary = write_summary(folder)[1]
            finished = outcome.skipped + outcome.finished
            left = outcome.total - finished - len(outcome.failed)
            raise SweepInterrupted(
                f"{finished} of {outcome.total} runs finished, {len(outcome.failed)} failed, "
                f"{left} not done (summary so far in {outcome.summary['summary']}); "
                f"{hints['continue']}"
            ) from None
    table, outcome.summary = write_summary(folder)
    if len(table) and not table["accuracy_mean"].isna().iloc[0]:
        top = table.iloc[0]
        outcome.best = (str(top["point"]), float(top["accuracy_mean"]), int(top["seeds"]))
    return outcome


def _recorded_error(run_dir: Path) -> str:
    """The one-line error a failed run recorded in ``failed.json``."""
    import json

    try:
        return str(json.loads((run_dir / FAILED_FILE).read_text(encoding="utf-8"))["error"])
    except (OSError, ValueError, KeyError, TypeError):
        return "failed (no message recorded)"


# --- before Ray --------------------------------------------------------------------------------
def _check_folder(folder: Path, spec: SweepSpec, resume: bool, changed: str) -> None:
    from stdp_pipeline.io.rundir import CONFIG_FILE, RunDir

    if folder.exists() and not folder.is_dir():
        raise PipelineError(f"{folder} is a file, not a folder: give --out a folder")
    if (folder / SWEEP_FILE).exists():
        started = any(p.is_dir() for p in folder.iterdir())  # a run directory was begun
        if started and not resume:
            raise PipelineError(
                f"{folder} already holds a sweep: add --resume to continue it (finished runs "
                "are skipped), or give another --out"
            )
    elif folder.is_dir() and any(folder.iterdir()):
        raise PipelineError(f"{folder} is not empty and holds no sweep: give a new --out folder")
    for run in spec.runs:
        path = folder / run.relpath
        if (path / CONFIG_FILE).is_file():
            try:
                RunDir(path).check_config(run.config)
            except PipelineError as err:
                raise PipelineError(f"{err} ({changed})") from None
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PipelineError(f"cannot create the sweep folder {folder}: {err.strerror}") from None


def _data_dir(
    spec: SweepSpec, data_dir: str | os.PathLike[str] | None, progress: bool | None, local: bool
) -> str | None:
    """The data folder to hand to the tasks (absolute). On a local Ray each data set is checked
    (and downloaded if missing) here, once, rather than by every task at the same time; the
    tasks then get the folder this process found it in. On a cluster every node reads its own
    ``--data-dir`` or ``STDP_DATA_DIR`` (or downloads on first use)."""
    from stdp_pipeline.io import data as datasets

    if not local:
        return str(Path(data_dir).absolute()) if data_dir else None
    for name in sorted({r.config.data.dataset for r in spec.runs}):
        for split in ("train", "test"):
            datasets.load_split(name, split, data_dir, progress=progress)
    if data_dir:
        return str(Path(data_dir).absolute())
    if os.environ.get(datasets.ENV_DATA_DIR, "").strip():
        return None  # the tasks inherit STDP_DATA_DIR
    return str(Path.cwd().absolute() / "data")  # the default ./data/<dataset>, wherever Ray runs


# --- Ray ---------------------------------------------------------------------------------------
def _run_on_ray(
    spec: SweepSpec,
    folder: Path,
    todo: list[RunSpec],
    outcome: SweepOutcome,
    workers: int | None,
    address: str | None,
    data_dir: str | None,
    progress: bool | None,
    command: Sequence[str],
    say: Callable[[str], None],
    stack: int = 1,
    sources: Mapping[str, str] | None = None,
) -> None:
    from stdp_pipeline.sweep.worker import run_group

    sources = dict(sources or {})
    with _ray_session(spec, workers, address, folder / RAY_LOG) as (ray, slots, info):
        outcome.ray = info
        at_once = f"{slots.workers} at a time" if slots.workers else "as many as fit at a time"
        gpu = f", {slots.gpus:g} GPU" if slots.gpus else ""
        trains = [r for r in todo if r.relpath not in sources]
        groups = _groups(trains, stack)
        if stack > 1:
            why = next((r.config.stack_problem() for r in trains if r.config.stack_problem()), None)
            if why is not None:
                say(f"--stack {stack}: {why}; those runs train one per task")
        what = f"{len(todo)} run(s)"
        if len(groups) < len(trains):
            what += f" as {len(groups)} task(s) of up to {stack} networks trained as one stack"
        # runs that take their training over: queued once the run they take it from finished
        waiting: dict[str, list[RunSpec]] = {}
        for run in todo:
            if run.relpath in sources:
                waiting.setdefault(sources[run.relpath], []).append(run)
        in_todo = {r.relpath for r in todo}
        for source in [s for s in waiting if s not in in_todo]:  # trained before this sweep ran
            groups[:0] = [[run] for run in waiting.pop(source)]
        if sources:
            what += (
                f"; {len(sources)} of them differ from another only in "
                f"{', '.join(f'{k}.*' for k in AFTER_TRAINING)} and take its training over"
            )
        say(
            f"running {what} on {'a local Ray' if address is None else address} "
            f"({info['cluster_cpus']:g} CPUs): {at_once}, each {slots.cpus:g} CPU{gpu} and "
            f"{slots.threads} TensorFlow thread(s)"
        )
        plan = {**spec.plan(), "updated": _now(), "ray": info}
        atomic.write_json(folder / SWEEP_FILE, plan)
        remote = ray.remote(
            num_cpus=slots.cpus,
            num_gpus=slots.gpus,
            max_retries=spec.resources.max_retries,
            retry_exceptions=False,
        )(run_group)
        best = _Best(spec.metric)
        for run in spec.runs:
            if run not in todo:
                best.add_from_disk(run, folder / run.relpath)
        queue = list(groups)
        pending: dict[Any, list[RunSpec]] = {}
        desc = f"sweep {spec.name}" + (
            f" ({outcome.skipped} done before)" if outcome.skipped else ""
        )
        bar = Progress(len(todo), desc, unit="runs", enabled=progress)
        try:
            while queue or pending:
                while queue and (slots.workers is None or len(pending) < slots.workers):
                    group = queue.pop(0)
                    tasks = [
                        _task(run, folder, spec, data_dir, command, slots, sources.get(run.relpath))
                        for run in group
                    ]
                    pending[remote.remote(tasks)] = group
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=_POLL_S)
                for ref in ready:
                    group = pending.pop(ref)
                    results = _result(ray, ref, spec.resources.max_retries, len(group))
                    for run, result in zip(group, results, strict=True):
                        done = [(run, result)]
                        if result["status"] == "finished":  # its takers go next
                            queue[:0] = [[taker] for taker in waiting.pop(run.relpath, [])]
                        else:  # its takers fail with it
                            done += [
                                (taker, _not_trained(run.relpath, result))
                                for taker in waiting.pop(run.relpath, [])
                            ]
                        for each, outcome_of in done:
                            _record(folder / each.relpath, outcome_of)
                            if outcome_of["status"] == "finished":
                                outcome.finished += 1
                                best.add(each, outcome_of.get("accuracy"))
                            else:
                                outcome.failed.append((each.relpath, outcome_of["error"]))
                            bar.update(1, failed=len(outcome.failed), **best.postfix())
        except BaseException:
            bar.close(failed=True)
            for ref in pending:  # Ctrl-C: stop what runs; checkpoints stay for --resume
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        bar.close()


@contextlib.contextmanager
def _ray_session(
    spec: SweepSpec, workers: int | None, address: str | None, log: Path
) -> Iterator[tuple[Any, Slots, dict[str, Any]]]:
    """Start (or join) Ray, yield ``(ray module, slots, description)``, shut it down at the end
    (a local Ray is stopped; a cluster is only disconnected from). Ray's messages to the driver
    (a worker died, a task is retried) are appended to ``log`` instead of the terminal."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage report, no notice about it
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    import ray

    temp = None
    res = spec.resources
    if address is None:
        n_cores = cores()
        cpus = res.cpus_per_task or max(1, n_cores // (workers or n_cores))
        workers = workers or max(1, int(n_cores // cpus))
        temp = tempfile.mkdtemp(prefix="stdp-ray-", dir="/tmp" if Path("/tmp").is_dir() else None)
        kwargs: dict[str, Any] = {
            "num_cpus": max(1, int(round(workers * cpus))),
            "include_dashboard": False,
            "_temp_dir": temp,
            "object_store_memory": _OBJECT_STORE_BYTES,
        }
    else:
        cpus = res.cpus_per_task or 1
        kwargs = {"address": address}
    with stderr_to_devnull("STDP_RAY_LOGS"):
        try:
            ray.init(
                **kwargs,
                log_to_driver=False,
                logging_level=logging.ERROR,
                configure_logging=True,
            )
        except Exception as err:  # noqa: BLE001 - Ray's own errors are many; say it in one line
            if temp:
                shutil.rmtree(temp, ignore_errors=True)
            where = f"the Ray cluster at {address}" if address else "a local Ray"
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise PipelineError(f"cannot start {where}: {first}") from None
    try:
        total = ray.cluster_resources()
        n_gpus = float(total.get("GPU", 0.0))
        n_cpus = float(total.get("CPU", 0.0))
        if cpus > n_cpus:
            raise PipelineError(
                f"cpus_per_task = {cpus}: the Ray cluster has only {n_cpus:g} CPUs in all"
            )
        slots_at_once = workers or max(1, int(n_cpus // cpus))
        if res.gpus_per_task is not None:
            gpus = float(res.gpus_per_task)
            if gpus > 0 and n_gpus == 0:
                raise PipelineError(f"gpus_per_task = {gpus:g}: the Ray cluster has no GPU")
        else:  # share the GPUs among the tasks that run at once, one GPU at most each
            gpus = min(1.0, int(100 * n_gpus / slots_at_once) / 100) if n_gpus else 0.0
        slots = Slots(workers, float(cpus), gpus, max(1, int(cpus)))
        info = {
            "address": address or "local",
            "cluster_cpus": n_cpus,
            "cluster_gpus": n_gpus,
            "workers": slots.workers,
            "cpus_per_task": slots.cpus,
            "gpus_per_task": slots.gpus,
            "tf_threads": slots.threads,
            "max_retries": res.max_retries,
            "temp_dir": temp,
        }
        with _messages_to(ray, log):
            yield ray, slots, info
    finally:
        with stderr_to_devnull("STDP_RAY_LOGS"), contextlib.suppress(Exception):
            ray.shutdown()
        if temp:
            shutil.rmtree(temp, ignore_errors=True)


@contextlib.contextmanager
def _messages_to(ray: Any, log: Path) -> Iterator[None]:
    """Append the messages Ray's driver prints about the cluster (``(raylet) A worker died ...``,
    ``Task ... will be retried``) to ``log``, with the time, instead of printing them over the
    progress bar. Ray prints them from a thread of its own through
    ``ray._private.worker.print_to_stdstream``; where a Ray version has no such function, its
    messages stay on the terminal (``STDP_RAY_LOGS=1`` keeps them there too)."""
    module = getattr(getattr(ray, "_private", None), "worker", None)
    original = getattr(module, "print_to_stdstream", None)
    if original is None or os.environ.get("STDP_RAY_LOGS") == "1":
        yield
        return

    def to_log(data: dict[str, Any], *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(Exception), open(log, "a", encoding="utf-8") as fh:
            for line in data.get("lines", []):
                fh.write(f"{_now()} ({data.get('pid', 'ray')}) {line}\n")

    module.print_to_stdstream = to_log
    try:
        yield
    finally:
        module.print_to_stdstream = original


def _task(
    run: RunSpec,
    folder: Path,
    spec: SweepSpec,
    data_dir: str | None,
    command: Sequence[str],
    slots: Slots,
    trained_in: str | None = None,
) -> dict[str, Any]:
    return {
        "path": str(folder / run.relpath),
        "trained_in": None if trained_in is None else str(folder / trained_in),
        "config": run.config.to_dict(),
        "stages": list(spec.stages),
        "data_dir": data_dir,
        "command": list(command),
        "threads": slots.threads,
        "gpu": slots.gpus > 0,
        "options": {name: dict(opts) for name, opts in spec.options.items()},
    }


def shared_training(spec: SweepSpec, folder: Path, todo: Sequence[RunSpec]) -> dict[str, str]:
    """The runs of ``todo`` that take their training over from another run of the sweep
    (``relpath -> relpath``): runs whose configs differ only in the sections read after
    training (:data:`~stdp_pipeline.sweep.spec.AFTER_TRAINING`, e.g. a sweep of
    ``evaluate.inh_to_exc_weight``) learn the same network, so one of them trains (a run that
    trained before, else the first to do) and the others copy its ``encode`` and ``train``
    (:meth:`~stdp_pipeline.io.rundir.RunDir.adopt`). Only when the sweep runs both stages."""
    if not {"encode", "train"} <= set(spec.stages):
        return {}
    groups: dict[str, list[RunSpec]] = {}
    for run in spec.runs:
        groups.setdefault(training_key(run.config), []).append(run)
    todo_paths = {r.relpath for r in todo}
    sources: dict[str, str] = {}
    for runs in groups.values():
        state = {r.relpath: _training_state(folder / r.relpath) for r in runs}
        trained = [r for r in runs if state[r.relpath] == "trained"]
        # a run that began training on its own (cut off before) goes on from its checkpoint
        begun = [r for r in runs if r.relpath in todo_paths and state[r.relpath] == "begun"]
        takers = [r for r in runs if r.relpath in todo_paths and state[r.relpath] == "none"]
        if trained:
            source = trained[0]
        elif begun:
            source = begun[0]
        elif takers:
            source = takers.pop(0)
        for run in takers:
            sources[run.relpath] = source.relpath
    return sources


def _training_state(path: Path) -> str:
    """``"trained"`` if the run directory ``path`` holds a finished, current ``train`` stage,
    ``"begun"`` if it holds training checkpoints only, else ``"none"``."""
    from stdp_pipeline.io.rundir import CONFIG_FILE, RunDir

    if not (path / CONFIG_FILE).is_file():
        return "none"
    try:
        run = RunDir(path)
        if run.finished("train"):
            return "trained"
        return "begun" if run.checkpoints() else "none"
    except PipelineError:
        return "none"


def _not_trained(source: str, result: Mapping[str, Any]) -> dict[str, Any]:
    """The failed result of a run whose training was to come from ``source``, which failed."""
    return {
        "status": "failed",
        "error": f"its training was to come from {source}, which failed: {result.get('error')}",
        "stage": "train",
        "traceback": None,
    }


def _groups(todo: Sequence[RunSpec], stack: int) -> list[list[RunSpec]]:
    """The runs of ``todo`` as Ray tasks: the seeds of one point in groups of at most ``stack``
    (in the order of ``todo``, a group where its first run comes); a run whose config cannot
    stack (:meth:`~stdp_pipeline.io.config.ExperimentConfig.stack_problem`) is a task of its
    own, so that such seeds train side by side rather than one after another in one task."""
    groups: list[list[RunSpec]] = []
    open_group: dict[Any, list[RunSpec]] = {}
    for run in todo:
        if stack > 1 and run.config.stack_problem() is not None:
            groups.append([run])
            continue
        group = open_group.get(run.point.name)
        if group is None or len(group) >= stack:
            group = open_group[run.point.name] = []
            groups.append(group)
        group.append(run)
    return groups


def _result(ray: Any, ref: Any, retries: int, runs: int = 1) -> list[dict[str, Any]]:
    """The task's results (one per run), or failed results for a task Ray could not finish (its
    worker died more often than ``retries`` allows, it ran out of memory, it could not start)."""
    try:
        return ray.get(ref)
    except ray.exceptions.WorkerCrashedError:
        line = f"its worker process died {retries + 1} time(s) (killed, or out of memory?)"
    except ray.exceptions.RayError as err:
        text = " ".join(str(err).split())
        line = f"{type(err).__name__}: {text[:300]}"
    failed = {"status": "failed", "error": f"Ray: {line}", "stage": None, "traceback": None}
    return [dict(failed) for _ in range(runs)]


def _record(path: Path, result: dict[str, Any]) -> None:
    """Keep a failed run's error in ``failed.json``; remove an old one when the run finished."""
    failed = path / FAILED_FILE
    if result["status"] == "finished":
        with contextlib.suppress(FileNotFoundError):
            failed.unlink()
        return
    path.mkdir(parents=True, exist_ok=True)
    atomic.write_json(
        failed,
        {
            "error": result.get("error"),
            "stage": result.get("stage"),
            "host": result.get("host"),
            "pid": result.get("pid"),
            "when": _now(),
            "traceback": result.get("traceback"),
        },
    )


class _Best:
    """The best point so far: the highest mean of ``metric`` over a point's finished seeds."""

    def __init__(self, metric: str) -> None:
        self.metric = metric
        self.scores: dict[str, list[float]] = {}

    def add(self, run: RunSpec, accuracy: dict[str, float] | None) -> None:
        if accuracy and self.metric in accuracy:
            self.scores.setdefault(run.point.name, []).append(float(accuracy[self.metric]))

    def add_from_disk(self, run: RunSpec, path: Path) -> None:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            import json

            metrics = json.loads((path / "metrics.json").read_text(encoding="utf-8"))
            self.add(run, metrics["accuracy"])

    def best(self) -> tuple[str, float] | None:
        if not self.scores:
            return None
        name = max(self.scores, key=lambda k: sum(self.scores[k]) / len(self.scores[k]))
        return name, sum(self.scores[name]) / len(self.scores[name])

    def postfix(self) -> dict[str, str]:
        found = self.best()
        if found is None:
            return {}
        return {"best": f"{100 * found[1]:.2f}% {found[0]}"}


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
