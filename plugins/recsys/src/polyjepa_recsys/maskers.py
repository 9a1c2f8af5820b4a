"""Maskers: correlated feature masking over item fields; spans of a user's history."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from polyjepa import Masks, choose

_PUBLISHED: dict[int, np.ndarray] = {}


def publish_dependence(dependence: np.ndarray) -> None:
    """Make a dataset's field-dependence matrix ``[F, F]`` the default for ``F`` fields.

    The item dataset calls this when it is built, so a masker created afterwards for a
    grid of ``F`` fields masks fields that the data shows to be dependent together.
    """
    dep = np.asarray(dependence, np.float64)
    _PUBLISHED[dep.shape[0]] = dep


def _valid_rows(valid: torch.Tensor | None, batch_size: int, n: int) -> torch.Tensor:
    if valid is None:
        return torch.ones(batch_size, n, dtype=torch.bool)
    valid = valid.detach().to("cpu", torch.bool).reshape(batch_size, -1)
    if valid.shape[1] != n:
        raise ValueError(f"valid mask has {valid.shape[1]} tokens, grid has {n}")
    return valid


def _equalise(targets: torch.Tensor, ok: torch.Tensor, generator: torch.Generator) -> Masks:
    """Equal-count target and context index sets from boolean target membership."""
    targets = targets & ok
    n_t = int(targets.sum(1).min())
    if n_t < 1:
        raise ValueError("a sample got no target token")
    tgt = choose(targets, n_t, generator)
    chosen = torch.zeros_like(ok).scatter(1, tgt, True)
    context = ok & ~chosen
    n_c = int(context.sum(1).min())
    if n_c < 1:
        raise ValueError("a sample has no context token left")
    return Masks(choose(context, n_c, generator), [tgt])


class CorrelatedFeatureMasker:
    """Correlated feature masking (CFM) over a grid of feature fields.

    For each sample a seed field is drawn among its valid fields; the target is the seed
    plus the fields most dependent on it (``dependence[seed]``, highest first) until
    ``target_ratio`` of the valid fields are covered; the other fields are the context.
    ``dependence`` is an ``[F, F]`` matrix (e.g. normalised mutual information between
    fields); when not given, the one the item dataset estimated is used, and without any
    the masker falls back to random fields.
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
        n = int(np.prod(grid))
        ok = _valid_rows(valid, batch_size, n)
        n_valid = ok.sum(1)
        if int(n_valid.min()) < 2:
            raise ValueError("every item needs at least 2 valid feature fields to mask")
        dep = torch.as_tensor(self._dep(n), dtype=torch.float32)
        k = max(1, min(round(self.target_ratio * int(n_valid.min())),
                       int(n_valid.min()) - 1))
        seeds = choose(ok, 1, generator)[:, 0]  # [B]
        # rank fields by dependence on the seed, ties broken at random; seed first
        noise = torch.rand(batch_size, n, generator=generator) * 1e-3
        score = dep[seeds] + noise
        score = score.scatter(1, seeds[:, None], 10.0).masked_fill(~ok, -10.0)
        order = score.argsort(dim=1, descending=True)
        targets = torch.zeros_like(ok).scatter(1, order[:, :k], True)
        masks = _equalise(targets, ok, generator)
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
        n = int(np.prod(grid))
        ok = _valid_rows(valid, batch_size, n)
        n_valid = ok.sum(1)
        if int(n_valid.min()) < 2:
            raise ValueError("every history needs at least 2 valid positions to mask")
        # work in "valid rank" coordinates: position r = the r-th valid item of the row
        rank = ok.long().cumsum(1) - 1  # [B, N]
        total = max(1, min(round(self.target_ratio * int(n_valid.min())),
                           int(n_valid.min()) - 1))
        spans = min(self.num_spans, total)
        length = max(1, total // spans)
        nv = n_valid.float()
        sets = []
        for _ in range(spans):
            start = (torch.rand(batch_size, generator=generator) * (nv - length + 1)).long()
            inside = ok & (rank >= start[:, None]) & (rank < (start + length)[:, None])
            sets.append(inside)
        if not self.separate:
            return _equalise(torch.stack(sets).any(0), ok, generator)
        union = torch.stack(sets).any(0)
        context = ok & ~union
        n_c = int(context.sum(1).min())
        # overlapping spans: each target set is its own span, equalised by random picks
        n_t = min(int(s.sum(1).min()) for s in sets)
        targets = [choose(s, n_t, generator) for s in sets]
        return Masks(choose(context, n_c, generator), targets)
