"""What the running kernel offers, for families.make_plan (families.Probe)."""

from __future__ import annotations

import ctypes
import errno
import os
from typing import Callable, Optional

from oomkiller.bpf import _libbpf, families
from oomkiller.bpf._libbpf import BpfObject
from oomkiller.bpf.bpflog import LibbpfLog
from oomkiller.bpf.generation import iter_programs

ENOTSUPP = 524  # the kernel-internal errno a BPF feature the kernel lacks returns
KPROBE_PMU = "/sys/bus/event_source/devices/kprobe"
KPROBE_EVENTS = ("/sys/kernel/tracing/kprobe_events", "/sys/kernel/debug/tracing/kprobe_events")

# Tests only: a comma-separated list of kfuncs and trace events this probe
# reports absent, so the fallbacks older kernels take (families.KFUNC_FLAGS,
# EVENT_RULES) run on this machine too. Never set by a user-facing path.
LACK_ENV = "OOMKILLER_TEST_LACK"


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
        self._lack = set(filter(None, os.environ.get(LACK_ENV, "").split(",")))

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

    def floor(self) -> Optional[str]:
        """One line if this kernel is too old for the object, else None. Every
        kfunc is optional (families.KFUNC_FLAGS); what is not: a way to kill
        a process from outside it. Before bpf_send_signal_task (6.13) that is
        the loader, told whom by a task iterator on one process (6.1)."""
        if self.in_btf("bpf_send_signal_task") or "task" in self._members("bpf_iter_link_info"):
            return None
        return (f"this kernel ({os.uname().release}) lacks the BPF task iterator's process "
                "filter (Linux 6.1+): boot Linux 6.1 or newer (Debian 12's own kernel or later)")

    def _btf(self) -> Optional[_libbpf.Btf]:
        if self._vmlinux is None:
            try:
                self._vmlinux = _libbpf.libbpf().btf__load_vmlinux_btf()
            except OSError:
                return None
        return self._vmlinux

    def _find(self, name: str, kind: int) -> Optional[int]:
        btf = self._btf()
        if btf is None or name in self._lack:
            return None
        try:
            return _libbpf.libbpf().btf__find_by_name_kind(btf, name.encode(), kind)
        except OSError:
            return None

    def _members(self, union: str) -> set[str]:
        type_id = self._find(union, _libbpf.BTF_KIND_UNION)
        if type_id is None:
            return set()
        lib = _libbpf.libbpf()
        t = lib.btf__type_by_id(self._vmlinux, type_id).contents
        addr = ctypes.addressof(t) + ctypes.sizeof(_libbpf.BtfType)
        return {(lib.btf__name_by_offset(self._vmlinux, m.name_off) or b"").decode()
                for m in (_libbpf.BtfMember * t.vlen).from_address(addr)}

    def in_btf(self, func: str) -> bool:
        if func not in self._btf_funcs:
            self._btf_funcs[func] = self._find(func, _libbpf.BTF_KIND_FUNC) is not None
        return self._btf_funcs[func]

    def has_event(self, name: str) -> bool:
        """Every trace event has a `btf_trace_<name>` typedef in vmlinux BTF
        (its tp_btf prototype); the classic tracepoint is the same event."""
        if name in self._lack:
            return False
        return self._find(f"btf_trace_{name}", _libbpf.BTF_KIND_TYPEDEF) is not None

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
