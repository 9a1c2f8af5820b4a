from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

DATA = Path(os.environ.get("POLYJEPA_SHARED_DATA",
                           Path(__file__).resolve().parents[3].parent / "shared" / "data"))
VIDEO = DATA / "video"
BIKES = VIDEO / "bikes.mp4"
CARPHONE = VIDEO / "carphone_pristine.mp4"

# tiny sizes for CPU tests: 4-frame 32x32 clips, 2x8x8 tubelets -> a 2x4x4 grid
TINY = {"dataset.frames": 4, "dataset.size": 32, "dataset.stride": 2,
        "encoder.embed_dim": 32, "encoder.depth": 1, "encoder.num_heads": 2,
        "encoder.patch_size": 8, "encoder.tubelet": 2,
        "predictor.dim": 16, "predictor.depth": 1, "predictor.num_heads": 2}


@pytest.fixture(autouse=True)
def video_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """One decoded-clip cache per test session, never the user's own cache."""
    root = tmp_path_factory.getbasetemp() / "video-cache"
    monkeypatch.setenv("POLYJEPA_VIDEO_CACHE", str(root))
    return root


@pytest.fixture
def shared_videos() -> list[Path]:
    if not BIKES.is_file() or not CARPHONE.is_file():
        pytest.skip(f"shared video data not found in {VIDEO}")
    return [BIKES, CARPHONE]


@pytest.fixture
def class_folder(tmp_path: Path, shared_videos: list[Path]) -> Path:
    """Two class sub-folders holding copies of the real clips."""
    root = tmp_path / "classes"
    for cls, src in (("bikes", shared_videos[0]), ("phone", shared_videos[1])):
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


@pytest.fixture(scope="session")
def other_formats(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The first 40 frames of carphone_pristine.mp4 as .avi, .mkv, .webm and .mov."""
    if not CARPHONE.is_file():
        pytest.skip(f"shared video data not found in {VIDEO}")
    root = tmp_path_factory.mktemp("formats")
    return {ext: transcode(CARPHONE, root / f"carphone{ext}", codec, pix, 40)
            for ext, (codec, pix) in FORMATS.items()}
