"""Simulated videos whose class is a direction of motion: labelled video no package ships.

Each video shows two or three shapes (discs, squares, bars; random colours and sizes)
sliding over a still, textured background, all in one direction (right, left, down or
up) at 1.5-3 pixels a frame each, wrapping at the edges, with sensor noise. Whether a
model knows which way things move is a question only temporal features can answer: every
frame of a clip, and the clip's average, look alike whatever the direction, except for
the axis the shapes streak along. :func:`write_motion_videos` writes them as H.264
``.mp4`` files in class sub-folders, which the ``video.clips`` reader reads like any
labelled video folder.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from polyjepa import generated_folder

DIRECTIONS = ("right", "left", "down", "up")
_STEP = {"right": (0.0, 1.0), "left": (0.0, -1.0), "down": (1.0, 0.0), "up": (-1.0, 0.0)}


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """A smooth colour texture ``[H, W, 3]`` (0-255): a few random plane waves per channel."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    out = np.empty((size, size, 3))
    for c in range(3):
        acc = np.full((size, size), rng.uniform(60, 160))
        for _ in range(4):
            k = rng.uniform(0.05, 0.35, 2) * rng.choice([-1, 1], 2)
            acc += rng.uniform(8, 25) * np.sin(k[0] * yy + k[1] * xx + rng.uniform(0, 2 * np.pi))
        out[..., c] = acc
    return out


def motion_frames(direction: str, seed: int, frames: int = 24, size: int = 64) -> np.ndarray:
    """Uint8 frames ``[T, size, size, 3]`` of shapes all moving in ``direction``."""
    if direction not in _STEP:
        raise ValueError(f"direction {direction!r}: choose one of {DIRECTIONS}")
    rng = np.random.default_rng([seed, 4242])
    bg = _background(rng, size)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    dy, dx = _STEP[direction]
    sprites = []
    for _ in range(int(rng.integers(2, 4))):
        kind = rng.choice(["disc", "square", "bar"])
        radius = rng.uniform(3.0, 7.0)
        speed = rng.uniform(1.5, 3.0)
        colour = rng.uniform(0, 255, 3)
        start = rng.uniform(0, size, 2)
        sprites.append((kind, radius, speed, colour, start))
    out = np.empty((frames, size, size, 3), np.uint8)
    for t in range(frames):
        img = bg.copy()
        for kind, radius, speed, colour, start in sprites:
            cy = (start[0] + t * speed * dy) % size
            cx = (start[1] + t * speed * dx) % size
            # offsets on the torus, so a shape leaving one edge enters at the other
            oy = (yy - cy + size / 2) % size - size / 2
            ox = (xx - cx + size / 2) % size - size / 2
            if kind == "disc":
                inside = oy ** 2 + ox ** 2 <= radius ** 2
            elif kind == "square":
                inside = (np.abs(oy) <= radius) & (np.abs(ox) <= radius)
            else:  # a bar across the motion: its leading edge is long
                long_y = dy == 0
                inside = (np.abs(oy) <= (2 * radius if long_y else radius / 2)) & \
                         (np.abs(ox) <= (radius / 2 if long_y else 2 * radius))
            img[inside] = colour
        img += rng.normal(0.0, 4.0, img.shape)
        out[t] = np.clip(img, 0, 255).astype(np.uint8)
    return out


def encode_h264(path: str | Path, frames: np.ndarray, rate: int | Fraction = 25,
                crf: int = 18) -> Path:
    """Write uint8 frames ``[T, H, W, 3]`` (H, W even) as H.264 (yuv420p) with PyAV."""
    import av

    path = Path(path)
    options = {"preset": "veryfast", "crf": str(int(crf)), "threads": "1"}
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(rate), options=options)  # type: ignore[arg-type]
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for k, img in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def write_motion_videos(folder: str | Path, per_class: int = 40, frames: int = 24,
                        size: int = 64, seed: int = 0) -> Path:
    """``per_class`` videos of each direction as ``folder/<direction>/v0001.mp4`` ...

    The same arguments write the same videos; a folder written with the same arguments is
    kept, one holding other files is refused (:func:`polyjepa.generated_folder`).
    """
    def write(tmp: Path) -> None:
        for c, direction in enumerate(DIRECTIONS):
            (tmp / direction).mkdir()
            for i in range(int(per_class)):
                clip = motion_frames(direction, (int(seed) * 100 + c) * 100_000 + i,
                                     int(frames), int(size))
                encode_h264(tmp / direction / f"v{i + 1:04d}.mp4", clip)

    settings = {"per_class": int(per_class), "frames": int(frames), "size": int(size),
                "seed": int(seed), "version": 1}
    return generated_folder(folder, settings, write, r"(right|left|down|up)/v\d{4,}\.mp4")
