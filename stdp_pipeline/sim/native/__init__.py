"""The native engine: presentations in C (``train.engine`` / ``evaluate.engine = "native"``).

The compiled TensorFlow program of a learning presentation (:mod:`stdp_pipeline.sim.learning`)
runs some forty kernels a step; at 400 neurons their fixed cost, not the arithmetic, sets the
speed. ``present.c`` (beside this file) runs the same model, step for step and in the same float32
operation order, as one C function: Diehl & Cook's whole-digit network with conductance neurons
(``network.neuron = "conductance"``, every switch of that model), with input delays of up to
64 steps or none (:mod:`stdp_pipeline.sim.delays`: the delayed drive in a ring of arrival steps,
the pre trace read through each synapse's delay from a bit mask of each input's recent spikes);
learning by trace STDP (``learning.rule = "trace"``), each presentation from rest or, with
``encoding.rest = "simulate"``, on from the state the last one left (the rest simulated with no
input; the state pulled and pushed with the weights). Inference (``stdp_respond``, learning
off) runs digits one after another, a batch per thread, for any learning rule.
:func:`unsupported` names what stands in the way of another configuration, which keeps
``"xla"``. Three shortcuts, all
exact, for presentations from rest: an inhibitory neuron whose partner has not fired in the
presentation is at rest and its step changes nothing; a postsynaptic trace is 0 until its neuron
fires, so only the neurons that have fired are stepped; and while they are under a quarter of the
layer, an input spike's depression touches only their weights (``W - nu_pre * 0`` is ``W``; a row
that may hold a weight outside ``[0, w_max]`` is clipped whole first). A presentation of a large
layer runs on several threads, each stepping its own range of neurons and joined twice a step
(the same bits with any number; :class:`ThreadChooser` times the counts from one to the most
the cores allow, at most one per :data:`THREAD_NEURONS` neurons and ``$OMP_NUM_THREADS``).

``draw.c`` draws the Poisson code's input spikes, bit for bit those of
:func:`stdp_pipeline.sim.codes.poisson.events`, from the tables TensorFlow computes
(:func:`~stdp_pipeline.sim.codes.poisson.rate_tables`): integer hashes, comparisons and one
float32 multiply. Other input codes are drawn by TensorFlow.

Both files are compiled once per process with the system's C compiler (``$CC``, else ``cc``;
``-O3 -march=native -ffp-contract=off``: vector code for this CPU, in 512-bit registers where it
has them, no fused multiply-adds, so each operation rounds as TensorFlow's does) into a temporary
folder and loaded with ctypes; calls release the GIL. exp and expm1 are the file's own (within 2
ulp), not XLA's, and the column sums of the weight normalisation run in another order: learned
weights differ from the TensorFlow engine's in the last bits, and as training goes on a spike may
move, so a run's accuracy differs as another seed's would (tests bound the difference; a
2,000-digit run measured in README "Speed"). Inference with forward Euler is the same arithmetic
as TensorFlow's.

:class:`Engine` keeps the weights and thresholds as numpy arrays while a chunk of digits
learns: :meth:`Engine.pull` copies them from the network's variables, :meth:`Engine.present`
shows one digit, :meth:`Engine.push` writes them back; :meth:`Engine.respond` runs inference.
"""

from __future__ import annotations

import ctypes
import math
import os
import platform
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from stdp_pipeline._tf import tf
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.sim.codes import base as codes
from stdp_pipeline.sim.codes import poisson

SOURCES = (Path(__file__).with_name("present.c"), Path(__file__).with_name("draw.c"))
FLAGS = ("-O3", "-march=native", "-ffp-contract=off", "-fno-math-errno", "-fPIC", "-shared")
#: x86: vector loops in the widest registers the CPU has (GCC and Clang default to 256-bit ones
#: on AVX-512 CPUs); the same operations lane by lane, so the same bits: 10-16 % faster at 6,400
#: neurons (README "Speed")
WIDE = ("-mprefer-vector-width=512",) if platform.machine().lower() in ("x86_64", "amd64") else ()

#: Neurons per thread of a presentation with learning, at least: each step joins the threads
#: twice, which a smaller layer does not repay (README "Speed": 800 neurons with input delays
#: gain nothing from a second thread, 1,600 without delays lose).
THREAD_NEURONS = 1024


def training_threads(n: int) -> int:
    """The most threads for one presentation with learning of ``n`` neurons: one per
    :data:`THREAD_NEURONS` neurons, at most the cores this process may run on and
    ``$OMP_NUM_THREADS`` where set (a sweep task's share of the cores sets it)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    omp = os.environ.get("OMP_NUM_THREADS", "")
    if omp.isdigit() and int(omp) > 0:
        cores = min(cores, int(omp))
    return max(1, min(cores, n // THREAD_NEURONS, 16))


class ThreadChooser:
    """Picks the threads of each presentation with learning by timing them: ``most`` threads,
    the powers of two below it and one thread each run ``probe`` presentations in turn, then the
    fastest runs the next ``hold``, then all are timed again. Any count gives the same results
    bit for bit; which is fastest depends on the layer, the spikes (a fresh network fires more)
    and the load that other processes put on the cores (threads that wait for each other at
    every step lose much when another process takes their cores), so it is measured rather than
    guessed."""

    def __init__(self, most: int, probe: int = 8, hold: int = 1000) -> None:
        below = [2**k for k in range(1, 5) if 2**k < most]
        self.options = tuple(sorted({most, 1, *below}, reverse=True))
        self.probe, self.hold = probe, hold
        self._probes = probe * len(self.options)  # presentations of a round's probes
        self._at = 0  # position in the round: the probes, then the hold
        self._spent = dict.fromkeys(self.options, 0.0)
        self._best = self.options[0]

    def threads(self) -> int:
        """The thread count of the next presentation."""
        if self._at < self._probes:
            return self.options[self._at // self.probe]
        return self._best

    def record(self, seconds: float) -> None:
        """The wall time of the presentation just run with :meth:`threads`."""
        if self._at < self._probes:
            self._spent[self.options[self._at // self.probe]] += seconds
            if self._at == self._probes - 1:
                self._best = min(self.options, key=self._spent.__getitem__)
        self._at += 1
        if self._at >= self._probes + self.hold:  # a new round
            self._at = 0
            self._spent = dict.fromkeys(self.options, 0.0)


def _page_rows(a: np.ndarray, stride: int) -> np.ndarray:
    """``a`` ``[R, N]`` as float32 in rows of ``stride`` floats (zeros after the N), the first
    on a 4,096-byte boundary (so that with ``stride`` a multiple of 1,024 every row is)."""
    rows, n = a.shape
    flat = np.zeros(rows * stride + 1024, np.float32)
    start = (-flat.ctypes.data % 4096) // 4
    out = flat[start : start + rows * stride].reshape(rows, stride)
    out[:, :n] = a
    return out


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None


def compiler() -> str:
    """The C compiler: ``$CC`` or ``cc``."""
    return os.environ.get("CC", "cc")


def library() -> ctypes.CDLL:
    """``present.c`` compiled for this machine and loaded (once per process)."""
    global _lib
    with _lock:
        if _lib is not None:
            return _lib
        cc = compiler()
        if shutil.which(cc) is None:
            raise PipelineError(
                f"train.engine = 'native' needs a C compiler: {cc!r} was not found (set CC to "
                "one, or use train.engine = 'xla')"
            )
        folder = tempfile.mkdtemp(prefix="stdp-native-")
        out = os.path.join(folder, "present.so")
        cmd = [cc, *FLAGS, *WIDE, "-pthread", "-o", out, *map(str, SOURCES), "-lm"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["no message"]
            first = next((x for x in lines if "error" in x), lines[0])
            raise PipelineError(
                f"train.engine = 'native': compiling the C engine with {cc} failed ({first}); "
                "use train.engine = 'xla'"
            )
        lib = ctypes.CDLL(out)
        f32, i32 = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int32)
        lib.stdp_present.restype = ctypes.c_int
        u8 = ctypes.POINTER(ctypes.c_uint8)
        lib.stdp_present.argtypes = [
            i32, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, f32, ctypes.c_int, f32,
            ctypes.c_int, f32, f32, f32, f32, u8, ctypes.c_int, f32, ctypes.c_int,
        ]  # fmt: skip
        i64 = ctypes.POINTER(ctypes.c_int64)
        lib.stdp_respond.restype = ctypes.c_int
        lib.stdp_respond.argtypes = [
            i32, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_int, f32, f32, ctypes.c_int,
            f32, f32, f32, ctypes.c_float, u8, ctypes.c_int, f32,
        ]  # fmt: skip
        lib.stdp_poisson_counts.restype = None
        lib.stdp_poisson_counts.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, f32, ctypes.c_int, i32, i32, i32,
        ]  # fmt: skip
        lib.stdp_poisson_slots.restype = None
        lib.stdp_poisson_slots.argtypes = [
            ctypes.c_int, ctypes.c_int, ctypes.c_int, i64, f32, f32, i32, ctypes.c_int,
            ctypes.c_int, i32,
        ]  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)  # the loaded library stays mapped
        _lib = lib
        return lib


def unsupported(net: Any, learning: bool = True) -> str | None:
    """Why the native engine cannot run ``net`` (a
    :class:`~stdp_pipeline.sim.network.SpikingNetwork`) with learning on (``learning``) or off,
    or None when it can (:meth:`ExperimentConfig.native_problem
    <stdp_pipeline.io.config.ExperimentConfig.native_problem>`; the config refuses such a
    combination when it is loaded)."""
    if net.layout.patched:  # images of another side than 28
        return f"images cut into patches of {net.layout.patch_px} px (it runs whole digits)"
    return net.config.native_problem(learning)


def _layer_constants(p: Any, dt: float) -> np.ndarray:
    """A conductance layer's constants in ``present.c``'s order, rounded to float32 from the
    double values TensorFlow folds (``dt / tau`` and the decay factors)."""
    if p.integration == "euler":
        dec_ge, dec_gi = 1.0 - dt / p.tau_ge_ms, 1.0 - dt / p.tau_gi_ms
    else:
        dec_ge, dec_gi = math.exp(-dt / p.tau_ge_ms), math.exp(-dt / p.tau_gi_ms)
    return np.array(
        [
            p.v_rest_mv, p.v_reset_mv, p.v_thresh_mv, p.e_exc_mv, p.e_inh_mv,
            dt / p.tau_mem_ms, -dt / p.tau_mem_ms, dec_ge, dec_gi,
            p.refractory_ms, max(p.block_ms, p.refractory_ms),
            float(p.hold_v), float(p.membrane == "exponential"),
        ],
        np.float32,
    )  # fmt: skip


class Engine:
    """One network's presentations in C (see the module docstring): with learning
    (:meth:`pull`, :meth:`present`, :meth:`push`; ``train.engine = "native"``) or without
    (:meth:`respond`; ``evaluate.engine = "native"``), and the Poisson input spikes of both
    (:meth:`input_slots`).

    Raises :class:`~stdp_pipeline.errors.PipelineError` when the network's configuration is not
    one the engine runs, or no C compiler builds it."""

    def __init__(self, net: Any, learning: bool = True) -> None:
        key = "train.engine" if learning else "evaluate.engine"
        why = unsupported(net, learning)
        if why is not None:
            raise PipelineError(f"{key} = 'native' does not run {why}; use {key} = 'xla'")
        self.net = net
        self.learning = learning
        self.lib = library()
        cfg = net.config
        enc, nc, lc = cfg.encoding, cfg.network, cfg.learning
        dt = enc.dt_ms
        self.exc = _layer_constants(net.exc_params, dt)
        self.inh = _layer_constants(net.inh_params, dt)
        head = [dt, nc.exc_to_inh_weight, nc.inh_to_exc_weight, float(nc.inhibition)]
        #: input delays: ``h`` distinct delays in steps (0 = none) and the delay of each synapse
        #: ``[P, N]`` uint8 (None without delays)
        self.h = net.delay_h
        self.delays = None
        if self.h:
            self.delays = np.ascontiguousarray(net.delays.numpy()[:-1], np.uint8)
        #: steps of a learning presentation: the shown ones, then a simulated rest's (and with
        #: delays at least ``h - 1``)
        self.steps = enc.steps + net.after_steps
        #: threads of a presentation with learning: None, chosen by timing (ThreadChooser); a
        #: number, that many (the same results with any number)
        self.threads: int | None = None
        most = training_threads(net.n)
        self._chooser = ThreadChooser(most)
        #: floats per row of the pulled weights: with threads, rows padded to whole 4 KiB pages,
        #: so that no page of W holds two threads' columns (their prefetches would take each
        #: other's cache lines)
        self.stride = -(-net.n // 1024) * 1024 if most > 1 else net.n
        #: presentations with learning run so far, per thread count
        self.thread_use: dict[int, int] = {}
        if learning:
            pe, rp = net.exc_params, net.rule_params
            rest_ms = net.rest_left_ms  # the rest not simulated as steps
            adapt = net.neuron.adaptation(pe, dt, self.steps, rest_ms)
            exact = adapt.exact  # theta in the exact form, else stepwise
            span = self.steps * dt + rest_ms
            if exact:
                end = math.exp(-span / pe.tau_theta_ms)
            else:
                end = math.exp(-rest_ms / pe.tau_theta_ms) if rest_ms > 0 else 1.0
            rest = [
                lc.weight_sum, math.exp(-dt / rp.tau_post1_ms), math.exp(-dt / rp.tau_post2_ms),
                rp.nu_pre, rp.nu_post, rp.tau_pre_ms, rp.w_max, float(exact),
                dt / pe.tau_theta_ms, pe.theta_plus_mv, math.exp(-dt / pe.tau_theta_ms), end,
                self.steps * dt,
            ]  # fmt: skip
        else:  # learning off: no rule, no adaptation
            rest = [0.0] * 13
        self.consts = np.array(head + rest, np.float32)
        self.w: np.ndarray | None = None
        self.theta: np.ndarray | None = None
        #: the carried per-sample state in ``present.c``'s order (``encoding.rest =
        #: "simulate"``), else None
        self.state: np.ndarray | None = None
        #: the Poisson code's spikes are drawn in C from TensorFlow's tables; other codes'
        #: by TensorFlow
        self.draws = cfg.encoding.code == "poisson"
        self._tables = tf.function(self._rate_tables, reduce_retracing=True)

    def _rate_tables(self, images, indices, level, stage, epoch):
        """Keys ``[B]`` and the Poisson code's tables (:func:`poisson.rate_tables`)."""
        cfg = self.net.config
        keys = codes.presentation_keys(cfg.seed, stage, indices, level, epoch)
        return (keys, *poisson.rate_tables(self.net.code_params, images, level, cfg.encoding.dt_ms))

    def input_slots(
        self, images: np.ndarray, indices: np.ndarray, level: int, stage: str, epoch: int = 0
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The input spikes of :meth:`SpikingNetwork.input_slots
        <stdp_pipeline.sim.network.SpikingNetwork.input_slots>` as numpy arrays, bit for bit:
        slots ``[B, T, K]`` int32, dropped spikes ``[B]``, busiest step ``[B]``. The Poisson code's
        are drawn in C (``draw.c``) from TensorFlow's tables."""
        args = (
            tf.constant(images, tf.uint8),
            tf.constant(indices, tf.int32),
            tf.constant(level),
            stage,
            tf.constant(epoch, tf.int64),
        )
        if not self.draws:
            return tuple(x.numpy() for x in self.net.input_slots(*args))
        keys, cdf, total, table = (x.numpy() for x in self._tables(*args))
        b, steps, n_in = len(indices), self.net.config.encoding.steps, self.net.n_inputs
        keys = np.ascontiguousarray(keys, np.int64)
        cdf, total, table = (np.ascontiguousarray(x, np.float32) for x in (cdf, total, table))
        counts = np.empty((b, steps), np.int32)
        dropped, busiest = np.zeros(b, np.int32), np.zeros(b, np.int32)
        f32, i32 = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int32)
        k64 = keys.ctypes.data_as(ctypes.POINTER(ctypes.c_int64))
        self.lib.stdp_poisson_counts(
            b, steps, table.shape[1], k64, table.ctypes.data_as(f32), codes.SLOTS,
            counts.ctypes.data_as(i32), dropped.ctypes.data_as(i32), busiest.ctypes.data_as(i32),
        )  # fmt: skip
        width = max(int(busiest.max()), 1) if b else 1
        out = np.empty((b, steps, width), np.int32)
        self.lib.stdp_poisson_slots(
            b, steps, n_in, k64, cdf.ctypes.data_as(f32), total.ctypes.data_as(f32),
            counts.ctypes.data_as(i32), codes.SLOTS, width, out.ctypes.data_as(i32),
        )  # fmt: skip
        return out, dropped, busiest

    def respond(self, slots: np.ndarray, w: np.ndarray, theta: np.ndarray) -> np.ndarray:
        """Presentations with learning off, from rest: ``slots`` ``[B, T, K]`` int32, weights
        ``w`` ``[P, N]`` and thresholds ``theta`` ``[N]`` (float32, C order, fixed) -> the
        excitatory spike counts ``[B, N]`` (float32), with the inference inhibition
        (``evaluate.inh_to_exc_weight``). Releases the GIL: several threads may respond at
        once."""
        net = self.net
        x = np.ascontiguousarray(slots, np.int32)
        w, theta = np.ascontiguousarray(w, np.float32), np.ascontiguousarray(theta, np.float32)
        if w.shape != (net.n_inputs, net.n) or theta.shape != (net.n,):
            raise ValueError(f"weights {w.shape} and theta {theta.shape} are not this network's")
        b, steps, width = x.shape
        counts = np.empty((b, net.n), np.float32)
        w_ie = net.config.evaluate.inh_to_exc_weight
        if w_ie is None:
            w_ie = net.config.network.inh_to_exc_weight
        f32, i32 = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int32)
        rc = self.lib.stdp_respond(
            x.ctypes.data_as(i32), b, steps, width, net.n_inputs, w.ctypes.data_as(f32),
            theta.ctypes.data_as(f32), net.n, self.exc.ctypes.data_as(f32),
            self.inh.ctypes.data_as(f32), self.consts.ctypes.data_as(f32), w_ie, self._delays(),
            self.h, counts.ctypes.data_as(f32),
        )  # fmt: skip
        if rc != 0:
            raise MemoryError("the native engine could not allocate its per-sample state")
        return counts

    def _delays(self) -> Any:
        """The delays for ``present.c``: a pointer, or None (NULL) without delays."""
        if self.delays is None:
            return None
        return self.delays.ctypes.data_as(ctypes.POINTER(ctypes.c_uint8))

    def _carried(self) -> list:
        """The carried variables in ``present.c``'s order: both layers' (v, ge, gi, since), the
        post traces, the last input spike times."""
        (exc, inh), rule = self.net.carried
        return [*exc, *inh, rule.post1, rule.post2, rule.last_pre]

    def pull(self) -> None:
        """Copy the network's weights ``[P, N]`` and thresholds ``[N]`` (and the carried
        per-sample state, when the rest is simulated) from its variables."""
        self.w = _page_rows(self.net.weights.numpy(), self.stride)
        self.theta = np.array(self.net.theta.numpy(), np.float32, order="C", copy=True)
        if self.net.carried is not None:
            parts = [v.numpy().reshape(-1) for v in self._carried()]
            parts[-1] = parts[-1][: self.net.n_inputs]  # not the padding input's entry
            self.state = np.ascontiguousarray(np.concatenate(parts), np.float32)

    def push(self) -> None:
        """Write the weights and thresholds (and the carried state) back into the network's
        variables."""
        if self.w is None or self.theta is None:
            raise RuntimeError("push() before pull()")
        self.net.weights.assign(self.w[:, : self.net.n])
        self.net.theta.assign(self.theta)
        if self.state is not None:
            carried, at = self._carried(), 0
            for k, v in enumerate(carried):
                # per neuron [N]; the last, per input, keeps its padding input's entry
                size = self.net.n_inputs if k == len(carried) - 1 else self.net.n
                new = v.numpy().reshape(-1).copy()
                new[:size] = self.state[at : at + size]
                v.assign(new.reshape(v.shape))
                at += size

    def present(self, slots: np.ndarray) -> np.ndarray:
        """One presentation with learning: ``slots`` ``[T, K]`` int32 image pixels per step
        (``n_inputs`` = none). Updates the pulled weights and thresholds; returns the excitatory
        spike counts ``[N]`` (float32)."""
        if self.w is None or self.theta is None:
            raise RuntimeError("present() before pull()")
        net = self.net
        x = np.ascontiguousarray(slots, np.int32)
        steps, width = x.shape
        if steps != net.config.encoding.steps:
            raise ValueError(
                f"slots hold {steps} steps, a presentation {net.config.encoding.steps}"
            )
        counts = np.empty(net.n, np.float32)
        f32, i32 = ctypes.POINTER(ctypes.c_float), ctypes.POINTER(ctypes.c_int32)
        state = None if self.state is None else self.state.ctypes.data_as(f32)
        threads = self._chooser.threads() if self.threads is None else self.threads
        t0 = time.perf_counter()
        rc = self.lib.stdp_present(
            x.ctypes.data_as(i32), steps, self.steps, width, net.n_inputs,
            self.w.ctypes.data_as(f32), self.stride, self.theta.ctypes.data_as(f32), net.n,
            self.exc.ctypes.data_as(f32), self.inh.ctypes.data_as(f32),
            self.consts.ctypes.data_as(f32), state, self._delays(), self.h,
            counts.ctypes.data_as(f32), threads,
        )  # fmt: skip
        if rc != 0:
            raise MemoryError("the native engine could not allocate its per-sample state")
        if self.threads is None:
            self._chooser.record(time.perf_counter() - t0)
        self.thread_use[threads] = self.thread_use.get(threads, 0) + 1
        return counts
