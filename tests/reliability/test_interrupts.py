"""Ctrl-C and kill -9: a stopped stage leaves nothing half-written and says how to go on; training
resumed from its newest checkpoint ends bit-identical to an uninterrupted run, and TensorBoard
holds every step once.

The fast tests interrupt the simulation stand-in in this process; the slow ones (``-m slow``)
train for real in a separate ``stdp-pipeline`` process and kill it."""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from bases import DC100
from reliability_kit import TINY, cli, fake_train_chunk, ok, one_line_error, snapshot

from stdp_pipeline.sim import present


def _events(run: Path) -> tuple[int, collections.Counter]:
    """(event files in tensorboard/, how often each (tag, step) was logged)."""
    from stdp_pipeline._tf import tf

    files = sorted((run / "tensorboard").iterdir())
    seen: collections.Counter = collections.Counter()
    for path in files:
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                seen[(value.tag, event.step)] += 1
    return len(files), seen


def _same_model(a: Path, b: Path) -> bool:
    with np.load(a / "model.npz") as x, np.load(b / "model.npz") as y:
        return sorted(x.files) == sorted(y.files) and all(
            np.array_equal(x[k], y[k]) for k in x.files
        )


def test_ctrl_c_in_train_says_how_to_resume(
    copy_run, stub_sim, base_runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C in the chunk after the checkpoint at 10 digits: one line saying `--resume` goes on
    from there (exit status 130); no model, no lock; `--resume` ends bit-identical to the
    uninterrupted run, and TensorBoard holds one events file with every step once."""
    run = copy_run("encoded")
    calls = []

    def interrupted_at_digit_10(net, images, indices, epoch=0, inputs=None):
        calls.append(int(indices[0]))
        if int(indices[0]) == int(np.load(run / "encoded/train.npz")["indices"][10]):
            raise KeyboardInterrupt
        return fake_train_chunk(net, images, indices, epoch)

    monkeypatch.setattr(present, "train_chunk", interrupted_at_digit_10)
    one_line_error(
        cli("train", run),
        f"training stopped; `stdp-pipeline train {run} --resume` continues from the checkpoint "
        "at digit 10",
        code=130,
        prefix="Interrupted: ",
    )
    assert len(calls) == 3
    assert not (run / "model.npz").exists() and not (run / ".lock").exists()
    assert json.loads((run / "manifest.json").read_text())["stages"].keys() == {"encode"}

    monkeypatch.setattr(present, "train_chunk", fake_train_chunk)
    ok("train", run, "--resume")
    straight = base_runs["trained"]
    assert _same_model(run, straight)
    assert (run / "train_log.csv").read_text() == (straight / "train_log.csv").read_text()
    files, seen = _events(run)
    assert files == 1 and set(seen.values()) == {1}
    assert {step for _, step in seen} == {5, 10, 15, 20}
    assert set(seen) == set(_events(straight)[1])


def test_ctrl_c_in_assign_keeps_the_run_as_it_was(
    copy_run, stub_sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = copy_run("trained")
    before = snapshot(run)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(present, "respond", interrupted)
    one_line_error(
        cli("assign", run),
        "`stdp-pipeline assign` stopped before it finished; nothing half-written was kept",
        code=130,
        prefix="Interrupted: ",
    )
    assert snapshot(run) == before


def test_ctrl_c_in_run_names_the_stage(
    tmp_path: Path, stub_sim, mnist_dir, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(present, "train_chunk", interrupted)
    run = tmp_path / "all"
    args = ("run", run, "--config", DC100, "--data-dir", mnist_dir, *TINY)
    result = cli(*args)
    assert result.exit_code == 130
    assert result.output.splitlines()[0].startswith("encoded 20 training")
    assert result.output.splitlines()[-1] == (
        f"Interrupted: `stdp-pipeline run` stopped in stage 'train'; no checkpoint was written "
        f"yet, so run `stdp-pipeline train {run}` again (it starts from the beginning); then run "
        "the stages after it (assign, evaluate, fields, reconstruct, curves)"
    )
    assert not (run / ".lock").exists()


def test_kill_int_and_term_stop_like_ctrl_c() -> None:
    """The entry point's handlers: SIGTERM raises KeyboardInterrupt (the Ctrl-C path of every
    command), and so does SIGINT where the process started with it ignored (a background job of a
    shell script); without them SIGINT stays ignored here."""
    from stdp_pipeline.cli.common import stop_on_signals

    saved = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        os.kill(os.getpid(), signal.SIGINT)  # ignored: nothing happens
        time.sleep(0.05)
        stop_on_signals()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with pytest.raises(KeyboardInterrupt):
                os.kill(os.getpid(), sig)
                time.sleep(5)  # the handler raises at the next bytecode
    finally:
        signal.signal(signal.SIGINT, saved[0])
        signal.signal(signal.SIGTERM, saved[1])


# --- real processes (slow) --------------------------------------------------------------------
SLOW_TINY = [*TINY, "--set", "data.train_digits=200", "--set", "data.assign_start=200"]


def _stdp(*args: object, int_ignored: bool = False, **kwargs) -> subprocess.Popen:
    """``stdp-pipeline ARGS`` as its own process (Ctrl-C reaches it as SIGINT; with
    ``int_ignored`` it starts with SIGINT ignored, as a background job of a shell script does)."""
    env = {**os.environ, "STDP_PROGRESS": "0", "STDP_NO_DOWNLOAD": "1"}
    how = signal.SIG_IGN if int_ignored else signal.SIG_DFL
    return subprocess.Popen(
        [sys.executable, "-m", "stdp_pipeline", *(str(a) for a in args)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, how),
        **kwargs,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout_s: float = 600) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory, mnist_dir) -> dict[str, Path]:
    """A real tiny run of 200 training digits (checkpoints every 10), encoded, and a copy trained
    straight through by a real `stdp-pipeline train`."""
    root = tmp_path_factory.mktemp("real")
    encoded, straight = root / "encoded", root / "straight"
    for run in (encoded, straight):
        proc = _stdp("encode", run, "--config", DC100, "--data-dir", mnist_dir, *SLOW_TINY)
        assert proc.wait(timeout=600) == 0, proc.communicate()
    proc = _stdp("train", straight)
    assert proc.wait(timeout=1200) == 0, proc.communicate()
    return {"encoded": encoded, "straight": straight}


@pytest.mark.slow
@pytest.mark.parametrize("how", ["kill -9", "Ctrl-C", "kill -INT, started ignoring it", "kill"])
def test_interrupted_training_resumes_bit_identical(real_runs, tmp_path: Path, how: str) -> None:
    """A real `stdp-pipeline train` stopped after its checkpoint at 40 digits (kill -9: the lock
    file stays behind; Ctrl-C, kill -INT to a process started with SIGINT ignored, and kill
    (SIGTERM): one line saying how to resume, exit 130), then `--resume` in a new process: the
    weights, thresholds and log equal the uninterrupted run's bit for bit, and TensorBoard holds
    one events file with every step once."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(real_runs["encoded"], run)
    proc = _stdp("train", run, int_ignored=how.startswith("kill -INT"))
    _wait_for(run / "checkpoints/ckpt-000000040.npz", proc)
    if how == "kill -9":
        proc.kill()
        proc.communicate()
        assert json.loads((run / ".lock").read_text())["pid"] == proc.pid
    else:
        proc.send_signal(signal.SIGTERM if how == "kill" else signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 130, err
        lines = [ln for ln in err.splitlines() if not ln.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith("Interrupted: training stopped; `"), err
        assert f"stdp-pipeline train {run} --resume` continues from the checkpoint" in lines[0]
        assert not (run / ".lock").exists()
    assert not (run / "model.npz").exists()
    proc = _stdp("train", run, "--resume")
    out, err = proc.communicate(timeout=1200)
    assert proc.returncode == 0, err
    assert "trained on 200 digits (digits " in out and " to 200 in " in out
    straight = real_runs["straight"]
    assert _same_model(run, straight)
    assert (run / "train_log.csv").read_text() == (straight / "train_log.csv").read_text()
    files, seen = _events(run)
    assert files == 1 and set(seen.values()) == {1}
    assert set(seen) == set(_events(straight)[1])
    assert not (run / ".lock").exists()


@pytest.mark.slow
def test_two_trains_at_once(real_runs, tmp_path: Path) -> None:
    """Two real `stdp-pipeline train` on one run directory: the second refuses within seconds
    with one line naming the first; the first finishes unharmed."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(real_runs["encoded"], run)
    first = _stdp("train", run)
    _wait_for(run / ".lock", first)
    started = time.monotonic()
    second = _stdp("train", run)
    out, err = second.communicate(timeout=120)
    assert time.monotonic() - started < 60
    assert second.returncode == 2 and out == ""
    assert err.splitlines() == [
        f"Error: {run} is in use by another stdp-pipeline process (pid {first.pid}, `train` "
        f"since {json.loads((run / '.lock').read_text())['since']}): wait until it ends, or "
        f"stop it, then try again (lock file {run}/.lock)"
    ]
    assert first.wait(timeout=1200) == 0, first.communicate()
    assert _same_model(run, real_runs["straight"])


@pytest.mark.slow
def test_kill_during_assign_leaves_nothing_half_written(real_runs, tmp_path: Path) -> None:
    import shutil

    run = tmp_path / "run"
    shutil.copytree(real_runs["straight"], run)
    before = snapshot(run)
    proc = _stdp("assign", run)
    _wait_for(run / ".lock", proc)
    time.sleep(2.0)  # inside the stage: compiling or simulating
    proc.kill()
    proc.communicate()
    after = snapshot(run)
    assert {k for k in after if k != ".lock"} == set(before)  # no new file, no half file
    assert all(after[k] == before[k] for k in before if k != "manifest.json")
    proc = _stdp("assign", run)
    out, err = proc.communicate(timeout=1200)
    assert proc.returncode == 0, err
    assert out.startswith("assigned 8 neurons")
    assert not (run / ".lock").exists()
