"""Command line: subcommands, privileges, signals, exit codes. The options
themselves are options.py's.

Exit codes are part of the interface: 0 clean stop, 1 environment or runtime
failure, 2 bad usage. Every failure a user can cause is one stderr line
`oomkiller: <what happened>: <what to do>`, never a traceback.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import NoReturn, Optional, Sequence

from oomkiller.bpf import abi
from oomkiller.bpf._libbpf import LibraryMissing
from oomkiller.commands import check, selftest, status
from oomkiller.config import config
from oomkiller.config.options import build_parser, parse_settings, settings_from  # noqa: F401
from oomkiller.config.settings import Settings
from oomkiller.daemon import instance
from oomkiller.messages import EXIT_OK, EXIT_USAGE, UsageError, fail
from oomkiller.outputs import describe, journal
from oomkiller.privileges import effective_caps, has_bpf_privileges


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


def run(settings: Settings, stopper: Stopper, reloader: Optional[Reloader] = None,
        args: Sequence[str] = ()) -> int:
    if not has_bpf_privileges(effective_caps()):
        return fail("need root, or CAP_BPF and CAP_PERFMON: run it with sudo")
    # Imported here so --help, --version and bad arguments never touch libbpf.
    from oomkiller.bpf import libprobes
    from oomkiller.daemon import loader
    from oomkiller.bpf.bpflog import LibbpfLog

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
        # Only now: a running killer's pins are its own. One that died may
        # have left targets stopped for a probe (libprobes.py).
        libprobes.resume_left()
        instance.remove_stale()
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
            assert killer.snap is not None  # setup() ticked once
            killer.msg.line(journal.INFO, describe.ready_line(killer.snap))
            killer.notify.ready(describe.status_line(killer.snap))
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
    if args[:1] == ["check"]:
        sys.exit(check.main(args[1:]))
    if args[:1] == ["selftest"]:
        sys.exit(selftest.main(args[1:]))
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
