"""End to end: pretrain on a CSV, evaluate and embed new data with the saved schema."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import polyjepa as pj
from polyjepa import testing

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2,
        "dataset.target": "label"}


@pytest.fixture(scope="module")
def run(tables, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "csv"
    testing.tiny_train("tabular", str(tables["csv"]), out, steps=3,
                       overrides={**TINY, "encoder.reg_tokens": 2})
    return out


def test_python_api(run, tables):
    r = pj.Run(run)
    assert r.complete
    assert [f["name"] for f in r.config["dataset_state"]["features"]][-1] == "band"
    enc = pj.load_encoder(run)
    assert enc.reg_tokens == 2 and enc.n_features == 14
    metrics = pj.evaluate(run, data=str(tables["parquet"]))
    for key in ("rankme", "linear_probe_acc", "downstream_emb_linear_acc",
                "downstream_raw_gbdt_acc", "downstream_emb_mlp_auc"):
        assert np.isfinite(metrics[key]), key
    # new data: a few rows with an unseen category, scored with the training schema
    new = tables["frame"].head(7).copy()
    new["band"] = "unseen"
    new_csv = tables["root"] / "new.csv"
    new.drop(columns=["label"]).to_csv(new_csv, index=False)
    emb = pj.embed(run, data=str(new_csv))
    full = pj.embed(run, data=str(tables["csv"]))
    assert emb.shape == (7, 16) and full.shape == (len(tables["frame"]), 16)
    assert np.isfinite(emb).all()
    # rows whose only change is band -> unknown: same schema, so other tokens encode alike
    ds_new = pj.create_dataset("tabular.table", str(new_csv), target="label",
                               state=r.config["dataset_state"])
    ds_old = pj.create_dataset("tabular.table", str(tables["csv"]), target="label",
                               state=r.config["dataset_state"])
    assert torch.equal(ds_new.x[:, :13], ds_old.x[:7, :13])


def test_sigreg_and_mask_mode(tables, tmp_path):
    out = testing.tiny_train("tabular", str(tables["csv"]), tmp_path / "sig", steps=2,
                             overrides={**TINY, "target.kind": "sigreg",
                                        "dataset.missing": "mask"})
    emb = pj.embed(out)
    assert emb.shape == (len(tables["frame"]), 16) and np.isfinite(emb).all()


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "polyjepa", *args], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def test_cli(tables, tmp_path):
    out = tmp_path / "cli"
    sets = [f"--set={k}={v}" for k, v in TINY.items()]
    _cli("pretrain", "tabular", "--data", str(tables["parquet"]), "--out", str(out),
         "--steps", "2", "--batch-size", "8", "--set", "train.precision=fp32",
         "--set", "train.warmup_steps=1", *sets, "--no-progress")
    res = _cli("evaluate", str(out), "--data", str(tables["csv"]), "--json")
    metrics = json.loads(res.stdout[res.stdout.index("{"):])
    assert np.isfinite(metrics["downstream_emb_linear_f1_macro"])
    _cli("embed", str(out), "--data", str(tables["csv"]), "--out", str(tmp_path / "e.npy"))
    emb = np.load(tmp_path / "e.npy")
    assert emb.shape == (len(tables["frame"]), 16)
    labels = np.load(tmp_path / "e.labels.npy")
    assert set(labels.tolist()) == {0, 1, 2}


def test_demo_recipe_runs(tmp_path):
    """The demo wiring (tabular.sklearn, breast cancer), shortened to a few steps."""
    out = testing.tiny_train("tabular", "breast_cancer", tmp_path / "demo", steps=2,
                             overrides={"dataset.name": "tabular.sklearn",
                                        "encoder.embed_dim": 16, "encoder.depth": 1,
                                        "encoder.num_heads": 2})
    metrics = pj.evaluate(out, evaluators=["rankme", "tabular.downstream"])
    assert metrics["rankme"] >= 1.0 and 0.0 <= metrics["downstream_emb_linear_acc"] <= 1.0


def test_default_recipe_on_bundled_name(tmp_path):
    """``pretrain("tabular", data="wine")``: the default reader, labels as ``y`` for the
    core probes, and the saved schema reused for evaluation and embedding."""
    tiny = {k: v for k, v in TINY.items() if k != "dataset.target"}
    r = testing.tiny_train("tabular", "wine", tmp_path / "wine", steps=2, overrides=tiny)
    assert r.config["dataset"]["name"] == "tabular.table"
    assert r.config["dataset_state"]["target"]["name"] == "target"
    metrics = pj.evaluate(r, evaluators=["rankme", "linear_probe", "knn"])
    assert 0.0 <= metrics["linear_probe_acc"] <= 1.0 and np.isfinite(metrics["knn_acc"])
    assert pj.embed(r).shape == (178, 16)


def test_demo_compares_pretrained_random_init_and_baselines(tmp_path):
    res = pj.demo(["tabular"], out=tmp_path / "demo", steps=3, progress=False)
    comp = res["tabular"]["comparison"]
    assert comp["data"] == "breast_cancer" and comp["metric"] == "accuracy (MLP)"
    assert set(comp) == {"data", "metric", "pretrained", "random init", "raw + MLP", "GBDT"}
    assert all(0.5 <= comp[k] <= 1.0 for k in ("pretrained", "random init", "raw + MLP",
                                                "GBDT"))
    assert "linear_probe_acc" in res["tabular"]["metrics"]
    summary = (tmp_path / "demo" / "quality.md").read_text()
    assert "| breast_cancer | real | accuracy (MLP) | 3 |" in summary
    assert (tmp_path / "demo" / "quality.png").stat().st_size > 1000


@pytest.mark.parametrize("which", ["text_first", "stray"])
def test_pretrain_on_text_first_and_stray_word_tables(odd_tables, tmp_path, which):
    """``color,v1,...`` (a text column first) and a numeric column with one ``abc`` entry
    train, evaluate and embed like any other table."""
    with warnings.catch_warnings():
        # the stray word's warning is tested with the reader
        warnings.filterwarnings("ignore", message=".*are not numbers")
        run = testing.tiny_train("tabular", str(odd_tables[which]), tmp_path / which,
                                 steps=3, overrides=TINY)
        assert run.complete
        features = run.config["dataset_state"]["features"]
        if which == "text_first":
            assert features[0]["name"] == "color" and features[0]["kind"] == "categorical"
        else:
            assert [f["kind"] for f in features] == ["numeric"] * 5
        metrics = pj.evaluate(run, evaluators=["rankme", "linear_probe"], save=False)
        assert np.isfinite(metrics["linear_probe_acc"])
        assert pj.embed(run).shape == (odd_tables["n"], 16)


def test_cli_on_text_first_table_with_stray_word(odd_tables, tmp_path):
    out = tmp_path / "cli"
    sets = [f"--set={k}={v}" for k, v in TINY.items()]
    proc = _cli("pretrain", "tabular", "--data", str(odd_tables["both"]), "--out", str(out),
                "--steps", "2", "--batch-size", "8", "--set", "train.precision=fp32",
                "--set", "train.warmup_steps=1", *sets, "--no-progress")
    assert "both.csv: column" in proc.stderr and "1 of" in proc.stderr
    features = pj.Run(out).config["dataset_state"]["features"]
    assert [f["kind"] for f in features] == ["categorical"] + ["numeric"] * 5
