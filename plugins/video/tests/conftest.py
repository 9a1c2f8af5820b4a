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
