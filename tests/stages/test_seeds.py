"""Several seeds at once: `run --seeds`, `encode --seeds`, and the stages on a seeds folder.

A seeds folder holds one ordinary run directory per seed (`seed=<s>/`), run side by side as Ray
tasks. The real test runs two tiny networks on a local Ray with 2 workers and checks that each
seed's run is the same, bit for bit, as a single `run --set seed=<s>`, that the summary's mean
and spread are those of the seeds' metrics, and that the same command again skips what finished.
The errors are checked without Ray. The slow test goes stage by stage (`encode --seeds`,
`train --seeds 1`, `train`, `assign`, `evaluate`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bases import DC100
from click.testing import CliRunner

from stdp_pipeline.cli.main import main
from stdp_pipeline.sweep.spec import folder_sweep, seeds_sweep

#: A tiny network on few digits: each run takes seconds (mostly compiling).
TINY = [
    "network.n_excitatory=10",
    "encoding.presentation_ms=50",
    "encoding.min_spikes=0",
    "data.train_digits=20",
    "data.assign_start=20",
    "data.assign_digits=20",
    "data.test_digits=20",
    "train.chunk_digits=10",
    "train.checkpoint_every=10",
    # the engine is not what these tests are about: the native one starts faster in each worker
    "train.engine=native",
    "evaluate.engine=native",
]


def _sets() -> list[str]:
    return [arg for item in TINY for arg in ("--set", item)]


def _invoke(*args: str):
    return CliRunner().invoke(main, ["--quiet", *args], catch_exceptions=False)


def test_seeds_sweep_gives_one_run_per_seed_with_only_the_seed_changed() -> None:
    spec = seeds_sweep(
        DC100,
        ["network.n_excitatory=10"],
        [3, 0, 7],
        name="s",
        stages=("evaluate", "encode", "train", "assign"),
        options={"train": {"epochs": 2}},
    )
    assert [r.relpath for r in spec.runs] == ["seed=3", "seed=0", "seed=7"]
    assert [r.config.seed for r in spec.runs] == [3, 0, 7]
    assert spec.stages == ("encode", "train", "assign", "evaluate")  # the table's order
    one = spec.runs[0].config.to_dict()
    for run in spec.runs[1:]:
        other = run.config.to_dict()
        assert {k for k in one if one[k] != other[k]} == {"seed"}
    assert one["network"]["n_excitatory"] == 10
    plan = spec.plan()
    assert plan["options"] == {"train": {"epochs": 2}}
    assert plan["set"] == {"network.n_excitatory": 10} and plan["seeds"] == [3, 0, 7]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--seeds", "0,x"], "--seeds '0,x': give seeds as whole numbers separated by commas"),
        (["--seeds", "1,1"], "--seeds '1,1': a seed appears twice"),
        (["--seeds", "0,-1"], "--seeds '0,-1': seeds must be >= 0"),
    ],
)
def test_bad_seeds_are_one_line_errors(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(main, ["run", str(tmp_path / "r"), "--config", DC100, *args])
    assert result.exit_code == 2
    assert result.output.strip().splitlines()[-1].startswith(f"Error: {message}")
    assert not (tmp_path / "r").exists()


def test_seeds_run_matches_single_runs_and_summarizes(tmp_path: Path, mnist_dir: Path) -> None:
    out = tmp_path / "seeds"
    data = ["--data-dir", str(mnist_dir)]
    result = _invoke("run", str(out), "--config", DC100, *_sets(), *data,
                     "--seeds", "0,1", "--workers", "2")  # fmt: skip
    assert result.exit_code == 0, result.output
    stages = "encode, train, assign, evaluate, fields, reconstruct, curves"
    assert f"{stages} of seeds 0,1: 2 run(s) in {out}" in result.output
    assert "2 at a time" in result.output
    metrics = {}
    for seed in (0, 1):
        run = out / f"seed={seed}"
        assert json.loads((run / "config.json").read_text())["seed"] == seed
        stages = json.loads((run / "manifest.json").read_text())["stages"]
        assert set(stages) == {
            "encode", "train", "assign", "evaluate", "fields", "reconstruct", "curves",
        }  # fmt: skip
        metrics[seed] = json.loads((run / "metrics.json").read_text())["accuracy"]
        acc = metrics[seed]
        line = (
            f"seed {seed}: test accuracy on 20 digits: {100 * acc['all_activity']:.2f} % "
            "(all activity)"
        )
        assert line in result.output
    w0 = np.load(out / "seed=0" / "model.npz")["weights"]
    w1 = np.load(out / "seed=1" / "model.npz")["weights"]
    assert not np.array_equal(w0, w1)  # the seeds differ

    # seed 1 of the folder is the single run with seed 1, bit for bit (encoded and trained here)
    single = tmp_path / "single"
    result_1 = _invoke("encode", str(single), "--config", DC100, *_sets(), *data,
                       "--set", "seed=1")  # fmt: skip
    assert result_1.exit_code == 0, result_1.output
    assert _invoke("train", str(single)).exit_code == 0
    np.testing.assert_array_equal(np.load(single / "model.npz")["weights"], w1)

    table = pd.read_csv(out / "summary.csv")
    assert len(table) == 1 and table["seeds"][0] == 2
    for scheme in ("all_activity", "proportion", "linear"):
        values = [metrics[s][scheme] for s in (0, 1)]
        assert table[f"{scheme}_mean"][0] == pytest.approx(np.mean(values))
        assert table[f"{scheme}_std"][0] == pytest.approx(np.std(values, ddof=1))
    mean = 100 * table["all_activity_mean"][0]
    assert f"2 seed(s), mean ± standard deviation: {mean:.2f} % ± " in result.output

    # compare: the folder is one row per scheme, the mean over its seeds
    result = _invoke("compare", str(out), "--out", str(tmp_path / "cmp"))
    assert result.exit_code == 0, result.output
    rows = pd.read_csv(tmp_path / "cmp" / "comparison.csv")
    rows = rows[rows["source"] == "measured"].set_index("scheme")
    assert len(rows) == 3 and set(rows["run"]) == {str(out)}
    assert set(rows["model"]) == {"dc100-tests"}
    assert rows.loc["all activity", "accuracy"] == pytest.approx(table["all_activity_mean"][0])
    assert rows.loc["linear", "note"].startswith("mean of 2 seed(s) (0, 1) ± ")
    # every scheme's row has the mean training time of the seeds (the linear one too)
    walls = [json.loads((out / f"seed={s}" / "metrics.json").read_text())["train_wall_s"]
             for s in (0, 1)]  # fmt: skip
    assert rows["train_wall_s"].tolist() == pytest.approx([np.mean(walls)] * 3)

    # the same command again: both seeds finished before, Ray never starts
    again = _invoke("run", str(out), "--config", DC100, *_sets(), *data,
                    "--seeds", "0,1")  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "2 finished before, skipped" in again.output and "running" not in again.output
    # one of its seeds again, alone: the folder keeps both (record and summary), nothing reruns
    one = _invoke("run", str(out), "--config", DC100, *_sets(), *data, "--seeds", "1")
    assert one.exit_code == 0, one.output
    assert "2 finished before, skipped" in one.output and "running" not in one.output
    assert [r["seed"] for r in json.loads((out / "sweep.json").read_text())["runs"]] == [0, 1]
    assert pd.read_csv(out / "summary.csv")["seeds"][0] == 2
    # another config into the same folder is refused before anything runs
    other = [*_sets(), "--set", "data.test_digits=30", "--seeds", "0,1"]
    changed = CliRunner().invoke(main, ["run", str(out), "--config", DC100, *other])
    assert changed.exit_code == 2 and "data.test_digits: 20 -> 30" in changed.output
    assert "(this seeds folder was made with the other config)" in changed.output

    # the stages on the folder: a seed it does not hold, a single run given --seeds
    bad = CliRunner().invoke(main, ["train", str(out), "--seeds", "5"])
    assert bad.exit_code == 2
    assert f"Error: --seeds: seed 5 is not in {out} (its seeds: 0, 1)" in bad.output
    bad = CliRunner().invoke(main, ["train", str(single), "--seeds", "1"])
    assert bad.exit_code == 2 and f"--seeds: {single} is a single run, not a seeds folder" in (
        bad.output
    )
    bad = CliRunner().invoke(main, ["run", str(single), "--config", DC100,
                                    "--seeds", "1"])  # fmt: skip
    assert bad.exit_code == 2 and "holds a single run, not a seeds folder" in bad.output
    spec = folder_sweep(out, ("train",))
    assert [r.config.seed for r in spec.runs] == [0, 1]
    # training a seed that is trained skips it, and the record keeps both seeds
    result = _invoke("train", str(out), "--seeds", "1")
    assert result.exit_code == 0, result.output
    assert "train of seeds 1: 1 run(s)" in result.output and "1 finished before" in result.output
    plan = json.loads((out / "sweep.json").read_text())
    assert [r["seed"] for r in plan["runs"]] == [0, 1]
    every = ["encode", "train", "assign", "evaluate", "fields", "reconstruct", "curves"]
    assert plan["stages"] == every  # the folder's stages, not just "train"
    assert pd.read_csv(out / "summary.csv")["seeds"][0] == 2  # still both finished


@pytest.mark.slow
def test_seeds_folder_stage_by_stage(tmp_path: Path, mnist_dir: Path) -> None:
    """encode --seeds 0,1; train --seeds 1 trains seed 1 alone; train then trains seed 0 (seed 1
    skipped); assign and evaluate every seed; the summary holds both."""
    out = tmp_path / "seeds"
    result = _invoke("encode", str(out), "--config", DC100, *_sets(),
                     "--data-dir", str(mnist_dir), "--seeds", "0,1")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "seed 1: encoded 20 training, 20 assignment and 20 test digits" in result.output
    result = _invoke("train", str(out), "--seeds", "1", "--workers", "1")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "sweep.json").read_text())["stages"] == ["encode", "train"]
    assert (out / "seed=1" / "model.npz").exists() and not (out / "seed=0" / "model.npz").exists()
    result = _invoke("train", str(out))
    assert "1 finished before, skipped" in result.output
    assert "seed 0: trained on 20 digits" in result.output
    for stage in ("assign", "evaluate"):
        result = _invoke(stage, str(out))
        assert result.exit_code == 0, result.output
    assert "2 seed(s), mean ± standard deviation" in result.output
    table = pd.read_csv(out / "summary.csv")
    assert table["seeds"][0] == 2 and not np.isnan(table["all_activity_mean"][0])

    # a seed that fails is reported in one line, exit status 1; the same command runs it again
    bad = tmp_path / "bad"
    args = ["run", str(bad), "--config", DC100, *_sets(), "--set",
            "data.test_digits=20000", "--data-dir", str(mnist_dir), "--seeds", "3"]  # fmt: skip
    for _ in range(2):
        result = CliRunner().invoke(main, ["--quiet", *args])
        assert result.exit_code == 1
        assert "seed 3: failed: encode: test_digits = 20000: only 10000 test digits" in (
            result.output
        )
        assert "failed before" not in result.output
