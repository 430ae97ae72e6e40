"""Bounded, UTF-8-checked reads of user and run files (stdp_pipeline.io.reading), and the one-line
errors of writes the system refuses (stdp_pipeline.io.atomic.WriteError)."""

from __future__ import annotations

import errno
from pathlib import Path

import numpy as np
import pytest

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import atomic, reading


def test_read_text_limits_size_and_checks_utf8(tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b'{"a": "\xc3\xa9"}')
    assert reading.read_json(path) == {"a": "é"}
    with pytest.raises(
        PipelineError, match=r"a.json is larger than 10 B: too large for a JSON file"
    ):
        reading.read_json(path, limit=10)
    path.write_bytes(b'{"a": "\xe9"}')
    with pytest.raises(PipelineError) as info:
        reading.read_json(path, hint=": run it again")
    assert str(info.value) == f"{path} is not UTF-8 text (byte 0xe9 at offset 7): run it again"
    with pytest.raises(PipelineError, match="save it as UTF-8"):
        reading.read_text(path, limit=100)
    with pytest.raises(PipelineError, match="does not exist"):
        reading.read_text(tmp_path / "missing.json", limit=100)
    with pytest.raises(PipelineError, match="is a folder, not a config file"):
        reading.read_text(tmp_path, limit=100, what="config file")


def test_parse_json_of_deep_or_bad_text(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match=r"x.json: not valid JSON \(nested too deeply\)"):
        reading.parse_json("[" * 100_000, tmp_path / "x.json")
    with pytest.raises(PipelineError, match=r"x.json: not valid JSON \(Expecting property name"):
        reading.parse_json("{'a': 1}", tmp_path / "x.json")


def test_write_error_names_the_file_and_keeps_the_old_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "r" / "model.npz"
    atomic.save_npz(target, {"w": np.ones(3)})
    old = target.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(atomic.WriteError) as info:
        atomic.save_npz(target, {"w": np.zeros(3)})
    assert str(info.value) == (
        f"cannot write {target}: No space left on device (disk full: free some space and try again)"
    )
    assert info.value.errno == errno.ENOSPC and isinstance(info.value, PipelineError)
    assert target.read_bytes() == old
    assert [p.name for p in target.parent.iterdir()] == ["model.npz"]  # no temporary file
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    with pytest.raises(atomic.WriteError, match=f"cannot write {blocked}/x.json"):
        atomic.write_json(blocked / "x.json", {})


def test_temporary_names_and_sweep(tmp_path: Path) -> None:
    with atomic.atomic_path(tmp_path / "model.npz") as tmp:
        assert atomic.is_temporary(tmp.name)
        tmp.write_bytes(b"x")
    for name in (".model.npz.ab_12cd3.tmp.npz", ".curve.csv.zzzzzzzz.tmp.csv"):
        (tmp_path / name).write_bytes(b"half")
    for name in ("model.npz", ".lock", "notes.tmp", ".hidden"):
        assert not atomic.is_temporary(name)
        (tmp_path / name).write_bytes(b"keep")
    assert atomic.sweep_temporary(tmp_path) == [
        ".curve.csv.zzzzzzzz.tmp.csv",
        ".model.npz.ab_12cd3.tmp.npz",
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".hidden",
        ".lock",
        "model.npz",
        "notes.tmp",
    ]
