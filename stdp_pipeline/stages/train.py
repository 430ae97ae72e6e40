"""The ``train`` stage: unsupervised learning over the training slice, with checkpoints.

Digits are shown in order, ``epochs`` times over the first ``limit`` digits of the training slice
(default: all), chunk by chunk. Position ``p`` in that schedule is digit ``p % n`` of pass
``p // n``; its input spikes depend only on ``(seed, digit index, pass, retry)``, so a run that is
interrupted and resumed from a checkpoint ends with bit-identical weights; and a finished run
resumed with a larger ``epochs`` goes on from its last checkpoint as if trained for that many
passes from the start (``train RUN --epochs 3 --resume`` after one pass).

Writes:
* ``model.npz``: learned state, ``weights`` ``[P, N]`` and ``theta`` ``[N]``;
* ``train_log.csv``: one row per presentation (position, epoch, index, label, spikes, retries,
  dropped input spikes);
* ``train_curve.csv``: one row per chunk (position, digits/s, mean spikes, mean theta, weight
  statistics, and the training health signals and flags of :mod:`stdp_pipeline.stages.health`);
* ``checkpoints/ckpt-<position>.npz`` every ``train.checkpoint_every`` digits and at the end
  (atomic);
* ``tensorboard/``: the chunk scalars as TensorBoard summaries (``tensorboard --logdir results``):
  ``train/<column>``, and ``health/<signal>``, ``health/flag_<check>`` for the health columns.

Training health (:mod:`stdp_pipeline.stages.health`): after each chunk the per-neuron spike
counts, retries, thresholds and weights are checked for a degenerate run (uniform thresholds,
digits pinned at the retry cap, too many or too few spikes, silent or dominant neurons, stalled
weights). The first time a flag is raised in a session a one-line warning goes to stderr, naming
the keys that usually fix it; ``strict=True`` (``--strict``) instead writes a checkpoint and stops
with a one-line :class:`PipelineError` (``--resume`` goes on from there).
"""

from __future__ import annotations

import contextlib
import errno
import math
import re
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import artefacts
from stdp_pipeline.io.atomic import WriteError
from stdp_pipeline.io.rundir import CHECKPOINT_DIR, RunDir, checkpoint_relpath, locked
from stdp_pipeline.progress import Progress
from stdp_pipeline.stages import health

if TYPE_CHECKING:
    from stdp_pipeline.sim.network import SpikingNetwork

_LOG_FIELDS = ("spikes", "retries", "dropped")
#: Columns of ``train_curve.csv`` (and ``checkpoints/curve.csv``), one row per chunk, in file
#: order: the position after the chunk (digits presented), its epoch, the chunk's speed (digits/s),
#: its mean spikes and re-presentations per digit, the adaptive threshold theta (mean, max over
#: the neurons) and the input weights (mean, standard deviation, max) after the chunk; then the
#: training health signals (:data:`stdp_pipeline.stages.health.SIGNALS`) and flags (0/1,
#: :data:`stdp_pipeline.stages.health.FLAGS`) of the chunk.
CURVE_COLUMNS = (
    "position",
    "epoch",
    "digits_per_s",
    "spikes_mean",
    "retries_mean",
    "theta_mean",
    "theta_max",
    "weight_mean",
    "weight_std",
    "weight_max",
    *health.SIGNALS,
    *health.FLAGS,
)
#: The training health columns of :data:`CURVE_COLUMNS` (absent from runs trained before them).
HEALTH_COLUMNS = (*health.SIGNALS, *health.FLAGS)


@locked("train")
def run_train(
    run: RunDir,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
    strict: bool = False,
) -> dict:
    """Train the network of ``run`` (needs the ``encode`` stage). Returns the stage summary.

    ``strict``: stop at the first chunk that raises a training health flag, with a checkpoint to
    resume from and a one-line :class:`PipelineError` (otherwise: a one-line warning per flag)."""
    return _train_alone(_Training(run, epochs=epochs, limit=limit, resume=resume), progress, strict)


def _train_alone(job: _Training, progress: bool | None, strict: bool) -> dict:
    """Train ``job``'s network alone (its run locked by the caller); the stage summary."""
    from stdp_pipeline.sim.present import train_chunks

    run = job.run
    job.open_writer()
    with run.stage("train") as record:
        with Progress(job.total, "train", enabled=progress) as bar:
            bar.update(job.start)
            learning = train_chunks(job.net, job.images, job.indices, job.chunks)
            with contextlib.closing(learning) as results:
                c0 = time.perf_counter()
                for (epoch, _, stop), stats in zip(job.plan, results, strict=True):
                    rate = (stop - job.position) / (time.perf_counter() - c0)
                    stopped = job.after_chunk(epoch, stop, rate, stats, record, strict)
                    bar.update(len(stats.spikes), **job.postfix)
                    if stopped:
                        raise PipelineError(stopped)
                    c0 = time.perf_counter()  # the next chunk starts learning now
        return job.finish(record)


def run_train_stack(
    runs: Sequence[RunDir],
    *,
    epochs: int | None = None,
    limit: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
    strict: bool = False,
) -> list[dict]:
    """Train the networks of ``runs`` (each encoded; configs equal but for the seed) as one
    stack (:mod:`stdp_pipeline.sim.stack`), each run writing what :func:`run_train` writes.
    Returns each run's stage summary (with ``stacked``: how many networks learned together).

    Runs that cannot learn together (their checkpoints at different positions, other digits,
    configs that differ in more than the seed, input delays) are trained one by one, as
    :func:`run_train` does. ``strict``: at the first chunk that raises a flag in any network,
    every run writes a checkpoint and the error names the run."""
    from stdp_pipeline.sim.stack import NetworkStack, train_stack_chunks

    runs = list(runs)
    with contextlib.ExitStack() as held:
        for run in runs:
            held.enter_context(run.lock("train"))
        jobs = [_Training(run, epochs=epochs, limit=limit, resume=resume) for run in runs]
        if len(jobs) < 2 or _unstackable(jobs):
            return [_train_alone(job, progress, strict) for job in jobs]
        stack = NetworkStack([job.net for job in jobs])
        first = jobs[0]
        for job in jobs:
            job.open_writer()
        records = [held.enter_context(job.run.stage("train")) for job in jobs]
        desc = f"train ({len(jobs)} networks)"
        with Progress(first.total, desc, enabled=progress) as bar:
            bar.update(first.start)
            learning = train_stack_chunks(stack, first.images, first.indices, first.chunks)
            with contextlib.closing(learning) as results:
                c0 = time.perf_counter()
                for (epoch, _, stop), per_net in zip(first.plan, results, strict=True):
                    rate = (stop - first.position) / (time.perf_counter() - c0)
                    stopped = [
                        job.after_chunk(epoch, stop, rate, stats, record, strict)
                        for job, stats, record in zip(jobs, per_net, records, strict=True)
                    ]
                    bar.update(len(per_net[0].spikes), **first.postfix)
                    if any(stopped):
                        for job, record, why in zip(jobs, records, stopped, strict=True):
                            if not why:  # every run can go on from here
                                job.checkpoint(record)
                        k, why = next((k, w) for k, w in enumerate(stopped) if w)
                        raise PipelineError(f"seed {jobs[k].config.seed}: {why}")
                    c0 = time.perf_counter()
        summaries = []
        for job, record in zip(jobs, records, strict=True):
            record.info["stacked"] = len(jobs)
            summaries.append({**job.finish(record), "stacked": len(jobs)})
        return summaries


def _unstackable(jobs: Sequence[_Training]) -> str | None:
    """Why the runs of ``jobs`` cannot learn as one stack, or None."""
    from stdp_pipeline.sim.stack import check_stackable

    first = jobs[0]
    for job in jobs[1:]:
        if (job.start, job.total, job.digits_per_epoch) != (
            first.start,
            first.total,
            first.digits_per_epoch,
        ):
            return f"{job.run} resumes at digit {job.start:,}, {first.run} at {first.start:,}"
        if not (
            np.array_equal(job.indices, first.indices) and np.array_equal(job.images, first.images)
        ):
            return f"{job.run} and {first.run} hold different training digits"
    try:
        check_stackable([job.net for job in jobs])
    except PipelineError as err:
        return str(err)
    return None


class _Training:
    """One run's training: its digits, network, schedule, the state it resumes from, and the log,
    learning curve, health monitor and TensorBoard writer it keeps chunk by chunk."""

    def __init__(self, run: RunDir, *, epochs: int | None, limit: int | None, resume: bool) -> None:
        from stdp_pipeline._tf import tf
        from stdp_pipeline.sim.network import SpikingNetwork
        from stdp_pipeline.sim.present import training_chunks

        run.require("encode", for_stage="train")
        self.run = run
        self.config = config = run.config()
        data = artefacts.load_encoded(run, "train", config)
        self.images, self.labels, self.indices = data["images"], data["labels"], data["indices"]
        n_avail = len(self.indices)
        epochs = config.train.epochs if epochs is None else epochs
        if epochs < 1:
            raise PipelineError(f"--epochs {epochs}: must be >= 1")
        n = n_avail if limit is None else limit
        if not 1 <= n <= n_avail:
            raise PipelineError(
                f"--limit {limit}: must be between 1 and {n_avail} (training slice)"
            )
        self.epochs, self.digits_per_epoch = epochs, n
        self.total = total = epochs * n
        self.schedule = {"epochs": epochs, "digits_per_epoch": n}

        self.net = net = SpikingNetwork(config, n_inputs=self.images.shape[1])
        theta_init = net.neuron.theta_init(net.exc_params)
        w0 = net.get_state()["weights"]
        self.limits = health.Limits.of(
            config,
            net.n,
            theta_init,
            w0,
            net.layout.n_groups,
            theta_at_rest(net),
            theta_hold_mv_ms(net),
        )
        self.monitor = health.HealthMonitor(self.limits)
        self.start = 0
        #: training seconds of earlier sessions (None: not recorded)
        self.earlier_s: float | None = 0.0
        self.log = {
            k: np.zeros(total, np.float32 if k == "spikes" else np.int32) for k in _LOG_FIELDS
        }
        self.curve: list[dict] = []
        found = run.checkpoints() if resume else {}
        latest = max(found) if found else None
        if resume and latest is None and run.stage_done("train"):
            raise PipelineError(
                f"{run} has finished training and keeps no checkpoint to resume from: "
                f"train without --resume to train again"
            )
        if latest is not None:
            ckpt = artefacts.load_checkpoint(run, latest, config, self.images.shape[1])
            saved = {
                "epochs": int(ckpt["epochs"]),
                "digits_per_epoch": int(ckpt["digits_per_epoch"]),
            }
            # More passes over the same digits extend a run: the first passes of the longer
            # schedule are the passes already trained (each pass's spikes depend on its index).
            extends = saved["digits_per_epoch"] == n and saved["epochs"] < epochs
            if saved != self.schedule and not extends:
                raise PipelineError(
                    f"checkpoint {found[latest].name} was made for {saved['epochs']} epoch(s) "
                    f"of {saved['digits_per_epoch']} digits, not {epochs} of {n}: resume with "
                    "the same --limit and the same or a larger --epochs, or train without "
                    "--resume"
                )
            net.set_state(ckpt)
            self.start = int(ckpt["position"])
            earlier = float(ckpt["train_s"]) if "train_s" in ckpt else math.nan
            self.earlier_s = earlier if math.isfinite(earlier) and earlier >= 0 else None
            for k in _LOG_FIELDS:
                self.log[k][: self.start] = ckpt[k]
            self.curve = [row for row in _saved_curve(run) if row["position"] <= self.start]

        if not resume and run.file(CHECKPOINT_DIR).is_dir():
            for path in run.file(CHECKPOINT_DIR).iterdir():
                path.unlink()  # a fresh training run starts a fresh series of checkpoints
        self.every = config.train.checkpoint_every
        self.position = self.start
        self.plan = list(
            training_chunks(self.start, total, n, config.train.chunk_digits, self.every)
        )
        # a chunk of pass ``epoch`` starts at position epoch * n + offset and ends at stop
        self.chunks = [
            (epoch, slice(offset, stop - epoch * n)) for epoch, offset, stop in self.plan
        ]
        self._tf = tf
        self.writer: _Summaries | None = None  # :meth:`open_writer`
        self.state: dict = {}
        self.postfix: dict[str, str] = {}

    def open_writer(self) -> None:
        """Start the TensorBoard event file: one series of events, the rows kept from a
        checkpoint written again, then the new ones."""
        self.writer = _summary_writer(self._tf, self.run, self.curve)

    def after_chunk(
        self, epoch: int, stop: int, rate: float, stats: Any, record: Any, strict: bool
    ) -> str | None:
        """Log the chunk that ended at position ``stop`` (its :class:`TrainStats`), check the
        training health, write the chunk's summaries and, where due, a checkpoint. Returns the
        one-line ``--strict`` error (its checkpoint written) when ``strict`` and a flag rose."""
        tf, p = self._tf, self.position
        for k in _LOG_FIELDS:
            self.log[k][p:stop] = getattr(stats, k)
        self.state = state = self.net.get_state()
        w = state["weights"]
        signals, flags = self.monitor.observe(
            stop, stats.neuron_spikes, stats.spikes, stats.retries, state["theta"], w
        )
        self.curve.append(
            _curve_row(
                stop,
                epoch,
                round(rate, 2),
                float(stats.spikes.mean()),
                float(stats.retries.mean()),
                float(state["theta"].mean()),
                float(state["theta"].max()),
                float(w.mean()),
                float(w.std()),
                float(w.max()),
                *(round(signals[k], 6) for k in health.SIGNALS),
                *health.flag_row(flags).values(),
            )
        )
        self.position = p = stop
        with self.writer.as_default():
            for key, value in self.curve[-1].items():
                if key not in ("position", "epoch") and np.isfinite(value):
                    group = "health" if key in HEALTH_COLUMNS else "train"
                    _scalar_summary(tf, f"{group}/{key}", value, p)
        self.postfix = {
            "spikes": f"{stats.spikes.mean():.1f}",
            "theta": f"{state['theta'].mean():.3f}",
        }
        if flags and strict:
            self.checkpoint(record)
            self.writer.flush()
            return _strict_message(self.run, flags, p, self.limits)
        for line in self.monitor.announce(flags, p):
            _warn(line)
        if p % self.every == 0 or p == self.total:  # the last one: more passes may follow
            self.checkpoint(record)
        return None

    def checkpoint(self, record: Any) -> None:
        """Write the checkpoint of the position reached (learned state as of the last chunk)."""
        so_far = math.nan if self.earlier_s is None else self.earlier_s + record.elapsed_s()
        state = self.state or self.net.get_state()
        _checkpoint(self.run, state, self.position, self.schedule, self.log, self.curve, so_far)

    def finish(self, record: Any) -> dict:
        """Write ``model.npz``, ``train_log.csv`` and ``train_curve.csv``; return the summary
        (also recorded in the manifest)."""
        wall = record.elapsed_s()  # the training loop; the record's wall_s adds the writing
        run, total, n, start, log = (
            self.run,
            self.total,
            self.digits_per_epoch,
            self.start,
            self.log,
        )
        self.writer.flush()
        run.save_arrays("model.npz", self.net.get_state())
        positions = np.arange(total)
        frame = pd.DataFrame(
            {
                "position": positions,
                "epoch": positions // n,
                "index": self.indices[positions % n],
                "label": self.labels[positions % n],
                **{k: log[k] for k in _LOG_FIELDS},
            }
        )
        run.write_text("train_log.csv", frame.to_csv(index=False))
        run.write_text("train_curve.csv", _curve_csv(self.curve))
        summary = {
            "digits_seen": int(total),
            "epochs": self.epochs,
            "digits_per_epoch": n,
            "resumed_from": int(start),
            "earlier_s": None if self.earlier_s is None else round(self.earlier_s, 3),
            "wall_s": round(wall, 3),
            "digits_per_s": round((total - start) / wall, 2) if wall > 0 else None,
            "spikes_per_digit": float(log["spikes"].mean()),
            "retries_total": int(log["retries"].sum()),
            "dropped_input_spikes": int(log["dropped"].sum()),
            "health_flags": _first_flags(self.curve),
        }
        learner = self.net.built_native_learner()  # the C engine, where it trained
        if learner is not None and learner.thread_use:
            # presentations per thread count this session (README "Speed")
            summary["native_threads"] = {str(k): v for k, v in sorted(learner.thread_use.items())}
        record.info.update({k: v for k, v in summary.items() if k != "wall_s"})
        return summary


def _saved_curve(run: RunDir) -> list[dict]:
    """The learning curve saved beside the checkpoints (``checkpoints/curve.csv``), checked."""
    hint = ": delete the checkpoints folder, or train without --resume"
    rel = f"{CHECKPOINT_DIR}/curve.csv"
    frame = artefacts.read_table(run, rel, CURVE_COLUMNS, hint, required=("position",))
    return frame.to_dict("records")


def _summary_writer(tf, run: RunDir, curve: list[dict]) -> _Summaries:
    """A TensorBoard writer on ``tensorboard/`` holding one series of events: the event files of
    earlier or interrupted runs are removed, and the rows of ``curve`` kept from a checkpoint are
    written again, so a resumed run logs every step once."""
    folder = run.file("tensorboard")
    if folder.is_dir():
        for path in folder.iterdir():
            if path.name.startswith("events.out.tfevents.") and path.is_file():
                path.unlink()
    writer = _Summaries(tf, folder)
    with writer.as_default():
        for row in curve:
            for key in CURVE_COLUMNS:  # as the chunk loop writes them
                value = row.get(key)
                if key not in ("position", "epoch") and value is not None and np.isfinite(value):
                    group = "health" if key in HEALTH_COLUMNS else "train"
                    _scalar_summary(tf, f"{group}/{key}", value, int(row["position"]))
    return writer


class _Summaries:
    """A TensorBoard file writer whose failures to write its event file (a full disk) raise
    :class:`~stdp_pipeline.io.atomic.WriteError`, a one-line error, instead of TensorFlow's."""

    def __init__(self, tf, folder: Path) -> None:
        self._tf, self._folder = tf, folder
        with self._errors(only_naming_it=False):
            self._writer = tf.summary.create_file_writer(str(folder))

    @contextlib.contextmanager
    def _errors(self, *, only_naming_it: bool = True) -> Iterator[None]:
        """Turn TensorFlow errors about this writer's files into :class:`WriteError`; with
        ``only_naming_it`` only those whose message names the folder (the block may run other
        TensorFlow code, e.g. the simulation, whose errors pass through)."""
        try:
            yield
        except self._tf.errors.OpError as err:
            if only_naming_it and str(self._folder) not in str(err):
                raise  # not about the event file (e.g. the simulation ran out of memory)
            if isinstance(err, self._tf.errors.ResourceExhaustedError):
                reason = OSError(errno.ENOSPC, "No space left on device")
            else:  # e.g. "{{function_node ...}} Not a directory [Op:CreateSummaryFileWriter]"
                text = (str(err.message).splitlines() or ["failed"])[0]
                text = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:.*$", "", text).strip()
                reason = OSError(errno.EIO, text or type(err).__name__)
            raise WriteError(self._folder, reason) from None

    @contextlib.contextmanager
    def as_default(self) -> Iterator[None]:
        """The writer as the default summary writer of the block."""
        with self._errors(), self._writer.as_default():
            yield

    def flush(self) -> None:
        """Write the pending events to the event file."""
        with self._errors(only_naming_it=False):
            self._writer.flush()


def _curve_row(*values: float) -> dict[str, float]:
    """One row of the learning curve: ``values`` in the order of :data:`CURVE_COLUMNS`."""
    return dict(zip(CURVE_COLUMNS, values, strict=True))


def _first_flags(curve: list[dict]) -> dict[str, int]:
    """Each training health flag raised in ``curve`` with the position of its first row."""
    out: dict[str, int] = {}
    for row in curve:
        for check in health.CHECKS:
            if row.get(check.column) == 1 and check.name not in out:
                out[check.name] = int(row["position"])
    return out


def _warn(line: str) -> None:
    """Print a warning line on stderr, above a progress bar that may be drawn there."""
    from tqdm import tqdm

    tqdm.write(line, file=sys.stderr)


def theta_at_rest(net: SpikingNetwork) -> float:
    """The theta at which an excitatory neuron's threshold equals its resting potential:
    ``resting_potential(p) - base_threshold(p)`` of the network's neuron model (Diehl & Cook's:
    -65 - (-52 - 20) = 7 mV); NaN for a model without ``resting_potential``."""
    rest = getattr(net.neuron, "resting_potential", None)
    if rest is None:
        return float("nan")
    p = net.exc_params
    return float(rest(p) - net.neuron.base_threshold(p))


def theta_hold_mv_ms(net: SpikingNetwork) -> float:
    """The theta an excitatory neuron holds per spike per ms it fires: ``theta_hold_mv_ms(p)``
    of the network's neuron model (Diehl & Cook's: 0.05 mV * 1e7 ms = 5e5 mV ms); NaN for a
    model without it."""
    hold = getattr(net.neuron, "theta_hold_mv_ms", None)
    return float("nan") if hold is None else float(hold(net.exc_params))


def _strict_message(run: RunDir, flags: dict[str, str], position: int, lim: health.Limits) -> str:
    """The one-line error of ``--strict``: the first flag, the others' names, the checkpoint."""
    name = next(n for n in health.CHECK_NAMES if n in flags)
    check = next(c for c in health.CHECKS if c.name == name)
    others = [n for n in health.CHECK_NAMES if n in flags and n != name]
    also = f" (also: {', '.join(others)})" if others else ""
    keys = ", ".join(health.fix_keys(check, lim.neuron, lim.rule))
    return (
        f"--strict: training stopped at digit {position:,} for training health '{name}'{also}: "
        f"{flags[name]}; {check.verb} {keys} (in a new run); checkpoint "
        f"{checkpoint_relpath(position)} written: `stdp-pipeline train {run} --resume` goes on"
    )


def _curve_csv(curve: list[dict]) -> str:
    """The rows of the learning curve as CSV text, columns :data:`CURVE_COLUMNS` in order."""
    return pd.DataFrame(curve, columns=list(CURVE_COLUMNS)).to_csv(index=False)


def _scalar_summary(tf, tag: str, value: float, step: int) -> None:
    """Write one TensorBoard scalar. The summary metadata is built from TensorFlow's own protos,
    so no ``tensorboard`` package is needed to write it (only to view it)."""
    from tensorflow.core.framework import summary_pb2

    meta = summary_pb2.SummaryMetadata(
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
        data_class=summary_pb2.DATA_CLASS_SCALAR,
    )
    tf.summary.write(tag, tf.constant(value, tf.float32), step=step, metadata=meta)


def _checkpoint(
    run: RunDir,
    state: dict,
    position: int,
    schedule: dict,
    log: dict,
    curve: list[dict],
    train_s: float,
) -> None:
    """Atomically write the learned state, the log so far and ``train_s``, the seconds of
    training up to here over every session of the run (NaN when a resumed checkpoint did not
    record it). All checkpoints are kept: they show how the receptive fields form."""
    run.write_text(f"{CHECKPOINT_DIR}/curve.csv", _curve_csv(curve))
    log_so_far = {k: v[:position] for k, v in log.items()}
    run.save_arrays(
        checkpoint_relpath(position),
        {**state, "position": position, **schedule, **log_so_far, "train_s": np.float64(train_s)},
    )
