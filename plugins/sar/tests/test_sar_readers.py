from __future__ import annotations

import math
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch

import polyjepa
from polyjepa import testing
from polyjepa_sar.datasets import ChipFolder, RasterTiles, open_sar
from polyjepa_sar.io import write_geotiff
from polyjepa_sar.preprocess import lee_filter, preprocess, robust_stats
from polyjepa_sar.simulate import CLASSES


def test_landsat_tiles_real_geotiff(landsat: Path) -> None:
    with pytest.warns(UserWarning, match=r"optical .*colour bands red/green/blue"):
        ds = testing.check_dataset("sar.raster", str(landsat), min_items=10, tile_size=64)
    with rasterio.open(landsat) as src:
        h, w, crs, nodata = src.height, src.width, src.crs.to_string(), src.nodata
        first = src.read(window=rasterio.windows.Window(0, 0, 64, 64))
    assert len(ds) == math.ceil(h / 64) * math.ceil(w / 64)
    item = ds[0]
    assert item["x"].shape == (3, 64, 64) and item["x"].dtype == torch.float32
    assert item["valid"].shape == (64,) and item["valid"].dtype == torch.bool
    # token validity follows the file's nodata value (255)
    pix = (first != nodata).all(axis=0).reshape(8, 8, 8, 8).mean(axis=(1, 3)) >= 0.5
    assert torch.equal(item["valid"], torch.from_numpy(pix.reshape(-1)))
    assert not bool(item["valid"].all())  # this tile has nodata pixels
    # georeferenced tile index
    info = ds.index[0]
    assert info["crs"] == crs == "EPSG:4326"
    left, bottom, _, top = info["bounds"]
    assert bottom < top
    assert left == pytest.approx(-106.0566005603556) and top == pytest.approx(40.61968153576429)
    assert ds.encoder_hints == {"in_chans": 3, "patch_size": 8, "ndim": 2}
    assert len(ds.state["stats"]["median"]) == 3


def test_state_reused_and_band_selection(optical_tif: Path) -> None:
    ds = RasterTiles(optical_tif, tile_size=64, transform="db")
    again = RasterTiles(optical_tif, tile_size=64, bands=[2], transform="db", state={"stats": {
        "median": [ds.stats["median"][1]], "scale": [ds.stats["scale"][1]]}})
    assert torch.allclose(again[5]["x"][0], ds[5]["x"][1])
    with pytest.raises(polyjepa.DataError, match="band 7"):
        RasterTiles(optical_tif, bands=[7])
    with pytest.raises(polyjepa.DataError, match="trained on 1"):
        RasterTiles(optical_tif, transform="db",
                    state={"stats": {"median": [0.0], "scale": [1.0]}})


def test_sentinel1_grd_is_read_by_windows(s1_grd: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sizes = []
    orig = rasterio.io.DatasetReader.read

    def spy(self, *args, **kwargs):
        win = kwargs.get("window")
        assert win is not None, "a whole-scene read"
        sizes.append((int(win.height), int(win.width)))
        return orig(self, *args, **kwargs)

    monkeypatch.setattr(rasterio.io.DatasetReader, "read", spy)
    ds = RasterTiles(s1_grd, tile_size=256, stats_tiles=3, max_tiles=20)
    with rasterio.open(s1_grd) as src:
        assert (src.width, src.height) == (25788, 16685)
    assert len(ds) == 20
    last = RasterTiles(s1_grd, tile_size=512, stats_tiles=1)
    assert len(last) == math.ceil(16685 / 512) * math.ceil(25788 / 512)
    item = last[len(last) - 1]  # the bottom-right tile, aligned to the image edge
    assert last.index[-1]["row"] == 16685 - 512 and last.index[-1]["col"] == 25788 - 512
    assert item["x"].shape == (1, 512, 512) and bool(item["valid"].all())
    # constant placeholder pixels normalise to zero
    assert float(item["x"].abs().max()) == 0.0
    assert sizes and max(h * w for h, w in sizes) <= 512 * 512


def test_scene_nodata_tiles_dropped_and_cache(scene_tif: Path, tmp_path: Path) -> None:
    ds = RasterTiles(scene_tif, tile_size=32, patch_size=8, cache_dir=str(tmp_path))
    # columns 0..39 are nodata: the first tile column (0..31) is dropped entirely
    assert min(t["col"] for t in ds.index) >= 32
    assert ds.index[0]["crs"] == "EPSG:32633"
    tile_32 = next(i for i, t in enumerate(ds.index) if t["col"] == 32)
    v = ds[tile_32]["valid"].reshape(4, 4)
    assert not bool(v[:, 0].any()) and bool(v[:, 1:].all())
    first = ds[3]["x"].clone()
    again = RasterTiles(scene_tif, tile_size=32, patch_size=8, cache_dir=str(tmp_path))

    def boom(i: int):
        raise AssertionError("cached tile decoded again")

    again._raw = boom  # type: ignore[method-assign]
    assert torch.equal(again[3]["x"], first)
    assert list(tmp_path.glob("sar-*.x.npy"))
    # what a data-loader worker gets: no open file handles or copied memory maps
    clone = pickle.loads(pickle.dumps(ds))
    assert clone._cache is None and not clone._handles
    clone._raw = boom  # type: ignore[method-assign]
    assert torch.equal(clone[3]["x"], first)


def test_complex_slc_and_db_inputs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    amp = rng.gamma(2.0, 0.5, size=(1, 64, 64)).astype(np.float32) + 0.01
    phase = rng.uniform(-np.pi, np.pi, size=amp.shape)
    slc = (amp * np.exp(1j * phase)).astype(np.complex64)
    a = RasterTiles(write_geotiff(tmp_path / "amp.tif", amp), tile_size=32)
    c = RasterTiles(write_geotiff(tmp_path / "slc.tif", slc), tile_size=32)
    assert torch.allclose(a[1]["x"], c[1]["x"], atol=1e-4)
    db = (20 * np.log10(amp)).astype(np.float32)  # negative values: detected as dB
    d = RasterTiles(write_geotiff(tmp_path / "db.tif", db), tile_size=32)
    assert torch.allclose(a[1]["x"], d[1]["x"], atol=1e-4)


def test_lee_filter_reduces_speckle() -> None:
    rng = np.random.default_rng(0)
    refl = np.full((1, 64, 64), 2.0, np.float32)
    inten = refl * rng.gamma(1.0, 1.0, size=refl.shape).astype(np.float32)
    out = lee_filter(inten, size=7, looks=1.0)
    assert out.std() < 0.5 * inten.std()
    assert abs(out.mean() - 2.0) < 0.15
    with pytest.raises(ValueError):
        lee_filter(inten, size=4)
    filtered = preprocess(np.sqrt(inten), units="amplitude", speckle_filter="lee")
    assert filtered.std() < preprocess(np.sqrt(inten), units="amplitude").std()
    st = robust_stats([np.zeros((2, 4, 4), np.float32)])
    assert st["scale"] == [1.0, 1.0]


def test_bad_files_raise_named_errors(optical_tif: Path, tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.tif"
    garbage.write_bytes(b"not a tiff at all" * 10)
    with pytest.raises(polyjepa.DataError, match=r"garbage\.tif"):
        RasterTiles(garbage)
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(optical_tif.read_bytes()[: optical_tif.stat().st_size // 3])
    with pytest.raises(polyjepa.DataError, match=r"truncated\.tif"):
        ds = RasterTiles(truncated, tile_size=64, stats_tiles=64, transform="none")
        for i in range(len(ds)):
            ds[i]
    with pytest.raises(polyjepa.DataError, match="no such file"):
        RasterTiles(tmp_path / "missing.tif")
    (tmp_path / "empty").mkdir()
    with pytest.raises(polyjepa.DataError, match="no raster files"):
        RasterTiles(tmp_path / "empty")
    with pytest.raises(polyjepa.DataError, match="multiple of patch_size"):
        RasterTiles(optical_tif, tile_size=60, patch_size=8)


def test_nan_pixels_are_invalid_and_all_nan_chip_fails(tmp_path: Path) -> None:
    x = np.ones((1, 32, 32), np.float32)
    x[:, :16] = np.nan
    ds = RasterTiles(write_geotiff(tmp_path / "nan.tif", x), tile_size=32)
    v = ds[0]["valid"].reshape(4, 4)
    assert not bool(v[:2].any()) and bool(v[2:].all())
    assert bool(torch.isfinite(ds[0]["x"]).all())
    bad = tmp_path / "chips"
    write_geotiff(bad / "ship" / "a.tif", np.ones((1, 32, 32), np.float32))
    write_geotiff(bad / "clutter" / "b.tif", np.full((1, 32, 32), np.nan, np.float32))
    with pytest.raises(polyjepa.DataError, match="no valid pixels"):
        ChipFolder(bad, chip_size=32)


def test_chip_folder(chip_dir: Path) -> None:
    ds = testing.check_dataset("sar.chips", str(chip_dir), min_items=40, chip_size=32)
    assert ds.classes == sorted(CLASSES)
    assert len(ds) == 40 and ds[0]["x"].shape == (1, 32, 32)
    ys = torch.stack([ds[i]["y"] for i in range(len(ds))])
    assert sorted(ys.unique().tolist()) == list(range(5))
    # files of class folder k get label k
    name = sorted(p.name for p in (chip_dir / ds.classes[2]).iterdir())[0]
    assert name.endswith(".tif")
    # the recipe's reader recognises the layout; resize mode and padding
    auto = open_sar(str(chip_dir), tile_size=64, chip_size=16, patch_size=8)
    assert isinstance(auto, ChipFolder) and auto[0]["x"].shape == (1, 16, 16)
    res = ChipFolder(chip_dir, chip_size=64, fit="resize", patch_size=8)
    assert res[0]["x"].shape == (1, 64, 64) and bool(res[0]["valid"].all())
    pad = ChipFolder(chip_dir, chip_size=48, patch_size=8)
    assert not bool(pad[0]["valid"].reshape(6, 6)[0].any())  # zero-padded border


def test_chip_folder_classes_follow_state(chip_dir: Path, tmp_path: Path) -> None:
    ds = ChipFolder(chip_dir, chip_size=32)
    sub = tmp_path / "sub"
    shutil.copytree(chip_dir / "ship", sub / "ship")
    again = ChipFolder(sub, chip_size=32, state=ds.state)
    assert int(again[0]["y"]) == ds.classes.index("ship")
    shutil.copytree(chip_dir / "ship", sub / "tank")
    with pytest.raises(polyjepa.DataError, match="tank"):
        ChipFolder(sub, chip_size=32, state=ds.state)


def test_uint16_chips(tmp_path: Path) -> None:
    from polyjepa_sar.simulate import write_chip_folder

    root = write_chip_folder(tmp_path / "u16", n=10, size=32, dtype="uint16")
    ds = ChipFolder(root, chip_size=32)
    assert len(ds) == 10 and bool(torch.isfinite(ds.x).all())


def test_polarisation_names_and_multi_scene_folder(scene_tif: Path, tmp_path: Path) -> None:
    ds = RasterTiles(scene_tif, tile_size=32, bands=["vv"])
    assert ds.in_chans == 1
    with pytest.raises(polyjepa.DataError, match="no band named 'VH'"):
        RasterTiles(scene_tif, bands=["VH"])
    folder = tmp_path / "scenes"
    folder.mkdir()
    shutil.copy(scene_tif, folder / "a.tif")
    shutil.copy(scene_tif, folder / "b.tiff")
    two = RasterTiles(folder, tile_size=32)
    assert len(two) == 2 * len(RasterTiles(scene_tif, tile_size=32))
    assert {int(two[i]["group"]) for i in range(len(two))} == {0, 1}
    write_geotiff(folder / "c.tif", np.ones((2, 32, 32), np.float32))
    with pytest.raises(polyjepa.DataError, match=r"c\.tif: 2 bands"):
        RasterTiles(folder, tile_size=32)
