"""The seed slides' current-based LIF neuron with an adaptive threshold.

Per step of ``dt`` (``I``: the summed weight of this step's input spikes, an instantaneous
current; arbitrary voltage units)::

    v <- v + dt / tau_mem (-leak v + R I)        (held during the refractory period)
    spike if v > thr_base + thr;  then v <- 0, held for refractory_ms

Recurrent input arrives after the step: an excitatory spike (one-to-one, onto the inhibitory
layer) becomes the current ``w * tau_mem / dt`` of the next step, enough to cross threshold in
one step; an inhibitory spike (hollow, onto the excitatory layer) subtracts ``w`` from the
voltage one step later.

Adaptive threshold (excitatory neurons, learned), per step: ``thr <- thr - alpha thr + beta S``.
Config section: ``current_lif``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from stdp_pipeline._tf import tf
from stdp_pipeline.params import Section, num

if TYPE_CHECKING:
    from stdp_pipeline.io.config import ExperimentConfig


@dataclass(frozen=True)
class CurrentLifConfig(Section):
    """The seed slides' current-based LIF layer (used when ``network.neuron = "current"``).

    Per step of ``dt``: ``v <- v + dt / tau_mem * (-leak * v + resistance * I)`` where ``I`` is the
    summed weight of the input spikes of the step (instantaneous current); spike when
    ``v > thr_base + thr``; reset ``v <- 0`` (clamped for ``refractory_ms``); adaptive threshold
    ``thr <- thr - thr_alpha * thr + thr_beta * S``. Inhibitory neurons are the same layer without
    adaptation, threshold ``inh_thr``; an inhibitory spike subtracts
    ``network.inh_to_exc_weight`` from the voltage of every excitatory neuron but its partner.
    """

    _section = "current_lif"
    tau_mem_ms: float = num(100.0, gt=0)
    leak: float = num(1.0, ge=0)
    resistance: float = num(1.0, gt=0)
    thr_base: float = num(0.2, gt=0)
    thr_init: float = num(0.0, ge=0)
    thr_alpha: float = num(0.0, ge=0, lt=1)
    thr_beta: float = num(0.002, ge=0)
    refractory_ms: float = num(5.0, ge=0)
    inh_thr: float = num(0.5, gt=0)


SECTIONS = {"current_lif": CurrentLifConfig}
THETA_UNIT = ""


class Params(NamedTuple):
    """Constants of one layer; ``threshold`` is the base threshold (``thr_base`` for the
    excitatory layer, ``inh_thr`` for the inhibitory one)."""

    tau_mem_ms: float
    leak: float
    resistance: float
    refractory_ms: float
    threshold: float
    thr_init: float = 0.0
    thr_alpha: float = 0.0
    thr_beta: float = 0.0


class State(NamedTuple):
    """Per-sample state: voltage, time since the last spike (ms), the current waiting for the
    next step and the inhibition waiting to be subtracted."""

    v: tf.Tensor
    since_spike_ms: tf.Tensor
    pending_current: tf.Tensor
    pending_inhibition: tf.Tensor


def params(config: ExperimentConfig, role: str) -> Params:
    """The parameters of the ``role`` layer ("excitatory" or "inhibitory")."""
    c = config.current_lif
    if role == "excitatory":
        return Params(
            c.tau_mem_ms, c.leak, c.resistance, c.refractory_ms, c.thr_base, c.thr_init,
            c.thr_alpha, c.thr_beta,
        )  # fmt: skip
    return Params(c.tau_mem_ms, c.leak, c.resistance, 0.0, c.inh_thr)


def init(p: Params, shape: Any) -> State:
    """Resting state ``v = 0``, nothing pending."""
    return State(
        tf.zeros(shape), tf.fill(shape, tf.constant(1e9, tf.float32)), tf.zeros(shape),
        tf.zeros(shape),
    )  # fmt: skip


def start(p: Params, shape: Any) -> State:
    """The state of a new network whose per-sample state is carried from digit to digit: rest."""
    return init(p, shape)


def step(
    p: Params, s: State, drive: tf.Tensor | None, threshold: tf.Tensor | float, dt_ms: float
) -> tuple[tf.Tensor, State]:
    """``v <- v + dt/tau (-leak v + R I)`` (held during refractoriness) with ``I = drive`` (or
    the pending current of a layer without drive); spike when ``v > threshold``; reset
    ``v <- v (1 - S)``. Returns ``(spikes, state)``."""
    current = s.pending_current if drive is None else drive
    refractory = s.since_spike_ms < p.refractory_ms
    v = s.v + (dt_ms / p.tau_mem_ms) * (-p.leak * s.v + p.resistance * current)
    v = tf.where(refractory, s.v, v)
    since = s.since_spike_ms + dt_ms
    spikes = tf.cast(tf.logical_and(v > threshold, since >= p.refractory_ms), tf.float32)
    v = v * (1.0 - spikes)
    since = since * (1.0 - spikes)
    return spikes, s._replace(v=v, since_spike_ms=since)


def receive(
    p: Params, s: State, exc: tf.Tensor | None, inh: tf.Tensor | None, dt_ms: float
) -> State:
    """Excitatory input becomes next step's current ``exc * tau_mem / dt``; inhibitory input is
    subtracted from the voltage one step later (the inhibition received the step before is
    subtracted now)."""
    if exc is not None:
        s = s._replace(pending_current=exc * (p.tau_mem_ms / dt_ms))
    if inh is not None:
        s = s._replace(v=s.v - s.pending_inhibition, pending_inhibition=inh)
    return s


def base_threshold(p: Params) -> float:
    """The threshold without the adaptive part."""
    return p.threshold


def theta_init(p: Params) -> float:
    """The adaptive threshold of a new network."""
    return p.thr_init


class _Stepwise:
    """``thr <- thr - alpha thr + beta S`` each step; no change over the rest between digits."""

    exact = False

    def __init__(self, p: Params) -> None:
        self.p = p

    def start(self, theta0: tf.Tensor) -> tf.Tensor:
        return theta0

    def at(self, carry: tf.Tensor, theta0: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        return carry

    def spiked(self, carry: tf.Tensor, spikes: tf.Tensor, t: tf.Tensor) -> tf.Tensor:
        return carry - self.p.thr_alpha * carry + self.p.thr_beta * spikes

    def end(self, carry: tf.Tensor, theta0: tf.Tensor) -> tf.Tensor:
        return carry


def adaptation(p: Params, dt_ms: float, steps: int, rest_ms: float) -> _Stepwise:
    """How the adaptive threshold evolves through a presentation."""
    return _Stepwise(p)
