"""`oomkiller status [--json]`: what the running killer watches, read-only.

It reads the maps the killer pins under /sys/fs/bpf/oomkiller/ (instance.py):
`config` (.rodata: the policy in force), `stats` (.bss: totals, memory used)
and `procs` (one entry per tracked target), plus /run/oomkiller/state.json
for what the maps don't hold (pid, families, interval, variable offsets).
It never writes to a map.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
from ctypes import byref, c_uint32, sizeof
from typing import Sequence

from oomkiller.bpf import abi, procmap
from oomkiller.bpf._libbpf import LibraryMissing
from oomkiller.config.policy import DEFAULT
from oomkiller.config.rules import BY_NAME, RULES
from oomkiller.config.sizes import format_size
from oomkiller.daemon import instance
from oomkiller.messages import EXIT_OK, Parser, fail
from oomkiller.outputs import events
from oomkiller.privileges import effective_caps, has_bpf_privileges



class StatusError(Exception):
    """One line for the user; exit 1."""


class Pinned:
    """The killer's pinned maps, opened read-only from the pins."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.fds: dict[str, int] = {}

    def __enter__(self) -> "Pinned":
        return self

    def __exit__(self, *exc: object) -> None:
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

    def open(self, name: str) -> int:
        path = os.path.join(instance.PIN_DIR, name)
        try:
            self.fds[name] = self.lib.bpf_obj_get(path.encode())
        except OSError as e:
            raise StatusError(f"cannot open {path}: {e.strerror}: is the killer still "
                              "starting? try again after its ready line") from None
        return self.fds[name]

    def info(self, name: str):
        from oomkiller.bpf._libbpf import BpfMapInfo
        info = BpfMapInfo()
        size = c_uint32(sizeof(info))
        self.lib.bpf_obj_get_info_by_fd(self.fds[name], byref(info), byref(size))
        return info

    def value0(self, name: str) -> bytes:
        """The single value (key 0) of an array map: a whole .bss/.rodata."""
        info = self.info(name)
        buf = ctypes.create_string_buffer(info.value_size)
        self.lib.bpf_map_lookup_elem(self.fds[name], byref(c_uint32(0)), buf)
        return buf.raw

    def procs(self, limit: int) -> list[tuple[int, abi.OomkProc]]:
        """Every entry of `procs`; entries that vanish during the walk are skipped."""
        return procmap.walk(self.lib, self.fds["procs"], limit)


def _struct_at(raw: bytes, offset: int, ctype: type) -> ctypes.Structure:
    if offset < 0 or offset + sizeof(ctype) > len(raw):
        raise StatusError("the pinned maps don't match this oomkiller's version: "
                          "run the status of the same build as the killer")
    return ctype.from_buffer_copy(raw, offset)


def closeness(counters: Sequence[int], limits: Sequence[int]) -> float:
    """How near a limit: max over rules of value / limit (1.0 = at a limit)."""
    return max((c / lim for c, lim in zip(counters, limits) if lim), default=0.0)


def collect() -> dict:
    """The whole status as one dict (the --json object)."""
    running, pid = instance.running_pid()
    if not running:
        raise NoKiller()
    try:
        state = instance.read_state()
        offsets = state["offsets"]
    except (OSError, ValueError, KeyError, TypeError):
        raise StatusError(f"a killer runs (pid {pid or 'unknown'}) but has published no "
                          f"state in {instance.STATE_PATH}: wait for its ready line; if it "
                          "warned that pinning failed, restart it") from None
    from oomkiller.bpf import _libbpf
    lib = _libbpf.libbpf()
    with Pinned(lib) as pins:
        for name in instance.PINS:
            pins.open(name)
        capacity = pins.info("procs").max_entries
        stats = _struct_at(pins.value0("stats"), offsets["stats"], abi.OomkStats)
        cfg = _struct_at(pins.value0("config"), offsets["cfg"], abi.OomkConfig)
        entries = pins.procs(capacity)
    # The policies in force: their names and texts from the state file, their
    # limits from the pinned config, which is what BPF applies.
    pols = state.get("policies") or []
    policies = []
    for i in range(min(cfg.npol, abi.OOMK_POLICY_MAX)):
        pol = cfg.pol[i]
        about = pols[i] if i < len(pols) and isinstance(pols[i], dict) else {}
        policies.append({
            "name": about.get("name", f"#{i}"),
            "text": about.get("text", ""),
            "selectors": about.get("selectors", {}),
            "min_used_bytes": pol.min_used,
            "limits": {r.name: pol.limits[r.id] for r in RULES},
            "dry_run": bool(pol.dry_run),
            "scope": "tree" if pol.tree else "process",
            "interval": float(state.get("interval", 1.0)),
            "tracked": 0, "condemned": 0, "killed": 0,
        })
    if not policies:
        raise StatusError("the running killer has no policy in its config map: "
                          "run the status of the same build as the killer")
    default = next((p for p in policies if p["name"] == DEFAULT), None)
    # A tree's entry (scope = tree) holds its members' counts and verdict.
    trees = {key: p for key, p in entries if key & abi.TREE_KEY}
    processes = []
    for tgid, own in entries:
        if tgid & abi.TREE_KEY:
            continue
        p = trees.get(own.tree, own)
        counters = list(p.counters)
        # An entry not judged since the last reload may name a policy by its
        # old place in the list: none is shown until the process is seen again.
        current = p.generation == cfg.generation and p.policy < len(policies)
        pol = policies[p.policy] if current else None
        limits = [pol["limits"][r.name] if pol else 0 for r in RULES]
        if pol is not None:
            pol["tracked"] += 1
            pol["condemned"] += bool(p.condemned)
            pol["killed"] += bool(own.state & 1)
        processes.append({
            "pid": tgid,
            "comm": events.comm_text(own.comm),
            "policy": pol["name"] if pol else None,
            "tree": own.tree & ~abi.TREE_KEY if own.tree in trees else None,
            "counters": {r.name: counters[r.id] for r in RULES},
            "condemned": bool(p.condemned),
            "condemned_rule": events.rule_name(p.condemned - 1) if p.condemned else None,
            "killed": bool(own.state & 1),
            "closeness": round(closeness(counters, limits), 4),
        })
    processes.sort(key=lambda d: (-d["closeness"], d["pid"]))
    return {
        "pid": pid,
        "version": state.get("version"),
        "started": state.get("started"),
        "generation": cfg.generation,
        # The default policy as before policies (its name substring and the
        # interval in its text), or the first policy when default is off.
        "policy": ({**default, "text": state.get("policy", default["text"]),
                    "name": default["selectors"].get("name", "")[2:-1]} if default
                   else {**policies[0]}),
        "policies": policies,
        "min_used_bytes": cfg.min_used,
        "gate_open": bool(stats.gate_open),
        "mem_used_bytes": stats.mem_used,
        "families": state.get("families", {}),
        "kernel": state.get("kernel", []),
        "kills": stats.kills,
        "condemned": stats.condemned,
        "dry_runs": stats.dry_runs,
        "kill_failed": stats.kill_failed,
        "dropped": stats.dropped,
        "untracked": stats.untracked,
        "untracked_threads": stats.untracked_threads,
        "samples": stats.samples,
        "sweeps": stats.sweeps,
        "holds": stats.holds,
        "rand_unprobeable": stats.unprobeable,
        "libs_unseen": stats.libs_unseen,
        "tracked": len(processes),
        "capacity": capacity,
        "processes": processes,
    }


class NoKiller(Exception):
    pass


def _cell(rule: str, value: int, limit: int) -> str:
    r = BY_NAME[rule]
    return f"{r.format(value)}/{r.format(limit)}"


def _policy_lines(st: dict) -> list[str]:
    """The default policy alone: one line as before policies. Else one line
    per policy, with its totals, in the order BPF tries them."""
    pols = st["policies"]
    if len(pols) == 1 and pols[0]["name"] == DEFAULT:
        return [f"policy:   {st['policy']['text']}"]
    return [f"policy {p['name']}: {p['text']} (tracked {p['tracked']}, condemned "
            f"{p['condemned']}, killed {p['killed']})" for p in pols]


def format_text(st: dict) -> str:
    pol = st["policy"]
    gate = "open" if st["gate_open"] else "closed"
    fams = " ".join(f"{k}={v}" for k, v in st["families"].items())
    lines = [
        f"oomkiller {st['version']}, pid {st['pid']}, running since {st['started']}, "
        f"generation {st['generation']}",
        *_policy_lines(st),
        f"memory:   {format_size(st['mem_used_bytes'])} used, gate {gate} "
        f"(opens at {format_size(st.get('min_used_bytes', pol['min_used_bytes']))})",
        f"families: {fams}",
        *(f"kernel:   {note}" for note in st.get("kernel", [])),
        f"totals:   kills {st['kills']}, condemned {st['condemned']}, dry-runs {st['dry_runs']}, "
        f"kills refused {st['kill_failed']}, "
        f"tracked {st['tracked']}/{st['capacity']}, dropped {st['dropped']}, "
        f"untracked {st['untracked']}",
    ]
    if not st["processes"]:
        lines += ["", "no tracked targets"]
        return "\n".join(lines)
    header = ["PID", "NAME", "POLICY"] + [r.name.upper() for r in RULES] + ["STATE"]
    by_name = {p["name"]: p for p in st["policies"]}
    rows = []
    for p in st["processes"]:
        known = by_name.get(p["policy"])
        where = p["policy"] or "-"
        if p.get("tree") is not None:
            where += f" (tree {p['tree']})"
        cells = [str(p["pid"]), events._escape(p["comm"].encode("utf-8", "surrogateescape")),
                 where]
        cells += [_cell(r.name, p["counters"][r.name], known["limits"][r.name]) if known
                  else BY_NAME[r.name].format(p["counters"][r.name]) for r in RULES]
        state = "-"
        if p["killed"]:
            state = f"killed ({p['condemned_rule']})" if p["condemned_rule"] else "killed"
        elif p["condemned"]:
            state = f"condemned ({p['condemned_rule']})"
        rows.append(cells + [state])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    lines.append("")
    for r in [header] + rows:
        lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
    lines.append("(closest to a limit first: the largest counter/limit of each process)")
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    p = Parser(prog="oomkiller status", usage="oomkiller status [--json]",
               description="What the running killer watches, read from its pinned maps.",
               allow_abbrev=False)
    p.add_argument("--json", action="store_true", help="one JSON object")
    ns = p.parse_args(list(argv))
    if not has_bpf_privileges(effective_caps()):
        return fail("need root, or CAP_BPF: run it with sudo")
    try:
        st = collect()
    except NoKiller:
        return fail("no killer running")
    except (StatusError, LibraryMissing) as e:
        return fail(str(e))
    except OSError as e:
        return fail(f"{e.strerror or e}: cannot read the killer's maps")
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        return fail(f"internal error: {type(e).__name__}: {e}: report it")
    try:
        if ns.json:
            sys.stdout.write(json.dumps(st, ensure_ascii=False) + "\n")
        else:
            sys.stdout.write(format_text(st) + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OK
