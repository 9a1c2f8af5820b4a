"""Next-item fine-tuning of the sequence encoder: labels stay inside the training
histories, and the loop learns a rule a frozen encoder cannot know."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import polyjepa as pj
from polyjepa import testing
from polyjepa_recsys.finetune import next_item_scores, training_prefixes

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2,
        "dataset.max_len": 8}


def test_training_prefixes_end_inside_the_history():
    histories = [np.array([5, 6, 7, 8]), np.array([1, 2]), np.array([9])]
    seq, nxt = training_prefixes(histories, max_len=2, per_user=2)
    # the latest two prefixes of the first history (cut to 2 slots), one of the second;
    # a one-item history has none
    assert seq.tolist() == [[5, 6], [6, 7], [-1, 1]]
    assert nxt.tolist() == [7, 8, 2]
    with pytest.raises(pj.DataError, match="two training items"):
        training_prefixes([np.array([3])], max_len=4, per_user=5)
    items = SimpleNamespace(kind="items")  # an item catalogue has no histories to fine-tune on
    with pytest.raises(pj.DataError, match="recsys.sequences"):
        next_item_scores(None, items)


@pytest.fixture
def successor_log(tmp_path):
    """Every user walks the catalogue one item at a time: the next item is always the
    latest one plus one (mod 30). 60 users start at different items."""
    rows = [(f"u{u}", f"i{(u + t) % 30}", 4.0, 1_000 * t)
            for u in range(60) for t in range(12)]
    path = tmp_path / "walks.csv"
    pd.DataFrame(rows, columns=["user_id", "item_id", "rating", "timestamp"]).to_csv(
        path, index=False)
    return path


def test_finetuning_learns_the_successor_rule_through_evaluate(successor_log, tmp_path):
    run = testing.tiny_train("recsys_seq", str(successor_log), tmp_path / "run", steps=2,
                             overrides=TINY)
    before = {k: v.clone() for k, v in pj.load_encoder(run).state_dict().items()}
    tuned = pj.evaluate(run, evaluators=[{"name": "recsys.finetune", "ks": [1],
                                          "epochs": 30, "lr": 3e-3}], save=False)
    frozen = pj.evaluate(run, evaluators=[{"name": "recsys.next_item", "ks": [1]}],
                         save=False)
    # 18 candidates per user (the 11 history items are excluded): chance is 1/18
    assert tuned["finetune_recall@1"] >= 0.8
    assert frozen["recall@1"] < 0.5
    assert {"finetune_ndcg@1", "finetune_mrr", "finetune_tail_recall@1"} <= set(tuned)
    after = pj.load_encoder(run).state_dict()
    assert all(np.array_equal(before[k], after[k]) for k in before)
    assert "recsys.finetune" in pj.list_evaluators()


def test_prefix_batches_are_what_collate_makes_of_the_samples(successor_log):
    from polyjepa_recsys.datasets import SequenceDataset
    from polyjepa_recsys.finetune import _Histories

    ds = SequenceDataset(str(successor_log), max_len=8)
    seq, _ = training_prefixes(ds.split.histories, ds.max_len, per_user=3)
    samples = _Histories(ds, seq)
    batch = pj.collate(samples.__getitems__([4, 0, 7]))
    one_by_one = pj.collate([samples[i] for i in (4, 0, 7)])
    assert batch.keys() == one_by_one.keys()
    assert all(np.array_equal(batch[k], one_by_one[k]) for k in batch)


def test_the_demo_compares_the_sequence_recipe_after_fine_tuning(tmp_path, monkeypatch):
    from polyjepa_recsys import finetune
    from polyjepa_recsys.demo import movielens_100k_path

    try:
        movielens_100k_path()
    except pj.DataError:
        pytest.skip("recbole is not installed")
    monkeypatch.setitem(finetune.SETTINGS, "epochs", 1)  # the plumbing, not the figures
    monkeypatch.setattr(finetune, "PER_USER", 1)
    res = pj.demo(["recsys_seq"], out=tmp_path / "demo", steps=2, progress=False)
    comp = res["recsys_seq"]["comparison"]
    assert comp["metric"] == "Recall@10 (fine-tuned)"
    assert set(comp) == {"data", "metric", "pretrained", "random init", "popularity",
                         "item-kNN"}
    assert all(0.0 <= comp[k] <= 1.0 for k in ("pretrained", "random init"))
    assert comp["popularity"] == pytest.approx(0.0859, abs=1e-4)  # the real log's
    assert "| ml-100k-seq | real | Recall@10 (fine-tuned) | 2 |" in \
        (tmp_path / "demo" / "quality.md").read_text()
