"""The run directory ``results/<name>/``: the config a run was made under, its manifest, its files.

Layout::

    results/x/config.json     the resolved config (ExperimentConfig.to_dict()) plus "fingerprint"
    results/x/manifest.json   seed, config fingerprint, command, versions, platform, data checksums,
                              git commit, creation time, and one record per finished stage
    results/x/<stage files>   arrays as .npz (no pickles), JSON metrics, plots

Every stage opens the folder with :class:`RunDir`, refuses it if it was made under a different
config (naming the keys that differ), checks that the stages it needs have finished, and runs its
work inside :meth:`RunDir.stage`, which records start, end, wall time and outputs only when the
stage succeeds. Every file is written to a temporary file and renamed
(:mod:`stdp_pipeline.io.atomic`), so an interrupted stage never leaves a half-written result or
manifest.

Stale results: when a stage starts again on a run directory, the records of every stage downstream
of it (its dependents in :data:`stdp_pipeline.stages.table.STAGES`, transitively) are flagged
``"stale"`` in the manifest before anything is written, so that a new model is never mixed with
old assignments or metrics. A stale stage no longer counts as done (:meth:`RunDir.stage_done`),
and :meth:`RunDir.require` refuses it, naming the stages to run again.

One process at a time: a stage holds the run directory's lock (:meth:`RunDir.lock`, the file
``.lock`` with the holder's pid; an advisory ``flock`` on it), so a second process on the same run
directory refuses at once, naming the holder. The lock file is removed when the holder exits and
taken over when the holder is gone (killed).

Typical use in a stage::

    run = RunDir(path)
    config = run.config()
    run.require("train", for_stage="assign")
    with run.stage("assign") as st:
        weights = run.load_arrays("weights.npz", stage="train")["weights"]
        ...
        run.save_arrays("assignments.npz", {"labels": labels})   # recorded as an output
        st.info["assign_accuracy"] = 0.91
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import socket
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: the lock relies on the holder's pid alone
    fcntl = None  # type: ignore[assignment]

import numpy as np

from stdp_pipeline import __version__
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import atomic, reading
from stdp_pipeline.io.config import ExperimentConfig, diff

CONFIG_FILE = "config.json"
MANIFEST_FILE = "manifest.json"
#: Folder of the training checkpoints, ``checkpoints/ckpt-<position>.npz`` (9 digits).
CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT_NAME = re.compile(r"ckpt-(\d{9})\.npz")
#: The run directory's lock file (see :meth:`RunDir.lock`).
LOCK_FILE = ".lock"
#: Folders of a run directory where interrupted writes may leave temporary files.
_WRITTEN_FOLDERS = (".", "encoded", CHECKPOINT_DIR)
#: Keys of a stage record that the stage's ``info`` may not overwrite (``stale``: set when a
#: stage upstream ran again after it).
STAGE_KEYS = ("started", "ended", "wall_s", "command", "outputs", "stale")
#: How many differing keys a config refusal lists before it says "and N more".
_MAX_DIFF_SHOWN = 8
#: Distribution names to try, in order, for each version recorded in the manifest.
_DISTRIBUTIONS: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "tensorflow": ("tensorflow", "tensorflow-cpu", "tensorflow-macos", "tf-nightly"),
    "pandas": ("pandas",),
    "matplotlib": ("matplotlib",),
    "click": ("click",),
}
_GIT_TIMEOUT_S = 5.0


class StageRecord:
    """What a running stage collects for its manifest record (yielded by :meth:`RunDir.stage`).

    ``outputs`` lists file names relative to the run directory, in the order first added; ``info``
    is a dict of extra JSON-able values (e.g. ``{"accuracy": 0.91}``) merged into the record.
    The stage's clock starts when the record is made; :meth:`elapsed_s` reads it.
    """

    def __init__(self, run: RunDir, name: str) -> None:
        self.run = run
        self.name = name
        self.outputs: list[str] = []
        self.info: dict[str, Any] = {}
        self._t0 = time.perf_counter()
        self._t1: float | None = None

    def elapsed_s(self) -> float:
        """Wall-clock seconds since the stage started (``time.perf_counter``, unrounded).

        While the stage runs this grows; once :meth:`RunDir.stage` has finished the stage it is
        the stage's whole duration, the value recorded (rounded to ms) as ``wall_s``.
        """
        end = self._t1 if self._t1 is not None else time.perf_counter()
        return end - self._t0

    def _stop(self) -> float:
        """Stop the clock (once); return the stage's duration in seconds."""
        if self._t1 is None:
            self._t1 = time.perf_counter()
        return self.elapsed_s()

    def add_output(self, relpath: str | os.PathLike[str]) -> Path:
        """Record ``relpath`` (relative to the run directory) as an output; return its full path.

        Files written with :meth:`RunDir.save_arrays` / :meth:`RunDir.write_json` /
        :meth:`RunDir.write_text` while the stage runs are recorded without this call.
        """
        rel = self.run.relpath(relpath)
        if rel not in self.outputs:
            self.outputs.append(rel)
        return self.run.path / rel


class RunDir:
    """A run directory ``results/<name>/`` (see the module docstring for its layout).

    ``RunDir(path)`` only names the folder; :meth:`create` makes it (or reuses it when it was
    made under the same config). Messages name the folder as it was given (``results/x``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._active: StageRecord | None = None

    @property
    def name(self) -> str:
        """The folder name (``x`` for ``results/x``)."""
        return self.path.name or self.path.resolve().name

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"RunDir({str(self.path)!r})"

    # --- creation and config -----------------------------------------------------------------
    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        config: ExperimentConfig,
        *,
        command: list[str] | None = None,
        data_checksums: dict[str, str] | None = None,
    ) -> RunDir:
        """Make the run directory for ``config`` (parents too), or reuse it if made under the same
        config.

        Writes ``config.json`` and ``manifest.json`` (atomically). ``command`` is the argv to
        record (default ``sys.argv``); ``data_checksums`` maps data file names to the MD5 of their
        uncompressed content (see ``stdp_pipeline.io.data.checksums``).

        Raises :class:`PipelineError` if the folder holds a run made under a different config, or
        one whose recorded data checksums differ from ``data_checksums``.
        """
        run = cls(path)
        if run.path.exists() and not run.path.is_dir():
            raise PipelineError(f"{run} is a file, not a folder: give a path for a run directory")
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise PipelineError(f"cannot create run directory {run}: {err.strerror}") from None
        if run.file(CONFIG_FILE).exists():
            run.check_config(config)
            if run.file(MANIFEST_FILE).exists():
                manifest = run.manifest()
                if data_checksums:
                    run._merge_checksums(manifest, data_checksums)
                return run
        else:
            atomic.write_json(
                run.file(CONFIG_FILE), {**config.to_dict(), "fingerprint": config.fingerprint()}
            )
        atomic.write_json(
            run.file(MANIFEST_FILE),
            new_manifest(config, command=command, data_checksums=data_checksums),
        )
        return run

    def config(self) -> ExperimentConfig:
        """The config the run was made under, read from ``config.json``.

        Raises :class:`PipelineError` if the folder is not a run directory, or if ``config.json``
        was edited after the run was made (its content no longer matches its fingerprint).
        """
        path = self.file(CONFIG_FILE)
        if not path.exists():
            raise PipelineError(self._not_a_run_dir())
        raw = self._read_json_file(path)
        if not isinstance(raw, dict):
            raise PipelineError(f"{self}/{CONFIG_FILE}: must hold a JSON object of config sections")
        stored = raw.pop("fingerprint", None)
        actual = _fingerprint_of(raw)
        if stored is not None and stored != actual:
            raise PipelineError(
                f"{self}/{CONFIG_FILE} was changed after the run was made (fingerprint {stored}, "
                f"content {actual}): restore it, or make a new run directory with the new config"
            )
        try:
            return ExperimentConfig.from_dict(raw)
        except PipelineError as err:
            raise PipelineError(f"{self}/{CONFIG_FILE}: {err}") from None

    def check_config(self, config: ExperimentConfig) -> None:
        """Refuse (:class:`PipelineError`) if the run was made under a config other than ``config``.

        The message is one line naming each differing key as ``key: stored -> given``.
        """
        stored = self.config().to_dict()
        given = config.to_dict()
        if stored == given:
            return
        lines = diff(stored, given)
        n = len(lines)
        shown = "; ".join(lines[:_MAX_DIFF_SHOWN])
        if n > _MAX_DIFF_SHOWN:
            shown += f"; and {n - _MAX_DIFF_SHOWN} more"
        keys = "1 key differs" if n == 1 else f"{n} keys differ"
        raise PipelineError(
            f"{self} was made with a different config ({keys}: {shown}); "
            "use a new run directory or the same config"
        )

    # --- manifest and stages -----------------------------------------------------------------
    def manifest(self) -> dict[str, Any]:
        """The parsed ``manifest.json``."""
        path = self.file(MANIFEST_FILE)
        if not path.exists():
            if not self.file(CONFIG_FILE).exists():
                raise PipelineError(self._not_a_run_dir())
            raise PipelineError(
                f"{self}/{MANIFEST_FILE} is missing: run `stdp-pipeline encode {self} "
                "--config ...` again with the same config to rebuild it"
            )
        manifest = self._read_json_file(path)
        if not isinstance(manifest, dict) or not isinstance(manifest.get("stages", {}), dict):
            raise PipelineError(
                f"{self}/{MANIFEST_FILE}: must hold a JSON object with an object of stage "
                "records: it is damaged; delete it and "
                f"run `stdp-pipeline encode {self} --config ...` with the same config to rebuild it"
            )
        manifest.setdefault("stages", {})
        return manifest

    def stage_done(self, name: str) -> bool:
        """Whether stage ``name`` has finished successfully in this run directory and is not stale
        (no stage it depends on ran again since)."""
        record = self.manifest()["stages"].get(name)
        return isinstance(record, dict) and not record.get("stale")

    def finished(self, name: str) -> bool:
        """Whether this folder holds a run (its config) whose stage ``name`` finished and is
        current (:meth:`stage_done`): what a task rerun, or a run lending its training, asks."""
        return self.file(CONFIG_FILE).is_file() and self.stage_done(name)

    def stale_after(self, name: str) -> str | None:
        """The stage whose new run made stage ``name``'s record stale, or None if it is not stale
        (or has no record)."""
        record = self.manifest()["stages"].get(name)
        if not isinstance(record, dict) or not record.get("stale"):
            return None
        stale = record["stale"]
        return str(stale.get("after", "?")) if isinstance(stale, dict) else "?"

    def require(self, name: str, *, for_stage: str, hint: str = "") -> None:
        """Raise :class:`PipelineError` unless stage ``name``, needed by ``for_stage``, finished and
        neither it nor a stage it depends on is stale.

        A stale chain is named in order, e.g. ``results/x: 'assign', 'evaluate' are stale
        ('train' ran again after them): rerun `stdp-pipeline assign results/x`, then
        `stdp-pipeline evaluate results/x` before `reconstruct```. ``hint`` is appended.
        """
        from stdp_pipeline.stages.table import upstream

        stages = self.manifest()["stages"]
        if name not in stages:
            raise PipelineError(
                f"{self} has no '{name}' stage yet: run `{self._command(name)}` "
                f"before `{for_stage}`{hint}"
            )
        chain = [s for s in (*upstream(name), name) if self.stale_after(s) is not None]
        if chain:
            names = ", ".join(f"'{s}'" for s in chain)
            verb, them = ("is", "it") if len(chain) == 1 else ("are", "them")
            reruns = ", then ".join(f"`stdp-pipeline {s} {self}`" for s in chain)
            raise PipelineError(
                f"{self}: {names} {verb} stale ('{self.stale_after(chain[0])}' ran again after "
                f"{them}): rerun {reruns} before `{for_stage}`{hint}"
            )

    @contextlib.contextmanager
    def stage(self, name: str, *, command: list[str] | None = None) -> Iterator[StageRecord]:
        """Run a stage: on success record ``started``, ``ended``, ``wall_s``, ``command`` (default
        ``sys.argv``), ``outputs`` and the stage's ``info`` under ``manifest["stages"][name]``.

        Before the block runs, the records of the stages downstream of ``name`` (its dependents in
        the stage table, transitively) are flagged stale (:meth:`mark_stale`): whatever the
        stage is about to write replaces what they were made from.

        If the block raises, the manifest is left as it was but for those flags (a stage that
        never finished is not done; a stage that finished before keeps its old record). Stages do
        not nest.
        """
        self.manifest()  # fail now, not after hours of work, if this is not a run directory
        if self._active is not None:
            raise RuntimeError(f"stage '{name}' started inside stage '{self._active.name}'")
        self.mark_stale(name)
        record = StageRecord(self, name)  # starts the stage's clock
        started = _now_iso()
        self._active = record
        try:
            yield record
        finally:
            self._active = None
        wall_s = record._stop()
        clash = sorted(set(record.info) & set(STAGE_KEYS))
        if clash:
            raise ValueError(f"stage '{name}' info may not set the reserved key(s) {clash}")
        missing = [rel for rel in record.outputs if not self.file(rel).exists()]
        if missing:
            raise RuntimeError(f"stage '{name}' recorded outputs that do not exist: {missing}")
        entry = {
            **record.info,
            "started": started,
            "ended": _now_iso(),
            "wall_s": round(wall_s, 3),
            "command": list(sys.argv if command is None else command),
            "outputs": list(record.outputs),
        }
        manifest = self.manifest()  # read again: keep what others wrote meanwhile
        manifest["stages"][name] = entry
        atomic.write_json(self.file(MANIFEST_FILE), manifest)

    def mark_stale(self, name: str) -> list[str]:
        """Flag stale the records of every stage downstream of ``name`` that are not flagged yet
        (``"stale": {"after": name, "since": <time>}``); return their names, in table order.

        The manifest is written only when a flag is added."""
        from stdp_pipeline.stages.table import dependents

        manifest = self.manifest()
        flagged = []
        for dependent in dependents(name):
            record = manifest["stages"].get(dependent)
            if isinstance(record, dict) and not record.get("stale"):
                record["stale"] = {"after": name, "since": _now_iso()}
                flagged.append(dependent)
        if flagged:
            atomic.write_json(self.file(MANIFEST_FILE), manifest)
        return flagged

    def adopt(self, source: RunDir, names: tuple[str, ...] | list[str]) -> None:
        """Take the finished stages ``names`` of ``source`` (another run directory) as this run's
        own: their outputs are hard-linked into this folder (copied where the file system cannot
        link; every output is written whole by rename, so a link never sees a later change of
        the source) and their records copied into this manifest with ``"adopted_from"`` (the
        source's path); the source's data checksums come along. The stages downstream of them
        here become stale. The caller checks that the two configs agree on everything these
        stages read (a sweep: all but ``evaluate.*``).

        Raises :class:`PipelineError` if a stage of ``source`` has not finished."""
        import shutil

        theirs = source.manifest()
        for name in names:
            if not source.stage_done(name):
                raise PipelineError(f"{source} has no finished '{name}' stage to take over")
        for name in names:
            self.mark_stale(name)
            for rel in theirs["stages"][name].get("outputs", []):
                src = source.file(rel)
                with atomic.atomic_path(self.file(rel)) as tmp:
                    tmp.unlink()
                    try:
                        os.link(src, tmp)
                    except OSError:
                        shutil.copy2(src, tmp)
        manifest = self.manifest()
        for name in names:
            manifest["stages"][name] = {**theirs["stages"][name], "adopted_from": str(source.path)}
        if theirs.get("data_checksums"):
            manifest["data_checksums"] = theirs["data_checksums"]
        atomic.write_json(self.file(MANIFEST_FILE), manifest)

    # --- the lock --------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(
        self,
        stage: str,
        *,
        create: bool = False,
        busy_ok: Callable[[LockHolder], bool] | None = None,
    ) -> Iterator[bool]:
        """Hold the run directory's lock while the block runs (yields True); one process at a time.

        The lock is the file ``.lock`` in the run directory, holding the holder's pid, stage,
        host and start time, with an advisory ``flock`` on it: when another live process holds
        it, this raises :class:`RunBusy` (a :class:`PipelineError` naming the holder) at once.
        The file is removed when the block ends (also on an exception or Ctrl-C); a file left by
        a holder that is gone (``kill -9``) is taken over, and the temporary files of that
        holder's interrupted writes are removed. A process that already holds the lock may take
        it again (``run`` holds it across its stages).

        ``create``: make the folder if needed (``encode``, ``run``; an empty folder made here is
        removed again at the end); otherwise a folder that is not a run directory is refused
        before anything is written. ``busy_ok(holder)`` returning True lets the block run without
        the lock while another process holds it (yields False): ``fields`` drawing checkpoints
        while ``train`` runs.
        """
        key = self.path.resolve()
        held = _HELD.get(key)
        if held is not None:
            held.depth += 1
            try:
                yield True
            finally:
                held.depth -= 1
            return
        made = False
        if create:
            if self.path.exists() and not self.path.is_dir():
                raise PipelineError(
                    f"{self} is a file, not a folder: give a path for a run directory"
                )
            made = not self.path.exists()
            try:
                self.path.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise PipelineError(f"cannot create run directory {self}: {err.strerror}") from None
        elif not self.file(CONFIG_FILE).exists():
            raise PipelineError(self._not_a_run_dir())
        fd: int | None = None
        try:
            fd = self._acquire(stage)
        except RunBusy as busy:
            if busy_ok is None or not busy_ok(busy.holder):
                raise
        finally:
            if made and fd is None:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only if still empty
        if fd is None:  # busy, and busy_ok said to go on without the lock
            yield False
            return
        _HELD[key] = _Held(fd)
        try:
            yield True
        finally:
            del _HELD[key]
            with contextlib.suppress(OSError):
                os.unlink(self.file(LOCK_FILE))
            os.close(fd)
            if made:
                with contextlib.suppress(OSError):
                    self.path.rmdir()  # only if the stage wrote nothing

    def _acquire(self, stage: str) -> int:
        """Take the lock (see :meth:`lock`): the open, locked file descriptor of ``.lock``."""
        path = self.file(LOCK_FILE)
        for _ in range(20):
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as err:
                raise PipelineError(
                    f"cannot lock {self}: {path}: {err.strerror or err} "
                    "(the run directory must be writable)"
                ) from None
            try:
                got = _try_flock(fd)
                holder = _read_holder(path)
                if got is False or (
                    got is None
                    and holder is not None
                    and holder.pid != os.getpid()
                    and _alive(holder.pid)
                ):
                    raise RunBusy(self, holder or LockHolder(None, None, None, None))
                try:
                    same = os.path.samestat(os.fstat(fd), os.stat(path))
                except FileNotFoundError:
                    same = False
                if not same:  # the holder removed the file as we opened it: try again
                    os.close(fd)
                    continue
                info = {
                    "pid": os.getpid(),
                    "stage": stage,
                    "host": socket.gethostname(),
                    "since": _now_iso(),
                }
                try:
                    os.ftruncate(fd, 0)
                    os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
                except OSError as err:  # e.g. a full disk: leave no empty lock file behind
                    with contextlib.suppress(OSError):
                        os.unlink(path)
                    raise PipelineError(
                        f"cannot lock {self}: cannot write {path}: {err.strerror or err}"
                    ) from None
            except BaseException:
                with contextlib.suppress(OSError):
                    os.close(fd)
                raise
            if holder is not None and holder.pid != os.getpid():
                for folder in _WRITTEN_FOLDERS:  # what the gone holder was writing
                    atomic.sweep_temporary(self.file(folder) if folder != "." else self.path)
            return fd
        raise PipelineError(f"cannot lock {self}: {path} keeps changing; try again")

    # --- checkpoints ---------------------------------------------------------------------------
    def checkpoints(self) -> dict[int, Path]:
        """The training checkpoints on disk: position (digits learned) -> file, by position.

        A checkpoint is ``checkpoints/ckpt-<position>.npz`` with a 9-digit position (see
        :func:`checkpoint_relpath`); other files in that folder (``curve.csv``, temporary files
        of a write in progress) are not checkpoints. Empty when the folder does not exist. The
        paths are as :meth:`file` gives them; :meth:`load_arrays` takes
        ``checkpoint_relpath(position)``.
        """
        folder = self.file(CHECKPOINT_DIR)
        if not folder.is_dir():
            return {}
        found = {
            int(m.group(1)): p
            for p in folder.iterdir()
            if (m := _CHECKPOINT_NAME.fullmatch(p.name)) and p.is_file()
        }
        return dict(sorted(found.items()))

    # --- files ---------------------------------------------------------------------------------
    def relpath(self, relpath: str | os.PathLike[str]) -> str:
        """``relpath`` as a POSIX path relative to the run directory; refuses paths outside it."""
        p = Path(relpath)
        if p.is_absolute():
            try:
                p = p.resolve().relative_to(self.path.resolve())
            except ValueError:
                raise ValueError(f"{relpath} is not inside the run directory {self}") from None
        if not p.parts or ".." in p.parts:
            raise ValueError(f"{str(relpath)!r} is not a file path inside the run directory {self}")
        return p.as_posix()

    def file(self, relpath: str | os.PathLike[str]) -> Path:
        """The path of ``relpath`` inside the run directory."""
        return self.path / self.relpath(relpath)

    def save_arrays(
        self,
        relpath: str | os.PathLike[str],
        arrays: Mapping[str, Any],
        *,
        compressed: bool = False,
    ) -> Path:
        """Save ``arrays`` (name -> array) as an ``.npz`` without pickles, atomically.

        Object arrays (which only pickling could save) raise ``TypeError`` before anything is
        written. Inside :meth:`stage` the file is recorded as an output of the stage.
        """
        converted = {key: np.asarray(value) for key, value in arrays.items()}
        for key, value in converted.items():
            if value.dtype.hasobject:
                raise TypeError(
                    f"array '{key}' for {self}/{self.relpath(relpath)} has dtype object: "
                    "only numeric, bool and string arrays are saved (no pickles)"
                )
        path = self.file(relpath)
        atomic.save_npz(path, converted, compressed=compressed)
        self._note_output(relpath)
        return path

    def load_arrays(
        self, relpath: str | os.PathLike[str], *, stage: str | None = None
    ) -> dict[str, np.ndarray]:
        """Load every array of the ``.npz`` file ``relpath`` into memory (pickles refused).

        ``stage`` names the stage that makes the file (else it is looked up among the recorded
        outputs); a missing file raises a :class:`PipelineError` telling which stage to run.
        """
        path = self._existing(relpath, stage)
        where, hint = f"{self}/{self.relpath(relpath)}", self._rerun_hint(relpath, stage)
        if not zipfile.is_zipfile(path):
            raise PipelineError(f"{where} cannot be read (not an .npz file){hint}")
        try:
            return atomic.load_npz(path)
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
            if "allow_pickle" in str(err):
                raise PipelineError(
                    f"{where} cannot be read: it holds pickled Python objects, which are never "
                    f"loaded (allow_pickle=False; results hold plain arrays){hint}"
                ) from None
            raise PipelineError(f"{where} cannot be read ({_first_line(err)}){hint}") from None

    def write_json(self, relpath: str | os.PathLike[str], obj: Any) -> Path:
        """Write ``obj`` as indented, sorted JSON atomically (an output of the running stage)."""
        path = self.file(relpath)
        atomic.write_json(path, obj)
        self._note_output(relpath)
        return path

    def write_text(self, relpath: str | os.PathLike[str], text: str) -> Path:
        """Write ``text`` (UTF-8) atomically (an output of the running stage)."""
        path = self.file(relpath)
        atomic.write_text(path, text)
        self._note_output(relpath)
        return path

    def read_json(self, relpath: str | os.PathLike[str], *, stage: str | None = None) -> Any:
        """Read the JSON file ``relpath``; a missing file raises like :meth:`load_arrays`."""
        return self._read_json_file(self._existing(relpath, stage))

    # --- helpers -------------------------------------------------------------------------------
    def _note_output(self, relpath: str | os.PathLike[str]) -> None:
        if self._active is not None:
            self._active.add_output(relpath)

    def _not_a_run_dir(self) -> str:
        return (
            f"{self} is not a run directory (no {CONFIG_FILE}): "
            f"run `stdp-pipeline encode {self} --config ...` first"
        )

    def _maker(self, rel: str) -> str | None:
        """The stage whose recorded outputs include ``rel``, if any."""
        if not self.file(MANIFEST_FILE).exists():
            return None
        for name, entry in self.manifest()["stages"].items():
            if isinstance(entry, dict) and rel in entry.get("outputs", ()):
                return name
        return None

    def _command(self, stage: str) -> str:
        """The command that runs ``stage`` on this run directory (``encode`` needs its config)."""
        return f"stdp-pipeline {stage} {self}" + (" --config ..." if stage == "encode" else "")

    def _rerun_hint(self, relpath: str | os.PathLike[str], stage: str | None) -> str:
        maker = stage or self._maker(self.relpath(relpath))
        if maker == "encode":
            return f": run `{self._command(maker)}` again with the run's config"
        return f": run `{self._command(maker)}` again" if maker else ""

    def _existing(self, relpath: str | os.PathLike[str], stage: str | None) -> Path:
        """The path of ``relpath``, or a :class:`PipelineError` naming the stage that makes it."""
        path = self.file(relpath)
        if path.exists():
            return path
        rel = self.relpath(relpath)
        if not self.file(CONFIG_FILE).exists():
            raise PipelineError(self._not_a_run_dir())
        maker = stage or self._maker(rel)
        if maker is None:
            raise PipelineError(f"{self}/{rel} does not exist")
        if not self.stage_done(maker):
            raise PipelineError(
                f"{self} has no '{maker}' stage yet (it makes {rel}): run `{self._command(maker)}`"
            )
        raise PipelineError(
            f"{self}/{rel} is missing although stage '{maker}' finished: "
            f"run `{self._command(maker)}` again"
        )

    def _read_json_file(self, path: Path) -> Any:
        """Parsed JSON of a file of the run directory: bounded in size, UTF-8 checked."""
        try:
            rel = path.relative_to(self.path).as_posix()
        except ValueError:
            rel = path.name
        if rel == CONFIG_FILE:
            hint = (
                ": it is damaged; restore it, or make a new run directory with "
                "`stdp-pipeline encode`"
            )
        elif rel == MANIFEST_FILE:
            hint = (
                f": it is damaged; delete it and run `stdp-pipeline encode {self} --config ...` "
                "with the same config to rebuild it (the stages then run again)"
            )
        else:
            maker = self._maker(rel)
            hint = f": run `stdp-pipeline {maker} {self}` again" if maker else ""
        return reading.read_json(path, what="JSON file", hint=hint)

    def _merge_checksums(self, manifest: dict[str, Any], checksums: Mapping[str, str]) -> None:
        """Add ``checksums`` to the manifest; refuse data files whose checksum changed."""
        recorded = manifest.get("data_checksums") or {}
        changed = [
            f"{name}: {recorded[name]} -> {value}"
            for name, value in sorted(checksums.items())
            if name in recorded and recorded[name] != value
        ]
        if changed:
            raise PipelineError(
                f"{self} was made from different data files ({'; '.join(changed)}); "
                "use a new run directory or the original data"
            )
        if any(name not in recorded for name in checksums):
            manifest["data_checksums"] = {**recorded, **checksums}
            atomic.write_json(self.file(MANIFEST_FILE), manifest)


@dataclass(frozen=True)
class LockHolder:
    """Who holds a run directory's lock, as its lock file says (None where it does not say)."""

    pid: int | None
    stage: str | None
    host: str | None
    since: str | None

    def describe(self) -> str:
        """``pid 1234, `train` since 2024-05-01T10:00:00+00:00`` (what is known of it)."""
        parts = [f"pid {self.pid}" if self.pid is not None else "pid unknown"]
        if self.stage:
            parts.append(f"`{self.stage}`" + (f" since {self.since}" if self.since else ""))
        return ", ".join(parts)


class RunBusy(PipelineError):
    """Another live process holds the run directory's lock (``holder``: who)."""

    def __init__(self, run: RunDir, holder: LockHolder) -> None:
        self.holder = holder
        super().__init__(
            f"{run} is in use by another stdp-pipeline process ({holder.describe()}): wait until "
            f"it ends, or stop it, then try again (lock file {run.file(LOCK_FILE)})"
        )


@dataclass
class _Held:
    """A lock this process holds: its file descriptor and how many blocks hold it."""

    fd: int
    depth: int = 1


#: The run directories whose lock this process holds, by resolved path.
_HELD: dict[Path, _Held] = {}

_F = TypeVar("_F", bound=Callable[..., Any])


def locked(stage: str) -> Callable[[_F], _F]:
    """Decorate a stage function that takes the :class:`RunDir` first: it runs holding the run
    directory's lock (:meth:`RunDir.lock`), so a second process refuses at once."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(run: RunDir, *args: Any, **kwargs: Any) -> Any:
            with run.lock(stage):
                return fn(run, *args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def _try_flock(fd: int) -> bool | None:
    """Take an exclusive ``flock`` on ``fd`` without waiting: True if taken, False if another
    process holds it, None where the system or file system has no ``flock``."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None  # e.g. ENOLCK / EOPNOTSUPP on some network file systems
    return True


def _read_holder(path: Path) -> LockHolder | None:
    """What a lock file says (None if it is missing, empty or unreadable)."""
    try:
        text = reading.read_text(path, limit=4096, what="lock file")
        info = json.loads(text)
    except (PipelineError, ValueError):
        return None
    if not isinstance(info, dict):
        return None
    pid = info.get("pid")
    return LockHolder(
        pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        str(info["stage"]) if info.get("stage") is not None else None,
        str(info["host"]) if info.get("host") is not None else None,
        str(info["since"]) if info.get("since") is not None else None,
    )


def _alive(pid: int | None) -> bool:
    """Whether a process ``pid`` exists on this machine."""
    if pid is None or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    except OSError:
        return False
    return True


def checkpoint_relpath(position: int) -> str:
    """Where the checkpoint taken after ``position`` training digits is kept, relative to the run
    directory: ``checkpoints/ckpt-<position, 9 digits>.npz`` (found by :meth:`RunDir.checkpoints`).
    """
    if not 0 <= position < 10**9:
        raise ValueError(f"checkpoint position {position}: must be between 0 and 999,999,999")
    return f"{CHECKPOINT_DIR}/ckpt-{position:09d}.npz"


# --- manifest contents ---------------------------------------------------------------------------
def new_manifest(
    config: ExperimentConfig,
    *,
    command: list[str] | None = None,
    data_checksums: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A fresh manifest for a run of ``config`` (no stages yet)."""
    commit, dirty = git_state()
    return {
        "seed": config.seed,
        "config_fingerprint": config.fingerprint(),
        "command": list(sys.argv if command is None else command),
        "versions": versions(),
        "platform": platform_info(),
        "data_checksums": dict(data_checksums) if data_checksums is not None else None,
        "git_commit": commit,
        "git_dirty": dirty,
        "created": _now_iso(),
        "stages": {},
    }


def versions() -> dict[str, str | None]:
    """Versions of Python, stdp_pipeline and the main libraries (None where not installed).

    A library already imported reports its ``__version__``; the others are read from package
    metadata, so TensorFlow is not imported just to read its version.
    """
    out: dict[str, str | None] = {
        "python": platform.python_version(),
        "stdp_pipeline": __version__,
    }
    for module, dists in _DISTRIBUTIONS.items():
        loaded = sys.modules.get(module)
        version = None
        if loaded is not None and module != "click":  # click deprecates its __version__
            version = getattr(loaded, "__version__", None)
        for dist in dists if version is None else ():
            try:
                version = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        out[module] = version
    return out


def platform_info() -> dict[str, Any]:
    """Machine architecture, operating system and processor count."""
    return {
        "machine": platform.machine(),
        "system": platform.system(),
        "release": platform.release(),
        "processors": os.cpu_count(),
    }


def git_state() -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout holding the stdp_pipeline source, else None's.

    ``dirty`` says whether the package's files differ from the commit (untracked files included).
    A checkout that does not track the package (e.g. a virtual environment inside some other
    repository) counts as no checkout.
    """
    package = Path(__file__).resolve().parent
    root = package.parent
    commit = _git(root, "rev-parse", "HEAD")
    if (
        commit is None
        or _git(root, "ls-files", "--error-unmatch", "--", f"{package.name}/__init__.py") is None
    ):
        return None, None
    status = _git(root, "status", "--porcelain", "--", package.name)
    return commit, (bool(status) if status is not None else None)


def _git(cwd: Path, *args: str) -> str | None:
    """Output of ``git args`` in ``cwd`` (stripped), or None if git fails, is missing or hangs."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _fingerprint_of(d: Mapping[str, Any]) -> str:
    """The fingerprint :meth:`ExperimentConfig.fingerprint` gives for the config dict ``d``."""
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


def _now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__
