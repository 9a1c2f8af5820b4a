"""Leave-last-out next-item evaluation with full ranking over the catalogue.

For every user with a held-out item, all catalogue items are scored, the user's training
items are excluded, and the rank of the held-out item gives Recall@K (hit rate), NDCG@K
and MRR. Slices: ``tail`` (held-out items outside the most popular ``head_share`` of the
catalogue's training interactions) and ``cold`` (items with at most ``cold_max`` training
interactions, including items never seen in training). A popularity ranking is scored
beside the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from polyjepa import DataError, EvalContext, collate, l2_normalise


def ranks(scores: np.ndarray, targets: np.ndarray, histories: Sequence[np.ndarray]) -> np.ndarray:
    """0-based rank of each target among the non-history items (ties count against it)."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    if scores.shape[0] != len(targets):
        raise DataError(f"{scores.shape[0]} score rows for {len(targets)} users")
    if not np.isfinite(scores).all():
        raise DataError("recommendation scores contain NaN or infinite values")
    rows = np.arange(len(targets))
    t = scores[rows, targets].copy()
    for r, h in enumerate(histories):
        scores[r, h] = -np.inf
    scores[rows, targets] = -np.inf
    return (scores >= t[:, None]).sum(axis=1)


def rank_metrics(rank: np.ndarray, ks: Sequence[int] = (10,), prefix: str = "") -> dict[str, float]:
    """Recall@K, NDCG@K and MRR from 0-based ranks (one relevant item per user)."""
    out: dict[str, float] = {}
    if len(rank) == 0:
        return out
    for k in ks:
        hit = rank < k
        out[f"{prefix}recall@{k}"] = float(hit.mean())
        out[f"{prefix}ndcg@{k}"] = float(np.where(hit, 1.0 / np.log2(rank + 2.0), 0.0).mean())
    out[f"{prefix}mrr"] = float((1.0 / (rank + 1.0)).mean())
    return out


def slices(counts: np.ndarray, cold: np.ndarray, head_share: float = 0.2,
           cold_max: int = 5) -> dict[str, np.ndarray]:
    """Boolean item masks: ``tail`` (not among the top ``head_share`` items) and ``cold``."""
    order = np.argsort(-counts, kind="stable")
    n_head = round(head_share * int((counts > 0).sum()))
    head = np.zeros(len(counts), bool)
    head[order[:n_head]] = True
    return {"tail": ~head, "cold": cold | (counts <= cold_max)}


def popularity_scores(counts: np.ndarray, n_users: int) -> np.ndarray:
    """Every user's scores as the items' training counts: the popularity baseline."""
    return np.broadcast_to(counts.astype(np.float64), (n_users, len(counts)))


def itemknn_scores(histories: Sequence[np.ndarray], n_items: int, shrink: float = 10.0
                   ) -> np.ndarray:
    """Item-kNN on co-occurrence: cosine similarity of item user-vectors, summed over history."""
    rows = np.concatenate([np.full(len(h), u) for u, h in enumerate(histories)])
    cols = np.concatenate(histories)
    m = np.zeros((len(histories), n_items), np.float32)
    m[rows, cols] = 1.0
    co = m.T @ m
    norm = np.sqrt(np.diag(co))
    denom = np.outer(norm, norm) + float(shrink)
    sim = np.divide(co, denom, out=np.zeros_like(co), where=denom > 0)
    np.fill_diagonal(sim, 0.0)
    return m @ sim


def _unit(z: np.ndarray, centre: np.ndarray | None = None) -> np.ndarray:
    """Rows of ``z`` (less ``centre`` when given) at unit length, for cosine scores."""
    z = np.asarray(z, np.float64)
    return l2_normalise(z if centre is None else z - centre)


def embedding_scores(user_z: np.ndarray, item_z: np.ndarray, centre: bool = True
                     ) -> np.ndarray:
    """Cosine scores between users and items.

    ``centre`` first subtracts the catalogue's mean item embedding from both sides, so
    that the direction all embeddings share does not dominate every cosine. ``user_z``
    must not be centred already (a profile from :func:`history_profile` is: score it with
    :class:`NextItem`, or against ``item_z`` centred by hand).
    """
    mu = np.asarray(item_z, np.float64).mean(axis=0, keepdims=True) if centre else None
    return _unit(user_z, mu) @ _unit(item_z, mu).T


def history_profile(item_z: np.ndarray, histories: Sequence[np.ndarray],
                    centre: bool = True) -> np.ndarray:
    """A user as the mean of their (centred) normalised history item embeddings.

    Scored against the same centred, normalised item embeddings this ranks an item by
    its summed cosine similarity to the history (item-to-item retrieval, as item-kNN does
    on co-occurrence). The profile lives in the centred space already.
    """
    mu = np.asarray(item_z, np.float64).mean(axis=0, keepdims=True) if centre else None
    v = _unit(item_z, mu)
    return np.stack([v[h].mean(axis=0) if len(h) else np.zeros(v.shape[1]) for h in histories])


def item_embeddings(encoder: Any, dataset: Any, batch_size: int = 256,
                    device: str = "cpu") -> np.ndarray:
    """Embeddings of every catalogue item as a one-item history (sequence encoders)."""
    import torch

    n = dataset.split.n_items
    out = []
    with torch.no_grad():
        for s in range(0, n, batch_size):
            idx = torch.arange(s, min(n, s + batch_size))
            batch = {k: v.to(device) for k, v in dataset.item_batch(idx).items()}
            z = encoder(batch).float()
            w = batch["valid"].to(z.dtype).unsqueeze(-1)
            out.append(((z * w).sum(1) / w.sum(1).clamp_min(1.0)).cpu().numpy())
    return np.concatenate(out)


def latest_embeddings(encoder: Any, dataset: Any, batch_size: int = 256,
                      device: str = "cpu") -> np.ndarray:
    """Each user's encoder output at the latest history position (right-aligned)."""
    import torch

    out = []
    with torch.no_grad():
        for s in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(s, min(len(dataset), s + batch_size))])
            batch = {k: v.to(device) for k, v in batch.items()}
            out.append(encoder(batch)[:, -1].float().cpu().numpy())
    return np.concatenate(out)


def user_item_embeddings(ctx: EvalContext, centre: bool = True, user: str = "latest"
                         ) -> tuple[np.ndarray, np.ndarray]:
    """(user, item) embeddings for the dataset in ``ctx``: item tower or sequence encoder.

    For a sequence encoder ``user="latest"`` takes the output at the latest history
    position, which attends to the whole history and sits where the one-item histories
    of the candidate items sit; ``user="mean"`` takes the pooled embedding of the history
    (what ``embed`` returns).
    """
    ds = ctx.dataset
    kind = getattr(ds, "kind", None)
    if kind == "items":
        item_z = np.asarray(ctx.embeddings, np.float64)
        return history_profile(item_z, ds.split.histories, centre), item_z
    if kind == "sequences":
        if ctx.encoder is None:
            raise DataError("next-item evaluation of a sequence encoder needs the encoder")
        bs = int(ctx.extra.get("batch_size", 256))
        device = str(ctx.extra.get("device", "cpu"))
        item_z = item_embeddings(ctx.encoder, ds, bs, device)
        if user == "latest":
            user_z = latest_embeddings(ctx.encoder, ds, bs, device)
        elif user == "mean":
            user_z = np.asarray(ctx.embeddings, np.float64)
        else:
            raise ValueError(f"user={user!r}: choose 'latest' or 'mean'")
        return user_z.astype(np.float64), item_z.astype(np.float64)
    raise DataError("recsys.next_item needs a recsys dataset (recsys.items or "
                    "recsys.sequences) in the evaluation context")


class NextItem:
    """Leave-last-out next-item Recall@K, NDCG@K, MRR; tail/cold slices; popularity beside.

    A sequence encoder's user is its output at the latest history position (``user=
    "latest"``) or its pooled history embedding (``user="mean"``). Users are scored
    ``chunk`` at a time, so memory stays ``chunk x n_items`` however
    many users there are. ``centre`` subtracts the mean item embedding before the cosine
    (once: an item-tower profile is averaged from centred item embeddings).
    """

    needs_labels = False

    def __init__(self, ks: Sequence[int] = (10, 20), head_share: float = 0.2,
                 cold_max: int = 5, baselines: Sequence[str] = ("popularity",),
                 centre: bool = True, chunk: int = 1024, user: str = "latest"):
        self.ks = tuple(int(k) for k in ks)
        self.head_share = float(head_share)
        self.cold_max = int(cold_max)
        unknown = set(baselines) - {"popularity", "itemknn"}
        if unknown:
            raise ValueError(f"unknown baseline(s) {sorted(unknown)}: popularity, itemknn")
        self.baselines = tuple(baselines)
        self.centre = bool(centre)
        self.chunk = max(1, int(chunk))
        if user not in ("latest", "mean"):
            raise ValueError(f"user={user!r}: choose 'latest' or 'mean'")
        self.user = user

    def score(self, name: str, scores: Any, split: Any) -> dict[str, float]:
        """Metrics of one scorer: an array ``[users, items]`` or ``f(start, stop)`` giving
        the score rows of users ``start:stop``."""
        n = len(split.targets)
        if callable(scores):
            r = np.concatenate([ranks(scores(s, min(n, s + self.chunk)),
                                      split.targets[s:s + self.chunk],
                                      split.histories[s:s + self.chunk])
                                for s in range(0, n, self.chunk)])
        else:
            r = ranks(scores, split.targets, split.histories)
        prefix = "" if name == "model" else f"{name}_"
        out = rank_metrics(r, self.ks, prefix)
        for sl, mask in slices(split.counts, split.cold, self.head_share,
                               self.cold_max).items():
            sel = mask[split.targets]
            out.update(rank_metrics(r[sel], self.ks, f"{prefix}{sl}_"))
        return out

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        ds = ctx.dataset
        split = getattr(ds, "split", None)
        if split is None or len(split.targets) == 0:
            raise DataError("recsys.next_item: the dataset has no held-out interactions")
        user_z, item_z = user_item_embeddings(ctx, self.centre, self.user)
        if len(user_z) != len(split.targets):
            raise DataError(f"{len(user_z)} user embeddings for {len(split.targets)} users")
        if not (np.isfinite(user_z).all() and np.isfinite(item_z).all()):
            raise DataError("recsys.next_item: the embeddings contain NaN or infinite values")
        mu = item_z.mean(axis=0, keepdims=True) if self.centre else None
        # item-tower profiles are built from already centred item embeddings
        users = _unit(user_z, mu if getattr(ds, "kind", None) == "sequences" else None)
        items = _unit(item_z, mu)
        out = self.score("model", lambda s, e: users[s:e] @ items.T, split)
        n_users = len(split.targets)
        if "popularity" in self.baselines:
            out.update(self.score("pop", lambda s, e: popularity_scores(split.counts, e - s),
                                  split))
        if "itemknn" in self.baselines:
            out.update(self.score("itemknn", itemknn_scores(split.histories, split.n_items),
                                  split))
        sl = slices(split.counts, split.cold, self.head_share, self.cold_max)
        out["n_users"] = float(n_users)
        out["n_tail_targets"] = float(sl["tail"][split.targets].sum())
        out["n_cold_targets"] = float(sl["cold"][split.targets].sum())
        return out
