#!/usr/bin/env python3
"""Cross-check the `original` flavour against Brian2: the authors' equations integrated as Brian 1
integrates them (forward Euler on every variable of a group), trained in Brian2, scored here.

Diehl & Cook's network at 100 neurons, as in the authors' code: conductance neurons, the 50 ms
block absent (the timer with units off blocks nothing beyond the 5 ms refractory period), the
membrane held at reset while refractory, the 150 ms rest simulated with the state carried,
initial voltages 40 mV under rest, initial weights ``(U + 0.01) * 0.3``, input delays (this
project's, drawn from its seed, so that both simulators see the same synapses), trace STDP with
the pre trace seen through the delays, weights normalised to 78 at the start of every digit.
Brian2 runs it as one compiled C++ program (``cpp_standalone``), which cannot re-present a quiet
digit: retries are off on both sides (``encoding.max_retries=0`` here).

Three steps; Brian2 is not a dependency of this project and wants its own environment
(``python -m venv b2 && b2/bin/pip install brian2 'numpy<2'``)::

    python scripts/brian2_crosscheck.py prepare --seed 0 --out b2run
    b2/bin/python scripts/brian2_crosscheck.py simulate --prepared b2run --out b2run
    python scripts/brian2_crosscheck.py score --state b2run/brian2_state.npz --seed 0

``prepare`` writes this project's delays for the seed and the training digits, read by this
project's loader (the Brian2 environment needs neither it nor TensorFlow); ``simulate`` prints
the spikes a training digit and the thresholds it reached, ``score`` the accuracy of its learned
state with labels from the 60,000 training digits and the 10,000 test digits, inferred by this
project as any run is (README, "Fidelity"). The same network trained
here: ``stdp-pipeline run RUN --config diehl-cook-100-original --set encoding.max_retries=0``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

PRESET = "diehl-cook-100-original"
OVERRIDES = ("encoding.max_retries=0",)
N = 100


def _config(seed: int, extra: list[str]):
    from stdp_pipeline.io.config import load_config

    return load_config(PRESET, [*OVERRIDES, f"seed={seed}", *extra])


def prepare(seed: int, out: Path, extra: list[str], data_dir: str | None) -> None:
    """Write ``out/delays.npy`` (this project's input delays for ``seed``, steps ``[784, N]``)
    and ``out/images.npy`` (the training digits ``[60000, 784]`` uint8, in training order)."""
    import stdp_pipeline as sp
    from stdp_pipeline.sim import delays

    d = delays.draw(_config(seed, extra), 784, N).numpy()[:784]
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "delays.npy", d)
    np.save(out / "images.npy", sp.load_digits("mnist", "train", data_dir).images)
    print(f"delays of seed {seed} ({d.min()} to {d.max()} steps) and training digits in {out}")


def simulate(prepared: Path, out: Path, digits: int, seed: int, conductances: str) -> None:
    """Train in Brian2 (forward Euler, 0.5 ms steps; 350 ms of input, 150 ms of rest a digit)
    and write ``out/brian2_state.npz``: ``weights`` [784, N], ``theta`` [N] mV, ``counts``.

    ``conductances="exact"`` decays ``ge`` and ``gi`` by ``exp(-dt / tau)`` after each step's
    membrane update instead (``excitatory.integration = inhibitory.integration = "exact"``)."""
    import brian2 as b2
    from brian2 import Hz, ms, mV

    out.mkdir(parents=True, exist_ok=True)
    b2.set_device("cpp_standalone", directory=str(out / "build"))
    b2.defaultclock.dt = 0.5 * ms
    b2.seed(seed)  # the Poisson spikes; the initial weights are drawn here
    images = np.load(prepared / "images.npy")[:digits]
    stim = b2.TimedArray(images.astype(np.float64) / 4.0 * Hz, dt=500 * ms)  # p / 4 Hz
    if conductances == "exact":  # ge, gi as parameters, decayed after the state update
        g_eqs = "ge : 1\n gi : 1"
        decay = "ge = ge * exp(-dt / (1.0*ms)); gi = gi * exp(-dt / (2.0*ms))"
    else:
        g_eqs = "dge/dt = -ge / (1.0*ms) : 1\n dgi/dt = -gi / (2.0*ms) : 1"
        decay = None
    inputs = b2.PoissonGroup(
        784, rates="stim(t, i) * int((t % (500*ms)) < 350*ms)", namespace={"stim": stim}
    )

    exc = b2.NeuronGroup(
        N,
        """
        dv/dt = (-65*mV - v + ge * (-v) + gi * (-100*mV - v)) / (100*ms) : volt (unless refractory)
        """
        + g_eqs
        + """
        dtheta/dt = -theta / (1e7*ms) : volt
        wsum : 1
        """,
        threshold="v > theta - 20*mV - 52*mV",
        reset="v = -65*mV; theta += 0.05*mV",
        refractory=5 * ms,
        method="euler",
    )
    exc.v = -105 * mV
    exc.theta = 20 * mV
    inh = b2.NeuronGroup(
        N,
        """
        dv/dt = (-60*mV - v + ge * (-v) + gi * (-85*mV - v)) / (10*ms) : volt (unless refractory)
        """
        + g_eqs,
        threshold="v > -40*mV",
        reset="v = -45*mV",
        refractory=2 * ms,
        method="euler",
    )
    inh.v = -100 * mV
    if decay is not None:
        for group in (exc, inh):
            group.run_regularly(decay, when="groups", order=1)  # after the state updater
    e_to_i = b2.Synapses(exc, inh, on_pre="ge_post += 10.4")
    e_to_i.connect(j="i")
    i_to_e = b2.Synapses(inh, exc, on_pre="gi_post += 17.0")
    i_to_e.connect(condition="i != j")
    syn = b2.Synapses(
        inputs,
        exc,
        model="""
        w : 1
        dpre/dt = -pre / (20*ms) : 1 (event-driven)
        dpost1/dt = -post1 / (20*ms) : 1 (event-driven)
        dpost2/dt = -post2 / (40*ms) : 1 (event-driven)
        wsum_post = w : 1 (summed)
        """,
        on_pre="""
        ge_post += w
        pre = 1.
        w = clip(w - 0.0001 * post1, 0, 1)
        """,
        on_post="""
        post2before = post2
        w = clip(w + 0.01 * pre * post2before, 0, 1)
        post1 = 1.
        post2 = 1.
        """,
    )
    syn.connect()  # synapse k = i * N + j
    syn.w = (np.random.default_rng(seed).random(784 * N) + 0.01) * 0.3
    syn.delay = np.load(prepared / "delays.npy").reshape(-1) * 0.5 * ms
    # normalise each neuron's input weights to 78 at the start of every digit: the column sums
    # on a 500 ms clock (not every step), then the rescaling
    summed = syn.summed_updaters["wsum_post"]
    summed._clock = b2.Clock(dt=500 * ms)
    summed.when, summed.order = "start", 0
    syn.run_regularly("w = w * 78.0 / wsum_post", dt=500 * ms, when="start", order=1)
    monitor = b2.SpikeMonitor(exc)

    t0 = time.perf_counter()
    b2.run(digits * 500 * ms)
    wall = time.perf_counter() - t0
    counts = np.zeros((digits, N), np.int32)
    np.add.at(counts, ((np.asarray(monitor.t / ms) // 500).astype(int), np.asarray(monitor.i)), 1)
    weights = np.zeros((784, N))
    weights[np.asarray(syn.i), np.asarray(syn.j)] = np.asarray(syn.w)
    theta = np.asarray(exc.theta / mV)
    np.savez(out / "brian2_state.npz", weights=weights, theta=theta, counts=counts)
    s = counts.sum(axis=1)
    print(f"{digits} digits in {wall:.0f} s (compiling included), state in {out}/brian2_state.npz")
    print(
        f"spikes a digit: {s.mean():.2f} (first 1,000 {s[:1000].mean():.2f}, last 1,000 "
        f"{s[-1000:].mean():.2f}); under 5 spikes: {(s < 5).mean():.1%}; theta mean "
        f"{theta.mean():.2f} mV, max {theta.max():.2f} mV"
    )


def score(state_file: Path, seed: int, extra: list[str], data_dir: str | None) -> None:
    """Accuracy of a Brian2-learned state, inferred by this project (labels from the 60,000
    training digits, the 10,000 test digits)."""
    import stdp_pipeline as sp

    state = np.load(state_file)
    net = sp.build_network(_config(seed, extra))
    net.set_state({"weights": state["weights"].astype(np.float32), "theta": state["theta"]})
    train = sp.load_digits("mnist", "train", data_dir)
    test = sp.load_digits("mnist", "test", data_dir)
    assignment = sp.assign(net, train.images, train.labels)
    acc = sp.evaluate(net, assignment, test.images, test.labels)["accuracy"]
    per_class = np.bincount(assignment.classes[assignment.classes >= 0], minlength=10)
    print(
        f"{state_file}: {acc['all_activity']:.2%} all activity, {acc['proportion']:.2%} "
        f"proportion, {acc['linear']:.2%} linear read-out; neurons per class {per_class.tolist()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("prepare", help="export delays and digits (this environment)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--data-dir", default=None)
    p = sub.add_parser("simulate", help="train in Brian2 (an environment with brian2)")
    p.add_argument("--prepared", type=Path, required=True, help="the folder `prepare` wrote")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--digits", type=int, default=60000)
    p.add_argument("--seed", type=int, default=1, help="seed of the initial weights")
    p.add_argument("--conductances", choices=("euler", "exact"), default="euler")
    p = sub.add_parser("score", help="score a Brian2 state here (this environment)")
    p.add_argument("--state", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0, help="the seed whose delays it trained with")
    p.add_argument("--data-dir", default=None)
    for name in ("prepare", "score"):
        sub.choices[name].add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()
    if args.step == "prepare":
        prepare(args.seed, args.out, args.set, args.data_dir)
    elif args.step == "simulate":
        simulate(args.prepared, args.out, args.digits, args.seed, args.conductances)
    else:
        score(args.state, args.seed, args.set, args.data_dir)


if __name__ == "__main__":
    main()
