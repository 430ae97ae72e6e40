"""The comparison table (published results beside measured runs), and the report commands
(fields, reconstruct, curves, compare) end to end on a tiny network trained through the CLI."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from bases import DC100
from click.testing import CliRunner
from PIL import Image

from stdp_pipeline.cli.report import compare, curves, fields, reconstruct
from stdp_pipeline.io.config import load_config
from stdp_pipeline.io.rundir import RunDir
from stdp_pipeline.stages.report import (
    bar_label,
    comparison_table,
    constant_notes,
    fidelity_notes,
    find_runs,
    find_sweeps,
    load_published,
    markdown_table,
    measured_rows,
    write_comparison,
)

#: Every row of the seed slides' table (reference/PUBLISHED.md): a piece of the reference and the
#: accuracy; plus Diehl & Cook's four sizes.
SLIDES = [
    ("Diehl & Cook", 0.95),
    ("Kheradpisheh", 0.984),
    ("Lee et al., IEEE TCDS 2018", 0.911),
    ("Diehl, Neil, Binas", 0.991),
    ("Eliasmith", 0.9912),
    ("Liu et al.", 0.9944),
    ("Lee, Delbruck & Pfeiffer", 0.9931),
    ("STBP", 0.9942),
    ("Zhang et al.", 0.9949),
    ("Gamrat", 0.60),
    ("Yousefzadeh", 0.957),
    ("Roy et al.", 0.9854),
]
DIEHL_COOK = {100: 0.829, 400: 0.870, 1600: 0.919, 6400: 0.950}


def test_published_csv_holds_every_published_result():
    pub = load_published()
    assert list(pub.columns) == ["group", "reference", "year", "neurons", "accuracy", "note"]
    for piece, acc in SLIDES:
        hits = pub[pub["reference"].str.contains(piece, regex=False)]
        assert np.isclose(hits["accuracy"], acc).any(), piece
    dc = pub[pub["reference"].str.startswith("Diehl & Cook")]
    assert dict(zip(dc["neurons"].astype(int), dc["accuracy"], strict=True)) == DIEHL_COOK
    assert len(pub) == len(SLIDES) + 3  # the 6400 row is the slides' Diehl & Cook entry
    assert pub["accuracy"].between(0.5, 1.0).all()
    assert set(pub["group"]) == {
        "STDP (unsupervised, local)",
        "STDP",
        "ANN-to-SNN conversion",
        "Backprop in SNN",
        "Stochastic STDP",
    }


def _script(name: str):
    """The module of ``scripts/<name>.py``."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def _fake_evaluated_run(path, n, accuracy, *, name, train_wall_s=12.5, sets=(), **extra):
    config = load_config(name, [f"network.n_excitatory={n}", *sets])
    RunDir.create(path, config, command=["test"])
    metrics = {
        "run": path.name,
        "config": config.name,
        "accuracy": accuracy,
        "n_excitatory": n,
        "train_digits": 60000,
        "assign_digits": 10000,
        "test_digits": 10000,
        "wall_s": 3.0,
        "train_wall_s": train_wall_s,
        **extra,
    }
    (path / "metrics.json").write_text(json.dumps(metrics))


def test_measured_rows_name_passes_seed_labelled_digits_and_inference_inhibition(tmp_path):
    """The note of a measured row gives the passes, the seed, the labelled digits the labels
    and read-out were fitted on, and an inference inhibition of its own."""
    _fake_evaluated_run(tmp_path / "one", 100, {"linear": 0.9}, name=DC100, train_passes=1)
    _fake_evaluated_run(
        tmp_path / "three", 1600, {"linear": 0.95}, name="event-stdp-patches",
        sets=["evaluate.inh_to_exc_weight=4", "seed=2"], train_passes=3,
    )  # fmt: skip
    one = measured_rows(tmp_path / "one")[0]["note"]
    three = measured_rows(tmp_path / "three")[0]["note"]
    assert one == "1 pass; seed 0; labels and read-out from 10,000 training digits"
    assert three == (
        "16 px patches, stride 12; event STDP; 3 passes; seed 2; labels and read-out from "
        "10,000 training digits; inference inhibition 4"
    )
    assert "seed" not in measured_rows(tmp_path / "three", seed=False)[0]["note"]
    _fake_evaluated_run(
        tmp_path / "native", 400, {"linear": 0.9}, name="diehl-cook-400", train_passes=3,
        sets=["train.engine=native", "evaluate.engine=xla"],
    )  # fmt: skip
    assert measured_rows(tmp_path / "native")[0]["note"].endswith(
        "training digits; trained on the native engine"
    )
    _fake_evaluated_run(tmp_path / "c", 100, {"linear": 0.9}, name="diehl-cook-100", train_passes=3)
    assert measured_rows(tmp_path / "c")[0]["note"] == (
        "input delays 0-10 ms; 3 passes; seed 0; labels and read-out from 10,000 training digits; "
        "native engine"
    )


def test_notes_name_each_switch_of_the_authors_code(tmp_path):
    """The -original presets set every switch of README "Fidelity" and the note names each; the
    100- and 400-neuron presets the input delays alone (the tests' base none), the 1600-neuron
    preset the exponential membrane too; a switch on one layer alone says so."""
    original = load_config("diehl-cook-400-original").to_dict()
    assert fidelity_notes(original) == [
        "simulated rest",
        "Euler conductances",
        "spike block 0 ms",
        "input delays 0-10 ms",
        "initial weights 0.003-0.303",
        "retries up to 64",
    ]
    assert fidelity_notes(load_config("diehl-cook-400").to_dict()) == ["input delays 0-10 ms"]
    assert fidelity_notes(load_config("diehl-cook-100").to_dict()) == ["input delays 0-10 ms"]
    assert fidelity_notes(load_config(DC100).to_dict()) == []
    assert fidelity_notes(load_config("diehl-cook-1600").to_dict()) == [
        "exponential membrane",
        "input delays 0-10 ms",
    ]
    one = load_config(
        DC100, ["excitatory.refractory_v=integrate", "excitatory.spike_block_ms=20"]
    ).to_dict()
    assert fidelity_notes(one) == [
        "membrane integrated while refractory (refractory_v, 1 of 2 layers)",
        "spike block 20 ms",
    ]
    _fake_evaluated_run(
        tmp_path / "orig", 400, {"all_activity": 0.65}, name="diehl-cook-400-original",
        train_passes=3,
    )  # fmt: skip
    row = measured_rows(tmp_path / "orig")[0]
    assert row["model"] == "diehl-cook-400-original"
    assert row["note"].startswith("simulated rest; Euler conductances; spike block 0 ms; ")
    assert "retries up to 64; 3 passes; seed 0; labels" in row["note"]


def test_notes_name_constants_away_from_diehl_and_cook(tmp_path):
    """A Diehl & Cook model whose constants differ from the paper's (here the theta decay and the
    inhibition) says so in its note, after the switches; the presets and the tests' base set
    none; other models' constants are their own."""
    for name in ("diehl-cook-100", "diehl-cook-6400", "diehl-cook-1600-original", DC100):
        assert constant_notes(load_config(name).to_dict()) == []
    assert constant_notes(load_config("event-stdp-patches").to_dict()) == []
    sets = ["excitatory.tau_theta_ms=2e7", "network.inh_to_exc_weight=20", "encoding.min_spikes=3"]
    assert constant_notes(load_config("diehl-cook-6400", sets).to_dict()) == [
        "excitatory.tau_theta_ms = 2e+07",
        "network.inh_to_exc_weight = 20",
        "encoding.min_spikes = 3",
    ]
    _fake_evaluated_run(
        tmp_path / "tau", 100, {"all_activity": 0.8}, name="diehl-cook-100",
        sets=["excitatory.tau_theta_ms=2e7"], train_passes=3,
    )  # fmt: skip
    assert measured_rows(tmp_path / "tau")[0]["note"].startswith(
        "input delays 0-10 ms; excitatory.tau_theta_ms = 2e+07; 3 passes; seed 0"
    )


def test_find_runs_follows_links_once(tmp_path):
    """A run kept elsewhere and linked into the results folder is found; a link beside its
    target and a link loop count once, and the walk ends."""
    elsewhere = tmp_path / "runs" / "dc1600e3"
    _fake_evaluated_run(elsewhere, 1600, {"all_activity": 0.9077}, name="diehl-cook-1600")
    results = tmp_path / "results"
    _fake_evaluated_run(results / "dc100", 100, {"all_activity": 0.79}, name="diehl-cook-100")
    (results / "dc1600").symlink_to(elsewhere, target_is_directory=True)
    assert find_runs([results]) == [results / "dc100", results / "dc1600"]
    (results / "loop").symlink_to(results, target_is_directory=True)
    (results / "zz-dc100").symlink_to(results / "dc100", target_is_directory=True)
    assert find_runs([results]) == [results / "dc100", results / "dc1600"]
    assert find_runs([results, tmp_path / "runs"]) == [results / "dc100", results / "dc1600"]


def test_find_sweeps_follows_links_once(tmp_path):
    """A seeds folder kept elsewhere and linked into the results folder is found as a sweep
    (so that compare lists its mean, not each seed); a link loop ends the walk."""
    elsewhere = tmp_path / "runs" / "fidelity-400" / "3-passes"
    elsewhere.mkdir(parents=True)
    (elsewhere / "sweep.json").write_text("{}")
    results = tmp_path / "results"
    results.mkdir()
    (results / "fidelity-400").symlink_to(elsewhere.parent, target_is_directory=True)
    (results / "loop").symlink_to(results, target_is_directory=True)
    assert find_sweeps([results]) == [results / "fidelity-400" / "3-passes"]


def test_comparison_has_published_and_measured_rows(tmp_path):
    results = tmp_path / "results"
    _fake_evaluated_run(
        results / "a" / "dc100", 100, {"all_activity": 0.8123, "proportion": 0.8234},
        name="diehl-cook-100",
    )  # fmt: skip
    _fake_evaluated_run(
        results / "dc400", 400, {"all_activity": 0.8701, "proportion": 0.8655},
        name="diehl-cook-400", train_wall_s=7200.0,
    )  # fmt: skip
    (results / "not-a-run").mkdir()
    (results / "not-a-run" / "metrics.json").write_text("{}")  # no config.json: ignored
    assert find_runs([results]) == [results / "a" / "dc100", results / "dc400"]

    table = comparison_table([results])
    published = load_published()
    pub_rows = table[table["source"] == "published"]
    assert len(pub_rows) == len(published)
    assert pub_rows["reference"].tolist() == published["reference"].tolist()
    np.testing.assert_allclose(pub_rows["accuracy"], published["accuracy"])
    ours = table[table["source"] == "measured"].set_index(["neurons", "scheme"])["accuracy"]
    assert ours.to_dict() == {
        (100, "all activity"): 0.8123,
        (100, "proportion weighting"): 0.8234,
        (400, "all activity"): 0.8701,
        (400, "proportion weighting"): 0.8655,
    }
    measured = table[table["source"] == "measured"]
    assert set(measured["model"]) == {"diehl-cook-100", "diehl-cook-400"}
    assert (measured["train_digits"] == 60000).all()
    assert set(measured["train_wall_s"]) == {12.5, 7200.0}

    out = tmp_path / "cmp"
    frame, paths = write_comparison([results], out)
    md = paths["md"].read_text()
    for ref in published["reference"]:
        assert ref in md
    for value in ("81.23 %", "82.34 %", "87.01 %", "86.55 %", "82.90 %", "99.49 %", "2.0 h"):
        assert value in md
    header, align = md.splitlines()[4:6]
    assert header.count("|") == align.count("|") == 11
    back = pd.read_csv(paths["csv"])
    assert len(back) == len(published) + 4
    np.testing.assert_allclose(back["accuracy"], frame["accuracy"])
    with Image.open(paths["png"]) as im:
        im.load()
        assert 900 <= im.width <= 2500 and 700 <= im.height <= 2500
    assert not list(out.glob(".*tmp*"))  # atomic writes leave no temporary file


def test_compare_keeps_rows_of_an_earlier_table_unless_the_run_is_found_again(tmp_path):
    """--keep: the measured rows of an earlier comparison.csv stay (runs made elsewhere); a run
    found again replaces its kept rows; a file that is not a comparison is one line."""
    results = tmp_path / "results"
    _fake_evaluated_run(results / "dc100", 100, {"all_activity": 0.8}, name="diehl-cook-100")
    _fake_evaluated_run(results / "dc400", 400, {"all_activity": 0.87}, name="diehl-cook-400")
    old, _ = write_comparison([results], tmp_path / "old")
    # the 100-neuron run is rerun with a new result; the 400-neuron run is gone from this machine
    shutil.rmtree(results / "dc400")
    shutil.rmtree(results / "dc100")
    _fake_evaluated_run(results / "dc100", 100, {"all_activity": 0.81}, name="diehl-cook-100")
    frame, paths = write_comparison(
        [results], tmp_path / "new", keep=[tmp_path / "old" / "comparison.csv"]
    )
    ours = frame[frame["source"] == "measured"].set_index("run")["accuracy"].to_dict()
    assert ours == {str(results / "dc100"): 0.81, str(results / "dc400"): 0.87}
    assert len(frame) == len(old)
    assert "kept from" in paths["md"].read_text()
    out = _ok(
        compare, results, "--out", tmp_path / "cli", "--keep", tmp_path / "new" / "comparison.csv"
    )
    assert "(2 measured run(s))" in out
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    message = _error(compare, results, "--out", tmp_path / "x", "--keep", tmp_path / "bad.csv")
    assert "bad.csv lacks the column(s) source" in message


def test_pixel_baseline_rows_one_per_set_of_digits(tmp_path):
    """Each run's raw-pixel baseline becomes a 'baseline' row; runs on the same digits share
    one; a sweep's best point keeps its baseline as measured, not replaced by a mean."""
    results = tmp_path / "results"
    for name, n, pixels in (("a", 100, 0.9274), ("b", 400, 0.9274), ("c", 100, 0.8512)):
        _fake_evaluated_run(
            results / name, n, {"all_activity": 0.8, "linear": 0.85}, name="diehl-cook-100"
        )
        metrics = json.loads((results / name / "metrics.json").read_text())
        metrics["pixels_linear"] = pixels
        if name == "c":
            metrics["assign_digits"] = 2000
        (results / name / "metrics.json").write_text(json.dumps(metrics))
    table = comparison_table([results])
    base = table[table["source"] == "baseline"]
    assert sorted(base["accuracy"]) == [0.8512, 0.9274]
    assert set(base["scheme"]) == {"linear"} and base["neurons"].isna().all()
    assert sorted(base["train_digits"]) == [2000, 10000]
    assert (table[table["source"] == "measured"]["scheme"] != "").all()
    md = markdown_table(table)
    assert "logistic regression on the 784 raw pixels" in md and "92.74 %" in md


def test_markdown_escapes_pipes_and_labels_are_short():
    frame = comparison_table([])
    frame.loc[0, "note"] = "a | b"
    assert "a \\| b" in markdown_table(frame)
    labels = [bar_label(r) for _, r in frame.iterrows()]
    assert labels[0] == "Diehl & Cook 2015, 100 neurons"
    assert "Kheradpisheh et al. 2018" in labels
    assert "Shi et al. (Wu et al., STBP) 2018" in labels
    assert max(map(len, labels)) < 45


def test_compare_cli(tmp_path):
    results = tmp_path / "results"
    _fake_evaluated_run(
        results / "dc100", 100, {"all_activity": 0.5, "proportion": 0.6}, name="diehl-cook-100"
    )
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(compare, [str(results), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "1 measured run(s)" in result.output
    assert {p.name for p in out.iterdir()} == {"comparison.md", "comparison.csv", "comparison.png"}
    from PIL import Image

    with Image.open(out / "comparison.png") as chart:  # 256 colours: flat bars and text
        assert chart.mode == "P"
        colours = [c for _, c in chart.convert("RGB").getcolors(256)]
    blue = (31, 119, 180)  # a published bar (tab10's first colour), kept to within 3 levels
    assert any(max(abs(a - b) for a, b in zip(c, blue, strict=True)) <= 3 for c in colours)
    result = runner.invoke(compare, [str(tmp_path / "nowhere"), "--out", str(out)])
    assert result.exit_code == 2
    assert result.output.startswith("Error: ") and result.output.count("\n") == 1


# --- the report commands on a tiny network trained through the CLI ---------------------------
TINY = [
    "--set", "network.n_excitatory=8",
    "--set", "encoding.presentation_ms=60",
    "--set", "data.train_digits=30",
    "--set", "data.assign_start=30",
    "--set", "data.assign_digits=20",
    "--set", "data.allow_overlap=false",
    "--set", "data.test_digits=20",
    "--set", "train.checkpoint_every=10",
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, mnist_dir):
    """Three copies of one tiny run: only encoded, trained (not assigned), fully evaluated."""
    from stdp_pipeline.cli.main import main

    root = tmp_path_factory.mktemp("tiny")
    runs = {k: root / k for k in ("encoded", "trained", "done")}

    def invoke(*args):
        result = CliRunner().invoke(main, ["--quiet", *args], catch_exceptions=False)
        assert result.exit_code == 0, result.output

    invoke("encode", str(runs["done"]), "--config", DC100,
           "--data-dir", str(mnist_dir), *TINY)  # fmt: skip
    shutil.copytree(runs["done"], runs["encoded"])
    invoke("train", str(runs["done"]))
    shutil.copytree(runs["done"], runs["trained"])
    invoke("assign", str(runs["done"]))
    invoke("evaluate", str(runs["done"]))
    return runs


def _ok(command, *args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


def _error(command, *args):
    result = CliRunner().invoke(command, [str(a) for a in args])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    return lines[0]


def _png(path, min_px=300, max_px=3000):
    with Image.open(path) as im:
        im.load()
        assert im.format == "PNG"
        assert min_px <= im.width <= max_px and min_px <= im.height <= max_px, im.size
    return path


def test_report_commands_on_a_tiny_trained_run(tiny_runs, tmp_path):
    run = tiny_runs["done"]
    assert "receptive fields in" in _ok(fields, run)
    _png(run / "fields.png")
    assert "fields-000000010.png" in _ok(fields, run, "--checkpoint", 10)
    _png(run / "fields-000000010.png")
    out = _ok(fields, run, "--all-checkpoints", "--sort", "index")
    assert "3 receptive-field grids" in out
    _png(run / "fields-000000020.png")

    out = _ok(reconstruct, run, "--digits", 6)
    assert "reconstruction MSE" in out
    _png(run / "reconstruction.png")
    table = pd.read_csv(run / "reconstruction.csv")
    assert table["class"].iloc[-1] == "all" and table["digits"].iloc[-1] == 20
    assert table["mse"].between(0, 1).all()
    _ok(reconstruct, run, "--scale", "lsq")

    assert "learning curves in" in _ok(curves, run)
    _png(run / "curves.png", min_px=800)

    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert stages["fields"]["outputs"][-1] == "fields.png"
    assert stages["reconstruct"]["outputs"] == ["reconstruction.png", "reconstruction.csv"]
    assert stages["curves"]["outputs"] == ["curves.png"]

    _ok(compare, run.parent, "--out", tmp_path / "cmp")
    md = (tmp_path / "cmp" / "comparison.md").read_text()
    assert "dc100-tests" in md and f"`{run}`" in md


def test_report_commands_say_what_is_missing(tiny_runs, tmp_path):
    encoded, trained = tiny_runs["encoded"], tiny_runs["trained"]
    assert "no 'train' stage yet" in _error(fields, encoded)
    assert "no 'train' stage yet" in _error(curves, encoded)
    assert "no 'evaluate' stage yet" in _error(reconstruct, encoded)
    assert "no 'evaluate' stage yet" in _error(reconstruct, trained)
    assert "no 'assign' stage yet" in _error(fields, trained, "--sort", "class")
    assert "available positions are 10, 20" in _error(fields, trained, "--checkpoint", 7)
    assert "not a run directory" in _error(fields, tmp_path)
    assert "--digits 0" in _error(reconstruct, tiny_runs["done"], "--digits", 0)
    _ok(fields, trained)  # a trained, unassigned run draws unlabelled fields


def test_rescore_repeats_evaluate_and_weaker_inference_inhibition_fires_more(tiny_runs):
    """rescore with no overrides gives evaluate's accuracies exactly; a weaker inference
    inhibition gives more test spikes; the learned state and the run's files stay untouched;
    keys outside evaluate.* are refused with one line."""
    from stdp_pipeline.errors import PipelineError
    from stdp_pipeline.stages.evaluate import rescore

    run = RunDir(tiny_runs["done"])
    before = {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()}
    metrics = json.loads(run.file("metrics.json").read_text())
    same = rescore(run, progress=False)
    assert {k: same[k] for k in metrics["accuracy"]} == metrics["accuracy"]
    assert same["spikes_per_digit"] == pytest.approx(metrics["test_spikes_per_digit"], abs=1e-4)
    weak = rescore(run, ["evaluate.inh_to_exc_weight=0"], progress=False)
    assert weak["spikes_per_digit"] > same["spikes_per_digit"]
    assert {p.name: p.stat().st_mtime_ns for p in run.path.iterdir()} == before
    with pytest.raises(PipelineError, match="only evaluate.\\* keys"):
        rescore(run, ["network.n_excitatory=3"])


def test_accuracy_axis_range_fits_the_curves():
    """The curve's y range: late checkpoints of a 6,400-neuron run (94.55-95.50 %) get 94-96 %,
    pad 0.5 each side rounded out, not a flat line in 80-100 %; a curve from an early
    checkpoint (64.0-95.6 %, pad 3.16) gets 60-99 %; near chance it stops at 0 and at 100 % on
    top; NaN cells are left out, and no value at all gives 0-100 %."""
    from stdp_pipeline.stages.checkpoint_scores import accuracy_axis_range

    late = np.array([[94.55, 94.87, 95.03], [94.76, 95.07, 95.25], [95.22, 95.36, 95.50]])
    assert accuracy_axis_range(late) == (94.0, 96.0)
    assert accuracy_axis_range(np.array([64.0, 87.9, 95.6])) == (60.0, 99.0)
    assert accuracy_axis_range(np.array([9.8, 99.9])) == (0.0, 100.0)
    assert accuracy_axis_range(np.array([50.0])) == (49.0, 51.0)
    assert accuracy_axis_range(np.array([94.55, np.nan, 95.5])) == (94.0, 96.0)
    assert accuracy_axis_range(np.zeros((0, 3))) == (0.0, 100.0)


def test_accuracy_curve_scores_every_checkpoint(tiny_runs, tmp_path, capsys):
    """scripts/accuracy_curve.py on a copy of the evaluated run: one row per checkpoint (10, 20 and
    the end, 30); with all 20 assignment and test digits the last row is what assign + evaluate
    recorded for the final model; the CSV and a readable PNG are written, no other file changes;
    bad --digits and --positions are one-line errors."""
    script = _script("accuracy_curve")

    run = tmp_path / "done"
    shutil.copytree(tiny_runs["done"], run)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert script.main([str(run), "--digits", "20", "-q"]) == 0
    table = pd.read_csv(run / "accuracy_curve.csv")
    assert table["position"].tolist() == [10, 20, 30]
    np.testing.assert_allclose(table["passes"], [1 / 3, 2 / 3, 1.0], atol=1e-4)
    metrics = json.loads((run / "metrics.json").read_text())
    last = table.iloc[-1]
    for scheme, value in metrics["accuracy"].items():
        assert last[scheme] == pytest.approx(round(100 * value, 2), abs=1e-9), scheme
    assert last["spikes_per_digit"] == pytest.approx(metrics["test_spikes_per_digit"], abs=0.01)
    assert table["spikes_per_digit"].nunique() > 1  # each checkpoint's own weights
    _png(run / "accuracy_curve.png")
    after = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert set(after) - set(before) == {"accuracy_curve.csv", "accuracy_curve.png"}
    assert all(after[k] == v for k, v in before.items())
    assert "accuracy_curve.csv" in capsys.readouterr().out

    # --positions adds to the curve scored on as many digits; a curve on another digit count
    # is kept beside it (ordered by digits, then position), and scoring it again replaces it
    assert script.main([str(run), "--digits", "20", "--positions", "20", "-q"]) == 0
    again = pd.read_csv(run / "accuracy_curve.csv")
    pd.testing.assert_frame_equal(
        again.drop(columns="wall_s"), table.drop(columns="wall_s"), check_dtype=False
    )
    assert "2 row(s) kept from the earlier scores on 20 digits" in capsys.readouterr().out
    assert script.main([str(run), "--digits", "10", "--positions", "20,30", "-q"]) == 0
    both = pd.read_csv(run / "accuracy_curve.csv")
    assert list(zip(both["digits"], both["position"], strict=True)) == [
        (10, 20),
        (10, 30),
        (20, 10),
        (20, 20),
        (20, 30),
    ]
    pd.testing.assert_frame_equal(  # the 20-digit curve untouched
        both[both["digits"] == 20].drop(columns="wall_s").reset_index(drop=True),
        table.drop(columns="wall_s"),
        check_dtype=False,
    )
    out = capsys.readouterr().out
    assert "the CSV also holds the curve(s) scored on 20 digits" in out
    assert "kept from the earlier scores on 10 digits" not in out
    ten = both[both["digits"] == 10].set_index("position")
    assert script.main([str(run), "--digits", "10", "--positions", "30", "-q"]) == 0
    thrice = pd.read_csv(run / "accuracy_curve.csv")
    assert len(thrice) == 5 and thrice["digits"].tolist() == [10, 10, 20, 20, 20]
    row = thrice[(thrice["digits"] == 10) & (thrice["position"] == 30)].iloc[0]
    assert row["all_activity"] == ten.loc[30, "all_activity"]  # the same scores, one row
    assert "1 row(s) kept from the earlier scores on 10 digits" in capsys.readouterr().out
    assert table["digits"].tolist() == [20, 20, 20]
    # an earlier file that cannot be merged (a cell that is no digit count) is replaced
    broken = thrice.astype({"digits": object})
    broken.loc[0, "digits"] = "ten"
    broken.to_csv(run / "accuracy_curve.csv", index=False)
    assert script.main([str(run), "--digits", "10", "--positions", "30", "-q"]) == 0
    assert pd.read_csv(run / "accuracy_curve.csv")["position"].tolist() == [30]

    assert script.main([str(run), "--digits", "21", "-q"]) == 2
    assert "--digits 21: must be between 1 and 20" in capsys.readouterr().err
    assert script.main([str(run), "--positions", "15", "-q"]) == 2
    assert "no checkpoint at position 15: available positions are 10, 20, 30" in (
        capsys.readouterr().err
    )
    assert script.main([str(run), "--positions", "ten", "-q"]) == 2
    assert "--positions ten: must be digit counts" in capsys.readouterr().err


def test_fidelity_ablation_runs_each_variant_as_a_seeds_folder(tmp_path, monkeypatch, capsys):
    """scripts/fidelity_ablation.py gives each variant one `run --seeds` command into its own
    seeds folder (the -original preset for `original`, the variant's switches and the extra
    --set overrides otherwise), goes on past a failed variant, and tabulates the mean and spread
    of the seeds found (what `compare` lists as one row per folder)."""
    import subprocess

    script = _script("fidelity_ablation")
    out = tmp_path / "fid"
    assert script.command(400, "original", [0, 1], out, [], None) == [
        "stdp-pipeline", "run", str(out / "original"), "--config", "diehl-cook-400-original",
        "--seeds", "0,1",
    ]  # fmt: skip
    assert script.command(100, "simulated rest", [2], out, ["data.train_digits=50"], 2) == [
        "stdp-pipeline", "run", str(out / "simulated-rest"), "--config", "diehl-cook-100",
        "--set", "network.input_delay_max_ms=0", "--set", "train.engine=xla",
        "--set", "evaluate.engine=xla", "--set", "train.epochs=1",
        "--set", "encoding.rest=simulate", "--set", "excitatory.v_init_offset_mv=-40",
        "--set", "inhibitory.v_init_offset_mv=-40", "--set", "data.train_digits=50",
        "--seeds", "2", "--workers", "2",
    ]  # fmt: skip
    # at 400 neurons on the preset as the ablation measured it (no delays, the TensorFlow engine)
    assert script.command(400, "input delays 0-10 ms", [0], out, ["train.engine=native"], None) == [
        "stdp-pipeline", "run", str(out / "input-delays-0-10-ms"), "--config", "diehl-cook-400",
        "--set", "network.input_delay_max_ms=0", "--set", "train.engine=xla",
        "--set", "evaluate.engine=xla", "--set", "network.input_delay_max_ms=10",
        "--set", "train.engine=native", "--seeds", "0",
    ]  # fmt: skip
    accuracies = {0: 0.80, 1: 0.76}
    for seed, acc in accuracies.items():
        run = out / "preset" / f"seed={seed}"
        run.mkdir(parents=True)
        metrics = {"all_activity": acc, "proportion": acc + 0.02, "linear": 0.86}
        (run / "metrics.json").write_text(json.dumps({"accuracy": metrics}))
    calls = []

    def fake_run(cmd):
        calls.append(cmd)
        return subprocess.CompletedProcess(cmd, 1 if "retries-up-to-64" in cmd[2] else 0)

    monkeypatch.setattr(script.subprocess, "run", fake_run)
    argv = ["--neurons", "100", "--seeds", "0,1", "--out", str(out),
            "--variants", "preset,retries up to 64", "--set", "data.test_digits=100"]  # fmt: skip
    assert script.main(argv) == 1
    assert [c[2] for c in calls] == [str(out / "preset"), str(out / "retries-up-to-64")]
    assert all(c[-3:] == ["data.test_digits=100", "--seeds", "0,1"] for c in calls)
    printed = capsys.readouterr().out
    assert "| preset | 0,1 | 78.00 | 2.83 | 80.00 | 2.83 | 80.00 / 76.00 | 86.00 |" in printed
    assert f"failed: {out / 'retries-up-to-64'}" in printed
    assert script.main([*argv[:-4], "--summary-only"]) == 0 and len(calls) == 2
    assert script.main([*argv[:-4], "--seeds", "1", "--summary-only"]) == 0
    assert "| preset | 1 | 76.00 | - | 78.00 | - | 76.00 | 86.00 |" in capsys.readouterr().out
    assert script.main(["--out", str(out), "--variants", "no such"]) == 2
