"""Training health (:mod:`stdp_pipeline.stages.health`): the signals by hand, the flags at their
limits, the monitor's window and its once-only warnings, and two real runs: one overdriven into
the degenerate regime (every neuron fires for every digit), which raises the flags, warns once,
stops under ``--strict`` with a checkpoint and resumes; one healthy Diehl & Cook run, which raises
none."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from bases import DC100
from click.testing import CliRunner

from stdp_pipeline.cli.main import main
from stdp_pipeline.io.config import ExperimentConfig, all_keys, load_config
from stdp_pipeline.stages import health

CHUNK = 10


def _limits(**kw) -> health.Limits:
    base = dict(
        n_neurons=4,
        theta_init=20.0,
        min_spikes=5,
        max_retries=8,
        initial_weight_max=0.2,
        window=40,
        stall_after=100,
    )
    return health.Limits(**{**base, **kw})


def _healthy_signals() -> dict[str, float]:
    """Values measured on a healthy diehl-cook-100 MNIST run after 1,000 digits."""
    return {
        "active_share": 0.06,
        "retry_cap_share": 0.0,
        "theta_spread": 1.5,
        "theta_rise": 0.42,
        "silent_share": 0.0,
        "top_winner_share": 0.05,
        "weight_rise": 1.84,
        "field_similarity": 0.9,
        "rest_share": 0.0,
        "theta_budget": 45.0,
    }


def test_signals_by_hand():
    counts = np.array([[3, 0, 0, 0], [2, 1, 0, 0], [0, 0, 0, 0], [4, 0, 0, 1]], np.float32)
    assert health.active_share(counts) == pytest.approx(5 / 16)
    np.testing.assert_array_equal(health.winners(counts), [[0], [0], [-1], [0]])
    assert health.top_winner_share(health.winners(counts), 4) == 1.0  # the silent digit not counted
    assert health.silent_share(counts.sum(axis=0)) == 0.25  # neuron 2 never fired
    # two patch groups of 2 neurons, each with its own inhibition: judged per group, median
    np.testing.assert_array_equal(
        health.winners(counts, groups=2), [[0, -1], [0, -1], [-1, -1], [0, 1]]
    )
    assert health.top_winner_share(health.winners(counts, groups=2), 2) == 1.0
    assert health.silent_share(np.array([5, 0, 0, 0, 3, 3]), groups=3) == 0.5  # 0.5, 1, 0
    assert math.isnan(health.top_winner_share(np.full((3, 2), -1), 2))
    assert health.retry_cap_share(np.array([0, 8, 8, 3]), 8) == 0.5
    assert health.retry_cap_share(np.array([0, 0]), 0) == 0.0  # no retries: nothing to pin
    assert health.theta_spread(np.array([21.0, 22.0, 23.0]), 20.0) == pytest.approx(2.0 / 2.0)
    assert math.isnan(health.theta_spread(np.full(3, 20.0), 20.0))  # no rise yet
    assert health.theta_rise(np.array([30.0, 30.0]), 20.0) == pytest.approx(0.5)
    # alike fields: cosine 1; one-hot fields of 4 neurons: 1 / sqrt(4) to their mean direction
    assert health.field_similarity(np.tile(np.arange(1.0, 6.0)[:, None], (1, 3))) == pytest.approx(
        1.0
    )
    assert health.field_similarity(np.eye(6, 4)) == pytest.approx(0.5)
    # patched layout [G, P, Ng]: per weight group
    assert health.field_similarity(np.stack([np.eye(6, 4), np.eye(6, 4)])) == pytest.approx(0.5)


def test_thresholds_at_rest_by_hand():
    """Diehl & Cook's threshold is v_thresh - 20 mV + theta = -72 mV + theta: at theta = 7 mV it
    equals the resting potential (-65 mV); within 1 mV of it (theta < 8 mV) a neuron counts as
    at rest. diehl-cook-6400's onset responders sat at theta 7.7-8.0 mV."""
    from stdp_pipeline.sim.network import SpikingNetwork
    from stdp_pipeline.stages.train import theta_at_rest

    theta = np.array([7.5, 7.99, 8.0, 8.1, 30.0, 45.0, 7.7, 20.0])
    assert health.rest_share(theta, 7.0) == pytest.approx(3 / 8)
    assert health.rest_share(theta.reshape(2, 4), 7.0) == pytest.approx(3 / 8)  # patch groups
    assert math.isnan(health.rest_share(theta, float("nan")))  # a model without a rest
    dc = ExperimentConfig().with_overrides(["network.n_excitatory=10"])
    assert theta_at_rest(SpikingNetwork(dc)) == pytest.approx(7.0)
    shifted = dc.with_overrides(["excitatory.v_rest_mv=-60"])
    assert theta_at_rest(SpikingNetwork(shifted)) == pytest.approx(12.0)
    current = dc.with_overrides(["network.neuron=current", "learning.rule=event"])
    assert math.isnan(theta_at_rest(SpikingNetwork(current)))  # its threshold never reaches rest
    lim = _limits(theta_at_rest=7.0)
    flags = health.evaluate(
        {**_healthy_signals(), "rest_share": health.rest_share(theta, 7.0)},
        np.full(4, 9.0),
        10,
        lim,
    )
    assert "38% of the neurons have a threshold within 1 mV" in flags["thresholds_at_rest"]
    line = health.warning_line("thresholds_at_rest", flags["thresholds_at_rest"], 10, lim)
    assert line.endswith(
        "a slower theta decay held it off at 6,400 neurons (README); set by "
        "excitatory.tau_theta_ms, excitatory.theta_plus_mv"
    )


def test_theta_budget_by_hand():
    """Theta rises theta_plus at a spike and decays with tau_theta, so a layer of N neurons firing
    S spikes a digit of T ms holds a mean theta of theta_plus * tau_theta * S / (T N): Diehl &
    Cook's 0.05 mV * 1e7 ms = 5e5 mV ms, T = 350 + 150 ms. Retries lengthen T; the check waits
    for a full window and is off for a model without the product (the current LIF)."""
    from stdp_pipeline.sim.network import SpikingNetwork
    from stdp_pipeline.stages.train import theta_hold_mv_ms

    dc = ExperimentConfig().with_overrides(["network.n_excitatory=10"])
    assert theta_hold_mv_ms(SpikingNetwork(dc)) == pytest.approx(5e5)
    slow = dc.with_overrides(["excitatory.tau_theta_ms=2e7", "excitatory.theta_plus_mv=0.1"])
    assert theta_hold_mv_ms(SpikingNetwork(slow)) == pytest.approx(2e6)
    current = dc.with_overrides(["network.neuron=current", "learning.rule=event"])
    assert math.isnan(theta_hold_mv_ms(SpikingNetwork(current)))
    w = np.full((784, 6400), 0.1)
    lim = health.Limits.of(dc, 6400, 20.0, w, theta_hold_mv_ms=5e5)
    assert lim.digit_ms == 500.0
    # the 6,400-neuron preset's run: 100 spikes a digit hold 5e5 * 100 / 500 / 6400 = 15.6 mV
    assert health.theta_budget(100.0 * 5000, 5000, lim) == pytest.approx(15.625)
    assert health.theta_budget(100.0 * 5000, 10000, lim) == pytest.approx(15.625 / 2)  # retries
    assert math.isnan(health.theta_budget(10.0, 1, health.Limits.of(dc, 6400, 20.0, w)))
    assert math.isnan(health.theta_budget(10.0, 0, lim))

    # 4 neurons, 2e4 mV ms, 500 ms a digit: 10 mV of budget per spike a digit
    mon = health.HealthMonitor(_limits(window=40, theta_hold_mv_ms=2e4, digit_ms=500.0))
    counts = np.zeros((20, 4), np.float32)
    counts[np.arange(20), np.arange(20) % 4] = 6  # 6 spikes a digit, shared: 60 mV
    theta, w = np.array([20.0, 21.0, 26.0, 22.0]), np.eye(6, 4) * 0.5 + 0.01
    args = (counts.sum(axis=1), np.zeros(20, np.int32), theta, w)
    signals, flags = mon.observe(20, counts, *args)
    assert math.isnan(signals["theta_budget"]) and flags == {}  # window not full
    signals, flags = mon.observe(40, counts, *args)
    assert signals["theta_budget"] == pytest.approx(60.0) and flags == {}
    shown3 = (counts.sum(axis=1), np.full(20, 2, np.int32), theta, w)  # each digit shown 3 times
    signals, flags = mon.observe(60, counts, *shown3)
    assert signals["theta_budget"] == pytest.approx(6 * 40 * 2e4 / ((20 + 60) * 500) / 4)  # 30
    assert "theta_budget_low" not in flags  # the limit itself is not under it
    signals, flags = mon.observe(80, counts, *shown3)
    assert signals["theta_budget"] == pytest.approx(20.0)
    assert list(flags) == ["theta_budget_low"]
    (line,) = mon.announce(flags, 80)
    assert line == (
        "warning: training health 'theta_budget_low' at digit 80: the layer's 4 neurons fire "
        "enough to hold their thresholds 20.0 mV above base on average, where theta settles "
        "(limit 30 mV; the 100- and 400-neuron presets hold 45-51): thresholds this low let "
        "neurons fire without a learned field; a decay about 2.0 times slower would hold 40 mV "
        "at this firing; raise excitatory.tau_theta_ms, excitatory.theta_plus_mv"
    )


def test_initial_weight_max_of_uniform_weights_is_twice_the_mean():
    """Uniform initial weights normalised to sum 78 over 784 inputs peak near 2 * 78 / 784
    = 0.199 (a little above, the largest of 100 columns), whatever w_init_max: the value the
    issue's stalled Fashion-MNIST run never left."""
    rng = np.random.default_rng(0)
    for top in (0.3, 0.05):
        w = rng.uniform(0, top, (784, 100)).astype(np.float32)
        got = health.initial_weight_max(w, 78.0, 1.0)
        assert got == pytest.approx((w * (78.0 / w.sum(axis=0))).max(), rel=1e-5)
        assert 0.199 < got < 0.22
    assert health.initial_weight_max(np.full((3, 2), 0.4), 0.0, 1.0) == pytest.approx(0.4)


def test_healthy_signals_raise_no_flag_and_each_limit_raises_its_own():
    lim = _limits()
    spikes = np.full(20, 15.0)
    assert health.evaluate(_healthy_signals(), spikes, 1000, lim) == {}
    beyond = {
        "thresholds_uniform": {"theta_spread": 0.5 * health.THETA_SPREAD_MIN},
        "retry_cap": {"retry_cap_share": health.RETRY_CAP_MAX + 0.05},
        "spikes_high": {"active_share": health.ACTIVE_SHARE_MAX + 0.05},
        "silent_neurons": {"silent_share": health.SILENT_SHARE_MAX + 0.05},
        "dominant_neuron": {"top_winner_share": health.TOP_WINNER_SHARE_MAX + 0.05},
        "weights_stalled": {"weight_rise": health.WEIGHT_RISE_MIN - 0.1},
        "fields_alike": {"field_similarity": health.FIELD_SIMILARITY_MAX + 0.01},
        "thresholds_at_rest": {"rest_share": health.REST_SHARE_MAX + 0.05},
        "theta_budget_low": {"theta_budget": health.THETA_BUDGET_MIN_MV - 1.0},
    }
    for name, change in beyond.items():
        flags = health.evaluate({**_healthy_signals(), **change}, spikes, 1000, lim)
        assert list(flags) == [name], name
    low = health.evaluate(_healthy_signals(), np.array([2.0, 3.0, 9.0]), 1000, lim)
    assert list(low) == ["spikes_low"]
    assert "median 3 spikes per digit" in low["spikes_low"]
    # uniform thresholds need a real rise; stalled weights need stall_after digits
    calm = {**_healthy_signals(), "theta_spread": 0.0, "theta_rise": 0.01, "weight_rise": 1.0}
    assert health.evaluate(calm, spikes, 99, lim) == {}
    assert list(health.evaluate(calm, spikes, 100, lim)) == ["weights_stalled"]
    # NaN signals (window not full yet) raise nothing
    nan = dict.fromkeys(health.SIGNALS, float("nan"))
    assert health.evaluate({**nan, "theta_rise": float("nan")}, spikes, 1000, lim) == {}


def test_fix_keys_are_real_config_keys_for_every_neuron_and_rule():
    keys = set(all_keys())
    for neuron in ("conductance", "current"):
        for rule in ("trace", "event"):
            for check in health.CHECKS:
                fix = health.fix_keys(check, neuron, rule)
                assert fix and set(fix) <= keys, (check.name, neuron, rule, fix)
    retry = next(c for c in health.CHECKS if c.name == "retry_cap")
    assert "current_lif.thr_beta" in health.fix_keys(retry, "current", "trace")
    stalled = next(c for c in health.CHECKS if c.name == "weights_stalled")
    assert health.fix_keys(stalled, "conductance", "event")[0] == "event_stdp.eta"
    assert tuple(f"flag_{c.name}" for c in health.CHECKS) == health.FLAGS
    from stdp_pipeline.stages.curves import FLAG_PANELS

    assert set(FLAG_PANELS) == set(health.CHECK_NAMES)  # each flag shaded on its own panel


def test_limits_of_a_config():
    cfg = ExperimentConfig().with_overrides(["network.n_excitatory=400", "encoding.max_retries=3"])
    w = np.random.default_rng(1).uniform(0, 0.3, (784, 400))
    lim = health.Limits.of(cfg, 400, 20.0, w)
    assert (lim.n_neurons, lim.max_retries, lim.min_spikes) == (400, 3, 5)
    assert lim.window == 1000 and lim.stall_after == 2000
    assert 0.199 < lim.initial_weight_max < 0.22


def test_monitor_window_and_warnings_once():
    """One neuron wins every digit: the dominant flag waits for a full window, then rises; the
    warning line is returned once, with the keys that usually fix it."""
    lim = _limits(window=40)
    mon = health.HealthMonitor(lim)
    counts = np.zeros((20, 4), np.float32)
    counts[:, 2] = 6
    spikes, retries = counts.sum(axis=1), np.zeros(20, np.int32)
    theta = np.array([20.0, 20.0, 26.0, 20.0])
    w = np.eye(6, 4) * 0.5 + 0.01
    signals, flags = mon.observe(20, counts, spikes, retries, theta, w)
    assert math.isnan(signals["top_winner_share"]) and "dominant_neuron" not in flags
    signals, flags = mon.observe(40, counts, spikes, retries, theta, w)
    assert signals["top_winner_share"] == 1.0 and signals["silent_share"] == 0.75
    assert {"dominant_neuron", "silent_neurons"} <= set(flags)
    lines = mon.announce(flags, 40)
    assert len(lines) == len(flags)
    dominant = next(line for line in lines if "'dominant_neuron'" in line)
    assert dominant.startswith("warning: training health 'dominant_neuron' at digit 40: ")
    assert "100% of the last 40 digits" in dominant
    assert dominant.endswith("usually fixed by excitatory.theta_plus_mv, network.inh_to_exc_weight")
    assert "\n" not in dominant
    _, flags = mon.observe(60, counts, spikes, retries, theta, w)
    assert "dominant_neuron" in flags and mon.announce(flags, 60) == []
    assert mon.announced["dominant_neuron"] == 40
    # the window slides: 40 digits won in turn by all four neurons clear both flags
    shared = np.zeros((20, 4), np.float32)
    shared[np.arange(20), np.arange(20) % 4] = 6
    _, flags = mon.observe(80, shared, spikes, retries, theta, w)
    assert "dominant_neuron" in flags  # half the window is still the old one
    signals, flags = mon.observe(100, shared, spikes, retries, theta, w)
    assert signals["top_winner_share"] == 0.25 and signals["silent_share"] == 0.0
    assert "dominant_neuron" not in flags and "silent_neurons" not in flags


# --- real runs ----------------------------------------------------------------------------------
OVERDRIVEN = [
    "--set", "network.n_excitatory=20",
    "--set", "poisson.rate_max_hz=700",  # 11 times Diehl & Cook's peak rate
    "--set", "encoding.presentation_ms=100",
    "--set", "data.train_digits=30",
    "--set", "data.assign_start=30",
    "--set", "data.assign_digits=20",
    "--set", "data.allow_overlap=false",
    "--set", "data.test_digits=20",
    "--set", f"train.chunk_digits={CHUNK}",
]  # fmt: skip


def _invoke(*args: str):
    return CliRunner().invoke(main, ["--quiet", *args], catch_exceptions=False)


def _curve(run) -> pd.DataFrame:
    return pd.read_csv(run / "train_curve.csv")


def test_overdriven_run_is_flagged_strict_stops_resume_warns_once(tmp_path, mnist_dir):
    """At 11 times the normal input rate every neuron fires for every digit. `run --strict`
    stops training after the first chunk with a one-line error and a checkpoint; `train --resume`
    finishes from it, with the flag 'spikes_high' raised in every chunk (train_curve.csv,
    TensorBoard, the manifest, curves.png) and one warning line, not one per chunk."""
    run = tmp_path / "hot"
    strict = _invoke(
        "run", str(run), "--config", DC100, "--data-dir", str(mnist_dir), *OVERDRIVEN,
        "--strict",
    )  # fmt: skip
    assert strict.exit_code == 2
    message = strict.output.strip().splitlines()[-1]  # after the encode line
    assert message.startswith(f"Error: --strict: training stopped at digit {CHUNK} ")
    assert "'spikes_high'" in message and "usually fixed by poisson.target_rate_hz" in message
    assert message.endswith(f"`stdp-pipeline train {run} --resume` goes on")
    assert (run / "checkpoints" / f"ckpt-{CHUNK:09d}.npz").is_file()
    assert not (run / "model.npz").exists()

    resumed = _invoke("train", str(run), "--resume")
    assert resumed.exit_code == 0, resumed.output
    warnings = [line for line in resumed.output.splitlines() if line.startswith("warning:")]
    hot = [w for w in warnings if "'spikes_high'" in w]
    assert len(hot) == 1  # two flagged chunks in this session, one line
    assert hot[0].startswith(f"warning: training health 'spikes_high' at digit {2 * CHUNK}: ")
    assert "usually fixed by poisson.target_rate_hz" in hot[0]
    assert "training health flags: spikes_high" in resumed.output
    curve = _curve(run)
    assert list(curve["position"]) == [CHUNK, 2 * CHUNK, 3 * CHUNK]
    assert (curve["flag_spikes_high"] == 1).all()
    assert (curve["active_share"] > 0.8).all()  # a competing layer: a few per cent
    assert (curve["flag_silent_neurons"] == 0).all()
    # all 20 thresholds climb together: uniform by the third chunk (theta up 15 %)
    assert curve["theta_spread"].iloc[-1] < health.THETA_SPREAD_MIN
    assert list(curve["flag_thresholds_uniform"]) == [0, 0, 1]
    assert sum("'thresholds_uniform' at digit 30" in w for w in warnings) == 1
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["train"]["health_flags"]["spikes_high"] == CHUNK
    events = b"".join(p.read_bytes() for p in (run / "tensorboard").glob("events.out.tfevents.*"))
    assert b"health/flag_spikes_high" in events and b"health/active_share" in events
    assert _invoke("curves", str(run)).exit_code == 0
    assert (run / "curves.png").stat().st_size > 0


def test_healthy_mnist_run_raises_no_flag(mnist_dir):
    """The tests' diehl-cook-100 base (100 neurons, 350 ms, Diehl & Cook rates) on 20 MNIST digits,
    in chunks of 10 as the train stage runs them: a few per cent of the neurons answer each digit
    and their thresholds spread apart; no flag. The learning program's per-neuron spike counts
    (TrainStats.neuron_spikes) add up to the spikes per digit."""
    import stdp_pipeline as sp
    from stdp_pipeline.sim.present import train_chunk

    digits = sp.load_digits("mnist", "train", str(mnist_dir)).images[:20]
    net = sp.build_network(DC100)
    lim = health.Limits.of(
        net.config, net.n, net.neuron.theta_init(net.exc_params), net.get_state()["weights"]
    )
    monitor = health.HealthMonitor(lim)
    for lo in (0, 10):
        stats = train_chunk(net, digits[lo : lo + 10], np.arange(lo, lo + 10))
        assert stats.neuron_spikes.shape == (10, 100)
        np.testing.assert_array_equal(stats.neuron_spikes.sum(axis=1), stats.spikes)
        state = net.get_state()
        signals, flags = monitor.observe(
            lo + 10, stats.neuron_spikes, stats.spikes, stats.retries, state["theta"],
            state["weights"],
        )  # fmt: skip
        assert flags == {}, flags
        assert signals["active_share"] < 0.15
        assert signals["theta_spread"] > 1.0
        assert signals["field_similarity"] < 0.9
        assert signals["retry_cap_share"] == 0.0
        assert math.isnan(signals["silent_share"])  # window of 1,000 digits not reached


def test_mean_theta_settles_at_the_budget_on_mnist(mnist_dir):
    """The budget is where the mean theta goes: the tests' diehl-cook-100 base with theta
    decaying 40 times faster (tau_theta 2.5e5 ms, 500 digits) on 3,000 MNIST digits settles
    within 5 % of the budget of the last 1,000 digits (measured: 28.0 against 28.4 mV, the layer
    then firing about 105 spikes a digit); after the first 1,000 digits the thresholds still
    stand above it (18.0 against 14.4 mV) and the flag is raised."""
    import stdp_pipeline as sp
    from stdp_pipeline.sim.present import train_chunk
    from stdp_pipeline.stages.train import theta_hold_mv_ms

    digits = sp.load_digits("mnist", "train", str(mnist_dir)).images[:3000]
    net = sp.build_network(load_config(DC100, ["excitatory.tau_theta_ms=2.5e5"]))
    lim = health.Limits.of(
        net.config, net.n, 20.0, net.get_state()["weights"], theta_hold_mv_ms=theta_hold_mv_ms(net)
    )
    assert lim.theta_hold_mv_ms == pytest.approx(0.05 * 2.5e5)
    monitor = health.HealthMonitor(lim)
    seen = {}
    for lo in range(0, 3000, 250):
        stats = train_chunk(net, digits[lo : lo + 250], np.arange(lo, lo + 250))
        state = net.get_state()
        signals, flags = monitor.observe(
            lo + 250, stats.neuron_spikes, stats.spikes, stats.retries, state["theta"],
            state["weights"],
        )  # fmt: skip
        seen[lo + 250] = (float(state["theta"].mean()), signals["theta_budget"], flags)
    theta, budget, flags = seen[1000]
    assert budget < theta and budget < health.THETA_BUDGET_MIN_MV and "theta_budget_low" in flags
    theta, budget, _ = seen[3000]
    assert theta == pytest.approx(budget, rel=0.05)
    assert 25.0 < budget < 40.0


@pytest.mark.slow
def test_healthy_mnist_stage_run_raises_no_flag_over_the_window(tmp_path, mnist_dir):
    """The train stage on 1,200 digits of the tests' diehl-cook-100 base (the window checks and
    the stall check start at 1,000): no flag column set, no warning line, no flags in the
    manifest."""
    run = tmp_path / "ok"
    args = [
        "--set", "data.train_digits=1200",
        "--set", "data.assign_start=1200",
        "--set", "data.assign_digits=20",
        "--set", "data.test_digits=20",
        "--set", "train.chunk_digits=200",
    ]  # fmt: skip
    enc = _invoke("encode", str(run), "--config", DC100, "--data-dir", str(mnist_dir), *args)
    assert enc.exit_code == 0, enc.output
    result = _invoke("train", str(run), "--strict")
    assert result.exit_code == 0, result.output
    assert "warning:" not in result.output and "training health" not in result.output
    curve = _curve(run)
    assert (curve[list(health.FLAGS)] == 0).all().all()
    assert curve["silent_share"].iloc[-1] == 0.0
    assert curve["top_winner_share"].iloc[-1] < 0.1
    assert curve["weight_rise"].iloc[-1] > 1.5
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["stages"]["train"]["health_flags"] == {}


@pytest.mark.slow
@pytest.mark.parametrize("membrane", ["exponential", "euler"])
def test_diehl_cook_1600_healthy_with_the_exponential_membrane_only(tmp_path, mnist_dir, membrane):
    """The diehl-cook-1600 preset over 2,000 digits (--strict): with its exponential membrane no
    flag; with forward Euler (the papers' integration) inhibitory volleys bounce the inhibited
    neurons above threshold and the run stops on a flag (measured: 250 spikes a digit at digit
    1,000 against 35, fields alike at 1,750)."""
    run = tmp_path / membrane
    args = [
        "--set", "data.train_digits=2000",
        "--set", "data.assign_start=2000",
        "--set", "data.assign_digits=20",
        "--set", "data.test_digits=20",
        "--set", "train.epochs=1",
        "--set", f"excitatory.membrane={membrane}",
        "--set", f"inhibitory.membrane={membrane}",
        # the preset as measured here, before its input delays and native engine
        "--set", "network.input_delay_max_ms=0",
        "--set", "train.engine=xla", "--set", "evaluate.engine=xla",
    ]  # fmt: skip
    enc = _invoke(
        "encode", str(run), "--config", "diehl-cook-1600", "--data-dir", str(mnist_dir), *args
    )
    assert enc.exit_code == 0, enc.output
    result = _invoke("train", str(run), "--strict")
    if membrane == "exponential":
        assert result.exit_code == 0, result.output
        curve = _curve(run)
        assert (curve[list(health.FLAGS)] == 0).all().all()
        assert curve["spikes_mean"].max() < 80
    else:
        assert result.exit_code == 2 and "--strict: training stopped" in result.output
        curve = pd.read_csv(run / "checkpoints" / "curve.csv")
        assert curve["spikes_mean"].max() > 200


def test_curves_shade_the_flagged_chunks_and_read_runs_without_flags(tmp_path):
    """flag_spans joins consecutive flagged chunks (a chunk runs from the previous row's position);
    plot_curves draws a curve with flag columns and one from before they existed."""
    from stdp_pipeline.stages.curves import flag_spans, plot_curves
    from stdp_pipeline.stages.train import CURVE_COLUMNS, HEALTH_COLUMNS

    rows = 4
    curve = pd.DataFrame({c: np.linspace(0.1, 0.4, rows) for c in CURVE_COLUMNS})
    curve["position"] = [10, 20, 30, 40]
    curve["epoch"] = 0
    curve[list(health.FLAGS)] = 0
    curve["flag_retry_cap"] = [1, 1, 0, 1]
    assert flag_spans(curve, "flag_retry_cap") == [(0.0, 20.0), (30.0, 40.0)]
    assert flag_spans(curve, "flag_spikes_low") == []
    assert flag_spans(curve.drop(columns=["flag_spikes_low"]), "flag_spikes_low") == []
    log = pd.DataFrame(
        {"position": np.arange(40), "epoch": 0, "spikes": np.arange(40.0), "retries": 0}
    )
    plot_curves(curve, log, tmp_path / "flags.png", "flags")
    plot_curves(curve.drop(columns=list(HEALTH_COLUMNS)), log, tmp_path / "old.png", "old")
    assert (tmp_path / "flags.png").stat().st_size > 0 and (tmp_path / "old.png").stat().st_size > 0
