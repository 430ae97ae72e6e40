"""Silencing a noisy library's start-up lines on the terminal (TensorFlow's, Ray's)."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def stderr_to_devnull(keep_env: str) -> Iterator[None]:
    """Send file descriptor 2 to ``/dev/null`` for the block (C++ cores and child processes write
    there directly, past Python's ``sys.stderr``); Python errors still raise. Setting the
    environment variable ``keep_env`` to ``1`` keeps the messages (for debugging)."""
    if os.environ.get(keep_env) == "1":
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real stderr (some embedded interpreters)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
