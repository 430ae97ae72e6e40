"""Shared fixtures. Tests that need real MNIST find it through STDP_DATA_DIR (as CI sets it) or the
shared copy beside the checkout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _find_mnist() -> Path | None:
    candidates = []
    if os.environ.get("STDP_DATA_DIR"):
        env = Path(os.environ["STDP_DATA_DIR"])
        candidates += [env / "mnist", env]
    candidates.append(REPO.parent / "shared" / "data" / "mnist")
    for c in candidates:
        if (c / "train-images-idx3-ubyte.gz").exists() or (c / "train-images-idx3-ubyte").exists():
            return c
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """Folder holding the four original MNIST IDX files (gzipped or not)."""
    found = _find_mnist()
    if found is None:
        pytest.skip("real MNIST not found: set STDP_DATA_DIR to a folder with the four IDX files")
    return found


@pytest.fixture(autouse=True)
def _no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reaches the internet by accident: a missing data set fails at once instead of
    being downloaded. Tests of the download unset this and serve the files from 127.0.0.1."""
    monkeypatch.setenv("STDP_NO_DOWNLOAD", "1")


@pytest.fixture(scope="session")
def _session_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stdp-cache")


@pytest.fixture(autouse=True)
def _cache_dir(monkeypatch: pytest.MonkeyPatch, _session_cache: Path) -> None:
    """The on-disk cache (the raw-pixel baseline) goes to one folder per test session, never to
    the home folder: tests on the same digits share it, as runs do."""
    monkeypatch.setenv("STDP_CACHE_DIR", str(_session_cache))
