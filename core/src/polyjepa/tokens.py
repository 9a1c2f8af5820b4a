"""Small tensor helpers shared by encoders, predictors and evaluators."""

from __future__ import annotations

import torch


def gather_tokens(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Select tokens ``x[b, index[b]]``: ``[B, N, ...]`` and ``[B, K]`` -> ``[B, K, ...]``."""
    if x.dim() == 2:
        return torch.gather(x, 1, index)
    shape = index.shape + x.shape[2:]
    expanded = index.reshape(*index.shape, *([1] * (x.dim() - 2))).expand(shape)
    return torch.gather(x, 1, expanded)


def pool_tokens(x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over tokens, counting only valid ones; rows with no valid token give zeros."""
    if valid is None:
        return x.mean(dim=1)
    w = valid.to(x.dtype).unsqueeze(-1)
    return (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)


def batch_valid(batch: object) -> torch.Tensor | None:
    """The batch's ``valid`` token mask, if it carries one."""
    if isinstance(batch, dict):
        return batch.get("valid")
    return None
