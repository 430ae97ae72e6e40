"""The native learning engine (train.engine = "native") against the dense numpy reference and the
compiled TensorFlow program: the same spikes, weights within float32 rounding, and clear errors
for the configurations it does not run."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from bases import DC100
from test_network import P, _config, _one_presentation, assert_equals_reference

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import data
from stdp_pipeline.io.config import load_config
from stdp_pipeline.sim import native
from stdp_pipeline.sim.network import SpikingNetwork
from stdp_pipeline.sim.present import respond, train_chunk


@pytest.fixture(scope="module")
def digits(mnist_dir):
    """The first 40 MNIST training digits, flattened to [40, 784] uint8."""
    return data.load_split("mnist", "train", mnist_dir).images[:40].reshape(40, -1)


def _pair(*overrides: str) -> tuple[SpikingNetwork, SpikingNetwork]:
    """The same network (same seed, same initial weights) on each engine."""
    xla = SpikingNetwork(_config(*overrides))
    nat = SpikingNetwork(_config(*overrides, "train.engine=native"))
    assert np.array_equal(xla.weights.numpy(), nat.weights.numpy())
    return xla, nat


def _start(nets, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    state = {
        "weights": rng.uniform(0.0, 0.3, (P, 10)).astype(np.float32),
        "theta": rng.uniform(15.0, 20.0, 10).astype(np.float32),
    }
    for net in nets:
        net.set_state(state)
    return state


def test_native_presentation_equals_dense_reference(digits):
    """One learning presentation in C equals the float64 numpy reference: the same spikes per
    neuron, weights and theta to float32 rounding (the reference of the TensorFlow engine's
    test, test_network.py)."""
    cfg = _config(
        "encoding.presentation_ms=350",
        "excitatory.tau_theta_ms=2000",  # visible theta decay, over the steps and over rest_ms
        "trace_stdp.nu_pre=0.01",
        "trace_stdp.nu_post=0.05",
        "train.engine=native",
    )
    net = SpikingNetwork(cfg)
    before = _start([net], 1)
    slots = _one_presentation(net, digits[0], 0)
    learner = net.native_learner()
    learner.pull()
    count = learner.present(slots)
    learner.push()
    assert_equals_reference(cfg, before, net.get_state(), count, slots)


VARIANTS = {
    "preset": [],
    "exponential membrane, Euler conductances, integrate while refractory, no block": [
        "excitatory.membrane=exponential",
        "inhibitory.membrane=exponential",
        "excitatory.integration=euler",
        "inhibitory.integration=euler",
        "excitatory.refractory_v=integrate",
        "excitatory.spike_block_ms=0",
    ],
    "no inhibition, stepwise theta": ["network.inhibition=false", "excitatory.tau_theta_ms=100"],
    "simulated rest": [
        "encoding.rest=simulate",
        "encoding.rest_ms=40",
        "excitatory.v_init_offset_mv=-40",
        "inhibitory.v_init_offset_mv=-40",
    ],
}


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_native_training_follows_the_tensorflow_engine(digits, variant):
    """Twelve digits learned one after another (retries included) by each engine: the same
    spikes of every neuron on every digit, weights and theta apart by float32 rounding only (the
    column sums and exp are computed in another order: measured below 1e-6)."""
    overrides = [
        "encoding.presentation_ms=150",
        "trace_stdp.nu_post=0.05",
        *VARIANTS[variant],
    ]
    xla, nat = _pair(*overrides)
    _start([xla, nat], 4)
    a = train_chunk(xla, digits[:12], np.arange(12))
    b = train_chunk(nat, digits[:12], np.arange(12))
    np.testing.assert_array_equal(a.neuron_spikes, b.neuron_spikes)
    np.testing.assert_array_equal(a.retries, b.retries)
    assert a.spikes.sum() >= 20  # the test can fail: neurons fired
    w_x, w_n = xla.weights.numpy(), nat.weights.numpy()
    assert np.abs(w_x - w_n).max() < 1e-5
    np.testing.assert_allclose(nat.theta.numpy(), xla.theta.numpy(), rtol=1e-6)
    assert np.abs(w_n - _start([], 4)["weights"]).max() > 0.01  # learning moved the weights
    if xla.carried is not None:  # the per-sample state carried to the next digit
        for x, n in zip(tf.nest.flatten(xla.carried), tf.nest.flatten(nat.carried), strict=True):
            x, n = x.numpy().reshape(-1), n.numpy().reshape(-1)
            if x.size == P + 1:  # last input spike times; the padding input's is not used
                x, n = x[:P], n[:P]
            np.testing.assert_allclose(n, x, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("delays", ["0", "10"])
def test_depression_of_few_active_neurons_clips_rows_out_of_range(digits, delays):
    """While few neurons have fired in a presentation, the C engine depresses only their weights
    (the others' post1 is 0: W - nu_pre * 0 is W); a row that holds a weight above w_max (loaded
    so, no normalisation) is still clipped whole at its input's first spike, as by TensorFlow:
    the same spikes, the same weights to float32 rounding, with and without input delays."""
    overrides = [
        "encoding.presentation_ms=150", "network.n_excitatory=40", "learning.weight_sum=0",
        "trace_stdp.nu_pre=0.01", f"network.input_delay_max_ms={delays}",
    ]  # fmt: skip
    xla, nat = _pair(*overrides)
    rng = np.random.default_rng(11)
    w = rng.uniform(0.0, 0.3, (P, 40)).astype(np.float32)
    bright = np.flatnonzero(digits[0] > 200)  # pixels that spike in the first digit
    w[bright[:5], :7] = 1.5  # over w_max = 1 in five rows
    state = {"weights": w, "theta": np.full(40, 15.0, np.float32)}
    for net in (xla, nat):
        net.set_state(state)
    a = train_chunk(xla, digits[:4], np.arange(4))
    b = train_chunk(nat, digits[:4], np.arange(4))
    np.testing.assert_array_equal(a.neuron_spikes, b.neuron_spikes)
    # a digit where fewer than 10 of the 40 neurons fired: the short path all through it
    assert 0 < (a.neuron_spikes > 0).sum(axis=1).min() < 10
    w_x, w_n = xla.weights.numpy(), nat.weights.numpy()
    assert np.abs(w_x - w_n).max() < 1e-6
    over = w_n[bright[:5], :7]  # clipped to w_max at their first spike, then depressed a little
    assert w_n.max() <= 1.0 and over.min() > 0.9
    assert np.abs(w_n - w)[:, 7:].max() > 1e-4  # depression moved other weights too


def test_an_input_spiking_twice_in_a_step_is_depressed_once(digits):
    """Slots with one pixel twice in a step: its row takes the step's drive twice and the
    depression once, on both engines."""
    xla, nat = _pair("encoding.presentation_ms=50", "trace_stdp.nu_pre=0.05")
    _start([xla, nat], 5)
    slots = np.full((100, 8), P, np.int32)
    busy = np.flatnonzero(digits[1] > 128)[:6]
    slots[::2, :6] = busy
    slots[1::4, :2] = busy[0]  # pixel busy[0] twice in these steps
    count_x = xla.learning_program(8)(tf.constant(slots)).numpy()
    learner = nat.native_learner()
    learner.pull()
    count_n = learner.present(slots)
    learner.push()
    np.testing.assert_array_equal(count_x, count_n)
    assert count_x.sum() > 0
    assert np.abs(xla.weights.numpy() - nat.weights.numpy()).max() < 1e-6


def test_native_learning_leaves_inference_to_its_own_engine(digits):
    """train.engine = "native" writes the network's variables; inference (here TensorFlow's)
    reads them and leaves them bit-identical, with the counts of a TensorFlow-trained network
    holding the same state."""
    xla, nat = _pair("encoding.presentation_ms=100", "evaluate.batch_digits=4")
    train_chunk(nat, digits[:6], np.arange(6))
    state = nat.get_state()
    xla.set_state(state)
    counts_n, _ = respond(nat, digits[6:14], np.arange(6, 14), "assign")
    counts_x, _ = respond(xla, digits[6:14], np.arange(6, 14), "assign")
    np.testing.assert_array_equal(counts_n, counts_x)
    assert counts_n.sum() > 0
    for key in ("weights", "theta"):
        assert np.array_equal(nat.get_state()[key], state[key])


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["evaluate.inh_to_exc_weight=2"],
        ["excitatory.membrane=exponential", "inhibitory.membrane=exponential"],
        ["network.inhibition=false"],
        ["network.input_delay_max_ms=10"],
    ],
)
def test_native_inference_gives_the_tensorflow_counts(digits, overrides):
    """evaluate.engine = "native": the same spike counts and retries as the compiled
    TensorFlow inference on real digits (forward Euler is the same float32 arithmetic; the
    exponential membrane's expm1 differs in the last bit at most, and with input delays the
    arriving weights are summed in another order, which moved no spike here), and learned state
    untouched."""
    base = ["encoding.presentation_ms=200", "encoding.min_spikes=15", "evaluate.batch_digits=7"]
    xla = SpikingNetwork(_config(*base, *overrides))
    nat = SpikingNetwork(_config(*base, *overrides, "evaluate.engine=native"))
    state = _start([xla, nat], 6)
    idx = np.arange(len(digits))
    counts_x, retries_x = respond(xla, digits, idx, "evaluate")
    counts_n, retries_n = respond(nat, digits, idx, "evaluate")
    np.testing.assert_array_equal(counts_n, counts_x)
    np.testing.assert_array_equal(retries_n, retries_x)
    assert counts_x.sum() > 100  # spikes, and retried digits (weak inhibition: none needed)
    weak = {"evaluate.inh_to_exc_weight=2", "network.inhibition=false"}
    assert retries_x.max() >= 1 or weak & set(overrides)
    for key in ("weights", "theta"):
        assert np.array_equal(nat.get_state()[key], state[key])


UNSUPPORTED = {
    "network.neuron=current": "network.neuron = 'current'",
    "learning.rule=event": "learning.rule = 'event'",
    "network.input_delay_max_ms=40": "network.input_delay_max_ms = 40.0 (80 steps",
}


@pytest.mark.parametrize("override", sorted(UNSUPPORTED))
def test_configurations_the_native_engine_does_not_run_are_refused(override):
    """A configuration outside the engine's model is refused when the config is loaded (before
    any stage runs), in one line that names the value and the way out."""
    with pytest.raises(PipelineError) as err:
        _config(override, "train.engine=native")
    message = str(err.value)
    assert UNSUPPORTED[override] in message and "train.engine = 'xla'" in message
    assert "\n" not in message


@pytest.mark.parametrize("key", ["train.engine", "evaluate.engine"])
def test_patched_models_are_refused(key):
    with pytest.raises(PipelineError, match=f"{key} = 'native' does not run encoding.patch_size"):
        load_config("event-stdp-patches", [f"{key}=native", "learning.rule=trace"])


def test_native_inference_runs_any_learning_rule(digits):
    """Inference has no learning rule: evaluate.engine = "native" runs an event-STDP network."""
    nat = SpikingNetwork(_config("learning.rule=event", "evaluate.engine=native"))
    xla = SpikingNetwork(_config("learning.rule=event"))
    _start([xla, nat], 7)
    a = respond(nat, digits[:5], np.arange(5), "assign")[0]
    np.testing.assert_array_equal(a, respond(xla, digits[:5], np.arange(5), "assign")[0])


def test_a_missing_compiler_is_one_clear_error(monkeypatch):
    """Without a C compiler the engine says so and names the way out (the library is built
    anew: the cached one is set aside for this test)."""
    monkeypatch.setattr(native, "_lib", None)
    monkeypatch.setenv("CC", "no-such-compiler-xyz")
    with pytest.raises(PipelineError, match="'no-such-compiler-xyz' was not found.*'xla'"):
        native.library()


def test_bad_engine_name_is_refused():
    with pytest.raises(PipelineError, match="train.engine"):
        load_config(DC100, ["train.engine=fast"])


@pytest.mark.parametrize(
    "overrides, level, stage, epoch",
    [
        ([], 0, "train", 0),
        ([], 3, "train", 2),
        ([], 1, "assign", 0),
        (["poisson.target_rate_hz=40000"], 3, "train", 1),  # spikes beyond the 48 slots
    ],
)
def test_native_input_spikes_equal_tensorflow_bit_for_bit(digits, overrides, level, stage, epoch):
    """The Poisson spikes drawn in C from TensorFlow's tables are TensorFlow's: the same slots,
    dropped spikes and busiest steps, at every retry level, stage and pass."""
    net = SpikingNetwork(_config("encoding.presentation_ms=350", "train.engine=native", *overrides))
    idx = np.arange(3, 3 + len(digits))
    want = net.input_slots(
        tf.constant(digits, tf.uint8),
        tf.constant(idx, tf.int32),
        tf.constant(level),
        stage,
        tf.constant(epoch, tf.int64),
    )
    got = net.native_learner().input_slots(digits, idx, level, stage, epoch)
    for w, g in zip(want, got, strict=True):
        np.testing.assert_array_equal(w.numpy(), g)
    assert (got[0] < P).sum() > 1000  # spikes were drawn
    if overrides:
        assert got[1].sum() > 0 and got[0].shape[2] == 48


def test_native_networks_do_not_stack_and_train_one_by_one(tmp_path, mnist_dir):
    """A stack is one compiled TensorFlow program: native networks are refused by it, and
    `train` on several native runs trains them one by one, as each alone."""
    from stdp_pipeline.sim.stack import NetworkStack

    nets = [SpikingNetwork(_config(f"seed={s}", "train.engine=native")) for s in (0, 1)]
    with pytest.raises(PipelineError, match="train.engine = 'native'.*alone"):
        NetworkStack(nets)


def test_engine_option_sets_both_keys_and_a_set_wins(tmp_path):
    """`--engine native` on the command line stands for train.engine and evaluate.engine; an
    explicit --set of either wins; a model the engine does not run stops `encode` in one line,
    before anything is written."""
    from click.testing import CliRunner

    from stdp_pipeline.cli.main import main

    def show(*args: str) -> str:
        result = CliRunner().invoke(main, ["config", "show", "diehl-cook-400", *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert show("--engine", "native").count('engine = "native"') == 2
    mixed = show("--engine", "native", "--set", "evaluate.engine=xla")
    assert mixed.count('engine = "native"') == 1 and mixed.count('engine = "xla"') == 1
    assert show().count('engine = "native"') == 2  # the preset's, for its input delays
    assert show("--engine", "xla").count('engine = "xla"') == 2
    run = tmp_path / "patches"
    args = ["encode", str(run), "--config", "event-stdp-patches", "--engine", "native"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert "train.engine = 'native' does not run encoding.patch_size_px = 16" in result.output
    assert "Traceback" not in result.output and not run.exists()


def test_vector_gathers_equal_the_scalar_loop(digits, monkeypatch):
    """The delayed drive and depression run 16 synapses at a time where the compiler targets
    AVX-512 (gather and scatter); built without it, the scalar loop gives the same weights,
    thresholds, spikes and carried per-sample state bit for bit (on a CPU without AVX-512 both
    builds are the scalar loop)."""
    runs = []
    for extra in ((), ("-mno-avx512f",)):
        monkeypatch.setattr(native, "FLAGS", native.FLAGS + extra)
        monkeypatch.setattr(native, "_lib", None)  # compiled again with these flags
        net = SpikingNetwork(
            _config(
                "network.input_delay_max_ms=10", "encoding.rest=simulate",
                "encoding.presentation_ms=150", "train.engine=native", "evaluate.engine=native",
                "network.n_excitatory=40",  # 16-neuron vectors and a remainder
                "trace_stdp.nu_pre=0.01",  # a depression that moves the weights' last bits
            )
        )  # fmt: skip
        stats = train_chunk(net, digits[:12], np.arange(12))
        counts, _ = respond(net, digits[12:20], np.arange(12, 20), "evaluate")
        carried = [v.numpy() for v in tf.nest.flatten(net.carried)]  # voltages, conductances
        runs.append((net.weights.numpy(), net.theta.numpy(), stats.neuron_spikes, counts, *carried))
    assert runs[0][2].sum() > 0 and runs[0][3].sum() > 0
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.skipif(not native.WIDE, reason="512-bit vector loops are an x86 build option")
@pytest.mark.parametrize("delays", ["0", "10"])
def test_wide_vectors_give_the_same_bits(digits, monkeypatch, delays):
    """The engine is built for 512-bit vector loops on x86 (native.WIDE): every operation is the
    same lane by lane, so weights, thresholds and spikes equal those of the 256-bit build bit for
    bit, with the exponential membrane (the 1,600- and 6,400-neuron presets') and with and
    without input delays."""
    runs = []
    for wide in (native.WIDE, ()):
        monkeypatch.setattr(native, "WIDE", wide)
        monkeypatch.setattr(native, "_lib", None)  # compiled again with these flags
        net = SpikingNetwork(
            _config(
                f"network.input_delay_max_ms={delays}", "encoding.presentation_ms=150",
                "excitatory.membrane=exponential", "inhibitory.membrane=exponential",
                "train.engine=native", "evaluate.engine=native",
                "network.n_excitatory=40",  # 16-lane vectors and a remainder
                "trace_stdp.nu_pre=0.01",  # a depression that moves the weights' last bits
            )
        )  # fmt: skip
        start = net.weights.numpy()
        stats = train_chunk(net, digits[:12], np.arange(12))
        counts, _ = respond(net, digits[12:20], np.arange(12, 20), "evaluate")
        runs.append((net.weights.numpy(), net.theta.numpy(), stats.neuron_spikes, counts))
    assert runs[0][2].sum() > 0 and runs[0][3].sum() > 0
    assert np.abs(runs[0][0] - start).max() > 1e-3  # the weights learned
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "case",
    [
        [],  # no delays
        ["network.input_delay_max_ms=10"],
        ["encoding.rest=simulate", "excitatory.v_init_offset_mv=-40"],  # the state carried
        ["network.input_delay_max_ms=5", "learning.weight_sum=0"],  # weights above w_max kept
    ],
    ids=["plain", "delays", "simulated-rest", "delays-unnormalised"],
)
def test_threads_give_the_same_bits(digits, case):
    """A presentation with learning on 2 or 3 threads (each stepping its own range of neurons,
    their columns of W and their rings, joined twice a step; W's rows padded) gives the weights,
    thresholds, carried state and spike counts of one thread bit for bit: 40 neurons (ranges of
    16, 16 and 8), 12 digits; with delays, the simulated rest, and weights loaded above w_max
    with no normalisation (the depression's row marks are per thread)."""
    runs = []
    for threads, stride in ((1, 40), (2, 48), (3, 1024)):  # W's rows padded, as for threads
        net = SpikingNetwork(
            _config(
                *case, "encoding.presentation_ms=150", "train.engine=native",
                "network.n_excitatory=40", "trace_stdp.nu_pre=0.01",
            )
        )  # fmt: skip
        if "learning.weight_sum=0" in case:
            w = net.weights.numpy()
            w[:, ::3] = 1.5  # above w_max = 1: depressed whole rows clip them
            net.weights.assign(w)
        start = net.weights.numpy()
        learner = net.native_learner()
        learner.threads, learner.stride = threads, stride
        stats = train_chunk(net, digits[:12], np.arange(12))
        assert learner.w.shape[1] == stride
        carried = [v.numpy() for v in tf.nest.flatten(net.carried)] if net.carried else []
        runs.append((net.weights.numpy(), net.theta.numpy(), stats.neuron_spikes, *carried))
    assert runs[0][2].sum() > 0 and np.abs(runs[0][0] - start).max() > 1e-3
    for other in runs[1:]:
        for a, b in zip(runs[0], other, strict=True):
            np.testing.assert_array_equal(a, b)


def test_thread_chooser_times_every_option_and_keeps_the_fastest():
    """ThreadChooser: each option (the most threads, the powers of two below, one) runs `probe`
    presentations, the fastest the next `hold`, then all are timed again; one option only (a
    small layer, one core) always gives 1 thread."""
    chooser = native.ThreadChooser(4, probe=2, hold=3)
    assert chooser.options == (4, 2, 1)
    seen = []
    for _ in range(18):
        k = chooser.threads()
        seen.append(k)
        chooser.record({4: 0.3, 2: 0.1, 1: 0.2}[k])  # two threads fastest
    assert seen == [4, 4, 2, 2, 1, 1, 2, 2, 2, 4, 4, 2, 2, 1, 1, 2, 2, 2]
    assert native.ThreadChooser(6).options == (6, 4, 2, 1)
    single = native.ThreadChooser(1)
    assert [single.threads() for _ in range(3)] == [1, 1, 1]
    assert native.training_threads(100) == 1
