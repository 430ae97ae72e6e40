"""The shape every neuron model has (Norse's: pure step functions on explicit state).

A neuron model is a module with:

* ``SECTIONS``: its config sections, ``{name: frozen Section class}`` (units in the key names);
* ``THETA_UNIT``: the unit of its threshold, for plots (``"mV"``);
* ``Params`` (NamedTuple) and ``params(config, role) -> Params``, ``role`` being
  ``"excitatory"`` or ``"inhibitory"``;
* ``State`` (NamedTuple of tensors, per-sample state only) and ``init(p, shape) -> State`` (the
  resting state every presentation starts from); ``start(p, shape) -> State``, the state of a new
  network when the per-sample state is carried from digit to digit (``encoding.rest =
  "simulate"``);
* ``step(p, state, drive, threshold, dt_ms) -> (spikes, state)``: one step of ``dt_ms``.
  ``drive`` is the summed weight of this step's input spikes (``[..., N]``, or None for a layer
  without feed-forward input); ``threshold`` the full threshold (``base_threshold(p)`` plus the
  adaptive part), broadcast to the state; spikes are float32 0/1;
* ``receive(p, state, exc, inh, dt_ms) -> state``: recurrent input that arrives after the step
  (``exc`` excitatory, ``inh`` inhibitory, each ``[..., N]`` or None);
* ``base_threshold(p) -> float``;
* optional: ``resting_potential(p) -> float``, the voltage (mV) a neuron relaxes to without
  input, for a model whose adaptive threshold can decay to it (the training health check
  ``thresholds_at_rest`` compares thresholds with it; without it the check is off: the current
  LIF's threshold, ``thr_base > 0`` plus a non-negative part, never reaches its rest at 0);
* optional: ``theta_hold_mv_ms(p) -> float``, for a theta that rises by a fixed step at each
  spike and decays exponentially through presentations and rests alike: step times time
  constant, the theta a neuron holds per spike per ms it fires (the training health check
  ``theta_budget_low`` reads the layer's firing with it; without it the check is off);
* the adaptive threshold ``theta`` (learned state of the excitatory layer):
  ``theta_init(p) -> float`` and ``adaptation(p, dt_ms, steps, rest_ms) -> Adaptation``, an
  object that carries theta through a presentation (:class:`Adaptation`).

Shapes broadcast: the same functions serve ``[N]``, ``[G, N]`` (patch groups) and ``[B, G, N]``
(a batch), inside compiled loops. :data:`REQUIRED` lists the names the registry checks.
"""

from __future__ import annotations

from typing import Any, Protocol

REQUIRED = (
    "SECTIONS",
    "THETA_UNIT",
    "Params",
    "State",
    "params",
    "init",
    "start",
    "step",
    "receive",
    "base_threshold",
    "theta_init",
    "adaptation",
)


class Adaptation(Protocol):
    """How the adaptive threshold ``theta`` evolves through one learning presentation.

    The loop carries an opaque ``carry`` (a tensor) instead of theta, so that a model may keep
    theta in whatever form is exact in float32 (Diehl & Cook's conductance neuron carries scaled
    spike increments, see :mod:`.conductance`). ``theta0`` is theta at the start of the
    presentation, ``t`` the step (int32 tensor), ``spikes`` the excitatory spikes of step ``t``
    summed per weight group.

    ``exact``: True when the carry is the scaled increments of :class:`.conductance._Exact`
    (theta = exp(-t dt / tau_theta) (theta0 + carry)), False when it is theta itself, stepped;
    the native engine runs either form from this flag."""

    exact: bool

    def start(self, theta0: Any) -> Any:
        """The carry at step 0."""

    def at(self, carry: Any, theta0: Any, t: Any) -> Any:
        """Theta in effect at step ``t`` (after step ``t - 1``)."""

    def spiked(self, carry: Any, spikes: Any, t: Any) -> Any:
        """The carry after step ``t``, whose spikes were ``spikes``."""

    def end(self, carry: Any, theta0: Any) -> Any:
        """Theta after the presentation and the rest that follows it."""
