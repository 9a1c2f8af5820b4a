"""Chip-classification metrics: linear probe and kNN accuracy / macro-F1, and the
hand-crafted gradient (HOG of ROA gradients) baseline on the same split.

The baseline pools the features SAR-JEPA regresses (Li et al., "Predicting Gradient is
Better: Exploring Self-Supervised Learning for SAR ATR with a Joint-Embedding Predictive
Architecture", 2023, https://arxiv.org/abs/2311.15153): what pre-training must beat to
have learnt more than its own target.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from polyjepa import (
    DataError,
    EvalContext,
    encoder_pool,
    l2_normalise,
    labelled_embeddings,
    split_indices,
)


def chip_labels(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings (float64) and one class per chip, checked for a classification."""
    x, y = labelled_embeddings(ctx, "chip classification (labelled chips: class "
                                    "sub-folders)")
    if y.ndim != 1:
        raise DataError(f"chip classification needs one class per chip, got labels of "
                        f"shape {y.shape}")
    if len(np.unique(y)) < 2:
        raise DataError("chip classification needs at least two classes")
    return x, y.astype(np.int64)


def classify(x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray, k: int = 10,
             c: float = 1.0, prefix: str = "chip") -> dict[str, float]:
    """Linear probe (standardised logistic regression) and cosine kNN on a fixed split."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if len(np.unique(y[tr])) < 2:
        raise DataError("the training split holds a single class")
    lin = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=3000))
    pred = lin.fit(x[tr], y[tr]).predict(x[te])
    xc = l2_normalise(x - x[tr].mean(axis=0))
    knn = KNeighborsClassifier(n_neighbors=max(1, min(k, len(tr))), weights="distance")
    kpred = knn.fit(xc[tr], y[tr]).predict(xc[te])
    return {f"{prefix}_linear_acc": float(accuracy_score(y[te], pred)),
            f"{prefix}_linear_f1_macro": float(f1_score(y[te], pred, average="macro")),
            f"{prefix}_knn_acc": float(accuracy_score(y[te], kpred)),
            f"{prefix}_knn_f1_macro": float(f1_score(y[te], kpred, average="macro"))}


class ChipClassification:
    """Target-chip classification from frozen embeddings: accuracy and macro-F1 of a
    linear probe and of a kNN classifier on one stratified (or group-wise) split."""

    needs_labels = True

    def __init__(self, k: int = 10, c: float = 1.0, test_size: float = 0.25):
        self.k, self.c, self.test_size = int(k), float(c), float(test_size)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        x, y = chip_labels(ctx)
        tr, te = split_indices(y, ctx.groups, ctx.seed, self.test_size)
        return classify(x, y, tr, te, self.k, self.c)


def gradient_features(dataset: Any, batch_size: int = 64, pool: str = "mean",
                      **target_kw: Any) -> np.ndarray:
    """Hand-crafted baseline: the ROA-gradient HOG of each patch, pooled over an image's
    valid patches as ``pool`` says (:func:`polyjepa.pool_tokens`: pool it as the encoder
    it is compared with)."""
    import torch

    from polyjepa import collate, pool_tokens

    from .encoders import GradientTarget

    first = dataset[0]["x"]
    kw = {"in_chans": int(first.shape[0]),
          "patch_size": int((getattr(dataset, "encoder_hints", None) or {}).get("patch_size", 8)),
          **target_kw}
    target = GradientTarget(**kw)
    out = []
    with torch.no_grad():
        for s in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(s, min(len(dataset), s + batch_size))])
            out.append(pool_tokens(target(batch), batch.get("valid"), pool).numpy())
    return np.concatenate(out)


class GradientBaseline:
    """The non-learned baseline beside a run's metrics: chip classification on pooled
    multi-scale ROA-gradient histograms of the same data and split."""

    needs_labels = True

    def __init__(self, k: int = 10, c: float = 1.0, test_size: float = 0.25,
                 **target_kw: Any):
        self.k, self.c, self.test_size = int(k), float(c), float(test_size)
        self.target_kw = target_kw

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        _, y = chip_labels(ctx)
        if ctx.dataset is None:
            raise DataError("the gradient baseline needs the dataset itself")
        pool = encoder_pool(ctx.encoder) if ctx.encoder is not None else "mean"
        feats = gradient_features(ctx.dataset, pool=pool, **self.target_kw)
        tr, te = split_indices(y, ctx.groups, ctx.seed, self.test_size)
        return classify(feats, y, tr, te, self.k, self.c, prefix="gradient_baseline")
