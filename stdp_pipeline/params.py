"""Validated parameter records: the base of every config section.

A section is a frozen dataclass that mixes in :class:`Section`; its numeric fields are declared
with :func:`num` (bounds checked on construction) and a field naming a registered part with
:func:`choice` (checked against the registry). A bad value raises
:class:`~stdp_pipeline.errors.PipelineError` with one line naming the key, the value and what
would be right::

    excitatory.tau_mem_ms = -5.0: must be > 0
    network.neuron = 'lif': must be one of 'conductance', 'current'

Sections live here, below both the config tree (:mod:`stdp_pipeline.io.config`) and the model
parts (:mod:`stdp_pipeline.sim`), so that each part can declare its own section in its own file.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Callable, Iterable
from dataclasses import field, fields
from typing import Any, Literal, Union

from stdp_pipeline.errors import PipelineError

__all__ = ["Section", "choice", "num"]


def num(
    default: float | None,
    *,
    gt: float | None = None,
    ge: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    doc: str = "",
) -> Any:
    """A numeric field with bounds checked on construction."""
    return field(default=default, metadata={"gt": gt, "ge": ge, "le": le, "lt": lt, "doc": doc})


def choice(default: str, names: Callable[[], Iterable[str]], doc: str = "") -> Any:
    """A string field whose value must be one of ``names()`` (e.g. the registered neuron models;
    a callable, so that the registry is read when a config is built, not when it is declared)."""
    return field(default=default, metadata={"choices": names, "doc": doc})


class Section:
    """Mixin for frozen dataclasses: validate types and bounds of every field on construction.

    ``_section`` is the section's name in the config tree (``excitatory``), used in messages.
    Subclasses may override :meth:`_check` for checks across fields.
    """

    _section: str = ""

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in fields(self):  # type: ignore[arg-type]
            key = f"{self._section}.{f.name}" if self._section else f.name
            object.__setattr__(self, f.name, coerce(key, getattr(self, f.name), hints[f.name]))
            value = getattr(self, f.name)
            md = f.metadata
            if md.get("choices") is not None:
                allowed = list(md["choices"]())
                if value not in allowed:
                    guess = difflib.get_close_matches(str(value), allowed, n=1)
                    hint = f" (did you mean {guess[0]!r}?)" if guess else ""
                    names = ", ".join(repr(a) for a in allowed)
                    raise PipelineError(f"{key} = {value!r}: must be one of {names}{hint}")
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


def coerce(key: str, value: Any, hint: Any) -> Any:
    """Check ``value`` against the annotation ``hint``; int becomes float where float is due."""
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        args = typing.get_args(hint)
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        return coerce(key, value, inner[0])
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
