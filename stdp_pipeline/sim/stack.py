"""Several networks that learn at once: one compiled program steps ``B`` independent networks.

A learning presentation costs a network of 100 or 400 neurons mostly the fixed cost of its 700
compiled steps, not arithmetic (README, "Speed"). :class:`NetworkStack` runs ``B`` networks whose
configs differ only in their seed as one program: every state tensor gains a leading axis of
``B`` networks, folded into the patch-group axis the neuron models and learning rules already
broadcast over (``[B * G, Ng]``), so the parts of :mod:`stdp_pipeline.sim.registry` serve unchanged.
Each network keeps its own input spikes (its seed's), its own learned state and per-sample state,
and its own retries: a call shows every network its own next presentation (a retry or its next
digit), so networks never wait on each other's retries except at the end of a chunk, where a
network that has finished is shown nothing and its state is left as it was.

Per network the arithmetic is that of :meth:`SpikingNetwork.learning_program`; the steps of one
call run until the first step on which any network fires, then the postsynaptic updates of every
network that fired are applied. Results match the networks trained one by one bit for bit where
XLA keeps the order of each float sum, and to float32 rounding otherwise (tested).

Not stacked: input delays (``network.input_delay_max_ms``), whose program is built differently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from stdp_pipeline._tf import tf
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.config import diff
from stdp_pipeline.sim.network import SLOT_WIDTHS, SpikingNetwork
from stdp_pipeline.sim.present import ChunkInputs, TrainStats, chunk_inputs
from stdp_pipeline.sim.rules.base import fired_in_order, normalise_columns


def check_stackable(nets: Sequence[SpikingNetwork]) -> None:
    """Raise a one-line :class:`PipelineError` unless ``nets`` can learn as one stack: at least
    one network, configs equal but for ``seed`` (and ``name``), the same inputs, no input
    delays."""
    if not nets:
        raise PipelineError("a stack of networks needs at least one network")
    first = nets[0]
    base = first.config.replace(seed=0, name="stack").to_dict()
    for net in nets[1:]:
        changed = diff(base, net.config.replace(seed=0, name="stack").to_dict())
        if net.n_inputs != first.n_inputs:
            changed.append(f"inputs: {first.n_inputs} -> {net.n_inputs}")
        if changed:
            raise PipelineError(
                f"the networks of seeds {first.config.seed} and {net.config.seed} differ in more "
                f"than the seed ({changed[0]}): only such networks learn as one stack; train "
                "them one by one"
            )
    if first.delay_h:
        raise PipelineError(
            f"network.input_delay_max_ms = {first.config.network.input_delay_max_ms}: networks "
            "with input delays do not learn as one stack; train them one by one"
        )


class NetworkStack(tf.Module):
    """``B`` networks (configs equal but for the seed) learning as one compiled program.

    The stack holds the learned state of all of them while they learn (``weights``
    ``[B, Gw, P, Ng]``, ``theta`` ``[B, Gw, Ng]``) and the carried per-sample state when the rest
    is simulated; :meth:`store` writes each network's part back into its
    :class:`SpikingNetwork`, :meth:`load` reads it from there.
    """

    def __init__(self, nets: Sequence[SpikingNetwork]) -> None:
        super().__init__(name="network_stack")
        check_stackable(nets)
        self.nets = list(nets)
        self.b = len(self.nets)
        net = self.nets[0]
        lay = net.layout
        self._w_shape = [self.b, lay.weight_groups, lay.patch_inputs, lay.group_size]
        self._theta_shape = [self.b, lay.weight_groups, lay.group_size]
        self.weights = tf.Variable(tf.zeros(self._w_shape), trainable=False, name="weights")
        self.theta = tf.Variable(tf.zeros(self._theta_shape), trainable=False, name="theta")
        self.carried = None
        if net.carried is not None:
            self.carried = tf.nest.map_structure(
                lambda *vs: tf.Variable(tf.stack([v.read_value() for v in vs]), trainable=False),
                *[n.carried for n in self.nets],
            )
        #: Entries of the rule's per-pixel state per network: its ``n_inputs + 1`` rounded up to
        #: a multiple of 64, so that every network's pixels sit at the same vector lanes as in a
        #: network alone (XLA's vectorised and scalar exp differ in the last bit).
        self.pixel_span = -(-(net.n_inputs + 1) // 64) * 64
        self._programs: dict[int, tf.types.experimental.ConcreteFunction] = {}
        self.load()

    # ------------------------------------------------------------------------------------------
    def load(self) -> None:
        """Read every network's learned (and carried) state into the stack."""
        self.weights.assign(tf.stack([tf.reshape(n.weights, self._w_shape[1:]) for n in self.nets]))
        self.theta.assign(tf.stack([tf.reshape(n.theta, self._theta_shape[1:]) for n in self.nets]))
        if self.carried is not None:
            for i, net in enumerate(self.nets):
                tf.nest.map_structure(lambda s, v, i=i: s[i].assign(v), self.carried, net.carried)

    def store(self) -> None:
        """Write each network's learned (and carried) state back into its network."""
        w, theta = self.weights.numpy(), self.theta.numpy()
        for i, net in enumerate(self.nets):
            net.set_state(
                {
                    "weights": w[i].reshape(net.weights.shape),
                    "theta": theta[i].reshape(net.theta.shape),
                }
            )
            if self.carried is not None:
                tf.nest.map_structure(lambda v, s, i=i: v.assign(s[i]), net.carried, self.carried)

    # ------------------------------------------------------------------------------------------
    def learning_program(self, width: int) -> tf.types.experimental.ConcreteFunction:
        """The compiled presentation of every network at once: slots ``[B, T, width]`` int32
        (image pixels, ``n_inputs`` = none; each network its own) and ``active`` ``[B]`` bool
        (an inactive network is shown nothing and keeps its state). Updates ``weights`` and
        ``theta`` of the active networks; returns the excitatory spike counts ``[B, G * Ng]``."""
        if width not in self._programs:
            fn = tf.function(self._present_learning, jit_compile=True)
            steps = self.nets[0].config.encoding.steps
            self._programs[width] = fn.get_concrete_function(
                tf.TensorSpec([self.b, steps, width], tf.int32), tf.TensorSpec([self.b], tf.bool)
            )
        return self._programs[width]

    def _present_learning(self, slots: tf.Tensor, active: tf.Tensor) -> tf.Tensor:
        """:meth:`SpikingNetwork._present_learning` for ``B`` networks, folded as ``B * G``
        groups: network ``b``'s group ``g`` is group ``b * G + g``, its weight group ``gw`` is
        ``b * Gw + gw``, and its pixel ``i`` is pixel ``b * (n_inputs + 1) + i`` of the rule (so
        each network keeps its own presynaptic state, its padding input included)."""
        net = self.nets[0]
        cfg, lay = net.config, net.layout
        enc, lc = cfg.encoding, cfg.learning
        dt, shown = enc.dt_ms, enc.steps
        steps = shown + net.rest_steps
        nb, g, gw_n = self.b, lay.n_groups, lay.weight_groups
        p, ng, pix = lay.patch_inputs, lay.group_size, net.n_inputs
        bg = nb * g
        rule, rp = net.rule, net.rule_params
        rows_p1 = tf.range(p + 1)
        wgroup = net._wgroup
        theta0 = self.theta.read_value()  # [B, Gw, Ng]
        rest_ms = 0.0 if net.rest_steps else enc.rest_ms
        adapt = net.neuron.adaptation(net.exc_params, dt, steps, rest_ms)
        if net.rest_steps:
            pad = tf.fill([nb, net.rest_steps, tf.shape(slots)[2]], pix)
            slots = tf.concat([slots, pad], 1)
        slots_t = tf.transpose(slots, [1, 0, 2])  # [T, B, K]
        net_ids = tf.range(nb)
        span = self.pixel_span
        #: 1 for a network's image pixels, 0 for its padding input and the unused entries
        not_pad = tf.concat([tf.ones([pix]), tf.zeros([span - pix])], axis=0)

        def per_position(x):  # [B, Gw, Ng] -> [B * G, Ng]
            x = tf.gather(x, wgroup, axis=1) if lay.shared else x
            return tf.reshape(x, [bg, ng])

        def per_weight_group(x):  # [B * G, Ng] -> [B, Gw, Ng]
            x = tf.reshape(x, [nb, g, ng])
            return tf.reduce_sum(x, axis=1, keepdims=True) if lay.shared else x

        def row_index(idx):
            """Where the weight rows of the step's pixels ``idx`` ``[B, K]`` lie in ``w``
            ``[B * Gw, P + 1, Ng]``: ``[B * G, K, 2]`` (weight group, patch row)."""
            k = tf.shape(idx)[1]
            if not lay.patched:
                wg = tf.broadcast_to(net_ids[:, None], tf.shape(idx))
                return tf.stack([wg, idx], -1)
            local = tf.transpose(tf.gather(net._row_of_pixel, idx, axis=1), [1, 0, 2])  # [B,G,K]
            wg = net_ids[:, None] * gw_n + wgroup[None, :]  # [B, G]
            wg = tf.broadcast_to(wg[:, :, None], tf.shape(local))
            return tf.reshape(tf.stack([wg, local], -1), [bg, k, 2])

        def step(t, w, carry, layers, rstate, count, s_e):
            idx = slots_t[t]  # [B, K] image pixels
            where = row_index(idx)
            rows = tf.gather_nd(w, where)  # [B * G, K, Ng]
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
            seen = s_e * tf.cast(t < shown, tf.float32) if net.rest_steps else s_e
            return t + 1, w, carry, layers, rstate, count + seen, s_e

        def potentiate(t, w, rstate, s_e):
            """Postsynaptic updates for the spikes ``s_e`` ``[B * G, Ng]`` of step ``t - 1``. The
            pre factors are computed per neuron that fired, from its network's per-pixel state
            alone (the rule's rank-1 fields), so that a step costs what it costs a network alone
            however many networks are stacked."""
            now = tf.cast(t - 1, tf.float32) * dt
            order, n_fired = fired_in_order(tf.reshape(s_e, [-1]))

            def one(m, w):
                pos, j = order[m] // ng, order[m] % ng
                b, gi = pos // g, pos % g
                mine = tf.nest.map_structure(
                    lambda x: tf.slice(x, [b * span], [span]) if x.shape.rank == 1 else x, rstate
                )
                factor = (rule.pre_factor(rp, mine, now) * not_pad)[: pix + 1]
                if lay.patched:  # [P + 1]: the factor of each patch row
                    factor = tf.gather(factor, tf.gather(net._pixel_of_row, gi))
                wg = b * gw_n + tf.gather(wgroup, gi)
                where = tf.stack([tf.fill([p + 1], wg), rows_p1, tf.fill([p + 1], j)], axis=-1)
                new = rule.on_post(rp, rstate, tf.gather_nd(w, where), factor, pos, j)
                return m + 1, tf.tensor_scatter_nd_update(w, where, new)

            w = tf.while_loop(lambda m, w: m < n_fired, one, (tf.constant(0), w))[1]
            return w, rule.after_post(rp, rstate, s_e)

        def segment(t, w, carry, layers, rstate, count, s_e):
            w, rstate = potentiate(t, w, rstate, s_e)
            first = step(t, w, carry, layers, rstate, count, tf.zeros([bg, ng]))
            return tf.while_loop(
                lambda t, *rest: tf.logical_and(t < steps, tf.reduce_all(rest[-1] == 0)),
                step,
                first,
            )

        w0 = self.weights.read_value()
        w = tf.reshape(w0, [nb * gw_n, p, ng])
        w = tf.transpose(normalise_columns(
            tf.transpose(w, [1, 0, 2]), lc.weight_sum), [1, 0, 2])  # fmt: skip
        w = tf.concat([w, tf.zeros([nb * gw_n, 1, ng])], axis=1)  # zero padding row
        zeros = tf.zeros([bg, ng])
        if self.carried is None:
            layers0 = net._init_layers([bg, ng])
            rstate0 = rule.init(rp, [bg, ng], nb * span - 1)
        else:
            layers0, rstate0 = self._fold_carried()
        init = (tf.constant(0), w, adapt.start(theta0), layers0, rstate0, zeros, zeros)
        t, w, carry, layers, rstate, count, s_e = tf.while_loop(
            lambda t, *_: t < steps, segment, init
        )
        w, rstate = potentiate(t, w, rstate, s_e)
        on = active[:, None, None, None]
        w = tf.reshape(w[:, :-1], self._w_shape)
        self.weights.assign(tf.where(on, w, w0))
        self.theta.assign(tf.where(on[..., 0], adapt.end(carry, theta0), theta0))
        if self.carried is not None:
            self._unfold_carried(layers, rule.carry(rp, rstate, steps * dt), active)
        return tf.reshape(count, [nb, g * ng])

    def _carried_template(self) -> tuple:
        """One network's carried state at rest, its per-pixel entries padded to
        :attr:`pixel_span`: the shapes (and the values of the unused entries) of the folding."""
        net = self.nets[0]
        shape = [net.layout.n_groups, net.layout.group_size]
        return net._init_layers(shape), net.rule.init(net.rule_params, shape, self.pixel_span - 1)

    def _fold_carried(self) -> tuple:
        """The carried state ``[B, ...]`` as the program's folded state: per neuron
        ``[B * G, Ng]``, per pixel ``[B * pixel_span]``."""
        nb, known = self.b, self.nets[0].n_inputs + 1

        def fold(v, tmpl):
            x = v.read_value()
            if x.shape[1:] != tmpl.shape:  # per pixel: pad each network's entries
                tail = tf.broadcast_to(tmpl[known:][None], [nb, tmpl.shape[0] - known])
                x = tf.concat([x, tail], axis=1)
            return tf.reshape(x, [nb * tmpl.shape[0], *tmpl.shape[1:]])

        return tf.nest.map_structure(fold, self.carried, self._carried_template())

    def _unfold_carried(self, layers: tuple, rstate: tuple, active: tf.Tensor) -> None:
        """Write the folded per-sample state back, per network, for the active networks."""
        known = self.nets[0].n_inputs + 1

        def unfold(v, x, tmpl):
            x = tf.reshape(x, [self.b, *tmpl.shape])
            if v.shape[1:] != tmpl.shape:
                x = x[:, :known]
            on = tf.reshape(active, [-1] + [1] * (v.shape.rank - 1))
            v.assign(tf.where(on, x, v))

        tf.nest.map_structure(unfold, self.carried, (layers, rstate), self._carried_template())


def train_stack_chunk(
    stack: NetworkStack,
    images: np.ndarray,
    indices: np.ndarray,
    epoch: int = 0,
    inputs: Sequence[ChunkInputs] | None = None,
) -> list[TrainStats]:
    """Every network of ``stack`` learns from ``images`` (``[D, n_inputs]`` uint8; ``indices``
    their indices in the split, ``epoch`` the pass) in order, each with its own input spikes and
    retries (:func:`stdp_pipeline.sim.present.train_chunk` per network). ``inputs``: each
    network's level-0 spikes drawn beforehand by :func:`chunk_inputs`. Returns each network's
    :class:`TrainStats`; the networks' own variables are updated (:meth:`NetworkStack.store`)."""
    nets, nb = stack.nets, stack.b
    net = nets[0]
    enc = net.config.encoding
    d = len(indices)
    if inputs is None:
        inputs = [chunk_inputs(n, images, indices, epoch) for n in nets]
    images_t = tf.constant(images, tf.uint8)
    indices_t = tf.constant(indices, tf.int32)
    epoch_t = tf.constant(epoch, tf.int64)
    spikes = np.zeros((nb, d), np.float32)
    retries = np.zeros((nb, d), np.int32)
    dropped = np.stack([x.dropped for x in inputs]).astype(np.int64)
    neuron_spikes = np.zeros((nb, d, net.n), np.float32)
    pos = np.zeros(nb, np.int64)  # each network's next digit in the chunk
    level = np.zeros(nb, np.int64)
    steps, pix = enc.steps, net.n_inputs
    while (pos < d).any():
        active = pos < d
        shown: list[np.ndarray] = []
        busiest = 1
        for b in range(nb):
            if not active[b]:
                shown.append(np.full((steps, 1), pix, np.int32))
                continue
            i = int(pos[b])
            if level[b] == 0:
                s, k = inputs[b].slots[i], int(inputs[b].busiest[i])
            else:
                s1, d1, k1 = nets[b].input_slots(
                    images_t[i : i + 1],
                    indices_t[i : i + 1],
                    tf.constant(int(level[b])),
                    "train",
                    epoch_t,
                )
                s, k = s1.numpy()[0], int(k1.numpy()[0])
                dropped[b, i] += int(d1.numpy()[0])
            shown.append(s)
            busiest = max(busiest, k)
        width = next(w for w in SLOT_WIDTHS if w >= busiest)
        x = np.full((nb, steps, width), pix, np.int32)
        for b, s in enumerate(shown):
            x[b, :, : min(width, s.shape[1])] = s[:, :width]
        per_neuron = stack.learning_program(width)(tf.constant(x), tf.constant(active)).numpy()
        for b in np.flatnonzero(active):
            i = int(pos[b])
            count = float(per_neuron[b].sum())
            spikes[b, i], retries[b, i], neuron_spikes[b, i] = count, level[b], per_neuron[b]
            if count < enc.min_spikes and level[b] < enc.max_retries:
                level[b] += 1
            else:
                pos[b] += 1
                level[b] = 0
    stack.store()
    return [
        TrainStats(spikes[b], retries[b], dropped[b].astype(np.int32), neuron_spikes[b])
        for b in range(nb)
    ]


def train_stack_chunks(
    stack: NetworkStack,
    images: np.ndarray,
    indices: np.ndarray,
    chunks: Sequence[tuple[int, slice]],
) -> Iterator[list[TrainStats]]:
    """:func:`stdp_pipeline.sim.present.train_chunks` for a stack: the chunks ``(epoch,
    digits)`` in order, each network's stats per chunk; every network's next chunk's input
    spikes are drawn on a second thread while the current chunk learns."""
    import concurrent.futures

    if not len(chunks):
        return
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:

        def draw(i: int) -> concurrent.futures.Future:
            epoch, sel = chunks[i]
            return pool.submit(
                lambda: [chunk_inputs(n, images[sel], indices[sel], epoch) for n in stack.nets]
            )

        pending = draw(0)
        for i, (epoch, sel) in enumerate(chunks):
            inputs = pending.result()
            if i + 1 < len(chunks):
                pending = draw(i + 1)
            yield train_stack_chunk(stack, images[sel], indices[sel], epoch=epoch, inputs=inputs)
