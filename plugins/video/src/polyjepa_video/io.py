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

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg")
_CACHE_VERSION = 1


def default_cache_dir() -> Path:
    """``$POLYJEPA_VIDEO_CACHE``, else ``~/.cache/polyjepa/video``."""
    env = os.environ.get("POLYJEPA_VIDEO_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "polyjepa" / "video"


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


def decode(path: str | Path, stride: int = 1, fps: float | None = None,
           resize: int | None = None, start: float | None = None,
           end: float | None = None) -> DecodedVideo:
    """Decode ``path`` keeping every ``stride``-th frame, or frames at ``fps`` per second.

    ``resize`` scales the short side to that many pixels (aspect kept). ``start``/``end``
    (seconds) restrict decoding to a window; the container seeks to ``start`` first.
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
    frames: list[np.ndarray] = []
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
            next_time = (start or 0.0)
            half = 0.5 / native
            n = 0
            for frame in container.decode(stream):
                t = (float(frame.pts) * tb - t0) if frame.pts is not None else n / native
                idx = round(t * native)
                n += 1
                if start is not None and t < start - half:
                    continue
                if end is not None and t >= end - 1e-9:
                    break
                if fps is not None:
                    if t < next_time - half:
                        continue
                    while next_time <= t + half:
                        next_time += 1.0 / fps
                elif (idx - round((start or 0.0) * native)) % stride:
                    continue
                img = frame.to_ndarray(format="rgb24", width=width, height=height)
                frames.append(img)
                indices.append(idx)
                times.append(t)
    except DataError:
        raise
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot decode the video (corrupt or truncated?): "
                        f"{exc}") from exc
    if not frames:
        raise DataError(f"{path}: no decodable video frames"
                        + (f" between {start}s and {end}s" if start or end else ""))
    return DecodedVideo(str(path), np.stack(frames), np.asarray(indices, np.int64),
                        np.asarray(times, np.float64), native)


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
    video = decode(path, **params)
    root.mkdir(parents=True, exist_ok=True)
    def write_frames(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, video.frames)

    _atomic_save(npy, write_frames)
    _atomic_save(meta, lambda tmp: Path(tmp).write_text(json.dumps({
        "source": str(path.resolve()), "params": params, "indices": video.indices.tolist(),
        "times": video.times.tolist(), "native_fps": video.native_fps})))
    frames = np.load(npy, mmap_mode="r")
    return DecodedVideo(str(path), frames, video.indices, video.times, video.native_fps)
