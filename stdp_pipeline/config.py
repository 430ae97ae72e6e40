"""Experiment configuration: one tree of frozen, validated dataclasses with units in the names.

A config is built from a named preset (``diehl-cook-400``) or a TOML / YAML / JSON file, then
overridden by ``section.key=value`` strings (the CLI's repeatable ``--set``). Every value is checked
on construction; a bad one raises :class:`~stdp_pipeline.errors.PipelineError` with one line that
names the key, the value and what would be right::

    model.tau_mem_ms = -5.0: must be > 0
    unknown key 'model.tau_mem': did you mean 'excitatory.tau_mem_ms'?

A config file may start from a preset with ``base = "diehl-cook-400"`` and change only some keys.
The resolved config is written beside every run as JSON (:meth:`ExperimentConfig.to_dict`) and
read back with :meth:`ExperimentConfig.from_dict`; ``from_dict(c.to_dict()) == c`` always.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import sys
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Union

from .errors import PipelineError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _num(
    default: float,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    doc: str = "",
) -> Any:
    """A numeric field with bounds checked in ``__post_init__``."""
    return field(default=default, metadata={"gt": gt, "ge": ge, "le": le, "lt": lt, "doc": doc})


class _Section:
    """Mixin: validate bounds and types of every field on construction."""

    _section: str = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            key = f"{self._section}.{f.name}" if self._section else f.name
            object.__setattr__(self, f.name, _coerce(key, value, hints[f.name]))
            value = getattr(self, f.name)
            md = f.metadata
            if value is None or not isinstance(value, (int, float)) or isinstance(value, bool):
                continue
            if md.get("gt") is not None and not value > md["gt"]:
                raise PipelineError(f"{key} = {value!r}: must be > {md['gt']}")
            if md.get("ge") is not None and not value >= md["ge"]:
                raise PipelineError(f"{key} = {value!r}: must be >= {md['ge']}")
            if md.get("lt") is not None and not value < md["lt"]:
                raise PipelineError(f"{key} = {value!r}: must be < {md['lt']}")
            if md.get("le") is not None and not value <= md["le"]:
                raise PipelineError(f"{key} = {value!r}: must be <= {md['le']}")
        self._check()

    def _check(self) -> None:
        """Cross-field checks of a section (overridden where needed)."""


def _coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the annotation ``hint``; int becomes float where float is due."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return _coerce(key, value, inner[0])
    if origin is Literal:
        allowed = typing.get_args(hint)
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise PipelineError(f"{key} = {value!r}: must be one of {choices}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise PipelineError(f"{key} = {value!r}: must be true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise PipelineError(f"{key} = {value!r}: must be an integer")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise PipelineError(f"{key} = {value!r}: must be a number")
        if value != value or value in (float("inf"), float("-inf")):
            raise PipelineError(f"{key} = {value!r}: must be a finite number")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise PipelineError(f"{key} = {value!r}: must be a string")
        return value
    return value


@dataclass(frozen=True)
class DataConfig(_Section):
    """Which digits each stage sees. Slices are deterministic: the first ``train_digits`` training
    digits learn; ``assign_digits`` labelled digits starting at ``assign_start`` (default: right
    after the training slice) assign labels; the first ``test_digits`` test digits evaluate."""

    _section = "data"
    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    train_digits: int = _num(60000, gt=0)
    assign_digits: int = _num(10000, gt=0)
    assign_start: int | None = _num(None, ge=0)
    allow_overlap: bool = False
    test_digits: int = _num(10000, gt=0)


@dataclass(frozen=True)
class EncodingConfig(_Section):
    """Poisson rate coding of pixel intensities, presentation timing, and image patches.

    A pixel of intensity ``p`` (0..255) fires at ``p / 255 * rate_max_hz`` Hz (Diehl & Cook:
    ``p / 4`` Hz, at most 63.75 Hz) for ``presentation_ms``. If the excitatory layer fires fewer
    than ``min_spikes`` spikes, the digit is shown again with ``retry_rate_step_hz`` (at 255) added
    to the maximum rate, at most ``max_retries`` times. Between digits the per-sample state relaxes
    for ``rest_ms`` with no input.
    """

    _section = "encoding"
    dt_ms: float = _num(0.5, gt=0, le=10)
    rate_max_hz: float = _num(63.75, gt=0, le=1000)
    presentation_ms: float = _num(350.0, gt=0)
    rest_ms: float = _num(150.0, ge=0)
    min_spikes: int = _num(5, ge=0)
    retry_rate_step_hz: float = _num(31.875, ge=0)
    max_retries: int = _num(8, ge=0, le=64)
    patch_size_px: int = _num(28, gt=0, le=28)
    patch_stride_px: int = _num(28, gt=0, le=28)

    def _check(self) -> None:
        if self.patch_stride_px > self.patch_size_px:
            raise PipelineError(
                f"encoding.patch_stride_px = {self.patch_stride_px}: must be <= "
                f"encoding.patch_size_px = {self.patch_size_px} (a larger stride skips pixels)"
            )
        if self.presentation_ms < self.dt_ms:
            raise PipelineError(
                f"encoding.presentation_ms = {self.presentation_ms}: must be >= "
                f"encoding.dt_ms = {self.dt_ms}"
            )

    @property
    def steps(self) -> int:
        """Number of simulation steps per presentation, ``round(presentation_ms / dt_ms)``."""
        return int(round(self.presentation_ms / self.dt_ms))


@dataclass(frozen=True)
class NetworkConfig(_Section):
    """Layer sizes and the fixed wiring (Diehl & Cook values).

    Excitatory -> inhibitory is one-to-one (identity times ``exc_to_inh_weight``); inhibitory ->
    excitatory is hollow (ones minus identity, times ``inh_to_exc_weight``): an inhibitory neuron
    inhibits every excitatory neuron but its own partner. ``inhibition = false`` removes both.

    With image patches (``encoding.patch_size_px < 28``), ``patch_groups = "separate"`` gives each
    patch position its own group of ``n_excitatory / positions`` neurons (its own weights and
    inhibition); ``"shared"`` has one group of ``n_excitatory`` neurons learn from every position
    (weights shared, each position simulated with its own voltages and inhibition).
    """

    _section = "network"
    n_excitatory: int = _num(400, gt=0, le=100000)
    neuron: Literal["conductance", "current"] = "conductance"
    inhibition: bool = True
    patch_groups: Literal["separate", "shared"] = "separate"
    exc_to_inh_weight: float = _num(10.4, ge=0)
    inh_to_exc_weight: float = _num(17.0, ge=0)


@dataclass(frozen=True)
class ExcitatoryConfig(_Section):
    """Diehl & Cook's conductance-based excitatory neuron with adaptive threshold ``theta``.

    ``tau_mem dv/dt = (v_rest - v) + ge (e_exc - v) + gi (e_inh - v)``; ``dge/dt = -ge / tau_ge``,
    ``dgi/dt = -gi / tau_gi``. Spike when ``v > v_thresh - theta_offset + theta`` and the neuron
    has not spiked for ``spike_block_ms``; then ``v <- v_reset`` (clamped for ``refractory_ms``)
    and ``theta <- theta + theta_plus``; ``dtheta/dt = -theta / tau_theta`` while learning.
    """

    _section = "excitatory"
    v_rest_mv: float = -65.0
    v_reset_mv: float = -65.0
    v_thresh_mv: float = -52.0
    theta_offset_mv: float = _num(20.0, ge=0)
    e_exc_mv: float = 0.0
    e_inh_mv: float = -100.0
    tau_mem_ms: float = _num(100.0, gt=0)
    tau_ge_ms: float = _num(1.0, gt=0)
    tau_gi_ms: float = _num(2.0, gt=0)
    refractory_ms: float = _num(5.0, ge=0)
    spike_block_ms: float = _num(50.0, ge=0)
    theta_init_mv: float = _num(20.0, ge=0)
    theta_plus_mv: float = _num(0.05, ge=0)
    tau_theta_ms: float = _num(1e7, gt=0)


@dataclass(frozen=True)
class InhibitoryConfig(_Section):
    """Diehl & Cook's conductance-based inhibitory neuron (no adaptive threshold)."""

    _section = "inhibitory"
    v_rest_mv: float = -60.0
    v_reset_mv: float = -45.0
    v_thresh_mv: float = -40.0
    e_exc_mv: float = 0.0
    e_inh_mv: float = -85.0
    tau_mem_ms: float = _num(10.0, gt=0)
    tau_ge_ms: float = _num(1.0, gt=0)
    tau_gi_ms: float = _num(2.0, gt=0)
    refractory_ms: float = _num(2.0, ge=0)


@dataclass(frozen=True)
class CurrentLifConfig(_Section):
    """The seed slides' current-based LIF layer (used when ``network.neuron = "current"``).

    Per step of ``dt``: ``v <- v + dt / tau_mem * (-leak * v + resistance * I)`` where ``I`` is the
    summed weight of the input spikes of the step (instantaneous current); spike when
    ``v > thr_base + thr``; reset ``v <- 0`` (clamped for ``refractory_ms``); adaptive threshold
    ``thr <- thr - thr_alpha * thr + thr_beta * S``. Inhibitory neurons are the same layer without
    adaptation; an inhibitory spike subtracts ``network.inh_to_exc_weight`` from the voltage of
    every excitatory neuron but its partner.
    """

    _section = "current_lif"
    tau_mem_ms: float = _num(100.0, gt=0)
    leak: float = _num(1.0, ge=0)
    resistance: float = _num(1.0, gt=0)
    thr_base: float = _num(0.2, gt=0)
    thr_init: float = _num(0.0, ge=0)
    thr_alpha: float = _num(0.0, ge=0, lt=1)
    thr_beta: float = _num(0.002, ge=0)
    refractory_ms: float = _num(5.0, ge=0)
    inh_thr: float = _num(0.5, gt=0)


@dataclass(frozen=True)
class LearningConfig(_Section):
    """Plasticity of the input -> excitatory weights.

    ``rule = "trace"``: Diehl & Cook's trace STDP. Traces ``pre`` (tau_pre), ``post1`` (tau_post1),
    ``post2`` (tau_post2) are set to 1 at their neuron's spike. On a presynaptic spike
    ``w <- clip(w - nu_pre * post1, 0, w_max)``; on a postsynaptic spike
    ``w <- clip(w + nu_post * pre * post2_before, 0, w_max)``.

    ``rule = "event"``: postsynaptic event-based STDP (Tavanaei, Masquelier & Maida 2018): when a
    neuron fires, each incoming weight whose input fired within ``event_window_ms`` before moves
    ``dw = eta * a_plus * (w_max - w (1 + lambda))``, every other one
    ``dw = -eta * a_minus * w (1 + lambda)``.

    Before each digit each neuron's incoming weights are rescaled to sum to ``weight_sum``
    (0 disables). Initial weights are uniform in ``[0, w_init_max]``.
    """

    _section = "learning"
    rule: Literal["trace", "event"] = "trace"
    w_max: float = _num(1.0, gt=0)
    w_init_max: float = _num(0.3, ge=0)
    weight_sum: float = _num(78.0, ge=0)
    tau_pre_ms: float = _num(20.0, gt=0)
    tau_post1_ms: float = _num(20.0, gt=0)
    tau_post2_ms: float = _num(40.0, gt=0)
    nu_pre: float = _num(0.0001, ge=0)
    nu_post: float = _num(0.01, ge=0)
    eta: float = _num(0.0055, ge=0)
    a_plus: float = _num(1.0, ge=0)
    a_minus: float = _num(1.0, ge=0)
    lambda_: float = _num(0.01, ge=0)
    event_window_ms: float = _num(2.0, gt=0)

    def _check(self) -> None:
        if self.w_init_max > self.w_max:
            raise PipelineError(
                f"learning.w_init_max = {self.w_init_max}: must be <= learning.w_max = {self.w_max}"
            )


@dataclass(frozen=True)
class TrainConfig(_Section):
    """Training schedule: passes over the training slice, checkpoints, digits per compiled call."""

    _section = "train"
    epochs: int = _num(1, gt=0)
    checkpoint_every: int = _num(5000, gt=0)
    chunk_digits: int = _num(250, gt=0, le=10000)


@dataclass(frozen=True)
class EvaluateConfig(_Section):
    """Batched inference (label assignment and evaluation): digits simulated at once."""

    _section = "evaluate"
    batch_digits: int = _num(500, gt=0, le=20000)


SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "encoding": EncodingConfig,
    "network": NetworkConfig,
    "excitatory": ExcitatoryConfig,
    "inhibitory": InhibitoryConfig,
    "current_lif": CurrentLifConfig,
    "learning": LearningConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
}
TOP_LEVEL = ("name", "seed")


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole experiment: a name, a seed, and one frozen section per stage of the model."""

    name: str = "diehl-cook-400"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    excitatory: ExcitatoryConfig = field(default_factory=ExcitatoryConfig)
    inhibitory: InhibitoryConfig = field(default_factory=InhibitoryConfig)
    current_lif: CurrentLifConfig = field(default_factory=CurrentLifConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PipelineError(f"name = {self.name!r}: must be a non-empty string")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise PipelineError(f"seed = {self.seed!r}: must be an integer >= 0")
        if self.seed >= 2**31:
            raise PipelineError(f"seed = {self.seed!r}: must be < 2**31")
        enc = self.encoding
        if enc.patch_size_px < 28 and self.network.patch_groups == "separate":
            from .patches import patch_positions

            groups = len(patch_positions(enc.patch_size_px, enc.patch_stride_px))
            if self.network.n_excitatory % groups:
                raise PipelineError(
                    f"network.n_excitatory = {self.network.n_excitatory}: must be a multiple of "
                    f"the {groups} patch positions ({enc.patch_size_px} px patches, stride "
                    f"{enc.patch_stride_px}) to give each its own group"
                )

    # --- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON-serialisable), sections as sub-dicts."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentConfig:
        """Build from a nested dict; unknown keys raise with a did-you-mean suggestion."""
        d = dict(d)
        for key in d:
            if key not in SECTIONS and key not in TOP_LEVEL:
                raise PipelineError(_unknown(key))
        kwargs: dict[str, Any] = {k: d[k] for k in TOP_LEVEL if k in d}
        for name, section_cls in SECTIONS.items():
            sub = d.get(name, {})
            if not isinstance(sub, Mapping):
                raise PipelineError(f"{name} = {sub!r}: must be a table of keys")
            names = {f.name for f in fields(section_cls)}
            for key in sub:
                if key not in names:
                    raise PipelineError(_unknown(f"{name}.{key}"))
            kwargs[name] = section_cls(**sub)
        return cls(**kwargs)

    def fingerprint(self) -> str:
        """Short SHA-256 of the canonical JSON of the config (12 hex digits)."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def with_overrides(self, overrides: Iterable[str]) -> ExperimentConfig:
        """Apply ``section.key=value`` strings (values parsed as TOML scalars, else strings)."""
        d = self.to_dict()
        for item in overrides:
            key, value = parse_override(item)
            _set_dotted(d, key, value)
        return ExperimentConfig.from_dict(d)


# --- keys, overrides and differences ------------------------------------------------------------
def all_keys() -> list[str]:
    """Every valid dotted key, e.g. ``excitatory.tau_mem_ms``."""
    keys = list(TOP_LEVEL)
    for name, section_cls in SECTIONS.items():
        keys += [f"{name}.{f.name}" for f in fields(section_cls)]
    return keys


def _unknown(key: str) -> str:
    keys = all_keys()
    leaf = key.rsplit(".", 1)[-1]
    guess = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if not guess:
        by_leaf = {k.rsplit(".", 1)[-1]: k for k in keys}
        leaf_guess = difflib.get_close_matches(leaf, list(by_leaf), n=1, cutoff=0.6)
        guess = [by_leaf[leaf_guess[0]]] if leaf_guess else []
    hint = f": did you mean '{guess[0]}'?" if guess else " (see `stdp-pipeline config keys`)"
    return f"unknown key '{key}'{hint}"


def parse_override(item: str) -> tuple[str, Any]:
    """Split ``section.key=value``; the value is read as a TOML scalar (``1e-4``, ``true``,
    ``"text"``), a bare word as a string, ``none``/``null`` as None."""
    if "=" not in item:
        raise PipelineError(f"--set {item!r}: expected KEY=VALUE, e.g. network.n_excitatory=100")
    key, raw = (s.strip() for s in item.split("=", 1))
    if not key:
        raise PipelineError(f"--set {item!r}: the key before '=' is empty")
    if raw.lower() in ("none", "null"):
        return key, None
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) == 1 and key in TOP_LEVEL:
        d[key] = value
        return
    if len(parts) != 2 or parts[0] not in SECTIONS or parts[1] not in d[parts[0]]:
        raise PipelineError(_unknown(key))
    d[parts[0]][parts[1]] = value


def diff(a: Mapping[str, Any], b: Mapping[str, Any], prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two nested dicts, as ``key: a -> b`` lines."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key, "<missing>"), b.get(key, "<missing>")
        name = f"{prefix}{key}"
        if isinstance(va, Mapping) and isinstance(vb, Mapping):
            out += diff(va, vb, prefix=f"{name}.")
        elif va != vb:
            out.append(f"{name}: {va!r} -> {vb!r}")
    return out


# --- presets and files --------------------------------------------------------------------------
def preset_names() -> list[str]:
    """Names of the presets shipped in ``stdp_pipeline/presets/``."""
    folder = resources.files("stdp_pipeline") / "presets"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def _read_file(path: Path) -> dict[str, Any]:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise PipelineError(f"{path}: cannot read config file ({err.strerror})") from None
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text) or {}
        elif suffix == ".json":
            data = json.loads(text)
        else:
            raise PipelineError(
                f"{path}: unknown config format '{suffix}': use .toml, .yaml or .json"
            )
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, ValueError) as err:
        first = str(err).splitlines()[0]
        raise PipelineError(f"{path}: not valid {suffix[1:].upper()}: {first}") from None
    except ImportError:
        raise PipelineError(f"{path}: reading YAML needs PyYAML (pip install pyyaml)") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: must hold a table of sections, found {type(data).__name__}")
    return data


def _raw(source: str, _seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """Nested dict of a preset or file, with ``base = ...`` chains merged (child wins)."""
    if source in _seen:
        raise PipelineError(f"config base chain loops: {' -> '.join((*_seen, source))}")
    path = Path(source)
    if path.suffix.lower() in (".toml", ".yaml", ".yml", ".json") or path.exists():
        if not path.exists():
            raise PipelineError(f"config file '{source}' does not exist")
        data = _read_file(path)
    elif source in preset_names():
        text = (resources.files("stdp_pipeline") / "presets" / f"{source}.toml").read_text()
        data = tomllib.loads(text)
    else:
        guess = difflib.get_close_matches(source, preset_names(), n=1)
        hint = f"did you mean '{guess[0]}'? " if guess else ""
        raise PipelineError(
            f"config '{source}' is neither a file nor a preset: {hint}"
            f"presets are {', '.join(preset_names())}"
        )
    base = data.pop("base", None)
    if base is None:
        data.setdefault("name", path.stem if path.suffix else source)
        return data
    merged = _raw(str(base), (*_seen, source))
    merged.pop("name", None)
    for key, value in data.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    merged.setdefault("name", path.stem if path.suffix else source)
    return merged


def load_config(source: str | Path, overrides: Iterable[str] = ()) -> ExperimentConfig:
    """Resolve a preset name or config file, then apply ``--set`` overrides."""
    return ExperimentConfig.from_dict(_raw(str(source))).with_overrides(overrides)


def to_toml(config: ExperimentConfig) -> str:
    """The config as TOML text (for ``stdp-pipeline config show``); None values are omitted."""
    lines = [f'name = "{config.name}"', f"seed = {config.seed}", ""]
    for name, sub in config.to_dict().items():
        if not isinstance(sub, dict):
            continue
        lines.append(f"[{name}]")
        for key, value in sub.items():
            if value is None:
                continue
            lines.append(f"{key} = {json.dumps(value)}")
        lines.append("")
    return "\n".join(lines)
