"""The model registry: the neuron models, learning rules and input codes, by config name.

Each part is one module of the shape its kind's ``base`` module describes (a frozen config
section, a ``Params`` record, a ``State`` NamedTuple where it has state, and pure functions).
Adding a part is one file plus one line here; the config tree, the validation of
``network.neuron`` / ``learning.rule`` / ``encoding.code`` and the compiled loops pick it up
from these tables. The compiled loops call the registered functions and never ask which part
they hold.
"""

from __future__ import annotations

from types import ModuleType

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.sim.codes import base as code_base
from stdp_pipeline.sim.codes import latency, poisson
from stdp_pipeline.sim.neurons import base as neuron_base
from stdp_pipeline.sim.neurons import conductance, current_lif
from stdp_pipeline.sim.rules import base as rule_base
from stdp_pipeline.sim.rules import event, trace

#: ``network.neuron`` -> neuron model (both layers).
NEURONS: dict[str, ModuleType] = {
    "conductance": conductance,
    "current": current_lif,
}
#: ``learning.rule`` -> learning rule of the input weights.
RULES: dict[str, ModuleType] = {
    "trace": trace,
    "event": event,
}
#: ``encoding.code`` -> input code.
CODES: dict[str, ModuleType] = {
    "poisson": poisson,
    "latency": latency,
}

_KINDS = {
    "network.neuron": (NEURONS, neuron_base.REQUIRED),
    "learning.rule": (RULES, rule_base.REQUIRED),
    "encoding.code": (CODES, code_base.REQUIRED),
}


def check() -> None:
    """Every registered part has what its kind requires, and no two declare the same section
    (raises ``TypeError`` naming the part and what it lacks: a programming error)."""
    seen: dict[str, str] = {}
    for key, (table, required) in _KINDS.items():
        for name, module in table.items():
            missing = [attr for attr in required if not hasattr(module, attr)]
            if missing:
                raise TypeError(f"{key} {name!r} ({module.__name__}) lacks {', '.join(missing)}")
            for section in module.SECTIONS:
                if section in seen and seen[section] != module.__name__:
                    raise TypeError(
                        f"config section {section!r} declared by {module.__name__} "
                        f"and {seen[section]}"
                    )
                seen[section] = module.__name__


def sections() -> dict[str, type]:
    """The config sections of every registered part, name -> frozen section class."""
    out: dict[str, type] = {}
    for table in (NEURONS, RULES, CODES):
        for module in table.values():
            out.update(module.SECTIONS)
    return out


def _get(key: str, name: str) -> ModuleType:
    table = _KINDS[key][0]
    if name not in table:
        raise PipelineError(f"{key} = {name!r}: must be one of {', '.join(map(repr, table))}")
    return table[name]


def neuron(name: str) -> ModuleType:
    """The neuron model registered as ``name``."""
    return _get("network.neuron", name)


def rule(name: str) -> ModuleType:
    """The learning rule registered as ``name``."""
    return _get("learning.rule", name)


def code(name: str) -> ModuleType:
    """The input code registered as ``name``."""
    return _get("encoding.code", name)


check()
