"""ECG downstream metrics: multi-label macro ROC-AUC (PTB-XL) and beat classification."""

from __future__ import annotations

from typing import Any

import numpy as np

from polyjepa import DataError, EvalContext, labelled_embeddings, split_indices


def _xy(ctx: EvalContext) -> tuple[np.ndarray, np.ndarray]:
    x, y = labelled_embeddings(ctx)
    if len(x) == 0:
        raise DataError("no embeddings to evaluate")
    return x, y


def _logreg(c: float, max_iter: int, balanced: bool = False) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(
        C=c, max_iter=max_iter, class_weight="balanced" if balanced else None))


def fold_split(folds: np.ndarray, train_folds: tuple[int, ...] = tuple(range(1, 9)),
               test_folds: tuple[int, ...] = (10,)) -> tuple[np.ndarray, np.ndarray] | None:
    """PTB-XL's recommended split (train 1-8, test 10), or None if the folds lack it."""
    tr = np.nonzero(np.isin(folds, train_folds))[0]
    te = np.nonzero(np.isin(folds, test_folds))[0]
    return (tr, te) if len(tr) and len(te) else None


class MultiLabelAUC:
    """Macro ROC-AUC of one logistic probe per label (PTB-XL protocol).

    Split: the dataset's ``folds`` (train 1-8, test 10) when present, else patient-wise
    (``groups``), else random. Labels without both classes in train and test are skipped
    and counted in ``multilabel_labels_scored``.
    """

    needs_labels = True

    def __init__(self, test_size: float = 0.25, c: float = 1.0, max_iter: int = 2000):
        self.test_size, self.c, self.max_iter = test_size, c, max_iter

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        from sklearn.metrics import roc_auc_score

        x, y = _xy(ctx)
        if y.ndim != 2:
            raise DataError("ecg.multilabel_auc needs multi-hot labels [N, num_labels]")
        split = None
        folds = getattr(ctx.dataset, "folds", None)
        if folds is not None and len(folds) == len(y):
            split = fold_split(np.asarray(folds))
        if split is None:
            split = split_indices(y.argmax(axis=1), ctx.groups, ctx.seed, self.test_size)
        tr, te = split
        aucs = []
        for j in range(y.shape[1]):
            if len(np.unique(y[tr, j])) < 2 or len(np.unique(y[te, j])) < 2:
                continue
            model = _logreg(self.c, self.max_iter).fit(x[tr], y[tr, j])
            aucs.append(roc_auc_score(y[te, j], model.predict_proba(x[te])[:, 1]))
        if not aucs:
            raise DataError("no label has both classes in the train and test splits")
        return {"multilabel_macro_auc": float(np.mean(aucs)),
                "multilabel_labels_scored": float(len(aucs))}


def time_split(groups: np.ndarray | None, times: np.ndarray, test_size: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Record-internal split: within each record, the last ``test_size`` of time is test."""
    n = len(times)
    groups = np.zeros(n, dtype=np.int64) if groups is None else np.asarray(groups)
    tr, te = [], []
    for g in np.unique(groups):
        idx = np.nonzero(groups == g)[0]
        idx = idx[np.argsort(times[idx], kind="stable")]
        cut = round(len(idx) * (1.0 - test_size))
        tr.append(idx[:cut])
        te.append(idx[cut:])
    return np.concatenate(tr), np.concatenate(te)


class BeatClassification:
    """Beat (or rhythm) classification probe: macro-F1, balanced accuracy and macro AUC.

    ``split="time"``: record-internal, earlier beats train and later beats test (needs the
    dataset's ``times``); ``"patient"``: by ``groups`` (record/patient), so no patient is
    in both; ``"random"``: stratified. Class-balanced logistic regression.
    """

    needs_labels = True

    prefix = "beat"

    def __init__(self, split: str = "time", test_size: float = 0.3, c: float = 1.0,
                 max_iter: int = 3000):
        if split not in ("time", "patient", "random"):
            raise ValueError(f"split must be time, patient or random, got {split!r}")
        self.split, self.test_size, self.c, self.max_iter = split, test_size, c, max_iter

    def indices(self, ctx: EvalContext, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.split == "time":
            times = getattr(ctx.dataset, "times", None)
            if times is None or len(times) != len(y):
                times = np.arange(len(y), dtype=float)
            recs = getattr(ctx.dataset, "record_ids", None)
            recs = recs if recs is not None and len(recs) == len(y) else ctx.groups
            return time_split(recs, np.asarray(times), self.test_size)
        groups = ctx.groups if self.split == "patient" else None
        if self.split == "patient" and (groups is None or len(np.unique(groups)) < 2):
            raise DataError("split='patient' needs at least two records/patients")
        return split_indices(y, groups, ctx.seed, self.test_size)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        x, y = _xy(ctx)
        if y.ndim != 1:
            raise DataError(f"ecg.{self.prefix}s needs one class label per sample")
        tr, te = self.indices(ctx, y)
        out = beat_metrics(x[tr], y[tr], x[te], y[te], self.c, self.max_iter)
        return {k.replace("beat_", f"{self.prefix}_", 1): v for k, v in out.items()}


class RhythmClassification(BeatClassification):
    """Rhythm classification of fixed windows (``labels="rhythm"``): the same probe and
    splits as :class:`BeatClassification`, metrics named ``rhythm_*``."""

    prefix = "rhythm"


def beat_metrics(xtr: np.ndarray, ytr: np.ndarray, xte: np.ndarray, yte: np.ndarray,
                 c: float = 1.0, max_iter: int = 3000) -> dict[str, float]:
    """Fit a balanced logistic probe on train, score macro-F1 / balanced acc / AUC on test."""
    from sklearn.metrics import balanced_accuracy_score, f1_score, roc_auc_score

    classes = np.unique(ytr)
    if len(classes) < 2:
        raise DataError("the training split holds a single class; a probe needs two")
    if len(yte) == 0:
        raise DataError("the test split is empty")
    model = _logreg(c, max_iter, balanced=True).fit(xtr, ytr)
    pred = model.predict(xte)
    out = {"beat_f1_macro": float(f1_score(yte, pred, average="macro",
                                           labels=classes, zero_division=0)),
           "beat_balanced_acc": float(balanced_accuracy_score(yte, pred))}
    present = np.unique(yte)
    if len(present) >= 2:
        proba = model.predict_proba(xte)
        if len(classes) == 2:
            out["beat_auc"] = float(roc_auc_score(yte, proba[:, 1]))
        else:
            keep = np.isin(yte, classes)
            cols = [list(classes).index(k) for k in classes]
            p = proba[keep][:, cols]
            p = p / p.sum(axis=1, keepdims=True)
            out["beat_auc"] = float(roc_auc_score(yte[keep], p, multi_class="ovr",
                                                  average="macro", labels=classes))
    return out
