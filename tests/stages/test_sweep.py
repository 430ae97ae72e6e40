"""`stdp-pipeline sweep`: the sweep file, the summary, and real sweeps on a local Ray.

The fast tests check the sweep file (points, names, ranges, the errors that stop a sweep before
it starts) and the summary arithmetic without Ray. One real sweep runs on a local Ray with 2
workers over tiny networks and real MNIST: 2 good points x 2 seeds and a point whose value is a
valid config but fails in `encode`; it checks the run directories, the summary, that the bad point
fails alone with its message, and that a rerun with --resume skips the finished runs. The slow
tests kill a worker in the middle of training (Ray reruns the task, which resumes from the
checkpoint) and interrupt a sweep with Ctrl-C (then --resume finishes it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bases import DC100
from click.testing import CliRunner

from stdp_pipeline.cli.main import main
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.sweep.engine import cores
from stdp_pipeline.sweep.spec import load_sweep, point_name
from stdp_pipeline.sweep.summary import summarize

REPO = Path(__file__).resolve().parents[2]

#: A tiny network on few digits: each run takes seconds (mostly compiling).
TINY = """\
[set]
"network.n_excitatory" = 10
"encoding.presentation_ms" = 50
"encoding.min_spikes" = 0
"data.train_digits" = 20
"data.assign_start" = 20
"data.assign_digits" = 20
"data.test_digits" = 20
"train.chunk_digits" = 10
"train.checkpoint_every" = 10
# the engine is not what these tests are about: the native one starts faster in each worker
"train.engine" = "native"
"evaluate.engine" = "native"
"""


def _write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def _invoke(*args: str):
    return CliRunner().invoke(main, ["--quiet", *args], catch_exceptions=False)


# --- the sweep file -------------------------------------------------------------------------------
def test_sweep_file_makes_every_point_with_every_seed(tmp_path: Path) -> None:
    """Grid values, ranges (linear, log, by step), random draws and seeds combine into points and
    runs; names come from the swept values; each run's config holds its values and its seed."""
    _write(tmp_path / "base.toml", f'base = "{DC100}"\n[network]\nn_excitatory = 30\n')
    spec = load_sweep(
        _write(
            tmp_path / "s.toml",
            """\
            base = "base.toml"            # beside the sweep file
            seeds = 2
            stages = ["evaluate", "assign", "train", "encode", "fields"]
            [set.data]
            train_digits = 500
            [grid]
            "event_stdp.event_window_ms" = { range = [5, 20], num = 4 }
            "poisson.rate_max_hz" = { logrange = [30, 120], num = 3 }
            [grid.train]
            chunk_digits = { range = [100, 300], step = 100 }
            [random]
            samples = 2
            seed = 7
            "event_stdp.eta" = { loguniform = [1e-4, 1e-2] }
            "network.n_excitatory" = { choice = [10, 20] }
            "train.checkpoint_every" = { uniform = [100, 200] }
            """,
        )
    )
    assert spec.name == "s" and spec.seeds == (0, 1) and spec.metric == "all_activity"
    assert spec.stages == ("encode", "train", "assign", "evaluate", "fields")  # table order
    grid = {a.key: a.values for a in spec.axes if a.kind == "grid"}
    assert grid == {
        "event_stdp.event_window_ms": (5.0, 10.0, 15.0, 20.0),
        "poisson.rate_max_hz": (30.0, 60.0, 120.0),
        "train.chunk_digits": (100, 200, 300),  # an integer key gets integers
    }
    assert len(spec.points) == 4 * 3 * 3 * 2 and len(spec.runs) == 2 * len(spec.points)
    first = spec.points[0]
    assert first.name.startswith("event_window_ms=5,rate_max_hz=30,chunk_digits=100,eta=")
    draws = {(p.overrides["event_stdp.eta"], p.overrides["network.n_excitatory"])
             for p in spec.points}  # fmt: skip
    assert len(draws) == 2  # two random samples, each with every grid point
    for eta, n in draws:
        assert 1e-4 <= eta <= 1e-2 and float(f"{eta:.4g}") == eta and n in (10, 20)
    assert load_sweep(tmp_path / "s.toml").points == spec.points  # the same draws every time
    run = spec.runs[3]
    assert run.relpath == f"{run.point.name}/seed=1" and run.config.seed == 1
    assert run.config.data.train_digits == 500
    assert run.config.encoding.patch_size_px == 28  # from the preset under base.toml
    for key, value in run.point.overrides.items():
        section, leaf = key.split(".")
        assert getattr(getattr(run.config, section), leaf) == value
    assert point_name({"a.x": 0.001, "b.x": True, "c.y": 5.0}) == "a.x=0.001,b.x=true,y=5"


def test_zipped_keys_vary_together_with_every_grid_point(tmp_path: Path) -> None:
    """[zip]: the n-th values of the zipped keys make one combination (repeats allowed), taken
    with every grid value; each run's config holds them."""
    spec = load_sweep(
        _write(
            tmp_path / "z.toml",
            """\
            base = "event-stdp-patches"
            [grid]
            "event_stdp.eta" = [0.004, 0.008]
            [zip]
            "encoding.patch_size_px" = [10, 12, 16]
            "encoding.patch_stride_px" = [6, 4, 4]
            "network.n_excitatory" = [1600, 1600, 400]
            """,
        )
    )
    assert [a.kind for a in spec.axes] == ["grid", "zip", "zip", "zip"]
    assert [p.name for p in spec.points] == [
        f"eta={eta},patch_size_px={k},patch_stride_px={s},n_excitatory={n}"
        for eta in (0.004, 0.008)
        for k, s, n in ((10, 6, 1600), (12, 4, 1600), (16, 4, 400))
    ]
    run = spec.runs[4]  # eta 0.008 with the second zipped row
    assert run.config.event_stdp.eta == 0.008
    assert (run.config.encoding.patch_size_px, run.config.encoding.patch_stride_px) == (12, 4)
    assert run.config.network.n_excitatory == 1600


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '[grid]\n"event_stdp.etaa" = [0.1]',
            "unknown key 'event_stdp.etaa': did you mean 'event_stdp.eta'?",
        ),
        ('[grid]\n"learning.eta" = [0.1]', "it moved to 'event_stdp.eta'"),
        (
            '[grid]\n"network.n_excitatory" = [10, 0]',
            "point n_excitatory=0, seed 0: network.n_excitatory = 0: must be > 0",
        ),
        ('[set]\n"network.n_excitatory" = -1', "network.n_excitatory = -1: must be > 0"),
        ('[grid]\n"event_stdp.eta" = { logrange = [0, 1], num = 3 }', "a log scale needs low > 0"),
        ('[grid]\n"event_stdp.eta" = { range = [0, 1] }', "num = None: give how many values"),
        ("[grid]\nseed = [0, 1]", "'seed' is varied by seeds"),
        ("seeds = [0, 0]", "a seed appears twice"),
        ('stages = ["encode", "evaluate"]', "'evaluate' needs 'assign'"),
        ('stages = ["encode", "train"]', "must include 'evaluate'"),
        ('metric = "acc"', "metric = 'acc': must be one of all_activity, proportion, linear"),
        ("[random]\nsamples = 3", "no key to draw"),
        ('[random]\n"event_stdp.eta" = { uniform = [0, 1] }', "samples = None"),
        ('[grid]\n"event_stdp.eta" = [0.1]\n[set]\n"event_stdp.eta" = 0.2', "in both [set]"),
        ("grids = 1", "unknown entry 'grids' (did you mean 'grid'?)"),
        (
            '[zip]\n"encoding.patch_size_px" = [10, 12]\n"encoding.patch_stride_px" = [6]',
            "the zipped lists differ in length ('encoding.patch_size_px' 2, "
            "'encoding.patch_stride_px' 1)",
        ),
        ('[zip]\n"event_stdp.eta" = 0.1', "[zip] 'event_stdp.eta': 0.1: must be a non-empty list"),
        (
            '[zip]\n"event_stdp.eta" = [0.1]\n[grid]\n"event_stdp.eta" = [0.2]',
            "in both [grid] and [zip]",
        ),
        (
            '[zip]\n"encoding.patch_size_px" = [12, 10]\n"encoding.patch_stride_px" = [4, 12]',
            "point patch_size_px=10,patch_stride_px=12, seed 0: encoding.patch_stride_px = 12: "
            "must be <= encoding.patch_size_px = 10",
        ),
    ],
)
def test_a_bad_sweep_file_fails_at_once_naming_the_key(
    tmp_path: Path, body: str, message: str
) -> None:
    path = _write(tmp_path / "bad.toml", f'base = "{DC100}"\n{body}\n')
    with pytest.raises(PipelineError, match="bad.toml") as err:
        load_sweep(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_sweep_recipes_resolve() -> None:
    """The recipes of scripts/sweeps/ load: the smoke sweep is 2 values x 2 seeds, the seeds
    recipe is the diehl-cook-100 preset itself with seeds 0-4, the inference-inhibition sweep
    trains once per seed."""
    from stdp_pipeline.io.config import load_config

    folder = REPO / "scripts" / "sweeps"
    specs = {p.stem: load_sweep(p) for p in sorted(folder.glob("*.toml"))}
    assert {"smoke", "dc100-seeds", "event-rule-grid"} <= set(specs)
    smoke = specs["smoke"]
    assert len(smoke.points) == 2 and smoke.seeds == (0, 1) and len(smoke.runs) == 4
    seeds = specs["dc100-seeds"]
    assert seeds.seeds == (0, 1, 2, 3, 4) and [p.name for p in seeds.points] == ["base"]
    for run in seeds.runs:
        assert run.config == load_config("diehl-cook-100", [f"seed={run.seed}"])
    grid = specs["event-rule-grid"]
    assert grid.swept == ("event_stdp.eta", "event_stdp.event_window_ms")
    assert len(grid.points) == 9 and grid.runs[0].config.learning.rule == "event"
    # the inference settings: 10 runs, of which 8 take one of the 2 trainings over
    from stdp_pipeline.sweep.engine import shared_training

    inh = specs["inference-inhibition"]
    assert len(inh.runs) == 10 and len(shared_training(inh, REPO / "no-such", inh.runs)) == 8


def test_the_cli_refuses_a_bad_sweep_file_before_starting_ray(tmp_path: Path) -> None:
    path = _write(tmp_path / "bad.toml", f'base = "{DC100}"\n[grid]\n"x.y" = [1]\n')
    result = CliRunner().invoke(main, ["sweep", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and "unknown key 'x.y'" in result.output
    assert not (tmp_path / "out").exists()


def test_the_sweep_folder_is_checked_before_ray_starts(tmp_path: Path) -> None:
    """A folder of other things is refused; a sweep folder needs --resume; a run directory made
    under another config (the sweep file was edited) is refused, naming the key."""
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.sweep.engine import run_sweep

    spec = load_sweep(
        _write(tmp_path / "s.toml", f'base = "{DC100}"\n[grid]\n"event_stdp.eta" = [0.1, 0.2]\n')
    )
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(PipelineError, match="not empty and holds no sweep"):
        run_sweep(spec, other, resume=True)
    out = tmp_path / "out"
    first = spec.runs[0]
    RunDir.create(out / first.relpath, first.config.replace(seed=5))
    (out / "sweep.json").write_text(json.dumps(spec.plan()))
    with pytest.raises(PipelineError, match="already holds a sweep: add --resume"):
        run_sweep(spec, out)
    with pytest.raises(PipelineError, match=r"seed: 5 -> 0.*the sweep file changed"):
        run_sweep(spec, out, resume=True)
    assert sorted(p.name for p in out.iterdir()) == ["eta=0.1", "sweep.json"]


def test_summary_ranks_points_by_the_mean_over_seeds() -> None:
    runs = pd.DataFrame(
        {
            "point": ["a", "a", "b", "b", "c", "c"],
            "seed": [0, 1, 0, 1, 0, 1],
            "status": ["finished", "finished", "finished", "failed", "failed", "failed"],
            "k": [1, 1, 2, 2, 3, 3],
            "all_activity": [0.5, 0.7, 0.65, np.nan, np.nan, np.nan],
            "proportion": [0.4, 0.6, 0.9, np.nan, np.nan, np.nan],
            "linear": [0.8, 0.8, 0.7, np.nan, np.nan, np.nan],
            "train_wall_s": [10.0, 20.0, 30.0, np.nan, np.nan, np.nan],
            "error": ["", "", "", "boom", "bad value", "bad value"],
        }
    )
    table = summarize(runs, ["k"], "all_activity")
    assert list(table["point"]) == ["b", "a", "c"]  # 0.65 > 0.6; c has no result
    assert list(table["rank"].astype("Float64").fillna(0)) == [1, 2, 0]
    a = table.set_index("point").loc["a"]
    assert a["accuracy_mean"] == pytest.approx(0.6)
    assert a["accuracy_std"] == pytest.approx(np.std([0.5, 0.7], ddof=1))
    assert a["proportion_mean"] == pytest.approx(0.5) and a["seeds"] == 2
    b = table.set_index("point").loc["b"]
    assert b["seeds"] == 1 and b["failed"] == 1 and np.isnan(b["accuracy_std"])
    assert b["error"] == "boom"
    by_proportion = summarize(runs, ["k"], "proportion")
    assert list(by_proportion["point"]) == ["b", "a", "c"]
    assert by_proportion["accuracy_mean"].iloc[0] == pytest.approx(0.9)


def test_ray_is_imported_by_a_running_sweep_only() -> None:
    """The command line, the sweep file and the summary (which `compare` reads) do not import
    Ray: only a sweep with runs to do starts it."""
    code = (
        "import sys\n"
        "import stdp_pipeline.cli.main, stdp_pipeline.sweep.spec, stdp_pipeline.sweep.summary\n"
        "import stdp_pipeline.sweep.engine, stdp_pipeline.stages.report\n"
        "print('ray' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "False"


# --- a real sweep on a local Ray ------------------------------------------------------------------
def test_sweep_on_local_ray_summary_failure_and_resume(tmp_path: Path, mnist_dir: Path) -> None:
    """2 workers, 3 values x 2 seeds: test_digits 20 and 30 run (4 runs); 20000 is a valid config
    but more test digits than MNIST has, so `encode` fails: those two runs fail alone, with the
    message, and the others finish. Then --resume skips the 4 finished runs."""
    sweep = _write(
        tmp_path / "tiny.toml",
        f'base = "{DC100}"\nseeds = [0, 1]\n'
        + TINY.replace('"data.test_digits" = 20\n', "")
        + '[grid]\n"data.test_digits" = [20, 30, 20000]\n',
    )
    out = tmp_path / "out"
    t0 = time.perf_counter()
    result = _invoke("sweep", str(sweep), "--out", str(out), "--workers", "2",
                     "--data-dir", str(mnist_dir))  # fmt: skip
    first_s = time.perf_counter() - t0
    assert result.exit_code == 1, result.output  # some runs failed
    assert "sweep tiny: 3 point(s) x 2 seed(s) = 6 run(s)" in result.output
    assert "2 at a time" in result.output
    bad = "test_digits=20000"
    for seed in (0, 1):
        line = (f"failed: {bad}/seed={seed}: encode: test_digits = 20000: only 10000 test digits "
                "available")  # fmt: skip
        assert line in result.output
    assert "4 of 6 run(s) finished, 2 failed" in result.output

    threads = max(1, cores() // 2)
    for digits in (20, 30):
        for seed in (0, 1):
            run = out / f"test_digits={digits}" / f"seed={seed}"
            config = json.loads((run / "config.json").read_text())
            assert config["seed"] == seed and config["data"]["test_digits"] == digits
            assert config["network"]["n_excitatory"] == 10
            metrics = json.loads((run / "metrics.json").read_text())
            assert metrics["test_digits"] == digits
            stages = json.loads((run / "manifest.json").read_text())["stages"]
            assert set(stages) == {"encode", "train", "assign", "evaluate"}
            assert json.loads((run / "worker.json").read_text())["tf_threads"] == threads
            assert not (run / "failed.json").exists()
    for seed in (0, 1):
        failed = json.loads((out / bad / f"seed={seed}" / "failed.json").read_text())
        assert failed["stage"] == "encode" and "only 10000 test digits" in failed["error"]

    table = pd.read_csv(out / "summary.csv")
    assert list(table["point"][:2]) in (
        ["test_digits=20", "test_digits=30"],
        ["test_digits=30", "test_digits=20"],
    )
    assert table["accuracy_mean"][:2].is_monotonic_decreasing
    for _, row in table.iloc[:2].iterrows():
        accs = [
            json.loads((out / row["point"] / f"seed={s}" / "metrics.json").read_text())["accuracy"][
                "all_activity"
            ]
            for s in (0, 1)
        ]
        assert row["accuracy_mean"] == pytest.approx(np.mean(accs))
        assert row["accuracy_std"] == pytest.approx(np.std(accs, ddof=1), nan_ok=True)
        assert row["seeds"] == 2 and row["failed"] == 0 and row["rank"] in (1, 2)
    last = table.iloc[2]
    assert last["point"] == bad and last["seeds"] == 0 and last["failed"] == 2
    assert np.isnan(last["accuracy_mean"]) and "only 10000 test digits" in last["error"]
    runs = pd.read_csv(out / "runs.csv")
    assert list(runs["status"]) == ["finished"] * 4 + ["failed"] * 2
    assert (runs.loc[runs["status"] == "finished", "tf_threads"] == threads).all()
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 1 | `test_digits=" in (out / "summary.md").read_text()

    # compare: the best point of the sweep (mean over its seeds), or every run
    result = _invoke("compare", str(out), "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    rows = rows[rows["source"] == "measured"].set_index("scheme")
    assert len(rows) == 3 and set(rows["run"]) == {str(out / table["point"][0])}
    assert rows.loc["all activity", "accuracy"] == pytest.approx(table["accuracy_mean"][0])
    assert rows.loc["linear", "accuracy"] == pytest.approx(table["linear_mean"][0])
    assert "best of 2 point(s) of sweep tiny, mean of 2 seed(s)" in rows["note"].iloc[0]
    result = _invoke("compare", str(out), "--out", str(tmp_path / "cmp"), "--sweeps", "all")
    assert "(4 measured run(s))" in result.output

    # a second run without --resume refuses the folder; with --resume it skips what finished,
    # and what failed (as in Ray Tune; --retry-failed would run it again), so Ray never starts
    again = CliRunner().invoke(main, ["sweep", str(sweep), "--out", str(out)])
    assert again.exit_code == 2 and "add --resume" in again.output
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("test_digits=[23]0/seed=*/metrics.json")}
    assert len(stamps) == 4
    t0 = time.perf_counter()
    result = _invoke("sweep", str(sweep), "--out", str(out), "--workers", "2", "--resume",
                     "--data-dir", str(mnist_dir))  # fmt: skip
    resume_s = time.perf_counter() - t0
    assert result.exit_code == 1, result.output
    assert "4 finished before, skipped; 2 failed before, skipped" in result.output
    assert "running" not in result.output  # nothing to run: no Ray
    assert "4 of 6 run(s) finished (4 before), 2 failed (2 before)" in result.output
    assert f"failed: {bad}/seed=1: encode: test_digits = 20000: only 10000" in result.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert pd.read_csv(out / "summary.csv").equals(table)
    print(f"sweep {first_s:.1f} s, resume {resume_s:.1f} s")


# --- slow: a worker killed in training, Ctrl-C ----------------------------------------------------
LONGER = TINY.replace('"data.train_digits" = 20', '"data.train_digits" = 300').replace(
    '"data.assign_start" = 20', '"data.assign_start" = 300'
)


def _wait_for(predicate, timeout_s: float, what: str) -> None:
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout_s:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_worker_is_rerun_from_its_checkpoint(tmp_path: Path, mnist_dir: Path) -> None:
    """kill -9 of the Ray worker in the middle of training: Ray reruns the task, which resumes
    from the last checkpoint and finishes; the sweep reports no failure."""
    sweep = _write(tmp_path / "one.toml", f'base = "{DC100}"\n' + LONGER)
    out = tmp_path / "out"
    env = {**os.environ, "STDP_DATA_DIR": str(mnist_dir), "STDP_PROGRESS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stdp_pipeline", "sweep", str(sweep), "--out", str(out),
         "--workers", "1"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    run = out / "base" / "seed=0"
    try:
        _wait_for(lambda: any((run / "checkpoints").glob("ckpt-*.npz")), 300, "a checkpoint")
        pid = json.loads((run / "worker.json").read_text())["pid"]
        os.kill(pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, output
    assert "1 of 1 run(s) finished, 0 failed" in output
    assert "(raylet)" not in output  # Ray's messages go to ray.log, not over the progress bar
    assert "A worker died" in (out / "ray.log").read_text()
    train = json.loads((run / "manifest.json").read_text())["stages"]["train"]
    assert train["resumed_from"] > 0 and train["digits_seen"] == 300
    assert json.loads((run / "worker.json").read_text())["pid"] != pid


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_and_resume_finishes_it(tmp_path: Path, mnist_dir: Path) -> None:
    sweep = _write(
        tmp_path / "two.toml",
        f'base = "{DC100}"\nseeds = [0, 1]\n' + LONGER,
    )
    out = tmp_path / "out"
    env = {**os.environ, "STDP_DATA_DIR": str(mnist_dir), "STDP_PROGRESS": "0"}
    command = [sys.executable, "-m", "stdp_pipeline", "sweep", str(sweep), "--out", str(out),
               "--workers", "2"]  # fmt: skip
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C would reach it
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    try:
        _wait_for(lambda: any(out.glob("base/seed=*/checkpoints/ckpt-*.npz")), 300, "a checkpoint")
        os.killpg(proc.pid, signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "Interrupted: 0 of 2 runs finished" in output and "--resume" in output
    assert (out / "summary.csv").exists()
    temp = json.loads((out / "sweep.json").read_text())["ray"]["temp_dir"]
    assert temp and not Path(temp).exists()  # the local Ray's folder is gone ...
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert temp not in ps  # ... and so are its processes
    done = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True,
                          timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 of 2 run(s) finished, 0 failed" in done.stdout
    resumed = [
        json.loads((out / "base" / f"seed={s}" / "manifest.json").read_text())["stages"]["train"][
            "resumed_from"
        ]
        for s in (0, 1)
    ]
    assert max(resumed) > 0


# --- runs that differ only after training share it ------------------------------------------------
def test_runs_that_differ_only_after_training_share_one(tmp_path: Path) -> None:
    """Points that differ only in evaluate.* learn the same network: one of them trains (a run
    that trained before, else one that began training, else the first to do) and the others
    take its training over; points
    that differ in what training reads (here the data) and other seeds train on their own."""
    from stdp_pipeline.sweep.engine import shared_training

    body = (
        TINY.replace('"data.train_digits" = 20\n', "")
        + '[grid]\n"evaluate.inh_to_exc_weight" = [17, 4, 1]\n"data.train_digits" = [20, 30]\n'
    )
    head = f'base = "{DC100}"\nseeds = [0, 1]\n'
    sweep = _write(tmp_path / "tiny.toml", head + body)
    spec = load_sweep(sweep)
    sources = shared_training(spec, tmp_path / "out", list(spec.runs))
    by_point = {}
    for run in spec.runs:
        by_point.setdefault((run.config.data.train_digits, run.seed), []).append(run.relpath)
    assert len(by_point) == 4 and len(sources) == 8
    for relpaths in by_point.values():  # the first of each trains, the other two take it over
        assert relpaths[0] not in sources
        assert [sources[r] for r in relpaths[1:]] == [relpaths[0]] * 2
    # a run that trained before lends its training, even when it is not to do
    group = next(iter(by_point.values()))
    trained = next(r for r in spec.runs if r.relpath == group[2])  # the last of its group
    manifest = {"stages": {"train": {"outputs": []}}}
    (tmp_path / "out" / trained.relpath).mkdir(parents=True)
    (tmp_path / "out" / trained.relpath / "config.json").write_text(
        json.dumps({**trained.config.to_dict(), "fingerprint": trained.config.fingerprint()})
    )
    (tmp_path / "out" / trained.relpath / "manifest.json").write_text(json.dumps(manifest))
    todo = [r for r in spec.runs if r.relpath != trained.relpath]
    again = shared_training(spec, tmp_path / "out", todo)
    assert again[group[0]] == again[group[1]] == trained.relpath
    # with none trained, a run that began training (a checkpoint, cut off) goes on and lends it
    other = list(by_point.values())[1]
    begun = next(r for r in spec.runs if r.relpath == other[1])
    folder = tmp_path / "out" / begun.relpath
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "ckpt-000000010.npz").write_bytes(b"")
    (folder / "config.json").write_text(
        json.dumps({**begun.config.to_dict(), "fingerprint": begun.config.fingerprint()})
    )
    (folder / "manifest.json").write_text(json.dumps({"stages": {}}))
    again = shared_training(spec, tmp_path / "out", todo)
    assert begun.relpath not in again and again[other[0]] == again[other[2]] == begun.relpath


def test_sweep_of_inference_settings_trains_once(tmp_path: Path, mnist_dir: Path) -> None:
    """A sweep of evaluate.inh_to_exc_weight on a local Ray: the first point trains; the second
    takes its encode and train over (the same files, linked; its records name where they came
    from) and runs assign and evaluate under its own setting: exactly what rescoring the first
    run with that setting gives, with more test spikes under the weaker inhibition."""
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.stages.evaluate import rescore

    sweep = _write(
        tmp_path / "inh.toml",
        f'base = "{DC100}"\nseeds = [0]\n'
        + TINY
        + '[grid]\n"evaluate.inh_to_exc_weight" = [17, 0.5]\n',
    )
    out = tmp_path / "out"
    result = _invoke("sweep", str(sweep), "--out", str(out), "--workers", "2",
                     "--data-dir", str(mnist_dir))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 of them differ from another only in evaluate.* and take its training over" in (
        result.output
    )
    first, second = (out / p / "seed=0" for p in ("inh_to_exc_weight=17", "inh_to_exc_weight=0.5"))
    mine = RunDir(second).manifest()["stages"]
    theirs = RunDir(first).manifest()["stages"]
    assert "adopted_from" not in theirs["train"] and "adopted_from" not in theirs["encode"]
    for name in ("encode", "train"):
        assert mine[name]["adopted_from"] == str(first)
        assert mine[name]["outputs"] == theirs[name]["outputs"]
        for rel in mine[name]["outputs"]:
            assert (second / rel).read_bytes() == (first / rel).read_bytes(), rel
    assert {"assign", "evaluate"} <= set(mine) and "adopted_from" not in mine["evaluate"]
    m1 = json.loads((first / "metrics.json").read_text())
    m2 = json.loads((second / "metrics.json").read_text())
    expected = rescore(RunDir(first), ["evaluate.inh_to_exc_weight=0.5"], progress=False)
    assert m2["accuracy"] == {k: expected[k] for k in m2["accuracy"]}
    assert m2["test_spikes_per_digit"] > m1["test_spikes_per_digit"]
    # the same sweep again: both finished before, nothing runs
    again = _invoke("sweep", str(sweep), "--out", str(out), "--resume", "--data-dir",
                    str(mnist_dir))  # fmt: skip
    assert again.exit_code == 0 and "2 finished before, skipped" in again.output
