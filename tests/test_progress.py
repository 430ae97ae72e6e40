"""The progress bar (a wrapper over tqdm): what it writes to a terminal, to a log, and when not."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest

from stdp_pipeline.progress import LOG_INTERVAL_S, Progress, progress_enabled, progress_mode


class FakeTTY(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


class Counted:
    """A postfix value that counts how often it is formatted."""

    def __init__(self) -> None:
        self.calls = 0

    def __str__(self) -> str:
        self.calls += 1
        return "x"


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STDP_PROGRESS", raising=False)


def redraws(text: str) -> list[str]:
    """The successive states drawn in place on a terminal (split at ``\\r``)."""
    return [part.rstrip() for part in text.replace("\n", "\r").split("\r") if part.strip()]


def test_tty_shows_desc_count_rate_eta_and_postfix() -> None:
    stream, clock = FakeTTY(), FakeClock()
    with Progress(1000, "train", stream=stream, min_interval_s=0, clock=clock) as bar:
        for _ in range(4):
            clock.t += 1.0
            bar.update(50, spikes=23.4, theta=20.1345)  # 50 digits/s
    text = stream.getvalue()
    assert text.endswith("\n") and text.count("\n") == 1  # redrawn in place, one line at the end
    states = redraws(text)
    assert states[0].startswith("train:   0%") and "0/1000" in states[0]
    last = states[-1]
    assert last.startswith("train:  20%|") and "200/1000" in last
    assert "50.00 digits/s" in last
    assert "00:04<00:16" in last  # elapsed 4 s, 800 digits left at 50 digits/s
    assert last.endswith("spikes=23.4 theta=20.13]")


def test_postfix_keeps_last_value_per_key_and_formats_scalars() -> None:
    stream = FakeTTY()
    with Progress(3, "assign", unit="img", stream=stream, min_interval_s=0) as bar:
        bar.update(1, spikes=np.float32(5.0), theta=np.float64(1.23456))
        bar.update(1, spikes="7.5")
        bar.update(1, retries=np.int64(3))
    last = redraws(stream.getvalue())[-1]
    assert "3/3" in last and "img/s" in last
    assert last.endswith("spikes=7.5 theta=1.235 retries=3]")


def test_postfix_formatted_only_when_redrawn() -> None:
    stream, value = FakeTTY(), Counted()
    with Progress(1000, "train", stream=stream, min_interval_s=3600) as bar:
        for _ in range(200):
            bar.update(1, v=value)
        assert value.calls == 0  # no redraw due within the hour
    assert value.calls == 1  # once, for the final state
    assert redraws(stream.getvalue())[-1].endswith("v=x]")


def test_tty_redraws_at_most_every_interval() -> None:
    stream, clock = FakeTTY(), FakeClock()
    with Progress(100, "train", stream=stream, min_interval_s=0.25, clock=clock) as bar:
        for _ in range(10):
            clock.t += 0.0625
            bar.update(1)  # 4 updates per interval
    states = redraws(stream.getvalue())
    # The initial 0 %, updates 4 and 8 (each 0.25 s after the last draw), then the final state.
    assert [re.search(r"\d+/100", s).group(0) for s in states] == [
        "0/100",
        "4/100",
        "8/100",
        "10/100",
    ]


def test_failed_stage_shows_where_it_stopped() -> None:
    stream = FakeTTY()
    with pytest.raises(KeyError), Progress(100, "train", stream=stream, min_interval_s=0) as bar:
        bar.update(30)
        raise KeyError("boom")
    assert bar.closed
    text = stream.getvalue()
    assert text.endswith("\n")
    last = redraws(text)[-1]
    assert last.startswith("train (stopped):  30%") and "30/100" in last
    assert "100%" not in text


def test_not_a_terminal_is_quiet_by_default() -> None:
    stream = io.StringIO()
    with Progress(10, "train", stream=stream) as bar:
        bar.update(10, spikes=1.0)
    assert stream.getvalue() == ""
    assert bar.count == 10 and not bar.enabled


def test_enabled_false_is_quiet_on_a_terminal() -> None:
    stream = FakeTTY()
    with Progress(10, "train", stream=stream, enabled=False) as bar:
        for _ in range(10):
            bar.update(1, spikes=1.0)
    assert stream.getvalue() == ""
    assert bar.count == 10 and bar.postfix == {"spikes": 1.0}


@pytest.mark.parametrize("value", ["0", "false", "No", " off "])
def test_env_off_silences_a_terminal(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("STDP_PROGRESS", value)
    stream = FakeTTY()
    with Progress(10, "train", stream=stream) as bar:
        bar.update(10)
    assert stream.getvalue() == ""
    assert not progress_enabled()
    # An explicit enabled=True (a caller's own choice) still wins over the environment.
    with Progress(10, "train", stream=stream, enabled=True) as bar:
        bar.update(10)
    assert "10/10" in stream.getvalue()


def test_env_on_writes_sparse_lines_without_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STDP_PROGRESS", "1")
    stream, clock = io.StringIO(), FakeClock()
    with Progress(1000, "train", stream=stream, clock=clock) as bar:
        assert bar.mode == "log"
        for _ in range(20):  # 20 updates, 5 s apart: 100 s in all
            clock.t += 5.0
            bar.update(10, spikes=23.4)
    text = stream.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    # Start, then at 30, 60 and 90 s, then the final line: never more than one per 30 s.
    assert LOG_INTERVAL_S == 30.0
    assert [re.search(r"\d+/1000", line).group(0) for line in lines] == [
        "0/1000",
        "60/1000",
        "120/1000",
        "180/1000",
        "200/1000",
    ]
    assert " ".join(lines[-1].split()) == (
        "train: 200/1000 20% [01:40<06:40, 2.00 digits/s, spikes=23.4]"
    )


def test_progress_mode_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    tty, log = FakeTTY(), io.StringIO()
    assert progress_mode(None, tty) == "tty" and progress_mode(None, log) == "off"
    assert progress_mode(False, tty) == "off" and progress_mode(True, log) == "log"
    monkeypatch.setenv("STDP_PROGRESS", "yes")
    assert progress_mode(None, log) == "log" and progress_mode(False, log) == "off"
    monkeypatch.setenv("STDP_PROGRESS", "off")
    assert progress_mode(None, tty) == "off" and progress_mode(True, tty) == "tty"
    monkeypatch.setenv("STDP_PROGRESS", "maybe")  # not a switch: as if unset
    assert progress_mode(None, tty) == "tty" and progress_mode(None, log) == "off"


def test_bytes_without_total_and_erased_on_close() -> None:
    stream = FakeTTY()
    with Progress(
        None, "file.gz", unit="B", stream=stream, min_interval_s=0, unit_scale=True, leave=False
    ) as bar:
        bar.update(2_500_000)
    text = stream.getvalue()
    assert "2.50MB" in text
    assert text.endswith("\r") and "\n" not in text  # erased: the next line starts clean


def test_broken_stream_does_not_crash() -> None:
    stream = FakeTTY()
    bar = Progress(10, "train", stream=stream, min_interval_s=0)
    stream.close()
    bar.update(5)
    bar.close()
    assert bar.closed and bar.count == 5


def test_update_after_close_and_bad_arguments() -> None:
    bar = Progress(1, "x", stream=FakeTTY())
    bar.close()
    bar.close()  # harmless
    with pytest.raises(RuntimeError):
        bar.update()
    with pytest.raises(ValueError):
        Progress(-1, "x")
    with pytest.raises(ValueError):
        Progress(1, "x", min_interval_s=-1)
