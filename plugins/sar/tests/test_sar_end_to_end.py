from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import polyjepa
from polyjepa import testing


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "polyjepa", *args], capture_output=True,
                          text=True, env=env, timeout=300)


def test_sar_recipe_on_real_geotiff(landsat: Path, tmp_path: Path, tiny: dict) -> None:
    run = testing.tiny_train("sar", str(landsat), tmp_path / "run", steps=3,
                             overrides={**tiny, "dataset.tile_size": 32})
    rows = [r for r in run.metrics() if "loss" in r]
    assert rows and all(np.isfinite(r["loss"]) for r in rows)
    assert run.config["target"]["encoder"]["in_chans"] == 3  # filled from the data
    enc = polyjepa.load_encoder(run.path)
    assert not any(k.startswith("target") for k in enc.state_dict())
    emb = polyjepa.embed(run.path)
    n_tiles = len(polyjepa.create_dataset("sar.raster", str(landsat), tile_size=32))
    assert emb.shape == (n_tiles, 2 * 16) and np.isfinite(emb).all()  # mean and max pooled
    with pytest.warns(UserWarning, match="no labels"):
        metrics = polyjepa.evaluate(run.path)
    assert 1.0 <= metrics["rankme"] <= 16.0


def test_cli_on_chip_folder(chip_dir: Path, tmp_path: Path, tiny: dict) -> None:
    out = tmp_path / "cli"
    sets = [f"--set={k}={v}" for k, v in tiny.items()]
    p = _cli("pretrain", "sar", "--data", str(chip_dir), "--out", str(out), "--steps", "2",
             "--batch-size", "4", "--set", "train.precision=fp32", "--set",
             "train.device=cpu", "--set", "dataset.chip_size=32", *sets)
    assert p.returncode == 0, p.stderr[-3000:]
    p = _cli("evaluate", str(out), "--data", str(chip_dir), "--json")
    assert p.returncode == 0, p.stderr[-3000:]
    metrics = json.loads(p.stdout[p.stdout.index("{"):])
    for key in ("rankme", "chip_linear_acc", "chip_knn_f1_macro",
                "gradient_baseline_linear_acc"):
        assert metrics[key] >= 0.0 and np.isfinite(metrics[key])
    emb = polyjepa.embed(out, data=str(chip_dir), out=tmp_path / "e.npy")
    labels = np.load(tmp_path / "e.labels.npy")
    assert emb.shape == (40, 2 * 16) and sorted(set(labels.tolist())) == [0, 1, 2, 3, 4]


def test_training_is_deterministic_and_learns_the_target(tmp_path: Path, tiny: dict) -> None:
    ov = {**tiny, "dataset.name": "sar.simulated", "dataset.n": 40, "dataset.size": 32,
          "train.lr": 3e-3}
    a = testing.tiny_train("sar", None, tmp_path / "a", steps=12, overrides=ov)
    b = testing.tiny_train("sar", None, tmp_path / "b", steps=12, overrides=ov)
    la = [r["loss"] for r in a.metrics() if "loss" in r]
    lb = [r["loss"] for r in b.metrics() if "loss" in r]
    assert la == lb
    assert np.mean(la[-3:]) < np.mean(la[:3])  # the predictor learns the gradient target
    ea, eb = polyjepa.load_encoder(a.path), polyjepa.load_encoder(b.path)
    for (k, va), vb in zip(ea.state_dict().items(), eb.state_dict().values()):
        assert torch.equal(va, vb), k


def test_ema_recipe_and_demo(tmp_path: Path, capsys: pytest.CaptureFixture, tiny: dict) -> None:
    run = testing.tiny_train("sar.ema", None, tmp_path / "ema", steps=2,
                             overrides={**tiny, "dataset.name": "sar.simulated",
                                        "dataset.n": 20, "dataset.size": 32})
    assert run.complete
    res = polyjepa.demo(["sar"], out=tmp_path / "demo", steps=2, progress=False)
    assert res["sar"]["kind"] == "simulated"
    assert "SIMULATED" in capsys.readouterr().out
    m = res["sar"]["metrics"]
    assert {"rankme", "chip_linear_acc", "gradient_baseline_linear_acc"} <= set(m)


def test_demo_compares_each_recipe_on_simulated_chips(tmp_path):
    res = polyjepa.demo(["sar", "sar.ema"], out=tmp_path / "demo", steps=2, progress=False)
    for name in ("sar", "sar.ema"):
        comp = res[name]["comparison"]
        assert set(comp) == {"data", "metric", "pretrained", "random init", "ROA-gradient HOG"}
        assert all(0.0 <= comp[k] <= 1.0 for k in ("pretrained", "random init",
                                                    "ROA-gradient HOG"))
        run = json.loads((tmp_path / "demo" / name / f"{comp['data']}-2-s0" / "run.json")
                         .read_text())
        assert run["config"]["recipe"] == name  # each recipe is compared, not the first
    assert res["sar"]["comparison"]["data"] != res["sar.ema"]["comparison"]["data"]
