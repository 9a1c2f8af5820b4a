"""Recipes: SAR-JEPA (gradient-feature target, local block masks) and an EMA variant.

- ``sar``: SAR-JEPA, Li et al., "Predicting Gradient is Better: Exploring Self-Supervised
  Learning for SAR ATR with a Joint-Embedding Predictive Architecture", 2023,
  https://arxiv.org/abs/2311.15153 (adapted: the target is a per-patch histogram of
  multi-scale ROA gradients, standardised per feature over the batch).
- ``sar.ema``: I-JEPA, Assran et al., "Self-Supervised Learning from Images with a
  Joint-Embedding Predictive Architecture", CVPR 2023, https://arxiv.org/abs/2301.08243.
"""

from __future__ import annotations

from typing import Any

_DEMO = {
    "data": None,
    "kind": "simulated",
    "task": "polyjepa_sar.quality:demo_task",
    "description": "SIMULATED SAR target chips (clutter, point, ship, building, vehicle) "
                   "under 1-look Gamma speckle; no registry package ships real SAR pixels",
    "overrides": {
        "dataset": {"name": "sar.simulated", "n": 600, "size": 48, "patch_size": 6,
                    "looks": 1.0},
        "encoder": {"embed_dim": 64, "depth": 3, "num_heads": 4},
        "predictor": {"dim": 32, "depth": 2, "num_heads": 2},
        "train": {"steps": 300, "batch_size": 32, "warmup_steps": 30, "lr": 1e-3,
                  "rankme_every": 100, "checkpoint_every": 100},
    },
}


def sar_recipe() -> dict[str, Any]:
    """SAR-JEPA (arXiv:2311.15153): ViT on dB tiles, local block masks, multi-scale
    ROA-gradient target."""
    return {
        # tiles of the reader's default 64 px; tile_size is left unset so that switching
        # dataset.name to another SAR reader (sar.simulated) leaves no setting it lacks
        "dataset": {"name": "sar.raster", "patch_size": 8},
        "encoder": {"name": "sar.vit", "embed_dim": 192, "depth": 6, "num_heads": 6},
        "masker": {"name": "sar.local_blocks", "num_targets": 2, "blocks_per_target": 4,
                   "block_size": [1, 2]},
        "predictor": {"name": "transformer", "dim": 96, "depth": 3, "num_heads": 4},
        # per-feature batch standardisation instead of a per-token layer norm: the layer
        # norm would erase how strong a patch's gradients are, the main target cue
        "target": {"kind": "encoder", "normalize": False,
                   "encoder": {"name": "sar.gradient_target", "scales": [1, 2, 4],
                               "num_bins": 8, "cells": 1, "standardize": True}},
        "loss": {"name": "mse"},
        "evaluators": ["rankme", "sar.chip_classification", "sar.gradient_baseline"],
        # a chip's embedding: the mean and the maximum of its patch tokens. A target is a
        # few bright patches on clutter, which the mean dilutes: on the simulated chips the
        # linear probe rose from 0.58 to 0.72 at 400 steps (the gradient baseline, pooled
        # alike, from 0.78 to 0.85; plugins/sar/README.md, Quality)
        "eval": {"pool": "mean+max"},
        "demo": _DEMO,
    }


def sar_ema_recipe() -> dict[str, Any]:
    """I-JEPA (arXiv:2301.08243) on SAR: the same encoder with an EMA teacher and
    multi-block masks."""
    cfg = sar_recipe()
    cfg["masker"] = {"name": "multiblock", "num_targets": 4, "target_scale": [0.1, 0.2]}
    cfg["target"] = {"kind": "ema", "momentum": 0.996, "momentum_end": 1.0, "normalize": True,
                     "encoder": {"name": None}}
    cfg["loss"] = {"name": "smooth_l1"}
    cfg["demo"] = {**cfg["demo"], "task": "polyjepa_sar.quality:ema_demo_task"}
    return cfg
