"""TensorFlow, imported without its start-up log lines on the terminal.

TensorFlow's C++ runtime writes informational lines to standard error while it loads, before
``TF_CPP_MIN_LOG_LEVEL`` takes effect. The import below sends file descriptor 2 to ``/dev/null``
for its duration only; errors raised by the import itself still reach the user. Every module of
the package imports ``tf`` from here (the package's ``__init__`` has already set
``TF_CPP_MIN_LOG_LEVEL``).
"""

from __future__ import annotations

from stdp_pipeline._quiet import stderr_to_devnull

with stderr_to_devnull("STDP_TF_LOGS"):  # STDP_TF_LOGS=1 keeps TensorFlow's messages
    import tensorflow as tf  # noqa: E402

tf.get_logger().setLevel("ERROR")
tf.autograph.set_verbosity(0)

__all__ = ["tf"]
