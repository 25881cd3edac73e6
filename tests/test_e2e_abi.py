"""An object that abi.py no longer describes is refused with one line.

build/abi-swapped/oomkiller.bpf.o (mk/abi.mk) is the real object built from a
header with two __u64 members of struct oomk_stats swapped: the same size,
so only a member-by-member check against the object's BTF can see it. The
killer must exit 1 before loading anything, saying which member is where.
"""
import os
import subprocess

import killer as K


SWAPPED = K.ROOT / "build" / "abi-swapped" / "oomkiller.bpf.o"


def test_a_swapped_member_is_caught_with_one_line(e2e_session):
    assert SWAPPED.exists(), "run make progs"
    before = K.bpf_prog_ids()
    res = subprocess.run([str(K.OOMKILLER)], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "OOMKILLER_BPF_OBJ": str(SWAPPED)},
                         stdin=subprocess.DEVNULL)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert res.returncode == 1, (res.returncode, res.stderr)
    assert lines == ["oomkiller: struct oomk_stats has kills at offset 8 in the BPF object "
                     "but samples at 8 in oomkiller/bpf/abi.py: rebuild with make"], res.stderr
    assert "ready" not in res.stdout + res.stderr
    assert not (K.bpf_prog_ids() - before), "the refused object left programs loaded"
