"""The Poisson rate code (:mod:`stdp_pipeline.sim.codes.poisson`): rates, counts, events and
their independence of the batch."""

from __future__ import annotations

from math import exp, lgamma, log

import numpy as np
import pytest
import tensorflow as tf

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import data
from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.sim.codes import base as codes
from stdp_pipeline.sim.codes import poisson

RATE, DT = 63.75, 0.5


def _slots(images, indices, *, steps=700, seed=0, stage="train", level=0, rate=RATE, step_hz=0.0):
    images = tf.constant(np.asarray(images, np.uint8))
    keys = codes.presentation_keys(seed, stage, tf.constant(indices, tf.int32), level)
    ev = poisson.events(
        poisson.Params(rate, step_hz), images, keys, level=level, steps=steps, dt_ms=DT
    )
    slots = codes.slots(ev, images.shape[0], steps, images.shape[1])
    return slots.numpy(), ev.dropped.numpy(), ev.busiest.numpy()


def test_params_and_describe():
    """The poisson section's values; a few words for plot titles."""
    config = ExperimentConfig().with_overrides(["poisson.rate_max_hz=100"])
    p = poisson.params(config)
    assert p == poisson.Params(100.0, 31.875)
    assert poisson.describe(p) == "Poisson rate code, peak 100 Hz"
    assert set(poisson.SECTIONS) == {"poisson"}


def test_intensity_rates():
    """p / 255 * (rate_max_hz + level * retry_rate_step_hz)."""
    img = tf.constant([[255, 51, 0]], tf.uint8)
    np.testing.assert_allclose(
        poisson.intensity_rates(img, 63.75).numpy(), [[63.75, 12.75, 0.0]], rtol=1e-6
    )
    np.testing.assert_allclose(
        poisson.intensity_rates(img, 63.75, 2, 31.875).numpy(), [[127.5, 25.5, 0.0]], rtol=1e-6
    )


def test_poisson_counts_inverse_cdf():
    """Counts are the inverse Poisson CDF of the uniforms; their mean over a grid is lambda."""
    lam = np.array([0.5, 3.3, 10.0])
    u = (np.arange(20_000) + 0.5) / 20_000
    got = poisson.poisson_counts(
        tf.constant(lam, tf.float32), tf.constant(np.tile(u, (3, 1)), tf.float32)
    ).numpy()
    for row, la in zip(got, lam, strict=True):
        pmf = np.array([exp(k * log(la) - la - lgamma(k + 1)) for k in range(codes.SLOTS + 1)])
        cdf = np.cumsum(pmf)
        want = np.searchsorted(cdf, u, side="right")
        near = np.min(np.abs(u[:, None] - cdf[None, :]), axis=1) < 1e-5
        np.testing.assert_array_equal(row[~near], want[~near])
        assert abs(row.mean() - la) < 0.01 * la + 0.01


def test_events_digit_independent_of_batch(mnist_dir):
    """A digit's slots are a pure function of its key: alone or in a batch of 8, they agree."""
    ds = data.load_split("mnist", "train", mnist_dir)
    images = ds.images[:8].reshape(8, -1)
    indices = np.arange(100, 108)
    batch, _, busiest = _slots(images, indices, steps=200)
    for b in (0, 5):
        alone, _, k = _slots(images[b : b + 1], indices[b : b + 1], steps=200)
        assert k[0] == busiest[b]
        width = min(alone.shape[2], batch.shape[2])
        np.testing.assert_array_equal(batch[b, :, :width], alone[0, :, :width])
        assert (batch[b, :, width:] == 784).all()
        assert (alone[0, :, width:] == 784).all()
    # a different batch companion and order does not matter either
    swapped, _, _ = _slots(images[[5, 0]], indices[[5, 0]], steps=200)
    width = min(swapped.shape[2], batch.shape[2])
    np.testing.assert_array_equal(swapped[1, :, :width], batch[0, :, :width])


def test_events_mean_spikes_match_the_rate_code(mnist_dir):
    """Over 200 MNIST digits, input spikes per presentation = sum(p) / 255 * rate * 0.35 s."""
    ds = data.load_split("mnist", "train", mnist_dir)
    images = ds.images[:200].reshape(200, -1)
    slots, dropped, busiest = _slots(images, np.arange(200), steps=700)
    valid = slots < 784
    got = valid.sum(axis=(1, 2))
    want = images.sum(axis=1, dtype=np.float64) / 255.0 * RATE * 0.35
    assert (dropped == 0).all()
    assert abs(got.sum() / want.sum() - 1.0) < 0.02
    # each digit within 5 Poisson standard deviations of its own expectation
    assert np.all(np.abs(got - want) < 5 * np.sqrt(want))
    np.testing.assert_array_equal(busiest, valid.sum(axis=2).max(axis=1))
    # spikes come only from lit pixels, valid slots come first in each step
    src = slots[valid]
    assert (images[np.nonzero(valid)[0], src] > 0).all()
    assert (np.diff(valid.astype(np.int8), axis=2) <= 0).all()


def test_events_pixel_frequency_proportional_to_intensity():
    """Two pixels of intensities 255 and 85 fire 3:1, each at p / 255 * rate_max_hz."""
    n = 3000
    images = np.tile(np.array([[255, 85]], np.uint8), (n, 1))
    slots, _, _ = _slots(images, np.arange(n), steps=700)
    per_digit = np.stack([(slots == 0).sum(axis=(1, 2)), (slots == 1).sum(axis=(1, 2))], axis=1)
    totals = per_digit.sum(axis=0)
    assert abs(totals[0] / totals[1] - 3.0) < 0.1
    np.testing.assert_allclose(totals / n, [63.75 * 0.35, 21.25 * 0.35], rtol=0.02)
    # Poisson: variance of the per-presentation count equals its mean
    np.testing.assert_allclose(per_digit.var(axis=0), per_digit.mean(axis=0), rtol=0.1)


def test_events_retry_level_raises_the_rate():
    """At retry level 2 with step 31.875 Hz the peak rate doubles (63.75 -> 127.5 Hz)."""
    n = 1000
    images = np.full((n, 1), 255, np.uint8)
    s0, _, _ = _slots(images, np.arange(n), steps=700, level=0, step_hz=31.875)
    s2, _, _ = _slots(images, np.arange(n), steps=700, level=2, step_hz=31.875)
    np.testing.assert_allclose((s0 == 0).sum() / n, 63.75 * 0.35, rtol=0.02)
    np.testing.assert_allclose((s2 == 0).sum() / n, 127.5 * 0.35, rtol=0.02)


def test_events_blank_image_gives_no_spikes():
    """An all-zero image draws no input spike: every slot holds the padding index P."""
    slots, dropped, busiest = _slots(np.zeros((3, 784), np.uint8), [0, 1, 2], steps=700)
    assert (slots == 784).all()
    assert (dropped == 0).all() and (busiest == 0).all()


def test_events_dropped_counts_spikes_beyond_slots():
    """With ~392 spikes a step (784 pixels at 1000 Hz), dropped is about T * (392 - 48)."""
    steps = 10
    slots, dropped, busiest = _slots(np.full((1, 784), 255, np.uint8), [0], steps=steps, rate=1000)
    assert busiest[0] == codes.SLOTS
    assert (slots < 784).sum() == steps * codes.SLOTS
    expected = steps * (784 * 1000 * DT / 1000 - codes.SLOTS)
    assert dropped[0] > 0.8 * expected


def test_events_are_ordered_by_digit_step_and_slot():
    """The flat event list: segments non-decreasing, slots 0, 1, ... within each segment."""
    images = tf.constant(np.full((3, 20), 200, np.uint8))
    keys = codes.presentation_keys(0, "train", tf.range(3), 0)
    ev = poisson.events(poisson.Params(RATE, 0.0), images, keys, steps=50, dt_ms=DT)
    seg, slot = ev.segment.numpy(), ev.slot.numpy()
    assert len(seg) > 0 and (np.diff(seg) >= 0).all()
    for s in np.unique(seg):
        np.testing.assert_array_equal(slot[seg == s], np.arange((seg == s).sum()))
    assert seg.max() < 3 * 50


# --- poisson.target_rate_hz: input drive that adapts to the data ------------------------------
def _target_slots(images, indices, target, *, level=0, steps=700, rate=RATE, step_hz=31.875):
    images = tf.constant(np.asarray(images, np.uint8))
    keys = codes.presentation_keys(0, "train", tf.constant(indices, tf.int32), level)
    p = poisson.Params(rate, step_hz, target)
    ev = poisson.events(p, images, keys, level=level, steps=steps, dt_ms=DT)
    return codes.slots(ev, images.shape[0], steps, images.shape[1]).numpy()


def test_target_rates_sum_to_the_target_times_the_retry_factor():
    """p_i / sum(p) * target * (1 + level * step / rate_max); a black image gets no rate."""
    img = tf.constant([[255, 51, 0], [0, 0, 0]], tf.uint8)
    got = poisson.target_rates(img, 1000.0, 63.75).numpy()
    np.testing.assert_allclose(
        got, [[1000 * 255 / 306, 1000 * 51 / 306, 0.0], [0, 0, 0]], rtol=1e-6
    )
    # level 2 at step 31.875 Hz doubles the rates, as it doubles the peak rate without a target
    got2 = poisson.target_rates(img, 1000.0, 63.75, 2, 31.875).numpy()
    np.testing.assert_allclose(got2[0].sum(), 2000.0, rtol=1e-6)


def test_target_rate_key_validated_and_described():
    """0 (off) by default; negative or above 50 kHz refused in one line naming the key."""
    assert ExperimentConfig().poisson.target_rate_hz == 0.0
    assert poisson.Params(63.75, 31.875) == poisson.Params(63.75, 31.875, 0.0)
    config = ExperimentConfig().with_overrides(["poisson.target_rate_hz=6550"])
    p = poisson.params(config)
    assert p.target_rate_hz == 6550.0
    assert poisson.describe(p) == "Poisson rate code, 6550 Hz per image"
    for bad, why in (("-1", "must be >= 0"), ("60000", "must be <= 50000")):
        with pytest.raises(PipelineError, match=rf"^poisson.target_rate_hz = .*: {why}$"):
            ExperimentConfig().with_overrides([f"poisson.target_rate_hz={bad}"])


def test_target_rate_equal_to_the_image_total_reproduces_the_intensity_code(mnist_dir):
    """A target equal to a digit's own total rate (sum(p) / 255 * 63.75) gives the same rates as
    the option off, so the same spikes (bar float rounding at a rare CDF boundary)."""
    ds = data.load_split("mnist", "train", mnist_dir)
    image = ds.images[7].reshape(1, -1)
    own = float(image.sum(dtype=np.float64)) / 255.0 * RATE
    off = _slots(image, [7], steps=700)[0]
    on = _target_slots(image, [7], own, step_hz=0.0)
    assert (on == off).mean() > 0.999
    assert abs(int((on < 784).sum()) - int((off < 784).sum())) <= 2


def test_target_rate_equalises_the_drive_of_bright_and_dim_images(mnist_dir):
    """200 MNIST digits and the same digits brightened (x3, clipped: 1.28 times the intensity):
    with the option off the bright ones draw ~28 % more input spikes; with a 6,550 Hz target both
    draw 6550 * 0.35 = 2,292 per presentation, each digit within 5 Poisson sd."""
    ds = data.load_split("mnist", "train", mnist_dir)
    dim = ds.images[:200].reshape(200, -1)
    bright = np.clip(dim.astype(np.int32) * 3, 0, 255).astype(np.uint8)
    idx = np.arange(200)
    n_off = [(_slots(x, idx)[0] < 784).sum(axis=(1, 2)) for x in (dim, bright)]
    ratio = n_off[1].sum() / n_off[0].sum()
    assert 1.2 < ratio < 1.35
    want = poisson.MNIST_MEAN_RATE_HZ * 0.35
    for x in (dim, bright):
        got = (_target_slots(x, idx, poisson.MNIST_MEAN_RATE_HZ) < 784).sum(axis=(1, 2))
        assert abs(got.mean() / want - 1.0) < 0.01
        assert np.all(np.abs(got - want) < 5 * np.sqrt(want))


def test_target_rate_retry_level_scales_the_total_and_black_stays_silent():
    """Level 2 (step 31.875 Hz at 63.75 Hz) doubles the total drive; an all-black image draws no
    spike (no division by zero)."""
    n = 400
    images = np.zeros((n, 784), np.uint8)
    images[:, 300:310] = 200
    s0 = _target_slots(images, np.arange(n), 1000.0, level=0, steps=200)
    s2 = _target_slots(images, np.arange(n), 1000.0, level=2, steps=200)
    np.testing.assert_allclose((s0 < 784).sum() / n, 1000 * 0.1, rtol=0.02)
    np.testing.assert_allclose((s2 < 784).sum() / n, 2000 * 0.1, rtol=0.02)
    black = _target_slots(np.zeros((2, 784), np.uint8), [0, 1], 6550.0, steps=100)
    assert (black == 784).all()
