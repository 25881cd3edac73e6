"""The limits each condition runs with, by rule name, all derived from the
one rules table (src/oomkiller/config/rules.py), and the names bench/victim.c and
bench/policy.bt give the rules in their own protocols."""
from __future__ import annotations

import paths  # noqa: F401  (sys.path)
from oomkiller.config.rules import RULES

MiB = 1 << 20

# The killer's defaults (issue 2): the kill runs use them as they are.
LIMITS = {r.name: r.default for r in RULES}

# For overhead: no limit is ever reached, and --min-used 1T means a crossing
# could not kill. fds stays at 1M, the value every earlier run used, so the
# numbers stay comparable from run to run.
HIGH_LIMITS = {r.name: (1 << 40 if r.unit == "bytes" else 1_000_000_000) for r in RULES}
HIGH_LIMITS["fds"] = 1_000_000


def limit_args(limits: dict[str, int]) -> list[str]:
    """--max-* options for every rule, from rules.py's option names."""
    return [a for r in RULES for a in (f"--{r.option}", str(limits[r.name]))]


HIGH = ["--min-used", "1T"] + limit_args(HIGH_LIMITS)

# victim.c's RULE argument (its C protocol) for the operation that crosses
# each rule; "self" is the latency reference, no rule at all.
VICTIM_OP = {"fds": "fds", "writes": "writes", "read-bytes": "reads", "threads": "threads",
             "rand": "rand", "tcp-packets": "tcp", "self": "self"}
# What the /proc poller can see at all: no rand() calls, no TCP segments.
POLLER_RULES = ["writes", "read-bytes", "fds", "threads"]
# policy.bt's positional parameters $1..$6 (then $7, the comm offset).
POLICY_BT_ORDER = ["fds", "writes", "read-bytes", "threads", "rand", "tcp-packets"]

READ_CHUNK = 65536   # bytes per read in the victim's `reads` loop


def crossing(rule: str) -> int:
    """The index (1-based) of the victim's operation that crosses `rule`.
    fds: 0, 1 and 2 are open, so open number L-3 makes L. read-bytes: the
    dynamic loader reads 832 bytes of libc first; that is less than one
    chunk, so the crossing is still chunk L/CHUNK. self: the victim's own
    SIGKILL at operation 100."""
    if rule == "self":
        return 100
    lim = LIMITS[rule]
    return {"fds": lim - 3, "read-bytes": lim // READ_CHUNK}.get(rule, lim)


def policy_bt_args(limits: dict[str, int], comm_off: int) -> list[int]:
    return [limits[n] for n in POLICY_BT_ORDER] + [comm_off]
