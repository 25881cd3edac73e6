"""`oomkiller selftest` on this kernel: every rule's row holds; it refuses to
run beside another killer; interrupted, it leaves nothing behind (issue 11)."""
from __future__ import annotations

import os
import signal
import subprocess

import killer as K

ROWS = {"fds", "writes", "read-bytes", "threads", "rand", "tcp-packets"}


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


def test_every_rule_holds_here(e2e_session):
    before = K.bpf_prog_ids()
    res = selftest()
    assert res.returncode == 0, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["RULE", "FAMILY", "LIMIT"]
    rows = {ln.split()[0]: ln.split() for ln in lines[1:-1]}
    assert set(rows) == ROWS, lines
    for rule, cells in rows.items():
        assert cells[3:6] == ["yes", "yes", "yes"], cells
        assert cells[-1] == "µs" and float(cells[-2]) > 0, cells
    assert lines[-1] == "every rule holds"
    assert K.wait_until(lambda: not (K.bpf_prog_ids() - before), 10), "programs left attached"


def test_refuses_beside_a_running_killer(e2e_session):
    with K.Killer() as k:
        res = selftest(60)
        assert res.returncode == 1
        assert res.stdout == ""
        assert res.stderr == f"oomkiller: a killer is already running, pid {k.pid}: stop it first\n"


def test_interrupted_it_leaves_nothing(e2e_session):
    before = K.bpf_prog_ids()
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
