from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import polyjepa as pj
from polyjepa import testing

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}


@pytest.mark.parametrize("recipe, extra", [
    ("recsys", {}),
    ("recsys_seq", {"dataset.max_len": 16}),
])
def test_pretrain_evaluate_embed(recipe, extra, atomic, small_log, tmp_path):
    run = testing.tiny_train(recipe, str(small_log), tmp_path / recipe, steps=3,
                             overrides={**TINY, **extra})
    assert run.complete
    state = run.config["dataset_state"]
    assert state["fields"][0]["kind"] == "hash" and state["train_items"]
    enc = pj.load_encoder(run.path)
    metrics = pj.evaluate(run.path)
    for key in ("rankme", "recall@10", "ndcg@10", "mrr", "pop_recall@10", "tail_recall@10"):
        assert np.isfinite(metrics[key]), key
    assert metrics["n_users"] == 40
    # the full log, read with the vocabularies of the run (many items are cold there)
    full = pj.evaluate(run.path, data=str(small_log / "full"), save=False)
    assert full["n_users"] == atomic.n_users and np.isfinite(full["recall@10"])
    emb = pj.embed(run.path)
    n = atomic.n_items if recipe == "recsys" else 40
    assert emb.shape == (n, enc.embed_dim) and np.isfinite(emb).all()


def test_cli(synthetic, synthetic_log, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cli = [sys.executable, "-m", "polyjepa"]
    out = tmp_path / "run"
    sets = [a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]
    subprocess.run([*cli, "pretrain", "recsys", "--data", str(synthetic_log), "--out", str(out),
                    "--steps", "2", "--batch-size", "8", "--set", "train.precision=fp32",
                    "--set", "train.device=cpu", *sets], check=True, env=env,
                   capture_output=True)
    res = subprocess.run([*cli, "evaluate", str(out), "--data", str(synthetic_log), "--json"],
                         check=True, env=env, capture_output=True, text=True)
    metrics = json.loads(res.stdout[res.stdout.index("{"):])
    assert "recall@10" in json.dumps(metrics)
    subprocess.run([*cli, "embed", str(out), "--data", str(synthetic_log), "--out",
                    str(tmp_path / "emb.npy")], check=True, env=env, capture_output=True)
    assert np.load(tmp_path / "emb.npy").shape[0] == synthetic.n_items


def test_quality_benchmark_runs(atomic, tmp_path, monkeypatch, capsys):
    """The benchmark script end to end, with a tiny model and two steps."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_quality.py"
    spec = importlib.util.spec_from_file_location("bench_quality", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    sets = [a for k, v in {**TINY, "train.batch_size": 16, "train.device": "cpu",
                           "train.precision": "fp32"}.items()
            for a in ("--set", f"{k}={v}")]
    monkeypatch.setattr(sys, "argv", ["bench", "--data", str(atomic.path), "--steps", "2",
                                      "--out", str(tmp_path), *sets])
    bench.main()
    out = capsys.readouterr().out
    rows = {line[:30].strip(): line[30:].split() for line in out.splitlines()
            if line[:30].strip() in ("recsys: pretrained JEPA", "recsys: random init",
                                     "recsys_seq: pretrained JEPA", "recsys_seq: random init",
                                     "popularity", "item-kNN (co-occurrence)")}
    assert len(rows) == 6
    knn, pop = float(rows["item-kNN (co-occurrence)"][0]), float(rows["popularity"][0])
    if atomic.real:
        assert pop == pytest.approx(0.0859, abs=1e-4)
        assert 0.05 < knn < 0.2
    else:  # taste clusters: co-occurrence beats popularity, which beats chance
        assert knn > pop > 2 * 10 / atomic.n_items
    for name in ("recsys: pretrained JEPA", "recsys_seq: random init"):
        assert all(np.isfinite(float(v)) for v in rows[name])
