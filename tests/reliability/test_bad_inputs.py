"""Bad inputs, as a hostile user gives them: every one is refused with one line naming the file
(and the key) and what would be right, exit status 2, no traceback, and the run directory is left
byte for byte as it was (or never made).

Config files (TOML, YAML, JSON: malformed, not UTF-8, too large, nested too deeply, odd keys), the
JSON files of a run directory (config.json, manifest.json, metrics.json) and every array file a
stage reads (encoded digits, model, checkpoints, assignments, test responses, logs), each checked
for the keys, dtypes, shapes and mutual consistency its writer guarantees.
"""

from __future__ import annotations

import ast
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from reliability_kit import cli, one_line_error, snapshot

from stdp_pipeline.io import reading

PACKAGE = Path(__file__).resolve().parents[2] / "stdp_pipeline"


# --- config files ---------------------------------------------------------------------------------
CONFIG_FILES = {
    "malformed YAML": ("bad.yaml", b"network:\n  n_excitatory: [1, 2\n", "not valid YAML"),
    "TOML not UTF-8": ("latin1.toml", 'name = "caf\xe9"\n'.encode("latin-1"), "not UTF-8 text"),
    "YAML not UTF-8": ("latin1.yaml", b"base: diehl-cook-100\nname: caf\xe9\n", "byte 0xe9"),
    "JSON not UTF-8": ("latin1.json", b'{"name": "\xff"}', "not UTF-8 text"),
    "JSON nested too deeply": ("deep.json", b"[" * 100_000, "nested too deeply"),
    "TOML nested too deeply": ("deep.toml", b"x = " + b"[" * 100_000, "nested too deeply"),
    "YAML key not a string": ("keys.yaml", b"base: diehl-cook-100\n1: 2\n", "key 1 is not"),
    "YAML python tag": ("tag.yaml", b"x: !!python/object/apply:os.system ['true']\n", "YAML"),
    "YAML list": ("list.yaml", b"- 1\n- 2\n", "must hold a table of sections"),
    "empty JSON": ("empty.json", b"", "not valid JSON"),
    "too large": ("big.toml", b"#" * (reading.MAX_CONFIG_BYTES + 1), "larger than 1 MiB"),
}


@pytest.mark.parametrize("case", sorted(CONFIG_FILES))
def test_bad_config_file_is_one_line(tmp_path: Path, case: str) -> None:
    """`config show FILE` and `encode RUN --config FILE`: one line naming the file and the fault;
    the run directory is never made."""
    name, content, fragment = CONFIG_FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    run = tmp_path / "run"
    for args in (("config", "show", path), ("encode", run, "--config", path)):
        one_line_error(cli(*args), str(path), fragment)
    assert not run.exists()


def test_config_that_is_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "dir.toml"
    folder.mkdir()
    one_line_error(cli("config", "show", folder), f"{folder} is a folder, not a config file")


# --- the JSON files of a run directory ------------------------------------------------------------
def _latin1(path: Path) -> None:
    path.write_bytes(path.read_bytes().replace(b'"', b'"\xe9', 1))


RUN_JSON = {
    # case: (base run, file, how it is spoiled, command, fragments of the one line)
    "config.json not UTF-8": (
        "trained", "config.json", _latin1, ("assign",), ("config.json is not UTF-8 text",)
    ),
    "manifest.json not UTF-8": (
        "encoded", "manifest.json", _latin1, ("train",), ("manifest.json is not UTF-8", "damaged")
    ),
    "manifest.json truncated": (
        "done",
        "manifest.json",
        lambda p: p.write_bytes(p.read_bytes()[:50]),
        ("evaluate",),
        ("manifest.json: not valid JSON",),
    ),
    "manifest.json a list": (
        "trained", "manifest.json", lambda p: p.write_text("[]"), ("assign",),
        ("must hold a JSON object", "rebuild"),
    ),
    "metrics.json not UTF-8 (compare)": (
        "done", "metrics.json", _latin1, ("compare",),
        ("metrics.json is not UTF-8", "stdp-pipeline evaluate"),
    ),
    "metrics.json not UTF-8 (fields)": (
        "done", "metrics.json", _latin1, ("fields",), ("metrics.json is not UTF-8",)
    ),
    "metrics.json accuracy not a fraction": (
        "done",
        "metrics.json",
        lambda p: p.write_text('{"accuracy": {"all_activity": "high"}}'),
        ("compare",),
        ("accuracy 'all_activity' is 'high', expected a fraction", "stdp-pipeline evaluate"),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(RUN_JSON))
def test_bad_run_json_is_one_line(copy_run, stub_sim, tmp_path: Path, case: str) -> None:
    kind, rel, spoil, command, fragments = RUN_JSON[case]
    run = copy_run(kind)
    spoil(run / rel)
    before = snapshot(run)
    args = (*command, run) if command != ("compare",) else ("compare", run, "--out", tmp_path / "c")
    one_line_error(cli(*args), f"{run}/{rel}", *fragments)
    assert snapshot(run) == before
    assert not (tmp_path / "c").exists()


def test_oversized_manifest_is_refused_before_reading(
    copy_run, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Run-directory JSON is read with a size limit (16 MiB; 1 KiB here)."""
    run = copy_run("trained")
    monkeypatch.setattr(reading, "MAX_RUN_JSON_BYTES", 1024)
    before = snapshot(run)
    one_line_error(cli("assign", run), f"{run}/manifest.json is larger than 1 KiB")
    assert snapshot(run) == before


# --- the array files a stage reads ----------------------------------------------------------------
def _npz(change: Callable[[dict], dict]) -> Callable[[Path], None]:
    """Rewrite an .npz with ``change(arrays)``."""

    def spoil(path: Path) -> None:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        np.savez(path, **change(arrays))

    return spoil


def _with(**changes: Callable[[np.ndarray], np.ndarray | None]) -> Callable[[Path], None]:
    """Rewrite an .npz, each key changed by its function (returning None drops the key)."""

    def change(arrays: dict) -> dict:
        for key, fn in changes.items():
            value = fn(arrays[key])
            if value is None:
                del arrays[key]
            else:
                arrays[key] = value
        return arrays

    return _npz(change)


def _drop(a: np.ndarray) -> None:
    return None


ARRAYS = {
    # case: (base run, file, how it is spoiled, command, fragments of the one line)
    "model weights of the wrong shape": (
        "done", "model.npz", _with(weights=lambda w: w[:, :5]), ("assign",),
        ("'weights' has shape [784, 5], expected [784, 8]", "stdp-pipeline train"),
    ),
    "model without theta": (
        "done", "model.npz", _with(theta=_drop), ("assign",), ("has no 'theta' array",),
    ),
    "model weights NaN": (
        "done", "model.npz", _with(weights=lambda w: w * np.nan), ("evaluate",),
        ("'weights' holds NaN",),
    ),
    "model weights of integer dtype": (
        "done", "model.npz", _with(weights=lambda w: w.astype(np.int32)), ("fields",),
        ("'weights' has dtype int32, expected a floating-point dtype",),
    ),
    "model not an npz": (
        "done", "model.npz", lambda p: p.write_bytes(b"garbage"), ("reconstruct",),
        ("model.npz cannot be read (not an .npz file)",),
    ),
    "test digits without labels": (
        "done", "encoded/test.npz", _with(labels=_drop), ("evaluate",),
        ("has no 'labels' array", "stdp-pipeline encode"),
    ),
    "10 training images, 200 labels": (
        "encoded", "encoded/train.npz",
        _with(images=lambda x: x[:10], labels=lambda y: np.resize(y, 200),
              indices=lambda i: np.resize(i, 200)),
        ("train",), ("'labels' has 200 entries but 'images' has 10 digits",),
    ),
    "labels and indices cut to 10, 20 images": (
        "encoded", "encoded/train.npz",
        _with(labels=lambda y: y[:10], indices=lambda i: i[:10]),
        ("train",), ("'labels' has 10 entries but 'images' has 20 digits",),
    ),
    "every array cut to 10": (
        "encoded", "encoded/train.npz",
        _with(images=lambda x: x[:10], labels=lambda y: y[:10], indices=lambda i: i[:10]),
        ("train",), ("holds 10 digits, but the encode stage recorded 20 for 'train'",),
    ),
    "a label of 12": (
        "encoded", "encoded/train.npz", _with(labels=lambda y: np.where(y == y[0], 12, y)),
        ("train",), ("'labels' holds 12, expected values <= 9",),
    ),
    "float images": (
        "encoded", "encoded/train.npz", _with(images=lambda x: x.astype(np.float32)),
        ("train",), ("'images' has dtype float32, expected uint8",),
    ),
    "images of 100 pixels": (
        "encoded", "encoded/train.npz", _with(images=lambda x: x[:, :100]),
        ("train",), ("'images' has shape [20, 100], expected [M, 784]",),
    ),
    "assignments for 5 neurons": (
        "done", "assignments.npz", _with(classes=lambda c: c[:5]), ("evaluate",),
        ("'classes' has shape [5], expected [8]", "stdp-pipeline assign"),
    ),
    "assignments without counts": (
        "done", "assignments.npz", _with(counts=_drop), ("evaluate",),
        ("has no 'counts' array",),
    ),
    "assignments with a class of 42": (
        "done", "assignments.npz", _with(classes=lambda c: np.full_like(c, 42)), ("fields",),
        ("'classes' holds 42, expected values <= 9",),
    ),
    "assignment counts for 5 digits": (
        "done", "assignments.npz", _with(counts=lambda c: c[:5]), ("evaluate",),
        ("'counts' has shape [5, 8], expected [10, 8]",),
    ),
    "test counts of 3 neurons": (
        "done", "test_counts.npz", _with(counts=lambda c: c[:, :3]), ("reconstruct",),
        ("'counts' has shape [10, 3], expected [10, 8]", "stdp-pipeline evaluate"),
    ),
    "test counts with 4 labels": (
        "done", "test_counts.npz", _with(labels=lambda y: y[:4]), ("reconstruct",),
        ("'labels' has shape [4], expected [10]",),
    ),
    "checkpoint weights of the wrong shape": (
        "trained", "checkpoints/ckpt-000000020.npz", _with(weights=lambda w: w[:100]),
        ("train", "--resume"), ("'weights' has shape [100, 8], expected [784, 8]", "--resume"),
    ),
    "checkpoint log of the wrong length": (
        "trained", "checkpoints/ckpt-000000020.npz", _with(spikes=lambda s: s[:3]),
        ("train", "--resume"), ("'spikes' has shape [3], expected [20]",),
    ),
    "checkpoint at another position than its name": (
        "trained", "checkpoints/ckpt-000000020.npz", _with(position=lambda p: np.int64(7)),
        ("train", "--resume"), ("'position' is 7, expected 20",),
    ),
    "checkpoint curve not numeric": (
        "trained", "checkpoints/curve.csv",
        lambda p: p.write_text("position,spikes_mean\n10,lots\n"),
        ("train", "--resume"), ("column 'spikes_mean' is not numeric",),
    ),
    "training log not numeric": (
        "trained", "train_log.csv",
        lambda p: p.write_text("position,epoch,spikes,retries\n0,0,many,0\n"),
        ("curves",), ("column 'spikes' is not numeric",),
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(ARRAYS))
def test_bad_artefact_is_one_line(copy_run, stub_sim, case: str) -> None:
    """The stage that reads the spoilt file refuses it before doing anything: one line naming
    the file, the key and what was expected (and which stage writes it again); the run directory
    is unchanged: no record, no tensorboard events, no lock left."""
    kind, rel, spoil, command, fragments = ARRAYS[case]
    run = copy_run(kind)
    spoil(run / rel)
    before = snapshot(run)
    line = one_line_error(cli(command[0], run, *command[1:]), f"{run}/{rel}", *fragments)
    assert snapshot(run) == before, line


def test_pickled_arrays_are_never_unpickled(copy_run, tmp_path: Path) -> None:
    """An .npz holding a pickle (here one that would make a folder when unpickled) is refused
    with one line, and the pickle is never run: every .npz is read with allow_pickle=False."""
    run = copy_run("done")
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    obj = np.empty(1, dtype=object)
    obj[0] = Payload()
    with np.load(run / "model.npz") as data:
        arrays = {k: data[k] for k in data.files}
    np.savez(run / "model.npz", **arrays, extra=obj, allow_pickle=True)
    before = snapshot(run)
    one_line_error(cli("assign", run), f"{run}/model.npz cannot be read", "pickled Python objects")
    assert not marker.exists()
    assert snapshot(run) == before


def test_every_np_load_refuses_pickles() -> None:
    """Every ``np.load`` in the package passes ``allow_pickle=False`` (a source check, so a new
    reader cannot forget it)."""
    calls = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id in ("np", "numpy")
            ):
                flags = {k.arg: k.value for k in node.keywords}
                safe = isinstance(flags.get("allow_pickle"), ast.Constant) and (
                    flags["allow_pickle"].value is False
                )
                calls.append((f"{path.relative_to(PACKAGE)}:{node.lineno}", safe))
    assert calls, "no np.load found: the check looks in the wrong place"
    assert [where for where, safe in calls if not safe] == []
