"""Test data in the plugin's real formats.

The generic tests run on files these fixtures write themselves: KITTI ``.bin`` scans of
SIMULATED ray-cast street scenes and an airborne LAS tile written with laspy. The real
files of the shared data (``real_kitti_dir``, ``real_las_file``) are an extra layer that
skips when they are absent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from polyjepa.testing import shared_data_or_skip

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}

N_SCANS = 10
SENSOR_HEIGHT = 1.8  # m: the simulator's sensor; KITTI scans are in the sensor frame
LAS_SIZE = (60.0, 40.0)  # ft, like the shared tile: 24 windows of 10 ft
LAS_ORIGIN = (2445180.0, 604300.0, 1350.0)
LAS_SCALE = 0.01


@pytest.fixture(scope="session")
def tiny() -> dict:
    """Overrides that make the recipe's models tiny."""
    return dict(TINY)


@pytest.fixture(scope="session")
def kitti_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``N_SCANS`` KITTI velodyne scans (little-endian float32 x, y, z, intensity) of
    SIMULATED street scenes, in the sensor frame like KITTI's (ground at z = -1.8 m)."""
    from polyjepa_lidar.simulate import simulate_scenes

    root = tmp_path_factory.mktemp("kitti")
    clouds, _ = simulate_scenes(N_SCANS, seed=3, beams=16, azimuths=512,
                                sensor_height=SENSOR_HEIGHT)
    for k, cloud in enumerate(clouds):
        rec = np.column_stack([cloud.points[:, 0], cloud.points[:, 1],
                               cloud.points[:, 2] - SENSOR_HEIGHT, cloud.intensity])
        rec.astype("<f4").tofile(root / f"{k:06d}.bin")
    return root


def airborne_tile(seed: int = 0) -> dict[str, np.ndarray]:
    """A classified airborne tile (x, y, z in ft, 16-bit intensity, ASPRS classes): a
    sloping ground (2) with two flat-roofed buildings (6), trees (3, 4, 5 by height above
    ground: low, medium, high vegetation) and a few noise returns (7) above and below."""
    rng = np.random.default_rng(seed)
    w, h = LAS_SIZE

    def ground_z(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return 0.05 * x + 0.02 * y

    parts = []

    def add(x: np.ndarray, y: np.ndarray, above: np.ndarray, cls: np.ndarray | int,
            inten: float) -> None:
        z = ground_z(x, y) + above
        cls = np.broadcast_to(np.asarray(cls, np.uint8), x.shape)
        i = np.clip(rng.normal(inten, 2500, x.shape), 0, 65535)
        parts.append((x, y, z, i, cls))

    roofs = [((5.0, 20.0), (5.0, 18.0), 25.0), ((36.0, 54.0), (22.0, 36.0), 30.0)]

    def on_roof(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.zeros(x.shape, bool)
        for (x0, x1), (y0, y1), _ in roofs:
            out |= (x >= x0) & (x < x1) & (y >= y0) & (y < y1)
        return out

    gx, gy = rng.uniform(0, w, 6000), rng.uniform(0, h, 6000)
    keep = ~on_roof(gx, gy)  # buildings hide the ground under them
    add(gx[keep], gy[keep], rng.normal(0, 0.05, int(keep.sum())), 2, 20000)
    for (x0, x1), (y0, y1), height in roofs:
        n = int((x1 - x0) * (y1 - y0) * 4)
        add(rng.uniform(x0, x1, n), rng.uniform(y0, y1, n), height + rng.normal(0, 0.1, n),
            6, 42000)
    for cx, cy in ((28.0, 8.0), (45.0, 8.0), (10.0, 30.0), (26.0, 30.0), (55.0, 5.0)):
        r, top = rng.uniform(3.0, 5.0), rng.uniform(20.0, 40.0)
        n = 500
        ang, rad = rng.uniform(0, 2 * np.pi, n), r * np.sqrt(rng.uniform(0, 1, n))
        above = rng.uniform(0.5, 1.0, n) * top * (1 - 0.5 * rad / r)
        x, y = np.clip(cx + rad * np.cos(ang), 0, w - 0.01), np.clip(cy + rad * np.sin(ang),
                                                                      0, h - 0.01)
        add(x, y, above, np.where(above < 3, 3, np.where(above < 15, 4, 5)), 9000)
    n = 400  # shrubs: low vegetation
    add(rng.uniform(0, w, n), rng.uniform(0, h, n), rng.uniform(0.3, 2.5, n), 3, 11000)
    n = 20
    add(rng.uniform(0, w, n), rng.uniform(0, h, n),
        np.where(rng.random(n) < 0.5, -30.0, 150.0) + rng.normal(0, 5, n), 7, 3000)
    x, y, z, inten, cls = (np.concatenate(c) for c in zip(*parts))
    order = rng.permutation(len(x))  # mixed like a real flight line, not class by class
    return {"x": x[order] + LAS_ORIGIN[0], "y": y[order] + LAS_ORIGIN[1],
            "z": z[order] + LAS_ORIGIN[2], "intensity": inten[order].astype(np.uint16),
            "classification": cls[order]}


def write_las(path: Path, tile: dict[str, np.ndarray]) -> Path:
    """Write ``tile`` as LAS 1.2, point format 3, with a 0.01 scale and an offset at the
    tile's corner (the header's bounds and point count filled in by laspy)."""
    import laspy

    header = laspy.LasHeader(point_format=3, version="1.2")
    header.scales = np.array([LAS_SCALE] * 3)
    header.offsets = np.array(LAS_ORIGIN)
    las = laspy.LasData(header)
    las.x, las.y, las.z = tile["x"], tile["y"], tile["z"]
    las.intensity = tile["intensity"]
    las.classification = tile["classification"]
    las.return_number = np.ones(len(tile["x"]), np.uint8)
    las.number_of_returns = np.ones(len(tile["x"]), np.uint8)
    las.gps_time = np.linspace(0.0, 60.0, len(tile["x"]))
    las.write(str(path))
    return path


@pytest.fixture(scope="session")
def las_tile() -> dict[str, np.ndarray]:
    """The points, intensities and classes :func:`las_file` holds."""
    return airborne_tile()


@pytest.fixture(scope="session")
def las_file(tmp_path_factory: pytest.TempPathFactory, las_tile: dict) -> Path:
    """A classified airborne LAS tile written with laspy (see :func:`airborne_tile`)."""
    pytest.importorskip("laspy")
    return write_las(tmp_path_factory.mktemp("las") / "tile.las", las_tile)


@pytest.fixture(scope="session")
def real_kitti_dir() -> Path:
    """The real KITTI velodyne scans of the shared data (skips without them)."""
    return shared_data_or_skip("lidar", "kitti-sample")


@pytest.fixture(scope="session")
def real_las_file() -> Path:
    """The first real classified LAS tile of the shared data (skips without one)."""
    folder = shared_data_or_skip("lidar", "las")
    files = sorted(folder.glob("*.las"))
    if not files:
        pytest.skip(f"shared LAS data not found in {folder}")
    return files[0]


@pytest.fixture
def semantic_kitti(kitti_dir, tmp_path):
    """A SemanticKITTI-style sequence of KITTI scans; labels from height (road /
    building), with instance ids in the upper 16 bits."""
    root, scans = tmp_path, ("000000", "000001")
    velo = root / "sequences" / "00" / "velodyne"
    labels = root / "sequences" / "00" / "labels"
    velo.mkdir(parents=True)
    labels.mkdir()
    expected = {}
    for name in scans:
        raw = (kitti_dir / f"{name}.bin").read_bytes()
        (velo / f"{name}.bin").write_bytes(raw)
        z = np.frombuffer(raw, "<f4").reshape(-1, 4)[:, 2]
        sem = np.where(z < -1.4, 40, 50).astype(np.uint32)
        ((np.uint32(7) << 16) | sem).astype("<u4").tofile(labels / f"{name}.label")
        expected[name] = sem.astype(np.int64)
    return velo, expected


@pytest.fixture(scope="session")
def kitti_dataset(kitti_dir):
    from polyjepa_lidar.datasets import LidarDataset

    return LidarDataset(kitti_dir, grid=16)


@pytest.fixture(scope="session")
def sim_dataset():
    from polyjepa_lidar.datasets import simulated_dataset

    return simulated_dataset(n_scenes=12, grid=16, beams=8, azimuths=256)
