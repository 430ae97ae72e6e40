"""Neuron step functions against trajectories written out by hand (numpy arithmetic in the test)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from stdp_pipeline import neurons

# Diehl & Cook's excitatory neuron; the threshold is passed to the step explicitly.
EXC = neurons.ConductanceParams(
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
    return neurons.ConductanceState(
        tf.constant([v], tf.float32),
        tf.constant([ge], tf.float32),
        tf.constant([gi], tf.float32),
        tf.constant([since], tf.float32),
    )


def test_conductance_step_pinned_trajectory_without_spike():
    """Six steps of one neuron: forward-Euler voltage, exact exponential decay of ge and gi."""
    s = _state(-65.0, 2.0, 0.5)
    vs, ges, gis = [], [], []
    for _ in range(6):
        spk, s = neurons.conductance_step(s, EXC, DT, -52.0)
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


def test_conductance_step_spike_reset_refractory_and_block():
    """Spike on crossing, reset to v_reset, clamped for refractory_ms, silent for block_ms."""
    thr, drive, steps = -60.0, 1.0, 260
    s = _state(-65.0, 0.0, 0.0)
    vs, spikes = [], []
    for _ in range(steps):
        spk, s = neurons.conductance_step(s, EXC, DT, thr)
        s = s._replace(ge=s.ge + drive)
        vs.append(float(s.v[0]))
        spikes.append(float(spk[0]))
    vs, spikes = np.array(vs), np.array(spikes) > 0
    want_v, want_s = _reference_driven(steps, thr, drive)
    np.testing.assert_array_equal(spikes, want_s)
    np.testing.assert_allclose(vs, want_v, rtol=1e-5, atol=1e-4)

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


def test_conductance_step_broadcasts_thresholds_over_a_batch():
    """Shape [B, N] state with a per-neuron threshold: each element follows its own threshold."""
    p = EXC._replace(block_ms=0.0, refractory_ms=0.0)
    s = neurons.conductance_init(p, [2, 3])
    s = s._replace(ge=tf.constant([[0.0, 5.0, 5.0], [5.0, 5.0, 0.0]]))
    spk, s2 = neurons.conductance_step(s, p, DT, tf.constant([-64.0, -64.9, -60.0]))
    # v after one step with ge = 5: -65 + 0.005 * 5 * 65 = -63.375
    np.testing.assert_array_equal(spk.numpy(), [[0.0, 1.0, 0.0], [1.0, 1.0, 0.0]])
    np.testing.assert_allclose(s2.v.numpy(), [[-65.0, -65.0, -63.375], [-65.0, -65.0, -65.0]])


def test_conductance_init_is_rest():
    """Initial state: v = v_rest, no conductance, long since the last spike (can fire at once)."""
    s = neurons.conductance_init(EXC, [4])
    np.testing.assert_array_equal(s.v.numpy(), np.full(4, -65.0))
    np.testing.assert_array_equal(s.ge.numpy(), np.zeros(4))
    np.testing.assert_array_equal(s.gi.numpy(), np.zeros(4))
    assert (s.since_spike_ms.numpy() >= 50.0).all()


CUR = neurons.CurrentParams(tau_mem_ms=10.0, leak=1.0, resistance=1.0, refractory_ms=0.0)


def _run_current(p, current, thr, steps, dt=1.0):
    s = neurons.current_init([1])
    vs, spikes = [], []
    for _ in range(steps):
        spk, s = neurons.current_step(s, p, dt, tf.constant([current]), thr)
        vs.append(float(s.v[0]))
        spikes.append(float(spk[0]))
    return np.array(vs), np.array(spikes)


def test_current_step_pinned_trajectory():
    """v <- v + dt/tau (-leak v + R I), dt/tau = 0.1, I = 1: 0.1, 0.19, 0.271, spike, reset 0."""
    vs, spikes = _run_current(CUR, 1.0, 0.3, 8)
    # 0.271 + 0.1 * (1 - 0.271) = 0.3439 > 0.3: spike, reset to 0
    np.testing.assert_allclose(vs, [0.1, 0.19, 0.271, 0.0, 0.1, 0.19, 0.271, 0.0], atol=1e-6)
    np.testing.assert_array_equal(spikes, [0, 0, 0, 1, 0, 0, 0, 1])


def test_current_step_leak_resistance_and_refractory():
    """Leak and R enter as written; after a spike v is held at 0 for refractory_ms."""
    p = CUR._replace(leak=0.5, resistance=2.0, refractory_ms=2.0)
    vs, spikes = _run_current(p, 1.0, 0.5, 10)
    want, v, since = [], 0.0, 1e9
    want_s = []
    for _ in range(10):
        nv = v + 0.1 * (-0.5 * v + 2.0 * 1.0)
        nv = v if since < 2.0 else nv
        since += 1.0
        s = nv > 0.5 and since >= 2.0
        v = 0.0 if s else nv
        since = 0.0 if s else since
        want.append(v)
        want_s.append(float(s))
    # by hand: 0.2, 0.39, 0.5705 (spike) -> 0, held 0, 0, then 0.2, 0.39, 0.5705 (spike) -> 0, ...
    assert want[:7] == pytest.approx([0.2, 0.39, 0.0, 0.0, 0.0, 0.2, 0.39])
    np.testing.assert_allclose(vs, want, atol=1e-6)
    np.testing.assert_array_equal(spikes, want_s)


def test_adaptive_threshold_jump_and_decay():
    """thr <- thr - alpha thr + beta S over five steps."""
    thr = tf.constant([0.0, 1.0])
    got = []
    for s in [1.0, 0.0, 0.0, 1.0, 0.0]:
        thr = neurons.adaptive_threshold_step(thr, tf.constant([s, 0.0]), 0.1, 0.5)
        got.append(thr.numpy())
    got = np.array(got)
    np.testing.assert_allclose(got[:, 0], [0.5, 0.45, 0.405, 0.8645, 0.77805], rtol=1e-6)
    np.testing.assert_allclose(got[:, 1], 0.9 ** np.arange(1, 6), rtol=1e-6)
