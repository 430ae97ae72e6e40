#!/usr/bin/env python3
"""Speed and memory of the simulation: training and inference digits/s at several network sizes.

Uses the Diehl & Cook preset (0.5 ms steps, 350 ms presentations, trace STDP) on real MNIST
digits, without input delays (the model the speed targets were set on; ``diehl-cook-100``,
``-400`` and ``-1600`` have them since the fidelity ablation: ``--set
network.input_delay_max_ms=10`` times them), on the engine ``--engine`` names; compilation is
done before timing. Prints one table (pandas) with the machine it ran on.

    python scripts/benchmark.py                       # 100, 400 and 1600 neurons
    python scripts/benchmark.py --sizes 400 --train-digits 1000 --infer-digits 4000
    python scripts/benchmark.py --sizes 400 --warmup-digits 2000   # a network past its start

By default the timed training starts from a fresh network (random weights, thresholds set to
20 mV), where spikes, and so the postsynaptic work, are many more than later in training;
``--warmup-digits N`` first trains on N other digits, untimed, so that the timed digits see a
network in the state a full run spends most of its time in.

``--stack B [B ...]`` also times ``B`` networks (seeds 0 .. B-1) learning the same digits as one
stack (:mod:`stdp_pipeline.sim.stack`, what ``run --seeds ... --stack B`` trains per worker), in
one process: the aggregate network-digits/s and its ratio to one network alone.

    python scripts/benchmark.py --sizes 100 400 --stack 2 4 8 --train-digits 400

``--engine native`` times training and inference in C (``train.engine`` and
``evaluate.engine = "native"``, :mod:`stdp_pipeline.sim.native`) instead of the compiled
TensorFlow programs. ``--own-presets`` runs each size with its own preset (``diehl-cook-N``:
at 1,600 and 6,400 neurons the exponential membrane) instead of the 400-neuron preset resized.

    python scripts/benchmark.py --sizes 400 1600 6400 --own-presets --engine native

``--state RUN/model.npz`` times inference with a trained run's learned state (weights and
theta; one size, the run's) instead of the state the timed training left, as ``assign`` and
``evaluate`` see it; ``--set KEY=VALUE`` adds a config override to every size (input delays,
for one).

    python scripts/benchmark.py --sizes 400 --engine native --state results/dc400/model.npz
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np
import pandas as pd

from stdp_pipeline._tf import tf
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import data
from stdp_pipeline.io.config import load_config
from stdp_pipeline.sim.network import SLOT_WIDTHS, SpikingNetwork
from stdp_pipeline.sim.present import (
    chunk_inputs,
    inference_batch_size,
    respond,
    train_chunk,
    train_chunks,
)
from stdp_pipeline.sim.stack import NetworkStack, train_stack_chunks

#: input delays off: the model of the speed targets (README "Speed")
NO_DELAYS = "network.input_delay_max_ms=0"


def cpu_model() -> str:
    """The processor's model name (Linux), else what the platform module says."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown processor"


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far, MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_config(n: int, engine: str = "xla", own_preset: bool = False, sets: tuple = ()):
    """The benchmark's config for ``n`` neurons (``sets``: more ``KEY=VALUE`` overrides)."""
    engines = [f"train.engine={engine}", f"evaluate.engine={engine}", NO_DELAYS, *sets]
    if own_preset:
        return load_config(f"diehl-cook-{n}", engines)
    return load_config("diehl-cook-400", [f"network.n_excitatory={n}", *engines])


def bench(
    n: int,
    images: np.ndarray,
    train_digits: int,
    infer_digits: int,
    warmup_digits: int = 0,
    engine: str = "xla",
    own_preset: bool = False,
    sets: tuple = (),
    state: dict | None = None,
) -> dict:
    cfg = bench_config(n, engine, own_preset, sets)
    net = SpikingNetwork(cfg)
    t0 = time.perf_counter()
    if net.native_learner() is None:
        for width in SLOT_WIDTHS:
            net.learning_program(width)(tf.fill([cfg.encoding.steps, width], net.n_inputs))
    # a whole inference batch and a smaller one: the input code's tables are traced for both
    # shapes (then for any), as the first batches of an assign or evaluate trace them; traced
    # for the stage timed below ("evaluate": the stage is part of the trace's key)
    b = inference_batch_size(net)
    respond(net, images[:b], np.arange(b), "evaluate")
    respond(net, images[:8], np.arange(8), "evaluate")
    # the training stage's input draw, traced for a whole chunk and a smaller one (a run traces
    # it once, at its first chunks; untimed here as the compiled programs are)
    size = cfg.train.chunk_digits
    for k in (min(size, train_digits), 8):
        chunk_inputs(net, images[:k], np.arange(k))
    compile_s = time.perf_counter() - t0
    net.set_state({"weights": np.asarray(net.weights.numpy()), "theta": net.theta.numpy() * 0 + 20})
    if warmup_digits:  # untimed: the timed digits come after these
        train_chunk(net, images[-warmup_digits:], np.arange(warmup_digits))
    # Timed as the train stage learns: chunks of train.chunk_digits, the next chunk's input spikes
    # drawn on a second thread meanwhile.
    chunks = [(0, slice(lo, min(lo + size, train_digits))) for lo in range(0, train_digits, size)]
    learner = net.native_learner()
    use = learner.thread_use if learner is not None else {}  # presentations per thread count
    before = dict(use)
    t0 = time.perf_counter()
    parts = list(train_chunks(net, images, np.arange(len(images)), chunks))
    train_s = time.perf_counter() - t0
    # the C engine's presentations per thread count while timed ("2x290 1x16": ThreadChooser)
    used = {k: v - before.get(k, 0) for k, v in use.items()}
    threads = " ".join(f"{k}x{v}" for k, v in sorted(used.items(), reverse=True) if v) or "-"
    spikes = np.concatenate([part.spikes for part in parts])
    if state is not None:  # inference as a trained run's assign and evaluate see it
        net.set_state(state)
    t0 = time.perf_counter()
    counts, _ = respond(net, images[:infer_digits], np.arange(infer_digits), "evaluate")
    infer_s = time.perf_counter() - t0
    # Where inference time goes, one batch on one thread: spikes + currents, then dynamics
    # (TensorFlow's engine; the native engine draws slots and simulates digits one by one).
    responder = net.native_responder()
    if responder is None:
        batch = (tf.constant(images[:b]), tf.range(b), tf.constant(0), "evaluate")
        net.input_currents(*batch).numpy()
        t0 = time.perf_counter()
        cur = net.input_currents(*batch)
        cur.numpy()
        currents_ms = (time.perf_counter() - t0) / b * 1000
        t0 = time.perf_counter()
        net.simulate(cur).numpy()
        dynamics_ms = (time.perf_counter() - t0) / b * 1000
    else:
        t0 = time.perf_counter()
        slots = responder.input_slots(images[:b], np.arange(b), 0, "evaluate")[0]
        currents_ms = (time.perf_counter() - t0) / b * 1000
        w, theta = net.weights.numpy(), net.theta.numpy()
        t0 = time.perf_counter()
        responder.respond(slots, w, theta)
        dynamics_ms = (time.perf_counter() - t0) / b * 1000
    return {
        "neurons": n,
        "engine": engine,
        "warm-up digits": warmup_digits,
        "train digits/s": round(train_digits / train_s, 1),
        "train threads": threads,
        "inference digits/s": round(infer_digits / infer_s, 1),
        "60k-digit epoch (min)": round(60000 / (train_digits / train_s) / 60, 1),
        "spikes/digit (train)": round(float(spikes.mean()), 1),
        "spikes/digit (infer)": round(float(counts.sum(1).mean()), 1),
        "infer: spikes(+currents) ms/digit": round(currents_ms, 2),
        "infer: dynamics ms/digit": round(dynamics_ms, 2),
        "compile s": round(compile_s, 1),
        "peak RSS MiB": round(peak_rss_mib()),
        "inference batch": b,
    }


def bench_stack(
    n: int, images: np.ndarray, train_digits: int, b: int, warmup_digits: int, alone: float
) -> dict:
    """``b`` networks of ``n`` neurons (seeds 0 .. b-1) learning as one stack, timed as
    :func:`bench` times one network (the same digits, chunks and warm-up)."""
    cfg = load_config(
        "diehl-cook-400", [f"network.n_excitatory={n}", NO_DELAYS, "train.engine=xla"]
    )
    nets = [SpikingNetwork(cfg.replace(seed=s)) for s in range(b)]
    stack = NetworkStack(nets)
    steps = cfg.encoding.steps
    on = tf.ones([b], tf.bool)
    t0 = time.perf_counter()
    for width in SLOT_WIDTHS:  # compile, then start again from the fresh networks
        stack.learning_program(width)(tf.fill([b, steps, width], nets[0].n_inputs), on)
    compile_s = time.perf_counter() - t0
    stack.load()
    idx = np.arange(len(images))
    if warmup_digits:
        list(train_stack_chunks(stack, images[-warmup_digits:], idx[:warmup_digits], [
            (0, slice(0, warmup_digits))]))  # fmt: skip
    size = cfg.train.chunk_digits
    chunks = [(0, slice(lo, min(lo + size, train_digits))) for lo in range(0, train_digits, size)]
    t0 = time.perf_counter()
    list(train_stack_chunks(stack, images, idx, chunks))
    train_s = time.perf_counter() - t0
    rate = b * train_digits / train_s
    return {
        "neurons": n,
        "networks": b,
        "network-digits/s": round(rate, 1),
        "x one alone": round(rate / alone, 2),
        "compile s": round(compile_s, 1),
        "peak RSS MiB": round(peak_rss_mib()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 400, 1600])
    parser.add_argument("--train-digits", type=int, default=500)
    parser.add_argument("--infer-digits", type=int, default=2000)
    parser.add_argument(
        "--warmup-digits",
        type=int,
        default=0,
        help="train on this many other digits first, untimed (the last digits of the set)",
    )
    parser.add_argument(
        "--stack",
        type=int,
        nargs="*",
        default=[],
        metavar="B",
        help="also time B networks learning as one stack (aggregate network-digits/s)",
    )
    parser.add_argument("--engine", choices=["xla", "native"], default="xla")
    parser.add_argument(
        "--own-presets",
        action="store_true",
        help="each size with its own diehl-cook-N preset (100, 400, 1600, 6400)",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a config override for every size (repeatable), e.g. network.input_delay_max_ms=10",
    )
    parser.add_argument(
        "--state",
        default=None,
        metavar="MODEL_NPZ",
        help="time inference with this trained run's learned state (its model.npz)",
    )
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    state = None
    if args.state is not None:
        try:
            with np.load(args.state) as z:
                state = {"weights": z["weights"], "theta": z["theta"]}
        except (OSError, KeyError, ValueError) as err:
            parser.error(f"--state {args.state}: not a run's model.npz ({err})")
        n_state = state["theta"].shape[0]
        if args.sizes != [n_state]:
            parser.error(
                f"--sizes {' '.join(map(str, args.sizes))}: --state {args.state} holds "
                f"{n_state} neurons; pass --sizes {n_state}"
            )
    try:
        bench_config(args.sizes[0], args.engine, args.own_presets, tuple(args.set))
    except PipelineError as err:
        parser.error(str(err))
    images = data.load_split("mnist", "train", args.data_dir).images.reshape(-1, 784)
    if args.warmup_digits < 0 or args.warmup_digits + args.train_digits > len(images):
        parser.error(
            f"--warmup-digits {args.warmup_digits}: must be >= 0 and leave --train-digits "
            f"{args.train_digits} of the {len(images)} digits"
        )
    if any(b < 1 for b in args.stack):
        parser.error(f"--stack {' '.join(map(str, args.stack))}: networks must be >= 1")
    rows = [
        bench(
            n,
            images,
            args.train_digits,
            args.infer_digits,
            args.warmup_digits,
            args.engine,
            args.own_presets,
            tuple(args.set),
            state,
        )
        for n in args.sizes
    ]
    stacked = [
        bench_stack(
            row["neurons"], images, args.train_digits, b, args.warmup_digits, row["train digits/s"]
        )
        for row in rows
        for b in args.stack
    ]
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {cpu_model()}; "
        f"Python {platform.python_version()}, TensorFlow {tf.__version__}"
    )
    print(
        f"Diehl & Cook {'presets' if args.own_presets else 'preset (400, resized)'}, "
        f"{args.engine} engine{''.join(', ' + x for x in args.set)}, dt 0.5 ms, 350 ms per "
        f"digit; {args.train_digits} training "
        f"digits (learning on, one by one, after {args.warmup_digits} untimed), "
        f"{args.infer_digits} inference digits (batched"
        + (f", learned state of {args.state})" if state is not None else ")")
    )
    print(pd.DataFrame(rows).to_string(index=False))
    if stacked:
        print(f"\nnetworks learning as one stack ({args.train_digits} digits each):")
        print(pd.DataFrame(stacked).to_string(index=False))


if __name__ == "__main__":
    main()
