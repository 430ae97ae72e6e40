"""The spiking network: a ``tf.Module`` that owns the learned state and its compiled programs.

Learned state (``tf.Variable``): ``weights`` (input -> excitatory, plastic; ``[P, N]`` for whole
digits, ``[Gw, P, Ng]`` for patched models, see :class:`~stdp_pipeline.geometry.Layout`) and
``theta`` (the excitatory neurons' adaptive threshold; ``[N]`` or ``[Gw, Ng]``). Per-sample state
(voltages, conductances, traces, refractory clocks) exists only inside a presentation and starts
from rest for every presentation: the ``rest_ms`` pause of Diehl & Cook between digits is taken as
a full relaxation of the per-sample state (theta still relaxes over it while learning, as its
neuron model says). With ``encoding.rest = "simulate"`` the learning presentation runs on through
the rest with no input (learning on) and its final per-sample state is carried into the next
presentation (:attr:`SpikingNetwork.carried`), as in the authors' code.

The parts come from the registry (:mod:`stdp_pipeline.sim.registry`): the neuron model of both
layers (``network.neuron``), the learning rule (``learning.rule``) and the input code
(``encoding.code``). The compiled loops below call their functions and never ask which part they
hold. One step, in Brian's order (integrate, threshold, reset; spikes act from the next step)::

    s_e, exc = neuron.step(exc, drive = sum of W rows of this step's input spikes,
                           threshold = base + theta)
    s_i, inh = neuron.step(inh, no drive)                        (when inhibition is on)
    inh = neuron.receive(inh, exc = exc_to_inh_weight * s_e)     (one-to-one)
    exc = neuron.receive(exc, inh = inh_to_exc_weight * (sum(s_i) - s_i))   (hollow)

Patched models run the ``G`` patch groups side by side as a leading axis ``[G, Ng]`` of every
state tensor, each group with its own inhibition; a pixel's spike reaches every patch that holds
it.

Programs: :meth:`SpikingNetwork.learning_program` (one presentation with plasticity, one XLA
program per slot width: the rule's ``decay`` and ``on_pre`` each step, ``on_post`` for each neuron
that fired; its body, shared with stacks of networks, is
:func:`stdp_pipeline.sim.learning.present`), :meth:`SpikingNetwork.input_slots` and
:meth:`SpikingNetwork.input_currents` (the input code's spikes, per step or summed through the
weights) and :meth:`SpikingNetwork.simulate` (a batch of digits with learning off). The drivers
that show digits with retries, one by one or in batches, are in :mod:`stdp_pipeline.sim.present`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np

from stdp_pipeline._tf import tf
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.geometry import Layout
from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.sim import delays as delay_mod
from stdp_pipeline.sim import learning, native, registry, wiring
from stdp_pipeline.sim.codes import base as codes

#: Slot widths of the compiled learning presentations: a digit runs in the narrowest that holds
#: its busiest step, so the per-step gather reads few padding rows.
SLOT_WIDTHS = (8, 12, 16, 24, codes.SLOTS)


class SpikingNetwork(tf.Module):
    """Input code -> excitatory layer (plastic weights, adaptive threshold) <-> inhibitory layer.

    Args:
      config: the experiment config.
      n_inputs: pixels of an image (784 for 28x28 digits).
    """

    def __init__(self, config: ExperimentConfig, n_inputs: int = 784) -> None:
        super().__init__(name="spiking_network")
        self.config = config
        self.layout = Layout.of(config, n_inputs)
        self.n_inputs = n_inputs
        self.n = self.layout.n_outputs
        self.neuron = registry.neuron(config.network.neuron)
        self.exc_params = self.neuron.params(config, "excitatory")
        self.inh_params = self.neuron.params(config, "inhibitory")
        self.rule = registry.rule(config.learning.rule)
        self.rule_params = self.rule.params(config)
        self.code = registry.code(config.encoding.code)
        self.code_params = self.code.params(config)
        lay = self.layout
        #: ``[G, P+1]`` image pixel of each patch row; ``[G, n_inputs+1]`` row of each pixel in
        #: each patch; ``[G]`` weight group of each position.
        self._pixel_of_row = tf.constant(lay.pixel_of_row())
        self._row_of_pixel = tf.constant(lay.row_of_pixel())
        self._wgroup = tf.constant(lay.weight_group_of())
        lc = config.learning
        if lc.w_init_min > 0:
            init = tf.random.stateless_uniform(
                lay.weight_shape, [config.seed, 7919], lc.w_init_min, lc.w_init_max
            )
        else:  # the program of the versions before w_init_min, bit for bit
            init = tf.random.stateless_uniform(
                lay.weight_shape, seed=[config.seed, 7919], maxval=lc.w_init_max
            )
        self.weights = tf.Variable(init, name="weights", trainable=False)
        theta0 = self.neuron.theta_init(self.exc_params)
        self.theta = tf.Variable(tf.fill(lay.theta_shape, theta0), name="theta", trainable=False)
        delay_mod.check(config, lay.patched)
        #: Input delays (``network.input_delay_max_ms``): ``delay_h`` distinct delays in steps
        #: (0 = none) and ``delays`` ``[n_inputs + 1, N]`` int32 per synapse, from the seed.
        self.delay_h = config.input_delay_steps()
        self.delays = delay_mod.draw(config, n_inputs, self.n) if self.delay_h else None
        enc = config.encoding
        #: Steps of the rest simulated after each learning presentation (``encoding.rest =
        #: "simulate"``), else 0.
        self.rest_steps = int(round(enc.rest_ms / enc.dt_ms)) if enc.rest == "simulate" else 0
        #: Input-free steps a learning presentation runs after the shown ones: the simulated
        #: rest, and with input delays at least ``delay_h - 1``, so that every delayed spike
        #: arrives and every depression is applied.
        self.after_steps = max(self.delay_h - 1, self.rest_steps)
        #: The rest (ms) not simulated as steps, over which theta decays by one factor.
        self.rest_left_ms = (
            0.0 if self.rest_steps else max(enc.rest_ms - self.after_steps * enc.dt_ms, 0.0)
        )
        #: Per-sample state carried from one learning presentation to the next (``encoding.rest
        #: = "simulate"``): ``(layers, rule state)`` as variables; None when every presentation
        #: starts from rest. Not learned state: never saved with the weights.
        self.carried = None
        if enc.rest == "simulate":
            self.carried = tf.nest.map_structure(
                lambda x: tf.Variable(x, trainable=False), self._start_state()
            )
        else:
            for role in ("excitatory", "inhibitory"):
                if getattr(getattr(config, role, None), "v_init_offset_mv", 0.0):
                    raise PipelineError(
                        f"{role}.v_init_offset_mv = {getattr(config, role).v_init_offset_mv}: "
                        "the initial voltage is used only when encoding.rest = 'simulate' "
                        "(otherwise every presentation starts at rest); set it to 0"
                    )
        self._native: dict[bool, native.Engine] = {}
        self._native_lock = threading.Lock()  # the input spikes are drawn on a second thread
        self._programs: dict[int, tf.types.experimental.ConcreteFunction] = {}
        self.input_slots = tf.function(self._input_slots, reduce_retracing=True)
        self.input_currents = tf.function(self._input_currents, reduce_retracing=True)
        self.simulate = tf.function(self._simulate, jit_compile=True, reduce_retracing=True)

    # ------------------------------------------------------------------------------------------
    # learned state
    def _start_state(self) -> tuple:
        """Per-sample state of a new network whose state is carried: ``(layers, rule state)``."""
        shape = [self.layout.n_groups, self.layout.group_size]
        layers = (
            self.neuron.start(self.exc_params, shape),
            self.neuron.start(self.inh_params, shape),
        )
        return layers, self.rule.init(self.rule_params, shape, self.n_inputs)

    def get_state(self) -> dict[str, np.ndarray]:
        """Learned state as numpy arrays: ``weights`` and ``theta`` in the layout's shapes."""
        return {"weights": self.weights.numpy(), "theta": self.theta.numpy()}

    def set_state(self, state: dict[str, np.ndarray]) -> None:
        """Load learned state saved by :meth:`get_state`."""
        self.weights.assign(np.asarray(state["weights"], np.float32))
        self.theta.assign(np.asarray(state["theta"], np.float32))

    def _w3(self) -> tf.Tensor:
        """Weights as ``[Gw, P, Ng]`` whatever the layout."""
        lay = self.layout
        return tf.reshape(self.weights, [lay.weight_groups, lay.patch_inputs, lay.group_size])

    def _theta2(self) -> tf.Tensor:
        """Thresholds as ``[Gw, Ng]``."""
        return tf.reshape(self.theta, [self.layout.weight_groups, self.layout.group_size])

    def _per_position(self, x: tf.Tensor) -> tf.Tensor:
        """``[Gw, ...]`` learned values as seen by each of the ``G`` positions."""
        return tf.gather(x, self._wgroup) if self.layout.shared else x

    def _per_weight_group(self, x: tf.Tensor) -> tf.Tensor:
        """Sum ``[G, ...]`` per-position values into their ``Gw`` weight groups."""
        return tf.reduce_sum(x, axis=0, keepdims=True) if self.layout.shared else x

    # ------------------------------------------------------------------------------------------
    # the two layers, one step
    def _init_layers(self, shape: list) -> tuple:
        """Resting state of the excitatory and inhibitory layers, each ``shape``."""
        return (
            self.neuron.init(self.exc_params, shape),
            self.neuron.init(self.inh_params, shape),
        )

    def _layers_step(
        self,
        layers: tuple,
        drive: tf.Tensor,
        theta: tf.Tensor,
        inh_to_exc_weight: float | None = None,
    ) -> tuple[tf.Tensor, tuple]:
        """One step of both layers (see the module docstring). ``drive``: summed input weights of
        this step's input spikes ``[..., G, Ng]``; ``theta`` the adaptive thresholds per position;
        ``inh_to_exc_weight`` the hollow inhibition's weight (None: ``network.inh_to_exc_weight``).
        Returns the excitatory spikes and the new layer states."""
        m, pe, pi = self.neuron, self.exc_params, self.inh_params
        net, dt = self.config.network, self.config.encoding.dt_ms
        w_ie = net.inh_to_exc_weight if inh_to_exc_weight is None else inh_to_exc_weight
        exc, inh = layers
        s_e, exc = m.step(pe, exc, drive, m.base_threshold(pe) + theta, dt)
        if net.inhibition:
            s_i, inh = m.step(pi, inh, None, m.base_threshold(pi), dt)
            inh = m.receive(pi, inh, wiring.one_to_one_apply(s_e, net.exc_to_inh_weight), None, dt)
            exc = m.receive(pe, exc, None, wiring.hollow_apply(s_i, w_ie), dt)
        return s_e, (exc, inh)

    # ------------------------------------------------------------------------------------------
    # input spikes
    def _events(
        self, images: tf.Tensor, indices: tf.Tensor, level: tf.Tensor, stage: str, epoch=0
    ) -> codes.Events:
        """The input code's events for digits ``indices`` at retry ``level`` in pass ``epoch``."""
        keys = codes.presentation_keys(self.config.seed, stage, indices, level, epoch)
        enc = self.config.encoding
        return self.code.events(
            self.code_params, images, keys, level=level, steps=enc.steps, dt_ms=enc.dt_ms
        )

    def _input_slots(
        self,
        images: tf.Tensor,
        indices: tf.Tensor,
        level: tf.Tensor,
        stage: str,
        epoch: tf.Tensor | int = 0,
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """Input spikes of a batch of digits per step: slots ``[B, T, K]`` int32 (image pixels,
        ``n_inputs`` where empty), dropped spikes ``[B]`` and each digit's busiest step ``[B]``.
        Digit ``b``'s spikes depend only on ``(seed, stage, indices[b], level, epoch)``."""
        ev = self._events(images, indices, level, stage, epoch)
        slots = codes.slots(ev, tf.shape(images)[0], self.config.encoding.steps, images.shape[-1])
        return slots, ev.dropped, ev.busiest

    def _input_currents(
        self, images: tf.Tensor, indices: tf.Tensor, level: tf.Tensor, stage: str
    ) -> tf.Tensor:
        """Input currents ``[B, T, G, Ng]`` of a batch of digits: their input spike events summed
        per step through the weights, a sorted sparse segment sum of weight rows,
        ``cur[b*T + t] = sum of W[source] over the events of step t of digit b`` (``X @ W`` for
        the ``[B*T, P]`` spike counts ``X``). Weights are fixed during inference: exact."""
        ev = self._events(images, indices, level, stage)
        b, t = tf.shape(images)[0], self.config.encoding.steps
        lay = self.layout
        g, p, ng = lay.n_groups, lay.patch_inputs, lay.group_size
        if self.delay_h:
            return delay_mod.currents(self.weights, self.delays, self.delay_h, ev, b, t)
        if not lay.patched:
            cur = tf.sparse.segment_sum(self.weights, ev.source, ev.segment, num_segments=b * t)
            return tf.reshape(cur, [b, t, 1, ng])
        # Each event reaches every patch that holds its pixel: segment g*B*T + (b*T + t) (sorted,
        # group-major), weight row wgroup[g]*P + row of the pixel in patch g.
        local = tf.gather(self._row_of_pixel, ev.source, axis=1)  # [G, E]
        inside = local < p
        row = tf.boolean_mask(self._wgroup[:, None] * p + local, inside)
        seg = tf.boolean_mask(tf.range(g)[:, None] * (b * t) + ev.segment[None, :], inside)
        flat_w = tf.reshape(self.weights, [-1, ng])
        cur = tf.sparse.segment_sum(flat_w, row, seg, num_segments=g * b * t)
        cur = tf.transpose(tf.reshape(cur, [g, b * t, ng]), [1, 0, 2])
        return tf.reshape(cur, [b, t, g, ng])

    # ------------------------------------------------------------------------------------------
    # inference: a batch, learning off
    def _simulate(self, currents: tf.Tensor) -> tf.Tensor:
        """Simulate a batch of input currents ``[B, T, G, Ng]`` with learning off (theta
        frozen) and the inference inhibition (``evaluate.inh_to_exc_weight``): excitatory spike
        counts ``[B, G * Ng]`` (group-major)."""
        theta = self._per_position(self._theta2())
        w_ie = self.config.evaluate.inh_to_exc_weight
        b = tf.shape(currents)[0]
        steps = self.config.encoding.steps
        cur_t = tf.transpose(currents, [1, 0, 2, 3])

        def body(t, layers, count):
            s_e, layers = self._layers_step(layers, cur_t[t], theta, w_ie)
            return t + 1, layers, count + s_e

        shape = [b, self.layout.n_groups, self.layout.group_size]
        _, _, count = tf.while_loop(
            lambda t, *_: t < steps,
            body,
            (tf.constant(0), self._init_layers(shape), tf.zeros(shape)),
        )
        return tf.reshape(count, [b, self.n])

    # ------------------------------------------------------------------------------------------
    # learning: one presentation, one compiled program per slot width
    def native_learner(self) -> native.Engine | None:
        """The C engine of the learning presentations (``train.engine = "native"``), compiled on
        first use; None with ``train.engine = "xla"``."""
        return self._native_engine(self.config.train.engine, True)

    def built_native_learner(self) -> native.Engine | None:
        """The C engine of the learning presentations where one was built (none is built here)."""
        return self._native.get(True)

    def native_responder(self) -> native.Engine | None:
        """The C engine of inference (``evaluate.engine = "native"``); None with ``"xla"``."""
        return self._native_engine(self.config.evaluate.engine, False)

    def _native_engine(self, engine: str, learning: bool) -> native.Engine | None:
        if engine != "native":
            return None
        with self._native_lock:
            if learning not in self._native:
                self._native[learning] = native.Engine(self, learning)
            return self._native[learning]

    def learning_program(self, width: int) -> tf.types.experimental.ConcreteFunction:
        """The compiled learning presentation for slots ``[T, width]`` (int32 image pixels,
        ``n_inputs`` = none): it updates ``weights`` and ``theta`` and returns the excitatory
        spike counts ``[G * Ng]``. Compiled once per width (XLA)."""
        if width not in self._programs:
            if self.delay_h:
                self._programs[width] = self._delayed_program()
            else:
                fn = tf.function(self._present_learning, jit_compile=True)
                spec = tf.TensorSpec([self.config.encoding.steps, width], tf.int32)
                self._programs[width] = fn.get_concrete_function(spec)
        return self._programs[width]

    def _delayed_program(self) -> Callable[[tf.Tensor], tf.Tensor]:
        """The learning presentation with input delays (:mod:`stdp_pipeline.sim.delays`): the
        compiled program takes and returns weights and theta as tensors (read from and written to
        the variables around it; XLA recompiled the delayed program at every call when it read the
        variables itself)."""
        compiled = tf.function(
            lambda slots, w, theta: delay_mod.present_learning(self, slots, w, theta),
            jit_compile=True,
        )

        def run(slots: tf.Tensor) -> tf.Tensor:
            count, w, theta = compiled(slots, self.weights.read_value(), self.theta.read_value())
            self.weights.assign(tf.reshape(w, self.weights.shape))
            self.theta.assign(tf.reshape(theta, self.theta.shape))
            return count

        return run

    def _present_learning(self, slots: tf.Tensor) -> tf.Tensor:
        """One presentation with plasticity (see :meth:`learning_program`): the program of
        :func:`stdp_pipeline.sim.learning.present` for this network alone."""
        return learning.present(self, 1, self.weights, self.theta, self.carried, slots[None])[0]
