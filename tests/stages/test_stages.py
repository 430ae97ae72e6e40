"""The stages end to end: encode -> train -> assign -> evaluate, through the CLI and the library,
on real MNIST digits. Networks are tiny and presentations short so each test takes seconds; one
test trains a real 100-neuron Diehl & Cook network and checks its accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import pytest
from bases import DC100
from click.testing import CliRunner

from stdp_pipeline.cli.main import main
from stdp_pipeline.io.rundir import RunDir
from stdp_pipeline.stages import train as train_mod
from stdp_pipeline.stages.assign import assign_labels
from stdp_pipeline.stages.evaluate import confusion, predict
from stdp_pipeline.stages.table import STAGE_NAMES, STAGES
from stdp_pipeline.stages.table import stage as stage_row

REPO = Path(__file__).resolve().parents[2]

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
    result = _invoke("encode", str(run), "--config", DC100, "--data-dir", str(mnist_dir), *TINY)
    assert result.exit_code == 0, result.output
    return run


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, mnist_dir):
    """A TINY run, encoded and trained (shared by the tests that only present digits)."""
    run = tmp_path_factory.mktemp("trained") / "tiny"
    args = ["encode", str(run), "--config", DC100, "--data-dir", str(mnist_dir), *TINY]
    assert _invoke(*args).exit_code == 0
    assert _invoke("train", str(run)).exit_code == 0
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
    """`config presets` lists the presets; `config show` applies --set."""
    out = _invoke("config", "presets").output
    for name in (
        "diehl-cook-100",
        "diehl-cook-400",
        "diehl-cook-1600",
        "diehl-cook-6400",
        "diehl-cook-400-original",
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
        ["encode", str(run), "--config", DC100, "--set", "excitatory.tau_mem_ms=-5"],
    )
    assert result.exit_code == 2
    assert "excitatory.tau_mem_ms = -5.0: must be > 0" in result.output
    assert "Traceback" not in result.output
    assert not run.exists()
    result = CliRunner().invoke(
        main, ["encode", str(run), "--config", DC100, "--set", "network.n_exitatory=5"]
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
            DC100,
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
    assert 0.0 <= metrics["pixels_linear"] <= 1.0  # the raw-pixel baseline, 30 digits
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


#: What each stage's line starts with on the TINY run.
TINY_LINES = {
    "encode": "encoded 40 training, 30 assignment and 30 test digits into ",
    "train": "trained on 40 digits (in ",
    "assign": "assigned 12 neurons; per class ",
    "evaluate": "test accuracy on 30 digits: ",
    "fields": "receptive fields in ",
    "reconstruct": "reconstruction MSE ",
    "curves": "learning curves in ",
}


def test_run_follows_the_stage_table(tmp_path, mnist_dir, monkeypatch):
    """`run` on a tiny config runs the table's stages in order, prints each one's result line as
    the stage command does, and writes every stage's files; `--quiet` after `run` silences the
    progress bars; the stage timings come from the stage records. On the native engine (every
    stage that presents digits runs it)."""
    monkeypatch.setenv("STDP_PROGRESS", "1")  # bars on, even without a terminal
    path = tmp_path / "all"
    args = ["run", str(path), "--config", DC100, "--data-dir", str(mnist_dir), *TINY]
    args += ["--set", "train.engine=native", "--set", "evaluate.engine=native"]
    result = CliRunner().invoke(main, [*args, "--quiet"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    # no progress bar; a training-health warning of the tiny layer may stand on stderr
    other = [x for x in result.stderr.splitlines() if not x.startswith("warning: training health")]
    assert other == []
    lines = result.stdout.splitlines()
    assert len(lines) == len(STAGES)
    for s, line in zip(STAGES, lines, strict=True):
        assert line.startswith(TINY_LINES[s.name]), (s.name, line)
    run = RunDir(path)
    metrics = json.loads((path / "metrics.json").read_text())
    assert lines[STAGE_NAMES.index("evaluate")] == stage_row("evaluate").describe(run, metrics)
    assert lines[-1] == f"learning curves in {path / 'curves.png'}"

    records = run.manifest()["stages"]
    assert set(records) == set(STAGE_NAMES)
    # presentations per thread count of the C engine: 12 neurons take one thread
    use = records["train"]["native_threads"]
    assert list(use) == ["1"] and use["1"] >= 40
    written = sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file())
    assert [f for f in written if not f.startswith("tensorboard/")] == sorted(
        [
            "config.json",
            "manifest.json",
            "encoded/train.npz",
            "encoded/assign.npz",
            "encoded/test.npz",
            "input_raster.png",
            "model.npz",
            "train_log.csv",
            "train_curve.csv",
            "checkpoints/ckpt-000000020.npz",
            "checkpoints/ckpt-000000040.npz",
            "checkpoints/curve.csv",
            "assignments.npz",
            "test_counts.npz",
            "metrics.json",
            "confusion.csv",
            "confusion.png",
            "fields.png",
            "reconstruction.png",
            "reconstruction.csv",
            "curves.png",
        ]
    )
    for name, record in records.items():
        assert all((path / f).is_file() for f in record["outputs"]), name
    # one clock: the times the stages report lie within their recorded wall time
    assert 0 < records["assign"]["simulate_s"] <= records["assign"]["wall_s"]
    assert 0 < metrics["wall_s"] <= records["evaluate"]["wall_s"]
    assert metrics["train_wall_s"] == records["train"]["wall_s"]
    seconds = float(lines[1].split(" (in ")[1].split(" s, ")[0])
    assert 0 < seconds <= records["train"]["wall_s"] + 0.05
    curve = (path / "train_curve.csv").read_text().splitlines()[0]
    assert tuple(curve.split(",")) == train_mod.CURVE_COLUMNS


def test_resume_after_interruption_gives_identical_weights(tmp_path, mnist_dir, monkeypatch):
    """A run stopped after its first checkpoint and resumed ends bit-identical to a straight one
    (on the native engine: checkpoints and the driver are shared by both engines; no compiles)."""
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    for run in (straight, broken):
        assert (
            _invoke(
                "encode",
                str(run),
                "--config",
                DC100,
                "--data-dir",
                str(mnist_dir),
                "--engine",
                "native",
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
    assert summary["earlier_s"] > 0  # the interrupted session's time, kept by its checkpoint
    a = np.load(straight / "model.npz")
    b = np.load(broken / "model.npz")
    assert np.array_equal(a["weights"], b["weights"])
    assert np.array_equal(a["theta"], b["theta"])
    assert (straight / "train_log.csv").read_text() == (broken / "train_log.csv").read_text()


def test_more_passes_extend_a_finished_run(tmp_path, mnist_dir):
    """One pass, then `train --epochs 2 --resume`: the same weights, thresholds and log as two
    passes from the start; another --limit is refused in one line. On the native engine (its
    weights pulled from and pushed to the checkpoints chunk by chunk)."""
    straight, extended = tmp_path / "straight", tmp_path / "extended"
    native = ["--set", "train.engine=native", "--set", "evaluate.engine=native"]
    for run in (straight, extended):
        args = ["--config", DC100, "--data-dir", str(mnist_dir), *TINY, *native]
        assert _invoke("encode", str(run), *args).exit_code == 0
    assert _invoke("train", str(straight), "--epochs", "2").exit_code == 0
    assert _invoke("train", str(extended), "--epochs", "1").exit_code == 0
    first_wall = json.loads((extended / "manifest.json").read_text())["stages"]["train"]["wall_s"]
    one = np.load(extended / "model.npz")["weights"]
    result = _invoke("train", str(extended), "--epochs", "2", "--resume")
    assert result.exit_code == 0, result.output
    a, b = np.load(straight / "model.npz"), np.load(extended / "model.npz")
    assert not np.array_equal(b["weights"], one)  # the second pass learned
    assert np.array_equal(a["weights"], b["weights"]) and np.array_equal(a["theta"], b["theta"])
    assert (straight / "train_log.csv").read_text() == (extended / "train_log.csv").read_text()
    manifest = json.loads((extended / "manifest.json").read_text())
    assert manifest["stages"]["train"]["epochs"] == 2
    assert manifest["stages"]["train"]["resumed_from"] == 40
    # the first session's training time is carried by the checkpoint (up to its writing)
    assert 0 < manifest["stages"]["train"]["earlier_s"] <= first_wall
    assert (
        float(np.load(extended / "checkpoints/ckpt-000000080.npz")["train_s"])
        > (manifest["stages"]["train"]["earlier_s"])
    )
    for stage in ("assign", "evaluate"):
        assert _invoke(stage, str(extended)).exit_code == 0
    metrics = json.loads((extended / "metrics.json").read_text())
    record = manifest["stages"]["train"]
    assert metrics["train_wall_s"] == round(record["wall_s"] + record["earlier_s"], 3)
    assert metrics["train_passes"] == 2
    refused = _invoke("train", str(extended), "--epochs", "3", "--limit", "20", "--resume")
    assert refused.exit_code != 0
    assert "was made for 2 epoch(s) of 40 digits, not 3 of 20" in refused.output


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


@pytest.mark.parametrize("engine", ["native", pytest.param("xla", marks=pytest.mark.slow)])
def test_diehl_cook_100_learns_real_digits(tmp_path, mnist_dir, engine):
    """100 neurons trained without labels on 2,000 MNIST digits (the quick config: the preset's
    input delays, one pass), labels assigned on 1,000 others, classify 1,000 test digits far above
    chance (measured 66.0 % all-activity, 68.8 % proportion, seed 0, native engine; 67.8 / 70.1 %
    without delays on the TensorFlow engine). The native engine in CI (the TensorFlow engine's
    numbers are pinned by test_pinned.py; delays on it make this one slow)."""
    run = tmp_path / "dc100"
    config = REPO / "scripts" / "configs" / "diehl-cook-100-quick.toml"
    engines = ["--set", f"train.engine={engine}", "--set", f"evaluate.engine={engine}"]
    args = ["--config", str(config), "--data-dir", str(mnist_dir), *engines]
    result = _invoke("run", str(run), *args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_digits"] == 2000 and metrics["test_digits"] == 1000
    assert metrics["accuracy"]["all_activity"] >= 0.60
    assert metrics["accuracy"]["proportion"] >= 0.60


# --- options every stage command shares (stdp_pipeline.cli.common) --------------------------------
RUN_DIR_COMMANDS = (*STAGE_NAMES, "run")


def _help_record(command: click.Command, option: str) -> tuple[str, str] | None:
    ctx = click.Context(command)
    for param in command.params:
        if option in param.opts:
            return param.get_help_record(ctx)
    return None


def test_shared_options_read_the_same_everywhere():
    """RUN_DIR first, --quiet/-q on the group and every stage command, --data-dir on encode and
    run: each defined once, so each reads the same in every help."""
    quiet = _help_record(main, "--quiet")
    assert quiet == ("-q, --quiet", "No progress bars.")
    for name in RUN_DIR_COMMANDS:
        command = main.commands[name]
        assert command.params[0].name == "run_dir" and command.params[0].metavar is None, name
        assert _help_record(command, "--quiet") == quiet, name
    data_dir = _help_record(main.commands["encode"], "--data-dir")
    assert data_dir is not None and data_dir == _help_record(main.commands["run"], "--data-dir")


@pytest.mark.parametrize(
    "where", ["group", "command", pytest.param("short", marks=pytest.mark.slow), "none"]
)
def test_quiet_silences_the_progress_bars(trained_run, monkeypatch, where):
    """--quiet before or after the command (or -q) turns the bars off even when STDP_PROGRESS
    turns them on; without it the bars are drawn."""
    monkeypatch.setenv("STDP_PROGRESS", "1")  # bars on, even without a terminal
    run = str(trained_run)
    args = {
        "group": ["--quiet", "assign", run],
        "command": ["assign", run, "--quiet"],
        "short": ["assign", "-q", run],
        "none": ["assign", run],
    }[where]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("assigned 12 neurons; per class ")
    if where == "none":
        assert "assign" in result.stderr
    else:
        assert result.stderr == ""


def test_data_dir_reaches_the_data_loader(tmp_path, mnist_dir, monkeypatch):
    """--data-dir is where encode and run look for the data, before $STDP_DATA_DIR."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("STDP_DATA_DIR", str(empty))
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    for name in ("encode", "run"):
        out = tmp_path / name
        base = [name, str(out), "--config", DC100, *TINY]
        for data_dir, where in (([], empty), (["--data-dir", str(tmp_path / "nowhere")], None)):
            where = where or tmp_path / "nowhere"
            result = runner.invoke(main, [*base, *data_dir])
            assert result.exit_code == 2, result.output
            (line,) = result.output.splitlines()
            assert line.startswith("Error: ") and str(where) in line, line
            assert not out.exists()
    ok = tmp_path / "ok"
    args = ["encode", str(ok), "--config", DC100, "--data-dir", str(mnist_dir), *TINY]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    assert len(RunDir(ok).manifest()["data_checksums"]) == 4


def test_bad_run_dir_is_one_line_error(tmp_path):
    """A file given as RUN_DIR, or a folder that is no run directory: `Error: <one line>`, exit 2,
    for every command that takes RUN_DIR."""
    a_file = tmp_path / "notes.txt"
    a_file.write_text("not a run\n")
    runner = CliRunner()
    for name in RUN_DIR_COMMANDS:
        makes_folder = name == "run" or stage_row(name).creates_run
        config = ["--config", DC100] if makes_folder else []
        result = runner.invoke(main, [name, str(a_file), *config])
        assert result.exit_code == 2, (name, result.output)
        assert result.output.splitlines() == [
            f"Error: {a_file} is a file, not a folder: give a run directory"
        ], name
        if not config:
            result = runner.invoke(main, [name, str(tmp_path / "nothing")])
            assert result.exit_code == 2, (name, result.output)
            (line,) = result.output.splitlines()
            assert line.startswith("Error: ") and "is not a run directory" in line, name
