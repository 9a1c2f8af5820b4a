"""Readers: GeoTIFF/COG (anything GDAL opens) tiled by rasterio windows, and chip folders.

:class:`RasterTiles` cuts one or more scenes into ``tile_size`` tiles read window by
window, so a 25,000 x 17,000 Sentinel-1 scene is never loaded whole. :class:`ChipFolder`
reads an MSTAR/OpenSARShip-style folder (one sub-folder per class) as a labelled dataset.
Both convert to dB (complex SLC to amplitude first), normalise each band robustly with
statistics kept in ``state``, and mark tokens whose pixels are mostly nodata invalid.
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
from polyjepa import ArrayDataset, DataError

from .preprocess import UNITS, normalize, preprocess, robust_stats

RASTER_EXTENSIONS = (".tif", ".tiff", ".vrt", ".img", ".jp2", ".png", ".jpg", ".jpeg",
                     ".bmp", ".ntf", ".hdr", ".dim", ".safe")


def _rasterio() -> Any:
    import rasterio

    return rasterio


def _is_raster(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in RASTER_EXTENSIONS and \
        path.suffix.lower() != ".hdr"


def find_rasters(data: Any) -> list[Path]:
    """Raster files named by ``data``: a file, a folder (searched recursively) or a list."""
    if data is None:
        raise DataError("the SAR raster reader needs data: a GeoTIFF, a folder or a list")
    if isinstance(data, (list, tuple)):
        out: list[Path] = []
        for d in data:
            out += find_rasters(d)
        return out
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if _is_raster(p))
        if not files:
            raise DataError(f"{path}: no raster files ({', '.join(RASTER_EXTENSIONS[:4])}, ...)")
        return files
    return [path]


def _open(path: Path) -> Any:
    rio = _rasterio()
    try:
        with _quiet():
            return rio.open(path)
    except Exception as exc:
        raise DataError(f"{path}: cannot open as a raster (corrupt, truncated or not a "
                        f"format GDAL reads): {exc}") from exc


class _quiet:
    """Silence GDAL's own stderr messages; errors still raise."""

    def __enter__(self) -> None:
        self._env = _rasterio().Env(CPL_LOG="/dev/null" if os.name != "nt" else "NUL")
        self._env.__enter__()

    def __exit__(self, *exc: Any) -> None:
        self._env.__exit__(*exc)


def _select_bands(ds: Any, bands: Any, path: Path) -> list[int]:
    """1-based band indexes from ints (1-based) or names (descriptions / polarisation tags)."""
    if bands is None:
        return list(range(1, ds.count + 1))
    if isinstance(bands, (int, str)):
        bands = [bands]
    names = []
    for i in range(1, ds.count + 1):
        desc = (ds.descriptions[i - 1] or "").upper()
        tags = {k.upper(): str(v).upper() for k, v in ds.tags(i).items()}
        names.append({desc, tags.get("POLARISATION", ""), tags.get("POLARIZATION", "")} - {""})
    out = []
    for b in bands:
        if isinstance(b, int) or (isinstance(b, str) and b.isdigit()):
            idx = int(b)
            if not 1 <= idx <= ds.count:
                raise DataError(f"{path}: band {idx} does not exist (the file has {ds.count})")
            out.append(idx)
            continue
        hits = [i + 1 for i, n in enumerate(names) if str(b).upper() in n]
        if not hits:
            raise DataError(f"{path}: no band named {b!r} (band names/polarisations: "
                            f"{[sorted(n) for n in names]})")
        out.append(hits[0])
    return out


def _bounds(tr: Any, row: int, col: int, size: int) -> tuple[float, float, float, float]:
    """``(left, bottom, right, top)`` of a ``size`` tile at ``(row, col)`` in map units."""
    xs, ys = [], []
    for r, c in ((row, col), (row + size, col), (row, col + size), (row + size, col + size)):
        xs.append(tr.a * c + tr.b * r + tr.c)
        ys.append(tr.d * c + tr.e * r + tr.f)
    return float(min(xs)), float(min(ys)), float(max(xs)), float(max(ys))


def _token_valid(pixel_valid: np.ndarray, patch: int, min_valid: float) -> np.ndarray:
    """Bool ``[h/p * w/p]``: share of valid pixels in each patch >= ``min_valid``."""
    h, w = pixel_valid.shape
    gh, gw = h // patch, w // patch
    v = pixel_valid[:gh * patch, :gw * patch].reshape(gh, patch, gw, patch).mean(axis=(1, 3))
    return (v >= min_valid).reshape(-1)


def _read(ds: Any, path: Path, bands: list[int], window: Any, size: tuple[int, int]
          ) -> tuple[np.ndarray, np.ndarray]:
    """Bands ``[C, h, w]`` and pixel validity ``[h, w]`` of a window.

    The part of the window outside the image is zero and invalid (padding).
    """
    from rasterio.windows import Window

    h, w = size
    if window is None:
        window = Window(0, 0, ds.width, ds.height)
    r0, c0 = int(window.row_off), int(window.col_off)
    r1, c1 = min(ds.height, r0 + h), min(ds.width, c0 + w)
    inner = Window(max(c0, 0), max(r0, 0), c1 - max(c0, 0), r1 - max(r0, 0))
    try:
        with _quiet():
            x = ds.read(bands, window=inner)
            m = ds.read_masks(bands, window=inner)
    except Exception as exc:
        raise DataError(f"{path}: cannot read window {window} (truncated or corrupt "
                        f"file?): {exc}") from exc
    valid_in = (m > 0).all(axis=0)
    if np.issubdtype(x.dtype, np.floating) or np.iscomplexobj(x):
        valid_in &= np.isfinite(x).all(axis=0)
    if x.shape[1:] == (h, w):
        return x, valid_in
    out = np.zeros((len(bands), h, w), x.dtype)
    valid = np.zeros((h, w), bool)
    dr, dc = max(0, -r0), max(0, -c0)
    out[:, dr:dr + x.shape[1], dc:dc + x.shape[2]] = x
    valid[dr:dr + x.shape[1], dc:dc + x.shape[2]] = valid_in
    return out, valid


def _prep(x: np.ndarray, valid: np.ndarray, kw: dict[str, Any]) -> np.ndarray:
    x = np.where(valid[None], x, 0) if not valid.all() else x
    return preprocess(x, **kw)


class RasterTiles(torch.utils.data.Dataset):
    """Tiles of SAR scenes read window by window with rasterio.

    Items: ``x`` float32 ``[C, tile_size, tile_size]`` (dB, robustly normalised per band),
    ``valid`` bool ``[N]`` over the ``patch_size`` token grid (a token is valid when at
    least ``min_valid`` of its pixels are valid: inside the image, not nodata, finite),
    ``group`` (the scene index). ``index[i]`` holds the tile's file, window, CRS and
    bounds (the georeferenced tile index). With ``cache_dir`` decoded tiles are kept in
    a memory-mapped array so epochs after the first decode nothing.
    """

    def __init__(self, data: Any = None, tile_size: int = 64, stride: int | None = None,
                 bands: Any = None, units: str = "auto", transform: str = "db",
                 speckle_filter: str | None = None, filter_size: int = 5, looks: float = 1.0,
                 patch_size: int = 8, min_valid: float = 0.5, min_tile_valid: float = 0.25,
                 max_tiles: int | None = None, stats_tiles: int = 32, seed: int = 0,
                 cache_dir: str | None = None, state: dict[str, Any] | None = None):
        if units not in UNITS:
            raise DataError(f"units must be one of {UNITS}, got {units!r}")
        if tile_size < patch_size or tile_size % patch_size:
            raise DataError(f"tile_size {tile_size} must be a multiple of patch_size "
                            f"{patch_size}")
        self.files = find_rasters(data)
        self.tile_size, self.patch = int(tile_size), int(patch_size)
        self.stride = int(stride or tile_size)
        self.min_valid = float(min_valid)
        self.prep_kw = {"units": units, "transform": transform,
                        "speckle_filter": speckle_filter, "filter_size": filter_size,
                        "looks": looks}
        self._handles: dict[int, Any] = {}
        self.bands: list[list[int]] = []
        self.index: list[dict[str, Any]] = []
        n_chans = None
        for fi, path in enumerate(self.files):
            ds = self._ds(fi)
            sel = _select_bands(ds, bands, path)
            if n_chans is not None and len(sel) != n_chans:
                raise DataError(f"{path}: {len(sel)} bands selected, the other scenes "
                                f"have {n_chans}")
            n_chans = len(sel)
            self.bands.append(sel)
            self.index += self._tiles(fi, ds, path, sel, min_tile_valid)
        if not self.index:
            raise DataError(f"{self.files[0]}: no tile with enough valid pixels")
        if max_tiles is not None and len(self.index) > max_tiles:
            rng = np.random.default_rng(seed)
            keep = np.sort(rng.choice(len(self.index), int(max_tiles), replace=False))
            self.index = [self.index[i] for i in keep]
        self.in_chans = int(n_chans or 0)
        if state and "stats" in state:
            if len(state["stats"]["median"]) != self.in_chans:
                raise DataError(f"{self.files[0]}: {self.in_chans} bands, the run was "
                                f"trained on {len(state['stats']['median'])}")
            self.stats = state["stats"]
        else:
            self.stats = self._stats(stats_tiles, seed)
        self.state = {"stats": self.stats, "bands": self.in_chans, **self.prep_kw}
        self.encoder_hints = {"in_chans": self.in_chans, "patch_size": self.patch, "ndim": 2}
        self._cache_dir = cache_dir
        self._cache = self._open_cache(cache_dir) if cache_dir else None

    # -- files ------------------------------------------------------------------------
    def _ds(self, fi: int) -> Any:
        ds = self._handles.get(fi)
        if ds is None or ds.closed:
            ds = self._handles[fi] = _open(self.files[fi])
        return ds

    def __getstate__(self) -> dict[str, Any]:
        d = dict(self.__dict__)
        d["_handles"] = {}
        d["_cache"] = None  # data-loader workers re-open the memory maps, never copy them
        return d

    def close(self) -> None:
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
        rio = _rasterio()
        from rasterio.enums import MaskFlags

        if ds.width < 1 or ds.height < 1:
            raise DataError(f"{path}: empty raster ({ds.width} x {ds.height})")
        t = self.tile_size
        rows, cols = self._starts(ds.height), self._starts(ds.width)
        all_valid = all(MaskFlags.all_valid in ds.mask_flag_enums[b - 1] for b in bands)
        coarse = None
        if not all_valid:
            # decimated mask read (one value per patch), to drop tiles of nodata only
            gh = max(1, math.ceil(ds.height / self.patch))
            gw = max(1, math.ceil(ds.width / self.patch))
            try:
                with _quiet():
                    m = ds.read_masks(bands, out_shape=(len(bands), gh, gw),
                                      resampling=rio.enums.Resampling.nearest)
            except Exception as exc:
                raise DataError(f"{path}: cannot read the nodata mask: {exc}") from exc
            coarse = (m > 0).all(axis=0)
        crs = ds.crs.to_string() if ds.crs else None
        out = []
        for r in rows:
            for c in cols:
                if coarse is not None:
                    p = self.patch
                    share = coarse[r // p:(r + t) // p, c // p:(c + t) // p].mean() \
                        if coarse[r // p:(r + t) // p, c // p:(c + t) // p].size else 0.0
                    if share < min_tile_valid:
                        continue
                out.append({"file": fi, "row": r, "col": c, "crs": crs,
                            "bounds": _bounds(ds.transform, r, c, t)})
        return out

    # -- statistics and cache ------------------------------------------------------------
    def _raw(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        from rasterio.windows import Window

        info = self.index[i]
        fi = info["file"]
        t = self.tile_size
        x, valid = _read(self._ds(fi), self.files[fi], self.bands[fi],
                         Window(info["col"], info["row"], t, t), (t, t))
        return _prep(x, valid, self.prep_kw), valid

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
                                    for p in self.files],
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
                "valid": torch.from_numpy(_token_valid(valid, self.patch, self.min_valid)),
                "group": torch.tensor(self.index[int(i)]["file"])}


# -- chip folders ------------------------------------------------------------------------

def _fit(x: np.ndarray, valid: np.ndarray, size: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
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


class ChipFolder(ArrayDataset):
    """Labelled chips in class sub-folders: ``root/<class>/<chip>.tif`` (MSTAR/OpenSARShip).

    Chips are read with rasterio (any GDAL format), converted to dB, centre-cropped or
    zero-padded (``fit="crop"``) or resized (``fit="resize"``) to ``chip_size``, and
    normalised per band. ``state`` keeps the class names and the statistics so that new
    data gets the same label numbering.
    """

    def __init__(self, data: Any = None, chip_size: int = 64, fit: str = "crop",
                 bands: Any = None, units: str = "auto", transform: str = "db",
                 speckle_filter: str | None = None, filter_size: int = 5, looks: float = 1.0,
                 patch_size: int = 8, min_valid: float = 0.5,
                 state: dict[str, Any] | None = None, **_: Any):
        if data is None:
            raise DataError("the SAR chip reader needs a folder with one sub-folder per class")
        root = Path(data)
        if not root.is_dir():
            raise DataError(f"{root}: not a folder (expected <root>/<class>/<chips>)")
        if chip_size % patch_size:
            raise DataError(f"chip_size {chip_size} must be a multiple of patch_size {patch_size}")
        found = sorted(d.name for d in root.iterdir()
                       if d.is_dir() and any(_is_raster(p) for p in d.rglob("*")))
        if not found:
            raise DataError(f"{root}: no class sub-folders holding raster chips")
        classes = list(state["classes"]) if state and "classes" in state else found
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataError(f"{root}: classes {unknown} were not in the training data "
                            f"{classes}")
        prep_kw = {"units": units, "transform": transform, "speckle_filter": speckle_filter,
                   "filter_size": filter_size, "looks": looks}
        xs, vs, ys = [], [], []
        n_chans = None
        for name in found:
            for path in sorted(p for p in (root / name).rglob("*") if _is_raster(p)):
                with _open(path) as ds:
                    b = _select_bands(ds, bands, path)
                    if n_chans is not None and len(b) != n_chans:
                        raise DataError(f"{path}: {len(b)} bands, other chips have {n_chans}")
                    n_chans = len(b)
                    x, valid = _read(ds, path, b, None, (ds.height, ds.width))
                try:
                    x = _prep(x, valid, prep_kw)
                except ValueError as exc:
                    raise DataError(f"{path}: {exc}") from exc
                x, valid = _fit(x, valid, chip_size, fit)
                xs.append(x)
                vs.append(valid)
                ys.append(classes.index(name))
        if state and "stats" in state:
            stats = state["stats"]
            if len(stats["median"]) != n_chans:
                raise DataError(f"{root}: {n_chans} bands, the run was trained on "
                                f"{len(stats['median'])}")
        else:
            stats = robust_stats(xs, vs)
        x = np.stack([np.where(v[None], normalize(a, stats), 0.0) for a, v in zip(xs, vs)])
        tv = np.stack([_token_valid(v, patch_size, min_valid) for v in vs])
        if not tv.any(axis=1).all():
            bad = int(np.nonzero(~tv.any(axis=1))[0][0])
            raise DataError(f"{root}: chip {bad} has no valid pixels")
        super().__init__(x.astype(np.float32), np.asarray(ys, np.int64), tv, source=str(root))
        self.classes = classes
        self.state = {"classes": classes, "stats": stats, **prep_kw}
        self.encoder_hints = {"in_chans": int(n_chans), "patch_size": int(patch_size), "ndim": 2}


def _looks_like_chips(path: Path) -> bool:
    if not path.is_dir():
        return False
    if any(_is_raster(p) for p in path.iterdir()):
        return False
    return any(d.is_dir() and any(_is_raster(p) for p in d.iterdir()) for d in path.iterdir())


def open_sar(data: Any = None, **kwargs: Any) -> Any:
    """SAR data of any supported layout: a chip folder (class sub-folders) or scenes.

    Scene-only arguments (``tile_size``, ``stride``, ...) are ignored for chip folders and
    chip-only ones (``chip_size``, ``fit``) for scenes.
    """
    if data is None:
        raise DataError("sar: no data given (a GeoTIFF, a folder of scenes, or a chip folder "
                        "with class sub-folders); `polyjepa demo sar` uses simulated data")
    if isinstance(data, (str, os.PathLike)) and _looks_like_chips(Path(data)):
        drop = {"tile_size", "stride", "max_tiles", "stats_tiles", "seed", "cache_dir",
                "min_tile_valid"}
        return ChipFolder(data, **{k: v for k, v in kwargs.items() if k not in drop})
    kwargs = {k: v for k, v in kwargs.items() if k not in ("chip_size", "fit")}
    return RasterTiles(data, **kwargs)


def write_geotiff(path: str | Path, array: np.ndarray, crs: str | None = "EPSG:4326",
                  bounds: tuple[float, float, float, float] | None = None,
                  nodata: float | None = None, descriptions: list[str] | None = None) -> Path:
    """Write ``[C, H, W]`` (or ``[H, W]``) to a tiled GeoTIFF (for chips and tests)."""
    rio = _rasterio()
    from affine import Affine

    arr = np.asarray(array)
    if arr.ndim == 2:
        arr = arr[None]
    c, h, w = arr.shape
    west, south, east, north = bounds or (0.0, 0.0, float(w), float(h))
    transform = Affine(float(east - west) / w, 0.0, float(west), 0.0,
                       -float(north - south) / h, float(north))
    profile = {"driver": "GTiff", "width": w, "height": h, "count": c, "dtype": arr.dtype,
               "crs": crs, "transform": transform, "nodata": nodata}
    if h >= 16 and w >= 16:
        profile.update(tiled=True, blockxsize=16 * max(1, min(w, 256) // 16),
                       blockysize=16 * max(1, min(h, 256) // 16))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with rio.open(path, "w", **profile) as dst:
        dst.write(arr)
        for i, d in enumerate(descriptions or []):
            dst.set_band_description(i + 1, d)
    return path
