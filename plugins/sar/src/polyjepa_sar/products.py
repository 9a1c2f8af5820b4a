"""SAR products and formats: what makes one scene, and the files no GDAL driver reads.

A scene is a raster file, or a product whose per-polarisation files are stacked as bands
through a GDAL VRT: a Sentinel-1 ``.SAFE`` folder (its ``measurement/`` TIFFs) or a SNAP
BEAM-DIMAP ``.dim`` (its ``.data/*.img``). MSTAR's Phoenix-format chips (ASCII header,
big-endian data) are read here as well, since GDAL has no driver for them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import DataError

from .bands import POL_RANK, polarisation_of
from .io import RASTER_EXTENSIONS, is_raster, open_raster

# GDAL type names for stacking per-polarisation files into one virtual raster
_GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16",
               "uint32": "UInt32", "int32": "Int32", "uint64": "UInt64", "int64": "Int64",
               "float32": "Float32", "float64": "Float64", "complex_int16": "CInt16",
               "complex64": "CFloat32", "complex128": "CFloat64"}


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
            elif is_raster(f):
                scenes.append(Scene(f, [f]))
    if not scenes:
        raise DataError(f"{path}: no raster files ({', '.join(RASTER_EXTENSIONS[:4])}, ...) "
                        f"or SAR products (.SAFE, .dim)")
    return sorted(scenes, key=lambda s: str(s.path))


def find_rasters(data: Any) -> list[Path]:
    """Paths of the scenes named by ``data`` (see :func:`find_scenes`)."""
    return [s.path for s in find_scenes(data)]


def stack_vrt(scene: Scene) -> str:
    """A GDAL VRT document stacking the scene's single-band files as named bands."""
    from xml.sax.saxutils import escape, quoteattr

    members = []
    for f in scene.members:
        with open_raster(f) as ds:
            members.append((f, ds.count, ds.width, ds.height, list(ds.dtypes), ds.nodata,
                            ds.crs, ds.transform, ds.gcps))
    w, h = members[0][2], members[0][3]
    for f, _, fw, fh, *_rest in members:
        if (fw, fh) != (w, h):
            raise DataError(f"{scene.path}: {f.name} is {fw} x {fh}, {members[0][0].name} is "
                            f"{w} x {h}; the bands of one product must align")

    def rank(m: tuple) -> tuple:
        pol = polarisation_of(m[0].name)
        return (POL_RANK.get(pol or "", 2), pol or "", m[0].name)

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


def is_product(path: Path) -> bool:
    """A Sentinel-1 SAFE folder, a BEAM-DIMAP header or its ``.data`` folder."""
    if path.is_dir():
        return (path / "manifest.safe").is_file() or (
            path.suffix.lower() == ".data" and path.with_suffix(".dim").is_file())
    return path.suffix.lower() == ".dim" or path.name.lower() == "manifest.safe"


# -- MSTAR Phoenix format --------------------------------------------------------------

MSTAR_MAGIC = b"[PhoenixHeaderVer"
PREVIEWS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_NOT_MSTAR = (*RASTER_EXTENSIONS, ".htm", ".html", ".txt", ".xml", ".json", ".csv", ".md",
              ".dim", ".safe", ".npy")


def is_mstar(path: Path) -> bool:
    """An MSTAR chip or scene in the Phoenix format (ASCII header, big-endian data)."""
    if not path.is_file() or path.suffix.lower() in _NOT_MSTAR:
        return False
    try:
        with open(path, "rb") as f:
            return f.read(len(MSTAR_MAGIC)) == MSTAR_MAGIC
    except OSError:
        return False


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
    if not raw.startswith(MSTAR_MAGIC) or end < 0:
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


class MstarBands:
    """The band view of an MSTAR file for band selection (one unnamed band)."""

    count = 1
    descriptions = (None,)

    def tags(self, i: int) -> dict[str, str]:
        """No tags: the band carries no name."""
        return {}
