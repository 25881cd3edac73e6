"""What a running killer says about itself: the ready line, systemd's
STATUS=, the reload line, the -v summary at stop, and the state file
`oomkiller status` reads. Each renders a Snapshot (snapshot.py), never the
daemon itself."""

from __future__ import annotations

from typing import Sequence

from oomkiller.bpf import abi
from oomkiller.config.policy import DEFAULT, Policy
from oomkiller.config.rules import RULES
from oomkiller.config.settings import Settings
from oomkiller.config.sizes import format_size
from oomkiller.outputs.snapshot import Snapshot


def _families_text(snap: Snapshot) -> str:
    return " ".join(f"{src}={fam}" for src, fam in snap.families.items())


def policies_text(s: Settings) -> str:
    """`policy TEXT` for the default policy alone (as before policies), else
    `policy NAME: TEXT` for each, in the order BPF tries them."""
    pols = s.policies
    if len(pols) == 1 and pols[0].name == DEFAULT:
        return f"policy {s.policy_text()}"
    return "; ".join(f"policy {p.name}: {p.text()}" for p in pols) + f"; interval={s.interval:g}s"


def ready_line(snap: Snapshot) -> str:
    st = snap.stats
    gate = "gate open" if st.gate_open else "gate closed"
    kernel = "".join(f"; kernel: {note}" for note in snap.kernel_notes)
    return (f"oomkiller: ready: families {_families_text(snap)}; {policies_text(snap.settings)}; "
            f"memory used {format_size(st.mem_used)} ({gate}){kernel}")


def policy_state(p: Policy) -> dict:
    """One policy as `oomkiller status` shows it."""
    return {
        "name": p.name,
        "text": p.text(),
        "selectors": dict(p.selectors()),
        "limits": {r.name: p.limits[r.id] for r in RULES},
        "min_used_bytes": p.min_used,
        "dry_run": p.dry_run,
        "scope": p.scope,
    }


def status_line(snap: Snapshot) -> str:
    """systemd's STATUS=: families, gate, tracked, kills."""
    st = snap.stats
    return (f"{_families_text(snap)}; gate {'open' if st.gate_open else 'closed'}; "
            f"tracked {st.tracked}/{snap.settings.capacity}; kills {st.kills}")


def summary(snap: Snapshot, procs: Sequence[tuple[int, abi.OomkProc]]) -> str:
    """The -v line at stop; `procs` is the daemon's one walk of the procs map
    (procmap.walk)."""
    st = snap.stats
    entries = [(key, p) for key, p in procs if not key & abi.TREE_KEY]  # trees: scope = tree
    condemned = sum(bool(p.condemned) for _, p in procs)
    return (f"stopping: {st.samples} samples, {st.kills} kills, {st.dry_runs} dry-runs, "
            f"{st.condemned} condemned, {st.kill_failed} kills refused, {st.sweeps} sweeps; "
            f"tracking {len(entries)} processes ({condemned} condemned)")


def state(snap: Snapshot) -> dict:
    """What `oomkiller status` needs besides the maps (instance.STATE_PATH)."""
    s = snap.settings
    return {
        "pid": snap.pid,
        "version": snap.version,
        "started": snap.started.isoformat(timespec="seconds"),
        "generation": snap.generation,
        "families": dict(snap.families),
        "kernel": list(snap.kernel_notes),
        "policy": s.policy_text(),
        "policies": [policy_state(p) for p in s.policies],
        "capacity": s.capacity,
        "interval": s.interval,
        "offsets": dict(snap.offsets),
    }
