"""The classic tracepoint programs' one dependency: a mounted tracefs.

libbpf attaches a `tracepoint/CATEGORY/NAME` program through perf, with the
event's id read from tracefs (`/sys/kernel/debug/tracing` when debugfs has
it, else `/sys/kernel/tracing`). systemd mounts tracefs at boot; a machine
or container without it gets it mounted here, where systemd would, and it
stays mounted (other tools may start using it meanwhile).
"""

from __future__ import annotations

import ctypes
import os
from typing import Optional

TRACEFS = "/sys/kernel/tracing"
DEBUGFS_TRACING = "/sys/kernel/debug/tracing"


def _has_events(path: str) -> bool:
    return os.path.isdir(os.path.join(path, "events"))


def ensure_mounted() -> Optional[str]:
    """None if tracefs was already there; else mount it and say so.
    OSError (with errno) if it can't be mounted."""
    if os.path.isdir(DEBUGFS_TRACING):
        if _has_events(DEBUGFS_TRACING):
            return None
    elif _has_events(TRACEFS):
        return None
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                           ctypes.c_ulong, ctypes.c_void_p)
    if libc.mount(b"tracefs", TRACEFS.encode(), b"tracefs", 0, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return f"mounted tracefs on {TRACEFS} (the classic tracepoint programs need it)"
