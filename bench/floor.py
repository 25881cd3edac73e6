#!/usr/bin/python3
"""Hold the floor programs (bench/floor.bpf.c) attached until stdin closes.

Usage: floor.py OBJECT [--only NAME,...]

Prints "floor: ready" on stdout once every program is attached. The links
are plain fds owned by this process and never pinned, so they go when it
exits, however it exits: the bench driver keeps our stdin open for as long
as it wants the floor and closes it (or kills us) to take it away.
"""
import ctypes
import os
import sys

_lib = ctypes.CDLL("libbpf.so.1", use_errno=True)
_lib.bpf_object__open_file.restype = ctypes.c_void_p
_lib.bpf_object__open_file.argtypes = [ctypes.c_char_p, ctypes.c_void_p]
_lib.bpf_object__load.restype = ctypes.c_int
_lib.bpf_object__load.argtypes = [ctypes.c_void_p]
_lib.bpf_object__next_program.restype = ctypes.c_void_p
_lib.bpf_object__next_program.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_lib.bpf_object__find_program_by_name.restype = ctypes.c_void_p
_lib.bpf_object__find_program_by_name.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
_lib.bpf_program__set_autoload.restype = ctypes.c_int
_lib.bpf_program__set_autoload.argtypes = [ctypes.c_void_p, ctypes.c_bool]
_lib.bpf_program__autoload.restype = ctypes.c_bool
_lib.bpf_program__autoload.argtypes = [ctypes.c_void_p]
_lib.bpf_program__name.restype = ctypes.c_char_p
_lib.bpf_program__name.argtypes = [ctypes.c_void_p]
_lib.bpf_program__attach.restype = ctypes.c_void_p
_lib.bpf_program__attach.argtypes = [ctypes.c_void_p]


def _fail(what: str) -> None:
    err = ctypes.get_errno()
    print(f"floor: {what}: {os.strerror(err) if err else 'failed'}", file=sys.stderr)
    sys.exit(1)


def main() -> None:
    if len(sys.argv) < 2:
        print("usage: floor.py OBJECT [--only NAME,...]", file=sys.stderr)
        sys.exit(2)
    obj = _lib.bpf_object__open_file(sys.argv[1].encode(), None)
    if not obj:
        _fail("open " + sys.argv[1])
    if len(sys.argv) == 4 and sys.argv[2] == "--only":
        keep = set(sys.argv[3].split(","))
        prog = _lib.bpf_object__next_program(obj, None)
        while prog:
            if _lib.bpf_program__name(prog).decode() not in keep:
                _lib.bpf_program__set_autoload(prog, False)
            prog = _lib.bpf_object__next_program(obj, prog)
    ret = _lib.bpf_object__load(obj)
    if ret < 0:
        ctypes.set_errno(-ret)
        _fail("load")
    links = []
    prog = _lib.bpf_object__next_program(obj, None)
    names = []
    while prog:
        if _lib.bpf_program__autoload(prog):
            link = _lib.bpf_program__attach(prog)
            name = _lib.bpf_program__name(prog).decode()
            if not link:
                _fail("attach " + name)
            links.append(link)
            names.append(name)
        prog = _lib.bpf_object__next_program(obj, prog)
    print("floor: ready " + " ".join(names), flush=True)
    # Hold the links until our parent closes the pipe (or dies).
    sys.stdin.buffer.read()


if __name__ == "__main__":
    main()
