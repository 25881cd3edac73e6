"""Thin ctypes binding of libbpf.so.1 (libbpf 1.1.2 API) and the few libc calls we need.

Every foreign function is declared once, in a table applied in a loop, so a
misspelled attribute (bcc's `.argtype` bug) cannot silently leave a function
undeclared. Errors become OSError in one helper: negative int -> OSError(-ret),
NULL -> OSError(errno). libbpf_get_error() is never used: libbpf >= 1.0 returns
NULL + errno and -errno directly.
"""

from __future__ import annotations

import ctypes
import os
from ctypes import (CFUNCTYPE, POINTER, Structure, c_bool, c_char, c_char_p, c_int,
                    c_int32, c_int64, c_size_t, c_uint32, c_uint64, c_ulong, c_void_p)
from typing import Any, Callable, Optional, Sequence

LIBBPF_SONAME = "libbpf.so.1"
LIBC_SONAME = "libc.so.6"


class LibraryMissing(Exception):
    """A shared library could not be loaded (message says which, and how to fix it)."""


# Opaque handles: distinct types so a BpfMap can't be passed where a BpfProgram goes.
# (ctypes hands back instances of c_void_p subclasses unconverted, NULL is falsy.)
class BpfObject(c_void_p):
    pass


class BpfProgram(c_void_p):
    pass


class BpfMap(c_void_p):
    pass


class BpfLink(c_void_p):
    pass


class RingBuffer(c_void_p):
    pass


class Btf(c_void_p):
    pass


class BpfObjectOpenOpts(Structure):
    """struct bpf_object_open_opts, libbpf 1.1.2 (80 bytes on x86-64)."""
    _fields_ = [
        ("sz", c_size_t),
        ("object_name", c_char_p),
        ("relaxed_maps", c_bool),
        ("pin_root_path", c_char_p),
        ("_stub_attach_prog_fd", c_uint32),  # `__u32 :32;` removed attach_prog_fd
        ("kconfig", c_char_p),
        ("btf_custom_path", c_char_p),
        ("kernel_log_buf", c_void_p),
        ("kernel_log_size", c_size_t),
        ("kernel_log_level", c_uint32),
        # `size_t :0;` only pads the struct to 8-byte alignment, as ctypes does.
    ]


class BpfTestRunOpts(Structure):
    """struct bpf_test_run_opts, libbpf 1.1.2 (80 bytes on x86-64)."""
    _fields_ = [
        ("sz", c_size_t),
        ("data_in", c_void_p),
        ("data_out", c_void_p),
        ("data_size_in", c_uint32),
        ("data_size_out", c_uint32),
        ("ctx_in", c_void_p),
        ("ctx_out", c_void_p),
        ("ctx_size_in", c_uint32),
        ("ctx_size_out", c_uint32),
        ("retval", c_uint32),
        ("repeat", c_int),
        ("duration", c_uint32),
        ("flags", c_uint32),
        ("cpu", c_uint32),
        ("batch_size", c_uint32),
    ]


class BpfIterTaskInfo(Structure):
    """union bpf_iter_link_info, its `task` member (Linux 6.1), padded to the
    union's 16 bytes: iterate the threads of one process."""
    _fields_ = [
        ("tid", c_uint32),
        ("pid", c_uint32),
        ("pid_fd", c_uint32),
        ("_pad", c_uint32),
    ]


class BpfIterAttachOpts(Structure):
    """struct bpf_iter_attach_opts, libbpf 1.1.2."""
    _fields_ = [
        ("sz", c_size_t),
        ("link_info", c_void_p),
        ("link_info_len", c_uint32),
    ]


class BpfMapInfo(Structure):
    """struct bpf_map_info, linux/bpf.h (88 bytes); the kernel fills what it knows."""
    _fields_ = [
        ("type", c_uint32),
        ("id", c_uint32),
        ("key_size", c_uint32),
        ("value_size", c_uint32),
        ("max_entries", c_uint32),
        ("map_flags", c_uint32),
        ("name", c_char * 16),
        ("ifindex", c_uint32),
        ("btf_vmlinux_value_type_id", c_uint32),
        ("netns_dev", c_uint64),
        ("netns_ino", c_uint64),
        ("btf_id", c_uint32),
        ("btf_key_type_id", c_uint32),
        ("btf_value_type_id", c_uint32),
        ("_pad", c_uint32),
        ("map_extra", c_uint64),
    ]


# struct bpf_prog_info (linux/bpf.h): only recursion_misses is read, at its
# uapi offset (5.12+); the kernel fills the first `len` bytes it knows.
PROG_INFO_SIZE = 232
PROG_INFO_RECURSION_MISSES = 208


def prog_recursion_misses(lib: ctypes.CDLL, prog_fd: int) -> int:
    """Runs of this program the kernel skipped because it was already running
    on that CPU (a preempted run blocks the next one there)."""
    buf = ctypes.create_string_buffer(PROG_INFO_SIZE)
    size = c_uint32(PROG_INFO_SIZE)
    lib.bpf_obj_get_info_by_fd(prog_fd, buf, ctypes.byref(size))
    if size.value < PROG_INFO_RECURSION_MISSES + 8:
        return 0
    return int.from_bytes(buf.raw[PROG_INFO_RECURSION_MISSES:PROG_INFO_RECURSION_MISSES + 8],
                          "little")


class BtfType(Structure):
    """struct btf_type from linux/btf.h; `size_or_type` is the union."""
    _fields_ = [
        ("name_off", c_uint32),
        ("info", c_uint32),
        ("size_or_type", c_uint32),
    ]

    @property
    def kind(self) -> int:
        return (self.info >> 24) & 0x1F

    @property
    def vlen(self) -> int:
        return self.info & 0xFFFF


class BtfMember(Structure):
    """struct btf_member: follows a STRUCT btf_type, vlen of them."""
    _fields_ = [
        ("name_off", c_uint32),
        ("type", c_uint32),
        ("offset", c_uint32),  # bits; with kflag, bitfield size in the top 8
    ]


class BtfVarSecinfo(Structure):
    """struct btf_var_secinfo: follows a DATASEC btf_type, vlen of them."""
    _fields_ = [
        ("type", c_uint32),
        ("offset", c_uint32),
        ("size", c_uint32),
    ]


BTF_KIND_STRUCT = 4
BTF_KIND_UNION = 5
BTF_KIND_TYPEDEF = 8
BTF_KIND_FUNC = 12
BTF_FUNC_EXTERN = 2  # a FUNC's linkage, in its vlen bits
BTF_KIND_VAR = 14
BTF_KIND_DATASEC = 15

LIBBPF_WARN, LIBBPF_INFO, LIBBPF_DEBUG = 0, 1, 2

# typedef int (*libbpf_print_fn_t)(enum libbpf_print_level, const char *, va_list);
# On x86-64 a va_list parameter is a pointer (the array type decays), so c_void_p.
PrintFn = CFUNCTYPE(c_int, c_int, c_char_p, c_void_p)
# typedef int (*ring_buffer_sample_fn)(void *ctx, void *data, size_t size);
RingBufferSampleFn = CFUNCTYPE(c_int, c_void_p, c_void_p, c_size_t)


LIBBPF_ERRNO_START, LIBBPF_ERRNO_END = 4000, 4100  # libbpf's own codes (libbpf.h)


def strerror(err: int) -> str:
    """os.strerror, plus libbpf's private codes (4001: "BPF object format invalid")."""
    if LIBBPF_ERRNO_START <= err < LIBBPF_ERRNO_END and _libbpf is not None:
        buf = ctypes.create_string_buffer(128)
        _libbpf.libbpf_strerror(err, buf, len(buf))
        return buf.value.decode("utf-8", "replace")
    return os.strerror(err)


def raise_errno(err: int, what: str) -> None:
    """The one place a libbpf/libc failure becomes an exception:
    OSError(errno, strerror, <function name>)."""
    err = abs(err) or 1  # never OSError(0): "Success" would mislead
    raise OSError(err, strerror(err), what)


def _check_int(result: int, func: Any, args: tuple) -> int:
    if result < 0:
        raise_errno(-result, func.__name__)
    return result


def _check_ptr(result: Any, func: Any, args: tuple) -> Any:
    if not result:
        raise_errno(ctypes.get_errno(), func.__name__)
    return result


INT, PTR = _check_int, _check_ptr

# name, restype, argtypes, errcheck (None: the caller interprets the result,
# e.g. NULL ends an iteration, -EINTR from poll is a wake-up).
Decl = tuple[str, Any, Sequence[Any], Optional[Callable]]

LIBBPF_FUNCS: tuple[Decl, ...] = (
    ("bpf_object__open_mem", BpfObject, [c_void_p, c_size_t, POINTER(BpfObjectOpenOpts)], PTR),
    ("bpf_object__load", c_int, [BpfObject], INT),
    ("bpf_object__close", None, [BpfObject], None),
    ("bpf_object__next_program", BpfProgram, [BpfObject, BpfProgram], None),
    ("bpf_object__next_map", BpfMap, [BpfObject, BpfMap], None),
    ("bpf_object__find_map_by_name", BpfMap, [BpfObject, c_char_p], None),
    ("bpf_object__btf", Btf, [BpfObject], PTR),
    ("bpf_program__name", c_char_p, [BpfProgram], None),
    ("bpf_program__section_name", c_char_p, [BpfProgram], None),
    ("bpf_program__autoload", c_bool, [BpfProgram], None),
    ("bpf_program__set_autoload", c_int, [BpfProgram, c_bool], INT),
    ("bpf_program__attach", BpfLink, [BpfProgram], PTR),
    # (prog, retprobe, pid (-1: every process), binary path, file offset)
    ("bpf_program__attach_uprobe", BpfLink, [BpfProgram, c_bool, c_int, c_char_p, c_size_t], PTR),
    ("bpf_program__attach_iter", BpfLink, [BpfProgram, POINTER(BpfIterAttachOpts)], PTR),
    ("bpf_link__fd", c_int, [BpfLink], INT),
    ("bpf_iter_create", c_int, [c_int], INT),
    ("bpf_object__find_program_by_name", BpfProgram, [BpfObject, c_char_p], None),
    ("bpf_program__fd", c_int, [BpfProgram], INT),
    ("bpf_link__destroy", c_int, [BpfLink], None),
    ("bpf_map__set_max_entries", c_int, [BpfMap, c_uint32], INT),
    ("bpf_map__initial_value", c_void_p, [BpfMap, POINTER(c_size_t)], PTR),
    ("bpf_map__fd", c_int, [BpfMap], INT),
    ("bpf_map__name", c_char_p, [BpfMap], None),
    ("bpf_map__reuse_fd", c_int, [BpfMap, c_int], INT),
    ("btf__find_by_name_kind", c_int32, [Btf, c_char_p, c_uint32], INT),
    ("btf__type_cnt", c_uint32, [Btf], None),
    ("btf__type_by_id", POINTER(BtfType), [Btf, c_uint32], PTR),
    ("btf__name_by_offset", c_char_p, [Btf, c_uint32], None),
    ("btf__resolve_size", c_int64, [Btf, c_uint32], INT),
    ("btf__load_vmlinux_btf", Btf, [], PTR),
    ("btf__parse", Btf, [c_char_p, c_void_p], PTR),
    ("btf__parse_elf", Btf, [c_char_p, c_void_p], PTR),
    ("btf__free", None, [Btf], None),
    ("ring_buffer__new", RingBuffer, [c_int, RingBufferSampleFn, c_void_p, c_void_p], PTR),
    ("ring_buffer__poll", c_int, [RingBuffer, c_int], None),
    ("ring_buffer__consume", c_int, [RingBuffer], None),
    ("ring_buffer__free", None, [RingBuffer], None),
    ("bpf_prog_test_run_opts", c_int, [c_int, POINTER(BpfTestRunOpts)], INT),
    ("bpf_map_get_next_key", c_int, [c_int, c_void_p, c_void_p], INT),
    ("bpf_map_lookup_elem", c_int, [c_int, c_void_p, c_void_p], INT),
    ("bpf_map_update_elem", c_int, [c_int, c_void_p, c_void_p, c_uint64], INT),
    ("bpf_map_delete_elem", c_int, [c_int, c_void_p], INT),
    # (fd, in_batch, out_batch, keys, values, count in/out, opts): -ENOENT
    # (with count set) once every element is read, so the caller reads errno
    ("bpf_map_lookup_batch", c_int,
     [c_int, c_void_p, c_void_p, c_void_p, c_void_p, POINTER(c_uint32), c_void_p], None),
    # (fd, keys, count in/out, opts)
    ("bpf_map_delete_batch", c_int, [c_int, c_void_p, POINTER(c_uint32), c_void_p], None),
    ("bpf_obj_pin", c_int, [c_int, c_char_p], INT),
    ("bpf_obj_get", c_int, [c_char_p], INT),
    ("bpf_obj_get_info_by_fd", c_int, [c_int, c_void_p, POINTER(c_uint32)], INT),
    ("libbpf_set_print", c_void_p, [PrintFn], None),
    ("libbpf_strerror", c_int, [c_int, ctypes.c_char_p, c_size_t], None),
)

LIBC_FUNCS: tuple[Decl, ...] = (
    # int vasprintf(char **strp, const char *fmt, va_list ap): formats a va_list
    # of any length in one pass (a va_list can be consumed only once).
    ("vasprintf", c_int, [POINTER(c_void_p), c_char_p, c_void_p], None),
    ("free", None, [c_void_p], None),
    ("sysinfo", c_int, [c_void_p], None),
    # int mount(const char *source, const char *target, const char *fstype,
    #           unsigned long flags, const void *data): bpffs for the pins
    ("mount", c_int, [c_char_p, c_char_p, c_char_p, c_ulong, c_void_p], None),
)


def bind(dll: ctypes.CDLL, table: Sequence[Decl]) -> ctypes.CDLL:
    """Declare every function of `table` on `dll`; a missing symbol raises here."""
    for name, restype, argtypes, errcheck in table:
        fn = getattr(dll, name)
        fn.restype = restype
        fn.argtypes = list(argtypes)
        if errcheck is not None:
            fn.errcheck = errcheck
    return dll


_libbpf: Optional[ctypes.CDLL] = None
_libc: Optional[ctypes.CDLL] = None


def libbpf() -> ctypes.CDLL:
    """libbpf.so.1, loaded and declared on first use (so --help works without it)."""
    global _libbpf
    if _libbpf is None:
        try:
            dll = ctypes.CDLL(LIBBPF_SONAME, use_errno=True)
        except OSError as e:
            raise LibraryMissing(
                f"cannot load {LIBBPF_SONAME} ({e}): install it with: apt-get install libbpf1"
            ) from None
        try:
            _libbpf = bind(dll, LIBBPF_FUNCS)
        except AttributeError as e:
            raise LibraryMissing(
                f"{LIBBPF_SONAME} lacks a function we need ({e}): install libbpf 1.1 or newer"
            ) from None
    return _libbpf


def libc() -> ctypes.CDLL:
    global _libc
    if _libc is None:
        try:
            _libc = bind(ctypes.CDLL(LIBC_SONAME, use_errno=True), LIBC_FUNCS)
        except (OSError, AttributeError) as e:
            raise LibraryMissing(f"cannot use {LIBC_SONAME} ({e}): oomkiller needs glibc") from None
    return _libc


def format_va_list(fmt: bytes, ap: int) -> str:
    """printf-format a C va_list with libc's vasprintf (consumes `ap`)."""
    c = libc()
    out = c_void_p()
    n = c.vasprintf(ctypes.byref(out), fmt, ap)
    if n < 0 or not out.value:
        return fmt.decode("utf-8", "replace")
    try:
        return ctypes.string_at(out.value, n).decode("utf-8", "replace")
    finally:
        c.free(out)


def declared(dll: ctypes.CDLL, table: Sequence[Decl]) -> list[str]:
    """Names from `table` whose restype/argtypes on `dll` differ from the table."""
    bad = []
    for name, restype, argtypes, errcheck in table:
        fn = getattr(dll, name)
        if fn.restype is not restype or list(fn.argtypes or ()) != list(argtypes):
            bad.append(name)
        elif errcheck is not None and getattr(fn, "errcheck", None) is not errcheck:
            bad.append(name)
    return bad
