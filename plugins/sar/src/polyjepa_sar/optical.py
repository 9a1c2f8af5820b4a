"""Telling optical or display images from radar data, so the dB transform is not applied
to them unnoticed.

The readers take any GDAL raster; an RGB GeoTIFF or an 8-bit rendering opens as well as
a Sentinel-1 scene, and the radar ``20 log10`` would silently be applied to its digital
numbers. :func:`optical_reason` names what gives such a file away.
"""

from __future__ import annotations

import re
from typing import Any

# band descriptions of optical sensors: "Red", "NIR", "B04 (red)", "SWIR1", "Pan"
_OPTICAL_WORDS = re.compile(r"(?:^|[^a-z])(red|green|blue|rgb|nir|swir\d*|coastal|pan"
                            r"|panchromatic|rededge|red edge)(?=[^a-z]|$)", re.IGNORECASE)


def optical_reason(ds: Any, bands: list[int], polarisations: list[str | None]) -> str | None:
    """Why the selected ``bands`` of ``ds`` look optical, or ``None`` if they may be radar.

    Bands that name a polarisation are radar. Otherwise: a colour interpretation of
    red/green/blue or a palette (TIFF photometric RGB / YCbCr), descriptions naming optical
    bands, more than two bands, or 8-bit pixels.
    """
    if any(p is not None for p in polarisations):
        return None
    from rasterio.enums import ColorInterp

    colours = {ds.colorinterp[b - 1] for b in bands}
    rgb = colours & {ColorInterp.red, ColorInterp.green, ColorInterp.blue}
    if rgb:
        return "colour bands " + "/".join(c.name for c in sorted(rgb, key=lambda c: c.value))
    if ColorInterp.palette in colours:
        return "a colour palette"
    words = [m.group(1).lower() for b in bands
             for m in [_OPTICAL_WORDS.search(ds.descriptions[b - 1] or "")] if m]
    if words:
        return "bands described as " + ", ".join(words)
    if len(bands) > 2:
        return f"{len(bands)} bands without polarisation names"
    if all(str(ds.dtypes[b - 1]) == "uint8" for b in bands):
        return "8-bit pixels"
    return None


def optical_warning(path: Any, reason: str, others: int = 0) -> str:
    """The warning for a file that looks optical while the dB transform is on."""
    more = f" (and {others} other file{'s' if others > 1 else ''})" if others else ""
    return (f"{path}{more}: looks like an optical or display image, not radar data "
            f"({reason}), and gets the radar dB transform; set transform='none' "
            f"(--set dataset.transform=none) to keep its values linear, or transform='db' "
            f"to keep the dB transform without this warning")

