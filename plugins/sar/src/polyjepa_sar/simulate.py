"""A SAR chip and scene simulator (for the demo and the benchmark; data are SIMULATED).

Reflectivity maps hold a background of textured regions (sea, fields, forest) and
targets of several classes; the observed intensity is ``I = R * S`` with multiplicative
speckle ``S ~ Gamma(L, 1/L)`` for ``L`` looks (fully developed speckle, unit mean), and
the simulator returns amplitude ``sqrt(I)`` as a detected SAR product would.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("clutter", "point", "ship", "building", "vehicle")


def _smooth(x: np.ndarray, size: int) -> np.ndarray:
    from .preprocess import box_mean

    return box_mean(x[None], size)[0] if size > 1 else x


def _background(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Regions of different mean reflectivity and texture (K-distributed clutter)."""
    kind = rng.integers(3)
    if kind == 0:  # sea: dark, weakly textured
        mean = 10 ** rng.uniform(-2.2, -1.6)
        nu = 20.0
    elif kind == 1:  # fields: medium, two parcels with a straight boundary
        mean = 10 ** rng.uniform(-1.5, -1.0)
        nu = 8.0
    else:  # forest: bright, strongly textured
        mean = 10 ** rng.uniform(-1.0, -0.6)
        nu = 3.0
    tex = _smooth(rng.gamma(nu, 1.0 / nu, size=(h, w)).astype(np.float32), 3)
    refl = mean * tex
    if kind == 1:
        yy, xx = np.mgrid[0:h, 0:w]
        a = rng.uniform(0, np.pi)
        side = (np.cos(a) * (xx - rng.uniform(0, w)) + np.sin(a) * (yy - rng.uniform(0, h))) > 0
        refl = np.where(side, refl * 10 ** rng.uniform(-0.5, 0.5), refl)
    return refl.astype(np.float32)


def _blob(h: int, w: int, cy: float, cx: float, sy: float, sx: float, angle: float
          ) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dy, dx = yy - cy, xx - cx
    ca, sa = np.cos(angle), np.sin(angle)
    u = ca * dx + sa * dy
    v = -sa * dx + ca * dy
    return np.exp(-0.5 * ((u / sx) ** 2 + (v / sy) ** 2)).astype(np.float32)


def render_target(refl: np.ndarray, cls: str, cy: float, cx: float,
                  rng: np.random.Generator, scale: float = 1.0) -> np.ndarray:
    """Add one target of class ``cls`` centred at ``(cy, cx)`` to a reflectivity map."""
    h, w = refl.shape
    out = refl.copy()
    bg = float(np.median(refl))
    bright = max(bg, 1e-3) * 10 ** rng.uniform(1.2, 2.0)
    angle = rng.uniform(0, np.pi)
    if cls == "clutter":
        return out
    if cls == "point":
        for _ in range(rng.integers(1, 3)):
            py, px = cy + rng.normal(0, 2 * scale), cx + rng.normal(0, 2 * scale)
            out += bright * 3 * _blob(h, w, py, px, 0.8, 0.8, 0.0)
    elif cls == "ship":
        length = rng.uniform(7, 11) * scale
        out += bright * _blob(h, w, cy, cx, 1.3 * scale, length, angle)
        for t in rng.uniform(-0.8, 0.8, size=3):  # superstructure scatterers along the axis
            out += bright * 2 * _blob(h, w, cy + t * length * np.sin(angle),
                                      cx + t * length * np.cos(angle), 0.8, 0.8, 0.0)
    elif cls == "building":
        side = rng.uniform(6, 10) * scale
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        ca, sa = np.cos(angle), np.sin(angle)
        u = ca * (xx - cx) + sa * (yy - cy)
        v = -sa * (xx - cx) + ca * (yy - cy)
        inside = (np.abs(u) < side) & (np.abs(v) < side)
        out = np.where(inside, out * 2.0, out)
        shadow = (u > side) & (u < 2 * side) & (np.abs(v) < side)  # radar shadow: no return
        out = np.where(shadow, out * 0.05, out)
        edge = (np.abs(u + side) < 1.0) & (np.abs(v) < side)  # double bounce line
        edge |= (np.abs(v + side) < 1.0) & (np.abs(u) < side)
        out = np.where(edge, out + bright * 2, out)
    elif cls == "vehicle":
        out += bright * 0.7 * _blob(h, w, cy, cx, 1.6 * scale, 3.0 * scale, angle)
        ca, sa = np.cos(angle), np.sin(angle)
        for su in (-1, 1):
            for sv in (-1, 1):
                u, v = su * 3.0 * scale, sv * 1.6 * scale
                out += bright * 1.5 * _blob(h, w, cy + sa * u + ca * v, cx + ca * u - sa * v,
                                            0.7, 0.7, 0.0)
    else:
        raise ValueError(f"unknown target class {cls!r}; choose from {CLASSES}")
    return out.astype(np.float32)


def speckle(refl: np.ndarray, looks: float, rng: np.random.Generator) -> np.ndarray:
    """Amplitude ``sqrt(R * Gamma(L, 1/L))``: fully developed ``L``-look speckle."""
    s = rng.gamma(float(looks), 1.0 / float(looks), size=refl.shape).astype(np.float32)
    return np.sqrt(refl * s).astype(np.float32)


def simulate_chips(n: int = 500, size: int = 64, looks: float = 1.0, seed: int = 0,
                   classes: tuple[str, ...] = CLASSES) -> tuple[np.ndarray, np.ndarray]:
    """``n`` amplitude chips ``[n, 1, size, size]`` (float32) and labels ``[n]``.

    Classes are balanced; each chip holds one target (or none, for ``clutter``) near the
    centre on a random background, under speckle of ``looks`` looks.
    """
    if n < 1 or size < 16:
        raise ValueError(f"need n >= 1 and size >= 16, got n={n}, size={size}")
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % len(classes)
    rng.shuffle(labels)
    chips = np.empty((n, 1, size, size), np.float32)
    for i, y in enumerate(labels):
        refl = _background(size, size, rng)
        c = size / 2 + rng.uniform(-size / 8, size / 8, size=2)
        refl = render_target(refl, classes[y], c[0], c[1], rng, scale=size / 64)
        chips[i, 0] = speckle(refl, looks, rng)
    return chips, labels.astype(np.int64)


def simulate_scene(height: int = 512, width: int = 512, n_targets: int = 20,
                   looks: float = 1.0, seed: int = 0) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """A speckled amplitude scene ``[1, H, W]`` with targets, and the list of targets."""
    rng = np.random.default_rng(seed)
    refl = np.empty((height, width), np.float32)
    step = 128
    for r in range(0, height, step):  # a patchwork of background regions
        for c in range(0, width, step):
            hh, ww = min(step, height - r), min(step, width - c)
            refl[r:r + hh, c:c + ww] = _background(hh, ww, rng)
    targets = []
    for _ in range(n_targets):
        cls = CLASSES[1 + rng.integers(len(CLASSES) - 1)]
        cy, cx = rng.uniform(16, height - 16), rng.uniform(16, width - 16)
        y0, x0 = int(max(0, cy - 32)), int(max(0, cx - 32))
        y1, x1 = int(min(height, cy + 32)), int(min(width, cx + 32))
        refl[y0:y1, x0:x1] = render_target(refl[y0:y1, x0:x1], cls, cy - y0, cx - x0, rng)
        targets.append({"class": cls, "row": float(cy), "col": float(cx)})
    return speckle(refl, looks, rng)[None], targets


def write_chip_folder(root: str | Path, n: int = 50, size: int = 64, looks: float = 1.0,
                      seed: int = 0, dtype: str = "float32") -> Path:
    """Write simulated chips as GeoTIFFs in MSTAR-style class sub-folders under ``root``."""
    from .io import write_geotiff

    chips, labels = simulate_chips(n, size, looks, seed)
    root = Path(root)
    for i, (x, y) in enumerate(zip(chips, labels)):
        arr = x if dtype == "float32" else np.clip(x * 1000, 0, 65535).astype(dtype)
        write_geotiff(root / CLASSES[y] / f"chip_{i:05d}.tif", arr, crs=None)
    return root
