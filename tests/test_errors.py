"""Every mistake gets a clear answer: bad config values and keys, wrong-shaped plugin
components, unsafe run folders, and plugin loading as users and plugin authors meet it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import pytest
import torch
from tinyrun import SMALL, digits_npz

import polyjepa as pj
from polyjepa import plugins
from polyjepa.checkpoint import load_tensors, save_tensors
from polyjepa.errors import CheckpointError, ConfigError, PluginError


def _pretrain(data, out, steps=2, config=None, **extra):
    small = {k: v for k, v in SMALL.items() if k.split(".")[0] not in (config or {})}
    return pj.pretrain("array", data=data, out=out, progress=False, config=config,
                       overrides={**small, "train.steps": steps, **extra})


# -- config values and keys ---------------------------------------------------------------
@pytest.mark.parametrize("override, message", [
    ("encoder.depth=abc", r"'encoder\.depth': 'abc' is not a whole number"),
    ("train.lr=fast", r"'train\.lr': 'fast' is not a number"),
    ("train.steps=ten", r"'train\.steps': 'ten' is not a whole number"),
    ("train.steps=2.5", r"'train\.steps': 2\.5 is not a whole number"),
    ("train.batch_size=-4", r"train\.batch_size must be above 0, got -4"),
    ("train.precision=bf61", r"train\.precision must be one of .*Did you mean 'bf16'"),
    ("encoder.depht=3", r"unknown setting encoder\.depht.*Did you mean 'depth'"),
    ("train.stepz=5", r"unknown setting train\.stepz\..*Did you mean 'steps'"),
    ("masker.num_targetz=2", r"unknown setting masker\.num_targetz.*'num_targets'"),
    ("predictor.embed_dim=8", r"predictor\.embed_dim is set by polyjepa itself"),
])
def test_bad_overrides_are_named_before_anything_runs(core_only, tmp_path, override, message):
    data = digits_npz(tmp_path / "d.npz")
    with pytest.raises(ConfigError, match=message):
        pj.resolve_config("array", data=str(data), overrides=[override])


def test_bad_override_on_the_command_line_is_one_line(tmp_path, cli):
    data = digits_npz(tmp_path / "d.npz")
    proc = cli("pretrain", "array", "--data", str(data), "--out", str(tmp_path / "r"),
               "--set", "encoder.depht=3", check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "polyjepa pretrain: error: unknown setting encoder.depht: encoder 'vit' takes "
        "in_chans, patch_size, ndim, embed_dim, depth, num_heads, mlp_ratio, drop_path, "
        "token_scale. "
        "Did you mean 'depth'?"]
    assert not (tmp_path / "r").exists()


def test_warnings_on_the_command_line_are_one_line_each_once(core_only, tmp_path, cli):
    import numpy as np

    run = _pretrain(str(digits_npz(tmp_path / "d.npz")), tmp_path / "r")
    unlabelled = tmp_path / "x.npz"
    np.savez(unlabelled, x=np.load(tmp_path / "d.npz")["x"])
    proc = cli("evaluate", str(run.path), "--data", str(unlabelled), "--evaluator",
               "linear_probe", "--evaluator", "knn", "--evaluator", "linear_probe")
    warned = [line for line in proc.stderr.splitlines() if "warning" in line.lower()]
    assert warned == [
        "polyjepa evaluate: warning: evaluator 'linear_probe' skipped: the data has no labels",
        "polyjepa evaluate: warning: evaluator 'knn' skipped: the data has no labels"]


def test_encoders_receive_only_the_hints_they_declare(core_only, tmp_path):
    from polyjepa.build import build_dataset, resolve_components
    from polyjepa.validation import accepted

    data = digits_npz(tmp_path / "d.npz")
    cfg = pj.resolve_config("array", data=str(data))
    ds = build_dataset(cfg)
    ds.encoder_hints = {**ds.encoder_hints, "not_an_argument": 1}
    resolved = resolve_components(cfg, ds)
    assert "not_an_argument" not in resolved["encoder"]
    assert resolved["encoder"]["in_chans"] == 1
    assert accepted("encoders", "vit", {"ndim": 2, "zzz": 1}) == {"ndim": 2}


# -- wrong-shaped plugin components ------------------------------------------------------
BAD_PLUGIN = '''
import torch
from polyjepa import hookimpl
from polyjepa.encoder import TokenEncoder


class Flat(TokenEncoder):
    """tokenize returns [B, D]: a common slip."""

    def __init__(self, embed_dim=16, depth=1, num_heads=2):
        super().__init__(embed_dim, depth, num_heads)
        self.proj = torch.nn.Linear(64, embed_dim)

    def grid(self, batch):
        return (8, 8)

    def tokenize(self, batch):
        x = batch["x"] if isinstance(batch, dict) else batch
        return self.proj(x.reshape(x.shape[0], -1))


class Short(Flat):
    """One token fewer than its grid promises (an off-by-one in the patching)."""

    def tokenize(self, batch):
        x = batch["x"] if isinstance(batch, dict) else batch
        t = x.reshape(x.shape[0], 64, 1).expand(-1, -1, 64)
        return self.proj(t)[:, :63]


class PerPixel(Flat):
    def tokenize(self, batch):
        x = batch["x"] if isinstance(batch, dict) else batch
        return self.proj(x.reshape(x.shape[0], 64, 1).expand(-1, -1, 64))


class WrongValid:
    """valid masks sized for another grid (a patch setting changed on one side only)."""

    def __init__(self, data=None):
        self.x = torch.randn(16, 1, 8, 8)

    def __len__(self):
        return 16

    def __getitem__(self, i):
        return {"x": self.x[i], "valid": torch.ones(16, dtype=torch.bool)}


def outside(grid, batch_size, generator, valid=None):
    from polyjepa.maskers import Masks
    n = 1
    for g in grid:
        n *= g
    ctx = torch.arange(4).repeat(batch_size, 1)
    return Masks(ctx, [torch.full((batch_size, 2), n + 5)])


@hookimpl
def polyjepa_register_encoders(register):
    register("bad.flat", Flat)
    register("bad.short", Short)
    register("bad.pixels", PerPixel)


@hookimpl
def polyjepa_register_datasets(register):
    register("bad.valid", WrongValid)


@hookimpl
def polyjepa_register_maskers(register):
    register("bad.outside", lambda: outside)
'''


@pytest.fixture
def bad_plugin(tmp_path, monkeypatch):
    (tmp_path / "pj_bad_shapes.py").write_text(BAD_PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins.configure(modules=["pj_bad_shapes"])
    yield tmp_path
    plugins.reset()
    sys.modules.pop("pj_bad_shapes", None)


@pytest.mark.parametrize("encoder, message", [
    ("bad.flat", r"encoder 'bad\.flat' from plugin 'pj_bad_shapes': tokenize\(batch\) must "
                 r"return \[batch, tokens, embed_dim\] tokens, got \(8, 16\)"),
    ("bad.short", r"encoder 'bad\.short' from plugin 'pj_bad_shapes': tokenize\(batch\) gave "
                  r"\(8, 63, 16\) but grid \(8, 8\) and embed_dim 16 mean \[8, 64, 16\]"),
])
def test_wrong_shaped_encoder_is_named_at_the_first_batch(bad_plugin, encoder, message):
    data = digits_npz(bad_plugin / "d.npz")
    with pytest.raises(PluginError, match=message):
        _pretrain(data, bad_plugin / "run", config={"encoder": {"name": encoder}})


def test_valid_mask_of_another_grid_names_both_components(bad_plugin):
    with pytest.raises(ConfigError, match=r"dataset 'bad\.valid' from plugin 'pj_bad_shapes' "
                                          r"gives 'valid' masks of shape \(8, 16\), but the "
                                          r"encoder 'bad\.pixels'.*grid \(8, 8\) of 64 tokens"):
        pj.pretrain(None, data="x", out=bad_plugin / "run", progress=False,
                    config={"dataset": {"name": "bad.valid"},
                            "encoder": {"name": "bad.pixels"}},
                    overrides={**{k: v for k, v in SMALL.items()
                                  if not k.startswith("encoder.")}, "train.steps": 1})


def test_masker_indices_outside_the_grid_are_named(bad_plugin):
    data = digits_npz(bad_plugin / "d.npz")
    with pytest.raises(PluginError, match=r"masker 'bad\.outside' from plugin "
                                          r"'pj_bad_shapes': the target 0 indices run from 69 "
                                          r"to 69, outside the grid of 64 tokens"):
        _pretrain(data, bad_plugin / "run", config={"masker": {"name": "bad.outside"}})


# -- run folders ------------------------------------------------------------------------
def test_zero_steps_is_recorded_as_an_untrained_baseline(core_only, tmp_path, capsys):
    data = digits_npz(tmp_path / "d.npz")
    run = _pretrain(data, tmp_path / "r", steps=0)
    assert run.info["status"] == "complete" and run.info["untrained"] is True
    assert "random initialisation" in capsys.readouterr().out
    trained = _pretrain(data, tmp_path / "t", steps=1)
    assert "untrained" not in trained.info


def test_latest_pointer_outside_the_run_is_not_followed(core_only, tmp_path):
    from polyjepa.checkpoint import latest_checkpoint

    data = digits_npz(tmp_path / "d.npz")
    _pretrain(data, tmp_path / "a", steps=2, **{"train.checkpoint_every": 1})
    _pretrain(data, tmp_path / "b", steps=2, **{"train.checkpoint_every": 1})
    pointer = tmp_path / "a" / "checkpoints" / "latest"
    outside = tmp_path / "b" / "checkpoints" / "step_00000002"
    for name in (str(outside), "../../b/checkpoints/step_00000002"):
        pointer.write_text(name + "\n")
        assert latest_checkpoint(tmp_path / "a") == tmp_path / "a" / "checkpoints" / \
            "step_00000002"


def test_checkpoints_without_run_file_are_refused_and_kept(core_only, tmp_path):
    data = digits_npz(tmp_path / "d.npz")
    _pretrain(data, tmp_path / "r", steps=2, **{"train.checkpoint_every": 1})
    (tmp_path / "r" / "run.json").unlink()
    kept = sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir())
    with pytest.raises(CheckpointError, match="holds checkpoints but no run.json"):
        _pretrain(data, tmp_path / "r", steps=4, **{"train.lr": 0.01})
    assert sorted(p.name for p in (tmp_path / "r" / "checkpoints").iterdir()) == kept
    assert not (tmp_path / "r" / "run.json").exists()


def test_run_file_without_config_is_one_clear_error(core_only, tmp_path, cli):
    data = digits_npz(tmp_path / "d.npz")
    _pretrain(data, tmp_path / "r", steps=1)
    info = json.loads((tmp_path / "r" / "run.json").read_text())
    del info["config"]
    (tmp_path / "r" / "run.json").write_text(json.dumps(info))
    proc = cli("evaluate", str(tmp_path / "r"), check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "run.json has no 'config' table" in proc.stderr
    with pytest.raises(CheckpointError, match="has no 'config' table"):
        _pretrain(data, tmp_path / "r", steps=1)


def test_second_writer_is_refused_and_told_who_holds_the_folder(core_only, tmp_path):
    from polyjepa.runlock import RunLock

    data = digits_npz(tmp_path / "d.npz")
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom polyjepa.runlock import RunLock\n"
         "with RunLock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(60)\n",
         str(tmp_path / "r")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(CheckpointError, match=rf"is in use by another polyjepa process "
                                                  rf"\(pid {holder.pid} on "):
            _pretrain(data, tmp_path / "r", steps=1)
        assert not (tmp_path / "r" / "metrics.jsonl").exists()
    finally:
        holder.kill()
        holder.wait()
    # a killed holder leaves no stale lock
    run = _pretrain(data, tmp_path / "r", steps=1)
    assert run.complete
    with RunLock(tmp_path / "r"):
        pass


def test_leftovers_of_a_killed_writer_are_removed(core_only, tmp_path):
    data = digits_npz(tmp_path / "d.npz")
    _pretrain(data, tmp_path / "r", steps=2, **{"train.checkpoint_every": 1})
    ck = tmp_path / "r" / "checkpoints"
    (ck / ".step_00000003.tmp-4242").mkdir()
    (ck / ".step_00000003.tmp-4242" / "model.safetensors").write_bytes(b"half")
    (tmp_path / "r" / ".run.json.tmp-4242").write_text("{")
    _pretrain(data, tmp_path / "r", steps=2, **{"train.checkpoint_every": 1})
    assert not (ck / ".step_00000003.tmp-4242").exists()
    assert not (tmp_path / "r" / ".run.json.tmp-4242").exists()
    assert (ck / "step_00000002").is_dir() and (tmp_path / "r" / "run.json").is_file()


def test_nan_weights_name_the_file(core_only, tmp_path):
    data = digits_npz(tmp_path / "d.npz")
    run = _pretrain(data, tmp_path / "r", steps=1)
    path = run.path / "encoder.safetensors"
    state = load_tensors(path)
    key = sorted(state)[0]
    state[key] = torch.full_like(state[key], float("nan"))
    save_tensors(path, state)
    with pytest.raises(CheckpointError, match=rf"encoder\.safetensors: the weights hold NaN "
                                              rf"or infinite values \({key}"):
        pj.load_encoder(run)


# -- plugins, as users and plugin authors meet them --------------------------------------
LOCAL_PLUGIN = '''
from polyjepa import hookimpl


@hookimpl
def polyjepa_register_recipes(register):
    register("local", lambda: {"dataset": {"name": "array"},
                               "encoder": {"name": "local.vit"}})


@hookimpl
def polyjepa_register_encoders(register):
    register("local.vit", "polyjepa.encoder:PatchEncoder")
'''


def _plain_env() -> dict[str, str]:
    env = dict(os.environ)
    env["POLYJEPA_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    env["OMP_NUM_THREADS"] = "1"
    env.pop("POLYJEPA_PLUGINS", None)
    return env


def _polyjepa(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "polyjepa", *args], cwd=cwd,
                          capture_output=True, text=True, env=_plain_env(), timeout=600)


@pytest.mark.parametrize("how", ["module in the current directory", "file path"])
def test_plugin_module_from_cwd_or_file_is_recorded_and_reloaded(tmp_path, how):
    work = tmp_path / "work"
    work.mkdir()
    (work / "mylocal.py").write_text(LOCAL_PLUGIN)
    data = digits_npz(tmp_path / "d.npz")
    spec = "mylocal" if how.startswith("module") else str(work / "mylocal.py")
    sets = [a for k, v in SMALL.items() if not k.startswith("encoder.")
            for a in ("--set", f"{k}={v}")]
    # --plugin after the command is accepted
    proc = _polyjepa(work, "pretrain", "local", "--data", str(data), "--out",
                     str(tmp_path / "run"), "--steps", "1", "--no-progress", "--plugin", spec,
                     "--set", "encoder.embed_dim=16", "--set", "encoder.depth=1",
                     "--set", "encoder.num_heads=2", *sets)
    assert proc.returncode == 0, proc.stderr
    info = json.loads((tmp_path / "run" / "run.json").read_text())
    assert info["plugins"] == [spec if how.startswith("module") else str(work / "mylocal.py")]
    # a later command, from elsewhere and without --plugin, loads the recorded module
    elsewhere = work if how.startswith("module") else tmp_path
    proc = _polyjepa(elsewhere, "evaluate", str(tmp_path / "run"), "--evaluator", "rankme")
    assert proc.returncode == 0, proc.stderr
    assert "rankme" in proc.stdout


def test_failing_explicit_plugin_stops_the_command(tmp_path):
    (tmp_path / "brokenplug.py").write_text("import not_a_module_anywhere\n")
    proc = _polyjepa(tmp_path, "plugins", "--plugin", "brokenplug")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "polyjepa plugins: error: plugin 'brokenplug' cannot be imported from 'brokenplug': "
        "ModuleNotFoundError: No module named 'not_a_module_anywhere'"]
    proc = _polyjepa(tmp_path, "--plugin", str(tmp_path / "nothere.py"), "plugins")
    assert proc.returncode == 2 and "no plugin file" in proc.stderr


def test_strict_plugins_is_one_line(tmp_path):
    (tmp_path / "brokenplug.py").write_text("raise RuntimeError('boom')\n")
    env = {**_plain_env(), "POLYJEPA_PLUGINS": "brokenplug", "PYTHONPATH": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-m", "polyjepa", "--strict-plugins", "plugins"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "boom" in proc.stderr


def test_plugin_named_twice_is_not_reported_broken(plugin_env):
    plugins.configure(modules=["polyjepa_toyseq.plugin", "polyjepa_toyseq.plugin"],
                      require_modules=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert "toyseq" in pj.list_recipes()
    assert plugins.host().failures == []


def test_installed_but_broken_plugin_is_named_not_the_pip_hint(tmp_path, monkeypatch):
    (tmp_path / "audio.py").write_text("import not_a_module_anywhere\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
    plugins.configure(modules=["audio"])
    try:
        with pytest.warns(plugins.PluginWarning) as caught, \
                pytest.raises(pj.UnknownComponentError) as err:
            pj.get_recipe("audio")
        assert "Plugin 'audio' is installed but broken" in str(err.value)
        assert "not_a_module_anywhere" in str(err.value)
        assert "pip install" not in str(err.value)
        # the warning points at this test, not at a line inside polyjepa
        assert caught[0].filename == __file__
    finally:
        plugins.reset()


def test_masker_targets_inside_the_context_are_named(bad_plugin):
    (bad_plugin / "pj_overlap.py").write_text(textwrap.dedent('''
        import torch
        from polyjepa import hookimpl
        from polyjepa.maskers import Masks

        def peek(grid, batch_size, generator, valid=None):
            return Masks(torch.arange(8).repeat(batch_size, 1),
                         [torch.arange(6, 10).repeat(batch_size, 1)])

        @hookimpl
        def polyjepa_register_maskers(register):
            register("peek", lambda: peek)
    '''))
    plugins.configure(modules=["pj_bad_shapes", "pj_overlap"])
    data = digits_npz(bad_plugin / "d.npz")
    with pytest.raises(PluginError, match=r"masker 'peek' from plugin 'pj_overlap': the "
                                          r"target 0 indices share tokens with the context"):
        _pretrain(data, bad_plugin / "run", config={"masker": {"name": "peek"}})
    sys.modules.pop("pj_overlap", None)
