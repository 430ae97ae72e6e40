"""Postsynaptic event-based STDP (Tavanaei, Masquelier & Maida 2018).

Only when neuron ``j`` fires do its incoming weights change; ``recent[i]`` is 1 if input ``i``
fired within ``event_window_ms`` before::

    W[:, j] += eta * a_plus  * (w_max - W[:, j] (1 + lambda))   where recent
    W[:, j] -= eta * a_minus * W[:, j] (1 + lambda)             elsewhere

so a firing neuron depresses the weights of silent inputs: the rule carries its own weight decay,
which is what cures the blank-pixel problem. Config section: ``event_stdp``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from stdp_pipeline._tf import tf
from stdp_pipeline.params import Section, num
from stdp_pipeline.sim.rules.base import last_spike_times, note_spikes

if TYPE_CHECKING:
    from stdp_pipeline.io.config import ExperimentConfig


@dataclass(frozen=True)
class EventStdpConfig(Section):
    """Event-based STDP (``learning.rule = "event"``): when a neuron fires, each incoming weight
    whose input fired within ``event_window_ms`` before moves
    ``dw = eta * a_plus * (w_max - w (1 + lambda))``, every other one
    ``dw = -eta * a_minus * w (1 + lambda)``."""

    _section = "event_stdp"
    eta: float = num(0.0055, ge=0)
    a_plus: float = num(1.0, ge=0)
    a_minus: float = num(1.0, ge=0)
    lambda_: float = num(0.01, ge=0)
    event_window_ms: float = num(2.0, gt=0)


SECTIONS = {"event_stdp": EventStdpConfig}


class Params(NamedTuple):
    """Learning rate, potentiation and depression factors, lambda, window (ms), weight bound."""

    eta: float
    a_plus: float
    a_minus: float
    lambda_: float
    event_window_ms: float
    w_max: float


class State(NamedTuple):
    """``last_pre`` ``[pixels + 1]``: each input's last spike time, ms."""

    last_pre: tf.Tensor


def params(config: ExperimentConfig) -> Params:
    """The rule's parameters from ``event_stdp`` and ``learning.w_max``."""
    e = config.event_stdp
    return Params(
        e.eta, e.a_plus, e.a_minus, e.lambda_, e.event_window_ms, config.learning.w_max
    )  # fmt: skip


def init(p: Params, post_shape: list[int], n_pixels: int) -> State:
    """No input spike yet."""
    return State(last_spike_times(n_pixels))


def decay(p: Params, s: State, dt_ms: float) -> State:
    """Nothing decays: the rule keeps spike times."""
    return s


def update(
    w: tf.Tensor,
    recent: tf.Tensor,
    spikes: tf.Tensor,
    eta: float,
    a_plus: float,
    a_minus: float,
    lam: float,
    w_max: float,
) -> tf.Tensor:
    """The rule in dense form: ``w`` ``[P, N]``, ``recent`` ``[P]`` 0/1, ``spikes`` ``[N]`` 0/1.
    Only columns of firing neurons change."""
    recent = recent[:, None]
    dw = eta * (
        recent * a_plus * (w_max - w * (1.0 + lam)) - (1.0 - recent) * a_minus * w * (1.0 + lam)
    )
    return tf.clip_by_value(w + dw * spikes[None, :], 0.0, w_max)


def on_pre(
    p: Params, s: State, rows: tf.Tensor, pixels: tf.Tensor, now_ms: tf.Tensor
) -> tuple[State, None]:
    """Note the inputs' spike time; weights change only at postsynaptic spikes."""
    return s._replace(last_pre=note_spikes(s.last_pre, pixels, now_ms)), None


def pre_factor(p: Params, s: State, now_ms: tf.Tensor) -> tf.Tensor:
    """1 for inputs that fired within the window before ``now_ms``, else 0."""
    return tf.cast(now_ms - s.last_pre < p.event_window_ms, tf.float32)


def on_post(
    p: Params, s: State, column: tf.Tensor, factor: tf.Tensor, group: tf.Tensor, neuron: tf.Tensor
) -> tf.Tensor:
    """Move the column toward ``w_max`` where recent, toward 0 elsewhere."""
    new = update(
        column[:, None], factor, tf.ones([1]), p.eta, p.a_plus, p.a_minus, p.lambda_, p.w_max
    )
    return new[:, 0]


def after_post(p: Params, s: State, fired: tf.Tensor) -> State:
    """Nothing to do after a postsynaptic spike."""
    return s


def carry(p: Params, s: State, span_ms: float) -> State:
    """Seen from the next presentation, ``span_ms`` later: spike times move back by ``span_ms``."""
    return s._replace(last_pre=s.last_pre - span_ms)
