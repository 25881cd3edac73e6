"""The daemon's options: argument types, the parser, and Settings from the
command line and the config file. One place for `oomkiller`, SIGHUP's
re-read and `oomkiller check`.

Exit codes are part of the interface: 0 clean stop, 1 environment or runtime
failure, 2 bad usage. Every failure a user can cause is one stderr line
`oomkiller: <what happened>: <what to do>`, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import re
from decimal import Decimal
from typing import Optional, Sequence

from oomkiller import __version__
from oomkiller.bpf import abi
from oomkiller.config import config, selectors
from oomkiller.config.policy import GIB, MAX_POLICIES, SCOPES, Policy
from oomkiller.config.rules import OFF, RULES, off_or
from oomkiller.config.settings import ATTACH_CHOICES, Settings
from oomkiller.config.sizes import (U64_MAX, NotAWholeNumber, parse_size, plain_decimal,
                             whole_number)
from oomkiller.messages import Parser, UsageError


# Plain decimals (sizes.plain_decimal), compared exactly. Each tick is a
# sysinfo() and a BPF_PROG_RUN sweep of up to --capacity entries: 100 a
# second is more than memory pressure needs; a shorter period only burns CPU.
MIN_INTERVAL = Decimal("0.01")
MAX_INTERVAL = Decimal(3600)
# OFF (2^64 - 1) means off: the largest limit is one less, so that a number
# typed as a limit never turns a rule off.
MAX_LIMIT = OFF - 1
MAX_CAPACITY = 1 << 24  # a preallocated hash of oomk_proc: 16M entries is already ~2 GiB

USAGE = ("oomkiller [options]\n"
         "       oomkiller status [--json]   (what the running killer watches)\n"
         "       oomkiller check [options]   (the settings as oomkiller would read them)\n"
         "       oomkiller selftest          (prove every rule on this kernel)")

DESCRIPTION = """\
Kill, with SIGKILL sent from BPF, every process whose name contains SUBSTR and
that crosses a limit while at least --min-used bytes of RAM are in use. A process
that crosses a limit below that is condemned, and dies once use reaches it."""

EPILOG = """\
A limit is crossed when counter >= limit; the call that reaches it completes,
nothing after it runs. Counters are per process and start again at exec; fds is
a level, the others only grow. SIZE: whole bytes or K/M/G/T (powers of 1024), 1.5G.
Options override the config file (key = value, long option names); SIGHUP
re-reads it and applies new limits at once.
exit status: 0 stopped by SIGINT/SIGTERM, 1 environment or runtime failure
(also: already running; status with no killer), 2 bad usage or config."""


# -- argument types: raise ArgumentTypeError so argparse names the option ----

def _count(text: str, maximum: int = U64_MAX) -> int:
    try:
        value = whole_number(text, maximum)
    except NotAWholeNumber:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} {e}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _size(text: str, minimum: int, maximum: int = U64_MAX) -> int:
    try:
        value = parse_size(text, maximum)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} {e}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum} byte, got {text!r}")
    return value


def size_any(text: str) -> int:
    return _size(text, 0)


def limit_count(text: str) -> int:
    return _count(text, MAX_LIMIT)


def limit_size(text: str) -> int:
    return _size(text, 1, MAX_LIMIT)


def interval(text: str) -> float:
    try:
        seconds = plain_decimal(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} {e}") from None
    if not MIN_INTERVAL <= seconds <= MAX_INTERVAL:
        raise argparse.ArgumentTypeError(
            f"must be at least {MIN_INTERVAL} and at most {MAX_INTERVAL} seconds, got {text!r}")
    return float(seconds)


def metrics_file(text: str) -> str:
    if not text or "\0" in text:
        raise argparse.ArgumentTypeError("name a file")
    if not os.path.isdir(os.path.dirname(os.path.abspath(text))):
        raise argparse.ArgumentTypeError(f"no directory for {text!r}: create it first")
    return text


def metrics_listen(text: str) -> str:
    from oomkiller.outputs.metrics import parse_listen  # http.server only when asked for
    try:
        parse_listen(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def capacity(text: str) -> int:
    return _count(text, MAX_CAPACITY)


def target_name(text: str) -> str:
    raw = os.fsencode(text)
    if not raw:
        raise argparse.ArgumentTypeError("must not be empty")
    if b"\0" in raw:
        raise argparse.ArgumentTypeError("must not contain NUL")
    if len(raw) > abi.OOMK_NAME_MAX:
        raise argparse.ArgumentTypeError(
            f"at most {abi.OOMK_NAME_MAX} bytes (a process name is 15), got {len(raw)}")
    return text


ON_OFF = ("on", "off")


def build_parser() -> Parser:
    p = Parser(prog="oomkiller", usage=USAGE, description=DESCRIPTION,
               epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
               allow_abbrev=False)
    # argparse takes `-5G` for an option; let it reach the type check as a value,
    # so the message says "must not be negative" instead of "expected one argument".
    p._negative_number_matcher = re.compile(r"^-\.?\d")
    a = p.add_argument
    # Read by config.argv_with_config() before parsing; declared for --help.
    a("--config", metavar="PATH", help=f"config file (${config.ENV_VAR} or {config.DEFAULT_PATH})")
    a("--min-used", type=size_any, default=1 << 30, metavar="SIZE",
      help="RAM in use (total - free) that opens the gate (1G)")
    a("--name", type=target_name, default="oomp", metavar="SUBSTR",
      help="target: name contains SUBSTR, 1-15 bytes (oomp)")
    for rule in RULES:
        a(f"--{rule.option}", type=off_or(limit_size if rule.unit == "bytes" else limit_count),
          default=rule.default, metavar=rule.metavar, help=rule.help)
    a("--interval", type=interval, default=1.0, metavar="SECONDS",
      help="memory sampling period, 0.01 to 3600 (1)")
    a("--capacity", type=capacity, default=16384, metavar="N",
      help="processes tracked at once (16384)")
    a("--metrics-file", type=metrics_file, default=None, metavar="PATH",
      help="write Prometheus metrics there each tick (off)")
    a("--metrics-listen", type=metrics_listen, default=None, metavar="ADDR",
      help="serve /metrics on [HOST:]PORT, host 127.0.0.1 (off)")
    a("--dry-run", action="store_true", help="report would-be kills, kill nothing (off)")
    a("--json", action="store_true", help="print events as JSON, one per line (off)")
    a("--attach", choices=ATTACH_CHOICES, default="auto", metavar="FAMILY",
      help="auto, fentry, kprobe or tracepoint (auto)")
    a("--default-policy", choices=ON_OFF, default="on", metavar="on|off",
      help="off: only the config's [policy NAME] apply (on)")
    a("-v", "--verbose", action="count", default=0,
      help="show probing and libbpf's log, -vv debug (off)")
    a("--version", action="version", version=f"oomkiller {__version__}",
      help="print the version and exit")
    return p


def parse_settings(argv: Optional[Sequence[str]] = None, exit_on_error: bool = True) -> Settings:
    """Settings from argv; a bad one exits 2, or raises UsageError if not exit_on_error."""
    parser = build_parser()
    parser.raise_errors = not exit_on_error
    ns = parser.parse_args(argv)
    limits = [getattr(ns, rule.dest) for rule in RULES]
    return Settings(min_used=ns.min_used, name=ns.name, limits=limits, interval=ns.interval,
                    capacity=ns.capacity, dry_run=ns.dry_run, json=ns.json, attach=ns.attach,
                    metrics_file=ns.metrics_file, metrics_listen=ns.metrics_listen,
                    verbose=ns.verbose, default_policy=ns.default_policy == "on")


def given_on_command_line(args: Sequence[str]) -> set[str]:
    """The config keys the command line sets (argparse dests, dashed)."""
    parser = build_parser()
    parser.raise_errors = True
    for action in parser._actions:
        action.default = argparse.SUPPRESS
    try:
        return {dest.replace("_", "-") for dest in vars(parser.parse_args(list(args)))}
    except UsageError:
        return set()  # not reached: the command line parsed before


def settings_from(args: Sequence[str]) -> Settings:
    """The config file's settings, then the command line's: what SIGHUP re-reads,
    the daemon starts with and `check` shows, named policies included.
    Raises ConfigError or UsageError (naming the file) instead of exiting."""
    full, conf = config.argv_with_config(args)
    try:
        s = parse_settings(full, exit_on_error=False)
    except UsageError as e:
        # The command line alone parsed (main checks it first): the value at
        # fault is the file's. Name its line.
        key = str(e).split(":", 1)[0].lstrip("-")
        raise UsageError(f"{conf.where(key) if key in conf else conf.path}: {e}") from None
    flags = given_on_command_line(args)
    s.origin = {key: "flag" if key in flags else conf.where(key) if key in conf else "default"
                for key in config.KEYS}
    s.named_policies = named_policies(conf, s.default_policy)
    if not s.default_policy and not s.named_policies:
        if s.origin["default-policy"] == "flag":
            raise UsageError(f"--default-policy off and no [policy NAME] section in {conf.path}: "
                             "nothing to enforce: add a section, or drop --default-policy off")
        raise config.ConfigError(f"{s.origin['default-policy']}: default-policy = off and no "
                                 "[policy NAME] section: nothing to enforce: add a section, "
                                 "or turn default-policy on")
    return s


# -- [policy NAME] sections -------------------------------------------------------

def _section_value(key: str, text: str) -> object:
    """One section value, checked with the CLI's own types; ValueError or
    ArgumentTypeError says what is wrong."""
    for rule in RULES:
        if rule.option == key:
            return off_or(limit_size if rule.unit == "bytes" else limit_count)(text)
    if key == "min-used":
        return size_any(text)
    if key == "dry-run":
        return config.parse_bool(text)
    if key == "scope":
        if text not in SCOPES:
            raise ValueError(f"{text!r}: use " + " or ".join(SCOPES))
        return text
    if key == "name":
        return target_name(text)
    if key == "exe":
        return selectors.resolve_exe(text)
    if key == "cgroup":
        return selectors.resolve_cgroup(text)
    if key == "unit":
        return selectors.resolve_unit(text)
    if key == "user":
        return selectors.resolve_user(text)
    raise ValueError(f"unknown key {key!r}")  # config.SECTION_KEYS keeps it out


def policy_from_section(sec: config.Section) -> Policy:
    """A `[policy NAME]` section as a Policy: values checked, selectors resolved.
    What it leaves unset is the built-in default, not the top-level value."""
    def error(key: Optional[str], what: str) -> config.ConfigError:
        return config.ConfigError(f"{sec.where(key)}: {what}")

    if "unit" in sec.values and "cgroup" in sec.values:
        later = max(("unit", "cgroup"), key=lambda k: sec.lines[k])
        raise error(later, "unit and cgroup in one policy: pick one "
                    "(a unit is its cgroup)")
    got: dict[str, object] = {}
    for key in sorted(sec.values, key=lambda k: sec.lines[k]):
        try:
            got[key] = _section_value(key, sec.values[key])
        except (ValueError, argparse.ArgumentTypeError) as e:
            raise error(key, f"{key}: {e}") from None
    if not any(k in got for k in config.SELECTOR_KEYS):
        raise error(None, f"[policy {sec.name}] has no selector: add one of "
                    + ", ".join(config.SELECTOR_KEYS))
    limits = tuple(got.get(r.option, r.default) for r in RULES)
    if all(limit >= OFF for limit in limits):
        raise error(None, f"[policy {sec.name}] has every limit off: it would never act: "
                    "set a limit, or remove the section")
    exe_id = got.get("exe")
    cgroup = got.get("unit", got.get("cgroup"))
    origin = {key: sec.where(key) if key in sec.values else "default"
              for key in (*(k for k in config.SELECTOR_KEYS if k in sec.values),
                          *(r.option for r in RULES), "min-used", "dry-run", "scope")}
    return Policy(name=sec.name, limits=limits, min_used=got.get("min-used", GIB),
                  dry_run=got.get("dry-run", False), scope=got.get("scope", "process"),
                  comm=got.get("name"), exe=sec.values.get("exe"), exe_id=exe_id,
                  cgroup=cgroup, unit=sec.values.get("unit"), user=sec.values.get("user"),
                  uid=got.get("user"), origin=origin)


def named_policies(conf: config.Config, default_policy: bool = True) -> tuple[Policy, ...]:
    """The config's sections as Policies, in file order; at most MAX_POLICIES
    in all, counting `default` when it is on."""
    out = []
    room = MAX_POLICIES - (1 if default_policy else 0)
    for sec in conf.sections:
        if len(out) == room:
            also = ", counting default: set default-policy = off, or" if default_policy else ":"
            raise config.ConfigError(f"{sec.where()}: more than {MAX_POLICIES} policies"
                                     f"{also} merge some")
        out.append(policy_from_section(sec))
    return tuple(out)
