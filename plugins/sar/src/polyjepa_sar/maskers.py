"""Local block masks sized for small SAR targets (ships, vehicles, point scatterers).

Adapted from I-JEPA's multi-block masking (Assran et al., "Self-Supervised Learning from
Images with a Joint-Embedding Predictive Architecture", CVPR 2023,
https://arxiv.org/abs/2301.08243) toward the local masks of SAR-JEPA (Li et al.,
"Predicting Gradient is Better: Exploring Self-Supervised Learning for SAR ATR with a
Joint-Embedding Predictive Architecture", 2023, https://arxiv.org/abs/2311.15153).
"""

from __future__ import annotations

import math

import torch

from polyjepa import Masks, valid_rows


class LocalBlockMasker:
    """Many small rectangular target blocks scattered over the token grid (I-JEPA's
    multi-block targets, arXiv:2301.08243, made small and many as SAR-JEPA's local masks,
    arXiv:2311.15153).

    Each of ``num_targets`` target sets is the union of ``blocks_per_target`` blocks whose
    sides (in tokens) are drawn in ``block_size`` per call; the context is every other
    valid token (subsampled to ``context_ratio``). Small targets such as ships cover only
    a few tokens, so predicting many local blocks teaches the encoder local scattering
    structure rather than scene layout. Counts are equalised across the batch by random
    subsampling (or topping up with random valid tokens when blocks fall on nodata), and
    all target sets have the same size.
    """

    def __init__(self, num_targets: int = 2, blocks_per_target: int = 4,
                 block_size: tuple[int, int] | list[int] = (1, 2),
                 max_target_ratio: float = 0.5, context_ratio: float = 1.0,
                 min_context: int = 2):
        self.num_targets = int(num_targets)
        self.blocks_per_target = int(blocks_per_target)
        lo, hi = (int(v) for v in block_size)
        if self.num_targets < 1 or self.blocks_per_target < 1:
            raise ValueError("num_targets and blocks_per_target must be at least 1")
        if not 1 <= lo <= hi:
            raise ValueError(f"block_size must satisfy 1 <= low <= high, got {block_size}")
        if not 0.0 < max_target_ratio < 1.0 or not 0.0 < context_ratio <= 1.0:
            raise ValueError("max_target_ratio must be in (0, 1) and context_ratio in (0, 1]")
        self.block_size = (lo, hi)
        self.max_target_ratio = float(max_target_ratio)
        self.context_ratio = float(context_ratio)
        self.min_context = int(min_context)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        grid = tuple(int(g) for g in grid)
        if len(grid) != 2:
            raise ValueError(f"sar.local_blocks works on 2-D (H, W) grids, got {grid}")
        gh, gw = grid
        n = gh * gw
        b = batch_size
        ok = valid_rows(valid, b, n)
        n_valid = int(ok.sum(dim=1).min())
        if n_valid < self.num_targets + self.min_context:
            raise ValueError(f"a sample has {n_valid} valid tokens, too few for "
                             f"{self.num_targets} targets and {self.min_context} context")
        lo, hi = self.block_size
        yy = torch.arange(gh).view(1, 1, gh, 1)
        xx = torch.arange(gw).view(1, 1, 1, gw)
        # the largest target share leaves room for the context
        budget = max(1, min(int(self.max_target_ratio * n_valid),
                            n_valid - self.min_context) // self.num_targets)
        used = torch.zeros(b, n, dtype=torch.bool)
        targets: list[torch.Tensor] = []
        count = 0
        for _ in range(self.num_targets):
            k = self.blocks_per_target
            h = torch.randint(lo, hi + 1, (1,), generator=generator).clamp(max=gh)
            w = torch.randint(lo, hi + 1, (1,), generator=generator).clamp(max=gw)
            top = (torch.rand(b, k, generator=generator) * (gh - h + 1)).long()
            left = (torch.rand(b, k, generator=generator) * (gw - w + 1)).long()
            inside = ((yy >= top[..., None, None]) & (yy < (top + h)[..., None, None])
                      & (xx >= left[..., None, None]) & (xx < (left + w)[..., None, None]))
            members = inside.any(dim=1).reshape(b, n)
            avail = ok & ~used
            members &= avail
            if not targets:  # every set gets the first set's size (the JEPA stacks them)
                count = max(1, min(int(members.sum(dim=1).min()), budget))
            # priority: block members first, then any other available token
            score = torch.rand(b, n, generator=generator)
            score = torch.where(members, score, score + 1.0).masked_fill(~avail, 3.0)
            idx = torch.topk(score, count, dim=1, largest=False).indices.sort(dim=1).values
            targets.append(idx)
            used.scatter_(1, idx, True)
        context = ok & ~used
        n_ctx = int(context.sum(dim=1).min())
        keep = max(1, min(n_ctx, math.ceil(self.context_ratio * n_ctx)))
        score = torch.rand(b, n, generator=generator).masked_fill(~context, 2.0)
        ctx = torch.topk(score, keep, dim=1, largest=False).indices.sort(dim=1).values
        return Masks(ctx, targets)
