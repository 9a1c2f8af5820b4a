from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from polyjepa.testing import shared_data_or_skip

LANDSAT = ("sar", "landsat-rgb-rmnp.tif")
S1_GRD = ("sar", "s1b-iw-grd-vv-placeholder.tiff")

OPTICAL_SHAPE = (173, 221)                 # (height, width): not a multiple of the tiles
OPTICAL_ORIGIN = (-105.9, 40.45)            # west, north
GRD_SHAPE = (150, 230)
GRD_BORDER = 40                             # zero-filled swath-edge columns
GRD_NAME = "s1a-iw-grd-vv-20240101t000000-20240101t000025-051000-062a00-001.tiff"
GRD_LON, GRD_LAT = 12.5, 41.9

TINY = {"encoder.embed_dim": 16, "encoder.depth": 1, "encoder.num_heads": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}


# Files written in the formats the readers meet (fresh clone: no shared data needed)

def _smooth_field(rng: np.random.Generator, h: int, w: int, cell: int = 16) -> np.ndarray:
    """A smooth random field in [0, 1]: bilinear up-sampling of coarse noise."""
    coarse = rng.uniform(size=(h // cell + 2, w // cell + 2))
    y, x = np.linspace(0, h / cell, h), np.linspace(0, w / cell, w)
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    c = coarse
    return ((1 - fy) * (1 - fx) * c[y0][:, x0] + (1 - fy) * fx * c[y0][:, x0 + 1]
            + fy * (1 - fx) * c[y0 + 1][:, x0] + fy * fx * c[y0 + 1][:, x0 + 1])


@pytest.fixture(scope="session")
def optical_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 3-band uint8 RGB GeoTIFF in EPSG:4326 with nodata 255 in its top-left corner,
    striped and LZW-compressed like a Landsat RGB export (photometric RGB)."""
    import rasterio
    from rasterio.transform import from_origin

    rng = np.random.default_rng(11)
    h, w = OPTICAL_SHAPE
    rgb = np.stack([_smooth_field(rng, h, w) * 200 + rng.uniform(0, 50, (h, w))
                    for _ in range(3)]).astype(np.uint8)  # 0..250: 255 stays nodata only
    rgb[:, :20, :30] = 255
    path = tmp_path_factory.mktemp("optical") / "optical-rgb.tif"
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=3, dtype="uint8",
                       crs="EPSG:4326", transform=from_origin(*OPTICAL_ORIGIN, 0.0015, 0.0015),
                       nodata=255, compress="lzw", blockysize=5, photometric="RGB") as dst:
        dst.write(rgb)
    return path


def _gcps(h: int, w: int) -> list:
    """Tie points of a slightly rotated swath (lon/lat), as Sentinel-1 measurements carry."""
    from rasterio.control import GroundControlPoint

    return [GroundControlPoint(row=float(r), col=float(c), x=GRD_LON + c * 1e-4 - r * 1e-5,
                               y=GRD_LAT - r * 1e-4 - c * 1e-5, z=0.0)
            for r in np.linspace(0, h, 5) for c in np.linspace(0, w, 6)]


def write_grd(path: Path, h: int, w: int, border: int, seed: int = 0,
              constant: int | None = None, rows_per_write: int = 512) -> Path:
    """A Sentinel-1 GRD-like measurement TIFF: uint16 amplitude (speckled, or
    ``constant``), a zero border fill of ``border`` columns without a nodata tag, GCPs and
    no geotransform, one-row ZSTD strips. Written in row blocks (large sizes stay cheap)."""
    import rasterio
    from rasterio.crs import CRS
    from rasterio.windows import Window

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # radar geometry: tie points instead of a geotransform
        warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=1,
                           dtype="uint16", compress="zstd", blockysize=1) as dst:
            dst.gcps = (_gcps(h, w), CRS.from_epsg(4326))
            dst.update_tags(TIFFTAG_IMAGEDESCRIPTION="Sentinel-1A IW GRD HR L1",
                            TIFFTAG_SOFTWARE="Sentinel-1 IPF 003.71")
            for r0 in range(0, h, rows_per_write):
                n = min(rows_per_write, h - r0)
                if constant is None:
                    refl = 0.05 + _smooth_field(rng, n, w)
                    amp = np.sqrt(refl * rng.gamma(1.0, 1.0, (n, w))) * 300
                    block = np.clip(amp, 1, 65535).astype(np.uint16)
                else:
                    block = np.full((n, w), constant, np.uint16)
                block[:, :border] = 0
                dst.write(block[None], window=Window(0, r0, w, n))
    return path


@pytest.fixture(scope="session")
def grd_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small speckled GRD-like VV measurement (see :func:`write_grd`)."""
    h, w = GRD_SHAPE
    return write_grd(tmp_path_factory.mktemp("grd") / GRD_NAME, h, w, GRD_BORDER)


@pytest.fixture(scope="session")
def large_grd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An 8,192 x 6,144 GRD-like measurement (96 MiB of pixels, 0.2 MiB on disk)."""
    return write_grd(tmp_path_factory.mktemp("large") / "s1a-iw-grd-vv-large-001.tiff",
                     6144, 8192, border=300, constant=77)


@pytest.fixture(scope="session")
def landsat() -> Path:
    """The real 3-band Landsat RGB GeoTIFF of the shared data (skips without it)."""
    return shared_data_or_skip(*LANDSAT)


@pytest.fixture(scope="session")
def s1_grd() -> Path:
    """The full-size Sentinel-1 GRD measurement of the shared data (skips without it)."""
    return shared_data_or_skip(*S1_GRD)


@pytest.fixture(scope="session")
def chip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Simulated chips written as GeoTIFFs in class sub-folders (MSTAR layout)."""
    from polyjepa_sar.simulate import write_chip_folder

    return write_chip_folder(tmp_path_factory.mktemp("chips"), n=40, size=32, seed=1)


@pytest.fixture(scope="session")
def scene_tif(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A simulated 1-look scene with a nodata border, as a georeferenced GeoTIFF."""
    from polyjepa_sar.io import write_geotiff
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


@pytest.fixture(scope="session")
def grd_writer() -> object:
    """:func:`write_grd`, for tests that build products out of several measurements."""
    return write_grd
