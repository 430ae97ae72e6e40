"""A small on-disk cache for results that depend only on data, never on a run: today the
raw-pixel baseline of ``evaluate`` (a logistic regression on up to 60,000 digits, about a minute
on 2 cores), which every run and every seed on the same digits would otherwise fit again.

Entries are JSON files ``<cache dir>/<kind>-<key>.json``, the key a SHA-256 of everything the
value depends on (the arrays' bytes, shapes and dtypes, and the versions that can change it).
The folder is ``$STDP_CACHE_DIR``, else ``~/.cache/stdp-pipeline``; ``STDP_CACHE_DIR=off``
turns the cache off. A folder that cannot be written, or an entry that cannot be read, only
means the value is computed again: the cache never fails a stage.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from stdp_pipeline.io import atomic

#: The environment variable naming the cache folder (``off``: no cache).
ENV_CACHE_DIR = "STDP_CACHE_DIR"


def cache_dir() -> Path | None:
    """The cache folder, or None when ``STDP_CACHE_DIR`` is ``off`` (or ``0``, ``none``)."""
    value = os.environ.get(ENV_CACHE_DIR, "").strip()
    if value.lower() in ("off", "0", "none", "false"):
        return None
    if value:
        return Path(value).expanduser()
    return Path.home() / ".cache" / "stdp-pipeline"


def key_of(parts: Iterable[Any]) -> str:
    """SHA-256 (hex) of ``parts``: arrays by dtype, shape and bytes, anything else by ``repr``."""
    digest = hashlib.sha256()
    for part in parts:
        if isinstance(part, np.ndarray):
            array = np.ascontiguousarray(part)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        else:
            digest.update(repr(part).encode())
        digest.update(b"\x00")
    return digest.hexdigest()


def cached(kind: str, parts: Iterable[Any], compute: Callable[[], Any]) -> tuple[Any, bool]:
    """``compute()``'s value (JSON-serialisable), from the cache when an entry for ``kind`` and
    the key of ``parts`` is there, else computed and stored. Returns ``(value, from_cache)``."""
    folder = cache_dir()
    if folder is None:
        return compute(), False
    path = folder / f"{kind}-{key_of(parts)}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))["value"], True
    except (OSError, ValueError, KeyError, TypeError):
        pass
    value = compute()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic.write_json(path, {"kind": kind, "value": value})
    except (OSError, atomic.WriteError):
        pass  # a read-only home, a full disk: the value was computed, that is all
    return value, False
