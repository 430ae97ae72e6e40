"""TensorFlow, imported without its start-up log lines on the terminal.

TensorFlow's C++ runtime writes informational lines to standard error while it loads, before
``TF_CPP_MIN_LOG_LEVEL`` takes effect. The import below sends file descriptor 2 to ``/dev/null``
for its duration only; errors raised by the import itself still reach the user. Every module of
the package imports ``tf`` from here (the package's ``__init__`` has already set
``TF_CPP_MIN_LOG_LEVEL``).

Threads: each compiled simulation runs on one thread (``STDP_OP_THREADS``, default 1, sets
TensorFlow's intra-op parallelism). The simulation's per-step kernels are small, so handing them to
a thread pool costs more than it gains: on 2 cores one thread per program trains 1.2-1.5x faster
at 400 to 6400 neurons and infers up to 1.35x faster (``scripts/benchmark.py``; inference runs a
batch per core itself, :func:`stdp_pipeline.sim.present.inference_workers`). ``0`` leaves
TensorFlow's default (all cores).
"""

from __future__ import annotations

import contextlib
import os

from stdp_pipeline._quiet import stderr_to_devnull
from stdp_pipeline.errors import PipelineError

with stderr_to_devnull("STDP_TF_LOGS"):  # STDP_TF_LOGS=1 keeps TensorFlow's messages
    import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")


def _op_threads() -> int:
    """``STDP_OP_THREADS`` as a count of threads (0: TensorFlow's default), checked."""
    raw = os.environ.get("STDP_OP_THREADS", "1").strip() or "1"
    if not raw.isdigit():
        raise PipelineError(
            f"STDP_OP_THREADS={raw!r}: must be a whole number of threads (1, the default; "
            "0 for TensorFlow's choice)"
        )
    return int(raw)


_THREADS = _op_threads()
if _THREADS > 0:
    # RuntimeError: TensorFlow was initialised before this package was imported
    with contextlib.suppress(RuntimeError):
        tf.config.threading.set_intra_op_parallelism_threads(_THREADS)
tf.autograph.set_verbosity(0)

__all__ = ["tf"]
