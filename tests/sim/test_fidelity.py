"""The switches that follow the authors' code (issue: faithful Diehl & Cook): forward-Euler
conductances, the membrane during the refractory period, the simulated rest with the per-sample
state carried over, input delays with trace STDP seen through them, the initial weights and
voltages. Each is checked against a dense numpy reference written from the documented semantics
(float64, one synapse at a time where delays are involved)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf
from bases import DC100

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import data
from stdp_pipeline.io.config import load_config
from stdp_pipeline.sim import delays as delay_mod
from stdp_pipeline.sim.network import SLOT_WIDTHS, SpikingNetwork
from stdp_pipeline.sim.neurons import conductance
from stdp_pipeline.sim.present import respond, train_chunk

P, N = 784, 10


def _config(*overrides: str):
    base = [
        "network.n_excitatory=10",
        "encoding.presentation_ms=100",
        "encoding.max_retries=0",
        "encoding.min_spikes=0",
        "excitatory.tau_theta_ms=2000",
        "trace_stdp.nu_pre=0.01",
        "trace_stdp.nu_post=0.05",
    ]
    return load_config(DC100, [*base, *overrides])


@pytest.fixture(scope="module")
def digits(mnist_dir):
    ds = data.load_split("mnist", "train", mnist_dir)
    return ds.images[:8].reshape(8, -1)


# ------------------------------------------------------------------------------------------------
# dense numpy reference
def _step(s, p, dt, thr, block_ms, euler, hold, membrane="euler"):
    v, ge, gi, since = s
    refractory = since < p.refractory_ms
    if membrane == "exponential":  # relax toward v_inf with the conductances of the step's start
        g = 1.0 + ge + gi
        v_inf = (p.v_rest_mv + ge * p.e_exc_mv + gi * p.e_inh_mv) / g
        dv = (v_inf - v) * (1.0 - np.exp(-g * dt / p.tau_mem_ms))
    else:
        dv = ((p.v_rest_mv - v) + ge * (p.e_exc_mv - v) + gi * (p.e_inh_mv - v)) * (
            dt / p.tau_mem_ms
        )
    v = np.where(refractory, v, v + dv) if hold else v + dv
    if euler:
        ge, gi = ge * (1 - dt / p.tau_ge_ms), gi * (1 - dt / p.tau_gi_ms)
    else:
        ge, gi = ge * math.exp(-dt / p.tau_ge_ms), gi * math.exp(-dt / p.tau_gi_ms)
    since = since + dt
    fired = (v > thr) & (since >= max(block_ms, p.refractory_ms))
    v = np.where(fired, p.v_reset_mv, v)
    since = np.where(fired, 0.0, since)
    return [v, ge, gi, since], fired


def reference(cfg, w0, theta0, presentations, delays=None):
    """Learning presentations in sequence (trace STDP, whole digits), as the authors' code runs
    them. ``presentations``: slots ``[T, K]`` each (``P`` = empty); ``delays`` ``[P, N]`` steps or
    None. Returns (weights, theta, counts per presentation, final state dict)."""
    e, inh, enc, net, tr = cfg.excitatory, cfg.inhibitory, cfg.encoding, cfg.network, cfg.trace_stdp
    dt, n = enc.dt_ms, w0.shape[1]
    d = np.zeros((P, n), np.int64) if delays is None else delays
    h = int(d.max()) + 1 if delays is not None else 1
    if delays is not None:
        h = cfg.input_delay_steps()
    simulate = enc.rest == "simulate"
    rest_steps = int(round(enc.rest_ms / dt)) if simulate else 0
    after = max(h - 1, rest_steps)
    w = w0.astype(np.float64)
    theta = theta0.astype(np.float64)

    def fresh(p, offset):
        return [np.full(n, p.v_rest_mv + offset), np.zeros(n), np.zeros(n), np.full(n, 1e9)]

    exc = fresh(e, e.v_init_offset_mv if simulate else 0.0)
    inh_s = fresh(inh, inh.v_init_offset_mv if simulate else 0.0)
    post1, post2 = np.zeros(n), np.zeros(n)
    spikes_at: dict[int, list[float]] = {}  # pixel -> spike times (ms, absolute)
    clock = 0.0  # ms at the start of the presentation
    counts = []
    for slots in presentations:
        if not simulate:
            exc, inh_s = fresh(e, 0.0), fresh(inh, 0.0)
            post1, post2 = np.zeros(n), np.zeros(n)
            spikes_at = {}
        w = w * (cfg.learning.weight_sum / w.sum(axis=0, keepdims=True))
        steps = slots.shape[0] + after
        pending = np.zeros((steps + h, n))
        p1hist = np.zeros((steps, n))
        count = np.zeros(n, np.int64)
        for t in range(steps):
            idx = slots[t][slots[t] < P] if t < slots.shape[0] else np.zeros(0, np.int64)
            for i in idx:  # drive, with the weight at emission, arrives d steps later
                pending[t + d[i], np.arange(n)] += w[i]
            thr = e.v_thresh_mv - e.theta_offset_mv + theta
            exc, s_e = _step(
                exc, e, dt, thr, e.spike_block_ms, e.integration == "euler",
                e.refractory_v == "hold", e.membrane,
            )  # fmt: skip
            exc[1] = exc[1] + pending[t]
            inh_s, s_i = _step(
                inh_s, inh, dt, inh.v_thresh_mv, 0.0, inh.integration == "euler",
                inh.refractory_v == "hold", inh.membrane,
            )  # fmt: skip
            inh_s[1] = inh_s[1] + net.exc_to_inh_weight * s_e
            exc[2] = exc[2] + net.inh_to_exc_weight * (s_i.sum() - s_i)
            theta = theta * math.exp(-dt / e.tau_theta_ms) + e.theta_plus_mv * s_e
            post1 = post1 * math.exp(-dt / tr.tau_post1_ms)
            post2 = post2 * math.exp(-dt / tr.tau_post2_ms)
            p1hist[t] = post1
            now = clock + t * dt
            for i in np.unique(idx):
                spikes_at.setdefault(int(i), []).append(now)
            em = t - (h - 1)  # depression of the spikes emitted h - 1 steps ago
            if 0 <= em < slots.shape[0]:
                for i in np.unique(slots[em][slots[em] < P]):
                    p1 = p1hist[em + d[i], np.arange(n)]
                    w[i] = np.clip(w[i] - tr.nu_pre * p1, 0.0, cfg.learning.w_max)
            for j in np.flatnonzero(s_e):
                pre = np.zeros(P)
                for i, times in spikes_at.items():
                    seen = now - d[i, j] * dt  # the pre trace d steps in the past
                    past = [s for s in times if s <= seen + 1e-9]
                    if past:
                        pre[i] = math.exp(-(seen - past[-1]) / tr.tau_pre_ms)
                w[:, j] = np.clip(w[:, j] + tr.nu_post * pre * post2[j], 0.0, cfg.learning.w_max)
            post1 = np.where(s_e, 1.0, post1)
            post2 = np.where(s_e, 1.0, post2)
            if t < slots.shape[0]:
                count += s_e
        counts.append(count)
        clock += steps * dt
        if not simulate:
            theta = theta * math.exp(-(enc.rest_ms - (h - 1) * dt) / e.tau_theta_ms)
    state = {"v_exc": exc[0], "post1": post1, "post2": post2, "since": exc[3]}
    return w, theta, counts, state


def _slots(net, image, index):
    slots, _, busiest = net.input_slots(
        tf.constant(image[None], tf.uint8), tf.constant([index], tf.int32), tf.constant(0), "train"
    )
    slots = slots.numpy()[0]
    width = next(w for w in SLOT_WIDTHS if w >= int(busiest.numpy()[0]))
    padded = np.full((slots.shape[0], width), P, np.int32)
    k = min(width, slots.shape[1])
    padded[:, :k] = slots[:, :k]
    return padded


def _net(cfg, seed=1):
    net = SpikingNetwork(cfg)
    rng = np.random.default_rng(seed)
    net.set_state(
        {
            "weights": rng.uniform(0.0, 0.3, (P, N)).astype(np.float32),
            "theta": rng.uniform(12.0, 18.0, N).astype(np.float32),
        }
    )
    return net


def _learn(net, presentations):
    """Learning presentations one after another, on the network's training engine."""
    learner = net.native_learner()
    if learner is not None:
        learner.pull()
        counts = [learner.present(slots) for slots in presentations]
        learner.push()
        return counts
    counts = []
    for slots in presentations:
        counts.append(net.learning_program(slots.shape[1])(tf.constant(slots)).numpy())
    return counts


# ------------------------------------------------------------------------------------------------
def test_euler_and_exact_conductance_decay_by_hand():
    """Forward Euler at 0.5 ms: ge halves and gi keeps 3/4 per step (tau 1 and 2 ms); exact:
    exp(-0.5) and exp(-0.25)."""
    base = dict(
        v_rest_mv=-65.0, v_reset_mv=-65.0, v_thresh_mv=-52.0, e_exc_mv=0.0, e_inh_mv=-100.0,
        tau_mem_ms=100.0, tau_ge_ms=1.0, tau_gi_ms=2.0, refractory_ms=5.0, block_ms=0.0,
    )  # fmt: skip
    s = conductance.State(*(tf.constant([x], tf.float32) for x in (-65.0, 1.0, 1.0, 1e9)))
    _, euler = conductance.step(conductance.Params(**base, integration="euler"), s, None, 0.0, 0.5)
    assert euler.ge.numpy()[0] == pytest.approx(0.5) and euler.gi.numpy()[0] == pytest.approx(0.75)
    _, exact = conductance.step(conductance.Params(**base), s, None, 0.0, 0.5)
    assert exact.ge.numpy()[0] == pytest.approx(math.exp(-0.5), rel=1e-6)
    assert exact.gi.numpy()[0] == pytest.approx(math.exp(-0.25), rel=1e-6)
    # the voltage step is the same forward Euler in both: dv = (0 + 1 * 65 - 35) * 0.5 / 100
    assert euler.v.numpy()[0] == pytest.approx(-65.0 + 0.15, abs=1e-5)


def test_exponential_membrane_by_hand_and_under_a_volley():
    """membrane = "exponential": v relaxes toward v_inf = (v_rest + ge e_exc + gi e_inh) / g,
    g = 1 + ge + gi, by 1 - exp(-dt g / tau_mem). Under an inhibitory volley of 30 neurons
    (gi = 30 x 17 = 510) forward Euler sends v to -154.25 mV, past e_inh = -100 mV, then above
    threshold; the exponential step stays between v and e_inh."""
    base = dict(
        v_rest_mv=-65.0, v_reset_mv=-65.0, v_thresh_mv=-52.0, e_exc_mv=0.0, e_inh_mv=-100.0,
        tau_mem_ms=100.0, tau_ge_ms=1.0, tau_gi_ms=2.0, refractory_ms=5.0, block_ms=0.0,
    )  # fmt: skip
    expo = conductance.Params(**base, membrane="exponential")
    s = conductance.State(*(tf.constant([x], tf.float32) for x in (-65.0, 2.0, 0.5, 1e9)))
    _, one = conductance.step(expo, s, None, 0.0, 0.5)
    # g = 3.5, v_inf = (-65 + 0 - 50) / 3.5 = -32.857 mV, factor 1 - exp(-0.0175) = 0.017348
    assert one.v.numpy()[0] == pytest.approx(-65.0 + (65.0 - 115.0 / 3.5) * 0.0173478, abs=1e-4)
    assert one.v.numpy()[0] == pytest.approx(-64.44237, abs=1e-4)  # Euler: -64.4375

    volley = conductance.State(*(tf.constant([x], tf.float32) for x in (-65.0, 0.0, 510.0, 1e9)))
    _, fwd = conductance.step(conductance.Params(**base), volley, None, 0.0, 0.5)
    assert fwd.v.numpy()[0] == pytest.approx(-65.0 + 0.005 * 510.0 * -35.0, abs=1e-3)  # -154.25
    _, exp_ = conductance.step(expo, volley, None, 0.0, 0.5)
    v_inf = (-65.0 - 51000.0) / 511.0
    want = v_inf + (-65.0 - v_inf) * math.exp(-0.005 * 511.0)
    assert exp_.v.numpy()[0] == pytest.approx(want, abs=1e-3)  # -97.36 mV
    assert -100.0 < exp_.v.numpy()[0] < -65.0
    # the next step forward Euler bounces from -154 mV to -46 mV, above a fresh neuron's
    # threshold (-52 mV): the inhibited neuron fires. The exponential step keeps it near e_inh.
    fired_fwd, fwd2 = conductance.step(conductance.Params(**base), fwd, None, -52.0, 0.5)
    fired_exp, exp2 = conductance.step(expo, exp_, None, -52.0, 0.5)
    assert fired_fwd.numpy()[0] == 1.0 and fired_exp.numpy()[0] == 0.0
    assert -100.0 < exp2.v.numpy()[0] < -95.0


def test_refractory_membrane_held_or_integrating():
    """1 ms after a spike (refractory 5 ms): "hold" keeps v at reset, "integrate" moves it by the
    Euler step, and neither may fire."""
    base = dict(
        v_rest_mv=-65.0, v_reset_mv=-65.0, v_thresh_mv=-72.0, e_exc_mv=0.0, e_inh_mv=-100.0,
        tau_mem_ms=100.0, tau_ge_ms=1.0, tau_gi_ms=2.0, refractory_ms=5.0, block_ms=0.0,
    )  # fmt: skip
    s = conductance.State(*(tf.constant([x], tf.float32) for x in (-65.0, 2.0, 0.0, 1.0)))
    f_hold, hold = conductance.step(conductance.Params(**base), s, None, -72.0, 0.5)
    p_int = conductance.Params(**base, hold_v=False)
    f_int, integ = conductance.step(p_int, s, None, -72.0, 0.5)
    assert hold.v.numpy()[0] == -65.0 and f_hold.numpy()[0] == 0.0
    assert integ.v.numpy()[0] == pytest.approx(-65.0 + 130.0 * 0.005, abs=1e-5)  # above -72
    assert f_int.numpy()[0] == 0.0


def test_switches_validated_in_one_line():
    cfg = load_config(DC100, ["excitatory.integration=euler", "encoding.dt_ms=2"])
    with pytest.raises(PipelineError, match=r"excitatory.integration = 'euler' with encoding"):
        conductance.params(cfg, "excitatory")
    with pytest.raises(PipelineError, match="must be one of|must be"):
        load_config(DC100, ["excitatory.integration=rk4"])
    with pytest.raises(PipelineError, match="learning.w_init_min = 0.5: must be <="):
        load_config(DC100, ["learning.w_init_min=0.5"])
    with pytest.raises(PipelineError, match="v_init_offset_mv = -40.0: the initial voltage"):
        SpikingNetwork(_config("excitatory.v_init_offset_mv=-40"))
    with pytest.raises(PipelineError, match="built for learning.rule = 'trace'"):
        SpikingNetwork(_config("network.input_delay_max_ms=10", "learning.rule=event"))
    with pytest.raises(PipelineError, match="built for whole digits"):
        SpikingNetwork(
            _config(
                "network.input_delay_max_ms=10",
                "network.n_excitatory=40",
                "encoding.patch_size_px=14",
                "encoding.patch_stride_px=14",
            )  # fmt: skip
        )
    with pytest.raises(PipelineError, match="a simulated rest must be at least"):
        SpikingNetwork(
            _config("network.input_delay_max_ms=10", "encoding.rest=simulate", "encoding.rest_ms=5")
        )


def test_initial_weights_follow_w_init_min():
    """The authors' (U + 0.01) * 0.3: weights in [0.003, 0.303), uniform."""
    net = SpikingNetwork(_config("learning.w_init_min=0.003", "learning.w_init_max=0.303"))
    w = net.weights.numpy()
    assert w.min() >= 0.003 and w.max() < 0.303
    assert w.min() < 0.004 and w.max() > 0.302
    assert abs(w.mean() - 0.153) < 0.002


@pytest.mark.parametrize(
    "switches",
    [
        ["excitatory.integration=euler", "inhibitory.integration=euler"],
        ["excitatory.refractory_v=integrate", "excitatory.spike_block_ms=0"],
        ["excitatory.membrane=exponential", "inhibitory.membrane=exponential"],
    ],
    ids=["euler", "integrate", "exponential"],
)
def test_neuron_switches_in_a_learning_presentation_equal_reference(digits, switches):
    cfg = _config(*switches)
    net = _net(cfg)
    before = net.get_state()
    slots = _slots(net, digits[0], 0)
    (count,) = _learn(net, [slots])
    w_ref, theta_ref, (count_ref,), _ = reference(cfg, before["weights"], before["theta"], [slots])
    np.testing.assert_array_equal(count, count_ref)
    assert count.sum() >= 3
    np.testing.assert_allclose(net.theta.numpy(), theta_ref, rtol=1e-5)
    np.testing.assert_allclose(net.weights.numpy(), w_ref, rtol=1e-5, atol=1e-6)


def test_simulated_rest_carries_state_and_equals_reference(digits):
    """encoding.rest = "simulate": three presentations in a row, each starting where the last one's
    rest (40 ms, learning on) left the voltages and traces; the first from v_rest - 40 mV."""
    cfg = _config(
        "encoding.rest=simulate", "encoding.rest_ms=40",
        "excitatory.v_init_offset_mv=-40", "inhibitory.v_init_offset_mv=-40",
    )  # fmt: skip
    net = _net(cfg)
    assert net.carried[0][0].v.numpy().max() == pytest.approx(-105.0)
    before = net.get_state()
    pres = [_slots(net, digits[i], i) for i in range(3)]
    counts = _learn(net, pres)
    w_ref, theta_ref, counts_ref, state = reference(cfg, before["weights"], before["theta"], pres)
    for c, r in zip(counts, counts_ref, strict=True):
        np.testing.assert_array_equal(c, r)
    assert sum(c.sum() for c in counts) >= 6
    np.testing.assert_allclose(net.theta.numpy(), theta_ref, rtol=1e-5)
    np.testing.assert_allclose(net.weights.numpy(), w_ref, rtol=1e-5, atol=1e-6)
    (exc, _), rule_state = net.carried
    np.testing.assert_allclose(exc.v.numpy()[0], state["v_exc"], rtol=1e-5)
    np.testing.assert_allclose(rule_state.post2.numpy()[0], state["post2"], rtol=1e-4, atol=1e-7)
    # the carried voltage is not rest: 40 ms is too short to relax from the last inhibition
    assert np.abs(exc.v.numpy() - cfg.excitatory.v_rest_mv).max() > 1.0
    # input spike times are kept relative to the next presentation: all before its start
    last = rule_state.last_pre.numpy()[:-1]
    assert last.max() <= -40.0 and last.max() > -140.0


def _delayed_learning_equals_reference(cfg, digits, presentations: int):
    """``presentations`` learning presentations with input delays, on the config's training
    engine, against the per-synapse reference: the same spikes, theta and weights to float32
    rounding. Returns the network and the reference's final state."""
    net = _net(cfg)
    d = net.delays.numpy()[:-1]
    before = net.get_state()
    pres = [_slots(net, digits[i], i) for i in range(presentations)]
    counts = _learn(net, pres)
    w_ref, theta_ref, counts_ref, state = reference(
        cfg, before["weights"], before["theta"], pres, delays=d
    )
    for c, r in zip(counts, counts_ref, strict=True):
        np.testing.assert_array_equal(c, r)
    assert sum(c.sum() for c in counts) >= 6
    np.testing.assert_allclose(net.theta.numpy(), theta_ref, rtol=1e-5)
    np.testing.assert_allclose(net.weights.numpy(), w_ref, rtol=1e-5, atol=1e-6)
    return net, state


def test_native_delays_with_simulated_rest_equal_reference(digits):
    """The native engine with input delays up to 4 ms and the simulated rest: three presentations
    in a row, delayed spikes of one presentation arriving in its rest and the last input spike
    times carried to the next, against the per-synapse reference."""
    cfg = _config(
        "network.input_delay_max_ms=4", "encoding.rest=simulate", "encoding.rest_ms=40",
        "excitatory.v_init_offset_mv=-40", "inhibitory.v_init_offset_mv=-40", "train.engine=native",
    )  # fmt: skip
    net, state = _delayed_learning_equals_reference(cfg, digits, 3)
    (exc, _), rule_state = net.carried
    np.testing.assert_allclose(exc.v.numpy()[0], state["v_exc"], rtol=1e-5)
    np.testing.assert_allclose(rule_state.post2.numpy()[0], state["post2"], rtol=1e-4, atol=1e-7)
    last = rule_state.last_pre.numpy()[:-1]
    assert last.max() <= -40.0 and last.max() > -140.0


def test_input_delays_drawn_from_the_seed():
    cfg = _config("network.input_delay_max_ms=10")
    assert cfg.input_delay_steps() == 20
    d = delay_mod.draw(cfg, P, N).numpy()
    assert d.shape == (P + 1, N) and (d[-1] == 0).all()
    assert d.min() == 0 and d.max() == 19
    counts = np.bincount(d[:-1].ravel(), minlength=20)
    assert counts.min() > 0.6 * counts.mean()  # uniform over the 20 steps
    np.testing.assert_array_equal(d, delay_mod.draw(cfg, P, N).numpy())
    other = _config("network.input_delay_max_ms=10", "seed=5")
    assert (delay_mod.draw(other, P, N).numpy() != d).mean() > 0.9


@pytest.mark.parametrize("engine", ["xla", "native"])
def test_delayed_learning_presentation_equals_reference(digits, engine):
    """Input delays up to 4 ms: drive, depression with post1 at arrival and potentiation with the
    pre trace read d steps in the past, against the per-synapse reference (on each engine)."""
    cfg = _config("network.input_delay_max_ms=4", f"train.engine={engine}")
    net, _ = _delayed_learning_equals_reference(cfg, digits, 2)
    assert net.delays.numpy()[:-1].max() == 7


def test_delayed_inference_currents_and_counts(digits):
    """With learning off the delayed currents are the per-synapse shifted sums; responses equal
    the reference's counts with learning switched off (nu = 0, theta frozen)."""
    cfg = _config(
        "network.input_delay_max_ms=4", "trace_stdp.nu_pre=0", "trace_stdp.nu_post=0",
        "excitatory.theta_plus_mv=0", "excitatory.tau_theta_ms=1e9", "encoding.rest_ms=0",
    )  # fmt: skip
    net = _net(cfg, seed=3)
    w = net.weights.numpy() * (78.0 / net.weights.numpy().sum(axis=0))
    net.weights.assign(w)
    d = net.delays.numpy()[:-1]
    counts, _ = respond(net, digits[:2], np.array([0, 1]), "train")
    for b in range(2):
        slots = _slots(net, digits[b], b)
        _, _, (want,), _ = reference(cfg, w, net.theta.numpy(), [slots], delays=d)
        np.testing.assert_array_equal(counts[b], want)
    assert counts.sum() > 0
    # the currents: a spike of pixel i at step t reaches neuron j at step t + d[i, j]
    slots = _slots(net, digits[0], 0)
    cur = net.input_currents(
        tf.constant(digits[:1]), tf.constant([0], tf.int32), tf.constant(0), "train"
    ).numpy()[0, :, 0]
    want = np.zeros_like(cur)
    for t in range(slots.shape[0]):
        for i in slots[t][slots[t] < P]:
            for j in range(N):
                if t + d[i, j] < slots.shape[0]:
                    want[t + d[i, j], j] += w[i, j]
    np.testing.assert_allclose(cur, want, rtol=1e-5, atol=1e-6)


def test_delayed_inference_batches_on_two_threads(mnist_dir, monkeypatch):
    """Regression: batches of delayed inference computed at once on two threads (as assign and
    evaluate do) once collided inside TensorFlow (AlreadyExistsError on a graph optimiser's
    temporary variable) at 100 neurons and batches of 20 digits. The counts do not depend on
    the batch size or on the threads."""
    from stdp_pipeline.sim import present

    images = data.load_split("mnist", "train", mnist_dir).images[:100].reshape(100, -1)
    cfg = load_config(DC100, ["network.input_delay_max_ms=10",
                                         "evaluate.batch_digits=20"])  # fmt: skip
    net = SpikingNetwork(cfg)
    monkeypatch.setattr(present, "inference_workers", lambda: 2)
    counts, _ = respond(net, images, np.arange(100), "assign")
    assert counts.sum() > 100
    monkeypatch.setattr(present, "inference_workers", lambda: 1)
    monkeypatch.setattr(present, "inference_batch_size", lambda net: 100)
    alone, _ = respond(net, images, np.arange(100), "assign")
    np.testing.assert_array_equal(counts, alone)


def test_training_with_every_switch_runs_and_is_deterministic(digits):
    """The original flavour's switches together, through the training driver (retries on), on
    the native engine (the compiled program's switches are checked against the reference
    above)."""
    sets = [
        "train.engine=native",
        "excitatory.integration=euler", "inhibitory.integration=euler",
        "excitatory.spike_block_ms=0", "encoding.rest=simulate", "network.input_delay_max_ms=10",
        "learning.w_init_min=0.003", "learning.w_init_max=0.303", "encoding.max_retries=3",
        "encoding.min_spikes=5", "excitatory.v_init_offset_mv=-40",
        "inhibitory.v_init_offset_mv=-40",
    ]  # fmt: skip
    runs = []
    for _ in range(2):
        net = SpikingNetwork(_config(*sets))
        stats = train_chunk(net, digits[:4], np.arange(4))
        runs.append((stats.spikes, net.weights.numpy()))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][0].sum() > 0
