"""The stages end to end: encode -> train -> assign -> evaluate, through the CLI and the library,
on real MNIST digits. Networks are tiny and presentations short so each test takes seconds; one
test trains a real 100-neuron Diehl & Cook network and checks its accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from stdp_pipeline import train as train_mod
from stdp_pipeline.assign import assign_labels
from stdp_pipeline.cli import main
from stdp_pipeline.evaluate import confusion, predict
from stdp_pipeline.rundir import RunDir

REPO = Path(__file__).resolve().parents[1]

TINY = [
    "--set", "network.n_excitatory=12",
    "--set", "encoding.presentation_ms=60",
    "--set", "data.train_digits=40",
    "--set", "data.assign_start=40",
    "--set", "data.assign_digits=30",
    "--set", "data.allow_overlap=false",
    "--set", "data.test_digits=30",
    "--set", "train.chunk_digits=10",
    "--set", "train.checkpoint_every=20",
]  # fmt: skip


def _invoke(*args: str):
    return CliRunner().invoke(main, ["--quiet", *args], catch_exceptions=False)


@pytest.fixture()
def tiny_run(tmp_path, mnist_dir):
    run = tmp_path / "tiny"
    result = _invoke(
        "encode", str(run), "--config", "diehl-cook-100", "--data-dir", str(mnist_dir), *TINY
    )
    assert result.exit_code == 0, result.output
    return run


def test_every_command_has_help_with_examples():
    """`--help` works for every command and group, and the stage commands show examples."""
    runner = CliRunner()
    for cmd in (
        [],
        ["encode"],
        ["train"],
        ["assign"],
        ["evaluate"],
        ["run"],
        ["config"],
        ["config", "show"],
        ["config", "keys"],
        ["config", "presets"],
        ["data"],
    ):
        result = runner.invoke(main, [*cmd, "--help"])
        assert result.exit_code == 0, (cmd, result.output)
        assert "Usage:" in result.output
    for cmd in ("encode", "train", "assign", "evaluate", "run"):
        assert "stdp-pipeline " + cmd in runner.invoke(main, [cmd, "--help"]).output


def test_config_commands_show_presets_and_resolved_values():
    """`config presets` lists the five presets; `config show` applies --set."""
    out = _invoke("config", "presets").output
    for name in (
        "diehl-cook-100",
        "diehl-cook-400",
        "diehl-cook-1600",
        "diehl-cook-6400",
        "event-stdp-patches",
    ):
        assert name in out
    shown = _invoke("config", "show", "diehl-cook-400", "--set", "excitatory.tau_mem_ms=50").output
    assert "tau_mem_ms = 50.0" in shown and "n_excitatory = 400" in shown


def test_bad_config_value_is_one_line_error(tmp_path, mnist_dir):
    """A bad --set value gives `Error: <key> = <value>: ...`, exit 2, no traceback, no files."""
    run = tmp_path / "bad"
    result = CliRunner().invoke(
        main,
        ["encode", str(run), "--config", "diehl-cook-100", "--set", "excitatory.tau_mem_ms=-5"],
    )
    assert result.exit_code == 2
    assert "excitatory.tau_mem_ms = -5.0: must be > 0" in result.output
    assert "Traceback" not in result.output
    assert not run.exists()
    result = CliRunner().invoke(
        main, ["encode", str(run), "--config", "diehl-cook-100", "--set", "network.n_exitatory=5"]
    )
    assert result.exit_code == 2 and "did you mean 'network.n_excitatory'" in result.output


def test_stage_before_its_prerequisite_names_the_missing_stage(tiny_run, tmp_path):
    """assign before train, evaluate before assign, train on a non-run folder: one line each."""
    runner = CliRunner()
    result = runner.invoke(main, ["assign", str(tiny_run)])
    assert result.exit_code == 2 and "no 'train' stage yet" in result.output
    result = runner.invoke(main, ["evaluate", str(tiny_run)])
    assert result.exit_code == 2 and "no 'assign' stage yet" in result.output
    result = runner.invoke(main, ["train", str(tmp_path / "nothing")])
    assert result.exit_code == 2 and "not a run directory" in result.output


def test_encode_refuses_a_different_config_in_the_same_run(tiny_run, mnist_dir):
    """Re-encoding a run directory with another config names the differing keys."""
    result = CliRunner().invoke(
        main,
        [
            "encode",
            str(tiny_run),
            "--config",
            "diehl-cook-100",
            "--data-dir",
            str(mnist_dir),
            *TINY,
            "--set",
            "seed=3",
        ],
    )
    assert result.exit_code == 2
    assert "seed: 0 -> 3" in result.output


def test_tiny_run_end_to_end_writes_every_artefact(tiny_run):
    """train/assign/evaluate on a tiny network write model, logs, assignments, metrics."""
    for stage in ("train", "assign", "evaluate"):
        result = _invoke(stage, str(tiny_run))
        assert result.exit_code == 0, result.output
    for name in (
        "config.json",
        "manifest.json",
        "encoded/train.npz",
        "input_raster.png",
        "model.npz",
        "train_log.csv",
        "train_curve.csv",
        "assignments.npz",
        "metrics.json",
        "confusion.csv",
        "confusion.png",
    ):
        assert (tiny_run / name).exists(), name
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert set(metrics["accuracy"]) == {"all_activity", "proportion", "linear"}
    assert all(0.0 <= a <= 1.0 for a in metrics["accuracy"].values())
    assert (metrics["n_excitatory"], metrics["train_digits"]) == (12, 40)
    assert (metrics["assign_digits"], metrics["test_digits"]) == (30, 30)
    assert metrics["wall_s"] > 0
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert set(manifest["stages"]) == {"encode", "train", "assign", "evaluate"}
    assert manifest["seed"] == 0 and len(manifest["data_checksums"]) == 4
    from PIL import Image  # matplotlib depends on Pillow

    with Image.open(tiny_run / "confusion.png") as img:
        assert img.size[0] > 300 and img.size[1] > 300
    from stdp_pipeline._tf import tf

    (events,) = (tiny_run / "tensorboard").iterdir()
    tags = {
        (v.tag, v.metadata.plugin_data.plugin_name)
        for e in tf.compat.v1.train.summary_iterator(str(events))
        for v in e.summary.value
    }
    assert ("train/spikes_mean", "scalars") in tags and ("train/theta_mean", "scalars") in tags
    log = (tiny_run / "train_log.csv").read_text().splitlines()
    assert log[0] == "position,epoch,index,label,spikes,retries,dropped"
    assert len(log) == 41


def test_resume_after_interruption_gives_identical_weights(tmp_path, mnist_dir, monkeypatch):
    """A run stopped after its first checkpoint and resumed ends bit-identical to a straight one."""
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    for run in (straight, broken):
        assert (
            _invoke(
                "encode",
                str(run),
                "--config",
                "diehl-cook-100",
                "--data-dir",
                str(mnist_dir),
                *TINY,
            ).exit_code
            == 0
        )
    assert _invoke("train", str(straight)).exit_code == 0

    real = train_mod._checkpoint

    def checkpoint_then_crash(*args, **kwargs):
        real(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(train_mod, "_checkpoint", checkpoint_then_crash)
    with pytest.raises(KeyboardInterrupt):
        train_mod.run_train(RunDir(broken), progress=False)
    assert not (broken / "model.npz").exists()
    assert not RunDir(broken).stage_done("train")
    monkeypatch.setattr(train_mod, "_checkpoint", real)
    summary = train_mod.run_train(RunDir(broken), resume=True, progress=False)
    assert summary["resumed_from"] == 20
    a = np.load(straight / "model.npz")
    b = np.load(broken / "model.npz")
    assert np.array_equal(a["weights"], b["weights"])
    assert np.array_equal(a["theta"], b["theta"])
    assert (straight / "train_log.csv").read_text() == (broken / "train_log.csv").read_text()


def test_assignment_and_voting_by_hand():
    """Label assignment and both voting schemes on counts computed by hand."""
    counts = np.array([[4, 0, 1], [2, 0, 3], [0, 5, 1], [0, 3, 1]], float)
    labels = np.array([0, 0, 1, 1])
    a = assign_labels(counts, labels, n_classes=2)
    np.testing.assert_allclose(a.rates, [[3, 0, 2], [0, 4, 1]])
    assert a.classes.tolist() == [0, 1, 0]
    np.testing.assert_allclose(a.proportions, [[1, 0, 2 / 3], [0, 1, 1 / 3]])
    silent = assign_labels(np.zeros((2, 2)), np.array([0, 1]), n_classes=2)
    assert silent.classes.tolist() == [-1, -1]
    # Pad to the 10 classes the voting uses.
    full = assign_labels(counts, labels)
    digit = np.array([[1.0, 6.0, 0.0]])  # class 0 neurons: mean (1+0)/2 = 0.5; class 1: 6
    assert predict(digit, full, "all_activity").tolist() == [1]
    digit = np.array([[3.0, 2.0, 3.0]])  # all activity: (3+3)/2=3 vs 2; proportion: (3+2)/2 vs 2
    assert predict(digit, full, "all_activity").tolist() == [0]
    assert predict(digit, full, "proportion").tolist() == [0]
    m = confusion(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), n_classes=3)
    assert m.tolist() == [[1, 0, 0], [0, 1, 1], [0, 0, 1]]


def test_diehl_cook_100_learns_real_digits(tmp_path, mnist_dir):
    """100 neurons trained without labels on 2,000 MNIST digits, labels assigned on 1,000 others,
    classify 1,000 test digits far above chance (measured 67.8 % all-activity, 70.1 % proportion,
    seed 0)."""
    run = tmp_path / "dc100"
    config = REPO / "scripts" / "configs" / "diehl-cook-100-quick.toml"
    result = _invoke("run", str(run), "--config", str(config), "--data-dir", str(mnist_dir))
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_digits"] == 2000 and metrics["test_digits"] == 1000
    assert metrics["accuracy"]["all_activity"] >= 0.60
    assert metrics["accuracy"]["proportion"] >= 0.60
