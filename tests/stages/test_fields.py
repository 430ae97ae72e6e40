"""Receptive-field grids: field extraction for whole-digit and patched models, ordering, the
mosaic layout, capping large models, checkpoints, and the PNG written."""

from __future__ import annotations

import numpy as np
import pytest
from bases import DC100
from PIL import Image

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.geometry import Layout
from stdp_pipeline.io.config import load_config
from stdp_pipeline.io.rundir import RunDir
from stdp_pipeline.stages.fields import (
    display_order,
    field_classes,
    mosaic,
    near_square,
    receptive_fields,
    run_fields,
)


def test_receptive_fields_of_each_weight_layout():
    """[784, N]: column j is neuron j's 28x28 field; [G, P, Ng]: neuron g*Ng+j; [P, Ng]: shared."""
    w = np.arange(784 * 3, dtype=np.float32).reshape(784, 3)
    f = receptive_fields(w)
    assert f.images.shape == (3, 28, 28) and f.position_grid == (1, 1) and not f.shared
    np.testing.assert_array_equal(f.images[2], w[:, 2].reshape(28, 28))

    g = np.random.default_rng(0).random((16, 100, 5))  # 10 px patches, stride 6: 4x4 positions
    f = receptive_fields(g, Layout(784, 10, 6, 80))
    assert f.images.shape == (80, 10, 10) and f.position_grid == (4, 4)
    np.testing.assert_array_equal(f.images[3 * 5 + 2], g[3, :, 2].reshape(10, 10))
    assert f.group.tolist() == np.repeat(np.arange(16), 5).tolist()

    s = receptive_fields(g[:1], Layout(784, 10, 6, 5, shared=True))  # [1, P, Ng] as stored
    assert s.shared and s.n == 5 and s.position_grid == (4, 4)
    np.testing.assert_array_equal(s.images[4], g[0, :, 4].reshape(10, 10))
    with pytest.raises(PipelineError, match=r"do not fit this network's layout \(10 px patches"):
        receptive_fields(np.ones((15, 100, 5)), Layout(784, 10, 6, 80))


def test_shared_group_classes_pool_the_positions():
    """A shared group's class is the one its neuron answers most over all positions."""
    s = receptive_fields(np.ones((1, 100, 2)), Layout(784, 10, 6, 2, shared=True))  # 16 x 2
    rates = np.zeros((10, 32))
    rates[3, 0::2] = 1.0  # neuron 0 answers class 3 at every position
    rates[7, 1] = 5.0  # neuron 1 answers class 7 at position 0 only
    assert field_classes(np.zeros(32), rates, s).tolist() == [3, 7]
    with pytest.raises(PipelineError, match="assign"):
        field_classes(np.zeros(5), None, receptive_fields(np.ones((784, 3))))


def test_display_order_sorts_by_class_and_caps_large_models():
    f = receptive_fields(np.ones((784, 6)))
    classes = np.array([2, -1, 0, 2, 1, 0])
    order, step = display_order(f, classes, "class")
    assert order.tolist() == [2, 5, 4, 0, 3, 1] and step == 1  # silent neuron last
    assert display_order(f, None, "index")[0].tolist() == list(range(6))
    with pytest.raises(PipelineError, match="assign"):
        display_order(f, None, "class")
    big = receptive_fields(np.ones((784, 6400), np.float32))
    order, step = display_order(big, None, "index", max_neurons=1600)
    assert len(order) == 1600 and step == 4 and order[0] == 0 and order[-1] == 6399


def test_mosaic_places_each_cell():
    assert near_square(100) == (10, 10) and near_square(1600) == (40, 40)
    assert near_square(6) == (2, 3)
    images = np.stack([np.full((28, 28), float(i)) for i in range(5)])
    out, corners = mosaic(images, np.zeros(5, int), (1, 1))
    assert out.shape == (2 * 29 - 1, 3 * 29 - 1)
    assert corners.tolist() == [[0, 0], [0, 29], [0, 58], [29, 0], [29, 29]]
    assert out[29 + 5, 29 + 5] == 4.0 and np.isnan(out[28, 0]) and np.isnan(out[40, 70])
    # patched: blocks laid out like the positions (2x2 here), 4 px between blocks
    patches = np.ones((8, 10, 10))
    out, corners = mosaic(patches, np.repeat(np.arange(4), 2), (2, 2))
    assert corners[2].tolist() == [0, 21 + 4]  # group 1 starts right of group 0's block
    assert corners[4].tolist() == [10 + 4, 0]  # group 2 starts below


def _run_with_model(path, n, *, assigned=True, checkpoints=()):
    config = load_config(DC100, [f"network.n_excitatory={n}"])
    run = RunDir.create(path, config, command=["test"])
    rng = np.random.default_rng(n)
    with run.stage("encode"):
        pass
    for pos in checkpoints:
        run.save_arrays(
            f"checkpoints/ckpt-{pos:09d}.npz",
            {"weights": rng.random((784, n), np.float32) * 0.3, "position": pos},
        )
    with run.stage("train", command=["test"]) as rec:
        run.save_arrays("model.npz", {"weights": rng.random((784, n), np.float32)})
        rec.info["digits_seen"] = 100
    if assigned:
        with run.stage("assign"):
            run.save_arrays(
                "assignments.npz",
                {"classes": rng.integers(-1, 10, n), "rates": rng.random((10, n))},
            )
    return run


def test_run_fields_writes_grids_and_checkpoints(tmp_path):
    run = _run_with_model(tmp_path / "r", 100, checkpoints=(10, 20))
    (path,) = run_fields(run)
    assert path.name == "fields.png"
    with Image.open(path) as im:
        im.load()
        assert 700 <= im.width <= 2500 and 600 <= im.height <= 2500
    info = run.manifest()["stages"]["fields"]
    assert info["outputs"] == ["fields.png"] and info["sort"] == "class"
    assert run_fields(run, checkpoint=20)[0].name == "fields-000000020.png"
    with pytest.raises(PipelineError, match="available positions are 10, 20"):
        run_fields(run, checkpoint=15)
    names = [p.name for p in run_fields(run, all_checkpoints=True, sort="index")]
    assert names == ["fields-000000010.png", "fields-000000020.png", "fields.png"]
    assert run.manifest()["stages"]["fields"]["outputs"] == names
    for name in names:
        with Image.open(run.file(name)) as im:
            im.verify()


def test_run_fields_caps_6400_neurons(tmp_path):
    """6,400 neurons draw as 1,600 evenly spaced fields, in a few seconds."""
    run = _run_with_model(tmp_path / "big", 6400, assigned=False)
    (path,) = run_fields(run)
    info = run.manifest()["stages"]["fields"]
    assert info["fields"] == 6400 and info["fields_shown"] == 1600 and info["sort"] == "index"
    with Image.open(path) as im:
        im.load()
        assert 1500 <= im.width <= 2600 and 1500 <= im.height <= 2600


def test_run_fields_says_what_is_missing(tmp_path):
    run = _run_with_model(tmp_path / "u", 10, assigned=False)
    with pytest.raises(PipelineError, match="no 'assign' stage yet"):
        run_fields(run, sort="class")
    with pytest.raises(PipelineError, match="no checkpoints"):
        run_fields(run, all_checkpoints=True)


def test_run_fields_of_a_patched_model(tmp_path):
    """10 px patches at stride 6: one block of 10x10 fields per patch position (4x4 blocks)."""
    config = load_config(
        "event-stdp-patches",
        ["network.n_excitatory=96", "encoding.patch_size_px=10", "encoding.patch_stride_px=6"],
    )
    run = RunDir.create(tmp_path / "p", config, command=["test"])
    with run.stage("encode"):
        pass
    with run.stage("train"):
        weights = np.random.default_rng(1).random((16, 100, 6), np.float32)
        run.save_arrays("model.npz", {"weights": weights, "theta": np.zeros((16, 6))})
    with run.stage("assign"):
        run.save_arrays("assignments.npz", {"classes": np.arange(96) % 11 - 1})
    (path,) = run_fields(run)
    info = run.manifest()["stages"]["fields"]
    assert info["fields"] == info["fields_shown"] == 96 and info["sort"] == "class"
    with Image.open(path) as im:
        im.load()
        assert 600 <= im.width <= 2600 and 500 <= im.height <= 2600
