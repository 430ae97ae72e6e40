"""A full disk during a checkpoint or a result write: one line naming the file and the fault (and,
for training, how `--resume` goes on), the previous checkpoint and results intact, no temporary
file left, and `--resume` (or the stage run again) works once there is space.

The disk fills for real on a small tmpfs where this machine allows mounting one; everywhere the
writers are also made to fail the way a full disk makes them fail (``OSError(ENOSPC)`` part-way
through the write).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import matplotlib.figure
import numpy as np
import pytest
from reliability_kit import cli, ok, one_line_error, snapshot

FULL = "No space left on device (disk full: free some space and try again)"


def _full(name: str) -> OSError:
    return OSError(errno.ENOSPC, "No space left on device", name)


@pytest.fixture
def disk_full_for() -> Iterator:
    """``disk_full_for(fragment)``: from now on, writing a file whose (temporary) name holds
    ``fragment`` fails part-way with ENOSPC, through every writer the stages use (NumPy's
    savez and savez_compressed, ``Path.write_bytes``, Matplotlib's savefig). Returns a function
    that ends it."""
    patch = pytest.MonkeyPatch()  # its own: ending it leaves the other patches of the test
    real_write, real_savefig = Path.write_bytes, matplotlib.figure.Figure.savefig

    def start(fragment: str):
        def failing_savez(real):
            def savez(file, *args, **kwargs):
                name = str(getattr(file, "name", file))
                if fragment in name:
                    file.write(b"PK\x03\x04 half a zip")
                    raise _full(name)
                return real(file, *args, **kwargs)

            return savez

        def write_bytes(self, data):
            if fragment in self.name:
                real_write(self, data[: len(data) // 2])
                raise _full(str(self))
            return real_write(self, data)

        def savefig(self, fname, *args, **kwargs):
            if fragment in str(fname):
                real_write(Path(fname), b"\x89PNG half")
                raise _full(str(fname))
            return real_savefig(self, fname, *args, **kwargs)

        patch.setattr(np, "savez", failing_savez(np.savez))
        patch.setattr(np, "savez_compressed", failing_savez(np.savez_compressed))
        patch.setattr(Path, "write_bytes", write_bytes)
        patch.setattr(matplotlib.figure.Figure, "savefig", savefig)
        return patch.undo

    yield start
    patch.undo()


def _temporary_files(run: Path) -> list[str]:
    return [p.name for p in run.rglob(".*") if ".tmp" in p.name]


def _model(run: Path) -> dict[str, np.ndarray]:
    with np.load(run / "model.npz", allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def test_full_disk_at_a_checkpoint_then_resume(copy_run, stub_sim, disk_full_for) -> None:
    """Two epochs of 20 digits (checkpoints at 10, 20, 30); the disk fills as checkpoint 20 is
    written: one line saying so and how to resume; checkpoint 10 intact; `--resume` ends with the
    weights and log of an uninterrupted run."""
    straight = copy_run("encoded", "straight")
    ok("train", straight, "--epochs", 2)
    run = copy_run("encoded")
    before_manifest = (run / "manifest.json").read_bytes()
    stop = disk_full_for("ckpt-000000020")
    one_line_error(
        cli("train", run, "--epochs", 2),
        f"cannot write {run}/checkpoints/ckpt-000000020.npz: {FULL}; after that, "
        f"`stdp-pipeline train {run} --resume --epochs 2` continues from the checkpoint at "
        "digit 10",
    )
    stop()
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == [
        "ckpt-000000010.npz",
        "curve.csv",
    ]
    with (
        np.load(run / "checkpoints/ckpt-000000010.npz") as a,
        np.load(straight / "checkpoints/ckpt-000000010.npz") as b,
    ):
        assert all(np.array_equal(a[k], b[k]) for k in b.files if k != "train_s")  # a clock
    assert (run / "manifest.json").read_bytes() == before_manifest  # train not recorded
    assert not (run / "model.npz").exists() and not (run / ".lock").exists()
    assert _temporary_files(run) == []

    ok("train", run, "--resume", "--epochs", 2)
    a, b = _model(run), _model(straight)
    assert all(np.array_equal(a[k], b[k]) for k in b)
    assert (run / "train_log.csv").read_text() == (straight / "train_log.csv").read_text()


RESULT_WRITES = {
    # case: (base run, command, the file the disk fills on)
    "assignments": ("done", "assign", "assignments.npz"),
    "metrics": ("done", "evaluate", "metrics.json"),
    "a figure": ("trained", "fields", "fields.png"),
    "the manifest": ("done", "evaluate", "manifest.json"),
    "the model": ("done", "train", "model.npz"),
}


@pytest.mark.parametrize("case", sorted(RESULT_WRITES))
def test_full_disk_at_a_result_write(copy_run, stub_sim, disk_full_for, case: str) -> None:
    """The disk fills as a stage writes a result: one line naming the file; the previous file and
    the stage's previous record are intact; nothing temporary is left; the stage works again
    once there is space."""
    kind, command, name = RESULT_WRITES[case]
    run = copy_run(kind)
    old = (run / name).read_bytes() if (run / name).exists() else None
    old_record = json.loads((run / "manifest.json").read_text())["stages"].get(command)
    stop = disk_full_for(name)
    one_line_error(cli(command, run), f"cannot write {run}/{name}: {FULL}")
    stop()
    if old is not None and name != "manifest.json":
        assert (run / name).read_bytes() == old
    assert json.loads((run / "manifest.json").read_text())["stages"].get(command) == old_record
    assert _temporary_files(run) == [] and not (run / ".lock").exists()
    ok(command, run)


# --- a real full disk ---------------------------------------------------------------------------
@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs (skipped where this process may not mount one)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
            capture_output=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        pytest.skip("cannot mount a tmpfs here")
    if done.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def _fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` but for ``leave`` bytes; return the filler file."""
    filler = disk / "filler"
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - leave))
    return filler


def test_full_tmpfs_during_training(base_runs, stub_sim, small_disk: Path) -> None:
    """A run stopped after its checkpoint at 10 digits is resumed on a disk with 12 KiB left:
    the next write (events, model) fails with one line; the checkpoint is intact; with space
    again `--resume` ends exactly where the uninterrupted run ended."""
    run = small_disk / "run"
    trained = base_runs["trained"]
    run.mkdir()
    for rel in ("config.json", "encoded", "checkpoints"):
        copy = shutil.copytree if (trained / rel).is_dir() else shutil.copy2
        copy(trained / rel, run / rel)
    shutil.copy2(base_runs["encoded"] / "manifest.json", run / "manifest.json")  # not trained yet
    (run / "checkpoints/ckpt-000000020.npz").unlink()  # the last one: stopped before it
    checkpoint = (run / "checkpoints/ckpt-000000010.npz").read_bytes()
    filler = _fill(small_disk, 12 * 1024)
    before = {k: v for k, v in snapshot(run).items() if not k.startswith("tensorboard/")}
    line = one_line_error(cli("train", run, "--resume"), f"cannot write {run}/", FULL)
    assert "--resume` continues from the checkpoint at digit 10" in line
    after = {k: v for k, v in snapshot(run).items() if not k.startswith("tensorboard/")}
    assert after == before  # the checkpoint, the log so far and the manifest intact
    assert (run / "checkpoints/ckpt-000000010.npz").read_bytes() == checkpoint
    assert _temporary_files(run) == [] and not (run / ".lock").exists()

    filler.unlink()
    ok("train", run, "--resume")
    a, b = _model(run), _model(trained)
    assert all(np.array_equal(a[k], b[k]) for k in b)
    assert (run / "train_log.csv").read_text() == (trained / "train_log.csv").read_text()
