"""Helpers for the reliability suite (tests/test_rel_*.py, issue 6).

On top of killer.py: a light process class for oomp_work scripts (hundreds
at once need no pipes per process), the size of the killer's process map,
the loader's RSS, and BPF object ids for leak checks.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

import killer as K

SETPID = K.PROGS / "rel_setpid"

# Gate always open: used >= 0 once the first sample is taken.
OPEN = ("--min-used", "0")


def closed_gate() -> tuple[str, str]:
    """--min-used well above what is in use now (and what our workloads add)."""
    return ("--min-used", str(K.mem_used() + 1 * K.GiB))


def opening_ballast(gate: tuple[str, str]) -> K.Ballast:
    """A ballast that lifts used memory 512 MiB past the closed_gate() value."""
    return K.Ballast.opening(int(gate[1]), margin=512 * K.MiB, slack=0)


class Rel:
    """One oomp_work script (STEP... and options; or a copy of oomp_work) with
    a progress file, stdio to /dev/null, stderr to a file. Use as a context
    manager or call close()."""

    def __init__(self, *steps: object, prog: os.PathLike | str = K.WORK, tmp: Optional[Path] = None,
                 out: bool = False, pass_fds: Sequence[int] = (), timeout: int = 300,
                 prefix: Sequence[str] = (), start: bool = True):
        self.own_tmp = tmp is None
        self.tmp = Path(tempfile.mkdtemp(prefix="oomk-rel-")) if tmp is None else Path(tmp)
        self.tag = f"{os.getpid()}-{id(self)}"
        self.progress_path = self.tmp / f"p-{self.tag}"
        self.err_path = self.tmp / f"e-{self.tag}"
        self.out_path = self.tmp / f"o-{self.tag}" if out else None
        opts = ["-p", str(self.progress_path), "-t", str(timeout)]
        if self.out_path:
            opts += ["-o", str(self.out_path)]
        self.args = [*map(str, prefix), str(prog), *opts, *map(str, steps)]
        self.pass_fds = tuple(pass_fds)
        self.proc: Optional[subprocess.Popen] = None
        if start:
            self.start()

    def start(self) -> None:
        with open(self.err_path, "wb") as err:
            self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err,
                                         pass_fds=self.pass_fds, close_fds=True)

    def __enter__(self) -> "Rel":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def poll(self) -> Optional[int]:
        return self.proc.poll() if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and K.alive(self.proc.pid)

    def progress(self) -> Optional[tuple]:
        return K.read_progress(self.progress_path)

    def slot(self, i: int) -> Optional[int]:
        p = self.progress()
        return p[i] if p else None

    def set_slot(self, i: int, value: int) -> None:
        K.write_slot(self.progress_path, i, value)

    def state(self) -> Optional[int]:
        return self.slot(K.P_STATE)

    def wait_state(self, state: int, timeout: float = 20.0) -> bool:
        K.wait_until(lambda: self.state() == state or self.poll() is not None, timeout)
        return self.state() == state

    def wait(self, timeout: float = K.RUN_TIMEOUT) -> int:
        """Exit status (negative: signal). On timeout, kill it and fail."""
        assert self.proc is not None
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.describe()}: still running after {timeout}s") from None

    def stderr(self) -> str:
        try:
            return self.err_path.read_text(errors="replace").strip()
        except FileNotFoundError:
            return ""

    def out_size(self) -> int:
        try:
            return self.out_path.stat().st_size if self.out_path else 0
        except FileNotFoundError:
            return 0

    def describe(self) -> str:
        rc = self.poll()
        how = "running" if rc is None else \
            f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        return f"{' '.join(self.args)} (pid {self.proc.pid if self.proc else '?'}): {how}; " \
               f"progress={self.progress()} stderr={self.stderr()!r}"

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.proc.kill()
            except ProcessLookupError:
                pass
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass

    def close(self) -> None:
        try:
            self.kill()
        finally:
            if self.own_tmp:
                shutil.rmtree(self.tmp, ignore_errors=True)


class Group:
    """Many Rel processes sharing one temp dir; all killed and reaped on exit."""

    def __init__(self):
        self.tmp = Path(tempfile.mkdtemp(prefix="oomk-relg-"))
        self.procs: list[Rel] = []

    def spawn(self, *steps: object, **kw) -> Rel:
        r = Rel(*steps, tmp=self.tmp, **kw)
        self.procs.append(r)
        return r

    def __enter__(self) -> "Group":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        for r in self.procs:
            if r.proc is not None and r.proc.poll() is None:
                try:
                    r.proc.kill()
                except ProcessLookupError:
                    pass
        for r in self.procs:
            r.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---- the killer's process map ------------------------------------------------

_status_works: Optional[bool] = None


def _status_tracked() -> Optional[int]:
    """`oomkiller status --json` → tracked, once it exists (operations issue)."""
    global _status_works
    if _status_works is False:
        return None
    try:
        res = subprocess.run([str(K.OOMKILLER), "status", "--json"], capture_output=True,
                             text=True, timeout=20, stdin=subprocess.DEVNULL)
        value = int(json.loads(res.stdout)["tracked"]) if res.returncode == 0 else None
    except (ValueError, KeyError, TypeError, subprocess.TimeoutExpired):
        value = None
    if _status_works is None:
        _status_works = value is not None
    return value


def _procs_map_ids(killer_pid: int) -> list[int]:
    """Ids of the maps named `procs` that killer_pid holds (from its fdinfo)."""
    ids = []
    fd_dir = Path(f"/proc/{killer_pid}/fd")
    for fd in fd_dir.iterdir():
        try:
            if os.readlink(fd) != "anon_inode:bpf-map":
                continue
            info = Path(f"/proc/{killer_pid}/fdinfo/{fd.name}").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in info.splitlines() if ":" in line)
        if "map_id" in fields:
            ids.append(int(fields["map_id"]))
    out = subprocess.run(["bpftool", "-j", "map", "list"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    names = {m["id"]: m.get("name", "") for m in json.loads(out or "[]")}
    return sorted({i for i in ids if names.get(i) == "procs"})


def tracked(killer: Optional[K.Killer] = None) -> int:
    """Entries in the killer's process map: `oomkiller status --json` when it
    works (probed once), else `bpftool map dump` of the killer's `procs` map."""
    value = _status_tracked()
    if value is not None:
        return value
    if killer is not None:
        ids = _procs_map_ids(killer.pid)
        assert len(ids) == 1, f"killer {killer.pid} holds procs maps {ids}"
        args = ["id", str(ids[0])]
    else:
        args = ["name", "procs"]
    out = subprocess.run(["bpftool", "-j", "map", "dump", *args], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    return len(json.loads(out or "[]"))


def tracked_pids(killer: K.Killer) -> set[int]:
    """tgids in the killer's process map (bpftool; the key is a little-endian u32)."""
    ids = _procs_map_ids(killer.pid)
    assert len(ids) == 1, ids
    out = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(ids[0])],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    pids = set()
    for e in json.loads(out or "[]"):
        key = e.get("key")
        if isinstance(key, list):
            pids.add(int.from_bytes(bytes(int(b, 16) for b in key[:4]), "little"))
        elif isinstance(key, int):
            pids.add(key)
    return pids


def live_target_pids(name: str = "oomp") -> set[int]:
    """Live processes whose leader comm contains name (what the map may hold)."""
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            comm = Path(f"/proc/{d}/comm").read_text().rstrip("\n")
        except OSError:
            continue
        if name in comm and K.alive(int(d)):
            pids.add(int(d))
    return pids


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


def bpf_ids(kind: str) -> set[int]:
    """Ids of every BPF prog / link / map in the kernel (bpftool -j KIND list)."""
    out = subprocess.run(["bpftool", "-j", kind, "list"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return {o["id"] for o in json.loads(out or "[]")}


def wait_all(procs: Sequence[Rel], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for r in procs:
        left = max(0.1, deadline - time.monotonic())
        r.wait(left)


def map_holders(map_ids) -> dict[int, list[int]]:
    """{pid: [map ids]} of processes holding an fd of any of map_ids."""
    want, out = set(map_ids), {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            fds = os.listdir(f"/proc/{d}/fdinfo")
        except OSError:
            continue
        for fd in fds:
            try:
                text = Path(f"/proc/{d}/fdinfo/{fd}").read_text()
            except OSError:
                continue
            for line in text.splitlines():
                if line.startswith("map_id:") and int(line.split()[1]) in want:
                    out.setdefault(int(d), []).append(int(line.split()[1]))
    return out


def pinned() -> set[str]:
    """Everything under /sys/fs/bpf."""
    found = set()
    for root, dirs, files in os.walk("/sys/fs/bpf"):
        found.update(os.path.join(root, n) for n in dirs + files)
    return found


def pinned_map_id(path: str) -> int:
    out = subprocess.run(["bpftool", "-j", "map", "show", "pinned", path], capture_output=True,
                         text=True, timeout=30)
    assert out.returncode == 0, f"{path} is not a pinned map: {out.stderr.strip()}"
    return json.loads(out.stdout)["id"]
