"""One loaded BPF object: a generation.

open (and check abi.py against its BTF) -> configure -> load, reusing the
maps the running generation shares -> attach -> activate -> close. The
daemon loop (loader.Killer) holds the live one; a SIGHUP reload builds the
next, activates it with one store to active_gen, and closes the old one. A
generation that failed anywhere is closed and leaves nothing behind.
"""

from __future__ import annotations

import ctypes
import itertools
import mmap
import os
from ctypes import byref, c_size_t, c_uint32, c_uint64, sizeof
from dataclasses import dataclass
from typing import Callable, Optional

from oomkiller.bpf import _libbpf, abi, bpfpolicy, families
from oomkiller.bpf._libbpf import BpfLink, BpfMap, BpfObject, BpfProgram
from oomkiller.config.settings import SELFTEST_PID_ENV, Settings

# Maps the next generation shares with the running one on reload: counters,
# per-thread records, events, the kprobe argument stash, the files checked
# for rand() and the targets held for them, the targets' io_uring ring fds;
# and .bss (stats, active_gen).
SHARED_MAPS = ("procs", "thrs", "events", "kp_args", "libs", "holds", "urings")

# Programs the loader attaches itself, per file (libprobes.py): a bare
# `uprobe` section names no file for libbpf to attach to.
MANUAL_SECTIONS = ("uprobe",)
# Programs the loader runs (BPF_PROG_RUN) or reads (a task iterator on one
# process, handover.py), never attached for good.
RUN_SECTIONS = ("syscall", "iter/task")


class SetupError(Exception):
    """A one-line `<what happened>: <what to do>` for the user; exit 1."""


class LoadFailed(SetupError):
    pass


class AttachFailed(SetupError):
    pass



# ---------------------------------------------------------------------------
# BTF: where globals live, what shared structs look like

def datasec_vars(lib: ctypes.CDLL, btf: _libbpf.Btf, section: str) -> dict[str, tuple[int, int]]:
    """{var name: (offset, size)} from the object's BTF DATASEC `section`."""
    try:
        sec_id = lib.btf__find_by_name_kind(btf, section.encode(), _libbpf.BTF_KIND_DATASEC)
    except FileNotFoundError:
        return {}
    sec = lib.btf__type_by_id(btf, sec_id)
    # The btf_var_secinfo array follows the btf_type header directly.
    infos_addr = ctypes.addressof(sec.contents) + sizeof(_libbpf.BtfType)
    infos = (_libbpf.BtfVarSecinfo * sec.contents.vlen).from_address(infos_addr)
    out = {}
    for info in infos:
        var = lib.btf__type_by_id(btf, info.type).contents
        name = lib.btf__name_by_offset(btf, var.name_off)
        if name:
            out[name.decode()] = (info.offset, info.size)
    return out


def struct_layout(lib: ctypes.CDLL, btf: _libbpf.Btf,
                  name: str) -> Optional[tuple[int, list[tuple[str, int]]]]:
    """(size, [(member, byte offset)]) of struct `name` in the object's BTF."""
    try:
        type_id = lib.btf__find_by_name_kind(btf, name.encode(), _libbpf.BTF_KIND_STRUCT)
    except FileNotFoundError:
        return None  # clang emits BTF only for types the program uses
    t = lib.btf__type_by_id(btf, type_id).contents
    kflag = t.info >> 31
    addr = ctypes.addressof(t) + sizeof(_libbpf.BtfType)
    members = []
    for m in (_libbpf.BtfMember * t.vlen).from_address(addr):
        bits = m.offset & 0xFFFFFF if kflag else m.offset
        members.append(((lib.btf__name_by_offset(btf, m.name_off) or b"").decode(), bits // 8))
    return lib.btf__resolve_size(btf, type_id), members


def layout_mismatch(cname: str, btf_layout: tuple[int, list[tuple[str, int]]],
                    mirror: type) -> Optional[str]:
    """Why abi.py's `mirror` does not match the object's struct, or None."""
    size, members = btf_layout
    mine = [(f[0], getattr(mirror, f[0]).offset) for f in mirror._fields_]
    for theirs, ours in itertools.zip_longest(members, mine, fillvalue=("nothing", size)):
        if theirs != ours:
            return (f"struct {cname} has {theirs[0]} at offset {theirs[1]} in the BPF object "
                    f"but {ours[0]} at {ours[1]} in oomkiller/bpf/abi.py")
    if size != sizeof(mirror):
        return (f"struct {cname} is {size} bytes in the BPF object but {sizeof(mirror)} "
                "in oomkiller/bpf/abi.py")
    return None


def exempt_tgid() -> int:
    """The process besides ours that is never a target: selftest's, when it
    started us (it names its pid in the environment). 0: none."""
    text = os.environ.get(SELFTEST_PID_ENV, "")
    return int(text) if text.isascii() and text.isdigit() and 0 < int(text) < 1 << 32 else 0


def iter_programs(lib: ctypes.CDLL, obj: BpfObject):
    prog = lib.bpf_object__next_program(obj, None)
    while prog:
        yield prog
        prog = lib.bpf_object__next_program(obj, prog)


def iter_maps(lib: ctypes.CDLL, obj: BpfObject):
    m = lib.bpf_object__next_map(obj, None)
    while m:
        yield m
        m = lib.bpf_object__next_map(obj, m)


@dataclass(frozen=True)
class Source:
    """The compiled object and the kernel BTF to relocate it against."""
    data: bytes
    origin: str
    btf_custom: Optional[str] = None

    def open(self, lib: ctypes.CDLL) -> BpfObject:
        opts = _libbpf.BpfObjectOpenOpts()
        opts.sz = sizeof(opts)
        opts.object_name = b"oomkiller"
        opts.btf_custom_path = self.btf_custom.encode() if self.btf_custom else None
        try:
            return lib.bpf_object__open_mem(self.data, len(self.data), byref(opts))
        except OSError as e:
            raise SetupError(f"cannot open BPF object {self.origin}: {e.strerror}: "
                             "rebuild it with make") from None


class Generation:
    """One opened (then loaded and attached) instance of the object, with
    cfg.generation = number. Opening checks abi.py against its BTF."""

    def __init__(self, lib: ctypes.CDLL, source: Source, settings: Settings, number: int,
                 say: Callable[[str], None]) -> None:
        self.lib = lib
        self.s = settings
        self.policies = settings.policies  # pol[] of this generation, by index
        self.number = number
        self.say = say
        self.links: list[BpfLink] = []
        self.prog_fds: dict[str, int] = {}  # attached programs, for recursion misses
        self.loaded: list[str] = []  # program names, as the plan and the rules left them
        self.runs: dict[str, BpfProgram] = {}  # RUN_SECTIONS programs, by name
        self.origin = source.origin
        self.obj = source.open(lib)
        try:
            self._check_abi()
        except SetupError:
            self.close()
            raise

    def _check_abi(self) -> None:
        try:
            btf = self.lib.bpf_object__btf(self.obj)
        except OSError:
            raise SetupError(f"BPF object {self.origin} has no BTF: rebuild it with make "
                             "(clang -g)") from None
        for cname, mirror in abi.SHARED_STRUCTS.items():
            layout = struct_layout(self.lib, btf, cname)
            if layout is None:
                raise SetupError(f"struct {cname} is missing from the BPF object's BTF: "
                                 "rebuild it with make")
            why = layout_mismatch(cname, layout, mirror)
            if why:
                raise SetupError(f"{why}: rebuild with make")

    def close(self) -> None:
        while self.links:
            self.lib.bpf_link__destroy(self.links.pop())
        self.prog_fds, self.runs = {}, {}
        if self.obj:
            self.lib.bpf_object__close(self.obj)
            self.obj = BpfObject()

    # -- what is in the object ---------------------------------------------

    def programs(self) -> list[families.Prog]:
        return [families.Prog(self.lib.bpf_program__name(p).decode(),
                              (self.lib.bpf_program__section_name(p) or b"").decode())
                for p in iter_programs(self.lib, self.obj)]

    def internal_map(self, section: str) -> BpfMap:
        """The map behind `.rodata`/`.bss`; libbpf may prefix the object name."""
        m = self.lib.bpf_object__find_map_by_name(self.obj, section.encode())
        if m:
            return m
        for m in iter_maps(self.lib, self.obj):
            if (self.lib.bpf_map__name(m) or b"").decode().endswith(section):
                return m
        raise SetupError(f"the BPF object has no {section} map: rebuild it with make")

    def map_fd(self, name: str) -> int:
        m = self.lib.bpf_object__find_map_by_name(self.obj, name.encode())
        if not m:
            raise SetupError(f"the BPF object has no {name} map: rebuild it with make")
        return self.lib.bpf_map__fd(m)

    def shared_fds(self) -> dict[str, int]:
        """What the next generation reuses (bpf_map__reuse_fd)."""
        fds = {name: self.map_fd(name) for name in SHARED_MAPS}
        fds[".bss"] = self.lib.bpf_map__fd(self.internal_map(".bss"))
        return fds

    def locate(self, section: str, var: str, ctype: type) -> tuple[BpfMap, int, int]:
        """(internal map, offset of `var` in it, map value size), sizes checked."""
        vars_ = datasec_vars(self.lib, self.lib.bpf_object__btf(self.obj), section)
        if var not in vars_:
            raise SetupError(f"the BPF object has no {section} variable {var}: rebuild it with make")
        offset, size = vars_[var]
        if size != sizeof(ctype):
            raise SetupError(f"{var} is {size} bytes in the BPF object but {sizeof(ctype)} "
                             "in oomkiller/bpf/abi.py: rebuild with make")
        m = self.internal_map(section)
        mapsize = c_size_t()
        self.lib.bpf_map__initial_value(m, byref(mapsize))
        if offset + size > mapsize.value:
            raise SetupError(f"{var} lies outside {section}: rebuild with make")
        return m, offset, mapsize.value

    def offsets(self) -> dict[str, int]:
        """Where stats, active_gen and cfg live, for `oomkiller status`."""
        btf = self.lib.bpf_object__btf(self.obj)
        bss, rodata = (datasec_vars(self.lib, btf, sec) for sec in (".bss", ".rodata"))
        return {"stats": bss["stats"][0], "active_gen": bss["active_gen"][0],
                "cfg": rodata["cfg"][0]}

    # -- configure, load, attach, activate ---------------------------------

    def _configure(self, plan: families.Plan) -> None:
        m, offset, _ = self.locate(".rodata", "cfg", abi.OomkConfig)
        base = self.lib.bpf_map__initial_value(m, byref(c_size_t()))
        cfg = abi.OomkConfig.from_address(base + offset)
        cfg.flags = plan.cfg_flags
        bpfpolicy.fill(cfg, self.policies)
        cfg.loader_tgid = os.getpid()
        cfg.exempt_tgid = exempt_tgid()
        cfg.generation = self.number
        procs = self.lib.bpf_object__find_map_by_name(self.obj, b"procs")
        if not procs:
            raise SetupError("the BPF object has no procs map: rebuild it with make")
        self.lib.bpf_map__set_max_entries(procs, self.s.capacity)
        # Per-thread records of the targets' counters: room for two threads
        # a tracked process on average; a thread refused is counted and warned.
        thrs = self.lib.bpf_object__find_map_by_name(self.obj, b"thrs")
        if not thrs:
            raise SetupError("the BPF object has no thrs map: rebuild it with make")
        self.lib.bpf_map__set_max_entries(thrs, 2 * self.s.capacity)
        on = set().union(*(p.enabled() for p in self.policies))
        wanted = {name for name in plan.autoload if families.needed(name, on)}
        self.loaded = [name for name in plan.autoload if name in wanted]
        for p in iter_programs(self.lib, self.obj):
            self.lib.bpf_program__set_autoload(p, self.lib.bpf_program__name(p).decode() in wanted)
        for prog, why in plan.skipped:
            self.say(f"skipping {prog}: {why}")

    def load_and_attach(self, plan: families.Plan, reuse: Optional[dict[str, int]] = None) -> None:
        self._configure(plan)
        for name, fd in (reuse or {}).items():
            # After _configure: reuse_fd takes the map's definition from the
            # kernel (max_entries included), and load skips creating it.
            m = (self.internal_map(name) if name.startswith(".")
                 else self.lib.bpf_object__find_map_by_name(self.obj, name.encode()))
            if not m:
                raise SetupError(f"the BPF object has no {name} map: rebuild it with make")
            self.lib.bpf_map__reuse_fd(m, fd)
        try:
            self.lib.bpf_object__load(self.obj)
        except OSError as e:
            hint = ("the verifier's log is above" if self.s.verbose
                    else "run with -v to see the verifier log")
            raise LoadFailed(f"failed to load BPF program: {e.strerror}: {hint}") from None
        for p in iter_programs(self.lib, self.obj):
            if not self.lib.bpf_program__autoload(p):
                continue
            name = self.lib.bpf_program__name(p).decode()
            section = (self.lib.bpf_program__section_name(p) or b"").decode()
            if section in RUN_SECTIONS:
                self.runs[name] = p
                continue
            if section in MANUAL_SECTIONS:
                self.prog_fds[name] = self.lib.bpf_program__fd(p)
                continue
            try:
                self.links.append(self.lib.bpf_program__attach(p))
                self.prog_fds[name] = self.lib.bpf_program__fd(p)
            except OSError as e:
                raise AttachFailed(f"failed to attach {name} ({section}): {e.strerror}: "
                                   "run with -v for libbpf's log") from None
        if "sweep" not in self.runs:
            raise SetupError("the BPF object has no sweep program: rebuild it with make")
        self.say(f"loaded {len(self.loaded)} programs, attached {len(self.links)}: "
                 + " ".join(self.loaded))
        # After attach: a cgroup made from here on is on_cgroup_mkdir's.
        for index, cgid in bpfpolicy.cgroup_ids(self.policies).items():
            self.lib.bpf_map_update_elem(self.map_fd("pol_cgid"), byref(c_uint32(index)),
                                         byref(c_uint64(cgid)), 0)

    def run(self, name: str, ctx: Optional[ctypes.Structure] = None) -> None:
        """BPF_PROG_RUN of syscall program `name`, with `ctx` in and out."""
        opts = _libbpf.BpfTestRunOpts()
        opts.sz = sizeof(opts)
        if ctx is not None:
            opts.ctx_in = ctypes.addressof(ctx)
            opts.ctx_size_in = sizeof(ctx)
        self.lib.bpf_prog_test_run_opts(self.lib.bpf_program__fd(self.runs[name]), byref(opts))

    def has_program(self, name: str) -> bool:
        """Whether program `name` is loaded in this generation."""
        return name in self.loaded

    def attach_uprobe(self, name: str, path: str, offset: int) -> None:
        """Attach loaded program `name` at file offset `offset` of the file
        at `path`, in every process; the link lives as long as we do."""
        prog = self.lib.bpf_object__find_program_by_name(self.obj, name.encode())
        if not prog:
            raise SetupError(f"the BPF object has no {name} program: rebuild it with make")
        self.links.append(self.lib.bpf_program__attach_uprobe(prog, False, -1, path.encode(),
                                                              offset))

    def _store(self, var: str, ctype: type, at: int, cell_type: type, value: int) -> None:
        """One aligned store of `value` (a `cell_type`) at byte `at` of .bss
        variable `var`, through a shared writable mmap. Never a whole-value
        map update: BPF updates stats concurrently."""
        m, offset, value_size = self.locate(".bss", var, ctype)
        length = -(-value_size // mmap.PAGESIZE) * mmap.PAGESIZE
        with mmap.mmap(self.lib.bpf_map__fd(m), length, mmap.MAP_SHARED,
                       mmap.PROT_READ | mmap.PROT_WRITE) as bss:
            cell = cell_type.from_buffer(bss, offset + at)
            cell.value = value
            del cell

    def activate(self) -> None:
        """active_gen = number: one aligned 32-bit store."""
        self._store("active_gen", c_uint32, 0, c_uint32, self.number)

    def store_unprobeable(self, count: int) -> None:
        """stats.unprobeable, which only the loader writes (libprobes.py)."""
        self._store("stats", abi.OomkStats, abi.OomkStats.unprobeable.offset, c_uint64, count)

    def recursion_misses_by_program(self) -> dict[str, int]:
        """Runs the kernel skipped, per attached program (bpf_prog_info)."""
        return {name: _libbpf.prog_recursion_misses(self.lib, fd)
                for name, fd in self.prog_fds.items()}
