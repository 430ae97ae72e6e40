"""The spiking network: a ``tf.Module`` that owns the learned state and runs presentations as
compiled TensorFlow programs.

Learned state (``tf.Variable``): ``weights`` (input -> excitatory, plastic; ``[P, N]`` for whole
digits, ``[Gw, P, Ng]`` for patched models) and ``theta`` (adaptive threshold, mV for conductance
neurons; ``[N]`` or ``[Gw, Ng]``). Per-sample state (voltages, conductances, traces, refractory
clocks) exists only inside a presentation and starts from rest for every presentation: the
``rest_ms`` pause of Diehl & Cook between digits is taken as a full relaxation of the per-sample
state (``theta`` still decays over it while learning).

Layers per step (``dt``), in Brian's order: integrate, threshold, reset, then deliver the spikes
of the step (they act from the next step)::

    exc:  conductance_step(..., threshold = v_thresh - theta_offset + theta)
    ge_exc += sum of W rows of the inputs that spiked          (input -> excitatory, plastic)
    inh:  conductance_step(...)
    ge_inh += exc_to_inh_weight * s_exc                        (one-to-one)
    gi_exc += inh_to_exc_weight * (sum(s_inh) - s_inh)         (hollow)

Patched models run the ``G`` patch groups side by side as a leading axis ``[G, Ng]`` of every
state tensor, each group with its own inhibition; a pixel's spike reaches every patch that holds
it.

Training (:meth:`SpikingNetwork.train_chunk`): each presentation is one XLA-compiled program (one
per slot-width bucket), digits in order, no Python per time step. Weight updates are event-driven:
rows of the inputs that spiked at a step, columns of the neurons that fired. Inference
(:meth:`SpikingNetwork.respond`) does not learn: it simulates a batch of digits at once, with the
input currents of all steps computed by one sparse segment sum, a batch per core.
"""

from __future__ import annotations

import concurrent.futures
import math
import os
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import encoding, learning, neurons, patches, wiring
from ._tf import tf
from .config import ExperimentConfig

#: Slot widths of the compiled presentations: a digit runs in the narrowest that holds its
#: busiest step, so the per-step gather reads few padding rows.
SLOT_WIDTHS = (8, 12, 16, 24, encoding.SLOTS)


class TrainStats(NamedTuple):
    """Per-digit outcome of a training chunk (arrays of length ``B``)."""

    spikes: np.ndarray  # excitatory spikes in the accepted presentation
    retries: np.ndarray  # extra presentations at raised input rates
    dropped: np.ndarray  # input spikes beyond the per-step slots (normally 0)


class SpikingNetwork(tf.Module):
    """Poisson inputs -> excitatory layer (plastic weights, adaptive threshold) <-> inhibitory.

    Args:
      config: the experiment config (network, neuron, learning and encoding sections are used).
      n_inputs: ``P``, inputs per excitatory neuron (784 for whole 28x28 digits).
    """

    def __init__(self, config: ExperimentConfig, n_inputs: int = 784) -> None:
        super().__init__(name="spiking_network")
        self.config = config
        self.n_inputs = n_inputs  # pixels of the image
        enc, net, lc = config.encoding, config.network, config.learning
        side = int(round(math.sqrt(n_inputs)))
        self.patched = enc.patch_size_px < side
        if self.patched:
            positions = patches.patch_positions(enc.patch_size_px, enc.patch_stride_px, side)
            self.n_groups = len(positions)
            self.patch_inputs = enc.patch_size_px**2
            self.shared = net.patch_groups == "shared"
            self.group_size = (
                net.n_excitatory if self.shared else net.n_excitatory // len(positions)
            )
            pixel_of = np.arange(n_inputs).reshape(side, side)
            rows = np.stack([
                pixel_of[r : r + enc.patch_size_px, c : c + enc.patch_size_px].ravel()
                for r, c in positions
            ])  # fmt: skip
        else:
            self.n_groups, self.patch_inputs, self.shared = 1, n_inputs, False
            self.group_size = net.n_excitatory
            rows = np.arange(n_inputs)[None, :]
        g, p = self.n_groups, self.patch_inputs
        self.weight_groups = 1 if self.shared else g
        #: ``[G, P+1]`` image pixel of each patch row (row ``P``: the padding pixel ``n_inputs``).
        self._pixel_of_row = tf.constant(np.concatenate([rows, np.full((g, 1), n_inputs)], 1),
                                         tf.int32)  # fmt: skip
        local = np.full((g, n_inputs + 1), p, np.int32)
        for group in range(g):
            local[group, rows[group]] = np.arange(p)
        #: ``[G, n_inputs+1]`` row of each image pixel in each patch (``P`` where outside).
        self._row_of_pixel = tf.constant(local)
        #: ``[G]`` weight group simulated at each position (all 0 when shared).
        self._wgroup = tf.constant(np.zeros(g) if self.shared else np.arange(g), tf.int32)
        #: Excitatory outputs per digit: ``G * group size`` (group-major).
        self.n = g * self.group_size
        shape = (
            [p, self.group_size] if not self.patched else [self.weight_groups, p, self.group_size]
        )
        rng = tf.random.stateless_uniform(shape, seed=[config.seed, 7919], maxval=lc.w_init_max)
        self.weights = tf.Variable(rng, name="weights", trainable=False)
        theta0 = (
            config.excitatory.theta_init_mv
            if net.neuron == "conductance"
            else config.current_lif.thr_init
        )
        theta_shape = (
            [self.group_size] if not self.patched else [self.weight_groups, self.group_size]
        )
        self.theta = tf.Variable(tf.fill(theta_shape, theta0), name="theta", trainable=False)
        self._present_cache: dict[int, tf.types.experimental.GenericFunction] = {}
        self._slots_fn = tf.function(self._slots, reduce_retracing=True)
        self._currents_fn = tf.function(self._input_currents, reduce_retracing=True)
        self._respond_fn = tf.function(self._respond, jit_compile=True, reduce_retracing=True)

    # ------------------------------------------------------------------------------------------
    # learned state
    def get_state(self) -> dict[str, np.ndarray]:
        """Learned state as numpy arrays: ``weights`` ``[P, N]`` and ``theta`` ``[N]`` for whole
        digits; ``[Gw, P, Ng]`` and ``[Gw, Ng]`` for patched models (``Gw`` weight groups: one
        per patch position, or 1 when shared)."""
        return {"weights": self.weights.numpy(), "theta": self.theta.numpy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Load learned state saved by :meth:`get_state`."""
        self.weights.assign(np.asarray(state["weights"], np.float32))
        self.theta.assign(np.asarray(state["theta"], np.float32))

    def _w3(self) -> tf.Tensor:
        """Weights as ``[Gw, P, Ng]`` whatever the model."""
        return tf.reshape(self.weights, [self.weight_groups, self.patch_inputs, self.group_size])

    def _theta2(self) -> tf.Tensor:
        """Thresholds as ``[Gw, Ng]``."""
        return tf.reshape(self.theta, [self.weight_groups, self.group_size])

    def _per_position(self, x: tf.Tensor) -> tf.Tensor:
        """``[Gw, ...]`` learned values as seen by each of the ``G`` positions."""
        return tf.gather(x, self._wgroup) if self.shared else x

    def _per_weight_group(self, x: tf.Tensor) -> tf.Tensor:
        """Sum ``[G, ...]`` per-position values into their ``Gw`` weight groups."""
        return tf.reduce_sum(x, axis=0, keepdims=True) if self.shared else x

    # ------------------------------------------------------------------------------------------
    # model pieces
    def _exc_params(self) -> neurons.ConductanceParams:
        e = self.config.excitatory
        return neurons.ConductanceParams(
            e.v_rest_mv,
            e.v_reset_mv,
            e.v_thresh_mv - e.theta_offset_mv,
            e.e_exc_mv,
            e.e_inh_mv,
            e.tau_mem_ms,
            e.tau_ge_ms,
            e.tau_gi_ms,
            e.refractory_ms,
            e.spike_block_ms,
        )

    def _inh_params(self) -> neurons.ConductanceParams:
        i = self.config.inhibitory
        return neurons.ConductanceParams(
            i.v_rest_mv,
            i.v_reset_mv,
            i.v_thresh_mv,
            i.e_exc_mv,
            i.e_inh_mv,
            i.tau_mem_ms,
            i.tau_ge_ms,
            i.tau_gi_ms,
            i.refractory_ms,
            0.0,
        )

    def _init_layers(self, shape: list[int]) -> tuple:
        if self.config.network.neuron == "conductance":
            return (
                neurons.conductance_init(self._exc_params(), shape),
                neurons.conductance_init(self._inh_params(), shape),
                tf.zeros(shape),  # input current pending for the inhibitory layer (unused)
                tf.zeros(shape),  # inhibition pending for the excitatory layer (unused)
            )
        return (
            neurons.current_init(shape),
            neurons.current_init(shape),
            tf.zeros(shape),
            tf.zeros(shape),
        )

    def _layers_step(
        self, layers: tuple, exc_input: tf.Tensor, theta: tf.Tensor
    ) -> tuple[tf.Tensor, tuple]:
        """One step of both layers. ``exc_input``: summed input weights of this step's input
        spikes (``[..., N]``). Returns excitatory spikes and the new layer state."""
        cfg = self.config
        dt = cfg.encoding.dt_ms
        net = cfg.network
        exc, inh, inh_in, exc_inh = layers
        if net.neuron == "conductance":
            pe, pi = self._exc_params(), self._inh_params()
            s_e, exc = neurons.conductance_step(exc, pe, dt, pe.v_thresh_mv + theta)
            exc = exc._replace(ge=exc.ge + exc_input)
            if net.inhibition:
                s_i, inh = neurons.conductance_step(inh, pi, dt, pi.v_thresh_mv)
                inh = inh._replace(ge=inh.ge + wiring.one_to_one_apply(s_e, net.exc_to_inh_weight))
                exc = exc._replace(gi=exc.gi + wiring.hollow_apply(s_i, net.inh_to_exc_weight))
            return s_e, (exc, inh, inh_in, exc_inh)
        c = cfg.current_lif
        p = neurons.CurrentParams(c.tau_mem_ms, c.leak, c.resistance, c.refractory_ms)
        s_e, exc = neurons.current_step(exc, p, dt, exc_input, c.thr_base + theta)
        if net.inhibition:
            exc = exc._replace(v=exc.v - exc_inh)
            pi = neurons.CurrentParams(c.tau_mem_ms, c.leak, c.resistance, 0.0)
            s_i, inh = neurons.current_step(inh, pi, dt, inh_in, c.inh_thr)
            inh_in = wiring.one_to_one_apply(s_e, net.exc_to_inh_weight) * (c.tau_mem_ms / dt)
            exc_inh = wiring.hollow_apply(s_i, net.inh_to_exc_weight)
        return s_e, (exc, inh, inh_in, exc_inh)

    def _theta_after_spikes(self, theta: tf.Tensor, s_e: tf.Tensor) -> tf.Tensor:
        """Adaptive threshold, one step: decay and jump (conductance) or the slides' rule."""
        cfg = self.config
        if cfg.network.neuron == "conductance":
            e = cfg.excitatory
            return theta * math.exp(-cfg.encoding.dt_ms / e.tau_theta_ms) + e.theta_plus_mv * s_e
        c = cfg.current_lif
        return neurons.adaptive_threshold_step(theta, s_e, c.thr_alpha, c.thr_beta)

    # ------------------------------------------------------------------------------------------
    # training: one compiled program per presentation, learning on
    def _slots(
        self,
        images: tf.Tensor,
        indices: tf.Tensor,
        level: tf.Tensor,
        stage: str,
        epoch: tf.Tensor | int = 0,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Input spike slots of a batch of digits (see :func:`encoding.batch_slots`): ``[B, T, K]``
        int32, dropped spikes ``[B]`` and each digit's busiest step ``[B]``. Digit ``b``'s spikes
        depend only on ``(seed, stage, indices[b], level, epoch)``."""
        keys = encoding.presentation_keys(self.config.seed, stage, indices, level, epoch)
        return encoding.batch_slots(images, keys, level=level, **self._rate_code())

    def _rate_code(self) -> dict:
        """The encoding settings that :func:`encoding.batch_events` takes."""
        enc = self.config.encoding
        return {
            "rate_max_hz": enc.rate_max_hz,
            "dt_ms": enc.dt_ms,
            "steps": enc.steps,
            "retry_rate_step_hz": enc.retry_rate_step_hz,
        }

    def _present_learning(self, slots: tf.Tensor) -> tf.Tensor:
        """One presentation with plasticity; ``slots`` ``[T, K]`` image pixels that spiked at each
        step (``n_inputs`` = none).

        Normalises the weight columns, runs ``T`` steps with event-driven STDP, and writes the
        new ``weights`` and ``theta`` back. Returns the excitatory spike counts ``[G * Ng]``.

        All ``G`` patch groups run together (``G = 1`` for whole digits): a step gathers, per
        group, the weight rows of the pixels that spiked inside its patch. The steps run in an
        inner loop that stops at the first step with an excitatory spike; the outer loop then
        applies the postsynaptic updates of that step, column by column, and resumes. Steps
        without a postsynaptic spike (nearly all) thus carry no conditional.
        """
        cfg = self.config
        enc, lc = cfg.encoding, cfg.learning
        dt, steps = enc.dt_ms, enc.steps
        g, p, ng, pix = self.n_groups, self.patch_inputs, self.group_size, self.n_inputs
        trace = lc.rule == "trace"
        d1 = math.exp(-dt / lc.tau_post1_ms)
        d2 = math.exp(-dt / lc.tau_post2_ms)
        not_pad = tf.concat([tf.ones([pix]), tf.zeros([1])], axis=0)  # per image pixel
        rows_p1 = tf.range(p + 1)
        wgroup = self._wgroup

        def column_update(cols, factor, post2_j):
            """New values of the weight column ``cols`` ``[P+1]`` of a neuron that fired;
            ``factor`` ``[P+1]``: pre trace (trace rule) or recent-spike flag (event rule), 0 on
            the padding row (whose weight, 0, then stays 0 under either rule)."""
            col, fired = cols[:, None], tf.ones([1])
            if trace:
                new = learning.trace_post_update(
                    col, factor, post2_j[None], fired, lc.nu_post, lc.w_max
                )
            else:
                new = learning.event_update(
                    col, factor, fired, lc.eta, lc.a_plus, lc.a_minus, lc.lambda_, lc.w_max
                )
            return new[:, 0]

        def row_index(idx):
            """Where the weight rows of the step's pixels ``idx`` ``[K]`` lie in ``w``:
            ``[G, K, 2]`` (weight group, patch row) when patched, ``[K, 1]`` (row) otherwise."""
            if not self.patched:
                return idx[:, None]
            local = tf.gather(self._row_of_pixel, idx, axis=1)  # [G, K] rows in each patch
            return tf.stack([tf.broadcast_to(wgroup[:, None], tf.shape(local)), local], -1)

        # Diehl & Cook's theta decays with tau_theta = 1e7 ms: a factor 1 - 5e-8 a step, below
        # float32's resolution. theta is therefore carried as the presentation's start value
        # theta0 and the spike increments so far, each scaled up by exp((k + 1) dt / tau):
        #   theta after step t = exp(-(t + 1) dt / tau) * (theta0 + acc_t),
        #   acc_t = sum over steps k <= t of theta_plus * s_k * exp((k + 1) dt / tau),
        # exact in real arithmetic and accurate to an ulp in float32 at any tau.
        e = cfg.excitatory
        analytic = cfg.network.neuron == "conductance" and steps * dt / e.tau_theta_ms < 20
        theta0 = self._theta2()

        def theta_at(t, theta):
            """Learned thresholds in effect at step ``t`` (after step ``t - 1``)."""
            if not analytic:
                return theta
            return tf.exp(-tf.cast(t, tf.float32) * (dt / e.tau_theta_ms)) * (theta0 + theta)

        def step(t, w, theta, layers, post1, post2, last_pre, count, s_e):
            idx = slots[t]  # [K] image pixels
            where = row_index(idx)
            rows = tf.gather_nd(w, where)  # [G, K, Ng], or [K, Ng] for whole digits
            if not self.patched:
                rows = rows[None]
            theta_pos = self._per_position(theta_at(t, theta))
            s_e, layers = self._layers_step(layers, tf.reduce_sum(rows, axis=1), theta_pos)
            if analytic:
                grow = tf.exp(tf.cast(t + 1, tf.float32) * (dt / e.tau_theta_ms))
                theta = theta + e.theta_plus_mv * grow * self._per_weight_group(s_e)
            else:
                theta = self._theta_after_spikes(theta, self._per_weight_group(s_e))
            now = tf.cast(t, tf.float32) * dt
            if trace:
                post1, post2 = post1 * d1, post2 * d2
                new_rows = learning.trace_pre_update(rows, post1[:, None, :], lc.nu_pre, lc.w_max)
                w = tf.tensor_scatter_nd_update(
                    w, tf.reshape(where, [-1, where.shape[-1]]), tf.reshape(new_rows, [-1, ng])
                )
            last_pre = tf.tensor_scatter_nd_update(
                last_pre, idx[:, None], tf.fill(tf.shape(idx), now)
            )
            return t + 1, w, theta, layers, post1, post2, last_pre, count + s_e, s_e

        def potentiate(t, w, post1, post2, last_pre, s_e):
            """Postsynaptic updates for the spikes ``s_e`` ``[G, Ng]`` of step ``t - 1``."""
            now = tf.cast(t - 1, tf.float32) * dt
            if trace:
                factor = tf.exp((last_pre - now) / lc.tau_pre_ms) * not_pad
            else:
                factor = tf.cast(now - last_pre < lc.event_window_ms, tf.float32) * not_pad
            # [G, P+1]: the factor of each patch row
            factor = tf.gather(factor, self._pixel_of_row) if self.patched else factor[None]
            flat = tf.reshape(s_e, [-1])
            order = tf.argsort(flat, direction="DESCENDING", stable=True)
            n_fired = tf.cast(tf.reduce_sum(flat), tf.int32)

            def one(m, w):
                pos, j = order[m] // ng, order[m] % ng
                column = [rows_p1, tf.fill([p + 1], j)]
                if self.patched:
                    column.insert(0, tf.fill([p + 1], wgroup[pos]))
                where = tf.stack(column, axis=-1)
                new = column_update(tf.gather_nd(w, where), factor[pos], post2[pos, j])
                return m + 1, tf.tensor_scatter_nd_update(w, where, new)

            w = tf.while_loop(lambda m, w: m < n_fired, one, (tf.constant(0), w))[1]
            if trace:
                post1 = tf.where(s_e > 0, 1.0, post1)
                post2 = tf.where(s_e > 0, 1.0, post2)
            return w, post1, post2

        def segment(t, w, theta, layers, post1, post2, last_pre, count, s_e):
            w, post1, post2 = potentiate(t, w, post1, post2, last_pre, s_e)
            state = (t, w, theta, layers, post1, post2, last_pre, count, tf.zeros([g, ng]))
            first = step(*state)  # always advance one step, then run on until a spike
            return tf.while_loop(
                lambda t, *rest: tf.logical_and(t < steps, tf.reduce_all(rest[-1] == 0)),
                step,
                first,
            )

        w = self._w3()
        w = tf.transpose(learning.normalise_columns(
            tf.transpose(w, [1, 0, 2]), lc.weight_sum), [1, 0, 2])  # fmt: skip
        w = tf.concat([w, tf.zeros([self.weight_groups, 1, ng])], axis=1)  # zero padding row
        if not self.patched:
            w = w[0]  # whole digits: the loop carries [P+1, N]
        zeros = tf.zeros([g, ng])
        init = (
            tf.constant(0),
            w,
            tf.zeros_like(theta0) if analytic else theta0,
            self._init_layers([g, ng]),
            zeros,
            zeros,
            tf.fill([pix + 1], tf.constant(-1e9, tf.float32)),
            zeros,
            zeros,
        )
        t, w, theta, _, post1, post2, last_pre, count, s_e = tf.while_loop(
            lambda t, *_: t < steps, segment, init
        )
        w, _, _ = potentiate(t, w, post1, post2, last_pre, s_e)  # spikes of the last step
        if analytic:  # the end of the presentation, then the rest between digits
            theta = math.exp(-(steps * dt + enc.rest_ms) / e.tau_theta_ms) * (theta0 + theta)
        elif cfg.network.neuron == "conductance" and enc.rest_ms > 0:
            theta = theta * math.exp(-enc.rest_ms / e.tau_theta_ms)
        w = w[:-1] if not self.patched else w[:, :-1]
        self.weights.assign(tf.reshape(w, tf.shape(self.weights)))
        self.theta.assign(tf.reshape(theta, tf.shape(self.theta)))
        return tf.reshape(count, [-1])

    def _present_fn(self, width: int):
        """Compiled presentation for slot width ``width`` (one XLA program per width bucket)."""
        if width not in self._present_cache:
            fn = tf.function(self._present_learning, jit_compile=True)
            spec = tf.TensorSpec([self.config.encoding.steps, width], tf.int32)
            self._present_cache[width] = fn.get_concrete_function(spec)
        return self._present_cache[width]

    def train_chunk(self, images: np.ndarray, indices: np.ndarray, epoch: int = 0) -> TrainStats:
        """Learn from ``images`` (``[B, P]`` uint8) in order.

        Each digit is presented once; while the excitatory layer fires fewer than ``min_spikes``
        spikes it is shown again with the peak input rate raised by ``retry_rate_step_hz``, at
        most ``max_retries`` times (Diehl & Cook). ``indices`` (``[B]``) are the digits' indices
        in their split and ``epoch`` the pass over the data: together they fix the input spikes.
        Updates ``weights`` and ``theta``."""
        enc = self.config.encoding
        images_t = tf.constant(images, tf.uint8)
        indices_t = tf.constant(indices, tf.int32)
        epoch_t = tf.constant(epoch, tf.int64)
        slots, dropped, busiest = self._slots_fn(
            images_t, indices_t, tf.constant(0), "train", epoch_t
        )
        slots, dropped, busiest = slots.numpy(), dropped.numpy(), busiest.numpy()
        b = len(indices)
        spikes = np.zeros(b, np.float32)
        retries = np.zeros(b, np.int32)
        for i in range(b):
            s, k = slots[i], int(busiest[i])
            level = 0
            while True:
                width = next(w for w in SLOT_WIDTHS if w >= k)
                x = s[:, :width]
                if x.shape[1] < width:
                    x = np.pad(x, ((0, 0), (0, width - x.shape[1])), constant_values=self.n_inputs)
                count = float(self._present_fn(width)(tf.constant(x)).numpy().sum())
                if count >= enc.min_spikes or level >= enc.max_retries:
                    break
                level += 1
                s1, d1, k1 = self._slots_fn(
                    images_t[i : i + 1], indices_t[i : i + 1], tf.constant(level), "train", epoch_t
                )
                s, k = s1.numpy()[0], int(k1.numpy()[0])
                dropped[i] += int(d1.numpy()[0])
            spikes[i], retries[i] = count, level
        return TrainStats(spikes, retries, dropped)

    def present(
        self, images: np.ndarray, indices: np.ndarray, *, learn: bool, stage: str
    ) -> np.ndarray:
        """Show digits to the network and return the excitatory spike counts.

        ``learn=True``: digits one after another with plasticity (``stage`` must be "train");
        returns the total excitatory spikes per digit ``[B]``. ``learn=False``: batched, no
        plasticity, learned state untouched (bit-identical); returns spike counts ``[B, N]``.
        """
        if learn:
            if stage != "train":
                raise ValueError(f"stage {stage!r}: learning happens only in the 'train' stage")
            return self.train_chunk(images, indices).spikes
        return self.respond(images, indices, stage)[0]

    # ------------------------------------------------------------------------------------------
    # inference: batched, learning off, learned state read only
    def _input_currents(
        self, images: tf.Tensor, indices: tf.Tensor, level: tf.Tensor, stage: str
    ) -> tf.Tensor:
        """Input currents ``[B, T, G, Ng]`` of a batch of digits: their input spike events (see
        :func:`encoding.batch_events`) summed per step through the weights: a sorted sparse
        segment sum of weight rows, ``cur[b*T + t] = sum of W[source] over the events of step t of
        digit b`` (``X @ W`` for the ``[B*T, P]`` spike counts ``X``, about 3 nonzeros a row).
        Weights are fixed during inference, so this is exact."""
        keys = encoding.presentation_keys(self.config.seed, stage, indices, level)
        ev = encoding.batch_events(images, keys, level=level, **self._rate_code())
        b, t = tf.shape(images)[0], self.config.encoding.steps
        g, p = self.n_groups, self.patch_inputs
        if not self.patched:
            cur = tf.sparse.segment_sum(self.weights, ev.source, ev.segment, num_segments=b * t)
            return tf.reshape(cur, [b, t, 1, self.group_size])
        # Each event reaches every patch that holds its pixel: segment g*B*T + (b*T + t) (sorted,
        # group-major), weight row wgroup[g]*P + row of the pixel in patch g.
        local = tf.gather(self._row_of_pixel, ev.source, axis=1)  # [G, E]
        inside = local < p
        row = tf.boolean_mask(self._wgroup[:, None] * p + local, inside)
        seg = tf.boolean_mask(tf.range(g)[:, None] * (b * t) + ev.segment[None, :], inside)
        flat_w = tf.reshape(self.weights, [-1, self.group_size])
        cur = tf.sparse.segment_sum(flat_w, row, seg, num_segments=g * b * t)
        cur = tf.transpose(tf.reshape(cur, [g, b * t, self.group_size]), [1, 0, 2])
        return tf.reshape(cur, [b, t, g, self.group_size])

    def _respond(self, currents: tf.Tensor) -> tf.Tensor:
        """Simulate a batch of input currents ``[B, T, G, Ng]`` with learning off (``theta``
        frozen): excitatory spike counts ``[B, G * Ng]`` (group-major)."""
        theta = self._per_position(self._theta2())
        b = tf.shape(currents)[0]
        steps = self.config.encoding.steps
        cur_t = tf.transpose(currents, [1, 0, 2, 3])

        def body(t, layers, count):
            s_e, layers = self._layers_step(layers, cur_t[t], theta)
            return t + 1, layers, count + s_e

        shape = [b, self.n_groups, self.group_size]
        _, _, count = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), self._init_layers(shape), tf.zeros(shape)),
        )
        return tf.reshape(count, [b, self.n])

    def respond(
        self,
        images: np.ndarray,
        indices: np.ndarray,
        stage: str,
        progress: Callable[[int], None] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Spike counts ``[B, N]`` (float32) of the excitatory layer for each digit, learning off.

        Digits are simulated ``evaluate.batch_digits`` at a time. As in training, a digit that
        draws fewer than ``min_spikes`` spikes is shown again at a raised rate (up to
        ``max_retries`` times); its counts are those of the last presentation. Returns
        ``(counts, retries)``. ``learned state is never written``: weights and theta stay
        bit-identical."""
        enc = self.config.encoding
        total = len(indices)
        counts = np.zeros((total, self.n), np.float32)
        retries = np.zeros(total, np.int32)
        bs = self._batch_size()

        def currents(todo: np.ndarray, level: int, width: int) -> tf.Tensor:
            """Input currents of digits ``todo``, padded to ``width`` digits."""
            sel = np.concatenate([todo, np.full(width - len(todo), todo[0])])
            return self._currents_fn(
                tf.constant(images[sel], tf.uint8),
                tf.constant(indices[sel], tf.int32),
                tf.constant(level),
                stage,
            )

        def simulate(todo: np.ndarray) -> int:
            """One batch, with the retries of its quiet digits; fills counts and retries."""
            cur = currents(todo, 0, bs)
            level = 0
            done = len(todo)
            while True:
                c = self._respond_fn(cur).numpy()[: len(todo)]
                counts[todo] = c
                retries[todo] = level
                todo = todo[c.sum(axis=1) < enc.min_spikes]
                if not len(todo) or level >= enc.max_retries:
                    return done
                level += 1
                # Retries are few: pad them to a power of two, not to a whole batch.
                width = min(bs, max(8, 1 << (len(todo) - 1).bit_length()))
                cur = currents(todo, level, width)

        batches = [np.arange(lo, min(total, lo + bs)) for lo in range(0, total, bs)]
        # Batches are independent: two at a time keep both cores of a small machine busy
        # (each compiled simulation runs on one thread).
        with concurrent.futures.ThreadPoolExecutor(max_workers=self._workers()) as pool:
            for done in pool.map(simulate, batches):
                if progress is not None:
                    progress(done)
        return counts, retries

    @staticmethod
    def _workers() -> int:
        """Inference threads: one per core, at most 4."""
        return max(1, min(4, os.cpu_count() or 1))

    def _batch_size(self) -> int:
        """Digits per inference batch: ``evaluate.batch_digits``, capped so that the currents
        ``[B, T, N]`` of one batch take at most 128 MiB."""
        per_digit = self.config.encoding.steps * self.n * 4
        return max(1, min(self.config.evaluate.batch_digits, (128 << 20) // per_digit))
