"""Experiment configuration: one tree of frozen, validated sections with units in the names.

A config is built from a named preset (``diehl-cook-400``) or a TOML / YAML / JSON file, then
overridden by ``section.key=value`` strings (the CLI's repeatable ``--set``). Every value is checked
on construction; a bad one raises :class:`~stdp_pipeline.errors.PipelineError` with one line that
names the key, the value and what would be right::

    excitatory.tau_mem_ms = -5.0: must be > 0
    unknown key 'model.tau_mem': did you mean 'excitatory.tau_mem_ms'?

The tree has the core sections below (``data``, ``encoding``, ``network``, ``learning``,
``train``, ``evaluate``) and one or more sections per registered model part, declared in the
part's own file (:mod:`stdp_pipeline.sim.registry`): ``excitatory`` and ``inhibitory`` (the
conductance neuron), ``current_lif``, ``trace_stdp``, ``event_stdp``, ``poisson``, ``latency``.
``network.neuron``, ``learning.rule`` and ``encoding.code`` choose which part runs; every part's
section is always present, so any key can be set whatever part is chosen.

A config file may start from a preset with ``base = "diehl-cook-400"`` and change only some keys.
The resolved config is written beside every run as JSON (:meth:`ExperimentConfig.to_dict`) and
read back with :meth:`ExperimentConfig.from_dict`; ``from_dict(c.to_dict()) == c`` always. Keys
of earlier versions (``learning.nu_post``, ``encoding.rate_max_hz``, ...) are read from files into
their new sections (:data:`MOVED_KEYS`).
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
import math
import sys
import types
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.params import Section, choice, num

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


def _neurons() -> list[str]:
    from stdp_pipeline.sim import registry

    return list(registry.NEURONS)


def _rules() -> list[str]:
    from stdp_pipeline.sim import registry

    return list(registry.RULES)


def _codes() -> list[str]:
    from stdp_pipeline.sim import registry

    return list(registry.CODES)


def part_sections() -> dict[str, type]:
    """The config sections of every registered model part, name -> section class."""
    from stdp_pipeline.sim import registry

    return registry.sections()


@dataclass(frozen=True)
class DataConfig(Section):
    """Which digits each stage sees. Slices are deterministic: the first ``train_digits`` training
    digits learn; ``assign_digits`` labelled digits starting at ``assign_start`` (default: right
    after the training slice) assign labels; the first ``test_digits`` test digits evaluate."""

    _section = "data"
    dataset: Literal["mnist", "fashion-mnist"] = "mnist"
    train_digits: int = num(60000, gt=0)
    assign_digits: int = num(10000, gt=0)
    assign_start: int | None = num(None, ge=0)
    allow_overlap: bool = False
    test_digits: int = num(10000, gt=0)


@dataclass(frozen=True)
class EncodingConfig(Section):
    """Input coding, presentation timing, and image patches.

    ``code`` names the input code (:data:`stdp_pipeline.sim.registry.CODES`; its own section
    holds its parameters, e.g. ``poisson.rate_max_hz``). Each digit is shown for
    ``presentation_ms`` at steps of ``dt_ms``. If the excitatory layer fires fewer than
    ``min_spikes`` spikes, the digit is shown again at the code's next retry level (Poisson: a
    higher rate), at most ``max_retries`` times. Between digits the network rests for ``rest_ms``
    with no input: ``rest = "reset"`` takes the rest as a full relaxation (every presentation
    starts from the resting state; theta decays over the rest), ``rest = "simulate"`` simulates
    it step by step with learning on and carries the per-sample state (voltages, conductances,
    traces) from one presentation to the next, as the authors' code does. Inference (assign,
    evaluate) always starts each digit from rest, so that digits can be batched.
    """

    _section = "encoding"
    code: str = choice("poisson", _codes)
    dt_ms: float = num(0.5, gt=0, le=10)
    presentation_ms: float = num(350.0, gt=0)
    rest_ms: float = num(150.0, ge=0)
    rest: Literal["reset", "simulate"] = "reset"
    min_spikes: int = num(5, ge=0)
    max_retries: int = num(8, ge=0, le=64)
    patch_size_px: int = num(28, gt=0, le=28)
    patch_stride_px: int = num(28, gt=0, le=28)

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
class NetworkConfig(Section):
    """Layer sizes, the neuron model and the fixed wiring (Diehl & Cook values).

    ``neuron`` names the neuron model of both layers (:data:`stdp_pipeline.sim.registry.NEURONS`).
    Excitatory -> inhibitory is one-to-one (identity times ``exc_to_inh_weight``); inhibitory ->
    excitatory is hollow (ones minus identity, times ``inh_to_exc_weight``): an inhibitory neuron
    inhibits every excitatory neuron but its own partner. ``inhibition = false`` removes both.

    With image patches (``encoding.patch_size_px < 28``), ``patch_groups = "separate"`` gives each
    patch position its own group of ``n_excitatory / positions`` neurons (its own weights and
    inhibition); ``"shared"`` has one group of ``n_excitatory`` neurons learn from every position
    (weights shared, each position simulated with its own voltages and inhibition).

    ``input_delay_max_ms`` (0 = none): every input -> excitatory synapse gets its own delay,
    uniform in ``[0, input_delay_max_ms)`` from the seed, with trace STDP seen through it as in
    the authors' code (10 ms there; see :mod:`stdp_pipeline.sim.delays`).
    """

    _section = "network"
    n_excitatory: int = num(400, gt=0, le=100000)
    neuron: str = choice("conductance", _neurons)
    inhibition: bool = True
    patch_groups: Literal["separate", "shared"] = "separate"
    exc_to_inh_weight: float = num(10.4, ge=0)
    inh_to_exc_weight: float = num(17.0, ge=0)
    input_delay_max_ms: float = num(0.0, ge=0, le=100)


@dataclass(frozen=True)
class LearningConfig(Section):
    """Plasticity of the input -> excitatory weights: which rule, and what every rule shares.

    ``rule`` names the learning rule (:data:`stdp_pipeline.sim.registry.RULES`; its own section
    holds its parameters, e.g. ``trace_stdp.nu_post``). Weights stay in ``[0, w_max]``; before each
    digit each neuron's incoming weights are rescaled to sum to ``weight_sum`` (0 disables).
    Initial weights are uniform in ``[w_init_min, w_init_max]`` (the authors' code draws
    ``(U + 0.01) * 0.3``: ``[0.003, 0.303]``).
    """

    _section = "learning"
    rule: str = choice("trace", _rules)
    w_max: float = num(1.0, gt=0)
    w_init_max: float = num(0.3, ge=0)
    w_init_min: float = num(0.0, ge=0)
    weight_sum: float = num(78.0, ge=0)

    def _check(self) -> None:
        if self.w_init_min > self.w_init_max:
            raise PipelineError(
                f"learning.w_init_min = {self.w_init_min}: must be <= learning.w_init_max = "
                f"{self.w_init_max}"
            )
        if self.w_init_max > self.w_max:
            raise PipelineError(
                f"learning.w_init_max = {self.w_init_max}: must be <= learning.w_max = {self.w_max}"
            )


@dataclass(frozen=True)
class TrainConfig(Section):
    """Training schedule: passes over the training slice, checkpoints, digits per compiled call,
    and the engine of the learning presentations.

    ``engine``: ``"xla"``, the compiled TensorFlow program (every model, CPU or GPU), or
    ``"native"``, one C loop per presentation compiled on first use by the system's C compiler
    (CPU; Diehl & Cook's whole-digit network with conductance neurons and trace STDP; several
    times faster; float32 results may differ from ``"xla"`` in the last bits, see
    :mod:`stdp_pipeline.sim.native`).
    """

    _section = "train"
    epochs: int = num(1, gt=0)
    checkpoint_every: int = num(5000, gt=0)
    chunk_digits: int = num(250, gt=0, le=10000)
    engine: Literal["xla", "native"] = "xla"


@dataclass(frozen=True)
class EvaluateConfig(Section):
    """Batched inference (label assignment and evaluation): digits simulated at once, and the
    lateral inhibition that inference runs with.

    ``inh_to_exc_weight`` (None: ``network.inh_to_exc_weight``, the value training ran with) is
    the hollow inhibitory -> excitatory weight of every inference presentation (``assign``,
    ``evaluate``; the labels and the read-out are fitted on the same responses as the test
    digits get). Learning needs strong inhibition so that neurons learn different fields; a
    weaker one at inference lets several neurons of a group answer a digit, a graded code that
    the linear read-out uses better (README, "Results").

    ``engine``: ``"xla"``, batches of digits in one compiled TensorFlow program, or ``"native"``,
    digits one after another in C, a batch per core (as ``train.engine``; conductance neurons,
    whole digits; see :mod:`stdp_pipeline.sim.native`).
    """

    _section = "evaluate"
    batch_digits: int = num(500, gt=0, le=20000)
    inh_to_exc_weight: float | None = num(None, ge=0)
    engine: Literal["xla", "native"] = "xla"


#: The core sections, in the order they are written.
CORE_SECTIONS: dict[str, type] = {
    "data": DataConfig,
    "encoding": EncodingConfig,
    "network": NetworkConfig,
    "learning": LearningConfig,
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
}
TOP_LEVEL = ("name", "seed")

#: Keys of earlier versions and where they live now; files written with them still load.
MOVED_KEYS: dict[str, str] = {
    **{f"learning.{k}": f"trace_stdp.{k}" for k in (
        "tau_pre_ms", "tau_post1_ms", "tau_post2_ms", "nu_pre", "nu_post")},
    **{f"learning.{k}": f"event_stdp.{k}" for k in (
        "eta", "a_plus", "a_minus", "lambda_", "event_window_ms")},
    "encoding.rate_max_hz": "poisson.rate_max_hz",
    "encoding.retry_rate_step_hz": "poisson.retry_rate_step_hz",
}  # fmt: skip


def sections() -> dict[str, type]:
    """Every section of the tree, core first, then the parts' (name -> section class)."""
    return {**CORE_SECTIONS, **part_sections()}


def _migrate(d: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the nested dict ``d`` with keys of :data:`MOVED_KEYS` moved to their sections."""
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in d.items()}
    for old, new in MOVED_KEYS.items():
        section, key = old.split(".")
        if isinstance(out.get(section), dict) and key in out[section]:
            new_section, new_key = new.split(".")
            value = out[section].pop(key)
            target = out.setdefault(new_section, {})
            if isinstance(target, dict):
                if new_key in target and target[new_key] != value:
                    raise PipelineError(
                        f"{old} = {value!r} and {new} = {target[new_key]!r}: {old} is the old "
                        f"name of {new}; give only {new}"
                    )
                target[new_key] = value
    return out


@dataclass(frozen=True)
class ExperimentConfig:
    """The whole experiment: a name, a seed, the core sections, and the model parts' sections.

    Part sections are reached as attributes like the core ones (``config.excitatory``,
    ``config.trace_stdp``) and are held in ``parts`` (section name -> frozen section).
    """

    name: str = "diehl-cook-400"
    seed: int = 0
    data: DataConfig = field(default_factory=DataConfig)
    encoding: EncodingConfig = field(default_factory=EncodingConfig)
    network: NetworkConfig = field(default_factory=NetworkConfig)
    learning: LearningConfig = field(default_factory=LearningConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = field(default_factory=EvaluateConfig)
    parts: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PipelineError(f"name = {self.name!r}: must be a non-empty string")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise PipelineError(f"seed = {self.seed!r}: must be an integer >= 0")
        if self.seed >= 2**31:
            raise PipelineError(f"seed = {self.seed!r}: must be < 2**31")
        declared = part_sections()
        parts = dict(self.parts)
        for key in parts:
            if key not in declared:
                raise PipelineError(_unknown(key))
        for key, cls in declared.items():
            value = parts.get(key)
            if value is None:
                parts[key] = cls()
            elif isinstance(value, Mapping):
                parts[key] = cls(**value)
            elif not isinstance(value, cls):
                raise PipelineError(f"{key} = {value!r}: must be a table of keys")
        object.__setattr__(self, "parts", types.MappingProxyType(parts))
        for key, engine, learning in (
            ("train.engine", self.train.engine, True),
            ("evaluate.engine", self.evaluate.engine, False),
        ):
            why = self.native_problem(learning) if engine == "native" else None
            if why is not None:
                raise PipelineError(f"{key} = 'native' does not run {why}; use {key} = 'xla'")
        enc = self.encoding
        if enc.patch_size_px < 28 and self.network.patch_groups == "separate":
            from stdp_pipeline.geometry import patch_positions

            groups = len(patch_positions(enc.patch_size_px, enc.patch_stride_px))
            if self.network.n_excitatory % groups:
                raise PipelineError(
                    f"network.n_excitatory = {self.network.n_excitatory}: must be a multiple of "
                    f"the {groups} patch positions ({enc.patch_size_px} px patches, stride "
                    f"{enc.patch_stride_px}) to give each its own group"
                )

    def input_delay_steps(self) -> int:
        """``H``: the number of distinct input delays in steps,
        ``ceil(network.input_delay_max_ms / encoding.dt_ms)`` (0 when there are no delays)."""
        d = self.network.input_delay_max_ms
        return int(math.ceil(d / self.encoding.dt_ms - 1e-9)) if d > 0 else 0

    def stack_problem(self) -> str | None:
        """Why networks of this config cannot learn as one stack (:mod:`stdp_pipeline.sim.stack`,
        ``--stack``) whatever their seeds, or None: a stack is one compiled TensorFlow program
        without input delays."""
        if self.input_delay_steps():
            return (
                f"network.input_delay_max_ms = {self.network.input_delay_max_ms}: networks with "
                "input delays do not learn as one stack"
            )
        if self.train.engine != "xla":
            return (
                f"train.engine = {self.train.engine!r}: a stack is one compiled TensorFlow "
                "program (train.engine = 'xla'); the native engine trains each network alone, "
                "faster than a stack"
            )
        return None

    def native_problem(self, learning: bool = True) -> str | None:
        """Why the native engine (:mod:`stdp_pipeline.sim.native`) cannot run this config with
        learning on (``learning``) or off, or None when it can: it runs conductance neurons on
        whole digits, input delays up to 64 steps; learning, trace STDP."""
        if self.network.neuron != "conductance":
            return f"network.neuron = {self.network.neuron!r} (it runs 'conductance')"
        if self.encoding.patch_size_px < 28:
            return (
                f"encoding.patch_size_px = {self.encoding.patch_size_px} (it runs whole digits, 28)"
            )
        h, dt = self.input_delay_steps(), self.encoding.dt_ms
        if h > 64:
            return (
                f"network.input_delay_max_ms = {self.network.input_delay_max_ms} ({h} steps of "
                f"{dt} ms; it runs delays up to 64 steps, {64 * dt:g} ms)"
            )
        if not learning:
            return None
        if self.learning.rule != "trace":
            return f"learning.rule = {self.learning.rule!r} (it runs 'trace')"
        return None

    def __getattr__(self, name: str) -> Any:
        """A part's section as an attribute (``config.excitatory``)."""
        parts = self.__dict__.get("parts")
        if parts is not None and name in parts:
            return parts[name]
        raise AttributeError(f"{type(self).__name__} has no section {name!r}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExperimentConfig):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __hash__(self) -> int:
        return hash(self.fingerprint())

    def replace(self, **changes: Any) -> ExperimentConfig:
        """A copy with whole sections or top-level values replaced (``replace(seed=3)``)."""
        d = self.to_dict()
        for key, value in changes.items():
            d[key] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value
        return ExperimentConfig.from_dict(d)

    # --- conversions -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Nested plain dict (JSON-serialisable), sections as sub-dicts, part sections beside
        the core ones."""
        out: dict[str, Any] = {"name": self.name, "seed": self.seed}
        for key in CORE_SECTIONS:
            out[key] = dataclasses.asdict(getattr(self, key))
        for key, section in self.parts.items():
            out[key] = dataclasses.asdict(section)
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ExperimentConfig:
        """Build from a nested dict; unknown keys raise with a did-you-mean suggestion."""
        d = _migrate(d)
        known = sections()
        for key in d:
            if key not in known and key not in TOP_LEVEL:
                raise PipelineError(_unknown(key))
        kwargs: dict[str, Any] = {k: d[k] for k in TOP_LEVEL if k in d}
        parts: dict[str, Any] = {}
        for name, section_cls in known.items():
            sub = d.get(name, {})
            if not isinstance(sub, Mapping):
                raise PipelineError(f"{name} = {sub!r}: must be a table of keys")
            names = {f.name for f in fields(section_cls)}
            for key in sub:
                if key not in names:
                    raise PipelineError(_unknown(f"{name}.{key}"))
            if name in CORE_SECTIONS:
                kwargs[name] = section_cls(**sub)
            else:
                parts[name] = section_cls(**sub)
        return cls(**kwargs, parts=parts)

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
    for name, section_cls in sections().items():
        keys += [f"{name}.{f.name}" for f in fields(section_cls)]
    return keys


def _unknown(key: str) -> str:
    if key in MOVED_KEYS:
        return f"unknown key '{key}': it moved to '{MOVED_KEYS[key]}'"
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
    except (tomllib.TOMLDecodeError, RecursionError):  # not a TOML scalar: a bare string
        value = raw
    return key, value


def _set_dotted(d: dict[str, Any], key: str, value: Any) -> None:
    parts = key.split(".")
    if len(parts) == 1 and key in TOP_LEVEL:
        d[key] = value
        return
    if len(parts) != 2 or parts[0] not in d or not isinstance(d[parts[0]], dict):
        raise PipelineError(_unknown(key))
    if parts[1] not in d[parts[0]]:
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
    """The table of a config file: at most :data:`~stdp_pipeline.io.reading.MAX_CONFIG_BYTES`,
    UTF-8, valid TOML / YAML / JSON by its suffix, with string keys; else one-line errors."""
    from stdp_pipeline.io import reading

    suffix = path.suffix.lower()
    if suffix not in (".toml", ".yaml", ".yml", ".json"):
        raise PipelineError(f"{path}: unknown config format '{suffix}': use .toml, .yaml or .json")
    text = reading.read_text(path, limit=reading.MAX_CONFIG_BYTES, what="config file")
    kind = "YAML" if suffix in (".yaml", ".yml") else suffix[1:].upper()
    try:
        if suffix == ".toml":
            data = tomllib.loads(text)
        elif kind == "YAML":
            try:
                import yaml
            except ImportError:
                raise PipelineError(
                    f"{path}: reading YAML needs PyYAML (pip install pyyaml)"
                ) from None
            try:
                data = yaml.safe_load(text)
            except yaml.YAMLError as err:
                raise PipelineError(f"{path}: not valid YAML: {_yaml_problem(err)}") from None
            data = {} if data is None else data
        else:
            data = json.loads(text)
    except (tomllib.TOMLDecodeError, ValueError) as err:  # JSONDecodeError is a ValueError
        first = str(err).splitlines()[0]
        raise PipelineError(f"{path}: not valid {kind}: {first}") from None
    except RecursionError:
        raise PipelineError(f"{path}: not valid {kind}: nested too deeply") from None
    if not isinstance(data, dict):
        raise PipelineError(f"{path}: must hold a table of sections, found {type(data).__name__}")
    _check_keys(data, path)
    return data


def _yaml_problem(err: Exception) -> str:
    """One line of a PyYAML error: the problem and where (line, column), without the snippet."""
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    mark = getattr(err, "problem_mark", None)
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""
    return f"{problem}{where}"


def _check_keys(table: Mapping[Any, Any], path: Path, prefix: str = "") -> None:
    """Refuse keys that are not strings (YAML allows ``1: 2`` or ``2020-01-01: x``)."""
    for key, value in table.items():
        if not isinstance(key, str):
            raise PipelineError(
                f"{path}: key {key!r}{f' in [{prefix[:-1]}]' if prefix else ''} is not a string: "
                "config keys are names such as network.n_excitatory"
            )
        if isinstance(value, Mapping):
            _check_keys(value, path, f"{prefix}{key}.")


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
    data = _migrate(data)  # keys of earlier versions, before the child meets its base
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
