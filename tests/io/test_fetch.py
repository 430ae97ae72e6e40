"""stdp_pipeline.io.data.fetch, and the download on first use of load_split / checksums, against a
local HTTP server on 127.0.0.1 (no internet needed)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import data

NAMES = [f.name for f in data.DATASETS["mnist"].files]
COUNTS = {"train": 6, "t10k": 4}


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    magic = 0x00000800 | arr.ndim
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def tiny_content(name: str) -> bytes:
    """Uncompressed IDX content of the tiny stand-in for the MNIST file ``name``."""
    n = COUNTS[name.split("-")[0]]
    if "images" in name:
        return idx_bytes((np.arange(n * 784) % 253).astype(np.uint8).reshape(n, 28, 28))
    return idx_bytes((np.arange(n) * 3 % 10).astype(np.uint8))


def tiny_gz(name: str) -> bytes:
    return gzip.compress(tiny_content(name), mtime=0)


def tiny_spec(gz_sums_only: bool = False) -> data.DatasetSpec:
    """A registry entry whose expected sums are those of the tiny files."""
    files = tuple(
        data.FileSpec(
            f.name,
            f.split,
            f.kind,
            COUNTS[f.name.split("-")[0]],
            md5=None if gz_sums_only else hashlib.md5(tiny_content(f.name)).hexdigest(),
            gz_md5=hashlib.md5(tiny_gz(f.name)).hexdigest(),
        )
        for f in data.DATASETS["mnist"].files
    )
    return data.DatasetSpec(name="tiny", files=files, mirrors=("http://127.0.0.1:9/unused/",))


class Server:
    """A threaded HTTP server on 127.0.0.1 serving ``root``; records the paths requested."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # keep test output clean
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                outer.requests.append(self.path)
                if self.path.startswith("/short/"):  # promise more bytes than are sent
                    self.send_response(200)
                    self.send_header("Content-Length", "100000")
                    self.end_headers()
                    self.wfile.write(b"\x1f\x8b" + bytes(500))
                    self.wfile.flush()
                    self.close_connection = True
                    return
                super().do_GET()

        handler = functools.partial(Handler, directory=str(root))
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    root = tmp_path / "served"
    (root / "good").mkdir(parents=True)
    (root / "corrupt").mkdir()
    for name in NAMES:
        (root / "good" / f"{name}.gz").write_bytes(tiny_gz(name))
        # Valid gzip and valid IDX, but not the published content: only the checksum catches it.
        wrong = bytearray(tiny_content(name))
        wrong[-1] ^= 0xFF
        (root / "corrupt" / f"{name}.gz").write_bytes(gzip.compress(bytes(wrong)))
    srv = Server(root)
    yield srv
    srv.close()


@pytest.fixture
def tiny(monkeypatch: pytest.MonkeyPatch) -> data.DatasetSpec:
    spec = tiny_spec()
    monkeypatch.setitem(data.DATASETS, "tiny", spec)
    for name in ("STDP_MIRRORS", "STDP_DATA_DIR", "STDP_NO_DOWNLOAD", "STDP_PROGRESS"):
        monkeypatch.delenv(name, raising=False)
    return spec


def closed_port_url() -> str:
    """A URL on 127.0.0.1 where nothing listens (connection refused at once)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def files_under(root: Path) -> list[Path]:
    """Every file and folder under ``root`` (after a failed fetch there must be none)."""
    return sorted(p for p in root.rglob("*")) if root.exists() else []


def test_fetch_downloads_and_verifies(tmp_path: Path, server: Server, tiny) -> None:
    root = tmp_path / "data"
    folder = data.fetch("tiny", root, mirrors=[server.url + "good/"], progress=False)
    # A fresh root gets a <dataset>/ subfolder, which the loader then finds.
    assert folder == root / "tiny"
    assert data.resolve_data_dir("tiny", root) == folder
    assert [p.name for p in files_under(folder)] == sorted(f"{n}.gz" for n in NAMES)
    assert data.verify("tiny", root)["ok"].all()
    train = data.load_split("tiny", "train", root)
    assert train.images.shape == (6, 28, 28) and train.labels.tolist() == [0, 3, 6, 9, 2, 5]
    assert len(server.requests) == 4
    # Present and valid files are skipped: a second fetch makes no request.
    assert data.fetch("tiny", root, mirrors=[server.url + "good/"], progress=False) == folder
    assert len(server.requests) == 4


def test_fetch_accepts_published_gz_sum(tmp_path: Path, server: Server, monkeypatch) -> None:
    """Fashion-MNIST publishes only .gz sums: matching the .gz MD5 is enough."""
    monkeypatch.setitem(data.DATASETS, "tiny", tiny_spec(gz_sums_only=True))
    folder = data.fetch("tiny", tmp_path, mirrors=server.url + "good/", progress=False)
    assert len(files_under(folder)) == 4


def test_fetch_corrupt_file_leaves_nothing(tmp_path: Path, server: Server, tiny) -> None:
    root = tmp_path / "data"
    with pytest.raises(PipelineError) as info:
        data.fetch("tiny", root, mirrors=[server.url + "corrupt/"], progress=False)
    msg = str(info.value)
    assert "\n" not in msg
    assert "checksum" in msg and "train-images-idx3-ubyte.gz" in msg
    assert files_under(root) == []  # neither the file nor a temporary file


def test_fetch_interrupted_download_leaves_nothing(tmp_path: Path, server: Server, tiny) -> None:
    root = tmp_path / "data"
    with pytest.raises(PipelineError) as info:
        data.fetch("tiny", root, mirrors=[server.url + "short/"], progress=False)
    assert "interrupted" in str(info.value)
    assert files_under(root) == []


def test_fetch_tries_mirrors_in_order(tmp_path: Path, server: Server, tiny) -> None:
    mirrors = [server.url + "missing/", server.url + "corrupt/", server.url + "good/"]
    folder = data.fetch("tiny", tmp_path, mirrors=mirrors, progress=False)
    assert data.verify("tiny", folder)["ok"].all()
    first = NAMES[0] + ".gz"
    assert server.requests[:3] == [f"/missing/{first}", f"/corrupt/{first}", f"/good/{first}"]


def test_fetch_replaces_bad_file(tmp_path: Path, server: Server, tiny) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / NAMES[1]).write_bytes(b"garbage")  # a bad plain file
    data.fetch("tiny", tmp_path, mirrors=[server.url + "good/"], progress=False)
    assert not (folder / NAMES[1]).exists()
    assert data.verify("tiny", tmp_path)["ok"].all()


def test_fetch_mirrors_from_environment(tmp_path: Path, server: Server, tiny, monkeypatch) -> None:
    monkeypatch.setenv("STDP_MIRRORS", f"{closed_port_url()}, {server.url}good")
    folder = data.fetch("tiny", tmp_path, progress=False)
    assert len(files_under(folder)) == 4
    assert all(r.startswith("/good/") for r in server.requests)


def test_unreachable_mirror_is_not_retried(
    tmp_path: Path, server: Server, tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[str] = []
    real = data._download_one

    def counting(url: str, *args, **kwargs):
        calls.append(url)
        return real(url, *args, **kwargs)

    monkeypatch.setattr(data, "_download_one", counting)
    dead = closed_port_url()
    data.fetch("tiny", tmp_path, mirrors=[dead, server.url + "good/"], progress=False)
    assert sum(url.startswith(dead) for url in calls) == 1  # only for the first file
    assert sum(url.startswith(server.url) for url in calls) == 4


def test_fetch_unreachable_mirror_fails_fast(tmp_path: Path, tiny) -> None:
    root = tmp_path / "offline"
    t0 = time.monotonic()
    with pytest.raises(PipelineError) as info:
        data.fetch("tiny", root, mirrors=[closed_port_url(), closed_port_url()], timeout_s=3.0)
    elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert elapsed < 5.0
    assert "\n" not in msg
    assert "could not reach any mirror" in msg and "connection refused" in msg
    assert str(root / "tiny") in msg
    for name in NAMES:
        assert f"{name}.gz" in msg
    assert files_under(root) == []


def test_fetch_real_mnist_from_local_mirror(tmp_path: Path, mnist_dir: Path, monkeypatch) -> None:
    """The real registry sums against the real files, served from the shared copy."""
    monkeypatch.delenv("STDP_DATA_DIR", raising=False)
    srv = Server(mnist_dir)
    try:
        folder = data.fetch("mnist", tmp_path, mirrors=[srv.url], progress=False)
    finally:
        srv.close()
    assert folder == tmp_path / "mnist"
    assert data.verify("mnist", tmp_path)["ok"].all()
    assert len(data.load_split("mnist", "test", tmp_path)) == 10000


def test_fetch_unwritable_target_is_a_clean_error(tmp_path: Path, server: Server, tiny) -> None:
    (tmp_path / "tiny").write_text("a file where the data folder should be")
    with pytest.raises(PipelineError) as info:
        data.fetch("tiny", tmp_path, mirrors=[server.url + "good/"], progress=False)
    assert "cannot write" in str(info.value) and str(tmp_path / "tiny") in str(info.value)


# --------------------------------------------------------------------------------------------------
# Download on first use (load_split, checksums)
# --------------------------------------------------------------------------------------------------


def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make any attempt to open a URL fail the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"the network was used: {args}")

    monkeypatch.setattr(data.urllib.request, "urlopen", refuse)


def test_load_split_downloads_on_first_use(
    tmp_path: Path, server: Server, tiny, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("STDP_MIRRORS", server.url + "good/")
    root = tmp_path / "data"
    train = data.load_split("tiny", "train", root)
    assert train.images.shape == (6, 28, 28) and train.images.dtype == np.uint8
    expected = (np.arange(6 * 784) % 253).astype(np.uint8).reshape(6, 28, 28)
    np.testing.assert_array_equal(train.images, expected)
    assert train.labels.tolist() == [0, 3, 6, 9, 2, 5]
    # All four files of the data set, checked, in <root>/<dataset>/; no temporary file left.
    folder = root / "tiny"
    assert [p.name for p in files_under(root)] == ["tiny"] + sorted(f"{n}.gz" for n in NAMES)
    assert data.verify("tiny", root)["ok"].all()
    assert sorted(server.requests) == sorted(f"/good/{n}.gz" for n in NAMES)
    err = capsys.readouterr().err
    assert f"not found in {root}" in err and f"downloading the missing files into {folder}" in err
    assert "STDP_NO_DOWNLOAD=1" in err and err.count("checksum ok") == 4
    # Second use: no download, no message; nor for the other split or the checksums.
    assert data.load_split("tiny", "train", root) is train
    assert data.load_split("tiny", "test", root).labels.tolist() == [0, 3, 6, 9]
    sums = data.checksums("tiny", root)
    assert sums == {n: hashlib.md5(tiny_content(n)).hexdigest() for n in NAMES}
    assert len(server.requests) == 4
    assert capsys.readouterr().err == ""


def test_first_use_download_goes_where_the_loader_looks(
    tmp_path: Path, server: Server, tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STDP_MIRRORS", server.url + "good/")
    # No --data-dir and no STDP_DATA_DIR: ./data/<dataset>/ under the current folder.
    monkeypatch.chdir(tmp_path)
    assert len(data.load_split("tiny", "test", progress=False)) == 4
    assert len(files_under(tmp_path / "data" / "tiny")) == 4
    # STDP_DATA_DIR naming a root: <root>/<dataset>/.
    env_root = tmp_path / "env"
    monkeypatch.setenv("STDP_DATA_DIR", str(env_root))
    assert len(data.checksums("tiny", progress=False)) == 4
    assert len(files_under(env_root / "tiny")) == 4
    assert data.resolve_data_dir("tiny") == env_root / "tiny"


def test_first_use_adds_only_missing_files(
    tmp_path: Path, server: Server, tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files already there are kept untouched (not re-checked, not replaced)."""
    monkeypatch.setenv("STDP_MIRRORS", server.url + "good/")
    folder = tmp_path / "own"
    folder.mkdir()
    for name in NAMES[:2]:  # the training pair, stored uncompressed
        (folder / name).write_bytes(tiny_content(name))
    before = {p: p.stat().st_mtime_ns for p in files_under(folder)}
    test = data.load_split("tiny", "test", folder, progress=False)
    assert len(test) == 4
    assert sorted(server.requests) == sorted(f"/good/{n}.gz" for n in NAMES[2:])
    assert {p: p.stat().st_mtime_ns for p in before} == before
    assert len(files_under(folder)) == 4


def test_first_use_offline_fails_fast_in_one_line(
    tmp_path: Path, tiny, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("STDP_MIRRORS", f"{closed_port_url()},{closed_port_url()}")
    root = tmp_path / "offline"
    t0 = time.monotonic()
    with pytest.raises(PipelineError) as info:
        data.load_split("tiny", "train", root)
    elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert elapsed < 5.0
    assert "\n" not in msg
    assert msg.startswith("tiny: train-images-idx3-ubyte.gz (or train-images-idx3-ubyte) not found")
    assert "could not reach any mirror" in msg and "connection refused" in msg
    assert f"in {root / 'tiny'}" in msg and "STDP_DATA_DIR" in msg
    assert all(f"{n}.gz" in msg for n in NAMES)
    assert files_under(root) == []  # not even an empty folder
    assert "Traceback" not in capsys.readouterr().err


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_first_use_download_can_be_switched_off(
    tmp_path: Path, server: Server, tiny, monkeypatch: pytest.MonkeyPatch, how: str, capsys
) -> None:
    monkeypatch.setenv("STDP_MIRRORS", server.url + "good/")
    real_urlopen = data.urllib.request.urlopen
    no_network(monkeypatch)
    kwargs: dict[str, bool] = {}
    if how == "argument":
        kwargs["download"] = False
    else:
        monkeypatch.setenv("STDP_NO_DOWNLOAD", "1")
    root = tmp_path / "empty"
    for call in (
        lambda: data.load_split("tiny", "train", root, **kwargs),
        lambda: data.checksums("tiny", root, **kwargs),
        lambda: data.summary("tiny", root, **kwargs),
    ):
        with pytest.raises(PipelineError) as info:
            call()
        msg = str(info.value)
        assert "\n" not in msg and str(root) in msg and "not found" in msg
        assert "stdp-pipeline data fetch --dataset tiny" in msg
        assert ("STDP_NO_DOWNLOAD" in msg) == (how == "environment")
    assert server.requests == [] and files_under(root) == []
    assert capsys.readouterr().err == ""
    # An explicit download=True wins over the environment variable; STDP_NO_DOWNLOAD=0 allows.
    monkeypatch.setattr(data.urllib.request, "urlopen", real_urlopen)
    monkeypatch.setenv("STDP_NO_DOWNLOAD", "1")
    assert len(data.load_split("tiny", "test", root, download=True, progress=False)) == 4
    monkeypatch.setenv("STDP_NO_DOWNLOAD", "0")
    assert data.download_allowed() and not data.download_allowed(False)


def test_first_use_corrupt_download_leaves_nothing(
    tmp_path: Path, server: Server, tiny, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STDP_MIRRORS", server.url + "corrupt/")
    root = tmp_path / "data"
    with pytest.raises(PipelineError) as info:
        data.load_split("tiny", "train", root, progress=False)
    msg = str(info.value)
    assert "\n" not in msg and "not found" in msg
    assert "checksum mismatch" in msg and "train-images-idx3-ubyte.gz" in msg
    assert files_under(root) == []  # neither the file nor a temporary file nor the folder


def test_first_use_progress_lines_can_be_silenced(
    tmp_path: Path, server: Server, tiny, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.setenv("STDP_MIRRORS", server.url + "good/")
    monkeypatch.setenv("STDP_PROGRESS", "0")
    assert len(data.load_split("tiny", "train", tmp_path / "a")) == 6
    assert capsys.readouterr().err == ""
    monkeypatch.delenv("STDP_PROGRESS")
    assert len(data.load_split("tiny", "train", tmp_path / "b", progress=False)) == 6
    assert capsys.readouterr().err == ""


def test_first_use_real_mnist_from_local_mirror(
    tmp_path: Path, mnist_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real registry sums against the real files, downloaded on first use."""
    monkeypatch.delenv("STDP_DATA_DIR", raising=False)
    monkeypatch.delenv("STDP_NO_DOWNLOAD", raising=False)
    srv = Server(mnist_dir)
    monkeypatch.setenv("STDP_MIRRORS", srv.url)
    try:
        test = data.load_split("mnist", "test", tmp_path, progress=False)
    finally:
        srv.close()
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert data.checksums("mnist", tmp_path) == data.checksums("mnist", mnist_dir)
    assert len(srv.requests) == 4
