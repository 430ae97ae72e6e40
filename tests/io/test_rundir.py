"""The run directory: config refusal, manifest contents, stage records, atomic writes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from stdp_pipeline import __version__
from stdp_pipeline.errors import PipelineError
from stdp_pipeline.io.atomic import atomic_path
from stdp_pipeline.io.config import ExperimentConfig
from stdp_pipeline.io.rundir import RunDir, checkpoint_relpath

CHECKSUMS = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb"}
COMMAND = ["stdp-pipeline", "encode", "results/x", "--config", "diehl-cook-100"]


def small_config(**overrides: object) -> ExperimentConfig:
    d = ExperimentConfig().to_dict()
    d["network"]["n_excitatory"] = 100
    for key, value in overrides.items():
        section, _, leaf = key.rpartition("__")
        (d[section] if section else d)[leaf] = value
    return ExperimentConfig.from_dict(d)


@pytest.fixture
def run_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``results/x`` relative to a temporary working directory, as users name it."""
    monkeypatch.chdir(tmp_path)
    return Path("results/x")


@pytest.fixture
def run(run_path: Path) -> RunDir:
    return RunDir.create(run_path, small_config(), command=COMMAND, data_checksums=CHECKSUMS)


def leftovers(folder: Path) -> list[str]:
    """Temporary files that atomic writes would leave behind."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") or ".tmp" in p.name)


# --- creation and config ----------------------------------------------------------------------
def test_create_makes_folder_with_config_and_manifest(run_path: Path) -> None:
    run = RunDir.create(run_path, small_config(), command=COMMAND)
    assert run.path == run_path and run.name == "x"
    assert (run_path / "config.json").is_file()
    assert (run_path / "manifest.json").is_file()
    stored = json.loads((run_path / "config.json").read_text())
    assert stored["fingerprint"] == small_config().fingerprint()
    assert stored["network"]["n_excitatory"] == 100


def test_config_round_trip(run: RunDir) -> None:
    assert RunDir(run.path).config() == small_config()


def test_reuse_with_same_config_keeps_manifest(run: RunDir) -> None:
    with run.stage("encode", command=COMMAND):
        pass
    before = run.manifest()
    again = RunDir.create(run.path, small_config(), command=["other"], data_checksums=CHECKSUMS)
    assert again.manifest() == before
    assert again.stage_done("encode")


def test_refuses_different_config_naming_keys(run: RunDir) -> None:
    other = small_config(network__n_excitatory=400, seed=1)
    with pytest.raises(PipelineError) as info:
        RunDir.create(run.path, other)
    message = str(info.value)
    assert message == (
        "results/x was made with a different config (2 keys differ: "
        "network.n_excitatory: 100 -> 400; seed: 0 -> 1); "
        "use a new run directory or the same config"
    )
    assert "\n" not in message
    with pytest.raises(PipelineError, match=r"\(1 key differs: trace_stdp.nu_post: 0.01 -> 0.02\)"):
        run.check_config(small_config(trace_stdp__nu_post=0.02))
    run.check_config(small_config())  # same config: no error
    assert run.config() == small_config()  # the refused configs changed nothing


def test_refusal_lists_at_most_eight_keys(run: RunDir) -> None:
    d = small_config().to_dict()
    for key in ["tau_mem_ms", "tau_ge_ms", "tau_gi_ms", "refractory_ms", "spike_block_ms"]:
        d["excitatory"][key] *= 2
    for key in ["tau_mem_ms", "tau_ge_ms", "tau_gi_ms", "refractory_ms"]:
        d["inhibitory"][key] *= 2
    with pytest.raises(PipelineError, match=r"9 keys differ: .*; and 1 more\); use a new") as info:
        run.check_config(ExperimentConfig.from_dict(d))
    assert str(info.value).count(" -> ") == 8


def test_not_a_run_directory(run_path: Path) -> None:
    with pytest.raises(PipelineError) as info:
        RunDir(run_path).config()
    assert str(info.value) == (
        "results/x is not a run directory (no config.json): "
        "run `stdp-pipeline encode results/x --config ...` first"
    )
    with pytest.raises(PipelineError, match="is not a run directory"):
        RunDir(run_path).require("encode", for_stage="train")


def test_hand_edited_config_is_refused(run: RunDir) -> None:
    d = json.loads(run.file("config.json").read_text())
    d["seed"] = 7
    run.file("config.json").write_text(json.dumps(d))
    with pytest.raises(PipelineError, match=r"config.json was changed after the run was made"):
        run.config()


def test_create_on_a_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    with pytest.raises(PipelineError, match="is a file, not a folder"):
        RunDir.create(tmp_path / "f", small_config())


def test_changed_data_checksums_are_refused(run: RunDir) -> None:
    changed = {"train-images-idx3-ubyte": "0" * 32}
    with pytest.raises(PipelineError, match="different data files .*train-images-idx3-ubyte"):
        RunDir.create(run.path, small_config(), data_checksums=changed)
    more = {**CHECKSUMS, "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3"}
    RunDir.create(run.path, small_config(), data_checksums=more)
    assert run.manifest()["data_checksums"] == more


# --- manifest ---------------------------------------------------------------------------------
def test_manifest_fields(run: RunDir) -> None:
    m = run.manifest()
    config = small_config()
    expected = {
        "seed", "config_fingerprint", "command", "versions", "platform", "data_checksums",
        "git_commit", "git_dirty", "created", "stages",
    }  # fmt: skip
    assert expected <= set(m)
    assert m["seed"] == config.seed
    assert m["config_fingerprint"] == config.fingerprint()
    assert m["command"] == COMMAND
    assert m["data_checksums"] == CHECKSUMS
    assert m["stages"] == {}
    versions = m["versions"]
    assert {
        "python",
        "stdp_pipeline",
        "numpy",
        "tensorflow",
        "pandas",
        "matplotlib",
        "click",
    } <= set(versions)
    assert versions["numpy"] == np.__version__
    assert versions["stdp_pipeline"] == __version__
    assert versions["python"] == ".".join(map(str, sys.version_info[:3]))
    assert {"machine", "system", "processors"} <= set(m["platform"])
    assert m["created"].endswith("+00:00")
    assert m["git_commit"] is None or len(m["git_commit"]) == 40
    assert m["git_dirty"] in (None, True, False)


def test_default_command_is_argv(run_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "argv", ["stdp-pipeline", "encode", "results/x"])
    run = RunDir.create(run_path, small_config())
    assert run.manifest()["command"] == ["stdp-pipeline", "encode", "results/x"]
    assert run.manifest()["data_checksums"] is None


# --- stages -----------------------------------------------------------------------------------
def test_stage_records_outputs_and_wall_time(run: RunDir) -> None:
    assert not run.stage_done("train")
    with run.stage("train", command=["stdp-pipeline", "train", "results/x"]) as st:
        run.save_arrays("weights.npz", {"w": np.ones((3, 2))})  # recorded without add_output
        st.add_output("weights.npz")  # a second add does not duplicate
        run.file("log.txt").write_text("made by hand\n")
        assert st.add_output("log.txt") == run.path / "log.txt"
        st.info["accuracy"] = np.float32(0.5)
    assert run.stage_done("train")
    entry = run.manifest()["stages"]["train"]
    assert entry["outputs"] == ["weights.npz", "log.txt"]
    assert entry["command"] == ["stdp-pipeline", "train", "results/x"]
    assert entry["accuracy"] == 0.5
    assert isinstance(entry["wall_s"], float) and entry["wall_s"] >= 0
    assert entry["started"] <= entry["ended"]
    run.require("train", for_stage="assign")  # no error


def test_stage_clock_is_the_one_wall_s_records(run: RunDir) -> None:
    """elapsed_s() grows while the stage runs, stops when it ends, and is what wall_s records."""
    with run.stage("assign") as st:
        first = st.elapsed_s()
        time.sleep(0.05)
        second = st.elapsed_s()
        assert 0 <= first < second and second >= 0.05
    done = st.elapsed_s()
    time.sleep(0.02)
    assert st.elapsed_s() == done >= second
    assert run.manifest()["stages"]["assign"]["wall_s"] == round(done, 3)


def test_failed_stage_is_not_done_and_manifest_unchanged(run: RunDir) -> None:
    before = run.file("manifest.json").read_bytes()
    with pytest.raises(RuntimeError, match="boom"), run.stage("train") as st:
        run.save_arrays("weights.npz", {"w": np.zeros(3)})
        st.info["accuracy"] = 0.1
        raise RuntimeError("boom")
    assert not run.stage_done("train")
    assert run.file("manifest.json").read_bytes() == before
    assert leftovers(run.path) == []


def test_stage_with_unsaveable_info_leaves_manifest(run: RunDir) -> None:
    before = run.file("manifest.json").read_bytes()
    with pytest.raises(TypeError), run.stage("train") as st:
        st.info["model"] = object()
    assert run.file("manifest.json").read_bytes() == before
    with pytest.raises(ValueError, match="reserved"), run.stage("train") as st:
        st.info["outputs"] = []
    with pytest.raises(RuntimeError, match="do not exist"), run.stage("train") as st:
        st.add_output("never-written.npz")
    assert not run.stage_done("train")
    assert leftovers(run.path) == []


def test_stage_in_a_non_run_directory_fails_before_work(run_path: Path) -> None:
    ran = []
    with pytest.raises(PipelineError, match="is not a run directory"), RunDir(run_path).stage("x"):
        ran.append(1)
    assert ran == []


def test_require_message(run: RunDir) -> None:
    with pytest.raises(PipelineError) as info:
        run.require("train", for_stage="assign")
    assert str(info.value) == (
        "results/x has no 'train' stage yet: run `stdp-pipeline train results/x` before `assign`"
    )


# --- checkpoints ------------------------------------------------------------------------------
def test_checkpoints_by_position(run: RunDir) -> None:
    """checkpoints() maps position -> file in position order; other files are not checkpoints."""
    assert run.checkpoints() == {}  # no checkpoints/ folder yet
    for position in (20, 5, 100):
        run.save_arrays(checkpoint_relpath(position), {"position": position})
    run.write_text("checkpoints/curve.csv", "position\n5\n")
    for name in (".ckpt-000000010.npz.x1y2.tmp.npz", "ckpt-10.npz", "ckpt-000000010.npz.bak"):
        run.file(f"checkpoints/{name}").write_bytes(b"")  # temporary or foreign files
    run.file("checkpoints/ckpt-000000007.npz").mkdir()  # a folder, not a checkpoint
    found = run.checkpoints()
    assert list(found) == [5, 20, 100]
    assert found[20] == run.path / "checkpoints" / "ckpt-000000020.npz"
    assert found[20] == run.file(checkpoint_relpath(20))
    assert int(np.load(found[100])["position"]) == 100


def test_checkpoint_relpath() -> None:
    assert checkpoint_relpath(0) == "checkpoints/ckpt-000000000.npz"
    assert checkpoint_relpath(60000) == "checkpoints/ckpt-000060000.npz"
    for bad in (-1, 10**9):
        with pytest.raises(ValueError, match="checkpoint position"):
            checkpoint_relpath(bad)


# --- files ------------------------------------------------------------------------------------
def test_arrays_and_json_round_trip(run: RunDir) -> None:
    arrays = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "labels": np.array([1, 7])}
    run.save_arrays("sub/arrays.npz", arrays)
    loaded = run.load_arrays("sub/arrays.npz")
    assert set(loaded) == {"w", "labels"}
    np.testing.assert_array_equal(loaded["w"], arrays["w"])
    assert loaded["w"].dtype == np.float32
    run.write_json("metrics.json", {"accuracy": np.float64(0.25), "n": 3})
    assert run.read_json("metrics.json") == {"accuracy": 0.25, "n": 3}
    assert run.file("a/b.txt") == run.path / "a" / "b.txt"
    with pytest.raises(ValueError):
        run.file("../outside.txt")


def test_missing_file_messages(run: RunDir) -> None:
    with pytest.raises(PipelineError) as info:
        run.load_arrays("weights.npz")
    assert str(info.value) == "results/x/weights.npz does not exist"
    with pytest.raises(PipelineError) as info:
        run.load_arrays("weights.npz", stage="train")
    assert str(info.value) == (
        "results/x has no 'train' stage yet (it makes weights.npz): "
        "run `stdp-pipeline train results/x`"
    )
    with run.stage("train"):
        run.save_arrays("weights.npz", {"w": np.zeros(2)})
    run.file("weights.npz").unlink()
    with pytest.raises(PipelineError) as info:
        run.load_arrays("weights.npz")  # the maker is found in the manifest
    assert str(info.value) == (
        "results/x/weights.npz is missing although stage 'train' finished: "
        "run `stdp-pipeline train results/x` again"
    )
    with pytest.raises(PipelineError, match="metrics.json does not exist"):
        run.read_json("metrics.json")


def test_corrupt_file_is_a_pipeline_error(run: RunDir) -> None:
    run.file("weights.npz").write_bytes(b"not a zip file")
    with pytest.raises(PipelineError, match=r"results/x/weights.npz cannot be read"):
        run.load_arrays("weights.npz", stage="train")


# --- atomicity --------------------------------------------------------------------------------
def test_object_arrays_are_refused_before_writing(run: RunDir) -> None:
    before = sorted(p.name for p in run.path.iterdir())
    with pytest.raises(TypeError, match="dtype object"):
        run.save_arrays("bad.npz", {"ok": np.zeros(3), "bad": np.array([{"a": 1}], dtype=object)})
    assert sorted(p.name for p in run.path.iterdir()) == before


def test_failed_overwrite_keeps_old_file_and_no_temp(run: RunDir) -> None:
    run.save_arrays("weights.npz", {"w": np.ones(4)})
    old = run.file("weights.npz").read_bytes()
    with pytest.raises(ValueError):  # ragged: fails inside the atomic write
        run.save_arrays("weights.npz", {"w": np.zeros(4), "ragged": [[1, 2], [3]]})
    assert run.file("weights.npz").read_bytes() == old
    assert leftovers(run.path) == []


def test_exception_inside_atomic_path_leaves_nothing(run: RunDir) -> None:
    target = run.file("partial.npz")
    with pytest.raises(RuntimeError, match="crash"), atomic_path(target) as tmp:
        tmp.write_bytes(b"half of a file")
        assert tmp.parent == run.path.resolve() and tmp.exists()
        raise RuntimeError("crash")
    assert not target.exists()
    assert leftovers(run.path) == []


# --- stale records ----------------------------------------------------------------------------
def test_a_stage_run_again_flags_its_dependents_stale(run: RunDir) -> None:
    """Starting a stage flags the records of every stage downstream of it (the stage table's
    dependents, transitively) before the block runs; a stale stage is not done."""
    for name in ("encode", "train", "assign", "evaluate", "fields"):
        with run.stage(name):
            pass
    seen = []
    with run.stage("train"):
        seen = [n for n in ("assign", "evaluate", "fields") if not run.stage_done(n)]
    assert seen == ["assign", "evaluate", "fields"]  # flagged before the work
    stages = run.manifest()["stages"]
    assert "stale" not in stages["encode"] and "stale" not in stages["train"]
    for name in ("assign", "evaluate", "fields"):
        assert stages[name]["stale"]["after"] == "train"
        assert run.stale_after(name) == "train" and not run.stage_done(name)
    assert run.stale_after("train") is None and run.stale_after("reconstruct") is None
    with run.stage("assign"):
        pass
    assert run.stage_done("assign") and run.stale_after("evaluate") == "train"


def test_require_names_the_stale_stages_in_order(run: RunDir) -> None:
    for name in ("encode", "train", "assign", "evaluate"):
        with run.stage(name):
            pass
    assert run.mark_stale("train") == ["assign", "evaluate"]
    assert run.mark_stale("train") == []  # already flagged: the manifest is not written again
    run.require("train", for_stage="curves")  # fresh
    with pytest.raises(PipelineError) as info:
        run.require("evaluate", for_stage="reconstruct")
    assert str(info.value) == (
        "results/x: 'assign', 'evaluate' are stale ('train' ran again after them): rerun "
        "`stdp-pipeline assign results/x`, then `stdp-pipeline evaluate results/x` before "
        "`reconstruct`"
    )
    with pytest.raises(
        PipelineError, match=r"^results/x: 'assign' is stale .* before `x` \(hint\)$"
    ):
        run.require("assign", for_stage="x", hint=" (hint)")


def test_a_failed_rerun_keeps_its_record_and_the_flags(run: RunDir) -> None:
    for name in ("encode", "train", "assign"):
        with run.stage(name):
            pass
    record = run.manifest()["stages"]["train"]
    with pytest.raises(RuntimeError, match="boom"), run.stage("train"):
        raise RuntimeError("boom")
    assert run.manifest()["stages"]["train"] == record
    assert run.stale_after("assign") == "train"


def test_stale_is_a_reserved_key(run: RunDir) -> None:
    with pytest.raises(ValueError, match="reserved"), run.stage("train") as st:
        st.info["stale"] = True


# --- the lock -----------------------------------------------------------------------------------
_HOLD = """
import sys, time
from stdp_pipeline.io.rundir import RunDir
with RunDir(sys.argv[1]).lock(sys.argv[2]):
    print("locked", flush=True)
    time.sleep(60)
"""


def _holder(path: Path, stage: str = "train") -> subprocess.Popen:
    """Another process holding the lock of ``path`` (until it is killed)."""
    proc = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(path), stage], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "locked"
    return proc


def test_lock_refuses_a_second_process_and_is_removed_at_the_end(run: RunDir) -> None:
    lock = run.file(".lock")
    with run.lock("assign") as held:
        assert held and json.loads(lock.read_text())["pid"] == os.getpid()
        with run.lock("run"):  # the same process may take it again (`run` across its stages)
            pass
        assert lock.exists()
    assert not lock.exists()
    proc = _holder(run.path)
    try:
        started = time.perf_counter()
        with pytest.raises(PipelineError) as info, run.lock("assign"):
            pass
        assert time.perf_counter() - started < 1.0  # at once, no waiting
        assert str(info.value) == (
            f"results/x is in use by another stdp-pipeline process (pid {proc.pid}, `train` "
            f"since {json.loads(lock.read_text())['since']}): wait until it ends, or stop it, "
            "then try again (lock file results/x/.lock)"
        )
        with run.lock("fields", busy_ok=lambda holder: holder.stage == "train") as held:
            assert held is False  # allowed to go on without the lock
    finally:
        proc.kill()
        proc.wait()
    assert json.loads(lock.read_text())["pid"] == proc.pid  # a killed holder leaves its file


def test_lock_of_a_killed_holder_is_taken_over(run: RunDir) -> None:
    """A lock file whose holder is gone is taken over at once; the temporary files that the
    holder's interrupted writes left behind are removed then."""
    proc = _holder(run.path)
    proc.kill()
    proc.wait()
    leftovers_before = [
        run.file(".model.npz.ab12cd34.tmp.npz"),
        run.file("checkpoints/.ckpt-000000020.npz.x_9y8z7w.tmp.npz"),
    ]
    for path in leftovers_before:
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"half a file")
    keep = run.file("notes.tmp")
    keep.write_text("not ours")
    with run.lock("curves"):
        assert json.loads(run.file(".lock").read_text())["pid"] == os.getpid()
    assert not run.file(".lock").exists()
    assert not any(p.exists() for p in leftovers_before) and keep.exists()


def test_lock_of_a_folder_that_is_no_run_directory(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="is not a run directory"), RunDir(tmp_path).lock("x"):
        pass
    assert list(tmp_path.iterdir()) == []
    new = tmp_path / "new" / "run"
    with RunDir(new).lock("encode", create=True):
        assert (new / ".lock").exists()
    assert not new.exists()  # made for the lock, nothing written: removed again


# --- taking stages over from another run directory ------------------------------------------
def test_adopt_links_outputs_copies_records_and_flags_later_stages(run: RunDir, tmp_path) -> None:
    """A run takes over another's finished encode and train: the outputs are the same files
    (hard links), the records are the source's plus where they came from, the data checksums
    come along, and its own later stages become stale; a stage the source has not finished is
    refused with one line, before anything changes."""
    source = RunDir.create(tmp_path / "src", small_config(), command=COMMAND,
                           data_checksums={"other": "0" * 32})  # fmt: skip
    with source.stage("encode") as rec:
        source.save_arrays("encoded/train.npz", {"x": np.arange(3)})
        rec.add_output("encoded/train.npz")
    with source.stage("train") as rec:
        source.save_arrays("model.npz", {"w": np.ones(2)})
        rec.add_output("model.npz")
        rec.info["digits_seen"] = 20
    for name in ("encode", "assign"):
        with run.stage(name):
            pass
    run.adopt(source, ("encode", "train"))
    stages = run.manifest()["stages"]
    for name, rel in (("encode", "encoded/train.npz"), ("train", "model.npz")):
        assert os.path.samefile(run.file(rel), source.file(rel))
        mine = {k: v for k, v in stages[name].items() if k != "adopted_from"}
        assert mine == source.manifest()["stages"][name]
        assert stages[name]["adopted_from"] == str(source.path) and run.stage_done(name)
    assert stages["train"]["digits_seen"] == 20
    assert run.manifest()["data_checksums"] == {"other": "0" * 32}
    assert run.stale_after("assign") == "encode" and not run.stage_done("assign")
    other = RunDir.create(tmp_path / "other", small_config(), command=COMMAND)
    with pytest.raises(
        PipelineError, match="untrained has no finished 'encode' stage to take over"
    ):
        other.adopt(RunDir.create(tmp_path / "untrained", small_config()), ("encode", "train"))
    assert other.manifest()["stages"] == {}
