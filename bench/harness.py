"""The bench's side of the shared test harness: tests/killer.py starts the
killer and reads its events and status; this adds what only the bench needs.
Every helper the bench starts is tracked here and stopped on the way out,
on failure, SIGINT and SIGTERM included, and made to die with the driver."""
from __future__ import annotations

import ctypes
import os
import select
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Callable

import paths  # noqa: F401  (sys.path)
import killer as K  # tests/killer.py
from killer import mem_used, wait_until  # noqa: F401  (re-exported for the measurements)

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    def pre() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    return pre


class Killer(K.Killer):
    """The tests' Killer, tracked by KIDS and made to die with the driver:
    setpriv sets PR_SET_PDEATHSIG and execs Debian's python3 on ./oomkiller
    (not whichever python3 is first on PATH: the footprint is that
    interpreter's), so the pid, which status() checks, is the killer's own.
    The bench names its attach family itself: OOMKILLER_TEST_ATTACH is the
    tests' business."""

    def __init__(self, *args: str, **kw: Any) -> None:
        kw.setdefault("attach", False)
        kw.setdefault("ready_timeout", 60.0)
        super().__init__(*args, **kw)
        self.args[:0] = ["setpriv", "--pdeathsig", "TERM", paths.PYTHON]

    def start(self) -> None:
        KIDS.killers.append(self)
        super().start()

    def stop(self, sig: int = signal.SIGTERM, check: bool = False) -> Any:
        """Stop it and say so when it did not exit 0: a measurement, not a test."""
        if self in KIDS.killers:
            KIDS.killers.remove(self)
        rc = super().stop(sig, check=check)
        if rc not in (0, None):
            log(f"oomkiller exited {rc} on {signal.Signals(sig).name} (want 0)")
        return rc


class Children:
    """Every helper we start (processes by pid, killers); stop_all() on the way out."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self.killers: list[Killer] = []

    def start(self, argv: list[str], sig: int = signal.SIGTERM, **kw: Any) -> subprocess.Popen:
        p = subprocess.Popen(argv, preexec_fn=die_with_parent(sig), **kw)
        self.procs.append(p)
        return p

    def stop(self, p: subprocess.Popen, sig: int = signal.SIGTERM, timeout: float = 10) -> None:
        if p.poll() is None:
            try:
                os.kill(p.pid, sig)
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(p.pid, signal.SIGKILL)
                p.wait()
            except ProcessLookupError:
                pass
        for f in (p.stdin, p.stdout, p.stderr):
            if f:
                f.close()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self) -> None:
        for k in list(reversed(self.killers)):
            k.stop()
        for p in list(reversed(self.procs)):
            self.stop(p)


KIDS = Children()


def read_line(p: subprocess.Popen, stream: Any, prefix: str, timeout: float) -> str:
    """Wait for a line starting with prefix; other lines are kept for errors."""
    seen = []
    end = time.monotonic() + timeout
    fd = stream.fileno()
    buf = b""
    while time.monotonic() < end:
        r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
        if not r:
            break
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            text = line.decode(errors="replace")
            if text.startswith(prefix):
                return text
            seen.append(text)
    raise RuntimeError(f"no '{prefix}' line within {timeout}s; got: {' | '.join(seen[-8:])}"
                       + (f" (exit {p.poll()})" if p.poll() is not None else ""))


def drain(stream: Any, sink: list[str]) -> threading.Thread:
    """Collect a helper's output lines in the background (keeps pipes empty)."""
    def run() -> None:
        for line in iter(stream.readline, b""):
            sink.append(line.decode(errors="replace").rstrip("\n"))
    t = threading.Thread(target=run, daemon=True)
    t.start()
    return t


def cpu_seconds(pid: int) -> float:
    """CPU time of a process's live threads, in seconds, from schedstat's
    run time in ns: utime + stime would round an idle loader to 0 ticks."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def fdinfo_ids(pid: int, key: str) -> list[int]:
    """The BPF object ids (`prog_id`, `map_id`) behind pid's descriptors, in fd order."""
    ids = []
    for fd in sorted(os.listdir(f"/proc/{pid}/fdinfo"), key=int):
        try:
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                ids += [int(ln.split()[1]) for ln in f if ln.startswith(key + ":")]
        except OSError:
            pass
    return ids
