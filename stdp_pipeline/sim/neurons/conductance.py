"""Diehl & Cook's (2015) conductance-based LIF neuron with an adaptive threshold.

Per step of ``dt`` (Brian's order: integrate, threshold, reset; synaptic input arrives after the
step and acts from the next one)::

    tau_mem dv/dt = (v_rest - v) + ge (e_exc - v) + gi (e_inh - v)
    v <- v + dt / tau_mem * (right-hand side)                          (membrane = "euler")
    v <- v_inf + (v - v_inf) exp(-dt g / tau_mem),  g = 1 + ge + gi,
         v_inf = (v_rest + ge e_exc + gi e_inh) / g                    (membrane = "exponential")
    ge <- ge exp(-dt / tau_ge);  gi <- gi exp(-dt / tau_gi)             (integration = "exact")
    ge <- ge (1 - dt / tau_ge);  gi <- gi (1 - dt / tau_gi)             (integration = "euler")
    spike if v > v_thresh + theta and not refractory and not blocked
    then v <- v_reset, held for refractory_ms; no new spike for block_ms
    ge += drive + exc;  gi += inh                                      (after the step)

``membrane = "exponential"`` is exact for conductances held over the step (exponential Euler): ``v``
relaxes toward the conductance-weighted mean of the reversal potentials and can never pass one.
Forward Euler on ``v`` (the papers' and Brian's choice) overshoots once ``dt (ge + gi) / tau_mem``
exceeds 1: at 0.5 ms and ``tau_mem`` = 100 ms, 12 inhibitory neurons firing in one step (17 each
through the hollow matrix) drive ``v`` below ``e_inh``, and from about 30 it bounces back above a
fresh neuron's threshold the step after (-65 -> -154 -> -46 mV): every neuron the volley was meant
to silence fires, and the next volley is larger. Networks of 100 or 400 neurons rarely fire such a
volley; at 1,600 neurons it happens within the first digits and the network degenerates.

``integration = "euler"`` is what Brian 1 does with the authors' equations (they are nonlinear in
``v``, so the whole system, conductances included, is stepped by forward Euler: at 0.5 ms ``ge``
halves per step and ``gi`` falls by a quarter, where the exact decay keeps 61 % and 78 %).
``refractory_v = "integrate"`` keeps integrating ``v`` during the refractory period (only spiking is
blocked); ``"hold"`` clamps it at ``v_reset``, as Brian 1's refractoriness (and the authors' custom
refractoriness of the excitatory group) does.

Adaptive threshold (excitatory neurons, learned): ``dtheta/dt = -theta / tau_theta``, and
``theta += theta_plus`` at each spike; it decays over the rest between digits too.

Units: ms and mV; conductances are dimensionless multiples of the leak. Config sections:
``excitatory`` and ``inhibitory``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from stdp_pipeline._tf import tf
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.params import Section, num

if TYPE_CHECKING:
    from stdp_pipeline.io.config import ExperimentConfig


@dataclass(frozen=True)
class ExcitatoryConfig(Section):
    """Diehl & Cook's conductance-based excitatory neuron with adaptive threshold ``theta``.

    ``tau_mem dv/dt = (v_rest - v) + ge (e_exc - v) + gi (e_inh - v)``; ``dge/dt = -ge / tau_ge``,
    ``dgi/dt = -gi / tau_gi``. Spike when ``v > v_thresh - theta_offset + theta`` and the neuron
    has not spiked for ``spike_block_ms``; then ``v <- v_reset`` (clamped for ``refractory_ms``
    with ``refractory_v = "hold"``) and ``theta <- theta + theta_plus``;
    ``dtheta/dt = -theta / tau_theta`` while learning. ``integration``: ``"exact"`` decays the
    conductances by ``exp(-dt / tau)`` per step, ``"euler"`` by ``1 - dt / tau`` (Brian 1's forward
    Euler, as in the authors' code). ``v_init_offset_mv``: the voltage of a new network relative
    to ``v_rest_mv`` (the authors start at -40 mV from rest); it matters only when the per-sample
    state is carried from digit to digit (``encoding.rest = "simulate"``), otherwise every
    presentation starts at rest.
    """

    _section = "excitatory"
    v_rest_mv: float = -65.0
    v_reset_mv: float = -65.0
    v_thresh_mv: float = -52.0
    theta_offset_mv: float = num(20.0, ge=0)
    e_exc_mv: float = 0.0
    e_inh_mv: float = -100.0
    tau_mem_ms: float = num(100.0, gt=0)
    tau_ge_ms: float = num(1.0, gt=0)
    tau_gi_ms: float = num(2.0, gt=0)
    refractory_ms: float = num(5.0, ge=0)
    spike_block_ms: float = num(50.0, ge=0)
    integration: Literal["exact", "euler"] = "exact"
    membrane: Literal["euler", "exponential"] = "euler"
    refractory_v: Literal["hold", "integrate"] = "hold"
    v_init_offset_mv: float = 0.0
    theta_init_mv: float = num(20.0, ge=0)
    theta_plus_mv: float = num(0.05, ge=0)
    tau_theta_ms: float = num(1e7, gt=0)


@dataclass(frozen=True)
class InhibitoryConfig(Section):
    """Diehl & Cook's conductance-based inhibitory neuron (no adaptive threshold);
    ``integration``, ``refractory_v`` and ``v_init_offset_mv`` as for the excitatory layer."""

    _section = "inhibitory"
    v_rest_mv: float = -60.0
    v_reset_mv: float = -45.0
    v_thresh_mv: float = -40.0
    e_exc_mv: float = 0.0
    e_inh_mv: float = -85.0
    tau_mem_ms: float = num(10.0, gt=0)
    tau_ge_ms: float = num(1.0, gt=0)
    tau_gi_ms: float = num(2.0, gt=0)
    refractory_ms: float = num(2.0, ge=0)
    integration: Literal["exact", "euler"] = "exact"
    membrane: Literal["euler", "exponential"] = "euler"
    refractory_v: Literal["hold", "integrate"] = "hold"
    v_init_offset_mv: float = 0.0


def _check_euler(section: str, dt_ms: float, tau_ge_ms: float, tau_gi_ms: float) -> None:
    """Forward Euler decays by ``1 - dt / tau``: it must stay in ``[0, 1)``."""
    for key, tau in (("tau_ge_ms", tau_ge_ms), ("tau_gi_ms", tau_gi_ms)):
        if dt_ms > tau:
            raise PipelineError(
                f"{section}.integration = 'euler' with encoding.dt_ms = {dt_ms} > "
                f"{section}.{key} = {tau}: forward Euler would flip the conductance's sign; "
                "use a smaller dt_ms or integration = 'exact'"
            )


SECTIONS = {"excitatory": ExcitatoryConfig, "inhibitory": InhibitoryConfig}
THETA_UNIT = "mV"


class Params(NamedTuple):
    """Constants of one layer. ``v_thresh_mv`` is the base threshold (excitatory: ``v_thresh -
    theta_offset`` = -72 mV, to which the adaptive ``theta`` is added per neuron)."""

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
    theta_init_mv: float = 0.0
    theta_plus_mv: float = 0.0
    tau_theta_ms: float = math.inf
    integration: str = "exact"
    hold_v: bool = True
    v_init_offset_mv: float = 0.0
    membrane: str = "euler"


class State(NamedTuple):
    """Per-sample state: voltage (mV), conductances, time since the last spike (ms)."""

    v: tf.Tensor
    ge: tf.Tensor
    gi: tf.Tensor
    since_spike_ms: tf.Tensor


def params(config: ExperimentConfig, role: str) -> Params:
    """The parameters of the ``role`` layer ("excitatory" or "inhibitory") from its section."""
    dt = config.encoding.dt_ms
    if role == "excitatory":
        e = config.excitatory
        if e.integration == "euler":
            _check_euler("excitatory", dt, e.tau_ge_ms, e.tau_gi_ms)
        return Params(
            e.v_rest_mv, e.v_reset_mv, e.v_thresh_mv - e.theta_offset_mv, e.e_exc_mv,
            e.e_inh_mv, e.tau_mem_ms, e.tau_ge_ms, e.tau_gi_ms, e.refractory_ms,
            e.spike_block_ms, e.theta_init_mv, e.theta_plus_mv, e.tau_theta_ms,
            e.integration, e.refractory_v == "hold", e.v_init_offset_mv, e.membrane,
        )  # fmt: skip
    i = config.inhibitory
    if i.integration == "euler":
        _check_euler("inhibitory", dt, i.tau_ge_ms, i.tau_gi_ms)
    return Params(
        i.v_rest_mv, i.v_reset_mv, i.v_thresh_mv, i.e_exc_mv, i.e_inh_mv, i.tau_mem_ms,
        i.tau_ge_ms, i.tau_gi_ms, i.refractory_ms, 0.0, 0.0, 0.0, math.inf,
        i.integration, i.refractory_v == "hold", i.v_init_offset_mv, i.membrane,
    )  # fmt: skip


def init(p: Params, shape: Any) -> State:
    """Resting state: ``v = v_rest``, no conductance, long since the last spike."""
    return State(
        v=tf.fill(shape, tf.constant(p.v_rest_mv, tf.float32)),
        ge=tf.zeros(shape),
        gi=tf.zeros(shape),
        since_spike_ms=tf.fill(shape, tf.constant(1e9, tf.float32)),
    )


def start(p: Params, shape: Any) -> State:
    """The state of a new network whose per-sample state is carried from digit to digit:
    ``v = v_rest + v_init_offset``, no conductance, long since the last spike."""
    return State(
        v=tf.fill(shape, tf.constant(p.v_rest_mv + p.v_init_offset_mv, tf.float32)),
        ge=tf.zeros(shape),
        gi=tf.zeros(shape),
        since_spike_ms=tf.fill(shape, tf.constant(1e9, tf.float32)),
    )


def step(
    p: Params, s: State, drive: tf.Tensor | None, threshold: tf.Tensor | float, dt_ms: float
) -> tuple[tf.Tensor, State]:
    """Advance one step of ``dt_ms``; return ``(spikes, state)`` (see the module docstring).
    ``drive`` joins ``ge`` after the step."""
    refractory = s.since_spike_ms < p.refractory_ms
    if p.membrane == "exponential":
        g = 1.0 + s.ge + s.gi
        v_inf = (p.v_rest_mv + s.ge * p.e_exc_mv + s.gi * p.e_inh_mv) / g
        dv = (v_inf - s.v) * -tf.math.expm1(g * (-dt_ms / p.tau_mem_ms))
    else:
        dv = ((p.v_rest_mv - s.v) + s.ge * (p.e_exc_mv - s.v) + s.gi * (p.e_inh_mv - s.v)) * (
            dt_ms / p.tau_mem_ms
        )
    v = tf.where(refractory, s.v, s.v + dv) if p.hold_v else s.v + dv
    if p.integration == "euler":
        ge = s.ge * (1.0 - dt_ms / p.tau_ge_ms)
        gi = s.gi * (1.0 - dt_ms / p.tau_gi_ms)
    else:
        ge = s.ge * math.exp(-dt_ms / p.tau_ge_ms)
        gi = s.gi * math.exp(-dt_ms / p.tau_gi_ms)
    since = s.since_spike_ms + dt_ms
    can_fire = since >= max(p.block_ms, p.refractory_ms)
    fired = tf.logical_and(v > threshold, can_fire)
    v = tf.where(fired, tf.constant(p.v_reset_mv, tf.float32), v)
    since = tf.where(fired, tf.zeros_like(since), since)
    if drive is not None:
        ge = ge + drive
    return tf.cast(fired, tf.float32), State(v, ge, gi, since)


def receive(
    p: Params, s: State, exc: tf.Tensor | None, inh: tf.Tensor | None, dt_ms: float
) -> State:
    """Recurrent input after the step: ``ge += exc``, ``gi += inh``."""
    if exc is not None:
        s = s._replace(ge=s.ge + exc)
    if inh is not None:
        s = s._replace(gi=s.gi + inh)
    return s


def base_threshold(p: Params) -> float:
    """The threshold without theta, mV."""
    return p.v_thresh_mv


def theta_init(p: Params) -> float:
    """Theta of a new network, mV."""
    return p.theta_init_mv


def resting_potential(p: Params) -> float:
    """The voltage a neuron relaxes to without input, mV (``v_rest``)."""
    return p.v_rest_mv


def theta_hold_mv_ms(p: Params) -> float:
    """``theta_plus * tau_theta`` (mV ms): theta rises ``theta_plus`` at a spike and decays with
    ``tau_theta``, so a neuron firing ``r`` spikes per ms of simulated time (rest included)
    settles at ``theta = theta_plus * tau_theta * r``."""
    return p.theta_plus_mv * p.tau_theta_ms


class _Exact:
    """Theta carried as ``theta0`` plus scaled spike increments.

    Diehl & Cook's theta decays with tau_theta = 1e7 ms: a factor 1 - 5e-8 per 0.5 ms step, below
    float32's resolution, so a per-step multiply does not decay it at all. Instead::

        theta after step t = exp(-(t + 1) dt / tau) * (theta0 + acc_t),
        acc_t = sum over steps k <= t of theta_plus * s_k * exp((k + 1) dt / tau),

    exact in real arithmetic and accurate to an ulp in float32 at any tau. The carry is
    ``acc``."""

    #: theta = factor * (theta0 + acc): the native engine runs this form (else the stepwise one)
    exact = True

    def __init__(self, p: Params, dt_ms: float, steps: int, rest_ms: float) -> None:
        self.p, self.dt, self.steps, self.rest = p, dt_ms, steps, rest_ms

    def start(self, theta0: tf.Tensor) -> tf.Tensor:
        return tf.zeros_like(theta0)

    def at(self, carry: tf.Tensor, theta0: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        return tf.exp(-tf.cast(t, tf.float32) * (self.dt / self.p.tau_theta_ms)) * (theta0 + carry)

    def spiked(self, carry: tf.Tensor, spikes: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        grow = tf.exp(tf.cast(t + 1, tf.float32) * (self.dt / self.p.tau_theta_ms))
        return carry + self.p.theta_plus_mv * grow * spikes

    def end(self, carry: tf.Tensor, theta0: tf.Tensor) -> tf.Tensor:
        span = self.steps * self.dt + self.rest
        return math.exp(-span / self.p.tau_theta_ms) * (theta0 + carry)


class _Stepwise:
    """Theta itself carried, decayed and raised step by step (short tau_theta, where the
    growth factor of :class:`_Exact` would overflow)."""

    exact = False

    def __init__(self, p: Params, dt_ms: float, rest_ms: float) -> None:
        self.p, self.dt, self.rest = p, dt_ms, rest_ms

    def start(self, theta0: tf.Tensor) -> tf.Tensor:
        return theta0

    def at(self, carry: tf.Tensor, theta0: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        return carry

    def spiked(self, carry: tf.Tensor, spikes: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        decay = math.exp(-self.dt / self.p.tau_theta_ms)
        return carry * decay + self.p.theta_plus_mv * spikes

    def end(self, carry: tf.Tensor, theta0: tf.Tensor) -> tf.Tensor:
        if self.rest > 0:
            return carry * math.exp(-self.rest / self.p.tau_theta_ms)
        return carry


def adaptation(p: Params, dt_ms: float, steps: int, rest_ms: float) -> _Exact | _Stepwise:
    """How theta evolves through a presentation of ``steps`` steps and the rest after it."""
    if steps * dt_ms / p.tau_theta_ms < 20:
        return _Exact(p, dt_ms, steps, rest_ms)
    return _Stepwise(p, dt_ms, rest_ms)
