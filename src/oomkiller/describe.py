"""What a running killer says about itself: the ready line, systemd's
STATUS=, the -v summary at stop, and the state file `oomkiller status` reads.
Each takes the live Killer (loader.py) and only reads it."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from oomkiller import __version__, abi, families, procmap
from oomkiller.policy import DEFAULT, Policy
from oomkiller.rules import RULES
from oomkiller.sizes import format_size

if TYPE_CHECKING:
    from oomkiller.loader import Killer


def families_in_use(k: "Killer") -> dict[str, str]:
    """Data source -> family in use, `off` where no rule needs the source."""
    assert k.plan is not None and k.gen is not None
    fams = {**k.plan.families, "tcp": families.FIXED["tcp"], "rand": families.FIXED["rand"]}
    for source, prefix in (("rand", "on_rand"), ("tcp", "on_sock_send")):
        if not any(name.startswith(prefix) for name in k.gen.loaded):
            fams[source] = "off"
    return fams


def _families_text(k: "Killer") -> str:
    return " ".join(f"{src}={fam}" for src, fam in families_in_use(k).items())


def kernel_notes(k: "Killer") -> list[str]:
    assert k.plan is not None
    return k.plan.kernel_notes()


def policies_text(k: "Killer") -> str:
    """`policy TEXT` for the default policy alone (as before policies), else
    `policy NAME: TEXT` for each, in the order BPF tries them."""
    pols = k.s.policies
    if len(pols) == 1 and pols[0].name == DEFAULT:
        return f"policy {k.s.policy_text()}"
    return "; ".join(f"policy {p.name}: {p.text()}" for p in pols) + f"; interval={k.s.interval:g}s"


def ready_line(k: "Killer") -> str:
    st = k.stats
    gate = "gate open" if st.gate_open else "gate closed"
    kernel = "".join(f"; kernel: {note}" for note in kernel_notes(k))
    return (f"oomkiller: ready: families {_families_text(k)}; {policies_text(k)}; "
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


def status_line(k: "Killer") -> str:
    """systemd's STATUS=: families, gate, tracked, kills."""
    st = k.stats
    return (f"{_families_text(k)}; gate {'open' if st.gate_open else 'closed'}; "
            f"tracked {st.tracked}/{k.s.capacity}; kills {st.kills}")


def summary(k: "Killer") -> str:
    """The -v line at stop; walks the procs map once."""
    assert k.gen is not None
    st = k.stats
    every = procmap.walk(k.lib, k.gen.map_fd("procs"), k.s.capacity)
    entries = [(key, p) for key, p in every if not key & abi.TREE_KEY]  # trees: scope = tree
    condemned = sum(bool(p.condemned) for _, p in every)
    return (f"stopping: {st.samples} samples, {st.kills} kills, {st.dry_runs} dry-runs, "
            f"{st.condemned} condemned, {st.kill_failed} kills refused, {st.sweeps} sweeps; "
            f"tracking {len(entries)} processes ({condemned} condemned)")


def state(k: "Killer") -> dict:
    """What `oomkiller status` needs besides the maps (instance.STATE_PATH)."""
    assert k.gen is not None
    return {
        "pid": os.getpid(),
        "version": __version__,
        "started": k.started.isoformat(timespec="seconds"),
        "generation": k.generation,
        "families": families_in_use(k),
        "kernel": kernel_notes(k),
        "policy": k.s.policy_text(),
        "policies": [policy_state(p) for p in k.s.policies],
        "capacity": k.s.capacity,
        "interval": k.s.interval,
        "offsets": k.gen.offsets(),
    }
