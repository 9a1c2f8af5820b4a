"""Quality tasks of polyjepa-recsys: next-item ranking on MovieLens-100k (real ratings).

Data: MovieLens-100k (100,000 ratings of 1,682 movies by 943 users) as RecBole atomic files,
from ``../shared/data/recsys/ml-100k`` or, where that is missing, the identical copy the
``recbole==1.2.1`` wheel ships. Split: each user's latest interaction is held out
(leave-last-out, the plugin's own split); it is fixed, so the seeds vary pre-training and
the random initialisation only. Probe: the plugin's next-item scoring (``recsys.next_item``,
zero-shot cosine of frozen embeddings; sequence encoder: the output at the latest history
position against every item as a one-item history; item tower: the mean of the history's
item embeddings against every item), Recall@10 over the full catalogue with the user's
training items excluded. Baselines on the same held-out items: popularity (training counts)
and item-kNN on co-occurrence. Run through ``benchmarks/quality.py recsys``
(``nox -s quality -- recsys``).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

import polyjepa as pj
from polyjepa_recsys.evaluators import NextItem, itemknn_scores

ROOT = Path(__file__).resolve().parents[3]
SHARED = Path(os.environ.get("POLYJEPA_SHARED_DATA", ROOT.parent / "shared" / "data"))
K = 10


def data_path() -> Path | None:
    """MovieLens-100k: the shared copy, else recbole's bundled one, else ``None``."""
    shared = SHARED / "recsys" / "ml-100k"
    if (shared / "ml-100k.inter").is_file():
        return shared
    try:
        from polyjepa_recsys.demo import movielens_100k_path

        return movielens_100k_path()
    except pj.DataError:
        return None


def next_item_probe(ctx: pj.EvalContext) -> float:
    """Recall@10 of the plugin's next-item scoring from the frozen encoder (no labels: the
    held-out items come from ``ctx.dataset.split``)."""
    return NextItem(ks=(K,), baselines=())(ctx)[f"recall@{K}"]


next_item_probe.needs_labels = False  # the evaluators' convention (see polyjepa.evaluators)


def _recall(scores, ctx: pj.EvalContext) -> float:
    """Recall@10 of ``scores`` (``[users, items]`` or ``f(start, stop)``) on the split."""
    return NextItem(ks=(K,), baselines=()).score("model", scores, ctx.dataset.split)[
        f"recall@{K}"]


def popularity(ctx: pj.EvalContext) -> float:
    """Items ranked by their number of training interactions."""
    counts = ctx.dataset.split.counts.astype(np.float64)
    return _recall(lambda s, e: np.broadcast_to(counts, (e - s, len(counts))), ctx)


def itemknn(ctx: pj.EvalContext) -> float:
    """Item-kNN: summed cosine similarity (co-occurrence) of an item to the history."""
    split = ctx.dataset.split
    return _recall(itemknn_scores(split.histories, split.n_items), ctx)


def tasks() -> list[pj.QualityTask]:
    data = data_path()
    if data is None:
        return []
    baselines = {"popularity": popularity, "item-kNN": itemknn}
    # the recipes' own sizes (the sequence JEPA beat its random init at 400 steps in the
    # README); N = 100 keeps 3 seeds x (N + 4N) steps of both tasks near 4 minutes on 2 cores
    small = {"encoder.embed_dim": 64, "encoder.depth": 2, "predictor.depth": 2,
             "train.rankme_every": 0, "eval.batch_size": 256}
    return [
        pj.QualityTask(
            domain="recsys", name="ml-100k-seq", recipe="recsys_seq", data=str(data),
            metric=f"Recall@{K} (next item)", probe=next_item_probe, baselines=dict(baselines),
            steps=100,
            overrides={**small, "dataset.max_len": 50, "train.batch_size": 64,
                       "train.warmup_steps": 20}),
        pj.QualityTask(
            domain="recsys", name="ml-100k-items", recipe="recsys", data=str(data),
            metric=f"Recall@{K} (next item)", probe=next_item_probe, baselines=dict(baselines),
            steps=100,
            overrides={**small, "train.batch_size": 64, "train.warmup_steps": 20}),
    ]
