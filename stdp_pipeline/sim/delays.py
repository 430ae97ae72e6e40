"""Input -> excitatory transmission delays, with trace STDP seen through them (Brian 1's semantics).

The authors' code gives every input -> excitatory synapse its own delay, uniform in
``[0, input_delay_max_ms)`` (``network.input_delay_max_ms``; 10 ms there, 0 = none), on a Brian 1
``DelayConnection`` whose STDP treats the delays as dendritic. Quantised to steps,
``d[i, j] = floor(U[i, j] * input_delay_max_ms / dt)`` with ``U`` uniform from the run's seed, and
for a synapse ``(i, j)``:

* drive: an input spike of pixel ``i`` at step ``t`` adds ``W[i, j]`` (read at ``t``) to neuron
  ``j``'s ``ge`` after step ``t + d[i, j]``;
* depression: ``W[i, j] <- clip(W[i, j] - nu_pre * post1_j(t + d[i, j]), 0, w_max)``, applied
  ``H - 1`` steps after the spike (Brian 1 applies it after the largest delay, with the post
  trace recorded at the arrival step), ``H = ceil(input_delay_max_ms / dt)`` the delay steps;
* potentiation at a spike of neuron ``j`` at step ``t``:
  ``W[i, j] <- clip(W[i, j] + nu_post * pre_i(t - d[i, j]) * post2_before_j, 0, w_max)``, where
  ``pre_i(s) = exp(-(s - s_i) dt / tau_pre)`` with ``s_i`` the last spike of ``i`` at or before
  step ``s`` (the nearest-spike trace, read ``d[i, j]`` steps in the past).

The learning presentation runs ``H - 1`` input-free steps after the digit (or the simulated rest,
when longer) so that every delayed spike arrives and every depression is applied; spikes of those
steps are not the digit's. With ``H = 1`` (all delays 0) it is the undelayed presentation, up to
the order of float operations. Whole digits and trace STDP only (the authors' model).

Inference (learning off): the input currents of a presentation are
``cur[t, j] = sum_k sum_{i : d[i, j] = k} X[t - k, i] W[i, j]``, one sparse product per delay step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from stdp_pipeline._tf import tf
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.sim.rules.base import fired_in_order, normalise_columns

if TYPE_CHECKING:
    from stdp_pipeline.io.config import ExperimentConfig
    from stdp_pipeline.sim.codes.base import Events
    from stdp_pipeline.sim.network import SpikingNetwork


def check(config: ExperimentConfig, patched: bool) -> None:
    """Delays need whole digits and trace STDP (one-line error otherwise)."""
    d = config.network.input_delay_max_ms
    if d <= 0:
        return
    if config.learning.rule != "trace":
        raise PipelineError(
            f"network.input_delay_max_ms = {d}: input delays are built for learning.rule = "
            f"'trace' (the authors' model), not {config.learning.rule!r}; set it to 0"
        )
    if config.encoding.rest == "simulate" and config.encoding.rest_ms < d:
        raise PipelineError(
            f"encoding.rest_ms = {config.encoding.rest_ms}: a simulated rest must be at least "
            f"network.input_delay_max_ms = {d} long, so that every delayed spike arrives"
        )
    if patched:
        raise PipelineError(
            f"network.input_delay_max_ms = {d}: input delays are built for whole digits "
            "(encoding.patch_size_px = 28); set it to 0"
        )


def draw(config: ExperimentConfig, n_inputs: int, n: int) -> tf.Tensor:
    """Delays in steps ``[n_inputs + 1, n]`` int32, ``floor(U * H)`` with ``U`` uniform from the
    seed (the padding row, last, has delay 0)."""
    h = config.input_delay_steps()
    u = tf.random.stateless_uniform([n_inputs, n], seed=[config.seed, 7920])
    d = tf.minimum(tf.cast(tf.floor(u * h), tf.int32), h - 1)
    return tf.concat([d, tf.zeros([1, n], tf.int32)], axis=0)


def currents(
    weights: tf.Tensor, delays: tf.Tensor, h: int, ev: Events, b: tf.Tensor, steps: int
) -> tf.Tensor:
    """Delayed input currents ``[B, T, 1, N]`` of a batch: for each of the ``h`` delays ``k`` the
    sparse sum of the weights whose delay is ``k``, shifted ``k`` steps later (what arrives after
    the presentation is not part of it)."""
    n = tf.shape(weights)[1]
    d = delays[:-1]

    def add_delay(k: tf.Tensor, out: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        wk = tf.where(d == k, weights, 0.0)
        y = tf.sparse.segment_sum(wk, ev.source, ev.segment, num_segments=b * steps)
        y = tf.reshape(y, [b, steps, n])
        y = tf.concat([tf.zeros([b, k, n]), y[:, : steps - k]], axis=1)  # k steps later
        return k + 1, out + y

    # A loop, not h unrolled additions: TensorFlow's graph optimiser rewrites a chain of adds
    # into an accumulator with a named temporary variable, and two batches computed at once on
    # two threads then collide on that name (AlreadyExistsError).
    _, out = tf.while_loop(lambda k, _: k < h, add_delay, (tf.constant(0), tf.zeros([b, steps, n])))
    return out[:, :, None, :]


def present_learning(
    net: SpikingNetwork, slots: tf.Tensor, weights: tf.Tensor, theta: tf.Tensor
) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """One presentation with plasticity and input delays (see the module docstring): normalises
    the weight columns, runs the digit's ``T`` steps and then ``max(H - 1, rest)`` input-free steps,
    writes ``weights`` and ``theta`` back and returns the excitatory spike counts ``[N]`` of the
    digit's ``T`` steps."""
    cfg = net.config
    enc, lc = cfg.encoding, cfg.learning
    dt, shown = enc.dt_ms, enc.steps
    h = net.delay_h
    after = net.after_steps
    steps = shown + after
    pix, n = net.n_inputs, net.n
    rp = net.rule_params
    delays = net.delays
    adapt = net.neuron.adaptation(net.exc_params, dt, steps, net.rest_left_ms)
    theta0 = tf.reshape(theta, [1, -1])  # [1, N]
    slots = tf.concat([slots, tf.fill([after, tf.shape(slots)[1]], pix)], 0)
    decay1 = math.exp(-dt / rp.tau_post1_ms)
    decay2 = math.exp(-dt / rp.tau_post2_ms)
    ks = tf.range(h)  # window offsets

    w = normalise_columns(tf.reshape(weights, [pix, n]), lc.weight_sum)
    w = tf.concat([w, tf.zeros([1, n])], axis=0)  # zero padding row
    if net.carried is None:
        layers0 = net._init_layers([1, n])
        rstate0 = net.rule.init(rp, [1, n], pix)
    else:
        layers0, rstate0 = tf.nest.map_structure(lambda v: v.read_value(), net.carried)

    def potentiate(t, w, post2, xhist, last_old, fired):
        """Columns of the neurons that fired at step ``t`` (``fired`` ``[N]`` 0/1)."""
        order, n_fired = fired_in_order(fired)

        def one(m, w):
            # rows of the window, newest first: step t - k is row (t - k) mod H
            window = tf.gather(xhist, tf.math.floormod(t - ks, h))  # [H, P+1]
            # gathers, not slices: a slice at an index that depends on the spikes makes XLA's
            # constant analysis demand theta at compile time (a recompile per presentation)
            j = tf.gather(order, m)
            d = tf.gather(delays, j, axis=1)  # [P+1]
            valid = tf.logical_and(window > 0, ks[:, None] >= d[None, :])
            kmin = tf.reduce_min(tf.where(valid, ks[:, None], h), axis=0)  # [P+1]
            in_window = kmin < h
            lag_steps = tf.cast(kmin - d, tf.float32)
            since_ms = tf.where(
                in_window,
                lag_steps * dt,
                tf.cast(t - d, tf.float32) * dt - last_old,
            )
            factor = tf.exp(-since_ms / rp.tau_pre_ms) * tf.concat(
                [tf.ones([pix]), tf.zeros([1])], 0
            )
            where = tf.stack([tf.range(pix + 1), tf.fill([pix + 1], j)], axis=-1)
            col = tf.gather_nd(w, where)
            new = tf.clip_by_value(col + rp.nu_post * factor * tf.gather(post2, j), 0.0, rp.w_max)
            return m + 1, tf.tensor_scatter_nd_update(w, where, new)

        return tf.while_loop(lambda m, w: m < n_fired, one, (tf.constant(0), w))[1]

    def step(t, w, carry, layers, post1, post2, xhist, last_old, p1hist, buf, count, fired):
        """Step ``t`` up to its depression; the potentiation at its excitatory spikes
        (``fired``, returned) and the traces' reset are :func:`after_spikes`, run before step
        ``t + 1`` (outside the inner loop: most steps have no spike)."""
        idx = slots[t]  # [K] pixels (pix = none)
        k_n = tf.shape(idx)[0]
        rows = tf.gather(w, idx)  # [K, N] weights at emission
        # each row lands d steps later: a one-hot over the H ring rows (dense, fused by XLA;
        # a scatter of K * N scalars is far slower on CPU)
        arrive = tf.math.floormod(t + tf.gather(delays, idx), h)  # [K, N] ring rows
        buf = buf + tf.reduce_sum(tf.one_hot(arrive, h, axis=1) * rows[:, None, :], axis=0)
        r = tf.math.floormod(t, h)
        drive = buf[r][None]  # [1, N]
        buf = buf * (1.0 - tf.one_hot(r, h))[:, None]
        theta_pos = adapt.at(carry, theta0, t)
        s_e, layers = net._layers_step(layers, drive, theta_pos)
        carry = adapt.spiked(carry, s_e, t)
        fired = s_e[0]
        # traces: decay, record post1 as an input spike of this step sees it
        post1, post2 = post1 * decay1, post2 * decay2
        p1hist = tf.tensor_scatter_nd_update(p1hist, [[r]], post1[None])  # one row
        # input spike window: fold the step leaving it into last_old, then note this step's
        old_row = xhist[r]
        last_old = tf.where(old_row > 0, tf.cast(t - h, tf.float32) * dt, last_old)
        row = tf.scatter_nd(idx[:, None], tf.ones([k_n]), [pix + 1])
        xhist = tf.tensor_scatter_nd_update(xhist, [[r]], row[None])
        # depression of the spikes emitted H - 1 steps ago, with post1 at their arrival
        e = t - (h - 1)
        idx_e = tf.where(e >= 0, slots[tf.maximum(e, 0)], tf.fill([k_n], pix))
        d_e = tf.gather(delays, idx_e)  # [K, N]
        at = tf.one_hot(tf.math.floormod(e + d_e, h), h, axis=1)  # [K, H, N]
        p1_at = tf.reduce_sum(at * p1hist[None], axis=1)  # [K, N]
        rows_e = tf.gather(w, idx_e)
        new_rows = tf.clip_by_value(rows_e - rp.nu_pre * p1_at, 0.0, rp.w_max)
        w = tf.tensor_scatter_nd_update(w, idx_e[:, None], new_rows)
        count = count + fired * tf.cast(t < shown, tf.float32)
        return t + 1, w, carry, layers, post1, post2, xhist, last_old, p1hist, buf, count, fired

    def after_spikes(t, w, post1, post2, xhist, last_old, fired):
        """The end of step ``t - 1``: potentiation at its spikes (post2 before them), then the
        post traces of the neurons that fired to 1."""
        w = potentiate(t - 1, w, post2, xhist, last_old, fired)
        post1 = tf.where(fired > 0, 1.0, post1)
        post2 = tf.where(fired > 0, 1.0, post2)
        return w, post1, post2

    def segment(t, w, carry, layers, post1, post2, xhist, last_old, p1hist, buf, count, fired):
        """The end of the step that spiked, then steps until the next one with a spike."""
        w, post1, post2 = after_spikes(t, w, post1, post2, xhist, last_old, fired)
        state = (t, w, carry, layers, post1, post2, xhist, last_old, p1hist, buf, count, fired)
        first = step(*state)  # always advance one step, then run on until a spike
        return tf.while_loop(
            lambda t, *rest: tf.logical_and(t < steps, tf.reduce_all(rest[-1] == 0)),
            step,
            first,
        )

    init = (
        tf.constant(0),
        w,
        adapt.start(theta0),
        layers0,
        rstate0.post1[0],
        rstate0.post2[0],
        tf.zeros([h, pix + 1]),
        rstate0.last_pre,
        tf.zeros([h, n]),
        tf.zeros([h, n]),
        tf.zeros([n]),
        tf.zeros([n]),
    )
    out = tf.while_loop(lambda t, *_: t < steps, segment, init)
    t, w, carry, layers, post1, post2, xhist, last_old, _, _, count, fired = out
    w, post1, post2 = after_spikes(t, w, post1, post2, xhist, last_old, fired)  # the last step
    theta = adapt.end(carry, theta0)
    if net.carried is not None:
        # the window holds only input-free steps now (rest >= H, checked): last_old is complete
        rstate = rstate0._replace(post1=post1[None], post2=post2[None], last_pre=last_old)
        state = (layers, net.rule.carry(rp, rstate, steps * dt))
        tf.nest.map_structure(lambda v, x: v.assign(x), net.carried, state)
    return count, w[:-1], theta[0]
