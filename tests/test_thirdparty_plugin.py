"""A third-party plugin (tests/thirdparty/polyjepa_toyseq) end to end: CLI and Python API."""

from __future__ import annotations

import json

import numpy as np

import polyjepa as pj
from polyjepa import testing


def test_contracts_of_thirdparty_components(plugin_env):
    ds = testing.check_dataset("toyseq.digits", min_items=100)
    batch = pj.collate([ds[i] for i in range(4)])
    testing.check_encoder("toyseq.encoder", batch)
    testing.check_masker("toyseq.tail", (16,), batch_size=4)
    testing.check_evaluator("toyseq.mean_norm")
    testing.check_recipe("toyseq")


def test_python_api_pretrain_evaluate_embed(plugin_env, tmp_path):
    run = pj.pretrain("toyseq", out=tmp_path / "run", progress=False)
    rows = run.metrics()
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all(np.isfinite(r["loss"]) for r in rows) and "rankme" in rows[2]
    enc = pj.load_encoder(run.path)
    assert not enc.training and enc.embed_dim == 32
    emb = pj.embed(run.path)
    assert emb.shape == (256, 32) and np.isfinite(emb).all()
    metrics = pj.evaluate(run.path)
    assert {"rankme", "linear_probe_acc", "knn_acc", "mean_norm"} <= set(metrics)
    assert 1.0 <= metrics["rankme"] <= 32
    assert metrics["linear_probe_acc"] > 0.3  # 10 classes: chance is 0.1
    saved = json.loads((run.path / "eval" / "metrics.json").read_text())
    assert saved["metrics"] == metrics


def test_cli_pretrain_evaluate_embed_report(tmp_path, cli):
    out = tmp_path / "run"
    proc = cli("--plugin", "polyjepa_toyseq.plugin", "pretrain", "toyseq", "--out", str(out),
               "--no-progress", "--steps", "4", "--set", "encoder.embed_dim=16")
    assert "run folder" in proc.stdout
    cfg = json.loads((out / "run.json").read_text())["config"]
    assert cfg["encoder"]["embed_dim"] == 16 and cfg["train"]["steps"] == 4
    proc = cli("--plugin", "polyjepa_toyseq.plugin", "evaluate", str(out), "--json")
    metrics = json.loads(proc.stdout)
    assert metrics["rankme"] >= 1.0 and 0.0 <= metrics["linear_probe_acc"] <= 1.0
    emb_path = tmp_path / "emb.npy"
    cli("--plugin", "polyjepa_toyseq.plugin", "embed", str(out), "--out", str(emb_path))
    emb = np.load(emb_path)
    assert emb.shape == (256, 16)
    assert np.load(tmp_path / "emb.labels.npy").shape == (256,)
    proc = cli("--plugin", "polyjepa_toyseq.plugin", "report", str(out))
    for name in ("loss.png", "rankme.png", "lr.png", "embeddings.png"):
        png = out / "report" / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_cli_reports_unknown_recipe_and_missing_plugin(cli):
    proc = cli("pretrain", "toyseq", check=False)
    assert proc.returncode == 2
    assert "unknown recipe 'toyseq'" in proc.stderr and "pip install polyjepa-toyseq" in proc.stderr


def test_config_file_and_flags(tmp_path, cli):
    (tmp_path / "run.toml").write_text(
        'recipe = "toyseq"\n[train]\nsteps = 3\nlr = 0.002\n[encoder]\nembed_dim = 8\n')
    proc = cli("--plugin", "polyjepa_toyseq.plugin", "pretrain", "--config",
               str(tmp_path / "run.toml"), "--lr", "0.003", "--print-config")
    cfg = json.loads(proc.stdout)
    assert cfg["train"]["steps"] == 3 and cfg["train"]["lr"] == 0.003
    assert cfg["encoder"] == {"name": "toyseq.encoder", "embed_dim": 8}
    (tmp_path / "run.yaml").write_text("recipe: toyseq\ntrain:\n  steps: 5\nbogus: 1\n")
    proc = cli("--plugin", "polyjepa_toyseq.plugin", "pretrain", "--config",
               str(tmp_path / "run.yaml"), check=False)
    assert proc.returncode == 2 and "unknown section(s) ['bogus']" in proc.stderr
    proc = cli("--plugin", "polyjepa_toyseq.plugin", "pretrain", "toyseq", "--set",
               "nosuch.key=1", check=False)
    assert proc.returncode == 2 and "unknown config key 'nosuch.key'" in proc.stderr
