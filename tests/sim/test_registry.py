"""The model registry (:mod:`stdp_pipeline.sim.registry`): every part has the shape of its kind,
the config tree holds every part's section, old keys migrate, and a new part needs one file
and one registry line."""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pytest
import tensorflow as tf
from bases import DC100

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io import config as config_mod
from stdp_pipeline.io.config import CORE_SECTIONS, ExperimentConfig, load_config
from stdp_pipeline.params import Section, num
from stdp_pipeline.sim import present, registry
from stdp_pipeline.sim.codes import base as code_base
from stdp_pipeline.sim.network import SLOT_WIDTHS, SpikingNetwork
from stdp_pipeline.sim.neurons import base as neuron_base
from stdp_pipeline.sim.rules import base as rule_base

KINDS = [
    (registry.NEURONS, neuron_base.REQUIRED),
    (registry.RULES, rule_base.REQUIRED),
    (registry.CODES, code_base.REQUIRED),
]


def test_check_passes():
    registry.check()


def test_registered_names():
    assert set(registry.NEURONS) == {"conductance", "current"}
    assert set(registry.RULES) == {"trace", "event"}
    assert set(registry.CODES) == {"poisson", "latency"}
    assert registry.neuron("current") is registry.NEURONS["current"]
    assert registry.rule("event") is registry.RULES["event"]
    assert registry.code("latency") is registry.CODES["latency"]


@pytest.mark.parametrize(("table", "required"), KINDS)
def test_every_part_has_what_its_base_requires(table, required):
    for name, module in table.items():
        missing = [attr for attr in required if not hasattr(module, attr)]
        assert not missing, f"{name}: {missing}"
        assert isinstance(module.SECTIONS, dict) and module.SECTIONS
        for section_name, cls in module.SECTIONS.items():
            assert cls._section == section_name
            assert cls.__dataclass_params__.frozen
            assert issubclass(cls, Section)
        for attr in required:
            if attr not in ("SECTIONS", "THETA_UNIT", "Params", "State"):
                assert callable(getattr(module, attr)), f"{name}.{attr}"


def test_section_names_are_unique():
    """No two parts declare the same section, and none takes a core section's name."""
    names = [s for table, _ in KINDS for m in table.values() for s in m.SECTIONS]
    assert len(names) == len(set(names))
    assert not set(names) & set(CORE_SECTIONS)
    assert not set(names) & set(config_mod.TOP_LEVEL)
    assert set(registry.sections()) == set(names)


def test_check_names_a_part_that_lacks_a_function(monkeypatch):
    """check() is a real check: a part without ``on_post`` or one that repeats a section fails."""
    broken = types.ModuleType("broken_rule")
    for attr in rule_base.REQUIRED:
        setattr(broken, attr, getattr(registry.RULES["event"], attr))
    broken.SECTIONS = {"broken": object}
    del broken.on_post
    monkeypatch.setitem(registry.RULES, "broken", broken)
    with pytest.raises(TypeError, match="learning.rule 'broken'.*lacks on_post"):
        registry.check()
    broken.on_post = registry.RULES["event"].on_post
    broken.SECTIONS = dict(registry.RULES["event"].SECTIONS)  # a second event_stdp
    with pytest.raises(TypeError, match="config section 'event_stdp'"):
        registry.check()


def test_config_tree_holds_every_part_section():
    """ExperimentConfig() has every registered part's section, with its defaults, as an
    attribute and in to_dict()."""
    config = ExperimentConfig()
    d = config.to_dict()
    assert set(d) == {"name", "seed", *CORE_SECTIONS, *registry.sections()}
    for name, cls in registry.sections().items():
        assert getattr(config, name) == cls()
        assert d[name] == {f: getattr(cls(), f) for f in cls.__dataclass_fields__}
    assert ExperimentConfig.from_dict(d) == config


def test_unknown_part_name_names_the_allowed_ones():
    with pytest.raises(PipelineError, match="network.neuron = 'lif'") as err:
        load_config(DC100, ["network.neuron=lif"])
    assert "'conductance', 'current'" in str(err.value)
    with pytest.raises(PipelineError, match="'trace', 'event'"):
        load_config(DC100, ["learning.rule=hebb"])
    with pytest.raises(PipelineError, match="'poisson', 'latency'"):
        load_config(DC100, ["encoding.code=rank"])


def test_old_keys_in_a_file_are_migrated(tmp_path):
    """A file written before the parts had sections still loads: learning.nu_post ->
    trace_stdp.nu_post, learning.eta -> event_stdp.eta, encoding.rate_max_hz ->
    poisson.rate_max_hz."""
    path = tmp_path / "old.toml"
    path.write_text(
        'base = "diehl-cook-100"\n'
        "[learning]\nnu_post = 0.02\neta = 0.003\nw_max = 0.9\n"
        "[encoding]\nrate_max_hz = 80.0\n"
    )
    config = load_config(path)
    assert config.trace_stdp.nu_post == 0.02
    assert config.event_stdp.eta == 0.003
    assert config.poisson.rate_max_hz == 80.0
    assert config.learning.w_max == 0.9
    assert config.trace_stdp.nu_pre == 0.0001  # untouched keys keep their defaults
    assert "nu_post" not in config.to_dict()["learning"]
    # the same from a dict written out by an earlier version (no part sections)
    d = ExperimentConfig().to_dict()
    for name in registry.sections():
        del d[name]
    d["learning"]["nu_pre"] = 0.0003
    d["encoding"]["retry_rate_step_hz"] = 10.0
    config = ExperimentConfig.from_dict(d)
    assert config.trace_stdp.nu_pre == 0.0003
    assert config.poisson.retry_rate_step_hz == 10.0


def test_every_moved_key_lands_on_a_real_key():
    keys = set(config_mod.all_keys())
    for old, new in config_mod.MOVED_KEYS.items():
        assert old not in keys
        assert new in keys


def test_old_key_on_the_command_line_suggests_its_new_home():
    """--set learning.nu_post=0.02 is refused (old keys are migrated only from files), with a
    message that points to trace_stdp.nu_post."""
    with pytest.raises(PipelineError, match="trace_stdp.nu_post"):
        load_config(DC100, ["learning.nu_post=0.02"])


def test_old_key_on_the_command_line_is_refused():
    with pytest.raises(PipelineError, match="unknown key 'learning.nu_post'"):
        load_config(DC100, ["learning.nu_post=0.02"])


def test_old_key_in_a_child_file_beats_its_base(tmp_path):
    """Each file's old keys are migrated before it meets its base: the child's value wins."""
    (tmp_path / "a.toml").write_text('base = "diehl-cook-100"\n[event_stdp]\neta = 0.02\n')
    (tmp_path / "b.toml").write_text(f'base = "{tmp_path / "a.toml"}"\n[learning]\neta = 0.01\n')
    assert load_config(str(tmp_path / "b.toml")).event_stdp.eta == 0.01


# --- the extension promise: a new learning rule is one module and one registry line ------------
@dataclass(frozen=True)
class ToyConfig(Section):
    """A toy rule: every weight onto a neuron that fires grows by ``gain`` (clipped at w_max)."""

    _section = "toy"
    gain: float = num(0.1, ge=0)


class ToyParams(NamedTuple):
    gain: float
    w_max: float


class ToyState(NamedTuple):
    ones: tf.Tensor  # [n_pixels + 1]


def _toy_module() -> types.ModuleType:
    toy = types.ModuleType("toy_rule")
    toy.SECTIONS = {"toy": ToyConfig}
    toy.Params = ToyParams
    toy.State = ToyState
    toy.params = lambda config: ToyParams(config.toy.gain, config.learning.w_max)
    toy.init = lambda p, post_shape, n_pixels: ToyState(tf.ones([n_pixels + 1]))
    toy.decay = lambda p, s, dt_ms: s
    toy.on_pre = lambda p, s, rows, pixels, now_ms: (s, None)
    toy.pre_factor = lambda p, s, now_ms: s.ones
    toy.on_post = lambda p, s, column, factor, group, neuron: tf.clip_by_value(
        column + p.gain * factor, 0.0, p.w_max
    )
    toy.after_post = lambda p, s, fired: s
    toy.carry = lambda p, s, span_ms: s
    return toy


def test_a_new_rule_is_one_module_and_one_registry_line(monkeypatch, mnist_dir):
    """Register a toy rule; the config tree grows its section, ``learning.rule=toy`` validates,
    and a network learns with it: after each presentation, every column grew by gain times its
    neuron's spikes, clipped at w_max (normalisation off, retries off)."""
    from stdp_pipeline.io import data

    monkeypatch.setitem(registry.RULES, "toy", _toy_module())
    registry.check()
    config = load_config(
        DC100,
        [
            "learning.rule=toy",
            "toy.gain=0.5",
            "network.n_excitatory=10",
            "encoding.presentation_ms=60",
            "learning.weight_sum=0",
            "encoding.min_spikes=0",
        ],
    )
    assert config.toy == ToyConfig(gain=0.5)
    assert config.to_dict()["toy"] == {"gain": 0.5}
    with pytest.raises(PipelineError, match="toy.gain = -1.0: must be >= 0"):
        load_config(DC100, ["learning.rule=toy", "toy.gain=-1"])

    ds = data.load_split("mnist", "train", mnist_dir)
    images = ds.images[:3].reshape(3, -1)
    indices = np.arange(3)

    # the same presentations, one by one, to read each neuron's spike count
    ref = SpikingNetwork(config)
    w = ref.weights.numpy().astype(np.float64)
    slots, _, busiest = (x.numpy() for x in ref.input_slots(
        tf.constant(images), tf.constant(indices, tf.int32), tf.constant(0), "train"
    ))  # fmt: skip
    per_neuron = []
    for b in range(3):
        width = next(k for k in SLOT_WIDTHS if k >= busiest[b])
        x = np.full((slots.shape[1], width), 784, np.int32)
        x[:, : min(width, slots.shape[2])] = slots[b, :, :width]
        n = ref.learning_program(width)(tf.constant(x)).numpy()
        per_neuron.append(n)
        w = np.minimum(w + 0.5 * n[None, :], 1.0)  # every row: all 784 inputs, by hand
        np.testing.assert_allclose(ref.weights.numpy(), w, rtol=0, atol=1e-6)
    per_neuron = np.array(per_neuron)
    assert (per_neuron.sum(axis=1) > 0).all()  # every digit made some neuron fire

    net = SpikingNetwork(config)
    assert net.rule is registry.RULES["toy"]
    w0 = net.weights.numpy().copy()
    stats = present.train_chunk(net, images, indices)
    np.testing.assert_array_equal(stats.retries, [0, 0, 0])
    np.testing.assert_array_equal(stats.spikes, per_neuron.sum(axis=1))
    w1 = net.weights.numpy()
    np.testing.assert_array_equal(w1, ref.weights.numpy())
    fired = per_neuron.sum(axis=0)
    want = np.minimum(w0 + 0.5 * fired[None, :], 1.0)
    np.testing.assert_allclose(w1, want, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(w1[:, fired == 0], w0[:, fired == 0])
    assert (w1[:, fired > 0] > w0[:, fired > 0]).all()


def test_old_and_new_name_of_one_key_must_agree():
    """A dict holding a key under its old and its new name with different values is refused
    with both names; equal values are fine."""
    d = config_mod.ExperimentConfig().to_dict()
    d["learning"]["nu_post"] = 0.02
    with pytest.raises(PipelineError, match="learning.nu_post = 0.02 and trace_stdp.nu_post"):
        config_mod.ExperimentConfig.from_dict(d)
    d["learning"]["nu_post"] = 0.01
    assert config_mod.ExperimentConfig.from_dict(d).trace_stdp.nu_post == 0.01
