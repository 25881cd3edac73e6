"""Whether this process may load and attach BPF: its effective capabilities."""

from __future__ import annotations

CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39


def effective_caps(status_path: str = "/proc/self/status") -> int:
    try:
        with open(status_path, encoding="ascii") as f:
            for line in f:
                if line.startswith("CapEff:"):
                    return int(line.split()[1], 16)
    except (OSError, ValueError, IndexError):
        pass
    return 0


def has_bpf_privileges(caps: int) -> bool:
    """CAP_BPF + CAP_PERFMON (Linux >= 5.8), or CAP_SYS_ADMIN, which covers both."""
    if caps & (1 << CAP_SYS_ADMIN):
        return True
    return bool(caps & (1 << CAP_BPF)) and bool(caps & (1 << CAP_PERFMON))
