"""Figures for people: input spike rasters and confusion matrices (matplotlib, Agg backend).

Only the stages import this module; the simulation code never does. Every figure is written
atomically (temporary file, then rename).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from io import BytesIO

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stdp_pipeline.io.atomic import atomic_path, reporting  # noqa: E402


def _save(fig: plt.Figure, path: str | os.PathLike[str], *, palette: bool = False) -> None:
    """Write ``fig`` as a PNG to ``path`` atomically; a write the system refuses (disk full)
    raises :class:`~stdp_pipeline.io.atomic.WriteError`. The figure is closed either way.

    ``palette``: store 256 colours (median cut, no dithering) instead of full RGBA, for charts of
    flat colours and text (the comparison chart of 33 runs: 0.99 MB -> 0.35 MB, unchanged to
    the eye); not for images with colour maps, whose gradients it would band."""
    try:
        with atomic_path(path) as tmp, reporting(path):
            target = BytesIO() if palette else tmp
            fig.savefig(target, dpi=120, bbox_inches="tight", format="png")
            if palette:
                from PIL import Image

                target.seek(0)
                with Image.open(target) as image:
                    flat = image.convert("RGB").quantize(
                        colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE
                    )
                flat.save(tmp, format="PNG", optimize=True)
    finally:
        plt.close(fig)


def plot_raster(
    images: Sequence[np.ndarray],
    rasters: Sequence[np.ndarray],
    labels: Sequence[int],
    dt_ms: float,
    path: str | os.PathLike[str],
    title: str,
) -> None:
    """One row per digit: the image (28x28) beside its input spike raster (time x input).

    ``rasters[i]`` is a boolean ``[T, P]`` matrix of one presentation's input spikes."""
    n = len(images)
    fig, axes = plt.subplots(
        n,
        2,
        figsize=(11, 2.6 * n),
        gridspec_kw={"width_ratios": [1, 5], "hspace": 0.55},
        squeeze=False,
    )
    for row, (img, ras, lab) in enumerate(zip(images, rasters, labels, strict=True)):
        ax_img, ax_ras = axes[row]
        ax_img.imshow(np.asarray(img).reshape(28, 28), cmap="gray_r", vmin=0, vmax=255)
        ax_img.set_title(f"digit {lab}", fontsize=10)
        ax_img.axis("off")
        t, i = np.nonzero(ras)
        ax_ras.scatter(t * dt_ms, i, s=1.5, c="k", marker="|", linewidths=0.6)
        ax_ras.set_xlim(0, ras.shape[0] * dt_ms)
        ax_ras.set_ylim(-1, ras.shape[1])
        ax_ras.set_ylabel("input (pixel)")
        ax_ras.set_title(
            f"{len(t)} input spikes, {len(t) / (ras.shape[0] * dt_ms) * 1000:.0f} "
            "per second in total",
            fontsize=10,
        )
        if row == n - 1:
            ax_ras.set_xlabel("time (ms)")
        else:
            ax_ras.tick_params(labelbottom=False)
    fig.suptitle(title, fontsize=12)
    _save(fig, path)


def plot_confusion(matrix: np.ndarray, path: str | os.PathLike[str], title: str) -> None:
    """Confusion matrix as a heat map with counts, row-normalised colours and a colour bar."""
    matrix = np.asarray(matrix)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6.4, 5.6))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    cbar = fig.colorbar(im, ax=ax)
    cbar.set_label("fraction of the true class")
    for (r, c), value in np.ndenumerate(matrix):
        if value:
            ax.text(
                c,
                r,
                str(value),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if share[r, c] > 0.5 else "black",
            )
    ax.set_xticks(range(matrix.shape[1]))
    ax.set_yticks(range(matrix.shape[0]))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title, fontsize=10)
    _save(fig, path)
