"""rand() in every file that defines it: the loader's half of the `libs` map.

BPF looks up each file a target maps for execution in `libs` and stops a
target that maps one never seen (`holds`, bpf/oomkiller.bpf.c). Here each
such file is read once: where it defines rand() the `on_rand` uprobe is
attached to it; then its entry is settled and the held process resumed.
The verdicts are BPF's (which file, whom to hold); this module only reads
symbols, attaches and resumes the process BPF stopped.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import signal
import sys
from ctypes import byref, c_uint32
from typing import Callable, Iterator, Optional, TextIO

from oomkiller.bpf import _libbpf, abi, elfsym
from oomkiller.bpf.generation import Generation
from oomkiller.daemon import instance
from oomkiller.messages import Messages

PROGRAM = "on_rand"
SYMBOL = "rand"
# Files with the uprobe, each an fd we keep (a reload attaches the next
# generation to it, and an unlinked old libc stays probeable): bounded, and
# the soft RLIMIT_NOFILE raised to fit them (systemd's default is 1024).
MAX_PROBED = 1024
CLK_TCK = os.sysconf("SC_CLK_TCK")

Key = tuple[int, int]  # BPF's oomk_file_id: (s_dev, i_ino) of the inode behind a mapping


# Filesystems whose mappings are backing files (FMODE_BACKING): /proc/PID/maps
# shows another inode than the one behind the mapping.
BACKING_FS = ("overlay", "fuse")


def own_libraries() -> Iterator[tuple[Key, str]]:
    """(key, map_files path) of each file we map for execution whose key
    /proc/self/maps shows truly: not on a filesystem of backing files."""
    backing = set()
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                fstype = fields[fields.index("-") + 1] if "-" in fields else ""
                if fstype.split(".")[0] in BACKING_FS:
                    backing.add(fields[2])  # major:minor
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except (OSError, ValueError, IndexError):
        return
    for line in lines:
        parts = line.split(maxsplit=5)
        if len(parts) < 6 or "x" not in parts[1] or parts[4] == "0":
            continue
        try:
            major, minor = (int(x, 16) for x in parts[3].split(":"))
            lo, hi = (int(x, 16) for x in parts[0].split("-"))
        except ValueError:
            continue
        if f"{major}:{minor}" in backing:
            continue
        yield (major << 20 | minor, int(parts[4])), f"/proc/self/map_files/{lo:x}-{hi:x}"


def mapping_at(pid: int, addr: int) -> Optional[str]:
    """The /proc/PID/map_files path of the file mapping that holds addr."""
    try:
        with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as f:
            lines = f.readlines()
    except OSError:
        return None
    for line in lines:
        span, _, rest = line.partition(" ")
        start, _, end = span.partition("-")
        try:
            lo, hi = int(start, 16), int(end, 16)
        except ValueError:
            continue
        if lo <= addr < hi:
            # map_files names are unpadded hex (maps pads to 8 digits)
            return f"/proc/{pid}/map_files/{lo:x}-{hi:x}" if rest.split()[3:4] != ["0"] else None
    return None


class RandProbes:
    """The files checked for rand(), and the uprobes on those that define it."""

    def __init__(self, lib: ctypes.CDLL, warn: Callable[[str], None],
                 say: Callable[[str], None]) -> None:
        self.lib = lib
        self.warn = warn
        self.say = say
        self.probed: dict[Key, tuple[int, int, str]] = {}  # key -> (fd, offset, name)
        self.settled: dict[Key, int] = {}  # what each file read turned out to be
        self.unprobeable = 0  # files that define rand() or are static, but can't be probed
        self.released = 0  # stats.holds at the last release
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = MAX_PROBED + 1024
        if soft != resource.RLIM_INFINITY and soft < want:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
            except (ValueError, OSError):
                pass  # past the limit, a file is warned about as unprobeable

    def close(self) -> None:
        for fd, _, _ in self.probed.values():
            os.close(fd)
        self.probed.clear()
        self.settled.clear()

    # -- per generation --------------------------------------------------------

    def start(self, gen: Generation) -> None:
        """A new generation: attach it to every file probed so far, then
        settle the libraries we map ourselves (the system's ld.so and libc),
        so that no target is held for them, not even while we are stopped.
        A key is what BPF sees (s_dev and i_ino of the inode behind a
        mapping), which /proc/self/maps shows too except for backing files
        (overlayfs, FUSE passthrough: it shows the overlay's inode), and
        stat() never: such files are left to BPF's keys (a first target is
        held for them), as a file known under two keys would get two
        uprobes, and each call would count twice."""
        if not gen.has_program(PROGRAM):
            return
        for fd, offset, _ in self.probed.values():
            gen.attach_uprobe(PROGRAM, f"/proc/self/fd/{fd}", offset)
        for key, path in own_libraries():
            self.settle(gen, key, path)

    def pending(self, st: abi.OomkStats) -> bool:
        """Whether a target was held since the last release: from the mmaped
        stats, never a map syscall. A bpf(2) map call holds bpf_prog_active
        on its CPU, and a uprobe or classic tracepoint run there meanwhile
        (a preempted call) is skipped: a tick must not make one."""
        return st.holds > self.released

    def release(self, gen: Generation, st: abi.OomkStats) -> None:
        """Settle the file each held target was stopped for, then resume
        them all, after the last map call: a resumed target's rand() must
        not meet one of ours (see pending()). A hold leaves the map only
        once its file is settled: BPF checks a mapping in two hooks (an
        exec's tp_btf and classic tracepoint programs, a family's syscall
        exit and its twin), and a second one that met the file still
        PENDING with no hold left would stop the process again."""
        self.released = st.holds  # each hold is in the map before it is counted
        fd = gen.map_fd("holds")
        with unpreempted():
            holds = read_all(self.lib, fd)
        for tgid, hold in holds:
            path = mapping_at(tgid, hold.addr)
            if path is not None:
                self.settle(gen, (hold.file.dev, hold.file.ino), path)
        with unpreempted():
            drop(self.lib, fd, [tgid for tgid, _ in holds])
        for tgid, hold in holds:
            resume(tgid, hold.start_boottime)

    # -- one file ----------------------------------------------------------------

    def settle(self, gen: Generation, key: Key, path: str) -> None:
        """Read the file at path once: probe it if it defines rand(); then
        tell BPF (libs[key]) what it is."""
        if key in self.settled:  # BPF forgot it (libs is an LRU): tell it again
            self._tell(gen, key, self.settled[key])
            return
        state = abi.LIB_NONE
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            self.say(f"rand: cannot open {path}: {e.strerror}")
            return  # left PENDING: the next target that maps it is held again
        name = readlink(path)
        try:
            with os.fdopen(os.dup(fd), "rb") as f:
                verdict = elfsym.find_function(f, SYMBOL)
            if verdict.kind == "probe":
                state = self._probe(gen, key, fd, verdict.offset, name)
            elif verdict.kind == "stripped":
                state = self._unprobeable(gen, f"{name}: a static program without symbols: "
                                                   "its rand() calls are not counted")
        finally:
            if state != abi.LIB_PROBED:  # a probed file's fd is kept (self.probed)
                os.close(fd)
        self.settled[key] = state
        self._tell(gen, key, state)

    def _probe(self, gen: Generation, key: Key, fd: int, offset: int, name: str) -> int:
        if len(self.probed) >= MAX_PROBED:
            return self._unprobeable(gen, f"{name}: more than {MAX_PROBED} files define rand(): "
                                     "its calls are not counted (restart oomkiller to start over)")
        try:
            gen.attach_uprobe(PROGRAM, f"/proc/self/fd/{fd}", offset)
        except OSError as e:
            return self._unprobeable(gen, f"{name}: cannot attach the rand() uprobe: "
                                     f"{e.strerror}: its calls are not counted")
        self.probed[key] = (fd, offset, name)
        self.say(f"rand: probing {name} at {offset:#x}")
        return abi.LIB_PROBED

    def _unprobeable(self, gen: Generation, why: str) -> int:
        """Warn (once: each file is settled once), and count it for status."""
        self.unprobeable += 1
        gen.store_unprobeable(self.unprobeable)
        self.warn(why)
        return abi.LIB_UNPROBEABLE

    def _tell(self, gen: Generation, key: Key, state: int) -> None:
        k = abi.OomkFileId(dev=key[0], ino=key[1])
        try:
            with unpreempted():
                self.lib.bpf_map_update_elem(gen.map_fd("libs"), byref(k),
                                             byref(c_uint32(state)), 0)
        except OSError as e:
            self.say(f"rand: cannot record {key}: {e.strerror}")


HOLDS_MAX = 1024  # the holds map's max_entries


@contextlib.contextmanager
def unpreempted() -> Iterator[None]:
    """Run a map call as SCHED_FIFO: a bpf(2) map call holds bpf_prog_active
    on its CPU, and a target's rand() uprobe that runs there meanwhile is
    skipped. Where the kernel preempts (lazy preemption, Debian's default),
    a target could run there while we are preempted inside one; no
    fair-class task preempts a FIFO one. Without CAP_SYS_NICE: as before."""
    try:
        before = (os.sched_getscheduler(0), os.sched_getparam(0))
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except OSError:
        before = None
    try:
        yield
    finally:
        if before is not None:
            try:
                os.sched_setscheduler(0, *before)
            except OSError:
                pass


def read_all(lib: ctypes.CDLL, fd: int) -> list[tuple[int, abi.OomkHold]]:
    """Every (tgid, hold) in the holds map: one bpf(2) call
    (BPF_MAP_LOOKUP_BATCH), however many are held."""
    keys = (c_uint32 * HOLDS_MAX)()
    values = (abi.OomkHold * HOLDS_MAX)()
    out, count = c_uint32(), c_uint32(HOLDS_MAX)
    ret = lib.bpf_map_lookup_batch(fd, None, byref(out), keys, values, byref(count), None)
    if ret >= 0 or ctypes.get_errno() == errno.ENOENT:  # ENOENT: all of them read
        return [(keys[i], values[i]) for i in range(count.value)]
    # Refused (a kernel without batch ops on hash maps): one at a time.
    found = []
    key, hold = c_uint32(), abi.OomkHold()
    for i in range(HOLDS_MAX):  # a bound even on a map that changes
        try:
            lib.bpf_map_get_next_key(fd, byref(key) if i else None, byref(key))
        except FileNotFoundError:
            break
        try:
            lib.bpf_map_lookup_elem(fd, byref(key), byref(hold))
        except FileNotFoundError:
            continue
        found.append((key.value, abi.OomkHold.from_buffer_copy(hold)))
    return found


def drop(lib: ctypes.CDLL, fd: int, tgids: list[int]) -> None:
    """Delete these tgids' holds: one bpf(2) call (BPF_MAP_DELETE_BATCH)."""
    if not tgids:
        return
    keys = (c_uint32 * len(tgids))(*tgids)
    count = c_uint32(len(tgids))
    if lib.bpf_map_delete_batch(fd, keys, byref(count), None) >= 0:
        return
    for tgid in tgids[count.value:]:  # refused, or stopped at one gone
        try:
            lib.bpf_map_delete_elem(fd, byref(c_uint32(tgid)))
        except FileNotFoundError:
            pass


def resume_left(err: TextIO = sys.stderr) -> None:
    """Resume the targets a killer that died left stopped: its pinned
    `holds`, if any. Call with the instance lock held, before the pins go."""
    try:
        lib = _libbpf.libbpf()
        fd = lib.bpf_obj_get(os.path.join(instance.PIN_DIR, "holds").encode())
    except (OSError, _libbpf.LibraryMissing):
        return
    try:
        resumed = sum(resume(tgid, hold.start_boottime) for tgid, hold in read_all(lib, fd))
    finally:
        os.close(fd)
    if resumed:
        Messages(err).warn(f"resumed {resumed} process(es) the last killer left stopped")


def readlink(path: str) -> str:
    try:
        return os.readlink(path) if path.startswith("/proc/") else path
    except OSError:
        return path


def start_boottime_ticks(tgid: int) -> Optional[int]:
    """Field 22 of /proc/TGID/stat: the process's start, in clock ticks since boot."""
    try:
        with open(f"/proc/{tgid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rfind(b")") + 2:].split()
    return int(fields[19]) if len(fields) > 19 else None


def resume(tgid: int, start_boottime_ns: int) -> bool:
    """SIGCONT to the process BPF stopped, and only to it: a pidfd pins the
    process, then its start time must be the one BPF recorded."""
    try:
        pidfd = os.pidfd_open(tgid)
    except OSError:
        return False  # gone
    try:
        if start_boottime_ticks(tgid) == start_boottime_ns * CLK_TCK // 1_000_000_000:
            signal.pidfd_send_signal(pidfd, signal.SIGCONT)
            return True
    except OSError:
        pass
    finally:
        os.close(pidfd)
    return False
