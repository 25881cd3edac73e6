"""Which program variants to load: the loader's only decision.

Program names carry family and data source: `fx_<src>_*` (fentry/fexit),
`kp_<src>_*` (kprobe/kretprobe), `tp_<src>_*` (tracepoint), sources mem and
sys. In the tracepoint family one `tp_sys_exit` serves both sys and mem, told
apart by oomk_config.flags. Anything else (on_exec, on_exit, on_fork,
on_sock_send, the on_uring_* programs and their `_tp` twins, on_rand, sweep,
...) is always loaded, or loaded for its rules (RULE_PROGS).

The sources that have no choice are listed in FIXED: TCP sends are counted in
the sock_send_length tracepoint in every family, attached twice (tp_btf and
classic), so a send is lost only if both are skipped for it (fexit or
kretprobe on tcp_sendmsg have one way in, and a pool); rand() by a uprobe,
which has no recursion guard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Protocol, Sequence

from oomkiller.bpf import abi

SOURCES = ("mem", "sys")
FIXED = {"tcp": "tracepoint", "rand": "uprobe"}
FAMILY_ORDER = ("fentry", "kprobe", "tracepoint")  # cheapest first
# What auto tries, per source. Every family is exact on Debian's 6.18.5 and
# 7.3.4 (the VM lane: 20 exact 64-thread races in a row each, with the twin
# hooks), so auto goes by cost. For sys, the tracepoint: in make bench-vm the
# tracepoint family was never the dearest on counted calls of non-targets,
# kprobe (kretprobes) was, and fentry and the tracepoint were within TCG's
# noise of each other; one tp_btf program also loads in a second where ~90
# fexit programs take tens of seconds. mem samples only move the gate:
# fentry first there.
AUTO_ORDER = {"mem": FAMILY_ORDER, "sys": ("tracepoint", "kprobe", "fentry")}
PREFIX = {"fx": "fentry", "kp": "kprobe", "tp": "tracepoint"}
TP_SYS_EXIT = "tp_sys_exit"
# Twins: every syscall exit of a target is a checkpoint (idempotent), so the
# sys source is hooked by more than its family's own programs, each of which
# the kernel can skip:
# - fexit: preemptible, with a per-CPU recursion guard (wherever the kernel
#   preempts; Debian's kernels default to lazy preemption);
# - kretprobes: a bounded instance pool (max(10, 2 x CPUs)): in the VM lane on
#   6.18.5, 60 processes inside read() at once exhausted it, and 9 of 60 over
#   the read-bytes limit exited unkilled; and, as every kprobe-type and
#   classic tracepoint program, skipped while the CPU's bpf_prog_active is
#   held: a bpf(2) map call holds it with preemption on, so a map reader
#   preempted inside one (bpftool, any agent, `oomkiller status`) leaves the
#   CPU's runs skipped until it runs again. With tests/progs/map_walker.c on
#   each CPU (6.18.5), 150 writes lived under kprobe;
# - tp_btf since 7.0 (SRCU-fast tracepoints: Probe.tp_btf_preemptible): a run
#   preempted holds its guard. Before 7.0 it runs with preemption off and
#   nothing skips it.
# So the tp_btf sys_exit program is in every family (counting, as
# OOMK_CF_SYS_TP says), and where it is preemptible the classic
# raw_syscalls/sys_exit twin joins it: measured on 7.3.4, 60 processes
# started together, each 150 writes, lost one in 7 of 9 rounds (tracepoint)
# and 2 of 5 (fentry) without it. The classic twin's price is perf's glue on
# every syscall of every process (make bench: ~200 ns), so 6.x goes without.
TP_SYS_EXIT_TWIN = "tp_sys_exit_tp"


# Programs only some rules need, by name prefix: with all of those rules
# off they are not loaded, and cost nothing. The sock_send_length twins
# count TCP segments and mark socket writes, which `writes` leaves out. The
# io_uring tracepoints check the fds level and count io_uring's reads and
# writes (AIO's are counted in the sys programs).
RULE_PROGS = (("on_rand", ("rand",)), ("on_sock_send", ("tcp-packets", "writes")),
              ("on_uring", ("fds", "writes", "read-bytes")))


# What the kernel offers, as oomk_config.flags bits (kernel_flags()). Each
# kfunc group is a weak extern in the object, called only behind its bit.
KFUNC_FLAGS = (
    (abi.CF_TASK_KFUNCS, ("bpf_task_from_pid", "bpf_task_release")),        # Linux 6.2
    (abi.CF_SIGNAL_TASK, ("bpf_send_signal_task", "bpf_task_from_pid",
                          "bpf_task_release")),                              # Linux 6.13
    (abi.CF_PREEMPT, ("bpf_preempt_disable", "bpf_preempt_enable")),         # Linux 6.10
)
# Rules a kernel can lack: rule -> (the event its programs hook, since when).
# TCP segments are counted in sock_send_length (Linux 6.3) in every family;
# before it there is no tracepoint on the send path, and no family's hook
# there was proven exact (docs/KERNELS.md has the fexit plan).
EVENT_RULES = {"tcp-packets": ("sock_send_length", "6.3")}
# Programs only some kernels need: the classic fork twin finds the child by
# pid (a task kfunc: 6.2); the loader's deferred kill path serves kernels
# without bpf_send_signal_task (6.13).
NEEDS_FLAG = {"on_fork_tp": abi.CF_TASK_KFUNCS}
UNLESS_FLAG = {"hand_over": abi.CF_SIGNAL_TASK, "kill_sent": abi.CF_SIGNAL_TASK}


def kernel_flags(probe: Probe) -> int:
    """The OOMK_CF_* bits that say what this kernel offers."""
    flags = 0
    for bit, funcs in KFUNC_FLAGS:
        if all(probe.in_btf(f) for f in funcs):
            flags |= bit
    if probe.has_event("sock_send_length"):
        flags |= abi.CF_SOCK_TP
    return flags


def event_of(section: str) -> Optional[str]:
    """The trace event a tp_btf/ or tracepoint/ section hooks."""
    kind, _, rest = section.partition("/")
    if kind not in ("tp_btf", "tracepoint", "tp") or not rest:
        return None
    return rest.rsplit("/", 1)[-1]


def needed(name: str, enabled: set[str]) -> bool:
    """Whether program `name` serves a rule in `enabled` (or every rule)."""
    for prefix, rules in RULE_PROGS:
        if name.startswith(prefix):
            return any(r in enabled for r in rules)
    return True


@dataclass(frozen=True)
class Prog:
    name: str
    section: str

    @property
    def target(self) -> Optional[str]:
        """Kernel function named in the section: `fexit/si_meminfo` -> si_meminfo."""
        kind, sep, rest = self.section.partition("/")
        if not sep or kind not in ("fentry", "fexit", "kprobe", "kretprobe"):
            return None
        return rest.split("+", 1)[0] or None

    @property
    def variant(self) -> Optional[tuple[str, str]]:
        """(family, source) for a variant program, None for an always-loaded one."""
        parts = self.name.split("_", 2)
        if len(parts) < 2 or parts[0] not in PREFIX or parts[1] not in SOURCES:
            return None
        return PREFIX[parts[0]], parts[1]


class Probe(Protocol):
    """What the running kernel offers; the loader implements it for real."""

    def fentry_ok(self, prog: Prog) -> Optional[str]:
        """None if a trampoline program like `prog` loads, else why not."""

    def kprobe_ok(self) -> Optional[str]:
        """None if the kernel can attach kprobes, else why not."""

    def in_btf(self, func: str) -> bool:
        ...

    def in_kallsyms(self, func: str) -> bool:
        ...

    def tp_btf_preemptible(self) -> bool:
        """Whether a tp_btf program can be preempted while it runs."""

    def has_event(self, name: str) -> bool:
        """Whether the kernel has trace event `name` (its btf_trace_ type)."""


@dataclass
class Choice:
    """One family's programs for one source, or why it can't serve it."""
    family: str
    programs: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (program, reason)
    unavailable: Optional[str] = None


@dataclass
class Plan:
    families: dict[str, str]                 # source -> family
    autoload: list[str]                      # program names to load and attach
    flags: int                               # oomk_config.flags
    skipped: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # why better families were passed over
    features: int = 0                        # kernel_flags(): oomk_config.flags too
    rules_off: dict[str, str] = field(default_factory=dict)  # rule -> why this kernel can't

    @property
    def cfg_flags(self) -> int:
        return self.flags | self.features

    def kernel_notes(self) -> list[str]:
        """What this kernel changes: rules it can't enforce, and who sends
        the deferred kills (ready line, status, selftest)."""
        notes = [f"{rule} off: {why}" for rule, why in self.rules_off.items()]
        if not self.features & abi.CF_SIGNAL_TASK:
            notes.append("deferred kills sent by the loader: no bpf_send_signal_task "
                         "(Linux 6.13+)")
        return notes

    @property
    def all_tracepoint(self) -> bool:
        return all(self.families[s] == "tracepoint" for s in SOURCES)


class FamilyUnavailable(Exception):
    pass


def evaluate(progs: Sequence[Prog], source: str, family: str, probe: Probe) -> Choice:
    """Can `family` serve `source` here, and with which programs?"""
    choice = Choice(family)
    mine = [p for p in progs if p.variant == (family, source)]
    if family == "tracepoint":
        if source in ("sys", "mem") and not any(p.name == TP_SYS_EXIT for p in mine):
            extra = [p for p in progs if p.name == TP_SYS_EXIT]
            mine += extra
        if not probe.tp_btf_preemptible():
            mine = [p for p in mine if p.name != TP_SYS_EXIT_TWIN]
        if not mine:
            choice.unavailable = f"the BPF object has no tracepoint program for {source}"
        choice.programs = [p.name for p in mine]
        return choice
    if not mine:
        choice.unavailable = f"the BPF object has no {family} program for {source}"
        return choice
    if family == "kprobe":
        why = probe.kprobe_ok()
        if why:
            choice.unavailable = why
            return choice
    present = probe.in_btf if family == "fentry" else probe.in_kallsyms
    where = "kernel BTF" if family == "fentry" else "/proc/kallsyms"
    for p in mine:
        target = p.target
        if target and present(target):
            choice.programs.append(p.name)
        elif source == "sys":
            # A syscall this kernel lacks just isn't counted by this family.
            choice.skipped.append((p.name, f"{target or p.section} not in {where}"))
        else:
            choice.unavailable = f"{target or p.section} not in {where}"
            return choice
    if not choice.programs:
        choice.unavailable = f"none of its targets is in {where}"
        return choice
    if family == "fentry":
        first = next(p for p in mine if p.name == choice.programs[0])
        why = probe.fentry_ok(first)
        if why:
            choice.unavailable = why
    if source == "sys" and choice.unavailable is None:
        twins = (TP_SYS_EXIT, TP_SYS_EXIT_TWIN) if probe.tp_btf_preemptible() else (TP_SYS_EXIT,)
        choice.programs += [p.name for p in progs if p.name in twins]
    return choice


def make_plan(progs: Sequence[Prog], attach: str, probe: Probe) -> Plan:
    """Pick a family per source: the best that works under `auto`, else the forced one."""
    chosen: dict[str, Choice] = {}
    notes: list[str] = []
    for source in SOURCES:
        if attach == "auto":
            for family in AUTO_ORDER[source]:
                c = evaluate(progs, source, family, probe)
                if c.unavailable is None:
                    break
                notes.append(f"{source}: {family} unavailable: {c.unavailable}")
            else:
                raise FamilyUnavailable(f"no attach family can serve {source}: {c.unavailable}")
        else:
            c = evaluate(progs, source, attach, probe)
            if c.unavailable is not None:
                raise FamilyUnavailable(
                    f"attach family {attach} unavailable for {source}: {c.unavailable}")
        chosen[source] = c
    return _assemble(progs, chosen, notes, probe)


def tracepoint_plan(progs: Sequence[Prog], probe: Probe) -> Plan:
    return make_plan(progs, "tracepoint", probe)


def _assemble(progs: Sequence[Prog], chosen: dict[str, Choice], notes: list[str],
              probe: Probe) -> Plan:
    wanted = {name for c in chosen.values() for name in c.programs}
    features = kernel_flags(probe)
    autoload, absent = [], []
    for p in progs:
        if p.variant is not None and p.name not in wanted:
            continue
        event, need = event_of(p.section), NEEDS_FLAG.get(p.name, 0)
        if event and not probe.has_event(event):
            absent.append((p.name, f"no {event} event in this kernel"))
        elif features & need == need and not features & UNLESS_FLAG.get(p.name, 0):
            autoload.append(p.name)
    rules_off = {rule: f"no {event} tracepoint (Linux {since}+)"
                 for rule, (event, since) in EVENT_RULES.items() if not probe.has_event(event)}
    flags = 0
    if TP_SYS_EXIT in chosen["sys"].programs:
        flags |= abi.CF_SYS_TP
    if chosen["mem"].family == "tracepoint":
        flags |= abi.CF_MEM_TP
    if TP_SYS_EXIT_TWIN in wanted:
        flags |= abi.CF_SYS_TWIN
    skipped = [s for c in chosen.values() for s in c.skipped] + absent
    fams = {s: c.family for s, c in chosen.items()}
    fams["tcp"] = FIXED["tcp"]
    return Plan(fams, autoload, flags, skipped, notes, features, rules_off)
