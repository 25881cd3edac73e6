"""The BPF side's `stats`, read live, and the warnings its loss counters raise."""

from __future__ import annotations

import ctypes
import mmap
from typing import Callable, Optional

from oomkiller import abi
from oomkiller.generation import Generation


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

    def read(self) -> abi.OomkStats:
        """A snapshot."""
        assert self._bss is not None
        return abi.OomkStats.from_buffer_copy(self._bss, self._offset)

    def close(self) -> None:
        if self._bss is not None:
            self._bss.close()
            self._bss = None


class LossWatch:
    """Warns once per tick about counts the BPF side could not keep: each
    counter is compared with its value at the previous tick."""

    def __init__(self, capacity: int, warn: Callable[[str], None], say: Callable[[str], None]) -> None:
        self.capacity = capacity
        self._warn = warn
        self._say = say
        self._last: dict[str, int] = {}

    def _grew(self, name: str, now: int) -> int:
        grew = now - self._last.get(name, 0)
        self._last[name] = now
        return grew if grew > 0 else 0

    def programs_replaced(self) -> None:
        """A reload: the new programs count their skipped runs from zero."""
        self._last.pop("missed", None)

    def check(self, st: abi.OomkStats, missed: int) -> None:
        if n := self._grew("kill_failed", st.kill_failed):
            self._warn(f"the kernel refused {n} SIGKILLs: "
                       "those processes stay condemned and are tried again")
        if n := self._grew("untracked_threads", st.untracked_threads):
            self._warn(f"{n} target threads not tracked: "
                       f"thread map full (2 x capacity {self.capacity})")
        if n := self._grew("dropped", st.dropped):
            self._warn(f"{n} events dropped (ring buffer full)")
        if n := self._grew("untracked", st.untracked):
            self._warn(f"{n} target events not tracked: "
                       f"process map full (capacity {self.capacity})")
        # Trampolines (fentry) always, and tracepoints on 7.x, run BPF with
        # preemption on: a run preempted on a CPU makes the kernel skip the
        # same program's next run there. Counts come from the kernel's own
        # counters at the next checkpoint, and the hooks whose skip would
        # lose a count have twins (docs/DESIGN.md): say so, once, under -v.
        if n := self._grew("missed", missed):
            self._say(f"the kernel skipped {n} hook runs "
                      "(recursion guard); counts are caught up at the next checkpoint")
