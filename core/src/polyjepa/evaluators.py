"""Evaluators: RankMe (label-free), linear probe and kNN (scikit-learn).

An evaluator is a callable ``evaluator(ctx) -> dict[str, float]``; ``needs_labels`` tells
whether it can run without labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .errors import DataError


@dataclass
class EvalContext:
    """What an evaluator sees: pooled embeddings ``[N, D]`` and, where known, labels."""

    embeddings: np.ndarray
    labels: np.ndarray | None = None
    groups: np.ndarray | None = None
    encoder: Any = None
    dataset: Any = None
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def effective_rank(z: Any, eps: float = 1e-7) -> float:
    """RankMe: ``exp`` of the entropy of the normalised singular values of ``z [N, D]``.

    Between 1 (collapsed) and ``min(N, D)``; higher means richer embeddings.
    """
    import torch

    t = torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z).double()
    if t.dim() != 2 or t.shape[0] == 0:
        raise DataError(f"RankMe needs a non-empty [N, D] matrix, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise DataError("RankMe: the embeddings contain NaN or infinite values")
    s = torch.linalg.svdvals(t)
    if float(s.sum()) == 0.0:
        return 1.0
    p = s / s.sum() + eps
    return float(torch.exp(-(p * p.log()).sum()))


def centred_rank(z: Any) -> float:
    """RankMe of ``z`` with the mean embedding removed first (see :class:`RankMe`)."""
    import torch

    t = torch.as_tensor(np.asarray(z) if not isinstance(z, torch.Tensor) else z).double()
    return effective_rank(t - t.mean(dim=0, keepdim=True))


class RankMe:
    """Effective rank of the embedding matrix; label-free quality score.

    Garrido et al., "RankMe: Assessing the Downstream Performance of Pretrained
    Self-Supervised Representations by Their Rank", ICML 2023,
    https://arxiv.org/abs/2210.02885.

    ``rankme`` follows the paper (raw embeddings). ``rankme_centered`` removes the mean
    embedding first: a large shared offset (common after a final LayerNorm) counts as
    one dominant direction and can hide how much the embeddings actually vary.
    """

    needs_labels = False

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        z = np.asarray(ctx.embeddings, dtype=np.float64)
        return {"rankme": effective_rank(z),
                "rankme_centered": centred_rank(z),
                "rankme_max": float(min(z.shape))}


TASKS = ("classification", "regression", "multilabel")


def l2_normalise(z: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (cosine geometry for kNN and retrieval); zero rows stay
    zero."""
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def label_task(labels: np.ndarray, dataset: Any = None) -> str:
    """``classification``, ``regression`` or ``multilabel``.

    A dataset that knows its task says so with a ``task`` attribute (a regression target
    with few whole-number values looks like classes); otherwise it is read off the labels.
    """
    declared = getattr(dataset, "task", None)
    if declared in TASKS:
        return declared
    return _task(labels)


def _task(labels: np.ndarray) -> str:
    if labels.ndim == 2:
        return "multilabel"
    if np.issubdtype(labels.dtype, np.floating) and not np.allclose(labels, np.round(labels)):
        return "regression"
    if np.issubdtype(labels.dtype, np.floating) and len(np.unique(labels)) > 50:
        return "regression"
    return "classification"


def split_indices(labels: np.ndarray, groups: np.ndarray | None, seed: int,
                  test_size: float = 0.25, task: str | None = None
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Train/test split: by group when groups exist, stratified for classification."""
    from sklearn.model_selection import GroupShuffleSplit, ShuffleSplit, StratifiedShuffleSplit

    n = len(labels)
    if n < 4:
        raise DataError(f"need at least 4 labelled samples to split for a probe, got {n}")
    idx = np.arange(n)
    if groups is not None and len(np.unique(groups)) >= 2:
        splitter = GroupShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
        return next(splitter.split(idx, labels, groups))
    if (task or _task(labels)) == "classification":
        _, counts = np.unique(labels, return_counts=True)
        if counts.min() >= 2 and len(counts) <= n * test_size:
            splitter = StratifiedShuffleSplit(n_splits=1, test_size=test_size, random_state=seed)
            return next(splitter.split(idx, labels))
    return next(ShuffleSplit(n_splits=1, test_size=test_size, random_state=seed).split(idx))


def labelled_embeddings(ctx: EvalContext,
                        what: str = "this evaluator") -> tuple[np.ndarray, np.ndarray]:
    """The context's embeddings (float64) and labels, checked: labels present, one per
    embedding, embeddings finite. ``what`` names the caller in the error."""
    if ctx.labels is None:
        raise DataError(f"{what} needs labels and the data has none")
    x = np.asarray(ctx.embeddings, dtype=np.float64)
    y = np.asarray(ctx.labels)
    if len(x) != len(y):
        raise DataError(f"{what}: {len(x)} embeddings but {len(y)} labels")
    if not np.isfinite(x).all():
        raise DataError(f"{what}: the embeddings contain NaN or infinite values")
    return x, y


class LinearProbe:
    """Standardised logistic (or ridge) regression on a held-out split of frozen embeddings."""

    needs_labels = True

    def __init__(self, test_size: float = 0.25, c: float = 1.0, max_iter: int = 2000):
        self.test_size, self.c, self.max_iter = test_size, c, max_iter

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression, Ridge
        from sklearn.metrics import (
            accuracy_score,
            f1_score,
            mean_squared_error,
            r2_score,
            roc_auc_score,
        )
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x, y = labelled_embeddings(ctx)
        task = label_task(y, ctx.dataset)
        tr, te = split_indices(y if task != "multilabel" else y[:, 0], ctx.groups, ctx.seed,
                               self.test_size, task)
        if task == "regression":
            model = make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x[tr], y[tr])
            pred = model.predict(x[te])
            return {"linear_probe_r2": float(r2_score(y[te], pred)),
                    "linear_probe_rmse": float(np.sqrt(mean_squared_error(y[te], pred)))}
        if task == "multilabel":
            aucs = []
            for j in range(y.shape[1]):
                if len(np.unique(y[tr, j])) < 2 or len(np.unique(y[te, j])) < 2:
                    continue
                m = make_pipeline(StandardScaler(), LogisticRegression(
                    C=self.c, max_iter=self.max_iter)).fit(x[tr], y[tr, j])
                aucs.append(roc_auc_score(y[te, j], m.predict_proba(x[te])[:, 1]))
            if not aucs:
                raise DataError("no label column has both classes in train and test")
            return {"linear_probe_macro_auc": float(np.mean(aucs))}
        if len(np.unique(y[tr])) < 2:
            raise DataError("the training split holds a single class; a probe needs two")
        model = make_pipeline(StandardScaler(), LogisticRegression(C=self.c,
                                                                   max_iter=self.max_iter))
        model.fit(x[tr], y[tr])
        pred = model.predict(x[te])
        return {"linear_probe_acc": float(accuracy_score(y[te], pred)),
                "linear_probe_f1_macro": float(f1_score(y[te], pred, average="macro"))}


class KNN:
    """k-nearest-neighbour classification with cosine similarity on a held-out split."""

    needs_labels = True

    def __init__(self, k: int = 20, test_size: float = 0.25):
        self.k, self.test_size = k, test_size

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        from sklearn.metrics import accuracy_score
        from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

        x, y = labelled_embeddings(ctx)
        task = label_task(y, ctx.dataset)
        if task == "multilabel":
            return {}
        tr, te = split_indices(y, ctx.groups, ctx.seed, self.test_size, task)
        x = l2_normalise(x - x[tr].mean(axis=0))
        k = max(1, min(self.k, len(tr)))
        if task == "regression":
            from sklearn.metrics import r2_score

            model = KNeighborsRegressor(n_neighbors=k).fit(x[tr], y[tr])
            return {"knn_r2": float(r2_score(y[te], model.predict(x[te])))}
        model = KNeighborsClassifier(n_neighbors=k, weights="distance").fit(x[tr], y[tr])
        return {"knn_acc": float(accuracy_score(y[te], model.predict(x[te])))}
