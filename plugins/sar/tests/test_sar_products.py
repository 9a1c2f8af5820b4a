"""SAR products and reader details: Sentinel-1 SAFE folders (GRD and CInt16 SLC),
BEAM-DIMAP, COG, MSTAR Phoenix chips, GCP georeferencing and the tile-index CSV,
per-file units, nodata values, and memory use on a full-size scene."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from rasterio.control import GroundControlPoint

import polyjepa
from polyjepa_sar.bands import polarisation_of
from polyjepa_sar.chips import ChipFolder
from polyjepa_sar.io import write_geotiff
from polyjepa_sar.products import find_scenes
from polyjepa_sar.tiles import RasterTiles


def test_polarisation_from_file_name(grd_tif: Path) -> None:
    assert polarisation_of("s1b-iw-grd-vv-placeholder.tiff") == "VV"
    assert polarisation_of("Sigma0_VH.img") == "VH"
    assert polarisation_of("hh_scene.tif") == "HH"
    assert polarisation_of("vvv-scene.tif") is None
    ds = RasterTiles(grd_tif, tile_size=64, bands=["vv"], stats_tiles=1, max_tiles=2)
    assert ds.in_chans == 1 and ds.polarisations == [["VV"]]
    with pytest.raises(polyjepa.DataError, match=r"-001\.tiff: no band named 'VH'"):
        RasterTiles(grd_tif, tile_size=64, bands=["VH"], stats_tiles=1, max_tiles=2)


def _safe(root: Path, s1_grd: Path) -> Path:
    """A Sentinel-1 SAFE folder layout around the full-size placeholder measurement."""
    safe = root / "S1B_IW_GRDH_1SDV_20200101T000000_20200101T000025_000000_000000_0000.SAFE"
    (safe / "measurement").mkdir(parents=True)
    (safe / "preview").mkdir()
    (safe / "manifest.safe").write_text("<xfdu:XFDU/>")
    (safe / "measurement" / "s1b-iw-grd-vv-20200101t000000-001.tiff").symlink_to(s1_grd)
    (safe / "measurement" / "s1b-iw-grd-vh-20200101t000000-002.tiff").symlink_to(s1_grd)
    write_geotiff(safe / "preview" / "quick-look.png.tif", np.zeros((3, 16, 16), np.uint8))
    return safe


def test_sentinel1_safe_folder_stacks_polarisations(s1_grd: Path, tmp_path: Path) -> None:
    safe = _safe(tmp_path, s1_grd)
    scenes = find_scenes(tmp_path)  # the preview image inside the product is not a scene
    assert len(scenes) == 1 and scenes[0].path == safe and len(scenes[0].members) == 2
    assert find_scenes(safe / "manifest.safe")[0].path == safe
    ds = RasterTiles(tmp_path, tile_size=512, stats_tiles=1, max_tiles=3)
    assert ds.in_chans == 2 and ds.encoder_hints["in_chans"] == 2
    src = ds._ds(0)
    assert (src.width, src.height) == (25788, 16685)
    # co-polarisation first, each band named by its polarisation
    assert [src.tags(b)["POLARISATION"] for b in (1, 2)] == ["VV", "VH"]
    assert src.nodata == 0.0  # the zero border fill of GRD products is nodata
    item = ds[0]
    assert item["x"].shape == (2, 512, 512) and bool(item["valid"].all())
    # the recipe's reader sees a product, not a chip folder (measurement/ is no class)
    for d in (safe, tmp_path):
        assert isinstance(polyjepa.create_dataset("sar.raster", str(d), tile_size=512,
                                                  stats_tiles=1, max_tiles=1), RasterTiles)
    vh = RasterTiles(safe, tile_size=512, bands=["VH"], stats_tiles=1, max_tiles=3)
    assert vh.bands == [[2]] and vh.in_chans == 1
    assert len(ds.index) == len(vh.index) == 3
    assert ds.polarisations == [["VV", "VH"]]
    # products with other polarisations in the same channels are flagged
    hh = tmp_path / "S1A_EW_GRDM_1SDH_20200101T000000.SAFE"
    (hh / "measurement").mkdir(parents=True)
    (hh / "manifest.safe").write_text("<xfdu:XFDU/>")
    for pol in ("hh", "hv"):
        write_geotiff(hh / "measurement" / f"s1a-ew-grd-{pol}-001.tiff",
                      np.full((1, 64, 64), 7, np.uint16), crs=None)
    with pytest.warns(UserWarning, match=r"1SDH.*\['HH', 'HV'\].*\['VV', 'VH'\]"):
        RasterTiles([safe, hh], tile_size=64, stats_tiles=1, max_tiles=3)
    # a product without measurements is named in the error
    empty = tmp_path / "other" / "S1A_EMPTY.SAFE"
    empty.mkdir(parents=True)
    (empty / "manifest.safe").write_text("<xfdu:XFDU/>")
    with pytest.raises(polyjepa.DataError, match=r"S1A_EMPTY\.SAFE: .*measurement"):
        RasterTiles(empty)


def test_beam_dimap_product(tmp_path: Path) -> None:
    """SNAP's BEAM-DIMAP output: name.dim + name.data/<band>.img (ENVI), one band each."""
    rng = np.random.default_rng(0)
    data = tmp_path / "scene_Cal.data"
    data.mkdir()
    (tmp_path / "scene_Cal.dim").write_text("<Dimap_Document/>")
    sig = {"VV": rng.gamma(1.0, 0.1, (48, 64)), "VH": rng.gamma(1.0, 0.02, (48, 64))}
    for pol, arr in sig.items():
        with rasterio.open(data / f"Sigma0_{pol}.img", "w", driver="ENVI", width=64, height=48,
                           count=1, dtype="float32") as dst:
            dst.write(arr.astype(np.float32)[None])
    scenes = find_scenes(tmp_path)
    assert len(scenes) == 1 and scenes[0].path.name == "scene_Cal.dim"
    ds = polyjepa.create_dataset("sar.raster", str(tmp_path), tile_size=32, units="intensity")
    assert isinstance(ds, RasterTiles)
    assert ds.in_chans == 2 and ds.units == ["intensity"]
    assert list(ds._ds(0).descriptions) == ["Sigma0_VV", "Sigma0_VH"]
    assert len(ds) == 2 * 2
    one = RasterTiles(tmp_path / "scene_Cal.dim", tile_size=32, units="intensity",
                      bands=["VH"], state={"stats": {"median": [ds.stats["median"][1]],
                                                     "scale": [ds.stats["scale"][1]]}})
    assert torch.allclose(one[0]["x"][0], ds[0]["x"][1])
    # the band images are not read again as scenes of their own
    assert find_scenes(tmp_path / "scene_Cal.data")[0].path.name == "scene_Cal.dim"


def test_cloud_optimised_geotiff(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    amp = rng.gamma(1.0, 1.0, (1, 96, 96)).astype(np.float32)
    cog = tmp_path / "scene_cog.tif"
    with rasterio.open(cog, "w", driver="COG", width=96, height=96, count=1, dtype="float32",
                       crs="EPSG:32633", blocksize=32, overview_resampling="average",
                       transform=rasterio.transform.from_origin(500000, 4000000, 10, 10)) as dst:
        dst.write(amp)
    with rasterio.open(cog) as src:
        assert src.profile["tiled"] and src.overviews(1)
    plain = write_geotiff(tmp_path / "plain.tif", amp, crs="EPSG:32633",
                          bounds=(500000, 4000000 - 960, 500000 + 960, 4000000))
    a, b = RasterTiles(cog, tile_size=32), RasterTiles(plain, tile_size=32)
    assert len(a) == 9 and a.index[4]["bounds"] == b.index[4]["bounds"]
    assert a.index[0]["bounds"] == (500000.0, 4000000.0 - 320, 500000.0 + 320, 4000000.0)
    assert torch.equal(a[4]["x"], b[4]["x"])


def test_tile_index_csv_follows_dataset_order(optical_tif: Path, tmp_path: Path) -> None:
    import csv

    ds = RasterTiles(optical_tif, tile_size=64, max_tiles=7, seed=3, transform="none")
    with open(ds.write_index(tmp_path / "tiles.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(ds) == 7
    for i, r in enumerate(rows):
        t = ds.index[i]
        assert (int(r["item"]), int(r["row"]), int(r["col"])) == (i, t["row"], t["col"])
        assert r["crs"] == "EPSG:4326" and r["file"] == str(optical_tif)
        assert tuple(float(r[k]) for k in ("left", "bottom", "right", "top")) == t["bounds"]


def test_gcp_georeferenced_tile_index(tmp_path: Path) -> None:
    """Sentinel-1 measurement TIFFs carry tie points (GCPs), not a geotransform."""
    path = tmp_path / "s1a-iw-grd-vh-gcp.tiff"
    gcps = [GroundControlPoint(row=r, col=c, x=10.0 + c * 1e-3, y=50.0 - r * 1e-3)
            for r in (0, 64, 128) for c in (0, 64, 128)]
    with rasterio.open(path, "w", driver="GTiff", width=128, height=128, count=1,
                       dtype="uint16") as dst:
        dst.write(np.full((1, 128, 128), 100, np.uint16))
        dst.gcps = (gcps, rasterio.crs.CRS.from_epsg(4326))
    ds = RasterTiles(path, tile_size=64, bands=["VH"])
    assert ds.index[0]["crs"] == "EPSG:4326"
    left, bottom, right, top = ds.index[3]["bounds"]  # rows 64..128, cols 64..128
    assert (left, right) == (pytest.approx(10.064), pytest.approx(10.128))
    assert (bottom, top) == (pytest.approx(49.872), pytest.approx(49.936))


def test_units_are_decided_per_file_not_per_tile(tmp_path: Path) -> None:
    """A dB scene whose bright tile has only positive values is still read as dB."""
    rng = np.random.default_rng(2)
    db = np.concatenate([rng.uniform(-25, -5, (1, 32, 32)), rng.uniform(1, 12, (1, 32, 32))],
                        axis=2).astype(np.float32)
    path = write_geotiff(tmp_path / "db.tif", db)
    auto, explicit = RasterTiles(path, tile_size=32), RasterTiles(path, tile_size=32, units="db")
    assert auto.units == ["db"]
    for i in range(2):
        assert torch.equal(auto[i]["x"], explicit[i]["x"])
    chips = tmp_path / "chips"
    write_geotiff(chips / "dark" / "a.tif", db[:, :, :32])
    write_geotiff(chips / "bright" / "b.tif", db[:, :, 32:])
    c_auto, c_db = ChipFolder(chips, chip_size=32), ChipFolder(chips, chip_size=32, units="db")
    assert c_auto.state["units"] == "db"
    assert torch.equal(c_auto.x, c_db.x)


def test_nodata_value_option(tmp_path: Path) -> None:
    amp = np.full((1, 64, 64), 50, np.uint16)
    amp[:, :, :32] = 0  # border fill without a nodata tag, as in GRD products
    path = write_geotiff(tmp_path / "fill.tif", amp)
    assert len(RasterTiles(path, tile_size=32)) == 4
    ds = RasterTiles(path, tile_size=32, nodata=0)
    assert len(ds) == 2 and {t["col"] for t in ds.index} == {32}  # all-fill tiles dropped
    chips = tmp_path / "chips"
    write_geotiff(chips / "a" / "x.tif", amp)
    write_geotiff(chips / "b" / "y.tif", amp[:, :, ::-1].copy())
    v = ChipFolder(chips, chip_size=64, nodata=0)[0]["valid"].reshape(8, 8)
    assert not bool(v[:, :4].any()) and bool(v[:, 4:].all())


def test_full_size_scene_memory_stays_small(s1_grd: Path) -> None:
    """Indexing and reading tiles of a 25,788 x 16,685 scene never allocates the scene."""
    whole = 25788 * 16685 * 2  # bytes of the uint16 band
    tracemalloc.start()
    try:
        ds = RasterTiles(s1_grd, tile_size=256, stats_tiles=4, nodata=0)
        for i in (0, len(ds) // 2, len(ds) - 1):
            item = ds[i]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(ds) == math.ceil(16685 / 256) * math.ceil(25788 / 256)
    assert item["x"].shape == (1, 256, 256)
    assert peak < whole / 20, f"peak {peak / 2**20:.0f} MiB"


def _write_mstar(path: Path, mag: np.ndarray, phase: np.ndarray, native: int = 0) -> Path:
    """A chip in MSTAR's published Phoenix layout: ASCII header, big-endian float32
    magnitude block then phase block."""
    rows, cols = mag.shape
    lines = ["[PhoenixHeaderVer01.04]", "PhoenixHeaderLength= {:08d}",
             f"native_header_length= {native}", f"NumberOfColumns= {cols}",
             f"NumberOfRows= {rows}", "TargetType= t72", "[EndofPhoenixHeader]", ""]
    text = "\n".join(lines)
    text = text.format(len(text.format(0)))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode() + b"\0" * native + mag.astype(">f4").tobytes()
                     + phase.astype(">f4").tobytes())
    return path


def test_mstar_phoenix_chips(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    root, tif = tmp_path / "mstar", tmp_path / "tif"
    for k, cls in enumerate(("2s1", "t72")):
        for j in range(3):
            mag = rng.gamma(1.0, 0.05 * (k + 1), (36, 40)).astype(np.float32)
            phase = rng.uniform(-np.pi, np.pi, mag.shape)
            _write_mstar(root / cls / f"SN_{j % 2}" / f"HB0{k}{j}.015", mag, phase, native=j)
            write_geotiff(tif / cls / f"SN_{j % 2}" / f"c{j}.tif", mag[None], crs=None)
    # an 8-bit rendering shipped next to a Phoenix file is not a second chip
    write_geotiff(root / "t72" / "SN_0" / "HB010.JPG.png", np.zeros((1, 36, 40), np.uint8))
    ds = polyjepa.create_dataset("sar.raster", str(root), chip_size=32, patch_size=8)
    assert isinstance(ds, ChipFolder) and ds.classes == ["2s1", "t72"] and len(ds) == 6
    ref = ChipFolder(tif, chip_size=32)
    assert torch.allclose(ds.x, ref.x, atol=1e-5)
    assert torch.equal(ds.extras["y"], ref.extras["y"])
    bad = tmp_path / "bad"
    _write_mstar(bad / "a" / "x.015", np.ones((8, 8)), np.zeros((8, 8)))
    full = (bad / "a" / "x.015").read_bytes()
    (bad / "b").mkdir()
    (bad / "b" / "cut.015").write_bytes(full[: len(full) - 200])
    with pytest.raises(polyjepa.DataError, match=r"cut\.015: truncated MSTAR"):
        ChipFolder(bad, chip_size=8)


def test_slc_safe_with_complex_int16_measurements(tmp_path: Path) -> None:
    """Sentinel-1 SLC measurements are CInt16: read as amplitude, border zeros nodata."""
    safe = tmp_path / "S1A_IW_SLC__1SDV_20240101T000000.SAFE"
    (safe / "measurement").mkdir(parents=True)
    (safe / "manifest.safe").write_text("<xfdu:XFDU/>")
    rng = np.random.default_rng(4)
    amps = {}
    for pol in ("vh", "vv"):
        z = (rng.integers(1, 50, (1, 64, 64)) + 1j * rng.integers(1, 50, (1, 64, 64)))
        z[:, :, :32] = 0  # burst border fill
        amps[pol] = np.abs(z)
        with rasterio.open(safe / "measurement" / f"s1a-iw1-slc-{pol}-20240101t000000-004.tiff",
                           "w", driver="GTiff", width=64, height=64, count=1,
                           dtype="complex_int16") as dst:
            dst.write(z.astype(np.complex64))
    ds = RasterTiles(safe, tile_size=32, transform="none", state={"stats": {
        "median": [0.0, 0.0], "scale": [10.0, 10.0]}})  # |z| < 71: no clipping at 10
    assert ds.units == ["amplitude"] and [t["col"] for t in ds.index] == [32, 32]
    x = ds[0]["x"].numpy() * 10  # rows 0..31, cols 32..63; VV first
    np.testing.assert_allclose(x[0], amps["vv"][0, :32, 32:], rtol=1e-5)
    np.testing.assert_allclose(x[1], amps["vh"][0, :32, 32:], rtol=1e-5)
