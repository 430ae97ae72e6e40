"""The ``encode`` stage: resolve the config, select the data slices, store what the network sees.

Writes into the run directory ``config.json`` and ``manifest.json`` (through
:meth:`RunDir.create`), and ``encoded/{train,assign,test}.npz`` with ``images`` ``[M, P]`` uint8
(the intensities the rate code turns into spikes), ``labels`` ``[M]`` uint8 and ``indices``
``[M]`` (position in the data split, which fixes each digit's input spikes). Spikes themselves
are never stored. For patched models the whole image is stored: every pixel has one spike train,
which reaches each patch that holds the pixel; the patch positions are recorded in the manifest.
Also writes ``input_raster.png``: a few digits and their input spikes.
"""

from __future__ import annotations

import os

import numpy as np

from stdp_pipeline.geometry import Layout
from stdp_pipeline.io import data as datasets
from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.io.rundir import RunDir

SPLITS = ("train", "assign", "test")


def run_encode(
    path: str | os.PathLike[str],
    config: ExperimentConfig,
    *,
    data_dir: str | None = None,
    command: list[str] | None = None,
    raster_digits: int = 3,
    progress: bool | None = None,
) -> RunDir:
    """Create (or reuse, with the same config) the run directory and write the encoded slices.

    A data set missing from the data folder is downloaded first (``progress``: its progress
    lines; see :func:`stdp_pipeline.io.data.load_split`). The run directory is locked while it is
    written (:meth:`RunDir.lock`); encoding again marks every later stage stale."""
    dc = config.data
    train = datasets.load_split(dc.dataset, "train", data_dir, progress=progress)
    test = datasets.load_split(dc.dataset, "test", data_dir, progress=progress)
    train_idx, assign_idx = datasets.slice_indices(
        len(train.labels), dc.train_digits, dc.assign_digits, dc.assign_start, dc.allow_overlap
    )
    test_idx = datasets.test_indices(len(test.labels), dc.test_digits)
    checksums = datasets.checksums(dc.dataset, data_dir, progress=progress)
    with RunDir(path).lock("encode", create=True):
        run = RunDir.create(path, config, command=command, data_checksums=checksums)
        with run.stage("encode", command=command) as record:
            for name, split, idx in (
                ("train", train, train_idx),
                ("assign", train, assign_idx),
                ("test", test, test_idx),
            ):
                run.save_arrays(
                    f"encoded/{name}.npz",
                    {
                        "images": split.images[idx].reshape(len(idx), -1),
                        "labels": split.labels[idx],
                        "indices": idx.astype(np.int64),
                    },
                    compressed=True,
                )
            _write_raster(
                run,
                config,
                train.images[train_idx[:raster_digits]],
                train.labels[train_idx[:raster_digits]],
                train_idx[:raster_digits],
            )
            record.add_output("input_raster.png")
            layout = Layout.of(config)
            if layout.patched:
                record.info["patch_positions"] = [list(rc) for rc in layout.positions]
            record.info.update(
                train_digits=int(len(train_idx)),
                assign_digits=int(len(assign_idx)),
                test_digits=int(len(test_idx)),
                assign_range=[int(assign_idx[0]), int(assign_idx[-1]) + 1],
                overlap=bool(np.intersect1d(train_idx, assign_idx).size),
            )
    return run


def _write_raster(
    run: RunDir,
    config: ExperimentConfig,
    images: np.ndarray,
    labels: np.ndarray,
    indices: np.ndarray,
) -> None:
    from stdp_pipeline._tf import tf
    from stdp_pipeline.sim import registry
    from stdp_pipeline.sim.codes import base as codes
    from stdp_pipeline.stages.plots import plot_raster

    enc = config.encoding
    code = registry.code(enc.code)
    params = code.params(config)
    flat = images.reshape(len(images), -1)
    keys = codes.presentation_keys(config.seed, "train", tf.constant(indices), 0)
    events = code.events(params, tf.constant(flat), keys, level=0, steps=enc.steps, dt_ms=enc.dt_ms)
    slots = codes.slots(events, len(flat), enc.steps, flat.shape[1])
    rasters = [codes.raster(s, flat.shape[1]) for s in slots.numpy()]
    plot_raster(
        flat,
        rasters,
        [int(x) for x in labels],
        enc.dt_ms,
        run.file("input_raster.png"),
        f"{run.name}: input of the first training digits "
        f"({code.describe(params)}, dt {enc.dt_ms:g} ms)",
    )
