"""The time-to-first-spike latency code (:mod:`stdp_pipeline.sim.codes.latency`): hand-made
images with every spike step written out, retries, jitter, slot overflow, and a network that
learns from it."""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf
from bases import DC100

from stdp_pipeline.io import data
from stdp_pipeline.io.config import ExperimentConfig, load_config
from stdp_pipeline.sim import present
from stdp_pipeline.sim.codes import base as codes
from stdp_pipeline.sim.codes import latency
from stdp_pipeline.sim.network import SpikingNetwork
from stdp_pipeline.sim.rules.base import normalise_columns

DT = 0.5
EXACT = latency.Params(window_ms=50.0, jitter_ms=0.0, min_intensity=32.0, retry_gain=0.5)

# Two hand-made 9-pixel "digits". Spike step = floor((1 - q / 255) * 50 / 0.5):
#   255 -> 0, 200 -> 21 (21.57), 128 -> 49 (49.80), 90 -> 64 (64.71), 60 -> 76 (76.47),
#   40 -> 84 (84.31), 33 -> 87 (87.06), 32 -> 87 (87.45); 31 < 32 and 0: silent.
IMAGES = np.array(
    [
        [255, 200, 128, 90, 40, 33, 32, 31, 0],
        [0, 0, 255, 255, 128, 0, 60, 0, 200],
    ],
    np.uint8,
)


def _events(p, images, *, steps, level=0, keys=None):
    images = tf.constant(np.asarray(images, np.uint8))
    if keys is None:
        keys = codes.presentation_keys(0, "train", tf.range(images.shape[0]), level)
    ev = latency.events(p, images, keys, level=level, steps=steps, dt_ms=DT)
    return tuple(x.numpy() for x in ev)


def _formula_steps(images, p, level, steps):
    """floor((255 - q) window / (255 dt)) in float64, ``steps`` where silent."""
    q = np.minimum(images.astype(np.float64) * (1.0 + level * p.retry_gain), 255.0)
    step = np.floor((255.0 - q) * p.window_ms / (255.0 * DT)).astype(np.int64)
    fires = (q >= p.min_intensity) & (q > 0) & (step < steps)
    return np.where(fires, step, steps)


def test_params_and_describe():
    """The latency section's values; a few words for plot titles."""
    config = ExperimentConfig().with_overrides(["latency.window_ms=40", "latency.jitter_ms=0"])
    p = latency.params(config)
    assert p == latency.Params(40.0, 0.0, 32.0, 0.5)
    assert latency.describe(p) == "latency code, 40 ms window, 0 ms jitter"
    assert set(latency.SECTIONS) == {"latency"}


def test_spike_steps_without_jitter_are_the_formula():
    """Each pixel's step is floor((1 - q/255) window / dt); dim, blank and late pixels get
    ``steps`` (silent)."""
    keys = codes.presentation_keys(0, "train", tf.range(2), 0)
    got = latency.spike_steps(EXACT, tf.constant(IMAGES), keys, 0, 120, DT).numpy()
    want = [
        [0, 21, 49, 64, 84, 87, 87, 120, 120],
        [120, 120, 0, 0, 49, 120, 76, 120, 21],
    ]
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, _formula_steps(IMAGES, EXACT, 0, 120))
    # a 30 ms presentation (60 steps) cuts off the pixels that would fire later
    got = latency.spike_steps(EXACT, tf.constant(IMAGES), keys, 0, 60, DT).numpy()
    np.testing.assert_array_equal(got[0], [0, 21, 49, 60, 60, 60, 60, 60, 60])


def test_events_one_spike_per_firing_pixel_ordered_by_digit_step_and_pixel():
    """The event list of the two hand-made digits, written out: segment b * T + t, the slot
    counting within a step, the pixel as source."""
    steps = 120
    segment, slot, source, dropped, busiest = _events(EXACT, IMAGES, steps=steps)
    want = [  # (digit, step, slot, pixel)
        (0, 0, 0, 0),
        (0, 21, 0, 1),
        (0, 49, 0, 2),
        (0, 64, 0, 3),
        (0, 84, 0, 4),
        (0, 87, 0, 5),
        (0, 87, 1, 6),
        (1, 0, 0, 2),
        (1, 0, 1, 3),
        (1, 21, 0, 8),
        (1, 49, 0, 4),
        (1, 76, 0, 6),
    ]
    np.testing.assert_array_equal(segment, [d * steps + t for d, t, _, _ in want])
    np.testing.assert_array_equal(slot, [k for _, _, k, _ in want])
    np.testing.assert_array_equal(source, [i for _, _, _, i in want])
    np.testing.assert_array_equal(dropped, [0, 0])
    np.testing.assert_array_equal(busiest, [2, 2])
    # laid out per step: the step's pixels in order, the padding index 9 elsewhere
    slots = codes.slots(
        codes.Events(*(tf.constant(x) for x in (segment, slot, source, dropped, busiest))),
        2,
        steps,
        9,
    ).numpy()
    assert slots.shape == (2, steps, 2)
    np.testing.assert_array_equal(slots[0, 87], [5, 6])
    np.testing.assert_array_equal(slots[1, 0], [2, 3])
    np.testing.assert_array_equal(slots[1, 21], [8, 9])
    assert (slots < 9).sum() == 12


def test_events_match_the_formula_on_a_random_image():
    """Random intensities: every firing pixel once, at its formula step; order (digit, step,
    pixel); slots count 0, 1, ... within each step."""
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, size=(3, 200)).astype(np.uint8)
    images[rng.random(images.shape) < 0.5] = 0
    steps = 100
    segment, slot, source, dropped, busiest = _events(EXACT, images, steps=steps)
    want = _formula_steps(images, EXACT, 0, steps)
    digit, step = segment // steps, segment % steps
    got = np.full(images.shape, steps)
    got[digit, source] = step
    # exact everywhere, also where (1 - q/255) * 100 is a whole number (q = 51, 102, 153, 204)
    np.testing.assert_array_equal(got, want)
    assert np.isin(images, [51, 102, 153, 204]).any()
    assert len(segment) == (want < steps).sum()  # one spike per firing pixel
    order = np.lexsort((source, segment))
    np.testing.assert_array_equal(order, np.arange(len(segment)))
    for s in np.unique(segment):
        np.testing.assert_array_equal(slot[segment == s], np.arange((segment == s).sum()))
    counts = np.stack([np.bincount(step[digit == b], minlength=steps) for b in range(3)])
    np.testing.assert_array_equal(busiest, counts.max(axis=1))
    np.testing.assert_array_equal(dropped, [0, 0, 0])


def test_retry_level_brightens_the_image():
    """Level 1 scales intensities by 1 + 0.5: 31 -> 46.5 passes the cut-off and fires; all lit
    pixels fire earlier; 200 -> 300 is clipped at 255 (step 0)."""
    keys = codes.presentation_keys(0, "train", tf.range(2), 1)
    got = latency.spike_steps(EXACT, tf.constant(IMAGES), keys, 1, 120, DT).numpy()
    # 255, 255, 192 -> 24.71, 135 -> 47.06, 60 -> 76.47, 49.5 -> 80.59, 48 -> 81.18, 46.5 -> 81.76
    np.testing.assert_array_equal(got[0], [0, 0, 24, 47, 76, 80, 81, 81, 120])
    np.testing.assert_array_equal(got, _formula_steps(IMAGES, EXACT, 1, 120))
    segment, _, source, _, _ = _events(EXACT, IMAGES, steps=120, level=1)
    assert 7 in source[segment < 120]  # the pixel below the cut-off at level 0
    level0 = _events(EXACT, IMAGES, steps=120, level=0)
    assert 7 not in level0[2][level0[0] < 120]
    # level 2 doubles: 128 -> 256 is clipped to 255
    keys = codes.presentation_keys(0, "train", tf.range(2), 2)
    got = latency.spike_steps(EXACT, tf.constant(IMAGES), keys, 2, 120, DT).numpy()
    np.testing.assert_array_equal(got[0, :3], [0, 0, 0])


def test_jitter_is_reproducible_and_follows_the_key():
    """With jitter the step is floor(((1 - q/255) window + jitter u) / dt), u the uniform number
    of the pixel in stream 3 of the presentation's key: the same keys give the same events,
    other keys other steps."""
    p = EXACT._replace(jitter_ms=5.0)
    images = np.zeros((2, 300), np.uint8)
    images[:, :150] = 255
    images[:, 150:] = 128
    keys = codes.presentation_keys(0, "train", tf.constant([10, 11]), 0)
    first = _events(p, images, steps=200, keys=keys)
    again = _events(p, images, steps=200, keys=keys)
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    got = latency.spike_steps(p, tf.constant(images), keys, 0, 200, DT).numpy()
    u = codes.uniforms(keys, 3, tf.range(300)).numpy()
    t = (np.float32(1.0) - images.astype(np.float32) / np.float32(255.0)) * np.float32(50.0)
    want = np.floor((t + np.float32(5.0) * u) / np.float32(DT)).astype(np.int32)
    np.testing.assert_array_equal(got, want)
    base = _formula_steps(images, EXACT, 0, 200)
    assert (got >= base).all() and (got <= base + 10).all()
    # the saturated pixels spread over the 10 steps of the 5 ms jitter
    assert set(np.unique(got[:, :150]).tolist()) == set(range(10))
    # another digit index (another key) draws other steps
    assert not np.array_equal(got[0], got[1])
    other = codes.presentation_keys(1, "train", tf.constant([10, 11]), 0)
    assert not np.array_equal(
        latency.spike_steps(p, tf.constant(images), other, 0, 200, DT).numpy(), got
    )


def test_more_than_slots_pixels_in_one_step_are_capped_and_counted():
    """100 saturated pixels without jitter all fire at step 0: the first SLOTS (by pixel) are
    kept, 52 are dropped, busiest is the capped 48."""
    images = np.zeros((2, 120), np.uint8)
    images[0, :100] = 255
    images[0, 100] = 128
    images[1, 5:15] = 255
    segment, slot, source, dropped, busiest = _events(EXACT, images, steps=120)
    np.testing.assert_array_equal(dropped, [100 - codes.SLOTS, 0])
    np.testing.assert_array_equal(busiest, [codes.SLOTS, 10])
    first = segment == 0
    np.testing.assert_array_equal(source[first], np.arange(codes.SLOTS))
    np.testing.assert_array_equal(slot[first], np.arange(codes.SLOTS))
    np.testing.assert_array_equal(source[segment == 49], [100])  # later steps are unaffected
    np.testing.assert_array_equal(source[segment == 120], np.arange(5, 15))
    assert len(segment) == codes.SLOTS + 1 + 10


def test_a_network_learns_from_the_latency_code(mnist_dir):
    """End to end with encoding.code = latency: a small network learns from four MNIST digits
    (the weights move beyond the column normalisation, theta rises), then responds to them
    learning off: counts [B, N], learned state untouched. Theta starts at 10 mV: at Diehl &
    Cook's 20 mV a single volley does not make these neurons fire."""
    config = load_config(
        DC100,
        [
            "encoding.code=latency",
            "network.n_excitatory=10",
            "encoding.presentation_ms=60",
            "excitatory.theta_init_mv=10",
        ],
    )
    assert config.encoding.code == "latency"
    ds = data.load_split("mnist", "train", mnist_dir)
    images = ds.images[:4].reshape(4, -1)
    indices = np.arange(4)
    net = SpikingNetwork(config)
    assert net.code is latency
    w0, theta0 = net.weights.numpy().copy(), net.theta.numpy().copy()
    stats = present.train_chunk(net, images, indices)
    assert (stats.spikes > 0).all()
    assert (stats.dropped == 0).all()
    w1, theta1 = net.weights.numpy(), net.theta.numpy()
    assert w1.shape == (784, 10)
    normalised = normalise_columns(tf.constant(w0), config.learning.weight_sum).numpy()
    # STDP (nu_pre = 1e-4 a spike), not only the normalisation (float32 rounding, ~1e-8)
    assert np.abs(w1 - normalised).max() > 1e-4
    assert ((w1 >= 0) & (w1 <= config.learning.w_max)).all()
    # theta: +0.05 mV a spike (quiet presentations that were retried count too), and a decay by
    # exp(-span / 1e7 ms) over every presentation and its rest: 1.3e-4 of 10 mV, 1e3 ulps
    shown = len(indices) + int(stats.retries.sum())
    decayed = theta0 * math.exp(-shown * (60.0 + 150.0) / 1e7)
    n = np.round((theta1 - decayed) / 0.05)
    np.testing.assert_allclose(theta1, decayed + 0.05 * n, atol=1e-4)
    assert n.sum() >= stats.spikes.sum() > 0
    assert np.all(theta1 - theta0 - 0.05 * n < -1e-3)

    counts, retries = present.respond(net, images, indices, "evaluate")
    assert counts.shape == (4, 10) and counts.dtype == np.float32
    assert retries.shape == (4,)
    assert (counts >= 0).all() and counts.sum() > 0
    np.testing.assert_array_equal(net.weights.numpy(), w1)
    np.testing.assert_array_equal(net.theta.numpy(), theta1)
