"""The ``lidar`` recipe: AD-L-JEPA-style pre-training on BEV pillar grids.

Adapted from AD-L-JEPA (Zhu et al., 2025, https://arxiv.org/abs/2501.04969): a predictor
fills masked, occupied BEV regions with the embeddings of an EMA target encoder, the JEPA
scheme of I-JEPA (Assran et al., CVPR 2023, https://arxiv.org/abs/2301.08243).
AD-L-JEPA keeps the embeddings from collapsing with VICReg's variance hinge (the core's
``loss.variance_weight``); it stays off here, where it raised RankMe but lowered the pillar
probe. The recipe turns on VICReg's covariance term instead (Bardes et al., ICLR 2022,
https://arxiv.org/abs/2105.04906). RankMe (Garrido et al., ICML 2023,
https://arxiv.org/abs/2210.02885) is among the evaluators.
"""

from __future__ import annotations

from typing import Any


def lidar_recipe() -> dict[str, Any]:
    """Pillar encoder, BEV block masks over occupied pillars, EMA target, smooth-L1 loss.

    The predictor fills masked occupied BEV regions with the target encoder's BEV
    embeddings. Demo: ray-cast SIMULATED street scenes (no registry package ships scans),
    compared per pillar with the height-statistics baselines on held-out scenes.
    """
    return {
        "dataset": {"name": "lidar.points", "grid": 32, "ground": "plane"},
        "encoder": {"name": "lidar.pillar", "embed_dim": 192, "depth": 6, "num_heads": 6},
        "masker": {"name": "lidar.bev_blocks", "num_targets": 4,
                   "target_scale": [0.05, 0.1], "target_aspect": [0.75, 1.5]},
        "predictor": {"name": "transformer", "dim": 96, "depth": 3, "num_heads": 4},
        "target": {"kind": "ema", "momentum": 0.996, "momentum_end": 1.0, "normalize": True},
        # VICReg's covariance term: without it the pillar probe fell with training
        # (simulated scenes, 3 seeds: 0.718 at 40 steps, 0.705 at 160); with it 0.715 ->
        # 0.728, above random init (0.708) on every seed (see the README's Quality)
        "loss": {"name": "smooth_l1", "covariance_weight": 0.1},
        "train": {"batch_size": 32, "lr": 5e-4, "warmup_steps": 50},
        "evaluators": ["rankme", "lidar.pillar_probe", "lidar.scene_probe"],
        "eval": {"batch_size": 32},
        "demo": {
            "data": None,
            "kind": "simulated",
            "task": "polyjepa_lidar.quality:demo_task",
            "description": "ray-cast LiDAR street scenes (open3d RaycastingScene: ground, "
                           "buildings, vehicles, poles, vegetation; 16-beam spinning "
                           "sensor; per-point classes), generated in the plugin",
            "overrides": {
                "dataset": {"name": "lidar.simulated", "n_scenes": 64, "grid": 16,
                            "extent": 24.0},
                "encoder": {"embed_dim": 64, "depth": 2, "num_heads": 4},
                "predictor": {"dim": 32, "depth": 2, "num_heads": 2},
                "train": {"steps": 150, "batch_size": 16, "warmup_steps": 15, "lr": 1e-3,
                          "rankme_every": 50, "checkpoint_every": 150},
            },
        },
    }
