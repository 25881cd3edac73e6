"""The one walk of the `procs` map (tgid -> struct oomk_proc), for the
loader's -v summary and `oomkiller status`.

Entries come and go while we walk: a key that vanished between next-key and
lookup is skipped, and the walk stops after `limit` + 1 entries whatever
happens. Each call is a bpf(2) map syscall, which blocks kprobe-type and
classic tracepoint programs on its CPU while it runs: keep walks rare.
"""

from __future__ import annotations

import ctypes
from ctypes import byref, c_uint32

from oomkiller.bpf import abi


def walk(lib: ctypes.CDLL, fd: int, limit: int) -> list[tuple[int, abi.OomkProc]]:
    key, next_key = c_uint32(), c_uint32()
    out: list[tuple[int, abi.OomkProc]] = []
    first = True
    while len(out) <= limit:
        try:
            lib.bpf_map_get_next_key(fd, None if first else byref(key), byref(next_key))
        except FileNotFoundError:  # past the last key
            break
        first = False
        key.value = next_key.value
        value = abi.OomkProc()
        try:
            lib.bpf_map_lookup_elem(fd, byref(key), byref(value))
        except FileNotFoundError:  # exited meanwhile
            continue
        out.append((key.value, value))
    return out
