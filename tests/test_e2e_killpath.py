"""The kill path and what a descriptor is (issue 17), each test with a killer
of its own, in whichever family it runs (the VM lane: every family, kernel).

- A kill needs the name at the moment it is sent: a condemned target that
  renamed out of the name survives the sweep and its own exec into a
  program without the name.
- An fd slot a call has reserved but not yet filled is not a descriptor.
"""
from __future__ import annotations

import os
import signal

import killer as K
import ops_helpers as H


def test_a_condemned_target_that_left_the_name_is_never_killed(tmp_path, monkeypatch):
    """Condemned with the gate closed; it renames itself out of the name; a
    reload opens the gate and sweeps (the sweep skips it); then it execs a
    program without the name, with the gate open: the exec hook must not
    kill it either (it once did: `kill ... comm=plainwork`)."""
    conf = tmp_path / "oomkiller.conf"
    monkeypatch.setenv("OOMKILLER_CONFIG",
                       H.write_config(conf, "min-used = 1T\ninterval = 600\n"))
    plain = K.plain_copy(tmp_path)
    with K.Killer() as k, K.Workload(K.WORK, "--timeout", "300", "write:150", "name:plainname",
                                     "sig", f"exec:{plain}", "write:5", "pause",
                                     progress=True) as w:
        assert w.wait_state(K.S_WAITING), f"target never got to its signal wait: {w.progress()}"
        ev = k.wait_event(pid=w.pid, kind="condemned")
        assert ev is not None and K.rule_key(ev["rule"]) == "writes", k.events[-5:]
        sweeps = k.status()["sweeps"]
        H.write_config(conf, "min-used = 0\ninterval = 600\n")
        k.send_signal(signal.SIGHUP)
        assert H.wait_stderr(k, "reloaded:"), k.stderr_text()
        # The reload's own tick swept (the gate is open now): the sweep saw
        # the entry and left it, the name being gone.
        assert K.wait_until(lambda: k.status()["sweeps"] > sweeps, 30), k.status()
        assert w.alive(), "killed by the sweep after leaving the name"
        os.kill(w.pid, signal.SIGUSR1)
        assert w.wait_state(K.S_SLEEPING), f"exec'd image never paused: {w.progress()}"
        assert w.progress()[K.P_IMAGE] == 1, w.progress()
        assert w.alive(), "killed at or after its exec into a non-target"
        assert not k.find_events(pid=w.pid, kind="kill"), k.find_events(pid=w.pid)
        assert all("oomp" in e["comm"] for e in k.find_events(kind="kill"))


def test_fd_slots_reserved_by_calls_in_progress_are_not_descriptors(tmp_path):
    """60 threads blocked opening a FIFO hold 60 reserved slots of the fd
    table (set in its bitmap, no file yet): with --max-fds 50 the target
    lives while they wait, and dies once the opens complete."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with K.Killer("--min-used", "0", "--max-fds", "50") as k, \
            K.Workload(K.WORK, "--timeout", "300", "-i", fifo, "fifo-open:60", "sig",
                       "write:5", "pause", progress=True) as w:
        assert w.wait_state(K.S_WAITING), f"target never got to its signal wait: {w.progress()}"
        assert K.wait_until(lambda: _blocked_in_openat(w.pid) == 60, 30), \
            f"{_blocked_in_openat(w.pid)} of 60 threads blocked in openat"
        os.kill(w.pid, signal.SIGUSR1)  # 5 writes, each a checkpoint, then pause()
        assert w.wait_state(K.S_SLEEPING), f"target died or stalled: {w.progress()}"
        entry = H.find_proc(k.status(), w.pid)
        assert entry is not None and entry["counters"]["writes"] == 5, entry
        assert entry["counters"]["fds"] < 50, entry
        assert w.alive() and not k.find_events(pid=w.pid), k.find_events(pid=w.pid)
        writer = os.open(fifo, os.O_WRONLY)  # every blocked open now completes
        try:
            res = w.wait(30)
        finally:
            os.close(writer)
        assert res.killed, f"60 open descriptors over a limit of 50 must kill: {res.describe()}"
        ev = k.wait_event(pid=w.pid, kind="kill")
        assert ev is not None and K.rule_key(ev["rule"]) == "fds" and ev["value"] >= 50, ev


def _blocked_in_openat(pid: int) -> int:
    """Threads of pid inside openat(2) (x86-64 257), as /proc shows them."""
    n = 0
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/syscall") as f:
                n += f.read().split()[0] == "257"
        except (OSError, IndexError):
            pass
    return n
