"""A policy: which processes (selectors) and what they may do (limits, gate,
dry-run, scope). The settings hold an ordered tuple of them; the loader
copies each into oomk_config.pol[] and BPF picks the first that matches a
process, once per process image (bpf/oomkiller.bpf.c, "Policies").

The top-level lines of the config file and the command line make the policy
named `default`; each `[policy NAME]` section makes one more. The named ones
come first, in file order, and `default` last: it is the fallback.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Optional

from oomkiller.bpf import abi
from oomkiller.config.rules import OFF, RULES, default_limits
from oomkiller.config.sizes import format_size

DEFAULT = "default"
SELECTORS = ("name", "exe", "cgroup", "unit", "user")
SCOPES = ("process", "tree")
MAX_POLICIES = abi.OOMK_POLICY_MAX
GIB = 1 << 30


@dataclass(frozen=True)
class Policy:
    name: str = DEFAULT
    limits: tuple[int, ...] = field(default_factory=lambda: tuple(default_limits()))
    min_used: int = GIB
    dry_run: bool = False
    scope: str = "process"
    # Selectors, all that are given must match; None: not given.
    comm: Optional[str] = None          # `name`: substring of the process name
    exe: Optional[str] = None           # `exe`: the path as written
    exe_id: Optional[tuple[int, int]] = None   # its (kernel s_dev, inode) at parse time
    cgroup: Optional[str] = None        # cgroup v2 path from the mount, "/a/b" (`unit`: resolved)
    unit: Optional[str] = None          # `unit`: the unit name as written
    user: Optional[str] = None          # `user`: as written
    uid: Optional[int] = None           # its uid
    # Where each setting came from: key -> "default", "flag" or "PATH:LINE".
    origin: Mapping[str, str] = field(default_factory=dict, compare=False)

    @property
    def cgroup_level(self) -> int:
        """Depth below the root: "/" is 0, "/a" 1, "/a/b" 2 (struct cgroup's level)."""
        return len([p for p in (self.cgroup or "").split("/") if p])

    def selectors(self) -> list[tuple[str, str]]:
        """(selector, value as shown) for each selector given."""
        out = []
        if self.comm is not None:
            out.append(("name", f'~"{self.comm}"'))
        if self.exe is not None:
            out.append(("exe", self.exe))
        if self.unit is not None:
            out.append(("unit", f"{self.unit} ({self.cgroup})"))
        elif self.cgroup is not None:
            out.append(("cgroup", self.cgroup))
        if self.user is not None:
            out.append(("user", self.user if self.user == str(self.uid)
                        else f"{self.user} ({self.uid})"))
        return out

    def selector_text(self) -> str:
        return " ".join(f"name{v}" if k == "name" else f"{k}={v}" for k, v in self.selectors())

    def limits_text(self) -> str:
        parts = [f"min-used={format_size(self.min_used)}"]
        parts += [f"{r.name}={r.format(self.limits[r.id])}" for r in RULES]
        if self.scope != "process":
            parts.append(f"scope={self.scope}")
        if self.dry_run:
            parts.append("dry-run")
        return " ".join(parts)

    def text(self) -> str:
        return f"{self.selector_text()} {self.limits_text()}"

    def enabled(self) -> set[str]:
        return {r.name for r in RULES if self.limits[r.id] < OFF}
