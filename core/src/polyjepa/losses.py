"""Regression losses between predicted and target embeddings, and the regularisers on
context embeddings.

- the variance hinge of AD-L-JEPA (Zhu et al., 2025, https://arxiv.org/abs/2501.04969),
  itself VICReg's variance term;
- VICReg's covariance term (Bardes et al., ICLR 2022, https://arxiv.org/abs/2105.04906).
"""

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


def variance_hinge(tokens: torch.Tensor, target_std: float = 1.0,
                   valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over dimensions of ``relu(target_std - std)`` of ``tokens [B, N, D]``.

    The VICReg-style variance term AD-L-JEPA adds to its EMA objective: it keeps every
    embedding dimension varying across tokens and samples, so the encoder cannot drift
    towards a low-rank solution on small data sets. ``valid [B, N]`` excludes padding.
    """
    flat = tokens.float().reshape(-1, tokens.shape[-1])
    if valid is not None:
        flat = flat[valid.reshape(-1).bool()]
    if flat.shape[0] < 2:
        return flat.sum() * 0.0
    std = torch.sqrt(flat.var(dim=0) + 1e-4)
    return F.relu(target_std - std).mean()


def covariance_penalty(tokens: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared off-diagonal covariance of ``tokens [B, N, D]``, divided by ``D``.

    VICReg's covariance term (Bardes et al., 2022, arXiv:2105.04906): it decorrelates the
    embedding dimensions, which the variance hinge alone does not do, so the encoder
    cannot keep every dimension varying while they all move together (dimensional
    collapse). ``valid [B, N]`` excludes padding.
    """
    flat = tokens.float().reshape(-1, tokens.shape[-1])
    if valid is not None:
        flat = flat[valid.reshape(-1).bool()]
    n, d = flat.shape
    if n < 2:
        return flat.sum() * 0.0
    flat = flat - flat.mean(dim=0)
    cov = flat.T @ flat / (n - 1)
    off = cov - torch.diag(torch.diagonal(cov))
    return off.pow(2).sum() / d
