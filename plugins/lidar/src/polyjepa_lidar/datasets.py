"""The LiDAR dataset: point clouds (files, folders, arrays or simulated scenes) turned into
bird's-eye-view (BEV) pillar grids, the BEV plane in which AD-L-JEPA (Zhu et al., 2025,
https://arxiv.org/abs/2501.04969) predicts embeddings.

Each sample is a dict with ``"x"`` (pillar features ``[F, X, Y]``, standardised over
occupied pillars), ``"valid"`` (bool ``[X*Y]``: occupied pillars), ``"group"`` (the scan
or tile block it came from), ``"pillar_labels"`` (majority class per pillar, -1 where
empty, when the points carry classes) and ``"y"`` (a scene label, when there is one).

:class:`LidarDataset` builds them in named steps: read the clouds (:func:`read_scans`),
group the scans (:func:`scan_groups`), place the BEV box or windows
(:func:`bev_layout`, :func:`scan_boxes`), pillarise each box (:func:`pillar_window`),
standardise the features and gather the labels and targets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import sparse

from polyjepa import ConfigError, DataError, warn

from .io import Cloud, list_files, load_clouds, read_cached
from .pillars import FEATURES, GROUND_METHODS, crop, ground_heights, pillarize, voxel_downsample
from .stream import LasStream, stream_windows, use_stream
from .tiles import auto_tile, tile_windows

# ground-like classes, left out when a scene label is the dominant class: ASPRS ground (2)
# and SemanticKITTI road, parking, sidewalk, other-ground, lane marking, terrain
GROUND_CLASSES = (2, 40, 44, 48, 49, 60, 72)
# fewer tiled windows than this in a data set draw a warning: too few samples to learn from
MIN_WINDOWS = 16

Range = tuple[float, float]
Box = tuple[Range, Range, int]  # x range, y range and group id of one pillar grid


def _pair(value: Any, name: str) -> Range | None:
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


@dataclass
class Scans:
    """The clouds of a data set and what reading them told: where each came from, the
    simulator's scene types, a default BEV box, and whether they are airborne tiles."""

    clouds: list[Cloud]
    source: str
    folders: list[str]  # each scan's folder ("" for arrays and simulated scenes)
    scene_types: list[int] | None = None  # simulated scenes: the scene type of each
    box: tuple[Range, Range] | None = None  # simulated scenes: the scene's extent
    airborne: bool = False  # LAS/LAZ files only: cut into windows by default


def read_scans(data: Any, cache_dir: str | None = None,
               simulate: dict[str, Any] | None = None, stream: Any = "auto",
               voxel_size: float | None = None) -> Scans:
    """Step 1, read: the clouds of files and folders (through the decoded-array cache),
    of arrays, or of simulated scenes for ``data=None``. Large LAS/LAZ files (see
    :func:`polyjepa_lidar.stream.use_stream`) are opened as :class:`LasStream`, read in
    chunks later."""
    if data is None:
        from .simulate import simulate_scenes

        sim = dict(simulate or {})
        clouds, scene_types = simulate_scenes(**sim)
        half = float(sim.get("extent", 32.0))
        return Scans(clouds, "simulated scenes", [""] * len(clouds), list(scene_types),
                     box=((-half, half), (-half, half)))
    cache = cache_dir or os.environ.get("POLYJEPA_LIDAR_CACHE")
    if isinstance(data, (str, Path)) or (isinstance(data, (list, tuple)) and data
                                         and isinstance(data[0], (str, Path))):
        files = list_files(data)
        if use_stream(files, stream, voxel_size):
            clouds: list[Any] = [LasStream(f) for f in files]
        else:
            clouds = [read_cached(f, Path(cache) if cache else None) for f in files]
        source = str(data) if isinstance(data, (str, Path)) else f"{len(files)} files"
        return Scans(clouds, source, [str(f.parent) for f in files],
                     airborne=all(f.suffix.lower() in (".las", ".laz") for f in files))
    if stream is True:
        use_stream([], stream, voxel_size)  # raises: only files are streamed
    clouds = load_clouds(data)
    source = clouds[0].source if len(clouds) == 1 else f"{len(clouds)} clouds"
    return Scans(clouds, source, [""] * len(clouds))


def scan_groups(folders: list[str], scan_block: int) -> list[int]:
    """Step 2, group: a group id per scan, shared by blocks of ``scan_block`` consecutive
    scans of a folder, so that probes split by group do not test on the neighbour frames
    of training scans."""
    position: dict[str, int] = {}
    block_ids: dict[tuple[str, int], int] = {}
    groups = []
    for folder in folders:
        k = position.get(folder, 0)
        position[folder] = k + 1
        groups.append(block_ids.setdefault((folder, k // int(scan_block)), len(block_ids)))
    return groups


@dataclass
class Layout:
    """Where a scan's pillar grids lie: the BEV box ``x_range`` x ``y_range``, or, with
    ``tile`` (a size or ``"auto"``), square windows every ``tile_stride``."""

    x_range: Range | None
    y_range: Range | None
    tile: Any = None
    tile_stride: float | None = None


def bev_layout(clouds: list[Cloud], x_range: Any, y_range: Any, tile: Any,
               tile_stride: float | None, state: dict[str, Any]) -> Layout:
    """Step 3, place: a run's saved box or windows win over the arguments (so new data is
    cut as the training data was); without windows, a missing range is the 1st-99th
    percentile extent of all the clouds."""
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
    return Layout(xr, yr, tile, tile_stride)


def scan_boxes(cloud: Cloud, layout: Layout, grid: tuple[int, int], group: int
               ) -> tuple[list[Box], float | None]:
    """Step 4a, window: the boxes of one scan with their group ids, and the window size
    (``None`` without windows). Windows get ids of their own within the scan's group."""
    if layout.tile is None:
        return [(layout.x_range, layout.y_range, group)], None  # type: ignore[list-item]
    t = auto_tile(cloud, grid) if layout.tile == "auto" else float(layout.tile)
    stride = float(layout.tile_stride or t)
    boxes = [((x0, x0 + t), (y0, y0 + t), group * 10_000_000 + b)
             for x0, y0, b in tile_windows(cloud, t, stride)]
    return boxes, t


@dataclass
class Window:
    """One pillar grid: features ``[F, X, Y]``, occupied pillars ``[X*Y]``, and, when the
    points carry classes, pillar labels ``[X*Y]`` and class counts (sparse ``[X*Y, C]``)."""

    features: np.ndarray
    occupied: np.ndarray
    group: int
    scan: int
    labels: np.ndarray | None = None
    hist: sparse.csr_matrix | None = None


def pillar_window(cloud: Cloud, box: Box, grid: tuple[int, int], ground: str, seed: int,
                  classes: np.ndarray | None, scan: int) -> Window | None:
    """Step 4b, pillarise: heights above the ground and pillar features of the points in
    ``box`` (``None`` when it holds none); labels and class counts with ``classes``."""
    wx, wy, gid = box
    part = crop(cloud, wx, wy)
    if len(part) == 0:
        return None
    h = ground_heights(np.asarray(part.points), ground, seed=seed)
    pil = pillarize(np.asarray(part.points[:, :2]), h, np.asarray(part.intensity),
                    None if part.labels is None else np.asarray(part.labels),
                    wx, wy, grid, classes)
    window = Window(pil.features, pil.counts > 0, gid, scan)
    if classes is not None:
        window.labels, window.hist = pil.labels, sparse.csr_matrix(pil.hist)
    return window


def dominant_class(labels: np.ndarray) -> int:
    """The most common of ``labels`` (a window's occupied pillars), ground classes left
    out unless nothing else is there: a scene label for classified points."""
    non_ground = labels[~np.isin(labels, GROUND_CLASSES)]
    pool = non_ground if len(non_ground) else labels
    vals, cnt = np.unique(pool, return_counts=True)
    return int(vals[cnt.argmax()])


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
        normalize: standardise every feature over the occupied pillars (with the run's
            statistics when ``state`` has them).
        cache_dir: decoded-array cache (memory-mapped ``.npy``); default
            ``$POLYJEPA_LIDAR_CACHE`` when set, else off. Streamed files spill their
            bands there (else to the system's temporary folder) while windowed.
        stream: read LAS/LAZ files in chunks (:mod:`polyjepa_lidar.stream`), so that
            memory does not grow with the file: ``"auto"`` (files above 256 MB),
            ``True`` or ``False``; the samples are the same.
        simulate: keyword arguments for the simulator when ``data`` is ``None``.
        state: saved by a run (normalisation statistics, box, grid) and reused on new data.
        seed: seed of the RANSAC ground fit.
    """

    def __init__(self, data: Any = None, grid: Any = (32, 32), x_range: Any = None,
                 y_range: Any = None, z_range: Any = None, voxel_size: float | None = None,
                 ground: str = "plane", tile: Any = None, tile_stride: float | None = None,
                 min_pillars: int = 8, scan_block: int = 1, scene_label: str = "auto",
                 normalize: bool = True,
                 cache_dir: str | None = None, simulate: dict[str, Any] | None = None,
                 state: dict[str, Any] | None = None, seed: int = 0, stream: Any = "auto"):
        if ground not in GROUND_METHODS:
            raise ConfigError(f"dataset.ground must be one of {', '.join(GROUND_METHODS)}, "
                              f"got {ground!r}")
        if int(scan_block) < 1:
            raise ConfigError(f"dataset.scan_block must be at least 1, got {scan_block}")
        state = dict(state or {})
        self.grid = _grid(state.get("grid", grid))
        scans = read_scans(data, cache_dir, simulate, stream, voxel_size)
        self._spill_dir = cache_dir or os.environ.get("POLYJEPA_LIDAR_CACHE")
        self.source = scans.source
        if scans.box is not None:
            x_range = x_range if x_range is not None else scans.box[0]
            y_range = y_range if y_range is not None else scans.box[1]
        if tile is None and scans.airborne:
            tile = "auto"
        groups = scan_groups(scans.folders, int(scan_block))
        z_rng = _pair(z_range, "z_range")
        layout = bev_layout(scans.clouds, x_range, y_range, tile, tile_stride, state)
        has_labels = all(isinstance(c, LasStream) or c.labels is not None
                         for c in scans.clouds)
        classes = (np.unique(np.concatenate([
            c.classes(z_rng) if isinstance(c, LasStream) else np.unique(np.asarray(c.labels))
            for c in scans.clouds])) if has_labels else None)
        windows, tile_used = self._pillarise(scans.clouds, groups, layout, z_rng, voxel_size,
                                             ground, seed, min_pillars, classes)
        self._check_count(windows, layout, tile_used, min_pillars)
        self.valid = torch.as_tensor(np.stack([w.occupied for w in windows])
                                     .reshape(len(windows), -1))
        x, mean, std = self._standardise(np.stack([w.features for w in windows]), state,
                                         normalize)
        self.x = torch.as_tensor(x, dtype=torch.float32)
        self.groups = torch.as_tensor(np.asarray([w.group for w in windows], np.int64))
        self._gather_targets(windows, classes, scans.scene_types, scene_label)
        self.state = self._run_state(layout, tile_used, mean, std)
        self.encoder_hints = {"in_feats": len(FEATURES)}

    def _pillarise(self, clouds: list[Cloud], groups: list[int], layout: Layout,
                   z_range: Range | None, voxel_size: float | None, ground: str, seed: int,
                   min_pillars: int, classes: np.ndarray | None
                   ) -> tuple[list[Window], float | None]:
        """Step 4, window and pillarise every scan: the ``z_range`` crop and voxel
        down-sampling first, then the grids of its boxes with at least ``min_pillars``
        occupied pillars. Also returns the (last) window size used."""
        windows: list[Window] = []
        tile_used: float | None = None
        for ci, cloud in enumerate(clouds):
            if isinstance(cloud, LasStream):
                def build(part: Cloud, box: Box, ci: int = ci) -> Window | None:
                    return pillar_window(part, box, self.grid, ground, seed, classes, ci)

                found, t = stream_windows(cloud, layout.tile, layout.tile_stride, self.grid,
                                          groups[ci], z_range, build, self._spill_dir)
                tile_used = t if t is not None else tile_used
                windows += [w for w in found
                            if w is not None and int(w.occupied.sum()) >= min_pillars]
                continue
            if z_range is not None:
                cloud = cloud.subset((cloud.points[:, 2] >= z_range[0])
                                     & (cloud.points[:, 2] <= z_range[1]))
            if len(cloud) == 0:
                continue
            if voxel_size:
                cloud = voxel_downsample(cloud, float(voxel_size))
            boxes, tile_used = scan_boxes(cloud, layout, self.grid, groups[ci])
            for box in boxes:
                window = pillar_window(cloud, box, self.grid, ground, seed, classes, ci)
                if window is not None and int(window.occupied.sum()) >= min_pillars:
                    windows.append(window)
        return windows, tile_used

    def _check_count(self, windows: list[Window], layout: Layout, tile_used: float | None,
                     min_pillars: int) -> None:
        """No grid at all is an error; too few windows to learn from, a warning."""
        if not windows:
            raise DataError(f"{self.source}: no scan or tile has at least {min_pillars} "
                            f"occupied pillars inside the BEV box (x {layout.x_range}, y "
                            f"{layout.y_range}, tile {tile_used}); check the ranges or the "
                            f"file")
        if layout.tile is not None and len(windows) < MIN_WINDOWS:
            warn(f"{self.source}: only {len(windows)} window(s) of {tile_used:.4g} x "
                 f"{tile_used:.4g} (dataset.tile={layout.tile!r}, grid "
                 f"{self.grid[0]}x{self.grid[1]}), too few to train or probe on; "
                 f"set a smaller dataset.tile or dataset.grid")

    def _standardise(self, x: np.ndarray, state: dict[str, Any], normalize: bool
                     ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        """Step 5: every feature standardised over the occupied pillars (the run's mean
        and std when ``state`` has them), empty pillars zero; with the statistics."""
        mean = std = None
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
        if not np.isfinite(x).all():
            raise DataError(f"{self.source}: pillar features contain NaN or infinite values")
        return x, mean, std

    def _gather_targets(self, windows: list[Window], classes: np.ndarray | None,
                        scene_types: list[int] | None, scene_label: str) -> None:
        """Step 6, labels and targets: pillar labels and per-class point counts when the
        points carry classes, and a scene label ``y`` (the simulator's scene type, else
        the dominant non-ground class) with ``scene_label="auto"``."""
        has_labels = classes is not None
        self.pillar_labels = (torch.as_tensor(np.stack([w.labels for w in windows]))
                              if has_labels else None)
        # points of each class per pillar, sparse [S * X*Y, C], for per-point metrics
        self.pillar_hist = (sparse.vstack([w.hist for w in windows], format="csr")
                            if has_labels else None)
        self.classes = classes
        ys: list[int] | None = None
        if scene_label == "auto":
            if scene_types is not None:
                ys = [scene_types[w.scan] for w in windows]
            elif has_labels:
                ys = [dominant_class(w.labels[w.occupied]) for w in windows]
        self.y = torch.as_tensor(np.asarray(ys, np.int64)) if ys is not None else None

    def _run_state(self, layout: Layout, tile_used: float | None, mean: np.ndarray | None,
                   std: np.ndarray | None) -> dict[str, Any]:
        """What a run keeps to cut and scale new data as it did its training data."""
        xr, yr = layout.x_range, layout.y_range
        state: dict[str, Any] = {
            "grid": list(self.grid), "features": list(FEATURES),
            "x_range": list(xr) if xr else None, "y_range": list(yr) if yr else None,
        }
        if layout.tile is not None:
            state["tile"] = tile_used
            state["tile_stride"] = float(layout.tile_stride or tile_used)
        if mean is not None:
            state["mean"] = np.asarray(mean).tolist()
            state["std"] = np.asarray(std).tolist()
        return state


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
