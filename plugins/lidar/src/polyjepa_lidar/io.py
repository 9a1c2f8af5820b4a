"""Point-cloud readers: KITTI ``.bin``, PCD/PLY (open3d), LAS/LAZ (laspy), ``.npy``/``.npz``.

Every reader returns a :class:`Cloud`: ``points [N, 3]`` float64, ``intensity [N]`` float32
(zeros when the format has none) and ``labels [N]`` int64 or ``None``. Bad files raise
:class:`polyjepa.DataError` naming the file and the problem. :func:`read_cached` decodes a
file once and memory-maps the decoded arrays afterwards.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import DataError

SUFFIXES = (".bin", ".pcd", ".ply", ".las", ".laz", ".npy", ".npz")

# ASPRS LAS classes that the readers keep as they are (others are kept too; these are named)
ASPRS_NAMES = {0: "never classified", 1: "unclassified", 2: "ground", 3: "low vegetation",
               4: "medium vegetation", 5: "high vegetation", 6: "building", 7: "noise",
               9: "water", 17: "bridge deck"}


@dataclass
class Cloud:
    """One scan: coordinates, intensity and optional per-point class labels."""

    points: np.ndarray
    intensity: np.ndarray
    labels: np.ndarray | None = None
    source: str = "<array>"

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def subset(self, keep: np.ndarray) -> Cloud:
        return Cloud(self.points[keep], self.intensity[keep],
                     None if self.labels is None else self.labels[keep], self.source)


def make_cloud(points: Any, intensity: Any = None, labels: Any = None,
               source: str = "<array>") -> Cloud:
    """Validate arrays into a :class:`Cloud` (shape, emptiness, finite values)."""
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise DataError(f"{source}: points must be [N, 3+], got shape {pts.shape}")
    if pts.shape[0] == 0:
        raise DataError(f"{source}: the point cloud is empty")
    if not np.issubdtype(pts.dtype, np.number):
        raise DataError(f"{source}: point dtype {pts.dtype} is not numeric")
    if intensity is None and pts.shape[1] >= 4:
        intensity = pts[:, 3]
    pts = pts[:, :3].astype(np.float64)
    if not np.isfinite(pts).all():
        bad = int((~np.isfinite(pts)).any(axis=1).sum())
        raise DataError(f"{source}: {bad} point(s) with NaN or infinite coordinates")
    if intensity is None:
        inten = np.zeros(len(pts), np.float32)
    else:
        inten = np.asarray(intensity, dtype=np.float32).reshape(-1)
        if len(inten) != len(pts):
            raise DataError(f"{source}: {len(inten)} intensities for {len(pts)} points")
        if not np.isfinite(inten).all():
            raise DataError(f"{source}: NaN or infinite intensity values")
    lab = None
    if labels is not None:
        lab = np.asarray(labels).reshape(-1).astype(np.int64)
        if len(lab) != len(pts):
            raise DataError(f"{source}: {len(lab)} labels for {len(pts)} points")
    return Cloud(pts, inten, lab, source)


def kitti_label_file(path: str | Path) -> Path | None:
    """The SemanticKITTI ``.label`` file of a scan, when there is one.

    Looked up as ``<sequence>/labels/<scan>.label`` for ``<sequence>/velodyne/<scan>.bin``
    (the SemanticKITTI layout), else as ``<scan>.label`` beside the scan.
    """
    path = Path(path)
    candidates = [path.with_suffix(".label")]
    if path.parent.name == "velodyne":
        candidates.insert(0, path.parent.parent / "labels" / f"{path.stem}.label")
    return next((c for c in candidates if c.is_file()), None)


def read_kitti_labels(path: str | Path, n_points: int) -> np.ndarray:
    """SemanticKITTI labels: one little-endian uint32 per point, the semantic class in the
    lower 16 bits (the upper 16 are the instance id, dropped here)."""
    path = Path(path)
    size = path.stat().st_size
    if size != 4 * n_points:
        raise DataError(f"{path}: {size} bytes, expected {4 * n_points} (one uint32 per "
                        f"point of its {n_points}-point scan); truncated or mismatched?")
    return (np.fromfile(path, dtype="<u4") & 0xFFFF).astype(np.int64)


def read_kitti_bin(path: str | Path) -> Cloud:
    """KITTI velodyne scan: little-endian float32 records ``x, y, z, intensity``.

    Per-point classes come from a SemanticKITTI ``.label`` file when one is found (see
    :func:`kitti_label_file`).
    """
    path = Path(path)
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path}: empty file")
    if size % 16:
        raise DataError(f"{path}: {size} bytes is not a whole number of 16-byte KITTI "
                        f"records (x, y, z, intensity as float32); truncated or not KITTI?")
    arr = np.fromfile(path, dtype="<f4").reshape(-1, 4)
    label_file = kitti_label_file(path)
    labels = None if label_file is None else read_kitti_labels(label_file, len(arr))
    return make_cloud(arr[:, :3], arr[:, 3], labels, source=str(path))


def read_open3d(path: str | Path) -> Cloud:
    """PCD or PLY through open3d's tensor reader (intensity and labels kept when present)."""
    import open3d as o3d

    path = Path(path)
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    try:
        pcd = o3d.t.io.read_point_cloud(str(path))
    except Exception as exc:
        raise DataError(f"{path}: open3d cannot read the point cloud: {exc}") from exc
    if "positions" not in pcd.point or pcd.point.positions.shape[0] == 0:
        raise DataError(f"{path}: no points could be read (corrupt, truncated or empty)")
    pts = pcd.point.positions.numpy()
    inten = None
    for key in ("intensity", "intensities", "scalar_intensity", "reflectance"):
        if key in pcd.point:
            inten = pcd.point[key].numpy().reshape(-1)
            break
    labels = None
    for key in ("label", "labels", "class", "classification", "scalar_label"):
        if key in pcd.point:
            labels = pcd.point[key].numpy().reshape(-1)
            break
    return make_cloud(pts, inten, labels, source=str(path))


def read_las(path: str | Path) -> Cloud:
    """LAS/LAZ through laspy (``pip install polyjepa-lidar[las]``, which brings the lazrs LAZ
    backend); ASPRS classes as labels, intensity scaled from 16 bits to [0, 1]."""
    path = Path(path)
    try:
        import laspy
    except ImportError as exc:  # pragma: no cover - depends on the extra
        raise DataError(f"{path}: reading LAS/LAZ needs laspy: pip install "
                        f"'polyjepa-lidar[las]'") from exc
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    if path.suffix.lower() == ".laz" and not laspy.LazBackend.detect_available():
        raise DataError(f"{path}: LAZ is compressed and laspy has no LAZ backend; "
                        f"pip install 'polyjepa-lidar[las]' (laspy with lazrs)")
    try:
        las = laspy.read(str(path))
    except Exception as exc:
        raise DataError(f"{path}: cannot read LAS/LAZ (corrupt or truncated?): {exc}") from exc
    pts = np.stack([np.asarray(las.x), np.asarray(las.y), np.asarray(las.z)], axis=1)
    if len(pts) == 0:
        raise DataError(f"{path}: the LAS file holds no points")
    if int(las.header.point_count) != len(pts):
        raise DataError(f"{path}: header announces {las.header.point_count} points, "
                        f"{len(pts)} read (truncated?)")
    inten = np.asarray(las.intensity, dtype=np.float32) / 65535.0
    labels = np.asarray(las.classification, dtype=np.int64)
    return make_cloud(pts, inten, labels, source=str(path))


def read_numpy(path: str | Path) -> Cloud:
    """``.npy`` array ``[N, 3|4]`` or ``.npz`` with ``points`` (+ ``intensity``, ``labels``)."""
    path = Path(path)
    try:
        if path.suffix == ".npy":
            return make_cloud(np.load(path, allow_pickle=False), source=str(path))
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise DataError(f"{path}: cannot read the array file (corrupt or truncated?): "
                        f"{exc}") from exc
    if "points" not in arrays:
        raise DataError(f"{path}: an .npz point cloud needs an array 'points' "
                        f"(found {sorted(arrays)})")
    return make_cloud(arrays["points"], arrays.get("intensity"), arrays.get("labels"),
                      source=str(path))


READERS = {".bin": read_kitti_bin, ".pcd": read_open3d, ".ply": read_open3d,
           ".las": read_las, ".laz": read_las, ".npy": read_numpy, ".npz": read_numpy}


def read_cloud(path: str | Path) -> Cloud:
    """Read one point-cloud file by its suffix."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    reader = READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(f"{path}: unknown point-cloud format {path.suffix!r}; "
                        f"readable: {', '.join(SUFFIXES)}")
    return reader(path)


def read_cached(path: Path, cache_dir: Path | None) -> Cloud:
    """:func:`read_cloud`, decoded once, then memory-mapped from ``cache_dir``.

    The cache key holds the file's (and its SemanticKITTI label file's) resolved path,
    size and modification time, so an edited file is decoded again. ``None``: no cache.
    """
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


def list_files(data: str | Path | list[Any]) -> list[Path]:
    """The point-cloud files of a path, a folder (recursively, sorted) or a list of paths."""
    if isinstance(data, (list, tuple)):
        out: list[Path] = []
        for item in data:
            out += list_files(item)
        return out
    path = Path(data)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix.lower() in SUFFIXES
                       and p.is_file())
        if not files:
            raise DataError(f"{path}: no point-cloud files ({', '.join(SUFFIXES)}) found")
        return files
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    return [path]


def load_clouds(data: Any) -> list[Cloud]:
    """Clouds from paths, folders, a :class:`Cloud`, arrays or dicts of arrays."""
    if isinstance(data, Cloud):
        return [data]
    if isinstance(data, np.ndarray):
        return [make_cloud(data)]
    if isinstance(data, dict):
        return [make_cloud(data["points"], data.get("intensity"), data.get("labels"),
                           source=str(data.get("source", "<dict>")))]
    if isinstance(data, (list, tuple)) and data and not isinstance(data[0], (str, Path)):
        out: list[Cloud] = []
        for item in data:
            out += load_clouds(item)
        return out
    return [read_cloud(p) for p in list_files(data)]
