"""What the core tests train on: overrides for a tiny model and a small real data file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

SMALL = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
         "predictor.dim": 8, "predictor.depth": 1, "predictor.num_heads": 2,
         "train.batch_size": 8, "train.warmup_steps": 1, "train.rankme_samples": 32,
         "train.precision": "fp32", "train.device": "cpu", "masker.num_targets": 2}


def digits_npz(path: Path, n: int = 32) -> Path:
    """The first ``n`` of scikit-learn's bundled handwritten digits as an ``.npz``."""
    from sklearn.datasets import load_digits

    d = load_digits()
    np.savez(path, x=d.images[:n].astype(np.float32), y=d.target[:n])
    return path
