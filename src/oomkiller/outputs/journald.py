"""Events as structured journal entries: journald's native protocol
(systemd.journal-fields(7), "Native Journal Protocol"), standard library only.

Each entry is one datagram to /run/systemd/journal/socket: `KEY=value` lines,
or, for a value holding a newline, `KEY`, a newline, the value's length as a
little-endian u64, the value and a newline. MESSAGE_IDs are fixed per event
kind; dist/oomkiller.catalog explains them (journalctl -x).
"""

from __future__ import annotations

import socket
import struct
from typing import Mapping, Optional

from oomkiller.outputs import journal

SOCKET = "/run/systemd/journal/socket"

# One MESSAGE_ID per event kind: never change one, add new ones.
MESSAGE_IDS = {
    "kill": "b0d2339a174243ada4e054b6a5aad0af",
    "condemned": "b4d4ea29322c4ac0bba841556c343f80",
    "dry-run": "a0a713091ab147a5a421bad603936a02",
}


def encode(fields: Mapping[str, object]) -> bytes:
    out = bytearray()
    for key, value in fields.items():
        raw = value if isinstance(value, bytes) else str(value).encode()
        if b"\n" in raw:
            out += key.encode() + b"\n" + struct.pack("<Q", len(raw)) + raw + b"\n"
        else:
            out += key.encode() + b"=" + raw + b"\n"
    return bytes(out)


def event_fields(ev: dict, message: str, raw_comm: bytes) -> dict[str, object]:
    """The entry for one event (events.event_dict) and its text line."""
    kind = ev["event"]
    return {
        "MESSAGE": message,
        "PRIORITY": journal.EVENT_PRIORITY.get(kind, journal.NOTICE),
        "MESSAGE_ID": MESSAGE_IDS.get(kind, ""),
        "SYSLOG_IDENTIFIER": "oomkiller",
        "OOMKILLER_EVENT": kind,
        "OOMKILLER_RULE": ev["rule"],
        "OOMKILLER_VALUE": ev["value"],
        "OOMKILLER_LIMIT": ev["limit"],
        "OOMKILLER_MEM_USED": ev["mem_used_bytes"],
        "OOMKILLER_POLICY": ev["policy"],
        "OOMKILLER_COMM": raw_comm.split(b"\0", 1)[0],  # the kernel's bytes, as they are
        "OBJECT_PID": ev["pid"],
    }


class JournalSender:
    """Sends entries to journald; send() says whether the entry went out,
    so the caller can fall back to its stdout line."""

    def __init__(self, path: str = SOCKET) -> None:
        self.path = path
        self._sock: Optional[socket.socket] = None
        try:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError:
            self._sock = None

    def send(self, fields: Mapping[str, object]) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.sendto(encode(fields), self.path)
            return True
        except OSError:
            return False

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
