"""A run's reader settings travel in its dataset state, and misspelt settings fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import polyjepa
from polyjepa import testing
from polyjepa.validation import factory_params
from polyjepa_sar.chips import ChipFolder
from polyjepa_sar.tiles import RasterTiles


def test_rebuilt_from_state_sees_the_training_tiles(grd_tif: Path, tmp_path: Path,
                                                    tiny: dict) -> None:
    """embed, evaluate and a dataset rebuilt from the run's state cut the same tiles."""
    run = testing.tiny_train("sar", str(grd_tif), tmp_path / "run", steps=2, overrides={
        **tiny, "dataset.tile_size": 16, "dataset.stride": 8, "dataset.patch_size": 4})
    state = run.config["dataset_state"]
    assert (state["tile_size"], state["stride"], state["patch_size"]) == (16, 8, 4)
    trained = RasterTiles(grd_tif, tile_size=16, stride=8, patch_size=4)
    rebuilt = polyjepa.create_dataset("sar.raster", str(grd_tif), state=state)
    assert (rebuilt.tile_size, rebuilt.stride, rebuilt.patch) == (16, 8, 4)
    assert [t["row"] for t in rebuilt.index] == [t["row"] for t in trained.index]
    assert [t["col"] for t in rebuilt.index] == [t["col"] for t in trained.index]
    assert rebuilt[0]["x"].shape == (1, 16, 16) and rebuilt[0]["valid"].shape == (16,)
    # without the state the reader's defaults give far fewer tiles
    assert len(RasterTiles(grd_tif)) < len(rebuilt)
    emb = polyjepa.embed(run.path)
    assert emb.shape[0] == len(rebuilt) == len(trained)
    again, _, _ = polyjepa.embed_dataset(polyjepa.load_encoder(run.path), rebuilt)
    np.testing.assert_allclose(again, emb, rtol=1e-5, atol=1e-6)
    with pytest.warns(UserWarning, match="no labels"):
        polyjepa.evaluate(run.path)
    with np.load(run.path / "eval" / "embeddings.npz") as f:
        assert f["embeddings"].shape[0] == len(rebuilt)
    rows = rebuilt.write_index(tmp_path / "tiles.csv").read_text().splitlines()
    assert len(rows) == 1 + emb.shape[0]


def test_state_settings_yield_to_given_ones(grd_tif: Path) -> None:
    ds = RasterTiles(grd_tif, tile_size=16, stride=8, patch_size=4, nodata=0,
                     transform="none", max_tiles=20, seed=2)
    st = ds.state
    assert (st["nodata"], st["transform"], st["max_tiles"], st["seed"]) == (0.0, "none", 20, 2)
    same = RasterTiles(grd_tif, state=st)
    assert same.index == ds.index and same.prep_kw == ds.prep_kw
    assert torch.equal(same[3]["x"], ds[3]["x"])
    # a tile size given explicitly wins, and the run's overlap no longer applies to it
    bigger = RasterTiles(grd_tif, tile_size=32, max_tiles=None, state=st)
    assert (bigger.tile_size, bigger.stride, bigger.patch, len(bigger)) == (32, 32, 4, 20)
    # a state from before the settings were kept: the reader's defaults
    old = RasterTiles(grd_tif, state={"stats": ds.stats, "bands": 1})
    assert (old.tile_size, old.stride, old.patch) == (64, 64, 8)


def test_chip_state_keeps_chip_size_and_fit(chip_dir: Path) -> None:
    ds = ChipFolder(chip_dir, chip_size=16, fit="resize", patch_size=4)
    again = polyjepa.create_dataset("sar.raster", str(chip_dir), state=ds.state)
    assert isinstance(again, ChipFolder) and again.x.shape[-2:] == (16, 16)
    assert torch.equal(again.x, ds.x)
    assert again.encoder_hints["patch_size"] == 4


def test_sar_factories_declare_their_arguments() -> None:
    """No catch-all: a setting a factory does not take is an error, not ignored."""
    for kind, names in (("encoders", ("sar.vit", "sar.gradient_target")),
                        ("datasets", ("sar.raster", "sar.chips", "sar.simulated"))):
        for name in names:
            assert factory_params(kind, name)[1] is False, name


def test_open_sar_takes_every_setting_of_both_readers() -> None:
    """``sar.raster`` forwards by the readers' signatures: a setting either reader takes
    is one it takes too (so it is never reported as misspelt)."""
    import inspect

    from polyjepa_sar.datasets import open_sar

    mine = set(inspect.signature(open_sar).parameters)
    for reader in (RasterTiles, ChipFolder):
        assert set(inspect.signature(reader).parameters) <= mine, reader.__name__


@pytest.mark.parametrize(("key", "hint"), [
    ("encoder.depht", "depth"), ("dataset.tile_sise", "tile_size"),
    ("dataset.strid", "stride"), ("target.encoder.num_bin", "num_bins")])
def test_misspelt_settings_are_named(grd_tif: Path, key: str, hint: str) -> None:
    with pytest.raises(polyjepa.ConfigError, match=hint):
        polyjepa.resolve_config("sar", str(grd_tif), overrides={key: 3})


def test_settings_of_another_reader_and_wrong_types_fail(grd_tif: Path) -> None:
    with pytest.raises(polyjepa.ConfigError, match="tile_size"):
        polyjepa.resolve_config("sar", None, overrides={"dataset.name": "sar.simulated",
                                                        "dataset.tile_size": 32})
    # switching the recipe's reader leaves nothing it does not take behind
    cfg = polyjepa.resolve_config("sar", None, overrides={"dataset.name": "sar.simulated"})
    assert cfg["dataset"]["name"] == "sar.simulated"
    with pytest.raises(polyjepa.ConfigError, match="tile_size.*whole number"):
        polyjepa.create_dataset("sar.raster", str(grd_tif), tile_size="big")
    with pytest.raises(polyjepa.ConfigError, match="max_tiles.*not a number"):
        polyjepa.create_dataset("sar.raster", str(grd_tif), max_tiles="all")
