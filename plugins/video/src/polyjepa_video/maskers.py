"""3-D maskers for ``(T, H, W)`` tubelet grids: V-JEPA block unions and tube masking.

The short- and long-range masks are V-JEPA's multi-block 3-D masks (Bardes et al., 2024,
https://arxiv.org/abs/2404.08471): I-JEPA's multi-block masking (Assran et al., CVPR
2023, https://arxiv.org/abs/2301.08243) extended in time, each block spanning the whole
clip, so that the model cannot copy a target from a neighbouring frame.

All are vectorised over the batch, draw every random number from the given
``torch.Generator`` (on CPU) and return equal counts across the batch by random
subsampling, drawing only among valid tokens.
"""

from __future__ import annotations

import math

import torch

import polyjepa


def _grid3(grid: tuple[int, ...]) -> tuple[int, int, int]:
    g = tuple(int(v) for v in grid)
    if len(g) == 2:
        return (1, g[0], g[1])
    if len(g) != 3:
        raise ValueError(f"video maskers need a (T, H, W) grid, got {g}")
    return g  # type: ignore[return-value]


def _rand_rank(mask: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """A random rank (0, 1, ...) of every True position within its row; False get N."""
    scores = torch.rand(mask.shape, generator=generator).masked_fill(~mask, 2.0)
    return scores.argsort(dim=1).argsort(dim=1).masked_fill(~mask, mask.shape[1])


def finish(targets: list[torch.Tensor], ok: torch.Tensor, generator: torch.Generator,
           min_context: int = 4) -> polyjepa.Masks:
    """Index sets from boolean target masks ``[B, N]`` (context = valid non-target tokens).

    Guarantees at least one target token per set and ``min(min_context, n_valid - k)``
    context tokens per sample, then equalises counts across the batch.
    """
    n_valid = ok.sum(dim=1)
    if int(n_valid.min()) < len(targets) + 1:
        raise ValueError(f"every sample needs at least {len(targets) + 1} valid tokens")
    targets = [t & ok for t in targets]
    # disjoint target sets: a token belongs to the first set that claims it
    claimed = torch.zeros_like(ok)
    for k, t in enumerate(targets):
        targets[k] = t & ~claimed
        claimed |= targets[k]
    # an empty target set takes one random free (or, failing that, claimed) valid token
    for k, t in enumerate(targets):
        empty = t.sum(dim=1) == 0
        if bool(empty.any()):
            pool = ok & ~claimed
            pool = torch.where(pool.sum(1, keepdim=True) > 0, pool, ok & ~t)
            for j in range(len(targets)):
                if j != k:
                    # never take the last token of another set
                    last = targets[j] & (targets[j].sum(1, keepdim=True) == 1)
                    pool &= ~last
            pick = _rand_rank(pool, generator) == 0
            pick &= empty[:, None]
            for j in range(len(targets)):
                targets[j] = targets[j] & ~pick
            targets[k] = t | pick
            claimed = torch.stack(targets).any(0)
    context = ok & ~claimed
    need = torch.clamp(torch.minimum(torch.full_like(n_valid, min_context),
                                     n_valid - len(targets)) - context.sum(dim=1), min=0)
    if bool((need > 0).any()):
        # hand target tokens back to the context, never emptying a target set
        spare = torch.zeros_like(ok)
        for t in targets:
            rank = _rand_rank(t, generator)
            spare |= t & (rank >= 1)
        give = (_rand_rank(spare, generator) < need[:, None]) & spare
        targets = [t & ~give for t in targets]
        context = context | give
    return polyjepa.equal_size_sets(targets, generator, context=context)


class BlockUnionMasker:
    """V-JEPA multi-block mask: the union of ``num_blocks`` 3-D blocks is the target.

    Each block covers ``spatial_scale`` of the H x W plane (aspect ratio log-uniform in
    ``aspect``) and ``temporal_scale`` of the clip's length (1.0: the whole clip, as in
    V-JEPA); the block size is drawn once per call, positions per sample and block. The
    context is every other valid token. ``num_targets > 1`` draws that many independent
    unions as separate target sets (later sets lose tokens an earlier set holds).
    """

    def __init__(self, num_blocks: int = 8, spatial_scale: tuple[float, float] = (0.15, 0.15),
                 aspect: tuple[float, float] = (0.75, 1.5),
                 temporal_scale: tuple[float, float] = (1.0, 1.0), num_targets: int = 1,
                 min_context: int = 4):
        self.num_blocks, self.num_targets = int(num_blocks), int(num_targets)
        self.spatial_scale = tuple(float(v) for v in spatial_scale)
        self.aspect = tuple(float(v) for v in aspect)
        self.temporal_scale = tuple(float(v) for v in temporal_scale)
        self.min_context = int(min_context)
        if self.num_blocks < 1 or self.num_targets < 1:
            raise ValueError("num_blocks and num_targets must be at least 1")
        for name, (lo, hi) in (("spatial_scale", self.spatial_scale),
                               ("temporal_scale", self.temporal_scale)):
            if not 0.0 < lo <= hi <= 1.0:
                raise ValueError(f"{name} must satisfy 0 < low <= high <= 1, got {(lo, hi)}")
        if not 0.0 < self.aspect[0] <= self.aspect[1]:
            raise ValueError(f"aspect must satisfy 0 < low <= high, got {self.aspect}")

    def _size(self, grid: tuple[int, int, int], generator: torch.Generator) -> tuple[int, int, int]:
        t, h, w = grid
        u = torch.rand(3, generator=generator).tolist()
        s = self.spatial_scale[0] + u[0] * (self.spatial_scale[1] - self.spatial_scale[0])
        la, lb = math.log(self.aspect[0]), math.log(self.aspect[1])
        ar = math.exp(la + u[1] * (lb - la))
        ts = self.temporal_scale[0] + u[2] * (self.temporal_scale[1] - self.temporal_scale[0])
        area = s * h * w
        bh = max(1, min(h, round(math.sqrt(area * ar))))
        bw = max(1, min(w, round(math.sqrt(area / ar))))
        bt = max(1, min(t, round(ts * t)))
        return bt, bh, bw

    def _union(self, grid: tuple[int, int, int], size: tuple[int, int, int], batch_size: int,
               generator: torch.Generator) -> torch.Tensor:
        t, h, w = grid
        g = torch.tensor(grid)
        sz = torch.tensor(size)
        start = (torch.rand(batch_size, self.num_blocks, 3, generator=generator)
                 * (g - sz + 1).float()).long()  # [B, K, 3]
        axes = [torch.arange(v) for v in grid]
        inside = [(a.view(1, 1, -1) >= start[..., i, None]) &
                  (a.view(1, 1, -1) < (start[..., i] + sz[i])[..., None])
                  for i, a in enumerate(axes)]  # each [B, K, len(axis)]
        block = (inside[0][..., :, None, None] & inside[1][..., None, :, None]
                 & inside[2][..., None, None, :])  # [B, K, T, H, W]
        return block.any(dim=1).reshape(batch_size, t * h * w)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> polyjepa.Masks:
        g = _grid3(grid)
        ok = polyjepa.valid_rows(valid, batch_size, math.prod(g))
        targets = []
        for _ in range(self.num_targets):
            size = self._size(g, generator)
            targets.append(self._union(g, size, batch_size, generator))
        return finish(targets, ok, generator, self.min_context)


def short_range(num_blocks: int = 8, spatial_scale: tuple[float, float] = (0.15, 0.15),
                aspect: tuple[float, float] = (0.75, 1.5),
                temporal_scale: tuple[float, float] = (1.0, 1.0), num_targets: int = 1,
                min_context: int = 4) -> BlockUnionMasker:
    """V-JEPA's short-range mask: 8 blocks of scale 0.15 spanning the clip in time."""
    return BlockUnionMasker(num_blocks=num_blocks, spatial_scale=spatial_scale, aspect=aspect,
                            temporal_scale=temporal_scale, num_targets=num_targets,
                            min_context=min_context)


def long_range(num_blocks: int = 2, spatial_scale: tuple[float, float] = (0.7, 0.7),
               aspect: tuple[float, float] = (0.75, 1.5),
               temporal_scale: tuple[float, float] = (1.0, 1.0), num_targets: int = 1,
               min_context: int = 4) -> BlockUnionMasker:
    """V-JEPA's long-range mask: 2 blocks of scale 0.7 spanning the clip in time."""
    return BlockUnionMasker(num_blocks=num_blocks, spatial_scale=spatial_scale, aspect=aspect,
                            temporal_scale=temporal_scale, num_targets=num_targets,
                            min_context=min_context)


class MultiMask:
    """Short-range or long-range mask, chosen per call (``p_long``) from the generator.

    V-JEPA applies both masks to every clip, each with its own context; the core's
    :class:`polyjepa.Masks` carries one context, so the two alternate across batches.
    """

    def __init__(self, p_long: float = 0.5, min_context: int = 4):
        if not 0.0 <= p_long <= 1.0:
            raise ValueError(f"p_long must be in [0, 1], got {p_long}")
        self.p_long = float(p_long)
        self.short = short_range(min_context=min_context)
        self.long = long_range(min_context=min_context)

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> polyjepa.Masks:
        use_long = float(torch.rand(1, generator=generator)) < self.p_long
        return (self.long if use_long else self.short)(grid, batch_size, generator, valid)


class TubeMasker:
    """Tube masking: ``ratio`` of the spatial positions are masked in every frame.

    The masked tubes are split into ``num_targets`` target sets; the context is the rest.
    """

    def __init__(self, ratio: float = 0.75, num_targets: int = 1, min_context: int = 4):
        if not 0.0 < ratio < 1.0:
            raise ValueError(f"ratio must be in (0, 1), got {ratio}")
        self.ratio, self.num_targets = float(ratio), int(num_targets)
        self.min_context = int(min_context)
        if self.num_targets < 1:
            raise ValueError("num_targets must be at least 1")

    def __call__(self, grid: tuple[int, ...], batch_size: int, generator: torch.Generator,
                 valid: torch.Tensor | None = None) -> polyjepa.Masks:
        t, h, w = _grid3(grid)
        ok = polyjepa.valid_rows(valid, batch_size, t * h * w)
        hw = h * w
        k = min(hw - 1, max(self.num_targets, round(self.ratio * hw))) if hw > 1 else 1
        rank = _rand_rank(torch.ones(batch_size, hw, dtype=torch.bool), generator)
        targets = []
        bounds = torch.linspace(0, k, self.num_targets + 1).round().long().tolist()
        for i in range(self.num_targets):
            spatial = (rank >= bounds[i]) & (rank < bounds[i + 1])  # [B, H*W]
            targets.append(spatial[:, None, :].expand(batch_size, t, hw).reshape(batch_size, -1))
        return finish(targets, ok, generator, self.min_context)
