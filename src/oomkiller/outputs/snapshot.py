"""One tick of a running killer, frozen: what the ready line, STATUS=, the
reload line, the -v summary, the metrics and the state file render. The
daemon (loader.py) builds one per tick; the renderers (describe.py,
metrics.py) read this value and never the daemon."""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Mapping, Sequence

from oomkiller.bpf import abi, families
from oomkiller.config.settings import Settings


@dataclass(frozen=True)
class Snapshot:
    stats: abi.OomkStats  # a copy of the BPF side's `stats`
    settings: Settings  # in force: the policies, capacity, interval
    generation: int  # cfg.generation of the generation in force
    started: datetime.datetime
    families: Mapping[str, str]  # data source -> family in use, or `off`
    kernel_notes: Sequence[str]  # families.Plan.kernel_notes()
    rules_off: Mapping[str, str]  # rule -> what this kernel lacks for it
    skipped: Mapping[str, int]  # program -> runs the kernel skipped, across reloads
    event_counts: Mapping[tuple[str, str, str], int]  # (event, policy, rule) -> events seen
    offsets: Mapping[str, int]  # Generation.offsets(), for `oomkiller status`
    pid: int
    version: str


def families_in_use(plan: families.Plan, loaded: Sequence[str]) -> dict[str, str]:
    """Data source -> family in use, `off` where no rule needs the source
    (its programs were left unloaded)."""
    fams = {**plan.families, "tcp": families.FIXED["tcp"], "rand": families.FIXED["rand"]}
    for source, prefix in (("rand", "on_rand"), ("tcp", "on_sock_send")):
        if not any(name.startswith(prefix) for name in loaded):
            fams[source] = "off"
    return fams
