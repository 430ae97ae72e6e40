"""Several runs' networks trained as one stack: the train stage (``run_train_stack``), the sweep
worker's groups, and ``run --seeds --stack`` end to end on a local Ray.

Each stacked run writes what the train stage writes for it alone: the same training log (every
digit's spikes and retries), the same checkpoints, thresholds, and weights equal to float32
rounding (tests/sim/test_stack.py checks the program itself)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bases import DC100
from click.testing import CliRunner

from stdp_pipeline.cli.main import main
from stdp_pipeline.io.config import load_config
from stdp_pipeline.io.rundir import RunDir
from stdp_pipeline.stages.encode import run_encode
from stdp_pipeline.stages.train import run_train, run_train_stack
from stdp_pipeline.sweep.engine import _groups
from stdp_pipeline.sweep.spec import seeds_sweep

TINY = [
    "network.n_excitatory=10",
    "encoding.presentation_ms=50",
    "encoding.max_retries=2",
    "data.train_digits=12",
    "data.assign_start=12",
    "data.assign_digits=12",
    "data.test_digits=12",
    "train.chunk_digits=5",
    "train.checkpoint_every=6",
]


@pytest.fixture(autouse=True)
def _one_slot_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every presentation in the widest slots: one compiled program per network or stack
    instead of one per width (results do not depend on the width: padding slots are no-ops)."""
    from stdp_pipeline.sim import present, stack
    from stdp_pipeline.sim.codes.base import SLOTS

    monkeypatch.setattr(present, "SLOT_WIDTHS", (SLOTS,))
    monkeypatch.setattr(stack, "SLOT_WIDTHS", (SLOTS,))


def _encoded(root: Path, mnist_dir: Path, seeds, *extra: str) -> list[RunDir]:
    return [
        run_encode(
            root / f"seed={s}",
            load_config(DC100, [*TINY, *extra, f"seed={s}"]),
            data_dir=str(mnist_dir),
            progress=False,
        )
        for s in seeds
    ]


def test_stacked_runs_write_what_each_run_writes_alone(tmp_path: Path, mnist_dir: Path) -> None:
    alone = _encoded(tmp_path / "alone", mnist_dir, [0, 1])
    stacked = _encoded(tmp_path / "stacked", mnist_dir, [0, 1])
    singles = [run_train(run, progress=False) for run in alone]
    summaries = run_train_stack(stacked, progress=False)
    assert [s["stacked"] for s in summaries] == [2, 2]
    for a, b, one, many in zip(alone, stacked, singles, summaries, strict=True):
        log_a = pd.read_csv(a.file("train_log.csv"))
        log_b = pd.read_csv(b.file("train_log.csv"))
        pd.testing.assert_frame_equal(log_a, log_b)
        assert log_a["spikes"].sum() > 0
        for key in ("digits_seen", "spikes_per_digit", "retries_total", "dropped_input_spikes"):
            assert one[key] == many[key]
        ma, mb = np.load(a.file("model.npz")), np.load(b.file("model.npz"))
        np.testing.assert_allclose(mb["weights"], ma["weights"], rtol=0, atol=1e-6)
        np.testing.assert_array_equal(mb["theta"], ma["theta"])
        assert sorted(a.checkpoints()) == sorted(b.checkpoints()) == [6, 12]
        curve = pd.read_csv(b.file("train_curve.csv"))
        assert curve["position"].tolist() == [5, 6, 11, 12]  # chunks end at checkpoints
        assert b.manifest()["stages"]["train"]["stacked"] == 2
    logs = [pd.read_csv(b.file("train_log.csv"))["spikes"] for b in stacked]
    assert not logs[0].equals(logs[1])  # each network its own seed's spikes
    retries = [pd.read_csv(b.file("train_log.csv"))["retries"].sum() for b in stacked]
    assert max(retries) > 0

    # a second pass goes on from the checkpoints, stacked, as each run alone would
    for run in alone:
        run_train(run, epochs=2, resume=True, progress=False)
    again = run_train_stack(stacked, epochs=2, resume=True, progress=False)
    assert [s["resumed_from"] for s in again] == [12, 12]
    for a, b in zip(alone, stacked, strict=True):
        np.testing.assert_allclose(
            np.load(b.file("model.npz"))["weights"],
            np.load(a.file("model.npz"))["weights"],
            rtol=0,
            atol=1e-6,
        )
        assert sorted(b.checkpoints()) == [6, 12, 18, 24]


def test_runs_that_cannot_stack_train_one_by_one(tmp_path: Path, mnist_dir: Path) -> None:
    """Runs checkpointed at different positions (or made with other values) are trained one by
    one, with the same results as the train stage alone gives."""
    runs = _encoded(tmp_path, mnist_dir, [0, 1])
    run_train(runs[0], limit=8, progress=False)  # seed 0 is ahead: trained on 8 digits
    summaries = run_train_stack(runs, limit=8, resume=True, progress=False)
    assert [s.get("stacked") for s in summaries] == [None, None]
    assert "stacked" not in runs[1].manifest()["stages"]["train"]
    other = _encoded(tmp_path / "other", mnist_dir, [0, 1])
    run_train(other[1], limit=8, progress=False)
    np.testing.assert_array_equal(
        np.load(runs[1].file("model.npz"))["weights"],
        np.load(other[1].file("model.npz"))["weights"],
    )


def test_seeds_of_a_point_group_into_stacks() -> None:
    spec = seeds_sweep(DC100, [], [0, 1, 2, 3, 4], name="s", stages=("train",))
    groups = _groups(spec.runs, 2)
    assert [[r.seed for r in g] for g in groups] == [[0, 1], [2, 3], [4]]
    assert [[r.seed for r in g] for g in _groups(spec.runs, 1)] == [[0], [1], [2], [3], [4]]
    # seeds that cannot stack (input delays, the native engine: diehl-cook-100) go side by side
    for sets in (["network.input_delay_max_ms=10"], ["train.engine=native"]):
        apart = seeds_sweep(DC100, sets, [0, 1, 2], name="s", stages=("train",))
        assert [[r.seed for r in g] for g in _groups(apart.runs, 2)] == [[0], [1], [2]]
    assert apart.runs[0].config.stack_problem().startswith("train.engine = 'native'")


def test_stack_on_a_single_run_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        main, ["run", str(tmp_path / "one"), "--config", DC100, "--stack", "2"]
    )
    assert result.exit_code == 2
    assert "--stack 2: " in result.output and "is a single run" in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow  # 30 s; the stacks' results: test_stacked_runs_write_what_each_run_writes_alone
def test_run_seeds_stacked_on_ray(tmp_path: Path, mnist_dir: Path) -> None:
    """`run --seeds 0,1 --stack 2`: one Ray task, both networks trained as one stack, every
    stage of both runs done, the summary over both seeds."""
    out = tmp_path / "seeds"
    sets = [arg for item in TINY for arg in ("--set", item)]
    result = CliRunner().invoke(
        main,
        [
            "--quiet",
            "run",
            str(out),
            "--config",
            DC100,
            *sets,
            "--data-dir",
            str(mnist_dir),
            "--seeds",
            "0,1",
            "--stack",
            "2",
        ],  # fmt: skip
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "running 2 run(s) as 1 task(s) of up to 2 networks trained as one stack" in (
        result.output
    )
    for seed in (0, 1):
        run = RunDir(out / f"seed={seed}")
        stages = run.manifest()["stages"]
        assert stages["train"]["stacked"] == 2
        assert {"encode", "train", "assign", "evaluate", "curves"} <= set(stages)
        acc = json.loads(run.file("metrics.json").read_text())["accuracy"]
        assert f"seed {seed}: test accuracy on 12 digits: {100 * acc['all_activity']:.2f} %" in (
            result.output
        )
    assert pd.read_csv(out / "summary.csv")["seeds"][0] == 2


@pytest.mark.parametrize("bad", ["0", "-1"])
def test_bad_stack_sizes_are_refused(tmp_path: Path, bad: str) -> None:
    result = CliRunner().invoke(main, ["train", str(tmp_path), "--stack", bad])
    assert result.exit_code == 2 and "--stack" in result.output


@pytest.mark.slow
def test_stacked_training_keeps_the_accuracy_of_a_2000_digit_run(
    tmp_path: Path, mnist_dir: Path
) -> None:
    """Over many digits the float32 rounding differences of the wider program (an FMA contracted
    differently, see tests/sim/test_stack.py) let the spike trains drift apart; the accuracy must
    not change: 100 neurons, 2,000 training digits, labels from 1,000 others, 1,000 test digits,
    seeds 0 and 1 alone and stacked."""
    from stdp_pipeline.stages.assign import run_assign
    from stdp_pipeline.stages.evaluate import run_evaluate

    sets = [
        "data.train_digits=2000",
        "data.assign_start=2000",
        "data.assign_digits=1000",
        "data.test_digits=1000",
    ]

    def encoded(root: Path) -> list[RunDir]:
        return [
            run_encode(
                root / f"seed={s}",
                load_config(DC100, [*sets, f"seed={s}"]),
                data_dir=str(mnist_dir),
                progress=False,
            )
            for s in (0, 1)
        ]

    alone, stacked = encoded(tmp_path / "alone"), encoded(tmp_path / "stacked")
    for run in alone:
        run_train(run, progress=False)
    run_train_stack(stacked, progress=False)
    acc = {}
    for name, runs in (("alone", alone), ("stacked", stacked)):
        for run in runs:
            run_assign(run, progress=False)
            run_evaluate(run, progress=False)
        acc[name] = [
            json.loads(r.file("metrics.json").read_text())["accuracy"]["all_activity"] for r in runs
        ]
    print(f"all-activity accuracy, seeds 0 and 1: {acc}")  # shown with pytest -s
    assert min(acc["alone"] + acc["stacked"]) > 0.6  # ten classes: chance is 0.1
    assert abs(np.mean(acc["stacked"]) - np.mean(acc["alone"])) < 0.02, acc


def test_strict_stops_every_stacked_run_at_one_checkpoint(tmp_path: Path, mnist_dir: Path) -> None:
    """`--strict` in a stack: the first flag stops the stack with the run's seed in the one-line
    error, and every run keeps a checkpoint at that position to resume from."""
    from stdp_pipeline.errors import PipelineError

    hot = ["poisson.rate_max_hz=700", "encoding.presentation_ms=100", "network.n_excitatory=20"]
    runs = _encoded(tmp_path, mnist_dir, [0, 1], *hot)
    with pytest.raises(PipelineError, match=r"^seed \d: --strict: training stopped at digit 5 "):
        run_train_stack(runs, strict=True, progress=False)
    for run in runs:
        assert sorted(run.checkpoints()) == [5]
        assert not run.file("model.npz").exists()
    summaries = run_train_stack(runs, resume=True, progress=False)
    assert [s["resumed_from"] for s in summaries] == [5, 5]
    assert [s["stacked"] for s in summaries] == [2, 2]
