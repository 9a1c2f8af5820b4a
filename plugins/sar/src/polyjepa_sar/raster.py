"""Readers: GeoTIFF/COG (anything GDAL opens) tiled by rasterio windows, and chip folders.

:class:`RasterTiles` cuts one or more scenes into ``tile_size`` tiles read window by
window, so a 25,000 x 17,000 Sentinel-1 scene is never loaded whole; a scene is a raster
file or a product whose per-polarisation files are stacked as bands through a GDAL VRT
(Sentinel-1 ``.SAFE``, SNAP BEAM-DIMAP). :class:`ChipFolder` reads an
MSTAR/OpenSARShip-style folder (one sub-folder per class; GDAL rasters or MSTAR Phoenix
files) as a labelled dataset.
Both convert to dB (complex SLC to amplitude first), normalise each band robustly with
statistics kept in ``state``, and mark tokens whose pixels are mostly nodata invalid.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyjepa import ArrayDataset, DataError
from polyjepa import warn as warn_user

from . import settings
from .optical import optical_reason, optical_warning
from .preprocess import UNITS, normalize, preprocess, robust_stats

RASTER_EXTENSIONS = (".tif", ".tiff", ".vrt", ".img", ".jp2", ".png", ".jpg", ".jpeg",
                     ".bmp", ".ntf", ".hdr")

# a polarisation token in a file name: s1a-iw-grd-vv-..., Sigma0_VH.img, scene_HH.tif
_POL_RE = re.compile(r"(?:^|[^a-z0-9])(hh|hv|vh|vv)(?=[^a-z0-9]|$)", re.IGNORECASE)
_POL_RANK = {"VV": 0, "HH": 0, "VH": 1, "HV": 1}

# GDAL type names for stacking per-polarisation files into one virtual raster
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16",
               "uint32": "UInt32", "int32": "Int32", "uint64": "UInt64", "int64": "Int64",
               "float32": "Float32", "float64": "Float64", "complex_int16": "CInt16",
               "complex64": "CFloat32", "complex128": "CFloat64"}


def _rasterio() -> Any:
    import rasterio

    return rasterio


def _is_raster(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in RASTER_EXTENSIONS and \
        path.suffix.lower() != ".hdr"


def polarisation_of(name: str) -> str | None:
    """The polarisation (``VV``/``VH``/``HH``/``HV``) named in a file name, if any."""
    hits = _POL_RE.findall(Path(name).stem)
    return hits[-1].upper() if hits else None


class Scene:
    """One scene: a raster file, or several single-polarisation files of one product
    (a Sentinel-1 ``.SAFE`` folder, a SNAP BEAM-DIMAP ``.dim``) stacked as bands."""

    def __init__(self, path: Path, members: list[Path], nodata: float | None = None):
        self.path, self.members, self.nodata = path, members, nodata

    def __repr__(self) -> str:
        return f"Scene({str(self.path)!r}, {len(self.members)} file(s))"


def _safe_scene(root: Path) -> Scene:
    """A Sentinel-1 ``.SAFE`` product: its ``measurement/`` TIFFs, one band per polarisation.

    GRD and SLC products have no nodata tag; their zero-valued border fill is nodata.
    """
    meas = root / "measurement"
    files = sorted(p for p in meas.glob("*") if p.suffix.lower() in (".tif", ".tiff")) \
        if meas.is_dir() else []
    if not files:
        raise DataError(f"{root}: Sentinel-1 SAFE product without measurement/*.tiff files "
                        f"(unzip the full product)")
    return Scene(root, files, nodata=0.0)


def _dimap_scene(dim: Path) -> Scene:
    """A BEAM-DIMAP product (SNAP): ``name.dim`` plus ``name.data/*.img`` (ENVI), one band each."""
    data_dir = dim.with_suffix(".data")
    files = sorted(data_dir.glob("*.img")) if data_dir.is_dir() else []
    if not files:
        raise DataError(f"{dim}: BEAM-DIMAP header without band images in {data_dir.name}/")
    return Scene(dim, files)


def find_scenes(data: Any) -> list[Scene]:
    """Scenes named by ``data``: a file, a product, a folder (searched recursively) or a list.

    A Sentinel-1 ``.SAFE`` folder (or its ``manifest.safe``) and a BEAM-DIMAP ``.dim``
    each make one multi-band scene; their preview images and per-band files are not read
    as scenes of their own.
    """
    if data is None:
        raise DataError("the SAR raster reader needs data: a GeoTIFF, a folder or a list")
    if isinstance(data, (list, tuple)):
        out: list[Scene] = []
        for d in data:
            out += find_scenes(d)
        return out
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        if path.name.lower() == "manifest.safe":
            return [_safe_scene(path.parent)]
        if path.suffix.lower() == ".dim":
            return [_dimap_scene(path)]
        return [Scene(path, [path])]
    if (path / "manifest.safe").is_file():
        return [_safe_scene(path)]
    if path.suffix.lower() == ".data" and path.with_suffix(".dim").is_file():
        return [_dimap_scene(path.with_suffix(".dim"))]
    scenes = []
    for dirpath, dirnames, filenames in os.walk(path):
        here = Path(dirpath)
        if "manifest.safe" in filenames:
            scenes.append(_safe_scene(here))
            dirnames.clear()
            continue
        dims = {n[:-4] for n in filenames if n.lower().endswith(".dim")}
        dirnames[:] = sorted(d for d in dirnames
                             if not (d.lower().endswith(".data") and d[:-5] in dims))
        for name in sorted(filenames):
            f = here / name
            if f.suffix.lower() == ".dim":
                scenes.append(_dimap_scene(f))
            elif _is_raster(f):
                scenes.append(Scene(f, [f]))
    if not scenes:
        raise DataError(f"{path}: no raster files ({', '.join(RASTER_EXTENSIONS[:4])}, ...) "
                        f"or SAR products (.SAFE, .dim)")
    return sorted(scenes, key=lambda s: str(s.path))


def find_rasters(data: Any) -> list[Path]:
    """Paths of the scenes named by ``data`` (see :func:`find_scenes`)."""
    return [s.path for s in find_scenes(data)]


def gdal_cause(exc: BaseException, path: Path | None = None) -> str:
    """The first GDAL error behind ``exc``, on one line.

    rasterio raises ``Read failed. See previous exception for details.`` and chains the
    GDAL errors that caused it (``__cause__``); the deepest one says what went wrong
    (``TIFFReadEncodedTile:Read error ...; got 24381 bytes, expected 49152``). A leading
    file name is dropped, since the caller names the file.
    """
    seen: set[int] = set()
    msgs = []
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = " ".join(str(e).split())
        if text:
            msgs.append(text)
        e = e.__cause__ or e.__context__
    msg = msgs[-1] if msgs else type(exc).__name__
    if path is not None:
        for prefix in (str(path), path.name):
            if msg.startswith(prefix) and msg[len(prefix):len(prefix) + 1] in (":", ","):
                msg = msg[len(prefix) + 1:].strip()
                break
    return msg


def _open(path: Path, source: Any = None) -> Any:
    """Open ``source`` (default ``path``) with rasterio; errors name ``path``."""
    rio = _rasterio()
    try:
        with _quiet(), warnings.catch_warnings():
            # chips and radar-geometry products often carry no georeferencing; the tile
            # index then holds pixel bounds and no CRS
            warnings.simplefilter("ignore", rio.errors.NotGeoreferencedWarning)
            return rio.open(path if source is None else source)
    except Exception as exc:
        raise DataError(f"{path}: cannot open as a raster (corrupt, truncated or not a "
                        f"format GDAL reads): {gdal_cause(exc, path)}") from exc


def _stack_vrt(scene: Scene) -> str:
    """A GDAL VRT document stacking the scene's single-band files as named bands."""
    from xml.sax.saxutils import escape, quoteattr

    members = []
    for f in scene.members:
        with _open(f) as ds:
            members.append((f, ds.count, ds.width, ds.height, list(ds.dtypes), ds.nodata,
                            ds.crs, ds.transform, ds.gcps))
    w, h = members[0][2], members[0][3]
    for f, _, fw, fh, *_rest in members:
        if (fw, fh) != (w, h):
            raise DataError(f"{scene.path}: {f.name} is {fw} x {fh}, {members[0][0].name} is "
                            f"{w} x {h}; the bands of one product must align")

    def rank(m: tuple) -> tuple:
        pol = polarisation_of(m[0].name)
        return (_POL_RANK.get(pol or "", 2), pol or "", m[0].name)

    members.sort(key=rank)
    _, _, _, _, _, _, crs, transform, (gcps, gcp_crs) = members[0]
    parts = [f'<VRTDataset rasterXSize="{w}" rasterYSize="{h}">']
    if gcps:
        wkt = quoteattr(gcp_crs.to_wkt()) if gcp_crs else '""'  # the WKT holds quotes
        parts.append(f'<GCPList Projection={wkt}>')
        parts += [f'<GCP Id={quoteattr(str(g.id))} Pixel="{g.col}" Line="{g.row}" X="{g.x}" '
                  f'Y="{g.y}" Z="{g.z or 0.0}"/>' for g in gcps]
        parts.append("</GCPList>")
    elif not transform.is_identity:
        if crs:
            parts.append(f"<SRS>{escape(crs.to_wkt())}</SRS>")
        parts.append("<GeoTransform>" + ", ".join(repr(float(v)) for v in transform.to_gdal())
                     + "</GeoTransform>")
    band = 0
    for f, count, _, _, dtypes, nodata, *_rest in members:
        pol = polarisation_of(f.name)
        for b in range(1, count + 1):
            band += 1
            dtype = _GDAL_TYPES.get(dtypes[b - 1])
            if dtype is None:
                raise DataError(f"{f}: unsupported pixel type {dtypes[b - 1]}")
            desc = f.stem if count == 1 else f"{f.stem}:{b}"
            nd = nodata if nodata is not None else scene.nodata
            parts.append(f'<VRTRasterBand dataType="{dtype}" band="{band}">')
            parts.append(f"<Description>{escape(desc)}</Description>")
            if pol:
                parts.append(f'<Metadata><MDI key="POLARISATION">{pol}</MDI></Metadata>')
            if nd is not None:
                parts.append(f"<NoDataValue>{float(nd)!r}</NoDataValue>")
            parts.append(f'<SimpleSource><SourceFilename relativeToVRT="0">'
                         f"{escape(str(f.resolve()))}</SourceFilename>"
                         f"<SourceBand>{b}</SourceBand></SimpleSource></VRTRasterBand>")
    parts.append("</VRTDataset>")
    return "".join(parts)


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
    if ds.count == 1 and not names[0] & set(_POL_RANK):
        pol = polarisation_of(path.name)  # s1a-iw-grd-vv-....tiff: the name says VV
        if pol:
            names[0].add(pol)
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


def _polarisations(ds: Any, bands: list[int], path: Path) -> list[str | None]:
    """The polarisation of each selected band (tag, description or file name), if known."""
    out: list[str | None] = []
    for b in bands:
        tags = {k.upper(): str(v).upper() for k, v in ds.tags(b).items()}
        pol = tags.get("POLARISATION") or tags.get("POLARIZATION")
        if pol not in _POL_RANK:
            desc = (ds.descriptions[b - 1] or "").upper()
            pol = desc if desc in _POL_RANK else None
        if pol is None and ds.count == 1:
            pol = polarisation_of(path.name)
        out.append(pol)
    return out


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
        with _quiet():
            x = ds.read(bands, out_shape=shape, masked=True)
    except Exception as exc:
        raise DataError(f"{path}: cannot read the data (truncated or corrupt file?): "
                        f"{gdal_cause(exc, path)}") from exc
    vals = np.ma.compressed(x) if np.ma.isMaskedArray(x) else np.asarray(x).ravel()
    vals = vals[np.isfinite(vals)]
    if nodata is not None:
        vals = vals[vals != nodata]
    return "db" if vals.size and float(vals.min()) < 0 else "amplitude"


def _token_valid(pixel_valid: np.ndarray, patch: int, min_valid: float) -> np.ndarray:
    """Bool ``[h/p * w/p]``: share of valid pixels in each patch >= ``min_valid``."""
    h, w = pixel_valid.shape
    gh, gw = h // patch, w // patch
    v = pixel_valid[:gh * patch, :gw * patch].reshape(gh, patch, gw, patch).mean(axis=(1, 3))
    return (v >= min_valid).reshape(-1)


def _read(ds: Any, path: Path, bands: list[int], window: Any, size: tuple[int, int],
          nodata: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bands ``[C, h, w]`` and pixel validity ``[h, w]`` of a window.

    Invalid: the file's nodata / mask, non-finite values and, when given, pixels equal to
    ``nodata`` in any band. The part of the window outside the image is zero and invalid.
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
        raise DataError(f"{path}: cannot read rows {r0}-{r1}, columns {c0}-{c1} (truncated "
                        f"or corrupt file?): {gdal_cause(exc, path)}") from exc
    valid_in = (m > 0).all(axis=0)
    if nodata is not None:
        valid_in &= (x != nodata).all(axis=0)
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
        self._sources = [None if s.members == [s.path] else _stack_vrt(s) for s in self.scenes]
        self.nodata = None if cfg["nodata"] is None else float(cfg["nodata"])
        self.tile_size, self.patch = tile_size, patch_size
        self.stride = int(stride or tile_size)
        self.min_valid = float(cfg["min_valid"])
        self.prep_kw = {k: cfg[k] for k in settings.PREP}
        self._handles: dict[int, Any] = {}
        self.bands: list[list[int]] = []
        self.units: list[str] = []
        self.index: list[dict[str, Any]] = []
        n_chans = None
        for fi, path in enumerate(self.files):
            ds = self._ds(fi)
            sel = _select_bands(ds, cfg["band_selection"], path)
            if n_chans is not None and len(sel) != n_chans:
                raise DataError(f"{path}: {len(sel)} bands selected, the other scenes "
                                f"have {n_chans}")
            n_chans = len(sel)
            self.bands.append(sel)
            self.units.append(_resolve_units(ds, sel, cfg["units"], path, self.nodata))
            self.index += self._tiles(fi, ds, path, sel, float(cfg["min_tile_valid"]))
        self.polarisations = [_polarisations(self._ds(fi), sel, self.files[fi])
                              for fi, sel in enumerate(self.bands)]
        known = {tuple(p) for p in self.polarisations if None not in p}
        if len(known) > 1:
            first = next(i for i, p in enumerate(self.polarisations) if tuple(p) in known)
            other = next(i for i, p in enumerate(self.polarisations)
                         if None not in p and p != self.polarisations[first])
            warn_user(f"{self.files[other]}: bands {self.polarisations[other]} where "
                      f"{self.files[first]} has {self.polarisations[first]}; channels "
                      f"mix polarisations (choose them with bands=[...])")
        if transform is None and not (state and state.get("transform")) and \
                cfg["transform"] == "db":
            optical = [(self.files[fi], r) for fi, sel in enumerate(self.bands)
                       if (r := optical_reason(self._ds(fi), sel, self.polarisations[fi]))]
            if optical:
                warn_user(optical_warning(optical[0][0], optical[0][1], len(optical) - 1))
        if not self.index:
            raise DataError(f"{self.files[0]}: no tile with enough valid pixels")
        max_tiles = cfg["max_tiles"]
        if max_tiles is not None and len(self.index) > max_tiles:
            rng = np.random.default_rng(int(cfg["seed"]))
            keep = np.sort(rng.choice(len(self.index), int(max_tiles), replace=False))
            self.index = [self.index[i] for i in keep]
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

    # -- files ------------------------------------------------------------------------
    def _ds(self, fi: int) -> Any:
        ds = self._handles.get(fi)
        if ds is None or ds.closed:
            ds = self._handles[fi] = _open(self.files[fi], self._sources[fi])
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
        if not all_valid or self.nodata is not None:
            # decimated mask read (one value per patch, at most 16 x 16 per tile), to drop
            # tiles of nodata only
            step = max(self.patch, t // 16)
            gh = max(1, math.ceil(ds.height / step))
            gw = max(1, math.ceil(ds.width / step))
            shape = (len(bands), gh, gw)
            try:
                with _quiet():
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
        x, valid = _read(self._ds(fi), self.files[fi], self.bands[fi],
                         Window(info["col"], info["row"], t, t), (t, t), self.nodata)
        return _prep(x, valid, {**self.prep_kw, "units": self.units[fi]}), valid

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


_MSTAR_MAGIC = b"[PhoenixHeaderVer"
_PREVIEWS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_NOT_MSTAR = (*RASTER_EXTENSIONS, ".htm", ".html", ".txt", ".xml", ".json", ".csv", ".md",
              ".dim", ".safe", ".npy")


def _is_mstar(path: Path) -> bool:
    """An MSTAR chip or scene in the Phoenix format (ASCII header, big-endian data)."""
    if not path.is_file() or path.suffix.lower() in _NOT_MSTAR:
        return False
    try:
        with open(path, "rb") as f:
            return f.read(len(_MSTAR_MAGIC)) == _MSTAR_MAGIC
    except OSError:
        return False


def _is_chip(path: Path) -> bool:
    return _is_raster(path) or _is_mstar(path)


def read_mstar(path: str | Path) -> tuple[np.ndarray, dict[str, str]]:
    """Magnitude ``[1, H, W]`` float32 and the header of an MSTAR Phoenix-format file.

    The file is an ASCII header (``name= value`` lines up to ``[EndofPhoenixHeader]``),
    an optional native header of ``native_header_length`` bytes, then big-endian data:
    float32 magnitude followed by float32 phase for target chips, or uint16 magnitude
    for full scenes. The phase is not used (the readers work on amplitude).
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from exc
    end = raw.find(b"[EndofPhoenixHeader]")
    if not raw.startswith(_MSTAR_MAGIC) or end < 0:
        raise DataError(f"{path}: not an MSTAR Phoenix file (no complete Phoenix header)")
    header = {}
    for line in raw[:end].decode("ascii", errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            header[key.strip()] = value.strip()
    try:
        offset = int(header["PhoenixHeaderLength"]) + int(header.get("native_header_length", 0))
        rows, cols = int(header["NumberOfRows"]), int(header["NumberOfColumns"])
    except (KeyError, ValueError) as exc:
        raise DataError(f"{path}: MSTAR header lacks a valid {exc} field") from exc
    n = rows * cols
    size = len(raw) - offset
    if n >= 1 and (size >= 8 * n or size == 4 * n):  # chips: float32 magnitude (+ phase)
        mag = np.frombuffer(raw, ">f4", n, offset).astype(np.float32)
    elif n >= 1 and size == 2 * n:  # full scenes: 16-bit magnitude
        mag = np.frombuffer(raw, ">u2", n, offset).astype(np.float32)
    else:
        raise DataError(f"{path}: truncated MSTAR file ({size} data bytes for {rows} x "
                        f"{cols} pixels of magnitude and phase)")
    return mag.reshape(1, rows, cols), header


class _MstarBands:
    """The band view of an MSTAR file for band selection (one unnamed band)."""

    count = 1
    descriptions = (None,)

    def tags(self, i: int) -> dict[str, str]:
        return {}


class ChipFolder(ArrayDataset):
    """Labelled chips in class sub-folders: ``root/<class>/**/<chip>`` (MSTAR/OpenSARShip).

    Chips are read with rasterio (any GDAL format) or, for MSTAR's Phoenix-format files
    (``HB03333.015``; JPEG renderings beside them are then skipped), by
    :func:`read_mstar`; converted to dB (``units`` decided once for the folder),
    centre-cropped or zero-padded (``fit="crop"``) or resized (``fit="resize"``) to
    ``chip_size``, and normalised per band. ``state`` keeps the class names, the
    statistics and the settings (chip size, fit, patch size, units, ...) so that new data
    gets the same label numbering and pre-processing; settings left at ``None`` come from
    it, else from the defaults (64 px chips, ``fit="crop"``, patch 8, as for
    :class:`RasterTiles`).
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
        fit, bands, nodata = cfg["fit"], cfg["band_selection"], cfg["nodata"]
        min_valid = float(cfg["min_valid"])
        if data is None:
            raise DataError("the SAR chip reader needs a folder with one sub-folder per class")
        root = Path(data)
        if not root.is_dir():
            raise DataError(f"{root}: not a folder (expected <root>/<class>/<chips>)")
        if chip_size % patch_size:
            raise DataError(f"chip_size {chip_size} must be a multiple of patch_size {patch_size}")
        found = sorted(d.name for d in root.iterdir()
                       if d.is_dir() and any(_is_chip(p) for p in d.rglob("*")))
        if not found:
            raise DataError(f"{root}: no class sub-folders holding raster chips")
        classes = list(state["classes"]) if state and "classes" in state else found
        unknown = sorted(set(found) - set(classes))
        if unknown:
            raise DataError(f"{root}: classes {unknown} were not in the training data "
                            f"{classes}")
        prep_kw = {k: cfg[k] for k in settings.PREP}
        units = prep_kw["units"]
        if units not in UNITS:
            raise DataError(f"units must be one of {UNITS}, got {units!r}")
        optical: list[tuple[Path, str]] = []
        files = {name: sorted(p for p in (root / name).rglob("*") if _is_chip(p))
                 for name in found}
        if any(not _is_raster(p) for ps in files.values() for p in ps):
            # MSTAR releases ship 8-bit renderings beside the Phoenix files: skip them
            files = {k: [p for p in ps if p.suffix.lower() not in _PREVIEWS]
                     for k, ps in files.items()}
        raw, ys = [], []
        n_chans = None
        for name in found:
            for path in files[name]:
                if not _is_raster(path):  # MSTAR Phoenix-format chip
                    amp, _ = read_mstar(path)
                    sel = _select_bands(_MstarBands(), bands, path)
                    if n_chans is not None and len(sel) != n_chans:
                        raise DataError(f"{path}: 1 band, other chips have {n_chans}")
                    n_chans = 1
                    valid = np.isfinite(amp[0])
                    if nodata is not None:
                        valid &= amp[0] != nodata
                    raw.append((path, amp, valid))
                    ys.append(classes.index(name))
                    continue
                with _open(path) as ds:
                    b = _select_bands(ds, bands, path)
                    if n_chans is not None and len(b) != n_chans:
                        raise DataError(f"{path}: {len(b)} bands, other chips have {n_chans}")
                    n_chans = len(b)
                    raw.append((path, *_read(ds, path, b, None, (ds.height, ds.width), nodata)))
                    reason = optical_reason(ds, b, _polarisations(ds, b, path))
                    if reason:
                        optical.append((path, reason))
                ys.append(classes.index(name))
        if optical and transform is None and not (state and state.get("transform")) and \
                prep_kw["transform"] == "db":
            warn_user(optical_warning(optical[0][0], optical[0][1], len(optical) - 1))
        if units == "auto":  # one decision for the whole folder, never chip by chip
            neg = any(not np.iscomplexobj(x) and bool((x[:, v] < 0).any()) for _, x, v in raw)
            units = "db" if neg else "amplitude"
            prep_kw["units"] = units
        xs, vs = [], []
        for path, x, valid in raw:
            try:
                x = _prep(x, valid, prep_kw)
            except ValueError as exc:
                raise DataError(f"{path}: {exc}") from exc
            x, valid = _fit(x, valid, chip_size, fit)
            xs.append(x)
            vs.append(valid)
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
        self.state = {"classes": classes, "stats": stats, **cfg, **prep_kw,
                      "chip_size": chip_size, "patch_size": patch_size}
        self.encoder_hints = {"in_chans": int(n_chans), "patch_size": int(patch_size), "ndim": 2}


def _is_product(path: Path) -> bool:
    """A Sentinel-1 SAFE folder, a BEAM-DIMAP header or its ``.data`` folder."""
    if path.is_dir():
        return (path / "manifest.safe").is_file() or (
            path.suffix.lower() == ".data" and path.with_suffix(".dim").is_file())
    return path.suffix.lower() == ".dim" or path.name.lower() == "manifest.safe"


def _looks_like_chips(path: Path) -> bool:
    if not path.is_dir() or _is_product(path):
        return False
    if any(_is_chip(p) or _is_product(p) for p in path.iterdir()):
        return False
    subdirs = [d for d in path.iterdir() if d.is_dir() and not _is_product(d)]
    # chips directly in class folders, or MSTAR files at any depth (T72/SN_132/HB03333.015)
    return any(any(_is_chip(p) for p in d.iterdir()) for d in subdirs) or \
        any(_is_mstar(p) for d in subdirs for p in d.rglob("*"))


def open_sar(data: Any = None, tile_size: int | None = None, stride: int | None = None,
             chip_size: int | None = None, fit: str | None = None, bands: Any = None,
             units: str | None = None, transform: str | None = None,
             speckle_filter: str | None = None, filter_size: int | None = None,
             looks: float | None = None, patch_size: int | None = None,
             min_valid: float | None = None, min_tile_valid: float | None = None,
             max_tiles: int | None = None, stats_tiles: int = 32, seed: int | None = None,
             cache_dir: str | None = None, nodata: float | None = None,
             state: dict[str, Any] | None = None) -> Any:
    """SAR data of any supported layout: a chip folder (class sub-folders) or scenes.

    Scene-only arguments (``tile_size``, ``stride``, ...) are ignored for chip folders and
    chip-only ones (``chip_size``, ``fit``) for scenes; see :class:`RasterTiles` and
    :class:`ChipFolder`.
    """
    if data is None:
        raise DataError("sar: no data given (a GeoTIFF, a folder of scenes, or a chip folder "
                        "with class sub-folders); `polyjepa demo sar` uses simulated data")
    common = {"bands": bands, "units": units, "transform": transform,
              "speckle_filter": speckle_filter, "filter_size": filter_size, "looks": looks,
              "patch_size": patch_size, "min_valid": min_valid, "nodata": nodata,
              "state": state}
    if isinstance(data, (str, os.PathLike)) and _looks_like_chips(Path(data)):
        return ChipFolder(data, chip_size=chip_size, fit=fit, **common)
    return RasterTiles(data, tile_size=tile_size, stride=stride, min_tile_valid=min_tile_valid,
                       max_tiles=max_tiles, stats_tiles=stats_tiles, seed=seed,
                       cache_dir=cache_dir, **common)


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
