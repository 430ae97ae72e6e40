"""Two processes on one run directory: the second refuses at once, naming the first (its pid and
stage); the lock file goes when its holder ends, and is taken over when the holder is gone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from bases import DC100
from reliability_kit import cli, ok, one_line_error, snapshot

_HOLD = """
import sys, time
from stdp_pipeline.io.rundir import RunDir
with RunDir(sys.argv[1]).lock(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def holder():
    """``holder(run, stage)``: another process that holds the lock of ``run`` as ``stage`` (as a
    running ``stdp-pipeline <stage>`` does) until the test ends; killed then."""
    procs: list[subprocess.Popen] = []

    def start(run: Path, stage: str = "train") -> subprocess.Popen:
        proc = subprocess.Popen(
            [sys.executable, "-c", _HOLD, str(run), stage], stdout=subprocess.PIPE, text=True
        )
        procs.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


COMMANDS = [
    ("train",), ("train", "--resume"), ("assign",), ("evaluate",), ("fields",),
    ("fields", "--all-checkpoints"), ("reconstruct",), ("curves",),
]  # fmt: skip


def test_second_command_refuses_at_once(copy_run, stub_sim, holder) -> None:
    """While another process holds the run directory as `train`, every stage command refuses
    at once with one line naming that process, and writes nothing."""
    run = copy_run("done")
    proc = holder(run, "train")
    before = snapshot(run)
    for command in COMMANDS:
        started = time.perf_counter()
        line = one_line_error(
            cli(command[0], run, *command[1:]),
            f"{run} is in use by another stdp-pipeline process (pid {proc.pid}, `train` since",
            f"lock file {run}/.lock",
        )
        assert time.perf_counter() - started < 5, line  # at once: no waiting, no simulation
    assert snapshot(run) == before


def test_encode_and_run_refuse_too(copy_run, stub_sim, holder, mnist_dir) -> None:
    run = copy_run("done")
    proc = holder(run, "assign")
    before = snapshot(run)
    for name in ("encode", "run"):
        args = (name, run, "--config", DC100, "--data-dir", mnist_dir)
        one_line_error(cli(*args), f"(pid {proc.pid}, `assign` since")
    assert snapshot(run) == before


def test_two_stdp_pipeline_processes(copy_run, holder) -> None:
    """A real second `stdp-pipeline` process (here `assign` while another holds the lock as
    `train`) exits with status 2 and one line on stderr, within seconds."""
    run = copy_run("trained")
    proc = holder(run, "train")
    env = {**os.environ, "STDP_PROGRESS": "0"}
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "stdp_pipeline", "assign", str(run)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert time.perf_counter() - started < 30
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        f"Error: {run} is in use by another stdp-pipeline process (pid {proc.pid}, `train` since "
        f"{json.loads((run / '.lock').read_text())['since']}): wait until it ends, or stop it, "
        f"then try again (lock file {run}/.lock)"
    ]


def test_lock_left_by_a_killed_process_is_taken_over(copy_run, stub_sim, holder) -> None:
    """kill -9 leaves the lock file (and maybe a temporary file of a write it was doing); the
    next command takes the lock over, clears those files, and removes the lock when it ends."""
    run = copy_run("trained")
    proc = holder(run, "train")
    proc.kill()
    proc.wait()
    assert json.loads((run / ".lock").read_text())["pid"] == proc.pid
    temporary = run / "checkpoints" / ".ckpt-000000020.npz.k1ll3d_9.tmp.npz"
    temporary.write_bytes(b"half a checkpoint")
    ok("assign", run)
    assert not (run / ".lock").exists() and not temporary.exists()


def test_lock_is_removed_after_an_error_or_ctrl_c(
    copy_run, stub_sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run("trained")
    one_line_error(cli("train", run, "--limit", "0"), "--limit 0")
    assert not (run / ".lock").exists()
    from stdp_pipeline.sim import present

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(present, "respond", interrupted)
    one_line_error(cli("assign", run), code=130, prefix="Interrupted: ")
    assert not (run / ".lock").exists()


def test_fields_may_draw_checkpoints_while_training_runs(copy_run, holder) -> None:
    """`fields --checkpoint N` goes on while another process trains (the figure is written, the
    manifest is left to the trainer); the final model's fields wait for the trainer."""
    run = copy_run("trained")
    holder(run, "train")
    manifest = (run / "manifest.json").read_bytes()
    assert "fields-000000010.png" in ok("fields", run, "--checkpoint", 10).output
    assert (run / "fields-000000010.png").is_file()
    assert (run / "manifest.json").read_bytes() == manifest
    one_line_error(cli("fields", run), "is in use by another stdp-pipeline process")
