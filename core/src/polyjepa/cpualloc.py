"""Keep freed memory in the process for reuse while training on CPU (glibc only).

Every training step allocates the same large buffers again (activations, their
gradients, the bf16 copies autocast makes of each weight). glibc's ``malloc`` serves
blocks above its mmap threshold (128 KiB at start, raised only while no setting is made)
with fresh ``mmap`` calls and hands trimmed heap back to the system, so each step
page-faults its working set in anew: measured on a 2-core CPU, a bf16 step of the
ViT-S I-JEPA spent more time in those faults than in its dtype casts' arithmetic, and
bf16/fp32 rose from about 1.3-1.6x to 2.1-2.4x once the memory stayed in the process.
This is PyTorch's own CPU advice (a caching allocator such as jemalloc or tcmalloc);
:func:`keep_freed_memory` gets most of it from glibc's own settings, without a
preloaded library.

The settings are process-wide and only change when memory goes back to the system:
the process keeps up to its peak heap (the next step needs it again). Set
``POLYJEPA_KEEP_FREED_MEMORY=0`` to leave ``malloc`` as it is.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1  # the largest mallopt takes (an int): 2 GiB

_done: bool | None = None


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; whether they are set
    (False off Linux/glibc or with ``POLYJEPA_KEEP_FREED_MEMORY=0``)."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("POLYJEPA_KEEP_FREED_MEMORY", "1").strip() in ("0", "false", "no"):
        return False
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1 and ok
    _done = ok
    return ok
