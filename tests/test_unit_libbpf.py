"""Pure-Python checks of the ctypes binding: declarations, struct layouts, errors.

No root and no BPF: dlopen()ing libbpf.so.1 and parsing the built object's
BTF need neither.
"""
from __future__ import annotations

import ctypes
import errno
import io
import os
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from oomkiller.bpf import _libbpf, abi, generation as loader  # noqa: E402
from oomkiller.bpf.bpflog import KEEP_LINES, LibbpfLog  # noqa: E402


# -- declarations --------------------------------------------------------------

def test_every_libbpf_function_is_declared():
    lib = _libbpf.libbpf()
    assert _libbpf.declared(lib, _libbpf.LIBBPF_FUNCS) == []
    for name, restype, argtypes, _ in _libbpf.LIBBPF_FUNCS:
        fn = getattr(lib, name)
        assert fn.argtypes is not None, name  # ctypes default: undeclared
        assert fn.restype is restype, name


def test_every_libc_function_is_declared():
    assert _libbpf.declared(_libbpf.libc(), _libbpf.LIBC_FUNCS) == []


def test_the_table_has_no_duplicates():
    names = [d[0] for d in _libbpf.LIBBPF_FUNCS]
    assert len(names) == len(set(names))


def test_a_misspelled_argtypes_is_caught():
    """bcc's bug: `fn.argtype = ...` is silently accepted by ctypes. declared() sees it."""
    lib = ctypes.CDLL(_libbpf.LIBBPF_SONAME)  # a fresh, undeclared handle
    fn = lib.bpf_object__load
    fn.argtype = [_libbpf.BpfObject]  # the typo ctypes doesn't reject
    fn.restype = ctypes.c_int
    table = (("bpf_object__load", ctypes.c_int, [_libbpf.BpfObject], None),)
    assert _libbpf.declared(lib, table) == ["bpf_object__load"]


def test_no_misspelled_ctypes_attributes_in_the_package():
    """Nothing in src/ assigns .argtype, .restypes, .errchecks, ...: the table does it all."""
    pattern = re.compile(r"\.(arg\w*types?|res\w*type\w*|errcheck\w*)\s*=(?!=)")
    allowed = {"argtypes", "restype", "errcheck"}
    for path in (ROOT / "src" / "oomkiller").rglob("*.py"):
        for m in pattern.finditer(path.read_text()):
            assert m.group(1) in allowed, f"{path.name}: .{m.group(1)}"


def test_a_missing_function_is_reported_by_bind():
    lib = ctypes.CDLL(_libbpf.LIBBPF_SONAME)
    with pytest.raises(AttributeError):
        _libbpf.bind(lib, (("bpf_no_such_function", ctypes.c_int, [], None),))


def test_handles_are_distinct_pointer_types():
    kinds = [_libbpf.BpfObject, _libbpf.BpfProgram, _libbpf.BpfMap, _libbpf.BpfLink,
             _libbpf.RingBuffer, _libbpf.Btf]
    assert len(set(kinds)) == len(kinds)
    for k in kinds:
        assert issubclass(k, ctypes.c_void_p)
        assert not k()  # NULL is falsy
    with pytest.raises(ctypes.ArgumentError):
        _libbpf.libbpf().bpf_program__fd(_libbpf.BpfMap())


# -- errors ----------------------------------------------------------------------

def test_negative_return_becomes_oserror():
    fn = _libbpf.libbpf().bpf_object__load
    with pytest.raises(OSError) as ei:
        _libbpf.INT(-errno.EPERM, fn, ())
    assert ei.value.errno == errno.EPERM
    assert ei.value.strerror == "Operation not permitted"
    assert ei.value.filename == "bpf_object__load"
    assert _libbpf.INT(3, fn, ()) == 3


def test_null_return_becomes_oserror_from_errno():
    lib = _libbpf.libbpf()
    # A real NULL + errno from libbpf: an empty buffer is no ELF object.
    opts = _libbpf.BpfObjectOpenOpts(sz=ctypes.sizeof(_libbpf.BpfObjectOpenOpts))
    with pytest.raises(OSError) as ei:
        lib.bpf_object__open_mem(b"not an elf file", 15, ctypes.byref(opts))
    assert ei.value.errno not in (None, 0)
    assert "Unknown error" not in ei.value.strerror  # libbpf's 4001 has a text


def test_libbpf_private_errno_text():
    _libbpf.libbpf()
    assert _libbpf.strerror(4001) == "BPF object format invalid"


def test_never_oserror_zero():
    with pytest.raises(OSError) as ei:
        _libbpf.raise_errno(0, "x")
    assert ei.value.errno != 0


# -- struct layouts --------------------------------------------------------------

def offset(struct, field):
    return getattr(struct, field).offset


def test_open_opts_layout_matches_libbpf_1_1_2():
    s = _libbpf.BpfObjectOpenOpts
    assert ctypes.sizeof(s) == 80
    assert offset(s, "object_name") == 8
    assert offset(s, "relaxed_maps") == 16
    assert offset(s, "pin_root_path") == 24
    assert offset(s, "kconfig") == 40
    assert offset(s, "btf_custom_path") == 48
    assert offset(s, "kernel_log_buf") == 56
    assert offset(s, "kernel_log_size") == 64
    assert offset(s, "kernel_log_level") == 72


def test_test_run_opts_layout_matches_libbpf_1_1_2():
    s = _libbpf.BpfTestRunOpts
    assert ctypes.sizeof(s) == 80
    assert offset(s, "ctx_in") == 32
    assert offset(s, "retval") == 56
    assert offset(s, "repeat") == 60
    assert offset(s, "batch_size") == 76


def test_btf_structs():
    assert ctypes.sizeof(_libbpf.BtfType) == 12
    assert ctypes.sizeof(_libbpf.BtfVarSecinfo) == 12
    t = _libbpf.BtfType(info=(15 << 24) | 3)
    assert (t.kind, t.vlen) == (_libbpf.BTF_KIND_DATASEC, 3)


def _object_btf():
    lib = _libbpf.libbpf()
    return lib, lib.btf__parse(str(ROOT / "build" / "oomkiller.bpf.o").encode(), None)


@pytest.mark.parametrize("cname", sorted(abi.SHARED_STRUCTS))
def test_mirrors_match_the_objects_btf_member_by_member(cname):
    """The loader's own check: names and offsets of every member, and the size."""
    lib, btf = _object_btf()
    try:
        layout = loader.struct_layout(lib, btf, cname)
        assert layout is not None
        assert [m for m, _ in layout[1]] == [f[0] for f in abi.SHARED_STRUCTS[cname]._fields_]
        assert loader.layout_mismatch(cname, layout, abi.SHARED_STRUCTS[cname]) is None
    finally:
        lib.btf__free(btf)


def test_two_swapped_fields_of_one_size_are_caught():
    lib, btf = _object_btf()
    try:
        layout = loader.struct_layout(lib, btf, "oomk_stats")
    finally:
        lib.btf__free(btf)
    fields = list(abi.OomkStats._fields_)
    fields[1], fields[2] = fields[2], fields[1]       # samples <-> kills, both __u64
    swapped = type("Swapped", (ctypes.Structure,), {"_fields_": fields})
    assert ctypes.sizeof(swapped) == ctypes.sizeof(abi.OomkStats)
    why = loader.layout_mismatch("oomk_stats", layout, swapped)
    assert why == ("struct oomk_stats has samples at offset 8 in the BPF object "
                   "but kills at 8 in oomkiller/bpf/abi.py"), why


_CTYPES = {"__u64": 8, "__u32": 4, "__s32": 4, "char": 1}


def header_struct(name: str) -> list[tuple[str, int]]:
    """(field, size) of `struct name` in bpf/oomkiller.h; fixed-width fields only."""
    text = (ROOT / "bpf" / "oomkiller.h").read_text()
    consts = {k: int(v) for k, v in re.findall(r"#define\s+(\w+)\s+(\d+)", text)}
    consts.update({k: int(v) for k, v in re.findall(r"\b(OOMK_\w+)\s*=\s*(\d+)", text)})
    body = re.search(r"struct %s \{(.*?)\n\};" % name, text, re.S).group(1)
    body = re.sub(r"/\*.*?\*/", "", body, flags=re.S)
    fields = []
    for ctype, fname, dim in re.findall(r"(__u64|__u32|__s32|char|struct \w+)\s+(\w+)(?:\[(\w+)\])?;",
                                        body):
        n = (int(dim) if dim.isdigit() else consts[dim]) if dim else 1
        size = (sum(sz for _, sz in header_struct(ctype.split()[1])) if ctype.startswith("struct ")
                else _CTYPES[ctype])
        fields.append((fname, size * n))
    return fields


@pytest.mark.parametrize("cname", sorted(abi.SHARED_STRUCTS))
def test_mirrors_follow_the_header(cname):
    """Same fields, same order, same sizes as bpf/oomkiller.h."""
    mirror = abi.SHARED_STRUCTS[cname]
    ours = [(f, ctypes.sizeof(t)) for f, t in mirror._fields_]
    assert ours == header_struct(cname)


def test_rule_ids_follow_the_header():
    text = (ROOT / "bpf" / "oomkiller.h").read_text()
    ids = dict(re.findall(r"\bOOMK_RULE_(\w+)\s*=\s*(\d+)", text))
    assert int(ids["FDS"]) == abi.RULE_FDS
    assert int(ids["WRITES"]) == abi.RULE_WRITES
    assert int(ids["READ_BYTES"]) == abi.RULE_READ_BYTES
    assert int(ids["THREADS"]) == abi.RULE_THREADS
    assert int(ids["RAND"]) == abi.RULE_RAND
    assert int(ids["TCP_PACKETS"]) == abi.RULE_TCP_PACKETS
    assert int(ids["MAX"]) == abi.RULE_MAX
    kinds = dict(re.findall(r"\bOOMK_EV_(\w+)\s*=\s*(\d+)", text))
    assert {int(v): k for k, v in kinds.items()} == {
        abi.EV_KILL: "KILL", abi.EV_DRY_RUN: "DRY_RUN", abi.EV_CONDEMNED: "CONDEMNED",
        abi.EV_HOLD: "HOLD"}
    states = dict(re.findall(r"\bOOMK_LIB_(\w+)\s*=\s*(\d+)", text))
    assert {int(v): k for k, v in states.items()} == {
        abi.LIB_PENDING: "PENDING", abi.LIB_PROBED: "PROBED", abi.LIB_NONE: "NONE",
        abi.LIB_UNPROBEABLE: "UNPROBEABLE"}
    flags = dict(re.findall(r"#define\s+OOMK_CF_(\w+)\s+\(1u << (\d+)\)", text))
    assert 1 << int(flags["SYS_TP"]) == abi.CF_SYS_TP
    assert 1 << int(flags["MEM_TP"]) == abi.CF_MEM_TP
    assert 1 << int(flags["SYS_TWIN"]) == abi.CF_SYS_TWIN


# -- libbpf's log ----------------------------------------------------------------

def test_log_keeps_last_lines_quietly():
    out = io.StringIO()
    log = LibbpfLog(verbose=0, stream=out)
    log.add(_libbpf.LIBBPF_WARN, "".join(f"line {i}\n" for i in range(200)))
    assert out.getvalue() == ""
    assert len(log.lines) == KEEP_LINES
    assert log.tail(1) == ["line 199"]


def test_verbose_log_shows_warnings_and_a_long_messages_end():
    out = io.StringIO()
    log = LibbpfLog(verbose=1, stream=out)
    log.add(_libbpf.LIBBPF_DEBUG, "libbpf: debug chatter\n")
    log.add(_libbpf.LIBBPF_WARN, "".join(f"v{i}\n" for i in range(500)))
    text = out.getvalue()
    assert "debug chatter" not in text
    assert "v499\n" in text and "v0\n" not in text
    assert "lines not shown" in text


class _X86VaList(ctypes.Structure):
    """The x86-64 SysV va_list element: with gp_offset=48 and fp_offset=304
    every register is used up, so va_arg() reads from overflow_arg_area."""
    _fields_ = [("gp_offset", ctypes.c_uint), ("fp_offset", ctypes.c_uint),
                ("overflow_arg_area", ctypes.c_void_p), ("reg_save_area", ctypes.c_void_p)]


def test_format_va_list_formats_a_real_va_list():
    name = ctypes.create_string_buffer(b"tp_sys_exit")
    args = (ctypes.c_uint64 * 2)(ctypes.addressof(name), 4242)
    regs = ctypes.create_string_buffer(304)
    va = _X86VaList(48, 304, ctypes.addressof(args), ctypes.addressof(regs))
    text = _libbpf.format_va_list(b"prog '%s': error %d, 100%%\n", ctypes.addressof(va))
    assert text == "prog 'tp_sys_exit': error 4242, 100%\n"


def test_missing_libbpf_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(_libbpf, "_libbpf", None)
    monkeypatch.setattr(_libbpf, "LIBBPF_SONAME", "libbpf.so.999")
    with pytest.raises(_libbpf.LibraryMissing, match="cannot load libbpf.so.999.*apt-get install libbpf1"):
        _libbpf.libbpf()


# -- kfuncs: each is optional, behind the flag its kernels set ---------------

def test_every_kfunc_the_object_calls_is_behind_a_kernel_flag():
    """kfuncs() reads the object's extern FUNCs; each is in a group of
    families.KFUNC_FLAGS, so a kernel without it loads the object with that
    bit clear and the call dead (docs/KERNELS.md)."""
    from oomkiller.bpf.families import KFUNC_FLAGS
    from oomkiller.bpf.probe import kfuncs
    data = (ROOT / "build" / "oomkiller.bpf.o").read_bytes()
    grouped = {f for _, funcs in KFUNC_FLAGS for f in funcs}
    assert sorted(kfuncs(_libbpf.libbpf(), data)) == sorted(grouped)
    assert kfuncs(_libbpf.libbpf(), b"not an object") == []


def test_this_kernel_is_above_the_floor_and_a_kernel_below_it_is_told_in_one_line(monkeypatch):
    from oomkiller.bpf.probe import LACK_ENV, KernelProbe
    probe = KernelProbe(lambda: None, LibbpfLog(), lambda _: None)
    assert probe.floor() is None
    monkeypatch.setenv(LACK_ENV, "bpf_send_signal_task,bpf_iter_link_info")
    old = KernelProbe(lambda: None, LibbpfLog(), lambda _: None)
    assert old.floor() == (f"this kernel ({os.uname().release}) lacks the BPF task iterator's "
                           "process filter (Linux 6.1+): boot Linux 6.1 or newer "
                           "(Debian 12's own kernel or later)")
    old.close()
    probe.close()
