"""Video tasks that need temporal features: frozen clip tokens against pixel features.

V-JEPA (Bardes et al., 2024, arXiv:2404.08471; the plugin's recipe ``video``) predicts
masked spatio-temporal regions in feature space, and is judged with an attentive probe
on its frozen tokens; so are these tasks.

- The **arrow of time** on real clips (:func:`arrow_task`): whether a clip plays forwards
  or reversed. Every clip appears both ways (accuracy, chance 0.5). Split by group: each
  video is cut into :data:`CHUNKS` contiguous stretches and a quarter of the stretches is
  held out (a clip and its reverse share a stretch; one split per seed); clips overlap,
  so training clips that share a frame with a test clip are dropped as well.
- The **direction of motion** in simulated videos (:func:`motion_task`; 4 classes).

Baselines on the same split with the same probe (their per-clip features as one token):
pixel statistics (for the arrow identical for a clip and its reverse, so at chance by
construction) and the frame-difference profile. Used by ``benchmarks/quality.py`` and
``polyjepa demo``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

import polyjepa as pj

CHUNKS = 4          # contiguous stretches per video; the probe holds out whole stretches
TEST_SIZE = 0.25
DATASET = {"frames": 8, "stride": 2, "size": 64, "crop": "center", "clip_step": 1,
           "label": "video"}
MODEL = {"encoder.embed_dim": 64, "encoder.depth": 3, "encoder.num_heads": 4,
         "predictor.dim": 32, "predictor.depth": 2, "predictor.num_heads": 2,
         "train.batch_size": 16, "train.lr": 1e-3, "train.warmup_steps": 10,
         "train.rankme_every": 0}


def pixel_statistics(ds: Any) -> np.ndarray:
    """Per-clip hand-made features from raw pixels (uint8 clips ``[T, H, W, 3]``): the
    per-channel mean and std, 8-bin colour histograms, a 4x4 colour thumbnail and the
    frame-difference energy."""
    feats = []
    for i in range(len(ds)):
        c = ds.clip(i).astype(np.float32) / 255.0
        mean = c.mean(axis=(0, 1, 2))
        std = c.std(axis=(0, 1, 2))
        hist = np.concatenate([np.histogram(c[..., k], bins=8, range=(0, 1))[0] / c[..., k].size
                               for k in range(3)])
        t, h, w, _ = c.shape
        thumb = c.mean(axis=0)[: h // 4 * 4, : w // 4 * 4].reshape(4, h // 4, 4, w // 4, 3)
        thumb = thumb.mean(axis=(1, 3)).reshape(-1)
        motion = np.abs(np.diff(c, axis=0)).mean() if t > 1 else 0.0
        feats.append(np.concatenate([mean, std, hist, thumb, [motion]]))
    return np.asarray(feats)


class ForwardReversed:
    """Every clip of ``base`` forwards (label 0) and then reversed in time (label 1)."""

    def __init__(self, base: Any, groups: np.ndarray):
        self.base, self.groups = base, np.r_[groups, groups]
        self.labels = np.r_[np.zeros(len(base), np.int64), np.ones(len(base), np.int64)]

    def __len__(self) -> int:
        return 2 * len(self.base)

    def clip(self, i: int) -> np.ndarray:
        c = self.base.clip(i % len(self.base))
        return c[::-1] if i >= len(self.base) else c

    def __getitem__(self, i: int) -> dict[str, Any]:
        import torch

        x = self.base[i % len(self.base)]["x"]
        if i >= len(self.base):
            x = torch.flip(x, dims=[1])
        return {"x": x, "y": torch.tensor(self.labels[i]), "group": torch.tensor(self.groups[i])}


def both_ways(ds: Any) -> ForwardReversed:
    """Every clip of ``ds`` forwards (label 0), then reversed (label 1)."""
    return ForwardReversed(ds, ds.temporal_chunks(CHUNKS))


def _split(ds: Any, both: ForwardReversed, seed: int) -> tuple[np.ndarray, np.ndarray]:
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
    """The arrow of time through V-JEPA's attentive probe on the frozen tokens of every
    clip forwards and reversed (split as the module says); a baseline's per-clip
    features (forwards, then reversed) go through the same head as single tokens."""
    from .evaluators import attentive_probe, token_features

    ds = ctx.dataset
    both = both_ways(ds)
    if ctx.encoder is not None:
        feats, _ = token_features(pj.EvalContext(None, None, None, ctx.encoder, both,
                                                 ctx.seed, ctx.extra))
    else:
        feats = np.asarray(ctx.embeddings, np.float32)[:, None, :]
    if len(feats) != len(both):
        raise pj.DataError(f"arrow of time: {len(feats)} feature rows for {len(both)} clips "
                           "(forwards and reversed)")
    tr, te = _split(ds, both, ctx.seed)
    return attentive_probe(epochs=60).fit_score(feats, both.labels, tr, te,
                                                ctx.seed)["attentive_probe_acc"]


def pixel_features(ctx: pj.EvalContext) -> np.ndarray:
    """:func:`pixel_statistics` of every clip forwards, then reversed."""
    return pixel_statistics(both_ways(ctx.dataset))


def frame_difference_statistics(ds: Any) -> np.ndarray:
    """Per clip of ``ds``, in time order: the mean colour of every frame and the mean signed
    and mean absolute difference between consecutive frames (``3T + 2(T-1)`` features)."""
    feats = []
    for i in range(len(ds)):
        c = ds.clip(i).astype(np.float32) / 255.0
        diff = np.diff(c, axis=0)
        feats.append(np.concatenate([c.mean(axis=(1, 2)).reshape(-1),
                                     diff.mean(axis=(1, 2, 3)),
                                     np.abs(diff).mean(axis=(1, 2, 3))]))
    return np.asarray(feats)


def frame_differences(ctx: pj.EvalContext) -> np.ndarray:
    """:func:`frame_difference_statistics` of every clip forwards, then reversed."""
    return frame_difference_statistics(both_ways(ctx.dataset))


def arrow_task(videos: Any, steps: int = 150, clip_step: int = 1) -> pj.QualityTask:
    """The ``video`` recipe at :data:`MODEL`'s sizes on 8-frame 64x64 clips of
    ``videos`` (a clip every ``clip_step`` sampled frames), probed on the arrow of time."""
    dataset = {**DATASET, "clip_step": int(clip_step)}
    return pj.QualityTask(
        domain="video", name="arrow_of_time", recipe="video", data=videos, kind="real",
        metric="accuracy (attentive probe)", probe=arrow_probe, steps=steps,
        baselines={"pixel statistics": pj.features_baseline(pixel_features,
                                                            arrow_probe),
                   "frame differences": pj.features_baseline(frame_differences,
                                                             arrow_probe)},
        overrides={**{f"dataset.{k}": v for k, v in dataset.items()}, **MODEL})


def demo_task() -> pj.QualityTask:
    """``polyjepa demo``'s labelled comparison: the direction of motion in simulated
    videos (:func:`motion_task`); on the real clips every method is at chance (the arrow
    of time, in the quality table)."""
    return motion_task(steps=150)


# --------------------------------------------------------------- simulated motion

MOTION = {"frames": 8, "stride": 2, "size": 64, "crop": "center", "clip_step": 4,
          "label": "auto"}


def motion_videos(seed: int, per_class: int = 60) -> Path:
    """Simulated motion videos (:func:`polyjepa_video.simulate.write_motion_videos`) of
    simulator seed ``seed`` in the video cache, written on first use."""
    from .io import default_cache_dir
    from .simulate import write_motion_videos

    return write_motion_videos(default_cache_dir() / f"simulated-motion-s{seed}",
                               per_class=per_class, seed=seed)


def motion_probe(ctx: pj.EvalContext) -> float:
    """Accuracy of V-JEPA's attentive probe (a learned query pools the frozen tokens, then
    a linear layer) naming the direction of motion, on a quarter of the videos held out
    whole (a video's clips share its shapes). A baseline's per-clip features go through
    the same head as a single token each. (A linear probe on the tokens' mean is at chance
    for every method here: the mean of a clip's tokens keeps little of where things move.)
    """
    from .evaluators import attentive_probe

    return attentive_probe(epochs=60, test_size=TEST_SIZE)(ctx)["attentive_probe_acc"]


def motion_task(steps: int = 150, per_class: int = 60) -> pj.QualityTask:
    """Pre-train on simulated motion videos (seed 0, labels unread), probe the direction
    of motion on others (seed 1): 4 classes, chance 0.25."""
    return pj.QualityTask(
        domain="video", name="simulated_motion", recipe="video",
        data=str(motion_videos(0, per_class)), eval_data=str(motion_videos(1, per_class)),
        kind="simulated", metric="accuracy (attentive probe)", probe=motion_probe,
        steps=steps,
        baselines={"pixel statistics": pj.features_baseline(
                       lambda ctx: pixel_statistics(ctx.dataset), motion_probe),
                   "frame differences": pj.features_baseline(
                       lambda ctx: frame_difference_statistics(ctx.dataset), motion_probe)},
        overrides={**{f"dataset.{k}": v for k, v in MOTION.items()}, **MODEL})
