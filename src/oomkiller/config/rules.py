"""The rules, once: what each is called, its option, default, unit and help.

The CLI's --max-* options, the config file's keys, the default settings, the
ready line's policy text, status columns and events all derive from RULES.
Adding a rule touches the BPF side (bpf/oomkiller.bpf.c), the header's
enum oomk_rule (mirrored in abi.py) and this table.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Callable

from oomkiller.bpf import abi
from oomkiller.config.sizes import format_size

MIB = 1 << 20
# A limit no counter reaches: the rule is off (`--max-rand off`). Its
# programs are not loaded (families.needed), and it never condemns.
OFF = (1 << 64) - 1


@dataclass(frozen=True)
class Rule:
    id: int          # enum oomk_rule: index of oomk_config.limits, oomk_proc.counters
    name: str        # in events, status and the ready line
    option: str      # --OPTION on the command line, OPTION in the config file
    default: int
    unit: str        # "count" or "bytes"
    help: str        # one --help line with "(DEFAULT)"

    @property
    def dest(self) -> str:
        """argparse's attribute for the option."""
        return self.option.replace("-", "_")

    @property
    def metavar(self) -> str:
        return "SIZE" if self.unit == "bytes" else "N"

    def format(self, value: int) -> str:
        if value >= OFF:
            return "off"
        return format_size(value) if self.unit == "bytes" else str(value)


RULES = (
    Rule(abi.RULE_FDS, "fds", "max-fds", 100, "count", "descriptors open at once (100)"),
    Rule(abi.RULE_WRITES, "writes", "max-writes", 100, "count",
         "write calls, not on sockets (syscw) (100)"),
    Rule(abi.RULE_READ_BYTES, "read-bytes", "max-read", 10 * MIB, "bytes",
         "bytes read (rchar) (10M)"),
    Rule(abi.RULE_THREADS, "threads", "max-threads", 100, "count",
         "threads created over the process's life (100)"),
    Rule(abi.RULE_RAND, "rand", "max-rand", 100, "count", "calls of libc rand() (100)"),
    Rule(abi.RULE_TCP_PACKETS, "tcp-packets", "max-tcp-packets", 1000, "count",
         "TCP data segments sent, ceil(bytes/MSS) a send (1000)"),
)
assert [r.id for r in RULES] == list(range(abi.RULE_MAX)), "RULES must follow enum oomk_rule"

BY_NAME = {r.name: r for r in RULES}


def name_of(rule_id: int) -> str:
    return RULES[rule_id].name if 0 <= rule_id < len(RULES) else f"unknown({rule_id})"


def default_limits() -> list[int]:
    return [r.default for r in RULES]


def off_or(parse: Callable[[str], int]) -> Callable[[str], int]:
    """An option type that also takes `off`: the OFF limit."""
    def parse_limit(text: str) -> int:
        if text.strip().lower() == "off":
            return OFF
        try:
            return parse(text)
        except argparse.ArgumentTypeError as e:
            raise argparse.ArgumentTypeError(f"{e} (or off)") from None
    parse_limit.__name__ = parse.__name__
    return parse_limit


def enabled(limits: list[int]) -> set[str]:
    """The names of the rules these limits leave on."""
    return {r.name for r in RULES if limits[r.id] < OFF}
