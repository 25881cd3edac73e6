"""The killer never targets itself (issue 17, item 6), whatever --name says:
its own process is left out in BPF by tgid, so a --name that matches the
interpreter running it does not make it count its own writes and reads.
(selftest's own process is left out the same way: OOMKILLER_SELFTEST_PID.)
Family-independent (one tgid test in leader_is_target()): runs on the host.
"""
from __future__ import annotations

import shutil

import killer as K
import ops_helpers as H


def test_the_killer_never_counts_itself(tmp_path):
    """The killer run by an interpreter whose name matches --name: its own
    event lines are writes it must not count (it once killed itself at its
    3rd, with --max-writes 3)."""
    py = tmp_path / "oomp_py3"
    shutil.copy2("/usr/bin/python3", py)
    k = K.Killer("--min-used", "0", "--max-writes", "3")
    k.args.insert(0, str(py))
    with k:
        for _ in range(5):  # five kills: five event lines, and more writes of ours
            res = K.work("write", 10)
            assert res.killed, res.describe()
            assert k.wait_event(pid=res.pid, kind="kill") is not None, k.events[-5:]
        k.wait_samples(2)  # ticks after the last event line: it is still counting others
        assert k.running(), "the killer died:\n" + k.stderr_text()
        assert H.find_proc(k.status(), k.pid) is None, "the killer tracks itself"
