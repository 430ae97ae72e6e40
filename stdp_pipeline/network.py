"""The spiking network: a ``tf.Module`` that owns the learned state and runs presentations as
compiled TensorFlow programs.

Learned state (``tf.Variable``): ``weights`` ``[P, N]`` (input -> excitatory, plastic) and
``theta`` ``[N]`` (adaptive threshold, mV for conductance neurons). Per-sample state (voltages,
conductances, traces, refractory clocks) exists only inside a presentation and starts from rest
for every presentation: the ``rest_ms`` pause of Diehl & Cook between digits is taken as a full
relaxation of the per-sample state (``theta`` still decays over it while learning).

Layers per step (``dt``), in Brian's order: integrate, threshold, reset, then deliver the spikes
of the step (they act from the next step)::

    exc:  conductance_step(..., threshold = v_thresh - theta_offset + theta)
    inh:  conductance_step(...)
    ge_exc += sum of W rows of the inputs that spiked          (input -> excitatory, plastic)
    ge_inh += exc_to_inh_weight * s_exc                        (one-to-one)
    gi_exc += inh_to_exc_weight * (sum(s_inh) - s_inh)         (hollow)

Training (:meth:`SpikingNetwork.train_chunk`) learns digit after digit inside one compiled
program per chunk: no Python per step or per digit. Weight updates are event-driven: rows of the
inputs that spiked at a step, columns of the neurons that fired. Inference
(:meth:`SpikingNetwork.respond`) does not learn: it simulates a batch of digits at once, with the
input currents of all steps computed by one sparse-dense product.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from . import encoding, learning, neurons, wiring
from .config import ExperimentConfig


class TrainStats(NamedTuple):
    """Per-digit outcome of a training chunk (arrays of length ``B``)."""

    spikes: np.ndarray  # excitatory spikes in the accepted presentation
    retries: np.ndarray  # extra presentations at raised input rates
    dropped: np.ndarray  # input spikes beyond the per-step slots (normally 0)


class SpikingNetwork(tf.Module):
    """Poisson inputs -> excitatory layer (plastic weights, adaptive threshold) <-> inhibitory layer.

    Args:
      config: the experiment config (network, neuron, learning and encoding sections are used).
      n_inputs: ``P``, inputs per excitatory neuron (784 for whole 28x28 digits).
    """

    def __init__(self, config: ExperimentConfig, n_inputs: int = 784) -> None:
        super().__init__(name="spiking_network")
        self.config = config
        self.n_inputs = n_inputs
        self.n = config.network.n_excitatory
        lc = config.learning
        rng = tf.random.stateless_uniform(
            [n_inputs, self.n], seed=[config.seed, 7919], maxval=lc.w_init_max
        )
        self.weights = tf.Variable(rng, name="weights", trainable=False)
        theta0 = (
            config.excitatory.theta_init_mv
            if config.network.neuron == "conductance"
            else config.current_lif.thr_init
        )
        self.theta = tf.Variable(tf.fill([self.n], theta0), name="theta", trainable=False)
        self._train_fn = tf.function(self._train_chunk, jit_compile=True, reduce_retracing=True)
        self._currents_fn = tf.function(self._input_currents, reduce_retracing=True)
        self._respond_fn = tf.function(self._respond, jit_compile=True, reduce_retracing=True)

    # ------------------------------------------------------------------------------------------
    # learned state
    def get_state(self) -> dict[str, np.ndarray]:
        """Learned state as numpy arrays: ``weights`` ``[P, N]``, ``theta`` ``[N]``."""
        return {"weights": self.weights.numpy(), "theta": self.theta.numpy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Load learned state saved by :meth:`get_state`."""
        self.weights.assign(np.asarray(state["weights"], np.float32))
        self.theta.assign(np.asarray(state["theta"], np.float32))

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
    # training: one compiled program per chunk of digits, learning on
    def _present_learning(
        self, w: tf.Tensor, theta: tf.Tensor, image: tf.Tensor, index: tf.Tensor, level: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]:
        """One presentation with plasticity. ``w`` ``[P+1, N]`` (last row: zero pad row).
        Returns ``(w, theta, excitatory spike count, dropped input spikes)``."""
        cfg = self.config
        enc, lc = cfg.encoding, cfg.learning
        dt, steps, n, p = enc.dt_ms, enc.steps, self.n, self.n_inputs
        rates = encoding.intensity_rates(image, enc.rate_max_hz, level, enc.retry_rate_step_hz)
        seed = encoding.digit_seed(cfg.seed, "train", index, level)
        slots, dropped = encoding.event_slots(rates, dt, steps, seed)
        k = tf.reduce_max(tf.reduce_sum(tf.cast(slots < p, tf.int32), axis=1))
        not_pad = tf.concat([tf.ones([p]), tf.zeros([1])], axis=0)
        trace = lc.rule == "trace"
        d1 = math.exp(-dt / lc.tau_post1_ms)
        d2 = math.exp(-dt / lc.tau_post2_ms)

        def run(width: int):
            def body(t, w, theta, layers, post1, post2, last_pre, count):
                idx = slots[t, :width]
                rows = tf.gather(w, idx)
                s_e, layers = self._layers_step(layers, tf.reduce_sum(rows, axis=0), theta)
                theta = self._theta_after_spikes(theta, s_e)
                now = tf.cast(t, tf.float32) * dt
                if trace:
                    post1, post2 = post1 * d1, post2 * d2
                    new_rows = learning.trace_pre_update(rows, post1, lc.nu_pre, lc.w_max)
                    w = tf.tensor_scatter_nd_update(w, idx[:, None], new_rows)
                last_pre = tf.tensor_scatter_nd_update(
                    last_pre, idx[:, None], tf.fill(tf.shape(idx), now)
                )

                def potentiate(w):
                    if trace:
                        pre = tf.exp((last_pre - now) / lc.tau_pre_ms) * not_pad
                        return learning.trace_post_update(w, pre, post2, s_e, lc.nu_post, lc.w_max)
                    recent = tf.cast(now - last_pre < lc.event_window_ms, tf.float32) * not_pad
                    return learning.event_update(
                        w, recent, s_e, lc.eta, lc.a_plus, lc.a_minus, lc.lambda_, lc.w_max
                    )

                w = tf.cond(tf.reduce_any(s_e > 0), lambda: potentiate(w), lambda: w)
                if trace:
                    post1 = tf.where(s_e > 0, 1.0, post1)
                    post2 = tf.where(s_e > 0, 1.0, post2)
                return t + 1, w, theta, layers, post1, post2, last_pre, count + s_e

            init = (
                tf.constant(0),
                w,
                theta,
                self._init_layers([n]),
                tf.zeros([n]),
                tf.zeros([n]),
                tf.fill([p + 1], tf.constant(-1e9, tf.float32)),
                tf.zeros([n]),
            )
            out = tf.while_loop(lambda t, *_: t < steps, body, init)
            return out[1], out[2], out[7]

        widths = [8, 16, 24, encoding.SLOTS]
        branches = [lambda width=width: run(width) for width in widths]
        bucket = tf.reduce_sum(tf.cast(k > tf.constant(widths[:-1]), tf.int32))
        w, theta, count = tf.switch_case(bucket, branches)
        if cfg.network.neuron == "conductance" and enc.rest_ms > 0:
            theta = theta * math.exp(-enc.rest_ms / cfg.excitatory.tau_theta_ms)
        return w, theta, tf.reduce_sum(count), dropped

    def _train_chunk(self, images: tf.Tensor, indices: tf.Tensor) -> tuple:
        cfg = self.config
        enc, lc = cfg.encoding, cfg.learning
        b = tf.shape(images)[0]
        pad_row = tf.zeros([1, self.n])

        def digit(i, w, theta, spikes, retries, dropped):
            w_n = learning.normalise_columns(w[:-1], lc.weight_sum)
            w = tf.concat([w_n, pad_row], axis=0)

            def again(level, w, theta, count, drop):
                return tf.logical_and(count < enc.min_spikes, level <= enc.max_retries)

            def present(level, w, theta, count, drop):
                w, theta, count, d = self._present_learning(w, theta, images[i], indices[i], level)
                return level + 1, w, theta, count, drop + d

            level, w, theta, count, drop = tf.while_loop(
                again, present, (tf.constant(0), w, theta, tf.constant(-1.0), tf.constant(0))
            )
            spikes = spikes.write(i, count)
            retries = retries.write(i, level - 1)
            dropped = dropped.write(i, drop)
            return i + 1, w, theta, spikes, retries, dropped

        w = tf.concat([self.weights, pad_row], axis=0)
        arrays = [tf.TensorArray(dt, size=b) for dt in (tf.float32, tf.int32, tf.int32)]
        _, w, theta, spikes, retries, dropped = tf.while_loop(
            lambda i, *_: i < b, digit, (tf.constant(0), w, self.theta.read_value(), *arrays)
        )
        self.weights.assign(w[:-1])
        self.theta.assign(theta)
        return spikes.stack(), retries.stack(), dropped.stack()

    def train_chunk(self, images: np.ndarray, indices: np.ndarray) -> TrainStats:
        """Learn from ``images`` (``[B, P]`` uint8) in order, one presentation each (plus
        retries at raised rates while fewer than ``min_spikes`` excitatory spikes follow).
        ``indices`` (``[B]``) are the digits' indices in their split, which fix their spikes.
        Updates ``weights`` and ``theta`` in place."""
        spikes, retries, dropped = self._train_fn(
            tf.constant(images, tf.uint8), tf.constant(indices, tf.int32)
        )
        return TrainStats(spikes.numpy(), retries.numpy(), dropped.numpy())

    # ------------------------------------------------------------------------------------------
    # inference: batched, learning off, learned state read only
    def _input_currents(
        self, images: tf.Tensor, indices: tf.Tensor, levels: tf.Tensor, stage_id: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        """Input currents ``[B, T, N]`` of a batch: one sparse-dense product of the batch's input
        spikes with the weights. Also returns dropped spikes per digit ``[B]``."""
        del stage_id
        raise NotImplementedError

    def _respond(self, currents: tf.Tensor) -> tf.Tensor:
        """Simulate a batch ``[B, T, N]`` of input currents with learning off: spike counts
        ``[B, N]``. ``theta`` is frozen."""
        theta = self.theta.read_value()
        b = tf.shape(currents)[0]
        steps = self.config.encoding.steps

        def body(t, layers, count):
            s_e, layers = self._layers_step(layers, currents[:, t], theta)
            return t + 1, layers, count + s_e

        shape = [b, self.n]
        _, _, count = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), self._init_layers(shape), tf.zeros(shape)),
        )
        return count
