"""The patched event-STDP model: patch groups simulated together behave as independent networks,
the batched inference path agrees with the learning path, event STDP depresses silent inputs by
the exact factor, and the linear read-out learns from spike counts."""

from __future__ import annotations

import numpy as np
import pytest

from stdp_pipeline._tf import tf
from stdp_pipeline.geometry import patch_positions
from stdp_pipeline.io import data
from stdp_pipeline.io.config import load_config
from stdp_pipeline.sim.network import SLOT_WIDTHS, SpikingNetwork
from stdp_pipeline.sim.present import respond
from stdp_pipeline.stages.readout import fit_readout

SHORT = ["encoding.presentation_ms=150", "event_stdp.eta=0.05", "learning.weight_sum=25"]
#: The preset's first geometry (10 px at stride 6: 16 positions), which these tests are written
#: for, with the trained inhibition in inference.
GEOMETRY = [
    "encoding.patch_size_px=10",
    "encoding.patch_stride_px=6",
    "evaluate.inh_to_exc_weight=17",
]


@pytest.fixture(scope="module")
def digits(mnist_dir):
    split = data.load_split("mnist", "train", mnist_dir)
    return split.images.reshape(-1, 784)[:8], split.labels[:8]


def _patched(n=32, extra=()):
    return load_config(
        "event-stdp-patches", [f"network.n_excitatory={n}", *GEOMETRY, *SHORT, *extra]
    )


def _slots(net, image, index=0, stage="train"):
    slots, _, busiest = net.input_slots(
        tf.constant(image[None]), tf.constant([index]), tf.constant(0), stage
    )
    width = next(w for w in SLOT_WIDTHS if w >= int(busiest[0]))
    s = slots.numpy()[0]
    return np.pad(s, ((0, 0), (0, width - s.shape[1])), constant_values=784), width


def test_patched_network_layout():
    """16 positions of 10x10 patches (stride 6): weights [16, 100, Ng], counts of 16 * Ng."""
    net = SpikingNetwork(_patched(32))
    lay = net.layout
    assert (lay.n_groups, lay.patch_inputs, lay.group_size, net.n) == (16, 100, 2, 32)
    assert net.weights.shape == (16, 100, 2) and net.theta.shape == (16, 2)
    shared = SpikingNetwork(_patched(5, ["network.patch_groups=shared"]))
    assert shared.weights.shape == (1, 100, 5) and shared.n == 16 * 5


def test_groups_are_independent_networks(digits):
    """Each patch group of a jointly simulated network ends a learning presentation with the
    same weights, thresholds and spikes as a network of that group alone, fed only the pixels
    of its patch."""
    images, _ = digits
    net = SpikingNetwork(_patched(32))
    before = net.get_state()
    slots, width = _slots(net, images[0])
    counts = net.learning_program(width)(tf.constant(slots)).numpy().reshape(16, 2)
    after = net.get_state()
    assert counts.sum() > 0
    alone_cfg = load_config(
        "event-stdp-patches",
        ["network.n_excitatory=2", "encoding.patch_size_px=28", "encoding.patch_stride_px=28",
         *SHORT],
    )  # fmt: skip
    pixel_rows = np.arange(784).reshape(28, 28)
    changed = 0
    alone = SpikingNetwork(alone_cfg, n_inputs=100)  # one network (one compile), each group's state
    for g, (r, c) in enumerate(patch_positions(10, 6)):
        alone.set_state({"weights": before["weights"][g], "theta": before["theta"][g]})
        local = np.full(785, 100)
        local[pixel_rows[r : r + 10, c : c + 10].ravel()] = np.arange(100)
        got = alone.learning_program(width)(tf.constant(local[slots].astype(np.int32))).numpy()
        np.testing.assert_array_equal(got, counts[g])
        np.testing.assert_allclose(alone.weights.numpy(), after["weights"][g], rtol=0, atol=1e-7)
        np.testing.assert_allclose(alone.theta.numpy(), after["theta"][g], rtol=0, atol=1e-6)
        changed += not np.allclose(after["weights"][g], before["weights"][g])
    assert changed >= 4  # several groups learned something, so the comparison has teeth


@pytest.mark.parametrize("patched", [True, False])
def test_inference_path_equals_learning_path_without_plasticity(digits, patched):
    """With every learning rate at zero, the batched inference path (sparse segment sums of
    weight rows per patch) gives the same spike counts as the compiled learning presentation."""
    images, _ = digits
    frozen = ["event_stdp.eta=0", "excitatory.theta_plus_mv=0", "excitatory.tau_theta_ms=1e30",
              "learning.weight_sum=0", "encoding.min_spikes=0"]  # fmt: skip
    extra = [] if patched else ["encoding.patch_size_px=28", "encoding.patch_stride_px=28"]
    net = SpikingNetwork(_patched(32, [*frozen, *extra]))
    batch, _ = respond(net, images[:4], np.arange(4), "assign")
    for i in range(4):
        slots, width = _slots(net, images[i], index=i, stage="assign")
        one = net.learning_program(width)(tf.constant(slots)).numpy()
        np.testing.assert_array_equal(one, batch[i])
    assert batch.sum() > 0


def test_event_stdp_depresses_silent_inputs_by_the_exact_factor(digits):
    """Blank-pixel fix: after a presentation, the weight from a pixel that never spiked to a
    neuron that fired n times is its normalised start value times (1 - eta (1 + lambda))^n."""
    images, _ = digits
    cfg = _patched(32, ["learning.weight_sum=0"])
    net = SpikingNetwork(cfg)
    before = net.get_state()["weights"]
    slots, width = _slots(net, images[0])
    counts = net.learning_program(width)(tf.constant(slots)).numpy().reshape(16, 2)
    after = net.get_state()["weights"]
    spiked = np.zeros(785, bool)
    spiked[slots.ravel()] = True
    rule = cfg.event_stdp
    factor = 1 - rule.eta * rule.a_minus * (1 + rule.lambda_)
    pixel_rows = np.arange(784).reshape(28, 28)
    checked = 0
    for g, (r, c) in enumerate(patch_positions(10, 6)):
        silent = ~spiked[pixel_rows[r : r + 10, c : c + 10].ravel()]
        for j in range(2):
            n = int(counts[g, j])
            if n == 0 or not silent.any():
                np.testing.assert_array_equal(after[g][silent, j], before[g][silent, j])
                continue
            expected = before[g][silent, j] * factor**n
            np.testing.assert_allclose(after[g][silent, j], expected, rtol=1e-5)
            assert (after[g][silent, j] < before[g][silent, j]).all()
            checked += 1
    assert checked >= 3


def test_linear_readout_learns_and_is_deterministic():
    """The read-out separates counts whose mean depends on the class, and refits identically."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 600)
    means = rng.uniform(0, 4, (10, 30))
    counts = rng.poisson(means[labels])
    r1 = fit_readout(counts[:400], labels[:400])
    r2 = fit_readout(counts[:400], labels[:400])
    np.testing.assert_array_equal(r1.weights, r2.weights)
    accuracy = (r1.predict(counts[400:]) == labels[400:]).mean()
    assert accuracy > 0.8
    shuffled = fit_readout(counts[:400], rng.permutation(labels[:400]))
    assert (shuffled.predict(counts[400:]) == labels[400:]).mean() < 0.3
