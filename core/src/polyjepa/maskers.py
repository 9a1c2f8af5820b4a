"""Vectorised, seeded maskers for token grids of any rank (1-D, 2-D, 3-D, ...).

A masker returns :class:`Masks`: one context index set and one or more target index
sets, each ``[B, N]`` with the same ``N`` for every sample (so the batch stays a tensor),
drawn only among valid tokens, with context and targets disjoint.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .posembed import grid_size


@dataclass
class Masks:
    """Index sets over a flattened token grid: ``context [B, Nc]``, ``targets`` ``[B, Nt]``."""

    context: torch.Tensor
    targets: list[torch.Tensor] = field(default_factory=list)

    def to(self, device: torch.device | str) -> Masks:
        return Masks(self.context.to(device, non_blocking=True),
                     [t.to(device, non_blocking=True) for t in self.targets])

    def rows(self, start: int, stop: int) -> Masks:
        """The masks of samples ``start:stop`` (a data-parallel rank's share)."""
        return Masks(self.context[start:stop], [t[start:stop] for t in self.targets])


def choose(mask: torch.Tensor, count: int, generator: torch.Generator) -> torch.Tensor:
    """Pick ``count`` random True positions per row of ``mask [B, N]``; sorted indices.

    Every row must hold at least ``count`` True values.
    """
    scores = torch.rand(mask.shape, generator=generator)
    scores = scores.masked_fill(~mask, 2.0)
    idx = torch.topk(scores, count, dim=1, largest=False).indices
    return idx.sort(dim=1).values


def equal_size_sets(targets: list[torch.Tensor], generator: torch.Generator,
                    context: torch.Tensor | None = None, valid: torch.Tensor | None = None,
                    same_size: bool = False) -> Masks:
    """:class:`Masks` from boolean memberships ``[B, N]``, with equal counts across the
    batch by random subsampling (:func:`choose`): each target set keeps the count of its
    smallest sample (``same_size``: the smallest over every set), then the context.

    ``context`` ``None`` means every ``valid`` token that no chosen target holds (tokens a
    target set gave up return to the context). Target sets are drawn before the context,
    in order, so a masker's masks are a pure function of its generator.
    """
    counts = [int(t.sum(dim=1).min()) for t in targets]
    if same_size:
        counts = [min(counts)] * len(targets)
    for k, n in enumerate(counts):
        if n < 1:
            raise ValueError(f"a sample got no token in target set {k}")
    sets = [choose(t, n, generator) for t, n in zip(targets, counts)]
    if context is None:
        if valid is None:
            raise ValueError("equal_size_sets needs the context or the valid mask")
        chosen = torch.zeros_like(valid)
        for idx in sets:
            chosen = chosen.scatter(1, idx, True)
        context = valid & ~chosen
    n_ctx = int(context.sum(dim=1).min())
    if n_ctx < 1:
        raise ValueError("a sample has no context token left")
    return Masks(choose(context, n_ctx, generator), sets)


def valid_rows(valid: torch.Tensor | None, batch_size: int, n: int) -> torch.Tensor:
    """The ``valid`` mask a masker receives as a CPU bool ``[batch_size, n]`` tensor (all
    True when the batch has none); a mask of another length than the grid is an error."""
    if valid is None:
        return torch.ones(batch_size, n, dtype=torch.bool)
    valid = valid.detach().to("cpu", torch.bool).reshape(batch_size, -1)
    if valid.shape[1] != n:
        raise ValueError(f"valid mask has {valid.shape[1]} tokens, grid has {n}")
    return valid


class RandomMasker:
    """Uniformly random targets (``target_ratio`` of the valid tokens), rest as context."""

    def __init__(self, target_ratio: float = 0.5, num_targets: int = 1,
                 context_ratio: float = 1.0):
        if not 0.0 < target_ratio < 1.0:
            raise ValueError(f"target_ratio must be in (0, 1), got {target_ratio}")
        self.target_ratio = float(target_ratio)
        self.num_targets = int(num_targets)
        self.context_ratio = float(context_ratio)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        n = grid_size(grid)
        ok = valid_rows(valid, batch_size, n)
        n_valid = int(ok.sum(dim=1).min())
        if n_valid < 2:
            raise ValueError("every sample needs at least 2 valid tokens to mask")
        per = max(1, int(round(self.target_ratio * n_valid / self.num_targets)))
        per = min(per, (n_valid - 1) // self.num_targets) or 1
        scores = torch.rand(batch_size, n, generator=generator).masked_fill(~ok, 2.0)
        order = scores.argsort(dim=1)
        targets = [order[:, k * per:(k + 1) * per].sort(dim=1).values
                   for k in range(self.num_targets)]
        rest = order[:, self.num_targets * per:n_valid]
        keep = max(1, int(round(self.context_ratio * rest.shape[1])))
        context = rest[:, :keep].sort(dim=1).values
        return Masks(context, targets)


def _coords(grid: tuple[int, ...]) -> torch.Tensor:
    axes = [torch.arange(g) for g in grid]
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(grid))


class MultiBlockMasker:
    """I-JEPA / V-JEPA multi-block masking on an N-d grid.

    I-JEPA: https://arxiv.org/abs/2301.08243; V-JEPA (Bardes et al., 2024):
    https://arxiv.org/abs/2404.08471.

    ``num_targets`` target blocks whose size (shared by the batch, drawn per call) covers
    ``target_scale`` of the grid with aspect ratio (height/width of the last two axes) in
    ``target_aspect``; the context is one block of ``context_scale`` with every target
    token removed. On grids of rank 3 or more the leading axes (time) are spanned whole,
    as in V-JEPA, unless ``span_leading=False``. Counts are equalised across the batch
    (and across target sets) by random subsampling.
    """

    def __init__(self, num_targets: int = 4, target_scale: tuple[float, float] = (0.15, 0.2),
                 target_aspect: tuple[float, float] = (0.75, 1.5),
                 context_scale: tuple[float, float] = (0.85, 1.0),
                 context_aspect: tuple[float, float] = (1.0, 1.0),
                 min_context: int = 4, span_leading: bool = True):
        self.num_targets = int(num_targets)
        self.target_scale = tuple(target_scale)
        self.target_aspect = tuple(target_aspect)
        self.context_scale = tuple(context_scale)
        self.context_aspect = tuple(context_aspect)
        self.min_context = int(min_context)
        self.span_leading = bool(span_leading)
        if self.num_targets < 1:
            raise ValueError("num_targets must be at least 1")
        for name, (lo, hi) in (("target_scale", self.target_scale),
                               ("context_scale", self.context_scale)):
            if not 0.0 < lo <= hi <= 1.0:
                raise ValueError(f"{name} must satisfy 0 < low <= high <= 1, got {(lo, hi)}")
        self._coords: dict[tuple[int, ...], torch.Tensor] = {}

    def _uniform(self, lo_hi: tuple[float, float], generator: torch.Generator) -> float:
        lo, hi = lo_hi
        return lo + float(torch.rand(1, generator=generator)) * (hi - lo)

    def _block_size(self, grid: tuple[int, ...], scale: tuple[float, float],
                    aspect: tuple[float, float], generator: torch.Generator) -> list[int]:
        s = self._uniform(scale, generator)
        # log-uniform aspect ratio, as in I-JEPA
        la, lb = math.log(aspect[0]), math.log(aspect[1])
        ar = math.exp(la + float(torch.rand(1, generator=generator)) * (lb - la))
        d = len(grid)
        lead = d - 2 if d >= 3 and self.span_leading else 0
        size = list(grid[:lead])
        rest = grid[lead:]
        area = s * math.prod(rest)
        if len(rest) == 1:
            size.append(round(area))
        else:
            h = round(math.sqrt(area * ar))
            w = round(math.sqrt(area / ar))
            inner = rest[:-2]  # only for span_leading=False on rank >= 3
            side = round(area ** (1.0 / len(rest))) if inner else None
            size += [side] * len(inner) if inner else []
            size += [h, w]
        return [max(1, min(int(v), g)) for v, g in zip(size, grid)]

    def _blocks(self, grid: tuple[int, ...], size: list[int], count: int, batch_size: int,
                generator: torch.Generator) -> torch.Tensor:
        """Boolean ``[B, count, N]`` membership of ``count`` randomly placed blocks."""
        coords = self._coords.get(grid)
        if coords is None:
            coords = self._coords[grid] = _coords(grid)
        g = torch.tensor(grid)
        sz = torch.tensor(size)
        span = (g - sz + 1).to(torch.float32)
        start = (torch.rand(batch_size, count, len(grid), generator=generator) * span).long()
        c = coords.view(1, 1, -1, len(grid))
        inside = (c >= start.unsqueeze(2)) & (c < (start + sz).unsqueeze(2))
        return inside.all(dim=-1)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> Masks:
        grid = tuple(int(g) for g in grid)
        n = grid_size(grid)
        ok = valid_rows(valid, batch_size, n)
        t_size = self._block_size(grid, self.target_scale, self.target_aspect, generator)
        c_size = self._block_size(grid, self.context_scale, self.context_aspect, generator)
        tblocks = self._blocks(grid, t_size, self.num_targets, batch_size, generator) & ok[:, None]
        cblock = self._blocks(grid, c_size, 1, batch_size, generator)[:, 0]
        union = tblocks.any(dim=1)
        context = cblock & ~union & ok
        if int(context.sum(dim=1).min()) < self.min_context:
            context = ~union & ok  # the context block missed: use every non-target token
        n_ctx = int(context.sum(dim=1).min())
        if n_ctx < 1:
            # targets cover some sample's valid tokens entirely: hand one token back
            first = choose(union & ok, 1, generator)
            union = union.scatter(1, first, False)
            tblocks = tblocks & union[:, None]
            context = ~union & ok
            n_ctx = int(context.sum(dim=1).min())
        counts = tblocks.sum(dim=2)  # [B, K]
        n_tgt = int(counts.min())
        if n_tgt < 1:
            # a block fell on invalid tokens only for some sample: fall back to random picks
            spare = ok & ~context
            if int(spare.sum(dim=1).min()) < 1:
                raise ValueError("a sample has too few valid tokens for multiblock masking")
            pick = choose(spare, 1, generator)
            tblocks = torch.zeros_like(tblocks).scatter(
                2, pick[:, None, :].expand(-1, self.num_targets, -1), True)
            n_tgt = 1
        return equal_size_sets([tblocks[:, k] for k in range(self.num_targets)], generator,
                               context=context, same_size=True)
