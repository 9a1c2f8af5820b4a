"""Quality tasks on BEV pillar grids: per-pillar classes against pillar height statistics.

AD-L-JEPA (the plugin's recipe ``lidar``) pre-trains on bird's-eye-view pillars and is
judged on dense, per-location semantics, so the probe scores every occupied pillar, not
the scene: a logistic regression on the frozen per-pillar token embeddings, per-pillar
mIoU over the classes of the held-out groups. The probe computes those embeddings itself
from ``ctx.encoder`` (:func:`polyjepa.run_quality_task` pools one vector per window or
scene, and pillar classes need one vector per pillar). The non-learned baseline is the
field's usual one: each pillar's hand-made height statistics (log point count,
mean/min/max/std height above ground, mean intensity), with a seeded random forest and
with the same logistic probe, on the same pillars and split. Used by
``benchmarks/quality.py`` and ``polyjepa demo``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import polyjepa as pj
from polyjepa.quality import Score

from .datasets import LidarDataset, simulated_dataset
from .evaluators import _miou_from_pairs, pillar_embeddings, probe_pillars
from .pillars import HEIGHT_STATS

TILE = 10.0  # ft: 16 x 16 pillars of 0.625 ft
EXTENT = 24.0  # m: half-width of the simulated scenes' BEV box
MAX_TRAIN = 20000  # pillars a probe trains on at most (as lidar.pillar_probe)
MODEL = {"encoder.embed_dim": 64, "encoder.depth": 2, "encoder.num_heads": 4,
         "predictor.dim": 32, "predictor.depth": 2, "predictor.num_heads": 2,
         "dataset.grid": 16, "train.batch_size": 16, "train.lr": 1e-3,
         "train.warmup_steps": 10, "train.rankme_every": 0, "train.rankme_samples": 256,
         "eval.batch_size": 32}


def las_windows(path: str | Path) -> Callable[[dict[str, Any]], LidarDataset]:
    """Non-overlapping windows of the tile, with the run's normalisation and grid."""
    def build(state: dict[str, Any]) -> LidarDataset:
        kept = {k: v for k, v in state.items() if not k.startswith("tile")}
        return LidarDataset(Path(path), tile=TILE, state=kept)
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
    """The height statistics ``[M, 6]`` of the probe set's labelled pillars."""
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


def pillar_task(name: str, kind: str, data: Any,
                build: Callable[[dict[str, Any]], LidarDataset], steps: int,
                overrides: dict[str, Any]) -> pj.QualityTask:
    """The ``lidar`` recipe at :data:`MODEL`'s sizes, probed per pillar on ``build``'s
    dataset (called with the run's normalisation state), against both baselines."""
    pillars = ProbeSet(build)
    probe = pillar_probe(pillars)
    return pj.QualityTask(
        domain="lidar", name=name, recipe="lidar", data=data, kind=kind,
        metric="pillar mIoU (logistic)", probe=probe, steps=steps,
        baselines={"height stats + RF": random_forest(pillars),
                   "height stats + logistic": pj.features_baseline(height_statistics(pillars),
                                                                   probe)},
        overrides={**MODEL, **overrides})


def las_task(path: str | Path, steps: int = 30) -> pj.QualityTask:
    """A real ASPRS-classified LAS tile: pre-trained on overlapping 10 ft windows (stride
    2.5 ft), probed on the non-overlapping windows of the same tile."""
    return pillar_task("las_tile", "real", str(path), las_windows(path), steps,
                       {"dataset.tile": TILE, "dataset.tile_stride": TILE / 4})


def raycast_task(steps: int = 40, n_scenes: int = 128) -> pj.QualityTask:
    """Pre-train on ``n_scenes`` SIMULATED ray-cast scenes (simulator seed 0), probe 64
    others (seed 1)."""
    return pillar_task("raycast_scenes", "simulated", None, sim_scenes, steps,
                       {"dataset.name": "lidar.simulated", "dataset.n_scenes": n_scenes,
                        "dataset.extent": EXTENT})


def demo_task() -> pj.QualityTask:
    """``polyjepa demo``'s labelled comparison: the demo's 64 simulated scenes and 150
    steps, probed on 64 held-out simulated scenes."""
    task = raycast_task(steps=150, n_scenes=64)
    task.overrides["train.warmup_steps"] = 15
    return task
