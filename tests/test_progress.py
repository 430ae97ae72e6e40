"""The progress bar: plain log lines when not on a terminal, in-place redraws on one, durations."""

from __future__ import annotations

import io
import re

import pytest

from stdp_pipeline.progress import Progress, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0.0s"),
        (12.34, "12.3s"),
        (59.9, "59.9s"),
        (60, "1m00s"),
        (262, "4m22s"),
        (3599.4, "59m59s"),
        (3600, "1h00m"),
        (3780, "1h03m"),
        (100 * 3600 + 59, "100h00m"),
        (-1, "?"),
        (float("inf"), "?"),
        (float("nan"), "?"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_plain_lines_show_count_percent_rate_eta_and_postfix() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with Progress(1000, "train", stream=stream, enabled=True, clock=clock) as bar:
        for _ in range(10):
            clock.t += 1.0
            bar.update(50, spikes=23.4, theta=20.1345)  # 50 digits/s
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    # 500 of 1000 digits: lines at 10 %, 20 %, ..., 50 %, then the final line.
    assert len(lines) == 6
    assert lines[0] == (
        "train  [##..................]  100/1000  10.0%  50.0 digits/s  ETA 18.0s  "
        "spikes=23.4 theta=20.13"
    )
    assert "500/1000  50.0%  50.0 digits/s  ETA 10.0s" in lines[4]
    final = lines[-1]
    assert "500/1000" in final and "stopped after 10.0s" in final and "50.0 digits/s mean" in final


def test_final_line_when_done_and_postfix_keeps_last_values() -> None:
    stream, clock = io.StringIO(), FakeClock()
    with Progress(200, "assign", unit="img", stream=stream, enabled=True, clock=clock) as bar:
        clock.t += 2.0
        bar.update(100, spikes=5)
        clock.t += 2.0
        bar.update(100, theta=1.5)
    lines = stream.getvalue().splitlines()
    assert lines[-1] == (
        "assign  [####################]  200/200  100.0%  done in 4.0s  50.0 img/s mean  "
        "spikes=5 theta=1.5"
    )
    assert sum("200/200" in line for line in lines) == 1  # no duplicate 100 % line


def test_rate_follows_recent_updates() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(10_000, "train", stream=stream, enabled=True, clock=clock)
    clock.t += 60.0  # a slow first call (tracing, compilation)
    bar.update(10)
    for _ in range(20):
        clock.t += 1.0
        bar.update(100)
    # Over the last 10 s: 100 digits/s, not the 2010 / 80 s average.
    assert bar.rate() == pytest.approx(100.0)
    assert re.search(r"ETA 1m20s", bar.line())  # (10000 - 2010) / 100 s = 79.9 s
    bar.close()


def test_plain_lines_every_30_seconds_without_progress_milestone() -> None:
    stream, clock = io.StringIO(), FakeClock()
    bar = Progress(1000, "train", stream=stream, enabled=True, clock=clock)
    for _ in range(5):
        clock.t += 10.0
        bar.update(1)  # far below 10 %
    assert len(stream.getvalue().splitlines()) == 1  # at 30 s
    bar.close()


def test_tty_redraws_in_place_at_most_every_interval() -> None:
    stream, clock = FakeTTY(), FakeClock()
    with Progress(
        100, "train", stream=stream, enabled=True, min_interval_s=0.25, clock=clock
    ) as bar:
        for _ in range(10):
            clock.t += 0.0625
            bar.update(1)  # 4 updates per interval
    text = stream.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")
    assert text.count("\r") == 3 + 1  # draws at updates 1, 5, 9, then the final line
    assert "10/100" in text.rsplit("\r", 1)[1]


def test_disabled_prints_nothing() -> None:
    stream = io.StringIO()
    with Progress(10, "train", stream=stream, enabled=False) as bar:
        for _ in range(10):
            bar.update(1, spikes=1.0)
    assert stream.getvalue() == ""
    assert bar.count == 10


def test_env_var_disables(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = io.StringIO()
    monkeypatch.setenv("STDP_PROGRESS", "0")
    with Progress(10, "train", stream=stream) as bar:
        bar.update(10)
    assert stream.getvalue() == ""
    monkeypatch.setenv("STDP_PROGRESS", "1")
    with Progress(10, "train", stream=stream) as bar:
        bar.update(10)
    assert "10/10" in stream.getvalue()
    stream2 = io.StringIO()
    monkeypatch.setenv("STDP_PROGRESS", "0")
    with Progress(10, "train", stream=stream2, enabled=True) as bar:  # explicit wins
        bar.update(10)
    assert "10/10" in stream2.getvalue()


def test_update_after_close_and_bad_total() -> None:
    bar = Progress(1, "x", stream=io.StringIO(), enabled=True)
    bar.close()
    bar.close()  # harmless
    with pytest.raises(RuntimeError):
        bar.update()
    with pytest.raises(ValueError):
        Progress(-1, "x")
