#!/usr/bin/python3
"""`make bench`: oomkiller's overhead, kill latency and footprint, against
the floor (empty programs on the same hooks) and two peers (a /proc poller
and a bpftrace script), all in one run. Prints a markdown table and writes
bench/results.json. Run as root; see bench/README.md for what each number is.

Every process this driver starts is its own child, tracked by pid, and
killed on the way out, even on failure. The whole run holds the exclusive
flock on /tmp/oomkiller-e2e.lock that every killer run on this machine takes.
"""
from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import mmap
import os
import platform
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build" / "bench"
KILLER = ROOT / "oomkiller"
LOCK = "/tmp/oomkiller-e2e.lock"
PYTHON = "/usr/bin/python3"

MiB = 1 << 20
# The killer's defaults (issue 2); the kill tests use them as they are.
LIMITS = {"fds": 100, "writes": 100, "read": 10 * MiB, "threads": 100,
          "rand": 100, "tcp": 1000}
# For overhead: nothing may ever be crossed, and a crossing could not kill.
HIGH = ["--min-used", "1T", "--max-fds", "1000000", "--max-writes", "1000000000",
        "--max-read", "1T", "--max-threads", "1000000000", "--max-rand", "1000000000",
        "--max-tcp-packets", "1000000000"]
READ_CHUNK = 65536
PR_SET_PDEATHSIG = 1

_libc = ctypes.CDLL(None, use_errno=True)


def log(msg: str) -> None:
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    def pre() -> None:
        _libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)
    return pre


class Children:
    """Every long-lived helper we start; stop() and stop_all() by pid."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str], sig: int = signal.SIGTERM, **kw: Any) -> subprocess.Popen:
        p = subprocess.Popen(argv, preexec_fn=_die_with_parent(sig), **kw)
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


def cpu_ticks(pid: int) -> float:
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


def mem_used() -> int:
    """(totalram - freeram) * mem_unit, the killer's formula, via sysinfo(2)."""
    buf = ctypes.create_string_buffer(128)
    if _libc.sysinfo(buf) != 0:
        raise OSError(ctypes.get_errno(), "sysinfo")
    totalram, freeram = struct.unpack_from("QQ", buf, 8 + 3 * 8)
    mem_unit = struct.unpack_from("I", buf, 8 + 3 * 8 + 6 * 8 + 2 + 2 + 4 + 2 * 8)[0]
    return (totalram - freeram) * mem_unit


# ---------------------------------------------------------------- conditions

class Floor:
    name = "floor"

    # The object also holds the VM bench's fexit and kretprobe floors,
    # which this machine's kernel refuses: name what to load.
    def __init__(self, only: str = "floor_sys_enter,floor_sys_exit,floor_rand") -> None:
        self.only = ["--only", only]

    def start(self) -> None:
        self.p = KIDS.start([PYTHON, str(ROOT / "bench" / "floor.py"), str(BUILD / "floor.bpf.o")]
                            + self.only,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        read_line(self.p, self.p.stdout, "floor: ready", 30)

    def stop(self) -> None:
        self.p.stdin.close()
        self.p.stdin = None
        KIDS.stop(self.p)


class Killer:
    name = "oomkiller"

    def __init__(self, args: list[str], json_out: bool = False,
                 ready_timeout: float = 60) -> None:
        self.args = args
        self.ready_timeout = ready_timeout
        self.json_out = json_out
        self.ready = ""
        self.events: list[dict] = []
        self.lines: list[str] = []

    def start(self) -> None:
        argv = [PYTHON, str(KILLER)] + self.args + (["--json"] if self.json_out else [])
        self.p = KIDS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT)
        self.ready = read_line(self.p, self.p.stderr, "oomkiller: ready",
                               self.ready_timeout)
        self.lines = []
        drain(self.p.stdout, self.lines)
        drain(self.p.stderr, [])

    def parsed_events(self) -> list[dict]:
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def stop(self) -> None:
        KIDS.stop(self.p)
        if self.p.returncode not in (0, None):
            log(f"oomkiller exited {self.p.returncode} on SIGTERM (want 0)")


def task_comm_offset() -> int:
    out = subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux",
                          "format", "raw"], capture_output=True, text=True, check=True).stdout
    in_task = False
    for line in out.splitlines():
        if line.startswith("["):
            in_task = "STRUCT 'task_struct'" in line
        elif in_task and line.strip().startswith("'comm' "):
            return int(line.split("bits_offset=")[1].split()[0]) // 8
    raise RuntimeError("no task_struct.comm in the kernel's BTF")


class Bpftrace:
    """bench/policy.bt under Debian's bpftrace, in a private mount namespace
    with tracefs mounted (it is not mounted on this machine, and bpftrace
    0.17 finds tracepoints only through it)."""
    name = "bpftrace"

    def __init__(self, limits: list[int]) -> None:
        self.limits = limits
        self.lines: list[str] = []

    def start(self) -> None:
        script = ("mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing"
                  " || exit 97; exec bpftrace --unsafe \"$@\"")
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                str(ROOT / "bench" / "policy.bt")] + [str(v) for v in self.limits]
        self.p = KIDS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        read_line(self.p, self.p.stdout, "policy.bt: ready", 120)
        self.lines = []
        drain(self.p.stdout, self.lines)
        drain(self.p.stderr, [])

    def stop(self) -> None:
        KIDS.stop(self.p, signal.SIGINT)


class Poller:
    name = "procpoller"

    def start(self) -> None:
        self.p = KIDS.start([str(BUILD / "procpoller"), "-i", "100",
                             "-f", str(LIMITS["fds"]), "-t", str(LIMITS["threads"]),
                             "-w", str(LIMITS["writes"]), "-r", str(LIMITS["read"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        read_line(self.p, self.p.stderr, "procpoller: ready", 10)
        self.t0 = time.monotonic()
        self.c0 = cpu_ticks(self.p.pid)
        self.lines: list[str] = []
        drain(self.p.stdout, self.lines)

    def stop(self) -> None:
        self.cpu_pct = 100 * (cpu_ticks(self.p.pid) - self.c0) / (time.monotonic() - self.t0)
        KIDS.stop(self.p)


# ---------------------------------------------------------------- overhead

OPS = ["write", "read", "getppid", "rand", "thread"]


def time_op(binary: str, op: str, n: int) -> float:
    out = subprocess.run([str(BUILD / binary), op, str(n)], capture_output=True, text=True,
                         timeout=300, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise RuntimeError(f"{binary} {op}: exit {out.returncode}: {out.stderr.strip()}")
    return float(out.stdout)


def rotate_and_time(conds: list[tuple[str, Any, list[tuple[str, str]]]], ops: list[str],
                    counts: dict[str, int], rounds: int, what: str) -> dict[str, dict[str, list[float]]]:
    """{label: {op: [ns per call, one a round]}}. Every round visits every
    condition (start its state, time each (label, binary) on each op, stop
    it), in an order that rotates from round to round, so drift and
    neighbours' noise spread evenly."""
    samples: dict[str, dict[str, list[float]]] = {}
    for r in range(rounds):
        order = conds[r % len(conds):] + conds[:r % len(conds)]
        for _, state, runs in order:
            if state:
                state.start()
            try:
                for op in ops:
                    for label, binary in runs:
                        samples.setdefault(label, {}).setdefault(op, []).append(
                            time_op(binary, op, counts[op]))
            finally:
                if state:
                    state.stop()
        log(f"{what} round {r + 1}/{rounds} done")
    return samples


def overhead(args: argparse.Namespace, have_killer: bool, bt_ok: bool) -> dict:
    counts = {"write": args.calls, "read": args.calls, "getppid": args.calls,
              "rand": args.rand_calls, "thread": args.thread_calls}
    # condition -> (state object or None, [(label, binary)])
    conds: list[tuple[str, Any, list[tuple[str, str]]]] = [
        ("a", None, [("a", "benchsys")]),
        ("b", Floor(), [("b", "benchsys")]),
        # The killer counts syscalls at sys_exit only: the floor of that one hook.
        ("b1", Floor("floor_sys_exit,floor_rand"), [("b1", "benchsys")]),
    ]
    if have_killer:
        conds.append(("cd", Killer(HIGH), [("c", "benchsys"), ("d", "oomp_benchsys")]))
    if bt_ok:
        big = [1000000, 1000000000, 1 << 40, 1000000000, 1000000000, 1000000000, args.comm_off]
        conds.append(("bt", Bpftrace(big), [("bt_nt", "benchsys"), ("bt_t", "oomp_benchsys")]))
    samples = rotate_and_time(conds, OPS, counts, args.rounds, "overhead")
    med = {lab: {op: statistics.median(v) for op, v in ops.items()} for lab, ops in samples.items()}
    return {"calls": counts, "rounds": args.rounds, "samples_ns": samples, "median_ns": med}


def bpf_prog_stats(killer: Killer, n: int) -> dict:
    """Per-program ns per run while the loops run, from kernel.bpf_stats_enabled.
    Stats add their own cost, so this runs apart from the timed rounds."""
    prog_ids = set()
    for fd in os.listdir(f"/proc/{killer.p.pid}/fdinfo"):
        try:
            with open(f"/proc/{killer.p.pid}/fdinfo/{fd}") as f:
                for line in f:
                    if line.startswith("prog_id:"):
                        prog_ids.add(int(line.split()[1]))
        except OSError:
            pass

    def snap() -> dict[int, tuple[str, int, int]]:
        out = {}
        for pid in prog_ids:
            j = json.loads(subprocess.run(["bpftool", "prog", "show", "id", str(pid), "-j"],
                                          capture_output=True, text=True).stdout or "{}")
            out[pid] = (j.get("name", "?"), j.get("run_cnt", 0), j.get("run_time_ns", 0))
        return out

    path = "/proc/sys/kernel/bpf_stats_enabled"
    old = open(path).read().strip()
    res: dict[str, Any] = {}
    try:
        with open(path, "w") as f:
            f.write("1")
        for label, binary in (("non-target", "benchsys"), ("target", "oomp_benchsys")):
            s0 = snap()
            time_op(binary, "write", n)
            s1 = snap()
            res[label] = {s1[p][0]: {"runs": s1[p][1] - s0[p][1],
                                     "ns_per_run": round((s1[p][2] - s0[p][2]) /
                                                         max(1, s1[p][1] - s0[p][1]), 1)}
                          for p in s1 if s1[p][1] - s0[p][1] > 0}
    finally:
        with open(path, "w") as f:
            f.write(old)
    return res


# ---------------------------------------------------------------- kills

class TcpSink:
    """A non-target that accepts and drains the tcp victim's connections."""

    def __init__(self) -> None:
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(c,), daemon=True).start()

    @staticmethod
    def _drain(c: socket.socket) -> None:
        with c:
            while c.recv(65536):
                pass


RULES = ["writes", "reads", "fds", "threads", "rand", "tcp"]


def crossing(rule: str) -> int:
    """The index of the operation that crosses the limit (1-based).
    fds: 0, 1 and 2 are open, so open number L-3 makes L. reads: the dynamic
    loader reads 832 bytes of libc first; that is less than one chunk, so the
    crossing is still chunk L/CHUNK."""
    return {"writes": LIMITS["writes"], "reads": LIMITS["read"] // READ_CHUNK,
            "fds": LIMITS["fds"] - 3, "threads": LIMITS["threads"],
            "rand": LIMITS["rand"], "tcp": LIMITS["tcp"], "self": 100}[rule]


def run_victim(rule: str, k: int, maxops: int, pace_us: int, tmp: Path, sink: TcpSink,
               timeout: float) -> dict:
    prog = tmp / "progress"
    out = tmp / "out"
    prog.write_bytes(b"\0" * 4096)
    if out.exists():
        out.unlink()
    extra = {"writes": str(out), "sleep": str(out), "reads": str(READ_CHUNK),
             "tcp": str(sink.port)}.get(rule)
    argv = [str(BUILD / "oomp_victim"), rule, str(k), str(maxops), str(pace_us), str(prog)]
    if extra:
        argv.append(extra)
    with open(prog, "r+b") as f:
        m = mmap.mmap(f.fileno(), 4096)
    errf = open(tmp / "victim.err", "w+")
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf,
                         preexec_fn=_die_with_parent(signal.SIGKILL))
    pidfd = os.pidfd_open(p.pid)
    try:
        struct.pack_into("Q", m, 40, 1)          # go
        t_go = time.monotonic_ns()
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        t_death = None
        if poller.poll(timeout * 1000):
            t_death = time.monotonic_ns()
        else:
            os.kill(p.pid, signal.SIGKILL)
        rc = p.wait()
    finally:
        os.close(pidfd)
    started, t_cross, t_first, phase, _last = struct.unpack_from("5Q", m, 0)
    m.close()
    errf.seek(0)
    err = errf.read().strip()
    errf.close()
    res: dict[str, Any] = {"rule": rule, "k": k, "started": started, "exit": rc,
                           "killed": rc == -signal.SIGKILL and t_death is not None and phase != 2}
    if err:
        res["stderr"] = err[-200:]
    if t_death is None:
        res["timeout"] = True
    if res["killed"]:
        res["overshoot"] = started - k
        if t_cross:
            res["latency_us"] = round((t_death - t_cross) / 1000, 1)
        else:
            res["latency_us"] = None      # died before the crossing operation
    if rule == "writes" and out.exists():
        res["file_overshoot"] = out.stat().st_size - k
    res["run_ms"] = round(((t_death or time.monotonic_ns()) - t_go) / 1e6, 1)
    return res


def kill_suite(name: str, rules: list[str], reps: int, paced_reps: int, tmp: Path,
               sink: TcpSink) -> list[dict]:
    results = []
    for rule in rules:
        k = crossing(rule)
        for pace, n in ((0, reps), (1000, paced_reps)):
            for _ in range(n):
                maxops = k + (10000 if pace == 0 else 1500)
                if rule == "threads" and pace == 0:
                    maxops = k + 2000
                r = run_victim(rule, k, maxops, pace, tmp, sink, timeout=30)
                r["pace_us"] = pace
                r["killer"] = name
                results.append(r)
    log(f"{name}: {len(results)} kill runs done")
    return results


def deferred(args: argparse.Namespace, tmp: Path, sink: TcpSink) -> dict:
    """A sleeper condemned with the gate closed, killed when a ballast opens it."""
    gate = mem_used() + 512 * MiB
    killer = Killer(["--min-used", str(gate), "--interval", str(args.interval)], json_out=True)
    killer.start()
    runs = []
    try:
        for rep in range(args.deferred_reps):
            prog = tmp / "progress"
            prog.write_bytes(b"\0" * 4096)
            with open(prog, "r+b") as f:
                m = mmap.mmap(f.fileno(), 4096)
            k = LIMITS["writes"]
            p = subprocess.Popen([str(BUILD / "oomp_victim"), "sleep", str(k), str(k), "0",
                                  str(prog), str(tmp / "out")],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL,
                                 preexec_fn=_die_with_parent(signal.SIGKILL))
            pidfd = os.pidfd_open(p.pid)
            struct.pack_into("Q", m, 40, 1)
            run: dict[str, Any] = {"rep": rep}
            ballast = None
            try:
                end = time.monotonic() + 10
                ev = None
                while time.monotonic() < end and ev is None:
                    for e in killer.parsed_events():
                        if e.get("pid") == p.pid:
                            ev = e
                    time.sleep(0.01)
                phase = struct.unpack_from("Q", m, 24)[0]
                run["event"] = ev.get("event") if ev else None
                run["asleep"] = phase == 3
                if p.poll() is not None or not ev or ev.get("event") != "condemned":
                    run["error"] = f"sleeper not condemned (event {ev}, exit {p.poll()})"
                    runs.append(run)
                    continue
                ballast = KIDS.start([str(BUILD / "ballast"), str(gate), str(gate + 1024 * MiB)],
                                     sig=signal.SIGKILL, stdout=subprocess.PIPE)
                line = read_line(ballast, ballast.stdout, "open ", 60)
                t_open = int(line.split()[1])
                poller = select.poll()
                poller.register(pidfd, select.POLLIN)
                if poller.poll(int((args.interval * 2 + 5) * 1000)):
                    t_death = time.monotonic_ns()
                    run["latency_ms"] = round((t_death - t_open) / 1e6, 1)
                    run["exit"] = p.wait()
                else:
                    run["error"] = "sleeper still alive after the gate opened"
                runs.append(run)
            finally:
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGKILL)
                p.wait()
                os.close(pidfd)
                m.close()
                if ballast:
                    KIDS.stop(ballast, signal.SIGKILL)
            # Let the killer see the gate closed again before the next sleeper.
            time.sleep(args.interval * 2 + 0.2)
    finally:
        killer.stop()
    lat = [r["latency_ms"] for r in runs if "latency_ms" in r]
    return {"interval_s": args.interval, "gate_bytes": gate, "runs": runs,
            "median_ms": statistics.median(lat) if lat else None,
            "max_ms": max(lat) if lat else None}


# ---------------------------------------------------------------- footprint

def footprint(args: argparse.Namespace) -> dict:
    killer = Killer([])
    killer.start()
    try:
        pid = killer.p.pid
        time.sleep(2)
        status = dict(line.split(":", 1) for line in open(f"/proc/{pid}/status") if ":" in line)
        rss_kib = int(status["VmRSS"].split()[0])
        hwm_kib = int(status["VmHWM"].split()[0])
        c0, t0 = cpu_ticks(pid), time.monotonic()
        time.sleep(args.idle_seconds)
        cpu_s, wall = cpu_ticks(pid) - c0, time.monotonic() - t0
        maps = []
        for fd in os.listdir(f"/proc/{pid}/fdinfo"):
            try:
                info = open(f"/proc/{pid}/fdinfo/{fd}").read()
            except OSError:
                continue
            for line in info.splitlines():
                if line.startswith("map_id:"):
                    mid = line.split()[1]
                    j = json.loads(subprocess.run(["bpftool", "map", "show", "id", mid, "-j"],
                                                  capture_output=True, text=True).stdout)
                    maps.append({"id": int(mid), "name": j.get("name"), "type": j.get("type"),
                                 "max_entries": j.get("max_entries"),
                                 "bytes_memlock": j.get("bytes_memlock", 0)})
        uniq = {m["id"]: m for m in maps}
        return {"rss_kib": rss_kib, "hwm_kib": hwm_kib,
                "idle_window_s": round(wall, 1), "idle_cpu_s": round(cpu_s, 3),
                "idle_cpu_pct": round(100 * cpu_s / wall, 3),
                "idle_cpu_s_per_min": round(60 * cpu_s / wall, 3),
                "maps": sorted(uniq.values(), key=lambda m: m["id"]),
                "map_bytes": sum(m["bytes_memlock"] for m in uniq.values())}
    finally:
        killer.stop()


# ---------------------------------------------------------------- report

def fmt(v: Optional[float], nd: int = 1) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


def summarize_kills(runs: list[dict], killer: str, rule: str, pace: int) -> dict:
    rs = [r for r in runs if r["killer"] == killer and r["rule"] == rule and r["pace_us"] == pace]
    if not rs:
        return {}
    killed = [r for r in rs if r["killed"]]
    over = [r["overshoot"] for r in killed]
    lat = [r["latency_us"] for r in killed if r.get("latency_us") is not None]
    return {"n": len(rs), "killed": len(killed),
            "overshoot_max": max(over) if over else None,
            "overshoot_min": min(over) if over else None,
            "latency_us_median": statistics.median(lat) if lat else None,
            "latency_us_max": max(lat) if lat else None,
            "file_overshoot": [r["file_overshoot"] for r in rs if "file_overshoot" in r],
            "survivor_ops": [r["started"] for r in rs if not r["killed"]]}


def report(res: dict) -> str:
    L: list[str] = []
    oh = res.get("overhead", {}).get("median_ns", {})
    a, b = oh.get("a", {}), oh.get("b", {})
    L.append(f"## oomkiller bench — {res['machine']['when']} on {res['machine']['host']}\n")
    L.append(f"kernel {res['machine']['kernel']}, {res['machine']['cpus']} CPUs; "
             f"medians of {res.get('overhead', {}).get('rounds', 0)} interleaved rounds\n")
    L.append("### Overhead (ns per call)\n")
    cols = [("a", "a: none"), ("b", "b: floor"), ("b1", "b1: floor, sys_exit only"),
            ("c", "c: killer, non-target"),
            ("d", "d: killer, target"), ("bt_nt", "bpftrace, non-target"),
            ("bt_t", "bpftrace, target")]
    cols = [c for c in cols if c[0] in oh]
    L.append("| op | " + " | ".join(c[1] for c in cols) +
             " | (c−a)/(b−a) | (d−a)/(b−a) | (c−a)/(b1−a) | (d−a)/(b1−a) |")
    L.append("|---|" + "---|" * (len(cols) + 4))
    ratios: dict[str, dict[str, Optional[float]]] = {}
    for op in OPS:
        row = [fmt(oh[c].get(op)) for c, _ in cols]
        rr: dict[str, Optional[float]] = {}
        b1 = oh.get("b1", {})
        for lab in ("c", "d"):
            for key, fl in ((lab, b), (lab + "/b1", b1)):
                if lab in oh and op in a and op in fl and fl[op] - a[op] > 0:
                    rr[key] = (oh[lab][op] - a[op]) / (fl[op] - a[op])
                else:
                    rr[key] = None
        ratios[op] = rr
        L.append(f"| {op} | " + " | ".join(row) + f" | {fmt(rr['c'], 2)} | {fmt(rr['d'], 2)} |"
                 f" {fmt(rr['c/b1'], 2)} | {fmt(rr['d/b1'], 2)} |")
    res["ratios"] = ratios
    L.append("\nrand: the floor is an empty uprobe on libc rand, and the uprobe trap dominates. "
             "thread: create + join (~40 µs, noisy): its ratios are noise, not a measure.\n")

    kills = res.get("kills", [])
    if kills:
        L.append("`reference/self`: the victim kills itself at the crossing; its latency is the floor "
                 "(exit + pidfd wake-up of this driver) under every other row.\n")
        L.append("### Kills: overshoot (operations past the crossing) and latency (crossing → death via pidfd)\n")
        L.append("| killer | rule | pace | killed/runs | overshoot min..max | latency median | latency max |")
        L.append("|---|---|---|---|---|---|---|")
        for killer in ("reference", "oomkiller", "procpoller", "bpftrace"):
            for rule in RULES + ["self"]:
                for pace in (0, 1000):
                    s = summarize_kills(kills, killer, rule, pace)
                    if not s:
                        continue
                    res.setdefault("kill_summary", {}).setdefault(killer, {})[f"{rule}@{pace}"] = s
                    ov = ("—" if s["overshoot_max"] is None
                          else f"{s['overshoot_min']}..{s['overshoot_max']}")
                    if s["survivor_ops"]:
                        ov += f" (survived {max(s['survivor_ops'])} ops)"
                    lat = lambda v: "—" if v is None else (f"{v:.0f} µs" if v < 10000 else f"{v / 1000:.1f} ms")
                    L.append(f"| {killer} | {rule} | {'full speed' if pace == 0 else '1 op/ms'} | "
                             f"{s['killed']}/{s['n']} | {ov} | {lat(s['latency_us_median'])} | "
                             f"{lat(s['latency_us_max'])} |")
        if "poller_cpu_pct" in res:
            L.append(f"\nprocpoller CPU while it ran: {res['poller_cpu_pct']:.2f} % of one CPU "
                     "(100 ms period). It cannot see rand() or TCP segments, and "
                     "`Threads:` is the current count, not threads ever created.\n")
    d = res.get("deferred")
    if d:
        L.append("### Deferred kill (gate opened by a ballast → death of a condemned sleeper)\n")
        L.append(f"interval {d['interval_s']} s; per run (ms): "
                 + ", ".join(fmt(r.get("latency_ms")) if "latency_ms" in r else f"error: {r.get('error')}"
                             for r in d["runs"])
                 + f"; median {fmt(d['median_ms'])} ms, max {fmt(d['max_ms'])} ms\n")
    f = res.get("footprint")
    if f:
        L.append("### Footprint\n")
        L.append(f"loader RSS {f['rss_kib'] / 1024:.1f} MiB (peak {f['hwm_kib'] / 1024:.1f} MiB); "
                 f"idle CPU {f['idle_cpu_pct']:.3f} % = {f['idle_cpu_s_per_min']:.3f} CPU-s per idle "
                 f"minute (measured over {f['idle_window_s']} s, scaled to 60 s); "
                 f"BPF maps {f['map_bytes'] / 1024:.0f} KiB memlock: "
                 + ", ".join(f"{m['name']} {m['bytes_memlock'] / 1024:.0f} KiB" for m in f["maps"]) + "\n")
    ps = res.get("prog_stats")
    if ps:
        L.append("### Per-program cost during 1M writes (kernel.bpf_stats_enabled, separate run)\n")
        for who, progs in ps.items():
            L.append(f"- {who}: " + ", ".join(f"{n} {v['ns_per_run']} ns × {v['runs']}"
                                              for n, v in sorted(progs.items())))
        L.append("")
    # targets
    L.append("### Targets\n")
    L.append("| measure | target | got | |")
    L.append("|---|---|---|---|")
    tg = res["targets"] = []

    def target(name: str, want: str, got: Optional[str], ok: Optional[bool]) -> None:
        tg.append({"measure": name, "target": want, "got": got, "met": ok})
        L.append(f"| {name} | {want} | {got or 'not measured'} | "
                 f"{'met' if ok else ('missed' if ok is False else 'n/a')} |")

    sysops = ["write", "read", "getppid"]
    for lab, want, lim in (("c", "≤ 1.2 × floor", 1.2), ("d", "≤ 2 × floor", 2.0)):
        vals = [ratios[op][lab] for op in sysops if ratios[op].get(lab) is not None]
        name = "non-target overhead" if lab == "c" else "target overhead"
        target(name, want, ", ".join(f"{op} {ratios[op][lab]:.2f}" for op in sysops
                                     if ratios[op].get(lab) is not None) or None,
               all(v <= lim for v in vals) if vals else None)
    ks = res.get("kill_summary", {}).get("oomkiller", {})
    if ks:
        worst = max((s["overshoot_max"] for s in ks.values() if s["overshoot_max"] is not None),
                    default=None)
        missed = [k for k, s in ks.items() if s["killed"] < s["n"]]
        got = f"max {worst}" + (f"; not killed: {', '.join(missed)}" if missed else "")
        target("overshoot, synchronous rules", "0", got, worst == 0 and not missed)
    else:
        target("overshoot, synchronous rules", "0", None, None)
    if d and d["max_ms"] is not None:
        lim = d["interval_s"] * 1000 + 100
        errs = [r for r in d["runs"] if "error" in r]
        target("deferred kill latency", f"≤ interval + 100 ms ({lim:.0f} ms)",
               f"max {d['max_ms']:.0f} ms" + (f", {len(errs)} failed runs" if errs else ""),
               d["max_ms"] <= lim and not errs)
    else:
        target("deferred kill latency", "≤ interval + 100 ms", None, None)
    if f:
        target("loader RSS", "≤ 40 MB (40·10⁶ B)", f"{f['rss_kib'] * 1024 / 1e6:.1f} MB",
               f["rss_kib"] * 1024 <= 40e6)
        target("loader idle CPU", "≤ 0.5 %", f"{f['idle_cpu_pct']:.3f} %", f["idle_cpu_pct"] <= 0.5)
    else:
        target("loader RSS", "≤ 40 MB", None, None)
        target("loader idle CPU", "≤ 0.5 %", None, None)
    for n in res.get("notes", []):
        L.append(f"\nnote: {n}")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- main

def bpftrace_ready(res: dict) -> bool:
    if not any(os.access(os.path.join(d, "bpftrace"), os.X_OK)
               for d in os.environ.get("PATH", "/usr/bin").split(":")):
        res["notes"].append("bpftrace is not installed (`apt-get install bpftrace`): peer (ii) skipped")
        return False
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         "mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing || exit 97;"
         " exec timeout 60 bpftrace --unsafe -e "
         "'tracepoint:syscalls:sys_enter_getppid /pid == 1/ { signal(\"SIGKILL\"); } "
         "BEGIN { printf(\"ok\\n\"); exit(); }'"],
        capture_output=True, text=True)
    if "ok" not in probe.stdout:
        err = " ".join(l for l in probe.stderr.splitlines() if "RLIMIT_MEMLOCK" not in l)
        res["notes"].append(f"bpftrace cannot run the policy here: {err.strip() or probe.returncode}")
        return False
    res["bpftrace"] = subprocess.run(["bpftrace", "--version"], capture_output=True,
                                     text=True).stdout.strip()
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--calls", type=int, default=1000000)
    ap.add_argument("--rand-calls", type=int, default=100000)
    ap.add_argument("--thread-calls", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=3, help="full-speed kill runs per rule")
    ap.add_argument("--paced-reps", type=int, default=1, help="1 op/ms kill runs per rule")
    ap.add_argument("--deferred-reps", type=int, default=3)
    ap.add_argument("--interval", type=float, default=1.0)
    ap.add_argument("--idle-seconds", type=float, default=30.0)
    ap.add_argument("--no-killer", action="store_true", help="skip everything needing ./oomkiller")
    ap.add_argument("--no-bpftrace", action="store_true")
    ap.add_argument("--skip", default="", help="comma list: overhead,kills,poller,bpftrace,deferred,footprint")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if os.geteuid() != 0:
        print("bench: needs root (BPF and SIGKILL of its own victims): run: sudo make bench",
              file=sys.stderr)
        return 1
    missing = [n for n in ("benchsys", "oomp_benchsys", "oomp_victim", "ballast", "procpoller",
                           "floor.bpf.o") if not (BUILD / n).exists()]
    if missing:
        print(f"bench: not built: {', '.join(missing)}: run: make bench", file=sys.stderr)
        return 1
    have_killer = not args.no_killer and KILLER.exists()

    res: dict[str, Any] = {"notes": [], "machine": {
        "host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
        "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "mem_total_mib": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MiB}}
    if not have_killer:
        res["notes"].append("./oomkiller not built (or --no-killer): conditions c/d, its kills, "
                            "deferred path and footprint skipped")
    try:
        res["git"] = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
                                    capture_output=True, text=True).stdout.strip()
    except OSError:
        pass

    lockf = open(LOCK, "a+")
    try:
        fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"waiting for {LOCK} (another killer run holds it)")
        fcntl.flock(lockf, fcntl.LOCK_EX)

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)   # even when started with SIGINT ignored

    t_start = time.monotonic()
    rc = 0
    try:
        bt_ok = not args.no_bpftrace and "bpftrace" not in skip and bpftrace_ready(res)
        if bt_ok:
            args.comm_off = task_comm_offset()
        with tempfile.TemporaryDirectory(prefix="oomkiller-bench.") as td:
            tmp = Path(td)
            sink = TcpSink()
            if "overhead" not in skip:
                res["overhead"] = overhead(args, have_killer, bt_ok)
                if have_killer:
                    k = Killer(HIGH)
                    k.start()
                    try:
                        res["prog_stats"] = bpf_prog_stats(k, args.calls)
                    finally:
                        k.stop()
            kills: list[dict] = []
            if have_killer and "kills" not in skip:
                k = Killer(["--min-used", "1M", "--max-fds", str(LIMITS["fds"]),
                            "--max-writes", str(LIMITS["writes"]), "--max-read", str(LIMITS["read"]),
                            "--max-threads", str(LIMITS["threads"]), "--max-rand", str(LIMITS["rand"]),
                            "--max-tcp-packets", str(LIMITS["tcp"])], json_out=True)
                k.start()
                try:
                    kills += kill_suite("oomkiller", RULES, args.reps, args.paced_reps, tmp, sink)
                finally:
                    k.stop()
                res["killer_events"] = len(k.parsed_events())
            if "poller" not in skip:
                pp = Poller()
                pp.start()
                try:
                    kills += kill_suite("procpoller", ["writes", "reads", "fds", "threads"],
                                        args.reps, max(3, args.paced_reps), tmp, sink)
                finally:
                    pp.stop()
                res["poller_cpu_pct"] = pp.cpu_pct
            if bt_ok:
                bt = Bpftrace([LIMITS["fds"], LIMITS["writes"], LIMITS["read"], LIMITS["threads"],
                               LIMITS["rand"], LIMITS["tcp"], args.comm_off])
                bt.start()
                try:
                    kills += kill_suite("bpftrace", RULES, args.reps, args.paced_reps, tmp, sink)
                finally:
                    bt.stop()
            if "kills" not in skip:
                # The latency floor: the victim sends itself SIGKILL at the
                # crossing, so what remains is exit + pidfd wake-up.
                kills += kill_suite("reference", ["self"], args.reps, args.paced_reps, tmp, sink)
            res["kills"] = kills
            if have_killer and "deferred" not in skip:
                res["deferred"] = deferred(args, tmp, sink)
            if have_killer and "footprint" not in skip:
                res["footprint"] = footprint(args)
    except KeyboardInterrupt as e:
        log(f"interrupted ({e}): cleaning up")
        rc = 130
    except Exception as e:  # report what we have, then fail
        log(f"failed: {type(e).__name__}: {e}")
        res["error"] = f"{type(e).__name__}: {e}"
        rc = 1
    finally:
        KIDS.stop_all()
        lockf.close()
    res["elapsed_s"] = round(time.monotonic() - t_start, 1)
    table = report(res)
    res["table_md"] = table
    Path(args.out).write_text(json.dumps(res, indent=1) + "\n")
    print(table)
    log(f"wrote {args.out} in {res['elapsed_s']} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
