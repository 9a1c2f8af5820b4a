"""Trainer: determinism, exact resume, NaN guard, safe checkpoints, data parallelism."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

import polyjepa as pj
from polyjepa.checkpoint import load_tensors
from polyjepa.errors import CheckpointError, ConfigError, TrainingDiverged

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 8, "predictor.depth": 1, "predictor.num_heads": 2,
        "train.batch_size": 8, "train.warmup_steps": 2, "train.log_every": 1,
        "train.rankme_every": 4, "train.rankme_samples": 64, "train.precision": "fp32",
        "train.device": "cpu", "masker.num_targets": 2}


def _images(path: Path, n: int = 48) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(path, x=d.images[:n].astype(np.float32), y=d.target[:n])
    return path


def _pretrain(data, out, steps=8, **extra):
    return pj.pretrain("array", data=data, out=out, progress=False,
                       overrides={**TINY, "train.steps": steps, **extra})


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_tensors(run_dir / "encoder.safetensors")


def test_same_seed_same_losses_other_seed_differs(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    a = [r["loss"] for r in _pretrain(data, tmp_path / "a").metrics()]
    b = [r["loss"] for r in _pretrain(data, tmp_path / "b").metrics()]
    c = [r["loss"] for r in _pretrain(data, tmp_path / "c", **{"train.seed": 1}).metrics()]
    assert len(a) == 8 and a == b and a != c
    wa, wb = _weights(tmp_path / "a"), _weights(tmp_path / "b")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_interrupted_run_resumes_to_identical_weights(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    _pretrain(data, tmp_path / "full", **{"train.checkpoint_every": 3})

    def stop_at_five(step, row):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pj.pretrain("array", data=data, out=tmp_path / "cut", progress=False,
                    callbacks=[stop_at_five],
                    overrides={**TINY, "train.steps": 8, "train.checkpoint_every": 3})
    assert not (tmp_path / "cut" / "encoder.safetensors").exists()
    run = _pretrain(data, tmp_path / "cut", **{"train.checkpoint_every": 3})
    full, cut = _weights(tmp_path / "full"), _weights(tmp_path / "cut")
    assert all(torch.equal(full[k], cut[k]) for k in full)
    steps = [r["step"] for r in run.metrics() if "loss" in r]
    assert steps == sorted(set(steps)) and steps[-1] == 8  # no duplicated rows after resume


def test_killed_process_resumes_to_identical_weights(core_only, tmp_path, cli):
    data = _images(tmp_path / "d.npz")
    args = ["pretrain", "array", "--data", str(data), "--steps", "40", "--no-progress",
            "--set", "train.checkpoint_every=4"]
    for k, v in TINY.items():
        args += ["--set", f"{k}={v}"]
    cli(*args, "--out", str(tmp_path / "full"))
    env = dict(os.environ, PYTHONPATH=os.environ.get("PYTHONPATH", ""),
               POLYJEPA_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-m", "polyjepa", *args, "--out",
                             str(tmp_path / "killed")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    latest = tmp_path / "killed" / "checkpoints" / "latest"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if latest.exists() and latest.read_text().strip() >= "step_00000008":
            break
        time.sleep(0.05)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "encoder.safetensors").exists()
    cli(*args, "--out", str(tmp_path / "killed"))
    full, resumed = _weights(tmp_path / "full"), _weights(tmp_path / "killed")
    assert all(torch.equal(full[k], resumed[k]) for k in full)


def test_nan_guard_stops_and_keeps_last_checkpoint(core_only, tmp_path):
    x = np.full((16, 1, 8, 8), 3e38, dtype=np.float32)
    x[::2] = -3e38
    np.savez(tmp_path / "huge.npz", x=x)
    with pytest.raises(TrainingDiverged, match="loss became nan at step 1"):
        _pretrain(tmp_path / "huge.npz", tmp_path / "run", **{"dataset.normalize": False})
    assert not (tmp_path / "run" / "encoder.safetensors").exists()
    assert json.loads((tmp_path / "run" / "run.json").read_text())["status"] == "running"


def test_existing_run_with_other_config_is_kept(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    _pretrain(data, tmp_path / "run", steps=3)
    before = (tmp_path / "run" / "encoder.safetensors").read_bytes()
    with pytest.raises(ConfigError, match=r"train.lr"):
        _pretrain(data, tmp_path / "run", steps=3, **{"train.lr": 0.1})
    assert (tmp_path / "run" / "encoder.safetensors").read_bytes() == before


def test_unsafe_or_corrupt_checkpoints_are_refused(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    _pretrain(data, tmp_path / "run", steps=2)
    enc = tmp_path / "run" / "encoder.safetensors"
    good = enc.read_bytes()
    torch.save({"w": torch.zeros(2)}, enc)
    with pytest.raises(CheckpointError, match="pickle/torch.save"):
        pj.load_encoder(tmp_path / "run")
    enc.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        pj.load_encoder(tmp_path / "run")
    enc.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty or truncated"):
        pj.load_encoder(tmp_path / "run")
    with pytest.raises(CheckpointError, match="not a polyjepa run folder"):
        pj.load_encoder(tmp_path)


def test_bad_data_is_named(core_only, tmp_path):
    bad = tmp_path / "nan.npy"
    arr = np.zeros((4, 8, 8), np.float32)
    arr[2, 1, 1] = np.nan
    np.save(bad, arr)
    with pytest.raises(pj.DataError, match=r"nan.npy: NaN or infinite values \(first in sample 2\)"):
        _pretrain(bad, tmp_path / "r")
    trunc = tmp_path / "trunc.npy"
    np.save(trunc, np.zeros((64, 8, 8), np.float32))
    trunc.write_bytes(trunc.read_bytes()[:300])
    with pytest.raises(pj.DataError, match="trunc.npy: cannot read"):
        _pretrain(trunc, tmp_path / "r2")
    empty = tmp_path / "empty.npy"
    np.save(empty, np.zeros((0, 8, 8), np.float32))
    with pytest.raises(pj.DataError, match="empty.npy: no samples"):
        _pretrain(empty, tmp_path / "r3")


@pytest.mark.slow
def test_two_process_gloo_matches_single_process(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    sets = []
    for k, v in {**TINY, "train.checkpoint_every": 0, "train.rankme_every": 0}.items():
        sets += ["--set", f"{k}={v}"]
    common = ["pretrain", "array", "--data", str(data), "--steps", "4", "--no-progress", *sets]
    env = dict(os.environ, POLYJEPA_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1")
    subprocess.run([sys.executable, "-m", "polyjepa", *common, "--out", str(tmp_path / "one")],
                   check=True, env=env, capture_output=True)
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node",
                           "2", "--master-port", "29731", "-m", "polyjepa", *common, "--out",
                           str(tmp_path / "two")], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    one, two = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for k in one:
        assert torch.allclose(one[k], two[k], atol=1e-5, rtol=1e-4), k
    l1 = [r["loss"] for r in pj.Run(tmp_path / "one").metrics()]
    l2 = [r["loss"] for r in pj.Run(tmp_path / "two").metrics()]
    assert np.allclose(l1, l2, atol=1e-5)


def test_in_memory_data_is_not_saved_and_must_be_passed_again(core_only, tmp_path):
    from sklearn.datasets import load_digits

    d = load_digits()
    arrays = {"x": d.images[:48, None].astype(np.float32), "y": d.target[:48]}
    run = _pretrain(arrays, tmp_path / "run", steps=4)
    assert pj.Run(str(run.path)).config["data"] == "<in-memory dict>"
    with pytest.raises(pj.DataError, match="in-memory object.*pass the data again"):
        pj.embed(run)
    emb = pj.embed(run, data=arrays)
    assert emb.shape[0] == 48 and np.isfinite(emb).all()
    # the same arrays again resume (here: find complete) the same run
    assert _pretrain(arrays, tmp_path / "run", steps=4).path == run.path


def test_metrics_also_go_to_tensorboard(core_only, tmp_path):
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    run = _pretrain(_images(tmp_path / "x.npz"), tmp_path / "run", steps=4)
    events = accumulator.EventAccumulator(str(run.path / "tensorboard"))
    events.Reload()
    logged = {e.step: e.value for e in events.Scalars("loss")}
    rows = {r["step"]: r["loss"] for r in run.metrics() if "loss" in r}
    assert sorted(logged) == sorted(rows) == [1, 2, 3, 4]
    assert all(logged[s] == pytest.approx(rows[s], rel=1e-5) for s in rows)
    assert "rankme" in events.Tags()["scalars"]
