"""``STDP_OP_THREADS``: TensorFlow's intra-op threads, set when the package imports TensorFlow."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "from stdp_pipeline._tf import tf; "
    "print(tf.config.threading.get_intra_op_parallelism_threads())"
)


def _probe(value: str | None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("STDP_OP_THREADS", None)
    if value is not None:
        env["STDP_OP_THREADS"] = value
    return subprocess.run(
        [sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("value", "threads"),
    [(None, "1"), ("3", "3"), pytest.param("0", "0", marks=pytest.mark.slow)],  # 0: TF's own
)
def test_op_threads_default_one_and_settable(value, threads):
    out = _probe(value)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split()[-1] == threads


def test_op_threads_bad_value_is_one_line():
    out = _probe("two")
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert "STDP_OP_THREADS='two': must be a whole number of threads" in last
