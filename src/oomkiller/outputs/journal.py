"""Priority prefixes for the journal (sd-daemon(3)) when systemd runs us.

systemd sets JOURNAL_STREAM=DEV:INO to the stream it connected to stdout and
stderr (systemd.exec(5)); a line that starts with `<N>` then gets priority N
and the prefix is stripped. We prefix only a stream whose device and inode
match, so a shell started from a unit that redirects our output elsewhere
gets plain lines.
"""

from __future__ import annotations

import os
from typing import Mapping, Optional

ERR, WARNING, NOTICE, INFO, DEBUG = 3, 4, 5, 6, 7

# Event kind name -> priority: a kill is a warning, the rest are notices.
EVENT_PRIORITY = {"kill": WARNING, "dry-run": NOTICE, "condemned": NOTICE}


def connected(fd: int, environ: Optional[Mapping[str, str]] = None) -> bool:
    """True if fd is the stream that JOURNAL_STREAM names."""
    value = (os.environ if environ is None else environ).get("JOURNAL_STREAM", "")
    dev, sep, ino = value.partition(":")
    if not sep:
        return False
    try:
        st = os.fstat(fd)
        return st.st_dev == int(dev) and st.st_ino == int(ino)
    except (OSError, ValueError):
        return False


def prefix(priority: int, on: bool) -> str:
    return f"<{priority}>" if on else ""
