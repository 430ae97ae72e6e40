"""Neuron models as pure step functions: ``step(state, input, params, dt) -> (spikes, new_state)``.

Nothing here owns a variable: state and parameters are explicit tensors and NamedTuples, so the
same function serves a single digit ``[N]`` or a batch ``[B, N]`` (shapes broadcast) and runs
inside a compiled loop. Units: ms and mV; conductances are dimensionless multiples of the leak.

Two models:

* :func:`conductance_step`, Diehl & Cook (2015)::

      tau_mem dv/dt = (v_rest - v) + ge (e_exc - v) + gi (e_inh - v)      (forward Euler, dt)
      ge <- ge exp(-dt / tau_ge);  gi <- gi exp(-dt / tau_gi)             (exact decay)
      spike if v > v_thresh + theta and not refractory and not blocked
      then v <- v_reset, clamped for refractory_ms; no new spike for block_ms

* :func:`current_step`, the seed slides' current-based LIF::

      v <- v + dt / tau_mem (-leak v + R I);  spike if v > thr;  v <- v (1 - S)
"""

from __future__ import annotations

import math
from typing import NamedTuple

from ._tf import tf


class ConductanceParams(NamedTuple):
    """Constants of a conductance-based layer (see module docstring). ``v_thresh_mv`` is the
    effective base threshold (Diehl & Cook: ``v_thresh - theta_offset`` = -72 mV for excitatory
    neurons, whose adaptive ``theta`` is added per neuron)."""

    v_rest_mv: float
    v_reset_mv: float
    v_thresh_mv: float
    e_exc_mv: float
    e_inh_mv: float
    tau_mem_ms: float
    tau_ge_ms: float
    tau_gi_ms: float
    refractory_ms: float
    block_ms: float


class ConductanceState(NamedTuple):
    """Per-sample state: voltage (mV), conductances, time since the last spike (ms)."""

    v: tf.Tensor
    ge: tf.Tensor
    gi: tf.Tensor
    since_spike_ms: tf.Tensor


def conductance_init(p: ConductanceParams, shape: tf.TensorShape | list[int]) -> ConductanceState:
    """Resting state: ``v = v_rest``, no conductance, long since the last spike."""
    return ConductanceState(
        v=tf.fill(shape, tf.constant(p.v_rest_mv, tf.float32)),
        ge=tf.zeros(shape),
        gi=tf.zeros(shape),
        since_spike_ms=tf.fill(shape, tf.constant(1e9, tf.float32)),
    )


def conductance_step(
    s: ConductanceState, p: ConductanceParams, dt_ms: float, threshold_mv: tf.Tensor | float
) -> tuple[tf.Tensor, ConductanceState]:
    """Advance one step of ``dt_ms``; return ``(spikes, state)`` with spikes as float32 0/1.

    ``threshold_mv`` is the full threshold (``v_thresh_mv`` plus theta), broadcast to ``v``.
    Synaptic input is added by the caller to ``ge``/``gi`` after the step (spikes of step ``t``
    act from step ``t + 1``), as in Brian's update order.
    """
    refractory = s.since_spike_ms < p.refractory_ms
    dv = ((p.v_rest_mv - s.v) + s.ge * (p.e_exc_mv - s.v) + s.gi * (p.e_inh_mv - s.v)) * (
        dt_ms / p.tau_mem_ms
    )
    v = tf.where(refractory, s.v, s.v + dv)
    ge = s.ge * math.exp(-dt_ms / p.tau_ge_ms)
    gi = s.gi * math.exp(-dt_ms / p.tau_gi_ms)
    since = s.since_spike_ms + dt_ms
    can_fire = since >= max(p.block_ms, p.refractory_ms)
    fired = tf.logical_and(v > threshold_mv, can_fire)
    v = tf.where(fired, tf.constant(p.v_reset_mv, tf.float32), v)
    since = tf.where(fired, tf.zeros_like(since), since)
    return tf.cast(fired, tf.float32), ConductanceState(v, ge, gi, since)


class CurrentParams(NamedTuple):
    """Constants of the current-based LIF layer of the seed slides."""

    tau_mem_ms: float
    leak: float
    resistance: float
    refractory_ms: float


class CurrentState(NamedTuple):
    """Per-sample state: voltage (arbitrary units) and time since the last spike (ms)."""

    v: tf.Tensor
    since_spike_ms: tf.Tensor


def current_init(shape: tf.TensorShape | list[int]) -> CurrentState:
    """Resting state ``v = 0``."""
    return CurrentState(tf.zeros(shape), tf.fill(shape, tf.constant(1e9, tf.float32)))


def current_step(
    s: CurrentState,
    p: CurrentParams,
    dt_ms: float,
    current: tf.Tensor,
    threshold: tf.Tensor | float,
) -> tuple[tf.Tensor, CurrentState]:
    """``v <- v + dt/tau (-leak v + R I)`` (held during refractoriness); spike when
    ``v > threshold``; reset ``v <- v (1 - S)``. Returns ``(spikes, state)``."""
    refractory = s.since_spike_ms < p.refractory_ms
    v = s.v + (dt_ms / p.tau_mem_ms) * (-p.leak * s.v + p.resistance * current)
    v = tf.where(refractory, s.v, v)
    since = s.since_spike_ms + dt_ms
    spikes = tf.cast(tf.logical_and(v > threshold, since >= p.refractory_ms), tf.float32)
    v = v * (1.0 - spikes)
    since = since * (1.0 - spikes)
    return spikes, CurrentState(v, since)


def adaptive_threshold_step(
    thr: tf.Tensor, spikes: tf.Tensor, alpha: float, beta: float
) -> tf.Tensor:
    """The slides' adaptive threshold: ``thr <- thr - alpha * thr + beta * S`` (per step)."""
    return thr - alpha * thr + beta * spikes
