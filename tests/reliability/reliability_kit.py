"""Helpers of the reliability battery: the tiny config, the simulation stand-in, and the checks of
what a hostile user sees (exit code, one line, no traceback, the run directory unchanged).

The fast tests replace the simulation with a deterministic stand-in (:func:`apply_stubs`): the
stages themselves (loading, checking, writing, recording, locking) run for real and write exactly
the files their writers write, but no XLA program is compiled, so the whole battery takes
seconds. The slow tests (``-m slow``) train for real in separate processes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner, Result

#: A tiny run: 8 neurons, 20 training digits (chunks of 5, a checkpoint every 10), 10 assignment
#: and 10 test digits, 20 ms presentations.
TINY = [
    "--set", "network.n_excitatory=8",
    "--set", "encoding.presentation_ms=20",
    "--set", "data.train_digits=20",
    "--set", "data.assign_start=20",
    "--set", "data.assign_digits=10",
    "--set", "data.allow_overlap=false",
    "--set", "data.test_digits=10",
    "--set", "train.chunk_digits=5",
    "--set", "train.checkpoint_every=10",
]  # fmt: skip


# --- the simulation stand-in ---------------------------------------------------------------------
def fake_train_chunk(net, images: np.ndarray, indices: np.ndarray, epoch: int = 0, inputs=None):
    """Deterministic stand-in for :func:`stdp_pipeline.sim.present.train_chunk`: moves the
    weights and thresholds by a function of the chunk's digits and the current state, so a run
    resumed from a checkpoint ends exactly where a straight one does (``inputs``, the chunk's
    input spikes drawn beforehand, is not used)."""
    from stdp_pipeline.sim.present import TrainStats

    w = net.weights.numpy()
    rng = np.random.default_rng(int(indices[0]) + 100_000 * epoch)
    step = rng.standard_normal(w.shape).astype(np.float32) * np.float32(0.01)
    net.weights.assign(np.clip(w + step, 0.0, 1.0).astype(np.float32))
    net.theta.assign(net.theta.numpy() + np.float32(0.01))
    b = len(indices)
    per_neuron = np.zeros((b, net.n), np.float32)
    per_neuron[np.arange(b), np.asarray(indices) % net.n] = 6.0
    return TrainStats(
        spikes=per_neuron.sum(axis=1),
        retries=np.zeros(b, np.int32),
        dropped=np.zeros(b, np.int32),
        neuron_spikes=per_neuron,
    )


def fake_respond(net, images: np.ndarray, indices: np.ndarray, stage: str, progress=None):
    """Deterministic stand-in for :func:`stdp_pipeline.sim.present.respond`: spike counts
    ``[B, N]`` float32 from the images and the weights, no retries."""
    w = net.weights.numpy().reshape(-1, net.n)[: images.shape[1]]
    counts = np.floor(images.astype(np.float32) @ w / 2000.0).astype(np.float32)
    if progress is not None:
        progress(len(indices))
    return counts, np.zeros(len(indices), np.int32)


class _Readout:
    def predict(self, counts: np.ndarray) -> np.ndarray:
        return np.zeros(len(counts), np.int64)


def fake_fit_readout(counts: np.ndarray, labels: np.ndarray, **options: object) -> _Readout:
    """Stand-in for the linear read-out's fit (a TensorFlow optimisation), on spike counts or
    (the raw-pixel baseline) pixels."""
    return _Readout()


def apply_stubs(mp: pytest.MonkeyPatch) -> None:
    """Replace the simulation by :func:`fake_train_chunk` and :func:`fake_respond` (and the
    read-out's fit by a trivial one) while ``mp`` is active."""
    from stdp_pipeline.sim import present
    from stdp_pipeline.stages import readout

    mp.setattr(present, "train_chunk", fake_train_chunk)
    mp.setattr(present, "respond", fake_respond)
    mp.setattr(readout, "fit_readout", fake_fit_readout)


# --- the command line ----------------------------------------------------------------------------
def cli(*args: object) -> Result:
    """``stdp-pipeline --quiet ARGS`` in this process (exceptions caught, as a user sees them)."""
    from stdp_pipeline.cli.main import main

    return CliRunner().invoke(main, ["--quiet", *(str(a) for a in args)])


def ok(*args: object) -> Result:
    """:func:`cli`, which must succeed."""
    result = cli(*args)
    assert result.exit_code == 0, result.output
    return result


def one_line_error(result: Result, *fragments: str, code: int = 2, prefix: str = "Error: ") -> str:
    """The single line a failing command printed: exit ``code``, no traceback, no other line,
    starting with ``prefix`` and holding every fragment. Returns the line."""
    assert result.exit_code == code, (result.exit_code, result.output, result.exception)
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(
        result.exception
    )
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith(prefix), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` (hidden ones too): relative path -> SHA-256 of its bytes."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
