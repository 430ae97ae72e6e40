"""Networks learning as one stack (:mod:`stdp_pipeline.sim.stack`) against the same networks
learning one by one: the same spikes, retries and thresholds, weights equal to float32 rounding
(bit for bit for a stack of one), each network with its own seed's input spikes and retries."""

from __future__ import annotations

import numpy as np
import pytest
from bases import DC100

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import data
from stdp_pipeline.io.config import load_config
from stdp_pipeline.sim.network import SpikingNetwork
from stdp_pipeline.sim.present import train_chunk, train_chunks
from stdp_pipeline.sim.stack import NetworkStack, train_stack_chunk, train_stack_chunks

SMALL = ["network.n_excitatory=10", "encoding.presentation_ms=50", "encoding.max_retries=2"]
#: whole digits, the authors' carried per-sample state, and patches with the event rule
CASES = {
    "whole digits": (DC100, SMALL),
    "simulated rest": (
        DC100,
        [*SMALL, "encoding.rest=simulate", "excitatory.v_init_offset_mv=-40"],
    ),
    "patches": (
        "event-stdp-patches",
        [
            "network.n_excitatory=8",
            "encoding.patch_size_px=16",
            "encoding.patch_stride_px=12",
            "encoding.presentation_ms=60",
            "encoding.max_retries=2",
            "learning.weight_sum=25",
        ],
    ),
}


@pytest.fixture
def one_slot_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every presentation in the widest slots: one compiled program per network or stack
    instead of one per width (results do not depend on the width: padding slots are no-ops).
    The whole-digit case keeps the real widths, where each stacked call takes the width of its
    busiest network."""
    from stdp_pipeline.sim import present, stack
    from stdp_pipeline.sim.codes.base import SLOTS

    monkeypatch.setattr(present, "SLOT_WIDTHS", (SLOTS,))
    monkeypatch.setattr(stack, "SLOT_WIDTHS", (SLOTS,))


@pytest.fixture(scope="module")
def digits(mnist_dir):
    """The first 12 MNIST training digits, flattened to [12, 784] uint8."""
    ds = data.load_split("mnist", "train", mnist_dir)
    return ds.images[:12].reshape(12, -1)


def _nets(case: str, seeds, *extra: str) -> list[SpikingNetwork]:
    preset, sets = CASES[case]
    return [SpikingNetwork(load_config(preset, [*sets, *extra, f"seed={s}"])) for s in seeds]


def test_a_stack_of_one_is_the_network_bit_for_bit(digits, one_slot_width):
    """One network stacked alone learns exactly as it does alone."""
    (alone,), (stacked,) = _nets("whole digits", [3]), _nets("whole digits", [3])
    a = train_chunk(alone, digits[:4], np.arange(4))
    (b,) = train_stack_chunk(NetworkStack([stacked]), digits[:4], np.arange(4))
    assert a.spikes.sum() > 0
    for field in ("spikes", "retries", "dropped", "neuron_spikes"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert np.array_equal(alone.weights.numpy(), stacked.weights.numpy())
    assert np.array_equal(alone.theta.numpy(), stacked.theta.numpy())


@pytest.mark.parametrize(
    "case",
    [
        # 30 s (three networks, several slot widths); whole-digit stacks are also checked by
        # test_a_stack_of_one_is_the_network_bit_for_bit and, as runs, by test_stack_training.py
        pytest.param("whole digits", marks=pytest.mark.slow),
        *(case for case in CASES if case != "whole digits"),
    ],
)
def test_stacked_networks_learn_as_they_would_alone(digits, case, request):
    """Three seeds stacked: per network the spikes of every presentation, its retries (each
    network retries its own quiet digits while the others go on) and theta are those of the
    network alone; the weights agree to float32 rounding (XLA may contract a depression's
    multiply-subtract differently in the wider program)."""
    if case != "whole digits":
        request.getfixturevalue("one_slot_width")
    seeds = [0, 1, 2] if case == "whole digits" else [0, 1]
    alone, stacked = _nets(case, seeds), _nets(case, seeds)
    if case == "whole digits":  # chunks of two passes, out of order
        chunks = [(0, slice(0, 5)), (1, slice(0, 3)), (0, slice(5, 9))]
    else:
        chunks = [(0, slice(0, 4))]
    idx = np.arange(len(digits))
    one = [list(train_chunks(n, digits, idx, chunks)) for n in alone]
    together = list(train_stack_chunks(NetworkStack(stacked), digits, idx, chunks))
    assert len(together) == len(chunks)
    for k, (a_net, s_net) in enumerate(zip(alone, stacked, strict=True)):
        for c in range(len(chunks)):
            a, b = one[k][c], together[c][k]
            for field in ("spikes", "retries", "dropped", "neuron_spikes"):
                np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        np.testing.assert_allclose(s_net.weights.numpy(), a_net.weights.numpy(), rtol=0, atol=1e-6)
        np.testing.assert_array_equal(s_net.theta.numpy(), a_net.theta.numpy())
        if a_net.carried is not None:  # the per-sample state carried to the next digit
            for x, y in zip(tf_leaves(a_net.carried), tf_leaves(s_net.carried), strict=True):
                np.testing.assert_allclose(y, x, rtol=0, atol=1e-4)
    # the seeds give different networks, and the weights moved
    spikes = [np.concatenate([s.neuron_spikes for s in per_net]) for per_net in one]
    assert not np.array_equal(spikes[0], spikes[1])
    assert sum(int(s.sum()) for per_net in one for s in [per_net[0].spikes]) > 0
    fresh = _nets(case, [0])[0]
    assert np.abs(stacked[0].weights.numpy() - fresh.weights.numpy()).max() > 1e-3
    if case == "whole digits":  # the schedule made some digits retry, in one network not all
        retries = np.array([[s.retries.sum() for s in per_net] for per_net in one]).sum(1)
        assert retries.max() > 0 and retries.min() < retries.max()


def tf_leaves(structure) -> list[np.ndarray]:
    import tensorflow as tf

    return [v.numpy() for v in tf.nest.flatten(structure)]


def test_a_stack_keeps_the_state_of_networks_shown_nothing(digits):
    """A network that has finished its chunk is shown nothing: its learned state is left exactly
    as it was while the others learn."""
    nets = _nets("whole digits", [0, 1])
    stack = NetworkStack(nets)
    before = stack.weights.numpy().copy(), stack.theta.numpy().copy()
    width = 8
    slots = np.full((2, nets[0].config.encoding.steps, width), 784, np.int32)
    slots[1, :, 0] = 400  # network 1 sees a pixel on every step
    import tensorflow as tf

    stack.learning_program(width)(tf.constant(slots), tf.constant([False, True]))
    after = stack.weights.numpy(), stack.theta.numpy()
    assert np.array_equal(after[0][0], before[0][0]) and np.array_equal(after[1][0], before[1][0])
    assert not np.array_equal(after[0][1], before[0][1])


def test_only_networks_that_differ_in_their_seed_stack():
    """Configs that differ in a value, or input delays, are refused with one line."""
    a = _nets("whole digits", [0])[0]
    b = _nets("whole digits", [1], "trace_stdp.nu_post=0.02")[0]
    with pytest.raises(PipelineError, match=r"seeds 0 and 1 differ in more than the seed "
                       r"\(trace_stdp.nu_post: 0.01 -> 0.02\)"):  # fmt: skip
        NetworkStack([a, b])
    delayed = _nets("whole digits", [0, 1], "network.input_delay_max_ms=10")
    with pytest.raises(PipelineError, match="input_delay_max_ms = 10.0: networks with input"):
        NetworkStack(delayed)
    with pytest.raises(PipelineError, match="at least one network"):
        NetworkStack([])
