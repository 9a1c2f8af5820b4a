"""The dataset factories the plugin registers: ``sar.raster`` (:func:`open_sar`),
``sar.chips`` (:class:`ChipFolder`) and ``sar.simulated`` (:func:`simulated_chips`)."""

from __future__ import annotations

import inspect
import os
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import ArrayDataset, DataError

from .chips import ChipFolder, looks_like_chips
from .preprocess import normalize, robust_stats, to_db
from .simulate import CLASSES, simulate_chips
from .tiles import RasterTiles

__all__ = ["ChipFolder", "RasterTiles", "open_sar", "simulated_chips"]


def _taken(reader: Any, settings: dict[str, Any]) -> dict[str, Any]:
    """The ``settings`` that ``reader``'s signature names (the others belong to the other
    reader: chip sizes for scenes, tiling for chip folders)."""
    params = inspect.signature(reader).parameters
    return {k: v for k, v in settings.items() if k in params}


def open_sar(data: Any = None, tile_size: int | None = None, stride: int | None = None,
             chip_size: int | None = None, fit: str | None = None, bands: Any = None,
             units: str | None = None, transform: str | None = None,
             speckle_filter: str | None = None, filter_size: int | None = None,
             looks: float | None = None, patch_size: int | None = None,
             min_valid: float | None = None, min_tile_valid: float | None = None,
             max_tiles: int | None = None, stats_tiles: int = 32, seed: int | None = None,
             cache_dir: str | None = None, nodata: float | None = None,
             state: dict[str, Any] | None = None) -> RasterTiles | ChipFolder:
    """SAR data of any supported layout: a chip folder (class sub-folders) or scenes.

    Takes the settings of both readers, so one config serves either layout; each reader
    receives the ones its signature names (scene-only arguments such as ``tile_size`` and
    ``stride`` are ignored for chip folders, chip-only ones such as ``chip_size`` and
    ``fit`` for scenes); see :class:`RasterTiles` and :class:`ChipFolder`.
    """
    given = dict(locals())  # the arguments, before any other name is bound
    del given["data"]
    if data is None:
        raise DataError("sar: no data given (a GeoTIFF, a folder of scenes, or a chip folder "
                        "with class sub-folders); `polyjepa demo sar` uses simulated data")
    chips = isinstance(data, (str, os.PathLike)) and looks_like_chips(Path(data))
    reader = ChipFolder if chips else RasterTiles
    return reader(data, **_taken(reader, given))


def simulated_chips(data: Any = None, n: int = 600, size: int = 64, looks: float = 1.0,
                    seed: int = 0, patch_size: int = 8,
                    state: dict[str, Any] | None = None) -> ArrayDataset:
    """SIMULATED labelled target chips, in dB and robustly normalised (the demo data).

    ``data`` may be ``None`` or a dict overriding ``n``, ``size``, ``looks``, ``seed``.
    """
    if isinstance(data, dict):
        n = int(data.get("n", n))
        size = int(data.get("size", size))
        looks = float(data.get("looks", looks))
        seed = int(data.get("seed", seed))
    elif data is not None:
        raise ValueError("sar.simulated takes data=None or a dict of simulator settings; "
                         "use sar.raster / sar.chips for files")
    chips, labels = simulate_chips(n, size, looks, seed)
    db = np.stack([to_db(c, "amplitude") for c in chips])
    stats = state["stats"] if state and "stats" in state else robust_stats(list(db))
    x = np.stack([normalize(c, stats) for c in db])
    ds = ArrayDataset(x, labels, source=f"<simulated SAR chips n={n} L={looks}>")
    ds.state = {"stats": stats, "classes": list(CLASSES), "simulated": True}
    ds.encoder_hints = {"in_chans": 1, "patch_size": int(patch_size), "ndim": 2}
    ds.classes = list(CLASSES)
    return ds
