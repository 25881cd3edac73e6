"""Helpers for the end-to-end tests: the real killer, workloads, memory ballast.

Every process started here is reaped, and killed if still running, when its
context manager exits, whatever happened inside. Every wait has a timeout.
"""
from __future__ import annotations

import contextlib
import ctypes
import json
import os
import re
import selectors
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Sequence, Union

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
from oomkiller.config.rules import RULES  # noqa: E402
OOMKILLER = ROOT / "oomkiller"
PROGS = ROOT / "build" / "progs"
LOCK_PATH = "/tmp/oomkiller-e2e.lock"
ATTACH_ENV = "OOMKILLER_TEST_ATTACH"

KiB, MiB, GiB = 1 << 10, 1 << 20, 1 << 30

# killer: from start to its ready line. The VM lane raises it: under TCG,
# attaching ~120 kretprobes takes tens of seconds on a busy host.
READY_TIMEOUT = float(os.environ.get("OOMKILLER_TEST_READY_TIMEOUT", "30"))
# killer: from SIGTERM to its exit. The VM lane raises it too: detaching
# ~130 kretprobes under TCG took over 15 s (Debian 6.18.5, loaded host).
STOP_TIMEOUT = float(os.environ.get("OOMKILLER_TEST_STOP_TIMEOUT", "15"))
RUN_TIMEOUT = 60.0     # one workload run

# Default policy (issue 2), as the tests rely on it.
# The killer's default limits, by rule name: from its one rules table.
LIMITS = {r.name: r.default for r in RULES}


def rule_key(name: str) -> str:
    """A rule name in a comparable form: 'read-bytes', 'read_bytes' → 'readbytes'."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def one_line_error(res, code: int, what: str) -> str:
    """A user error as the CLI contract wants it: exit `code`, exactly one
    `oomkiller: ...` line on stderr, no traceback anywhere. Returns the line."""
    assert res.returncode == code, f"{what}: exit {res.returncode}, expected {code}; " \
                                   f"stderr={res.stderr!r}"
    assert "Traceback" not in res.stderr + res.stdout, f"{what}: traceback:\n{res.stderr}"
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, f"{what}: expected a one-line message, got {lines!r}"
    assert lines[0].startswith("oomkiller: "), f"{what}: {lines[0]!r}"
    return lines[0]


# ---- memory, as sysinfo(2) reports it ---------------------------------------

class _Sysinfo(ctypes.Structure):
    _fields_ = [
        ("uptime", ctypes.c_long),
        ("loads", ctypes.c_ulong * 3),
        ("totalram", ctypes.c_ulong),
        ("freeram", ctypes.c_ulong),
        ("sharedram", ctypes.c_ulong),
        ("bufferram", ctypes.c_ulong),
        ("totalswap", ctypes.c_ulong),
        ("freeswap", ctypes.c_ulong),
        ("procs", ctypes.c_ushort),
        ("pad", ctypes.c_ushort),
        ("totalhigh", ctypes.c_ulong),
        ("freehigh", ctypes.c_ulong),
        ("mem_unit", ctypes.c_uint),
        ("_f", ctypes.c_char * 8),
    ]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.sysinfo.argtypes = [ctypes.POINTER(_Sysinfo)]
_libc.sysinfo.restype = ctypes.c_int


def _sysinfo() -> _Sysinfo:
    si = _Sysinfo()
    if _libc.sysinfo(ctypes.byref(si)) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return si


def mem_used() -> int:
    """Bytes in use exactly as the killer's gate sees it: (totalram - freeram) * mem_unit."""
    si = _sysinfo()
    return (si.totalram - si.freeram) * si.mem_unit


def mem_total() -> int:
    si = _sysinfo()
    return si.totalram * si.mem_unit


# ---- small process helpers ---------------------------------------------------

def attach_args() -> list[str]:
    fam = os.environ.get(ATTACH_ENV)
    return ["--attach", fam] if fam else []


def alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat[stat.rindex(b")") + 2:][:1] not in (b"Z", b"X")


def _kill_and_reap(proc: subprocess.Popen, timeout: float = 10.0) -> None:
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        pass  # unkillable (D state): nothing more we can do; reported by the caller's asserts
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe:
            pipe.close()


def wait_until(pred: Callable[[], object], timeout: float, step: float = 0.02):
    """Poll pred until it returns something true or timeout passes; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(step)  # the poll step of a wait on a fact (pred), never the fact itself


def _read_line(fd: int, timeout: float) -> Optional[bytes]:
    """One line from a pipe within timeout, without blocking past it (None on timeout/EOF)."""
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                return None
            buf += chunk
    return buf


# ---- the killer --------------------------------------------------------------

class KillerFailed(AssertionError):
    pass


class Killer:
    """./oomkiller ARGS --json [--attach X], from its ready line until stopped.

    with Killer("--max-writes", "10") as k:
        ...
        ev = k.wait_event(pid=1234, kind="kill")
    On exit: SIGTERM, wait, assert exit status 0 (unless the body raised), and
    SIGKILL if it did not stop.
    """

    def __init__(self, *args: str, json_events: bool = True, attach: bool = True,
                 ready_timeout: float = READY_TIMEOUT, stop_timeout: float = STOP_TIMEOUT,
                 env: Optional[dict] = None, metrics_file: Optional[Path] = None):
        self.args = [str(OOMKILLER), *map(str, args)]
        self.metrics_file = metrics_file
        if metrics_file is not None:
            self.args += ["--metrics-file", str(metrics_file)]
        self.env = {**os.environ, **env} if env else None
        if json_events:
            self.args.append("--json")
        if attach:
            self.args += attach_args()
        self.ready_timeout = ready_timeout
        self.stop_timeout = stop_timeout
        self.proc: Optional[subprocess.Popen] = None
        self.events: list[dict] = []
        self.stdout_lines: list[str] = []
        self.stderr_lines: list[str] = []
        self.ready_line: Optional[str] = None
        self.returncode: Optional[int] = None
        self._cond = threading.Condition()
        self._readers: list[threading.Thread] = []

    # -- lifecycle
    def __enter__(self) -> "Killer":
        self.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.stop()
        else:
            self.stop(check=False)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, bufsize=1, env=self.env)
        try:
            for target, stream in ((self._read_stdout, self.proc.stdout),
                                   (self._read_stderr, self.proc.stderr)):
                t = threading.Thread(target=target, args=(stream,), daemon=True)
                t.start()
                self._readers.append(t)
            with self._cond:
                ok = self._cond.wait_for(lambda: self.ready_line is not None or
                                         self.proc.poll() is not None, self.ready_timeout)
            if self.ready_line is None:
                rc = self.proc.poll()
                self._reap()
                why = f"exited with {rc}" if rc is not None else \
                    f"no ready line within {self.ready_timeout:.0f}s" if not ok else "no ready line"
                raise KillerFailed(f"{' '.join(self.args)}: {why}; stderr:\n" + self.stderr_text())
        except BaseException:
            self._reap()
            raise

    def _read_stdout(self, stream) -> None:
        for line in stream:
            line = line.rstrip("\n")
            with self._cond:
                self.stdout_lines.append(line)
                try:
                    ev = json.loads(line)
                except ValueError:
                    ev = None
                if isinstance(ev, dict):
                    self.events.append(ev)
                self._cond.notify_all()

    def _read_stderr(self, stream) -> None:
        for line in stream:
            line = line.rstrip("\n")
            with self._cond:
                self.stderr_lines.append(line)
                if self.ready_line is None and line.startswith("oomkiller: ready"):
                    self.ready_line = line
                self._cond.notify_all()
        self.proc.wait()  # stderr closes a moment before the exit can be reaped
        with self._cond:
            self._cond.notify_all()

    @property
    def kernel_notes(self) -> list[str]:
        """The ready line's `; kernel: ...` parts: what this kernel changes."""
        return [part.split(": ", 1)[1] for part in (self.ready_line or "").strip().split("; ")
                if part.startswith("kernel: ")]

    @property
    def rules_off(self) -> dict[str, str]:
        """Rules this kernel can't enforce (the ready line says so), and why."""
        return dict(note.split(" off: ", 1) for note in self.kernel_notes if " off: " in note)

    def send_signal(self, sig: int) -> None:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def stop(self, sig: int = signal.SIGTERM, check: bool = True) -> Optional[int]:
        """Send sig, wait for exit, return the exit status; assert it is 0 when check."""
        if self.proc is None:
            return None
        if self.returncode is None:
            self.send_signal(sig)
            try:
                self.returncode = self.proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._reap()
                if check:
                    raise KillerFailed(f"killer did not exit within {self.stop_timeout:.0f}s of "
                                       f"{signal.Signals(sig).name}; stderr:\n" + self.stderr_text())
            self._reap()
        if check and self.returncode != 0:
            raise KillerFailed(f"killer exited with {self.returncode} after "
                               f"{signal.Signals(sig).name}, expected 0; stderr:\n" + self.stderr_text())
        return self.returncode

    def _reap(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.kill()
        try:
            self.returncode = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for t in self._readers:
            t.join(timeout=5)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe:
                pipe.close()

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- facts to wait on
    def status(self) -> dict:
        """This killer's `oomkiller status --json` (read from its pinned maps)."""
        res = subprocess.run([str(OOMKILLER), "status", "--json"], capture_output=True,
                             text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, f"status: exit {res.returncode}: {res.stderr.strip()}"
        st = json.loads(res.stdout)
        assert st["pid"] == self.pid, f"status shows killer {st['pid']}, not ours ({self.pid})"
        return st

    def wait_samples(self, n: int = 2, timeout: float = 60.0) -> None:
        """Return once the killer has taken n more memory samples, each followed
        by a sweep run: what a "still alive" assertion waits on, never a sleep."""
        start = self.status()["samples"]
        assert wait_until(lambda: self.status()["samples"] >= start + n, timeout, 0.05), \
            f"the killer took fewer than {n} samples in {timeout}s:\n{self.stderr_text()}"

    def skipped_runs(self) -> dict[str, int]:
        """Runs the kernel skipped, per program, as of the killer's last
        tick (its --metrics-file; empty without one): what a late kill's
        failure message shows."""
        if self.metrics_file is None or not self.metrics_file.exists():
            return {}
        pat = re.compile(r'^oomkiller_hook_runs_skipped_total\{program="([^"]+)"\} (\d+)$')
        return {m[1]: int(m[2]) for line in self.metrics_file.read_text().splitlines()
                if (m := pat.match(line))}

    def stderr_text(self) -> str:
        with self._cond:
            return "\n".join(self.stderr_lines)

    # -- events
    def find_events(self, pid: Optional[int] = None, kind: Optional[str] = None,
                    rule: Optional[str] = None) -> list[dict]:
        with self._cond:
            evs = list(self.events)
        return [e for e in evs
                if (pid is None or e.get("pid") == pid)
                and (kind is None or e.get("event") == kind)
                and (rule is None or rule_key(e.get("rule", "")) == rule_key(rule))]

    def wait_event(self, pid: Optional[int] = None, kind: Optional[str] = None,
                   rule: Optional[str] = None, timeout: float = 5.0) -> Optional[dict]:
        """First event matching pid/kind/rule, waiting up to timeout; None if none came."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [e for e in self.events
                         if (pid is None or e.get("pid") == pid)
                         and (kind is None or e.get("event") == kind)
                         and (rule is None or rule_key(e.get("rule", "")) == rule_key(rule))]
                left = deadline - time.monotonic()
                if found or left <= 0:
                    return found[0] if found else None
                self._cond.wait(left)

    def kill_event(self, pid: int, rule: str) -> dict:
        """pid's kill event, which must come, for rule."""
        ev = self.wait_event(pid=pid, kind="kill")
        assert ev is not None, f"no kill event for {pid}: {self.events[-5:]}"
        assert rule_key(ev["rule"]) == rule_key(rule), ev
        return ev

    def counter(self, pid: int, rule: str) -> int:
        """pid's counter for rule in `status`, or -1 if it is not tracked."""
        procs = {p["pid"]: p for p in self.status()["processes"]}
        return procs[pid]["counters"][rule] if pid in procs else -1


# ---- workloads ---------------------------------------------------------------

# The progress file of oomp_work, as tests/progs/progress.h lays it out (u64
# slots, stored without syscalls); _check_progress_h() holds these to it.
PROGRESS_H = ROOT / "tests" / "progs" / "progress.h"
(P_MAGIC, P_DONE, P_STATE, P_MYPID, P_IMAGE, P_TOTAL, P_BASE, P_STEPS, P_MSS,
 P_A, P_B, P_CTL) = range(12)
PROGRESS_SLOTS = 16
PROGRESS_MAGIC = 0x6B726F77706D6F6F  # "oompwork"
S_RUNNING, S_FINISHED, S_SLEEPING, S_WAITING = 1, 2, 3, 4


def _check_progress_h() -> None:
    """Every slot, state and the magic as progress.h defines them, or fail at import."""
    text = PROGRESS_H.read_text()
    defined = {name: int(value) for name, value in
               re.findall(r"^\s*((?:P|S)_[A-Z]+|PROGRESS_SLOTS)\s*=\s*(\d+)", text, re.M)}
    magic = re.search(r"^#define PROGRESS_MAGIC (0x[0-9a-fA-F]+)ULL", text, re.M)
    defined["PROGRESS_MAGIC"] = int(magic.group(1), 16) if magic else None
    ours = {name: value for name, value in globals().items()
            if re.fullmatch(r"(?:P|S)_[A-Z]+|PROGRESS_SLOTS|PROGRESS_MAGIC", name)}
    if defined != ours:
        wrong = sorted(set(defined.items()) ^ set(ours.items()), key=str)
        raise ImportError(f"tests/killer.py's progress layout differs from {PROGRESS_H}: {wrong}")


_check_progress_h()


def read_progress(path: Path) -> Optional[tuple]:
    """The PROGRESS_SLOTS u64 slots a workload publishes in its shared file, or
    None before it has mapped it (slot P_MAGIC holds PROGRESS_MAGIC)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    if len(data) < 8 * PROGRESS_SLOTS:
        return None
    slots = struct.unpack(f"<{PROGRESS_SLOTS}Q", data[:8 * PROGRESS_SLOTS])
    return slots if slots[P_MAGIC] == PROGRESS_MAGIC else None


def write_slot(path: Path, slot: int, value: int) -> None:
    """Store one slot for the workload to read (P_CTL)."""
    with open(path, "r+b") as f:
        f.seek(8 * slot)
        f.write(struct.pack("<Q", value))


class Result:
    def __init__(self, pid: int, returncode: int, stdout: str, stderr: str,
                 progress: Optional[tuple], out_size: Optional[int], args: list[str]):
        self.pid, self.returncode, self.stdout, self.stderr = pid, returncode, stdout, stderr
        self.progress, self.out_size, self.args = progress, out_size, args

    @property
    def killed(self) -> bool:
        return self.returncode == -signal.SIGKILL

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def done(self) -> Optional[int]:
        return self.progress[P_DONE] if self.progress else None

    def describe(self) -> str:
        rc = self.returncode
        how = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        prog = ""
        if self.progress:
            prog = (f" progress done={self.progress[P_DONE]} total={self.progress[P_TOTAL]} "
                    f"base={self.progress[P_BASE]} state={self.progress[P_STATE]}")
        size = f" out_size={self.out_size}" if self.out_size is not None else ""
        return (f"{' '.join(self.args)} (pid {self.pid}): {how}{prog}{size}; "
                f"stdout={self.stdout.strip()!r} stderr={self.stderr.strip()!r}")

    def __repr__(self) -> str:
        return f"<Result {self.describe()}>"


def prog_path(prog: Union[str, Path]) -> Path:
    p = Path(prog)
    return p if p.is_absolute() else PROGS / p


class Workload:
    """A workload process: `with Workload("oomp_work", "write:100", out=True) as w`.

    progress=True passes `-p FILE` (the progress file, tests/progs/progress.h);
    out=True passes `-o FILE` for the write steps. The process is killed and
    reaped on exit.
    """

    def __init__(self, prog: Union[str, Path], *args: object, progress: bool = False,
                 out: bool = False):
        self.path = prog_path(prog)
        self.tmp = Path(tempfile.mkdtemp(prefix="oomk-e2e-"))
        self.progress_path = self.tmp / "progress" if progress else None
        self.out_path = self.tmp / "out" if out else None
        self.args = [str(self.path), *map(str, args)]
        if self.progress_path:
            self.args += ["-p", str(self.progress_path)]
        if self.out_path:
            self.args += ["-o", str(self.out_path)]
        self.proc: Optional[subprocess.Popen] = None
        self.result: Optional[Result] = None

    def __enter__(self) -> "Workload":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=self.tmp)

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None and alive(self.proc.pid)

    def progress(self) -> Optional[tuple]:
        return read_progress(self.progress_path) if self.progress_path else None

    def out_size(self) -> Optional[int]:
        if not self.out_path:
            return None
        try:
            return self.out_path.stat().st_size
        except FileNotFoundError:
            return 0

    def wait_state(self, state: int, timeout: float = 10.0) -> bool:
        """Wait until the progress file shows state (or the process exits); True if reached."""
        def reached():
            p = self.progress()
            return (p is not None and p[P_STATE] == state) or not self.alive()
        wait_until(reached, timeout)
        p = self.progress()
        return p is not None and p[P_STATE] == state

    def wait(self, timeout: float = RUN_TIMEOUT) -> Result:
        """Wait for exit (kill it if it overruns: the result then shows SIGKILL from us,
        so `timed_out` is set) and collect its result."""
        assert self.proc is not None
        self.timed_out = False
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.timed_out = True
            self.proc.kill()
            out, err = self.proc.communicate(timeout=10)
            err += f"\n[test harness: killed after {timeout}s timeout]"
        self.result = Result(self.proc.pid, self.proc.returncode, out, err, self.progress(),
                             self.out_size(), self.args)
        return self.result

    def kill(self) -> None:
        if self.proc is not None:
            _kill_and_reap(self.proc)

    def close(self) -> None:
        try:
            self.kill()
        finally:
            shutil.rmtree(self.tmp, ignore_errors=True)


def run(prog: Union[str, Path], *args: object, timeout: float = RUN_TIMEOUT,
        progress: bool = False, out: bool = False) -> Result:
    """Run a workload to its end (or kill it at timeout) and return its Result."""
    with Workload(prog, *args, progress=progress, out=out) as w:
        res = w.wait(timeout)
        if w.timed_out:
            raise AssertionError(f"workload overran its {timeout}s timeout: {res.describe()}")
        return res


WORK = PROGS / "oomp_work"
MAP_WALKER = PROGS / "map_walker"


@contextlib.contextmanager
def map_walkers(n: Optional[int] = None):
    """One map_walker per CPU (or n) for the block: a bpf(2) map reader that
    keeps its CPU's bpf_prog_active held, preemptibly (tests/progs/map_walker.c).
    Each has made its map before the block starts; all are killed after."""
    procs = []
    try:
        for _ in range(n or os.cpu_count() or 1):
            p = subprocess.Popen([str(MAP_WALKER)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
            procs.append(p)
            line = p.stdout.readline()
            assert line == "ready\n", f"map_walker: {line!r} {p.stderr.read() if p.poll() is not None else ''}"
        yield procs
    finally:
        for p in procs:
            p.kill()
        for p in procs:
            p.wait()
            p.stdout.close()
            p.stderr.close()


def work_steps(op: str, count: object, *opts: object,
               prog: Union[str, Path] = WORK) -> list[str]:
    """The shorthand `OP COUNT [options]` as oomp_work's steps: the step OP:COUNT,
    with three options that shape the script rather than the step:
    --in-thread [--rename X] runs it in a thread (named X), --exec-reset runs it
    again after an exec of prog, and --then-sleep ends in `pause` (S_SLEEPING).
    Every other option goes to oomp_work as it is."""
    rest = [str(o) for o in opts]
    before: list[str] = []
    if "--in-thread" in rest:
        rest.remove("--in-thread")
        name = None
        if "--rename" in rest:
            i = rest.index("--rename")
            name = rest[i + 1]
            del rest[i:i + 2]
        before = [f"thread:{name}" if name else "thread"]
    steps = [*before, f"{op}:{count}"]
    if "--exec-reset" in rest:
        rest.remove("--exec-reset")
        steps += [f"exec:{prog_path(prog)}", *steps]
    if "--then-sleep" in rest:
        rest.remove("--then-sleep")
        steps.append("pause")
    return [*rest, *steps]


def work(op: str, count: object, *opts: object, prog: Union[str, Path] = WORK, **kw) -> Result:
    """run(prog, *work_steps(...)): oomp_work (or a copy of it) with its progress file."""
    kw.setdefault("progress", True)
    return run(prog, *work_steps(op, count, *opts, prog=prog), **kw)


def sleeper(op: str, count: object, *opts: object, prog: Union[str, Path] = WORK) -> Workload:
    """oomp_work doing OP COUNT, then sleeping in pause() (state S_SLEEPING)."""
    return Workload(prog, *work_steps(op, count, *opts, "--then-sleep", prog=prog),
                    "--timeout", "900", progress=True)


def plain_copy(dest_dir: Path, name: str = "plainwork") -> Path:
    """oomp_work copied as dest_dir/name (by default a name without the target substring)."""
    dest = Path(dest_dir) / name
    shutil.copy2(WORK, dest)
    return dest


# ---- memory ballast ----------------------------------------------------------

class Ballast:
    """A non-target process holding `nbytes` of touched anonymous memory.

    `Ballast.opening(gate)` sizes it so that used memory ends at least
    `margin` above `gate`, from the current sysinfo(), and never smaller than
    gate + margin itself: other people's processes on a shared machine may
    free their memory while a test relies on the gate staying open.
    """

    def __init__(self, nbytes: int, ready_timeout: float = 60.0, lifetime: int = 900):
        self.nbytes = max(int(nbytes), 1 * MiB)
        self.ready_timeout = ready_timeout
        self.lifetime = lifetime  # seconds: it ends itself (SIGALRM) after this, whatever happens
        self.proc: Optional[subprocess.Popen] = None

    @classmethod
    def opening(cls, gate: int, margin: int = int(1.5 * GiB), slack: int = 256 * MiB,
                **kw) -> "Ballast":
        return cls(max(gate + margin + slack - mem_used(), gate + margin + slack), **kw)

    def __enter__(self) -> "Ballast":
        total = mem_total()
        if self.nbytes > total - 2 * GiB:
            raise AssertionError(f"ballast of {self.nbytes} bytes would not fit in {total} bytes of RAM")
        path = PROGS / "ballast"
        assert "oomp" not in path.name
        self.proc = subprocess.Popen([str(path), str(self.nbytes), str(self.lifetime)], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            line = _read_line(self.proc.stdout.fileno(), self.ready_timeout)
            if not line or not line.startswith(b"ready"):
                raise AssertionError(f"ballast of {self.nbytes} bytes not ready within "
                                     f"{self.ready_timeout}s (got {line!r}, exit {self.proc.poll()})")
        except BaseException:
            _kill_and_reap(self.proc)
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc is not None:
            _kill_and_reap(self.proc)
            self.proc = None


# ---- bpftool -------------------------------------------------------------------

def bpf_prog_ids() -> set[int]:
    """Ids of all BPF programs loaded in the kernel (bpftool -j prog list)."""
    out = subprocess.run(["bpftool", "-j", "prog", "list"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return {p["id"] for p in json.loads(out or "[]")}


def bpf_prog_names(ids: Sequence[int]) -> dict[int, str]:
    out = subprocess.run(["bpftool", "-j", "prog", "list"], capture_output=True, text=True,
                         timeout=30, check=True).stdout
    return {p["id"]: p.get("name", "?") for p in json.loads(out or "[]") if p["id"] in set(ids)}
