"""Video decoding with PyAV and a memory-mapped cache of decoded, resized frames.

A file is decoded once per sampling setting (frame rate or stride, resize, time window);
the kept frames go to ``<cache>/<key>.npy`` (uint8 ``[F, H, W, 3]``) beside a JSON file
with their source frame indices and timestamps. The key hashes the file's absolute path,
its size and modification time and the sampling parameters, so an edited file or a new
setting is decoded again and later epochs only read the memory map.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from polyjepa import DataError
from polyjepa import warn as _warn

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
_CACHE_VERSION = 2


def default_cache_dir() -> Path:
    """``$POLYJEPA_VIDEO_CACHE``, else ``$POLYJEPA_CACHE/video``, else
    ``~/.cache/polyjepa/video``."""
    env = os.environ.get("POLYJEPA_VIDEO_CACHE")
    if env:
        return Path(env)
    root = os.environ.get("POLYJEPA_CACHE")
    return (Path(root) if root else Path.home() / ".cache" / "polyjepa") / "video"


@dataclass
class DecodedVideo:
    """Kept frames of one file: ``frames`` uint8 ``[F, H, W, 3]`` (possibly memory-mapped)."""

    path: str
    frames: np.ndarray
    indices: np.ndarray  # source frame number of each kept frame
    times: np.ndarray  # seconds
    native_fps: float


def _resized_shape(width: int, height: int, short_side: int | None) -> tuple[int, int]:
    if not short_side:
        return width, height
    scale = short_side / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _declared_frames(stream: Any, tb: float, native: float) -> int:
    """Frames the container says the stream holds (0 when it does not say)."""
    if stream.frames:
        return int(stream.frames)
    if stream.duration:
        return int(round(float(stream.duration) * tb * native))
    return 0


def _check_complete(path: Path, declared: int, last_idx: int, native: float,
                    end: float | None) -> None:
    """Raise when decoding stopped well before the frames the container declares.

    A file cut short after its index (e.g. an mp4 written with ``faststart`` and then
    truncated) opens fine and decodes its first part without any error from FFmpeg;
    only the declared length reveals that the rest is missing.
    """
    expected = declared if end is None else min(declared, int(end * native))
    slack = max(3, int(0.02 * declared))
    if last_idx + 1 < expected - slack:
        raise DataError(f"{path}: truncated video: the container declares {declared} frames "
                        f"({declared / native:.2f} s) but decoding stopped after frame "
                        f"{last_idx + 1} ({(last_idx + 1) / native:.2f} s)")


def decode(path: str | Path, stride: int = 1, fps: float | None = None,
           resize: int | None = None, start: float | None = None,
           end: float | None = None) -> DecodedVideo:
    """Decode ``path`` keeping every ``stride``-th frame, or frames at ``fps`` per second.

    ``resize`` scales the short side to that many pixels (aspect kept). ``start``/``end``
    (seconds) restrict decoding to a window; the container seeks to ``start`` first.
    The kept frames are held in memory; :func:`load_cached` streams them to disk instead.
    """
    frames: list[np.ndarray] = []
    indices, times, native = _decode_into(Path(path), frames.append, stride, fps, resize,
                                          start, end)
    return DecodedVideo(str(path), np.stack(frames), indices, times, native)


def _decode_into(path: Path, sink: Any, stride: int, fps: float | None,
                 resize: int | None, start: float | None,
                 end: float | None) -> tuple[np.ndarray, np.ndarray, float]:
    """Decode ``path``, handing each kept uint8 ``[H, W, 3]`` frame to ``sink``.

    Returns the source frame numbers and times of the kept frames and the native rate.
    """
    import av

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    if stride < 1:
        raise DataError(f"{path}: stride must be at least 1, got {stride}")
    if fps is not None and fps <= 0:
        raise DataError(f"{path}: fps must be positive, got {fps}")
    indices: list[int] = []
    times: list[float] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise DataError(f"{path}: the file holds no video stream")
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            rate = stream.average_rate or stream.guessed_rate
            native = float(rate) if rate else 25.0
            width, height = _resized_shape(stream.codec_context.width,
                                           stream.codec_context.height, resize)
            tb = float(stream.time_base) if stream.time_base else 1.0 / native
            t0 = float(stream.start_time or 0) * tb
            if start:
                container.seek(int((t0 + start) / tb), stream=stream, backward=True,
                               any_frame=False)
            declared = _declared_frames(stream, tb, native)
            next_time = (start or 0.0)
            half = 0.5 / native
            n, last_idx, stopped = 0, -1, False
            for frame in container.decode(stream):
                t = (float(frame.pts) * tb - t0) if frame.pts is not None else n / native
                idx = round(t * native)
                n += 1
                last_idx = max(last_idx, idx)
                if start is not None and t < start - half:
                    continue
                if end is not None and t >= end - 1e-9:
                    stopped = True
                    break
                if fps is not None:
                    if t < next_time - half:
                        continue
                    while next_time <= t + half:
                        next_time += 1.0 / fps
                elif (idx - round((start or 0.0) * native)) % stride:
                    continue
                sink(frame.to_ndarray(format="rgb24", width=width, height=height))
                indices.append(idx)
                times.append(t)
            if declared and not stopped:
                _check_complete(path, declared, last_idx, native, end)
    except DataError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode the video (corrupt or truncated?): "
                        f"{exc}") from exc
    if not indices:
        raise DataError(f"{path}: no decodable video frames"
                        + (f" between {start}s and {end}s" if start or end else ""))
    return np.asarray(indices, np.int64), np.asarray(times, np.float64), native


class _CacheWriteError(Exception):
    """Writing the cache failed (kept apart from decoding errors, which are OSErrors too)."""


class _NpyStream:
    """Write uint8 frames one by one into a ``.npy`` file whose length is known only at
    the end: a fixed-size header is reserved and filled in by :meth:`close`."""

    HEADER = 128  # bytes, magic included; a multiple of 64 like numpy's own headers

    def __init__(self, fh: Any):
        self.fh, self.count, self.shape = fh, 0, None
        fh.write(b"\0" * self.HEADER)

    def __call__(self, frame: np.ndarray) -> None:
        if self.shape is None:
            self.shape = frame.shape
        elif frame.shape != self.shape:
            raise ValueError(f"frame shape changed from {self.shape} to {frame.shape}")
        try:
            self.fh.write(np.ascontiguousarray(frame, np.uint8).tobytes())
        except OSError as exc:  # disk full, ...: not the video's fault
            raise _CacheWriteError(str(exc)) from exc
        self.count += 1

    def close(self) -> None:
        shape = (self.count, *(self.shape or (0, 0, 3)))
        text = f"{{'descr': '|u1', 'fortran_order': False, 'shape': {shape}, }}"
        room = self.HEADER - 10
        if len(text) + 1 > room:
            raise ValueError(f"array shape {shape} too large for the reserved npy header")
        self.fh.seek(0)
        self.fh.write(b"\x93NUMPY\x01\x00" + room.to_bytes(2, "little")
                      + (text.ljust(room - 1) + "\n").encode("latin1"))


def cache_key(path: str | Path, **params: Any) -> str:
    """Hash of the file's identity (absolute path, size, mtime) and the sampling params."""
    p = Path(path).resolve()
    st = p.stat()
    ident = {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
             "version": _CACHE_VERSION, **params}
    return hashlib.sha1(json.dumps(ident, sort_keys=True).encode()).hexdigest()[:20]


def _atomic_save(target: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=target.name, suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load_cached(path: str | Path, cache_dir: str | Path | None = None, use_cache: bool = True,
                **params: Any) -> DecodedVideo:
    """:func:`decode` through the cache: decoded once, then memory-mapped from ``.npy``."""
    if not use_cache:
        return decode(path, **params)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such video file")
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    key = cache_key(path, **params)
    npy, meta = root / f"{key}.npy", root / f"{key}.json"
    if npy.is_file() and meta.is_file():
        try:
            info = json.loads(meta.read_text())
            frames = np.load(npy, mmap_mode="r")
            if frames.shape[0] == len(info["indices"]):
                return DecodedVideo(str(path), frames, np.asarray(info["indices"], np.int64),
                                    np.asarray(info["times"], np.float64),
                                    float(info["native_fps"]))
        except (OSError, ValueError, KeyError):
            pass  # a damaged cache entry is rebuilt below
    decoded: dict[str, Any] = {}

    def write_frames(tmp: str) -> None:
        # frames go straight to disk as they are decoded: memory stays at one frame
        with open(tmp, "r+b") as fh:
            out = _NpyStream(fh)
            decoded["result"] = _decode_into(path, out, **_decode_args(params))
            out.close()

    try:
        root.mkdir(parents=True, exist_ok=True)
        _atomic_save(npy, write_frames)
        indices, times, native = decoded["result"]
        _atomic_save(meta, lambda tmp: Path(tmp).write_text(json.dumps({
            "source": str(path.resolve()), "params": params, "indices": indices.tolist(),
            "times": times.tolist(), "native_fps": native})))
        frames = np.load(npy, mmap_mode="r")
    except (OSError, _CacheWriteError) as exc:
        _warn(f"{path}: cannot write the decoded-clip cache in {root} ({exc}); "
              f"decoding into memory instead")
        return decode(path, **params)
    return DecodedVideo(str(path), frames, indices, times, native)


def _decode_args(params: dict[str, Any]) -> dict[str, Any]:
    args = {"stride": 1, "fps": None, "resize": None, "start": None, "end": None}
    unknown = sorted(set(params) - set(args))
    if unknown:
        raise TypeError(f"unknown decoding parameters {unknown}")
    return {**args, **params}
