"""Reading text files that a user or an earlier run wrote: bounded in size, UTF-8 checked.

Config files (TOML, YAML, JSON) and the JSON files of a run directory (``config.json``,
``manifest.json``, ``metrics.json``) are read through :func:`read_text`, which refuses a file
larger than its limit before reading it whole and turns a file that is not UTF-8 into one line
naming the file and the first bad byte; :func:`read_json` parses JSON the same way. Each failure is
a :class:`~stdp_pipeline.errors.PipelineError` (``Error: <one line>`` on the command line).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stdp_pipeline.errors import PipelineError

#: Largest config file read (a config is a few kilobytes).
MAX_CONFIG_BYTES = 1 << 20
#: Largest JSON file of a run directory read (config.json, manifest.json, metrics.json).
MAX_RUN_JSON_BYTES = 16 << 20


def _size(n: int) -> str:
    return f"{n >> 20} MiB" if n >= 1 << 20 else f"{n >> 10} KiB" if n >= 1 << 10 else f"{n} B"


def read_text(
    path: str | os.PathLike[str], *, limit: int, what: str = "file", hint: str = ""
) -> str:
    """The UTF-8 text of ``path``, at most ``limit`` bytes.

    ``what`` names the kind of file in messages (``"config file"``); ``hint`` (e.g. ``": run ...
    again"``) is appended to them (without one, a file that is not UTF-8 is told to be saved as
    UTF-8). Raises :class:`PipelineError` if the file cannot be read, is larger than ``limit`` or
    is not UTF-8.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1)
    except FileNotFoundError:
        raise PipelineError(f"{path} does not exist{hint}") from None
    except IsADirectoryError:
        raise PipelineError(f"{path} is a folder, not a {what}{hint}") from None
    except OSError as err:
        raise PipelineError(f"{path}: cannot read ({err.strerror or err}){hint}") from None
    if len(data) > limit:
        raise PipelineError(f"{path} is larger than {_size(limit)}: too large for a {what}{hint}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PipelineError(
            f"{path} is not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start})"
            f"{hint or ': save it as UTF-8'}"
        ) from None


def parse_json(text: str, path: str | os.PathLike[str], *, hint: str = "") -> Any:
    """``text`` (read from ``path``) parsed as JSON; :class:`PipelineError` naming ``path`` if it is
    not valid JSON (or nested too deeply to parse)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise PipelineError(f"{path}: not valid JSON ({err}){hint}") from None
    except (RecursionError, ValueError) as err:
        deep = isinstance(err, RecursionError)
        reason = "nested too deeply" if deep else (str(err).splitlines() or ["invalid"])[0]
        raise PipelineError(f"{path}: not valid JSON ({reason}){hint}") from None


def read_json(
    path: str | os.PathLike[str],
    *,
    limit: int | None = None,
    what: str = "JSON file",
    hint: str = "",
) -> Any:
    """The parsed JSON of ``path`` (:func:`read_text`, then :func:`parse_json`); ``limit``
    defaults to :data:`MAX_RUN_JSON_BYTES`."""
    limit = MAX_RUN_JSON_BYTES if limit is None else limit
    return parse_json(read_text(path, limit=limit, what=what, hint=hint), path, hint=hint)
