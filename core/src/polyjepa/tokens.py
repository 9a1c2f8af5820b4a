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


POOLS = ("mean", "mean+max", "last")


def pool_tokens(x: torch.Tensor, valid: torch.Tensor | None = None,
                how: str = "mean") -> torch.Tensor:
    """One embedding per sample from its tokens ``[B, N, D]``, counting only valid ones.

    ``how="mean"``: their mean ``[B, D]``; ``"mean+max"``: the mean and the per-dimension
    maximum side by side ``[B, 2D]`` (where one strong local feature tells the classes
    apart, as a target on clutter, the mean dilutes it); ``"last"``: the last valid token
    ``[B, D]`` (in a right-aligned sequence, its latest position: a user's latest item, say,
    which attends to the whole history). Rows with no valid token give zeros.
    """
    if how not in POOLS:
        raise ValueError(f"pool {how!r}: choose one of {POOLS}")
    if how == "last":
        if valid is None:
            return x[:, -1]
        order = torch.arange(1, x.shape[1] + 1, device=x.device)
        last = (valid.to(torch.long) * order).argmax(dim=1)
        out = x[torch.arange(x.shape[0], device=x.device), last]
        return out * valid.any(dim=1, keepdim=True).to(x.dtype)
    if valid is None:
        mean = x.mean(dim=1)
        return mean if how == "mean" else torch.cat([mean, x.amax(dim=1)], dim=-1)
    w = valid.to(x.dtype).unsqueeze(-1)
    mean = (x * w).sum(dim=1) / w.sum(dim=1).clamp_min(1.0)
    if how == "mean":
        return mean
    top = x.masked_fill(w == 0, float("-inf")).amax(dim=1)
    top = torch.where(w.sum(dim=1) > 0, top, torch.zeros_like(top))
    return torch.cat([mean, top], dim=-1)


def encoder_pool(encoder: object) -> str:
    """How ``encoder``'s tokens become the embeddings users get: the run's ``eval.pool``,
    which :func:`polyjepa.build.build_encoder` sets on the module (``"mean"`` otherwise)."""
    return str(getattr(getattr(encoder, "module", encoder), "embedding_pool", "mean"))


def batch_valid(batch: object) -> torch.Tensor | None:
    """The batch's ``valid`` token mask, if it carries one."""
    if isinstance(batch, dict):
        return batch.get("valid")
    return None
