"""Folders of generated data (simulators' output) written once, whole, and never over a
user's own files."""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

MARKER = "SIMULATED.json"


def generated_folder(folder: str | Path, settings: dict[str, Any],
                     write: Callable[[Path], None], ours: str) -> Path:
    """``folder`` holding what ``write(tmp)`` writes for ``settings``, written on demand.

    A folder written before with the same ``settings`` (recorded in its
    ``SIMULATED.json``) is kept as it is; other settings rewrite it. ``ours`` is a regular
    expression that every name ``write`` creates matches, relative to the folder (``/``
    between parts): a folder holding anything else is refused (``FileExistsError`` naming
    it), so a user's files are never removed. ``write`` fills a temporary folder beside
    ``folder`` that is moved into place when complete, so an interrupted call leaves
    nothing half-written.
    """
    folder = Path(folder)
    settings = json.loads(json.dumps(settings))  # as the marker will read back
    marker = folder / MARKER
    if marker.is_file():
        try:
            if json.loads(marker.read_text()) == settings:
                return folder
        except (OSError, ValueError):
            pass
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} is a file: write generated data into a new folder")
    pattern = re.compile(ours)
    found = (p.relative_to(folder).as_posix() for p in folder.rglob("*")
             if p.is_file() and p.name != MARKER
             and not pattern.fullmatch(p.relative_to(folder).as_posix())) \
        if folder.is_dir() else iter(())
    others = list(itertools.islice(found, 4))  # a few are enough to refuse and to name
    if others:
        more = ", ..." if len(others) > 3 else ""
        raise FileExistsError(f"{folder} holds other files ({', '.join(others[:3])}{more}): "
                              f"write generated data into an empty or new folder")
    tmp = folder.with_name(f".{folder.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        (tmp / MARKER).write_text(json.dumps(settings))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder
