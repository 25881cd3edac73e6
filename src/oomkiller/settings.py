"""What the user asked for, validated by the CLI, copied into the BPF object by the loader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from oomkiller.rules import RULES, default_limits
from oomkiller.sizes import format_size

GIB = 1 << 30

FAMILIES = ("fentry", "kprobe", "tracepoint")

# `oomkiller selftest` names its own pid here for the killer it starts: that
# process, like the killer's own, is never a target (cfg.exempt_tgid).
SELFTEST_PID_ENV = "OOMKILLER_SELFTEST_PID"
ATTACH_CHOICES = ("auto",) + FAMILIES


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

    def policy_text(self) -> str:
        """The policy as the ready line shows it."""
        parts = [f'name~"{self.name}"', f"min-used={format_size(self.min_used)}"]
        for rule in RULES:
            parts.append(f"{rule.name}={rule.format(self.limits[rule.id])}")
        parts.append(f"interval={self.interval:g}s")
        if self.dry_run:
            parts.append("dry-run")
        return " ".join(parts)
