"""What the running kernel offers, for families.make_plan (families.Probe)."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Callable, Iterable, Optional

from oomkiller import _libbpf, families
from oomkiller._libbpf import BpfObject
from oomkiller.bpflog import LibbpfLog
from oomkiller.generation import iter_programs

ENOTSUPP = 524  # the kernel-internal errno a BPF feature the kernel lacks returns
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"
KPROBE_EVENTS = ("/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events")

# The release that added each kfunc the object calls (its `.ksyms`). libbpf
# resolves every kfunc extern at load, so a kernel without one refuses the
# whole object with EINVAL; KernelProbe.lacking() says which, and since when.
KFUNC_SINCE = {
    "bpf_task_from_pid": (6, 2), "bpf_task_release": (6, 2),
    "bpf_preempt_disable": (6, 10), "bpf_preempt_enable": (6, 10),
    "bpf_send_signal_task": (6, 13),
}


def kfuncs(lib: ctypes.CDLL, data: bytes) -> list[str]:
    """The kfuncs the object calls: the extern FUNCs of its BTF as built
    (opening it makes them global, to suit the kernel's BTF checks)."""
    fd = os.memfd_create("oomkiller.bpf.o", os.MFD_CLOEXEC)
    btf = None
    out: list[str] = []
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        try:
            btf = lib.btf__parse_elf(f"/proc/self/fd/{fd}".encode(), None)
        except OSError:
            return out  # no BTF to read: libbpf's load says what is wrong
        for type_id in range(1, lib.btf__type_cnt(btf)):
            t = lib.btf__type_by_id(btf, type_id).contents
            if t.kind == _libbpf.BTF_KIND_FUNC and t.vlen == _libbpf.BTF_FUNC_EXTERN:
                out.append(lib.btf__name_by_offset(btf, t.name_off).decode())
        return out
    finally:
        if btf:
            lib.btf__free(btf)
        os.close(fd)


def tp_btf_preemptible(release: Optional[str] = None) -> bool:
    """Whether a tp_btf run can be preempted on this kernel. Since Linux 7.0
    tracepoints run under SRCU-fast instead of with preemption off, and x86
    kernels can't boot with preempt=none: a run can be preempted holding its
    recursion guard. No kernel feature says so on its own, hence the release
    number."""
    major = (release or os.uname().release).split(".", 1)[0]
    return major.isdigit() and int(major) >= 7


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

    def tp_btf_preemptible(self) -> bool:
        return tp_btf_preemptible()

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

    def lacking(self, kfuncs: Iterable[str]) -> Optional[str]:
        """One line naming the kfuncs the object calls that this kernel
        lacks, and the release that has them all; None if it has them."""
        missing = [k for k in kfuncs if not self.in_btf(k)]
        if not missing:
            return None
        since = ".".join(map(str, max(KFUNC_SINCE.get(k, (0, 0)) for k in missing)))
        return (f"this kernel ({os.uname().release}) lacks {', '.join(missing)} "
                f"(Linux {since}+): boot Linux {since} or newer "
                "(Debian: linux-image-amd64 from trixie-backports)")

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
                # Lockdown refuses with EPERM, a kernel without trampolines
                # with ENOTSUPP (524) or EOPNOTSUPP; anything else (EINVAL:
                # the verifier) is not the trampolines' doing.
                refused = e.errno in (errno.EPERM, errno.EOPNOTSUPP, ENOTSUPP)
                why = (f"{'BPF trampolines refused: ' if refused else ''}{prog.section} "
                       f"does not load ({e.strerror})")
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
