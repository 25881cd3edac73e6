"""The loader's footprint: its RSS, its CPU while idle, and the memlock of
its BPF maps, with the killer's default settings."""
from __future__ import annotations

import argparse
import json
import subprocess
import time

from conditions import Oomkiller
from harness import cpu_seconds, fdinfo_ids


def bpf_maps(pid: int) -> list[dict]:
    """The BPF maps pid holds, by id, as bpftool shows them."""
    maps = {}
    for mid in fdinfo_ids(pid, "map_id"):
        j = json.loads(subprocess.run(["bpftool", "map", "show", "id", str(mid), "-j"],
                                      capture_output=True, text=True).stdout or "{}")
        maps[mid] = {"id": mid, "name": j.get("name"), "type": j.get("type"),
                     "max_entries": j.get("max_entries"),
                     "bytes_memlock": j.get("bytes_memlock", 0)}
    return sorted(maps.values(), key=lambda m: m["id"])


def footprint(args: argparse.Namespace) -> dict:
    with Oomkiller() as k:
        # Past its start-up: it has sampled memory and swept, twice.
        k.wait_samples(2)
        with open(f"/proc/{k.pid}/status") as f:
            status = dict(line.split(":", 1) for line in f if ":" in line)
        rss_kib = int(status["VmRSS"].split()[0])
        hwm_kib = int(status["VmHWM"].split()[0])
        c0, t0 = cpu_seconds(k.pid), time.monotonic()
        time.sleep(args.idle_seconds)   # the idle window being measured
        cpu_s, wall = cpu_seconds(k.pid) - c0, time.monotonic() - t0
        maps = bpf_maps(k.pid)
    return {"rss_kib": rss_kib, "hwm_kib": hwm_kib,
            "idle_window_s": round(wall, 1), "idle_cpu_s": round(cpu_s, 3),
            "idle_cpu_pct": round(100 * cpu_s / wall, 3),
            "idle_cpu_s_per_min": round(60 * cpu_s / wall, 3),
            "maps": maps, "map_bytes": sum(m["bytes_memlock"] for m in maps)}
