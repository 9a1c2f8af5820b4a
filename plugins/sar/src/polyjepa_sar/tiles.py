"""Scenes cut into tiles read window by window, with a georeferenced tile index.

:class:`RasterTiles` cuts one or more scenes (:mod:`~polyjepa_sar.products`) into
``tile_size`` tiles read through rasterio windows, so a 25,000 x 17,000 Sentinel-1 scene
is never loaded whole; only single tiles and a decimated nodata mask are held in memory.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyjepa import DataError
from polyjepa import warn as warn_user

from . import settings
from .bands import band_polarisations, select_bands
from .io import gdal_cause, open_raster, quiet, rasterio_module, read_window
from .optical import optical_reason, optical_warning
from .preprocess import UNITS, normalize, prepare, robust_stats, token_valid
from .products import find_scenes, stack_vrt


def _georef(ds: Any) -> tuple[Any, str | None]:
    """``(pixel -> map function, CRS string)``: the geotransform, or the GCPs of
    products that ship tie points instead (Sentinel-1 GRD/SLC measurement TIFFs)."""
    gcps, gcp_crs = ds.gcps
    tr = ds.transform
    if gcps and tr.is_identity:
        from rasterio.transform import GCPTransformer

        gt = GCPTransformer(gcps)

        def to_map(rows: list[float], cols: list[float]) -> tuple[list[float], list[float]]:
            xs, ys = gt.xy(rows, cols, offset="ul")
            return list(np.atleast_1d(xs)), list(np.atleast_1d(ys))

        return to_map, gcp_crs.to_string() if gcp_crs else None

    def affine(rows: list[float], cols: list[float]) -> tuple[list[float], list[float]]:
        return ([tr.a * c + tr.b * r + tr.c for r, c in zip(rows, cols)],
                [tr.d * c + tr.e * r + tr.f for r, c in zip(rows, cols)])

    return affine, ds.crs.to_string() if ds.crs else None


def _bounds(to_map: Any, rows: list[int], cols: list[int], size: int
            ) -> list[tuple[float, float, float, float]]:
    """``(left, bottom, right, top)`` in map units of ``size`` tiles at ``(rows, cols)``."""
    if not rows:
        return []
    r = np.repeat(np.asarray(rows, np.float64), 4) + np.tile([0, size, 0, size], len(rows))
    c = np.repeat(np.asarray(cols, np.float64), 4) + np.tile([0, 0, size, size], len(cols))
    xs, ys = to_map(r.tolist(), c.tolist())
    xs = np.asarray(xs, np.float64).reshape(-1, 4)
    ys = np.asarray(ys, np.float64).reshape(-1, 4)
    return [(float(a), float(b), float(c_), float(d)) for a, b, c_, d in
            zip(xs.min(1), ys.min(1), xs.max(1), ys.max(1))]


def _resolve_units(ds: Any, bands: list[int], units: str, path: Path,
                   nodata: float | None = None) -> str:
    """The units of a whole file, decided once (never tile by tile).

    ``auto``: complex and unsigned-integer data are amplitude; float or signed data are
    dB when a decimated read (at most 512 x 512) holds negative valid values.
    """
    if units != "auto":
        return units
    kinds = {str(ds.dtypes[b - 1]) for b in bands}
    if any(k.startswith("complex") for k in kinds) or all(k.startswith("uint") for k in kinds):
        return "amplitude"
    step = max(1, math.ceil(max(ds.height, ds.width) / 512))
    shape = (len(bands), max(1, ds.height // step), max(1, ds.width // step))
    try:
        with quiet():
            x = ds.read(bands, out_shape=shape, masked=True)
    except Exception as exc:
        raise DataError(f"{path}: cannot read the data (truncated or corrupt file?): "
                        f"{gdal_cause(exc, path)}") from exc
    vals = np.ma.compressed(x) if np.ma.isMaskedArray(x) else np.asarray(x).ravel()
    vals = vals[np.isfinite(vals)]
    if nodata is not None:
        vals = vals[vals != nodata]
    return "db" if vals.size and float(vals.min()) < 0 else "amplitude"


class RasterTiles(torch.utils.data.Dataset):
    """Tiles of SAR scenes read window by window with rasterio.

    Items: ``x`` float32 ``[C, tile_size, tile_size]`` (dB, robustly normalised per band),
    ``valid`` bool ``[N]`` over the ``patch_size`` token grid (a token is valid when at
    least ``min_valid`` of its pixels are valid: inside the image, not nodata, finite),
    ``group`` (the scene index). ``index[i]`` holds the tile's file, window, CRS and
    bounds (the georeferenced tile index; from the geotransform, or from the GCPs of
    Sentinel-1 products). ``units`` is decided once per file (``auto``: see
    :func:`_resolve_units`). ``nodata`` adds a value treated as nodata in every file. With
    ``cache_dir`` (default: the ``POLYJEPA_SAR_CACHE`` environment variable) decoded tiles
    are kept in a memory-mapped array so epochs after the first decode nothing.

    Settings left at ``None`` come from ``state`` when it holds them (a run's saved
    settings, see :mod:`polyjepa_sar.settings`), else from the defaults (tiles of 64 px,
    ``stride = tile_size``, patch 8, ``units="auto"``, ``transform="db"``, no speckle
    filter, ``filter_size=5``, ``looks=1``, ``min_valid=0.5``, ``min_tile_valid=0.25``,
    every tile, ``seed=0``, all bands). Files that look optical (RGB, 8-bit, many bands
    without polarisation names) get a warning when the dB transform is not chosen
    explicitly.
    """

    def __init__(self, data: Any = None, tile_size: int | None = None,
                 stride: int | None = None, bands: Any = None, units: str | None = None,
                 transform: str | None = None, speckle_filter: str | None = None,
                 filter_size: int | None = None, looks: float | None = None,
                 patch_size: int | None = None, min_valid: float | None = None,
                 min_tile_valid: float | None = None, max_tiles: int | None = None,
                 stats_tiles: int = 32, seed: int | None = None, cache_dir: str | None = None,
                 nodata: float | None = None, state: dict[str, Any] | None = None):
        given = {"tile_size": tile_size, "patch_size": patch_size, "units": units,
                 "transform": transform, "speckle_filter": speckle_filter,
                 "filter_size": filter_size, "looks": looks, "min_valid": min_valid,
                 "min_tile_valid": min_tile_valid, "max_tiles": max_tiles, "seed": seed,
                 "nodata": nodata, "band_selection": bands}
        cfg = settings.resolve(given, state, settings.SCENE)
        if cfg["units"] not in UNITS:
            raise DataError(f"units must be one of {UNITS}, got {cfg['units']!r}")
        tile_size, patch_size = int(cfg["tile_size"]), int(cfg["patch_size"])
        if tile_size < patch_size or tile_size % patch_size:
            raise DataError(f"tile_size {tile_size} must be a multiple of patch_size "
                            f"{patch_size}")
        if stride is None and state and state.get("stride") and \
                state.get("tile_size") == tile_size:
            stride = state["stride"]  # the run's overlap, for the run's tile size
        self.scenes = find_scenes(data)
        self.files = [s.path for s in self.scenes]
        self._sources = [None if s.members == [s.path] else stack_vrt(s) for s in self.scenes]
        self.nodata = None if cfg["nodata"] is None else float(cfg["nodata"])
        self.tile_size, self.patch = tile_size, patch_size
        self.stride = int(stride or tile_size)
        self.min_valid = float(cfg["min_valid"])
        self.prep_kw = {k: cfg[k] for k in settings.PREP}
        self._handles: dict[int, Any] = {}
        n_chans = self._index_scenes(cfg["band_selection"], cfg["units"],
                                     float(cfg["min_tile_valid"]))
        self.polarisations = [band_polarisations(self._ds(fi), sel, self.files[fi])
                              for fi, sel in enumerate(self.bands)]
        self._warn_mixed_polarisations()
        if transform is None and not (state and state.get("transform")) and \
                cfg["transform"] == "db":
            self._warn_optical()
        if not self.index:
            raise DataError(f"{self.files[0]}: no tile with enough valid pixels")
        self._subsample(cfg["max_tiles"], int(cfg["seed"]))
        self.in_chans = int(n_chans or 0)
        if state and "stats" in state:
            if len(state["stats"]["median"]) != self.in_chans:
                raise DataError(f"{self.files[0]}: {self.in_chans} bands, the run was "
                                f"trained on {len(state['stats']['median'])}")
            self.stats = state["stats"]
        else:
            self.stats = self._stats(stats_tiles, int(cfg["seed"]))
        self.state = {"stats": self.stats, "bands": self.in_chans, **cfg,
                      "tile_size": self.tile_size, "stride": self.stride,
                      "patch_size": self.patch}
        self.encoder_hints = {"in_chans": self.in_chans, "patch_size": self.patch, "ndim": 2}
        cache_dir = cache_dir or os.environ.get("POLYJEPA_SAR_CACHE") or None
        self._cache_dir = cache_dir
        self._cache = self._open_cache(cache_dir) if cache_dir else None

    # -- construction steps -----------------------------------------------------------
    def _index_scenes(self, band_selection: Any, units: str, min_tile_valid: float
                      ) -> int | None:
        """Per scene: the selected bands, the units (decided once per file) and the tiles
        with enough valid area; returns the channel count, the same for every scene."""
        self.bands: list[list[int]] = []
        self.units: list[str] = []
        self.index: list[dict[str, Any]] = []
        n_chans = None
        for fi, path in enumerate(self.files):
            ds = self._ds(fi)
            sel = select_bands(ds, band_selection, path)
            if n_chans is not None and len(sel) != n_chans:
                raise DataError(f"{path}: {len(sel)} bands selected, the other scenes "
                                f"have {n_chans}")
            n_chans = len(sel)
            self.bands.append(sel)
            self.units.append(_resolve_units(ds, sel, units, path, self.nodata))
            self.index += self._tiles(fi, ds, path, sel, min_tile_valid)
        return n_chans

    def _warn_mixed_polarisations(self) -> None:
        """Warn when scenes name different polarisations for the same channels."""
        known = {tuple(p) for p in self.polarisations if None not in p}
        if len(known) > 1:
            first = next(i for i, p in enumerate(self.polarisations) if tuple(p) in known)
            other = next(i for i, p in enumerate(self.polarisations)
                         if None not in p and p != self.polarisations[first])
            warn_user(f"{self.files[other]}: bands {self.polarisations[other]} where "
                      f"{self.files[first]} has {self.polarisations[first]}; channels "
                      f"mix polarisations (choose them with bands=[...])")

    def _warn_optical(self) -> None:
        """One warning for the scenes that look optical, before the dB transform."""
        optical = [(self.files[fi], r) for fi, sel in enumerate(self.bands)
                   if (r := optical_reason(self._ds(fi), sel, self.polarisations[fi]))]
        if optical:
            warn_user(optical_warning(optical[0][0], optical[0][1], len(optical) - 1))

    def _subsample(self, max_tiles: int | None, seed: int) -> None:
        """Keep ``max_tiles`` random tiles (in index order), when there are more."""
        if max_tiles is not None and len(self.index) > max_tiles:
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(len(self.index), int(max_tiles), replace=False))
            self.index = [self.index[i] for i in keep]

    # -- files ------------------------------------------------------------------------
    def _ds(self, fi: int) -> Any:
        ds = self._handles.get(fi)
        if ds is None or ds.closed:
            ds = self._handles[fi] = open_raster(self.files[fi], self._sources[fi])
        return ds

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_handles"] = {}
        d["_cache"] = None  # data-loader workers re-open the memory maps, never copy them
        return d

    def close(self) -> None:
        """Close the open file handles (they re-open on the next read)."""
        for ds in self._handles.values():
            ds.close()
        self._handles.clear()

    def _starts(self, length: int) -> list[int]:
        t, s = self.tile_size, self.stride
        if length <= t:
            return [0]
        starts = list(range(0, length - t + 1, s))
        if starts[-1] + t < length:
            starts.append(length - t)
        return starts

    def _tiles(self, fi: int, ds: Any, path: Path, bands: list[int],
               min_tile_valid: float) -> list[dict[str, Any]]:
        """The index entries of one scene's tiles with at least ``min_tile_valid`` valid
        area (screened from a decimated mask read)."""
        rio = rasterio_module()
        from rasterio.enums import MaskFlags

        if ds.width < 1 or ds.height < 1:
            raise DataError(f"{path}: empty raster ({ds.width} x {ds.height})")
        t = self.tile_size
        rows, cols = self._starts(ds.height), self._starts(ds.width)
        all_valid = all(MaskFlags.all_valid in ds.mask_flag_enums[b - 1] for b in bands)
        coarse = None
        if not all_valid or self.nodata is not None:
            # decimated mask read (one value per patch, at most 16 x 16 per tile), to drop
            # tiles of nodata only
            step = max(self.patch, t // 16)
            gh = max(1, math.ceil(ds.height / step))
            gw = max(1, math.ceil(ds.width / step))
            shape = (len(bands), gh, gw)
            try:
                with quiet():
                    m = ds.read_masks(bands, out_shape=shape,
                                      resampling=rio.enums.Resampling.nearest)
                    coarse = (m > 0).all(axis=0)
                    if self.nodata is not None:
                        d = ds.read(bands, out_shape=shape,
                                    resampling=rio.enums.Resampling.nearest)
                        coarse &= (d != self.nodata).all(axis=0)
            except Exception as exc:
                raise DataError(f"{path}: cannot read the nodata mask (truncated or corrupt "
                                f"file?): {gdal_cause(exc, path)}") from exc
        to_map, crs = _georef(ds)
        kept = []
        for r in rows:
            for c in cols:
                if coarse is not None:
                    p = step
                    share = coarse[r // p:(r + t) // p, c // p:(c + t) // p].mean() \
                        if coarse[r // p:(r + t) // p, c // p:(c + t) // p].size else 0.0
                    if share < min_tile_valid:
                        continue
                kept.append((r, c))
        bounds = _bounds(to_map, [r for r, _ in kept], [c for _, c in kept], t)
        return [{"file": fi, "row": r, "col": c, "crs": crs, "bounds": b}
                for (r, c), b in zip(kept, bounds)]

    # -- statistics and cache ------------------------------------------------------------
    def _raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        from rasterio.windows import Window

        info = self.index[i]
        fi = info["file"]
        t = self.tile_size
        x, valid = read_window(self._ds(fi), self.files[fi], self.bands[fi],
                               Window(info["col"], info["row"], t, t), (t, t), self.nodata)
        return prepare(x, valid, {**self.prep_kw, "units": self.units[fi]}), valid

    def _stats(self, n: int, seed: int) -> dict[str, list[float]]:
        rng = np.random.default_rng(seed)
        pick = rng.choice(len(self.index), min(n, len(self.index)), replace=False)
        xs, ms = [], []
        for i in sorted(pick.tolist()):
            x, v = self._raw(i)
            xs.append(x)
            ms.append(v)
        return robust_stats(xs, ms)

    def _open_cache(self, cache_dir: str) -> dict[str, Any]:
        key = json.dumps({"files": [[str(p.resolve()), p.stat().st_mtime_ns, p.stat().st_size]
                                    for s in self.scenes for p in s.members],
                          "units": self.units, "nodata": self.nodata,
                          "tiles": [(t["file"], t["row"], t["col"]) for t in self.index],
                          "tile": self.tile_size, "bands": self.bands, "prep": self.prep_kw,
                          "stats": self.stats}, sort_keys=True)
        digest = hashlib.sha1(key.encode()).hexdigest()[:16]
        root = Path(cache_dir)
        root.mkdir(parents=True, exist_ok=True)
        n, c, t = len(self.index), self.in_chans, self.tile_size
        files = {"x": (root / f"sar-{digest}.x.npy", np.float32, (n, c, t, t)),
                 "valid": (root / f"sar-{digest}.valid.npy", np.bool_, (n, t, t)),
                 "done": (root / f"sar-{digest}.done.npy", np.uint8, (n,))}
        cache = {}
        for name, (path, dtype, shape) in files.items():
            try:
                arr = np.load(path, mmap_mode="r+") if path.exists() else None
            except (ValueError, OSError):
                arr = None
            if arr is None or arr.shape != shape or arr.dtype != dtype:
                arr = np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)
            cache[name] = arr
        return cache

    def write_index(self, path: str | Path) -> Path:
        """Write the georeferenced tile index as CSV, one row per item in dataset order
        (the row order of ``polyjepa.embed``): item, file, row, col, size, CRS, bounds."""
        import csv

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["item", "file", "row", "col", "size", "crs", "left", "bottom",
                        "right", "top"])
            for i, t in enumerate(self.index):
                w.writerow([i, str(self.files[t["file"]]), t["row"], t["col"],
                            self.tile_size, t["crs"] or "", *(repr(v) for v in t["bounds"])])
        return path

    # -- items ----------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.index)

    def tile(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Normalised tile ``[C, T, T]`` and pixel validity ``[T, T]`` (cached if enabled)."""
        if self._cache is None and self._cache_dir:
            self._cache = self._open_cache(self._cache_dir)
        cache = self._cache
        if cache is not None and cache["done"][i]:
            return np.asarray(cache["x"][i]), np.asarray(cache["valid"][i])
        x, valid = self._raw(i)
        x = np.where(valid[None], normalize(x, self.stats), 0.0).astype(np.float32)
        if cache is not None:
            cache["x"][i] = x
            cache["valid"][i] = valid
            cache["done"][i] = 1
        return x, valid

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x, valid = self.tile(int(i))
        return {"x": torch.from_numpy(np.ascontiguousarray(x)),
                "valid": torch.from_numpy(token_valid(valid, self.patch, self.min_valid)),
                "group": torch.tensor(self.index[int(i)]["file"])}
