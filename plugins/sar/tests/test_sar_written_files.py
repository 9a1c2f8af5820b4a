"""Reader, product and recipe checks on GeoTIFFs that the fixtures write (conftest.py):
an RGB optical tile and Sentinel-1 GRD-like measurements (uint16, GCPs, zero border
fill). They need no shared data; the same paths on the shared real files are tested in
test_sar_readers.py, test_sar_products.py and test_sar_end_to_end.py."""

from __future__ import annotations

import math
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

import polyjepa
from polyjepa import testing
from polyjepa_sar.io import write_geotiff
from polyjepa_sar.products import find_scenes
from polyjepa_sar.tiles import RasterTiles


def test_optical_tiles(optical_tif: Path) -> None:
    with pytest.warns(UserWarning, match="optical"):
        ds = testing.check_dataset("sar.raster", str(optical_tif), min_items=10, tile_size=64)
    with rasterio.open(optical_tif) as src:
        h, w, crs, nodata, tr = src.height, src.width, src.crs.to_string(), src.nodata, \
            src.transform
        first = src.read(window=rasterio.windows.Window(0, 0, 64, 64))
    assert len(ds) == math.ceil(h / 64) * math.ceil(w / 64)
    item = ds[0]
    assert item["x"].shape == (3, 64, 64) and item["x"].dtype == torch.float32
    assert item["valid"].shape == (64,) and item["valid"].dtype == torch.bool
    # token validity follows the file's nodata value (255)
    pix = (first != nodata).all(axis=0).reshape(8, 8, 8, 8).mean(axis=(1, 3)) >= 0.5
    assert torch.equal(item["valid"], torch.from_numpy(pix.reshape(-1)))
    assert not bool(item["valid"].all()) and bool(item["valid"].any())
    # georeferenced tile index from the geotransform
    info = ds.index[0]
    assert info["crs"] == crs == "EPSG:4326"
    left, bottom, right, top = info["bounds"]
    assert (left, top) == (pytest.approx(tr.c), pytest.approx(tr.f))
    assert (right, bottom) == (pytest.approx(tr.c + 64 * tr.a), pytest.approx(tr.f + 64 * tr.e))
    # the last tile is aligned to the image edge
    assert (ds.index[-1]["row"], ds.index[-1]["col"]) == (h - 64, w - 64)
    assert ds.encoder_hints == {"in_chans": 3, "patch_size": 8, "ndim": 2}
    assert len(ds.state["stats"]["median"]) == 3


def test_grd_measurement_is_read_by_windows(grd_tif: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = []
    orig = rasterio.io.DatasetReader.read

    def spy(self, *args, **kwargs):
        win = kwargs.get("window")
        assert win is not None, "a whole-scene read"
        sizes.append((int(win.height), int(win.width)))
        return orig(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    with rasterio.open(grd_tif) as src:
        h, w = src.height, src.width
        assert src.dtypes[0] == "uint16" and src.gcps[0] and src.transform.is_identity
    ds = RasterTiles(grd_tif, tile_size=32, stats_tiles=3, max_tiles=5)
    assert len(ds) == 5 and ds.units == ["amplitude"] and ds.polarisations == [["VV"]]
    last = RasterTiles(grd_tif, tile_size=64, stats_tiles=1)
    assert len(last) == math.ceil(h / 64) * math.ceil(w / 64)
    item = last[len(last) - 1]  # the bottom-right tile, aligned to the image edge
    assert last.index[-1]["row"] == h - 64 and last.index[-1]["col"] == w - 64
    assert item["x"].shape == (1, 64, 64) and bool(item["valid"].all())
    assert float(item["x"].std()) > 0.1  # speckle, not a constant
    assert sizes and max(a * b for a, b in sizes) <= 64 * 64


def test_grd_gcps_and_border_fill(grd_tif: Path) -> None:
    """Tie points give the tile bounds; the zero border fill is nodata when asked."""
    ds = RasterTiles(grd_tif, tile_size=32, nodata=0)
    assert ds.index[0]["crs"] == "EPSG:4326"
    # columns 0..39 are fill: the first tile column (0..31) is dropped entirely
    assert min(t["col"] for t in ds.index) == 32
    first = ds.index[0]
    r, c = first["row"], first["col"]
    # the fixture's tie points: lon = 12.5 + col 1e-4 - row 1e-5, lat = 41.9 - row 1e-4 - col 1e-5
    left, bottom, right, top = first["bounds"]
    assert left == pytest.approx(12.5 + c * 1e-4 - (r + 32) * 1e-5)
    assert right == pytest.approx(12.5 + (c + 32) * 1e-4 - r * 1e-5)
    assert top == pytest.approx(41.9 - r * 1e-4 - c * 1e-5)
    assert bottom == pytest.approx(41.9 - (r + 32) * 1e-4 - (c + 32) * 1e-5)
    v = ds[0]["valid"].reshape(4, 4)  # columns 32..39 of this tile are fill
    assert not bool(v[:, 0].any()) and bool(v[:, 1:].all())
    assert len(RasterTiles(grd_tif, tile_size=32)) > len(ds)  # without nodata: kept


def test_safe_folder_stacks_polarisations(grd_tif: Path, grd_writer, tmp_path: Path) -> None:
    safe = tmp_path / "S1A_IW_GRDH_1SDV_20240101T000000_20240101T000025_051000_062A00_0000.SAFE"
    meas = safe / "measurement"
    meas.mkdir(parents=True)
    (safe / "manifest.safe").write_text("<xfdu:XFDU/>")
    (meas / grd_tif.name).symlink_to(grd_tif)
    with rasterio.open(grd_tif) as src:
        h, w = src.height, src.width
    vh = grd_writer(meas / grd_tif.name.replace("-vv-", "-vh-").replace("-001.", "-002."),
                    h, w, border=40, seed=5)
    write_geotiff(safe / "preview" / "quick-look.png.tif", np.zeros((3, 16, 16), np.uint8))
    scenes = find_scenes(tmp_path)  # the preview image inside the product is not a scene
    assert len(scenes) == 1 and scenes[0].path == safe and len(scenes[0].members) == 2
    ds = polyjepa.create_dataset("sar.raster", str(safe), tile_size=32)
    assert isinstance(ds, RasterTiles) and ds.in_chans == 2
    src = ds._ds(0)
    assert [src.tags(b)["POLARISATION"] for b in (1, 2)] == ["VV", "VH"]
    assert src.nodata == 0.0  # the zero border fill of GRD products is nodata
    assert min(t["col"] for t in ds.index) == 32 and ds.index[0]["crs"] == "EPSG:4326"
    assert ds.polarisations == [["VV", "VH"]]
    with rasterio.open(vh) as v:  # channel 2 holds the VH file's pixels
        raw = v.read(1, window=rasterio.windows.Window(ds.index[0]["col"], ds.index[0]["row"],
                                                       32, 32))
    alone = RasterTiles(vh, tile_size=32, nodata=0, state={"stats": {
        "median": [ds.stats["median"][1]], "scale": [ds.stats["scale"][1]]}})
    assert torch.allclose(alone[0]["x"][0], ds[0]["x"][1]) and raw.any()
    only_vh = RasterTiles(safe, tile_size=32, bands=["VH"], stats_tiles=1)
    assert only_vh.bands == [[2]] and only_vh.in_chans == 1


def test_large_scene_memory_stays_small(large_grd: Path) -> None:
    """Indexing and reading tiles of an 8,192 x 6,144 scene never allocates the scene."""
    with rasterio.open(large_grd) as src:
        h, w = src.height, src.width
    whole = h * w * 2  # bytes of the uint16 band
    tracemalloc.start()
    try:
        ds = RasterTiles(large_grd, tile_size=256, stats_tiles=4, nodata=0)
        for i in (0, len(ds) // 2, len(ds) - 1):
            item = ds[i]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the 300 fill columns drop the first tile column
    assert len(ds) == math.ceil(h / 256) * (math.ceil(w / 256) - 1)
    assert item["x"].shape == (1, 256, 256) and bool(item["valid"].all())
    assert float(item["x"].abs().max()) == 0.0  # constant pixels normalise to zero
    assert peak < whole / 20, f"peak {peak / 2**20:.1f} MiB"


def test_sar_recipe_on_grd_measurement(grd_tif: Path, tmp_path: Path, tiny: dict) -> None:
    run = testing.tiny_train("sar", str(grd_tif), tmp_path / "run", steps=3,
                             overrides={**tiny, "dataset.tile_size": 32})
    rows = [r for r in run.metrics() if "loss" in r]
    assert rows and all(np.isfinite(r["loss"]) for r in rows)
    assert run.config["target"]["encoder"]["in_chans"] == 1  # filled from the data
    enc = polyjepa.load_encoder(run.path)
    assert not any(k.startswith("target") for k in enc.state_dict())
    emb = polyjepa.embed(run.path)
    n_tiles = len(polyjepa.create_dataset("sar.raster", str(grd_tif), tile_size=32))
    assert emb.shape == (n_tiles, 2 * 16) and np.isfinite(emb).all()
    with pytest.warns(UserWarning, match="no labels"):
        metrics = polyjepa.evaluate(run.path)
    assert 1.0 <= metrics["rankme"] <= 16.0


def test_sar_recipe_on_optical_tile_without_db(optical_tif: Path, tmp_path: Path,
                                               tiny: dict, recwarn: pytest.WarningsRecorder
                                               ) -> None:
    run = testing.tiny_train("sar", str(optical_tif), tmp_path / "run", steps=2,
                             overrides={**tiny, "dataset.tile_size": 32,
                                        "dataset.transform": "none"})
    assert run.config["target"]["encoder"]["in_chans"] == 3
    assert run.config["dataset_state"]["transform"] == "none"
    emb = polyjepa.embed(run.path)
    assert emb.shape[0] == len(RasterTiles(optical_tif, tile_size=32, transform="none"))
    assert not [w for w in recwarn if "optical" in str(w.message)]
