"""Input encoding: the counter-based generator, the Poisson rate code and its batch independence."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from stdp_pipeline import data, encoding

M32 = 0xFFFFFFFF
RATE, DT = 63.75, 0.5


def lowbias32(x: int) -> int:
    """Pure-Python reference of Chris Wellons' lowbias32 hash, on the low 32 bits of ``x``."""
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def _slots(images, indices, *, steps=700, seed=0, stage="train", level=0, rate=RATE, step_hz=0.0):
    images = tf.constant(np.asarray(images, np.uint8))
    keys = encoding.presentation_keys(seed, stage, tf.constant(indices, tf.int32), level)
    slots, dropped, busiest = encoding.batch_slots(
        images,
        keys,
        rate_max_hz=rate,
        dt_ms=DT,
        steps=steps,
        level=level,
        retry_rate_step_hz=step_hz,
    )
    return slots.numpy(), dropped.numpy(), busiest.numpy()


def test_hash32_matches_lowbias32_reference():
    """hash32 equals a pure-Python lowbias32 on edge values and on random 32-bit integers."""
    rng = np.random.default_rng(0)
    xs = [0, 1, 2, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, M32, 123456789]
    xs += [int(v) for v in rng.integers(0, 2**32, size=500, dtype=np.int64)]
    got = encoding.hash32(tf.constant(xs, tf.int64)).numpy()
    np.testing.assert_array_equal(got, [lowbias32(x) for x in xs])
    assert (got >= 0).all() and (got <= M32).all()


def test_hash32_uses_the_low_32_bits():
    """Inputs at or above 2**32 hash as their low 32 bits (the documented domain is masked)."""
    xs = [2**32, 2**32 + 5, 3 * 2**32 + 0x9E3779B9]
    got = encoding.hash32(tf.constant(xs, tf.int64)).numpy()
    np.testing.assert_array_equal(got, [lowbias32(x) for x in xs])


def test_uniforms_range_and_moments():
    """1e5 uniforms lie in [0, 1), with mean 1/2, variance 1/12, flat deciles, no lag-1 link."""
    keys = encoding.presentation_keys(0, "train", tf.range(10), 0)
    u = encoding.uniforms(keys, 2, tf.range(10_000)).numpy()
    assert u.shape == (10, 10_000)
    assert u.dtype == np.float32
    assert u.min() >= 0.0 and u.max() < 1.0
    assert abs(u.mean() - 0.5) < 0.005
    assert abs(u.var() - 1.0 / 12.0) < 0.002
    hist = np.histogram(u, bins=10, range=(0.0, 1.0))[0]
    assert np.all(np.abs(hist - 10_000) < 500)
    flat = u.ravel()
    assert abs(np.corrcoef(flat[:-1], flat[1:])[0, 1]) < 0.02
    # different streams and different keys give different numbers
    other = encoding.uniforms(keys, 1, tf.range(10_000)).numpy()
    assert np.mean(other == u) < 0.01
    assert np.mean(u[0] == u[1]) < 0.01


def test_uniforms_value_depends_only_on_its_key_stream_and_counter():
    """The number at (key, stream, counter) is the same whatever else is requested with it."""
    keys = encoding.presentation_keys(3, "evaluate", tf.constant([5, 9, 11]), 1)
    counters = tf.reshape(tf.range(10), [2, 5]) * 7
    full = encoding.uniforms(keys, 2, counters).numpy()
    assert full.shape == (3, 2, 5)
    one = encoding.uniforms(keys[1:2], 2, tf.constant([[21]])).numpy()
    assert one.shape == (1, 1, 1)
    assert one[0, 0, 0] == full[1, 0, 3]
    row = encoding.uniforms(keys[2:], 2, tf.constant([35, 63])).numpy()
    np.testing.assert_array_equal(row[0], full[2, 1, [0, 4]])


def test_presentation_keys_differ_by_stage_index_level_and_seed():
    """Changing any of seed, stage, index or retry level changes the key."""
    idx = tf.range(50)
    base = encoding.presentation_keys(0, "train", idx, 0).numpy()
    assert len(set(base.tolist())) == 50
    variants = [
        encoding.presentation_keys(1, "train", idx, 0),
        encoding.presentation_keys(0, "assign", idx, 0),
        encoding.presentation_keys(0, "evaluate", idx, 0),
        encoding.presentation_keys(0, "train", idx + 50, 0),
        encoding.presentation_keys(0, "train", idx, 1),
        encoding.presentation_keys(0, "train", idx, 8),
    ]
    keys = [base] + [v.numpy() for v in variants]
    every = np.concatenate(keys)
    assert len(set(every.tolist())) == len(every)
    # deterministic: the same arguments give the same keys
    np.testing.assert_array_equal(encoding.presentation_keys(0, "train", idx, 0).numpy(), base)
    with pytest.raises(ValueError, match="stage"):
        encoding.presentation_keys(0, "training", idx, 0)


def test_presentation_keys_distinct_for_all_valid_seeds():
    """Seeds that differ by 2**28 (valid config seeds) must not share their input spikes."""
    idx = tf.range(4)
    a = encoding.presentation_keys(1, "train", idx, 0).numpy()
    b = encoding.presentation_keys(1 + 2**28, "train", idx, 0).numpy()
    assert not np.array_equal(a, b)


def test_intensity_rates():
    """p / 255 * (rate_max_hz + level * retry_rate_step_hz)."""
    img = tf.constant([[255, 51, 0]], tf.uint8)
    np.testing.assert_allclose(
        encoding.intensity_rates(img, 63.75).numpy(), [[63.75, 12.75, 0.0]], rtol=1e-6
    )
    np.testing.assert_allclose(
        encoding.intensity_rates(img, 63.75, 2, 31.875).numpy(), [[127.5, 25.5, 0.0]], rtol=1e-6
    )


def test_poisson_counts_inverse_cdf():
    """Counts are the inverse Poisson CDF of the uniforms; their mean over a grid is lambda."""
    lam = np.array([0.5, 3.3, 10.0])
    u = (np.arange(20_000) + 0.5) / 20_000
    got = encoding.poisson_counts(
        tf.constant(lam, tf.float32), tf.constant(np.tile(u, (3, 1)), tf.float32)
    ).numpy()
    from math import exp, lgamma, log

    for row, la in zip(got, lam, strict=True):
        pmf = np.array([exp(k * log(la) - la - lgamma(k + 1)) for k in range(encoding.SLOTS + 1)])
        cdf = np.cumsum(pmf)
        want = np.searchsorted(cdf, u, side="right")
        near = np.min(np.abs(u[:, None] - cdf[None, :]), axis=1) < 1e-5
        np.testing.assert_array_equal(row[~near], want[~near])
        assert abs(row.mean() - la) < 0.01 * la + 0.01


def test_batch_slots_digit_independent_of_batch(mnist_dir):
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


def test_batch_slots_mean_spikes_match_the_rate_code(mnist_dir):
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


def test_batch_slots_pixel_frequency_proportional_to_intensity():
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


def test_batch_slots_retry_level_raises_the_rate():
    """At retry level 2 with step 31.875 Hz the peak rate doubles (63.75 -> 127.5 Hz)."""
    n = 1000
    images = np.full((n, 1), 255, np.uint8)
    s0, _, _ = _slots(images, np.arange(n), steps=700, level=0, step_hz=31.875)
    s2, _, _ = _slots(images, np.arange(n), steps=700, level=2, step_hz=31.875)
    np.testing.assert_allclose((s0 == 0).sum() / n, 63.75 * 0.35, rtol=0.02)
    np.testing.assert_allclose((s2 == 0).sum() / n, 127.5 * 0.35, rtol=0.02)


def test_batch_slots_blank_image_gives_no_spikes():
    """An all-zero image draws no input spike: every slot holds the padding index P."""
    slots, dropped, busiest = _slots(np.zeros((3, 784), np.uint8), [0, 1, 2], steps=700)
    assert (slots == 784).all()
    assert (dropped == 0).all() and (busiest == 0).all()


def test_batch_slots_dropped_counts_spikes_beyond_slots():
    """With ~392 spikes a step (784 pixels at 1000 Hz), dropped is about T * (392 - 48)."""
    steps = 10
    slots, dropped, busiest = _slots(np.full((1, 784), 255, np.uint8), [0], steps=steps, rate=1000)
    assert busiest[0] == encoding.SLOTS
    assert (slots < 784).sum() == steps * encoding.SLOTS
    expected = steps * (784 * 1000 * DT / 1000 - encoding.SLOTS)
    assert dropped[0] > 0.8 * expected


def test_raster():
    """raster turns slots [T, K] into a boolean [T, P], ignoring the padding index P."""
    slots = np.array([[0, 2, 3], [3, 3, 3], [1, 1, 3], [2, 0, 1]], np.int32)
    want = np.array(
        [[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1]],
        bool,
    )
    got = encoding.raster(slots, 3)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, want)


def test_presentation_keys_differ_by_epoch():
    """Each pass over the data (epoch) draws fresh keys; epoch 0 is the default."""
    idx = tf.range(20)
    k0 = encoding.presentation_keys(0, "train", idx, 0).numpy()
    np.testing.assert_array_equal(encoding.presentation_keys(0, "train", idx, 0, 0).numpy(), k0)
    k1 = encoding.presentation_keys(0, "train", idx, 0, 1).numpy()
    k2 = encoding.presentation_keys(0, "train", idx, 0, 2).numpy()
    assert len(set(np.concatenate([k0, k1, k2]).tolist())) == 60
