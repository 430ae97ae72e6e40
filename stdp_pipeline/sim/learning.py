"""The learning presentation: one compiled program for one network or a stack of ``B``.

:func:`present` is the body of :meth:`SpikingNetwork.learning_program` (``B = 1``) and of
:meth:`stdp_pipeline.sim.stack.NetworkStack.learning_program`. It normalises the weight columns,
runs ``T`` steps with the event-driven rule, and writes the new weights and thresholds back. The
``B`` networks' state is folded into the patch-group axis that the neuron models and learning
rules broadcast over: network ``b``'s group ``g`` is group ``b * G + g`` (per-neuron state
``[B * G, Ng]``), its weight group ``gw`` is ``b * Gw + gw`` (weights ``[B * Gw, P + 1, Ng]``, the
last row a zero padding row), and its pixel ``i`` is pixel ``b * S + i`` of the rule (per-pixel
state ``[B * S]``, ``S`` = :func:`pixel_span`), so each network keeps its own presynaptic state,
its padding input included. A step gathers, per group, the weight rows of the pixels that spiked
inside its patch. The steps run in an inner loop that stops at the first step on which any
network fires; the outer loop then applies the postsynaptic updates of that step, column by
column, and resumes: steps without a postsynaptic spike (nearly all) carry no conditional.
"""

from __future__ import annotations

from typing import Any

from stdp_pipeline._tf import tf
from stdp_pipeline.sim.rules.base import fired_in_order, normalise_columns


def pixel_span(n_inputs: int) -> int:
    """Entries of the rule's per-pixel state per network: ``n_inputs + 1`` rounded up to a
    multiple of 64, so that every network's pixels sit at the same vector lanes whatever its
    place in a stack."""
    return -(-(n_inputs + 1) // 64) * 64


def present(
    net: Any,
    b: int,
    weights: tf.Variable,
    theta: tf.Variable,
    carried: Any,
    slots: tf.Tensor,
    active: tf.Tensor | None = None,
) -> tf.Tensor:
    """One learning presentation of ``b`` networks alike but for their seeds.

    Args:
      net: one of the networks (a :class:`~stdp_pipeline.sim.network.SpikingNetwork`): its
        config, layout, parts and constants serve all ``b``.
      weights: variable holding the ``b`` networks' weights, ``b * Gw * P * Ng`` values in
        network, weight group, row, column order (``[P, N]`` or ``[Gw, P, Ng]`` when ``b = 1``).
      theta: variable holding their thresholds, ``b * Gw * Ng`` values.
      carried: the per-sample state carried between presentations (``encoding.rest =
        "simulate"``) as variables, ``(layers, rule state)``, each ``[b, ...]`` (``[...]`` when
        ``b = 1``), or None when every presentation starts from rest.
      slots: ``[b, T, K]`` int32 image pixels per step (``n_inputs``: none), each network its own.
      active: ``[b]`` bool, or None (all): an inactive network is shown nothing and its learned
        and carried state are left exactly as they were.

    Returns the excitatory spike counts ``[b, G * Ng]`` of the shown steps.
    """
    cfg, lay = net.config, net.layout
    enc, lc = cfg.encoding, cfg.learning
    dt, shown = enc.dt_ms, enc.steps
    steps = shown + net.rest_steps  # the rest, when simulated, runs with no input
    g, gw_n, p, ng, pix = (
        lay.n_groups,
        lay.weight_groups,
        lay.patch_inputs,
        lay.group_size,
        net.n_inputs,
    )
    bg, span = b * g, pixel_span(pix)
    rule, rp = net.rule, net.rule_params
    rows_p1 = tf.range(p + 1)
    wgroup = net._wgroup
    theta0 = tf.reshape(theta.read_value(), [b, gw_n, ng])
    rest_ms = net.rest_left_ms  # the rest not in ``steps`` (no delays here: it is all or none)
    adapt = net.neuron.adaptation(net.exc_params, dt, steps, rest_ms)
    if net.rest_steps:
        pad = tf.fill([b, net.rest_steps, tf.shape(slots)[2]], pix)
        slots = tf.concat([slots, pad], 1)
    slots_t = tf.transpose(slots, [1, 0, 2])  # [T, b, K]
    net_ids = tf.range(b)
    #: 1 for a network's image pixels, 0 for its padding input and the unused entries
    not_pad = tf.concat([tf.ones([pix]), tf.zeros([span - pix])], axis=0)

    def per_position(x):  # [b, Gw, Ng] -> [b * G, Ng]
        x = tf.gather(x, wgroup, axis=1) if lay.shared else x
        return tf.reshape(x, [bg, ng])

    def per_weight_group(x):  # [b * G, Ng] -> [b, Gw, Ng]
        x = tf.reshape(x, [b, g, ng])
        return tf.reduce_sum(x, axis=1, keepdims=True) if lay.shared else x

    def row_index(idx):
        """Where the weight rows of the step's pixels ``idx`` ``[b, K]`` lie in ``w``
        ``[b * Gw, P + 1, Ng]``: ``[b * G, K, 2]`` (weight group, patch row)."""
        k = tf.shape(idx)[1]
        if not lay.patched:
            return tf.stack([tf.broadcast_to(net_ids[:, None], tf.shape(idx)), idx], -1)
        local = tf.transpose(tf.gather(net._row_of_pixel, idx, axis=1), [1, 0, 2])  # [b, G, K]
        wg = tf.broadcast_to(
            (net_ids[:, None] * gw_n + wgroup[None, :])[:, :, None], tf.shape(local)
        )
        return tf.reshape(tf.stack([wg, local], -1), [bg, k, 2])

    def step(t, w, carry, layers, rstate, count, s_e):
        idx = slots_t[t]  # [b, K] image pixels
        where = row_index(idx)
        rows = tf.gather_nd(w, where)  # [b * G, K, Ng]
        theta_pos = per_position(adapt.at(carry, theta0, t))
        s_e, layers = net._layers_step(layers, tf.reduce_sum(rows, axis=1), theta_pos)
        carry = adapt.spiked(carry, per_weight_group(s_e), t)
        now = tf.cast(t, tf.float32) * dt
        rstate = rule.decay(rp, rstate, dt)
        folded = tf.reshape(idx + net_ids[:, None] * span, [-1])
        rstate, new_rows = rule.on_pre(rp, rstate, rows, folded, now)
        if new_rows is not None:
            w = tf.tensor_scatter_nd_update(
                w, tf.reshape(where, [-1, 2]), tf.reshape(new_rows, [-1, ng])
            )
        # spikes of a simulated rest are not the digit's
        seen = s_e * tf.cast(t < shown, tf.float32) if net.rest_steps else s_e
        return t + 1, w, carry, layers, rstate, count + seen, s_e

    def factors(rstate, now, network):
        """The pre factor of every patch row ``[G, P + 1]`` of ``network``, from its part of the
        rule's per-pixel state (the rank-1 fields)."""
        mine = tf.nest.map_structure(
            lambda x: tf.slice(x, [network * span], [span]) if x.shape.rank == 1 else x, rstate
        )
        factor = (rule.pre_factor(rp, mine, now) * not_pad)[: pix + 1]
        return tf.gather(factor, net._pixel_of_row) if lay.patched else factor[None]

    def potentiate(t, w, rstate, s_e):
        """Postsynaptic updates for the spikes ``s_e`` ``[b * G, Ng]`` of step ``t - 1``. One
        network computes its pre factors once; a stack per neuron that fired, from that
        neuron's network alone, so that a step costs what it costs a network alone however many
        networks are stacked."""
        now = tf.cast(t - 1, tf.float32) * dt
        order, n_fired = fired_in_order(tf.reshape(s_e, [-1]))
        once = factors(rstate, now, 0) if b == 1 else None

        def one(m, w):
            pos, j = order[m] // ng, order[m] % ng
            net_b, gi = pos // g, pos % g
            factor = (once if once is not None else factors(rstate, now, net_b))[gi]
            wg = net_b * gw_n + tf.gather(wgroup, gi)
            where = tf.stack([tf.fill([p + 1], wg), rows_p1, tf.fill([p + 1], j)], axis=-1)
            new = rule.on_post(rp, rstate, tf.gather_nd(w, where), factor, pos, j)
            return m + 1, tf.tensor_scatter_nd_update(w, where, new)

        w = tf.while_loop(lambda m, w: m < n_fired, one, (tf.constant(0), w))[1]
        return w, rule.after_post(rp, rstate, s_e)

    def segment(t, w, carry, layers, rstate, count, s_e):
        w, rstate = potentiate(t, w, rstate, s_e)
        first = step(t, w, carry, layers, rstate, count, tf.zeros([bg, ng]))  # always one step
        return tf.while_loop(  # then on until a spike
            lambda t, *rest: tf.logical_and(t < steps, tf.reduce_all(rest[-1] == 0)),
            step,
            first,
        )

    w0 = weights.read_value()
    w = tf.reshape(w0, [b * gw_n, p, ng])
    w = tf.transpose(normalise_columns(tf.transpose(w, [1, 0, 2]), lc.weight_sum), [1, 0, 2])
    w = tf.concat([w, tf.zeros([b * gw_n, 1, ng])], axis=1)  # zero padding row
    zeros = tf.zeros([bg, ng])
    shape = [g, ng]
    template = (net._init_layers(shape), rule.init(rp, shape, span - 1))
    if carried is None:
        layers0 = net._init_layers([bg, ng])
        rstate0 = rule.init(rp, [bg, ng], b * span - 1)
    else:
        layers0, rstate0 = _fold(carried, template, b, pix + 1)
    init = (tf.constant(0), w, adapt.start(theta0), layers0, rstate0, zeros, zeros)
    t, w, carry, layers, rstate, count, s_e = tf.while_loop(lambda t, *_: t < steps, segment, init)
    w, rstate = potentiate(t, w, rstate, s_e)  # spikes of the last step
    w = w[:, :-1]
    theta_end = adapt.end(carry, theta0)  # the end of the presentation, then the rest
    if active is not None:
        w = tf.where(active[:, None, None], tf.reshape(w, [b, -1, ng]), tf.reshape(w0, [b, -1, ng]))
        theta_end = tf.where(active[:, None, None], theta_end, theta0)
    weights.assign(tf.reshape(w, tf.shape(weights)))
    theta.assign(tf.reshape(theta_end, tf.shape(theta)))
    if carried is not None:
        after = (layers, rule.carry(rp, rstate, steps * dt))
        _unfold(carried, after, template, b, pix + 1, active)
    return tf.reshape(count, [b, g * ng])


def _fold(carried: Any, template: Any, b: int, known: int) -> Any:
    """The carried variables (each ``[b, ...]``, or without the leading axis when ``b = 1``) as
    the program's folded state: per neuron ``[b * G, Ng]``, per pixel ``[b * S]`` (each network's
    ``known`` entries, then the template's values for the unused ones)."""

    def fold(v, tmpl):
        if tmpl.shape.rank == 1:  # per pixel
            x = tf.reshape(v.read_value(), [b, known])
            tail = tf.broadcast_to(tmpl[known:][None], [b, tmpl.shape[0] - known])
            return tf.reshape(tf.concat([x, tail], axis=1), [-1])
        return tf.reshape(v.read_value(), [b * tmpl.shape[0], *tmpl.shape[1:]])

    return tf.nest.map_structure(fold, carried, template)


def _unfold(carried: Any, state: Any, template: Any, b: int, known: int, active: Any) -> None:
    """Write the folded per-sample state back into the carried variables (only the active
    networks' parts when ``active`` is given)."""

    def unfold(v, x, tmpl):
        x = tf.reshape(x, [b, *tmpl.shape])
        if tmpl.shape.rank == 1:
            x = x[:, :known]
        if active is not None:
            on = tf.reshape(active, [b] + [1] * (x.shape.rank - 1))
            x = tf.where(on, x, tf.reshape(v.read_value(), tf.shape(x)))
        v.assign(tf.reshape(x, tf.shape(v)))

    tf.nest.map_structure(unfold, carried, state, template)
