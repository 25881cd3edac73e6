"""systemd's notify protocol and journald's native protocol, spoken to
sockets this test listens on (the real daemons' side is the systemd guest
lane's)."""
from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from oomkiller.outputs import journald, sdnotify  # noqa: E402
from native_journal import parse_native  # noqa: E402


def listener(path: Path) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(str(path))
    s.settimeout(5)
    return s


def lines(s: socket.socket) -> list[str]:
    return s.recv(65536).decode().split("\n")


def test_without_notify_socket_nothing_is_sent():
    n = sdnotify.Notifier({})
    assert not n.active and n.watchdog_interval == 0
    n.ready("x")
    n.tick("y")
    assert n.send("READY=1") is False


def test_ready_status_reloading_stopping(tmp_path):
    with listener(tmp_path / "notify") as s:
        n = sdnotify.Notifier({"NOTIFY_SOCKET": str(tmp_path / "notify")})
        n.ready("families sys=tracepoint; gate open")
        assert lines(s) == ["READY=1", "STATUS=families sys=tracepoint; gate open"]
        n.tick("families sys=tracepoint; gate closed")
        assert lines(s) == ["STATUS=families sys=tracepoint; gate closed"]
        n.tick("families sys=tracepoint; gate closed")  # unchanged, no watchdog: nothing
        n.reloading()
        got = lines(s)
        assert got[0] == "RELOADING=1" and got[1].startswith("MONOTONIC_USEC=")
        usec = int(got[1].split("=", 1)[1])
        now = __import__("time").clock_gettime_ns(__import__("time").CLOCK_MONOTONIC) // 1000
        assert 0 <= now - usec < 5_000_000
        n.stopping()
        assert lines(s) == ["STOPPING=1"]
        n.close()


def test_abstract_socket_address():
    name = f"oomkiller-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
        s.bind("\0" + name)
        s.settimeout(5)
        sdnotify.Notifier({"NOTIFY_SOCKET": "@" + name}).ready("ok")
        assert lines(s) == ["READY=1", "STATUS=ok"]


def test_watchdog_pings_at_half_the_timeout_and_only_for_us(tmp_path):
    env = {"NOTIFY_SOCKET": str(tmp_path / "n"), "WATCHDOG_USEC": "4000000"}
    with listener(tmp_path / "n") as s:
        n = sdnotify.Notifier(env)
        assert n.watchdog_interval == 2.0
        n.tick("a", now=100.0)
        assert lines(s) == ["STATUS=a", "WATCHDOG=1"]
        n.tick("a", now=101.0)  # 1 s later: too soon
        n.tick("a", now=102.0)
        assert lines(s) == ["WATCHDOG=1"]
        # A reload has the long timeout, and READY=1 after it gives ours back.
        n.reloading()
        got = lines(s)
        assert got[0] == "RELOADING=1" and got[2] == f"WATCHDOG_USEC={sdnotify.RELOAD_WATCHDOG_USEC}"
        n.ready("a")
        assert lines(s) == ["READY=1", "STATUS=a", "WATCHDOG_USEC=4000000"]
        n.ready("a")  # not after a reload: nothing to give back
        assert lines(s) == ["READY=1", "STATUS=a"]
    assert sdnotify.watchdog_usec({"WATCHDOG_USEC": "5", "WATCHDOG_PID": "1"}) == 0
    assert sdnotify.watchdog_usec({"WATCHDOG_USEC": "5", "WATCHDOG_PID": str(os.getpid())}) == 5
    assert sdnotify.watchdog_usec({"WATCHDOG_USEC": "x"}) == 0


def test_a_gone_socket_costs_nothing(tmp_path):
    n = sdnotify.Notifier({"NOTIFY_SOCKET": str(tmp_path / "nobody")})
    assert n.send("READY=1") is False
    n.ready("x")  # no exception


EVENT = {"event": "kill", "pid": 4242, "tid": 4243, "comm": "oomp_x", "rule": "writes",
         "value": 100, "limit": 100, "mem_used_bytes": 2 << 30, "time": "t",
         "policy": "ci"}


def test_event_entry_fields(tmp_path):
    f = journald.event_fields(EVENT, "t kill pid=4242", b"oomp\nx\0\0")
    with listener(tmp_path / "j") as s:
        assert journald.JournalSender(str(tmp_path / "j")).send(f)
        got = parse_native(s.recv(65536))
    assert got["MESSAGE"] == b"t kill pid=4242"
    assert got["PRIORITY"] == b"4"
    assert got["MESSAGE_ID"] == journald.MESSAGE_IDS["kill"].encode()
    assert got["OOMKILLER_EVENT"] == b"kill" and got["OOMKILLER_RULE"] == b"writes"
    assert got["OOMKILLER_VALUE"] == b"100" and got["OOMKILLER_LIMIT"] == b"100"
    assert got["OOMKILLER_MEM_USED"] == str(2 << 30).encode()
    assert got["OOMKILLER_COMM"] == b"oomp\nx", "a newline in a name is sent length-prefixed"
    assert got["OBJECT_PID"] == b"4242"
    assert got["OOMKILLER_POLICY"] == b"ci"
    assert got["SYSLOG_IDENTIFIER"] == b"oomkiller"


def test_message_ids_are_distinct_128_bit_ids():
    ids = list(journald.MESSAGE_IDS.values())
    assert len(set(ids)) == len(ids) == 3
    assert all(len(i) == 32 and int(i, 16) for i in ids)


def test_no_journald_is_reported_not_raised(tmp_path):
    assert journald.JournalSender(str(tmp_path / "none")).send({"MESSAGE": "x"}) is False


def test_the_catalog_explains_every_message_id():
    text = (Path(__file__).resolve().parents[1] / "dist" / "oomkiller.catalog").read_text()
    ids = [ln[3:].strip() for ln in text.splitlines() if ln.startswith("-- ")]
    assert sorted(ids) == sorted(journald.MESSAGE_IDS.values())


def test_journalctl_compiles_the_catalog(tmp_path):
    """The real journalctl reads it: every MESSAGE_ID ends up in its database."""
    import shutil
    import subprocess
    cat = tmp_path / "usr/lib/systemd/catalog"
    cat.mkdir(parents=True)
    (tmp_path / "var/lib/systemd/catalog").mkdir(parents=True)
    shutil.copy(Path(__file__).resolve().parents[1] / "dist" / "oomkiller.catalog", cat)
    subprocess.run(["journalctl", "--root", str(tmp_path), "--update-catalog"], check=True)
    listed = subprocess.run(["journalctl", "--root", str(tmp_path), "--list-catalog"],
                            check=True, capture_output=True, text=True).stdout
    for mid in journald.MESSAGE_IDS.values():
        assert mid in listed, listed
