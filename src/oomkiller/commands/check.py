"""`oomkiller check [--config PATH] [options]`: the settings exactly as the
daemon would read them (options.py, config.py), each with where it came from:
default, PATH:LINE, or flag. Exit 0, or 2 with the daemon's own one-line error.
It never loads BPF (nor imports libbpf)."""

from __future__ import annotations

import sys
from typing import Sequence

from oomkiller.config import config
from oomkiller.config.options import given_on_command_line, parse_settings, settings_from
from oomkiller.config.policy import Policy
from oomkiller.config.rules import RULES
from oomkiller.config.settings import Settings
from oomkiller.config.sizes import format_size
from oomkiller.messages import EXIT_OK, EXIT_USAGE, UsageError, fail


def value_text(s: Settings, key: str) -> str:
    for rule in RULES:
        if rule.option == key:
            return rule.format(s.limits[rule.id])
    if key == "default-policy":
        return "on" if s.default_policy else "off"
    value = getattr(s, key.replace("-", "_"))
    if key == "min-used":
        return format_size(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key == "interval":
        return f"{value:g}s"
    if value is None:  # --metrics-file, --metrics-listen: not given
        return "off"
    return str(value)


def policy_rows(p: Policy) -> list[tuple[str, str, str]]:
    """(key, value, origin) of each selector given, then every limit, min-used,
    dry-run and scope. A unit's row is followed by the cgroup it resolved to."""
    rows = []
    for key, value in (("name", p.comm), ("exe", p.exe), ("unit", p.unit),
                       ("cgroup", p.cgroup), ("user", p.user)):
        if value is not None:
            origin = p.origin.get("unit" if key == "cgroup" and p.unit else key, "default")
            rows.append((key, value, origin))
        if key == "user" and value is not None and value != str(p.uid):
            rows.append(("uid", str(p.uid), p.origin.get("user", "default")))
    rows += [(r.option, r.format(p.limits[r.id]), p.origin.get(r.option, "default"))
             for r in RULES]
    rows.append(("min-used", format_size(p.min_used), p.origin.get("min-used", "default")))
    rows.append(("dry-run", "yes" if p.dry_run else "no", p.origin.get("dry-run", "default")))
    rows.append(("scope", p.scope, p.origin.get("scope", "default")))
    return rows


def report(s: Settings, conf: config.Config, flags: set[str]) -> list[str]:
    lines = [f"config: {conf.path}"
             + ("" if conf.lines or conf.sections else " (no settings in it)")]
    width = max(len(k) for k in config.KEYS)
    for key in config.KEYS:
        where = "flag" if key in flags else conf.where(key) if key in conf else "default"
        lines.append(f"{key:<{width}}  {value_text(s, key):<12}  {where}")
    for p in s.policies:
        lines.append(f"policy {p.name}: {p.selector_text()}")
        rows = policy_rows(p)
        vwidth = max(12, *(len(value) for _, value, _ in rows))
        lines += [f"  {key:<{width}}  {value:<{vwidth}}  {where}" for key, value, where in rows]
    lines.append(f"policy: {s.policy_text()}")
    return lines


def main(args: Sequence[str]) -> int:
    parse_settings(args)  # the command line alone first: its errors, --help
    try:
        settings = settings_from(args)
        _, conf = config.argv_with_config(args)
    except (config.ConfigError, UsageError) as e:
        return fail(str(e), EXIT_USAGE)
    for line in report(settings, conf, given_on_command_line(args)):
        sys.stdout.write(line + "\n")
    return EXIT_OK
