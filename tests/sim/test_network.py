"""The spiking network on tiny configs: learned-state invariance, determinism, batch and chunk
independence, retries, and the event-driven presentation against a slow dense numpy reference."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import math
import types

import numpy as np
import pytest
import tensorflow as tf
from bases import DC100

from stdp_pipeline.io import data
from stdp_pipeline.io.config import load_config
from stdp_pipeline.sim.network import SLOT_WIDTHS, SpikingNetwork
from stdp_pipeline.sim.present import chunk_inputs, present, respond, train_chunk

P = 784
#: the native training engine: tests of the training driver run without an XLA compile per network
NATIVE = "train.engine=native"


def _config(*overrides: str):
    base = ["network.n_excitatory=10", "encoding.presentation_ms=50", "encoding.max_retries=2"]
    return load_config(DC100, [*base, *overrides])


@pytest.fixture(scope="module")
def digits(mnist_dir):
    """The first 16 MNIST training digits, flattened to [16, 784] uint8."""
    ds = data.load_split("mnist", "train", mnist_dir)
    return ds.images[:16].reshape(16, -1)


# ------------------------------------------------------------------------------------------------
# dense numpy reference of one presentation (float64), written from the documented semantics
def _cond_step(v, ge, gi, since, p, dt, thr, block_ms):
    """Diehl & Cook conductance neuron, one step (forward Euler v, exact decay of ge and gi)."""
    refractory = since < p.refractory_ms
    dv = ((p.v_rest_mv - v) + ge * (p.e_exc_mv - v) + gi * (p.e_inh_mv - v)) * (dt / p.tau_mem_ms)
    v = np.where(refractory, v, v + dv)
    ge = ge * np.exp(-dt / p.tau_ge_ms)
    gi = gi * np.exp(-dt / p.tau_gi_ms)
    since = since + dt
    fired = (v > thr) & (since >= max(block_ms, p.refractory_ms))
    v = np.where(fired, p.v_reset_mv, v)
    since = np.where(fired, 0.0, since)
    return v, ge, gi, since, fired


def reference_presentation(cfg, w0, theta0, slots, *, learn=True):
    """One presentation of ``slots`` ``[T, K]`` (``P`` = empty) for conductance neurons.

    learn=True: columns normalised first; per step t: (1) excitatory step with threshold
    v_thresh - theta_offset + theta, (2) ge_exc += W rows of this step's inputs (read before this
    step's depression), (3) inhibitory step, one-to-one and hollow wiring, (4) theta decay and
    jump, (5) post traces decay, (6) depression of this step's input rows by nu_pre * post1,
    (7) last pre time of those inputs <- t dt, (8) column update of each neuron that fired, then
    post traces set to 1; theta decays over rest_ms at the end. learn=False: weights and theta
    fixed (inference). Returns (weights, theta, counts)."""
    e, inh, enc, net = cfg.excitatory, cfg.inhibitory, cfg.encoding, cfg.network
    # the shared learning keys and both rules' own sections, as one namespace
    lc = types.SimpleNamespace(
        **dataclasses.asdict(cfg.learning),
        **dataclasses.asdict(cfg.trace_stdp),
        **dataclasses.asdict(cfg.event_stdp),
    )
    dt, n = enc.dt_ms, w0.shape[1]
    w = w0.astype(np.float64)
    if learn and lc.weight_sum > 0:
        w = w * (lc.weight_sum / np.maximum(w.sum(axis=0, keepdims=True), 1e-12))
    theta = theta0.astype(np.float64)
    ve, ge_e, gi_e, since_e = np.full(n, e.v_rest_mv), np.zeros(n), np.zeros(n), np.full(n, 1e9)
    vi, ge_i, gi_i, since_i = np.full(n, inh.v_rest_mv), np.zeros(n), np.zeros(n), np.full(n, 1e9)
    post1, post2 = np.zeros(n), np.zeros(n)
    last_pre = np.full(w.shape[0], -np.inf)
    count = np.zeros(n, np.int64)
    for t in range(slots.shape[0]):
        idx = slots[t][slots[t] < w.shape[0]]
        now = t * dt
        thr = e.v_thresh_mv - e.theta_offset_mv + theta
        ve, ge_e, gi_e, since_e, s_e = _cond_step(
            ve, ge_e, gi_e, since_e, e, dt, thr, e.spike_block_ms
        )
        ge_e = ge_e + w[idx].sum(axis=0)  # a slot counted as often as it appears
        if net.inhibition:
            vi, ge_i, gi_i, since_i, s_i = _cond_step(
                vi, ge_i, gi_i, since_i, inh, dt, inh.v_thresh_mv, 0.0
            )
            ge_i = ge_i + net.exc_to_inh_weight * s_e
            gi_e = gi_e + net.inh_to_exc_weight * (s_i.sum() - s_i)
        count += s_e
        if not learn:
            continue
        theta = theta * math.exp(-dt / e.tau_theta_ms) + e.theta_plus_mv * s_e
        uniq = np.unique(idx)
        if lc.rule == "trace":
            post1 = post1 * math.exp(-dt / lc.tau_post1_ms)
            post2 = post2 * math.exp(-dt / lc.tau_post2_ms)
            w[uniq] = np.clip(w[uniq] - lc.nu_pre * post1[None, :], 0.0, lc.w_max)
        last_pre[uniq] = now
        for j in np.flatnonzero(s_e):
            col = w[:, j]
            if lc.rule == "trace":
                pre = np.exp((last_pre - now) / lc.tau_pre_ms)
                col = col + lc.nu_post * pre * post2[j]
            else:
                recent = (now - last_pre < lc.event_window_ms).astype(np.float64)
                col = col + lc.eta * (
                    recent * lc.a_plus * (lc.w_max - col * (1 + lc.lambda_))
                    - (1 - recent) * lc.a_minus * col * (1 + lc.lambda_)
                )
            w[:, j] = np.clip(col, 0.0, lc.w_max)
        if lc.rule == "trace":
            post1 = np.where(s_e, 1.0, post1)
            post2 = np.where(s_e, 1.0, post2)
    if learn and enc.rest_ms > 0:
        theta = theta * math.exp(-enc.rest_ms / e.tau_theta_ms)
    return w, theta, count


def _one_presentation(net, image, index, stage="train"):
    """Slots [T, K] of one digit and the narrowest compiled width that holds them."""
    slots, _, busiest = net.input_slots(
        tf.constant(image[None], tf.uint8), tf.constant([index], tf.int32), tf.constant(0), stage
    )
    slots = slots.numpy()[0]
    width = next(w for w in SLOT_WIDTHS if w >= int(busiest.numpy()[0]))
    padded = np.full((slots.shape[0], width), P, np.int32)
    k = min(width, slots.shape[1])
    padded[:, :k] = slots[:, :k]
    assert (slots[:, k:] == P).all()
    return padded


def assert_equals_reference(cfg, before, after, count, slots) -> np.ndarray:
    """A learning presentation of ``slots`` took the learned state ``before`` to ``after`` with
    spike counts ``count``: the same as :func:`reference_presentation` (counts exactly, theta and
    weights to float32 rounding), and the check could fail (neurons fired, some more than once,
    and learning moved every firing neuron's weights). Returns the normalised weights the
    presentation started from."""
    w_ref, theta_ref, count_ref = reference_presentation(
        cfg, before["weights"], before["theta"], slots
    )
    np.testing.assert_array_equal(count, count_ref)
    np.testing.assert_allclose(after["theta"], theta_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after["weights"], w_ref, rtol=1e-5, atol=1e-6)
    assert count.sum() >= 3 and count.max() >= 2
    normalised = before["weights"] * (78.0 / before["weights"].sum(axis=0))
    moved = np.abs(after["weights"] - normalised)
    assert moved.max() > 0.01
    assert (moved[:, count > 0].max(axis=0) > 1e-3).all()
    return normalised


LEARN_CASES = {
    "trace": ["learning.rule=trace", "trace_stdp.nu_pre=0.01", "trace_stdp.nu_post=0.05"],
    "event": ["learning.rule=event", "event_stdp.eta=0.05"],
}


@pytest.mark.parametrize("rule", sorted(LEARN_CASES))
def test_event_driven_presentation_equals_dense_reference(digits, rule):
    """One learning presentation (compiled, event-driven) equals the dense numpy reference."""
    cfg = _config(
        "encoding.presentation_ms=350",
        "excitatory.tau_theta_ms=2000",  # visible theta decay, over the steps and over rest_ms
        *LEARN_CASES[rule],
    )
    net = SpikingNetwork(cfg)
    rng = np.random.default_rng(1)
    net.set_state(
        {
            "weights": rng.uniform(0.0, 0.3, (P, 10)).astype(np.float32),
            "theta": rng.uniform(15.0, 20.0, 10).astype(np.float32),
        }
    )
    before = net.get_state()
    slots = _one_presentation(net, digits[0], 0)
    count = net.learning_program(slots.shape[1])(tf.constant(slots)).numpy()
    after = net.get_state()

    normalised = assert_equals_reference(cfg, before, after, count, slots)
    fired = count > 0
    if rule == "event":  # only firing neurons' columns change
        np.testing.assert_allclose(after["weights"][:, ~fired], normalised[:, ~fired], rtol=1e-6)


def test_inference_equals_dense_reference(digits):
    """respond (batched, learning off) gives the counts of the numpy reference without learning."""
    cfg = _config(
        "encoding.presentation_ms=200", "encoding.min_spikes=0", "evaluate.batch_digits=2"
    )
    net = SpikingNetwork(cfg)
    rng = np.random.default_rng(2)
    w = rng.uniform(0.0, 0.3, (P, 10)).astype(np.float32)
    w *= 78.0 / w.sum(axis=0)
    theta = rng.uniform(14.0, 20.0, 10).astype(np.float32)
    net.set_state({"weights": w, "theta": theta})
    counts, retries = respond(net, digits[:2], np.array([3, 4]), "evaluate")
    assert (retries == 0).all()
    for b, index in enumerate([3, 4]):
        slots = _one_presentation(net, digits[b], index, stage="evaluate")
        _, _, want = reference_presentation(cfg, w, theta, slots, learn=False)
        np.testing.assert_array_equal(counts[b], want)
    assert counts.sum() > 0


def test_inference_inhibition_is_its_own_setting(digits):
    """evaluate.inh_to_exc_weight sets the hollow inhibition of inference alone: respond gives the
    numpy reference's counts with that weight, more spikes than with the trained 17, and
    learning is untouched by it (bit-identical weights and theta)."""
    base = ["encoding.presentation_ms=200", "encoding.min_spikes=0", "evaluate.batch_digits=2"]
    weak = SpikingNetwork(_config(*base, "evaluate.inh_to_exc_weight=2"))
    strong = SpikingNetwork(_config(*base))
    rng = np.random.default_rng(3)
    w = rng.uniform(0.0, 0.3, (P, 10)).astype(np.float32)
    w *= 78.0 / w.sum(axis=0)
    theta = rng.uniform(8.0, 12.0, 10).astype(np.float32)
    for net in (weak, strong):
        net.set_state({"weights": w, "theta": theta})
    idx = np.array([5, 6])
    c_weak, _ = respond(weak, digits[:2], idx, "evaluate")
    c_strong, _ = respond(strong, digits[:2], idx, "evaluate")
    ref_cfg = _config(*base, "network.inh_to_exc_weight=2")
    for b, index in enumerate(idx):
        slots = _one_presentation(weak, digits[b], index, stage="evaluate")
        np.testing.assert_array_equal(
            c_weak[b], reference_presentation(ref_cfg, w, theta, slots, learn=False)[2]
        )
        np.testing.assert_array_equal(
            c_strong[b], reference_presentation(strong.config, w, theta, slots, learn=False)[2]
        )
    assert c_weak.sum() > c_strong.sum() > 0
    # training reads network.inh_to_exc_weight only
    a, b = SpikingNetwork(_config()), SpikingNetwork(_config("evaluate.inh_to_exc_weight=2"))
    for net in (a, b):
        train_chunk(net, digits[:3], np.arange(3))
    assert np.array_equal(a.weights.numpy(), b.weights.numpy())
    assert np.array_equal(a.theta.numpy(), b.theta.numpy())


def test_present_without_learning_leaves_learned_state_bit_identical(digits):
    """present(learn=False) returns counts [B, N] and leaves weights and theta untouched."""
    net = SpikingNetwork(_config("evaluate.batch_digits=4"))
    rng = np.random.default_rng(0)
    net.set_state(
        {
            "weights": rng.uniform(0.0, 0.3, (P, 10)).astype(np.float32),
            "theta": rng.uniform(10.0, 20.0, 10).astype(np.float32),
        }
    )
    before = net.get_state()
    counts = present(net, digits[:6], np.arange(6), learn=False, stage="assign")
    after = net.get_state()
    assert counts.shape == (6, 10)
    assert counts.sum() > 0
    assert np.array_equal(before["weights"], after["weights"])
    assert np.array_equal(before["theta"], after["theta"])
    with pytest.raises(ValueError, match="train"):
        present(net, digits[:1], np.arange(1), learn=True, stage="assign")


def test_same_seed_same_weights_different_seed_different_weights(digits):
    """Two fresh networks with one seed learn identical weights; another seed's input differs.
    On the native engine: the driver's property, without a compile per network."""
    idx = np.arange(3)
    a, b = SpikingNetwork(_config(NATIVE)), SpikingNetwork(_config(NATIVE))
    c = SpikingNetwork(_config("seed=1", NATIVE))
    c.set_state(a.get_state())  # same start: only the input spikes differ
    for net in (a, b, c):
        train_chunk(net, digits[:3], idx)
    sa, sb, sc = a.get_state(), b.get_state(), c.get_state()
    assert np.array_equal(sa["weights"], sb["weights"])
    assert np.array_equal(sa["theta"], sb["theta"])
    assert not np.array_equal(sa["weights"], sc["weights"])
    fresh = SpikingNetwork(_config(NATIVE)).get_state()
    assert not np.array_equal(
        fresh["weights"], SpikingNetwork(_config("seed=1", NATIVE)).weights.numpy()
    )
    # initial state: weights uniform in [0, w_init_max], theta = theta_init_mv
    w0 = fresh["weights"]
    assert w0.shape == (P, 10) and w0.min() >= 0.0 and w0.max() <= 0.3
    assert abs(w0.mean() - 0.15) < 0.01
    np.testing.assert_array_equal(fresh["theta"], np.full(10, 20.0, np.float32))


def test_chunking_does_not_matter(digits):
    """Training on 6 digits in one call equals two calls of 3 (bit-identical weights and theta).
    On the native engine: the driver's property, without a compile per network."""
    one, two = SpikingNetwork(_config(NATIVE)), SpikingNetwork(_config(NATIVE))
    s1 = train_chunk(one, digits[:6], np.arange(6))
    s2a = train_chunk(two, digits[:3], np.arange(3))
    s2b = train_chunk(two, digits[3:6], np.arange(3, 6))
    assert np.array_equal(one.weights.numpy(), two.weights.numpy())
    assert np.array_equal(one.theta.numpy(), two.theta.numpy())
    np.testing.assert_array_equal(s1.spikes, np.concatenate([s2a.spikes, s2b.spikes]))
    np.testing.assert_array_equal(s1.retries, np.concatenate([s2a.retries, s2b.retries]))


def test_inputs_drawn_beforehand_change_nothing(digits):
    """The training stage draws a chunk's input spikes on another thread, from another moment's
    network state: training on them is bit-identical to drawing them inside train_chunk, and a
    wrong-sized draw is refused. On the
    native engine: the driver's property, without a compile per network."""
    inline, ahead = SpikingNetwork(_config(NATIVE)), SpikingNetwork(_config(NATIVE))
    train_chunk(inline, digits[:3], np.arange(3))
    train_chunk(ahead, digits[:3], np.arange(3))
    # drawn before the first chunk trained, on a worker thread, for pass 1
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        drawn = pool.submit(
            chunk_inputs, SpikingNetwork(_config(NATIVE)), digits[3:7], np.arange(3, 7), 1
        )
        a = train_chunk(inline, digits[3:7], np.arange(3, 7), epoch=1)
        b = train_chunk(ahead, digits[3:7], np.arange(3, 7), epoch=1, inputs=drawn.result())
    assert a.spikes.sum() > 0
    for field in ("spikes", "retries", "dropped", "neuron_spikes"):
        np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
    assert np.array_equal(inline.weights.numpy(), ahead.weights.numpy())
    assert np.array_equal(inline.theta.numpy(), ahead.theta.numpy())
    # the spikes given are the spikes shown: pass 0's spikes give another result
    other = chunk_inputs(ahead, digits[3:7], np.arange(3, 7), 0)
    assert not np.array_equal(other.slots, drawn.result().slots)
    shown = SpikingNetwork(_config(NATIVE))
    train_chunk(shown, digits[:3], np.arange(3))
    c = train_chunk(shown, digits[3:7], np.arange(3, 7), epoch=1, inputs=other)
    assert not np.array_equal(c.neuron_spikes, a.neuron_spikes)
    with pytest.raises(ValueError, match="inputs hold 4 digits, the chunk 3"):
        train_chunk(ahead, digits[3:6], np.arange(3, 6), inputs=drawn.result())


def test_inference_counts_do_not_depend_on_the_batch(digits):
    """A digit's counts from respond are the same in a batch of 1 and in a batch of 8."""
    net1 = SpikingNetwork(_config("evaluate.batch_digits=1"))
    net8 = SpikingNetwork(_config("evaluate.batch_digits=8"))
    idx = np.arange(20, 28)
    c1, r1 = respond(net1, digits[:8], idx, "evaluate")
    c8, r8 = respond(net8, digits[:8], idx, "evaluate")
    np.testing.assert_array_equal(c1, c8)
    np.testing.assert_array_equal(r1, r8)
    assert c1.sum() > 0
    # a digit alone in a batch of 8 (padded) also gets the same counts
    alone, _ = respond(net8, digits[5:6], idx[5:6], "evaluate")
    np.testing.assert_array_equal(alone[0], c8[5])


def test_inference_batch_size_caps():
    """At most evaluate.batch_digits digits, at most BATCH_NEURONS neurons, at least one."""
    from stdp_pipeline.sim.present import BATCH_NEURONS, inference_batch_size

    def size(n, *more):
        cfg = load_config(DC100, [f"network.n_excitatory={n}", *more])
        return inference_batch_size(SpikingNetwork(cfg))

    assert BATCH_NEURONS == 8192
    assert (size(100), size(400), size(1600), size(6400), size(9000)) == (81, 20, 5, 1, 1)
    assert size(400, "evaluate.batch_digits=4") == 4


def test_quiet_digit_is_retried(digits):
    """A nearly blank digit with min_spikes large is shown again at raised rates (max_retries)."""
    net = SpikingNetwork(_config("encoding.min_spikes=1000", "encoding.max_retries=2"))
    faint = np.zeros((1, P), np.uint8)
    faint[0, 400:403] = 255
    stats = train_chunk(net, faint, np.array([0]))
    assert stats.retries[0] == 2
    _, retries = respond(net, faint, np.array([0]), "evaluate")
    assert retries[0] == 2
    loud = SpikingNetwork(_config("encoding.min_spikes=0"))
    assert train_chunk(loud, digits[:1], np.array([0])).retries[0] == 0


def test_theta_decays_at_the_model_rate_over_many_presentations():
    """With tau_theta = 1e7 ms the per-step decay (1 - 5e-8) is below float32's resolution;
    over 200 blank presentations theta must still fall by exactly exp(-200 * 500 ms / 1e7 ms)."""
    cfg = load_config(DC100, ["network.n_excitatory=4", "encoding.min_spikes=0"])
    net = SpikingNetwork(cfg)
    blank = np.zeros((200, 784), np.uint8)
    train_chunk(net, blank, np.arange(200))
    want = 20.0 * math.exp(-200 * (350.0 + 150.0) / 1e7)
    np.testing.assert_allclose(net.theta.numpy(), want, rtol=2e-6)
    assert abs(want - 20.0) > 0.01  # the decay is far larger than the tolerance
