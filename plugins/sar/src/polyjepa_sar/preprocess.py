"""SAR pre-processing: units to log scale, robust per-band normalisation, Lee filter,
and which tokens hold enough valid pixels.

Everything here works on numpy arrays ``[C, H, W]`` (pixel validity ``[H, W]``); the
readers apply it per tile or chip.
"""

from __future__ import annotations

from typing import Any

import numpy as np

UNITS = ("auto", "amplitude", "intensity", "db")
TRANSFORMS = ("db", "none")

# floor of linear amplitude/intensity before the log, so zeros (no return) stay finite
_FLOOR = 1e-6


def to_linear(x: np.ndarray, units: str) -> tuple[np.ndarray, str]:
    """Amplitude or intensity as float32 (complex SLC -> amplitude); returns (array, units).

    ``units="db"`` data is returned unchanged (it is already on a log scale).
    """
    if np.iscomplexobj(x):
        return np.abs(x).astype(np.float32), "amplitude"
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}")
    x = x.astype(np.float32, copy=False)
    if units == "auto":
        units = "db" if np.nanmin(x) < 0 else "amplitude"
    return x, units


def to_db(x: np.ndarray, units: str) -> np.ndarray:
    """Decibels: ``20 log10`` of amplitude, ``10 log10`` of intensity; dB data unchanged."""
    if units == "db":
        return x.astype(np.float32, copy=False)
    factor = 20.0 if units == "amplitude" else 10.0
    return (factor * np.log10(np.maximum(x, _FLOOR))).astype(np.float32)


def box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a ``size x size`` window (reflect padding) of ``[C, H, W]``, by cumsums."""
    r = size // 2
    mode = "reflect" if min(x.shape[-2:]) > r else "edge"
    p = np.pad(x.astype(np.float64), ((0, 0), (r, r), (r, r)), mode=mode)
    c = np.cumsum(np.cumsum(p, axis=1), axis=2)
    c = np.pad(c, ((0, 0), (1, 0), (1, 0)))
    h, w = x.shape[-2:]
    s = c[:, size:size + h, size:size + w] - c[:, :h, size:size + w] \
        - c[:, size:size + h, :w] + c[:, :h, :w]
    return (s / (size * size)).astype(np.float32)


def lee_filter(intensity: np.ndarray, size: int = 5, looks: float = 1.0) -> np.ndarray:
    """Lee's adaptive speckle filter on linear intensity ``[C, H, W]``.

    ``out = m + k (I - m)`` with local mean ``m``, local variance ``v`` and
    ``k = max(0, v - m^2 Cu^2) / ((1 + Cu^2) v)``, ``Cu^2 = 1 / looks``.
    """
    if size < 3 or size % 2 == 0:
        raise ValueError(f"Lee window must be odd and >= 3, got {size}")
    cu2 = 1.0 / float(looks)
    m = box_mean(intensity, size)
    v = np.maximum(box_mean(intensity * intensity, size) - m * m, 0.0)
    var_x = np.maximum(v - m * m * cu2, 0.0) / (1.0 + cu2)
    k = np.where(v > 0, var_x / np.maximum(v, 1e-12), 0.0)
    return (m + k * (intensity - m)).astype(np.float32)


def preprocess(x: np.ndarray, units: str = "auto", transform: str = "db",
               speckle_filter: str | None = None, filter_size: int = 5,
               looks: float = 1.0) -> np.ndarray:
    """Raw band values ``[C, H, W]`` -> float32 on the chosen scale (before normalising)."""
    if transform not in TRANSFORMS:
        raise ValueError(f"transform must be one of {TRANSFORMS}, got {transform!r}")
    lin, units = to_linear(x, units)
    if speckle_filter not in (None, "none", "lee"):
        raise ValueError(f"speckle_filter must be None or 'lee', got {speckle_filter!r}")
    if speckle_filter == "lee":
        if units == "db":
            inten = 10.0 ** (lin / 10.0)
        else:
            inten = lin * lin if units == "amplitude" else lin
        inten = lee_filter(inten, filter_size, looks)
        lin, units = (inten, "intensity") if units != "db" else (10 * np.log10(
            np.maximum(inten, _FLOOR)), "db")
    if transform == "db":
        return to_db(lin, units)
    return lin.astype(np.float32, copy=False)


def prepare(x: np.ndarray, valid: np.ndarray, kw: dict[str, Any]) -> np.ndarray:
    """:func:`preprocess` (with settings ``kw``) after zeroing invalid pixels, so nodata
    values never reach the log or the speckle filter."""
    x = np.where(valid[None], x, 0) if not valid.all() else x
    return preprocess(x, **kw)


def robust_stats(samples: list[np.ndarray], masks: list[np.ndarray] | None = None
                 ) -> dict[str, list[float]]:
    """Per-band median and robust scale (IQR / 1.349) over valid pixels of the samples."""
    if not samples:
        raise ValueError("no samples for normalisation statistics")
    c = samples[0].shape[0]
    med, scale = [], []
    for b in range(c):
        vals = []
        for i, s in enumerate(samples):
            v = s[b]
            if masks is not None:
                v = v[masks[i]]
            vals.append(v[np.isfinite(v)].ravel())
        allv = np.concatenate(vals) if vals else np.zeros(0, np.float32)
        if allv.size == 0:
            med.append(0.0)
            scale.append(1.0)
            continue
        q25, q50, q75 = np.percentile(allv, [25, 50, 75])
        s = (q75 - q25) / 1.349
        if not s > 1e-6:
            s = float(np.std(allv))
        med.append(float(q50))
        scale.append(float(s) if s > 1e-6 else 1.0)
    return {"median": med, "scale": scale}


def normalize(x: np.ndarray, stats: dict[str, Any]) -> np.ndarray:
    """``(x - median) / scale`` per band, clipped to +-10 robust units."""
    med = np.asarray(stats["median"], np.float32)[:, None, None]
    sc = np.asarray(stats["scale"], np.float32)[:, None, None]
    if med.shape[0] != x.shape[0]:
        raise ValueError(f"{x.shape[0]} bands, statistics are for {med.shape[0]}")
    return np.clip((x - med) / sc, -10.0, 10.0).astype(np.float32)


def token_valid(pixel_valid: np.ndarray, patch: int, min_valid: float) -> np.ndarray:
    """Bool ``[h/p * w/p]``: share of valid pixels in each patch >= ``min_valid``."""
    h, w = pixel_valid.shape
    gh, gw = h // patch, w // patch
    v = pixel_valid[:gh * patch, :gw * patch].reshape(gh, patch, gw, patch).mean(axis=(1, 3))
    return (v >= min_valid).reshape(-1)
