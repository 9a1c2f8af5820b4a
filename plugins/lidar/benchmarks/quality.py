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
(``nox -s quality -- lidar``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import polyjepa as pj
from polyjepa.quality import Score
from polyjepa_lidar.dataset import LidarDataset, simulated_dataset
from polyjepa_lidar.evaluators import _miou_from_pairs, pillar_embeddings, probe_pillars
from polyjepa_lidar.pillars import HEIGHT_STATS

SHARED = Path(os.environ.get("POLYJEPA_SHARED_DATA",
                             Path(__file__).resolve().parents[3].parent / "shared" / "data"))
TILE = 10.0  # ft: 16 x 16 pillars of 0.625 ft
EXTENT = 24.0  # m: half-width of the simulated scenes' BEV box
MAX_TRAIN = 20000  # pillars a probe trains on at most (as lidar.pillar_probe)
MODEL = {"encoder.embed_dim": 64, "encoder.depth": 2, "encoder.num_heads": 4,
         "predictor.dim": 32, "predictor.depth": 2, "predictor.num_heads": 2,
         "dataset.grid": 16, "train.batch_size": 16, "train.lr": 1e-3,
         "train.warmup_steps": 10, "train.rankme_every": 0, "train.rankme_samples": 256,
         "eval.batch_size": 32}


def las_file() -> Path | None:
    files = sorted((SHARED / "lidar" / "las").glob("*.las"))
    return files[0] if files else None


def las_windows(path: Path) -> Callable[[dict[str, Any]], LidarDataset]:
    """Non-overlapping windows of the tile, with the run's normalisation and grid."""
    def build(state: dict[str, Any]) -> LidarDataset:
        kept = {k: v for k, v in state.items() if not k.startswith("tile")}
        return LidarDataset(path, tile=TILE, state=kept)
    return build


def sim_scenes(state: dict[str, Any]) -> LidarDataset:
    """64 simulated scenes none of which pre-training saw (simulator seed 1, not 0)."""
    return simulated_dataset(n_scenes=64, sim_seed=1, extent=EXTENT, state=state)


def pillar_table(dataset: LidarDataset) -> dict[str, np.ndarray]:
    """Labelled occupied pillars in :func:`pillar_embeddings`' row order, without an
    encoder: ``labels``, ``groups`` and the ``height`` statistics ``[M, 6]``."""
    lab = dataset.pillar_labels.numpy()
    ok = (lab >= 0) & dataset.valid.numpy().astype(bool)
    x = dataset.x.numpy()
    feats = x.reshape(x.shape[0], x.shape[1], -1).transpose(0, 2, 1)[ok]
    groups = np.broadcast_to(dataset.groups.numpy()[:, None], lab.shape)[ok]
    return {"labels": lab[ok], "groups": groups,
            "height": feats[:, list(HEIGHT_STATS)].astype(np.float64)}


class ProbeSet:
    """A task's probe set, built once per normalisation state (the run's
    ``dataset_state``, read off ``ctx.dataset``), with its pillar table."""

    def __init__(self, build: Callable[[dict[str, Any]], LidarDataset]):
        self.build = build
        self.cache: dict[str, tuple[LidarDataset, dict[str, np.ndarray]]] = {}

    def __call__(self, ctx: pj.EvalContext) -> tuple[LidarDataset, dict[str, np.ndarray]]:
        state = dict(getattr(ctx.dataset, "state", None) or {})
        key = json.dumps(state, sort_keys=True)
        if key not in self.cache:
            dataset = self.build(state)
            self.cache[key] = (dataset, pillar_table(dataset))
        return self.cache[key]


def pillar_probe(pillars: ProbeSet) -> Score:
    """Per-pillar mIoU of the logistic probe on the encoder's pillar tokens (or, for a
    baseline without an encoder, on the per-pillar rows it passes as embeddings)."""
    def probe(ctx: pj.EvalContext) -> float:
        dataset, table = pillars(ctx)
        if ctx.encoder is not None:
            arr = pillar_embeddings(ctx.encoder, dataset, batch_size=32)
            if not np.array_equal(arr["labels"], table["labels"]):
                raise pj.DataError("pillar embeddings and the pillar table disagree")
            x = arr["embeddings"]
        else:
            x = np.asarray(ctx.embeddings, np.float64)
            if len(x) != len(table["labels"]):
                raise pj.DataError(f"{len(x)} feature rows for {len(table['labels'])} pillars")
        return probe_pillars(x, table["labels"], table["groups"], seed=ctx.seed,
                             max_train=MAX_TRAIN)["pillar_miou"]
    return probe


def height_statistics(pillars: ProbeSet) -> Callable[[pj.EvalContext], np.ndarray]:
    def features(ctx: pj.EvalContext) -> np.ndarray:
        return pillars(ctx)[1]["height"]
    return features


def random_forest(pillars: ProbeSet) -> Score:
    """Height statistics with a seeded random forest, on the probe's split and rows."""
    def score(ctx: pj.EvalContext) -> float:
        from sklearn.ensemble import RandomForestClassifier

        table = pillars(ctx)[1]
        x, y = table["height"], table["labels"]
        tr, te = pj.split_indices(y, table["groups"], ctx.seed)
        if len(tr) > MAX_TRAIN:
            tr = np.random.default_rng(ctx.seed).choice(tr, MAX_TRAIN, replace=False)
        model = RandomForestClassifier(n_estimators=100, min_samples_leaf=2,
                                       random_state=ctx.seed, n_jobs=1)
        return _miou_from_pairs(y[te], model.fit(x[tr], y[tr]).predict(x[te]))
    return score


def _task(name: str, kind: str, data: Any, build: Callable[[dict[str, Any]], LidarDataset],
          steps: int, overrides: dict[str, Any]) -> pj.QualityTask:
    pillars = ProbeSet(build)
    probe = pillar_probe(pillars)
    return pj.QualityTask(
        domain="lidar", name=name, recipe="lidar", data=data, kind=kind,
        metric="pillar mIoU (logistic)", probe=probe, steps=steps,
        baselines={"height stats + RF": random_forest(pillars),
                   "height stats + logistic": pj.features_baseline(height_statistics(pillars),
                                                                   probe)},
        overrides={**MODEL, **overrides})


def tasks() -> list[pj.QualityTask]:
    out = []
    las = las_file()
    if las is not None:
        out.append(_task("las_tile", "real", str(las), las_windows(las), 30,
                         {"dataset.tile": TILE, "dataset.tile_stride": TILE / 4}))
    out.append(_task("raycast_scenes", "simulated", None, sim_scenes, 40,
                     {"dataset.name": "lidar.simulated", "dataset.n_scenes": 128,
                      "dataset.extent": EXTENT}))
    return out
