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
import fcntl
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Optional

import paths
from conditions import Bpftrace, Oomkiller, Poller, bpftrace_ready, task_comm_offset
from footprint import footprint
from harness import KIDS, K, log
from kills import TcpSink, deferred, kill_suite
from limits import HIGH, LIMITS, POLLER_RULES, MiB, limit_args
from overhead import overhead, prog_stats
from policies import PolicyConfig
import report

NEEDED = ("benchsys", "oomp_benchsys", "oomp_victim", "ballast", "procpoller", "floor.bpf.o")
STAGES = "overhead,policies,kills,poller,bpftrace,deferred,footprint"


def parse_args() -> argparse.Namespace:
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
    ap.add_argument("--skip", default="", help=f"comma list: {STAGES}")
    ap.add_argument("--out", default=str(paths.BENCH / "results.json"))
    return ap.parse_args()


def machine() -> dict:
    return {"host": platform.node(), "kernel": platform.release(), "cpus": os.cpu_count(),
            "when": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
            "mem_total_mib": os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // MiB}


def lock() -> Any:
    """The exclusive flock every killer run on this machine takes (tests/killer.py's)."""
    lockf = open(K.LOCK_PATH, "a+")
    try:
        fcntl.flock(lockf, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"waiting for {K.LOCK_PATH} (another killer run holds it)")
        fcntl.flock(lockf, fcntl.LOCK_EX)
    return lockf


def measure(args: argparse.Namespace, skip: set[str], have_killer: bool, res: dict) -> None:
    """Every stage, in order, into res."""
    comm_off: Optional[int] = None
    if not args.no_bpftrace and "bpftrace" not in skip:
        version = bpftrace_ready(res["notes"])
        if version:
            res["bpftrace"] = version
            comm_off = task_comm_offset()
    with tempfile.TemporaryDirectory(prefix="oomkiller-bench.") as td:
        tmp = Path(td)
        sink = TcpSink()
        if "overhead" not in skip:
            # policies: the overhead rounds with 16 policies too (issue 20).
            with (PolicyConfig(tmp) if have_killer and "policies" not in skip
                  else nullcontext()) as pol:
                res["overhead"] = overhead(args, have_killer, comm_off, pol)
                if have_killer:
                    with Oomkiller(*HIGH) as k:
                        res["prog_stats"] = prog_stats(k, args.calls)
                if pol is not None:
                    with Oomkiller(*pol.args()) as k:
                        res["prog_stats_16"] = prog_stats(k, args.calls)
        kills: list[dict] = res.setdefault("kills", [])
        if have_killer and "kills" not in skip:
            with Oomkiller("--min-used", "1M", *limit_args(LIMITS), json_events=True) as k:
                kills += kill_suite("oomkiller", list(LIMITS), args.reps, args.paced_reps,
                                    tmp, sink)
            res["killer_events"] = len(k.events)
        if "poller" not in skip:
            pp = Poller()
            pp.start()
            try:
                kills += kill_suite("procpoller", POLLER_RULES, args.reps,
                                    max(3, args.paced_reps), tmp, sink)
            finally:
                pp.stop()
            res["poller_cpu_pct"] = pp.cpu_pct
        if comm_off is not None:
            bt = Bpftrace(comm_off)
            bt.start()
            try:
                kills += kill_suite("bpftrace", list(LIMITS), args.reps, args.paced_reps,
                                    tmp, sink)
            finally:
                bt.stop()
        if "kills" not in skip:
            # The latency floor: the victim sends itself SIGKILL at the
            # crossing, so what remains is exit + pidfd wake-up.
            kills += kill_suite("reference", ["self"], args.reps, args.paced_reps, tmp, sink)
        if have_killer and "deferred" not in skip:
            res["deferred"] = deferred(args, tmp)
        if have_killer and "footprint" not in skip:
            res["footprint"] = footprint(args)


def main() -> int:
    args = parse_args()
    skip = set(filter(None, args.skip.split(",")))
    if os.geteuid() != 0:
        print("bench: needs root (BPF and SIGKILL of its own victims): run: sudo make bench",
              file=sys.stderr)
        return 1
    missing = [n for n in NEEDED if not (paths.BUILD / n).exists()]
    if missing:
        print(f"bench: not built: {', '.join(missing)}: run: make bench", file=sys.stderr)
        return 1
    have_killer = not args.no_killer and K.OOMKILLER.exists()

    res: dict[str, Any] = {"notes": [], "machine": machine()}
    if not have_killer:
        res["notes"].append("./oomkiller not built (or --no-killer): conditions c/d, its kills, "
                            "deferred path and footprint skipped")
    res["git"] = subprocess.run(["git", "-C", str(paths.ROOT), "describe", "--always", "--dirty"],
                                capture_output=True, text=True).stdout.strip()
    lockf = lock()

    def on_signal(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)   # even when started with SIGINT ignored

    t_start = time.monotonic()
    rc = 0
    try:
        measure(args, skip, have_killer, res)
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
    print(report.write(res, Path(args.out)))
    log(f"wrote {args.out} in {res['elapsed_s']} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
