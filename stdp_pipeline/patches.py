"""Square image patches: positions, extraction (unfold) and folding back (fold).

A 28x28 image is cut into ``k x k`` patches whose top-left corners lie on a grid of stride ``s``
(overlapping when ``s < k``). When ``(28 - k)`` is not a multiple of ``s`` a last row and column
of patches is added flush with the edge, so every pixel is covered. Patch ``g`` (row-major over
the grid) holds the pixels ``image[r:r+k, c:c+k]`` flattened row-major: ``P = k * k`` values.

Folding averages overlapping pixels: ``fold(unfold(x)) == x`` exactly for any image.

Shapes: ``B`` images, ``G`` patch positions, ``P = k * k`` pixels per patch.
"""

from __future__ import annotations

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
