"""Quality tasks on SAR chips: a linear probe on frozen embeddings against gradient HOG.

SAR-JEPA (Li et al., "Predicting Gradient is Better: Exploring Self-Supervised Learning
for SAR ATR with a Joint-Embedding Predictive Architecture", 2023,
https://arxiv.org/abs/2311.15153) regresses multi-scale ROA-gradient features
of masked patches; the same hand-made features, pooled per chip, are the field's
non-learned baseline. No package ships real labelled SAR pixels, so the task runs on the
plugin's SIMULATED target chips. Used by ``benchmarks/quality.py`` and ``polyjepa demo``.
"""

from __future__ import annotations

import numpy as np

import polyjepa as pj

from .evaluators import chip_labels, classify, gradient_features
from .recipes import sar_recipe

SIZE, PATCH, LOOKS = 48, 6, 1.0
PRETRAIN_CHIPS = {"n": 600, "size": SIZE, "looks": LOOKS, "seed": 0}   # unlabelled use only
EVAL_CHIPS = {"n": 750, "size": SIZE, "looks": LOOKS, "seed": 1}       # other chips, labelled
TEST_SIZE = 0.3


def chip_split(ctx: pj.EvalContext) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Embeddings, classes and the seed's stratified train / held-out chips."""
    x, y = chip_labels(ctx)
    return (x, y, *pj.split_indices(y, None, ctx.seed, TEST_SIZE))


def linear_probe(ctx: pj.EvalContext) -> float:
    """Accuracy of a standardised logistic regression on the seed's held-out chips."""
    x, y, tr, te = chip_split(ctx)
    return classify(x, y, tr, te)["chip_linear_acc"]


def finetuned(ctx: pj.EvalContext) -> float:
    """Accuracy on the same held-out chips of the encoder fine-tuned end to end with a
    linear head on the probe's training chips (SAR-JEPA's own protocol)."""
    _, y, tr, te = chip_split(ctx)
    pred = pj.finetune_predict(ctx.encoder, ctx.dataset, y, tr, te, "classification",
                               seed=ctx.seed)
    return float(np.mean(pred == y[te]))


def gradient_hog(ctx: pj.EvalContext) -> np.ndarray:
    """The multi-scale ROA-gradient HOG (3 scales x 8 orientations) of each patch, pooled
    per chip as the recipe pools its encoder's tokens (mean and maximum)."""
    return gradient_features(ctx.dataset, pool=sar_recipe()["eval"]["pool"])


def chips_task(steps: int = 100, recipe: str = "sar") -> pj.QualityTask:
    """Pre-train on 600 unlabelled simulated chips, probe 750 other (labelled) ones."""
    name = "simulated_chips" if recipe == "sar" else f"simulated_chips ({recipe})"
    return pj.QualityTask(
        domain="sar", name=name, recipe=recipe, data=PRETRAIN_CHIPS,
        eval_data=EVAL_CHIPS, kind="simulated", metric="accuracy (linear probe)",
        probe=linear_probe, steps=steps, finetune=finetuned,
        baselines={"ROA-gradient HOG": pj.features_baseline(gradient_hog, linear_probe)},
        overrides={"dataset.name": "sar.simulated", "dataset.patch_size": PATCH,
                   "encoder.embed_dim": 64, "encoder.depth": 3, "encoder.num_heads": 4,
                   "predictor.dim": 32, "predictor.depth": 2, "predictor.num_heads": 2,
                   "train.batch_size": 32, "train.lr": 1e-3, "train.warmup_steps": 10,
                   "train.rankme_every": 0, "train.rankme_samples": 256})


def demo_task() -> pj.QualityTask:
    """``polyjepa demo``'s labelled comparison (the demo's own length)."""
    return chips_task(steps=300)


def ema_demo_task() -> pj.QualityTask:
    """The same comparison for the EMA variant (``sar.ema``)."""
    return chips_task(steps=300, recipe="sar.ema")
