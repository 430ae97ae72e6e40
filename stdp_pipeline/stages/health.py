"""Training health: spotting a degenerate run while it trains, from the chunk statistics.

A Diehl & Cook network learns only while its neurons compete: for each digit a few neurons fire
(lateral inhibition silences the rest), their thresholds rise, and other neurons win the next
digits. When the input drive is too strong for the network's constants (images brighter than
MNIST's, a high ``poisson.rate_max_hz``), every neuron fires for every digit: all thresholds climb
together, until the normal drive no longer reaches ``encoding.min_spikes``; then nearly every digit
is shown again ``encoding.max_retries`` times, learning stalls and every neuron ends with the same
blob-shaped receptive field, and the final accuracy is the first thing that tells. The checks
here read what each training chunk already produces and say, once per training session, what is
wrong and which keys usually fix it.

Signals, one value per chunk (columns of ``train_curve.csv``, TensorBoard ``health/<name>``):

* ``active_share``: the mean share of the neurons that fire at least once for a digit
  (``mean_b |{j : s_bj > 0}| / N``, ``s`` the ``[B, N]`` spike counts of the accepted
  presentations). A competing layer: a few neurons (4-10 % at 100 neurons, 2-5 % at 400, about
  25 % at 20).
* ``retry_cap_share``: the share of the chunk's digits shown ``1 + encoding.max_retries`` times,
  the most there are (0 when ``max_retries`` is 0).
* ``theta_spread``: ``(max theta - min theta) / (mean theta - theta_init)``, how much the adaptive
  thresholds differ, relative to how far they have risen from their initial value. Healthy runs
  keep neurons apart (at least 0.42 over 20,000 digits of diehl-cook-100, where theta levels off
  near 51 mV); when all neurons fire alike it falls to ~0.
* ``silent_share`` and ``top_winner_share``, over the last :func:`window_digits` digits (NaN
  until that many have been seen in this session): the share of the neurons that never fired,
  and the share of the digits whose strongest responder was the same single neuron; for patched
  models, each group (its own inhibition) on its own and the median over the groups.
* ``weight_rise``: the largest weight divided by the largest weight of the normalised initial
  weights (``2 * learning.weight_sum / P`` for uniform initial weights, 0.20 for 784 inputs):
  STDP that learns grows some weights well past their start.
* ``field_similarity``: the mean cosine between each neuron's input weights and the mean of
  them (per weight group), ``mean_j <w_j / |w_j|, m / |m|>``, ``m = mean_j w_j / |w_j|``. Uniform
  random weights give 0.87; neurons that learn different digits stay near 0.9; when every neuron
  learns the same blob it goes to 1.
* ``rest_share``: the share of the neurons whose threshold (base threshold plus theta) lies
  within ``REST_MARGIN`` of the resting potential (NaN for a neuron model without
  ``resting_potential``). A neuron that wins too rarely to hold its theta up decays there, and
  then the first input spikes of every digit fire it, before any field could form: an onset
  responder that answers every digit alike. 0 in every 100-, 400- and 1,600-neuron run measured;
  6,400 neurons without input delays (15 passes): 0 up to 380,000 digits, 0.27 at 460,000, 0.70
  at the end; with them (diehl-cook-6400): 0.26 at 106,000 digits, 0.56 after its 3 passes.
* ``theta_budget`` (mV), over the same window: the mean theta that the layer's firing can hold,
  ``theta_plus * tau_theta * R / N`` with ``R`` the layer's spikes per ms of simulated time
  (the window's spikes over its presentations, retries included, times ``presentation_ms +
  rest_ms``; the spikes of a rejected presentation, fewer than ``encoding.min_spikes``, are not
  counted). Theta rises ``theta_plus`` at each spike and decays with ``tau_theta``, so a neuron
  firing ``r`` spikes per ms settles at ``theta_plus * tau_theta * r``: the mean theta heads to
  the budget within about ``tau_theta`` (20,000 digits at Diehl & Cook's 1e7 ms). NaN for a
  neuron model without ``theta_hold_mv_ms``. Small layers fire as much as their thresholds ask:
  the diehl-cook-100 and -400 runs measured hold 45-51 mV whatever ``tau_theta`` (100 neurons
  at 5e6 ms fire twice as much as at 1e7); a large one cannot (one winner's spikes a digit, far
  more neurons to share them): 38.7 mV at 1,600 neurons with 2e7 ms, 15.6 at 6,400 with the
  paper's 1e7 (which then sinks half its layer to rest), 22.2 with 2e7.

Checks, each a flag column ``flag_<name>`` (0/1) of ``train_curve.csv``; thresholds
(module constants) were chosen between the healthy and the degenerate runs measured for the
issue (MNIST at 100 and 400 neurons against brightened MNIST and high input rates; the
README's Training health section has the figures):

==================== ===================================================== =====================
flag                 raised when                                           usually fixed by
==================== ===================================================== =====================
thresholds_uniform   ``theta_spread < THETA_SPREAD_MIN`` and theta has      input drive, stronger
                     risen by ``THETA_RISE_MIN`` or more (relative)         inhibition
retry_cap            ``retry_cap_share > RETRY_CAP_MAX``                    input drive, theta
                                                                            adaptation
spikes_high          ``active_share > ACTIVE_SHARE_MAX``                    input drive, stronger
                                                                            inhibition
spikes_low           median spikes per digit (accepted presentation)        input drive, retries
                     ``< encoding.min_spikes``
silent_neurons       ``silent_share > SILENT_SHARE_MAX``                    theta adaptation
dominant_neuron      ``top_winner_share > TOP_WINNER_SHARE_MAX``            theta adaptation
weights_stalled      ``weight_rise < WEIGHT_RISE_MIN`` after                learning rate, input
                     :func:`stall_digits` digits                            drive
fields_alike         ``field_similarity > FIELD_SIMILARITY_MAX``            input drive, stronger
                                                                            inhibition
thresholds_at_rest   ``rest_share > REST_SHARE_MAX``                        slower theta decay
                                                                            (held off, not cured)
theta_budget_low     ``theta_budget < THETA_BUDGET_MIN_MV``                 slower theta decay
==================== ===================================================== =====================

Everything here is pure numpy over arrays the training loop already holds (per-neuron spike
counts of the chunk, retries, theta and weights); :class:`HealthMonitor` only keeps the window
and remembers which flags it has announced. Nothing here changes what the network learns.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from stdp_pipeline.io.config import ExperimentConfig

#: ``thresholds_uniform``: the spread of theta below this share of its mean rise. Healthy MNIST
#: runs: 0.42 at least (diehl-cook-100, 20,000 digits), 1.0 at least (diehl-cook-400, 3,000);
#: brightened MNIST (dilated, x3) and a 4 times higher input rate: 0.001-0.047 from the second
#: chunk on; the issue's Fashion-MNIST run: 0 ("mean and max equal").
THETA_SPREAD_MIN = 0.1
#: ... once the mean theta has risen by at least this share of its initial value (before that
#: the spread is noise over a small rise; theta_init = 0 checks from any rise).
THETA_RISE_MIN = 0.1
#: ``retry_cap``: share of a chunk's digits shown the most times. Healthy MNIST: 0; overdriven
#: runs: 0.60-0.89.
RETRY_CAP_MAX = 0.25
#: ``spikes_high``: share of the neurons that fire for the average digit. Healthy MNIST: 2-10 %
#: (at 100 and 400 neurons), 25 % at 20 neurons; overdriven runs: 63-92 % in their first chunk.
ACTIVE_SHARE_MAX = 0.5
#: ``silent_neurons``: share of the neurons silent over the whole window. Healthy MNIST: 0 for
#: whole digits; 0.34-0.36 (median patch group) for the event-stdp-patches preset.
SILENT_SHARE_MAX = 0.5
#: ``dominant_neuron``: share of the window's digits won by one neuron. Healthy: 1.4-5 % for
#: whole digits, 11-13 % (median patch group) for event-stdp-patches; overdriven runs: 54-76 %.
TOP_WINNER_SHARE_MAX = 0.5
#: ``weights_stalled``: the largest weight below this multiple of its normalised initial value.
#: Healthy MNIST: 1.2-1.6 after 250 digits, 1.6-3.1 once checked; the overdriven runs here:
#: 1.4-2.0 (they fail other checks); the issue's Fashion-MNIST run: ~1 (0.2) after thousands.
WEIGHT_RISE_MIN = 1.2
#: ``fields_alike``: mean cosine of the fields to their mean. Healthy MNIST: 0.87-0.91;
#: overdriven runs: 0.997-1.000 from the first chunk on.
FIELD_SIMILARITY_MAX = 0.97
#: ``thresholds_at_rest``: a threshold closer than this (mV) to the resting potential counts as
#: at rest (6,400-neuron onset responders: theta 7.7-8.0 mV, threshold 0.7-1.0 mV above it).
REST_MARGIN = 1.0
#: ... and the check is raised when more than this share of the neurons are there. Every 100-,
#: 400- and 1,600-neuron run measured: 0; 6,400 neurons without delays: 0.27-0.38 from 460,000
#: digits on, 0.70 at the end of 15 passes; with them 0.56 after 3 passes (91.95 % all the same).
REST_SHARE_MAX = 0.25
#: ``theta_budget_low``: the mean theta the layer's firing holds (mV) below this. The presets'
#: model at 100 and 400 neurons: 45-51 mV (after the window; early chunks at 400 neurons: to 100);
#: 1,600 neurons: 19-20 mV with the paper's 1e7 ms (first 6,000 digits), 35-39 with 2e7 ms
#: (1.1-1.4 points more); 6,400 neurons: 6-16 mV with 1e7 ms, the run whose thresholds then sank
#: to rest, 11-22 with 2e7 ms, the run that scored 1.1 points more but still left two fifths of
#: the layer without a field.
THETA_BUDGET_MIN_MV = 30.0
#: ... and the budget its warning aims at when it says how much slower theta should decay.
THETA_BUDGET_AIM_MV = 40.0

#: The signal columns, in file order.
SIGNALS = (
    "active_share",
    "retry_cap_share",
    "theta_spread",
    "silent_share",
    "top_winner_share",
    "weight_rise",
    "field_similarity",
    "rest_share",
    "theta_budget",
)


@dataclass(frozen=True)
class Check:
    """One health check: its ``name`` (flag column ``flag_<name>``), a few words for plots
    (``label``) and the config keys that usually fix it (``fix``, in the order to try)."""

    name: str
    label: str
    fix: tuple[str, ...]
    #: how the keys relate to the flag in its warning line
    verb: str = "usually fixed by"

    @property
    def column(self) -> str:
        """Its column in ``train_curve.csv``."""
        return f"flag_{self.name}"


_DRIVE = ("poisson.target_rate_hz", "poisson.rate_max_hz")

#: The checks, in the order they are reported. ``{adapt}`` stands for the neuron model's threshold
#: adaptation key and ``{rate}`` for the learning rule's rate key (see :func:`fix_keys`).
CHECKS: tuple[Check, ...] = (
    Check("thresholds_uniform", "thresholds uniform", (*_DRIVE, "network.inh_to_exc_weight")),
    Check("retry_cap", "retries at the cap", (*_DRIVE, "{adapt}")),
    Check("spikes_high", "too many spikes", (*_DRIVE, "network.inh_to_exc_weight")),
    Check("spikes_low", "too few spikes", (*_DRIVE, "poisson.retry_rate_step_hz")),
    Check("silent_neurons", "silent neurons", ("{adapt}", "network.inh_to_exc_weight")),
    Check("dominant_neuron", "one neuron wins", ("{adapt}", "network.inh_to_exc_weight")),
    Check("weights_stalled", "weights stalled", ("{rate}", *_DRIVE)),
    Check("fields_alike", "fields alike", (*_DRIVE, "network.inh_to_exc_weight")),
    Check(
        "thresholds_at_rest",
        "thresholds at rest",
        ("{decay}", "{adapt}"),
        verb="a slower theta decay held it off at 6,400 neurons (README); set by",
    ),
    Check("theta_budget_low", "theta budget low", ("{decay}", "{adapt}"), verb="raise"),
)
CHECK_NAMES = tuple(c.name for c in CHECKS)
#: The flag columns, in file order.
FLAGS = tuple(c.column for c in CHECKS)

#: Threshold-adaptation key of each neuron model; learning-rate key of each rule.
_ADAPT_KEY = {"conductance": "excitatory.theta_plus_mv", "current": "current_lif.thr_beta"}
_DECAY_KEY = {"conductance": "excitatory.tau_theta_ms", "current": "current_lif.thr_alpha"}
_RATE_KEY = {"trace": "trace_stdp.nu_post", "event": "event_stdp.eta"}


def fix_keys(check: Check, neuron: str = "conductance", rule: str = "trace") -> list[str]:
    """The keys that usually fix ``check``, for the network's neuron model and learning rule
    (a placeholder of a model or rule without a known key is left out)."""
    out = []
    for key in check.fix:
        if key == "{adapt}":
            key = _ADAPT_KEY.get(neuron, "")
        elif key == "{decay}":
            key = _DECAY_KEY.get(neuron, "")
        elif key == "{rate}":
            key = _RATE_KEY.get(rule, "")
        if key:
            out.append(key)
    return out


def window_digits(n_neurons: int, chunk_digits: int) -> int:
    """Digits over which silent and dominant neurons are judged: ``max(1000, 2 N, chunk)``, so
    that a healthy layer, whose every digit wakes a few neurons, has time to wake them all."""
    return max(1000, 2 * n_neurons, chunk_digits)


def stall_digits(n_neurons: int) -> int:
    """Digits after which still unmoved weights count as stalled: ``max(1000, 5 N)`` (each neuron
    learns only from the digits it wins, a larger layer needs more digits to move)."""
    return max(1000, 5 * n_neurons)


# --- signals ------------------------------------------------------------------------------------
def active_share(neuron_spikes: np.ndarray) -> float:
    """Mean share of the neurons that fire for a digit: ``neuron_spikes`` ``[B, N]`` -> [0, 1]."""
    if neuron_spikes.size == 0:
        return float("nan")
    return float((neuron_spikes > 0).mean())


def retry_cap_share(retries: np.ndarray, max_retries: int) -> float:
    """Share of the digits (``retries`` ``[B]``) shown ``1 + max_retries`` times; 0 when
    ``max_retries`` is 0 (there is no retry to be pinned at)."""
    if max_retries <= 0 or len(retries) == 0:
        return 0.0
    return float((np.asarray(retries) >= max_retries).mean())


def theta_spread(theta: np.ndarray, theta_init: float) -> float:
    """``(max - min) / (mean - theta_init)`` of the adaptive thresholds ``theta`` (any shape);
    NaN while the mean has not risen."""
    theta = np.asarray(theta, np.float64)
    rise = float(theta.mean()) - theta_init
    if not rise > 0:
        return float("nan")
    return float(theta.max() - theta.min()) / rise


def theta_rise(theta: np.ndarray, theta_init: float) -> float:
    """How far the mean threshold has risen, relative to its initial value (absolute when the
    initial value is 0)."""
    rise = float(np.mean(theta)) - theta_init
    return rise / abs(theta_init) if theta_init else rise


def silent_share(counts: np.ndarray, groups: int = 1) -> float:
    """Share of the neurons whose summed spikes ``counts`` ``[N]`` (over a window, group-major)
    are 0: the median over the ``groups`` patch groups of each group's share (each group has its
    own inhibition; groups at the image border see little ink and stay quiet in healthy runs)."""
    per_group = (np.asarray(counts).reshape(groups, -1) == 0).mean(axis=1)
    return float(np.median(per_group))


def top_winner_share(winners: np.ndarray, group_size: int) -> float:
    """Share of the digits won by the most frequent winner: ``winners`` ``[D]`` or ``[D, G]`` holds
    each digit's strongest neuron in each group (index within the group, -1 where the group was
    silent: not counted); the median over the groups that fired."""
    won = np.asarray(winners).reshape(len(winners), -1)
    shares = []
    for column in won.T:
        column = column[column >= 0]
        if len(column):
            shares.append(np.bincount(column, minlength=group_size).max() / len(column))
    return float(np.median(shares)) if shares else float("nan")


def winners(neuron_spikes: np.ndarray, groups: int = 1) -> np.ndarray:
    """Each digit's strongest neuron in each group: ``neuron_spikes`` ``[B, G * Ng]``
    (group-major) -> ``[B, G]`` indices within the group (lowest on ties; -1 where the group did
    not fire)."""
    per_group = np.asarray(neuron_spikes).reshape(len(neuron_spikes), groups, -1)
    return np.where(per_group.max(axis=2) > 0, per_group.argmax(axis=2), -1)


def rest_share(theta: np.ndarray, theta_at_rest: float) -> float:
    """Share of the neurons whose threshold is within :data:`REST_MARGIN` of the resting
    potential: ``theta`` (any shape) below ``theta_at_rest + REST_MARGIN``, ``theta_at_rest``
    being the theta at which the threshold equals the resting potential (NaN: not known)."""
    if not np.isfinite(theta_at_rest):
        return float("nan")
    return float((np.asarray(theta) < theta_at_rest + REST_MARGIN).mean())


def theta_budget(spikes: float, presentations: float, lim: Limits) -> float:
    """The mean theta (mV) that ``spikes`` excitatory spikes over ``presentations``
    presentations (retries included) hold: ``theta_hold_mv_ms * spikes / (presentations *
    digit_ms) / n_neurons`` (NaN for a model without ``theta_hold_mv_ms``, or no presentation)."""
    if not (np.isfinite(lim.theta_hold_mv_ms) and presentations > 0 and lim.digit_ms > 0):
        return float("nan")
    return lim.theta_hold_mv_ms * spikes / (presentations * lim.digit_ms) / lim.n_neurons


def initial_weight_max(weights: np.ndarray, weight_sum: float, w_max: float) -> float:
    """The largest weight once the initial ``weights`` (``[P, N]`` or ``[G, P, Ng]``) have been
    normalised as the first presentation does: each neuron's column scaled to sum to
    ``weight_sum`` (not at all when 0), clipped to ``w_max``."""
    w = np.asarray(weights, np.float64)
    if weight_sum > 0:
        sums = w.sum(axis=-2, keepdims=True)
        w = w * np.where(sums > 0, weight_sum / np.where(sums > 0, sums, 1.0), 1.0)
    return float(min(w.max(), w_max))


def field_similarity(weights: np.ndarray) -> float:
    """Mean cosine between each neuron's input weights and their mean direction, per weight
    group: ``weights`` ``[P, N]`` or ``[G, P, Ng]`` -> (0, 1] (NaN for all-zero weights)."""
    w = np.asarray(weights, np.float32)
    w = w[None] if w.ndim == 2 else w
    norms = np.linalg.norm(w, axis=1, keepdims=True)  # [G, 1, Ng]
    u = w / np.where(norms > 0, norms, 1.0)
    m = u.mean(axis=2, keepdims=True)  # [G, P, 1]
    m_norm = np.linalg.norm(m, axis=1, keepdims=True)
    if not np.all(m_norm > 0):
        return float("nan")
    return float(((u * (m / m_norm)).sum(axis=1)).mean())


# --- flags --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Limits:
    """What a run's checks compare against: from its config (:meth:`of`) and initial weights."""

    n_neurons: int
    theta_init: float
    min_spikes: int
    max_retries: int
    initial_weight_max: float
    window: int
    stall_after: int
    neuron: str = "conductance"
    rule: str = "trace"
    groups: int = 1  # patch groups, each with its own inhibition (N = groups * group size)
    #: theta at which the threshold equals the resting potential (NaN: not known)
    theta_at_rest: float = float("nan")
    #: mV of theta a neuron holds per spike per ms it fires (``theta_plus * tau_theta``; NaN: a
    #: model without it, the ``theta_budget_low`` check off)
    theta_hold_mv_ms: float = float("nan")
    #: simulated ms of one presentation with its rest
    digit_ms: float = float("nan")

    @classmethod
    def of(
        cls,
        config: ExperimentConfig,
        n_neurons: int,
        theta_init: float,
        weights: np.ndarray,
        groups: int = 1,
        theta_at_rest: float = float("nan"),
        theta_hold_mv_ms: float = float("nan"),
    ) -> Limits:
        """The limits of a run of ``config`` whose network has ``n_neurons`` excitatory neurons in
        ``groups`` patch groups, initial threshold ``theta_init`` and initial ``weights``;
        ``theta_at_rest``: the theta at which a neuron's threshold equals its resting potential
        (NaN: not known, the ``thresholds_at_rest`` check off); ``theta_hold_mv_ms``: the theta
        a neuron holds per spike per ms (NaN: not known, the ``theta_budget_low`` check off)."""
        lc = config.learning
        return cls(
            theta_at_rest=float(theta_at_rest),
            theta_hold_mv_ms=float(theta_hold_mv_ms),
            digit_ms=config.encoding.presentation_ms + config.encoding.rest_ms,
            groups=groups,
            n_neurons=n_neurons,
            theta_init=float(theta_init),
            min_spikes=config.encoding.min_spikes,
            max_retries=config.encoding.max_retries,
            initial_weight_max=initial_weight_max(weights, lc.weight_sum, lc.w_max),
            window=window_digits(n_neurons, config.train.chunk_digits),
            stall_after=stall_digits(n_neurons),
            neuron=config.network.neuron,
            rule=lc.rule,
        )


def evaluate(signals: dict[str, float], spikes: np.ndarray, position: int, lim: Limits) -> dict:
    """The flags raised by one chunk: ``{check name: message}`` (empty when healthy).

    ``signals`` are the chunk's :data:`SIGNALS`, ``spikes`` ``[B]`` its spikes per digit (accepted
    presentations), ``position`` the digits presented after it. A message says what is wrong, with
    the measured value and the limit; :func:`warning_line` adds the keys that usually fix it."""
    out: dict[str, str] = {}
    s = signals
    spread, rise = s["theta_spread"], s.get("theta_rise", float("nan"))
    if spread < THETA_SPREAD_MIN and rise >= THETA_RISE_MIN:
        out["thresholds_uniform"] = (
            f"all {lim.n_neurons:,} thresholds have risen together (spread {spread:.1%} of their "
            f"rise, healthy > {THETA_SPREAD_MIN:.0%}): every neuron answers every digit"
        )
    if s["retry_cap_share"] > RETRY_CAP_MAX:
        out["retry_cap"] = (
            f"{s['retry_cap_share']:.0%} of the last digits were shown {1 + lim.max_retries} "
            f"times, the most encoding.max_retries = {lim.max_retries} allows (healthy: under "
            f"{RETRY_CAP_MAX:.0%})"
        )
    if s["active_share"] > ACTIVE_SHARE_MAX:
        out["spikes_high"] = (
            f"{float(np.mean(spikes)):,.0f} spikes per digit from {s['active_share']:.0%} of the "
            f"neurons (a competing layer fires a few per cent; limit {ACTIVE_SHARE_MAX:.0%})"
        )
    if len(spikes) and float(np.median(spikes)) < lim.min_spikes:
        out["spikes_low"] = (
            f"median {float(np.median(spikes)):.0f} spikes per digit even after retries, under "
            f"encoding.min_spikes = {lim.min_spikes}"
        )
    if s["silent_share"] > SILENT_SHARE_MAX:
        out["silent_neurons"] = (
            f"{s['silent_share']:.0%} of the neurons did not fire once in the last "
            f"{lim.window:,} digits (limit {SILENT_SHARE_MAX:.0%})"
        )
    if s["top_winner_share"] > TOP_WINNER_SHARE_MAX:
        out["dominant_neuron"] = (
            f"one neuron answered most strongly {s['top_winner_share']:.0%} of the last "
            f"{lim.window:,} digits (limit {TOP_WINNER_SHARE_MAX:.0%})"
        )
    if position >= lim.stall_after and s["weight_rise"] < WEIGHT_RISE_MIN:
        wmax = s["weight_rise"] * lim.initial_weight_max
        out["weights_stalled"] = (
            f"the largest weight is {wmax:.2f} after {position:,} digits, "
            f"{s['weight_rise']:.2f} times its normalised start (learning grows it past "
            f"{WEIGHT_RISE_MIN:g} times)"
        )
    if s["field_similarity"] > FIELD_SIMILARITY_MAX:
        out["fields_alike"] = (
            f"the receptive fields are alike (mean cosine to their mean "
            f"{s['field_similarity']:.3f}, limit {FIELD_SIMILARITY_MAX:g}): every neuron is "
            "learning the same blob"
        )
    if s["rest_share"] > REST_SHARE_MAX:
        out["thresholds_at_rest"] = (
            f"{s['rest_share']:.0%} of the neurons have a threshold within {REST_MARGIN:g} mV of "
            f"the resting potential (limit {REST_SHARE_MAX:.0%}): they won too rarely to hold "
            "theta up, fire at every digit's onset and learn no field"
        )
    if s["theta_budget"] < THETA_BUDGET_MIN_MV:
        out["theta_budget_low"] = (
            f"the layer's {lim.n_neurons:,} neurons fire enough to hold their thresholds "
            f"{s['theta_budget']:.1f} mV above base on average, where theta settles (limit "
            f"{THETA_BUDGET_MIN_MV:g} mV; the 100- and 400-neuron presets hold 45-51): thresholds "
            "this low let neurons fire without a learned field; a decay about "
            f"{THETA_BUDGET_AIM_MV / s['theta_budget']:.1f} times slower would hold "
            f"{THETA_BUDGET_AIM_MV:g} mV at this firing"
        )
    return out


def warning_line(name: str, message: str, position: int, lim: Limits) -> str:
    """The one-line warning for flag ``name``: where, what, and the keys that usually fix it."""
    check = next(c for c in CHECKS if c.name == name)
    keys = ", ".join(fix_keys(check, lim.neuron, lim.rule))
    return (
        f"warning: training health '{name}' at digit {position:,}: {message}; {check.verb} {keys}"
    )


# --- the monitor --------------------------------------------------------------------------------
@dataclass
class HealthMonitor:
    """Follows a training session chunk by chunk: :meth:`observe` returns the chunk's signals and
    flags; :meth:`announce` the lines to print for flags not announced before (once each)."""

    limits: Limits
    #: (digits, [N] summed spikes, [B] winners, presentations): the window's chunks
    _counts: deque = field(default_factory=deque)
    _seen: int = 0
    announced: dict[str, int] = field(default_factory=dict)  # flag -> first position

    def observe(
        self,
        position: int,
        neuron_spikes: np.ndarray,
        spikes: np.ndarray,
        retries: np.ndarray,
        theta: np.ndarray,
        weights: np.ndarray,
    ) -> tuple[dict[str, float], dict[str, str]]:
        """The signals (:data:`SIGNALS`) and flags (``{name: message}``) after a chunk.

        ``neuron_spikes`` ``[B, N]``, ``spikes`` and ``retries`` ``[B]`` are the chunk's
        :class:`~stdp_pipeline.sim.present.TrainStats`; ``theta`` and ``weights`` the learned
        state after it; ``position`` the digits presented after it."""
        lim = self.limits
        counts = np.asarray(neuron_spikes, np.float32).reshape(len(spikes), -1)
        presented = float(len(retries) + np.sum(retries))  # this chunk's presentations
        self._counts.append(
            (len(counts), counts.sum(axis=0), winners(counts, lim.groups), presented)
        )
        self._seen += len(counts)
        while self._counts and self._seen - self._counts[0][0] >= lim.window:
            self._seen -= self._counts.popleft()[0]
        full = self._seen >= lim.window
        total = np.sum([c[1] for c in self._counts], axis=0)
        won = np.concatenate([c[2] for c in self._counts])
        shown = sum(c[3] for c in self._counts)
        signals = {
            "active_share": active_share(counts),
            "retry_cap_share": retry_cap_share(retries, lim.max_retries),
            "theta_spread": theta_spread(theta, lim.theta_init),
            "silent_share": silent_share(total, lim.groups) if full else float("nan"),
            "top_winner_share": top_winner_share(won, lim.n_neurons // lim.groups)
            if full
            else float("nan"),
            "weight_rise": float(np.max(weights)) / lim.initial_weight_max
            if lim.initial_weight_max > 0
            else float("nan"),
            "field_similarity": field_similarity(weights),
            "rest_share": rest_share(theta, lim.theta_at_rest),
            "theta_budget": theta_budget(float(total.sum()), shown, lim) if full else float("nan"),
        }
        flags = evaluate(
            {**signals, "theta_rise": theta_rise(theta, lim.theta_init)}, spikes, position, lim
        )
        return signals, flags

    def announce(self, flags: dict[str, str], position: int) -> list[str]:
        """Warning lines for the flags in ``flags`` not announced before (each flag once)."""
        lines = []
        for name in CHECK_NAMES:
            if name in flags and name not in self.announced:
                self.announced[name] = position
                lines.append(warning_line(name, flags[name], position, self.limits))
        return lines


def flag_row(flags: Iterable[str]) -> dict[str, int]:
    """The flag columns of a curve row: ``{flag_<name>: 0 or 1}`` for every check."""
    raised = set(flags)
    return {c.column: int(c.name in raised) for c in CHECKS}
