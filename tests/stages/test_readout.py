"""The linear read-out (:mod:`stdp_pipeline.stages.readout`) and the raw-pixel baseline."""

from __future__ import annotations

import numpy as np

from stdp_pipeline.io import cache, data
from stdp_pipeline.stages import readout
from stdp_pipeline.stages.readout import fit_readout, pixel_baseline


def test_readout_without_log_fits_the_values_themselves():
    """log=False: standardised raw values; a feature that is the class separates it."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 400)
    x = rng.normal(size=(400, 10)) + 4.0 * np.eye(10)[labels]
    readout = fit_readout(x, labels, log=False)
    assert not readout.log
    np.testing.assert_allclose(readout.mean, x.mean(axis=0))
    assert (readout.predict(x) == labels).mean() > 0.95
    # the log features of the same values differ (log1p of negatives is nan)
    assert fit_readout(np.abs(x), labels).log


def test_pixel_baseline_on_real_digits(mnist_dir):
    """Logistic regression on the pixels of 2,000 training digits: 84.3 % on 1,000 test
    digits (92.7 % with all 60,000), far above chance."""
    train = data.load_split("mnist", "train", mnist_dir)
    test = data.load_split("mnist", "test", mnist_dir)
    acc = pixel_baseline(
        train.images[:2000], train.labels[:2000], test.images[:1000], test.labels[:1000]
    )
    assert 0.80 < acc < 0.95


def test_pixel_baseline_is_fitted_once_per_set_of_digits(mnist_dir, tmp_path, monkeypatch):
    """The cache returns the fitted value for the same four arrays without fitting; other
    digits (one label changed) are fitted again; a folder that cannot be written only means no
    cache; STDP_CACHE_DIR=off turns it off."""
    train = data.load_split("mnist", "train", mnist_dir)
    test = data.load_split("mnist", "test", mnist_dir)
    args = (train.images[:500], train.labels[:500], test.images[:300], test.labels[:300])
    monkeypatch.setenv("STDP_CACHE_DIR", str(tmp_path / "cache"))
    fitted = pixel_baseline(*args, cache=False)
    assert not (tmp_path / "cache").exists()
    assert pixel_baseline(*args) == fitted  # fitted and stored
    (entry,) = (tmp_path / "cache").glob("pixel-baseline-*.json")

    calls = []
    real_fit = readout.fit_readout

    def counting_fit(*a, **k):
        calls.append(1)
        return real_fit(*a, **k)

    monkeypatch.setattr(readout, "fit_readout", counting_fit)
    assert pixel_baseline(*args) == fitted and calls == []  # from the cache
    other = args[1].copy()
    other[0] = (other[0] + 1) % 10
    pixel_baseline(args[0], other, *args[2:])
    assert calls == [1] and len(list((tmp_path / "cache").glob("*.json"))) == 2

    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("STDP_CACHE_DIR", str(blocked / "cache"))
    assert pixel_baseline(*args) == fitted and calls == [1, 1]
    monkeypatch.setenv("STDP_CACHE_DIR", "off")
    assert cache.cache_dir() is None
    assert pixel_baseline(*args) == fitted and calls == [1, 1, 1]
    entry.write_text("{broken")  # an unreadable entry is fitted again and rewritten
    monkeypatch.setenv("STDP_CACHE_DIR", str(tmp_path / "cache"))
    assert pixel_baseline(*args) == fitted and calls == [1, 1, 1, 1]
    assert entry.read_text().startswith("{\n")


def test_cache_key_covers_dtype_shape_and_values():
    a = np.arange(6, dtype=np.uint8)
    keys = {
        cache.key_of([a]),
        cache.key_of([a.astype(np.int64)]),
        cache.key_of([a.reshape(2, 3)]),
        cache.key_of([a[::-1]]),
        cache.key_of([a, "v2"]),
    }
    assert len(keys) == 5
    assert cache.key_of([a]) == cache.key_of([np.arange(6, dtype=np.uint8)])
