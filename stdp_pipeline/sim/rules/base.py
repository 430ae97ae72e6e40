"""The shape every learning rule has, and what all rules share.

A rule changes the input -> excitatory weights ``W`` (``[P, N]``: input rows, neuron columns;
``[Gw, P, Ng]`` with patch groups) only at spike events. A rule is a module with:

* ``SECTIONS``: its config sections, ``{name: frozen Section class}``;
* ``Params`` (NamedTuple) and ``params(config) -> Params`` (``learning.w_max`` included);
* ``State`` (NamedTuple of tensors, per-presentation state such as traces) and
  ``init(p, post_shape, n_pixels) -> State``: ``post_shape`` is ``[G, Ng]`` (one trace per
  excitatory neuron of each patch position), ``n_pixels`` the image's inputs (the per-input
  state holds ``n_pixels + 1`` entries, the last for the padding input);
* ``decay(p, state, dt_ms) -> state``: one step of the rule's own dynamics;
* ``on_pre(p, state, rows, pixels, now_ms) -> (state, new_rows or None)``: the inputs
  ``pixels`` ``[K]`` spiked at ``now_ms``; ``rows`` ``[G, K, Ng]`` are their weight rows as seen by
  each patch group; the rule returns the new rows, or None when presynaptic spikes do not
  change weights;
* ``pre_factor(p, state, now_ms) -> [n_pixels + 1]``: per input, the factor a postsynaptic spike
  at ``now_ms`` sees (a pre trace, a recent-spike flag);
* ``on_post(p, state, column, factor, group, neuron) -> column``: the new weight column
  ``[P + 1]`` of ``neuron`` of patch ``group`` that fired, from its old column and the factors of
  its inputs ``[P + 1]`` (0 on the padding row);
* ``after_post(p, state, fired) -> state``: after the postsynaptic updates of a step, ``fired``
  ``[G, Ng]`` 0/1;
* ``carry(p, state, span_ms) -> state``: the state as the next presentation, which starts
  ``span_ms`` after this one started, sees it (times stored in the state move back by
  ``span_ms``); used when the per-sample state is carried from digit to digit
  (``encoding.rest = "simulate"``).

:func:`normalise_columns` (Diehl & Cook's weight normalisation, before each digit) is shared.
"""

from __future__ import annotations

from stdp_pipeline._tf import tf

REQUIRED = (
    "SECTIONS",
    "Params",
    "State",
    "params",
    "init",
    "decay",
    "on_pre",
    "pre_factor",
    "on_post",
    "after_post",
    "carry",
)


def normalise_columns(w: tf.Tensor, weight_sum: float) -> tf.Tensor:
    """Rescale each column of ``w`` ``[P, N]`` to sum to ``weight_sum`` (no-op when 0)."""
    if weight_sum <= 0:
        return w
    total = tf.reduce_sum(w, axis=0, keepdims=True)
    return w * (weight_sum / tf.maximum(total, 1e-12))


def fired_in_order(spikes: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """The neurons that fired, for the postsynaptic updates: ``spikes`` ``[n]`` (0/1) ->
    ``(order, n_fired)``, ``order[:n_fired]`` their indices in ascending order (int32 ``[n]``).

    A prefix sum places each firing neuron (``order[cumsum] = index``): linear in ``n``, where the
    sort it replaces cost ``n log n`` comparator calls at every step with a spike (0.4 ms per
    step at 6,400 neurons)."""
    fired = spikes > 0
    n = tf.size(spikes)
    slot = tf.where(fired, tf.cumsum(tf.cast(fired, tf.int32), exclusive=True), n)  # n: a sink
    order = tf.tensor_scatter_nd_update(tf.zeros([n + 1], tf.int32), slot[:, None], tf.range(n))
    return order[:n], tf.reduce_sum(tf.cast(fired, tf.int32))


def last_spike_times(n_pixels: int) -> tf.Tensor:
    """``[n_pixels + 1]`` last presynaptic spike time of each input, ms: long ago (-1e9)."""
    return tf.fill([n_pixels + 1], tf.constant(-1e9, tf.float32))


def note_spikes(last: tf.Tensor, pixels: tf.Tensor, now_ms: tf.Tensor) -> tf.Tensor:
    """``last[pixels] = now_ms`` (a padding entry, index ``n_pixels``, may be written too)."""
    return tf.tensor_scatter_nd_update(last, pixels[:, None], tf.fill(tf.shape(pixels), now_ms))
