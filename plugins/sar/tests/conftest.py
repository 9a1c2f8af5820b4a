from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

SHARED = Path(os.environ.get("POLYJEPA_SHARED_DATA",
                             Path(__file__).resolve().parents[3].parent / "shared" / "data"))
SAR_DATA = SHARED / "sar"
LANDSAT = SAR_DATA / "landsat-rgb-rmnp.tif"
S1_GRD = SAR_DATA / "s1b-iw-grd-vv-placeholder.tiff"

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}


@pytest.fixture(scope="session")
def landsat() -> Path:
    if not LANDSAT.is_file():
        pytest.skip(f"shared SAR test data not found at {SAR_DATA}")
    return LANDSAT


@pytest.fixture(scope="session")
def s1_grd() -> Path:
    if not S1_GRD.is_file():
        pytest.skip(f"shared SAR test data not found at {SAR_DATA}")
    return S1_GRD


@pytest.fixture(scope="session")
def chip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated chips written as GeoTIFFs in class sub-folders (MSTAR layout)."""
    from polyjepa_sar.simulate import write_chip_folder

    return write_chip_folder(tmp_path_factory.mktemp("chips"), n=40, size=32, seed=1)


@pytest.fixture(scope="session")
def scene_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated 1-look scene with a nodata border, as a georeferenced GeoTIFF."""
    from polyjepa_sar.raster import write_geotiff
    from polyjepa_sar.simulate import simulate_scene

    amp, _ = simulate_scene(160, 200, n_targets=6, seed=3)
    amp[:, :, :40] = 0.0  # no-data strip (like a GRD swath edge)
    return write_geotiff(tmp_path_factory.mktemp("scene") / "scene.tif", amp.astype(np.float32),
                         crs="EPSG:32633", bounds=(500000.0, 4000000.0, 502000.0, 4001600.0),
                         nodata=0.0, descriptions=["VV"])


@pytest.fixture
def tiny() -> dict:
    """Overrides for a tiny model (fast CPU tests)."""
    return dict(TINY)
