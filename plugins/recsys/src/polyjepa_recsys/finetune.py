"""Next-item fine-tuning: the sequence encoder trained end to end on its users' histories.

Self-supervised sequential recommenders are judged after fine-tuning on next-item
prediction (S3-Rec: Zhou et al., "S3-Rec: Self-Supervised Learning for Sequential
Recommendation with Mutual Information Maximization", CIKM 2020,
https://arxiv.org/abs/2008.07873), not from frozen embeddings. Each user's training
history gives prefixes whose next item is the label (the latest ``per_user`` of them); the
encoder's output at the latest position feeds a linear head over the items
(:func:`polyjepa.finetune_predict` with ``pool="last"``), and the users' held-out items
are ranked over the whole catalogue as :class:`~polyjepa_recsys.evaluators.NextItem`
ranks them. The held-out items are never labels: every prefix ends inside the training
history.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import torch

import polyjepa as pj

from .datasets import right_aligned
from .evaluators import NextItem

# one budget for every start (pretrained or random): the samples are many and short
SETTINGS = {"epochs": 3, "batch_size": 128, "lr": 1e-3}
PER_USER = 20  # training prefixes per user (the latest ones)


def training_prefixes(histories: list[np.ndarray], max_len: int, per_user: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """The latest ``per_user`` prefixes of each training history, right-aligned in
    ``max_len`` slots (``-1`` pads), and the item that follows each: ``(seq, next)``."""
    ends = [(h, t) for h in histories for t in range(max(1, len(h) - int(per_user)), len(h))]
    if not ends:
        raise pj.DataError("next-item fine-tuning: no history has two training items")
    return (right_aligned([h[:t] for h, t in ends], max_len),
            np.asarray([h[t] for h, t in ends], np.int64))


class _Histories(torch.utils.data.Dataset):
    """Samples of a sequence dataset built from item-index rows (prefixes, then users)."""

    def __init__(self, dataset: Any, seq: np.ndarray):
        self.dataset = dataset
        self.seq = torch.from_numpy(seq)

    def __len__(self) -> int:
        return self.seq.shape[0]

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return self.dataset._gather(self.seq[i])

    def __getitems__(self, indices: list[int]) -> pj.StackedSamples:
        """A batch in one gather (what :func:`polyjepa.collate` makes of the items)."""
        return pj.StackedSamples(self.dataset._gather(self.seq[torch.as_tensor(indices)]))


def next_item_scores(encoder: Any, dataset: Any, seed: int = 0, per_user: int | None = None,
                     settings: pj.FineTuneSettings | None = None, device: str = "cpu",
                     progress: bool = False) -> np.ndarray:
    """Scores ``[users, items]`` of every catalogue item for each user of a
    ``recsys.sequences`` dataset, from a copy of ``encoder`` fine-tuned on next-item
    prediction over the latest ``per_user`` (:data:`PER_USER`) training prefixes of each
    user. Items that are never a label score lowest."""
    if getattr(dataset, "kind", None) != "sequences":
        raise pj.DataError("next-item fine-tuning needs a recsys.sequences dataset")
    split = dataset.split
    seq, nxt = training_prefixes(split.histories, dataset.max_len, per_user or PER_USER)
    users = dataset.seq.numpy()
    samples = _Histories(dataset, np.concatenate([seq, users]))
    labels = np.concatenate([nxt, np.full(len(users), nxt[0])])  # users' labels unused
    train, test = np.arange(len(seq)), len(seq) + np.arange(len(users))
    logits = pj.finetune_predict(encoder, samples, labels, train, test, "classification",
                                 settings or pj.FineTuneSettings(**SETTINGS), seed, device,
                                 progress, pool="last", scores=True)
    out = np.full((len(users), split.n_items), float(logits.min()) - 1.0)
    out[:, np.unique(nxt)] = logits
    return out


class NextItemFineTune:
    """Evaluator: Recall@K, NDCG@K and MRR of the leave-last-out split (with the tail and
    cold slices of :class:`~polyjepa_recsys.evaluators.NextItem`) after next-item
    fine-tuning; keys start with ``finetune_``. Slower than ``recsys.next_item``: it trains
    the encoder."""

    needs_labels = False

    def __init__(self, ks: tuple[int, ...] = (10, 20), per_user: int = PER_USER,
                 **settings: Any):
        self.ks = tuple(int(k) for k in ks)
        self.per_user = int(per_user)
        self.settings = pj.FineTuneSettings(**{**SETTINGS, **settings})

    def __call__(self, ctx: pj.EvalContext) -> dict[str, float]:
        if ctx.encoder is None or ctx.dataset is None:
            raise pj.DataError("next-item fine-tuning needs the encoder and its dataset")
        scores = next_item_scores(ctx.encoder, ctx.dataset, ctx.seed, self.per_user,
                                  self.settings, str(ctx.extra.get("device", "cpu")),
                                  progress=sys.stderr.isatty())
        return NextItem(ks=self.ks, baselines=()).score("finetune", scores, ctx.dataset.split)
