"""Quality tasks on tables: an MLP on frozen embeddings against raw features and GBDT.

T-JEPA (Thimonier et al., 2024, arXiv:2410.05016) feeds its pretrained representations to
the usual downstream models and compares them with the same models on the raw table;
this module scores exactly that for :func:`polyjepa.run_quality_task`, and gives
``polyjepa demo`` its labelled comparison.
"""

from __future__ import annotations

import numpy as np

import polyjepa as pj

from .evaluators import fit_score, probe_models


def _split(ctx: pj.EvalContext) -> tuple[np.ndarray, np.ndarray, str, np.ndarray]:
    task = ctx.dataset.task
    y = np.asarray(ctx.labels, np.float64 if task == "regression" else None)
    tr, te = pj.split_indices(y, None, ctx.seed, 0.25, task)
    return tr, te, task, y


# the probe MLP's width and its most epochs
MLP_HIDDEN, MLP_EPOCHS = 128, 300


def mlp_probe(ctx: pj.EvalContext) -> float:
    """Accuracy (classification) or R^2 (regression) of a one-hidden-layer MLP on a
    held-out quarter of the rows (the split follows ``ctx.seed``)."""
    tr, te, task, y = _split(ctx)
    model = probe_models(task, ctx.seed, MLP_HIDDEN, MLP_EPOCHS)["mlp"]
    scores = fit_score(task, np.asarray(ctx.embeddings, np.float64), y, tr, te, model)
    return scores["r2" if task == "regression" else "acc"]


def raw_features(ctx: pj.EvalContext) -> np.ndarray:
    """The table itself: standardised numbers, one-hot categories, missing flags."""
    return ctx.dataset.raw_features("dense")[0]


def gbdt(ctx: pj.EvalContext) -> float:
    """HistGradientBoosting on the raw table (categories as categories), same split."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor

    tr, te, task, y = _split(ctx)
    tree, cat = ctx.dataset.raw_features("tree")
    cls = HistGradientBoostingRegressor if task == "regression" else \
        HistGradientBoostingClassifier
    model = cls(categorical_features=cat if cat.any() else None, random_state=ctx.seed)
    return fit_score(task, tree, y, tr, te, model)["r2" if task == "regression" else "acc"]


def table_task(name: str, steps: int = 100, regression: bool = False,
               overrides: dict | None = None) -> pj.QualityTask:
    """The comparison on a bundled table: one of scikit-learn's by name, or
    ``"statsmodels:NAME"``."""
    reader = "tabular.table" if name.startswith("statsmodels:") else "tabular.sklearn"
    return pj.QualityTask(
        domain="tabular", name=name.split(":")[-1], recipe="tabular", data=name,
        metric="R2 (MLP)" if regression else "accuracy (MLP)", probe=mlp_probe, steps=steps,
        baselines={"raw + MLP": pj.features_baseline(raw_features, mlp_probe), "GBDT": gbdt},
        overrides={"dataset.name": reader, "train.batch_size": 128,
                   "train.warmup_steps": 10, **(overrides or {})})


def demo_task() -> pj.QualityTask:
    """``polyjepa demo``'s labelled comparison: breast cancer, the recipe's demo data."""
    return table_task("breast_cancer", steps=300)
