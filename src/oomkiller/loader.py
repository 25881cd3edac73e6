"""Open -> configure -> load -> attach -> first sample -> poll; teardown in reverse.

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
import errno
import importlib.resources
import mmap
import os
import sys
import time
from ctypes import byref, sizeof
from pathlib import Path
from typing import Callable, Optional, TextIO

from oomkiller import (__version__, _libbpf, abi, events, families, instance, journal,
                       procmap, tracefs)
from oomkiller._libbpf import BpfObject, RingBuffer
from oomkiller.bpflog import LibbpfLog
from oomkiller.generation import (AttachFailed, Generation, LoadFailed, SetupError,  # noqa: F401
                                  Source, iter_programs)
from oomkiller.messages import Messages, fileno
from oomkiller.settings import Settings
from oomkiller.sizes import format_size

OBJ_NAME = "oomkiller.bpf.o"
DEFAULT_BTF = "/sys/kernel/btf/vmlinux"
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"
KPROBE_EVENTS = ("/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events")
# Poll at most this long at once, so a signal that lands just before
# epoll_wait() still stops us promptly even with a long --interval.
MAX_POLL_MS = 1000


class ReloadRefused(Exception):
    """The new settings can't be read; the running policy stays (one line)."""


# ---------------------------------------------------------------------------
# Inputs: the object and kernel BTF

def read_object() -> tuple[bytes, str]:
    """The compiled BPF object and where it came from."""
    override = os.environ.get("OOMKILLER_BPF_OBJ")
    if override:
        try:
            return Path(override).read_bytes(), override
        except OSError as e:
            raise SetupError(f"cannot read BPF object {override}: {e.strerror}: "
                             "check OOMKILLER_BPF_OBJ") from None
    try:  # package data, also inside the zipapp
        return importlib.resources.files("oomkiller").joinpath(OBJ_NAME).read_bytes(), OBJ_NAME
    except (OSError, ModuleNotFoundError):
        pass
    src_tree = Path(__file__).resolve().parents[2] / "build" / OBJ_NAME
    try:
        return src_tree.read_bytes(), str(src_tree)
    except OSError:
        raise SetupError(f"BPF object {OBJ_NAME} not found: run make") from None


def btf_path() -> tuple[str, bool]:
    """(path, custom): kernel BTF for CO-RE; custom if OOMKILLER_BTF set it."""
    custom = os.environ.get("OOMKILLER_BTF")
    path = custom or DEFAULT_BTF
    if not os.path.exists(path):
        if custom:
            raise SetupError(f"no kernel BTF at {path}: fix OOMKILLER_BTF or unset it")
        raise SetupError(f"no kernel BTF at {path}: boot a kernel built with CONFIG_DEBUG_INFO_BTF=y")
    return path, bool(custom)


# ---------------------------------------------------------------------------
# Probing what the kernel offers

class KernelProbe:
    """families.Probe for the running kernel; each answer computed once."""

    def __init__(self, opener: Callable[[], BpfObject], log: LibbpfLog, say: Callable[[str], None]):
        self._open = opener
        self._log = log
        self._say = say
        self._btf_funcs: dict[str, bool] = {}
        self._vmlinux: Optional[_libbpf.Btf] = None
        self._kallsyms: Optional[set[str]] = None
        self._fentry: Optional[tuple[Optional[str]]] = None

    def kprobe_ok(self) -> Optional[str]:
        if os.path.isdir(KPROBE_PMU) or any(os.path.exists(p) for p in KPROBE_EVENTS):
            return None
        return "the kernel has no kprobes (CONFIG_KPROBES unset)"

    def in_kallsyms(self, func: str) -> bool:
        if self._kallsyms is None:
            names = set()
            try:
                with open("/proc/kallsyms", encoding="ascii", errors="replace") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 3 and parts[1] in "tTwW":
                            names.add(parts[2])
            except OSError:
                pass
            self._kallsyms = names
        return func in self._kallsyms

    def file_id(self, path: str) -> Optional[tuple[int, int]]:
        try:
            st = os.stat(path)
        except OSError:
            return None
        return st.st_dev, st.st_ino

    def in_btf(self, func: str) -> bool:
        if func not in self._btf_funcs:
            lib = _libbpf.libbpf()
            if self._vmlinux is None:
                try:
                    self._vmlinux = lib.btf__load_vmlinux_btf()
                except OSError:
                    return False
            try:
                lib.btf__find_by_name_kind(self._vmlinux, func.encode(), _libbpf.BTF_KIND_FUNC)
                self._btf_funcs[func] = True
            except OSError:
                self._btf_funcs[func] = False
        return self._btf_funcs[func]

    def fentry_ok(self, prog: families.Prog) -> Optional[str]:
        """Load one trampoline program in a throwaway instance of the object:
        only loading tells whether the kernel allows trampolines (lockdown or
        a kernel without CONFIG_DYNAMIC_FTRACE_WITH_DIRECT_CALLS refuses them)."""
        if self._fentry is None:
            self._say(f"probing fentry: loading {prog.name} alone")
            lib = _libbpf.libbpf()
            obj = BpfObject()
            why: Optional[str] = None
            try:
                obj = self._open()
                for p in iter_programs(lib, obj):
                    lib.bpf_program__set_autoload(p, lib.bpf_program__name(p).decode() == prog.name)
                procs = lib.bpf_object__find_map_by_name(obj, b"procs")
                if procs:
                    lib.bpf_map__set_max_entries(procs, 1)
                lib.bpf_object__load(obj)
            except OSError as e:
                why = (f"BPF trampolines refused: {prog.section} does not load "
                       f"({e.strerror})")
            finally:
                if obj:
                    lib.bpf_object__close(obj)
            self._log.lines.clear()  # the probe's failure isn't the user's problem
            self._fentry = (why,)
        return self._fentry[0]

    def close(self) -> None:
        if self._vmlinux:
            _libbpf.libbpf().btf__free(self._vmlinux)
            self._vmlinux = None


# ---------------------------------------------------------------------------

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
        self.rb = RingBuffer()
        self.plan: Optional[families.Plan] = None
        self._bss: Optional[mmap.mmap] = None
        self._stats_offset = 0
        self.offset_ns = events.boot_to_realtime_offset_ns()
        self._sample_cb = _libbpf.RingBufferSampleFn(self._on_event)  # kept alive here
        self._last_dropped = 0
        self._last_untracked = 0
        self._last_missed = 0
        self._last_failed = 0
        self._last_untracked_thr = 0
        self._sysinfo_buf = ctypes.create_string_buffer(256)  # struct sysinfo is 112 bytes
        self.stop_requested = False
        self.reload_requested = False
        self.output_closed = False
        self.pins = instance.Pins(self.lib)
        self.started = datetime.datetime.now().astimezone()
        self.journal_out = journal.connected(fileno(out))
        self.msg = Messages(err, settings.verbose)

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
        if self.pins.active:
            self.pins.remove()
            instance.remove_state()
        if self.rb:
            self.lib.ring_buffer__free(self.rb)
            self.rb = RingBuffer()
        if self._bss is not None:
            self._bss.close()
            self._bss = None
        if self.gen is not None:
            self.gen.close()
            self.gen = None

    @property
    def generation(self) -> int:
        """cfg.generation of the generation in force."""
        return self.gen.number if self.gen is not None else 0

    def setup(self) -> None:
        """open -> configure -> load -> attach -> ring buffer -> first sample."""
        data, origin = read_object()
        path, custom = btf_path()
        self.source = Source(data, origin, path if custom else None)
        if custom:
            # libbpf reads a custom BTF only inside bpf_object__load, and a
            # bad one would then look like a bad object: check it first.
            try:
                self.lib.btf__free(self.lib.btf__parse(path.encode(), None))
            except OSError as e:
                raise SetupError(f"OOMKILLER_BTF={path} is not usable BTF "
                                 f"({e.strerror or 'unreadable'}): fix it or unset it") from None
        try:
            mounted = tracefs.ensure_mounted()
        except OSError as e:
            raise SetupError(f"cannot mount tracefs on {tracefs.TRACEFS} ({e.strerror}): "
                             "mount it (mount -t tracefs tracefs /sys/kernel/tracing)") from None
        if mounted:
            self.say(mounted)
        source = self.source
        probe = KernelProbe(lambda: source.open(self.lib), self.log, self.say)
        try:
            self.gen = Generation(self.lib, source, self.s, 0, self.say)
            progs = self.gen.programs()
            try:
                plan = families.make_plan(progs, self.s.attach, probe)
            except families.FamilyUnavailable as e:
                hint = "use --attach auto" if self.s.attach != "auto" else "see --attach"
                raise SetupError(f"{e}: {hint}") from None
            for note in plan.notes:
                self.say(note)
            try:
                self.gen.load_and_attach(plan)
            except (LoadFailed, AttachFailed) as e:
                if self.s.attach != "auto" or plan.all_tracepoint:
                    raise
                # A family can pass the probes and still fail on the full mix
                # (e.g. a verifier difference): fall back once, to the baseline.
                self.say(f"{e}; falling back to the tracepoint family")
                self.gen.close()
                self.gen = Generation(self.lib, source, self.s, 0, self.say)
                try:
                    plan = families.tracepoint_plan(progs, probe)
                except families.FamilyUnavailable as fe:
                    raise SetupError(f"{e}; and {fe}") from None
                self.gen.load_and_attach(plan)
        finally:
            probe.close()
        self.plan = plan
        self._start_io()
        self.tick(first=True)
        self.publish()

    def _map_live(self, section: str, var: str, ctype: type) -> None:
        """After load: mmap the kernel's copy of `section` ourselves. libbpf
        1.1 remaps bpf_map__initial_value() onto the map only for skeletons
        (bpf_object__load_skeleton); after bpf_object__load it stays a stale
        private copy."""
        assert self.gen is not None
        m, offset, value_size = self.gen.locate(section, var, ctype)
        fd = self.lib.bpf_map__fd(m)
        length = -(-value_size // mmap.PAGESIZE) * mmap.PAGESIZE
        self._bss = mmap.mmap(fd, length, mmap.MAP_SHARED, mmap.PROT_READ)
        self._stats_offset = offset

    @property
    def stats(self) -> abi.OomkStats:
        """A snapshot of the BPF side's `stats`."""
        assert self._bss is not None
        return abi.OomkStats.from_buffer_copy(self._bss, self._stats_offset)

    def _start_io(self) -> None:
        """After the first load: our view of stats, and the ring buffer."""
        self._map_live(".bss", "stats", abi.OomkStats)
        assert self.gen is not None
        # The events map is shared by every generation: the ring buffer
        # (its own mmap of the map) outlives the generation it came from.
        self.rb = self.lib.ring_buffer__new(self.gen.map_fd("events"), self._sample_cb, None, None)

    # -- publishing for `oomkiller status` -----------------------------------

    def publish(self) -> None:
        """Pin the maps (never programs or links) and write the state file.
        A failure costs only `oomkiller status`: warn and run on."""
        try:
            if not self.pins.active:
                self.pins.create()
                self.pins.pin("procs", self.gen.map_fd("procs"))
                self.pins.pin("stats", self.lib.bpf_map__fd(self.gen.internal_map(".bss")))
            self.pins.pin("config", self.lib.bpf_map__fd(self.gen.internal_map(".rodata")))
            instance.write_state(self.state())
        except (instance.PinError, OSError) as e:
            what = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            self.warn(f"{what}: `oomkiller status` will not see this killer")

    def state(self) -> dict:
        """What `oomkiller status` needs besides the maps: STATE_PATH."""
        assert self.plan is not None and self.gen is not None
        fams = dict(self.plan.families)
        fams["rand"] = families.FIXED["rand"]
        return {
            "pid": os.getpid(),
            "version": __version__,
            "started": self.started.isoformat(timespec="seconds"),
            "generation": self.generation,
            "families": fams,
            "policy": self.s.policy_text(),
            "capacity": self.s.capacity,
            "interval": self.s.interval,
            "offsets": self.gen.offsets(),
        }

    # -- reload (SIGHUP) ------------------------------------------------------

    def reload(self) -> None:
        """Load the next generation on the same maps, make it live with one
        store to active_gen, then detach the old one (docs/DESIGN.md). On any
        failure the old generation stays in force, untouched."""
        assert self.reread is not None and self.plan is not None
        try:
            new = self.reread()
        except ReloadRefused as e:
            self.warn(f"cannot reload: {e}: keeping the current policy")
            return
        if new.capacity != self.s.capacity:
            self.warn(f"--capacity {new.capacity} needs a restart (the process map is "
                      f"kept across reloads): keeping {self.s.capacity}")
            new.capacity = self.s.capacity
        if new.attach != self.s.attach:
            self.warn(f"--attach {new.attach} needs a restart: keeping the families in use")
            new.attach = self.s.attach
        assert self.gen is not None and self.source is not None
        self.log.verbose = new.verbose
        try:
            nxt = Generation(self.lib, self.source, new, self.gen.number + 1, self.say)
        except SetupError as e:
            self.log.verbose = self.s.verbose
            self.warn(f"cannot reload: {e}: keeping the current policy")
            return
        try:
            nxt.load_and_attach(self.plan, reuse=self.gen.shared_fds())
            nxt.activate()
        except (SetupError, OSError) as e:
            what = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
            nxt.close()
            self.log.verbose = self.s.verbose
            self.warn(f"cannot reload: {what}: keeping the current policy")
            return
        # The new generation is live; the old one does nothing from here on.
        old, self.gen, self.s = self.gen, nxt, new
        self.msg.verbose = new.verbose
        old.close()
        self._last_missed = 0  # new programs count their misses from zero
        if self._bss is not None:
            self._bss.close()
            self._bss = None
        self._map_live(".bss", "stats", abi.OomkStats)
        if self.pins.active:
            self.publish()
        self.note(journal.INFO, f"reloaded: {self.s.policy_text()}")

    def tick(self, first: bool = False) -> None:
        """One memory sample: our sysinfo() feeds si_meminfo()/sys_exit in BPF,
        then `sweep` kills condemned targets if that sample opened the gate."""
        before = self.stats.samples
        self.libc.sysinfo(self._sysinfo_buf)
        if first and self.stats.samples == before:
            raise SetupError("the BPF memory sampler did not run after sysinfo(): "
                             "run with -v and report this as a bug")
        opts = _libbpf.BpfTestRunOpts()
        opts.sz = sizeof(opts)
        try:
            self.lib.bpf_prog_test_run_opts(self.gen.sweep_fd, byref(opts))
        except OSError as e:
            self.warn(f"sweep failed: {e.strerror}")
        self._check_losses()

    def _check_losses(self) -> None:
        st = self.stats
        dropped, untracked = st.dropped, st.untracked
        failed, lost_thr = st.kill_failed, st.untracked_threads
        if failed > self._last_failed:
            self.warn(f"the kernel refused {failed - self._last_failed} SIGKILLs: "
                      "those processes stay condemned and are tried again")
        if lost_thr > self._last_untracked_thr:
            self.warn(f"{lost_thr - self._last_untracked_thr} target threads not tracked: "
                      f"thread map full (2 x capacity {self.s.capacity})")
        self._last_failed, self._last_untracked_thr = failed, lost_thr
        if dropped > self._last_dropped:
            self.warn(f"{dropped - self._last_dropped} events dropped (ring buffer full)")
        if untracked > self._last_untracked:
            self.warn(f"{untracked - self._last_untracked} target events not tracked: "
                      f"process map full (capacity {self.s.capacity})")
        self._last_dropped, self._last_untracked = dropped, untracked
        # Trampolines (fentry) always, and syscall tracepoints on 7.x, run
        # BPF with preemption on: a run preempted on a CPU makes the kernel
        # skip the same program's next run there. Writes and reads are
        # folded from the kernel's own counters at the next checkpoint, so
        # this delays a check and loses no count: say so, once, under -v.
        missed = self.gen.recursion_misses()
        if missed > self._last_missed:
            self.say(f"the kernel skipped {missed - self._last_missed} hook runs "
                     "(recursion guard); counts are caught up at the next checkpoint")
        self._last_missed = missed

    def ready_line(self) -> str:
        assert self.plan is not None
        fams = " ".join(f"{src}={fam}" for src, fam in self.plan.families.items())
        fams += f" rand={families.FIXED['rand']}"
        used = self.stats.mem_used
        gate = "gate open" if self.stats.gate_open else "gate closed"
        return (f"oomkiller: ready: families {fams}; policy {self.s.policy_text()}; "
                f"memory used {format_size(used)} ({gate})")

    def tracked(self) -> tuple[int, int]:
        """(processes in `procs`, of which condemned): a -v summary at stop."""
        entries = procmap.walk(self.lib, self.gen.map_fd("procs"), self.s.capacity)
        return len(entries), sum(bool(p.condemned) for _, p in entries)

    def summary(self) -> str:
        st = self.stats
        count, condemned = self.tracked()
        return (f"stopping: {st.samples} samples, {st.kills} kills, {st.dry_runs} dry-runs, "
                f"{st.condemned} condemned, {st.kill_failed} kills refused, {st.sweeps} sweeps; tracking {count} "
                f"processes ({condemned} condemned)")

    def _on_event(self, ctx: int, data: int, size: int) -> int:
        # Runs inside ring_buffer__poll(): exceptions can't propagate through C.
        try:
            if size < sizeof(abi.OomkEvent):
                return 0
            ev = abi.OomkEvent.from_buffer_copy(ctypes.string_at(data, sizeof(abi.OomkEvent)))
            priority = journal.EVENT_PRIORITY.get(events.event_name(ev.kind), journal.NOTICE)
            self.out.write(journal.prefix(priority, self.journal_out)
                           + events.format_event(ev, self.offset_ns, self.s.json) + "\n")
            self.out.flush()
        except BrokenPipeError:
            self.output_closed = True
            self.stop_requested = True
        except Exception as e:  # noqa: BLE001
            self.warn(f"cannot print event: {e}")
        return 0

    def poll(self) -> None:
        """Print events and sample memory every interval until asked to stop."""
        next_tick = time.monotonic() + self.s.interval
        while not self.stop_requested:
            if self.reload_requested:
                self.reload_requested = False
                if self.reread is not None:
                    self.reload()
                next_tick = min(next_tick, time.monotonic() + self.s.interval)
            interval = self.s.interval
            wait_ms = max(0, min(MAX_POLL_MS, int((next_tick - time.monotonic()) * 1000) + 1))
            ret = self.lib.ring_buffer__poll(self.rb, wait_ms)
            if ret < 0 and ret != -errno.EINTR:  # EINTR: a signal woke us
                _libbpf.raise_errno(-ret, "ring_buffer__poll")
            now = time.monotonic()
            if now >= next_tick and not self.stop_requested:
                self.tick()
                next_tick += interval
                if next_tick <= now:  # we fell behind (e.g. suspended): don't burst
                    next_tick = now + interval
        if not self.output_closed:
            self.lib.ring_buffer__consume(self.rb)  # events already in flight
        if self.s.verbose:
            self.say(self.summary())
