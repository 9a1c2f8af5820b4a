"""Chip-classification metrics: linear probe and kNN accuracy / macro-F1, and the
hand-crafted gradient (HOG of ROA gradients) baseline on the same split."""

from __future__ import annotations

from typing import Any

import numpy as np

from polyjepa import DataError, EvalContext, split_indices


def _labels(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    if ctx.labels is None:
        raise DataError("chip classification needs labelled chips (class sub-folders)")
    x = np.asarray(ctx.embeddings, dtype=np.float64)
    y = np.asarray(ctx.labels)
    if y.ndim != 1 or len(x) != len(y):
        raise DataError(f"chip classification needs one class per chip: {len(x)} embeddings, "
                        f"labels of shape {y.shape}")
    if not np.isfinite(x).all():
        raise DataError("the embeddings contain NaN or infinite values")
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
    xc = x - x[tr].mean(axis=0)
    xc = xc / np.maximum(np.linalg.norm(xc, axis=1, keepdims=True), 1e-12)
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
        x, y = _labels(ctx)
        tr, te = split_indices(y, ctx.groups, ctx.seed, self.test_size)
        return classify(x, y, tr, te, self.k, self.c)


def gradient_features(dataset: Any, batch_size: int = 64, **target_kw: Any) -> np.ndarray:
    """Hand-crafted baseline: per-image mean of the ROA-gradient HOG over valid tokens."""
    import torch

    from polyjepa import collate, pool_tokens

    from .encoder import GradientTarget

    first = dataset[0]["x"]
    kw = {"in_chans": int(first.shape[0]),
          "patch_size": int((getattr(dataset, "encoder_hints", None) or {}).get("patch_size", 8)),
          **target_kw}
    target = GradientTarget(**kw)
    out = []
    with torch.no_grad():
        for s in range(0, len(dataset), batch_size):
            batch = collate([dataset[i] for i in range(s, min(len(dataset), s + batch_size))])
            out.append(pool_tokens(target(batch), batch.get("valid")).numpy())
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
        _, y = _labels(ctx)
        if ctx.dataset is None:
            raise DataError("the gradient baseline needs the dataset itself")
        feats = gradient_features(ctx.dataset, **self.target_kw)
        tr, te = split_indices(y, ctx.groups, ctx.seed, self.test_size)
        return classify(feats, y, tr, te, self.k, self.c, prefix="gradient_baseline")
