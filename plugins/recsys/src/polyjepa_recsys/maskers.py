"""Maskers: correlated feature masking over item fields; spans of a user's history.

Both draw targets among a sample's valid tokens only, to be predicted in latent space
from the rest: the masking of I-JEPA (Assran et al., "Self-Supervised Learning from Images
with a Joint-Embedding Predictive Architecture", CVPR 2023,
https://arxiv.org/abs/2301.08243), adapted, with its image blocks replaced by groups of
dependent feature fields or by spans of a history.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from polyjepa import Masks, choose, equal_size_sets, valid_rows

_PUBLISHED: dict[int, np.ndarray] = {}


def publish_dependence(dependence: np.ndarray) -> None:
    """Make a dataset's field-dependence matrix ``[F, F]`` the default for ``F`` fields.

    The item dataset calls this when it is built, so a masker created afterwards for a
    grid of ``F`` fields masks fields that the data shows to be dependent together.
    """
    dep = np.asarray(dependence, np.float64)
    _PUBLISHED[dep.shape[0]] = dep


def _valid_and_count(grid: tuple[int, ...], batch_size: int, valid: torch.Tensor | None,
                     target_ratio: float, sample: str, tokens: str
                     ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Valid tokens ``[B, N]``, their count per sample, and the target count for the batch.

    The target count is ``target_ratio`` of the fewest valid tokens any sample has, at
    least 1 and leaving at least one for the context, so every sample gets the same
    numbers of target and context tokens. ``sample`` and ``tokens`` name them in the
    error raised when a sample has fewer than 2 valid tokens.
    """
    ok = valid_rows(valid, batch_size, int(np.prod(grid)))
    n_valid = ok.sum(1)
    fewest = int(n_valid.min())
    if fewest < 2:
        raise ValueError(f"every {sample} needs at least 2 valid {tokens} to mask")
    return ok, n_valid, max(1, min(round(target_ratio * fewest), fewest - 1))


class CorrelatedFeatureMasker:
    """Correlated feature masking (CFM) over a grid of feature fields.

    For each sample a seed field is drawn among its valid fields; the target is the seed
    plus the fields most dependent on it (``dependence[seed]``, highest first) until
    ``target_ratio`` of the valid fields are covered; the other fields are the context.
    ``dependence`` is an ``[F, F]`` matrix (e.g. normalised mutual information between
    fields); when not given, the one the item dataset estimated is used, and without any
    the masker falls back to random fields.

    Adapted from the correlated feature masking of Yao et al., "Self-supervised Learning
    for Large-scale Item Recommendations", CIKM 2021, https://arxiv.org/abs/2007.12865:
    there the masked group and the rest are two views for a contrastive loss; here the
    group is the target whose representations are predicted from the rest.
    """

    def __init__(self, target_ratio: float = 0.5, dependence: Any = None,
                 num_targets: int = 1):
        if not 0.0 < float(target_ratio) < 1.0:
            raise ValueError(f"target_ratio must be in (0, 1), got {target_ratio}")
        self.target_ratio = float(target_ratio)
        self.dependence = None if dependence is None else np.asarray(dependence, np.float64)
        self.num_targets = int(num_targets)

    def _dep(self, n: int) -> np.ndarray:
        dep = self.dependence if self.dependence is not None else _PUBLISHED.get(n)
        if dep is None or dep.shape != (n, n):
            return np.zeros((n, n))
        return dep

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        ok, _, k = _valid_and_count(grid, batch_size, valid, self.target_ratio,
                                    sample="item", tokens="feature fields")
        n = ok.shape[1]
        dep = torch.as_tensor(self._dep(n), dtype=torch.float32)
        seeds = choose(ok, 1, generator)[:, 0]  # [B]
        # rank fields by dependence on the seed, ties broken at random; seed first
        noise = torch.rand(batch_size, n, generator=generator) * 1e-3
        score = dep[seeds] + noise
        score = score.scatter(1, seeds[:, None], 10.0).masked_fill(~ok, -10.0)
        order = score.argsort(dim=1, descending=True)
        targets = torch.zeros_like(ok).scatter(1, order[:, :k], True)
        masks = equal_size_sets([targets & ok], generator, valid=ok)
        if self.num_targets > 1:
            masks.targets = masks.targets * self.num_targets
        return masks


class SpanMasker:
    """Masked spans of a user's history, drawn among valid (non-padding) positions only.

    ``num_spans`` contiguous runs of valid positions, together about ``target_ratio`` of a
    sample's valid positions, are the target; the remaining valid positions the context.
    Each span is one target set when ``separate=True``, else all spans form one set.
    """

    def __init__(self, target_ratio: float = 0.3, num_spans: int = 2, separate: bool = False):
        if not 0.0 < float(target_ratio) < 1.0:
            raise ValueError(f"target_ratio must be in (0, 1), got {target_ratio}")
        self.target_ratio = float(target_ratio)
        self.num_spans = max(1, int(num_spans))
        self.separate = bool(separate)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        ok, n_valid, total = _valid_and_count(grid, batch_size, valid, self.target_ratio,
                                              sample="history", tokens="positions")
        # work in "valid rank" coordinates: position r = the r-th valid item of the row
        rank = ok.long().cumsum(1) - 1  # [B, N]
        spans = min(self.num_spans, total)
        length = max(1, total // spans)
        nv = n_valid.float()
        sets = []
        for _ in range(spans):
            start = (torch.rand(batch_size, generator=generator) * (nv - length + 1)).long()
            inside = ok & (rank >= start[:, None]) & (rank < (start + length)[:, None])
            sets.append(inside)
        if not self.separate:
            return equal_size_sets([torch.stack(sets).any(0) & ok], generator, valid=ok)
        union = torch.stack(sets).any(0)
        context = ok & ~union
        n_c = int(context.sum(1).min())
        # overlapping spans: each target set is its own span, equalised by random picks
        n_t = min(int(s.sum(1).min()) for s in sets)
        targets = [choose(s, n_t, generator) for s in sets]
        return Masks(choose(context, n_c, generator), targets)
