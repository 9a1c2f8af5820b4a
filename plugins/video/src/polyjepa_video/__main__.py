"""Command line of polyjepa-video: ``polyjepa video ...`` (or ``python -m polyjepa_video ...``).

``polyjepa video simulate DIR [--per-class 60] [--frames 24] [--size 64] [--seed 0]``
    simulated videos of shapes sliding right, left, down or up, as H.264 ``.mp4`` files
    in class sub-folders (:mod:`polyjepa_video.simulate`): labelled clips to try the
    recipe on (``polyjepa pretrain video --data DIR``; the probes read the folders'
    classes).
"""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="polyjepa video", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sp = sub.add_parser("simulate", help="write simulated direction-of-motion videos")
    sp.add_argument("dir", help="a new or empty folder (or one this command wrote)")
    sp.add_argument("--per-class", type=int, default=60, help="videos per direction")
    sp.add_argument("--frames", type=int, default=24, help="frames per video")
    sp.add_argument("--size", type=int, default=64, help="width and height (even)")
    sp.add_argument("--seed", type=int, default=0)
    a = parser.parse_args(argv)
    if a.per_class < 1 or a.frames < 2 or a.size < 16 or a.size % 2:
        parser.error("--per-class must be >= 1, --frames >= 2, --size even and >= 16")
    from .simulate import write_motion_videos

    try:
        path = write_motion_videos(a.dir, a.per_class, a.frames, a.size, a.seed)
    except FileExistsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{4 * a.per_class} simulated videos (right/, left/, down/, up/) in {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
