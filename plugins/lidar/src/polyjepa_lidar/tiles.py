"""Square windows over airborne tiles: where they start, how large they are.

An airborne LAS/LAZ tile covers far more ground than one pillar grid should, so it is cut
into square windows, each pillarised on its own. Windows follow the data's extent with
far outliers left out (a few stray returns kilometres away would otherwise shift and
stretch every window) and are listed only where points fall.
"""

from __future__ import annotations

import numpy as np

from .io import Cloud


def robust_ends(v: np.ndarray) -> tuple[float, float]:
    """The lowest and highest values of ``v`` that are not far outliers: those within a
    quarter of the 1st-99th percentile span beyond either percentile."""
    p1, p99 = np.percentile(v, [1, 99])
    margin = 0.25 * (p99 - p1)
    kept = v[(v >= p1 - margin) & (v <= p99 + margin)]
    return float(kept.min()), float(kept.max())


def tile_windows(cloud: Cloud, tile: float, stride: float) -> list[tuple[float, float, int]]:
    """Lower-left corners of the square windows over the cloud that hold points, with a
    block id for splits.

    Windows start every ``stride`` from the lower corner of the data and cover its
    extent (far outliers aside, so that they neither shift nor stretch the windows over
    the data), in row-major order. Only windows that some point falls in are listed: a
    far outlier adds the few windows it lies in, not the empty space up to it. The block
    id is shared by the windows that start in the same square of 2 x 2 window sizes, so
    that probes split by block hold out whole stretches of ground.
    """
    xy = np.asarray(cloud.points[:, :2], np.float64)
    ends = [robust_ends(xy[:, k]) for k in (0, 1)]
    return windows_from_pairs(window_pairs(xy, ends, tile, stride),
                              [low for low, _ in ends], tile, stride)


def window_pairs(xy: np.ndarray, ends: list[tuple[float, float]], tile: float,
                 stride: float) -> np.ndarray:
    """The distinct window indices ``(i, j)`` that the points ``xy`` fall in, for windows
    starting at ``ends[k][0] + i * stride``: ``[K, 2]``, sorted. A cloud's windows are the
    union of those of its parts, so a file read in chunks gets the same windows."""
    none = np.iinfo(np.int64).min
    # along each axis, the windows [lo + i * stride, lo + i * stride + tile) holding a
    # point are among i = floor(offset / stride) - r, r = 0 .. ceil(tile / stride)
    reach = int(np.ceil(tile / stride)) + 1
    member = []
    for k in (0, 1):
        v = xy[:, k]
        low, high = ends[k]
        last = max(0, int(np.ceil((high - low - tile) / stride - 1e-6)))
        idx = np.floor((v - low) / stride).astype(np.int64)[:, None] - np.arange(reach)
        x0 = low + idx * stride
        inside = (v[:, None] >= x0) & (v[:, None] < x0 + tile)
        outlier = ((v < low) | (v > high))[:, None]
        inside &= outlier | ((idx >= 0) & (idx <= last))
        member.append(np.where(inside, idx, none))
    rows = np.unique(np.concatenate(member, axis=1), axis=0)  # distinct membership patterns
    ix, iy = np.broadcast_arrays(rows[:, :reach, None], rows[:, None, reach:])
    pairs = np.stack([ix, iy], axis=-1)[(ix != none) & (iy != none)]
    return np.unique(pairs.reshape(-1, 2), axis=0)


def windows_from_pairs(pairs: np.ndarray, lows: list[float], tile: float, stride: float
                       ) -> list[tuple[float, float, int]]:
    """Lower-left corners and block ids (see :func:`tile_windows`) of window indices."""
    block = max(1, round(2 * tile / stride))
    out = []
    for i, j in np.asarray(pairs).tolist():
        bid = (i // block) * 100_000 + (j // block)
        out.append((float(lows[0] + i * stride), float(lows[1] + j * stride), bid))
    return out


def auto_tile(cloud: Cloud, grid: tuple[int, int], points_per_pillar: float = 6.0) -> float:
    """A window size giving about ``points_per_pillar`` points per pillar.

    The point density is that of the data's extent with far outliers left out (see
    :func:`robust_ends`), so a few stray returns kilometres away do not stretch the
    area and blow the windows up.
    """
    return auto_tile_xy(np.asarray(cloud.points[:, :2], np.float64), grid, points_per_pillar)


def auto_tile_xy(xy: np.ndarray, grid: tuple[int, int], points_per_pillar: float = 6.0,
                 scale: float = 1.0) -> float:
    """:func:`auto_tile` on coordinates ``xy`` ``[N, 2]``; ``scale``: points of the data
    per point of ``xy`` (a regular sample of a larger cloud)."""
    ends = [robust_ends(xy[:, k]) for k in (0, 1)]
    inside = np.ones(len(xy), bool)
    for k, (low, high) in enumerate(ends):
        inside &= (xy[:, k] >= low) & (xy[:, k] <= high)
    area = float(np.prod([max(high - low, 1e-6) for low, high in ends]))
    density = max(int(inside.sum()), 1) / area
    if scale != 1.0:
        density = max(int(inside.sum()), 1) * scale / area
    return float(np.sqrt(points_per_pillar / density)) * max(grid)
