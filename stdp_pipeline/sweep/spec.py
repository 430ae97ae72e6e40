"""The sweep file: a base config, the keys to vary, the seeds and the stages, resolved into runs.

A sweep file is read by the config loader (TOML, YAML or JSON). Its keys::

    name = "event-rule-grid"          # optional: names the default folder results/sweeps/<name>
                                      # (default: the file's stem)
    base = "event-stdp-patches"       # a preset or a config file (a relative path is looked for
                                      # beside the sweep file first, then from the current folder)
    seeds = [0, 1, 2]                 # or a count: seeds = 3 means 0, 1, 2
                                      # (default: the base config's seed)
    stages = ["encode", "train", "assign", "evaluate"]   # the default; must include "evaluate";
                                      # may add "fields", "reconstruct", "curves"
    metric = "all_activity"           # ranks the points: all_activity, proportion or linear

    [set]                             # fixed overrides of every point (like --set)
    "data.train_digits" = 10000       # or as a table: [set.data] train_digits = 10000

    [grid]                            # every combination of these
    "event_stdp.eta" = [0.0005, 0.001, 0.002]               # the values
    "event_stdp.event_window_ms" = { range = [5, 20], num = 4 }      # 5, 10, 15, 20
    "poisson.rate_max_hz" = { logrange = [30, 120], num = 3 }        # 30, 60, 120
    "train.chunk_digits" = { range = [100, 400], step = 100 }        # 100, 200, 300, 400

    [zip]                             # keys varied together: the n-th values make one
                                      # combination, taken with every grid point (equal lengths)
    "encoding.patch_size_px" = [10, 12, 16]
    "encoding.patch_stride_px" = [6, 4, 4]
    "network.n_excitatory" = [1600, 1600, 1600]

    [random]                          # samples drawn at random, each one with every grid point
    samples = 8
    seed = 0                          # the samples depend only on this seed and the file
    "trace_stdp.nu_post" = { loguniform = [1e-3, 1e-1] }
    "excitatory.theta_plus_mv" = { uniform = [0.02, 0.1] }
    "network.n_excitatory" = { choice = [100, 400] }
    "train.checkpoint_every" = { randint = [1000, 5000] }            # both ends included

    [resources]                       # optional, per Ray task (see the engine for the defaults)
    cpus_per_task = 2
    gpus_per_task = 0.5
    max_retries = 2                   # reruns of a task whose worker died

Keys are the config's dotted keys (``stdp-pipeline config keys``); ``seed`` is varied by
``seeds`` only. Nested tables (``[grid.event_stdp]`` with ``eta = [...]``) mean the same as quoted
dotted keys. Ranges over an integer key give integers (rounded, repeats dropped); random floats
are rounded to 4 significant digits, so that the run names stay readable and a rerun draws the
same points.

A *point* is one combination of the swept values; with each seed it makes one *run*, an ordinary
run directory ``<point>/seed=<s>/`` in the sweep folder, named from the swept values, e.g.
``eta=0.001,event_window_ms=5/seed=0`` (the key's last part, or the whole key where two swept
keys share it; ``base`` when nothing is swept).

:func:`load_sweep` checks everything and builds every run's config before anything runs: a typo
in a key, a bad range, a value the config refuses (``network.n_excitatory = 0: must be > 0``)
fails the whole sweep at once, with one line naming the key. A value that is a valid config but
fails when a stage runs (e.g. ``data.test_digits = 20000``, more than MNIST holds) fails only its
runs, each recorded with its one-line error.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.config import (
    MOVED_KEYS,
    ExperimentConfig,
    _raw,
    _read_file,
    all_keys,
    sections,
)

#: The stages a sweep runs unless the file says otherwise.
DEFAULT_STAGES = ("encode", "train", "assign", "evaluate")
#: The accuracies of ``metrics.json`` a sweep can rank its points by.
METRICS = ("all_activity", "proportion", "linear")
_TOP_KEYS = (
    "name", "base", "seeds", "stages", "metric", "set", "grid", "zip", "random", "resources"
)  # fmt: skip
_GRID_SPECS = ("values", "range", "logrange")
_RANDOM_SPECS = ("uniform", "loguniform", "randint", "choice")
_SPEC_WORDS = (*_GRID_SPECS, *_RANDOM_SPECS, "num", "step")
_RESOURCE_KEYS = ("cpus_per_task", "gpus_per_task", "max_retries")
_CONFIG_SUFFIXES = (".toml", ".yaml", ".yml", ".json")
_NAME_CHARS = re.compile(r"[^A-Za-z0-9._+=,-]")
_MAX_NAME = 150
_SIGNIFICANT = 4


@dataclass(frozen=True)
class Axis:
    """One swept key: ``kind`` ``"grid"`` (``values`` are its values), ``"zip"`` (its values, the
    n-th of each zipped key going together) or ``"random"`` (``values`` holds the spec, e.g.
    ``("loguniform", 1e-3, 1e-1)``); ``log`` says the key was given on a log scale (the plot
    draws it so)."""

    key: str
    kind: str
    values: tuple[Any, ...]
    log: bool = False


@dataclass(frozen=True)
class Point:
    """One combination of swept values: its folder ``name`` and the ``overrides`` (swept key ->
    value, in the order of the axes)."""

    name: str
    overrides: Mapping[str, Any]


@dataclass(frozen=True)
class RunSpec:
    """One point with one seed: the run directory ``relpath`` inside the sweep folder
    (``<point>/seed=<s>``) and the run's whole config."""

    point: Point
    seed: int
    relpath: str
    config: ExperimentConfig


#: Config sections that only the stages after ``train`` read: runs of a sweep whose configs
#: differ in these alone share one training (the engine trains one and the others take it over).
AFTER_TRAINING = ("evaluate",)


def training_key(config: ExperimentConfig) -> str:
    """What ``encode`` and ``train`` read of ``config``: all of it but :data:`AFTER_TRAINING`,
    as canonical JSON. Two runs with the same key learn the same network, bit for bit."""
    d = {k: v for k, v in config.to_dict().items() if k not in AFTER_TRAINING}
    return json.dumps(d, sort_keys=True, default=str)


@dataclass(frozen=True)
class Resources:
    """What the file asks of each Ray task (``None``: the engine's default)."""

    cpus_per_task: float | None = None
    gpus_per_task: float | None = None
    max_retries: int = 2


@dataclass(frozen=True)
class SweepSpec:
    """A sweep file, resolved: every point, seed and run config built and checked."""

    name: str
    source: Path
    base: str
    fixed: Mapping[str, Any]
    axes: tuple[Axis, ...]
    points: tuple[Point, ...]
    seeds: tuple[int, ...]
    stages: tuple[str, ...]
    metric: str
    resources: Resources
    runs: tuple[RunSpec, ...]
    raw: Mapping[str, Any]
    #: Arguments of the stage functions beyond their defaults, per stage (e.g. ``{"train":
    #: {"epochs": 2}}``): what ``--epochs``, ``--limit`` and ``--strict`` give a seeds run.
    options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    #: The stages the folder's record names (``sweep.json``; the summary counts a run finished
    #: when all are done) when they are more than ``stages``, the ones to run now: a stage run
    #: over a seeds folder keeps the stages it was made with.
    recorded_stages: tuple[str, ...] = ()

    @property
    def swept(self) -> tuple[str, ...]:
        """The swept keys, in the order of the file."""
        return tuple(a.key for a in self.axes)

    def plan(self) -> dict[str, Any]:
        """The JSON record of the sweep (written as ``sweep.json`` in the sweep folder)."""
        return {
            "name": self.name,
            "source": str(self.source),
            "base": self.base,
            "set": dict(self.fixed),
            "axes": [
                {"key": a.key, "kind": a.kind, "values": list(a.values), "log": a.log}
                for a in self.axes
            ],
            "seeds": list(self.seeds),
            "stages": list(self.recorded_stages or self.stages),
            "metric": self.metric,
            "points": [{"name": p.name, "overrides": dict(p.overrides)} for p in self.points],
            "runs": [{"point": r.point.name, "seed": r.seed, "path": r.relpath} for r in self.runs],
            "file": dict(self.raw),
            "options": {name: dict(opts) for name, opts in self.options.items()},
        }


def load_sweep(path: str | Path) -> SweepSpec:
    """Read and resolve the sweep file ``path`` (see the module docstring).

    Raises :class:`PipelineError` with one line naming the file, the key and what would be right
    for anything wrong in it, including a value the config refuses for some point.
    """
    source = Path(path)
    if not source.is_file():
        raise PipelineError(f"sweep file '{source}' does not exist")
    if source.suffix.lower() not in _CONFIG_SUFFIXES:
        raise PipelineError(f"{source}: unknown sweep file format '{source.suffix}': use .toml, "
                            ".yaml or .json")  # fmt: skip
    raw = _read_file(source)
    where = str(source)
    for key in raw:
        if key not in _TOP_KEYS:
            raise PipelineError(f"{where}: unknown entry '{key}'{_hint(key, _TOP_KEYS)}")
    name = raw.get("name", source.stem)
    if not isinstance(name, str) or not name or _NAME_CHARS.sub("", name) != name:
        raise PipelineError(
            f"{where}: name = {name!r}: must be a non-empty folder name of letters, digits and "
            "._+=,-"
        )
    base = _base(raw, source)
    try:
        base_dict = _raw(base)
    except PipelineError as err:
        raise PipelineError(f"{where}: base = {raw['base']!r}: {err}") from None
    try:
        base_config = ExperimentConfig.from_dict(base_dict)
    except PipelineError as err:
        raise PipelineError(f"{where}: base {base}: {err}") from None

    fixed = _flatten(_table(raw, "set", where), leaf=lambda v: False)
    grid = _flatten(_table(raw, "grid", where), leaf=_is_spec)
    zipped = _flatten(_table(raw, "zip", where), leaf=_is_spec)
    random = dict(_table(raw, "random", where))
    samples = random.pop("samples", None)
    rseed = random.pop("seed", 0)
    random = _flatten(random, leaf=_is_spec)
    tables = {"set": fixed, "grid": grid, "zip": zipped, "random": random}
    for table, keys in tables.items():
        for key in keys:
            _check_key(key, f"{where} [{table}]")
    for a, b in itertools.combinations(tables, 2):
        both = sorted(set(tables[a]) & set(tables[b]))
        if both:
            raise PipelineError(f"{where}: '{both[0]}' is in both [{a}] and [{b}]: give it once")

    axes = [_grid_axis(key, spec, f"{where} [grid]") for key, spec in grid.items()]
    axes += _zip_axes(zipped, f"{where} [zip]")
    if random:
        if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
            raise PipelineError(
                f"{where} [random]: samples = {samples!r}: must be a whole number >= 1 (how many "
                "random points to draw)"
            )
        if isinstance(rseed, bool) or not isinstance(rseed, int) or rseed < 0:
            raise PipelineError(f"{where} [random]: seed = {rseed!r}: must be a whole number >= 0")
        axes += [_random_axis(key, spec, f"{where} [random]") for key, spec in random.items()]
    elif samples is not None:
        raise PipelineError(f"{where} [random]: samples = {samples!r} but no key to draw: add "
                            "e.g. \"event_stdp.eta\" = { loguniform = [1e-4, 1e-2] }")  # fmt: skip

    points = _points(axes, samples or 0, rseed)
    seeds = _seeds(raw.get("seeds"), base_config.seed, where)
    stages = _stages(raw.get("stages"), where)
    metric = raw.get("metric", "all_activity")
    if metric not in METRICS:
        raise PipelineError(
            f"{where}: metric = {metric!r}: must be one of {', '.join(METRICS)}"
            f"{_hint(str(metric), METRICS)}"
        )
    resources = _resources(_table(raw, "resources", where), where)

    runs = []
    for point in points:
        for seed in seeds:
            d = json.loads(json.dumps(base_dict))  # a deep copy
            for key, value in {**fixed, **point.overrides}.items():
                _set(d, key, value)
            d["seed"] = seed
            try:
                config = ExperimentConfig.from_dict(d)
            except PipelineError as err:
                at = f"point {point.name}" if point.overrides else "the base with [set]"
                raise PipelineError(f"{where}: {at}, seed {seed}: {err}") from None
            runs.append(RunSpec(point, seed, f"{point.name}/seed={seed}", config))
    return SweepSpec(
        name=name,
        source=source.resolve(),
        base=base,
        fixed=fixed,
        axes=tuple(axes),
        points=tuple(points),
        seeds=seeds,
        stages=stages,
        metric=metric,
        resources=resources,
        runs=tuple(runs),
        raw=raw,
    )


def seeds_sweep(
    base: str,
    overrides: Sequence[str],
    seeds: Sequence[int],
    *,
    name: str,
    stages: Sequence[str],
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> SweepSpec:
    """One config (a preset or file ``base`` plus ``--set`` ``overrides``) with several
    ``seeds``: ``stdp-pipeline run --seeds`` and ``encode --seeds``. Each seed is one run,
    ``seed=<s>/`` in the folder (no point folder: nothing is swept); ``stages`` are run in table
    order with ``options`` (per stage, e.g. ``{"train": {"epochs": 2}}``).

    Raises :class:`PipelineError` with one line for a bad config, override or seed list."""
    from stdp_pipeline.io.config import load_config, parse_override

    config = load_config(base, overrides)
    seeds = _seeds(list(seeds), config.seed, "--seeds")
    where = f"--seeds {','.join(map(str, seeds))}"
    stage_names = _stage_order(stages, where)
    point = Point("base", {})
    fixed = dict(parse_override(item) for item in overrides)
    d = config.to_dict()
    runs = tuple(
        RunSpec(point, s, f"seed={s}", ExperimentConfig.from_dict({**d, "seed": s})) for s in seeds
    )
    return SweepSpec(
        name=name,
        source=Path(base).resolve() if Path(base).exists() else Path(base),
        base=base,
        fixed=fixed,
        axes=(),
        points=(point,),
        seeds=seeds,
        stages=stage_names,
        metric="all_activity",
        resources=Resources(),
        runs=runs,
        raw={"base": base, "set": fixed, "seeds": list(seeds)},
        options={k: dict(v) for k, v in (options or {}).items()},
    )


def folder_sweep(
    folder: str | Path,
    stages: Sequence[str],
    *,
    options: Mapping[str, Mapping[str, Any]] | None = None,
) -> SweepSpec:
    """The runs of an existing seeds folder or sweep folder (``sweep.json`` and each run's own
    ``config.json``), to run ``stages`` on them: ``stdp-pipeline train FOLDER`` (and ``assign``,
    ``evaluate``) on a folder made by ``encode --seeds``. A run that was never encoded is
    refused, naming it."""
    from stdp_pipeline.io.rundir import RunDir
    from stdp_pipeline.sweep.summary import read_plan

    folder = Path(folder)
    plan = read_plan(folder)
    stage_names = _stage_order(stages, str(folder))
    recorded = _stage_order([*plan.get("stages", []), *stage_names], str(folder))
    points = {p["name"]: Point(p["name"], dict(p["overrides"])) for p in plan.get("points", [])}
    runs = []
    for entry in plan["runs"]:
        try:
            config = RunDir(folder / entry["path"]).config()
        except PipelineError as err:
            raise PipelineError(f"{err} (run `stdp-pipeline encode` with --seeds first)") from None
        point = points.get(entry["point"], Point(entry["point"], {}))
        runs.append(RunSpec(point, int(entry["seed"]), entry["path"], config))
    axes = tuple(
        Axis(a["key"], a["kind"], tuple(a["values"]), bool(a.get("log")))
        for a in plan.get("axes", [])
    )
    return SweepSpec(
        name=str(plan.get("name", folder.name)),
        source=Path(str(plan.get("source", folder))),
        base=str(plan.get("base", "")),
        fixed=dict(plan.get("set", {})),
        axes=axes,
        points=tuple(points.values()) or tuple({r.point.name: r.point for r in runs}.values()),
        seeds=tuple(sorted({r.seed for r in runs})),
        stages=stage_names,
        metric=str(plan.get("metric", "all_activity")),
        resources=Resources(),
        runs=tuple(runs),
        raw=dict(plan.get("file", {})),
        options={k: dict(v) for k, v in (options or {}).items()},
        recorded_stages=recorded,
    )


def _stage_order(stages: Sequence[str], where: str) -> tuple[str, ...]:
    """``stages`` in table order, each a known stage. What a stage needs is not checked here:
    for a folder's runs it may have run before, and a stage whose input is missing fails that
    run alone, with its one-line error."""
    from stdp_pipeline.stages.table import STAGE_NAMES

    for name in stages:
        if name not in STAGE_NAMES:
            raise PipelineError(f"{where}: no stage '{name}'{_hint(name, STAGE_NAMES)}")
    return tuple(s for s in STAGE_NAMES if s in stages)


# --- the parts of the file ------------------------------------------------------------------------
def _base(raw: Mapping[str, Any], source: Path) -> str:
    base = raw.get("base")
    if not isinstance(base, str) or not base:
        raise PipelineError(
            f"{source}: base = {base!r}: give the preset or config file every point starts from, "
            'e.g. base = "diehl-cook-100"'
        )
    path = Path(base)
    if path.suffix.lower() in _CONFIG_SUFFIXES and not path.is_absolute():
        beside = source.parent / path
        if beside.exists():
            return str(beside)
    return base


def _table(raw: Mapping[str, Any], name: str, where: str) -> Mapping[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, Mapping):
        raise PipelineError(f"{where}: {name} = {value!r}: must be a table of keys")
    return value


def _is_spec(value: Any) -> bool:
    return not isinstance(value, Mapping) or any(w in value for w in _SPEC_WORDS)


def _flatten(table: Mapping[str, Any], leaf: Callable[[Any], bool]) -> dict[str, Any]:
    """``{"event_stdp": {"eta": x}}`` and ``{"event_stdp.eta": x}`` both as ``{"event_stdp.eta":
    x}``; a mapping for which ``leaf`` is true (a value spec) is kept whole."""
    out: dict[str, Any] = {}
    for key, value in table.items():
        if isinstance(value, Mapping) and not leaf(value):
            for sub, inner in _flatten(value, leaf).items():
                out[f"{key}.{sub}"] = inner
        else:
            out[str(key)] = value
    return out


def _check_key(key: str, where: str) -> None:
    if key == "seed":
        raise PipelineError(f"{where}: 'seed' is varied by seeds = [...] at the top of the file")
    if key == "name":
        raise PipelineError(f"{where}: 'name' cannot be set per point (runs are named by the "
                            "swept values)")  # fmt: skip
    if key in all_keys():
        return
    if key in MOVED_KEYS:
        raise PipelineError(f"{where}: unknown key '{key}': it moved to '{MOVED_KEYS[key]}'")
    keys = all_keys()
    guess = difflib.get_close_matches(key, keys, n=1, cutoff=0.6)
    if not guess:
        leaves = {k.rsplit(".", 1)[-1]: k for k in keys}
        near = difflib.get_close_matches(key.rsplit(".", 1)[-1], list(leaves), n=1, cutoff=0.6)
        guess = [leaves[near[0]]] if near else []
    hint = f": did you mean '{guess[0]}'?" if guess else " (see `stdp-pipeline config keys`)"
    raise PipelineError(f"{where}: unknown key '{key}'{hint}")


def _set(d: dict[str, Any], key: str, value: Any) -> None:
    section, leaf = key.split(".")
    d.setdefault(section, {})[leaf] = value


def _key_type(key: str) -> Any:
    """The annotation of a dotted key's field (``int``, ``float``, ``str``, ...), unwrapped from
    ``X | None``."""
    section, leaf = key.split(".")
    cls = sections()[section]
    hint = typing.get_type_hints(cls)[leaf]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if args else hint
    return hint


def _pair(spec: Mapping[str, Any], word: str, where: str, positive: bool = False) -> tuple:
    value = spec[word]
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(_is_number(v) for v in value)
    ):
        raise PipelineError(f"{where}: {word} = {value!r}: must be two numbers [low, high]")
    lo, hi = value
    if not lo <= hi:
        raise PipelineError(f"{where}: {word} = {list(value)!r}: low must be <= high")
    if positive and lo <= 0:
        raise PipelineError(f"{where}: {word} = {list(value)!r}: a log scale needs low > 0")
    return lo, hi


def _spec_word(spec: Mapping[str, Any], allowed: Sequence[str], where: str) -> str:
    words = [w for w in spec if w in allowed]
    extra = [w for w in spec if w not in allowed and w not in ("num", "step")]
    if len(words) != 1 or extra:
        raise PipelineError(
            f"{where}: {dict(spec)!r}: give one of {', '.join(allowed)}"
            f"{_hint(extra[0], allowed) if extra else ''}"
        )
    return words[0]


def _grid_axis(key: str, spec: Any, where: str) -> Axis:
    where = f"{where} '{key}'"
    log = False
    if not isinstance(spec, Mapping):
        values = list(spec) if isinstance(spec, list | tuple) else [spec]
    else:
        word = _spec_word(spec, _GRID_SPECS, where)
        if word == "values":
            values = spec["values"]
            if not isinstance(values, list | tuple):
                raise PipelineError(f"{where}: values = {values!r}: must be a list")
            values = list(values)
        else:
            lo, hi = _pair(spec, word, where, positive=word == "logrange")
            num, step = spec.get("num"), spec.get("step")
            log = word == "logrange"
            if step is not None and (word == "logrange" or num is not None):
                raise PipelineError(f"{where}: step is for range only, without num")
            if step is not None:
                if not _is_number(step) or step <= 0:
                    raise PipelineError(f"{where}: step = {step!r}: must be a number > 0")
                count = int(math.floor((hi - lo) / step + 1e-9)) + 1
                values = [lo + i * step for i in range(count)]
            else:
                if isinstance(num, bool) or not isinstance(num, int) or num < 1:
                    raise PipelineError(
                        f"{where}: num = {num!r}: give how many values, a whole number >= 1 "
                        "(or step = ... for range)"
                    )
                space = np.geomspace if log else np.linspace
                values = [float(v) for v in space(lo, hi, num)]
            # 12 significant digits: 0.3, not 0.30000000000000004
            values = [_tidy(float(f"{v:.12g}"), _key_type(key)) for v in values]
    if not values:
        raise PipelineError(f"{where}: no values: give at least one")
    unique = []
    for v in values:
        if v not in unique:
            unique.append(v)
    return Axis(key, "grid", tuple(unique), log)


def _zip_axes(zipped: Mapping[str, Any], where: str) -> list[Axis]:
    """The ``[zip]`` keys, each a list of values (repeats allowed), all of one length."""
    axes = []
    for key, values in zipped.items():
        if not isinstance(values, list | tuple) or not values:
            raise PipelineError(
                f"{where} '{key}': {values!r}: must be a non-empty list (the n-th values of the "
                "zipped keys go together)"
            )
        axes.append(Axis(key, "zip", tuple(values)))
    lengths = {a.key: len(a.values) for a in axes}
    if len(set(lengths.values())) > 1:
        listed = ", ".join(f"'{k}' {n}" for k, n in lengths.items())
        raise PipelineError(f"{where}: the zipped lists differ in length ({listed}): give each "
                            "key one value per combination")  # fmt: skip
    return axes


def _random_axis(key: str, spec: Any, where: str) -> Axis:
    where = f"{where} '{key}'"
    if not isinstance(spec, Mapping):
        raise PipelineError(
            f"{where}: {spec!r}: give a distribution, one of {', '.join(_RANDOM_SPECS)}, e.g. "
            "{ loguniform = [1e-4, 1e-2] }"
        )
    word = _spec_word(spec, _RANDOM_SPECS, where)
    if word == "choice":
        options = spec["choice"]
        if not isinstance(options, list | tuple) or not options:
            raise PipelineError(f"{where}: choice = {options!r}: must be a non-empty list")
        return Axis(key, "random", ("choice", *options))
    lo, hi = _pair(spec, word, where, positive=word == "loguniform")
    if word == "randint" and not all(isinstance(v, int) for v in (lo, hi)):
        raise PipelineError(f"{where}: randint = {[lo, hi]!r}: must be two whole numbers")
    return Axis(key, "random", (word, lo, hi), log=word == "loguniform")


def _points(axes: Sequence[Axis], samples: int, seed: int) -> list[Point]:
    grid = [a for a in axes if a.kind == "grid"]
    zipped = [a for a in axes if a.kind == "zip"]
    random = [a for a in axes if a.kind == "random"]
    rng = np.random.default_rng(seed)
    draws = [{a.key: _draw(a, rng) for a in random} for _ in range(samples)] or [{}]
    rows = [dict(zip((a.key for a in zipped), row, strict=True))
            for row in zip(*(a.values for a in zipped), strict=True)] or [{}]  # fmt: skip
    labels = _labels([a.key for a in axes])
    points, seen = [], set()
    for combo, row in itertools.product(itertools.product(*(a.values for a in grid)), rows):
        for draw in draws:
            values = {**dict(zip((a.key for a in grid), combo, strict=True)), **row, **draw}
            overrides = {a.key: values[a.key] for a in axes}
            name = point_name(overrides, labels)
            if name not in seen:  # random draws may repeat (choice, rounding)
                seen.add(name)
                points.append(Point(name, overrides))
    return points


def _draw(axis: Axis, rng: np.random.Generator) -> Any:
    word, *args = axis.values
    if word == "choice":
        return args[int(rng.integers(len(args)))]
    lo, hi = args
    if word == "randint":
        return int(rng.integers(lo, hi + 1))
    if word == "uniform":
        value = float(rng.uniform(lo, hi))
    else:  # loguniform
        value = float(math.exp(rng.uniform(math.log(lo), math.log(hi))))
    return _tidy(float(f"{value:.{_SIGNIFICANT}g}"), _key_type(axis.key))


def _tidy(value: Any, hint: Any) -> Any:
    """Generated values: rounded to integers for an integer key, else floats."""
    if hint is int:
        return int(round(value))
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else value


def _seeds(value: Any, default: int, where: str) -> tuple[int, ...]:
    if value is None:
        return (default,)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 1:
            raise PipelineError(f"{where}: seeds = {value}: give a count >= 1 or a list of seeds")
        return tuple(range(value))
    if (
        not isinstance(value, list | tuple)
        or not value
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**31 for s in value)
    ):
        raise PipelineError(
            f"{where}: seeds = {value!r}: must be a list of whole numbers >= 0 (e.g. [0, 1, 2]) "
            "or a count (seeds = 3)"
        )
    if len(set(value)) != len(value):
        raise PipelineError(f"{where}: seeds = {value!r}: a seed appears twice")
    return tuple(value)


def _stages(value: Any, where: str) -> tuple[str, ...]:
    from stdp_pipeline.stages.table import STAGE_NAMES, stage

    if value is None:
        return DEFAULT_STAGES
    if not isinstance(value, list | tuple) or not all(isinstance(s, str) for s in value):
        raise PipelineError(f"{where}: stages = {value!r}: must be a list of stage names")
    for name in value:
        if name not in STAGE_NAMES:
            raise PipelineError(
                f"{where}: stages: no stage '{name}'{_hint(name, STAGE_NAMES)}; the stages are "
                f"{', '.join(STAGE_NAMES)}"
            )
    if "evaluate" not in value:
        raise PipelineError(
            f"{where}: stages = {list(value)!r}: must include 'evaluate' (the points are ranked "
            "by test accuracy)"
        )
    for name in value:
        for need in stage(name).needs:
            if need not in value:
                raise PipelineError(f"{where}: stages: '{name}' needs '{need}': add it")
    return tuple(s for s in STAGE_NAMES if s in value)  # the table's order


def _resources(table: Mapping[str, Any], where: str) -> Resources:
    for key in table:
        if key not in _RESOURCE_KEYS:
            raise PipelineError(f"{where} [resources]: unknown key '{key}'"
                                f"{_hint(key, _RESOURCE_KEYS)}")  # fmt: skip
    cpus, gpus = table.get("cpus_per_task"), table.get("gpus_per_task")
    retries = table.get("max_retries", 2)
    if cpus is not None and (not _is_number(cpus) or cpus <= 0):
        raise PipelineError(f"{where} [resources]: cpus_per_task = {cpus!r}: must be > 0")
    if gpus is not None and (not _is_number(gpus) or gpus < 0):
        raise PipelineError(f"{where} [resources]: gpus_per_task = {gpus!r}: must be >= 0")
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise PipelineError(
            f"{where} [resources]: max_retries = {retries!r}: must be a whole number >= 0"
        )
    return Resources(cpus, gpus, retries)


# --- names ---------------------------------------------------------------------------------------
def _labels(keys: Sequence[str]) -> dict[str, str]:
    """Each swept key's label in run names: its last part, or the whole key where two swept keys
    share the last part."""
    leaves = [k.rsplit(".", 1)[-1] for k in keys]
    return {
        k: (leaf if leaves.count(leaf) == 1 else k) for k, leaf in zip(keys, leaves, strict=True)
    }


def format_value(value: Any) -> str:
    """A value as it appears in a run name: ``0.001``, ``5`` (not ``5.0``), ``true``, ``none``."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    return str(value)


def point_name(overrides: Mapping[str, Any], labels: Mapping[str, str] | None = None) -> str:
    """The folder name of a point: ``label=value`` for each swept key, joined by commas
    (``base`` when nothing is swept); characters other than letters, digits and ``._+=,-`` become
    ``_``, and very long names end in a short hash instead."""
    if not overrides:
        return "base"
    labels = labels or _labels(list(overrides))
    text = ",".join(f"{labels[k]}={format_value(v)}" for k, v in overrides.items())
    text = _NAME_CHARS.sub("_", text)
    if len(text) > _MAX_NAME:
        digest = hashlib.sha1(text.encode()).hexdigest()[:8]
        text = f"{text[: _MAX_NAME - 9]}~{digest}"
    return text


# --- helpers -------------------------------------------------------------------------------------
def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _hint(word: str, choices: Sequence[str]) -> str:
    guess = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean '{guess[0]}'?)" if guess else ""
