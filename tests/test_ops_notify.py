"""systemd's notify protocol from a live killer, to a socket this test
listens on: READY=1 with STATUS= at the ready line, STATUS= as it changes,
WATCHDOG=1 at half of WATCHDOG_USEC and never while the loader is stopped,
RELOADING=1 then READY=1 around SIGHUP, STOPPING=1 at stop (issue 11). The
real systemd's side is the systemd guest lane's."""
from __future__ import annotations

import os
import signal
import socket
import time

import killer as K


class Listener:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.got: list[tuple[float, dict[str, str]]] = []

    def wait(self, pred, timeout: float, after: int = 0):
        """The first message (KEY -> VALUE) from the after-th on that pred
        accepts, reading on as needed."""
        deadline = time.monotonic() + timeout
        for _, msg in self.got[after:]:
            if pred(msg):
                return msg
        while (left := deadline - time.monotonic()) > 0:
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                break
            msg = dict(ln.split("=", 1) for ln in data.decode().split("\n"))
            self.got.append((time.monotonic(), msg))
            if pred(msg):
                return msg
        return None

    def close(self):
        self.sock.close()


def test_ready_status_watchdog_reload_stop(e2e_session, tmp_path, monkeypatch):
    lis = Listener(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # ping every second
    try:
        with K.Killer("--min-used", "0", "--interval", "0.2") as k:
            ready = lis.wait(lambda m: m.get("READY") == "1", 10)
            assert ready is not None, lis.got
            status = ready["STATUS"]
            assert "sys=" in status and "gate open" in status and "tracked " in status, status
            assert "kills 0" in status
            assert lis.wait(lambda m: "WATCHDOG" in m, 5), lis.got

            # STATUS= follows the kills
            assert K.work("write", 150).killed
            assert lis.wait(lambda m: "kills 1" in m.get("STATUS", ""), 10), lis.got

            # No watchdog ping while the loader is stopped; pings resume after.
            os.kill(k.pid, signal.SIGSTOP)
            stopped = time.monotonic()
            assert K.wait_until(lambda: open(f"/proc/{k.pid}/stat").read().split(") ")[1][0] == "T",
                                5)
            time.sleep(3)  # the stretch being measured: a stopped loader, 3 ping periods
            os.kill(k.pid, signal.SIGCONT)
            resumed = time.monotonic()
            assert lis.wait(lambda m: "WATCHDOG" in m, 5, after=len(lis.got)), lis.got
            during = [t for t, m in lis.got if "WATCHDOG" in m and stopped + 0.1 < t < resumed]
            assert not during, "a watchdog ping came from a stopped loader"

            # SIGHUP: RELOADING=1 with MONOTONIC_USEC, then READY=1 again
            k.send_signal(signal.SIGHUP)
            reloading = lis.wait(lambda m: "RELOADING" in m, 10, after=len(lis.got))
            assert reloading is not None and int(reloading["MONOTONIC_USEC"]) > 0
            assert lis.wait(lambda m: m.get("READY") == "1", 30, after=len(lis.got)), lis.got
        assert lis.wait(lambda m: m.get("STOPPING") == "1", 5), lis.got
    finally:
        lis.close()


def test_an_interval_the_watchdog_cannot_wait_for_is_warned(e2e_session, tmp_path, monkeypatch):
    lis = Listener(tmp_path / "notify")
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "notify"))
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    try:
        with K.Killer("--interval", "5") as k:
            assert K.wait_until(lambda: any("WatchdogSec" in ln for ln in k.stderr_lines), 5), \
                k.stderr_text()
    finally:
        lis.close()
