"""The slides' current LIF neuron (:mod:`stdp_pipeline.sim.neurons.current_lif`) against
trajectories written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.sim.neurons import current_lif

CUR = current_lif.Params(
    tau_mem_ms=10.0, leak=1.0, resistance=1.0, refractory_ms=0.0, threshold=0.3
)


def _run(p, current, thr, steps, dt=1.0):
    s = current_lif.init(p, [1])
    vs, spikes = [], []
    for _ in range(steps):
        spk, s = current_lif.step(p, s, tf.constant([current]), thr, dt)
        vs.append(float(s.v[0]))
        spikes.append(float(spk[0]))
    return np.array(vs), np.array(spikes)


def test_step_pinned_trajectory():
    """v <- v + dt/tau (-leak v + R I), dt/tau = 0.1, I = 1: 0.1, 0.19, 0.271, spike, reset 0."""
    vs, spikes = _run(CUR, 1.0, 0.3, 8)
    # 0.271 + 0.1 * (1 - 0.271) = 0.3439 > 0.3: spike, reset to 0
    np.testing.assert_allclose(vs, [0.1, 0.19, 0.271, 0.0, 0.1, 0.19, 0.271, 0.0], atol=1e-6)
    np.testing.assert_array_equal(spikes, [0, 0, 0, 1, 0, 0, 0, 1])


def test_step_leak_resistance_and_refractory():
    """Leak and R enter as written; after a spike v is held at 0 for refractory_ms."""
    p = CUR._replace(leak=0.5, resistance=2.0, refractory_ms=2.0)
    vs, spikes = _run(p, 1.0, 0.5, 10)
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


def test_init_is_rest_with_nothing_pending():
    """v = 0, long since the last spike, no pending current or inhibition."""
    s = current_lif.init(CUR, [2, 3])
    assert s.v.shape == (2, 3)
    np.testing.assert_array_equal(s.v.numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(s.pending_current.numpy(), np.zeros((2, 3)))
    np.testing.assert_array_equal(s.pending_inhibition.numpy(), np.zeros((2, 3)))
    assert (s.since_spike_ms.numpy() >= 1e8).all()


def test_adaptation_jump_and_decay():
    """thr <- thr - alpha thr + beta S over five steps; unchanged over the rest."""
    p = CUR._replace(thr_alpha=0.1, thr_beta=0.5)
    adapt = current_lif.adaptation(p, 1.0, 5, 100.0)
    thr0 = tf.constant([0.0, 1.0])
    thr = adapt.start(thr0)
    got = []
    for t, s in enumerate([1.0, 0.0, 0.0, 1.0, 0.0]):
        assert adapt.at(thr, thr0, tf.constant(t)) is thr
        thr = adapt.spiked(thr, tf.constant([s, 0.0]), tf.constant(t))
        got.append(thr.numpy())
    got = np.array(got)
    np.testing.assert_allclose(got[:, 0], [0.5, 0.45, 0.405, 0.8645, 0.77805], rtol=1e-6)
    np.testing.assert_allclose(got[:, 1], 0.9 ** np.arange(1, 6), rtol=1e-6)
    np.testing.assert_array_equal(adapt.end(thr, thr0).numpy(), got[-1])


def test_receive_excitation_becomes_next_steps_current():
    """An excitatory input w becomes the pending current w * tau / dt, which a layer without
    drive integrates on its next step: from v = 0, dt/tau * R * w * tau/dt = R w, over the
    threshold in one step. A layer with drive ignores the pending current."""
    p = CUR._replace(threshold=0.5, resistance=2.0)
    s = current_lif.init(p, [3])
    s = current_lif.receive(p, s, tf.constant([0.3, 0.2, 0.0]), None, 1.0)
    np.testing.assert_allclose(s.pending_current.numpy(), [3.0, 2.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(s.v.numpy(), [0.0, 0.0, 0.0])  # nothing moves on receipt
    spk, s1 = current_lif.step(p, s, None, 0.5, 1.0)
    # v = 0.1 * 2 * 3 = 0.6 > 0.5: spike, reset; 0.1 * 2 * 2 = 0.4: below; 0: nothing
    np.testing.assert_array_equal(spk.numpy(), [1.0, 0.0, 0.0])
    np.testing.assert_allclose(s1.v.numpy(), [0.0, 0.4, 0.0], rtol=1e-6)
    # with dt = 0.5 the pending current doubles and v still moves by R w
    s = current_lif.receive(p, current_lif.init(p, [1]), tf.constant([0.2]), None, 0.5)
    np.testing.assert_allclose(s.pending_current.numpy(), [4.0], rtol=1e-6)
    _, s = current_lif.step(p, s, None, 0.5, 0.5)
    np.testing.assert_allclose(s.v.numpy(), [0.4], rtol=1e-6)
    # drive given: the pending current is not used
    s = current_lif.receive(p, current_lif.init(p, [1]), tf.constant([0.3]), None, 1.0)
    spk, s = current_lif.step(p, s, tf.constant([0.0]), 0.5, 1.0)
    assert float(spk[0]) == 0.0 and float(s.v[0]) == 0.0


def test_receive_inhibition_is_subtracted_one_step_later():
    """The inhibition received after step t is subtracted from v after step t + 1 (the pending
    inhibition of the previous step is subtracted at each receipt)."""
    p = CUR
    s = current_lif.init(p, [2])._replace(v=tf.constant([0.25, 0.25]))
    s = current_lif.receive(p, s, None, tf.constant([0.2, 0.0]), 1.0)
    np.testing.assert_allclose(s.v.numpy(), [0.25, 0.25])  # not yet
    np.testing.assert_allclose(s.pending_inhibition.numpy(), [0.2, 0.0])
    _, s = current_lif.step(p, s, tf.constant([0.0, 0.0]), 0.3, 1.0)
    np.testing.assert_allclose(s.v.numpy(), [0.225, 0.225], rtol=1e-6)  # leak only
    s = current_lif.receive(p, s, None, tf.constant([0.0, 0.1]), 1.0)
    np.testing.assert_allclose(s.v.numpy(), [0.025, 0.225], rtol=1e-5)
    np.testing.assert_allclose(s.pending_inhibition.numpy(), [0.0, 0.1])
    _, s = current_lif.step(p, s, tf.constant([0.0, 0.0]), 0.3, 1.0)
    s = current_lif.receive(p, s, None, tf.constant([0.0, 0.0]), 1.0)
    np.testing.assert_allclose(s.v.numpy(), [0.0225, 0.2025 - 0.1], rtol=1e-5)
    # exc None and inh None: nothing changes
    assert current_lif.receive(p, s, None, None, 1.0) is s


def test_params_from_the_config_section():
    """Both layers come from ``current_lif``: the excitatory one adapts, the inhibitory one has
    threshold inh_thr, no refractory period and no adaptation."""
    config = ExperimentConfig().with_overrides(
        ["current_lif.thr_alpha=0.01", "current_lif.thr_init=0.05", "current_lif.inh_thr=0.7"]
    )
    pe = current_lif.params(config, "excitatory")
    assert pe == current_lif.Params(100.0, 1.0, 1.0, 5.0, 0.2, 0.05, 0.01, 0.002)
    pi = current_lif.params(config, "inhibitory")
    assert pi == current_lif.Params(100.0, 1.0, 1.0, 0.0, 0.7, 0.0, 0.0, 0.0)
    assert current_lif.base_threshold(pe) == 0.2
    assert current_lif.base_threshold(pi) == 0.7
    assert current_lif.theta_init(pe) == 0.05
    assert set(current_lif.SECTIONS) == {"current_lif"}
