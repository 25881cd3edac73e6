"""Ring buffer records -> one line of text or JSON each."""

from __future__ import annotations

import datetime
import json
import time

from oomkiller.bpf import abi
from oomkiller.config import rules


def boot_to_realtime_offset_ns() -> int:
    """CLOCK_REALTIME - CLOCK_BOOTTIME, taken once at start (events carry boot time)."""
    boot = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
    real = time.clock_gettime_ns(time.CLOCK_REALTIME)
    return real - boot


def iso_time(realtime_ns: int) -> str:
    """ISO-8601 with milliseconds and the local UTC offset."""
    dt = datetime.datetime.fromtimestamp(realtime_ns / 1e9).astimezone()
    return dt.isoformat(timespec="milliseconds")


def comm_text(raw: bytes) -> str:
    """comm as a str; bytes that aren't UTF-8 keep a \\xNN form."""
    return raw.split(b"\0", 1)[0].decode("utf-8", "backslashreplace")


def _escape(raw: bytes) -> str:
    # A comm may hold spaces, control characters or non-UTF-8 bytes (prctl
    # PR_SET_NAME): keep the text line one line of space-separated fields.
    out = []
    for ch in raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape"):
        if ch == "\\":
            out.append("\\\\")
        elif "\udc80" <= ch <= "\udcff":  # an undecodable byte
            out.append(f"\\x{ord(ch) - 0xDC00:02x}")
        elif ch.isspace() or not ch.isprintable():
            out.append(f"\\x{ord(ch):02x}" if ord(ch) < 256 else f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return "".join(out)


def rule_name(rule: int) -> str:
    return rules.name_of(rule)


def event_name(kind: int) -> str:
    return abi.EVENT_NAMES.get(kind, f"unknown({kind})")


def event_dict(ev: abi.OomkEvent, offset_ns: int, policy: str = "default") -> dict:
    """policy: the name of the policy at index ev.policy of ev.generation."""
    return {
        "time": iso_time(ev.ts_boot_ns + offset_ns),
        "event": event_name(ev.kind),
        "pid": ev.pid,
        "tid": ev.tid,
        "comm": comm_text(ev.comm),
        "rule": rule_name(ev.rule),
        "value": ev.value,
        "limit": ev.limit,
        "mem_used_bytes": ev.mem_used,
        "policy": policy,
    }


def format_event(ev: abi.OomkEvent, offset_ns: int, as_json: bool = False,
                 policy: str = "default") -> str:
    d = event_dict(ev, offset_ns, policy)
    if as_json:
        return json.dumps(d, ensure_ascii=False)
    return (f"{d['time']} {d['event']} pid={d['pid']} comm={_escape(ev.comm)} "
            f"rule={d['rule']} value={d['value']} limit={d['limit']} mem_used={d['mem_used_bytes']} "
            f"policy={d['policy']}")
