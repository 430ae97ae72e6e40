"""Pinned results: learned state and metrics of small real runs, bit for bit.

These values were recorded before the package was reorganised into model parts (neurons, rules,
input codes); a refactor must leave them unchanged. A change that is meant to alter the numbers
(a new default, a fidelity fix) updates them here and says why in its commit.

The hashes are SHA-256 (first 16 hex digits) of the arrays' bytes. They were recorded on the CI
machine kind (x86_64, TensorFlow 2.21 on CPU); XLA may round differently on another processor
or TensorFlow version, in which case this file says so by failing.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from bases import DC100

from stdp_pipeline.io.config import load_config
from stdp_pipeline.stages.assign import run_assign
from stdp_pipeline.stages.encode import run_encode
from stdp_pipeline.stages.evaluate import run_evaluate
from stdp_pipeline.stages.train import run_train

REPO = Path(__file__).resolve().parents[2]


def _hash(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


def test_diehl_cook_100_after_500_digits_and_small_run_metrics(tmp_path, mnist_dir):
    """The tests' 100-neuron base (tests/configs/dc100.toml: diehl-cook-100, one pass, no input
    delays), seed 0: weights and theta after 500 training digits, spike counts of 300 assignment
    and 300 test digits, and the three accuracies."""
    cfg = load_config(
        DC100,
        [
            "data.train_digits=500",
            "data.assign_start=500",
            "data.assign_digits=300",
            "data.test_digits=300",
        ],
    )
    run = run_encode(tmp_path / "r", cfg, data_dir=str(mnist_dir))
    run_train(run, progress=False)
    model = run.load_arrays("model.npz")
    assert _hash(model["weights"]) == "15bb4f11ebf0c41c"
    assert _hash(model["theta"]) == "84b6a801725fc259"
    run_assign(run, progress=False)
    metrics = run_evaluate(run, progress=False)
    assert _hash(run.load_arrays("assignments.npz")["counts"]) == "d24ce4c9b776777b"
    assert _hash(run.load_arrays("test_counts.npz")["counts"]) == "061b9c05f91dcfeb"
    assert metrics["accuracy"] == {
        "all_activity": 166 / 300,
        "proportion": 170 / 300,
        "linear": 186 / 300,
    }


PINNED = {
    "event-patches": (
        str(REPO / "scripts" / "configs" / "event-stdp-patches-10px.toml"),  # the preset before
        [],  # the geometry sweeps
        ("d364904ad17e839c", "33c557b7a09a6ec4", "a2c3fda23fe45443", 10),
    ),
    "current-trace": (
        DC100,
        ["network.neuron=current", "network.n_excitatory=50"],
        ("f4f4050723bce7a3", "84456ff769974845", "b205dfbb342258d6", 126),
    ),
    "shared-trace": (
        DC100,
        [
            "encoding.patch_size_px=16",
            "encoding.patch_stride_px=12",
            "network.patch_groups=shared",
            "network.n_excitatory=20",
            "data.train_digits=30",
        ],
        ("db79d10c2f5d3459", "b91e4210b9373f99", "2816d67a07f8688f", 0),
    ),
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_model_variants_pinned(tmp_path, mnist_dir, case):
    """The other model variants on a few digits: patched event STDP (1,600 neurons), the current
    LIF neuron with trace STDP, and a shared patch group."""
    preset, overrides, (w, theta, counts, retries) = PINNED[case]
    slices = [
        "data.train_digits=60",
        "data.assign_digits=40",
        "data.assign_start=100",
        "data.test_digits=10",
    ]
    run = run_encode(
        tmp_path / "r", load_config(preset, [*slices, *overrides]), data_dir=str(mnist_dir)
    )
    summary = run_train(run, progress=False)
    run_assign(run, progress=False)
    model = run.load_arrays("model.npz")
    assert _hash(model["weights"]) == w
    assert _hash(model["theta"]) == theta
    assert _hash(run.load_arrays("assignments.npz")["counts"]) == counts
    assert summary["retries_total"] == retries
