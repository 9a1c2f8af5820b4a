from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("POLYJEPA_SHARED_DATA",
                             Path(__file__).resolve().parents[3].parent / "shared" / "data"))
KITTI = SHARED / "lidar" / "kitti-sample"
LAS_DIR = SHARED / "lidar" / "las"

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}


@pytest.fixture(scope="session")
def tiny() -> dict:
    """Overrides that make the recipe's models tiny."""
    return dict(TINY)


@pytest.fixture(scope="session")
def kitti_dir() -> Path:
    if not KITTI.is_dir():
        pytest.skip(f"shared LiDAR data not found at {KITTI}")
    return KITTI


@pytest.fixture(scope="session")
def las_file() -> Path:
    files = sorted(LAS_DIR.glob("*.las"))
    if not files:
        pytest.skip(f"shared LAS data not found in {LAS_DIR}")
    return files[0]


@pytest.fixture
def semantic_kitti(kitti_dir, tmp_path):
    """A SemanticKITTI-style sequence of real scans; labels from height (road / building),
    with instance ids in the upper 16 bits."""
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
    from polyjepa_lidar.dataset import LidarDataset

    return LidarDataset(kitti_dir, grid=16)


@pytest.fixture(scope="session")
def sim_dataset():
    from polyjepa_lidar.dataset import simulated_dataset

    return simulated_dataset(n_scenes=12, grid=16, beams=8, azimuths=256)
