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

import re
import time

import numpy as np
import pandas as pd

from .errors import PipelineError
from .progress import Progress
from .rundir import RunDir

_CKPT = re.compile(r"ckpt-(\d{9})\.npz$")
_LOG_FIELDS = ("spikes", "retries", "dropped")


def _latest_checkpoint(run: RunDir) -> tuple[int, str] | None:
    folder = run.file("checkpoints")
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p.name) for p in folder.iterdir() if (m := _CKPT.search(p.name))]
    return max(found) if found else None


def run_train(
    run: RunDir,
    *,
    epochs: int | None = None,
    limit: int | None = None,
    resume: bool = False,
    progress: bool | None = None,
) -> dict:
    """Train the network of ``run`` (needs the ``encode`` stage). Returns the stage summary."""
    from ._tf import tf
    from .network import SpikingNetwork

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
    latest = _latest_checkpoint(run) if resume else None
    if resume and latest is None and run.stage_done("train"):
        raise PipelineError(f"{run} has finished training and keeps no checkpoint to resume from")
    if latest is not None:
        ckpt = run.load_arrays(f"checkpoints/{latest[1]}")
        saved = {"epochs": int(ckpt["epochs"]), "digits_per_epoch": int(ckpt["digits_per_epoch"])}
        if saved != schedule:
            raise PipelineError(
                f"checkpoint {latest[1]} was made for {saved['epochs']} epoch(s) of "
                f"{saved['digits_per_epoch']} digits, not {epochs} of {n}: "
                "resume with the same --epochs/--limit, or train without --resume"
            )
        net.set_state(ckpt)
        start = int(ckpt["position"])
        for k in _LOG_FIELDS:
            log[k][:start] = ckpt[k]
        curve = pd.read_csv(run.file("checkpoints/curve.csv")).to_dict("records")
        curve = [row for row in curve if row["position"] <= start]

    if not resume and run.file("checkpoints").is_dir():
        for path in run.file("checkpoints").iterdir():
            path.unlink()  # a fresh training run starts a fresh series of checkpoints
    chunk = config.train.chunk_digits
    every = config.train.checkpoint_every
    writer = tf.summary.create_file_writer(str(run.file("tensorboard")))
    with run.stage("train") as record, writer.as_default():
        t0 = time.perf_counter()
        with Progress(total, "train", enabled=progress) as bar:
            bar.update(start)
            p = start
            while p < total:
                epoch, offset = divmod(p, n)
                stop = min(p + chunk, (epoch + 1) * n, (p // every + 1) * every, total)
                sel = slice(offset, offset + (stop - p))
                c0 = time.perf_counter()
                stats = net.train_chunk(images[sel], indices[sel], epoch=epoch)
                rate = (stop - p) / (time.perf_counter() - c0)
                for k in _LOG_FIELDS:
                    log[k][p:stop] = getattr(stats, k)
                state = net.get_state()
                w = state["weights"]
                curve.append(
                    {
                        "position": stop,
                        "epoch": epoch,
                        "digits_per_s": round(rate, 2),
                        "spikes_mean": float(stats.spikes.mean()),
                        "retries_mean": float(stats.retries.mean()),
                        "theta_mean": float(state["theta"].mean()),
                        "theta_max": float(state["theta"].max()),
                        "weight_mean": float(w.mean()),
                        "weight_std": float(w.std()),
                        "weight_max": float(w.max()),
                    }
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
        wall = time.perf_counter() - t0
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
        run.write_text("train_curve.csv", pd.DataFrame(curve).to_csv(index=False))
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
    run.write_text("checkpoints/curve.csv", pd.DataFrame(curve).to_csv(index=False))
    run.save_arrays(
        f"checkpoints/ckpt-{position:09d}.npz",
        {**state, "position": position, **schedule, **{k: v[:position] for k, v in log.items()}},
    )
