"""Quality tasks of polyjepa-lidar: per-pillar semantic classes of BEV pillar grids.

Data: the real ASPRS-classified airborne LAS tile in ``../shared/data/lidar/las`` (about
25k points; ground, low/medium/high vegetation, building), pre-trained on overlapping
10 ft windows of 16 x 16 pillars and probed on the non-overlapping windows of the same
tile (labels are never seen in pre-training); and SIMULATED ray-cast street scenes
(ground, building, vehicle, pole, vegetation), pre-trained on one set of scenes and probed
on 64 others.

Probe: a logistic regression (``lidar.pillar_probe``'s) on the frozen per-pillar token
embeddings, which it computes itself from ``ctx.encoder`` (the harness pools one vector
per window; pillar classes need one per pillar). Score: per-pillar mIoU over the classes
present in the test split. Split: by spatial block of 2 x 2 windows (LAS) or by scene
(simulated), a quarter of the groups held out, one split per seed. Baselines on the same
pillars and split: the hand-made height statistics of each pillar (log point count,
mean/min/max/std height above ground, mean intensity) with a seeded random forest and
with the same logistic probe. Run through ``benchmarks/quality.py lidar``
(``nox -s quality -- lidar``); the tasks themselves live in
``polyjepa_lidar.quality``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import polyjepa as pj
from polyjepa.testing import shared_data
from polyjepa_lidar.quality import las_task, raycast_task


def las_file() -> Path | None:
    """The first LAS tile in ``../shared/data/lidar/las``, else ``None``."""
    folder = shared_data("lidar", "las")
    files = sorted(folder.glob("*.las")) if folder is not None else []
    return files[0] if files else None


def tasks() -> list[pj.QualityTask]:
    out = []
    las = las_file()
    if las is not None:
        out.append(las_task(las, steps=30))
    out.append(raycast_task(steps=40, n_scenes=128))
    # judged on the real tile; on the ray-cast scenes where it is absent
    return [replace(t, main=True) for t in out]
