from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import polyjepa as pj
from polyjepa import testing


@pytest.mark.parametrize("source", ["kitti_dir", "real_kitti_dir"])
def test_pretrain_evaluate_embed_on_kitti(source, request, tmp_path, tiny):
    kitti_dir = request.getfixturevalue(source)
    run = testing.tiny_train("lidar", kitti_dir, tmp_path / "run", steps=3,
                             overrides={**tiny, "dataset.grid": 16})
    assert run.complete
    assert run.config["dataset_state"]["grid"] == [16, 16]
    enc = pj.load_encoder(run.path)
    assert enc.embed_dim == 16 and enc.grid({"x": torch.zeros(1, 8, 16, 16)}) == (16, 16)
    emb = pj.embed(run.path, data=kitti_dir / "000004.bin")
    assert emb.shape == (1, 16) and np.isfinite(emb).all()
    with pytest.warns(UserWarning):  # unlabelled scans: the probes are skipped
        metrics = pj.evaluate(run.path, data=kitti_dir)
    assert 1.0 <= metrics["rankme"] <= 10.0
    assert not any(k.startswith("pillar") for k in metrics)
    losses = [m["loss"] for m in run.metrics() if "loss" in m]
    assert losses and all(np.isfinite(losses))


@pytest.mark.parametrize("source", ["las_file", "real_las_file"])
def test_cli_on_classified_las(source, request, tmp_path, tiny):
    las_file = request.getfixturevalue(source)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = tmp_path / "las-run"
    sets = [f"--set={k}={v}" for k, v in tiny.items()]
    cmd = [sys.executable, "-m", "polyjepa", "pretrain", "lidar", "--data", str(las_file),
           "--out", str(out), "--steps", "2", "--batch-size", "4",
           "--set", "dataset.grid=16", "--set", "dataset.tile=10",
           "--set", "train.precision=fp32", "--set", "train.device=cpu",
           "--set", "train.warmup_steps=1", *sets]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "run folder" in res.stdout + res.stderr
    # the CLI's run folder serves the Python API
    metrics = pj.evaluate(out)
    assert 0.0 <= metrics["pillar_acc"] <= 1.0 and 0.0 <= metrics["pillar_miou"] <= 1.0
    assert "scene_composition_r2" in metrics and metrics["rankme"] >= 1.0
    emb = pj.embed(out, out=tmp_path / "emb.npy")
    assert emb.shape == (24, 16)  # one embedding per 10 ft tile
    assert np.load(tmp_path / "emb.labels.npy").shape == (24,)


def test_demo_runs_on_simulated_scenes(tmp_path, monkeypatch, capsys):
    """The demo without its comparison task (plain pre-training), at tiny sizes."""
    from polyjepa_lidar import recipes

    small = recipes.lidar_recipe()
    small["demo"].pop("task")
    small["demo"]["overrides"]["dataset"].update({"n_scenes": 8, "grid": 12, "beams": 8,
                                                  "azimuths": 128})
    small["demo"]["overrides"]["encoder"].update({"embed_dim": 16, "depth": 1,
                                                  "num_heads": 2})
    small["demo"]["overrides"]["train"].update({"batch_size": 4, "precision": "fp32",
                                                "device": "cpu"})
    monkeypatch.setattr(recipes, "lidar_recipe", lambda: small)
    results = pj.demo(["lidar"], out=tmp_path, steps=2, progress=False)
    assert "SIMULATED" in capsys.readouterr().out
    res = results["lidar"]
    assert res["kind"] == "simulated"
    assert {"rankme", "pillar_acc", "pillar_miou", "scene_acc"} <= set(res["metrics"])


def test_demo_compares_pretrained_random_init_and_baselines(tmp_path):
    res = pj.demo(["lidar"], out=tmp_path / "demo", steps=2, progress=False)
    assert res["lidar"]["kind"] == "simulated"
    comp = res["lidar"]["comparison"]
    assert comp["data"] == "raycast_scenes" and comp["metric"] == "pillar mIoU (logistic)"
    methods = {"pretrained", "random init", "height stats + RF", "height stats + logistic"}
    assert set(comp) == {"data", "metric"} | methods
    assert all(0.0 <= comp[k] <= 1.0 for k in methods)
    assert {"pillar_acc", "pillar_miou"} <= set(res["lidar"]["metrics"])
    summary = (tmp_path / "demo" / "quality.md").read_text()
    assert "| raycast_scenes | simulated | pillar mIoU (logistic) | 2 |" in summary
    assert (tmp_path / "demo" / "quality.png").stat().st_size > 1000
