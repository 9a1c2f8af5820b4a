"""One writer per run folder: a file lock that names its holder.

Two ``pretrain`` processes on one ``--out`` would both train and write every metrics row
twice. The lock (``filelock``, an OS-level lock that is released when its process dies,
so a run killed with ``kill -9`` never leaves a stale lock) is taken before anything is
written; the holder's pid, host, start time and command line sit beside it so a second
process can say who holds the folder.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType

from .errors import CheckpointError

LOCK_FILE = ".polyjepa.lock"
OWNER_FILE = ".polyjepa.lock.json"


class RunLock:
    """``with RunLock(run_dir):`` holds the folder for this process or raises at once."""

    def __init__(self, run_dir: str | Path):
        from filelock import FileLock

        self.run_dir = Path(run_dir)
        self._lock = FileLock(str(self.run_dir / LOCK_FILE))

    def __enter__(self) -> RunLock:
        from filelock import Timeout

        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise CheckpointError(f"{self.run_dir} is in use by {holder(self.run_dir)}; wait "
                                  "for it to finish or choose another --out") from None
        owner = {"pid": os.getpid(), "host": socket.gethostname(),
                 "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
                 "command": " ".join(sys.argv)}
        (self.run_dir / OWNER_FILE).write_text(json.dumps(owner) + "\n", encoding="utf-8")
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        (self.run_dir / OWNER_FILE).unlink(missing_ok=True)
        self._lock.release()


def holder(run_dir: str | Path) -> str:
    """Who holds ``run_dir``'s lock, in words (from the owner file its holder wrote)."""
    try:
        owner = json.loads((Path(run_dir) / OWNER_FILE).read_text(encoding="utf-8"))
        return (f"another polyjepa process (pid {owner['pid']} on {owner['host']}, since "
                f"{owner['started']}: {owner['command']})")
    except (OSError, ValueError, KeyError, TypeError):
        return "another polyjepa process"
