"""systemd's service notification protocol (sd_notify(3)), standard library only.

Under `Type=notify` systemd passes $NOTIFY_SOCKET, an AF_UNIX datagram socket
(a leading `@` is the abstract namespace), and with `WatchdogSec=`
$WATCHDOG_USEC (and $WATCHDOG_PID: the pid it is meant for). Each message is
one datagram of newline-separated KEY=VALUE lines. Without $NOTIFY_SOCKET
every call does nothing, so the loader calls it unconditionally.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Mapping, Optional

# A reload loads and attaches a whole generation while no tick runs (3 s in
# the systemd guest under TCG; fentry loads there can take far longer, and a
# loaded machine can be slow too): past WatchdogSec, systemd would kill the
# loader mid-reload. For the reload, the watchdog gets this long instead
# (sd_notify(3) WATCHDOG_USEC=, systemd >= 236); a reload that outlasts it is hung.
RELOAD_WATCHDOG_USEC = 10 * 60 * 1_000_000


def _address(value: str) -> Optional[str]:
    if value.startswith("@"):
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # vsock and other forms: not ours to speak


def watchdog_usec(environ: Mapping[str, str]) -> int:
    """$WATCHDOG_USEC if it is meant for this process, else 0 (sd_watchdog_enabled(3))."""
    pid = environ.get("WATCHDOG_PID")
    if pid is not None and pid != str(os.getpid()):
        return 0
    try:
        usec = int(environ.get("WATCHDOG_USEC", "0"))
    except ValueError:
        return 0
    return usec if usec > 0 else 0


class Notifier:
    """One process's notifications. Sending is best-effort: a full or gone
    socket costs a notification, never the killer."""

    def __init__(self, environ: Optional[Mapping[str, str]] = None) -> None:
        env = os.environ if environ is None else environ
        self._addr = _address(env.get("NOTIFY_SOCKET", ""))
        self._sock: Optional[socket.socket] = None
        if self._addr is not None:
            try:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            except OSError:
                self._addr = None
        usec = watchdog_usec(env) if self._addr is not None else 0
        # Ping at half the timeout, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval = usec / 2e6 if usec else 0.0
        self._watchdog_usec = usec
        self._extended = False
        self._last_ping = 0.0
        self._status = ""

    @property
    def active(self) -> bool:
        return self._sock is not None

    def send(self, *lines: str) -> bool:
        if self._sock is None or self._addr is None:
            return False
        try:
            self._sock.sendto("\n".join(lines).encode(), self._addr)
            return True
        except OSError:
            return False

    def ready(self, status: str) -> None:
        """At the ready line, and after a reload (which gets the watchdog's
        own timeout back: systemd re-arms it from now)."""
        self._status = status
        lines = ["READY=1", f"STATUS={status}"]
        if self._extended:
            self._extended = False
            lines.append(f"WATCHDOG_USEC={self._watchdog_usec}")
        self.send(*lines)

    def reloading(self) -> None:
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        lines = ["RELOADING=1", f"MONOTONIC_USEC={usec}"]
        if self._watchdog_usec and self._watchdog_usec < RELOAD_WATCHDOG_USEC:
            self._extended = True
            lines.append(f"WATCHDOG_USEC={RELOAD_WATCHDOG_USEC}")
        self.send(*lines)

    def stopping(self) -> None:
        self.send("STOPPING=1")

    def tick(self, status: str, now: Optional[float] = None) -> None:
        """After a tick and its sweep really ran: the status if it changed,
        and the watchdog ping when half its timeout has passed."""
        if self._sock is None:
            return
        lines = []
        if status != self._status:
            self._status = status
            lines.append(f"STATUS={status}")
        now = time.monotonic() if now is None else now
        if self.watchdog_interval and now - self._last_ping >= self.watchdog_interval:
            self._last_ping = now
            lines.append("WATCHDOG=1")
        if lines:
            self.send(*lines)

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
