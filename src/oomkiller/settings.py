"""What the user asked for, validated by the CLI, copied into the BPF object by the loader."""

from __future__ import annotations

from dataclasses import dataclass, field

from oomkiller import abi
from oomkiller.sizes import format_size

GIB = 1 << 30
MIB = 1 << 20

FAMILIES = ("fentry", "kprobe", "tracepoint")
ATTACH_CHOICES = ("auto",) + FAMILIES


def default_limits() -> list[int]:
    limits = [0] * abi.RULE_MAX
    limits[abi.RULE_FDS] = 100
    limits[abi.RULE_WRITES] = 100
    limits[abi.RULE_READ_BYTES] = 10 * MIB
    limits[abi.RULE_THREADS] = 100
    limits[abi.RULE_RAND] = 100
    limits[abi.RULE_TCP_PACKETS] = 1000
    return limits


@dataclass
class Settings:
    min_used: int = GIB
    name: str = "oomp"
    limits: list[int] = field(default_factory=default_limits)  # indexed by abi.RULE_*
    interval: float = 1.0
    capacity: int = 16384
    dry_run: bool = False
    json: bool = False
    attach: str = "auto"
    verbose: int = 0

    def policy_text(self) -> str:
        """The policy as the ready line shows it."""
        parts = [f'name~"{self.name}"', f"min-used={format_size(self.min_used)}"]
        for rule, rule_name in enumerate(abi.RULE_NAMES):
            value = self.limits[rule]
            parts.append(f"{rule_name}={format_size(value) if rule == abi.RULE_READ_BYTES else value}")
        parts.append(f"interval={self.interval:g}s")
        if self.dry_run:
            parts.append("dry-run")
        return " ".join(parts)
