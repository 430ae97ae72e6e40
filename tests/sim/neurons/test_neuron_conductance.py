"""Diehl & Cook's conductance neuron (:mod:`stdp_pipeline.sim.neurons.conductance`) against
trajectories written out by hand (numpy arithmetic in the test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.sim.neurons import conductance

# Diehl & Cook's excitatory neuron; the threshold is passed to the step explicitly.
EXC = conductance.Params(
    v_rest_mv=-65.0,
    v_reset_mv=-65.0,
    v_thresh_mv=-72.0,
    e_exc_mv=0.0,
    e_inh_mv=-100.0,
    tau_mem_ms=100.0,
    tau_ge_ms=1.0,
    tau_gi_ms=2.0,
    refractory_ms=5.0,
    block_ms=50.0,
)
DT = 0.5


def _state(v, ge, gi, since=1e9):
    return conductance.State(
        tf.constant([v], tf.float32),
        tf.constant([ge], tf.float32),
        tf.constant([gi], tf.float32),
        tf.constant([since], tf.float32),
    )


def test_step_pinned_trajectory_without_spike():
    """Six steps of one neuron: forward-Euler voltage, exact exponential decay of ge and gi."""
    s = _state(-65.0, 2.0, 0.5)
    vs, ges, gis = [], [], []
    for _ in range(6):
        spk, s = conductance.step(EXC, s, None, -52.0, DT)
        assert float(spk[0]) == 0.0
        vs.append(float(s.v[0]))
        ges.append(float(s.ge[0]))
        gis.append(float(s.gi[0]))

    # first step by hand: dv = 0.5/100 * ((-65 + 65) + 2 * (0 + 65) + 0.5 * (-100 + 65)) = 0.5625
    assert vs[0] == pytest.approx(-64.4375, abs=1e-5)
    assert ges[0] == pytest.approx(2.0 * math.exp(-0.5), rel=1e-6)
    assert gis[0] == pytest.approx(0.5 * math.exp(-0.25), rel=1e-6)

    v, ge, gi = -65.0, 2.0, 0.5
    want_v, want_ge, want_gi = [], [], []
    for _ in range(6):
        v = v + DT / 100.0 * ((-65.0 - v) + ge * (0.0 - v) + gi * (-100.0 - v))
        ge, gi = ge * np.exp(-DT / 1.0), gi * np.exp(-DT / 2.0)
        want_v.append(v)
        want_ge.append(ge)
        want_gi.append(gi)
    np.testing.assert_allclose(vs, want_v, rtol=1e-6)
    np.testing.assert_allclose(ges, want_ge, rtol=1e-5)
    np.testing.assert_allclose(gis, want_gi, rtol=1e-5)


def _reference_driven(steps, thr, drive, p=EXC, dt=DT):
    """Numpy reference of one neuron given ``drive`` added to ge after every step."""
    v, ge, gi, since = p.v_rest_mv, 0.0, 0.0, 1e9
    vs, spikes = [], []
    for _ in range(steps):
        refractory = since < p.refractory_ms
        if not refractory:
            v = v + dt / p.tau_mem_ms * (
                (p.v_rest_mv - v) + ge * (p.e_exc_mv - v) + gi * (p.e_inh_mv - v)
            )
        ge, gi = ge * np.exp(-dt / p.tau_ge_ms), gi * np.exp(-dt / p.tau_gi_ms)
        since += dt
        fired = v > thr and since >= max(p.block_ms, p.refractory_ms)
        if fired:
            v, since = p.v_reset_mv, 0.0
        ge += drive
        vs.append(v)
        spikes.append(fired)
    return np.array(vs), np.array(spikes)


def _check_spike_reset_refractory_and_block(vs, spikes, thr):
    times = np.flatnonzero(spikes)
    assert len(times) >= 2
    first = times[0]
    assert vs[first - 1] <= thr  # it was below threshold just before
    # reset, then held at v_reset for refractory_ms = 10 steps
    np.testing.assert_array_equal(vs[first : first + 11], np.full(11, -65.0, np.float32))
    assert vs[first + 11] > -65.0
    # above threshold during the block but silent: the next spike is 100 steps (50 ms) later
    assert np.any(vs[first + 12 : first + 100] > thr)
    assert not spikes[first + 1 : first + 100].any()
    assert times[1] == first + 100


@pytest.mark.parametrize("how", ["by_hand", "drive"])
def test_step_spike_reset_refractory_and_block(how):
    """Spike on crossing, reset to v_reset, clamped for refractory_ms, silent for block_ms. The
    drive passed to ``step`` joins ge after the step, exactly as adding it by hand does."""
    thr, drive, steps = -60.0, 1.0, 260
    s = _state(-65.0, 0.0, 0.0)
    vs, spikes = [], []
    for _ in range(steps):
        if how == "by_hand":
            spk, s = conductance.step(EXC, s, None, thr, DT)
            s = s._replace(ge=s.ge + drive)
        else:
            spk, s = conductance.step(EXC, s, tf.constant([drive]), thr, DT)
        vs.append(float(s.v[0]))
        spikes.append(float(spk[0]))
    vs, spikes = np.array(vs), np.array(spikes) > 0
    want_v, want_s = _reference_driven(steps, thr, drive)
    np.testing.assert_array_equal(spikes, want_s)
    np.testing.assert_allclose(vs, want_v, rtol=1e-5, atol=1e-4)
    _check_spike_reset_refractory_and_block(vs, spikes, thr)


def test_step_broadcasts_thresholds_over_a_batch():
    """Shape [B, N] state with a per-neuron threshold: each element follows its own threshold."""
    p = EXC._replace(block_ms=0.0, refractory_ms=0.0)
    s = conductance.init(p, [2, 3])
    s = s._replace(ge=tf.constant([[0.0, 5.0, 5.0], [5.0, 5.0, 0.0]]))
    spk, s2 = conductance.step(p, s, None, tf.constant([-64.0, -64.9, -60.0]), DT)
    # v after one step with ge = 5: -65 + 0.005 * 5 * 65 = -63.375
    np.testing.assert_array_equal(spk.numpy(), [[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(s2.v.numpy(), [[-65.0, -65.0, -63.375], [-65.0, -65.0, -65.0]])


def test_init_is_rest():
    """Initial state: v = v_rest, no conductance, long since the last spike (can fire at once)."""
    s = conductance.init(EXC, [4])
    np.testing.assert_array_equal(s.v.numpy(), np.full(4, -65.0))
    np.testing.assert_array_equal(s.ge.numpy(), np.zeros(4))
    np.testing.assert_array_equal(s.gi.numpy(), np.zeros(4))
    assert (s.since_spike_ms.numpy() >= 50.0).all()


def test_receive_adds_to_the_conductances_after_the_step():
    """receive: ge += exc, gi += inh (None leaves a conductance alone); the input acts from the
    next step: from rest, receiving ge = 2, gi = 0.5 gives the pinned first step -64.4375 mV."""
    s = conductance.init(EXC, [1])
    spk, s = conductance.step(EXC, s, None, -52.0, DT)
    assert float(spk[0]) == 0.0 and float(s.v[0]) == -65.0  # at rest nothing moves
    s = conductance.receive(EXC, s, tf.constant([2.0]), tf.constant([0.5]), DT)
    assert float(s.ge[0]) == 2.0 and float(s.gi[0]) == 0.5
    assert float(s.v[0]) == -65.0  # the voltage does not move on receipt
    s2 = conductance.receive(EXC, s, tf.constant([1.0]), None, DT)
    assert (float(s2.ge[0]), float(s2.gi[0])) == (3.0, 0.5)
    s3 = conductance.receive(EXC, s, None, tf.constant([0.25]), DT)
    assert (float(s3.ge[0]), float(s3.gi[0])) == (2.0, 0.75)
    assert conductance.receive(EXC, s, None, None, DT) is s
    _, s = conductance.step(EXC, s, None, -52.0, DT)
    assert float(s.v[0]) == pytest.approx(-64.4375, abs=1e-5)
    assert float(s.ge[0]) == pytest.approx(2.0 * math.exp(-0.5), rel=1e-6)
    assert float(s.gi[0]) == pytest.approx(0.5 * math.exp(-0.25), rel=1e-6)


def test_params_from_the_config_sections():
    """The excitatory layer's base threshold is v_thresh - theta_offset (-72 mV) with the
    theta fields of the section; the inhibitory layer has no block and no theta."""
    config = ExperimentConfig().with_overrides(
        ["excitatory.theta_plus_mv=0.07", "excitatory.tau_theta_ms=5e6", "inhibitory.v_rest_mv=-61"]
    )
    pe = conductance.params(config, "excitatory")
    assert pe == conductance.Params(
        -65.0, -65.0, -72.0, 0.0, -100.0, 100.0, 1.0, 2.0, 5.0, 50.0, 20.0, 0.07, 5e6
    )
    pi = conductance.params(config, "inhibitory")
    assert pi == conductance.Params(-61.0, -45.0, -40.0, 0.0, -85.0, 10.0, 1.0, 2.0, 2.0, 0.0)
    assert pi.theta_plus_mv == 0.0 and pi.tau_theta_ms == math.inf
    assert conductance.base_threshold(pe) == -72.0
    assert conductance.base_threshold(pi) == -40.0
    assert conductance.theta_init(pe) == 20.0
    assert conductance.theta_init(pi) == 0.0
    assert conductance.THETA_UNIT == "mV"
    assert set(conductance.SECTIONS) == {"excitatory", "inhibitory"}


def _theta_reference(theta0, spikes, plus, tau, dt, rest):
    """float64 theta: before each step, and after the presentation and the rest."""
    theta = theta0.astype(np.float64)
    before = []
    for s in spikes:
        before.append(theta.copy())
        theta = theta * math.exp(-dt / tau) + plus * s
    return np.array(before), theta * math.exp(-rest / tau)


@pytest.mark.parametrize("tau", [10.0, 100.0, 1e7])
def test_adaptation_matches_a_float64_reference(tau):
    """Theta through 700 steps of random spikes and a 150 ms rest, against float64 numpy:
    dtheta/dt = -theta / tau_theta and theta += theta_plus at each spike. tau = 10 ms is carried
    step by step, 100 ms and Diehl & Cook's 1e7 ms by the exact scaled form; at 1e7 ms the decay
    over the presentation (a factor 1 - 5e-8 a step, invisible to a float32 multiply) shows."""
    steps, rest, plus = 700, 150.0, 0.05
    p = EXC._replace(theta_init_mv=20.0, theta_plus_mv=plus, tau_theta_ms=tau)
    rng = np.random.default_rng(int(tau) % 1000)
    spikes = (rng.random((steps, 2, 5)) < 0.02).astype(np.float32)
    theta0 = np.array([[20.0, 21.5, 19.0, 25.0, 0.0], [20.0, 30.0, 1.0, 20.0, 20.0]], np.float32)
    want_at, want_end = _theta_reference(theta0, spikes, plus, tau, DT, rest)

    adapt = conductance.adaptation(p, DT, steps, rest)
    th0 = tf.constant(theta0)
    carry = adapt.start(th0)
    got_at = []
    for t in range(steps):
        got_at.append(adapt.at(carry, th0, tf.constant(t)).numpy())
        carry = adapt.spiked(carry, tf.constant(spikes[t]), tf.constant(t))
    got_end = adapt.end(carry, th0).numpy()
    assert got_end.dtype == np.float32
    np.testing.assert_allclose(np.array(got_at), want_at, rtol=3e-6, atol=1e-6)
    np.testing.assert_allclose(got_end, want_end, rtol=3e-6, atol=1e-6)
    if tau == 1e7:
        no_decay = theta0 + plus * spikes.sum(axis=0)
        # 500 ms of decay at 1e7 ms: 5e-5 relative, 30 float32 ulps at 20 mV
        assert np.all(np.abs(got_end - no_decay)[theta0 > 10] > 5e-4)
