"""Atomic file writes: write to a temporary file in the target folder, then rename.

A crash or an error half-way never leaves a partial result file: readers see either the old file or
the complete new one (``os.replace`` is atomic on POSIX file systems). A write that the system
refuses (disk full, read-only file system, no permission) raises :class:`WriteError`, a
:class:`~stdp_pipeline.errors.PipelineError` naming the file, and leaves the old file as it was.

A process killed half-way through a write (``kill -9``) leaves its temporary file behind, named
``.<name>.<random>.tmp<suffix>``; :func:`sweep_temporary` removes such files from a folder.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from stdp_pipeline.errors import PipelineError

#: Names of the temporary files :func:`atomic_path` makes (``mkstemp`` adds 8 characters).
_TEMPORARY = re.compile(r"\..+\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?")


class WriteError(PipelineError):
    """A file could not be written: the system refused (``OSError``), e.g. a full disk.

    ``path`` is the file meant to be written, ``errno`` the system's error number. The message is
    one line: ``cannot write results/x/model.npz: No space left on device (disk full: free some
    space and try again)``.
    """

    def __init__(self, path: str | os.PathLike[str], err: OSError) -> None:
        self.path = Path(path)
        self.errno = err.errno
        reason = err.strerror or str(err) or type(err).__name__
        hint = {
            errno.ENOSPC: "disk full: free some space and try again",
            errno.EDQUOT: "disk quota exceeded: free some space and try again",
            errno.EROFS: "read-only file system: write somewhere else",
            errno.EACCES: "no permission to write there",
        }.get(err.errno)
        super().__init__(f"cannot write {path}: {reason}" + (f" ({hint})" if hint else ""))


@contextlib.contextmanager
def reporting(path: str | os.PathLike[str]) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into a :class:`WriteError` naming ``path``.

    For blocks that only write ``path`` (not for downloads, whose network errors are
    ``OSError`` too)."""
    try:
        yield
    except OSError as err:
        raise WriteError(path, err) from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    The temporary file is removed if the block raises. The parent folder is created if needed.
    The system refusing to make the temporary file, or to rename it, raises :class:`WriteError`;
    what the block raises passes through unchanged.
    The temporary name keeps the suffix of ``path`` so that libraries which pick a format from the
    suffix (matplotlib, numpy) do the right thing.
    """
    target = Path(path)
    with reporting(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=f".tmp{target.suffix}", dir=target.parent
        )
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with reporting(target):
            os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; results are ordinary files
            os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise


def _umask() -> int:
    """The process's umask (read by setting and restoring it)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically (:class:`WriteError` if the system refuses)."""
    with atomic_path(path) as tmp, reporting(path):
        tmp.write_bytes(data)


def write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON to ``path`` atomically."""
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=_json_default) + "\n")


def save_npz(
    path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray], *, compressed: bool = False
) -> None:
    """Save ``arrays`` as an ``.npz`` (no pickles; zip-deflated if ``compressed``) atomically
    (:class:`WriteError` if the system refuses)."""
    save = np.savez_compressed if compressed else np.savez
    converted = {k: np.asarray(v) for k, v in arrays.items()}
    with atomic_path(path) as tmp, reporting(path), open(tmp, "wb") as fh:
        save(fh, allow_pickle=False, **converted)


def load_npz(path: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Load every array of an ``.npz`` file into memory, refusing pickled objects."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def is_temporary(name: str) -> bool:
    """Whether ``name`` is the name of a temporary file made by :func:`atomic_path`."""
    return _TEMPORARY.fullmatch(name) is not None


def sweep_temporary(folder: str | os.PathLike[str]) -> list[str]:
    """Remove the temporary files that interrupted atomic writes left in ``folder`` (not in its
    subfolders); return their names. Only safe while no other process writes into ``folder``."""
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(folder):
            if is_temporary(entry.name) and entry.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    os.unlink(entry.path)
                    removed.append(entry.name)
    return sorted(removed)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot write {type(obj).__name__} as JSON")
