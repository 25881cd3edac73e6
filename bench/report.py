"""The markdown table of a bench run, and the derived numbers it shows
(ratios to the floor, kill summaries, targets met), which go into
bench/results.json with the raw samples."""
from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Optional

from limits import LIMITS
from overhead import OPS

KILLERS = ("reference", "oomkiller", "procpoller", "bpftrace")
COLUMNS = [("a", "a: none"), ("b", "b: floor"), ("b1", "b1: floor, sys_exit only"),
           ("c", "c: killer (1 policy), non-target"), ("d", "d: killer (1 policy), target"),
           ("e", "e: killer with --max-rand off, non-target"),
           ("bt_nt", "bpftrace, non-target"), ("bt_t", "bpftrace, target")]


def fmt(v: Optional[float], nd: int = 1) -> str:
    return "—" if v is None else f"{v:.{nd}f}"


def fmt_us(v: Optional[float]) -> str:
    return "—" if v is None else (f"{v:.0f} µs" if v < 10000 else f"{v / 1000:.1f} ms")


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


def ratios(oh: dict) -> dict[str, dict[str, Optional[float]]]:
    """(x−a)/(floor−a) per op for x in c, d (1 policy), c16, d16 (16 policies)
    and floor b (key "c") or b1 ("c/b1")."""
    a, out = oh.get("a", {}), {}
    for op in OPS:
        rr: dict[str, Optional[float]] = {}
        for lab in ("c", "d", "c16", "d16"):
            for key, fl in ((lab, oh.get("b", {})), (lab + "/b1", oh.get("b1", {}))):
                ok = lab in oh and op in a and op in fl and fl[op] - a[op] > 0
                rr[key] = (oh[lab][op] - a[op]) / (fl[op] - a[op]) if ok else None
        out[op] = rr
    return out


def overhead_section(res: dict, L: list[str]) -> None:
    oh = res.get("overhead", {}).get("median_ns", {})
    cols = [c for c in COLUMNS if c[0] in oh]
    L.append("### Overhead (ns per call)\n")
    L.append("| op | " + " | ".join(c[1] for c in cols) +
             " | (c−a)/(b−a) | (d−a)/(b−a) | (c−a)/(b1−a) | (d−a)/(b1−a) |")
    L.append("|---|" + "---|" * (len(cols) + 4))
    rr = res["ratios"] = ratios(oh)
    for op in OPS:
        row = [fmt(oh[c].get(op)) for c, _ in cols]
        L.append(f"| {op} | " + " | ".join(row) + f" | {fmt(rr[op]['c'], 2)} |"
                 f" {fmt(rr[op]['d'], 2)} | {fmt(rr[op]['c/b1'], 2)} | {fmt(rr[op]['d/b1'], 2)} |")
    if "e" in oh and "c" in oh:
        L.append(f"\nrand() for a non-target: {fmt(oh['c'].get('rand'))} ns with the rand rule on, "
                 f"{fmt(oh['e'].get('rand'))} ns with `--max-rand off`, "
                 f"{fmt(oh.get('a', {}).get('rand'))} ns with nothing attached.")
    L.append("\nrand: the floor is an empty uprobe on libc rand, and the uprobe trap dominates. "
             "thread: create + join (~40 µs, noisy): its ratios are noise, not a measure. "
             "uring: one IORING_OP_NOP per io_uring_enter, a request's whole round trip; the "
             "floor has no program on io_uring_complete, where the killer's checkpoint runs.\n")


def policies_section(res: dict, L: list[str]) -> None:
    """Issue 20: the killer's cost with the built-in `default` policy alone
    (c, d) and with 16 policies loaded (c16, d16), against the same floor."""
    oh = res.get("overhead", {}).get("median_ns", {})
    rr = res.get("ratios", {})
    if "c16" not in oh:
        return
    n = res.get("overhead", {}).get("policy_checks", {})
    L.append("### Policies (issue 20): the killer with 1 policy and with 16\n")
    L.append("| policies | op | a: none | b: floor | b1: floor, sys_exit only | x: killer, non-target "
             "| (x−a)/(b−a) | (x−a)/(b1−a) | y: killer, target | (y−a)/(b−a) |")
    L.append("|---|---|---|---|---|---|---|---|---|---|")
    for who, c, d in (("1 (`default`)", "c", "d"), ("16", "c16", "d16")):
        for op in ("write", "read", "getppid"):
            row = [fmt(oh.get(k, {}).get(op)) for k in ("a", "b", "b1", c)]
            row += [fmt(rr[op][c], 2), fmt(rr[op][c + "/b1"], 2), fmt(oh.get(d, {}).get(op)),
                    fmt(rr[op][d], 2)]
            L.append(f"| {who} | {op} | " + " | ".join(row) + " |")
    L.append("\n1: the built-in `default` policy alone (c, d above). 16: `default-policy = off` and "
             "16 `[policy]` sections (bench/policies.py): 15 matching nothing, by name, exe, "
             "empty cgroups and unused uids (one with scope = tree), then one selecting "
             "`oomp_benchsys`. Checked from `oomkiller status --json` before the rounds, "
             f"with {' and with '.join(n) or 'no'} policies: `benchsys` is not tracked, "
             "`oomp_benchsys` is.\n")


def kills_section(res: dict, L: list[str]) -> None:
    kills = res.get("kills", [])
    if not kills:
        return
    L.append("`reference/self`: the victim kills itself at the crossing; its latency is the floor "
             "(exit + pidfd wake-up of this driver) under every other row.\n")
    L.append("### Kills: overshoot (operations past the crossing) and latency "
             "(crossing → death via pidfd)\n")
    L.append("| killer | rule | pace | killed/runs | overshoot min..max | latency median "
             "| latency max |")
    L.append("|---|---|---|---|---|---|---|")
    for killer in KILLERS:
        for rule in list(LIMITS) + ["self"]:
            for pace in (0, 1000):
                s = summarize_kills(kills, killer, rule, pace)
                if not s:
                    continue
                res.setdefault("kill_summary", {}).setdefault(killer, {})[f"{rule}@{pace}"] = s
                ov = ("—" if s["overshoot_max"] is None
                      else f"{s['overshoot_min']}..{s['overshoot_max']}")
                if s["survivor_ops"]:
                    ov += f" (survived {max(s['survivor_ops'])} ops)"
                L.append(f"| {killer} | {rule} | {'full speed' if pace == 0 else '1 op/ms'} | "
                         f"{s['killed']}/{s['n']} | {ov} | {fmt_us(s['latency_us_median'])} | "
                         f"{fmt_us(s['latency_us_max'])} |")
    if "poller_cpu_pct" in res:
        L.append(f"\nprocpoller CPU while it ran: {res['poller_cpu_pct']:.2f} % of one CPU "
                 "(100 ms period). It cannot see rand() or TCP segments, and "
                 "`Threads:` is the current count, not threads ever created.\n")


def other_sections(res: dict, L: list[str]) -> None:
    d = res.get("deferred")
    if d:
        L.append("### Deferred kill (gate opened by a ballast → death of a condemned sleeper)\n")
        L.append(f"interval {d['interval_s']} s; per run (ms): "
                 + ", ".join(fmt(r.get("latency_ms")) if "latency_ms" in r
                             else f"error: {r.get('error')}" for r in d["runs"])
                 + f"; median {fmt(d['median_ms'])} ms, max {fmt(d['max_ms'])} ms\n")
    f = res.get("footprint")
    if f:
        L.append("### Footprint\n")
        L.append(f"loader RSS {f['rss_kib'] / 1024:.1f} MiB (peak {f['hwm_kib'] / 1024:.1f} MiB); "
                 f"idle CPU {f['idle_cpu_pct']:.3f} % = {f['idle_cpu_s_per_min']:.3f} CPU-s per "
                 f"idle minute (measured over {f['idle_window_s']} s, scaled to 60 s); "
                 f"BPF maps {f['map_bytes'] / 1024:.0f} KiB memlock: "
                 + ", ".join(f"{m['name']} {m['bytes_memlock'] / 1024:.0f} KiB"
                             for m in f["maps"]) + "\n")
    if res.get("prog_stats"):
        L.append("### Per-program cost during 1M writes (kernel.bpf_stats_enabled, separate run)\n")
        for key, n in (("prog_stats", "1 policy"), ("prog_stats_16", "16 policies")):
            for who, progs in res.get(key, {}).items():
                L.append(f"- {who}, {n}: " + ", ".join(f"{p} {v['ns_per_run']} ns × {v['runs']}"
                                                        for p, v in sorted(progs.items())))
        L.append("")


def targets_section(res: dict, L: list[str]) -> None:
    L.append("### Targets\n")
    L.append("| measure | target | got | |")
    L.append("|---|---|---|---|")
    tg = res["targets"] = []

    def target(name: str, want: str, got: Optional[str], ok: Optional[bool]) -> None:
        tg.append({"measure": name, "target": want, "got": got, "met": ok})
        L.append(f"| {name} | {want} | {got or 'not measured'} | "
                 f"{'met' if ok else ('missed' if ok is False else 'n/a')} |")

    rr = res.get("ratios", {})
    sysops = [op for op in ("write", "read", "getppid") if op in rr]
    for lab, what, want, lim in (
            ("c", "non-target overhead, 1 policy", "≤ 1.2 × floor", 1.2),
            ("c16", "non-target overhead, 16 policies", "≤ 1.2 × floor", 1.2),
            ("d", "target overhead, 1 policy", "≤ 2 × floor", 2.0)):
        got = {op: rr[op][lab] for op in sysops if rr[op].get(lab) is not None}
        target(what, want,
               ", ".join(f"{op} {v:.2f}" for op, v in got.items()) or None,
               all(v <= lim for v in got.values()) if got else None)
    ks = res.get("kill_summary", {}).get("oomkiller", {})
    if ks:
        worst = max((s["overshoot_max"] for s in ks.values() if s["overshoot_max"] is not None),
                    default=None)
        missed = [k for k, s in ks.items() if s["killed"] < s["n"]]
        got = f"max {worst}" + (f"; not killed: {', '.join(missed)}" if missed else "")
        target("overshoot, synchronous rules", "0", got, worst == 0 and not missed)
    else:
        target("overshoot, synchronous rules", "0", None, None)
    d = res.get("deferred")
    if d and d["max_ms"] is not None:
        lim = d["interval_s"] * 1000 + 100
        errs = [r for r in d["runs"] if "error" in r]
        target("deferred kill latency", f"≤ interval + 100 ms ({lim:.0f} ms)",
               f"max {d['max_ms']:.0f} ms" + (f", {len(errs)} failed runs" if errs else ""),
               d["max_ms"] <= lim and not errs)
    else:
        target("deferred kill latency", "≤ interval + 100 ms", None, None)
    f = res.get("footprint")
    if f:
        target("loader RSS", "≤ 40 MB (40·10⁶ B)", f"{f['rss_kib'] * 1024 / 1e6:.1f} MB",
               f["rss_kib"] * 1024 <= 40e6)
        target("loader idle CPU", "≤ 0.5 %", f"{f['idle_cpu_pct']:.3f} %", f["idle_cpu_pct"] <= 0.5)
    else:
        target("loader RSS", "≤ 40 MB", None, None)
        target("loader idle CPU", "≤ 0.5 %", None, None)


def report(res: dict) -> str:
    """The markdown table; fills res's ratios, kill_summary and targets."""
    m = res["machine"]
    L = [f"## oomkiller bench — {m['when']} on {m['host']}\n",
         f"kernel {m['kernel']}, {m['cpus']} CPUs; medians of "
         f"{res.get('overhead', {}).get('rounds', 0)} interleaved rounds\n"]
    overhead_section(res, L)
    policies_section(res, L)
    kills_section(res, L)
    other_sections(res, L)
    targets_section(res, L)
    for n in res.get("notes", []):
        L.append(f"\nnote: {n}")
    return "\n".join(L) + "\n"


def write(res: dict, out: Path) -> str:
    """Fill res with the table and write it as JSON to out; the table."""
    table = report(res)
    res["table_md"] = table
    out.write_text(json.dumps(res, indent=1) + "\n")
    return table
