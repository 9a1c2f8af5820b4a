"""Large LAS/LAZ files windowed and pillarised without holding the whole cloud.

A tile of hundreds of millions of points does not fit in memory as float64 arrays, yet
every window of it is small. :class:`LasStream` reads a file with laspy's chunked reader
(``laspy.open(path).chunk_iterator(n)``) and :func:`stream_windows` builds the very
windows the in-memory path builds, in three steps:

1. a first pass over the chunks gathers the classes present, the point count and a
   regular sample of the x/y coordinates (every point when the file has at most
   ``SAMPLE_POINTS``); ``tile="auto"`` and the outlier-free extent the windows start
   from (:func:`~polyjepa_lidar.tiles.robust_ends`) are computed on that sample;
2. a second pass lists the windows the points of each chunk fall in
   (:func:`~polyjepa_lidar.tiles.window_pairs`, whose union over the chunks is the
   file's) and appends each point to a spill file on disk for its column band of windows;
3. each band is read back on its own and its windows pillarised exactly as the
   in-memory path does (:func:`~polyjepa_lidar.datasets.pillar_window`): a window's
   points come in the file's order, so even the seeded ground fit sees the same points.

Peak memory is a chunk, a band and the pillar grids, not the file. For a file of at most
``SAMPLE_POINTS`` points the samples are identical to the in-memory path's; for larger
ones the window size and origin come from the sample, so they may differ slightly from
those of a full read. Voxel down-sampling needs the whole cloud and is not streamed.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import ConfigError, DataError

from .io import Cloud, make_cloud

STREAM_BYTES = 256 * 2**20  # stream="auto" streams LAS/LAZ files larger than this
CHUNK_POINTS = 1_000_000  # points per chunk read
SAMPLE_POINTS = 2_000_000  # x/y sample for the window size and origin
BAND_POINTS = 4_000_000  # about this many points per spilled band
SPILL = np.dtype([("xyz", "<f8", (3,)), ("intensity", "<f4"), ("label", "<i8")])


def use_stream(files: list[Path], stream: Any, voxel_size: float | None) -> bool:
    """Whether LAS/LAZ ``files`` are streamed: ``True`` always, ``False`` never,
    ``"auto"`` when one of them is larger than ``STREAM_BYTES``."""
    if stream not in (True, False, "auto"):
        raise ConfigError(f"dataset.stream must be true, false or 'auto', got {stream!r}")
    las = bool(files) and all(f.suffix.lower() in (".las", ".laz") for f in files)
    if stream is True and not las:
        raise ConfigError("dataset.stream=true reads LAS/LAZ files; other point clouds "
                          "are read whole")
    if stream is True and voxel_size:
        raise ConfigError("dataset.stream=true cannot down-sample voxels (that needs the "
                          "whole cloud); set dataset.voxel_size=null or stream=false")
    if stream is False or not las or voxel_size:
        return False
    return stream is True or any(f.stat().st_size > STREAM_BYTES for f in files)


class LasStream:
    """A LAS/LAZ file read in chunks; ``source`` names it, ``count`` is the header's."""

    def __init__(self, path: Path, chunk_points: int | None = None):
        from .io import read_las

        self.path = Path(path)
        self.source = str(self.path)
        self.chunk_points = int(chunk_points or CHUNK_POINTS)
        laspy = _laspy(self.path)
        if self.path.stat().st_size == 0:
            raise DataError(f"{self.path}: empty file")
        if self.path.suffix.lower() == ".laz" and not laspy.LazBackend.detect_available():
            read_las(self.path)  # raises the reader's message
        try:
            with laspy.open(str(self.path)) as f:
                self.count = int(f.header.point_count)
        except Exception as exc:
            raise DataError(f"{self.path}: cannot read LAS/LAZ (corrupt or truncated?): "
                            f"{exc}") from exc
        if self.count == 0:
            raise DataError(f"{self.path}: the LAS file holds no points")
        self._survey: tuple[np.ndarray, np.ndarray, int] | None = None
        self._z: Any = None

    def chunks(self, z_range: tuple[float, float] | None = None) -> Iterator[Cloud]:
        """The points chunk by chunk (as :func:`~polyjepa_lidar.io.read_las` decodes
        them), cropped to ``z_range`` when given."""
        laspy = _laspy(self.path)
        seen = 0
        try:
            with laspy.open(str(self.path)) as f:
                for pts in f.chunk_iterator(self.chunk_points):
                    n = len(pts)
                    if n == 0:
                        continue
                    seen += n
                    xyz = np.stack([np.asarray(pts.x), np.asarray(pts.y),
                                    np.asarray(pts.z)], axis=1)
                    cloud = make_cloud(xyz, np.asarray(pts.intensity, np.float32) / 65535.0,
                                       np.asarray(pts.classification, np.int64),
                                       source=self.source)
                    if z_range is not None:
                        z = cloud.points[:, 2]
                        cloud = cloud.subset((z >= z_range[0]) & (z <= z_range[1]))
                    yield cloud
        except DataError:
            raise
        except Exception as exc:
            raise DataError(f"{self.path}: cannot read LAS/LAZ (corrupt or truncated?): "
                            f"{exc}") from exc
        if seen != self.count:
            raise DataError(f"{self.path}: header announces {self.count} points, {seen} "
                            f"read (truncated?)")

    def survey(self, z_range: tuple[float, float] | None = None
               ) -> tuple[np.ndarray, np.ndarray, int]:
        """Pass 1: the classes present (before the ``z_range`` crop, as for a whole
        read), a regular x/y sample of the points in ``z_range`` (every ``k``-th point,
        all of them for a file of at most ``SAMPLE_POINTS``) and their count."""
        if self._survey is not None and self._z == z_range:
            return self._survey
        step = max(1, math.ceil(self.count / SAMPLE_POINTS))
        classes, sample, kept, offset = [], [], 0, 0
        for cloud in self.chunks():
            classes.append(np.unique(cloud.labels))
            if z_range is not None:
                z = cloud.points[:, 2]
                cloud = cloud.subset((z >= z_range[0]) & (z <= z_range[1]))
            n = len(cloud)
            if n:
                first = (-offset) % step
                sample.append(np.array(cloud.points[first::step, :2], np.float64))
            kept += n
            offset += n
        xy = np.concatenate(sample) if sample else np.zeros((0, 2))
        cls = np.unique(np.concatenate(classes)) if classes else np.zeros(0, np.int64)
        self._survey, self._z = (cls, xy, kept), z_range
        return self._survey

    def classes(self, z_range: tuple[float, float] | None = None) -> np.ndarray:
        return self.survey(z_range)[0]


def _laspy(path: Path) -> Any:
    try:
        import laspy
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise DataError(f"{path}: reading LAS/LAZ needs laspy: pip install "
                        f"'polyjepa-lidar[las]'") from exc
    return laspy


def stream_windows(stream: LasStream, tile: Any, tile_stride: float | None,
                   grid: tuple[int, int], group: int, z_range: tuple[float, float] | None,
                   build: Any, spill_dir: str | None = None) -> tuple[list[Any], float | None]:
    """The windows of one streamed file (see the module docstring): ``build(cloud, box)``
    pillarises one box of a band's points (the dataset's ``pillar_window`` with its
    settings). Returns the windows in the in-memory path's order and the window size."""
    from .tiles import auto_tile_xy, robust_ends, window_pairs, windows_from_pairs

    _, xy, kept = stream.survey(z_range)
    if kept == 0:
        return [], None
    t = auto_tile_xy(xy, grid, scale=kept / len(xy)) if tile == "auto" else float(tile)
    stride = float(tile_stride or t)
    ends = [robust_ends(xy[:, k]) for k in (0, 1)]
    lows = [low for low, _ in ends]
    reach = int(np.ceil(t / stride)) + 1
    last = max(0, int(np.ceil((ends[0][1] - ends[0][0] - t) / stride - 1e-6)))
    n_bands = max(1, min(last + 1, math.ceil(kept * reach / BAND_POINTS)))
    per_band = math.ceil((last + 1) / n_bands)
    pairs = []
    if spill_dir:
        Path(spill_dir).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="polyjepa-las-", dir=spill_dir) as tmp:
        spills = [Path(tmp) / f"band{b}.bin" for b in range(n_bands)]
        handles = [open(p, "wb") for p in spills]  # noqa: SIM115 - closed below
        try:
            for cloud in stream.chunks(z_range):
                if not len(cloud):
                    continue
                p = np.asarray(cloud.points, np.float64)
                pairs.append(window_pairs(p[:, :2], ends, t, stride))
                # the x windows a point falls in (as the boxes crop it), hence its bands
                idx = np.floor((p[:, 0] - lows[0]) / stride).astype(np.int64)[:, None] \
                    - np.arange(reach)
                x0 = lows[0] + idx * stride
                inside = (p[:, :1] >= x0) & (p[:, :1] < x0 + t)
                band = np.clip(idx // per_band, 0, n_bands - 1)
                rec = np.empty(len(p), SPILL)
                rec["xyz"], rec["intensity"] = p, cloud.intensity
                rec["label"] = cloud.labels
                for b in np.unique(band[inside]).tolist():
                    keep = (inside & (band == b)).any(axis=1)
                    handles[b].write(rec[keep].tobytes())
        finally:
            for h in handles:
                h.close()
        found = np.unique(np.concatenate(pairs), axis=0) if pairs else np.zeros((0, 2), int)
        corners = windows_from_pairs(found, lows, t, stride)
        windows = []
        band_of = np.clip(found[:, 0] // per_band, 0, n_bands - 1) if len(found) else []
        for b in range(n_bands):
            mine = [k for k in range(len(corners)) if band_of[k] == b]
            if not mine:
                continue
            rec = np.fromfile(spills[b], SPILL)
            part = Cloud(rec["xyz"], rec["intensity"], rec["label"], stream.source)
            for k in mine:
                x0, y0, bid = corners[k]
                windows.append(build(part, ((x0, x0 + t), (y0, y0 + t),
                                            group * 10_000_000 + bid)))
            del rec, part
    return windows, t
