"""``benchmarks/quality.py`` end to end for every domain, at tiny settings (no figures)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _script(name: str):
    """A script of ``benchmarks/`` as a module."""
    spec = importlib.util.spec_from_file_location(f"{name}_script",
                                                  ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _driver():
    return _script("quality")


def _trend_driver():
    return _script("trend")


DOMAINS = sorted(_driver().domain_scripts())
# the task each domain is judged on (its largest real set where its files are here)
MAIN_TASKS = {"ecg": ["mitdb-pvc", "simulated-pvc"], "lidar": ["las_tile", "raycast_scenes"],
              "recsys": ["ml-100k-seq"], "sar": ["simulated_chips"], "tabular": ["randhie"],
              "video": ["simulated_motion"]}


def _tiny_budgets(domain: str, monkeypatch) -> None:
    """The recsys fine-tuned line at one epoch on one prefix per user, the tables' probe
    MLP at a few epochs (every run's probes are fitted; at full budget they dominate)."""
    if domain == "recsys":
        from polyjepa_recsys import finetune

        monkeypatch.setitem(finetune.SETTINGS, "epochs", 1)
        monkeypatch.setattr(finetune, "PER_USER", 1)
    if domain == "tabular":
        from polyjepa_tabular import quality

        monkeypatch.setattr(quality, "MLP_EPOCHS", 5)


@pytest.mark.parametrize("domain", DOMAINS)
def test_quality_script_runs_every_task(domain, tmp_path, monkeypatch):
    pytest.importorskip(f"polyjepa_{domain}")
    monkeypatch.setenv("POLYJEPA_CACHE", str(tmp_path / "cache"))  # simulated data
    driver = _driver()
    tasks = driver.load_tasks(driver.domain_scripts()[domain])
    if not tasks:
        pytest.skip(f"{domain}: no task has its data here")
    _tiny_budgets(domain, monkeypatch)
    assert driver.main([domain, "--steps", "2", "--seeds", "1", "--factor", "2",
                        "--out", str(tmp_path)]) == 0
    text = (tmp_path / "quality.md").read_text()
    assert f"## {domain}" in text
    for task in tasks:
        assert f"| {task.name} | {task.kind} | {task.metric} | 2 |" in text
        assert f"| {task.name} | {task.kind} | {task.metric} | 4 |" in text
    assert (tmp_path / "quality.png").is_file()


@pytest.mark.parametrize("domain", DOMAINS)
def test_trend_script_finds_each_domains_main_task(domain, tmp_path, monkeypatch):
    pytest.importorskip(f"polyjepa_{domain}")
    monkeypatch.setenv("POLYJEPA_CACHE", str(tmp_path / "cache"))
    tasks = _driver().load_tasks(_driver().domain_scripts()[domain])
    if not tasks:
        pytest.skip(f"{domain}: no task has its data here")
    driver = _trend_driver()
    # each domain marks the task it is judged on (a lost mark would silently fall back)
    assert driver.chosen_tasks(tasks, None)[0].name in MAIN_TASKS[domain]
    assert [t.name for t in driver.chosen_tasks(tasks, [tasks[-1].name])] == [tasks[-1].name]
    assert [t.name for t in tasks if t.judged_finetuned] == \
        (["ml-100k-seq"] if domain == "recsys" else [])


# the trend runs every domain's task through the quality harness alike: two cheap ones
@pytest.mark.parametrize("domain", ["sar", "recsys"])
def test_trend_script_runs_the_main_task(domain, tmp_path, monkeypatch):
    pytest.importorskip(f"polyjepa_{domain}")
    monkeypatch.setenv("POLYJEPA_CACHE", str(tmp_path / "cache"))
    driver = _trend_driver()
    main = driver.chosen_tasks(_driver().load_tasks(_driver().domain_scripts()[domain]), None)[0]
    _tiny_budgets(domain, monkeypatch)
    assert driver.main([domain, "--steps", "2", "--seeds", "1", "--factors", "1,2",
                        "--fractions", "0.5", "--fraction-factor", "1",
                        "--set", "train.log_every=1", "--out", str(tmp_path)]) == 0
    run = json.loads((tmp_path / "runs" / domain / f"{main.name}-2-f0.5-s0" / "run.json")
                     .read_text())
    assert run["config"]["train"]["log_every"] == 1
    assert run["config"]["train"]["data_fraction"] == 0.5
    text = (tmp_path / "trend.md").read_text()
    assert f"## {domain}: {main.name} ({main.kind}, {main.metric})" in text
    for row in ("| 2 | 100% |", "| 4 | 100% |", "| 2 | 50% |"):
        assert row in text
    # the fine-tuned line only where the domain is judged fine-tuned (SAR's task has one too)
    finetuned = f"## {domain}: {main.name} (fine-tuned)"
    assert (finetuned in text) == main.judged_finetuned
    if main.judged_finetuned:
        assert text.split(finetuned)[1].count("| 2 | 50% |") >= 1
    assert (tmp_path / "trend.png").is_file()


def test_token_context_reads_what_the_blocks_add(core_only, tmp_path, capsys):
    import numpy as np
    import torch

    import polyjepa as pj

    module = _script("token_context")
    enc = pj.create_encoder("vit", in_chans=1, patch_size=2, embed_dim=16, depth=2,
                            num_heads=2)
    batch = {"x": torch.randn(4, 1, 8, 8)}
    for blk in enc.blocks:  # blocks that add nothing: each output is its own token
        torch.nn.init.zeros_(blk.attn.proj.weight)
        torch.nn.init.zeros_(blk.attn.proj.bias)
        torch.nn.init.zeros_(blk.mlp.fc2.weight)
        torch.nn.init.zeros_(blk.mlp.fc2.bias)
    updates, cos, entropy = module.token_context(enc, batch)
    assert updates == [0.0, 0.0] and abs(cos - 1.0) < 1e-5
    assert len(entropy) == 2 and all(0.0 < e <= 1.0 + 1e-6 for e in entropy)
    # ViT's std 0.02 for queries and keys gives uniform attention at this width; large
    # query/key weights pick tokens out
    attn, x = enc.blocks[0].attn, torch.randn(4, 16, 16)
    with torch.no_grad():
        attn.qkv.weight[:32].normal_(0.0, 0.02)
        assert abs(module.attention_entropy(attn, x) - 1.0) < 1e-3
        attn.qkv.weight[:32].normal_(0.0, 3.0)
        assert 0.0 < module.attention_entropy(attn, x) < 0.8
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(tmp_path / "d.npz", x=d.images[:32].astype(np.float32), y=d.target[:32])
    run = pj.pretrain("array", data=str(tmp_path / "d.npz"), out=tmp_path / "r",
                      progress=False, overrides={
                          "encoder.embed_dim": 16, "encoder.depth": 2, "encoder.num_heads": 2,
                          "predictor.dim": 8, "predictor.depth": 1, "predictor.num_heads": 2,
                          "train.steps": 2, "train.batch_size": 8, "train.device": "cpu",
                          "train.precision": "fp32", "train.warmup_steps": 1})
    assert module.main([str(run.path), "--batch", "8"]) == 0
    lines = [ln.split() for ln in capsys.readouterr().out.splitlines()[1:]]
    assert [ln[1] for ln in lines] == ["pretrained", "random"]
    # run, encoder ("random init" is two words), cosine, one update and one entropy per
    # block with a slash between
    assert [len(ln) for ln in lines] == [8, 9]
