"""Chip folders: labelled chips in one sub-folder per class (MSTAR, OpenSARShip).

:class:`ChipFolder` reads every chip whole (chips are small), converts it like a tile
(dB, robust per-band normalisation, invalid tokens where pixels are mostly nodata) and
brings it to one ``chip_size`` by centre crop / zero pad or by resizing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyjepa import ArrayDataset, DataError
from polyjepa import warn as warn_user

from . import settings
from .bands import band_polarisations, select_bands
from .io import is_raster, open_raster, read_window
from .optical import optical_reason, optical_warning
from .preprocess import UNITS, normalize, prepare, robust_stats, token_valid
from .products import PREVIEWS, MstarBands, is_mstar, is_product, read_mstar


def is_chip(path: Path) -> bool:
    """A chip file: any raster GDAL reads, or an MSTAR Phoenix-format file."""
    return is_raster(path) or is_mstar(path)


def looks_like_chips(path: Path) -> bool:
    """A folder of class sub-folders holding chips (not scenes or products)."""
    if not path.is_dir() or is_product(path):
        return False
    if any(is_chip(p) or is_product(p) for p in path.iterdir()):
        return False
    subdirs = [d for d in path.iterdir() if d.is_dir() and not is_product(d)]
    # chips directly in class folders, or MSTAR files at any depth (T72/SN_132/HB03333.015)
    return any(any(is_chip(p) for p in d.iterdir()) for d in subdirs) or \
        any(is_mstar(p) for d in subdirs for p in d.rglob("*"))


def fit_chip(x: np.ndarray, valid: np.ndarray, size: int, mode: str
             ) -> tuple[np.ndarray, np.ndarray]:
    """Centre crop / zero pad (``crop``) or bilinear resize (``resize``) to ``size``."""
    if mode == "resize":
        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))[None]
        t = torch.nn.functional.interpolate(t, size=(size, size), mode="bilinear",
                                            align_corners=False)[0]
        v = torch.from_numpy(valid.astype(np.float32))[None, None]
        v = torch.nn.functional.interpolate(v, size=(size, size), mode="nearest")[0, 0]
        return t.numpy(), v.numpy() > 0.5
    if mode != "crop":
        raise DataError(f"chip fit must be 'crop' or 'resize', got {mode!r}")
    c, h, w = x.shape
    out = np.zeros((c, size, size), np.float32)
    ov = np.zeros((size, size), bool)
    sy, sx = max(0, (h - size) // 2), max(0, (w - size) // 2)
    dy, dx = max(0, (size - h) // 2), max(0, (size - w) // 2)
    hh, ww = min(h, size), min(w, size)
    out[:, dy:dy + hh, dx:dx + ww] = x[:, sy:sy + hh, sx:sx + ww]
    ov[dy:dy + hh, dx:dx + ww] = valid[sy:sy + hh, sx:sx + ww]
    return out, ov


@dataclass
class Chips:
    """The chips of a folder as read: raw band values, pixel validity, class names."""

    paths: list[Path] = field(default_factory=list)
    arrays: list[np.ndarray] = field(default_factory=list)
    valid: list[np.ndarray] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    n_chans: int | None = None
    optical: list[tuple[Path, str]] = field(default_factory=list)

    def add(self, path: Path, x: np.ndarray, valid: np.ndarray, name: str) -> None:
        """Append one chip of ``len(x)`` bands; every chip has the same band count."""
        if self.n_chans is not None and len(x) != self.n_chans:
            raise DataError(f"{path}: {len(x)} band{'s' if len(x) > 1 else ''}, other "
                            f"chips have {self.n_chans}")
        self.n_chans = len(x)
        self.paths.append(path)
        self.arrays.append(x)
        self.valid.append(valid)
        self.classes.append(name)


def find_chips(root: Path, state: dict[str, Any] | None
               ) -> tuple[list[str], dict[str, list[Path]]]:
    """The class names (the run's, from ``state``, else the sorted sub-folders) and the
    chip files of each class found under ``root``.

    MSTAR releases ship 8-bit renderings beside the Phoenix files: those are skipped.
    """
    found = sorted(d.name for d in root.iterdir()
                   if d.is_dir() and any(is_chip(p) for p in d.rglob("*")))
    if not found:
        raise DataError(f"{root}: no class sub-folders holding raster chips")
    classes = list(state["classes"]) if state and "classes" in state else found
    unknown = sorted(set(found) - set(classes))
    if unknown:
        raise DataError(f"{root}: classes {unknown} were not in the training data "
                        f"{classes}")
    files = {name: sorted(p for p in (root / name).rglob("*") if is_chip(p))
             for name in found}
    if any(not is_raster(p) for ps in files.values() for p in ps):
        files = {k: [p for p in ps if p.suffix.lower() not in PREVIEWS]
                 for k, ps in files.items()}
    return classes, files


def read_chips(files: dict[str, list[Path]], bands: Any, nodata: float | None) -> Chips:
    """Every chip whole, with its validity; GDAL rasters that look optical are noted."""
    chips = Chips()
    for name, paths in files.items():
        for path in paths:
            if not is_raster(path):  # MSTAR Phoenix-format chip
                amp, _ = read_mstar(path)
                select_bands(MstarBands(), bands, path)  # checks the selection
                valid = np.isfinite(amp[0])
                if nodata is not None:
                    valid &= amp[0] != nodata
                chips.add(path, amp, valid, name)
                continue
            with open_raster(path) as ds:
                b = select_bands(ds, bands, path)
                if chips.n_chans is not None and len(b) != chips.n_chans:
                    raise DataError(f"{path}: {len(b)} bands, other chips have "
                                    f"{chips.n_chans}")
                x, valid = read_window(ds, path, b, None, (ds.height, ds.width), nodata)
                chips.add(path, x, valid, name)
                reason = optical_reason(ds, b, band_polarisations(ds, b, path))
                if reason:
                    chips.optical.append((path, reason))
    return chips


def folder_units(chips: Chips) -> str:
    """``auto`` units decided once for the whole folder, never chip by chip: dB when a
    real-valued chip holds negative valid values, else amplitude."""
    neg = any(not np.iscomplexobj(x) and bool((x[:, v] < 0).any())
              for x, v in zip(chips.arrays, chips.valid))
    return "db" if neg else "amplitude"


def fit_chips(chips: Chips, prep_kw: dict[str, Any], size: int, mode: str
              ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The chips pre-processed (dB, speckle filter) and brought to ``size``."""
    xs, vs = [], []
    for path, x, valid in zip(chips.paths, chips.arrays, chips.valid):
        try:
            x = prepare(x, valid, prep_kw)
        except ValueError as exc:
            raise DataError(f"{path}: {exc}") from exc
        x, valid = fit_chip(x, valid, size, mode)
        xs.append(x)
        vs.append(valid)
    return xs, vs


class ChipFolder(ArrayDataset):
    """Labelled chips in class sub-folders: ``root/<class>/**/<chip>`` (MSTAR/OpenSARShip).

    Chips are read with rasterio (any GDAL format) or, for MSTAR's Phoenix-format files
    (``HB03333.015``; JPEG renderings beside them are then skipped), by
    :func:`~polyjepa_sar.products.read_mstar`; converted to dB (``units`` decided once
    for the folder), centre-cropped or zero-padded (``fit="crop"``) or resized
    (``fit="resize"``) to ``chip_size``, and normalised per band. ``state`` keeps the
    class names, the statistics and the settings (chip size, fit, patch size, units, ...)
    so that new data gets the same label numbering and pre-processing; settings left at
    ``None`` come from it, else from the defaults (64 px chips, ``fit="crop"``, patch 8,
    as for :class:`~polyjepa_sar.tiles.RasterTiles`).
    """

    def __init__(self, data: Any = None, chip_size: int | None = None, fit: str | None = None,
                 bands: Any = None, units: str | None = None, transform: str | None = None,
                 speckle_filter: str | None = None, filter_size: int | None = None,
                 looks: float | None = None, patch_size: int | None = None,
                 min_valid: float | None = None, nodata: float | None = None,
                 state: dict[str, Any] | None = None):
        cfg = settings.resolve({"chip_size": chip_size, "fit": fit, "patch_size": patch_size,
                                "units": units, "transform": transform,
                                "speckle_filter": speckle_filter, "filter_size": filter_size,
                                "looks": looks, "min_valid": min_valid, "nodata": nodata,
                                "band_selection": bands}, state, settings.CHIP)
        chip_size, patch_size = int(cfg["chip_size"]), int(cfg["patch_size"])
        root = _chip_root(data, chip_size, patch_size)
        classes, files = find_chips(root, state)
        prep_kw = {k: cfg[k] for k in settings.PREP}
        if prep_kw["units"] not in UNITS:
            raise DataError(f"units must be one of {UNITS}, got {prep_kw['units']!r}")
        chips = read_chips(files, cfg["band_selection"], cfg["nodata"])
        if chips.optical and transform is None and not (state and state.get("transform")) \
                and prep_kw["transform"] == "db":
            warn_user(optical_warning(chips.optical[0][0], chips.optical[0][1],
                                      len(chips.optical) - 1))
        if prep_kw["units"] == "auto":
            prep_kw["units"] = folder_units(chips)
        xs, vs = fit_chips(chips, prep_kw, chip_size, cfg["fit"])
        stats = _stats(root, xs, vs, chips.n_chans, state)
        x = np.stack([np.where(v[None], normalize(a, stats), 0.0) for a, v in zip(xs, vs)])
        tv = np.stack([token_valid(v, patch_size, float(cfg["min_valid"])) for v in vs])
        if not tv.any(axis=1).all():
            bad = int(np.nonzero(~tv.any(axis=1))[0][0])
            raise DataError(f"{root}: chip {bad} has no valid pixels")
        labels = np.asarray([classes.index(name) for name in chips.classes], np.int64)
        super().__init__(x.astype(np.float32), labels, tv, source=str(root))
        self.classes = classes
        self.state = {"classes": classes, "stats": stats, **cfg, **prep_kw,
                      "chip_size": chip_size, "patch_size": patch_size}
        self.encoder_hints = {"in_chans": int(chips.n_chans), "patch_size": int(patch_size),
                              "ndim": 2}


def _chip_root(data: Any, chip_size: int, patch_size: int) -> Path:
    """The folder ``data`` names, checked to exist and to suit the chip and patch sizes."""
    if data is None:
        raise DataError("the SAR chip reader needs a folder with one sub-folder per class")
    root = Path(data)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected <root>/<class>/<chips>)")
    if chip_size % patch_size:
        raise DataError(f"chip_size {chip_size} must be a multiple of patch_size {patch_size}")
    return root


def _stats(root: Path, xs: list[np.ndarray], vs: list[np.ndarray], n_chans: int | None,
           state: dict[str, Any] | None) -> dict[str, list[float]]:
    """The run's normalisation statistics (for as many bands), else the folder's own."""
    if state and "stats" in state:
        stats = state["stats"]
        if len(stats["median"]) != n_chans:
            raise DataError(f"{root}: {n_chans} bands, the run was trained on "
                            f"{len(stats['median'])}")
        return stats
    return robust_stats(xs, vs)
