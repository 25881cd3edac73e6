"""journald's side of its native protocol, for the tests that listen where
journald would: one datagram -> {FIELD: value bytes}."""
from __future__ import annotations


def parse_native(data: bytes) -> dict[str, bytes]:
    out, i = {}, 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            key, value = line.split(b"=", 1)
            out[key.decode()], i = value, nl + 1
        else:  # FIELD\n, u64 little-endian size, value, \n
            size = int.from_bytes(data[nl + 1:nl + 9], "little")
            out[line.decode()] = data[nl + 9:nl + 9 + size]
            assert data[nl + 9 + size:nl + 10 + size] == b"\n", "no newline after a sized value"
            i = nl + 10 + size
    return out
