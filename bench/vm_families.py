#!/usr/bin/python3
"""`make bench-vm`: what each attach family costs per write, read and
getppid, on a stock kernel in a guest (issue 9).

One guest run visits every condition, in rotating order, each round:
nothing attached; each family's mechanism floor (empty fexit, kretprobe or
tp_btf sys_exit programs on the same calls); and oomkiller with that
family, for a non-target (`benchsys`) and a target (`oomp_benchsys`), with
limits nothing reaches. Under QEMU's TCG absolute times mean little, so the
table gives medians as ratios to "nothing attached" of the same run: they
rank the families. Writes bench/results-vm-KERNEL.json.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conditions import Floor, Oomkiller  # noqa: E402
from harness import KIDS, log  # noqa: E402
from limits import HIGH  # noqa: E402
from overhead import rotate_and_time  # noqa: E402
from paths import BENCH  # noqa: E402

OPS = ["write", "read", "getppid"]
FAMILIES = ["fentry", "kprobe", "tracepoint"]
FLOORS = {"fentry": "floor_fx_write,floor_fx_read",
          "kprobe": "floor_kp_write,floor_kp_read",
          "tracepoint": "floor_tp_sys_exit"}


def conditions(families: list[str], ready_timeout: float) -> list[tuple[str, Any, list]]:
    conds: list[tuple[str, Any, list]] = [("none", None, [("none", "benchsys")])]
    for fam in families:
        conds.append((f"floor-{fam}", Floor(FLOORS[fam]), [(f"floor-{fam}", "benchsys")]))
        # Under TCG detaching takes about as long as attaching: the same allowance.
        killer = Oomkiller(*HIGH, "--attach", fam, ready_timeout=ready_timeout,
                           stop_timeout=ready_timeout)
        conds.append((f"oomkiller-{fam}", killer,
                      [(f"{fam} non-target", "benchsys"), (f"{fam} target", "oomp_benchsys")]))
    return conds


def measure(args: argparse.Namespace) -> dict:
    conds = conditions(args.families.split(","), args.ready_timeout)
    samples = rotate_and_time(conds, OPS, {op: args.calls for op in OPS}, args.rounds,
                                "bench-vm")
    med = {lab: {op: statistics.median(v) for op, v in ops.items()} for lab, ops in samples.items()}
    return {"kernel": platform.release(), "calls": args.calls, "rounds": args.rounds,
            "samples_ns": samples, "median_ns": med}


def report(res: dict) -> str:
    med = res["median_ns"]
    base = med["none"]
    lines = [f"Kernel {res['kernel']}, {res['rounds']} rounds of {res['calls']} calls; "
             "median ns per call, and its ratio to nothing attached.", "",
             "| condition | " + " | ".join(OPS) + " |",
             "|---|" + "---|" * len(OPS)]
    for label, ops in med.items():
        cells = []
        for op in OPS:
            v = ops[op]
            cells.append(f"{v:,.0f}" if label == "none" else f"{v:,.0f} ({v / base[op]:.2f}x)")
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--calls", type=int, default=20000)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--ready-timeout", type=float, default=300)
    ap.add_argument("--out", default="")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench-vm: run as root", file=sys.stderr)
        return 2
    try:
        res = measure(args)
    finally:
        KIDS.stop_all()
    table = report(res)
    print(table)
    out = Path(args.out or BENCH / f"results-vm-{res['kernel']}.json")
    out.write_text(json.dumps({**res, "table": table}, indent=1) + "\n")
    log(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
