"""Image geometry: square patches (positions, unfold, fold) and the weight layout of a network.

A 28x28 image is cut into ``k x k`` patches whose top-left corners lie on a grid of stride ``s``
(overlapping when ``s < k``). When ``(28 - k)`` is not a multiple of ``s`` a last row and column
of patches is added flush with the edge, so every pixel is covered. Patch ``g`` (row-major over
the grid) holds the pixels ``image[r:r+k, c:c+k]`` flattened row-major: ``P = k * k`` values.

Folding averages overlapping pixels: ``fold(unfold(x)) == x`` exactly for any image.

Shapes: ``B`` images, ``G`` patch positions, ``P = k * k`` pixels per patch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np


def patch_positions(size: int, stride: int, image_px: int = 28) -> list[tuple[int, int]]:
    """Top-left corners ``(row, col)`` of the patches, row-major."""
    if not 0 < size <= image_px:
        raise ValueError(f"patch size {size}: must be between 1 and {image_px}")
    if not 0 < stride <= size:
        raise ValueError(f"patch stride {stride}: must be between 1 and the patch size {size}")
    starts = list(range(0, image_px - size + 1, stride))
    if starts[-1] != image_px - size:
        starts.append(image_px - size)
    return [(r, c) for r in starts for c in starts]


def unfold(images: np.ndarray, size: int, stride: int) -> np.ndarray:
    """Patches ``[B, G, P]`` of images ``[B, 28, 28]`` (or ``[B, 784]``); dtype is kept."""
    images = np.asarray(images)
    side = int(round(np.sqrt(images.shape[-1]))) if images.ndim == 2 else images.shape[-1]
    images = images.reshape(len(images), side, side)
    pos = patch_positions(size, stride, side)
    return np.stack(
        [images[:, r : r + size, c : c + size].reshape(len(images), -1) for r, c in pos], axis=1
    )


def coverage(size: int, stride: int, image_px: int = 28) -> np.ndarray:
    """How many patches cover each pixel, ``[28, 28]`` int."""
    out = np.zeros((image_px, image_px), np.int64)
    for r, c in patch_positions(size, stride, image_px):
        out[r : r + size, c : c + size] += 1
    return out


def fold(patches: np.ndarray, size: int, stride: int, image_px: int = 28) -> np.ndarray:
    """Images ``[B, 28, 28]`` (float64) from patches ``[B, G, P]``, averaging overlaps."""
    patches = np.asarray(patches, np.float64)
    out = np.zeros((patches.shape[0], image_px, image_px))
    for g, (r, c) in enumerate(patch_positions(size, stride, image_px)):
        out[:, r : r + size, c : c + size] += patches[:, g].reshape(-1, size, size)
    return out / coverage(size, stride, image_px)


@dataclass(frozen=True)
class Layout:
    """How a network's excitatory neurons and input weights map onto the image.

    Whole digits: one group of ``N`` neurons sees all ``n_inputs`` pixels; weights ``[P, N]``,
    theta ``[N]``. Patches (``patch_px < side``): ``G`` positions; ``"separate"`` groups give each
    position ``Ng = N / G`` neurons of its own (weights ``[G, P, Ng]``, theta ``[G, Ng]``);
    a ``"shared"`` group of ``Ng = N`` neurons serves every position (weights ``[1, P, Ng]``,
    theta ``[1, Ng]``). Excitatory outputs per digit: ``G * Ng``, group-major (neuron ``j`` of
    position ``g`` is output ``g * Ng + j``). ``P = patch_px ** 2``.
    """

    n_inputs: int
    patch_px: int
    stride_px: int
    n_excitatory: int
    shared: bool = False

    @classmethod
    def of(cls, config: Any, n_inputs: int = 784) -> Layout:
        """The layout of an experiment config (its ``encoding`` and ``network`` sections)."""
        enc, net = config.encoding, config.network
        side = int(round(math.sqrt(n_inputs)))
        size = min(enc.patch_size_px, side)
        return cls(
            n_inputs, size, min(enc.patch_stride_px, size), net.n_excitatory,
            size < side and net.patch_groups == "shared",
        )  # fmt: skip

    @classmethod
    def whole_digits(cls, weights: np.ndarray, image_px: int = 28) -> Layout:
        """The layout of whole ``image_px``-square digits for weights ``[image_px**2, N]`` (``N``
        read from their last axis): what a caller means when it passes weights without a
        layout."""
        w = np.asarray(weights)
        return cls(image_px * image_px, image_px, image_px, w.shape[-1] if w.ndim else 0)

    @property
    def side(self) -> int:
        """Image side, pixels."""
        return int(round(math.sqrt(self.n_inputs)))

    @property
    def patched(self) -> bool:
        """Whether the image is cut into patches."""
        return self.patch_px < self.side

    @property
    def positions(self) -> list[tuple[int, int]]:
        """Top-left corners of the patch positions (one, ``(0, 0)``, for whole digits)."""
        if not self.patched:
            return [(0, 0)]
        return patch_positions(self.patch_px, self.stride_px, self.side)

    @property
    def n_groups(self) -> int:
        """``G``: patch positions simulated side by side (1 for whole digits)."""
        return len(self.positions)

    @property
    def patch_inputs(self) -> int:
        """``P``: inputs per excitatory neuron."""
        return self.patch_px**2 if self.patched else self.n_inputs

    @property
    def group_size(self) -> int:
        """``Ng``: excitatory neurons per position."""
        if not self.patched or self.shared:
            return self.n_excitatory
        return self.n_excitatory // self.n_groups

    @property
    def weight_groups(self) -> int:
        """``Gw``: weight groups (one per position, or 1 when shared or whole)."""
        return 1 if self.shared or not self.patched else self.n_groups

    @property
    def n_outputs(self) -> int:
        """Excitatory spike counts per digit, ``G * Ng``."""
        return self.n_groups * self.group_size

    @property
    def weight_shape(self) -> list[int]:
        """Shape of the stored weights: ``[P, N]`` whole, ``[Gw, P, Ng]`` patched."""
        if not self.patched:
            return [self.patch_inputs, self.group_size]
        return [self.weight_groups, self.patch_inputs, self.group_size]

    @property
    def theta_shape(self) -> list[int]:
        """Shape of the stored thresholds: ``[N]`` whole, ``[Gw, Ng]`` patched."""
        return [self.group_size] if not self.patched else [self.weight_groups, self.group_size]

    def pixel_of_row(self) -> np.ndarray:
        """``[G, P + 1]`` int32: the image pixel of each patch row (row ``P``: the padding
        pixel ``n_inputs``)."""
        pixel = np.arange(self.n_inputs).reshape(self.side, self.side)
        k = self.patch_px
        rows = np.stack([pixel[r : r + k, c : c + k].ravel() for r, c in self.positions])
        pad = np.full((self.n_groups, 1), self.n_inputs)
        return np.concatenate([rows, pad], axis=1).astype(np.int32)

    def row_of_pixel(self) -> np.ndarray:
        """``[G, n_inputs + 1]`` int32: the row of each image pixel in each patch (``P`` where
        the pixel lies outside the patch, and for the padding pixel)."""
        out = np.full((self.n_groups, self.n_inputs + 1), self.patch_inputs, np.int32)
        for g, rows in enumerate(self.pixel_of_row()[:, :-1]):
            out[g, rows] = np.arange(self.patch_inputs)
        return out

    def weight_group_of(self) -> np.ndarray:
        """``[G]`` int32: the weight group each position uses (all 0 when shared)."""
        if self.weight_groups == 1:
            return np.zeros(self.n_groups, np.int32)
        return np.arange(self.n_groups, dtype=np.int32)

    def weights3(self, weights: np.ndarray) -> np.ndarray:
        """Stored weights as ``[Gw, P, Ng]`` whatever the layout; a clear error when the shape
        does not fit (e.g. a model trained with another patch size)."""
        w = np.asarray(weights)
        if list(w.shape) != self.weight_shape:
            from stdp_pipeline.errors import PipelineError

            raise PipelineError(
                f"model weights of shape {list(w.shape)} do not fit this network's layout "
                f"({self.describe()}): expected {self.weight_shape}"
            )
        return w.reshape(self.weight_groups, self.patch_inputs, self.group_size)

    def describe(self) -> str:
        """A few words: ``"whole digits, 400 neurons"`` or ``"10 px patches at stride 6, 16
        positions x 100 neurons (separate)"``."""
        if not self.patched:
            return f"whole digits, {self.n_excitatory} neurons"
        kind = "shared" if self.shared else "separate"
        return (
            f"{self.patch_px} px patches at stride {self.stride_px}, {self.n_groups} positions "
            f"x {self.group_size} neurons ({kind})"
        )
