"""Overhead per operation: ns per call of bench/sysbench.c (built as the
non-target `benchsys` and the target `oomp_benchsys`) under each condition,
in rotating rounds; and the per-program cost from kernel.bpf_stats_enabled."""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
from typing import Any, Optional

from conditions import Bpftrace, Floor, Oomkiller
from harness import Killer, fdinfo_ids, log
from limits import HIGH
from paths import BUILD
import policies

OPS = ["write", "read", "getppid", "rand", "thread", "uring"]

# (condition, state or None for nothing running, [(label, sysbench binary)])
Condition = tuple[str, Any, list[tuple[str, str]]]


def time_op(binary: str, op: str, n: int) -> float:
    """ns per call of n calls of op, as sysbench measures it."""
    out = subprocess.run([str(BUILD / binary), op, str(n)], capture_output=True, text=True,
                         timeout=300, stdin=subprocess.DEVNULL)
    if out.returncode != 0:
        raise RuntimeError(f"{binary} {op}: exit {out.returncode}: {out.stderr.strip()}")
    return float(out.stdout)


def rotate_and_time(conds: list[Condition], ops: list[str], counts: dict[str, int],
                    rounds: int, what: str) -> dict[str, dict[str, list[float]]]:
    """{label: {op: [ns per call, one a round]}}. Every round visits every
    condition (start its state, time each (label, binary) on each op, stop
    it), in an order that rotates from round to round, so drift and
    neighbours' noise spread evenly. make bench-vm uses it too."""
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


def overhead(args: argparse.Namespace, have_killer: bool, comm_off: Optional[int],
             pol: Optional[policies.PolicyConfig] = None) -> dict:
    """The a/b/b1/c/d (and bpftrace) cells; comm_off is None without the bpftrace peer.
    With pol, also c16/d16: the killer with pol's 16 policies (issue 20)."""
    counts = {"write": args.calls, "read": args.calls, "getppid": args.calls,
              "rand": args.rand_calls, "thread": args.thread_calls, "uring": args.calls // 4}
    checks: dict[str, dict] = {}
    conds: list[Condition] = [
        ("a", None, [("a", "benchsys")]),
        ("b", Floor(), [("b", "benchsys")]),
        # The killer counts syscalls at sys_exit only: the floor of that one hook.
        ("b1", Floor("floor_sys_exit,floor_rand"), [("b1", "benchsys")]),
    ]
    if have_killer:
        conds.append(("cd", Oomkiller(*HIGH), [("c", "benchsys"), ("d", "oomp_benchsys")]))
        # The rand rule switched off: no uprobe, so rand() of a non-target is back to a.
        conds.append(("e", Oomkiller(*HIGH, "--max-rand", "off"), [("e", "benchsys")]))
        # c/d run the built-in `default` policy alone: 1 policy. Check that
        # it is so (no /etc/oomkiller.conf adds sections) and who it selects.
        with Oomkiller(*HIGH) as k:
            checks["1"] = policies.check(k, ["default"])
        if pol is not None:
            with Oomkiller(*pol.args()) as k:
                checks[str(policies.N_POLICIES)] = policies.check(k, policies.NAMES)
            conds.append(("cd16", Oomkiller(*pol.args()),
                          [("c16", "benchsys"), ("d16", "oomp_benchsys")]))
        log("checked: benchsys is no target and oomp_benchsys is one, with "
            + " and with ".join(f"{n} polic{'y' if n == '1' else 'ies'}" for n in checks))
    if comm_off is not None:
        conds.append(("bt", Bpftrace(comm_off, high=True),
                      [("bt_nt", "benchsys"), ("bt_t", "oomp_benchsys")]))
    samples = rotate_and_time(conds, OPS, counts, args.rounds, "overhead")
    med = {lab: {op: statistics.median(v) for op, v in ops.items()} for lab, ops in samples.items()}
    return {"calls": counts, "rounds": args.rounds, "samples_ns": samples, "median_ns": med,
            "policy_checks": checks}


def _prog_snapshot(prog_ids: list[int]) -> dict[int, tuple[str, int, int]]:
    """{id: (name, run_cnt, run_time_ns)} from bpftool."""
    out = {}
    for pid in prog_ids:
        j = json.loads(subprocess.run(["bpftool", "prog", "show", "id", str(pid), "-j"],
                                      capture_output=True, text=True).stdout or "{}")
        out[pid] = (j.get("name", "?"), j.get("run_cnt", 0), j.get("run_time_ns", 0))
    return out


def prog_stats(killer: Killer, n: int) -> dict:
    """Per-program ns per run of killer's programs during n writes, from
    kernel.bpf_stats_enabled. Stats add their own cost, so this runs apart
    from the timed rounds."""
    prog_ids = sorted(set(fdinfo_ids(killer.pid, "prog_id")))
    path = "/proc/sys/kernel/bpf_stats_enabled"
    with open(path) as f:
        old = f.read().strip()
    res: dict[str, Any] = {}
    try:
        with open(path, "w") as f:
            f.write("1")
        for label, binary in (("non-target", "benchsys"), ("target", "oomp_benchsys")):
            s0 = _prog_snapshot(prog_ids)
            time_op(binary, "write", n)
            s1 = _prog_snapshot(prog_ids)
            res[label] = {s1[p][0]: {"runs": s1[p][1] - s0[p][1],
                                     "ns_per_run": round((s1[p][2] - s0[p][2]) /
                                                         max(1, s1[p][1] - s0[p][1]), 1)}
                          for p in s1 if s1[p][1] - s0[p][1] > 0}
    finally:
        with open(path, "w") as f:
            f.write(old)
    return res
