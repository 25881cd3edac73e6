"""Under systemd (JOURNAL_STREAM names our stream) every line has a priority
prefix for the journal, and events go to journald's socket as structured
entries when it takes them; elsewhere lines are plain (issues 5, 11)."""
from __future__ import annotations

import datetime
import os
import selectors
import signal
import socket
import subprocess
import time

import killer as K
from native_journal import parse_native


class Journaled:
    """./oomkiller with stdout and stderr on one pipe, as systemd connects
    both to one journal stream, and JOURNAL_STREAM set to that pipe (or not)."""

    def __init__(self, *args: str, matching: bool = True, prefix: tuple = ()):
        self.args = [*prefix, str(K.OOMKILLER), *args, *K.attach_args()]
        self.matching = matching
        self.lines: list[str] = []
        self.proc = None
        self._buf = b""

    def __enter__(self) -> "Journaled":
        r, w = os.pipe()
        st = os.fstat(w)
        env = dict(os.environ)
        env["JOURNAL_STREAM"] = (f"{st.st_dev}:{st.st_ino}" if self.matching
                                 else f"{st.st_dev}:{st.st_ino + 1}")
        try:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=w, stderr=w,
                                         env=env)
        finally:
            os.close(w)
        self.fd = r
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=K.STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.read_until(lambda ln: False, 0.5)
        os.close(self.fd)

    def read_until(self, pred, timeout: float):
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.fd, selectors.EVENT_READ)
            while True:
                for line in self.lines:
                    if pred(line):
                        return line
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    return None
                self._buf += chunk
                *done, self._buf = self._buf.split(b"\n")
                self.lines += [d.decode("utf-8", "replace") for d in done]


def test_journal_priorities(tmp_path):
    with Journaled("--min-used", "0", "--max-writes", "5") as j:
        ready = j.read_until(lambda ln: "oomkiller: ready" in ln, K.READY_TIMEOUT)
        assert ready is not None and ready.startswith("<6>oomkiller: ready"), j.lines
        res = K.work("write", "5")
        assert res.killed, res.describe()
        kill = j.read_until(lambda ln: f"pid={res.pid} " in ln, 10)
        assert kill is not None and kill.startswith("<4>"), j.lines
        fields = kill[3:].split()
        datetime.datetime.fromisoformat(fields[0])  # ISO-8601 time first
        assert fields[1] == "kill"
        # A second killer is refused: an error line.
        second = subprocess.run([str(K.OOMKILLER)], capture_output=True, text=True, timeout=30,
                                env=dict(os.environ, JOURNAL_STREAM="0:0"))
        assert second.returncode == 1 and "already running" in second.stderr
    assert j.proc.returncode == 0
    assert all(ln[:1] == "<" and ln[2:3] == ">" for ln in j.lines if ln), j.lines


def test_journal_dry_run_and_condemned_are_notices():
    with Journaled("--min-used", "0", "--max-writes", "5", "--dry-run") as j:
        assert j.read_until(lambda ln: "oomkiller: ready" in ln, K.READY_TIMEOUT)
        res = K.work("write", "5")
        assert res.ok, res.describe()
        line = j.read_until(lambda ln: f"pid={res.pid} " in ln, 10)
        assert line is not None and line.startswith("<5>") and " dry-run " in line, j.lines
    gate = str(K.mem_total() * 4)
    with Journaled("--min-used", gate, "--max-writes", "5", "--json") as j:
        assert j.read_until(lambda ln: "oomkiller: ready" in ln, K.READY_TIMEOUT)
        res = K.work("write", "5")
        assert res.ok, res.describe()
        line = j.read_until(lambda ln: f'"pid": {res.pid},' in ln, 10)
        assert line is not None and line.startswith('<5>{"time"'), j.lines
        assert '"event": "condemned"' in line


def test_no_prefix_when_the_stream_is_not_the_journal():
    with Journaled("--min-used", "0", "--max-writes", "5", matching=False) as j:
        ready = j.read_until(lambda ln: "oomkiller: ready" in ln, K.READY_TIMEOUT)
        assert ready is not None and ready.startswith("oomkiller: ready"), j.lines
        res = K.work("write", "5")
        assert res.killed
        line = j.read_until(lambda ln: f"pid={res.pid} " in ln, 10)
        assert line is not None and line[:1].isdigit(), line


def test_events_go_to_journald_as_structured_entries(tmp_path):
    """A socket of ours stands at journald's path, in a mount namespace of the
    killer's own (the real journald is the systemd guest lane's)."""
    jdir = tmp_path / "journal"
    jdir.mkdir()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(jdir / "socket"))
    sock.settimeout(10)
    script = ('mount -t tmpfs tmpfs /run/systemd && mkdir /run/systemd/journal && '
              f'mount --bind {jdir} /run/systemd/journal && exec "$@"')
    try:
        with Journaled("--min-used", "0", "--max-writes", "5",
                       prefix=("unshare", "-m", "sh", "-c", script, "sh")) as j:
            ready = j.read_until(lambda ln: "oomkiller: ready" in ln, K.READY_TIMEOUT)
            assert ready is not None and ready.startswith("<6>"), j.lines
            res = K.work("write", "5")
            assert res.killed, res.describe()
            entry = parse_native(sock.recv(65536))
            assert entry["OOMKILLER_EVENT"] == b"kill", entry
            assert entry["OBJECT_PID"] == str(res.pid).encode()
            assert entry["OOMKILLER_RULE"] == b"writes"
            assert entry["OOMKILLER_VALUE"] == b"5" and entry["OOMKILLER_LIMIT"] == b"5"
            assert int(entry["OOMKILLER_MEM_USED"]) > 0
            assert entry["OOMKILLER_COMM"] == b"oomp_work"
            assert entry["PRIORITY"] == b"4"
            assert entry["MESSAGE_ID"] == b"b0d2339a174243ada4e054b6a5aad0af"
            assert entry["SYSLOG_IDENTIFIER"] == b"oomkiller"
            assert entry["MESSAGE"].split()[1:3] == [b"kill", f"pid={res.pid}".encode()]
        assert j.proc.returncode == 0
        # The entry went to journald instead of the stream: no event line there.
        assert not [ln for ln in j.lines if f"pid={res.pid} " in ln], j.lines
    finally:
        sock.close()
