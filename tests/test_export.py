"""``polyjepa export``: a folder that loads without its run, with a model card, written
atomically, refusing folders it does not own, and a Hub push that fails clearly."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from tinyrun import SMALL, digits_npz

import polyjepa as pj
from polyjepa import plugins
from polyjepa.checkpoint import load_tensors
from polyjepa.errors import CheckpointError, ConfigError, UnknownComponentError


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-step run with an evaluation and report plots, and its export."""
    from polyjepa.report import write_report

    root = tmp_path_factory.mktemp("export")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("POLYJEPA_DISABLE_PLUGIN_AUTOLOAD", "1")
        mp.delenv("POLYJEPA_PLUGINS", raising=False)
        plugins.reset()
        data = digits_npz(root / "d.npz")
        run = pj.pretrain("array", data=str(data), out=root / "run", progress=False,
                          overrides={**SMALL, "train.steps": 2})
        pj.evaluate(run, evaluators=["rankme", "knn"])
        write_report(run.path)
        out = pj.export(run, root / "exported")
        plugins.reset()
    return {"root": root, "data": data, "run": run.path, "out": out}


def _tree(path: Path) -> dict[str, str]:
    """Every file under ``path`` with a hash of its bytes."""
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_export_loads_in_a_fresh_process_without_the_run(core_only, trained, tmp_path):
    run, out, data = trained["run"], trained["out"], trained["data"]
    weights = pj.load_encoder(run).state_dict()
    emb = pj.embed(run, data=str(data))
    away = run.with_name("run-moved-away")
    script = textwrap.dedent(f"""
        import numpy as np, polyjepa as pj
        from safetensors.torch import save_file
        enc = pj.load_encoder({str(out)!r})
        save_file({{k: v.contiguous() for k, v in enc.state_dict().items()}},
                  {str(tmp_path / "w.safetensors")!r})
        np.save({str(tmp_path / "emb.npy")!r}, pj.embed({str(out)!r}, data={str(data)!r}))
        print(sorted(pj.evaluate({str(out)!r}, data={str(data)!r}, evaluators=["rankme"],
                                 save=False)))
    """)
    env = {**os.environ, "POLYJEPA_DISABLE_PLUGIN_AUTOLOAD": "1", "OMP_NUM_THREADS": "1"}
    env.pop("POLYJEPA_PLUGINS", None)
    os.replace(run, away)
    try:
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env, cwd=tmp_path, timeout=600)
    finally:
        os.replace(away, run)
    assert proc.returncode == 0, proc.stderr
    assert "rankme" in proc.stdout
    loaded = load_tensors(tmp_path / "w.safetensors")
    assert sorted(loaded) == sorted(weights)
    assert all(torch.equal(loaded[k], weights[k]) for k in weights)
    assert np.array_equal(np.load(tmp_path / "emb.npy"), emb)


def test_folder_describes_itself_and_the_run_is_untouched(core_only, trained, tmp_path):
    run, out = trained["run"], trained["out"]
    assert {p.name for p in out.iterdir()} == {"encoder.safetensors", "config.json",
                                               "polyjepa.json", "README.md", "report"}
    marker = json.loads((out / "polyjepa.json").read_text())
    assert marker["format"] == "polyjepa-encoder" and marker["version"] == 1
    assert marker["polyjepa_version"] == pj.__version__
    assert (marker["recipe"], marker["encoder"], marker["embed_dim"]) == ("array", "vit", 16)
    assert marker["plugins"] == ["polyjepa"]
    assert marker["trained_steps"] == 2 and marker["selected"]["step"] == 2
    config = json.loads((out / "config.json").read_text())
    assert config == pj.Run(run).config and config["dataset_state"]["mean"]
    from safetensors import safe_open

    with safe_open(str(out / "encoder.safetensors"), framework="pt") as f:
        assert f.metadata()["encoder"] == "vit"
    assert {p.name for p in (out / "report").iterdir()} == \
        {p.name for p in (run / "report").glob("*.png")}

    before = _tree(run)
    pj.export(run, tmp_path / "again", checkpoint=2)
    assert _tree(run) == before  # only read


def test_model_card_has_front_matter_figures_and_usage(core_only, trained):
    run, out = trained["run"], trained["out"]
    card = (out / "README.md").read_text()
    assert card.startswith("---\n")
    front = yaml.safe_load(card.split("---\n")[1])
    assert front["library_name"] == "polyjepa" and front["license"] == "unknown"
    assert front["tags"] == ["jepa", "self-supervised", "array"]
    rows = pj.Run(run).metrics()
    last = [r for r in rows if "rankme" in r][-1]
    assert f"| final loss | {rows[-1]['loss']:.4g} |" in card
    assert f"| RankMe | {last['rankme']:.4g} |" in card
    evaluation = json.loads((run / "eval" / "metrics.json").read_text())["metrics"]
    assert f"| knn_acc | {evaluation['knn_acc']:.4g} |" in card
    assert "![loss](report/loss.png)" in card and (out / "report" / "loss.png").is_file()
    assert "```yaml" in card and "embed_dim: 16" in card
    assert "pj.load_encoder(folder)" in card and "pj.embed(folder" in card


def test_quality_table_lines_of_the_run_go_into_the_card(core_only, trained, tmp_path):
    from polyjepa.exporting import _quality_lines

    run = tmp_path / "runs" / "array" / "digits-300-s0"
    run.mkdir(parents=True)
    (tmp_path / "quality.md").write_text(
        "# t\n\n## array\n\n| data | kind | metric | steps | pretrained | x |\n"
        "| --- | --- | --- | --- | --- | --- |\n| digits | real | acc | 1200 | 0.9 | 1 |\n"
        "| digits | real | acc | 300 | 0.8 | 1 |\n")
    assert _quality_lines(run)[-1] == "| digits | real | acc | 300 | 0.8 | 1 |"
    assert _quality_lines(tmp_path / "elsewhere") == []


def test_export_refuses_a_foreign_folder_and_replaces_an_earlier_export(core_only, trained,
                                                                        tmp_path):
    run = trained["run"]
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not empty and holds no exported encoder"):
        pj.export(run, foreign)
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    with pytest.raises(ConfigError, match="overlaps the run folder"):
        pj.export(run, run / "export")
    with pytest.raises(CheckpointError, match="kept checkpoint steps: 2"):
        pj.export(run, tmp_path / "x", checkpoint=7)

    empty = tmp_path / "empty"
    empty.mkdir()
    pj.export(run, empty)
    (empty / "stale.txt").write_text("from an earlier export")
    pj.export(run, empty, checkpoint="step_00000002")
    assert not (empty / "stale.txt").exists()
    marker = json.loads((empty / "polyjepa.json").read_text())
    assert marker["selected"]["by"] == "checkpoint" and marker["trained_steps"] == 2
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no leftovers


def test_missing_plugin_and_newer_format_are_named(core_only, trained, tmp_path):
    out = shutil.copytree(trained["out"], tmp_path / "copy")
    config = json.loads((out / "config.json").read_text())
    config["encoder"]["name"] = "audio.vit"
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(UnknownComponentError, match="pip install polyjepa-audio"):
        pj.load_encoder(out)
    marker = json.loads((out / "polyjepa.json").read_text())
    (out / "polyjepa.json").write_text(json.dumps({**marker, "version": 2}))
    with pytest.raises(CheckpointError, match="upgrade polyjepa"):
        pj.load_encoder(out)


def test_cli_export_and_offline_push_fails_in_one_line(trained, tmp_path, cli):
    pytest.importorskip("huggingface_hub")
    run = trained["run"]
    proc = cli("export", str(run), str(tmp_path / "cli"))
    assert f"to {tmp_path / 'cli'}" in proc.stdout
    assert (tmp_path / "cli" / "encoder.safetensors").is_file()

    target = tmp_path / "pushed"
    proc = cli("export", str(run), str(target), "--push", "someone/jepa-test", check=False,
               HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("polyjepa export: error: the encoder is exported locally at "
                               f"{target}, but the push to someone/jepa-test failed: ")
    # the local folder is intact (the card also says how to fetch it from the Hub)
    assert _tree(target).keys() == _tree(tmp_path / "cli").keys()
    assert 'snapshot_download("someone/jepa-test")' in (target / "README.md").read_text()
    a, b = load_tensors(target / "encoder.safetensors"), load_tensors(tmp_path / "cli" /
                                                                       "encoder.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in b)


def test_push_without_huggingface_hub_names_the_package(core_only, trained, tmp_path,
                                                        monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)  # as if not installed
    with pytest.raises(ConfigError, match=r"pip install huggingface_hub"):
        pj.export(trained["run"], tmp_path / "nohub", push="someone/jepa-test")
    assert not (tmp_path / "nohub").exists()


def test_a_plugin_module_is_recorded_and_loaded_again(plugin_env, tmp_path):
    run = pj.pretrain("toyseq", out=tmp_path / "run", progress=False, steps=2)
    out = pj.export(run, tmp_path / "exported")
    marker = json.loads((out / "polyjepa.json").read_text())
    assert marker["plugins"] == marker["plugin_modules"] == ["polyjepa_toyseq.plugin"]
    front = yaml.safe_load((out / "README.md").read_text().split("---\n")[1])
    assert front["tags"][-1] == "toyseq"
    plugins.configure()  # a later process that was not told about the plugin
    enc = pj.load_encoder(out)
    assert enc.embed_dim == 32
    assert any(p.name == "polyjepa_toyseq.plugin" for p in plugins.host().plugins)
