"""Trace STDP (Diehl & Cook 2015), event-driven.

Traces are set to 1 at their neuron's spike and decay exponentially (``pre``: tau_pre,
``post1``: tau_post1, ``post2``: tau_post2)::

    presynaptic spike of input i:   W[i, :] <- clip(W[i, :] - nu_pre * post1, 0, w_max)
    postsynaptic spike of neuron j:
        W[:, j] <- clip(W[:, j] + nu_post * pre * post2_before[j], 0, w_max)

The pre trace of an input is ``exp(-(now - t_last) / tau_pre)`` with ``t_last`` its last spike
(the nearest-spike trace, set to 1 at each spike), so only spike times are stored. Config
section: ``trace_stdp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from stdp_pipeline._tf import tf
from stdp_pipeline.params import Section, num
from stdp_pipeline.sim.rules.base import last_spike_times, note_spikes

if TYPE_CHECKING:
    from stdp_pipeline.io.config import ExperimentConfig


@dataclass(frozen=True)
class TraceStdpConfig(Section):
    """Diehl & Cook's trace STDP (``learning.rule = "trace"``). Traces ``pre`` (tau_pre),
    ``post1`` (tau_post1), ``post2`` (tau_post2) are set to 1 at their neuron's spike. On a
    presynaptic spike ``w <- clip(w - nu_pre * post1, 0, w_max)``; on a postsynaptic spike
    ``w <- clip(w + nu_post * pre * post2_before, 0, w_max)``."""

    _section = "trace_stdp"
    tau_pre_ms: float = num(20.0, gt=0)
    tau_post1_ms: float = num(20.0, gt=0)
    tau_post2_ms: float = num(40.0, gt=0)
    nu_pre: float = num(0.0001, ge=0)
    nu_post: float = num(0.01, ge=0)


SECTIONS = {"trace_stdp": TraceStdpConfig}


class Params(NamedTuple):
    """Time constants (ms), learning rates and the weight bound."""

    tau_pre_ms: float
    tau_post1_ms: float
    tau_post2_ms: float
    nu_pre: float
    nu_post: float
    w_max: float


class State(NamedTuple):
    """``post1``, ``post2`` ``[G, Ng]`` postsynaptic traces; ``last_pre`` ``[pixels + 1]`` ms."""

    post1: tf.Tensor
    post2: tf.Tensor
    last_pre: tf.Tensor


def params(config: ExperimentConfig) -> Params:
    """The rule's parameters from ``trace_stdp`` and ``learning.w_max``."""
    t = config.trace_stdp
    return Params(
        t.tau_pre_ms, t.tau_post1_ms, t.tau_post2_ms, t.nu_pre, t.nu_post, config.learning.w_max
    )


def init(p: Params, post_shape: list[int], n_pixels: int) -> State:
    """No trace, no input spike yet."""
    zeros = tf.zeros(post_shape)
    return State(zeros, zeros, last_spike_times(n_pixels))


def decay(p: Params, s: State, dt_ms: float) -> State:
    """Postsynaptic traces decay by one step."""
    return s._replace(
        post1=s.post1 * math.exp(-dt_ms / p.tau_post1_ms),
        post2=s.post2 * math.exp(-dt_ms / p.tau_post2_ms),
    )


def pre_update(rows: tf.Tensor, post1: tf.Tensor, nu_pre: float, w_max: float) -> tf.Tensor:
    """Depression at presynaptic spikes: rows ``[..., K, N]`` of the spiking inputs, post1
    ``[..., 1, N]``."""
    return tf.clip_by_value(rows - nu_pre * post1, 0.0, w_max)


def post_update(
    w: tf.Tensor,
    pre: tf.Tensor,
    post2_before: tf.Tensor,
    spikes: tf.Tensor,
    nu_post: float,
    w_max: float,
) -> tf.Tensor:
    """Potentiation at postsynaptic spikes, dense form: ``w`` ``[P, N]``, ``pre`` ``[P]``,
    ``post2_before`` and ``spikes`` ``[N]`` (0/1). Columns of silent neurons are unchanged."""
    dw = nu_post * pre[:, None] * (post2_before * spikes)[None, :]
    return tf.where(spikes[None, :] > 0, tf.clip_by_value(w + dw, 0.0, w_max), w)


def on_pre(
    p: Params, s: State, rows: tf.Tensor, pixels: tf.Tensor, now_ms: tf.Tensor
) -> tuple[State, tf.Tensor]:
    """Depress the spiking inputs' rows by ``nu_pre * post1``; note their spike time."""
    new_rows = pre_update(rows, s.post1[:, None, :], p.nu_pre, p.w_max)
    return s._replace(last_pre=note_spikes(s.last_pre, pixels, now_ms)), new_rows


def pre_factor(p: Params, s: State, now_ms: tf.Tensor) -> tf.Tensor:
    """The pre trace of every input, ``exp((t_last - now) / tau_pre)``."""
    return tf.exp((s.last_pre - now_ms) / p.tau_pre_ms)


def on_post(
    p: Params, s: State, column: tf.Tensor, factor: tf.Tensor, group: tf.Tensor, neuron: tf.Tensor
) -> tf.Tensor:
    """Potentiate the column by ``nu_post * pre * post2`` (post2 before this spike)."""
    post2 = s.post2[group, neuron]
    new = post_update(column[:, None], factor, post2[None], tf.ones([1]), p.nu_post, p.w_max)
    return new[:, 0]


def after_post(p: Params, s: State, fired: tf.Tensor) -> State:
    """Postsynaptic traces of the neurons that fired are set to 1."""
    return s._replace(
        post1=tf.where(fired > 0, 1.0, s.post1), post2=tf.where(fired > 0, 1.0, s.post2)
    )


def carry(p: Params, s: State, span_ms: float) -> State:
    """Seen from the next presentation, ``span_ms`` later: spike times move back by ``span_ms``."""
    return s._replace(last_pre=s.last_pre - span_ms)
