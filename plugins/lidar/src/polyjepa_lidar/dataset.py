"""The LiDAR dataset: point clouds (files, folders, arrays or simulated scenes) turned into
bird's-eye-view pillar grids.

Each sample is a dict with ``"x"`` (pillar features ``[F, X, Y]``, standardised over
occupied pillars), ``"valid"`` (bool ``[X*Y]``: occupied pillars), ``"group"`` (the scan
or tile block it came from), ``"pillar_labels"`` (majority class per pillar, -1 where
empty, when the points carry classes) and ``"y"`` (a scene label, when there is one).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import sparse

from polyjepa import ConfigError, DataError, warn

from .io import Cloud, kitti_label_file, list_files, load_clouds, read_cloud
from .pillars import FEATURES, GROUND_METHODS, crop, ground_heights, pillarize, voxel_downsample

# ground-like classes, left out when a scene label is the dominant class: ASPRS ground (2)
# and SemanticKITTI road, parking, sidewalk, other-ground, lane marking, terrain
GROUND_CLASSES = (2, 40, 44, 48, 49, 60, 72)
# fewer tiled windows than this in a data set draw a warning: too few samples to learn from
MIN_WINDOWS = 16


def _pair(value: Any, name: str) -> tuple[float, float] | None:
    if value is None:
        return None
    lo, hi = (float(v) for v in value)
    if not hi > lo:
        raise DataError(f"{name} must be (low, high) with high > low, got {value}")
    return lo, hi


def _grid(grid: Any) -> tuple[int, int]:
    g = (int(grid), int(grid)) if isinstance(grid, (int, float)) else tuple(int(v) for v in grid)
    if len(g) != 2 or min(g) < 2:
        raise DataError(f"grid must be an int or (X, Y) of at least 2, got {grid}")
    return g  # type: ignore[return-value]


def _cached_read(path: Path, cache_dir: Path | None) -> Cloud:
    """Decode once, then memory-map the decoded arrays from ``cache_dir``."""
    if cache_dir is None:
        return read_cloud(path)
    stamp = ""
    for f in (path, kitti_label_file(path) if path.suffix.lower() == ".bin" else None):
        if f is not None:
            st = f.stat()
            stamp += f"|{f.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    key = hashlib.sha1(stamp.encode()).hexdigest()
    folder = cache_dir / key[:16]
    if (folder / "done").is_file():
        labels = folder / "labels.npy"
        return Cloud(np.load(folder / "points.npy", mmap_mode="r"),
                     np.load(folder / "intensity.npy", mmap_mode="r"),
                     np.load(labels, mmap_mode="r") if labels.is_file() else None, str(path))
    cloud = read_cloud(path)
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / "points.npy", cloud.points)
    np.save(folder / "intensity.npy", cloud.intensity)
    if cloud.labels is not None:
        np.save(folder / "labels.npy", cloud.labels)
    (folder / "done").write_text("ok\n")
    return cloud


def _robust_ends(v: np.ndarray) -> tuple[float, float]:
    """The lowest and highest values of ``v`` that are not far outliers: those within a
    quarter of the 1st-99th percentile span beyond either percentile."""
    p1, p99 = np.percentile(v, [1, 99])
    margin = 0.25 * (p99 - p1)
    kept = v[(v >= p1 - margin) & (v <= p99 + margin)]
    return float(kept.min()), float(kept.max())


def _tiles(cloud: Cloud, tile: float, stride: float) -> list[tuple[float, float, int]]:
    """Lower-left corners of the square windows over the cloud that hold points, with a
    block id for splits.

    Windows start every ``stride`` from the lower corner of the data and cover its
    extent (far outliers aside, so that they neither shift nor stretch the windows over
    the data), in row-major order. Only windows that some point falls in are listed: a
    far outlier adds the few windows it lies in, not the empty space up to it.
    """
    xy = np.asarray(cloud.points[:, :2], np.float64)
    none = np.iinfo(np.int64).min
    # along each axis, the windows [lo + i * stride, lo + i * stride + tile) holding a
    # point are among i = floor(offset / stride) - r, r = 0 .. ceil(tile / stride)
    reach = int(np.ceil(tile / stride)) + 1
    lo, member = [], []
    for k in (0, 1):
        v = xy[:, k]
        low, high = _robust_ends(v)
        last = max(0, int(np.ceil((high - low - tile) / stride - 1e-6)))
        idx = np.floor((v - low) / stride).astype(np.int64)[:, None] - np.arange(reach)
        x0 = low + idx * stride
        inside = (v[:, None] >= x0) & (v[:, None] < x0 + tile)
        outlier = ((v < low) | (v > high))[:, None]
        inside &= outlier | ((idx >= 0) & (idx <= last))
        lo.append(low)
        member.append(np.where(inside, idx, none))
    rows = np.unique(np.concatenate(member, axis=1), axis=0)  # distinct membership patterns
    ix, iy = np.broadcast_arrays(rows[:, :reach, None], rows[:, None, reach:])
    pairs = np.unique(np.stack([ix, iy], axis=-1)[(ix != none) & (iy != none)], axis=0)
    block = max(1, round(2 * tile / stride))
    out = []
    for i, j in pairs.tolist():
        bid = (i // block) * 100_000 + (j // block)
        out.append((float(lo[0] + i * stride), float(lo[1] + j * stride), bid))
    return out


def _auto_tile(cloud: Cloud, grid: tuple[int, int], points_per_pillar: float = 6.0) -> float:
    """A window size giving about ``points_per_pillar`` points per pillar.

    The point density is that of the data's extent with far outliers left out (see
    :func:`_robust_ends`), so a few stray returns kilometres away do not stretch the
    area and blow the windows up.
    """
    xy = np.asarray(cloud.points[:, :2], np.float64)
    ends = [_robust_ends(xy[:, k]) for k in (0, 1)]
    inside = np.ones(len(xy), bool)
    for k, (low, high) in enumerate(ends):
        inside &= (xy[:, k] >= low) & (xy[:, k] <= high)
    area = float(np.prod([max(high - low, 1e-6) for low, high in ends]))
    density = max(int(inside.sum()), 1) / area
    return float(np.sqrt(points_per_pillar / density)) * max(grid)


class LidarDataset(torch.utils.data.Dataset):
    """Point clouds as BEV pillar grids.

    Args:
        data: a file (``.bin``, ``.pcd``, ``.ply``, ``.las``, ``.laz``, ``.npy``, ``.npz``), a
            folder or list of them (a sequence of scans), arrays / dicts of arrays, or
            ``None`` for simulated scenes (see :mod:`polyjepa_lidar.simulate`).
        grid: pillars along X and Y (int or pair).
        x_range, y_range: the BEV box in the clouds' units; by default the 1st-99th
            percentile extent of the training data (kept in ``state``).
        z_range: optional crop on raw z before everything else.
        voxel_size: voxel down-sampling first (``None``: off).
        ground: what heights are measured from: ``"plane"`` (seeded NumPy RANSAC plane,
            reproducible), ``"open3d"`` (open3d ``segment_plane``), ``"min"`` or ``"none"``.
        tile: split each cloud into square windows of this size (airborne LAS);
            ``"auto"`` (the default for LAS/LAZ files) sizes windows for about six points
            per pillar, far outliers aside. ``tile_stride`` defaults to ``tile`` (no
            overlap). Fewer than ``MIN_WINDOWS`` windows draw a warning.
        min_pillars: drop samples with fewer occupied pillars.
        scan_block: consecutive scans of a folder (a sequence) share a ``group`` in
            blocks of this many, so that probes split by group do not test on the
            neighbour frames of training scans; 1 (the default): a group per scan.
        scene_label: ``"auto"``: a scene label ``y`` when the data has one (the
            simulator's scene type; for classified points, the most common non-ground
            class); ``"none"``: no ``y``.
        cache_dir: decoded-array cache (memory-mapped ``.npy``); default
            ``$POLYJEPA_LIDAR_CACHE`` when set, else off.
        simulate: keyword arguments for the simulator when ``data`` is ``None``.
        state: saved by a run (normalisation statistics, box, grid) and reused on new data.
    """

    def __init__(self, data: Any = None, grid: Any = (32, 32), x_range: Any = None,
                 y_range: Any = None, z_range: Any = None, voxel_size: float | None = None,
                 ground: str = "plane", tile: Any = None, tile_stride: float | None = None,
                 min_pillars: int = 8, scan_block: int = 1, scene_label: str = "auto",
                 normalize: bool = True,
                 cache_dir: str | None = None, simulate: dict[str, Any] | None = None,
                 state: dict[str, Any] | None = None, seed: int = 0):
        if ground not in GROUND_METHODS:
            raise ConfigError(f"dataset.ground must be one of {', '.join(GROUND_METHODS)}, "
                              f"got {ground!r}")
        if int(scan_block) < 1:
            raise ConfigError(f"dataset.scan_block must be at least 1, got {scan_block}")
        state = dict(state or {})
        if "grid" in state:
            grid = state["grid"]
        self.grid = _grid(grid)
        scene_y: list[int] | None = None
        folders: list[str] | None = None
        if data is None:
            from .simulate import simulate_scenes

            sim = dict(simulate or {})
            clouds, scene_types = simulate_scenes(**sim)
            scene_y = list(scene_types)
            half = float(sim.get("extent", 32.0))
            x_range = x_range if x_range is not None else (-half, half)
            y_range = y_range if y_range is not None else (-half, half)
            self.source = "simulated scenes"
        else:
            cache = cache_dir or os.environ.get("POLYJEPA_LIDAR_CACHE")
            if isinstance(data, (str, Path)) or (isinstance(data, (list, tuple)) and data
                                                 and isinstance(data[0], (str, Path))):
                files = list_files(data)
                clouds = [_cached_read(f, Path(cache) if cache else None) for f in files]
                folders = [str(f.parent) for f in files]
                self.source = str(data) if isinstance(data, (str, Path)) else f"{len(files)} files"
                if tile is None and all(f.suffix.lower() in (".las", ".laz") for f in files):
                    tile = "auto"
            else:
                clouds = load_clouds(data)
                self.source = clouds[0].source if len(clouds) == 1 else f"{len(clouds)} clouds"
        # scan groups: blocks of ``scan_block`` consecutive scans within a folder
        if folders is None:
            folders = [""] * len(clouds)
        position: dict[str, int] = {}
        block_ids: dict[tuple[str, int], int] = {}
        scan_group = []
        for folder in folders:
            k = position.get(folder, 0)
            position[folder] = k + 1
            scan_group.append(block_ids.setdefault((folder, k // int(scan_block)),
                                                   len(block_ids)))
        z_rng = _pair(z_range, "z_range")
        if state.get("x_range") is not None and state.get("tile") is None:
            x_range, y_range = state["x_range"], state["y_range"]
        if "tile" in state:
            tile, tile_stride = state["tile"], state.get("tile_stride")
        xr, yr = _pair(x_range, "x_range"), _pair(y_range, "y_range")
        if tile is None and (xr is None or yr is None):
            allp = np.concatenate([np.asarray(c.points[:, :2]) for c in clouds])
            lo = np.percentile(allp, 1, axis=0)
            hi = np.percentile(allp, 99, axis=0)
            xr = xr or (float(lo[0]), float(hi[0]) + 1e-3)
            yr = yr or (float(lo[1]), float(hi[1]) + 1e-3)

        feats, valid, plabels, groups, ys = [], [], [], [], []
        has_labels = all(c.labels is not None for c in clouds)
        classes = (np.unique(np.concatenate([np.unique(np.asarray(c.labels)) for c in clouds]))
                   if has_labels else None)
        hists: list[Any] = []
        tile_used: float | None = None
        for ci, cloud in enumerate(clouds):
            if z_rng is not None:
                cloud = cloud.subset((cloud.points[:, 2] >= z_rng[0])
                                     & (cloud.points[:, 2] <= z_rng[1]))
            if len(cloud) == 0:
                continue
            if voxel_size:
                cloud = voxel_downsample(cloud, float(voxel_size))
            if tile is not None:
                t = _auto_tile(cloud, self.grid) if tile == "auto" else float(tile)
                tile_used = t
                stride = float(tile_stride or t)
                windows = [((x0, x0 + t), (y0, y0 + t), scan_group[ci] * 10_000_000 + b)
                           for x0, y0, b in _tiles(cloud, t, stride)]
            else:
                windows = [(xr, yr, scan_group[ci])]
            for wx, wy, gid in windows:
                part = crop(cloud, wx, wy)
                if len(part) == 0:
                    continue
                h = ground_heights(np.asarray(part.points), ground, seed=seed)
                pil = pillarize(np.asarray(part.points[:, :2]), h, np.asarray(part.intensity),
                                None if part.labels is None else np.asarray(part.labels),
                                wx, wy, self.grid, classes)
                occ = pil.counts > 0
                if int(occ.sum()) < min_pillars:
                    continue
                feats.append(pil.features)
                valid.append(occ)
                groups.append(gid)
                if has_labels:
                    plabels.append(pil.labels)
                    hists.append(sparse.csr_matrix(pil.hist))
                if scene_label == "auto":
                    if scene_y is not None:
                        ys.append(scene_y[ci])
                    elif has_labels:
                        lab = pil.labels[occ]
                        non_ground = lab[~np.isin(lab, GROUND_CLASSES)]
                        pool = non_ground if len(non_ground) else lab
                        vals, cnt = np.unique(pool, return_counts=True)
                        ys.append(int(vals[cnt.argmax()]))
        if not feats:
            raise DataError(f"{self.source}: no scan or tile has at least {min_pillars} "
                            f"occupied pillars inside the BEV box (x {xr}, y {yr}, tile "
                            f"{tile_used}); check the ranges or the file")
        if tile is not None and len(feats) < MIN_WINDOWS:
            warn(f"{self.source}: only {len(feats)} window(s) of {tile_used:.4g} x "
                 f"{tile_used:.4g} (dataset.tile={tile!r}, grid "
                 f"{self.grid[0]}x{self.grid[1]}), too few to train or probe on; "
                 f"set a smaller dataset.tile or dataset.grid")
        x = np.stack(feats)
        self.valid = torch.as_tensor(np.stack(valid).reshape(len(feats), -1))
        if normalize:
            if "mean" in state:
                mean = np.asarray(state["mean"], np.float32)
                std = np.asarray(state["std"], np.float32)
                if mean.shape[0] != x.shape[1]:
                    raise DataError(f"{self.source}: {x.shape[1]} pillar features, the run "
                                    f"was trained on {mean.shape[0]}")
            else:
                occ_feats = x.transpose(0, 2, 3, 1).reshape(-1, x.shape[1])[
                    self.valid.numpy().reshape(-1)]
                mean = occ_feats.mean(axis=0)
                std = occ_feats.std(axis=0)
            std = np.maximum(std, 1e-6)
            x = (x - mean[None, :, None, None]) / std[None, :, None, None]
            x = x * self.valid.numpy().reshape(x.shape[0], 1, *self.grid)
        else:
            mean = std = None
        if not np.isfinite(x).all():
            raise DataError(f"{self.source}: pillar features contain NaN or infinite values")
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.groups = torch.as_tensor(np.asarray(groups, np.int64))
        self.pillar_labels = (torch.as_tensor(np.stack(plabels)) if has_labels else None)
        # points of each class per pillar, sparse [S * X*Y, C], for per-point metrics
        self.pillar_hist = sparse.vstack(hists, format="csr") if has_labels else None
        self.classes = classes
        self.y = torch.as_tensor(np.asarray(ys, np.int64)) if len(ys) == len(feats) else None
        self.state: dict[str, Any] = {
            "grid": list(self.grid), "features": list(FEATURES),
            "x_range": list(xr) if xr else None, "y_range": list(yr) if yr else None,
        }
        if tile is not None:
            self.state["tile"] = tile_used
            self.state["tile_stride"] = float(tile_stride or tile_used)
        if mean is not None:
            self.state["mean"] = np.asarray(mean).tolist()
            self.state["std"] = np.asarray(std).tolist()
        self.encoder_hints = {"in_feats": len(FEATURES)}

    def class_counts(self, index: np.ndarray) -> np.ndarray:
        """Points of each of ``classes`` in the pillars ``index [M, 2]`` (sample, pillar):
        ``[M, C]``, as :func:`~polyjepa_lidar.evaluators.pillar_embeddings` indexes them."""
        if self.pillar_hist is None:
            raise DataError(f"{self.source}: the points carry no classes")
        index = np.asarray(index, np.int64).reshape(-1, 2)
        rows = index[:, 0] * (self.grid[0] * self.grid[1]) + index[:, 1]
        return np.asarray(self.pillar_hist[rows].toarray())

    def __len__(self) -> int:
        return int(self.x.shape[0])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"x": self.x[i], "valid": self.valid[i], "group": self.groups[i]}
        if self.pillar_labels is not None:
            item["pillar_labels"] = self.pillar_labels[i]
        if self.y is not None:
            item["y"] = self.y[i]
        return item


points_dataset = LidarDataset
"""Factory for ``lidar.points``: any point-cloud files, or simulated scenes for ``None``.
(The class itself, so that the config check sees every argument it takes.)"""


def simulated_dataset(data: Any = None, n_scenes: int = 64, sim_seed: int = 0,
                      extent: float = 32.0, beams: int = 16, azimuths: int = 512,
                      grid: Any = (32, 32), x_range: Any = None, y_range: Any = None,
                      z_range: Any = None, voxel_size: float | None = None,
                      ground: str = "plane", min_pillars: int = 8, scene_label: str = "auto",
                      normalize: bool = True, simulate: dict[str, Any] | None = None,
                      state: dict[str, Any] | None = None, seed: int = 0) -> LidarDataset:
    """Factory for ``lidar.simulated``: ray-cast SIMULATED scenes (``data`` must be None).

    ``simulate`` passes further simulator arguments (``elevation``, ``sensor_height``);
    the rest are :class:`LidarDataset`'s.
    """
    if data is not None:
        raise DataError("lidar.simulated generates its scenes; use lidar.points for files")
    sim = {"n_scenes": n_scenes, "seed": sim_seed, "extent": extent, "beams": beams,
           "azimuths": azimuths, **(simulate or {})}
    return LidarDataset(None, grid=grid, x_range=x_range, y_range=y_range, z_range=z_range,
                        voxel_size=voxel_size, ground=ground, min_pillars=min_pillars,
                        scene_label=scene_label, normalize=normalize, simulate=sim,
                        state=state, seed=seed)
