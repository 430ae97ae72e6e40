"""Fixed wiring between the excitatory and inhibitory layers, named after its structure.

* :func:`one_to_one`: excitatory neuron ``j`` drives only inhibitory neuron ``j``
  (``strength * I``, an ``[N, N]`` diagonal matrix).
* :func:`hollow`: inhibitory neuron ``j`` inhibits every excitatory neuron but ``j``
  (``strength * (1 - I)``: ones with a zero diagonal).

The simulation never multiplies by these ``N x N`` matrices: :func:`one_to_one_apply` and
:func:`hollow_apply` give the same products in ``O(N)``; the tests check them against the matrices.
"""

from __future__ import annotations

from stdp_pipeline._tf import tf


def one_to_one(n: int, strength: float) -> tf.Tensor:
    """``[n, n]`` float32 matrix ``strength * I``."""
    return strength * tf.eye(n)


def hollow(n: int, strength: float) -> tf.Tensor:
    """``[n, n]`` float32 ``strength * (ones - I)``: zero diagonal, ``strength`` elsewhere."""
    return strength * (tf.ones([n, n]) - tf.eye(n))


def one_to_one_apply(spikes: tf.Tensor, strength: float) -> tf.Tensor:
    """``spikes @ one_to_one(n, strength)`` for spikes ``[..., n]``."""
    return strength * spikes


def hollow_apply(spikes: tf.Tensor, strength: float) -> tf.Tensor:
    """``spikes @ hollow(n, strength)`` for spikes ``[..., n]``: ``strength * (sum(s) - s)``."""
    return strength * (tf.reduce_sum(spikes, axis=-1, keepdims=True) - spikes)
