"""Kill latency and overshoot, and the deferred kill. A victim
(bench/victim.c) does one rule's operation in a loop and publishes its
progress in shared memory; its death is seen through a pidfd, so the
latency is crossing → death, whoever the killer is."""
from __future__ import annotations

import argparse
import mmap
import os
import random
import select
import signal
import statistics
import struct
import subprocess
import time
from pathlib import Path
from typing import Any, Optional

from harness import KIDS, Killer, die_with_parent, log, mem_used, read_line, wait_until
from limits import LIMITS, READ_CHUNK, VICTIM_OP, crossing, MiB
from paths import BUILD

from oomkiller.commands.selftest import Sink as TcpSink  # noqa: E402 (src/ is on the path now)

# struct progress in victim.c: u64 slots
STARTED, T_CROSS, T_FIRST, PHASE, LAST, GO = range(6)
SURVIVED, ASLEEP = 2, 3      # phase values


class Victim:
    """oomp_victim OP K MAXOPS PACE_US PROGFILE [ARG], waiting for `go`,
    with its progress page mapped and a pidfd held before it may die."""

    def __init__(self, tmp: Path, op: str, k: int, maxops: int, pace_us: int,
                 arg: Optional[str], stderr: Any = subprocess.DEVNULL) -> None:
        prog = tmp / "progress"
        prog.write_bytes(b"\0" * 4096)
        with open(prog, "r+b") as f:
            self.m = mmap.mmap(f.fileno(), 4096)
        argv = [str(BUILD / "oomp_victim"), op, str(k), str(maxops), str(pace_us), str(prog)]
        self.p = subprocess.Popen(argv + ([arg] if arg else []), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=stderr,
                                  preexec_fn=die_with_parent(signal.SIGKILL))
        self.pidfd = os.pidfd_open(self.p.pid)

    def go(self) -> int:
        struct.pack_into("Q", self.m, 8 * GO, 1)
        return time.monotonic_ns()

    def slot(self, i: int) -> int:
        return struct.unpack_from("Q", self.m, 8 * i)[0]

    def wait_death(self, timeout: float) -> Optional[int]:
        """CLOCK_MONOTONIC ns when the pidfd said it died, or None by timeout."""
        poller = select.poll()
        poller.register(self.pidfd, select.POLLIN)
        return time.monotonic_ns() if poller.poll(int(timeout * 1000)) else None

    def reap(self) -> int:
        """Kill it if alive, reap it; its exit status. The page stays readable."""
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGKILL)
        rc = self.p.wait()
        if self.pidfd >= 0:
            os.close(self.pidfd)
            self.pidfd = -1
        return rc

    def close(self) -> None:
        self.reap()
        self.m.close()


def run_victim(rule: str, maxops: int, pace_us: int, tmp: Path, sink: TcpSink,
               timeout: float) -> dict:
    """One run: the victim crosses `rule` at operation k; did it die, how many
    operations past k did it start, how long from the crossing to its death."""
    op, k, out = VICTIM_OP[rule], crossing(rule), tmp / "out"
    if out.exists():
        out.unlink()
    arg = {"writes": str(out), "reads": str(READ_CHUNK), "tcp": str(sink.port)}.get(op)
    with open(tmp / "victim.err", "w+") as errf:
        v = Victim(tmp, op, k, maxops, pace_us, arg, stderr=errf)
        try:
            t_go = v.go()
            t_death = v.wait_death(timeout)
            rc = v.reap()
            started, t_cross, phase = v.slot(STARTED), v.slot(T_CROSS), v.slot(PHASE)
        finally:
            v.close()
        errf.seek(0)
        err = errf.read().strip()
    res: dict[str, Any] = {"rule": rule, "k": k, "started": started, "exit": rc,
                           "killed": rc == -signal.SIGKILL and t_death is not None
                           and phase != SURVIVED}
    if err:
        res["stderr"] = err[-200:]
    if t_death is None:
        res["timeout"] = True
    if res["killed"]:
        res["overshoot"] = started - k
        # None: it died before the crossing operation
        res["latency_us"] = round((t_death - t_cross) / 1000, 1) if t_cross else None
    if rule == "writes" and out.exists():
        res["file_overshoot"] = out.stat().st_size - k
    res["run_ms"] = round(((t_death or time.monotonic_ns()) - t_go) / 1e6, 1)
    return res


def kill_suite(name: str, rules: list[str], reps: int, paced_reps: int, tmp: Path,
               sink: TcpSink) -> list[dict]:
    """reps runs at full speed and paced_reps at 1 op/ms, per rule, under
    whichever killer is running now (`name`)."""
    results = []
    for rule in rules:
        k = crossing(rule)
        for pace, n in ((0, reps), (1000, paced_reps)):
            for _ in range(n):
                maxops = k + (10000 if pace == 0 else 1500)
                if rule == "threads" and pace == 0:
                    maxops = k + 2000
                r = run_victim(rule, maxops, pace, tmp, sink, timeout=30)
                r["pace_us"] = pace
                r["killer"] = name
                results.append(r)
    log(f"{name}: {len(results)} kill runs done")
    return results


def deferred_run(killer: Killer, rep: int, gate: int, interval: float, tmp: Path) -> dict:
    """A sleeper condemned with the gate closed, then a ballast opens the
    gate: ms from the gate opening to the sleeper's death."""
    k = LIMITS["writes"]
    v = Victim(tmp, "sleep", k, k, 0, str(tmp / "out"))
    run: dict[str, Any] = {"rep": rep}
    ballast = None
    try:
        v.go()
        ev = killer.wait_event(pid=v.p.pid, timeout=10)
        run["event"] = ev.get("event") if ev else None
        run["asleep"] = v.slot(PHASE) == ASLEEP
        if v.p.poll() is not None or not ev or ev.get("event") != "condemned":
            run["error"] = f"sleeper not condemned (event {ev}, exit {v.p.poll()})"
            return run
        ballast = KIDS.start([str(BUILD / "ballast"), str(gate), str(gate + 1024 * MiB)],
                             sig=signal.SIGKILL, stdout=subprocess.PIPE)
        t_open = int(read_line(ballast, ballast.stdout, "open ", 60).split()[1])
        t_death = v.wait_death(interval * 2 + 5)
        if t_death is not None:
            run["latency_ms"] = round((t_death - t_open) / 1e6, 1)
            run["exit"] = v.reap()
        else:
            run["error"] = "sleeper still alive after the gate opened"
        return run
    finally:
        v.close()
        if ballast:
            KIDS.stop(ballast, signal.SIGKILL)


def deferred(args: argparse.Namespace, tmp: Path) -> dict:
    gate = mem_used() + 512 * MiB
    killer = Killer("--min-used", str(gate), "--interval", str(args.interval))
    killer.start()
    runs = []
    try:
        for rep in range(args.deferred_reps):
            if rep:
                # The next sleeper must find the gate closed: wait until memory
                # is below the gate again, then for two samples, the second of
                # which began after that.
                if not wait_until(lambda: mem_used() < gate, 30, 0.05):
                    raise RuntimeError("memory stayed above the deferred gate after the "
                                       "ballast went")
                killer.wait_samples(2)
            # Not a wait for the killer: it puts the gate's opening at a random
            # point of the sampling period, so the runs spread over the whole
            # 0..interval range instead of repeating one phase.
            time.sleep(random.uniform(0, args.interval))
            runs.append(deferred_run(killer, rep, gate, args.interval, tmp))
    finally:
        killer.stop()
    lat = [r["latency_ms"] for r in runs if "latency_ms" in r]
    return {"interval_s": args.interval, "gate_bytes": gate, "runs": runs,
            "median_ms": statistics.median(lat) if lat else None,
            "max_ms": max(lat) if lat else None}
