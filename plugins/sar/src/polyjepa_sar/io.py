"""Low-level raster access: opening with rasterio, reading a window with its validity,
GDAL's reason for a failure, and writing GeoTIFFs.

The readers (:mod:`~polyjepa_sar.tiles`, :mod:`~polyjepa_sar.chips`) go through these
helpers so that every unreadable, truncated or corrupt file fails the same way: a
one-line :class:`polyjepa.DataError` naming the file and GDAL's own reason.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import DataError

RASTER_EXTENSIONS = (".tif", ".tiff", ".vrt", ".img", ".jp2", ".png", ".jpg", ".jpeg",
                     ".bmp", ".ntf", ".hdr")


def rasterio_module() -> Any:
    """``rasterio``, imported on first use (GDAL is slow to load)."""
    import rasterio

    return rasterio


def is_raster(path: Path) -> bool:
    """A file with a raster extension (an ENVI ``.hdr`` is the header of one, not one)."""
    return path.is_file() and path.suffix.lower() in RASTER_EXTENSIONS and \
        path.suffix.lower() != ".hdr"


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


@contextmanager
def quiet() -> Iterator[None]:
    """Silence GDAL's own stderr messages; errors still raise."""
    with rasterio_module().Env(CPL_LOG="/dev/null" if os.name != "nt" else "NUL"):
        yield


def open_raster(path: Path, source: Any = None) -> Any:
    """Open ``source`` (default ``path``; e.g. a VRT document) with rasterio; errors name
    ``path``."""
    rio = rasterio_module()
    try:
        with quiet(), warnings.catch_warnings():
            # chips and radar-geometry products often carry no georeferencing; the tile
            # index then holds pixel bounds and no CRS
            warnings.simplefilter("ignore", rio.errors.NotGeoreferencedWarning)
            return rio.open(path if source is None else source)
    except Exception as exc:
        raise DataError(f"{path}: cannot open as a raster (corrupt, truncated or not a "
                        f"format GDAL reads): {gdal_cause(exc, path)}") from exc


def read_window(ds: Any, path: Path, bands: list[int], window: Any, size: tuple[int, int],
                nodata: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Bands ``[C, h, w]`` and pixel validity ``[h, w]`` of a window (``None``: the whole
    file).

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
        with quiet():
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


def write_geotiff(path: str | Path, array: np.ndarray, crs: str | None = "EPSG:4326",
                  bounds: tuple[float, float, float, float] | None = None,
                  nodata: float | None = None, descriptions: list[str] | None = None) -> Path:
    """Write ``[C, H, W]`` (or ``[H, W]``) to a tiled GeoTIFF (for chips and tests)."""
    rio = rasterio_module()
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
