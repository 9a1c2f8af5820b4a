"""Preprocessing: range cropping, voxel down-sampling, ground-plane estimation
(seeded RANSAC) and vectorised pillarisation into a bird's-eye-view grid.

open3d's own ``segment_plane`` is multi-threaded and can give slightly different planes
from call to call, so the default ground fit is a seeded NumPy RANSAC (the same scan
always gives the same pillar features); ``ground="open3d"`` uses ``segment_plane``.

A pillar's features (``FEATURES``) are the point count, height statistics above the
estimated ground, mean intensity and the mean point offset inside the pillar.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .io import Cloud

FEATURES = ("log_count", "z_mean", "z_min", "z_max", "z_std", "intensity", "dx", "dy")
# the hand-crafted "height statistics" baseline: every feature but the in-pillar offsets
HEIGHT_STATS = (0, 1, 2, 3, 4, 5)
GROUND_METHODS = ("plane", "open3d", "min", "none")


def crop(cloud: Cloud, x_range: tuple[float, float], y_range: tuple[float, float],
         z_range: tuple[float, float] | None = None) -> Cloud:
    """Points inside the box (half-open on the upper x/y edges)."""
    p = cloud.points
    keep = (p[:, 0] >= x_range[0]) & (p[:, 0] < x_range[1]) & \
        (p[:, 1] >= y_range[0]) & (p[:, 1] < y_range[1])
    if z_range is not None:
        keep &= (p[:, 2] >= z_range[0]) & (p[:, 2] <= z_range[1])
    return cloud.subset(keep)


def voxel_downsample(cloud: Cloud, voxel_size: float) -> Cloud:
    """Voxel grid down-sampling: mean position and intensity, majority label per voxel.

    Voxels are aligned on the cloud's minimum corner and come out in the order of their
    grid index. Computed with numpy rather than open3d's ``voxel_down_sample``, whose
    parallel hash map returns voxels in a varying order with sums rounded differently from
    call to call, so the same file could give different pillars (and a cached read
    different ones from a fresh read).
    """
    if len(cloud) == 0 or voxel_size <= 0:
        return cloud
    origin = cloud.points.min(axis=0)
    keys = np.floor((cloud.points - origin) / float(voxel_size)).astype(np.int64)
    _, inv, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    n = len(counts)
    pts = np.stack([np.bincount(inv, cloud.points[:, k], n) for k in range(3)], 1) / \
        counts[:, None]
    inten = np.bincount(inv, cloud.intensity.astype(np.float64), n) / counts
    labels = None
    if cloud.labels is not None:
        classes, lab = np.unique(cloud.labels, return_inverse=True)
        votes = np.zeros((n, len(classes)), np.int64)
        np.add.at(votes, (inv, lab.reshape(-1)), 1)
        labels = classes[votes.argmax(axis=1)]
    return Cloud(pts, inten.astype(np.float32), labels, cloud.source)


def _ransac_plane(q: np.ndarray, threshold: float, seed: int, iterations: int = 200,
                  sample: int = 4000) -> tuple[float, float, float, float]:
    """Seeded, vectorised RANSAC plane ``a x + b y + c z + d = 0`` (unit normal)."""
    rng = np.random.default_rng(seed)
    pts = q if len(q) <= sample else q[rng.choice(len(q), sample, replace=False)]
    tri = pts[rng.integers(0, len(pts), size=(iterations, 3))]
    normal = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    norm = np.linalg.norm(normal, axis=1)
    ok = norm > 1e-9
    if not ok.any():
        return 0.0, 0.0, 1.0, 0.0
    normal = normal[ok] / norm[ok, None]
    d = -(normal * tri[ok, 0]).sum(axis=1)
    inliers = (np.abs(pts @ normal.T + d) <= threshold).sum(axis=0)
    best = int(inliers.argmax())
    a, b, c = (float(v) for v in normal[best])
    return a, b, c, float(d[best])


def _open3d_plane(q: np.ndarray, threshold: float, seed: int, iterations: int = 200
                  ) -> tuple[float, float, float, float]:
    """open3d's RANSAC ``segment_plane``: ``a x + b y + c z + d = 0`` (unit normal)."""
    import open3d as o3d

    o3d.utility.random.seed(int(seed))
    pcd = o3d.t.geometry.PointCloud(o3d.core.Tensor(np.ascontiguousarray(q, np.float32)))
    plane, _ = pcd.segment_plane(distance_threshold=float(threshold), ransac_n=3,
                                 num_iterations=int(iterations))
    a, b, c, d = (float(v) for v in plane.numpy())
    return a, b, c, d


def ground_heights(points: np.ndarray, method: str = "plane", seed: int = 0,
                   threshold: float = 0.2) -> np.ndarray:
    """Height of each point above the ground.

    ``"plane"``: a seeded NumPy RANSAC plane (refined by least squares) fitted to the
    lowest 40 % of the points; falls back to ``"min"`` when the fit is not roughly
    horizontal. ``"open3d"``: the same, with open3d's ``segment_plane`` as the RANSAC
    (seeded through ``open3d.utility.random.seed``; its multi-threaded search can pick a
    slightly different plane from run to run unless open3d runs on one thread).
    ``"min"``: above the 2nd percentile of z. ``"none"``: raw z.
    """
    if method not in GROUND_METHODS:
        raise ValueError(f"ground method must be one of {', '.join(map(repr, GROUND_METHODS))}"
                         f", got {method!r}")
    z = points[:, 2]
    if method == "none" or len(points) == 0:
        return z.copy()
    base = float(np.percentile(z, 2))
    if method == "min" or len(points) < 10:
        return z - base
    low = points[z <= np.percentile(z, 40)]
    if len(low) < 10:
        return z - base
    centre = low.mean(axis=0)
    q = low - centre
    if method == "open3d":
        a, b, c, d = _open3d_plane(q, threshold, seed)
    else:
        a, b, c, d = _ransac_plane(q, threshold, seed)
    # least-squares refit on the points near the RANSAC plane
    near = np.abs(q @ np.array([a, b, c]) + d) <= threshold
    if near.sum() >= 10 and abs(c) >= 0.8:
        design = np.c_[q[near, 0], q[near, 1], np.ones(int(near.sum()))]
        coef, *_ = np.linalg.lstsq(design, q[near, 2], rcond=None)
        a, b, c, d = float(coef[0]), float(coef[1]), -1.0, float(coef[2])
    if abs(c) < 0.8:  # not a ground-like plane
        return z - base
    q = points - centre
    return (q[:, 2] + (a * q[:, 0] + b * q[:, 1] + d) / c)


@dataclass
class Pillars:
    """A BEV grid: ``features [F, X, Y]``, ``counts [X*Y]``, ``labels [X*Y]`` (-1: none).

    ``hist [X*Y, C]``: points of each of ``classes`` per pillar (when classes are given).
    """

    features: np.ndarray
    counts: np.ndarray
    labels: np.ndarray | None
    hist: np.ndarray | None = None


def pillarize(xy: np.ndarray, height: np.ndarray, intensity: np.ndarray,
              labels: np.ndarray | None, x_range: tuple[float, float],
              y_range: tuple[float, float], grid: tuple[int, int],
              classes: np.ndarray | None = None) -> Pillars:
    """Scatter points into ``grid`` pillars over the box; per-pillar features, vectorised.

    Features of empty pillars are zero; their label is -1. Labels of occupied pillars are
    the majority class of their points. With ``classes`` (every class of the data set,
    sorted), ``hist`` counts each pillar's points per class, for per-point metrics.
    """
    gx, gy = int(grid[0]), int(grid[1])
    n = gx * gy
    sx = (x_range[1] - x_range[0]) / gx
    sy = (y_range[1] - y_range[0]) / gy
    fx = (xy[:, 0] - x_range[0]) / sx
    fy = (xy[:, 1] - y_range[0]) / sy
    ix = np.floor(fx).astype(np.int64)
    iy = np.floor(fy).astype(np.int64)
    inside = (ix >= 0) & (ix < gx) & (iy >= 0) & (iy < gy)
    ix, iy, fx, fy = ix[inside], iy[inside], fx[inside], fy[inside]
    h = height[inside].astype(np.float64)
    inten = intensity[inside].astype(np.float64)
    flat = ix * gy + iy
    count = np.bincount(flat, minlength=n).astype(np.float64)
    occ = count > 0
    safe = np.maximum(count, 1.0)
    feats = np.zeros((len(FEATURES), n), np.float64)
    feats[0] = np.log1p(count)
    mean = np.bincount(flat, h, n) / safe
    feats[1] = mean
    var = np.bincount(flat, h * h, n) / safe - mean ** 2
    feats[4] = np.sqrt(np.maximum(var, 0.0))
    feats[5] = np.bincount(flat, inten, n) / safe
    feats[6] = np.bincount(flat, fx - ix - 0.5, n) / safe
    feats[7] = np.bincount(flat, fy - iy - 0.5, n) / safe
    if len(flat):
        order = np.argsort(flat, kind="stable")
        sf = flat[order]
        starts = np.flatnonzero(np.r_[True, sf[1:] != sf[:-1]])
        cells = sf[starts]
        feats[2, cells] = np.minimum.reduceat(h[order], starts)
        feats[3, cells] = np.maximum.reduceat(h[order], starts)
    feats[:, ~occ] = 0.0
    plabels = hist = None
    if labels is not None:
        lab = labels[inside]
        plabels = np.full(n, -1, np.int64)
        if classes is None:
            classes = np.unique(lab)
        inv = np.searchsorted(classes, lab)
        if len(lab) and (inv.max() >= len(classes) or np.any(classes[inv] != lab)):
            raise ValueError("labels outside the given classes")
        votes = np.bincount(flat * len(classes) + inv,
                            minlength=n * len(classes)).reshape(n, len(classes))
        if len(lab):
            plabels[occ] = classes[votes[occ].argmax(axis=1)]
        hist = votes.astype(np.int32)
    return Pillars(feats.reshape(len(FEATURES), gx, gy).astype(np.float32),
                   count.astype(np.int64), plabels, hist)
