"""Command line: arguments, privileges, signals, exit codes.

Exit codes are part of the interface: 0 clean stop, 1 environment or runtime
failure, 2 bad usage. Every failure a user can cause is one stderr line
`oomkiller: <what happened>: <what to do>`, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import os
import re
import signal
import sys
import traceback
from typing import NoReturn, Optional, Sequence

from oomkiller import __version__, abi, config, describe, instance, journal, status
from oomkiller.messages import EXIT_OK, EXIT_USAGE, Parser, UsageError, fail
from oomkiller.privileges import effective_caps, has_bpf_privileges
from oomkiller.rules import RULES, off_or
from oomkiller._libbpf import LibraryMissing
from oomkiller.settings import ATTACH_CHOICES, Settings
from oomkiller.sizes import parse_size


MAX_INTERVAL = 3600.0
MAX_CAPACITY = 1 << 24  # a preallocated hash of oomk_proc: 16M entries is already ~2 GiB

USAGE = "oomkiller [options]\n       oomkiller status [--json]   (what the running killer watches)"

DESCRIPTION = """\
Kill, with SIGKILL sent from BPF, every process whose name contains SUBSTR and
that crosses a limit while at least --min-used bytes of RAM are in use. A process
that crosses a limit below that is condemned, and dies once use reaches it."""

EPILOG = """\
A limit is crossed when counter >= limit; the call that reaches it completes,
nothing after it runs. Counters are per process and start again at exec; fds is
a level, the others only grow. SIZE: bytes or K/M/G/T (powers of 1024), 1.5G.
Options override the config file (key = value, long option names); SIGHUP
re-reads it and applies new limits at once.
exit status: 0 stopped by SIGINT/SIGTERM, 1 environment or runtime failure
(also: already running; status with no killer), 2 bad usage or config."""


# -- argument types: raise ArgumentTypeError so argparse names the option ----

def _count(text: str) -> int:
    try:
        value = int(text.strip(), 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    if value > (1 << 64) - 1:
        raise argparse.ArgumentTypeError(f"too large: {text!r}")
    return value


def _size(text: str, minimum: int) -> int:
    try:
        value = parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"{text!r} {e}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be at least {minimum} byte, got {text!r}")
    return value


def size_any(text: str) -> int:
    return _size(text, 0)


def size_positive(text: str) -> int:
    return _size(text, 1)


def interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0 or value > MAX_INTERVAL:
        raise argparse.ArgumentTypeError(
            f"must be more than 0 and at most {MAX_INTERVAL:g} seconds, got {text!r}")
    return value


def capacity(text: str) -> int:
    value = _count(text)
    if value > MAX_CAPACITY:
        raise argparse.ArgumentTypeError(f"at most {MAX_CAPACITY}, got {text!r}")
    return value


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
      help="target: process name contains SUBSTR, 1-15 bytes (oomp)")
    for rule in RULES:
        a(f"--{rule.option}", type=off_or(size_positive if rule.unit == "bytes" else _count),
          default=rule.default, metavar=rule.metavar, help=rule.help)
    a("--interval", type=interval, default=1.0, metavar="SECONDS",
      help="memory sampling period, up to 3600 (1)")
    a("--capacity", type=capacity, default=16384, metavar="N",
      help="processes tracked at once (16384)")
    a("--dry-run", action="store_true", help="report would-be kills, kill nothing (off)")
    a("--json", action="store_true", help="print events as JSON, one per line (off)")
    a("--attach", choices=ATTACH_CHOICES, default="auto", metavar="FAMILY",
      help="auto, fentry, kprobe or tracepoint (auto)")
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
                    verbose=ns.verbose)


# -- environment -------------------------------------------------------------



class Stopper:
    """SIGINT/SIGTERM handler. During setup it raises KeyboardInterrupt so setup
    unwinds through the Killer's teardown; while polling it only sets a flag
    (a ctypes callback can't propagate an exception)."""

    def __init__(self) -> None:
        self.requested = False
        self.raising = True
        self.killer = None

    def __call__(self, signum: int, frame: object) -> None:
        self.requested = True
        if self.killer is not None:
            self.killer.stop_requested = True
        if self.raising:
            raise KeyboardInterrupt


class Reloader:
    """SIGHUP handler: only a flag, acted on between polls (also when it
    arrived during setup)."""

    def __init__(self) -> None:
        self.pending = False
        self.killer = None

    def __call__(self, signum: int, frame: object) -> None:
        self.pending = True
        if self.killer is not None:
            self.killer.reload_requested = True


def settings_from(args: Sequence[str]) -> Settings:
    """The config file's settings, then the command line's: what SIGHUP re-reads.
    Raises ConfigError or UsageError (naming the file) instead of exiting."""
    full, conf = config.argv_with_config(args)
    try:
        return parse_settings(full, exit_on_error=False)
    except UsageError as e:
        raise UsageError(f"{conf.path}: {e}") from None


def run(settings: Settings, stopper: Stopper, reloader: Optional[Reloader] = None,
        args: Sequence[str] = ()) -> int:
    if not has_bpf_privileges(effective_caps()):
        return fail("need root, or CAP_BPF and CAP_PERFMON: run it with sudo")
    # Imported here so --help, --version and bad arguments never touch libbpf.
    from oomkiller import loader
    from oomkiller.bpflog import LibbpfLog

    def reread() -> Settings:
        try:
            return settings_from(args)
        except (config.ConfigError, UsageError) as e:
            raise loader.ReloadRefused(str(e)) from None

    lock = instance.InstanceLock()
    try:
        lock.acquire()
    except instance.AlreadyRunning as e:
        return fail(f"already running, pid {e.pid or 'unknown'}: stop it first")
    except OSError as e:
        return fail(f"cannot take the lock {lock.path}: {e.strerror}: run it as root")
    try:
        instance.remove_stale()  # only now: a running killer's pins are its own
        return _run_locked(settings, stopper, reloader, reread, loader, LibbpfLog)
    finally:
        lock.release()


def _run_locked(settings, stopper, reloader, reread, loader, LibbpfLog) -> int:
    try:
        log = LibbpfLog(settings.verbose)
        log.install()
        with loader.Killer(settings, log, reread=reread) as killer:
            stopper.killer = killer
            killer.setup()
            stopper.raising = False
            if stopper.requested:
                return EXIT_OK
            killer.stop_requested = False
            killer.msg.line(journal.INFO, describe.ready_line(killer))
            killer.notify.ready(describe.status_line(killer))
            if reloader is not None:
                reloader.killer = killer
                killer.reload_requested = reloader.pending
            killer.poll()
            if killer.output_closed:
                # Nobody reads our events any more; keep interpreter exit quiet.
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except KeyboardInterrupt:
        return EXIT_OK
    except (loader.SetupError, LibraryMissing) as e:
        return fail(str(e))
    except OSError as e:
        if settings.verbose:
            traceback.print_exc()
        return fail(f"{e.strerror or e}: run with -v for details")


def main(argv: Optional[Sequence[str]] = None) -> NoReturn:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["status"]:
        sys.exit(status.main(args[1:]))
    # First thing: a stop request at any point of setup means a clean exit 0.
    stopper = Stopper()
    reloader = Reloader()
    old = {sig: signal.signal(sig, stopper) for sig in (signal.SIGINT, signal.SIGTERM)}
    old[signal.SIGHUP] = signal.signal(signal.SIGHUP, reloader)
    try:
        parse_settings(args)  # the command line alone first: --help, --version, its errors
        try:
            settings = settings_from(args)
        except (config.ConfigError, UsageError) as e:
            sys.exit(fail(str(e), EXIT_USAGE))
        code = run(settings, stopper, reloader, args)
    except KeyboardInterrupt:
        code = EXIT_OK
    except SystemExit:
        raise
    except Exception as e:  # noqa: BLE001 - never a traceback for the user
        if any(a == "--verbose" or (a.startswith("-v") and set(a[1:]) == {"v"}) for a in args):
            traceback.print_exc()
        code = fail(f"internal error: {type(e).__name__}: {e}: run with -v and report it")
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
    sys.exit(code)
