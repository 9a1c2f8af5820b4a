"""Sharded (FSDP2) training, its checkpoints, and runs spread over several launchers."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import polyjepa as pj
from polyjepa.checkpoint import is_sharded_checkpoint, kept_checkpoints, load_tensors

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 8, "predictor.depth": 1, "predictor.num_heads": 2,
        "train.batch_size": 8, "train.warmup_steps": 2, "train.log_every": 1,
        "train.rankme_every": 4, "train.rankme_samples": 64, "train.precision": "fp32",
        "train.device": "cpu", "masker.num_targets": 2, "train.accumulate": 2,
        "train.checkpoint_every": 2}
STEPS = 4


def _images(path: Path, n: int = 48) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(path, x=d.images[:n].astype(np.float32), y=d.target[:n])
    return path


def _port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _args(data: Path, out: Path, **extra: object) -> list[str]:
    args = ["-m", "polyjepa", "pretrain", "array", "--data", str(data), "--steps", str(STEPS),
            "--no-progress", "--out", str(out)]
    for k, v in {**TINY, **extra}.items():
        args += ["--set", f"{k}={v}"]
    return args


def _env() -> dict[str, str]:
    return dict(os.environ, POLYJEPA_DISABLE_PLUGIN_AUTOLOAD="1", OMP_NUM_THREADS="1",
                MKL_NUM_THREADS="1")


def _launch(data: Path, out: Path, nproc: int = 2, **extra: object) -> None:
    """One ``torchrun`` launcher with ``nproc`` processes (a single process for 1)."""
    launcher = ([] if nproc == 1 else
                ["-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
                 "--master-port", str(_port())])
    proc = subprocess.run([sys.executable, *launcher, *_args(data, out, **extra)],
                          env=_env(), capture_output=True, text=True, timeout=300)
    # a failed rank's own message can sit anywhere in the launcher's output: show every
    # line that is not another rank's traceback, then the tail
    own = [line for line in proc.stderr.splitlines()
           if not line.startswith("[rank") or "Error" in line or "error" in line]
    assert proc.returncode == 0, "\n".join(own[-40:]) + "\n---\n" + proc.stderr[-2000:]


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_tensors(run_dir / "encoder.safetensors")


def _losses(run_dir: Path) -> list[float]:
    return [r["loss"] for r in pj.Run(run_dir).metrics() if "loss" in r]


def _close(a: Path, b: Path, exact: bool = False) -> None:
    wa, wb = _weights(a), _weights(b)
    assert set(wa) == set(wb)
    for k in wa:
        if exact:
            assert torch.equal(wa[k], wb[k]), k
        else:
            assert torch.allclose(wa[k], wb[k], atol=1e-5, rtol=1e-4), k
    la, lb = _losses(a), _losses(b)
    assert len(la) == len(lb) == STEPS
    assert np.allclose(la, lb, rtol=1e-4, atol=0)


def _stop_after_first_checkpoint(src: Path, dst: Path) -> None:
    """``dst``: the folder a run killed between its two checkpoints leaves behind."""
    shutil.copytree(src, dst)
    ckpts = kept_checkpoints(dst)
    for later in ckpts[1:]:
        shutil.rmtree(later)
    (dst / "encoder.safetensors").unlink()
    (dst / "checkpoints" / "latest").write_text(ckpts[0].name + "\n")
    info = json.loads((dst / "run.json").read_text())
    info["status"] = "running"
    (dst / "run.json").write_text(json.dumps(info))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two-process runs shared by the tests below: DDP and FSDP on one global batch."""
    root = tmp_path_factory.mktemp("dist")
    data = _images(root / "d.npz")
    _launch(data, root / "ddp")
    _launch(data, root / "fsdp", **{"train.strategy": "fsdp"})
    return {"data": data, "root": root, "ddp": root / "ddp", "fsdp": root / "fsdp"}


@pytest.mark.slow
def test_fsdp_matches_ddp_and_writes_sharded_checkpoints(runs):
    _close(runs["ddp"], runs["fsdp"])
    ckpts = kept_checkpoints(runs["fsdp"])
    assert [c.name for c in ckpts] == ["step_00000002", "step_00000004"]
    assert all(is_sharded_checkpoint(c) for c in ckpts)
    assert not any(is_sharded_checkpoint(c) for c in kept_checkpoints(runs["ddp"]))
    # one process loads the unsharded export, and the encoder of a sharded checkpoint
    enc = pj.load_encoder(runs["fsdp"])
    final = pj.load_encoder(runs["fsdp"], checkpoint="step_00000004")
    for (k, a), (_, b) in zip(enc.state_dict().items(), final.state_dict().items()):
        assert torch.equal(a, b), k
    early = pj.load_encoder(runs["fsdp"], checkpoint="step_00000002")
    assert not all(torch.equal(a, b) for a, b in zip(early.state_dict().values(),
                                                      final.state_dict().values()))


@pytest.mark.slow
def test_fsdp_resumes_exactly_under_two_and_one_processes(runs):
    cut = runs["root"] / "cut"
    _stop_after_first_checkpoint(runs["fsdp"], cut)
    _launch(runs["data"], cut, **{"train.strategy": "fsdp"})
    _close(runs["fsdp"], cut, exact=True)
    # the shards are re-split for another world size: one process resumes the same run
    single = runs["root"] / "cut1"
    _stop_after_first_checkpoint(runs["fsdp"], single)
    _launch(runs["data"], single, nproc=1, **{"train.strategy": "fsdp"})
    _close(runs["fsdp"], single)


@pytest.mark.slow
def test_two_nodes_match_one_launcher(runs):
    """Two launchers, one per 'node', meeting at a c10d rendezvous endpoint."""
    out, port = runs["root"] / "nodes", _port()
    procs = [subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--node-rank",
         str(node), "--rdzv-backend", "c10d", "--rdzv-endpoint", f"localhost:{port}",
         "--rdzv-id", "polyjepa-test", "--nproc-per-node", "1",
         *_args(runs["data"], out)], env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True) for node in (0, 1)]
    errors = []
    for p in procs:
        _, err = p.communicate(timeout=300)
        if p.returncode:
            errors.append(err[-2000:])
    assert not errors, errors
    _close(runs["ddp"], out)
    assert json.loads((out / "run.json").read_text())["world_size"] == 2


def _pretrain(data, out, **extra):
    return pj.pretrain("array", data=data, out=out, progress=False,
                       overrides={**TINY, "train.steps": STEPS, **extra})


def test_fsdp_in_one_process_trains_like_ddp_with_sharded_checkpoints(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    _pretrain(data, tmp_path / "ddp")
    _pretrain(data, tmp_path / "fsdp", **{"train.strategy": "fsdp"})
    _close(tmp_path / "ddp", tmp_path / "fsdp")
    assert all(is_sharded_checkpoint(c) for c in kept_checkpoints(tmp_path / "fsdp"))
    # the strategy is part of the run: the folder refuses to continue under another one
    with pytest.raises(pj.ConfigError, match="train.strategy"):
        _pretrain(data, tmp_path / "fsdp", **{"train.strategy": "ddp"})


def test_fsdp_single_process_resume_and_rankme_select(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    full = _pretrain(data, tmp_path / "full", **{"train.strategy": "fsdp",
                                                 "train.select": "rankme"}).path
    cut = tmp_path / "cut"
    _stop_after_first_checkpoint(full, cut)
    _pretrain(data, cut, **{"train.strategy": "fsdp", "train.select": "rankme"})
    _close(full, cut, exact=True)
    chosen = json.loads((cut / "run.json").read_text())["selected"]["step"]
    picked = pj.load_encoder(cut, checkpoint=f"step_{chosen:08d}").state_dict()
    exported = _weights(cut)
    assert all(torch.equal(picked[k], exported[k]) for k in exported)


def test_unknown_strategy_is_a_config_error(core_only, tmp_path):
    with pytest.raises(pj.ConfigError, match="train.strategy must be one of 'ddp', 'fsdp'"):
        _pretrain(_images(tmp_path / "d.npz"), tmp_path / "r", **{"train.strategy": "zero3"})


def test_run_file_without_strategy_resumes_as_ddp(core_only, tmp_path):
    """A run file written before ``train.strategy`` existed holds no such key."""
    data = _images(tmp_path / "d.npz")
    full = _pretrain(data, tmp_path / "full").path
    cut = tmp_path / "cut"
    _stop_after_first_checkpoint(full, cut)
    info = json.loads((cut / "run.json").read_text())
    del info["config"]["train"]["strategy"]
    (cut / "run.json").write_text(json.dumps(info))
    _pretrain(data, cut)
    _close(full, cut, exact=True)
