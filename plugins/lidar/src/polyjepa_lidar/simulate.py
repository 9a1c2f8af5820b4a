"""A ray-casting LiDAR simulator (SIMULATED data) built on open3d's ``RaycastingScene``.

No package on the registry ships LiDAR scans, so the plugin's demo data comes from here:
street scenes of ground, buildings, vehicles, poles and vegetation, scanned by a spinning
multi-beam sensor (fixed elevation angles, uniform azimuth steps) with range noise,
drop-outs and an incidence-dependent intensity. Every point carries its class.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .io import Cloud

CLASSES = ("ground", "building", "vehicle", "pole", "vegetation")
SCENE_TYPES = ("urban", "suburban", "park", "parking")
REFLECTIVITY = np.array([0.25, 0.45, 0.75, 0.55, 0.12], np.float32)

# per scene type: (buildings, vehicles, poles, trees) count ranges, building size ranges
_LAYOUT = {
    0: {"buildings": (6, 10), "vehicles": (4, 8), "poles": (2, 4), "trees": (0, 3),
        "b_size": (8.0, 18.0), "b_height": (8.0, 20.0)},
    1: {"buildings": (3, 5), "vehicles": (2, 4), "poles": (1, 3), "trees": (5, 9),
        "b_size": (6.0, 10.0), "b_height": (4.0, 7.0)},
    2: {"buildings": (0, 1), "vehicles": (0, 2), "poles": (1, 3), "trees": (12, 20),
        "b_size": (5.0, 8.0), "b_height": (3.0, 5.0)},
    3: {"buildings": (1, 2), "vehicles": (14, 24), "poles": (4, 6), "trees": (1, 3),
        "b_size": (8.0, 14.0), "b_height": (4.0, 10.0)},
}


def _place(rng: np.random.Generator, extent: float, min_dist: float, size: float) -> np.ndarray:
    """A random (x, y) inside the scene, at least ``min_dist + size`` from the sensor."""
    for _ in range(100):
        xy = rng.uniform(-extent, extent, size=2)
        if np.hypot(*xy) > min_dist + size:
            return xy
    return np.array([extent * 0.8, 0.0])


def _yaw(mesh: Any, angle: float, centre: np.ndarray) -> Any:
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    return mesh.rotate(rot, centre)


def build_scene(scene_type: int, rng: np.random.Generator, extent: float = 32.0
                ) -> tuple[Any, dict[int, int]]:
    """An open3d ``RaycastingScene`` for one scene and its geometry-id -> class map."""
    import open3d as o3d

    tm = o3d.t.geometry.TriangleMesh
    scene = o3d.t.geometry.RaycastingScene()
    classes: dict[int, int] = {}

    def add(mesh: Any, cls: int) -> None:
        gid = scene.add_triangles(mesh)
        classes[int(gid)] = cls

    big = extent * 3
    ground = tm.create_box(big, big, 0.2).translate([-big / 2, -big / 2, -0.2])
    add(ground, 0)
    lay = _LAYOUT[int(scene_type)]
    n_b = int(rng.integers(lay["buildings"][0], lay["buildings"][1] + 1))
    for _ in range(n_b):
        w, d = rng.uniform(*lay["b_size"], size=2)
        h = rng.uniform(*lay["b_height"])
        xy = _place(rng, extent, 5.0, max(w, d) / 2)
        box = tm.create_box(float(w), float(d), float(h)).translate(
            [xy[0] - w / 2, xy[1] - d / 2, 0.0])
        add(_yaw(box, rng.uniform(0, np.pi), np.array([xy[0], xy[1], h / 2])), 1)
    n_v = int(rng.integers(lay["vehicles"][0], lay["vehicles"][1] + 1))
    for _ in range(n_v):
        xy = _place(rng, extent * 0.8, 3.0, 2.5)
        length, width, height = rng.uniform(3.8, 5.0), rng.uniform(1.6, 2.0), rng.uniform(1.4, 1.9)
        box = tm.create_box(float(length), float(width), float(height)).translate(
            [xy[0] - length / 2, xy[1] - width / 2, 0.15])
        add(_yaw(box, rng.uniform(0, np.pi), np.array([xy[0], xy[1], height / 2])), 2)
    n_p = int(rng.integers(lay["poles"][0], lay["poles"][1] + 1))
    for _ in range(n_p):
        xy = _place(rng, extent * 0.9, 2.0, 0.2)
        h = rng.uniform(5.0, 8.0)
        pole = tm.create_cylinder(radius=0.15, height=float(h), resolution=8).translate(
            [xy[0], xy[1], h / 2])
        add(pole, 3)
    n_t = int(rng.integers(lay["trees"][0], lay["trees"][1] + 1))
    for _ in range(n_t):
        r = rng.uniform(1.5, 3.0)
        xy = _place(rng, extent, 3.0, r)
        trunk_h = rng.uniform(1.5, 3.0)
        trunk = tm.create_cylinder(radius=0.2, height=float(trunk_h), resolution=8).translate(
            [xy[0], xy[1], trunk_h / 2])
        add(trunk, 4)
        crown = tm.create_sphere(radius=float(r), resolution=8).translate(
            [xy[0], xy[1], trunk_h + r * 0.8])
        add(crown, 4)
    return scene, classes


def beam_rays(beams: int = 16, azimuths: int = 512, elevation: tuple[float, float] = (-20.0, 5.0),
              height: float = 1.8) -> np.ndarray:
    """Rays ``[beams * azimuths, 6]`` of a spinning sensor at ``(0, 0, height)``."""
    el = np.deg2rad(np.linspace(elevation[0], elevation[1], beams))
    az = np.linspace(0.0, 2 * np.pi, azimuths, endpoint=False)
    e, a = np.meshgrid(el, az, indexing="ij")
    d = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], axis=-1).reshape(-1, 3)
    o = np.broadcast_to(np.array([0.0, 0.0, height]), d.shape)
    return np.concatenate([o, d], axis=1).astype(np.float32)


def scan(scene: Any, classes: dict[int, int], rng: np.random.Generator, rays: np.ndarray,
         max_range: float = 48.0, range_noise: float = 0.02, dropout: float = 0.05) -> Cloud:
    """Cast the sensor's rays; noisy points with intensity and per-point classes."""
    import open3d as o3d

    hit = scene.cast_rays(o3d.core.Tensor(rays))
    t = hit["t_hit"].numpy()
    ids = hit["geometry_ids"].numpy().astype(np.int64)
    normals = hit["primitive_normals"].numpy()
    ok = np.isfinite(t) & (t < max_range)
    ok &= rng.random(len(t)) >= dropout
    t = t[ok] + rng.normal(0.0, range_noise, int(ok.sum()))
    d = rays[ok, 3:]
    pts = rays[ok, :3] + d * t[:, None]
    lut = np.zeros(max(classes) + 1, np.int64)
    for gid, cls in classes.items():
        lut[gid] = cls
    labels = lut[ids[ok]]
    cos = np.abs((normals[ok] * d).sum(axis=1))
    inten = REFLECTIVITY[labels] * (0.4 + 0.6 * cos) + rng.normal(0, 0.03, len(labels))
    return Cloud(pts.astype(np.float64), np.clip(inten, 0, 1).astype(np.float32), labels,
                 "simulated")


def simulate_scenes(n_scenes: int = 64, seed: int = 0, extent: float = 32.0, beams: int = 16,
                    azimuths: int = 512, elevation: tuple[float, float] = (-20.0, 5.0),
                    sensor_height: float = 1.8) -> tuple[list[Cloud], list[int]]:
    """``n_scenes`` simulated scans (scene types cycle through ``SCENE_TYPES``)."""
    if n_scenes < 1:
        raise ValueError(f"n_scenes must be at least 1, got {n_scenes}")
    rays = beam_rays(beams, azimuths, tuple(elevation), sensor_height)  # type: ignore[arg-type]
    clouds, types = [], []
    for i in range(int(n_scenes)):
        rng = np.random.default_rng([int(seed), i])
        kind = i % len(SCENE_TYPES)
        scene, classes = build_scene(kind, rng, extent)
        clouds.append(scan(scene, classes, rng, rays, max_range=extent * 1.5))
        types.append(kind)
    return clouds, types
