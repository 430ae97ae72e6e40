"""No stale results after a rerun: a stage that runs again marks every stage downstream of it
stale in the manifest, and the stages (and `compare`) that would read their files refuse, saying
which stages to run again, in order. Nothing is mixed: a new model never meets old assignments,
test responses or metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bases import DC100
from reliability_kit import TINY, cli, ok, one_line_error, snapshot

from stdp_pipeline.sim import present


def _stale(run: Path) -> dict[str, str | None]:
    """Each recorded stage -> the stage whose rerun made it stale (None: fresh)."""
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    return {name: (record.get("stale") or {}).get("after") for name, record in stages.items()}


def test_train_again_makes_assign_and_evaluate_stale(copy_run, stub_sim, tmp_path: Path) -> None:
    run = copy_run("done")
    ok("train", run)
    assert _stale(run) == {
        "encode": None,
        "train": None,
        "assign": "train",
        "evaluate": "train",
    }
    before = snapshot(run)
    one_line_error(
        cli("evaluate", run),
        f"{run}: 'assign' is stale ('train' ran again after it): "
        f"rerun `stdp-pipeline assign {run}` before `evaluate`",
    )
    one_line_error(
        cli("reconstruct", run),
        f"{run}: 'assign', 'evaluate' are stale ('train' ran again after them): rerun "
        f"`stdp-pipeline assign {run}`, then `stdp-pipeline evaluate {run}` before `reconstruct`",
    )
    one_line_error(cli("fields", run), "'assign' is stale", "--sort index")
    one_line_error(cli("fields", run, "--sort", "class"), "'assign' is stale")
    one_line_error(
        cli("compare", run, "--out", tmp_path / "cmp"),
        "'assign', 'evaluate' are stale",
        f"before `compare`, or leave {run} out",
    )
    assert snapshot(run) == before  # refusals write nothing
    assert not (tmp_path / "cmp").exists()

    # what does not read the stale files still works: fields without classes
    ok("fields", run, "--sort", "index")
    record = json.loads((run / "manifest.json").read_text())["stages"]["fields"]
    assert record["sort"] == "index" and "stale" not in record

    # running the stale stages again, in order, clears them
    ok("assign", run)
    one_line_error(
        cli("reconstruct", run), "'evaluate' is stale", f"`stdp-pipeline evaluate {run}`"
    )
    ok("evaluate", run)
    assert all(after is None for after in _stale(run).values())
    ok("reconstruct", run)
    ok("compare", run, "--out", tmp_path / "cmp")


def test_encode_again_makes_every_later_stage_stale(copy_run, stub_sim, mnist_dir) -> None:
    run = copy_run("done")
    ok("encode", run, "--config", DC100, "--data-dir", mnist_dir, *TINY)
    assert _stale(run) == {
        "encode": None,
        "train": "encode",
        "assign": "encode",
        "evaluate": "encode",
    }
    one_line_error(
        cli("assign", run),
        f"'train' is stale ('encode' ran again after it): rerun `stdp-pipeline train {run}`",
    )
    one_line_error(cli("curves", run), "'train' is stale")
    ok("train", run)
    assert _stale(run)["train"] is None and _stale(run)["assign"] == "encode"
    one_line_error(cli("evaluate", run), "'assign' is stale ('encode' ran again after it)")


def test_an_interrupted_rerun_leaves_the_later_stages_stale(
    copy_run, stub_sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flags are written before the stage writes anything: a rerun of `train` that stops
    half-way (here Ctrl-C) keeps the old train record, but assign and evaluate stay stale, as
    the model they were made from may be gone already."""
    run = copy_run("done")
    train_record = json.loads((run / "manifest.json").read_text())["stages"]["train"]

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(present, "train_chunk", interrupted)
    one_line_error(cli("train", run), "training stopped", code=130, prefix="Interrupted: ")
    stages = json.loads((run / "manifest.json").read_text())["stages"]
    assert stages["train"] == train_record
    assert _stale(run)["assign"] == "train" and _stale(run)["evaluate"] == "train"
    one_line_error(cli("evaluate", run), "'assign' is stale")
    assert not (run / ".lock").exists()
