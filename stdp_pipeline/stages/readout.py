"""Linear read-out: multinomial logistic regression on spike counts (a supervised probe of what
the unsupervised network encodes, reported beside the voting accuracies).

Features are ``x = log(1 + counts)`` (or the values themselves, ``log=False``: the raw-pixel
baseline), standardised with the mean and standard deviation of the fitting set. The model
``p(c | x) = softmax(x W + b)_c`` is fitted on the assignment slice only (never on test digits)
by full-batch gradient descent (Adam) on the mean cross-entropy plus ``l2 * |W|^2 / 2``.
Deterministic: zero initialisation, no sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stdp_pipeline._tf import tf
from stdp_pipeline.labels import N_CLASSES

#: Part of the cache key of :func:`pixel_baseline`: change it when the fit changes (settings,
#: features, optimiser), so that no value fitted the old way is reused.
_BASELINE_VERSION = "logistic-l2=1e-3-steps=500-lr=0.05-adam-standardised-v1"


def _features(values: np.ndarray, log: bool) -> np.ndarray:
    """The read-out's features before standardising: ``log(1 + values)``, or the values."""
    x = np.asarray(values, np.float64)
    return np.log1p(x) if log else x


@dataclass(frozen=True)
class LinearReadout:
    """Fitted read-out: ``weights`` ``[N, C]``, ``bias`` ``[C]``, feature ``mean``/``scale``
    ``[N]``; ``log``: features are ``log(1 + values)``."""

    weights: np.ndarray
    bias: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    log: bool = True

    def scores(self, counts: np.ndarray) -> np.ndarray:
        """Class scores (logits) ``[M, C]`` of spike counts (or pixels) ``[M, N]``."""
        x = (_features(counts, self.log) - self.mean) / self.scale
        return x @ self.weights + self.bias

    def predict(self, counts: np.ndarray) -> np.ndarray:
        """Predicted classes ``[M]``."""
        return self.scores(counts).argmax(axis=1)


def fit_readout(
    counts: np.ndarray,
    labels: np.ndarray,
    *,
    l2: float = 1e-3,
    steps: int = 500,
    learning_rate: float = 0.05,
    log: bool = True,
) -> LinearReadout:
    """Fit the read-out on spike counts ``[M, N]`` and labels ``[M]`` (see module docstring);
    ``log=False`` fits on the values themselves (pixels)."""
    x = _features(counts, log)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    xs = tf.constant((x - mean) / scale, tf.float32)
    y = tf.constant(np.asarray(labels, np.int64))
    params = [tf.Variable(tf.zeros([x.shape[1], N_CLASSES])), tf.Variable(tf.zeros([N_CLASSES]))]
    moments = [(tf.Variable(tf.zeros_like(v)), tf.Variable(tf.zeros_like(v))) for v in params]
    beta1, beta2, eps = 0.9, 0.999, 1e-8

    @tf.function
    def train(n_steps: tf.Tensor) -> tf.Tensor:
        loss = tf.constant(0.0)
        for i in tf.range(1, n_steps + 1):
            with tf.GradientTape() as tape:
                w, b = params
                logits = xs @ w + b
                loss = tf.reduce_mean(
                    tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
                ) + 0.5 * l2 * tf.reduce_sum(w * w)
            t = tf.cast(i, tf.float32)
            for v, g, (m, s) in zip(params, tape.gradient(loss, params), moments, strict=True):
                m.assign(beta1 * m + (1 - beta1) * g)  # Adam
                s.assign(beta2 * s + (1 - beta2) * g * g)
                m_hat = m / (1 - beta1**t)
                s_hat = s / (1 - beta2**t)
                v.assign_sub(learning_rate * m_hat / (tf.sqrt(s_hat) + eps))
        return loss

    train(tf.constant(steps))
    w, b = (v.numpy().astype(np.float64) for v in params)
    return LinearReadout(w, b, mean, scale, log)


def pixel_baseline(
    train_images: np.ndarray,
    train_labels: np.ndarray,
    test_images: np.ndarray,
    test_labels: np.ndarray,
    *,
    cache: bool = True,
) -> float:
    """Test accuracy of the same logistic regression on the raw pixels (``[M, 784]`` uint8),
    fitted on the given training digits: what a read-out of the network's spike counts has to
    beat to show that the network's features add anything (MNIST, 60,000 digits: 92.7 %).

    The value depends on the digits alone, so it is kept in the on-disk cache
    (:mod:`stdp_pipeline.io.cache`, keyed on the four arrays, the read-out's settings and the
    TensorFlow version): runs and seeds on the same digits fit it once. ``cache=False`` fits."""
    from stdp_pipeline.io.cache import cached

    def fit() -> float:
        flat = np.asarray(train_images).reshape(len(train_images), -1)
        readout = fit_readout(flat, train_labels, log=False)
        test = np.asarray(test_images).reshape(len(test_images), -1)
        return float((readout.predict(test) == np.asarray(test_labels)).mean())

    if not cache:
        return fit()
    parts = [np.asarray(a) for a in (train_images, train_labels, test_images, test_labels)] + [
        _BASELINE_VERSION,
        tf.__version__,
    ]
    return float(cached("pixel-baseline", parts, fit)[0])
