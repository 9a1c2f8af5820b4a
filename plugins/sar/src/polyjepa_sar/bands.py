"""Band selection by index or name, and the polarisation each band holds.

A band is named by its description, a ``POLARISATION`` tag or, for single-band files, by
the polarisation in the file name (``s1a-iw-grd-vv-....tiff`` holds VV), so that
``bands=["VV"]`` picks the same channel in a GeoTIFF, a Sentinel-1 product and a SNAP
export.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from polyjepa import DataError

# a polarisation token in a file name: s1a-iw-grd-vv-..., Sigma0_VH.img, scene_HH.tif
_POL_RE = re.compile(r"(?:^|[^a-z0-9])(hh|hv|vh|vv)(?=[^a-z0-9]|$)", re.IGNORECASE)
POL_RANK = {"VV": 0, "HH": 0, "VH": 1, "HV": 1}
"""Co-polarisation before cross-polarisation when a product's files are stacked."""


def polarisation_of(name: str) -> str | None:
    """The polarisation (``VV``/``VH``/``HH``/``HV``) named in a file name, if any."""
    hits = _POL_RE.findall(Path(name).stem)
    return hits[-1].upper() if hits else None


def select_bands(ds: Any, bands: Any, path: Path) -> list[int]:
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
    if ds.count == 1 and not names[0] & set(POL_RANK):
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


def band_polarisations(ds: Any, bands: list[int], path: Path) -> list[str | None]:
    """The polarisation of each selected band (tag, description or file name), if known."""
    out: list[str | None] = []
    for b in bands:
        tags = {k.upper(): str(v).upper() for k, v in ds.tags(b).items()}
        pol = tags.get("POLARISATION") or tags.get("POLARIZATION")
        if pol not in POL_RANK:
            desc = (ds.descriptions[b - 1] or "").upper()
            pol = desc if desc in POL_RANK else None
        if pol is None and ds.count == 1:
            pol = polarisation_of(path.name)
        out.append(pol)
    return out
