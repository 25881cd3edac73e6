"""Helpers for the operations tests (tests/test_ops_*.py, issue 5)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Optional

import killer as K

PIN_DIR = Path("/sys/fs/bpf/oomkiller")
STATE_PATH = Path("/run/oomkiller/state.json")


class Stepper(K.Workload):
    """oomp_work follow:N: N writes, then more on request (want()), so a test
    can make a target cross a limit exactly after a reload."""

    def __init__(self, writes: int):
        super().__init__(K.WORK, f"follow:{writes}", "--timeout", "300", progress=True)

    def done(self) -> Optional[int]:
        p = self.progress()
        return p[K.P_DONE] if p else None

    def wait_writes(self, n: int, timeout: float = 10.0) -> bool:
        """Until n writes returned and it sleeps again (or it died)."""
        def ready():
            p = self.progress()
            return p is not None and p[K.P_DONE] == n and p[K.P_STATE] == K.S_SLEEPING
        K.wait_until(lambda: ready() or not self.alive(), timeout)
        return ready()

    def want(self, total: int) -> None:
        """Ask for writes up to `total` in all, and wake it."""
        assert self.progress_path is not None
        K.write_slot(self.progress_path, K.P_CTL, total)
        os.kill(self.pid, signal.SIGUSR1)


def status(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess:
    return subprocess.run([str(K.OOMKILLER), "status", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def status_json() -> dict:
    res = status("--json")
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout)


def find_proc(st: dict, pid: int) -> Optional[dict]:
    return next((p for p in st["processes"] if p["pid"] == pid), None)


def write_config(path: Path, text: str) -> str:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # a reload never reads half a file
    return str(path)


def wait_stderr(k: K.Killer, needle: str, timeout: float = 10.0) -> Optional[str]:
    def found():
        with k._cond:
            return next((ln for ln in k.stderr_lines if needle in ln), None)
    return K.wait_until(found, timeout)


def killer_prog_ids(pid: int) -> set[int]:
    """Ids of the BPF programs whose fds process `pid` holds (its fdinfo)."""
    ids = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) != "anon_inode:bpf-prog":
                continue
            info = Path(f"/proc/{pid}/fdinfo/{fd.name}").read_text()
        except OSError:
            continue
        for line in info.splitlines():
            if line.startswith("prog_id:"):
                ids.add(int(line.split()[1]))
    return ids


def gone(ids: set[int], timeout: float = 10.0) -> bool:
    """Programs are freed shortly after their last reference (RCU): wait for it."""
    return bool(K.wait_until(lambda: not (ids & K.bpf_prog_ids()), timeout))


RELOAD_TIMEOUT = 20.0


def reload(k: K.Killer, needle: str) -> str:
    """SIGHUP, and the killer's next reload line (`reloaded:` or `cannot
    reload`), which must contain needle."""
    n = sum(1 for ln in list(k.stderr_lines) if "reloaded:" in ln or "cannot reload" in ln)
    k.send_signal(signal.SIGHUP)

    def seen():
        lines = [ln for ln in list(k.stderr_lines) if "reloaded:" in ln or "cannot reload" in ln]
        return lines[n] if len(lines) > n else None
    line = K.wait_until(seen, RELOAD_TIMEOUT)
    assert line is not None, "no reload line; stderr:\n" + k.stderr_text()
    assert needle in line, line
    return line
