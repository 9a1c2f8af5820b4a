"""Regression losses between predicted and target embeddings."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LOSSES = ("smooth_l1", "mse", "l1")


def latent_loss(pred: torch.Tensor, target: torch.Tensor, name: str = "smooth_l1") -> torch.Tensor:
    """Mean regression loss in latent space (I-JEPA: smooth-L1; V-JEPA: L1)."""
    pred = pred.float()
    target = target.float()
    if name == "smooth_l1":
        return F.smooth_l1_loss(pred, target)
    if name == "mse":
        return F.mse_loss(pred, target)
    if name == "l1":
        return F.l1_loss(pred, target)
    raise ValueError(f"unknown loss {name!r}; choose one of {', '.join(LOSSES)}")
