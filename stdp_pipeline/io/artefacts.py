"""What each stage's files hold, checked when a later stage loads them.

Every array file a stage reads is checked here for the keys, dtypes, shapes and mutual consistency
that its writer guarantees, and against the run's config (the network's layout) and the ``encode``
stage's record (how many digits each slice holds). A file that fails raises a
:class:`~stdp_pipeline.errors.PipelineError` naming the file, the key and what was expected, and
the stage that writes the file again::

    results/x/encoded/train.npz: 'labels' has 10 entries but 'images' has 200 digits: run
    `stdp-pipeline encode results/x --config ...` again with the run's config

The files and their writers:

=============================  ==================  =================================================
file                           writer              arrays
=============================  ==================  =================================================
``encoded/<split>.npz``        ``encode``          ``images`` [M, P] uint8, ``labels`` [M] int in
                                                   0..9, ``indices`` [M] int >= 0
``model.npz``                  ``train``           ``weights`` (layout's ``weight_shape``) and
                                                   ``theta`` (``theta_shape``), float, finite
``checkpoints/ckpt-<p>.npz``   ``train``           the model's arrays, ``position`` = p,
                                                   ``epochs``, ``digits_per_epoch``, and
                                                   ``spikes``/``retries``/``dropped`` [p]
``assignments.npz``            ``assign``          ``classes`` [N] int in -1..9, ``rates`` and
                                                   ``proportions`` [10, N] float, ``counts`` [M, N],
                                                   ``labels`` [M], ``retries`` [M]
``test_counts.npz``            ``evaluate``        ``counts`` [M, N], ``labels`` [M]
``metrics.json``               ``evaluate``        an object with an ``accuracy`` object of
                                                   fractions
=============================  ==================  =================================================

``P`` is the number of pixels (784), ``N`` the excitatory spike counts per digit
(:attr:`~stdp_pipeline.geometry.Layout.n_outputs`), ``M`` the digits of the slice. A reader that
uses only some arrays of a file asks for those (``keys``); each one it asks for is checked.
Arrays are always loaded with ``allow_pickle=False`` (:meth:`RunDir.load_arrays`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.geometry import Layout
from stdp_pipeline.labels import N_CLASSES

if TYPE_CHECKING:
    import pandas as pd

    from stdp_pipeline.io.config import ExperimentConfig
    from stdp_pipeline.io.rundir import RunDir

#: dtype kinds by name, for messages.
_KINDS = {
    "u1": "uint8",
    "i": "a signed integer dtype",
    "iu": "an integer dtype",
    "f": "a floating-point dtype",
    "fiu": "a numeric dtype",
}
MODEL_KEYS = ("weights", "theta")
ASSIGNMENT_KEYS = ("classes", "rates", "proportions", "counts", "labels", "retries")
#: Extra arrays of a checkpoint: the position and schedule (scalars) and the log so far ([p]).
CHECKPOINT_KEYS = ("position", "epochs", "digits_per_epoch", "spikes", "retries", "dropped")


class _File:
    """One loaded array file of a run directory and the message parts that name it."""

    def __init__(self, run: RunDir, rel: str, arrays: Mapping[str, np.ndarray], hint: str) -> None:
        self.run, self.rel, self.arrays, self.hint = run, rel, arrays, hint

    def fail(self, what: str) -> PipelineError:
        return PipelineError(f"{self.run}/{self.rel}: {what}{self.hint}")

    def need(self, keys: Iterable[str]) -> None:
        """Refuse the file if it lacks one of ``keys``, naming them all."""
        missing = [k for k in keys if k not in self.arrays]
        if missing:
            held = ", ".join(sorted(self.arrays)) or "none"
            names = ", ".join(f"'{k}'" for k in missing)
            raise self.fail(
                f"has no {names} array{'s' if len(missing) > 1 else ''} (it holds {held})"
            )

    def array(
        self,
        key: str,
        kinds: str,
        shape: Sequence[int | None],
        *,
        finite: bool = False,
        low: float | None = None,
        high: float | None = None,
        why: str = "",
    ) -> np.ndarray:
        """``arrays[key]``, checked: dtype kind (``"u1"`` uint8, else kind letters), shape (None:
        any length), finite values, values within ``[low, high]``. ``why`` says where an expected
        shape comes from (e.g. ``"12 neurons, as config.json says"``)."""
        a = self.arrays[key]
        ok = a.dtype == np.uint8 if kinds == "u1" else a.dtype.kind in kinds
        if not ok:
            raise self.fail(f"'{key}' has dtype {a.dtype}, expected {_KINDS.get(kinds, kinds)}")
        fits = a.ndim == len(shape) and all(
            n is None or n == m for n, m in zip(shape, a.shape, strict=True)
        )
        if not fits:
            want = "[" + ", ".join("M" if n is None else str(n) for n in shape) + "]"
            got = "a scalar" if a.ndim == 0 else f"shape {list(a.shape)}"
            raise self.fail(f"'{key}' has {got}, expected {want}{f' ({why})' if why else ''}")
        if a.size and finite and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise self.fail(f"'{key}' holds NaN or infinite values, expected finite numbers")
        if a.size and low is not None and a.min() < low:
            raise self.fail(f"'{key}' holds {a.min()}, expected values >= {low:g}")
        if a.size and high is not None and a.max() > high:
            raise self.fail(f"'{key}' holds {a.max()}, expected values <= {high:g}")
        return a

    def same_length(self, first: str, keys: Iterable[str], what: str = "digits") -> int:
        """The length of ``arrays[first]``; refuse if one of ``keys`` has another."""
        m = len(self.arrays[first])
        for key in keys:
            if len(self.arrays[key]) != m:
                raise self.fail(
                    f"'{key}' has {len(self.arrays[key])} entries but '{first}' has {m} {what}"
                )
        return m

    def scalar(self, key: str, *, low: int = 0) -> int:
        """``arrays[key]`` as an int: a 0-d integer array >= ``low``."""
        return int(self.array(key, "iu", (), low=low)[()])


def _rerun(run: RunDir, maker: str) -> str:
    if maker == "encode":
        return f": run `stdp-pipeline encode {run} --config ...` again with the run's config"
    return f": run `stdp-pipeline {maker} {run}` again"


def _recorded_digits(run: RunDir, split: str) -> int | None:
    """How many digits the ``encode`` stage recorded for ``split`` (None if not recorded)."""
    record = run.manifest()["stages"].get("encode")
    value = record.get(f"{split}_digits") if isinstance(record, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _layout(config: ExperimentConfig, n_inputs: int | None) -> Layout:
    return Layout.of(config) if n_inputs is None else Layout.of(config, n_inputs)


# --- encoded digits -----------------------------------------------------------------------------
def check_encoded(
    run: RunDir, split: str, arrays: Mapping[str, np.ndarray], config: ExperimentConfig
) -> None:
    """Check ``encoded/<split>.npz``: ``images`` [M, P] uint8 with P the pixels of the config's
    images, ``labels`` [M] integers 0..9, ``indices`` [M] integers >= 0, M as recorded."""
    f = _File(run, f"encoded/{split}.npz", arrays, _rerun(run, "encode"))
    f.need(("images", "labels", "indices"))
    pixels = Layout.of(config).n_inputs
    images = f.array("images", "u1", (None, pixels))
    f.array("labels", "iu", (None,), low=0, high=N_CLASSES - 1)
    f.array("indices", "iu", (None,), low=0)
    m = len(images)
    for key in ("labels", "indices"):
        if len(arrays[key]) != m:
            raise f.fail(f"'{key}' has {len(arrays[key])} entries but 'images' has {m} digits")
    recorded = _recorded_digits(run, split)
    if recorded is not None and m != recorded:
        raise f.fail(f"holds {m} digits, but the encode stage recorded {recorded} for '{split}'")
    if m == 0:
        raise f.fail("holds no digits")


def load_encoded(run: RunDir, split: str, config: ExperimentConfig | None = None) -> dict:
    """``encoded/<split>.npz`` of ``run``, checked (:func:`check_encoded`)."""
    arrays = run.load_arrays(f"encoded/{split}.npz", stage="encode")
    check_encoded(run, split, arrays, config if config is not None else run.config())
    return arrays


# --- learned state ------------------------------------------------------------------------------
def check_state(
    run: RunDir,
    rel: str,
    arrays: Mapping[str, np.ndarray],
    config: ExperimentConfig,
    n_inputs: int | None = None,
    *,
    keys: Sequence[str] = MODEL_KEYS,
    hint: str | None = None,
) -> None:
    """Check the learned state in ``rel`` (``model.npz`` or a checkpoint): ``weights`` and
    ``theta`` float, finite, in the shapes the config's layout gives for ``n_inputs`` pixels
    (default 784). The arrays in ``keys`` must be there; the other one is checked if it is."""
    f = _File(run, rel, arrays, _rerun(run, "train") if hint is None else hint)
    f.need(keys)
    layout = _layout(config, n_inputs)
    why = f"{layout.describe()}, as config.json says"
    if "weights" in arrays:
        f.array("weights", "f", layout.weight_shape, finite=True, why=why)
    if "theta" in arrays:
        f.array("theta", "f", layout.theta_shape, finite=True, why=why)


def load_model(
    run: RunDir,
    config: ExperimentConfig | None = None,
    n_inputs: int | None = None,
    *,
    keys: Sequence[str] = MODEL_KEYS,
) -> dict:
    """``model.npz`` of ``run``, checked (:func:`check_state`)."""
    arrays = run.load_arrays("model.npz", stage="train")
    check_state(run, "model.npz", arrays, config or run.config(), n_inputs, keys=keys)
    return arrays


def load_checkpoint(
    run: RunDir,
    position: int,
    config: ExperimentConfig | None = None,
    n_inputs: int | None = None,
    *,
    resume: bool = True,
) -> dict:
    """The checkpoint taken after ``position`` digits, checked: the learned state
    (:func:`check_state`), and with ``resume`` (what ``train --resume`` reads) also ``position``
    (= the file's), ``epochs`` and ``digits_per_epoch`` (>= 1, covering ``position``) and the log
    so far, ``spikes``, ``retries`` and ``dropped``, each ``[position]``, and ``train_s`` (the
    seconds of training up to the checkpoint; NaN when not recorded; absent from older
    checkpoints) when present. Without ``resume`` only the weights are checked (``fields``)."""
    from stdp_pipeline.io.rundir import checkpoint_relpath

    rel = checkpoint_relpath(position)
    arrays = run.load_arrays(rel)
    hint = (
        ": delete it to resume from the checkpoint before, or train without --resume"
        if resume
        else ": delete it, or train again"
    )
    keys = MODEL_KEYS if resume else ("weights",)
    check_state(run, rel, arrays, config or run.config(), n_inputs, keys=keys, hint=hint)
    if not resume:
        return arrays
    f = _File(run, rel, arrays, hint)
    f.need(CHECKPOINT_KEYS)
    if f.scalar("position") != position:
        raise f.fail(f"'position' is {int(arrays['position'])}, expected {position} (its name)")
    total = f.scalar("epochs", low=1) * f.scalar("digits_per_epoch", low=1)
    if position > total:
        raise f.fail(f"position {position} lies beyond the schedule's {total} digits")
    f.array("spikes", "fiu", (position,), finite=True, low=0, why="one per digit learned")
    f.array("retries", "iu", (position,), low=0, why="one per digit learned")
    f.array("dropped", "iu", (position,), low=0, why="one per digit learned")
    if "train_s" in arrays:  # seconds of training up to here (NaN: not recorded); older: absent
        seconds = f.array("train_s", "f", ())
        if seconds < 0:
            raise f.fail(f"'train_s' is {float(seconds)}, expected seconds >= 0 (or NaN)")
    return arrays


# --- responses ----------------------------------------------------------------------------------
def load_assignments(
    run: RunDir,
    config: ExperimentConfig | None = None,
    *,
    keys: Sequence[str] = ASSIGNMENT_KEYS,
) -> dict:
    """``assignments.npz`` of ``run``, checked: ``classes`` [N] in -1..9, ``rates`` and
    ``proportions`` [10, N] finite floats, ``counts`` [M, N] and ``labels``, ``retries`` [M],
    with N the network's spike counts per digit and M the assignment digits recorded. The arrays
    in ``keys`` must be there; the others are checked if they are."""
    config = config or run.config()
    arrays = run.load_arrays("assignments.npz", stage="assign")
    f = _File(run, "assignments.npz", arrays, _rerun(run, "assign"))
    f.need(keys)
    n = Layout.of(config).n_outputs
    why = f"{n} neurons, as config.json says"
    if "classes" in arrays:
        f.array("classes", "iu", (n,), low=-1, high=N_CLASSES - 1, why=why)
    for key in ("rates", "proportions"):
        if key in arrays:
            f.array(key, "f", (N_CLASSES, n), finite=True, low=0, why=why)
    m = _recorded_digits(run, "assign")
    if "counts" in arrays:
        f.array("counts", "fiu", (m, n), finite=True, low=0, why=f"{why}; M digits")
    if "labels" in arrays:
        f.array("labels", "iu", (m,), low=0, high=N_CLASSES - 1, why="the assignment digits")
    if "retries" in arrays:
        f.array("retries", "iu", (m,), low=0, why="the assignment digits")
    per_digit = [k for k in ("counts", "labels", "retries") if k in arrays]
    if len(per_digit) > 1:
        f.same_length(per_digit[0], per_digit[1:])
    return arrays


def load_test_counts(run: RunDir, config: ExperimentConfig | None = None) -> dict:
    """``test_counts.npz`` of ``run``, checked: ``counts`` [M, N] finite, >= 0, and ``labels``
    [M] in 0..9, with N the network's spike counts per digit and M the test digits recorded."""
    config = config or run.config()
    arrays = run.load_arrays("test_counts.npz", stage="evaluate")
    f = _File(run, "test_counts.npz", arrays, _rerun(run, "evaluate"))
    f.need(("counts", "labels"))
    n = Layout.of(config).n_outputs
    m = _recorded_digits(run, "test")
    f.array("counts", "fiu", (m, n), finite=True, low=0, why=f"{n} neurons; M test digits")
    f.array("labels", "iu", (m,), low=0, high=N_CLASSES - 1, why="the test digits")
    f.same_length("counts", ["labels"])
    return arrays


def read_csv(
    path: str | os.PathLike[str],
    name: str,
    required: Sequence[str],
    hint: str,
    **read_options: Any,
) -> pd.DataFrame:
    """The CSV file ``path`` (called ``name`` in messages), which must have the columns
    ``required``; ``read_options`` go to :func:`pandas.read_csv`. Raises :class:`PipelineError`
    ending in ``hint`` if it is missing, cannot be parsed or lacks a column."""
    import pandas as pd

    path = Path(path)
    if not path.exists():
        raise PipelineError(f"{name} is missing{hint}")
    try:
        frame = pd.read_csv(path, **read_options)
    except (OSError, ValueError, pd.errors.ParserError) as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0]
        raise PipelineError(f"{name} cannot be read ({reason}){hint}") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise PipelineError(f"{name} lacks the column(s) {', '.join(missing)}{hint}")
    return frame


def read_table(
    run: RunDir,
    rel: str,
    columns: Sequence[str],
    hint: str,
    *,
    required: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The CSV file ``rel`` of ``run``: it must have the columns ``required`` (default: all of
    ``columns``), and each of ``columns`` that it has must be numeric. ``hint`` ends the messages
    (e.g. ``": run `stdp-pipeline train results/x` again"``)."""
    import pandas as pd

    name = f"{run}/{rel}"
    required = columns if required is None else required
    frame = read_csv(run.file(rel), name, required, hint)
    for column in (c for c in columns if c in frame.columns):
        if not pd.api.types.is_numeric_dtype(frame[column]) or frame[column].dtype == bool:
            raise PipelineError(
                f"{name}: column '{column}' is not numeric ({frame[column].dtype}){hint}"
            )
    return frame


def read_metrics(run: RunDir) -> dict[str, Any]:
    """``metrics.json`` of ``run``, checked: an object whose ``accuracy`` is an object of
    fractions in [0, 1]."""
    metrics = run.read_json("metrics.json", stage="evaluate")
    check_metrics(metrics, f"{run}/metrics.json", _rerun(run, "evaluate"))
    return metrics


def check_metrics(metrics: Any, where: str, hint: str = "") -> None:
    """Refuse ``metrics`` (read from ``where``) unless it is an object whose ``accuracy`` is a
    non-empty object of fractions in [0, 1]."""
    if not isinstance(metrics, dict):
        raise PipelineError(
            f"{where}: must hold a JSON object, found {type(metrics).__name__}{hint}"
        )
    accuracy = metrics.get("accuracy")
    if not isinstance(accuracy, dict) or not accuracy:
        raise PipelineError(f"{where} has no 'accuracy' table{hint}")
    for scheme, value in accuracy.items():
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not 0.0 <= value <= 1.0:
            raise PipelineError(
                f"{where}: accuracy '{scheme}' is {value!r}, expected a fraction in [0, 1]{hint}"
            )
