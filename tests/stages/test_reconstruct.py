"""Image reconstruction from spike responses, and the patch extraction it folds back through.

The central check: a network whose receptive fields are real MNIST digits, answering each test
digit with one spike of the neuron that holds it, rebuilds the digits almost exactly; the same
spikes sent to the wrong neurons do not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from bases import DC100

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.geometry import Layout, coverage, fold, patch_positions, unfold
from stdp_pipeline.io.config import load_config
from stdp_pipeline.io.data import load_split
from stdp_pipeline.io.rundir import RunDir
from stdp_pipeline.stages.reconstruct import (
    error_table,
    pick_digits,
    reconstruct,
    rescale,
    run_reconstruct,
)


# --- patches ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("size", "stride"), [(28, 28), (10, 6), (16, 4), (5, 3), (7, 7), (4, 2), (1, 1), (9, 9)]
)
def test_fold_of_unfold_is_the_image(size, stride):
    """fold(unfold(x)) == x exactly, with and without overlap, when the stride does not divide."""
    rng = np.random.default_rng(size * 100 + stride)
    images = rng.integers(0, 256, size=(3, 28, 28)).astype(np.float64)
    patches = unfold(images, size, stride)
    assert patches.shape == (3, len(patch_positions(size, stride)), size * size)
    np.testing.assert_array_equal(fold(patches, size, stride), images)
    assert coverage(size, stride).min() >= 1  # every pixel is covered


def test_unfold_of_a_6x6_image_gives_the_expected_patches():
    """Size 4, stride 2 on a hand-made 6x6 image: four patches, written out by hand."""
    image = np.arange(36).reshape(1, 6, 6)
    assert patch_positions(4, 2, 6) == [(0, 0), (0, 2), (2, 0), (2, 2)]
    expected = np.array(
        [
            [0, 1, 2, 3, 6, 7, 8, 9, 12, 13, 14, 15, 18, 19, 20, 21],
            [2, 3, 4, 5, 8, 9, 10, 11, 14, 15, 16, 17, 20, 21, 22, 23],
            [12, 13, 14, 15, 18, 19, 20, 21, 24, 25, 26, 27, 30, 31, 32, 33],
            [14, 15, 16, 17, 20, 21, 22, 23, 26, 27, 28, 29, 32, 33, 34, 35],
        ]
    )
    np.testing.assert_array_equal(unfold(image, 4, 2)[0], expected)
    np.testing.assert_array_equal(fold(unfold(image, 4, 2), 4, 2, image_px=6), image)
    # overlapping pixels are averaged: the centre 2x2 block is covered four times
    assert coverage(4, 2, 6)[2:4, 2:4].tolist() == [[4, 4], [4, 4]]
    assert fold(np.ones((1, 4, 16)) * [[[1], [2], [3], [4]]], 4, 2, 6)[0, 2, 2] == 2.5


# --- reconstruction ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ten_digits(mnist_dir):
    """The first test digit of each class (0..9): images [10, 28, 28] uint8 and labels."""
    test = load_split("mnist", "test", mnist_dir)
    idx = np.array([int(np.flatnonzero(test.labels == c)[0]) for c in range(10)])
    return np.asarray(test.images[idx]), np.asarray(test.labels[idx]).astype(np.int64), idx


def _fake_run(path, weights, counts, images, labels, indices, *, stages=("encode", "evaluate")):
    """A run directory whose model and test responses are given, stages marked done."""
    config = load_config(DC100, ["network.n_excitatory=10"])
    run = RunDir.create(path, config, command=["test"])
    with run.stage("encode"):
        run.save_arrays(
            "encoded/test.npz",
            {"images": images.reshape(len(images), -1), "labels": labels, "indices": indices},
        )
    if "train" in stages or "evaluate" in stages:
        with run.stage("train"):
            run.save_arrays("model.npz", {"weights": weights, "theta": np.zeros(10, np.float32)})
    if "evaluate" in stages:
        with run.stage("evaluate"):
            run.save_arrays("test_counts.npz", {"counts": counts, "labels": labels})
    return run


def test_digit_fields_reconstruct_the_digits_nearly_exactly(tmp_path, ten_digits):
    """Fields = the digits themselves (/255), one spike of the matching neuron per digit: every
    reconstruction is the digit (MSE < 1e-3); spikes sent to the wrong neurons are far off."""
    images, labels, indices = ten_digits
    weights = (images.reshape(10, -1).T / 255.0).astype(np.float32)  # [784, 10]
    counts = np.eye(10, dtype=np.float32) * 3.0  # three spikes of neuron j for digit j
    run = _fake_run(tmp_path / "exact", weights, counts, images, labels, indices)
    table = run_reconstruct(run, digits=10)
    assert list(table["class"]) == [*map(str, range(10)), "all"]
    assert (table["mse"] < 1e-3).all(), table
    csv = pd.read_csv(run.file("reconstruction.csv"))
    np.testing.assert_allclose(csv["mse"], table["mse"], rtol=1e-5)
    assert run.manifest()["stages"]["reconstruct"]["outputs"] == [
        "reconstruction.png",
        "reconstruction.csv",
    ]

    wrong = np.roll(np.eye(10, dtype=np.float32), 1, axis=1)  # digit j -> neuron j + 1
    bad = _fake_run(tmp_path / "wrong", weights, wrong, images, labels, indices)
    bad_table = run_reconstruct(bad, digits=10)
    overall, bad_overall = table["mse"].iloc[-1], bad_table["mse"].iloc[-1]
    assert bad_overall > 0.05
    assert bad_overall > 50 * max(overall, 1e-6)
    assert (bad_table["mse"].iloc[:-1] > 0.02).all()


def test_patched_fields_fold_back_to_the_digits(ten_digits):
    """One group per patch position holding each digit's patch, or one shared group holding every
    (position, digit) patch: one-hot responses rebuild the digits through fold, overlaps
    averaged, exactly."""
    images, _, _ = ten_digits
    x = images.astype(np.float64) / 255.0
    for size, stride in ((10, 6), (16, 4), (14, 14)):
        patches = unfold(x, size, stride)  # [10, G, P]
        g = patches.shape[1]
        grouped = patches.transpose(1, 2, 0)  # [G, P, Ng=10]: neuron j of group g = digit j
        counts = np.tile(np.eye(10), (1, g))  # digit m fires neuron m in every group
        layout = Layout(784, size, stride, g * 10)
        np.testing.assert_allclose(reconstruct(counts, grouped, layout), x, atol=1e-12)
        shared = patches.transpose(2, 1, 0).reshape(1, size * size, g * 10)  # neuron (g, m)
        counts = np.zeros((10, g, g * 10))
        for m in range(10):
            counts[m, np.arange(g), np.arange(g) * 10 + m] = 1.0
        out = reconstruct(counts.reshape(10, -1), shared, Layout(784, size, stride, g * 10, True))
        np.testing.assert_allclose(out, x, atol=1e-12)


def test_reconstruct_refuses_counts_that_do_not_fit_the_model():
    with pytest.raises(PipelineError, match="do not fit"):
        reconstruct(np.ones((2, 5)), np.ones((784, 4)))
    with pytest.raises(PipelineError, match="do not fit this network's layout"):
        reconstruct(np.ones((2, 5)), np.ones((3, 100, 5)), Layout(784, 10, 6, 80))
    with pytest.raises(PipelineError, match="spike counts of shape \\[2, 5\\] do not fit"):
        reconstruct(np.ones((2, 5)), np.ones((16, 100, 5)), Layout(784, 10, 6, 80))


def test_rescale_modes():
    """range: darkest 0, brightest 1; max: brightest 1; lsq: undoes an affine change exactly;
    a constant reconstruction (no spikes) is blank."""
    rng = np.random.default_rng(0)
    x = rng.random((4, 28, 28))
    raw = 7.0 * x + 2.0
    np.testing.assert_allclose(rescale(raw, scale="range"), (x - x.min((1, 2), keepdims=True))
                               / np.ptp(x, axis=(1, 2), keepdims=True), atol=1e-12)  # fmt: skip
    assert np.allclose(rescale(raw, scale="max").max(axis=(1, 2)), 1.0)
    np.testing.assert_allclose(rescale(raw, x, scale="lsq"), x, atol=1e-12)
    blank = rescale(np.full((2, 28, 28), 3.0), scale="range")
    assert not blank.any()
    with pytest.raises(PipelineError, match="--scale"):
        rescale(raw, scale="loud")


def test_error_table_and_digit_picking():
    """Per-class rows, an overall row weighted by digit, and a baseline of the mean image."""
    originals = np.zeros((4, 28, 28))
    originals[:, :14] = 1.0
    images = originals.copy()
    images[3] = 0.0  # one digit entirely wrong: MSE 0.5
    table = error_table(images, originals, np.array([0, 0, 1, 1]))
    assert list(table["class"]) == ["0", "1", "all"]
    np.testing.assert_allclose(table["mse"], [0.0, 0.25, 0.125])
    np.testing.assert_allclose(table["mse_mean_image"], 0.0)
    assert list(table["digits"]) == [2, 2, 4]
    assert pick_digits(np.array([3, 3, 1, 0, 1, 0]), 4).tolist() == [3, 2, 0, 5]


def test_reconstruct_needs_the_evaluate_stage(tmp_path, ten_digits):
    images, labels, indices = ten_digits
    weights = np.zeros((784, 10), np.float32)
    run = _fake_run(tmp_path / "r", weights, None, images, labels, indices, stages=("train",))
    with pytest.raises(PipelineError, match="no 'evaluate' stage yet"):
        run_reconstruct(run)
