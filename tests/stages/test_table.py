"""The stage table: its order and its rows agree with the stage functions, and it alone decides
what `run` runs, in which order, with which arguments, and what it prints."""

from __future__ import annotations

import inspect

import click
import pytest
from bases import DC100
from click.testing import CliRunner

from stdp_pipeline.cli.main import main
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.config import load_config
from stdp_pipeline.io.rundir import RunDir
from stdp_pipeline.stages import table
from stdp_pipeline.stages.table import STAGE_NAMES, STAGES, Stage, run_stages, stage


def test_table_order_and_needs():
    """The stages in today's `run` order; every stage needs only stages before it; the first one
    makes the run directory."""
    assert STAGE_NAMES == (
        "encode",
        "train",
        "assign",
        "evaluate",
        "fields",
        "reconstruct",
        "curves",
    )
    for i, s in enumerate(STAGES):
        assert set(s.needs) <= set(STAGE_NAMES[:i]), s.name
        assert s.summary and "\n" not in s.summary
    assert STAGES[0].creates_run and not any(s.creates_run for s in STAGES[1:])
    assert stage("fields") is STAGES[4]
    with pytest.raises(KeyError, match="the stages are encode, train"):
        stage("nope")


@pytest.mark.parametrize("s", STAGES, ids=lambda s: s.name)
def test_each_function_takes_the_defaults_of_its_row(s):
    """Every default of a row is a keyword of the stage function with the same default value."""
    params = inspect.signature(s.load()).parameters
    for key, value in s.defaults.items():
        assert key in params, (s.name, key)
        if params[key].default is not inspect.Parameter.empty:
            assert params[key].default == value, (s.name, key)
    with pytest.raises(TypeError, match=f"stage '{s.name}' takes no argument"):
        s.arguments(no_such_argument=1)
    assert s.arguments() == dict(s.defaults)


def _closure(names: tuple[str, ...]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= {name} | _closure(stage(name).needs)
    return out


@pytest.mark.parametrize("s", STAGES[1:], ids=lambda s: s.name)
def test_needs_are_what_the_functions_check(s, tmp_path):
    """On a run directory with no stage done, each stage refuses, naming a stage it needs."""
    run = RunDir.create(tmp_path / "r", load_config(DC100), command=["test"])
    with pytest.raises(PipelineError, match=r"has no '(\w+)' stage yet") as info:
        s.load()(run, **s.arguments(**({"progress": False} if "progress" in s.defaults else {})))
    missing = str(info.value).split("'")[1]
    assert missing in _closure(s.needs), (s.name, str(info.value))


def test_help_lists_the_table():
    """The group help lists the stages in table order with their summaries; `run`'s help names
    the order."""
    runner = CliRunner()
    lines = runner.invoke(main, ["--help"]).output.splitlines()
    first = next(i for i, line in enumerate(lines) if "Stages, each" in line) + 1
    rows = [line.split(None, 1) for line in lines[first : first + len(STAGES) + 1]]
    assert rows == [[s.name, s.summary] for s in STAGES] + [["run", "all of the above in order"]]
    run_help = runner.invoke(main, ["run", "--help"]).output
    assert f"Run every stage in order: {', '.join(STAGE_NAMES)}." in " ".join(run_help.split())


def test_option_defaults_of_the_commands_are_the_table_defaults():
    def defaults(command):
        ctx = click.Context(main.commands[command])
        return {p.name: p.get_default(ctx) for p in ctx.command.params}

    for name in ("fields", "reconstruct"):
        row = stage(name).defaults
        have = defaults(name)
        assert {k: have[k] for k in row} == dict(row), name


# --- a table of fake stages: `run` does what the table says --------------------------------------
CALLS: list[tuple[str, dict]] = []


def _make(path, config, *, data_dir=None, command=None):
    CALLS.append(("encode", {"data_dir": data_dir, "command": command}))
    run = RunDir.create(path, config, command=["test"])
    with run.stage("encode"):
        run.write_text("made.txt", "made")
    return run


def _learn(run, *, epochs=None, limit=None, progress=None):
    CALLS.append(("train", {"epochs": epochs, "limit": limit, "progress": progress}))
    with run.stage("train"):
        run.write_text("learned.txt", f"{epochs} {limit}")
    return {"epochs": epochs}


def _extra(run, *, size=4):
    CALLS.append(("extra", {"size": size}))
    return size * 2


FAKE = (
    Stage(
        "encode",
        "make the folder",
        (),
        f"{__name__}:_make",
        {"data_dir": None, "command": None},
        lambda run, result: f"made {run}",
        creates_run=True,
    ),
    Stage(
        "train",
        "learn",
        ("encode",),
        f"{__name__}:_learn",
        {"epochs": None, "limit": None, "progress": None},
        lambda run, result: f"learned for {result['epochs']} epoch(s)",
    ),
    Stage("extra", "one more", ("train",), f"{__name__}:_extra", {"size": 4}, lambda r, n: f"{n}"),
)


@pytest.fixture
def fake_table(monkeypatch):
    monkeypatch.setattr(table, "STAGES", FAKE)
    CALLS.clear()
    yield
    CALLS.clear()


def test_run_stages_follows_the_table(fake_table, tmp_path):
    printed = []
    run = run_stages(
        tmp_path / "r",
        load_config(DC100),
        data_dir="D",
        progress=False,
        options={"train": {"epochs": 2}, "extra": {"size": 5}},
        on_result=lambda s, run, result: printed.append(s.describe(run, result)),
    )
    assert CALLS == [
        ("encode", {"data_dir": "D", "command": None}),
        ("train", {"epochs": 2, "limit": None, "progress": False}),
        ("extra", {"size": 5}),
    ]
    assert printed == [f"made {tmp_path / 'r'}", "learned for 2 epoch(s)", "10"]
    assert run.path == tmp_path / "r" and run.stage_done("train")


def test_run_stages_checks_every_argument_first(fake_table, tmp_path):
    config = load_config(DC100)
    with pytest.raises(TypeError, match="unknown stage"):
        run_stages(tmp_path / "a", config, options={"evaluate": {}})
    with pytest.raises(TypeError, match="stage 'extra' takes no argument.* digits"):
        run_stages(tmp_path / "b", config, options={"extra": {"digits": 3}})
    assert CALLS == [] and not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_cli_run_follows_the_table(fake_table, tmp_path):
    """`stdp-pipeline run` runs the table's stages, passes --epochs/--limit/--quiet/--data-dir to
    the stages that take them, and prints each stage's line."""
    out = tmp_path / "r"
    args = ["run", str(out), "--config", DC100, "--epochs", "3", "--data-dir", "D", "-q"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [f"made {out}", "learned for 3 epoch(s)", "8"]
    assert [name for name, _ in CALLS] == ["encode", "train", "extra"]
    assert CALLS[0][1]["data_dir"] == "D" and CALLS[0][1]["command"] is not None
    assert CALLS[1][1] == {"epochs": 3, "limit": None, "progress": False}
