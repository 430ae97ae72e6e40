"""What every input code shares (:mod:`stdp_pipeline.sim.codes.base`): the counter-based
generator, presentation keys, the event list and its per-step layout."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from stdp_pipeline.sim import codes
from stdp_pipeline.sim.codes import base

M32 = 0xFFFFFFFF


def lowbias32(x: int) -> int:
    """Pure-Python reference of Chris Wellons' lowbias32 hash, on the low 32 bits of ``x``."""
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    x ^= x >> 16
    return x


def test_hash32_matches_lowbias32_reference():
    """hash32 equals a pure-Python lowbias32 on edge values and on random 32-bit integers."""
    rng = np.random.default_rng(0)
    xs = [0, 1, 2, 0xFFFF, 0x10000, 0x7FFFFFFF, 0x80000000, M32, 123456789]
    xs += [int(v) for v in rng.integers(0, 2**32, size=500, dtype=np.int64)]
    got = base.hash32(tf.constant(xs, tf.int64)).numpy()
    np.testing.assert_array_equal(got, [lowbias32(x) for x in xs])
    assert (got >= 0).all() and (got <= M32).all()


def test_hash32_uses_the_low_32_bits():
    """Inputs at or above 2**32 hash as their low 32 bits (the documented domain is masked)."""
    xs = [2**32, 2**32 + 5, 3 * 2**32 + 0x9E3779B9]
    got = base.hash32(tf.constant(xs, tf.int64)).numpy()
    np.testing.assert_array_equal(got, [lowbias32(x) for x in xs])


def test_uniforms_range_and_moments():
    """1e5 uniforms lie in [0, 1), with mean 1/2, variance 1/12, flat deciles, no lag-1 link."""
    keys = base.presentation_keys(0, "train", tf.range(10), 0)
    u = base.uniforms(keys, 2, tf.range(10_000)).numpy()
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
    other = base.uniforms(keys, 1, tf.range(10_000)).numpy()
    assert np.mean(other == u) < 0.01
    assert np.mean(u[0] == u[1]) < 0.01


def test_uniforms_value_depends_only_on_its_key_stream_and_counter():
    """The number at (key, stream, counter) is the same whatever else is requested with it."""
    keys = base.presentation_keys(3, "evaluate", tf.constant([5, 9, 11]), 1)
    counters = tf.reshape(tf.range(10), [2, 5]) * 7
    full = base.uniforms(keys, 2, counters).numpy()
    assert full.shape == (3, 2, 5)
    one = base.uniforms(keys[1:2], 2, tf.constant([[21]])).numpy()
    assert one.shape == (1, 1, 1)
    assert one[0, 0, 0] == full[1, 0, 3]
    row = base.uniforms(keys[2:], 2, tf.constant([35, 63])).numpy()
    np.testing.assert_array_equal(row[0], full[2, 1, [0, 4]])


def test_uniform_at_is_the_elementwise_form_of_uniforms():
    """uniform_at(keys[e], s, c[e]) equals uniforms(keys, s, counters)[b, c] for every pair."""
    keys = base.presentation_keys(7, "train", tf.constant([0, 3, 8]), 0)
    full = base.uniforms(keys, 2, tf.range(100)).numpy()
    which = tf.constant([0, 2, 2, 1, 0])
    counters = tf.constant([0, 99, 5, 42, 42])
    got = base.uniform_at(tf.gather(keys, which), 2, counters).numpy()
    np.testing.assert_array_equal(got, full[which.numpy(), counters.numpy()])
    assert not np.array_equal(base.uniform_at(tf.gather(keys, which), 1, counters).numpy(), got)


def test_presentation_keys_differ_by_stage_index_level_and_seed():
    """Changing any of seed, stage, index or retry level changes the key."""
    idx = tf.range(50)
    keys0 = base.presentation_keys(0, "train", idx, 0).numpy()
    assert len(set(keys0.tolist())) == 50
    variants = [
        base.presentation_keys(1, "train", idx, 0),
        base.presentation_keys(0, "assign", idx, 0),
        base.presentation_keys(0, "evaluate", idx, 0),
        base.presentation_keys(0, "train", idx + 50, 0),
        base.presentation_keys(0, "train", idx, 1),
        base.presentation_keys(0, "train", idx, 8),
    ]
    keys = [keys0] + [v.numpy() for v in variants]
    every = np.concatenate(keys)
    assert len(set(every.tolist())) == len(every)
    # deterministic: the same arguments give the same keys
    np.testing.assert_array_equal(base.presentation_keys(0, "train", idx, 0).numpy(), keys0)
    with pytest.raises(ValueError, match="stage"):
        base.presentation_keys(0, "training", idx, 0)


def test_presentation_keys_distinct_for_all_valid_seeds():
    """Seeds that differ by 2**28 (valid config seeds) must not share their input spikes."""
    idx = tf.range(4)
    a = base.presentation_keys(1, "train", idx, 0).numpy()
    b = base.presentation_keys(1 + 2**28, "train", idx, 0).numpy()
    assert not np.array_equal(a, b)


def test_presentation_keys_differ_by_epoch():
    """Each pass over the data (epoch) draws fresh keys; epoch 0 is the default."""
    idx = tf.range(20)
    k0 = base.presentation_keys(0, "train", idx, 0).numpy()
    np.testing.assert_array_equal(base.presentation_keys(0, "train", idx, 0, 0).numpy(), k0)
    k1 = base.presentation_keys(0, "train", idx, 0, 1).numpy()
    k2 = base.presentation_keys(0, "train", idx, 0, 2).numpy()
    assert len(set(np.concatenate([k0, k1, k2]).tolist())) == 60


def test_raster():
    """raster turns slots [T, K] into a boolean [T, P], ignoring the padding index P."""
    slots = np.array([[0, 2, 3], [3, 3, 3], [1, 1, 3], [2, 0, 1]], np.int32)
    want = np.array(
        [[1, 0, 1], [0, 0, 0], [0, 1, 0], [1, 1, 1]],
        bool,
    )
    got = base.raster(slots, 3)
    assert got.dtype == bool
    np.testing.assert_array_equal(got, want)


def test_from_counts_lays_out_segments_slots_and_digits():
    """Counts [B, T] become one event per spike: segment b * T + t, rank in the step, digit."""
    counts = tf.constant([[2, 0, 1], [0, 3, 0]], tf.int32)
    segment, slot, digit = base.from_counts(counts, 3)
    np.testing.assert_array_equal(segment.numpy(), [0, 0, 2, 4, 4, 4])
    np.testing.assert_array_equal(slot.numpy(), [0, 1, 0, 0, 1, 2])
    np.testing.assert_array_equal(digit.numpy(), [0, 0, 0, 1, 1, 1])


def test_slots_places_each_event_at_its_step_and_slot():
    """slots: [B, T, K] with K the busiest step of the batch, the padding index elsewhere."""
    ev = base.Events(
        segment=tf.constant([0, 0, 2, 4, 4, 4]),
        slot=tf.constant([0, 1, 0, 0, 1, 2]),
        source=tf.constant([5, 1, 7, 0, 3, 2]),
        dropped=tf.constant([0, 4]),
        busiest=tf.constant([2, 3]),
    )
    got = base.slots(ev, 2, 3, 9).numpy()
    want = [
        [[5, 1, 9], [9, 9, 9], [7, 9, 9]],
        [[9, 9, 9], [0, 3, 2], [9, 9, 9]],
    ]
    np.testing.assert_array_equal(got, want)
    # no event at all: one empty slot per step
    empty = base.Events(
        *(tf.zeros([0], tf.int32),) * 3, tf.zeros([2], tf.int32), tf.zeros([2], tf.int32)
    )
    np.testing.assert_array_equal(base.slots(empty, 2, 3, 9).numpy(), np.full((2, 3, 1), 9))


def test_package_constants():
    """SLOTS and the stage ids the keys fold in (one distinct id per stage)."""
    assert base.SLOTS == 48
    assert set(base.STAGE_IDS) == {"train", "assign", "evaluate", "encode", "reconstruct"}
    assert len(set(base.STAGE_IDS.values())) == len(base.STAGE_IDS)
    assert codes.base is base
