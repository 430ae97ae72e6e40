"""MNIST-format data: IDX reading, data-folder resolution, checked downloads, deterministic subsets.

Everything downstream gets digits from :func:`load_split`, which returns read-only ``uint8`` arrays
(images ``(N, 28, 28)``, labels ``(N,)``) from the four original IDX files of a data set, gzipped or
not. Where those files live is decided by :func:`resolve_data_dir`; :func:`fetch` downloads them
(standard library only) and :func:`verify` / :func:`checksums` check them against published MD5
sums. :func:`slice_indices` and :func:`test_indices` pick the deterministic training, assignment and
test subsets that a run uses.

Download on first use: when :func:`load_split`, :func:`checksums` or :func:`summary` find a file
of the data set missing from the resolved folder, they first download the data set's missing files
into it, as :func:`fetch` does (each file checked against its MD5 and renamed into place only then,
so a failed or corrupt download leaves nothing behind), printing one line per file to stderr
(``STDP_PROGRESS=0`` silences them). Files already there are kept as they are. Offline, they raise
one line naming the folder and how to place the files by hand, after one attempt per mirror (each
bounded by a 10 s timeout). Mirrors come from ``STDP_MIRRORS`` or the registry, as for fetch.
Switch this off with ``download=False`` or the environment variable ``STDP_NO_DOWNLOAD=1``; a
missing file then raises at once, without touching the network. :func:`verify` never downloads.

Every user-facing failure raises :class:`~stdp_pipeline.errors.PipelineError` with one line naming
the file or value and what is wrong.

Data sets live in the :data:`DATASETS` registry (name -> :class:`DatasetSpec`). Tests, or a user
with another MNIST-format data set, may add an entry with :func:`register_dataset` (or, in tests,
``monkeypatch.setitem(DATASETS, name, spec)``); every function here then accepts that name.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import hashlib
import http.client
import os
import socket
import sys
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.atomic import atomic_path
from stdp_pipeline.progress import Progress, progress_enabled

__all__ = [
    "DATASETS",
    "DatasetSpec",
    "Digits",
    "FileSpec",
    "checksums",
    "download_allowed",
    "fetch",
    "find_file",
    "load_split",
    "read_idx",
    "register_dataset",
    "resolve_data_dir",
    "slice_indices",
    "summary",
    "test_indices",
    "verify",
]

#: Environment variable naming a data root (``<root>/<dataset>/``) or a data folder itself.
ENV_DATA_DIR = "STDP_DATA_DIR"
#: Environment variable with comma-separated mirror base URLs that replace the registry's.
ENV_MIRRORS = "STDP_MIRRORS"
#: Environment variable: ``1``/``true``/``yes``/``on`` switches the download on first use off.
ENV_NO_DOWNLOAD = "STDP_NO_DOWNLOAD"
_TRUE_VALUES = ("1", "true", "yes", "on")

SPLITS = ("train", "test")

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UBYTE = 0x08
_MAGIC_IMAGES = 0x00000803
_MAGIC_LABELS = 0x00000801
_CHUNK = 1 << 20


# --------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FileSpec:
    """One IDX file of a data set.

    ``name`` is the uncompressed file name (``train-images-idx3-ubyte``); on disk the file may be
    ``name`` or ``name + ".gz"``. ``md5`` is the MD5 of the *uncompressed* IDX content, ``gz_md5``
    that of the published ``.gz`` file; either may be ``None`` where no verified sum is known. A
    file is accepted when either known sum matches. ``count`` is the expected number of items.
    """

    name: str
    split: Literal["train", "test"]
    kind: Literal["images", "labels"]
    count: int | None
    md5: str | None
    gz_md5: str | None

    @property
    def gz_name(self) -> str:
        """The gzipped file name, ``name + ".gz"`` (what mirrors serve)."""
        return self.name + ".gz"


@dataclass(frozen=True)
class DatasetSpec:
    """A data set in MNIST's IDX layout: four files, mirrors to fetch them from, image geometry."""

    name: str
    files: tuple[FileSpec, ...]
    mirrors: tuple[str, ...]
    image_shape: tuple[int, int] = (28, 28)
    n_classes: int = 10

    def file(self, split: str, kind: str) -> FileSpec:
        """The :class:`FileSpec` of ``split`` (train/test) and ``kind`` (images/labels)."""
        for f in self.files:
            if f.split == split and f.kind == kind:
                return f
        raise PipelineError(f"dataset {self.name!r} has no {split} {kind} file")

    @property
    def file_names(self) -> list[str]:
        """The uncompressed names of the dataset's files, in registry order."""
        return [f.name for f in self.files]


# The four files of MNIST and of Fashion-MNIST: (uncompressed name, split, kind, item count).
_IDX_LAYOUT = (
    ("train-images-idx3-ubyte", "train", "images", 60000),
    ("train-labels-idx1-ubyte", "train", "labels", 60000),
    ("t10k-images-idx3-ubyte", "test", "images", 10000),
    ("t10k-labels-idx1-ubyte", "test", "labels", 10000),
)


def _idx_files(sums: dict[str, tuple[str | None, str | None]]) -> tuple[FileSpec, ...]:
    """FileSpecs in :data:`_IDX_LAYOUT` order from ``{name: (content md5, .gz md5)}``."""
    return tuple(
        FileSpec(name, split, kind, count, *sums[name])  # type: ignore[arg-type]
        for name, split, kind, count in _IDX_LAYOUT
    )


# MNIST (LeCun, Cortes, Burges). Sums as (md5 of the UNCOMPRESSED IDX content, md5 of the .gz FILE),
# both checked against the original files in /work/shared/data/mnist (see its README). The content
# sums still hold when a mirror re-compresses the files; the .gz sums are those torchvision uses.
_MNIST = DatasetSpec(
    name="mnist",
    files=_idx_files(
        {
            "train-images-idx3-ubyte": (
                "6bbc9ace898e44ae57da46a324031adb",
                "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            ),
            "train-labels-idx1-ubyte": (
                "a25bea736e30d166cdddb491f175f624",
                "d53e105ee54ea40749a09fcbcd1e9432",
            ),
            "t10k-images-idx3-ubyte": (
                "2646ac647ad5339dbf082846283269ea",
                "9fb629c4189551a2d022fa330f9573f3",
            ),
            "t10k-labels-idx1-ubyte": (
                "27ae3e4e09519cfbb04c329615203637",
                "ec29112dd5afa0611ce80d1b7f02629c",
            ),
        }
    ),
    mirrors=(
        # The S3 mirror that torchvision uses, then Google's CVDF mirror (used by TensorFlow).
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
)

# Fashion-MNIST (Xiao, Rasul, Vollgraf; Zalando Research). Zalando publishes MD5 sums of the .gz
# FILES only (README of github.com/zalandoresearch/fashion-mnist, "Get the Data"; torchvision's
# FashionMNIST.resources carry the same four sums). Those are recorded as the .gz sums. No published
# MD5 of the uncompressed content could be verified here, so the content sums are None: a
# decompressed Fashion-MNIST file can only be checked structurally (IDX header, sizes, item count),
# and verify() says "unverified" for it.
_FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    files=_idx_files(
        {
            "train-images-idx3-ubyte": (None, "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
            "train-labels-idx1-ubyte": (None, "25c81989df183df01b3e8a0aad5dffbe"),
            "t10k-images-idx3-ubyte": (None, "bef4ecab320f06d8554ea6380940ec79"),
            "t10k-labels-idx1-ubyte": (None, "bb300cfdad3c16e7a12a480ee83cd310"),
        }
    ),
    mirrors=(
        # Zalando's S3 host, then the copy inside the GitHub repository.
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
)

#: Known data sets by name. Add one with :func:`register_dataset`.
DATASETS: dict[str, DatasetSpec] = {_MNIST.name: _MNIST, _FASHION_MNIST.name: _FASHION_MNIST}


def register_dataset(spec: DatasetSpec) -> None:
    """Add (or replace) a data set in :data:`DATASETS`.

    This is the hook for tests (tiny files served from a local HTTP server) and for other
    MNIST-format data sets. In tests prefer ``monkeypatch.setitem(data.DATASETS, spec.name, spec)``,
    which undoes itself.
    """
    DATASETS[spec.name] = spec


def _spec(dataset: str) -> DatasetSpec:
    try:
        return DATASETS[dataset]
    except (KeyError, TypeError):
        known = ", ".join(sorted(DATASETS))
        raise PipelineError(f"dataset = {dataset!r}: must be one of {known}") from None


# --------------------------------------------------------------------------------------------------
# IDX reading
# --------------------------------------------------------------------------------------------------


def _read_payload(path: Path) -> tuple[bytes, bool]:
    """Return the (decompressed) bytes of ``path`` and whether it was gzipped."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise PipelineError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise PipelineError(f"{path}: is a folder, not an IDX file") from None
    except OSError as exc:
        raise PipelineError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if raw[:2] == _GZIP_MAGIC:
        try:
            return gzip.decompress(raw), True
        except (OSError, EOFError, zlib.error) as exc:
            detail = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise PipelineError(f"{path}: corrupt gzip data ({detail})") from None
    if path.name.endswith(".gz") and raw[:3] != b"\x00\x00\x08":
        raise PipelineError(
            f"{path}: not gzip data (no 1f 8b magic bytes) and no IDX header either; "
            "the file is damaged or is not an MNIST file"
        )
    return raw, False


def _parse_idx(data: bytes, path: Path) -> np.ndarray:
    """Parse IDX bytes (already decompressed) into a read-only uint8 array."""
    if len(data) < 4:
        raise PipelineError(f"{path}: truncated: {len(data)} bytes, too short for an IDX header")
    magic = int.from_bytes(data[:4], "big")
    if data[0] != 0 or data[1] != 0:
        raise PipelineError(
            f"{path}: bad magic number 0x{magic:08x}: expected 0x{_MAGIC_IMAGES:08x} (images) or "
            f"0x{_MAGIC_LABELS:08x} (labels); not an IDX file"
        )
    dtype_code, ndim = data[2], data[3]
    if dtype_code != _IDX_UBYTE:
        raise PipelineError(
            f"{path}: unsupported IDX element type 0x{dtype_code:02x} (magic 0x{magic:08x}): "
            "only unsigned bytes (0x08) are supported"
        )
    if ndim not in (1, 3):
        raise PipelineError(
            f"{path}: unsupported IDX magic 0x{magic:08x} ({ndim} dimensions): expected "
            f"0x{_MAGIC_IMAGES:08x} (images, 3 dimensions) or 0x{_MAGIC_LABELS:08x} (labels, 1)"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise PipelineError(
            f"{path}: truncated header: {ndim} dimensions need {header} bytes, file holds "
            f"{len(data)} bytes"
        )
    dims = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    if ndim == 3 and (dims[1] == 0 or dims[2] == 0):
        raise PipelineError(f"{path}: bad header: image size {dims[1]}x{dims[2]}")
    expected = int(np.prod(dims, dtype=np.int64))
    got = len(data) - header
    shape = "x".join(str(d) for d in dims)
    if got < expected:
        raise PipelineError(
            f"{path}: truncated: header says {shape} = {expected} bytes, file holds {got} bytes"
        )
    if got > expected:
        raise PipelineError(
            f"{path}: trailing bytes: header says {shape} = {expected} bytes, file holds {got} "
            f"bytes ({got - expected} extra)"
        )
    arr = np.frombuffer(data, dtype=np.uint8, count=expected, offset=header).reshape(dims)
    arr.flags.writeable = False
    return arr


def read_idx(path: str | os.PathLike[str]) -> np.ndarray:
    """Read one IDX file, gzipped or plain (gzip is detected by its magic bytes ``1f 8b``).

    Returns a read-only array: ``uint8 (N, rows, cols)`` for an images file (magic ``0x00000803``),
    ``uint8 (N,)`` for a labels file (magic ``0x00000801``).

    Raises :class:`PipelineError` (one line naming the file) for a missing file, corrupt gzip data,
    a bad or unsupported magic number, a short header, a payload shorter than the header's
    dimensions promise (``truncated``) or longer (``trailing bytes``).
    """
    p = Path(path)
    data, _ = _read_payload(p)
    return _parse_idx(data, p)


# --------------------------------------------------------------------------------------------------
# Where the files are
# --------------------------------------------------------------------------------------------------


def _base_dir(data_dir: str | os.PathLike[str] | None) -> tuple[Path | None, str]:
    """The explicit root (argument, else STDP_DATA_DIR) and a word for where it came from."""
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().absolute(), "data_dir"
    env = os.environ.get(ENV_DATA_DIR, "").strip()
    if env:
        return Path(env).expanduser().absolute(), ENV_DATA_DIR
    return None, "default"


def resolve_data_dir(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The folder in which the files of ``dataset`` are looked for (absolute; may not exist).

    Order: the ``data_dir`` argument, else the ``STDP_DATA_DIR`` environment variable, else
    ``data/<dataset>/`` under the current working directory. For the first two, ``<dir>/<dataset>/``
    is used if it is a folder, otherwise ``<dir>`` itself, so both a root holding ``mnist/`` and
    ``fashion-mnist/`` and a folder holding the four files directly work.
    """
    _spec(dataset)
    base, _ = _base_dir(data_dir)
    if base is None:
        return Path.cwd().absolute() / "data" / dataset
    sub = base / dataset
    return sub if sub.is_dir() else base


def find_file(folder: str | os.PathLike[str], name: str) -> Path | None:
    """``folder/name.gz`` if it is a file, else ``folder/name``, else ``None``."""
    folder = Path(folder)
    for candidate in (folder / (name + ".gz"), folder / name):
        if candidate.is_file():
            return candidate
    return None


def _fetch_hint(dataset: str) -> str:
    return (
        f"run `stdp-pipeline data fetch --dataset {dataset}`, or set {ENV_DATA_DIR} to a folder "
        "holding the files"
    )


def _not_found(
    dataset: str, folder: Path, name: str, data_dir: str | os.PathLike[str] | None
) -> str:
    """The first part of a missing-file message: which file, where it was looked for and why."""
    source = {
        "data_dir": "the given data dir",
        ENV_DATA_DIR: f"from {ENV_DATA_DIR}",
        "default": "the default data/<dataset> under the current folder",
    }[_base_dir(data_dir)[1]]
    state = "" if folder.is_dir() else ", which does not exist"
    return f"{dataset}: {name}.gz (or {name}) not found; searched {folder} ({source}{state})"


def _require_file(
    dataset: str,
    folder: Path,
    name: str,
    data_dir: str | os.PathLike[str] | None,
    note: str = "",
) -> Path:
    found = find_file(folder, name)
    if found is not None:
        return found
    raise PipelineError(
        _not_found(dataset, folder, name, data_dir) + "; " + _fetch_hint(dataset) + note
    )


def download_allowed(download: bool | None = None) -> bool:
    """Whether a missing data set may be downloaded on first use: ``download`` if given, else
    False when the ``STDP_NO_DOWNLOAD`` environment variable is ``1``/``true``/``yes``/``on``."""
    if download is not None:
        return bool(download)
    return os.environ.get(ENV_NO_DOWNLOAD, "").strip().lower() not in _TRUE_VALUES


def _ensure_files(
    spec: DatasetSpec,
    names: Sequence[str],
    data_dir: str | os.PathLike[str] | None,
    download: bool | None,
    progress: bool | None,
) -> Path:
    """The resolved folder of ``spec``, after downloading the data set's missing files into it if
    one of ``names`` (uncompressed file names) is missing and downloads are allowed.

    Raises :class:`PipelineError` (one line) if a file of ``names`` is missing and downloads are
    off, or if the download fails (offline, checksum, unwritable folder).
    """
    dataset = spec.name
    folder = resolve_data_dir(dataset, data_dir)
    missing = [n for n in names if find_file(folder, n) is None]
    if not missing:
        return folder
    if not download_allowed(download):
        note = ""
        if download is None:
            note = f" (download on first use is off: {ENV_NO_DOWNLOAD} is set)"
        _require_file(dataset, folder, missing[0], data_dir, note)
    show = progress_enabled(progress)
    target = _fetch_dir(spec, data_dir)
    if show:
        print(
            f"{dataset}: {missing[0]}(.gz) not found in {folder}; downloading the missing files "
            f"into {target} (set {ENV_NO_DOWNLOAD}=1 to switch this off)",
            file=sys.stderr,
            flush=True,
        )
    try:
        fetch(dataset, data_dir, progress=show, replace_bad=False)
    except PipelineError as err:
        raise PipelineError(
            _not_found(dataset, folder, missing[0], data_dir)
            + f"; the download on first use failed: {err}"
        ) from None
    return resolve_data_dir(dataset, data_dir)


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Digits:
    """One split of a data set.

    ``images``: read-only ``uint8`` array ``(N, 28, 28)``, pixel values 0..255.
    ``labels``: read-only ``uint8`` array ``(N,)``, values 0..9.
    """

    images: np.ndarray
    labels: np.ndarray

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path.resolve()), st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=8)
def _load_pair(
    images_key: tuple[str, int, int],
    labels_key: tuple[str, int, int],
    image_shape: tuple[int, int],
    n_classes: int,
) -> Digits:
    img_path, lbl_path = Path(images_key[0]), Path(labels_key[0])
    images = read_idx(img_path)
    labels = read_idx(lbl_path)
    if images.ndim != 3:
        raise PipelineError(
            f"{img_path}: holds labels (magic 0x{_MAGIC_LABELS:08x}), expected images "
            f"(magic 0x{_MAGIC_IMAGES:08x})"
        )
    if labels.ndim != 1:
        raise PipelineError(
            f"{lbl_path}: holds images (magic 0x{_MAGIC_IMAGES:08x}), expected labels "
            f"(magic 0x{_MAGIC_LABELS:08x})"
        )
    if tuple(images.shape[1:]) != tuple(image_shape):
        raise PipelineError(
            f"{img_path}: images are {images.shape[1]}x{images.shape[2]}, expected "
            f"{image_shape[0]}x{image_shape[1]}"
        )
    if images.shape[0] != labels.shape[0]:
        raise PipelineError(
            f"count mismatch: {img_path.name} holds {images.shape[0]} images but {lbl_path.name} "
            f"holds {labels.shape[0]} labels (in {img_path.parent})"
        )
    if labels.size and int(labels.max()) >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise PipelineError(
            f"{lbl_path}: label {int(labels[bad])} at index {bad} is out of range "
            f"0..{n_classes - 1}"
        )
    return Digits(images=images, labels=labels)


def load_split(
    dataset: str = "mnist",
    split: str = "train",
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool | None = None,
    progress: bool | None = None,
) -> Digits:
    """Load one split (``"train"`` or ``"test"``) of ``dataset`` from its resolved data folder.

    Returns :class:`Digits` with read-only ``images`` ``uint8 (N, 28, 28)`` and ``labels``
    ``uint8 (N,)``. Checks that image and label counts agree, labels lie in 0..9 and images are
    28x28. Results are cached in-process per resolved file (path, mtime, size), so repeated calls
    are free and a replaced file is re-read.

    If a file of the split is missing, the data set's missing files are first downloaded into the
    folder (see the module docstring), unless ``download=False`` or, with ``download=None``, the
    environment variable ``STDP_NO_DOWNLOAD`` is ``1``. ``progress`` (``None``: unless
    ``STDP_PROGRESS=0``) prints the download's lines to stderr. Raises :class:`PipelineError`
    (one line naming the folder and what to do) when the files are missing and cannot be had.
    """
    spec = _spec(dataset)
    if split not in SPLITS:
        raise PipelineError(f"split = {split!r}: must be 'train' or 'test'")
    names = [spec.file(split, "images").name, spec.file(split, "labels").name]
    folder = _ensure_files(spec, names, data_dir, download, progress)
    img = _require_file(dataset, folder, names[0], data_dir)
    lbl = _require_file(dataset, folder, names[1], data_dir)
    return _load_pair(_stat_key(img), _stat_key(lbl), spec.image_shape, spec.n_classes)


# --------------------------------------------------------------------------------------------------
# Checksums and verification
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Inspection:
    md5: str | None  # of the uncompressed content
    gz_md5: str | None  # of the file as stored, if it is gzipped
    count: int | None
    error: str | None


@functools.lru_cache(maxsize=64)
def _inspect(key: tuple[str, int, int]) -> _Inspection:
    path = Path(key[0])
    try:
        data, gzipped = _read_payload(path)
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        gz_md5 = None
        if gzipped:
            gz_md5 = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
        arr = _parse_idx(data, path)
    except PipelineError as err:
        return _Inspection(None, None, None, str(err))
    return _Inspection(md5, gz_md5, int(arr.shape[0]), None)


def _judge(f: FileSpec, ins: _Inspection) -> tuple[bool, str]:
    """Whether an inspected file is acceptable as ``f``, and a short word on why."""
    if ins.error is not None:
        return False, ins.error
    if f.md5 is not None and ins.md5 == f.md5:
        return True, "md5 of content matches"
    if f.gz_md5 is not None and ins.gz_md5 == f.gz_md5:
        return True, "md5 of .gz file matches"
    if f.md5 is None and (ins.gz_md5 is None or f.gz_md5 is None):
        if f.count is not None and ins.count != f.count:
            return False, f"holds {ins.count} items, expected {f.count}"
        return True, "unverified: no published md5 of the content; IDX structure valid"
    if f.md5 is not None:
        return False, f"checksum mismatch: md5 of content {ins.md5}, expected {f.md5}"
    return False, f"checksum mismatch: md5 of .gz {ins.gz_md5}, expected {f.gz_md5}"


def verify(dataset: str, data_dir: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Check each file of ``dataset`` in its resolved folder; never raises for a bad file.

    Returns one row per file with columns ``name`` (uncompressed name), ``split``, ``kind``,
    ``path`` (str, "" if missing), ``size`` (bytes on disk, int; 0 if missing), ``md5`` (of the
    uncompressed content; None if unreadable), ``expected_md5`` and ``expected_gz_md5`` (the known
    sums of the content and of the published .gz; None where unknown), ``ok`` (bool: a known sum
    matches, or no sum applies and the IDX structure is valid), ``count`` (items per the IDX header;
    None if unreadable) and ``status`` (one line saying why).
    """
    spec = _spec(dataset)
    folder = resolve_data_dir(dataset, data_dir)
    rows = []
    for f in spec.files:
        row: dict[str, object] = {
            "name": f.name,
            "split": f.split,
            "kind": f.kind,
            "path": "",
            "size": 0,
            "md5": None,
            "expected_md5": f.md5,
            "expected_gz_md5": f.gz_md5,
            "ok": False,
            "count": None,
            "status": f"missing: no {f.gz_name} or {f.name} in {folder}",
        }
        path = find_file(folder, f.name)
        if path is not None:
            key = _stat_key(path)
            ins = _inspect(key)
            ok, status = _judge(f, ins)
            row.update(
                path=str(path), size=key[2], md5=ins.md5, ok=ok, count=ins.count, status=status
            )
        rows.append(row)
    df = pd.DataFrame(rows)
    df["ok"] = df["ok"].astype(bool)
    df["size"] = df["size"].astype("int64")
    return df


def checksums(
    dataset: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool | None = None,
    progress: bool | None = None,
) -> dict[str, str]:
    """Uncompressed-content MD5 per file: ``{"train-images-idx3-ubyte": "6bbc9a...", ...}``.

    Keys are the uncompressed file names whether the files are stored gzipped or not. Cheap after
    the first call: results are cached per (path, mtime, size). Missing files are downloaded first,
    as by :func:`load_split` (``download``, ``progress`` as there). Raises :class:`PipelineError`
    if a file is missing or unreadable (it does not compare against expected sums; see
    :func:`verify`).
    """
    spec = _spec(dataset)
    folder = _ensure_files(spec, spec.file_names, data_dir, download, progress)
    out: dict[str, str] = {}
    for f in spec.files:
        ins = _inspect(_stat_key(_require_file(dataset, folder, f.name, data_dir)))
        if ins.error is not None or ins.md5 is None:
            raise PipelineError(ins.error or f"{folder / f.name}: unreadable")
        out[f.name] = ins.md5
    return out


def _pixel_moments(images: np.ndarray) -> tuple[float, float]:
    """Mean and population std of all pixel values of uint8 ``images`` ``(N, ...)``.

    Sums run over chunks in float64; with integer pixels below 2**53 in total they are exact.
    """
    flat = images.reshape(images.shape[0], -1)
    n = flat.size
    if n == 0:
        return float("nan"), float("nan")
    s1 = s2 = 0.0
    for i in range(0, flat.shape[0], 4096):
        c = flat[i : i + 4096].astype(np.float64)
        s1 += float(c.sum())
        s2 += float(np.einsum("ij,ij->", c, c))
    mean = s1 / n
    return mean, float(np.sqrt(max(s2 / n - mean * mean, 0.0)))


def summary(
    dataset: str,
    data_dir: str | os.PathLike[str] | None = None,
    *,
    download: bool | None = None,
) -> pd.DataFrame:
    """Label histogram and pixel statistics per split.

    Returns a DataFrame with columns ``train`` and ``test`` and rows ``0`` .. ``9`` (int: number of
    digits with that label), ``"total"`` (int) and ``"pixel_mean"``, ``"pixel_std"`` (float, pixel
    values 0..255 over all pixels of the split; population std). Values are of object dtype so that
    counts stay integers. Missing files are downloaded first unless ``download`` is False (see
    :func:`load_split`).
    """
    spec = _spec(dataset)
    cols: dict[str, list[object]] = {}
    for split in SPLITS:
        d = load_split(dataset, split, data_dir, download=download)
        hist = np.bincount(d.labels, minlength=spec.n_classes)
        mean, std = _pixel_moments(d.images)
        cols[split] = [int(c) for c in hist] + [len(d), mean, std]
    index = list(range(spec.n_classes)) + ["total", "pixel_mean", "pixel_std"]
    return pd.DataFrame(cols, index=pd.Index(index, dtype=object), dtype=object)


# --------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------


class _Unreachable(Exception):
    """A mirror could not be contacted (refused, DNS, timeout, network down)."""


class _BadDownload(Exception):
    """A mirror answered, but not with the right file (HTTP error, short read, checksum)."""


def _mirror_list(spec: DatasetSpec, mirrors: Sequence[str] | str | None) -> list[str]:
    if mirrors is None:
        env = os.environ.get(ENV_MIRRORS, "").strip()
        mirrors = env if env else spec.mirrors
    if isinstance(mirrors, str):
        mirrors = mirrors.split(",")
    out = [m.strip() for m in mirrors if m and m.strip()]
    if not out:
        raise PipelineError(f"no mirrors to fetch {spec.name} from ({ENV_MIRRORS} is empty?)")
    return [m if m.endswith("/") else m + "/" for m in out]


def _fetch_dir(spec: DatasetSpec, data_dir: str | os.PathLike[str] | None) -> Path:
    """Where :func:`fetch` writes: the resolved folder, but a fresh root gets ``<root>/<dataset>/``.

    For an explicit or ``STDP_DATA_DIR`` root that has no ``<dataset>/`` subfolder and holds none of
    the dataset's files, the files go into ``<root>/<dataset>/`` (so MNIST and Fashion-MNIST, which
    share file names, never mix); :func:`resolve_data_dir` then finds them there.
    """
    base, _ = _base_dir(data_dir)
    if base is None:
        return Path.cwd().absolute() / "data" / spec.name
    sub = base / spec.name
    if sub.is_dir():
        return sub
    if any(find_file(base, f.name) is not None for f in spec.files):
        return base
    return sub


def _unwrap(exc: BaseException) -> BaseException:
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        return exc.reason if isinstance(exc.reason, BaseException) else exc
    return exc


def _is_unreachable(exc: BaseException) -> bool:
    """True for failures to contact the host at all (refused, DNS, timeout, no route)."""
    exc = _unwrap(exc)
    if isinstance(exc, urllib.error.HTTPError):
        return False
    if isinstance(exc, urllib.error.URLError):  # a reason given as text: cannot tell, assume down
        return True
    return isinstance(exc, OSError)


def _short_reason(exc: BaseException) -> str:
    """A few words on a network failure."""
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    exc = _unwrap(exc)
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "host not found"
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text or type(exc).__name__


def _isatty(stream: object) -> bool:
    try:
        return bool(stream.isatty())  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False


def _human(n: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n} B"  # pragma: no cover


def _download_one(url: str, f: FileSpec, target: Path, timeout_s: float, progress: bool) -> None:
    """Download ``url`` to ``target`` atomically, accepting it only if it matches a known sum.

    Raises :class:`_Unreachable` or :class:`_BadDownload`; in both cases no file (temporary or
    final) is left behind.
    """
    try:
        resp = urllib.request.urlopen(url, timeout=timeout_s)
    except ValueError as exc:
        raise _BadDownload(f"bad URL ({exc})") from None
    except (OSError, http.client.HTTPException) as exc:
        if _is_unreachable(exc):
            raise _Unreachable(_short_reason(exc)) from None
        raise _BadDownload(_short_reason(exc)) from None
    # A byte counter on a terminal only: in a log, fetch's line per file says enough.
    bar_on = None if progress and _isatty(sys.stderr) else False
    with contextlib.closing(resp), atomic_path(target) as tmp:
        total = int(resp.headers.get("Content-Length") or 0)
        got = 0
        h_file = hashlib.md5(usedforsecurity=False)
        try:
            with (
                open(tmp, "wb") as out,
                Progress(
                    total or None,
                    f"  {f.gz_name}",
                    unit="B",
                    enabled=bar_on,
                    unit_scale=True,
                    leave=False,
                ) as bar,
            ):
                while chunk := resp.read(_CHUNK):
                    out.write(chunk)
                    h_file.update(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
        except (OSError, http.client.HTTPException) as exc:
            raise _BadDownload(
                f"download interrupted after {got} bytes ({_short_reason(exc)})"
            ) from None
        if total and got != total:
            raise _BadDownload(f"download interrupted: got {got} of {total} bytes")
        file_md5 = h_file.hexdigest()
        key = _stat_key(tmp)
        ins = _inspect(key)
        if ins.error is not None:
            # Name the file as the user knows it, not by its temporary name.
            detail = ins.error.replace(key[0], f.gz_name).replace(str(tmp), f.gz_name)
            raise _BadDownload(f"checksum failed: the download is not a valid IDX file: {detail}")
        if f.md5 is None and f.gz_md5 is None:
            return  # no known sum (a user-registered data set): a valid IDX file is all we can ask
        if (f.md5 is not None and ins.md5 == f.md5) or (
            f.gz_md5 is not None and file_md5 == f.gz_md5
        ):
            return
        expected = " or ".join(
            s
            for s in (
                f"content md5 {f.md5}" if f.md5 else "",
                f".gz md5 {f.gz_md5}" if f.gz_md5 else "",
            )
            if s
        )
        raise _BadDownload(
            f"checksum mismatch: got .gz md5 {file_md5}, content md5 {ins.md5}; expected {expected}"
        )


def fetch(
    dataset: str,
    data_dir: str | os.PathLike[str] | None = None,
    mirrors: Sequence[str] | str | None = None,
    timeout_s: float = 10.0,
    progress: bool = True,
    *,
    replace_bad: bool = True,
) -> Path:
    """Download the files of ``dataset`` that are missing or bad; return the folder holding them.

    Each ``<name>.gz`` is tried from each mirror in order (``mirrors``, else the comma-separated
    ``STDP_MIRRORS`` environment variable, else the registry's), written to a temporary file in the
    target folder, checked against the known MD5 (of the content or of the .gz) and only then
    renamed into place: a checksum failure or an interrupted download leaves no file behind.
    Files already present and valid are skipped. A mirror found unreachable is not tried again for
    the remaining files.

    The target folder is :func:`resolve_data_dir`'s, except that an explicit/``STDP_DATA_DIR``
    root with neither a ``<dataset>/`` subfolder nor any of the files gets ``<root>/<dataset>/``.

    Raises :class:`PipelineError` if some file could not be fetched from any mirror; when no
    mirror could be reached at all (offline) the message names the folder and the four file names
    to place there by hand. ``progress`` prints one line per file to stderr (and, on a terminal, a
    byte counter while a file downloads). ``timeout_s`` (seconds) bounds each network wait.

    ``replace_bad=False`` keeps files already present without checking them (the download on first
    use of :func:`load_split` does this: it only adds what is missing).
    """
    spec = _spec(dataset)
    bases = _mirror_list(spec, mirrors)
    target_dir = _fetch_dir(spec, data_dir)
    created = not target_dir.exists()
    try:
        _fetch_files(spec, target_dir, bases, timeout_s, progress, replace_bad)
    except BaseException:
        if created:  # leave no empty folder behind either
            with contextlib.suppress(OSError):
                target_dir.rmdir()
        raise
    return target_dir


def _fetch_files(
    spec: DatasetSpec,
    target_dir: Path,
    bases: list[str],
    timeout_s: float,
    progress: bool,
    replace_bad: bool = True,
) -> None:
    """The download loop of :func:`fetch`."""
    dataset = spec.name
    dead: dict[str, str] = {}

    def say(msg: str) -> None:
        if progress:
            print(msg, file=sys.stderr, flush=True)

    def by_hand() -> str:
        names = ", ".join(f.gz_name for f in spec.files)
        return (
            f"place the files by hand: put {names} (gzipped or not) in {target_dir}, or set "
            f"{ENV_DATA_DIR} to a folder holding them"
        )

    for f in spec.files:
        existing = find_file(target_dir, f.name)
        if existing is not None and not replace_bad:
            continue
        if existing is not None:
            ok, status = _judge(f, _inspect(_stat_key(existing)))
            if ok:
                say(f"{existing.name}: present, {status}; skipped")
                continue
            say(f"{existing.name}: {status}; fetching it again")
        failures: list[str] = []
        t0 = time.monotonic()
        for base in bases:
            if base in dead:
                failures.append(f"{base}: {dead[base]}")
                continue
            url = base + f.gz_name
            say(f"{f.gz_name}: fetching {url}")
            try:
                _download_one(url, f, target_dir / f.gz_name, timeout_s, progress)
            except _Unreachable as exc:
                dead[base] = str(exc)
                failures.append(f"{base}: {exc}")
                continue
            except _BadDownload as exc:
                failures.append(f"{url}: {exc}")
                say(f"{f.gz_name}: {exc}")
                continue
            except OSError as exc:  # the target folder itself: read-only, disk full, ...
                raise PipelineError(
                    f"cannot write {target_dir / f.gz_name}: {exc.strerror or exc}; choose a "
                    f"writable data folder (--data-dir or {ENV_DATA_DIR})"
                ) from None
            if existing is not None and existing != target_dir / f.gz_name:
                with contextlib.suppress(OSError):
                    existing.unlink()
            size = (target_dir / f.gz_name).stat().st_size
            say(f"{f.gz_name}: {_human(size)} in {time.monotonic() - t0:.1f} s, checksum ok")
            break
        else:
            if len(dead) == len(bases):
                reasons = "; ".join(f"{b} ({r})" for b, r in dead.items())
                raise PipelineError(
                    f"could not reach any mirror for {dataset}: {reasons}; offline? " + by_hand()
                )
            raise PipelineError(
                f"{dataset}: could not fetch {f.gz_name}: " + "; ".join(failures) + "; nothing "
                "was written for it; " + by_hand()
            )


# --------------------------------------------------------------------------------------------------
# Deterministic subsets
# --------------------------------------------------------------------------------------------------


def _positive(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PipelineError(f"{name} = {value!r}: must be a whole number > 0")
    if value <= 0:
        raise PipelineError(f"{name} = {value}: must be > 0")
    return int(value)


def _span(start: int, count: int) -> str:
    return f"{start}..{start + count - 1}"


def slice_indices(
    n_available: int,
    train_digits: int,
    assign_digits: int,
    assign_start: int | None = None,
    allow_overlap: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Training and assignment indices into a split of ``n_available`` digits.

    Returns ``(train_idx, assign_idx)``, both ``int64`` 1-D arrays: ``train_idx`` is
    ``0 .. train_digits-1``; ``assign_idx`` is ``assign_digits`` consecutive indices starting at
    ``assign_start`` (default ``train_digits``, right after the training slice).

    Raises :class:`PipelineError` for counts <= 0, a negative start, ranges past ``n_available``,
    or an assignment range overlapping the training range unless ``allow_overlap``.
    """
    n = _positive("n_available", n_available)
    n_train = _positive("train_digits", train_digits)
    n_assign = _positive("assign_digits", assign_digits)
    if assign_start is None:
        start = n_train
    else:
        if isinstance(assign_start, bool) or not isinstance(assign_start, (int, np.integer)):
            raise PipelineError(f"assign_start = {assign_start!r}: must be a whole number >= 0")
        if assign_start < 0:
            raise PipelineError(f"assign_start = {assign_start}: must be >= 0")
        start = int(assign_start)
    if n_train > n:
        raise PipelineError(f"train_digits = {n_train}: only {n} digits available (0..{n - 1})")
    if start + n_assign > n:
        raise PipelineError(
            f"assignment digits {_span(start, n_assign)} (assign_start = {start}, "
            f"assign_digits = {n_assign}) run past the {n} available (0..{n - 1})"
        )
    if not allow_overlap and start < n_train:
        raise PipelineError(
            f"assignment digits {_span(start, n_assign)} overlap training digits "
            f"{_span(0, n_train)}; set allow_overlap = true, or use a smaller train_digits or "
            f"assign_start >= {n_train}"
        )
    train_idx = np.arange(n_train, dtype=np.int64)
    assign_idx = np.arange(start, start + n_assign, dtype=np.int64)
    return train_idx, assign_idx


def test_indices(n_available: int, test_digits: int) -> np.ndarray:
    """The first ``test_digits`` indices of a test split: ``int64`` array ``(test_digits,)``.

    Raises :class:`PipelineError` for counts <= 0 or more test digits than available.
    """
    n = _positive("n_available", n_available)
    k = _positive("test_digits", test_digits)
    if k > n:
        raise PipelineError(f"test_digits = {k}: only {n} test digits available")
    return np.arange(k, dtype=np.int64)


# pytest would otherwise collect ``test_indices`` when a test module imports it by name.
test_indices.__test__ = False  # type: ignore[attr-defined]
