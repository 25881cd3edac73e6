"""What the user asked for, validated by the CLI, copied into the BPF object by the loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from oomkiller.config.policy import DEFAULT, Policy
from oomkiller.config.rules import RULES, default_limits
from oomkiller.config.sizes import format_size

GIB = 1 << 30

FAMILIES = ("fentry", "kprobe", "tracepoint")

# `oomkiller selftest` names its own pid here for the killer it starts: that
# process, like the killer's own, is never a target (cfg.exempt_tgid).
SELFTEST_PID_ENV = "OOMKILLER_SELFTEST_PID"
ATTACH_CHOICES = ("auto",) + FAMILIES
# The settings of the default policy, as config keys (Policy.origin's keys).
DEFAULT_POLICY_KEYS = ("name", *(r.option for r in RULES), "min-used", "dry-run", "scope")


@dataclass
class Settings:
    min_used: int = GIB
    name: str = "oomp"
    limits: list[int] = field(default_factory=default_limits)  # indexed by Rule.id
    interval: float = 1.0
    capacity: int = 16384
    dry_run: bool = False
    json: bool = False
    attach: str = "auto"
    verbose: int = 0
    metrics_file: Optional[str] = None
    metrics_listen: Optional[str] = None
    # `[policy NAME]` sections, resolved, in file order (options.settings_from).
    named_policies: tuple[Policy, ...] = ()
    default_policy: bool = True  # `default-policy = off`: only the named ones apply
    # Where each top-level setting came from: config key -> "default", "flag"
    # or "PATH:LINE" (options.settings_from; empty: all "default").
    origin: dict[str, str] = field(default_factory=dict, compare=False)

    def where(self, key: str) -> str:
        return self.origin.get(key, "default")

    def default_policy_value(self) -> Policy:
        """The policy the top-level settings make: min_used, name, limits, dry_run."""
        origin = {k: self.where(k) for k in DEFAULT_POLICY_KEYS if k != "scope"}
        origin["scope"] = "default"
        return Policy(name=DEFAULT, limits=tuple(self.limits), min_used=self.min_used,
                      dry_run=self.dry_run, comm=self.name, origin=origin)

    @property
    def policies(self) -> tuple[Policy, ...]:
        """What BPF applies, first match wins: the named policies in file order,
        then `default` unless default-policy is off."""
        if self.default_policy:
            return tuple(self.named_policies) + (self.default_policy_value(),)
        return tuple(self.named_policies)

    def policy_text(self) -> str:
        """The policy as the ready line shows it."""
        parts = [f'name~"{self.name}"', f"min-used={format_size(self.min_used)}"]
        for rule in RULES:
            parts.append(f"{rule.name}={rule.format(self.limits[rule.id])}")
        parts.append(f"interval={self.interval:g}s")
        if self.dry_run:
            parts.append("dry-run")
        return " ".join(parts)
