"""BEV block masking: target blocks centred on occupied pillars, context from the rest.

Empty space is never a target: every block is centred on a randomly drawn occupied pillar
and only the occupied pillars inside it are targets. Adapted from AD-L-JEPA's BEV-guided
masking (Zhu et al., 2025, https://arxiv.org/abs/2501.04969), which predicts the BEV
embeddings of masked, non-empty regions, on I-JEPA's multi-block scheme (Assran et al.,
CVPR 2023, https://arxiv.org/abs/2301.08243): several target blocks per sample, the
context being the remaining occupied pillars.
"""

from __future__ import annotations

import math

import torch

from polyjepa import Masks, choose, valid_rows


class BEVBlockMasker:
    """``num_targets`` rectangular BEV blocks covering ``target_scale`` of the grid each.

    Aspect ratio is drawn log-uniformly in ``target_aspect``; block counts are equalised
    across the batch by random subsampling. ``context_ratio`` (< 1) keeps only part of
    the remaining occupied pillars as context. At least ``min_context`` context pillars
    are kept (fewer only when a sample has too few occupied pillars).
    """

    def __init__(self, num_targets: int = 4, target_scale: tuple[float, float] = (0.05, 0.1),
                 target_aspect: tuple[float, float] = (0.75, 1.5), context_ratio: float = 1.0,
                 min_context: int = 4):
        self.num_targets = int(num_targets)
        self.target_scale = tuple(float(v) for v in target_scale)
        self.target_aspect = tuple(float(v) for v in target_aspect)
        self.context_ratio = float(context_ratio)
        self.min_context = int(min_context)
        if self.num_targets < 1:
            raise ValueError("num_targets must be at least 1")
        lo, hi = self.target_scale
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"target_scale must satisfy 0 < low <= high <= 1, got {(lo, hi)}")
        if not 0.0 < self.context_ratio <= 1.0:
            raise ValueError(f"context_ratio must be in (0, 1], got {self.context_ratio}")

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        if len(grid) != 2:
            raise ValueError(f"BEV block masking needs a 2-D (X, Y) grid, got {grid}")
        gx, gy = int(grid[0]), int(grid[1])
        n = gx * gy
        b = int(batch_size)
        ok = valid_rows(valid, b, n)
        n_valid = ok.sum(dim=1)
        if int(n_valid.min()) < 2:
            raise ValueError("every sample needs at least 2 occupied pillars to mask")
        k = self.num_targets
        # block size shared by the batch (drawn per call)
        lo, hi = self.target_scale
        s = lo + float(torch.rand(1, generator=generator)) * (hi - lo)
        la, lb = math.log(self.target_aspect[0]), math.log(self.target_aspect[1])
        ar = math.exp(la + float(torch.rand(1, generator=generator)) * (lb - la))
        h = max(1, min(gx, round(math.sqrt(s * n * ar))))
        w = max(1, min(gy, round(math.sqrt(s * n / ar))))
        # centres: one occupied pillar per block and sample
        scores = torch.rand(b, k, n, generator=generator).masked_fill(~ok[:, None], 2.0)
        centre = scores.argmin(dim=2)  # [B, K]
        cx, cy = centre // gy, centre % gy
        x0 = (cx - h // 2).clamp(0, gx - h)
        y0 = (cy - w // 2).clamp(0, gy - w)
        ix = torch.arange(n) // gy
        iy = torch.arange(n) % gy
        inside = ((ix[None, None] >= x0[..., None]) & (ix[None, None] < (x0 + h)[..., None])
                  & (iy[None, None] >= y0[..., None]) & (iy[None, None] < (y0 + w)[..., None]))
        tblocks = inside & ok[:, None]  # [B, K, N], every block holds its centre
        union = tblocks.any(dim=1)
        # hand union pillars back to the context where too few remain
        want = torch.clamp(n_valid - 1, max=self.min_context)
        need = (want - (ok & ~union).sum(dim=1)).clamp(min=0)
        if bool((need > 0).any()):
            r = torch.rand(b, n, generator=generator).masked_fill(~union, 2.0)
            rank = r.argsort(dim=1).argsort(dim=1)
            back = union & (rank < need[:, None])
            union = union & ~back
            tblocks = tblocks & union[:, None]
        # a block emptied by the hand-back gets one random remaining target pillar
        empty = tblocks.sum(dim=2) == 0  # [B, K]
        if bool(empty.any()):
            for j in range(k):
                pick = choose(union, 1, generator)
                fill = torch.zeros(b, n, dtype=torch.bool).scatter(1, pick, True)
                tblocks[:, j] |= fill & empty[:, j, None]
        n_tgt = int(tblocks.sum(dim=2).min())
        targets = [choose(tblocks[:, j], n_tgt, generator) for j in range(k)]
        context = ok & ~union
        n_ctx = int(context.sum(dim=1).min())
        n_ctx = max(1, min(n_ctx, max(self.min_context, round(self.context_ratio * n_ctx))))
        return Masks(choose(context, n_ctx, generator), targets)
