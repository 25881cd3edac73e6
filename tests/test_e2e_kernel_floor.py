"""The kernel floor (issue 19): on a kernel with every kfunc the object calls,
oomkiller starts; on one that lacks any (Debian 12's 6.1, Debian 13's 6.12),
it names them in one line and exits 1, and selftest says the same at once.

Which kfuncs those are is read here with bpftool, from the built object and
the running kernel's BTF, not from the loader. Runs on this machine (which
has them all) and in the floor guests (`make test-vm-floor`), which don't.
"""
from __future__ import annotations

import os
import re
import subprocess

import killer as K

OBJECT = K.ROOT / "build" / "oomkiller.bpf.o"


def btf_funcs(path, linkage: str = "") -> list[str]:
    """FUNC names in the BTF of path (an object or /sys/kernel/btf/vmlinux),
    only those of this linkage if one is given, in BTF order."""
    out = subprocess.run(["bpftool", "btf", "dump", "file", str(path)], check=True,
                         capture_output=True, text=True).stdout
    return [m.group(1) for m in re.finditer(r"^\[\d+\] FUNC '([^']+)' .*linkage=(\w+)$", out, re.M)
            if not linkage or m.group(2) == linkage]


def test_it_starts_or_names_the_kfuncs_this_kernel_lacks(e2e_session):
    wanted = btf_funcs(OBJECT, "extern")
    assert "bpf_send_signal_task" in wanted, wanted
    have = set(btf_funcs("/sys/kernel/btf/vmlinux"))
    missing = [k for k in wanted if k not in have]
    if not missing:
        with K.Killer("--min-used", "1T") as k:
            assert k.ready_line.startswith("oomkiller: ready: families ")
        return
    line = re.compile(rf"oomkiller: this kernel \({re.escape(os.uname().release)}\) lacks "
                      rf"{re.escape(', '.join(missing))} \(Linux (\d+\.\d+)\+\): "
                      r"boot Linux \1 or newer \(.+\)\n")
    before = K.bpf_prog_ids()
    res = subprocess.run([str(K.OOMKILLER), "--min-used", "1T"], capture_output=True,
                         text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 1 and res.stdout == "", res
    assert line.fullmatch(res.stderr), res.stderr
    assert K.bpf_prog_ids() == before, "nothing may stay loaded"
    res = subprocess.run([str(K.OOMKILLER), "selftest"], capture_output=True, text=True,
                         timeout=120, stdin=subprocess.DEVNULL)
    assert res.returncode == 1 and res.stdout == "", res
    said = res.stderr.replace("the selftest's killer did not start: ", "", 1)
    assert line.fullmatch(said), res.stderr
