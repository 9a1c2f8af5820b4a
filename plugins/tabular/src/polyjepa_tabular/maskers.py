"""T-JEPA feature-subset masking on the 1-D feature grid.

T-JEPA (Thimonier et al., "T-JEPA: Augmentation-Free Self-Supervised Learning for
Tabular Data", ICLR 2025, https://arxiv.org/abs/2410.05016) has no spatial order to cut
blocks from: it predicts a random subset of a row's features from another random subset.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from polyjepa import Masks, choose, valid_rows


def _range(value: float | Sequence[float], name: str) -> tuple[float, float]:
    lo, hi = (float(value), float(value)) if isinstance(value, (int, float)) else \
        (float(value[0]), float(value[1]))
    if not 0.0 < lo <= hi < 1.0:
        raise ValueError(f"{name} must satisfy 0 < low <= high < 1, got {(lo, hi)}")
    return lo, hi


class FeatureSubsetMasker:
    """A random context subset of the features and ``num_targets`` target subsets.

    Adapted from T-JEPA's mask collator (arXiv:2410.05016): context and target sizes are
    drawn per batch from share ranges and the targets come from the features outside the
    context; here the shares count only each row's valid features.

    Sizes are fractions of the valid features (the fewest any row of the batch has), drawn
    once per call from ``context_scale`` and ``target_scale`` and shared by the batch. The
    targets are drawn among the features outside the context; with ``disjoint_targets``
    the target subsets also avoid each other. Works on any grid (flattened).
    """

    def __init__(self, context_scale: float | Sequence[float] = (0.4, 0.6),
                 target_scale: float | Sequence[float] = (0.15, 0.3), num_targets: int = 2,
                 disjoint_targets: bool = False):
        self.context_scale = _range(context_scale, "context_scale")
        self.target_scale = _range(target_scale, "target_scale")
        self.num_targets = int(num_targets)
        if self.num_targets < 1:
            raise ValueError("num_targets must be at least 1")
        self.disjoint_targets = bool(disjoint_targets)

    def _draw(self, lo_hi: tuple[float, float], generator: torch.Generator) -> float:
        lo, hi = lo_hi
        return lo + float(torch.rand(1, generator=generator)) * (hi - lo)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        n = 1
        for g in grid:
            n *= int(g)
        ok = valid_rows(valid, batch_size, n)
        n_valid = int(ok.sum(dim=1).min())
        if n_valid < 2:
            raise ValueError("feature-subset masking needs at least 2 valid features per row")
        cs = self._draw(self.context_scale, generator)
        ts = self._draw(self.target_scale, generator)
        n_ctx = min(max(1, round(cs * n_valid)), n_valid - 1)
        rest = n_valid - n_ctx
        n_tgt = max(1, round(ts * n_valid))
        if self.disjoint_targets:
            n_tgt = max(1, min(n_tgt, rest // self.num_targets))
        n_tgt = min(n_tgt, rest)
        context = choose(ok, n_ctx, generator)
        free = ok.scatter(1, context, False)
        targets = []
        for _ in range(self.num_targets):
            if self.disjoint_targets and int(free.sum(dim=1).min()) < n_tgt:
                break
            t = choose(free, n_tgt, generator)
            targets.append(t)
            if self.disjoint_targets:
                free = free.scatter(1, t, False)
        return Masks(context, targets)
