"""Test clips in the plugin's real formats.

The generic tests run on clips these fixtures write themselves with PyAV: moving shapes
on a drifting, textured background, H.264 in .mp4, and transcodes of one of them into
the other containers. The real clips of the shared data (``shared_videos``) are an extra
layer that skips when they are absent.
"""

from __future__ import annotations

import shutil
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pytest

from polyjepa.testing import shared_data, shared_data_or_skip
from polyjepa_video.simulate import encode_h264

# a real clip of the shared data; None where absent (the tests that read it skip)
CARPHONE = shared_data("video", "carphone_pristine.mp4")

# tiny sizes for CPU tests: 4-frame 32x32 clips, 2x8x8 tubelets -> a 2x4x4 grid
TINY = {"dataset.frames": 4, "dataset.size": 32, "dataset.stride": 2,
        "encoder.embed_dim": 32, "encoder.depth": 1, "encoder.num_heads": 2,
        "encoder.patch_size": 8, "encoder.tubelet": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}


class Clip(NamedTuple):
    """A generated clip: its name, frame count, size and rate."""

    name: str
    frames: int
    width: int
    height: int
    rate: Fraction
    seed: int


# ORBIT plays the part of a longer PAL clip, SLIDE of a shorter NTSC one (29.97 fps, the
# aspect ratio of CIF video)
ORBIT = Clip("orbit.mp4", 64, 96, 64, Fraction(25), 1)
SLIDE = Clip("slide.mp4", 48, 88, 72, Fraction(30000, 1001), 2)


def shapes(clip: Clip) -> np.ndarray:
    """Uint8 frames ``[T, H, W, 3]``: a disc circling, a bar sliding right and a square
    sliding up over a still background (colour gradients and a wavy pattern, seeded)."""
    rng = np.random.default_rng(clip.seed)
    h, w = clip.height, clip.width
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    colours = rng.integers(60, 255, (3, 3))
    phase = rng.uniform(0, 2 * np.pi, 2)
    wave = 20 + 20 * np.sin(xx / 6 + phase[0]) * np.cos(yy / 8 + phase[1])
    background = np.stack([xx / w * 120 + wave, yy / h * 100 + 30, 140 - wave], axis=-1)
    out = np.empty((clip.frames, h, w, 3), np.uint8)
    for k in range(clip.frames):
        t = k / clip.frames
        img = background.copy()
        cx, cy = w * (0.5 + 0.3 * np.cos(2 * np.pi * t)), h * (0.5 + 0.3 * np.sin(2 * np.pi * t))
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < (h / 6) ** 2] = colours[0]
        x0 = int((w - w // 4) * t)
        img[h // 8: h // 8 + h // 5, x0: x0 + w // 4] = colours[1]
        y0 = int((h - 12) * (1 - t))
        img[y0: y0 + 10, w - 20: w - 8] = colours[2]
        out[k] = np.clip(img, 0, 255)
    return out


def write_h264(path: Path, clip: Clip) -> Path:
    """Encode :func:`shapes` of ``clip`` as H.264 (libx264, yuv420p, one thread) in .mp4."""
    return encode_h264(path, shapes(clip), rate=clip.rate)


@pytest.fixture(scope="session")
def videos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The generated clips ``[ORBIT, SLIDE]`` (read-only: copy before changing one)."""
    root = tmp_path_factory.mktemp("clips")
    return [write_h264(root / c.name, c) for c in (ORBIT, SLIDE)]


@pytest.fixture(autouse=True)
def video_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One decoded-clip cache per test session, never the user's own cache."""
    root = tmp_path_factory.getbasetemp() / "video-cache"
    monkeypatch.setenv("POLYJEPA_VIDEO_CACHE", str(root))
    return root


@pytest.fixture
def shared_videos() -> list[Path]:
    """The real bikes and carphone clips of the shared data (skips without them)."""
    return [shared_data_or_skip("video", "bikes.mp4"),
            shared_data_or_skip("video", "carphone_pristine.mp4")]


@pytest.fixture
def class_folder(tmp_path: Path, videos: list[Path]) -> Path:
    """Two class sub-folders holding copies of the generated clips."""
    root = tmp_path / "classes"
    for cls, src in (("orbit", videos[0]), ("slide", videos[1])):
        (root / cls).mkdir(parents=True)
        shutil.copy(src, root / cls / src.name)
    return root


# container -> (encoder, pixel format): one encoder per container that people meet
FORMATS = {".avi": ("mpeg4", "yuv420p"), ".mkv": ("ffv1", "yuv420p"),
           ".webm": ("libvpx", "yuv420p"), ".mov": ("mjpeg", "yuvj420p")}


def transcode(src: Path, dst: Path, codec: str, pix_fmt: str, frames: int) -> Path:
    """Re-encode the first ``frames`` frames of ``src`` into ``dst`` with PyAV."""
    from fractions import Fraction

    import av

    options = {"deadline": "realtime", "cpu-used": "8"} if codec == "libvpx" else {}
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        ist = inp.streams.video[0]
        rate = Fraction(ist.average_rate)
        ost = out.add_stream(codec, rate=rate, options=options)
        ost.width, ost.height = ist.codec_context.width, ist.codec_context.height
        ost.pix_fmt = pix_fmt
        for k, frame in enumerate(inp.decode(ist)):
            if k >= frames:
                break
            frame.pts, frame.time_base = k, 1 / rate
            for packet in ost.encode(frame):
                out.mux(packet)
        for packet in ost.encode():
            out.mux(packet)
    return dst


def remux_faststart(src: Path, dst: Path) -> Path:
    """Copy ``src``'s video packets into an mp4 whose index comes before the data."""
    import av

    with av.open(str(src)) as inp, av.open(str(dst), "w",
                                           options={"movflags": "faststart"}) as out:
        ist = inp.streams.video[0]
        ost = out.add_stream_from_template(ist)
        for packet in inp.demux(ist):
            if packet.dts is None:
                continue
            packet.stream = ost
            out.mux(packet)
    return dst


def _other_formats(src: Path, root: Path) -> dict[str, Path]:
    return {ext: transcode(src, root / f"{src.stem}{ext}", codec, pix, 40)
            for ext, (codec, pix) in FORMATS.items()}


@pytest.fixture(scope="session")
def other_formats(tmp_path_factory: pytest.TempPathFactory,
                  videos: list[Path]) -> dict[str, Path]:
    """The first 40 frames of the generated SLIDE clip as .avi, .mkv, .webm and .mov."""
    return _other_formats(videos[1], tmp_path_factory.mktemp("formats"))


@pytest.fixture(scope="session")
def real_other_formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 40 frames of carphone_pristine.mp4 as .avi, .mkv, .webm and .mov."""
    carphone = shared_data_or_skip("video", "carphone_pristine.mp4")
    return _other_formats(carphone, tmp_path_factory.mktemp("real-formats"))
