"""`oomkiller selftest` on this kernel: every rule's row holds, and every
selector kind's (issue 20); it refuses to run beside another killer;
interrupted, it leaves nothing behind (issue 11)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys

import killer as K

sys.path.insert(0, str(K.ROOT / "src"))
from oomkiller.config import selectors  # noqa: E402

ROWS = {"fds", "writes", "read-bytes", "threads", "rand", "tcp-packets"}
# Each selector kind's policy and its writes limit (selftest_policies.WRITES).
SELECTORS = {"name": 21, "exe": 22, "cgroup": 23, "user": 24, "tree": 25}


def selftest(timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([str(K.OOMKILLER), "selftest"], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def children_of(pid: int) -> set[int]:
    """Every live descendant of pid (from /proc's ppid fields)."""
    parent = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    parent[int(d)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pass
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        kids = {c for c, pp in parent.items() if pp == p}
        out |= kids
        todo += kids
    return out


def lock_pid() -> int:
    """The pid the running killer wrote into the instance lock, or 0."""
    try:
        with open("/run/oomkiller/lock") as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def test_every_rule_and_selector_holds_here(e2e_session):
    before = K.bpf_prog_ids()
    cgroups_before = set(os.listdir(selectors.cgroup2_mount()))
    res = selftest()
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["RULE", "FAMILY", "LIMIT"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:] if ln.split()[0] in ROWS}
    assert set(rows) == ROWS, lines
    for rule, cells in rows.items():
        assert cells[3:6] == ["yes", "yes", "yes"], cells
        assert cells[-1] == "µs" and float(cells[-2]) > 0, cells
    # Then one row per selector kind, each its own policy at its own writes
    # limit; the twin that fails the selector falls to default, at 20.
    selected = [ln for ln in lines if ln.startswith("selector ")]
    assert [ln.split()[1] for ln in selected] == list(SELECTORS), lines
    assert lines[len(ROWS) + 1:len(ROWS) + 1 + len(SELECTORS)] == selected, lines
    for ln in selected:
        kind, state = ln.split()[1:3]
        assert state == "ok", ln
        if kind != "tree":
            assert f"killed at writes {SELECTORS[kind]}/{SELECTORS[kind]} by selftest-{kind}; " \
                in ln and ln.endswith("killed at writes 20/20 by default"), ln
    tree = next(ln for ln in selected if ln.split()[1] == "tree")
    assert "its child selftest-other: killed at writes 25/25 by selftest-tree, " in tree, tree
    assert tree.endswith("alone: lived"), tree
    assert lines[-1] == "every rule and selector holds"
    assert K.wait_until(lambda: not (K.bpf_prog_ids() - before), 10), "programs left attached"
    assert set(os.listdir(selectors.cgroup2_mount())) == cgroups_before, "a cgroup left behind"


def test_refuses_beside_a_running_killer(e2e_session):
    with K.Killer() as k:
        res = selftest(60)
        assert res.returncode == 1
        assert res.stdout == ""
        assert res.stderr == f"oomkiller: a killer is already running, pid {k.pid}: stop it first\n"


def test_interrupted_it_leaves_nothing(e2e_session):
    before = K.bpf_prog_ids()
    cgroups_before = set(os.listdir(selectors.cgroup2_mount()))
    proc = subprocess.Popen([str(K.OOMKILLER), "selftest"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    try:
        # Its killer holds the instance lock: then it has something to clean up.
        assert K.wait_until(lambda: lock_pid() in children_of(proc.pid), 300, 0.1), \
            "the selftest's killer never took the lock"
        kids = children_of(proc.pid)
        assert kids
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 1, (out, err)
    assert err.strip().endswith("interrupted: every process it started is stopped"), err
    assert not {p for p in kids if K.alive(p)}, "a process the selftest started survived it"
    assert K.wait_until(lambda: not (K.bpf_prog_ids() - before), 10), "programs left attached"
    assert set(os.listdir(selectors.cgroup2_mount())) == cgroups_before, "a cgroup left behind"


def test_a_killer_that_cannot_start_is_said_at_once(e2e_session, tmp_path):
    """Its killer fails at start (here: no BPF object): selftest prints that
    killer's own error and exits 1, every time, instead of waiting."""
    env = dict(os.environ, OOMKILLER_BPF_OBJ=str(tmp_path / "missing.bpf.o"))
    for _ in range(5):
        res = subprocess.run([str(K.OOMKILLER), "selftest"], capture_output=True, text=True,
                             timeout=60, stdin=subprocess.DEVNULL, env=env)
        assert res.returncode == 1, res
        assert res.stdout == ""
        assert res.stderr == ("oomkiller: the selftest's killer did not start: cannot read BPF "
                              f"object {tmp_path / 'missing.bpf.o'}: No such file or directory: "
                              "check OOMKILLER_BPF_OBJ\n"), res.stderr
