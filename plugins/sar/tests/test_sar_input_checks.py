"""Inputs the readers must not take silently: optical images given the radar dB
transform, and truncated GeoTIFFs (at open time and at read time)."""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

import polyjepa
from polyjepa_sar.chips import ChipFolder
from polyjepa_sar.io import write_geotiff
from polyjepa_sar.tiles import RasterTiles


def _optical_warnings(fn, *args, **kwargs) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        fn(*args, **kwargs)
    return [w for w in seen if "optical" in str(w.message)]


def test_optical_geotiff_warns_once_with_the_setting(optical_tif: Path, tmp_path: Path) -> None:
    folder = tmp_path / "rgb"
    folder.mkdir()
    shutil.copy(optical_tif, folder / "a.tif")
    shutil.copy(optical_tif, folder / "b.tif")
    seen = _optical_warnings(RasterTiles, folder, tile_size=64)
    assert len(seen) == 1  # once for the dataset, not per file or tile
    msg = str(seen[0].message)
    assert "a.tif (and 1 other file)" in msg and "colour bands red/green/blue" in msg
    assert "transform='none'" in msg and "dataset.transform=none" in msg and "\n" not in msg
    # attributed to the user's call, however deep the reader sits
    seen = _optical_warnings(polyjepa.create_dataset, "sar.raster", str(optical_tif))
    assert len(seen) == 1 and seen[0].filename == __file__


def test_optical_warning_is_silenced_by_a_chosen_transform(optical_tif: Path,
                                                          grd_tif: Path) -> None:
    assert not _optical_warnings(RasterTiles, optical_tif, transform="db")
    assert not _optical_warnings(RasterTiles, grd_tif)  # radar: no warning
    lin = RasterTiles(optical_tif, tile_size=64, transform="none")
    # a run rebuilt from its state does not warn again
    assert not _optical_warnings(RasterTiles, optical_tif, state=lin.state)
    # transform="none" keeps digital numbers linear: (DN - median) / scale
    t = lin.index[5]
    with rasterio.open(optical_tif) as src:
        dn = src.read(window=rasterio.windows.Window(t["col"], t["row"], 64, 64))
    med = np.asarray(lin.stats["median"], np.float32)[:, None, None]
    sc = np.asarray(lin.stats["scale"], np.float32)[:, None, None]
    np.testing.assert_allclose(lin[5]["x"].numpy(), np.clip((dn - med) / sc, -10, 10),
                               rtol=1e-5, atol=1e-5)
    assert lin.stats["median"][0] > 50  # DN, not dB of DN (about 42 dB for DN 128)


@pytest.mark.parametrize(("array", "descriptions", "reason"), [
    (np.ones((3, 32, 32), np.float32), ["Red", "Green", "Blue"],
     "described as red, green, blue"),
    (np.ones((4, 32, 32), np.float32), None, "4 bands without polarisation names"),
    (np.ones((1, 32, 32), np.uint8), None, "8-bit pixels"),
])
def test_optical_hints(tmp_path: Path, array: np.ndarray, descriptions: list | None,
                       reason: str) -> None:
    path = write_geotiff(tmp_path / "img.tif", array, descriptions=descriptions)
    seen = _optical_warnings(RasterTiles, path, tile_size=32)
    assert len(seen) == 1 and reason in str(seen[0].message)


def test_radar_bands_are_not_optical(tmp_path: Path) -> None:
    dual = write_geotiff(tmp_path / "dual.tif", np.ones((2, 32, 32), np.float32),
                         descriptions=["VV", "VH"])
    assert not _optical_warnings(RasterTiles, dual, tile_size=32)
    # 8-bit pixels are radar when the bands name their polarisation
    quad = write_geotiff(tmp_path / "quad.tif", np.ones((4, 32, 32), np.uint8),
                         descriptions=["HH", "HV", "VH", "VV"])
    assert not _optical_warnings(RasterTiles, quad, tile_size=32)
    assert not _optical_warnings(RasterTiles, dual, tile_size=32, bands=["VH"])


def test_optical_chips_warn_once(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for cls in ("car", "ship"):
        for i in range(3):
            write_geotiff(tmp_path / cls / f"{i}.tif",
                          rng.integers(0, 255, (3, 16, 16)).astype(np.uint8), crs=None)
    seen = _optical_warnings(ChipFolder, tmp_path, chip_size=16)
    assert len(seen) == 1 and "(and 5 other files)" in str(seen[0].message)
    assert not _optical_warnings(ChipFolder, tmp_path, chip_size=16, transform="none")


# -- truncated files ---------------------------------------------------------------------

def _tiled(path: Path, directory_last: bool) -> Path:
    """An uncompressed 128 x 128 uint16 GeoTIFF in 32 x 32 blocks; with
    ``directory_last`` its image directory (the TIFF header tags) follows the pixels, as
    when tags are added after writing."""
    rng = np.random.default_rng(1)
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=1,
                       dtype="uint16", tiled=True, blockxsize=32, blockysize=32,
                       crs="EPSG:32633",
                       transform=rasterio.transform.from_origin(5e5, 4e6, 10, 10)) as dst:
        dst.write(rng.integers(1, 1000, (1, 128, 128)).astype(np.uint16))
    if directory_last:
        with rasterio.open(path, "r+") as dst:
            dst.update_tags(PRODUCT="x" * 200)
    return path


def _half(path: Path) -> Path:
    out = path.with_name(path.stem + "-half.tif")
    out.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return out


def _one_line(exc: pytest.ExceptionInfo, name: str) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and msg.count(name) == 1, msg
    assert "See previous exception" not in msg, msg
    return msg


def test_truncated_geotiff_at_open_time(tmp_path: Path) -> None:
    half = _half(_tiled(tmp_path / "late.tif", directory_last=True))
    with pytest.raises(polyjepa.DataError) as exc:
        RasterTiles(half)
    msg = _one_line(exc, "late-half.tif")
    assert "cannot open" in msg and "TIFFReadDirectory" in msg


def test_truncated_geotiff_at_read_time(tmp_path: Path) -> None:
    half = _half(_tiled(tmp_path / "early.tif", directory_last=False))
    with rasterio.open(half):
        pass  # the header is intact: the file opens
    with pytest.raises(polyjepa.DataError) as exc:  # the statistics read every tile
        RasterTiles(half, tile_size=32, stats_tiles=16)
    msg = _one_line(exc, "early-half.tif")
    assert "cannot read rows" in msg and "Read error" in msg and "bytes" in msg
    # with a run's statistics nothing is read up front: the first tiles are intact and
    # the later ones fail when they are read
    ds = RasterTiles(half, tile_size=32, state={"stats": {"median": [50.0], "scale": [5.0]}})
    assert torch.isfinite(ds[0]["x"]).all()
    with pytest.raises(polyjepa.DataError) as exc:
        ds[len(ds) - 1]
    msg = _one_line(exc, "early-half.tif")
    assert "rows 96-128, columns 96-128" in msg and "Read error" in msg
    # a truncated chip in a chip folder is named the same way
    chips = tmp_path / "chips"
    (chips / "a").mkdir(parents=True)
    (chips / "b").mkdir()
    shutil.copy(half, chips / "a" / "cut.tif")
    write_geotiff(chips / "b" / "fine.tif", np.ones((1, 32, 32), np.float32))
    with pytest.raises(polyjepa.DataError) as exc:
        ChipFolder(chips, chip_size=32)
    assert "Read error" in _one_line(exc, "cut.tif")
