"""The linear read-out (:mod:`stdp_pipeline.stages.readout`) and the raw-pixel baseline."""

from __future__ import annotations

import numpy as np

from stdp_pipeline.io import data
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
