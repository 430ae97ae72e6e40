"""Image reconstruction from spike responses: how much of a digit the network's code keeps.

For a test digit with excitatory spike counts ``x`` ``[N]`` and receptive fields ``W`` (the input
weights), the raw reconstruction is the spike-count-weighted sum of the fields::

    whole digit:     r = W x                        W [784, N]       -> r [28, 28]
    patched:         r_g = W_g x_g for each patch   W [G, P, Ng]     -> patches [G, P]
    shared patches:  r_g = W x_g                    W [P, Ng]        -> patches [G, P]
                     r = fold(patches)              overlapping pixels averaged (patches.fold)

``r`` has arbitrary units (spikes x weight) and, since every field keeps some weight on the
background (each neuron's weights are normalised to a fixed sum), a grey floor. It is rescaled to
the pixel range [0, 1] in one of three ways (``scale``):

* ``range`` (default): ``(r - min r) / (max r - min r)``, the darkest pixel becomes 0 and the
  brightest 1. It uses nothing of the original, so the error measures what the spikes alone tell,
  and it matches MNIST, where almost every digit spans the whole range 0..255; it also removes
  the background floor, which a pure gain keeps.
* ``max``: ``r / max r`` (gain only, brightest pixel 1); keeps the background floor.
* ``lsq``: ``clip(a r + b, 0, 1)`` with the least-squares gain ``a`` and offset ``b`` against the
  original. It peeks at two numbers of the original (brightness and offset), so the error
  measures the shape alone: a lower bound for any affine rescaling.

A digit that made no neuron fire reconstructs as a blank image. The error is the mean squared
error per pixel on the [0, 1] scale, per class and overall.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.geometry import Layout, fold
from stdp_pipeline.io import artefacts
from stdp_pipeline.io.rundir import RunDir, locked
from stdp_pipeline.labels import N_CLASSES

SCALES = ("range", "max", "lsq")
IMAGE_PX = 28


def reconstruct(
    counts: np.ndarray, weights: np.ndarray, layout: Layout | None = None
) -> np.ndarray:
    """Raw reconstructions ``[M, 28, 28]`` (float64, arbitrary units) of spike counts ``[M, N]``.

    ``weights`` are stored as the network's ``layout`` says (default: whole digits,
    ``[784, N]``): ``[Gw, P, Ng]`` for patches, neuron ``j`` of position ``g`` being output
    ``g * Ng + j``; a shared group (``Gw = 1``) serves every position. Each position's patch is
    ``W_g @ counts_g``; overlapping patches are averaged by :func:`~stdp_pipeline.geometry.fold`.
    """
    counts = np.asarray(counts, np.float64)
    w = np.asarray(weights, np.float64)
    if layout is None:
        layout = Layout.whole_digits(w, IMAGE_PX)
    w3 = layout.weights3(w)  # [Gw, P, Ng]
    if counts.ndim != 2 or counts.shape[1] != layout.n_outputs:
        raise PipelineError(
            f"spike counts of shape {list(counts.shape)} do not fit model weights of shape "
            f"{list(w.shape)} ({layout.n_outputs} neurons): run `stdp-pipeline evaluate` again"
        )
    m = counts.shape[0]
    if not layout.patched:
        return (counts @ w3[0].T).reshape(m, IMAGE_PX, IMAGE_PX)
    per_position = w3[layout.weight_group_of()]  # [G, P, Ng]
    g, ng = layout.n_groups, layout.group_size
    patches = np.einsum("mgj,gpj->mgp", counts.reshape(m, g, ng), per_position)
    return fold(patches, layout.patch_px, layout.stride_px, IMAGE_PX)


def rescale(
    raw: np.ndarray, originals: np.ndarray | None = None, scale: str = "range"
) -> np.ndarray:
    """Reconstructions ``raw`` ``[M, 28, 28]`` mapped to [0, 1] (see the module docstring).

    ``originals`` (``[M, 28, 28]`` on [0, 1]) is needed for ``scale="lsq"`` only. A constant
    reconstruction (e.g. no spikes) becomes blank."""
    raw = np.asarray(raw, np.float64)
    flat = raw.reshape(len(raw), -1)
    lo, hi = flat.min(axis=1, initial=np.inf), flat.max(axis=1, initial=-np.inf)
    if scale == "range":
        span = hi - lo
        gain = np.divide(1.0, span, out=np.zeros_like(span), where=span > 0)
        offset = -lo * gain
    elif scale == "max":
        gain = np.divide(1.0, hi, out=np.zeros_like(hi), where=hi > 0)
        offset = np.zeros_like(gain)
    elif scale == "lsq":
        if originals is None:
            raise ValueError("scale='lsq' needs the original images")
        x = np.asarray(originals, np.float64).reshape(len(raw), -1)
        rc = flat - flat.mean(axis=1, keepdims=True)
        var = (rc * rc).sum(axis=1)
        gain = np.divide((rc * x).sum(axis=1), var, out=np.zeros_like(var), where=var > 0)
        offset = x.mean(axis=1) - gain * flat.mean(axis=1)
    else:
        raise PipelineError(f"--scale {scale}: must be one of {', '.join(SCALES)}")
    return np.clip(raw * gain[:, None, None] + offset[:, None, None], 0.0, 1.0)


def mse_per_digit(images: np.ndarray, originals: np.ndarray) -> np.ndarray:
    """Mean squared error per pixel of each image ``[M]`` (both ``[M, 28, 28]`` on [0, 1])."""
    diff = np.asarray(images, np.float64) - np.asarray(originals, np.float64)
    return (diff.reshape(len(diff), -1) ** 2).mean(axis=1)


def error_table(
    images: np.ndarray,
    originals: np.ndarray,
    labels: np.ndarray,
    silent: np.ndarray | None = None,
) -> pd.DataFrame:
    """Per-class and overall error of reconstructions ``images`` against ``originals``.

    Columns: ``class`` (0..9, then ``all``), ``digits``, ``mse`` (mean over the digits of the
    per-pixel MSE), ``mse_mean_image`` (the same for the mean test image, a baseline that knows
    nothing about the digit) and ``silent`` (digits that made no neuron fire, from the boolean
    mask ``silent`` ``[M]``; default: blank reconstructions)."""
    labels = np.asarray(labels, np.int64)
    err = mse_per_digit(images, originals)
    base = mse_per_digit(np.broadcast_to(originals.mean(axis=0), originals.shape), originals)
    if silent is None:
        silent = np.asarray(images).reshape(len(labels), -1).max(axis=1) <= 0
    silent = np.asarray(silent, bool)
    rows = []
    for c in [*range(N_CLASSES), None]:
        sel = np.ones(len(labels), bool) if c is None else labels == c
        if not sel.any():
            continue
        rows.append(
            {
                "class": "all" if c is None else str(c),
                "digits": int(sel.sum()),
                "mse": float(err[sel].mean()),
                "mse_mean_image": float(base[sel].mean()),
                "silent": int(silent[sel].sum()),
            }
        )
    return pd.DataFrame(rows)


def pick_digits(labels: np.ndarray, n: int) -> np.ndarray:
    """Indices of ``n`` digits to show: the first digit of each class in turn (0, 1, ..., 9, 0,
    ...), so every class appears once before any appears twice."""
    labels = np.asarray(labels, np.int64)
    queues = [list(np.flatnonzero(labels == c)) for c in range(N_CLASSES)]
    picked: list[int] = []
    while len(picked) < min(n, len(labels)):
        for q in queues:
            if q and len(picked) < n:
                picked.append(int(q.pop(0)))
    return np.asarray(picked, np.int64)


def plot_reconstruction(
    originals: np.ndarray,
    images: np.ndarray,
    labels: np.ndarray,
    errors: np.ndarray,
    path: str | os.PathLike[str],
    title: str,
    per_row: int = 8,
) -> None:
    """Originals (upper row of each pair) above their reconstructions (lower row), ``per_row``
    digits a row, each reconstruction captioned with its MSE."""
    from stdp_pipeline.stages.plots import _save, plt

    n = len(originals)
    per_row = max(1, min(per_row, n))
    pairs = -(-n // per_row)
    title_in = 0.25 * (title.count("\n") + 1) + 0.35
    fig_h = 2.75 * pairs + title_in
    fig, axes = plt.subplots(
        2 * pairs,
        per_row,
        figsize=(max(1.25 * per_row + 0.9, 8.0), fig_h),
        squeeze=False,
        gridspec_kw={"hspace": 0.35, "wspace": 0.08},
    )
    fig.subplots_adjust(top=1 - title_in / fig_h, bottom=0.02)
    for ax in axes.flat:
        ax.set_axis_off()
    for i in range(n):
        r, c = divmod(i, per_row)
        top, bottom = axes[2 * r, c], axes[2 * r + 1, c]
        top.imshow(originals[i], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        top.set_title(f"digit {int(labels[i])}", fontsize=9)
        bottom.imshow(images[i], cmap="gray_r", vmin=0, vmax=1, interpolation="nearest")
        bottom.set_title(f"MSE {errors[i]:.3f}", fontsize=8, color="#0b3d91")
    for r in range(pairs):
        for row, text in ((2 * r, "original"), (2 * r + 1, "rebuilt")):
            axes[row, 0].text(
                -0.12,
                0.5,
                text,
                transform=axes[row, 0].transAxes,
                rotation=90,
                ha="right",
                va="center",
                fontsize=9,
            )
    fig.suptitle(title, fontsize=10, y=1 - 0.1 / fig_h, va="top")
    _save(fig, path)


@locked("reconstruct")
def run_reconstruct(run: RunDir, *, digits: int = 16, scale: str = "range") -> pd.DataFrame:
    """The ``reconstruct`` stage: rebuild the test digits from their spike counts (needs the
    ``evaluate`` stage), write ``reconstruction.png`` (``digits`` originals beside their
    reconstructions) and ``reconstruction.csv`` (:func:`error_table` over all test digits).
    Returns the table."""
    if digits < 1:
        raise PipelineError(f"--digits {digits}: must be >= 1")
    if scale not in SCALES:
        raise PipelineError(f"--scale {scale}: must be one of {', '.join(SCALES)}")
    config = run.config()
    run.require("evaluate", for_stage="reconstruct")
    responses = artefacts.load_test_counts(run, config)
    test = artefacts.load_encoded(run, "test", config)
    n_inputs = test["images"].shape[1]
    weights = artefacts.load_model(run, config, n_inputs, keys=("weights",))["weights"]
    counts, labels = responses["counts"], np.asarray(responses["labels"], np.int64)
    if len(counts) != len(test["labels"]) or not np.array_equal(labels, test["labels"]):
        raise PipelineError(
            f"{run}/test_counts.npz ({len(counts)} digits) does not match encoded/test.npz "
            f"({len(test['labels'])} digits): run `stdp-pipeline evaluate {run}` again"
        )
    originals = np.asarray(test["images"], np.float64).reshape(-1, IMAGE_PX, IMAGE_PX) / 255.0
    raw = reconstruct(counts, weights, Layout.of(config, test["images"].shape[1]))
    images = rescale(raw, originals, scale)
    table = error_table(images, originals, labels, silent=counts.sum(axis=1) <= 0)
    errors = mse_per_digit(images, originals)
    shown = pick_digits(labels, digits)
    overall = table.loc[table["class"] == "all"].iloc[0]
    how = {
        "range": "rescaled so the darkest pixel is 0 and the brightest 1",
        "max": "rescaled so the brightest pixel is 1",
        "lsq": "least-squares gain and offset fitted to the original",
    }[scale]
    title = (
        f"{run.name}: {config.name}, {config.network.n_excitatory:,} neurons: "
        "test digits rebuilt from their spikes\n"
        f"image = sum of spike count x receptive field, {how}\n"
        f"MSE over {int(overall['digits']):,} test digits {overall['mse']:.4f} "
        f"(the mean test image scores {overall['mse_mean_image']:.4f}); pixels on [0, 1]"
    )
    with run.stage("reconstruct") as record:
        plot_reconstruction(
            originals[shown],
            images[shown],
            labels[shown],
            errors[shown],
            run.file("reconstruction.png"),
            title,
        )
        record.add_output("reconstruction.png")
        run.write_text("reconstruction.csv", table.to_csv(index=False, float_format="%.6g"))
        record.info.update(scale=scale, mse=float(overall["mse"]), digits_shown=int(len(shown)))
    return table
