"""Next-item ranking from frozen embeddings against popularity and item-kNN.

The usual offline protocol of recommendation (leave the latest interaction of every user
out, rank the whole catalogue, Recall@K) scored for :func:`polyjepa.run_quality_task`:
the pretrained encoder and the same encoder at random init go through the plugin's
zero-shot next-item scoring, and the two classic non-learned recommenders rank the same
held-out items. Used by ``benchmarks/quality.py`` and ``polyjepa demo``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import polyjepa as pj

from .evaluators import NextItem, itemknn_scores, popularity_scores

K = 10


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
    counts = ctx.dataset.split.counts
    return _recall(lambda s, e: popularity_scores(counts, e - s), ctx)


def itemknn(ctx: pj.EvalContext) -> float:
    """Item-kNN: summed cosine similarity (co-occurrence) of an item to the history."""
    split = ctx.dataset.split
    return _recall(itemknn_scores(split.histories, split.n_items), ctx)


def finetuned(ctx: pj.EvalContext) -> float:
    """Recall@10 after fine-tuning the sequence encoder on next-item prediction over the
    training histories (the protocol of self-supervised sequential recommenders)."""
    from .finetune import next_item_scores

    return _recall(next_item_scores(ctx.encoder, ctx.dataset, ctx.seed), ctx)


finetuned.needs_labels = False  # its labels are the histories' own next items


def movielens_task(name: str, recipe: str, data: Any, steps: int = 100) -> pj.QualityTask:
    """One recipe on a MovieLens folder (RecBole atomic files), at the recipe's sizes; the
    sequence recipe adds a fine-tuned line, the one it is judged on (next-item
    recommenders are fine-tuned on next items)."""
    small = {"encoder.embed_dim": 64, "encoder.depth": 2, "predictor.depth": 2,
             "train.rankme_every": 0, "eval.batch_size": 256, "train.batch_size": 64,
             "train.warmup_steps": 20}
    if recipe == "recsys_seq":
        small["dataset.max_len"] = 50
    return pj.QualityTask(
        domain="recsys", name=name, recipe=recipe, data=str(data),
        metric=f"Recall@{K} (next item)", probe=next_item_probe,
        baselines={"popularity": popularity, "item-kNN": itemknn}, steps=steps,
        overrides=small, finetune=finetuned if recipe == "recsys_seq" else None,
        judged_finetuned=recipe == "recsys_seq")


def demo_task() -> pj.QualityTask:
    """``polyjepa demo``'s labelled comparison: the sequence JEPA on the bundled ml-100k,
    scored after next-item fine-tuning, the protocol its field reports (about a minute
    for both starts; the quality table has the frozen zero-shot line beside it)."""
    from .demo import movielens_100k_path

    task = movielens_task("ml-100k-seq", "recsys_seq", movielens_100k_path(), steps=200)
    return dataclasses.replace(task, probe=finetuned, metric=f"Recall@{K} (fine-tuned)",
                               finetune=None)
