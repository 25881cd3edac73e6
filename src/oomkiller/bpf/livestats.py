"""The BPF side's `stats`, read live, and the warnings its loss counters raise."""

from __future__ import annotations

import ctypes
import mmap
import time
from typing import Callable, Optional

from oomkiller.bpf import abi, families
from oomkiller.bpf.generation import Generation


class LiveStats:
    """Our own read-only mmap of the kernel's `.bss` map. libbpf 1.1 remaps
    bpf_map__initial_value() onto the map only for skeletons
    (bpf_object__load_skeleton); after bpf_object__load it stays a stale
    private copy. The `.bss` map is shared by every generation, but each
    generation has its own fd: map() again after a reload."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._lib = lib
        self._bss: Optional[mmap.mmap] = None
        self._offset = 0

    def map(self, gen: Generation) -> None:
        self.close()
        m, offset, value_size = gen.locate(".bss", "stats", abi.OomkStats)
        length = -(-value_size // mmap.PAGESIZE) * mmap.PAGESIZE
        self._bss = mmap.mmap(self._lib.bpf_map__fd(m), length, mmap.MAP_SHARED, mmap.PROT_READ)
        self._offset = offset

    @property
    def mapped(self) -> bool:
        return self._bss is not None

    def read(self) -> abi.OomkStats:
        """A snapshot."""
        assert self._bss is not None
        return abi.OomkStats.from_buffer_copy(self._bss, self._offset)

    def close(self) -> None:
        if self._bss is not None:
            self._bss.close()
            self._bss = None


# Skipped runs are warned about at most this often (seconds); the runs
# skipped in between are summed into the next warning, none dropped.
SKIP_WARN_PERIOD = 60.0


def counts(program: str) -> bool:
    """Whether a run of `program` is a checkpoint (counts), not only a
    memory sample (`fx_mem_*`, `kp_mem_*`: a skip there costs at most one
    reading of the gate, taken again at the next tick)."""
    variant = families.Prog(program, "").variant
    return variant is None or variant[1] != "mem"


class LossWatch:
    """Warns once per tick about counts the BPF side could not keep: each
    counter is compared with its value at the previous tick. Skipped runs
    of counting programs are warned about at most once per SKIP_WARN_PERIOD."""

    def __init__(self, capacity: int, warn: Callable[[str], None], say: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = capacity
        self._warn = warn
        self._say = say
        self._clock = clock
        self._last: dict[str, int] = {}
        self._skips_seen: dict[str, int] = {}     # per program: its total at the last look
        self._skips_untold: dict[str, int] = {}   # per program: skipped since the last warning
        self._skips_since = clock()               # when the untold runs began to add up
        self._skips_warned: Optional[float] = None

    def _grew(self, name: str, now: int) -> int:
        grew = now - self._last.get(name, 0)
        self._last[name] = now
        return grew if grew > 0 else 0

    def _add_skips(self, missed: dict[str, int]) -> None:
        for program, total in missed.items():
            grew = total - self._skips_seen.get(program, 0)
            self._skips_seen[program] = total
            if grew > 0:
                self._skips_untold[program] = self._skips_untold.get(program, 0) + grew

    def programs_replaced(self, final: dict[str, int]) -> None:
        """A reload: `final` is what the old programs skipped in all (read just
        before they closed); their runs skipped since the last tick are told
        with the next warning, and the new programs count from zero."""
        self._add_skips(final)
        self._skips_seen.clear()

    def check(self, st: abi.OomkStats, missed: dict[str, int]) -> None:
        """`missed`: the kernel's skipped runs in all, per attached program
        (bpf_prog_info.recursion_misses)."""
        if n := self._grew("kill_failed", st.kill_failed):
            self._warn(f"the kernel refused {n} SIGKILLs: "
                       "those processes stay condemned and are tried again")
        if n := self._grew("untracked_threads", st.untracked_threads):
            # thrs is an LRU: it drops its oldest record rather than refuse,
            # so a refusal is the update itself failing (no memory, or the
            # map's bucket lock busy on this CPU).
            self._warn(f"{n} target thread records not made (the kernel refused the "
                       "map update): their writes and reads count from their next call")
        if n := self._grew("dropped", st.dropped):
            self._warn(f"{n} events dropped (ring buffer full)")
        if n := self._grew("untracked", st.untracked):
            self._warn(f"{n} target events not tracked: "
                       f"process map full (capacity {self.capacity})")
        self._add_skips(missed)
        self._tell_skips()

    def _tell_skips(self) -> None:
        # Trampolines (fentry) always, and tracepoints on 7.x, run BPF with
        # preemption on: a run preempted on a CPU makes the kernel skip the
        # same program's next run there (bpf_prog_info.recursion_misses).
        # Counts come from the kernel's own counters at the thread's next
        # checkpoint, and the hooks whose skip would lose a count have twins
        # (docs/DESIGN.md); but a kill can come that much later, so say it,
        # rate-limited, never losing a run from the sum. Not read: returns a
        # kretprobe missed with its instance pool full (its nmissed): libbpf
        # 1.1.2 has no call for it, and no kernel here has kprobes to test on.
        now = self._clock()
        if self._skips_warned is not None and now - self._skips_warned < SKIP_WARN_PERIOD:
            return
        told = {p: n for p, n in self._skips_untold.items() if counts(p)}
        samples = {p: n for p, n in self._skips_untold.items() if not counts(p)}
        if samples:
            self._say(f"the kernel skipped {_runs(samples)} (recursion guard): "
                      "if one was our own sample, the next tick samples again")
        self._skips_untold.clear()
        if not told:
            self._skips_since = now
            return
        self._warn(f"the kernel skipped {_runs(told)} in the last "
                   f"{max(1, round(now - self._skips_since))} s (recursion guard): "
                   "a skipped run's checkpoint waits for the thread's next one, "
                   "where its counts are caught up (a kill can come that much later)")
        self._skips_warned = self._skips_since = now


def _runs(by_program: dict[str, int]) -> str:
    """`37 runs of tp_sys_exit, 2 of on_exit`, most first."""
    ranked = sorted(by_program.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{n} run{'s' if n != 1 else ''} of {p}" if i == 0 else f"{n} of {p}"
                     for i, (p, n) in enumerate(ranked))
