#!/usr/bin/python3
"""Hold the floor programs (bench/floor.bpf.c) attached until stdin closes.

Usage: floor.py OBJECT [--only NAME,...]

Prints "floor: ready" on stdout once every program is attached. The links
are plain fds owned by this process and never pinned, so they go when it
exits, however it exits: the bench driver keeps our stdin open for as long
as it wants the floor and closes it (or kills us) to take it away. libbpf
is driven through the package's own binding (src/oomkiller/bpf/_libbpf.py).
"""
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))
from oomkiller.bpf import _libbpf  # noqa: E402
from oomkiller.bpf.generation import iter_programs  # noqa: E402


def main() -> int:
    if len(sys.argv) not in (2, 4) or (len(sys.argv) == 4 and sys.argv[2] != "--only"):
        print("usage: floor.py OBJECT [--only NAME,...]", file=sys.stderr)
        return 2
    lib = _libbpf.libbpf()
    data = Path(sys.argv[1]).read_bytes()
    try:
        obj = lib.bpf_object__open_mem(data, len(data), None)
        if len(sys.argv) == 4:
            keep = set(sys.argv[3].split(","))
            for prog in iter_programs(lib, obj):
                lib.bpf_program__set_autoload(prog, lib.bpf_program__name(prog).decode() in keep)
        lib.bpf_object__load(obj)
        links, names = [], []
        for prog in iter_programs(lib, obj):
            if lib.bpf_program__autoload(prog):
                names.append(lib.bpf_program__name(prog).decode())
                links.append(lib.bpf_program__attach(prog))
    except OSError as e:
        print(f"floor: {e.strerror or os.strerror(e.errno or 0)}", file=sys.stderr)
        return 1
    print("floor: ready " + " ".join(names), flush=True)
    # Hold the links until our parent closes the pipe (or dies).
    sys.stdin.buffer.read()
    return 0


if __name__ == "__main__":
    sys.exit(main())
