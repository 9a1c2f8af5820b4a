"""Fixed N-d sine-cosine positional embeddings for token grids of any rank."""

from __future__ import annotations

import math
from functools import lru_cache

import torch


def _sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    half = dim // 2
    omega = torch.arange(half, dtype=torch.float64) / max(half, 1)
    omega = 1.0 / (10000.0 ** omega)
    angles = positions.to(torch.float64)[:, None] * omega[None, :]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


@lru_cache(maxsize=64)
def _cached(grid: tuple[int, ...], dim: int) -> torch.Tensor:
    ndim = len(grid)
    # each axis gets an even share of the channels; leftovers stay zero
    per_axis = (dim // ndim) // 2 * 2
    coords = torch.stack(torch.meshgrid(*[torch.arange(g) for g in grid], indexing="ij"), -1)
    coords = coords.reshape(-1, ndim)
    parts = [_sincos_1d(coords[:, axis], per_axis) for axis in range(ndim)]
    emb = torch.cat(parts, dim=1) if parts else torch.zeros(coords.shape[0], 0)
    if emb.shape[1] < dim:
        emb = torch.cat([emb, torch.zeros(emb.shape[0], dim - emb.shape[1], dtype=emb.dtype)], 1)
    return emb.to(torch.float32)


def sincos_pos_embed(grid: tuple[int, ...] | list[int], dim: int) -> torch.Tensor:
    """``[prod(grid), dim]`` embeddings; each grid axis gets its own sin/cos channels.

    Positions are the row-major flattening of the grid, the same order maskers index.
    """
    grid = tuple(int(g) for g in grid)
    if not grid or any(g <= 0 for g in grid):
        raise ValueError(f"grid must have positive sizes, got {grid}")
    if dim < 2 * len(grid):
        raise ValueError(f"embedding dim {dim} too small for a {len(grid)}-d grid")
    return _cached(grid, int(dim))


def grid_size(grid: tuple[int, ...]) -> int:
    """Number of tokens in a grid."""
    return int(math.prod(grid))
