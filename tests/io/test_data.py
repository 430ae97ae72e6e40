"""stdp_pipeline.data: IDX reading, loading, folder resolution, verification, subsets."""

from __future__ import annotations

import gzip
import hashlib
import os
import time
from pathlib import Path

import numpy as np
import pytest

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import data

MNIST_TRAIN_HIST = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_HIST = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_MD5 = {
    "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
    "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
    "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
    "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
}


def idx_bytes(arr: np.ndarray, magic: int | None = None) -> bytes:
    """IDX encoding of a uint8 array (header + payload)."""
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    if magic is None:
        magic = 0x00000800 | arr.ndim
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    return header + arr.tobytes()


def write(path: Path, payload: bytes, gz: bool = False) -> Path:
    path.write_bytes(gzip.compress(payload) if gz else payload)
    return path


def tiny_images(n: int = 5, rows: int = 28, cols: int = 28) -> np.ndarray:
    return (np.arange(n * rows * cols) % 251).astype(np.uint8).reshape(n, rows, cols)


def tiny_labels(n: int = 5) -> np.ndarray:
    return (np.arange(n) % 10).astype(np.uint8)


def write_split_files(folder: Path, n_train: int = 6, n_test: int = 4, gz: bool = True) -> None:
    """The four MNIST-named files with tiny contents in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write(folder / f"{prefix}-images-idx3-ubyte{suffix}", idx_bytes(tiny_images(n)), gz)
        write(folder / f"{prefix}-labels-idx1-ubyte{suffix}", idx_bytes(tiny_labels(n)), gz)


@pytest.fixture(autouse=True)
def _no_download(monkeypatch: pytest.MonkeyPatch) -> None:
    """No test here may reach the network: a missing file must raise at once."""
    monkeypatch.setenv("STDP_NO_DOWNLOAD", "1")


def error_of(fn, *args, **kwargs) -> str:
    """The message of the PipelineError that ``fn(*args, **kwargs)`` raises; it must be one line."""
    with pytest.raises(PipelineError) as info:
        fn(*args, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg, msg
    return msg


# --------------------------------------------------------------------------------------------------
# Real MNIST
# --------------------------------------------------------------------------------------------------


def test_real_mnist_shapes_and_histograms(mnist_dir: Path) -> None:
    train = data.load_split("mnist", "train", mnist_dir)
    test = data.load_split("mnist", "test", mnist_dir)
    assert train.images.shape == (60000, 28, 28) and train.images.dtype == np.uint8
    assert train.labels.shape == (60000,) and train.labels.dtype == np.uint8
    assert test.images.shape == (10000, 28, 28) and test.labels.shape == (10000,)
    assert len(train) == 60000 and len(test) == 10000
    assert np.bincount(train.labels, minlength=10).tolist() == MNIST_TRAIN_HIST
    assert np.bincount(test.labels, minlength=10).tolist() == MNIST_TEST_HIST
    # The original order: the first training digits are 5, 0, 4, 1, 9.
    assert train.labels[:5].tolist() == [5, 0, 4, 1, 9]


def test_real_mnist_summary_and_checksums(mnist_dir: Path) -> None:
    s = data.summary("mnist", mnist_dir)
    assert list(s.columns) == ["train", "test"]
    assert [s.loc[d, "train"] for d in range(10)] == MNIST_TRAIN_HIST
    assert [s.loc[d, "test"] for d in range(10)] == MNIST_TEST_HIST
    assert s.loc["total", "train"] == 60000 and s.loc["total", "test"] == 10000
    assert round(s.loc["pixel_mean", "train"], 3) == 33.318
    assert round(s.loc["pixel_std", "train"], 3) == 78.567
    assert round(s.loc["pixel_mean", "test"], 3) == 33.791
    assert round(s.loc["pixel_std", "test"], 3) == 79.172
    assert data.checksums("mnist", mnist_dir) == MNIST_MD5
    report = data.verify("mnist", mnist_dir)
    assert report["ok"].all(), report.to_string()
    assert report["md5"].tolist() == list(MNIST_MD5.values())
    assert report["count"].tolist() == [60000, 60000, 10000, 10000]


def test_real_mnist_read_is_fast_and_read_only(mnist_dir: Path) -> None:
    path = data.find_file(mnist_dir, "train-images-idx3-ubyte")
    assert path is not None
    t0 = time.perf_counter()
    images = data.read_idx(path)
    elapsed = time.perf_counter() - t0
    assert images.shape == (60000, 28, 28)
    assert elapsed < 3.0, f"reading 60,000 images took {elapsed:.2f} s"
    with pytest.raises(ValueError):
        images[0, 0, 0] = 1
    train = data.load_split("mnist", "train", mnist_dir)
    with pytest.raises(ValueError):
        train.labels[0] = 3


# --------------------------------------------------------------------------------------------------
# read_idx on tiny files
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_tiny_files_round_trip(tmp_path: Path, gz: bool) -> None:
    images, labels = tiny_images(3, 4, 5), tiny_labels(7)
    suffix = ".gz" if gz else ""
    got_images = data.read_idx(write(tmp_path / f"img{suffix}", idx_bytes(images), gz))
    got_labels = data.read_idx(write(tmp_path / f"lbl{suffix}", idx_bytes(labels), gz))
    assert got_images.dtype == np.uint8 and got_images.shape == (3, 4, 5)
    np.testing.assert_array_equal(got_images, images)
    assert got_labels.dtype == np.uint8 and got_labels.shape == (7,)
    np.testing.assert_array_equal(got_labels, labels)


def test_gzip_detected_by_magic_bytes_not_name(tmp_path: Path) -> None:
    labels = tiny_labels(9)
    path = write(tmp_path / "labels-without-gz-suffix", idx_bytes(labels), gz=True)
    np.testing.assert_array_equal(data.read_idx(path), labels)
    # A plain IDX file that a browser decompressed but kept the .gz name is still read.
    plain = write(tmp_path / "plain.gz", idx_bytes(labels), gz=False)
    np.testing.assert_array_equal(data.read_idx(plain), labels)


def test_wrong_magic(tmp_path: Path) -> None:
    path = write(tmp_path / "bad-magic", b"\x12\x34\x08\x01" + bytes(8))
    msg = error_of(data.read_idx, path)
    assert "bad-magic" in msg and "magic" in msg and "0x12340801" in msg


def test_unsupported_dtype_and_ndim(tmp_path: Path) -> None:
    floats = write(tmp_path / "floats", (0x00000D01).to_bytes(4, "big") + (1).to_bytes(4, "big"))
    msg = error_of(data.read_idx, floats)
    assert "floats" in msg and "unsupported" in msg and "0x0d" in msg
    two_d = write(tmp_path / "two-d", idx_bytes(np.zeros((2, 3), np.uint8)))
    msg = error_of(data.read_idx, two_d)
    assert "two-d" in msg and "unsupported" in msg and "0x00000802" in msg


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_payload(tmp_path: Path, gz: bool) -> None:
    name = "train-images-idx3-ubyte" + (".gz" if gz else "")
    full = idx_bytes(tiny_images(4))
    path = write(tmp_path / name, full[: 16 + 1000], gz)
    msg = error_of(data.read_idx, path)
    assert name in msg
    assert "truncated" in msg and "4x28x28 = 3136 bytes" in msg and "1000 bytes" in msg


def test_truncated_header(tmp_path: Path) -> None:
    path = write(tmp_path / "short-header", idx_bytes(tiny_images(2))[:9])
    msg = error_of(data.read_idx, path)
    assert "short-header" in msg and "truncated header" in msg


def test_trailing_bytes(tmp_path: Path) -> None:
    path = write(tmp_path / "labels-trailing", idx_bytes(tiny_labels(5)) + b"\x00\x01\x02")
    msg = error_of(data.read_idx, path)
    assert "labels-trailing" in msg and "trailing" in msg and "3 extra" in msg


def test_bad_gzip(tmp_path: Path) -> None:
    blob = bytearray(gzip.compress(idx_bytes(tiny_images(3))))
    cut = tmp_path / "cut.gz"
    cut.write_bytes(bytes(blob[: len(blob) // 2]))  # stream ends early
    msg = error_of(data.read_idx, cut)
    assert "cut.gz" in msg and "corrupt gzip" in msg
    blob[20:40] = bytes(20)  # damaged deflate data
    damaged = tmp_path / "damaged.gz"
    damaged.write_bytes(bytes(blob))
    msg = error_of(data.read_idx, damaged)
    assert "damaged.gz" in msg and "corrupt gzip" in msg
    junk = write(tmp_path / "junk.gz", b"<html>not found</html>")
    msg = error_of(data.read_idx, junk)
    assert "junk.gz" in msg and "not gzip" in msg


def test_missing_file(tmp_path: Path) -> None:
    msg = error_of(data.read_idx, tmp_path / "nothing-here")
    assert "nothing-here" in msg and "no such file" in msg


# --------------------------------------------------------------------------------------------------
# load_split checks
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_load_split_tiny(tmp_path: Path, gz: bool) -> None:
    write_split_files(tmp_path, n_train=6, n_test=4, gz=gz)
    train = data.load_split("mnist", "train", tmp_path)
    test = data.load_split("mnist", "test", tmp_path)
    np.testing.assert_array_equal(train.images, tiny_images(6))
    np.testing.assert_array_equal(train.labels, tiny_labels(6))
    assert test.images.shape == (4, 28, 28) and test.labels.tolist() == [0, 1, 2, 3]
    assert not train.images.flags.writeable and not train.labels.flags.writeable


def test_load_split_is_cached_and_rereads_replaced_files(tmp_path: Path) -> None:
    write_split_files(tmp_path, n_train=6)
    first = data.load_split("mnist", "train", tmp_path)
    assert data.load_split("mnist", "train", tmp_path) is first
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    write(labels, idx_bytes(np.full(6, 7, np.uint8)), gz=True)
    os.utime(labels, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    again = data.load_split("mnist", "train", tmp_path)
    assert again is not first and again.labels.tolist() == [7] * 6


def test_count_mismatch(tmp_path: Path) -> None:
    write_split_files(tmp_path, n_train=6)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(tiny_labels(5)), gz=True)
    msg = error_of(data.load_split, "mnist", "train", tmp_path)
    assert "train-images-idx3-ubyte.gz" in msg and "train-labels-idx1-ubyte.gz" in msg
    assert "6 images" in msg and "5 labels" in msg


def test_label_out_of_range(tmp_path: Path) -> None:
    write_split_files(tmp_path, n_train=6)
    bad = np.array([0, 1, 2, 12, 4, 5], np.uint8)
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(bad), gz=True)
    msg = error_of(data.load_split, "mnist", "train", tmp_path)
    assert "train-labels-idx1-ubyte.gz" in msg and "label 12" in msg and "index 3" in msg
    assert "0..9" in msg


def test_wrong_image_size(tmp_path: Path) -> None:
    write_split_files(tmp_path, n_test=4)
    write(tmp_path / "t10k-images-idx3-ubyte.gz", idx_bytes(tiny_images(4, 32, 32)), gz=True)
    msg = error_of(data.load_split, "mnist", "test", tmp_path)
    assert "t10k-images-idx3-ubyte.gz" in msg and "32x32" in msg and "28x28" in msg


def test_labels_file_where_images_expected(tmp_path: Path) -> None:
    write_split_files(tmp_path)
    write(tmp_path / "train-images-idx3-ubyte.gz", idx_bytes(tiny_labels(6)), gz=True)
    msg = error_of(data.load_split, "mnist", "train", tmp_path)
    assert "train-images-idx3-ubyte.gz" in msg and "expected images" in msg


def test_missing_files_message(tmp_path: Path) -> None:
    msg = error_of(data.load_split, "mnist", "train", tmp_path / "empty")
    assert str(tmp_path / "empty") in msg and "train-images-idx3-ubyte" in msg
    assert "stdp-pipeline data fetch --dataset mnist" in msg and "STDP_DATA_DIR" in msg
    assert "STDP_NO_DOWNLOAD" in msg  # why nothing was downloaded
    msg = error_of(data.load_split, "mnist", "test", tmp_path / "empty", download=False)
    assert "t10k-images-idx3-ubyte" in msg and "STDP_NO_DOWNLOAD" not in msg


def test_bad_names(tmp_path: Path) -> None:
    assert "must be one of" in error_of(data.load_split, "cifar", "train", tmp_path)
    assert "'train' or 'test'" in error_of(data.load_split, "mnist", "valid", tmp_path)


# --------------------------------------------------------------------------------------------------
# Folder resolution
# --------------------------------------------------------------------------------------------------


def test_resolve_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    arg, env, cwd = tmp_path / "arg", tmp_path / "env", tmp_path / "cwd"
    for d in (arg, env, cwd):
        d.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("STDP_DATA_DIR", raising=False)
    assert data.resolve_data_dir("mnist") == cwd / "data" / "mnist"
    assert data.resolve_data_dir("fashion-mnist") == cwd / "data" / "fashion-mnist"
    monkeypatch.setenv("STDP_DATA_DIR", str(env))
    assert data.resolve_data_dir("mnist") == env
    assert data.resolve_data_dir("mnist", arg) == arg
    assert data.resolve_data_dir("mnist", str(arg)) == arg


def test_resolve_dataset_subfolder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    (root / "mnist").mkdir(parents=True)
    monkeypatch.delenv("STDP_DATA_DIR", raising=False)
    # <dir>/<dataset> if it exists, else <dir> itself; for the argument and the variable alike.
    assert data.resolve_data_dir("mnist", root) == root / "mnist"
    assert data.resolve_data_dir("fashion-mnist", root) == root
    monkeypatch.setenv("STDP_DATA_DIR", str(root))
    assert data.resolve_data_dir("mnist") == root / "mnist"
    assert data.resolve_data_dir("fashion-mnist") == root
    (root / "fashion-mnist").mkdir()
    assert data.resolve_data_dir("fashion-mnist") == root / "fashion-mnist"


def test_env_dir_is_used_by_load_split(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_split_files(tmp_path / "mnist", n_train=3)
    monkeypatch.setenv("STDP_DATA_DIR", str(tmp_path))
    assert len(data.load_split("mnist", "train")) == 3


def test_find_file_prefers_gz_then_plain(tmp_path: Path) -> None:
    assert data.find_file(tmp_path, "x") is None
    write(tmp_path / "x", b"plain")
    assert data.find_file(tmp_path, "x") == tmp_path / "x"
    write(tmp_path / "x.gz", b"zipped")
    assert data.find_file(tmp_path, "x") == tmp_path / "x.gz"


# --------------------------------------------------------------------------------------------------
# verify / checksums on tiny files
# --------------------------------------------------------------------------------------------------


def _tiny_spec(folder: Path, gz_sums: bool = False) -> data.DatasetSpec:
    """A data set whose expected sums are those of the tiny files in ``folder``."""
    files = []
    for f in data.DATASETS["mnist"].files:
        path = data.find_file(folder, f.name)
        assert path is not None
        raw = path.read_bytes()
        content = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
        md5 = hashlib.md5(content).hexdigest()
        gz_md5 = hashlib.md5(raw).hexdigest()
        count = int.from_bytes(content[4:8], "big")
        files.append(
            data.FileSpec(
                f.name,
                f.split,
                f.kind,
                count,
                None if gz_sums else md5,
                gz_md5 if gz_sums else None,
            )
        )
    return data.DatasetSpec(name="tiny", files=tuple(files), mirrors=("http://127.0.0.1:9/",))


def test_verify_tiny(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_split_files(tmp_path, n_train=6, n_test=4)
    monkeypatch.setitem(data.DATASETS, "tiny", _tiny_spec(tmp_path))
    report = data.verify("tiny", tmp_path)
    assert report["ok"].all() and report["count"].tolist() == [6, 6, 4, 4]
    assert set(report.columns) >= {"name", "path", "size", "md5", "expected_md5", "ok", "count"}
    # A wrong file with a valid structure fails on its checksum; a missing one is reported.
    write(tmp_path / "train-labels-idx1-ubyte.gz", idx_bytes(np.zeros(6, np.uint8)), gz=True)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    report = data.verify("tiny", tmp_path).set_index("name")
    assert report["ok"].tolist() == [True, False, True, False]
    assert "checksum mismatch" in report.loc["train-labels-idx1-ubyte", "status"]
    assert "missing" in report.loc["t10k-labels-idx1-ubyte", "status"]
    msg = error_of(data.checksums, "tiny", tmp_path)
    assert "t10k-labels-idx1-ubyte" in msg and "not found" in msg


def test_gz_sum_alone_accepts_published_gz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Like Fashion-MNIST: only .gz sums known. The .gz passes; a re-compressed copy does not."""
    write_split_files(tmp_path, gz=True)
    monkeypatch.setitem(data.DATASETS, "tiny", _tiny_spec(tmp_path, gz_sums=True))
    assert data.verify("tiny", tmp_path)["ok"].all()
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes()), compresslevel=1, mtime=1))
    report = data.verify("tiny", tmp_path).set_index("name")
    assert not report.loc["train-labels-idx1-ubyte", "ok"]
    # Decompressed files cannot be checked against a .gz sum: structure only, marked unverified.
    plain = tmp_path / "plain"
    write_split_files(plain, gz=False)
    report = data.verify("tiny", plain)
    assert report["ok"].all() and report["status"].str.startswith("unverified").all()


def test_fashion_registry_records_gz_sums_only() -> None:
    spec = data.DATASETS["fashion-mnist"]
    assert [f.name for f in spec.files] == [f.name for f in data.DATASETS["mnist"].files]
    assert all(f.md5 is None and f.gz_md5 and len(f.gz_md5) == 32 for f in spec.files)
    assert spec.file("train", "images").gz_md5 == "8d4fb7e6c68d591d4c3dfef9ec88bf0d"


def test_checksums_cached_per_mtime(tmp_path: Path) -> None:
    write_split_files(tmp_path, n_train=6)
    first = data.checksums("mnist", tmp_path)
    content = idx_bytes(tiny_labels(6))
    assert first["train-labels-idx1-ubyte"] == hashlib.md5(content).hexdigest()
    hits = data._inspect.cache_info().hits
    assert data.checksums("mnist", tmp_path) == first
    assert data._inspect.cache_info().hits == hits + 4
    labels = tmp_path / "train-labels-idx1-ubyte.gz"
    write(labels, idx_bytes(np.full(6, 3, np.uint8)), gz=True)
    os.utime(labels, ns=(time.time_ns() + 10**9, time.time_ns() + 10**9))
    changed = data.checksums("mnist", tmp_path)
    assert changed["train-labels-idx1-ubyte"] != first["train-labels-idx1-ubyte"]
    assert changed["train-images-idx3-ubyte"] == first["train-images-idx3-ubyte"]


# --------------------------------------------------------------------------------------------------
# Subsets
# --------------------------------------------------------------------------------------------------


def test_slice_indices_default() -> None:
    train, assign = data.slice_indices(60000, 1000, 500)
    assert train.dtype == np.int64 and assign.dtype == np.int64
    np.testing.assert_array_equal(train, np.arange(1000))
    np.testing.assert_array_equal(assign, np.arange(1000, 1500))


def test_slice_indices_explicit_start() -> None:
    train, assign = data.slice_indices(60000, 1000, 500, assign_start=50000)
    assert len(train) == 1000
    np.testing.assert_array_equal(assign, np.arange(50000, 50500))


def test_slice_indices_overlap_refused_and_allowed() -> None:
    msg = error_of(data.slice_indices, 60000, 1000, 500, assign_start=800)
    assert "overlap" in msg and "800..1299" in msg and "0..999" in msg
    assert "allow_overlap = true" in msg and "train_digits" in msg
    train, assign = data.slice_indices(60000, 1000, 500, assign_start=800, allow_overlap=True)
    np.testing.assert_array_equal(assign, np.arange(800, 1300))
    assert np.intersect1d(train, assign).size == 200
    _, same = data.slice_indices(60000, 1000, 1000, assign_start=0, allow_overlap=True)
    np.testing.assert_array_equal(same, np.arange(1000))


def test_slice_indices_out_of_range() -> None:
    msg = error_of(data.slice_indices, 60000, 59500, 1000)
    assert "59500..60499" in msg and "60000" in msg
    msg = error_of(data.slice_indices, 60000, 70000, 10)
    assert "train_digits = 70000" in msg and "60000" in msg
    assert "must be > 0" in error_of(data.slice_indices, 60000, 0, 10)
    assert "must be > 0" in error_of(data.slice_indices, 60000, 10, -5)
    assert ">= 0" in error_of(data.slice_indices, 60000, 10, 5, assign_start=-1)
    assert "whole number" in error_of(data.slice_indices, 60000, 10.5, 5)


def test_test_indices() -> None:
    idx = data.test_indices(10000, 250)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx, np.arange(250))
    assert "only 10000" in error_of(data.test_indices, 10000, 10001)
    assert "must be > 0" in error_of(data.test_indices, 10000, 0)
