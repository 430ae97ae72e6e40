"""Experiment configs: presets, files (TOML / YAML / JSON), overrides, validation, round trip."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.config import (
    ExperimentConfig,
    all_keys,
    diff,
    load_config,
    parse_override,
    preset_names,
    to_toml,
)

REPO = Path(__file__).resolve().parents[2]


def test_presets_hold_the_papers_values():
    """The four Diehl & Cook presets differ in size (and passes); values of ALGORITHMS.md."""
    assert preset_names() == [
        "diehl-cook-100", "diehl-cook-100-original", "diehl-cook-1600",
        "diehl-cook-1600-original", "diehl-cook-400", "diehl-cook-400-original",
        "diehl-cook-6400", "diehl-cook-6400-original", "event-stdp-patches",
    ]  # fmt: skip
    sizes = {p: load_config(p).network.n_excitatory for p in preset_names()}
    assert sizes["diehl-cook-100"] == 100 and sizes["diehl-cook-6400"] == 6400
    c = load_config("diehl-cook-400")
    assert c.name == "diehl-cook-400"
    assert (c.excitatory.v_rest_mv, c.excitatory.v_thresh_mv, c.excitatory.theta_offset_mv) == (
        -65.0, -52.0, 20.0,
    )  # fmt: skip
    assert (c.excitatory.tau_mem_ms, c.excitatory.tau_ge_ms, c.excitatory.tau_gi_ms) == (100, 1, 2)
    assert (c.inhibitory.v_thresh_mv, c.inhibitory.v_reset_mv, c.inhibitory.tau_mem_ms) == (
        -40.0, -45.0, 10.0,
    )  # fmt: skip
    assert (c.network.exc_to_inh_weight, c.network.inh_to_exc_weight) == (10.4, 17.0)
    assert (c.trace_stdp.nu_pre, c.trace_stdp.nu_post, c.learning.weight_sum) == (1e-4, 0.01, 78.0)
    # the best-measured setting at 400 (README "Fidelity"): the authors' delays and 3 passes, in C
    assert (c.network.input_delay_max_ms, c.train.epochs) == (10.0, 3)
    assert (c.train.engine, c.evaluate.engine) == ("native", "native")
    small = load_config("diehl-cook-100")  # the same at 100 neurons (8 seeds, README "Fidelity")
    assert (small.network.input_delay_max_ms, small.train.epochs) == (10.0, 3)
    assert (small.train.engine, small.evaluate.engine) == ("native", "native")
    big = load_config("diehl-cook-1600")  # the same at 1600 neurons (README "Fidelity")
    assert (big.network.input_delay_max_ms, big.train.epochs, big.train.engine) == (10, 3, "native")
    huge = load_config("diehl-cook-6400")  # the same at 6400 neurons (README "Results")
    assert (huge.network.input_delay_max_ms, huge.train.epochs) == (10, 3)
    assert (huge.train.engine, huge.evaluate.engine) == ("native", "native")

    assert (c.poisson.rate_max_hz, c.encoding.dt_ms, c.encoding.steps) == (63.75, 0.5, 700)
    assert (c.encoding.code, c.network.neuron, c.learning.rule) == (
        "poisson",
        "conductance",
        "trace",
    )
    assert c.data.assign_start == 0 and c.data.allow_overlap  # labels from training digits
    assert load_config("event-stdp-patches").learning.rule == "event"
    # the values the patch-geometry sweeps chose: 4 corners of 16 px x 400 neurons, weights
    # summing to 0.1 per patch pixel, a weak inhibition in inference, all 60,000 digits
    esp = load_config("event-stdp-patches")
    assert (esp.encoding.patch_size_px, esp.encoding.patch_stride_px) == (16, 12)
    assert (esp.network.n_excitatory, esp.learning.weight_sum) == (1600, 25.6)
    assert (esp.network.inh_to_exc_weight, esp.evaluate.inh_to_exc_weight) == (17.0, 1.0)
    assert (esp.data.train_digits, esp.data.assign_start, esp.data.assign_digits) == (
        60000,
        0,
        60000,
    )
    old = load_config(str(REPO / "scripts" / "configs" / "event-stdp-patches-10px.toml"))
    assert (old.encoding.patch_size_px, old.learning.weight_sum, old.data.assign_start) == (
        10,
        10.0,
        50000,
    )


def test_slow_theta_recipes_are_their_presets_with_a_slower_decay():
    """scripts/configs/diehl-cook-{1600,6400}-theta-2e7.toml and diehl-cook-6400-theta-{4e7,8e7}
    .toml: the preset of their size (delays, passes, engine) with excitatory.tau_theta_ms 2e7, 4e7
    or 8e7 instead of the paper's 1e7, nothing else."""
    for n, tau in ((1600, "2e7"), (6400, "2e7"), (6400, "4e7"), (6400, "8e7")):
        recipe = load_config(str(REPO / "scripts" / "configs" / f"diehl-cook-{n}-theta-{tau}.toml"))
        preset = load_config(f"diehl-cook-{n}")
        assert diff(preset.to_dict(), recipe.to_dict()) == [
            f"excitatory.tau_theta_ms: 10000000.0 -> {float(tau)!r}",
            f"name: 'diehl-cook-{n}' -> 'diehl-cook-{n}-theta-{tau}'",
        ]
        assert recipe.network.n_excitatory == n and recipe.network.input_delay_max_ms == 10


def test_original_presets_differ_from_theirs_only_by_the_fidelity_switches():
    """Each `-original` preset is its size's preset with the authors' code's switches (and the
    passes of its size): the config `diff` names no other key, and each switch has the
    authors' value."""
    switches = {
        "excitatory.spike_block_ms": 0.0,
        "excitatory.integration": "euler",
        "inhibitory.integration": "euler",
        "excitatory.membrane": "euler",
        "inhibitory.membrane": "euler",
        "excitatory.v_init_offset_mv": -40.0,
        "inhibitory.v_init_offset_mv": -40.0,
        "encoding.rest": "simulate",
        "encoding.max_retries": 64,
        "network.input_delay_max_ms": 10.0,
        "learning.w_init_min": 0.003,
        "learning.w_init_max": 0.303,
    }
    for n, epochs in ((100, 1), (400, 3), (1600, 3), (6400, 15)):
        mine = load_config(f"diehl-cook-{n}").to_dict()
        orig = load_config(f"diehl-cook-{n}-original").to_dict()
        changed = {line.split(":")[0] for line in diff(mine, orig)}
        assert changed - set(switches) <= {"name", "train.epochs"}, n
        assert orig["name"] == f"diehl-cook-{n}-original"
        assert orig["train"]["epochs"] == epochs
        for key, want in switches.items():
            section, name = key.split(".")
            assert orig[section][name] == want, (n, key)
        assert {"excitatory.integration", "encoding.rest"} <= changed  # the switches do switch


def test_overrides_parse_types_and_apply():
    """--set values are TOML scalars; the override lands on the right key only."""
    assert parse_override("learning.nu_post=2e-2") == ("learning.nu_post", 0.02)
    assert parse_override("network.inhibition=false") == ("network.inhibition", False)
    assert parse_override("learning.rule=event") == ("learning.rule", "event")
    assert parse_override("data.assign_start=none") == ("data.assign_start", None)
    c = load_config(
        "diehl-cook-100", ["network.n_excitatory=7", "seed=5", "excitatory.tau_mem_ms=50"]
    )
    base = load_config("diehl-cook-100")
    assert (c.network.n_excitatory, c.seed, c.excitatory.tau_mem_ms) == (7, 5, 50.0)
    assert diff(base.to_dict(), c.to_dict()) == [
        "excitatory.tau_mem_ms: 100.0 -> 50.0",
        "network.n_excitatory: 100 -> 7",
        "seed: 0 -> 5",
    ]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("excitatory.tau_mem_ms=-5", "excitatory.tau_mem_ms = -5.0: must be > 0"),
        ("encoding.patch_stride_px=12", None),  # allowed: stride 12 <= patch 28
        ("network.n_excitatory=0", "network.n_excitatory = 0: must be > 0"),
        ("network.n_excitatory=1.5", "network.n_excitatory = 1.5: must be an integer"),
        ("network.neuron=izhikevich", "network.neuron = 'izhikevich': must be one of"),
        (
            "excitatory.tau_mem=3",
            "unknown key 'excitatory.tau_mem': did you mean 'excitatory.tau_mem_ms'?",
        ),
        ("model.tau_mem_ms=3", "unknown key 'model.tau_mem_ms': did you mean"),
        ("learning.w_init_max=2", "learning.w_init_max = 2.0: must be <= learning.w_max = 1.0"),
        ("seed=-1", "seed = -1: must be an integer >= 0"),
        ("encoding.dt_ms=nan", "encoding.dt_ms = nan: must be a finite number"),
        ("nonsense", "--set 'nonsense': expected KEY=VALUE"),
    ],
)
def test_validation_names_key_and_value(override, message):
    """Each bad value gives one line naming the key and the value (or passes when valid)."""
    if message is None:
        assert load_config("diehl-cook-100", [override]).encoding.patch_stride_px == 12
        return
    with pytest.raises(PipelineError) as err:
        load_config("diehl-cook-100", [override])
    text = str(err.value)
    assert message in text and "\n" not in text


def test_patch_stride_larger_than_patch_is_refused():
    """A patch stride larger than the patch skips pixels: refused with both values."""
    with pytest.raises(PipelineError, match="patch_stride_px = 8: must be <= .*patch_size_px = 6"):
        load_config("diehl-cook-100", ["encoding.patch_size_px=6", "encoding.patch_stride_px=8"])


def test_frozen_and_round_trip_through_json_and_toml(tmp_path):
    """Configs are immutable; to_dict/from_dict and the TOML text give back the same config."""
    c = load_config(
        "diehl-cook-100", ["data.assign_start=none", "learning.rule=event", "train.engine=xla"]
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.network.n_excitatory = 3  # type: ignore[misc]
    assert ExperimentConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    path = tmp_path / "c.toml"
    path.write_text(to_toml(c))
    again = load_config(str(path))
    assert again == c  # the file names itself; the name is kept
    assert c.fingerprint() != load_config("diehl-cook-100").fingerprint()
    assert len(c.fingerprint()) == 12


def test_files_in_toml_yaml_json_with_base(tmp_path):
    """Files in all three formats load; `base` starts from a preset and changes a few keys."""
    (tmp_path / "a.toml").write_text('base = "diehl-cook-100"\n[network]\nn_excitatory = 30\n')
    (tmp_path / "b.yaml").write_text("base: diehl-cook-100\nnetwork:\n  n_excitatory: 31\n")
    (tmp_path / "c.json").write_text('{"base": "diehl-cook-100", "network": {"n_excitatory": 32}}')
    for name, n in (("a.toml", 30), ("b.yaml", 31), ("c.json", 32)):
        c = load_config(str(tmp_path / name))
        assert c.network.n_excitatory == n
        assert c.excitatory.theta_plus_mv == 0.05 and c.data.allow_overlap  # from the preset
        assert c.name == name.split(".")[0]
    (tmp_path / "bad.toml").write_text("[network\n")
    with pytest.raises(PipelineError, match="bad.toml: not valid TOML"):
        load_config(str(tmp_path / "bad.toml"))
    with pytest.raises(PipelineError, match="did you mean 'diehl-cook-100'"):
        load_config("diehl-cook-10")
    with pytest.raises(PipelineError, match="does not exist"):
        load_config(str(tmp_path / "missing.toml"))


def test_every_key_is_listed_and_reachable():
    """all_keys covers every field, each settable with --set."""
    keys = all_keys()
    assert "excitatory.tau_mem_ms" in keys and "event_stdp.lambda_" in keys and "seed" in keys
    assert len(keys) == len(set(keys))
    c = load_config("diehl-cook-100", ["event_stdp.lambda_=0.02"])
    assert c.event_stdp.lambda_ == 0.02


def test_deeply_nested_override_is_a_one_line_error():
    """A value nested past the TOML parser's recursion limit is read as a string, then refused
    by the key's type, without a traceback."""
    with pytest.raises(PipelineError, match="seed = '\\[\\[\\[.*must be an integer"):
        load_config("diehl-cook-100", ["seed=" + "[" * 5000])
