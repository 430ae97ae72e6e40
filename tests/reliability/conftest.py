"""Fixtures of the reliability battery: tiny run directories made once (with the simulation
stand-in of :mod:`reliability_kit`), copied per test.

The fast tests replace the simulation with a deterministic stand-in (:func:`stub_sim`): the
stages themselves (loading, checking, writing, recording, locking) run for real and write exactly
the files their writers write, but no XLA program is compiled, so the whole battery takes
seconds. The slow tests (``-m slow``) train for real in separate processes.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bases import DC100
from reliability_kit import TINY, apply_stubs, ok


@pytest.fixture
def stub_sim(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replace the simulation by :func:`fake_train_chunk` and :func:`fake_respond`."""
    apply_stubs(monkeypatch)


# --- tiny run directories, made once ------------------------------------------------------------
@pytest.fixture(scope="session")
def base_runs(tmp_path_factory: pytest.TempPathFactory, mnist_dir: Path) -> dict[str, Path]:
    """Three tiny run directories, made once through the CLI with the simulation stand-in:
    ``encoded`` (encode only), ``trained`` (and train), ``done`` (and assign, evaluate)."""
    root = tmp_path_factory.mktemp("reliability")
    runs = {name: root / name for name in ("encoded", "trained", "done")}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STDP_PROGRESS", "0")
        mp.setenv("STDP_NO_DOWNLOAD", "1")
        apply_stubs(mp)
        ok("encode", runs["done"], "--config", DC100, "--data-dir", mnist_dir, *TINY)
        shutil.copytree(runs["done"], runs["encoded"])
        ok("train", runs["done"])
        shutil.copytree(runs["done"], runs["trained"])
        ok("assign", runs["done"])
        ok("evaluate", runs["done"])
    return runs


@pytest.fixture
def copy_run(base_runs: dict[str, Path], tmp_path: Path) -> Iterator[Callable[[str], Path]]:
    """``copy_run(kind)``: a fresh copy of the base run ``kind`` (``encoded``, ``trained``,
    ``done``) in this test's folder, at ``tmp_path/<kind>``."""

    def make(kind: str, name: str | None = None) -> Path:
        target = tmp_path / (name or kind)
        shutil.copytree(base_runs[kind], target)
        return target

    yield make
