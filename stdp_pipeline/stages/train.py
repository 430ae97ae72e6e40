"""The ``train`` stage: unsupervised learning over the training slice, with checkpoints.

Digits are shown in order, ``epochs`` times over the first ``limit`` digits of the training slice
(default: all), chunk by chunk. Position ``p`` in that schedule is digit ``p % n`` of pass
``p // n``; its input spikes depend only on ``(seed, digit index, pass, retry)``, so a run that is
interrupted and resumed from a checkpoint ends with bit-identical weights.

Writes:
* ``model.npz``: learned state, ``weights`` ``[P, N]`` and ``theta`` ``[N]``;
* ``train_log.csv``: one row per presentation (position, epoch, index, label, spikes, retries,
  dropped input spikes);
* ``train_curve.csv``: one row per chunk (position, digits/s, mean spikes, mean theta, weight
  statistics);
* ``checkpoints/ckpt-<position>.npz`` every ``train.checkpoint_every`` digits (atomic);
* ``tensorboard/``: the chunk scalars as TensorBoard summaries (``tensorboard --logdir results``).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.rundir import CHECKPOINT_DIR, RunDir, checkpoint_relpath
from stdp_pipeline.progress import Progress

_LOG_FIELDS = ("spikes", "retries", "dropped")
#: Columns of ``train_curve.csv`` (and ``checkpoints/curve.csv``), one row per chunk, in file
#: order: the position after the chunk (digits presented), its epoch, the chunk's speed (digits/s),
#: its mean spikes and re-presentations per digit, the adaptive threshold theta (mean, max over
#: the neurons) and the input weights (mean, standard deviation, max) after the chunk.
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
)


def run_train(
    run: RunDir,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> dict:
    """Train the network of ``run`` (needs the ``encode`` stage). Returns the stage summary."""
    from stdp_pipeline._tf import tf
    from stdp_pipeline.sim.network import SpikingNetwork
    from stdp_pipeline.sim.present import train_chunk, training_chunks

    run.require("encode", for_stage="train")
    config = run.config()
    data = run.load_arrays("encoded/train.npz", stage="encode")
    images, labels, indices = data["images"], data["labels"], data["indices"]
    n_avail = len(indices)
    epochs = config.train.epochs if epochs is None else epochs
    if epochs < 1:
        raise PipelineError(f"--epochs {epochs}: must be >= 1")
    n = n_avail if limit is None else limit
    if not 1 <= n <= n_avail:
        raise PipelineError(f"--limit {limit}: must be between 1 and {n_avail} (training slice)")
    total = epochs * n
    schedule = {"epochs": epochs, "digits_per_epoch": n}

    net = SpikingNetwork(config, n_inputs=images.shape[1])
    start = 0
    log = {k: np.zeros(total, np.float32 if k == "spikes" else np.int32) for k in _LOG_FIELDS}
    curve: list[dict] = []
    found = run.checkpoints() if resume else {}
    latest = max(found) if found else None
    if resume and latest is None and run.stage_done("train"):
        raise PipelineError(f"{run} has finished training and keeps no checkpoint to resume from")
    if latest is not None:
        ckpt = run.load_arrays(checkpoint_relpath(latest))
        saved = {"epochs": int(ckpt["epochs"]), "digits_per_epoch": int(ckpt["digits_per_epoch"])}
        if saved != schedule:
            raise PipelineError(
                f"checkpoint {found[latest].name} was made for {saved['epochs']} epoch(s) of "
                f"{saved['digits_per_epoch']} digits, not {epochs} of {n}: "
                "resume with the same --epochs/--limit, or train without --resume"
            )
        net.set_state(ckpt)
        start = int(ckpt["position"])
        for k in _LOG_FIELDS:
            log[k][:start] = ckpt[k]
        curve = pd.read_csv(run.file(f"{CHECKPOINT_DIR}/curve.csv")).to_dict("records")
        curve = [row for row in curve if row["position"] <= start]

    if not resume and run.file(CHECKPOINT_DIR).is_dir():
        for path in run.file(CHECKPOINT_DIR).iterdir():
            path.unlink()  # a fresh training run starts a fresh series of checkpoints
    chunk = config.train.chunk_digits
    every = config.train.checkpoint_every
    writer = tf.summary.create_file_writer(str(run.file("tensorboard")))
    with run.stage("train") as record, writer.as_default():
        with Progress(total, "train", enabled=progress) as bar:
            bar.update(start)
            p = start
            for epoch, offset, stop in training_chunks(start, total, n, chunk, every):
                sel = slice(offset, offset + (stop - p))
                c0 = time.perf_counter()
                stats = train_chunk(net, images[sel], indices[sel], epoch=epoch)
                rate = (stop - p) / (time.perf_counter() - c0)
                for k in _LOG_FIELDS:
                    log[k][p:stop] = getattr(stats, k)
                state = net.get_state()
                w = state["weights"]
                curve.append(
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
                    )
                )
                p = stop
                for key, value in curve[-1].items():
                    if key not in ("position", "epoch"):
                        _scalar_summary(tf, f"train/{key}", value, p)
                bar.update(
                    len(stats.spikes),
                    spikes=f"{stats.spikes.mean():.1f}",
                    theta=f"{state['theta'].mean():.3f}",
                )
                if p % every == 0 and p < total:
                    _checkpoint(run, state, p, schedule, log, curve)
        wall = record.elapsed_s()  # the training loop; the record's wall_s adds the writing below
        writer.flush()
        run.save_arrays("model.npz", net.get_state())
        positions = np.arange(total)
        frame = pd.DataFrame(
            {
                "position": positions,
                "epoch": positions // n,
                "index": indices[positions % n],
                "label": labels[positions % n],
                **{k: log[k] for k in _LOG_FIELDS},
            }
        )
        run.write_text("train_log.csv", frame.to_csv(index=False))
        run.write_text("train_curve.csv", _curve_csv(curve))
        summary = {
            "digits_seen": int(total),
            "epochs": epochs,
            "digits_per_epoch": n,
            "resumed_from": int(start),
            "wall_s": round(wall, 3),
            "digits_per_s": round((total - start) / wall, 2) if wall > 0 else None,
            "spikes_per_digit": float(log["spikes"].mean()),
            "retries_total": int(log["retries"].sum()),
            "dropped_input_spikes": int(log["dropped"].sum()),
        }
        record.info.update({k: v for k, v in summary.items() if k != "wall_s"})
    return summary


def _curve_row(*values: float) -> dict[str, float]:
    """One row of the learning curve: ``values`` in the order of :data:`CURVE_COLUMNS`."""
    return dict(zip(CURVE_COLUMNS, values, strict=True))


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
    run: RunDir, state: dict, position: int, schedule: dict, log: dict, curve: list[dict]
) -> None:
    """Atomically write the learned state and the log so far (all checkpoints are kept: they
    show how the receptive fields form)."""
    run.write_text(f"{CHECKPOINT_DIR}/curve.csv", _curve_csv(curve))
    run.save_arrays(
        checkpoint_relpath(position),
        {**state, "position": position, **schedule, **{k: v[:position] for k, v in log.items()}},
    )
