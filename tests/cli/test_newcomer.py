"""A newcomer's two commands: after the install, `stdp-pipeline run RUN --config PRESET` works on
a machine without the data set; it is downloaded into ./data/mnist on first use (here from a
mirror on 127.0.0.1 serving the real MNIST files)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

from stdp_pipeline.cli import main


def test_run_downloads_mnist_on_first_use_and_runs_every_stage(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(mnist_dir))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    monkeypatch.chdir(tmp_path)
    for name in ("STDP_DATA_DIR", "STDP_NO_DOWNLOAD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STDP_MIRRORS", f"http://127.0.0.1:{httpd.server_address[1]}/")
    Path("tiny.toml").write_text(
        'base = "diehl-cook-100"\n[network]\nn_excitatory = 20\n'
        "[data]\ntrain_digits = 40\nassign_start = 40\nassign_digits = 40\n"
        "allow_overlap = false\ntest_digits = 40\n[encoding]\npresentation_ms = 100\n"
    )
    try:
        result = CliRunner().invoke(main, ["run", "results/tiny", "--config", "tiny.toml"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert result.exit_code == 0, result.output
    downloaded = sorted(p.name for p in Path("data/mnist").iterdir())
    assert downloaded == sorted(p.name for p in mnist_dir.glob("*.gz"))
    metrics = json.loads(Path("results/tiny/metrics.json").read_text())
    assert metrics["test_digits"] == 40 and set(metrics["accuracy"]) >= {"all_activity"}
    for name in ("fields.png", "reconstruction.png", "curves.png"):
        assert Path("results/tiny", name).exists()
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines[0].startswith("encoded 40 training") and "learning curves" in lines[-1]
