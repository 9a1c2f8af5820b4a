"""Fine-tuning: the encoder really trains, the caller's copy does not, runs repeat."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from test_quality import TINY, _images, _probe

import polyjepa as pj
from polyjepa.finetune import layer_groups
from polyjepa.quality import summarise


@pytest.fixture
def run(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    return pj.pretrain("array", data=str(data), out=tmp_path / "r", progress=False,
                       overrides={**TINY, "train.steps": 2}), data


def _parts(run):
    from polyjepa.build import build_dataset

    r, data = run
    encoder = pj.load_encoder(r)
    dataset = build_dataset(r.config, str(data), state=r.config.get("dataset_state"))
    labels = np.load(data)["y"]
    return encoder, dataset, labels


def test_finetune_trains_a_copy_and_repeats_under_a_seed(run):
    encoder, dataset, labels = _parts(run)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    idx = np.arange(len(labels))
    settings = pj.FineTuneSettings(epochs=50, batch_size=16)
    # predicting its own training samples: a loop that does not train would sit near 0.5
    fitted = pj.finetune_predict(encoder, dataset, labels, idx, idx, "classification",
                                 settings, seed=0)
    assert fitted.shape == labels.shape and set(fitted) <= set(labels)
    assert np.mean(fitted == labels) >= 0.9
    again = pj.finetune_predict(encoder, dataset, labels, idx, idx, "classification",
                                settings, seed=0)
    assert np.array_equal(fitted, again)
    after = encoder.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the caller's weights
    # regression targets come back in their own units
    values = labels.astype(np.float64) * 10.0 + 3.0
    pred = pj.finetune_predict(encoder, dataset, values, idx, idx[:5], "regression",
                               pj.FineTuneSettings(epochs=1), seed=0)
    assert pred.shape == (5,) and np.all(np.isfinite(pred))
    with pytest.raises(pj.DataError, match="single class"):
        pj.finetune_predict(encoder, dataset, np.zeros_like(labels), idx, idx,
                            "classification", settings)


def test_finetune_scores_rank_the_training_classes_and_pool_is_a_choice(run):
    encoder, dataset, labels = _parts(run)
    idx = np.arange(len(labels))
    settings = pj.FineTuneSettings(epochs=2, batch_size=16)
    pred = pj.finetune_predict(encoder, dataset, labels, idx, idx[:7], "classification",
                               settings, seed=0)
    logits = pj.finetune_predict(encoder, dataset, labels, idx, idx[:7], "classification",
                                 settings, seed=0, scores=True)
    classes = np.unique(labels)
    assert logits.shape == (7, len(classes))
    assert np.array_equal(classes[logits.argmax(1)], pred)
    # the head reads the pool it is given: another pool trains another model
    last = pj.finetune_predict(encoder, dataset, labels, idx, idx[:7], "classification",
                               settings, seed=0, scores=True, pool="last")
    assert last.shape == logits.shape and not np.allclose(last, logits)
    with pytest.raises(ValueError, match="pool 'max'"):
        pj.finetune_predict(encoder, dataset, labels, idx, idx[:7], "classification",
                            settings, seed=0, pool="max")


def test_layer_groups_decay_towards_the_input(run):
    encoder, _, _ = _parts(run)
    groups = layer_groups(encoder, lr=1.0, decay=0.5)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in encoder.parameters())  # each one once
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    depth = len(encoder.blocks)
    assert lr_of[id(encoder.norm.weight)] == 1.0
    assert lr_of[id(next(encoder.blocks[-1].parameters()))] == 0.5
    assert lr_of[id(next(encoder.blocks[0].parameters()))] == 0.5 ** depth
    assert min(lr_of.values()) == 0.5 ** (depth + 1)  # token and position embeddings


def test_finetune_evaluator_through_evaluate_and_the_cli(run, cli):
    r, data = run
    metrics = pj.evaluate(r, data=str(data), evaluators=[{"name": "finetune", "epochs": 1}])
    assert 0.0 <= metrics["finetune_acc"] <= 1.0 and "finetune_f1_macro" in metrics
    assert "finetune" in pj.list_evaluators()
    out = cli("evaluate", str(r.path), "--data", str(data), "--evaluator", "finetune")
    assert "finetune_acc" in out.stdout


def test_quality_task_scores_fine_tuning_on_a_line_of_its_own(core_only, tmp_path):
    data = _images(tmp_path / "d.npz")
    seen = []

    def finetuned(ctx: pj.EvalContext) -> float:
        seen.append(ctx.encoder)
        idx = np.arange(len(ctx.labels))
        pred = pj.finetune_predict(ctx.encoder, ctx.dataset, ctx.labels, idx[:48], idx[48:],
                                   "classification", pj.FineTuneSettings(epochs=1),
                                   seed=ctx.seed)
        return float(np.mean(pred == ctx.labels[48:]))

    task = pj.QualityTask(domain="core", name="parity", recipe="array", data=str(data),
                          probe=_probe, metric="accuracy (logreg)", steps=2, overrides=TINY,
                          finetune=finetuned,
                          baselines={"pixels": pj.features_baseline(
                              lambda ctx: ctx.dataset.x.reshape(len(ctx.labels), -1).numpy(),
                              _probe)})
    rows = pj.run_quality_task(task, tmp_path / "runs", seeds=(0,), factor=2, checkpoints=1,
                               log=lambda _: None)
    tuned = {(r["method"], r["steps"]) for r in rows if r["dataset"] == "parity (fine-tuned)"}
    assert tuned == {("random init", 0), ("pixels", 0), ("pretrained", 2), ("pretrained", 4)}
    assert len(seen) == 3 and len({id(e) for e in seen}) == 3  # random, N and 4N encoders
    metric = {r["metric"] for r in rows if r["dataset"] == "parity (fine-tuned)"}
    assert metric == {"accuracy (fine-tuned)"}
    pixels = [r["value"] for r in rows if r["method"] == "pixels"]
    assert len(pixels) == 2 and pixels[0] == pixels[1]  # the same baseline on both lines
    lines = {(s["dataset"], s["steps"]) for s in summarise(rows)}
    assert lines == {("parity", 2), ("parity", 4), ("parity (fine-tuned)", 2),
                     ("parity (fine-tuned)", 4)}
    text = pj.write_quality_report(rows, tmp_path / "report")[0].read_text()
    assert "| parity (fine-tuned) | real | accuracy (fine-tuned) | 4 |" in text
    json.dumps(rows)  # rows stay storable
    # the demo and the trend ask for frozen probes only
    frozen = pj.run_quality_task(task, tmp_path / "runs", seeds=(0,), factor=2,
                                 checkpoints=1, log=lambda _: None, finetune=False)
    assert len(seen) == 3 and {r["dataset"] for r in frozen} == {"parity"}
