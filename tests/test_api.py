"""The Python API: the same numbers as the stages (pinned run), learning on/off explicit."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from bases import DC100

import stdp_pipeline as sp


def _hash(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:16]


@pytest.fixture(scope="module")
def mnist(mnist_dir):
    return sp.load_digits("mnist", "train", str(mnist_dir)), sp.load_digits(
        "mnist", "test", str(mnist_dir)
    )


def test_api_reproduces_the_pinned_stage_run(mnist):
    """train / assign / evaluate on arrays give the weights and accuracies that the CLI stages
    give for the same digits (tests/stages/test_pinned.py): the stages are built on these calls.
    assign and evaluate leave the learned state bit-identical."""
    train, test = mnist
    net = sp.build_network(DC100)
    stats = sp.train(net, train.images[:500], progress=False)
    assert stats.spikes.shape == (500,) and stats.spikes.mean() > 5
    assert _hash(net.weights.numpy()) == "15bb4f11ebf0c41c"
    assert _hash(net.theta.numpy()) == "84b6a801725fc259"
    before = net.get_state()
    assignment = sp.assign(
        net, train.images[500:800], train.labels[500:800], np.arange(500, 800), progress=False
    )
    scores = sp.evaluate(net, assignment, test.images[:300], test.labels[:300], progress=False)
    assert scores["accuracy"] == {
        "all_activity": 166 / 300,
        "proportion": 170 / 300,
        "linear": 186 / 300,
    }
    assert scores["counts"].shape == (300, 100)
    after = net.get_state()
    assert np.array_equal(before["weights"], after["weights"])
    assert np.array_equal(before["theta"], after["theta"])
    fields = sp.receptive_fields(net)
    assert fields.shape == (100, 28, 28)
    np.testing.assert_array_equal(fields[7], net.weights.numpy()[:, 7].reshape(28, 28))


def test_present_learning_explicit_and_fields_of_patched_models(mnist):
    """present(learn=True) changes the weights, learn=False does not; patched receptive fields
    come out as patch-sized images, one per neuron (separate) or per group neuron (shared)."""
    train, _ = mnist
    cfg = ["network.n_excitatory=32", "encoding.presentation_ms=100"]
    cfg += ["encoding.patch_size_px=10", "encoding.patch_stride_px=6"]
    net = sp.build_network("event-stdp-patches", cfg)
    w0 = net.weights.numpy().copy()
    counts = sp.present(net, train.images[:3], learn=False, stage="assign")
    assert counts.shape == (3, 32)
    assert np.array_equal(net.weights.numpy(), w0)
    spikes = sp.present(net, train.images[:3], learn=True, stage="train")
    assert spikes.shape == (3,)
    assert not np.array_equal(net.weights.numpy(), w0)
    fields = sp.receptive_fields(net)
    assert fields.shape == (32, 10, 10)
    np.testing.assert_array_equal(fields[2 * 2 + 1], net.weights.numpy()[2, :, 1].reshape(10, 10))
    shared = sp.build_network("event-stdp-patches", [*cfg, "network.patch_groups=shared"])
    assert sp.receptive_fields(shared).shape == (32, 10, 10)
    with pytest.raises(ValueError, match="train"):
        sp.present(net, train.images[:1], learn=True, stage="assign")
