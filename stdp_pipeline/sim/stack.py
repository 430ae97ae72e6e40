"""Several networks that learn at once: one compiled program steps ``B`` independent networks.

A learning presentation of a small network costs much of its time in the fixed cost of its 700
compiled steps (README, "Speed"): a stack shares it. :class:`NetworkStack` runs ``B`` networks whose
configs differ only in their seed as one program: every state tensor gains a leading axis of
``B`` networks, folded into the patch-group axis the neuron models and learning rules already
broadcast over (``[B * G, Ng]``), so the parts of :mod:`stdp_pipeline.sim.registry` serve unchanged.
Each network keeps its own input spikes (its seed's), its own learned state and per-sample state,
and its own retries: a call shows every network its own next presentation (a retry or its next
digit), so networks never wait on each other's retries except at the end of a chunk, where a
network that has finished is shown nothing and its state is left as it was.

Per network the arithmetic is that of :meth:`SpikingNetwork.learning_program`; the steps of one
call run until the first step on which any network fires, then the postsynaptic updates of every
network that fired are applied (:func:`stdp_pipeline.sim.learning.present`, the program of a
network alone too). A stack of one is that network bit for bit; in a wider stack the compiler
contracts a multiply-subtract of the depression into a fused multiply-add where the program of
one network does not, so the weights agree to float32 rounding (tested: the same spikes and
retries on short runs, the same accuracy over 2,000 digits).

Not stacked: input delays (``network.input_delay_max_ms``), whose program is built differently.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

from stdp_pipeline._tf import tf
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.config import diff
from stdp_pipeline.sim import learning
from stdp_pipeline.sim.network import SLOT_WIDTHS, SpikingNetwork
from stdp_pipeline.sim.present import ChunkInputs, TrainStats, chunk_inputs, drawn_ahead


def check_stackable(nets: Sequence[SpikingNetwork]) -> None:
    """Raise a one-line :class:`PipelineError` unless ``nets`` can learn as one stack: at least
    one network, configs equal but for ``seed`` (and ``name``), the same inputs, no input
    delays, the TensorFlow engine (``train.engine = "xla"``)."""
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
    why = first.config.stack_problem()
    if why is not None:
        raise PipelineError(f"{why}; train them one by one")


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
        """:func:`stdp_pipeline.sim.learning.present` for the ``B`` networks."""
        return learning.present(
            self.nets[0], self.b, self.weights, self.theta, self.carried, slots, active
        )


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
    for (epoch, sel), inputs in drawn_ahead(
        chunks,
        lambda epoch, sel: [chunk_inputs(n, images[sel], indices[sel], epoch) for n in stack.nets],
    ):
        yield train_stack_chunk(stack, images[sel], indices[sel], epoch=epoch, inputs=inputs)
