"""TensorFlow, imported without its start-up log lines on the terminal.

TensorFlow's C++ runtime writes informational lines to standard error while it loads, before
``TF_CPP_MIN_LOG_LEVEL`` takes effect. The import below sends file descriptor 2 to ``/dev/null``
for its duration only; errors raised by the import itself still reach the user. Every module of
the package imports ``tf`` from here (the package's ``__init__`` has already set
``TF_CPP_MIN_LOG_LEVEL``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def _stderr_to_devnull() -> Iterator[None]:
    if os.environ.get("STDP_TF_LOGS") == "1":  # debugging: keep TensorFlow's own messages
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


with _stderr_to_devnull():
    import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)

__all__ = ["tf"]
