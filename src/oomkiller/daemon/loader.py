"""The daemon: the live generation, memory ticks and sweeps, events, reload.

The loader holds no policy: it copies settings into `.rodata`, picks program
variants (families.py), samples memory on a timer so the BPF side can read
si_meminfo(), runs the `sweep` program after each sample, and prints events.
Every program and link is an fd held by this process (only maps are pinned,
for `oomkiller status`), so nothing stays attached once it dies, even by
SIGKILL. SIGHUP reloads the settings without a gap (reload()).
"""

from __future__ import annotations

import ctypes
import datetime
import os
import sys
import time
from typing import Callable, Optional, TextIO

from oomkiller import __version__
from oomkiller.bpf import _libbpf, abi, families, handover, objsource, procmap, tracefs
from oomkiller.bpf.bpflog import LibbpfLog
from oomkiller.bpf.generation import (AttachFailed, Generation, LoadFailed,  # noqa: F401
                                      SetupError, Source)
from oomkiller.bpf.libprobes import RandProbes
from oomkiller.bpf.livestats import LiveStats, LossWatch
from oomkiller.bpf.probe import KernelProbe
from oomkiller.config.settings import Settings
from oomkiller.daemon import instance
from oomkiller.daemon.eventout import EventStream
from oomkiller.messages import Messages, fileno
from oomkiller.outputs import describe, journal, sdnotify
from oomkiller.outputs.journald import JournalSender
from oomkiller.outputs.metrics import Exporter
from oomkiller.outputs.snapshot import Snapshot, families_in_use

# Poll at most this long at once, so a signal that lands just before
# epoll_wait() still stops us promptly even with a long --interval.
MAX_POLL_MS = 1000


class ReloadRefused(Exception):
    """The new settings can't be read; the running policy stays (one line)."""


def first_generation(lib: ctypes.CDLL, source: Source, settings: Settings,
                     probe: KernelProbe, say: Callable[[str], None]) -> tuple[Generation, families.Plan]:
    """Generation 0, loaded and attached, and the plan of families it uses.
    Whatever fails, no half-loaded generation is left behind."""
    gen = Generation(lib, source, settings, 0, say)
    try:
        too_old = probe.floor()
        if too_old:
            raise SetupError(too_old)
        progs = gen.programs()
        try:
            plan = families.make_plan(progs, settings.attach, probe)
        except families.FamilyUnavailable as e:
            hint = "use --attach auto" if settings.attach != "auto" else "see --attach"
            raise SetupError(f"{e}: {hint}") from None
        for note in plan.notes:
            say(note)
        try:
            gen.load_and_attach(plan)
            return gen, plan
        except (LoadFailed, AttachFailed) as e:
            if settings.attach != "auto" or plan.all_tracepoint:
                raise
            failure = e
    except BaseException:
        gen.close()
        raise
    # A family can pass the probes and still fail on the full mix (e.g. a
    # verifier difference): fall back once, to the baseline.
    gen.close()
    say(f"{failure}; falling back to the tracepoint family")
    gen = Generation(lib, source, settings, 0, say)
    try:
        try:
            plan = families.tracepoint_plan(progs, probe)
        except families.FamilyUnavailable as fe:
            raise SetupError(f"{failure}; and {fe}") from None
        gen.load_and_attach(plan)
    except BaseException:
        gen.close()
        raise
    return gen, plan


class Killer:
    """One loaded, attached oomkiller. Use as a context manager: __exit__ (and
    close()) tears down whatever exists, in reverse, however far setup got."""

    def __init__(self, settings: Settings, log: LibbpfLog,
                 out: TextIO = sys.stdout, err: TextIO = sys.stderr,
                 reread: Optional[Callable[[], Settings]] = None) -> None:
        self.s = settings
        self.reread = reread  # SIGHUP: the settings as the config file now says
        self.log = log
        self.out = out
        self.lib = _libbpf.libbpf()
        self.libc = _libbpf.libc()
        self.source: Optional[Source] = None
        self.gen: Optional[Generation] = None  # the live generation
        # The one a reload replaced (closed; its .policies name its events).
        self.prev_policies: Optional[Generation] = None
        self.plan: Optional[families.Plan] = None
        self.live = LiveStats(self.lib)
        self.events: Optional[EventStream] = None
        self._sysinfo_buf = ctypes.create_string_buffer(256)  # struct sysinfo is 112 bytes
        self.stop_requested = False
        self.reload_requested = False
        self.pins = instance.Pins(self.lib)
        self.started = datetime.datetime.now().astimezone()
        self.msg = Messages(err, settings.verbose)
        self.losses = LossWatch(settings.capacity, self.warn, self.say)
        self.notify = sdnotify.Notifier()  # systemd's, under Type=notify; else silent
        self.metrics = Exporter(None, None)  # setup() opens the one the settings ask for
        self.skipped_before: dict[str, int] = {}  # skipped runs of replaced generations' programs
        self.snap: Optional[Snapshot] = None  # the last tick's
        self.rand = RandProbes(self.lib, self.warn, self.say)

    # -- messages ----------------------------------------------------------

    def note(self, priority: int, text: str) -> None:
        self.msg.note(priority, text)

    def say(self, text: str) -> None:
        """-v diagnostics."""
        self.msg.say(text)

    def warn(self, text: str) -> None:
        self.msg.warn(text)

    # -- lifecycle ---------------------------------------------------------

    def __enter__(self) -> "Killer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Reverse of setup; safe after a partial setup and when called again."""
        if self.gen is not None and self.live.mapped:
            self.release_holds()  # nobody stays stopped for a probe we will never attach
        if self.pins.active:
            self.pins.remove()
            instance.remove_state()
        if self.events is not None:
            self.events.close()
            self.events = None
        self.live.close()
        if self.gen is not None:
            self.gen.close()
            self.gen = None
        self.rand.close()
        self.notify.close()
        self.metrics.close()

    @property
    def generation(self) -> int:
        """cfg.generation of the generation in force."""
        return self.gen.number if self.gen is not None else 0

    def setup(self) -> None:
        """open -> configure -> load -> attach -> ring buffer -> first sample."""
        self.source = objsource.locate(self.lib)
        try:
            mounted = tracefs.ensure_mounted()
        except OSError as e:
            raise SetupError(f"cannot mount tracefs on {tracefs.TRACEFS} ({e.strerror}): "
                             "mount it (mount -t tracefs tracefs /sys/kernel/tracing)") from None
        if mounted:
            self.say(mounted)
        probe = KernelProbe(lambda: self.source.open(self.lib), self.log, self.say)
        try:
            self.gen, plan = first_generation(self.lib, self.source, self.s, probe, self.say)
        finally:
            probe.close()
        self.plan = plan
        try:
            self.rand.start(self.gen)
        except OSError as e:
            raise SetupError(f"cannot attach the rand() uprobe: {e.strerror}: "
                             "run with -v for libbpf's log") from None
        self.metrics = Exporter(self.s.metrics_file, self.s.metrics_listen)
        if self.notify.watchdog_interval and self.s.interval >= 2 * self.notify.watchdog_interval:
            self.warn(f"--interval {self.s.interval:g} is not shorter than the unit's WatchdogSec "
                      f"({2 * self.notify.watchdog_interval:g}s): systemd will restart oomkiller; "
                      "raise WatchdogSec= (systemctl edit oomkiller)")
        self._start_io()
        self.tick(first=True)
        self.publish()

    @property
    def output_closed(self) -> bool:
        """Our stdout's reader went away (a broken pipe)."""
        return self.events is not None and self.events.closed_output

    @property
    def stats(self) -> abi.OomkStats:
        """A snapshot of the BPF side's `stats`."""
        return self.live.read()

    def snapshot(self, misses: Optional[dict[str, int]] = None) -> Snapshot:
        """What the outputs render, frozen now (snapshot.py). `misses`: this
        generation's skipped runs per program, if the caller just read them."""
        assert self.gen is not None and self.plan is not None
        if misses is None:
            misses = self.gen.recursion_misses_by_program()
        before = self.skipped_before
        return Snapshot(
            stats=self.stats,
            settings=self.s,
            generation=self.generation,
            started=self.started,
            families=families_in_use(self.plan, self.gen.loaded),
            kernel_notes=tuple(self.plan.kernel_notes()),
            rules_off=dict(self.plan.rules_off),
            skipped={n: misses.get(n, 0) + before.get(n, 0) for n in set(misses) | set(before)},
            event_counts=dict(self.events.counts) if self.events is not None else {},
            offsets=self.gen.offsets(),
            pid=os.getpid(),
            version=__version__,
        )

    def _start_io(self) -> None:
        """After the first load: our view of stats, and the ring buffer."""
        assert self.gen is not None
        self.live.map(self.gen)
        to_journal = journal.connected(fileno(self.out))
        self.events = EventStream(self.lib, self.gen.map_fd("events"), self.out, self.s.json,
                                  to_journal, self.warn, JournalSender() if to_journal else None,
                                  self.policy_name)

    def policy_name(self, generation: int, index: int) -> str:
        """The name of policy `index` as generation `generation` numbered them:
        an event can come from the generation a reload just replaced."""
        for gen in (self.gen, self.prev_policies):
            if gen is not None and gen.number == generation and index < len(gen.policies):
                return gen.policies[index].name
        return f"#{index}"

    # -- publishing for `oomkiller status` -----------------------------------

    def publish(self) -> None:
        """Pin the maps (never programs or links) and write the state file
        from the last tick's snapshot. A failure costs only `oomkiller
        status`: warn and run on."""
        assert self.snap is not None
        try:
            if not self.pins.active:
                self.pins.create()
                self.pins.pin("procs", self.gen.map_fd("procs"))
                self.pins.pin("stats", self.lib.bpf_map__fd(self.gen.internal_map(".bss")))
                self.pins.pin("holds", self.gen.map_fd("holds"))  # for resume_left()
            self.pins.pin("config", self.lib.bpf_map__fd(self.gen.internal_map(".rodata")))
            instance.write_state(describe.state(self.snap))
        except (instance.PinError, OSError) as e:
            what = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            self.warn(f"{what}: `oomkiller status` will not see this killer")

    # -- reload (SIGHUP) ------------------------------------------------------

    def reload(self) -> bool:
        """Load the next generation on the same maps, make it live with one
        store to active_gen, detach the old one (docs/DESIGN.md), and tick.
        On any failure the old generation stays in force, untouched, and
        False is returned. systemd hears RELOADING=1, then READY=1 either way."""
        self.notify.reloading()
        try:
            return self._reload()
        finally:
            assert self.snap is not None
            self.notify.ready(describe.status_line(self.snap))

    def _reload(self) -> bool:
        assert self.reread is not None and self.plan is not None
        try:
            new = self.reread()
        except ReloadRefused as e:
            self.warn(f"cannot reload: {e}: keeping the current policy")
            return False
        if new.capacity != self.s.capacity:
            self.warn(f"--capacity {new.capacity} needs a restart (the process map is "
                      f"kept across reloads): keeping {self.s.capacity}")
            new.capacity = self.s.capacity
        for what in ("attach", "metrics_listen"):
            if getattr(new, what) != getattr(self.s, what):
                self.warn(f"--{what.replace('_', '-')} {getattr(new, what)} needs a restart: "
                          f"keeping {getattr(self.s, what)}")
                setattr(new, what, getattr(self.s, what))
        assert self.gen is not None and self.source is not None
        self.log.verbose = new.verbose
        try:
            nxt = Generation(self.lib, self.source, new, self.gen.number + 1, self.say)
        except SetupError as e:
            self.log.verbose = self.s.verbose
            self.warn(f"cannot reload: {e}: keeping the current policy")
            return False
        try:
            nxt.load_and_attach(self.plan, reuse=self.gen.shared_fds())
            self.rand.start(nxt)
            nxt.activate()
        except (SetupError, OSError) as e:
            what = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            nxt.close()
            self.log.verbose = self.s.verbose
            self.warn(f"cannot reload: {what}: keeping the current policy")
            return False
        # The new generation is live; the old one does nothing from here on.
        old, self.gen, self.s = self.gen, nxt, new
        self.prev_policies = old
        skipped = old.recursion_misses_by_program()
        for name, n in skipped.items():  # the metrics count them across reloads
            self.skipped_before[name] = self.skipped_before.get(name, 0) + n
        self.metrics.path = new.metrics_file
        self.msg.verbose = new.verbose
        old.close()
        self.losses.programs_replaced(skipped)
        self.live.map(self.gen)
        assert self.events is not None
        self.events.as_json = self.s.json
        # A tick now, not up to --interval later: if the new settings open
        # the gate (a lower min-used), a target condemned behind the closed
        # gate dies at this sweep (issue 17). It feeds the watchdog as any
        # tick that swept does; poll() counts the next interval from here.
        # Its snapshot is the new generation's: the state file, then the line.
        self.tick()
        if self.pins.active:
            self.publish()
        self.note(journal.INFO, f"reloaded: {describe.policies_text(self.s)}")
        return True

    def tick(self, first: bool = False) -> None:
        """One memory sample: our sysinfo() feeds si_meminfo()/sys_exit in BPF,
        then `sweep` kills condemned targets if that sample opened the gate."""
        before = self.stats.samples
        self.libc.sysinfo(self._sysinfo_buf)
        if first and self.stats.samples == before:
            raise SetupError("the BPF memory sampler did not run after sysinfo(): "
                             "run with -v and report this as a bug")
        swept = False
        try:
            handover.sweep(self.gen, self.plan.cfg_flags, self.warn)
            swept = True
        except OSError as e:
            self.warn(f"sweep failed: {e.strerror}")
        self.release_holds()  # a hold whose event was dropped waits at most a tick
        misses = self.gen.recursion_misses_by_program()  # one bpf_prog_info read each
        self.snap = snap = self.snapshot(misses)
        if swept:
            self.notify.tick(describe.status_line(snap))  # the watchdog hears only a tick that swept
        self.losses.check(snap.stats, misses)
        self.metrics.update(snap, self.warn)

    def sweep_now(self) -> None:
        """A kill was reported: if it was a tree's (scope = tree), its other
        members die at this sweep, not at the next tick (BPF set
        sweep_pending; otherwise the sweep returns at once)."""
        self.events.killed = False
        try:
            handover.sweep(self.gen, self.plan.cfg_flags, self.warn)
        except OSError as e:
            self.warn(f"sweep failed: {e.strerror}")

    def release_holds(self) -> None:
        """Probe what held targets map, and resume them (libprobes.py)."""
        if self.events is not None:
            self.events.held = False
        if self.gen is not None:
            st = self.stats
            if self.rand.pending(st):
                self.rand.release(self.gen, st)

    def poll(self) -> None:
        """Print events and sample memory every interval until asked to stop."""
        next_tick = time.monotonic() + self.s.interval
        while not self.stop_requested:
            if self.reload_requested:
                self.reload_requested = False
                if self.reread is not None and self.reload():
                    next_tick = time.monotonic() + self.s.interval  # the reload ticked
            interval = self.s.interval
            wait_ms = max(0, min(MAX_POLL_MS, int((next_tick - time.monotonic()) * 1000) + 1))
            self.events.poll(wait_ms)
            if self.events.closed_output:
                break
            if self.events.held:
                self.release_holds()
            if self.events.killed:
                self.sweep_now()
            now = time.monotonic()
            if now >= next_tick and not self.stop_requested:
                self.tick()
                next_tick += interval
                if next_tick <= now:  # we fell behind (e.g. suspended): don't burst
                    next_tick = now + interval
        self.notify.stopping()
        self.events.drain()
        if self.s.verbose:  # the last snapshot, after the drain, and one walk of procs
            assert self.gen is not None
            procs = procmap.walk(self.lib, self.gen.map_fd("procs"), self.s.capacity)
            self.say(describe.summary(self.snapshot(), procs))
