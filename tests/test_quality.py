"""Quality harness and label-free checkpoint choice: correctness only, no figures."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import polyjepa as pj
from polyjepa.checkpoint import load_tensors
from polyjepa.quality import load_rows, random_init_encoder, save_rows, summarise

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 8, "predictor.depth": 1, "predictor.num_heads": 2,
        "train.batch_size": 8, "train.warmup_steps": 1, "train.log_every": 1,
        "train.rankme_samples": 64, "train.precision": "fp32", "train.device": "cpu",
        "masker.num_targets": 2}


def _images(path: Path, n: int = 64) -> Path:
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(path, x=d.images[:n].astype(np.float32), y=(d.target[:n] % 2))
    return path


def _probe(ctx: pj.EvalContext) -> float:
    return pj.LinearProbe()(ctx)["linear_probe_acc"]


def test_quality_task_compares_every_method_on_every_seed(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    task = pj.QualityTask(
        domain="core", name="digits-parity", recipe="array", data=str(data), probe=_probe,
        metric="accuracy", steps=2, overrides=TINY,
        baselines={"pixels": pj.features_baseline(
            lambda ctx: ctx.dataset.x.reshape(len(ctx.labels), -1).numpy(), _probe)})
    rows = pj.run_quality_task(task, tmp_path / "runs", seeds=(0, 1), factor=2,
                               checkpoints=2, log=lambda _: None)
    got = {(r["method"], r["steps"], r["seed"]) for r in rows}
    for seed in (0, 1):
        assert {("random init", 0, seed), ("pixels", 0, seed), ("pretrained", 2, seed),
                ("pretrained", 4, seed), ("rankme choice", 2, seed),
                ("rankme choice", 4, seed)} <= got
    for r in rows:
        assert 0.0 <= r["value"] <= 1.0
        if r["method"] == "rankme choice":
            assert r["value"] <= r["best"] and r["hit"] == (r["value"] == r["best"])
    # the two lengths are separate runs, each exporting the checkpoint RankMe chose
    info = json.loads((tmp_path / "runs" / "digits-parity-4-s1" / "run.json").read_text())
    assert info["selected"]["by"] == "rankme" and info["config"]["train"]["steps"] == 4
    save_rows(rows, tmp_path / "core.json")
    lines = summarise(load_rows([tmp_path / "core.json"]))
    assert [(s["steps"], s["wins"][1]) for s in lines] == [(2, 2), (4, 2)]
    picks = [r["value"] for r in rows if r["method"] == "rankme choice" and r["steps"] == 4]
    assert lines[1]["rankme_pick"][0] == pytest.approx(np.mean(picks))
    md, png = pj.write_quality_report(rows, tmp_path / "report")
    text = md.read_text()
    assert "| digits-parity | real | accuracy | 4 |" in text and "pixels" in text
    assert png.stat().st_size > 1000
    # the footer names the environment the rows were scored in, each one where they differ
    from polyjepa.quality import environment, environment_lines

    assert f"Environment: {environment()}." in text and "torch " in environment()
    two = environment_lines([{"domain": "b", "env": "torch 1"}, {"domain": "a", "env": "torch 2"},
                             {"domain": "c", "env": "torch 1"}])
    assert two[2:4] == ["- b, c: torch 1", "- a: torch 2"]


def test_random_init_encoder_is_where_training_started(core_only, tmp_path):
    from polyjepa.build import build_dataset, build_jepa, resolve_components

    cfg = pj.resolve_config("array", data=str(_images(tmp_path / "d.npz")), overrides=TINY)
    cfg = resolve_components(cfg, build_dataset(cfg))
    torch.manual_seed(3)
    start = build_jepa(cfg).encoder.state_dict()
    again = random_init_encoder(cfg, 3).state_dict()
    other = random_init_encoder(cfg, 4).state_dict()
    assert all(torch.equal(start[k], again[k]) for k in start)
    assert not all(torch.equal(start[k], other[k]) for k in start)


def test_select_rankme_exports_the_best_scored_checkpoint(core_only, tmp_path, monkeypatch):
    from polyjepa import trainer

    scripted = iter([5.0, 9.0, 3.0, 4.0])  # step 2 has the highest centred RankMe

    def fake_rankme(self, jepa, dataset, indices, dist):
        return 1.0, next(scripted), 16

    monkeypatch.setattr(trainer.Trainer, "_rankme", fake_rankme)
    data = _images(tmp_path / "d.npz")
    run = pj.pretrain("array", data=str(data), out=tmp_path / "r", progress=False,
                      overrides={**TINY, "train.steps": 4, "train.select": "rankme",
                                 "train.rankme_every": 0, "train.checkpoint_every": 1,
                                 "train.keep_checkpoints": 1})
    info = run.info
    assert info["selected"]["step"] == 2
    assert info["selected"]["rankme_centered"] == {"1": 5.0, "2": 9.0, "3": 3.0, "4": 4.0}
    kept = sorted(p.name for p in (run.path / "checkpoints").glob("step_*"))
    assert kept == ["step_00000002", "step_00000004"]  # the chosen one and the newest
    exported = load_tensors(run.path / "encoder.safetensors")
    chosen = pj.load_encoder(run, checkpoint="step_00000002").state_dict()
    last = pj.load_encoder(run, checkpoint="step_00000004").state_dict()
    assert all(torch.equal(exported[k], chosen[k]) for k in exported)
    assert not all(torch.equal(exported[k], last[k]) for k in exported)


def test_evaluate_checkpoints_lists_every_kept_checkpoint(core_only, tmp_path, capsys):
    from polyjepa.cli import main

    data = _images(tmp_path / "d.npz")
    run = pj.pretrain("array", data=str(data), out=tmp_path / "r", progress=False,
                      overrides={**TINY, "train.steps": 4, "train.select": "rankme",
                                 "train.checkpoint_every": 2, "train.keep_checkpoints": 4})
    table = pj.evaluate_checkpoints(run)
    assert sorted(table) == [2, 4]
    assert all({"rankme_centered", "linear_probe_acc"} <= set(m) for m in table.values())
    chosen = run.info["selected"]["step"]
    scores = run.info["selected"]["rankme_centered"]
    assert scores[str(chosen)] == max(scores.values())
    assert main(["evaluate", str(run.path), "--checkpoints"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if line[1:].split()[:1] in (["2"], ["4"])]
    assert [line[1:].split()[0] for line in rows] == ["2", "4"]
    assert [line[0] for line in rows] == ["*" if s == chosen else " " for s in (2, 4)]


def test_select_rankme_survives_a_resume(core_only, tmp_path, monkeypatch):
    from polyjepa import trainer

    scripted = iter([2.0, 8.0, 1.0, 1.5])  # one value per checkpoint, across both runs
    monkeypatch.setattr(trainer.Trainer, "_rankme",
                        lambda self, jepa, dataset, indices, dist: (1.0, next(scripted), 16))

    class Stop(Exception):
        pass

    def stop_after_three(step, row):
        if step == 3:
            raise Stop

    data = str(_images(tmp_path / "d.npz"))
    over = {**TINY, "train.steps": 4, "train.select": "rankme", "train.rankme_every": 0,
            "train.checkpoint_every": 1, "train.keep_checkpoints": 1}
    with pytest.raises(Stop):
        pj.pretrain("array", data=data, out=tmp_path / "r", progress=False, overrides=over,
                    callbacks=[stop_after_three])
    run = pj.pretrain("array", data=data, out=tmp_path / "r", progress=False, overrides=over)
    assert run.info["selected"]["step"] == 2
    assert run.info["selected"]["rankme_centered"] == {"1": 2.0, "2": 8.0, "3": 1.0,
                                                       "4": 1.5}


def test_builtin_demo_compares_on_digits(core_only, tmp_path):
    res = pj.demo(["array"], out=tmp_path / "demo", steps=2, progress=False)
    comp = res["array"]["comparison"]
    assert comp["data"] == "digits" and comp["metric"] == "accuracy (linear probe)"
    assert set(comp) == {"data", "metric", "pretrained", "random init", "pixels"}
    assert all(0.0 <= comp[k] <= 1.0 for k in ("pretrained", "random init", "pixels"))
    assert comp["pixels"] > 0.8  # raw digits are linearly separable: the probe is real
    run = json.loads((tmp_path / "demo" / "array" / "digits-2-s0" / "run.json").read_text())
    assert run["config"]["target"]["kind"] == "sigreg"  # the demo's own settings
    assert "| digits | real | accuracy (linear probe) | 2 |" in \
        (tmp_path / "demo" / "quality.md").read_text()


def test_trend_runs_ladder_then_data_shares():
    assert pj.trend_runs(10) == [(10, 1.0), (40, 1.0), (160, 1.0), (40, 0.25), (40, 0.5)]
    assert pj.trend_runs(3, "1,2", "0.5,1", fraction_factor=1) == [(3, 1.0), (6, 1.0),
                                                                    (3, 0.5)]
    assert pj.trend_runs(5, "1,4", "") == [(5, 1.0), (20, 1.0)]  # no data shares


def test_data_fraction_trains_on_a_seeded_share(core_only, tmp_path, monkeypatch):
    from polyjepa import trainer
    from polyjepa.data import training_subset

    ds = list(range(40))
    part = training_subset(ds, 0.25, seed=3)
    assert len(part) == 10 and list(part.indices) == sorted(part.indices)
    assert list(training_subset(ds, 0.25, seed=3).indices) == list(part.indices)
    assert list(training_subset(ds, 0.25, seed=4).indices) != list(part.indices)
    assert training_subset(ds, 1.0, seed=3) is ds
    seen = []
    real_loader = trainer.train_loader
    monkeypatch.setattr(trainer, "train_loader",
                        lambda dataset, *a, **k: seen.append(dataset) or real_loader(dataset, *a, **k))
    data = str(_images(tmp_path / "d.npz", n=64))
    pj.pretrain("array", data=data, out=tmp_path / "r", progress=False,
                overrides={**TINY, "train.steps": 2, "train.data_fraction": 0.25})
    assert len(seen) == 1 and len(seen[0]) == 16
    with pytest.raises(pj.ConfigError, match=r"train\.data_fraction must lie in \(0, 1\]"):
        pj.pretrain("array", data=data, out=tmp_path / "bad", progress=False,
                    overrides={**TINY, "train.steps": 2, "train.data_fraction": 0})


def test_trend_pairs_each_run_with_random_init(core_only, tmp_path):
    from polyjepa.trend import trend_summary

    task = pj.QualityTask(domain="core", name="digits-parity", recipe="array",
                          data=str(_images(tmp_path / "d.npz")), probe=_probe,
                          metric="accuracy", steps=2, overrides=TINY)
    rows = pj.run_quality_task(task, tmp_path / "runs", seeds=(0, 1), checkpoints=1,
                               runs=[(2, 1.0), (4, 1.0), (4, 0.5)], log=lambda _: None)
    info = json.loads((tmp_path / "runs" / "digits-parity-4-f0.5-s1" / "run.json").read_text())
    assert info["config"]["train"]["data_fraction"] == 0.5
    # the quality table keeps to runs on all the data
    assert [s["steps"] for s in summarise(rows)] == [2, 4]
    lines = {(s["steps"], s["fraction"]): s for s in trend_summary(rows)}
    assert sorted(lines) == [(2, 1.0), (4, 0.5), (4, 1.0)]
    value = {(r["method"], r["steps"], r.get("fraction"), r["seed"]): r["value"] for r in rows}
    gaps = [value[("pretrained", 4, 0.5, s)] - value[("random init", 0, None, s)]
            for s in (0, 1)]
    assert lines[(4, 0.5)]["gap"][0] == pytest.approx(np.mean(gaps))
    assert lines[(4, 0.5)]["wins"] == (sum(g > 0 for g in gaps), 2)
    md, png = pj.write_trend_report(rows, tmp_path / "trend")
    assert "| 4 | 50% |" in md.read_text() and "| 2 | 100% |" in md.read_text()
    assert png.stat().st_size > 1000
