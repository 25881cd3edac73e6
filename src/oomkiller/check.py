"""`oomkiller check [--config PATH] [options]`: the settings exactly as the
daemon would read them (options.py, config.py), each with where it came from:
default, PATH:LINE, or flag. Exit 0, or 2 with the daemon's own one-line error.
It never loads BPF (nor imports libbpf)."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from oomkiller import config
from oomkiller.messages import EXIT_OK, EXIT_USAGE, UsageError, fail
from oomkiller.options import build_parser, parse_settings, settings_from
from oomkiller.rules import RULES
from oomkiller.settings import Settings
from oomkiller.sizes import format_size


def given_on_command_line(args: Sequence[str]) -> set[str]:
    """The config keys the command line sets (argparse dests, dashed)."""
    parser = build_parser()
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    return {dest.replace("_", "-") for dest in vars(parser.parse_args(list(args)))}


def value_text(s: Settings, key: str) -> str:
    for rule in RULES:
        if rule.option == key:
            return rule.format(s.limits[rule.id])
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


def report(s: Settings, conf: config.Config, flags: set[str]) -> list[str]:
    lines = [f"config: {conf.path}" + ("" if conf.lines else " (no settings in it)")]
    width = max(len(k) for k in config.KEYS)
    for key in config.KEYS:
        where = "flag" if key in flags else conf.where(key) if key in conf else "default"
        lines.append(f"{key:<{width}}  {value_text(s, key):<12}  {where}")
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
