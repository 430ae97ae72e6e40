"""A progress bar for long stages (standard library only).

::

    with Progress(total=60000, desc="train") as bar:
        for chunk in chunks:
            ...
            bar.update(len(chunk), spikes=23.4, theta=20.13)

draws, on a terminal, one line redrawn in place (at most every ``min_interval_s``)::

    train  [#...................]  4500/60000  7.5%  212.3 digits/s  ETA 4m22s  spikes=23.4

When the stream is not a terminal (a log file, CI) it prints a plain line at most every 10 % of the
total or every 30 s, never ``\\r``. Closing prints a final line with the count, the elapsed time and
the mean rate. ``STDP_PROGRESS=0`` in the environment turns every bar off (``enabled=None``).

The rate shown is measured over the last ``RATE_WINDOW_S`` seconds of updates, so the first slow
call (graph tracing, compilation) stops weighing on it after a while; the ETA is
``remaining / rate``.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO

BAR_WIDTH = 20
#: Seconds of recent updates the shown rate is measured over.
RATE_WINDOW_S = 10.0
#: Without a terminal: print a line each time this fraction of the total is passed ...
LOG_EVERY_FRACTION = 0.1
#: ... or when this many seconds have passed since the last line.
LOG_EVERY_S = 30.0
_OFF_VALUES = ("0", "false", "no", "off")


def format_duration(seconds: float) -> str:
    """A short duration: ``12.3s`` below a minute, ``4m22s`` below an hour, ``1h03m`` above;
    ``?`` for a negative, infinite or NaN value."""
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    if seconds < 59.95:
        return f"{seconds:.1f}s"
    total = int(round(seconds))
    if total < 3600:
        return f"{total // 60}m{total % 60:02d}s"
    minutes = total // 60
    return f"{minutes // 60}h{minutes % 60:02d}m"


def progress_enabled(enabled: bool | None = None) -> bool:
    """``enabled`` if given, else False when ``STDP_PROGRESS`` is ``0``/``false``/``no``/``off``."""
    if enabled is not None:
        return bool(enabled)
    return os.environ.get("STDP_PROGRESS", "").strip().lower() not in _OFF_VALUES


class Progress:
    """A progress bar over ``total`` items of ``unit``, written to ``stream`` (default stderr).

    Use as a context manager, or call :meth:`close` at the end. ``update(n, **postfix)`` adds
    ``n`` items; the ``postfix`` values (e.g. ``spikes=23.4``) are shown after the bar, each key
    keeping its last value. ``enabled=False`` prints nothing; ``enabled=None`` follows the
    ``STDP_PROGRESS`` environment variable. ``clock`` (seconds, monotonic) is for tests.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        unit: str = "digits",
        stream: TextIO | None = None,
        enabled: bool | None = None,
        min_interval_s: float = 0.2,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if total < 0:
            raise ValueError(f"total = {total}: must be >= 0")
        if min_interval_s < 0:
            raise ValueError(f"min_interval_s = {min_interval_s}: must be >= 0")
        self.total = int(total)
        self.desc = desc
        self.unit = unit
        self.stream: TextIO = stream if stream is not None else sys.stderr
        self.enabled = progress_enabled(enabled)
        self.min_interval_s = float(min_interval_s)
        self.count = 0
        self.postfix: dict[str, Any] = {}
        self.closed = False
        self._clock = clock
        self._start = clock()
        self._samples: collections.deque[tuple[float, int]] = collections.deque([(self._start, 0)])
        self._tty = _isatty(self.stream)
        self._last_draw = -math.inf
        self._last_log = self._start
        self._last_decile = 0
        self._drawn_width = 0

    # --- public --------------------------------------------------------------------------------
    def update(self, n: int = 1, **postfix: Any) -> None:
        """Add ``n`` finished items; ``postfix`` values replace those shown after the bar."""
        if self.closed:
            raise RuntimeError(f"progress bar '{self.desc}' is closed")
        self.count += n
        self.postfix.update(postfix)
        now = self._clock()
        self._add_sample(now)
        if not self.enabled:
            return
        if self._tty:
            if now - self._last_draw >= self.min_interval_s or self.count >= self.total:
                self._redraw(self.line())
                self._last_draw = now
        elif self.count < self.total and self._due_log(now):  # close() prints the last line
            self._write(self.line() + "\n")
            self._last_log = now

    def close(self, *, failed: bool = False) -> None:
        """Print the final line (count, elapsed time, mean rate); a second call does nothing."""
        if self.closed:
            return
        self.closed = True
        if not self.enabled:
            return
        text = self.final_line(self._clock(), failed=failed)
        if self._tty:
            self._redraw(text)
            self._write("\n")
        else:
            self._write(text + "\n")

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close(failed=exc_type is not None)

    # --- what is shown -------------------------------------------------------------------------
    @property
    def elapsed_s(self) -> float:
        """Seconds since the bar was made."""
        return self._clock() - self._start

    def rate(self) -> float | None:
        """Items per second over the last ``RATE_WINDOW_S`` seconds of updates (None: unknown)."""
        (t0, c0), (t1, c1) = self._samples[0], self._samples[-1]
        if t1 <= t0:
            return None
        return (c1 - c0) / (t1 - t0)

    def line(self) -> str:
        """The progress line: bar, count, percentage, rate, ETA and postfix values."""
        rate = self.rate()
        if self.count >= self.total:
            eta = "ETA 0s"
        elif rate and rate > 0:
            eta = f"ETA {format_duration((self.total - self.count) / rate)}"
        else:
            eta = "ETA ?"
        parts = [
            self.desc,
            self._bar(),
            f"{self.count}/{self.total}",
            f"{self._percent():.1f}%",
            f"{_format_rate(rate)} {self.unit}/s",
            eta,
        ]
        return "  ".join(p for p in [*parts, self._postfix_text()] if p)

    def final_line(self, now: float | None = None, *, failed: bool = False) -> str:
        """The closing line: count, elapsed time and mean rate (and the last postfix values)."""
        now = self._clock() if now is None else now
        elapsed = now - self._start
        mean = self.count / elapsed if elapsed > 0 else None
        verb = "stopped after" if failed or self.count < self.total else "done in"
        parts = [
            self.desc,
            self._bar(),
            f"{self.count}/{self.total}",
            f"{self._percent():.1f}%",
            f"{verb} {format_duration(elapsed)}",
            f"{_format_rate(mean)} {self.unit}/s mean",
        ]
        return "  ".join(p for p in [*parts, self._postfix_text()] if p)

    # --- internals -----------------------------------------------------------------------------
    def _percent(self) -> float:
        return 100.0 if self.total == 0 else 100.0 * self.count / self.total

    def _bar(self) -> str:
        filled = (
            BAR_WIDTH
            if self.total == 0
            else int(BAR_WIDTH * min(self.count, self.total) / self.total)
        )
        return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"

    def _postfix_text(self) -> str:
        return " ".join(f"{k}={_format_value(v)}" for k, v in self.postfix.items())

    def _add_sample(self, now: float) -> None:
        self._samples.append((now, self.count))
        # Keep one sample at or before the window start, so the window spans >= RATE_WINDOW_S.
        while len(self._samples) > 2 and self._samples[1][0] <= now - RATE_WINDOW_S:
            self._samples.popleft()

    def _due_log(self, now: float) -> bool:
        decile = 10 if self.total == 0 else int(self.count / self.total / LOG_EVERY_FRACTION)
        if decile > self._last_decile:
            self._last_decile = decile
            return True
        return now - self._last_log >= LOG_EVERY_S

    def _redraw(self, text: str) -> None:
        pad = " " * max(0, self._drawn_width - len(text))
        self._write("\r" + text + pad)
        self._drawn_width = len(text)

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # closed or broken stream: progress is not worth a crash
            self.enabled = False


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, OSError, ValueError):
        return False


def _format_rate(rate: float | None) -> str:
    if rate is None or not math.isfinite(rate):
        return "?"
    if rate >= 1:
        return f"{rate:.1f}"
    return f"{rate:.3g}"


def _format_value(value: Any) -> str:
    if hasattr(value, "numpy") and callable(value.numpy):  # tensorflow tensors
        with contextlib.suppress(TypeError, ValueError, RuntimeError):
            value = value.numpy()
    if isinstance(value, bool) or not isinstance(value, float):
        if hasattr(value, "item") and callable(value.item):  # numpy / tensorflow scalars
            try:
                return _format_value(value.item())
            except (TypeError, ValueError):
                pass
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if abs(value) >= 1000:
        return f"{value:.0f}"
    return f"{value:.4g}"
