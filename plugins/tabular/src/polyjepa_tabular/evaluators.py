"""Downstream evaluation on frozen embeddings versus raw features and gradient boosting."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from polyjepa import DataError, EvalContext, label_task, labelled_embeddings, split_indices


def _scores(task: str, y_true: np.ndarray, pred: np.ndarray,
            proba: np.ndarray | None, classes: np.ndarray | None) -> dict[str, float]:
    from sklearn.metrics import (
        accuracy_score,
        f1_score,
        mean_squared_error,
        r2_score,
        roc_auc_score,
    )

    if task == "regression":
        return {"rmse": float(np.sqrt(mean_squared_error(y_true, pred))),
                "r2": float(r2_score(y_true, pred))}
    out = {"acc": float(accuracy_score(y_true, pred)),
           "f1_macro": float(f1_score(y_true, pred, average="macro"))}
    if proba is not None and classes is not None and len(np.unique(y_true)) >= 2:
        present = np.isin(y_true, classes)
        if present.all():
            if len(classes) == 2:
                out["auc"] = float(roc_auc_score(y_true, proba[:, 1]))
            elif set(np.unique(y_true)) == set(classes):
                out["auc"] = float(roc_auc_score(y_true, proba, multi_class="ovr",
                                                 average="macro", labels=classes))
    return out


def probe_models(task: str, seed: int, mlp_hidden: int, mlp_iter: int) -> dict[str, Any]:
    """Fresh ``linear`` and ``mlp`` models for ``task`` on standardised inputs, seeded, so
    embeddings and raw features are scored by the same models."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if task == "regression":
        return {
            "linear": make_pipeline(StandardScaler(), Ridge(alpha=1.0)),
            # the target is standardised too: MLPs fit raw-scale targets badly
            "mlp": TransformedTargetRegressor(
                make_pipeline(StandardScaler(), MLPRegressor(
                    hidden_layer_sizes=(mlp_hidden,), alpha=1e-3, max_iter=mlp_iter,
                    early_stopping=True, random_state=seed)),
                transformer=StandardScaler()),
        }
    return {
        "linear": make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000)),
        "mlp": make_pipeline(StandardScaler(), MLPClassifier(
            hidden_layer_sizes=(mlp_hidden,), alpha=1e-3, max_iter=mlp_iter, random_state=seed)),
    }


def fit_score(task: str, x: np.ndarray, y: np.ndarray, tr: np.ndarray, te: np.ndarray,
              model: Any) -> dict[str, float]:
    """Fit ``model`` on the training rows and score it on the test rows."""
    from sklearn.exceptions import ConvergenceWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(x[tr], y[tr])
    pred = model.predict(x[te])
    proba = model.predict_proba(x[te]) if task == "classification" and \
        hasattr(model, "predict_proba") else None
    classes = getattr(model, "classes_", None)
    return _scores(task, y[te], pred, proba, classes)


class Downstream:
    """Linear (logistic/ridge) and MLP models on frozen embeddings, on the same split
    beside the same models on the raw features and scikit-learn's HistGradientBoosting:
    the comparison T-JEPA (Thimonier et al., ICLR 2025, https://arxiv.org/abs/2410.05016)
    reports for its representations.

    Metrics are named ``downstream_<input>_<model>_<metric>``: input ``emb`` or ``raw``,
    model ``linear``, ``mlp`` or ``gbdt``, metric ``acc``/``f1_macro``/``auc``
    (classification) or ``rmse``/``r2`` (regression). Raw-feature baselines need a
    ``tabular.*`` dataset (``ctx.dataset.raw_features``); ``baselines=False`` skips them.
    """

    needs_labels = True

    def __init__(self, test_size: float = 0.25, models: list[str] | None = None,
                 baselines: bool = True, mlp_hidden: int = 128, mlp_iter: int = 300):
        self.test_size = float(test_size)
        self.models = list(models or ["linear", "mlp"])
        unknown = set(self.models) - {"linear", "mlp"}
        if unknown:
            raise ValueError(f"unknown downstream model(s) {sorted(unknown)}; "
                             "choose linear and/or mlp")
        self.baselines = bool(baselines)
        self.mlp_hidden, self.mlp_iter = int(mlp_hidden), int(mlp_iter)

    def __call__(self, ctx: EvalContext) -> dict[str, float]:
        emb, y = labelled_embeddings(ctx, "tabular.downstream")
        task = label_task(y, ctx.dataset)
        if task not in ("classification", "regression"):
            raise DataError(f"tabular.downstream needs 1-D labels, got shape {y.shape}")
        if task == "regression":
            y = y.astype(np.float64)
        tr, te = split_indices(y, ctx.groups, ctx.seed, self.test_size)
        if task == "classification" and len(np.unique(y[tr])) < 2:
            raise DataError("the training split holds a single class; need two or more")
        inputs = {"emb": emb}
        raw = getattr(ctx.dataset, "raw_features", None) if self.baselines else None
        if raw is not None:
            dense, _ = raw("dense")
            if len(dense) == len(y):
                inputs["raw"] = dense
        out: dict[str, float] = {}
        for src, x in inputs.items():
            for name in self.models:
                model = probe_models(task, ctx.seed, self.mlp_hidden, self.mlp_iter)[name]
                for k, v in fit_score(task, x, y, tr, te, model).items():
                    out[f"downstream_{src}_{name}_{k}"] = v
        if "raw" in inputs:
            from sklearn.ensemble import (
                HistGradientBoostingClassifier,
                HistGradientBoostingRegressor,
            )

            tree, cat = raw("tree")
            cards = np.asarray(getattr(ctx.dataset, "cardinalities", [0] * tree.shape[1]))
            cat = cat & (cards <= 255)  # HistGradientBoosting's limit for categories
            cls = HistGradientBoostingRegressor if task == "regression" else \
                HistGradientBoostingClassifier
            model = cls(categorical_features=cat if cat.any() else None,
                        random_state=ctx.seed)
            for k, v in fit_score(task, tree, y, tr, te, model).items():
                out[f"downstream_raw_gbdt_{k}"] = v
        return out
