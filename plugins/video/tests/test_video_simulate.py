"""Simulated motion videos: what moves moves the labelled way, and the reader reads them."""

from __future__ import annotations

import numpy as np
import pytest

import polyjepa
from polyjepa_video.simulate import DIRECTIONS, motion_frames, write_motion_videos


def _shift(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """The circular shift (dy, dx) that best carries image ``a`` onto ``b``."""
    corr = np.fft.ifft2(np.fft.fft2(b) * np.conj(np.fft.fft2(a))).real
    dy, dx = np.unravel_index(np.argmax(corr), corr.shape)
    h, w = a.shape
    return int((dy + h // 2) % h - h // 2), int((dx + w // 2) % w - w // 2)


@pytest.mark.parametrize("direction", DIRECTIONS)
def test_shapes_move_the_labelled_way(direction):
    want = {"right": (0, 1), "left": (0, -1), "down": (1, 0), "up": (-1, 0)}[direction]
    for seed in range(3):
        frames = motion_frames(direction, seed, frames=16, size=64).astype(np.float64)
        # the still background is each pixel's median over time; what differs moves
        fg = np.abs(frames - np.median(frames, axis=0)).sum(axis=-1)
        shifts = np.array([_shift(fg[t], fg[t + 1]) for t in range(15)])
        along = shifts @ np.array(want)
        across = shifts @ np.array(want[::-1])
        assert np.median(along) >= 1 and np.median(np.abs(across)) == 0, shifts


def test_videos_are_read_as_a_labelled_class_folder(tmp_path):
    folder = write_motion_videos(tmp_path / "motion", per_class=2, frames=12, size=32)
    ds = polyjepa.create_dataset("video.clips", str(folder), frames=4, stride=2, size=32,
                                 clip_step=2, label="auto")
    assert ds.state["classes"] == sorted(DIRECTIONS)
    assert len(ds) == 4 * 2 * 2  # 4 classes x 2 videos x 2 clips (6 sampled frames each)
    assert sorted(set(ds.labels.tolist())) == [0, 1, 2, 3]
    assert len(set(ds.groups.tolist())) == 8  # each video its own group
    item = ds[0]
    assert item["x"].shape == (3, 4, 32, 32)
    again = write_motion_videos(folder, per_class=2, frames=12, size=32)
    assert again == folder and (folder / "up" / "v0002.mp4").is_file()
    with pytest.raises(ValueError, match="sideways"):
        motion_frames("sideways", 0)


def test_simulate_command(tmp_path, capsys):
    from polyjepa_video import __main__ as cli

    assert cli.main(["simulate", str(tmp_path / "out"), "--per-class", "1", "--frames", "6",
                     "--size", "32"]) == 0
    assert "4 simulated videos" in capsys.readouterr().out
    assert sorted(p.parent.name for p in (tmp_path / "out").glob("*/*.mp4")) == \
        sorted(DIRECTIONS)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "holiday.mp4").write_bytes(b"x")
    assert cli.main(["simulate", str(tmp_path / "mine"), "--per-class", "1"]) == 1
    assert "holiday.mp4" in capsys.readouterr().err
    assert (tmp_path / "mine" / "holiday.mp4").read_bytes() == b"x"
