"""Progress bars for long stages: a thin wrapper over `tqdm <https://tqdm.github.io>`_.

::

    with Progress(total=60000, desc="train") as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk), spikes=23.4, theta=20.13)

On a terminal tqdm draws one line, redrawn in place at most every ``min_interval_s`` (0.1 s)::

    train:  45%|####5     | 27000/60000 [02:07<02:35, 212.31 digits/s, spikes=23.4 theta=20.13]

with the rate (smoothed over recent updates, so the slow first call of a stage that traces and
compiles a graph soon stops weighing on it), the elapsed time, the ETA and the last ``postfix``
values. Whether a bar is shown:

* ``enabled=False`` (the CLI's ``--quiet``): never.
* ``enabled=True``: always, even when the stream is not a terminal.
* ``enabled=None`` (the default) follows the ``STDP_PROGRESS`` environment variable:
  ``0``/``false``/``no``/``off`` never; ``1``/``true``/``yes``/``on`` always; unset (or anything
  else) only when the stream is a terminal.

A bar forced on without a terminal (a log file, CI) writes whole lines, never ``\\r``: one when it
starts, then at most one every :data:`LOG_INTERVAL_S` seconds, and one when it closes.

A bar closed by an exception (``with`` block left by an error, or ``close(failed=True)``) shows the
count actually reached and ``(stopped)`` after its name, never a made-up 100 %.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

from tqdm import tqdm

__all__ = ["LOG_INTERVAL_S", "Progress", "progress_enabled", "progress_mode"]

#: Without a terminal (bar forced on): seconds between two progress lines.
LOG_INTERVAL_S = 30.0
#: On a terminal: default seconds between two redraws.
TTY_INTERVAL_S = 0.1
ENV_PROGRESS = "STDP_PROGRESS"
_OFF_VALUES = ("0", "false", "no", "off")
_ON_VALUES = ("1", "true", "yes", "on")
# Without a terminal there is no bar to draw: the counts, rate and ETA are enough for a log.
_LOG_FORMAT = (
    "{desc}: {n_fmt}/{total_fmt} {percentage:3.0f}% [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)
_LOG_FORMAT_NO_TOTAL = "{desc}: {n_fmt}{unit} [{elapsed}, {rate_fmt}{postfix}]"


def _env_setting() -> str:
    """``"off"``, ``"on"`` or ``"auto"`` from the ``STDP_PROGRESS`` environment variable."""
    value = os.environ.get(ENV_PROGRESS, "").strip().lower()
    if value in _OFF_VALUES:
        return "off"
    if value in _ON_VALUES:
        return "on"
    return "auto"


def progress_enabled(enabled: bool | None = None) -> bool:
    """Whether progress output is allowed at all: ``enabled`` if given, else False when
    ``STDP_PROGRESS`` is ``0``/``false``/``no``/``off``. (Whether a bar is then drawn also depends
    on the stream; see :func:`progress_mode`.)"""
    if enabled is not None:
        return bool(enabled)
    return _env_setting() != "off"


def progress_mode(enabled: bool | None, stream: Any) -> str:
    """How a bar on ``stream`` is shown: ``"off"``, ``"tty"`` (redrawn in place) or ``"log"``
    (whole lines, at most every :data:`LOG_INTERVAL_S` s). See the module docstring for the rules.
    """
    if enabled is False:
        return "off"
    if enabled is None:
        setting = _env_setting()
        if setting == "off":
            return "off"
        forced = setting == "on"
    else:
        forced = True
    if _isatty(stream):
        return "tty"
    return "log" if forced else "off"


class Progress:
    """A progress bar over ``total`` items of ``unit``, written to ``stream`` (default stderr).

    Use as a context manager, or call :meth:`close` at the end. ``update(n, **postfix)`` adds
    ``n`` items; the ``postfix`` values (e.g. ``spikes=23.4``) are shown after the rate, each key
    keeping its last value. ``enabled`` and ``STDP_PROGRESS`` decide whether anything is shown (see
    the module docstring). ``total=None`` shows a count and rate without percentage or ETA.

    ``min_interval_s`` is the least time between two redraws on a terminal (without one it is
    :data:`LOG_INTERVAL_S`). ``unit_scale`` shows counts with k/M/G prefixes (for bytes);
    ``leave=False`` erases the bar when it closes. ``clock`` (seconds) is for tests.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "digits",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        min_interval_s: float | None = None,
        *,
        unit_scale: bool = False,
        leave: bool = True,
        clock: Callable[[], float] | None = None,
    ) -> None:
        if total is not None and total < 0:
            raise ValueError(f"total = {total}: must be >= 0")
        if min_interval_s is not None and min_interval_s < 0:
            raise ValueError(f"min_interval_s = {min_interval_s}: must be >= 0")
        self.total = None if total is None else int(total)
        self.desc = desc
        self.unit = unit
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.mode = progress_mode(enabled, self.stream)
        self.enabled = self.mode != "off"
        self.count = 0
        self.postfix: dict[str, Any] = {}
        self.closed = False
        self._bar: _Bar | None = None
        if not self.enabled:
            return
        tty = self.mode == "tty"
        if tty:
            interval = TTY_INTERVAL_S if min_interval_s is None else float(min_interval_s)
        else:
            interval = LOG_INTERVAL_S
        self._bar = _Bar(
            total=self.total,
            desc=desc,
            # tqdm writes the unit right after the number ("212.3digits/s"); a space reads better,
            # except for scaled units ("1.2MB/s").
            unit=unit if unit_scale else " " + unit,
            unit_scale=unit_scale,
            file=self.stream if tty else _LineWriter(self.stream),
            mininterval=interval,
            miniters=1,  # fixed: no background thread forcing redraws between updates
            ascii=None if tty else True,
            bar_format=None
            if tty
            else (_LOG_FORMAT if total is not None else _LOG_FORMAT_NO_TOTAL),
            leave=leave,
            dynamic_ncols=tty and self.stream in (sys.stderr, sys.stdout),
        )
        if clock is not None:
            self._bar._time = clock  # type: ignore[method-assign]
            self._bar.start_t = self._bar.last_print_t = clock()

    # --- public --------------------------------------------------------------------------------
    def update(self, n: int = 1, **postfix: Any) -> None:
        """Add ``n`` finished items; ``postfix`` values replace those shown after the rate.

        Cheap when nothing is redrawn: the postfix values are only formatted for a redraw.
        """
        if self.closed:
            raise RuntimeError(f"progress bar '{self.desc}' is closed")
        self.count += n
        if postfix:
            self.postfix.update(postfix)
        if self._bar is not None:
            if postfix:
                self._bar.postfix_values = self.postfix
                self._bar.postfix_stale = True
            self._bar.update(n)

    def close(self, *, failed: bool = False) -> None:
        """Draw the final state and end the line; ``failed`` marks the bar ``(stopped)``.

        A second call does nothing.
        """
        if self.closed:
            return
        self.closed = True
        if self._bar is None:
            return
        if failed:
            self._bar.set_description_str(f"{self.desc} (stopped)", refresh=False)
        with contextlib.suppress(OSError, ValueError):  # a broken stream: not worth a crash
            self._bar.close()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(failed=exc_type is not None)


class _Bar(tqdm):
    """tqdm that formats the postfix values only when it redraws."""

    def __init__(self, **kwargs: Any) -> None:
        self.postfix_values: dict[str, Any] = {}
        self.postfix_stale = False
        super().__init__(**kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if self.postfix_stale:
            self.postfix_stale = False
            self.postfix = " ".join(
                f"{k}={_format_value(v)}" for k, v in self.postfix_values.items()
            )
        return super().display(msg, pos)


class _LineWriter:
    """A file-like view of ``stream`` that turns tqdm's in-place redraws (``"\\r" + line +
    padding``) into whole lines, for log files."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        lines = [part.rstrip() for part in text.replace("\n", "\r").split("\r")]
        out = "".join(line + "\n" for line in lines if line)
        if out:
            with contextlib.suppress(OSError, ValueError):
                self._stream.write(out)
        return len(text)

    def flush(self) -> None:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            self._stream.flush()


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _format_value(value: Any) -> str:
    """A postfix value as text: floats with 4 significant digits, tensors and numpy scalars as
    their Python value, strings as they are."""
    if hasattr(value, "numpy") and callable(value.numpy):  # tensorflow tensors
        with contextlib.suppress(TypeError, ValueError, RuntimeError):
            value = value.numpy()
    if isinstance(value, bool) or not isinstance(value, float):
        if hasattr(value, "item") and callable(value.item):  # numpy / tensorflow scalars
            with contextlib.suppress(TypeError, ValueError):
                return _format_value(value.item())
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"
