"""The ``data`` command group (``stdp-pipeline data fetch|check``) through click's CliRunner."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from stdp_pipeline.cli.data import data
from stdp_pipeline.io import data as data_lib

MNIST_TRAIN_HIST = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_HIST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliRunner:
    monkeypatch.delenv("STDP_DATA_DIR", raising=False)
    monkeypatch.delenv("STDP_MIRRORS", raising=False)
    monkeypatch.delenv("STDP_NO_DOWNLOAD", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def assert_clean_error(result, *fragments: str) -> str:
    """Non-zero exit with exactly one ``Error:`` line holding ``fragments``; no traceback."""
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, result.output
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            [],
            [
                "stdp-pipeline data fetch",
                "stdp-pipeline data check",
                "STDP_DATA_DIR",
                "STDP_NO_DOWNLOAD=1",
            ],
        ),
        (["fetch"], ["stdp-pipeline data fetch --dataset fashion-mnist", "STDP_MIRRORS"]),
        (["check"], ["stdp-pipeline data check --data-dir", "--dataset"]),
    ],
)
def test_help_shows_examples(runner: CliRunner, args: list[str], expected: list[str]) -> None:
    result = runner.invoke(data, [*args, "--help"])
    assert result.exit_code == 0, result.output
    assert "Examples:" in result.output
    for text in expected:
        assert text in result.output
    # \b paragraphs keep each example on its own line instead of rewrapping them.
    lines = result.output.splitlines()
    start = lines.index("  Examples:") + 1
    examples = []
    for line in lines[start:]:
        if not line.strip():
            break
        examples.append(line.strip())
    assert len(examples) >= 3, examples
    assert all(ln.startswith(("stdp-pipeline data ", "STDP_")) for ln in examples), examples


def test_check_real_mnist(runner: CliRunner, mnist_dir: Path) -> None:
    result = runner.invoke(data, ["check", "--data-dir", str(mnist_dir)])
    assert result.exit_code == 0, result.output
    out = result.output
    assert "60000" in out and "10000" in out
    assert "BAD" not in out and out.count(" ok ") >= 4
    rows = {ln.split()[0]: ln.split()[1:] for ln in out.splitlines() if ln.strip()}
    for digit in range(10):
        assert rows[str(digit)] == [str(MNIST_TRAIN_HIST[digit]), str(MNIST_TEST_HIST[digit])]
    assert rows["total"] == ["60000", "10000"]
    assert "33.318" in out and "78.567" in out and "33.791" in out and "79.172" in out


def test_check_finds_mnist_through_environment(
    runner: CliRunner, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STDP_DATA_DIR", str(mnist_dir))
    result = runner.invoke(data, ["check"])
    assert result.exit_code == 0, result.output
    assert str(mnist_dir) in result.output


def test_check_empty_folder(runner: CliRunner, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(data, ["check", "--data-dir", str(empty)])
    assert result.exit_code == 2
    assert_clean_error(
        result, str(empty), "train-images-idx3-ubyte", "stdp-pipeline data fetch --dataset mnist"
    )


def test_check_never_downloads(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`check` reports what is there; it does not download on first use like the stages do."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("check used the network")

    monkeypatch.setattr(data_lib.urllib.request, "urlopen", refuse)
    result = runner.invoke(data, ["check"])  # ./data/mnist, which does not exist
    assert result.exit_code == 2
    assert_clean_error(result, str(tmp_path / "data" / "mnist"), "stdp-pipeline data fetch")
    assert not (tmp_path / "data").exists()


def test_check_bad_file(runner: CliRunner, tmp_path: Path, mnist_dir: Path) -> None:
    folder = tmp_path / "bad"
    folder.mkdir()
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        (folder / name).symlink_to(mnist_dir / name)
    (folder / "train-labels-idx1-ubyte").write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x05\x01")
    result = runner.invoke(data, ["check", "--data-dir", str(folder)])
    line = assert_clean_error(
        result, "2 of 4", "train-images-idx3-ubyte: missing", "train-labels-idx1-ubyte"
    )
    assert "truncated" in line  # what is wrong with each bad file, in the one line
    assert result.output.splitlines() == [line]  # no table before the error


def test_fetch_offline(runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("STDP_MIRRORS", f"http://127.0.0.1:{port}/")
    result = runner.invoke(data, ["fetch", "--data-dir", str(tmp_path / "d"), "--timeout", "2"])
    assert result.exit_code == 2
    assert_clean_error(
        result, "could not reach any mirror", str(tmp_path / "d" / "mnist"), "t10k-labels"
    )


def test_fetch_present_files_skipped(runner: CliRunner, mnist_dir: Path) -> None:
    result = runner.invoke(data, ["fetch", "--data-dir", str(mnist_dir), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "all 4 files ok" in result.output and str(mnist_dir) in result.output


def test_unknown_dataset_is_a_usage_error(runner: CliRunner) -> None:
    result = runner.invoke(data, ["check", "--dataset", "cifar10"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert "fashion-mnist" in result.output
