"""Evasion and edge paths (issue 6): what each one does, held by a test.

Renaming (the target is the thread-group leader's comm, checked at every event)
- prctl(PR_SET_NAME) INTO the name: a non-target becomes a target and is
  counted from then on (its earlier calls never counted).
- prctl(PR_SET_NAME) OUT of the name: the process stops being counted and
  is not killed: a documented escape (the policy judges the name).
- a non-leader thread renaming itself changes nothing, either way.
- exec of a program whose name has the substring: a target from the exec
  on, counters from zero. exec of one without it: no longer a target.
- condemned with the gate closed, then the gate opens: still killed after an
  exec into a target name (condemnation is sticky across exec) and after
  closing every fd (sticky: the fds level dropping does not pardon); NOT
  killed after renaming or exec'ing out of the name (the sweep re-checks the
  name: documented escape).
Children
- fork: the child has its own counters from zero (it dies at its own 100th
  write; the parent's 99 don't count for it, and its writes not for the parent).
- vfork: the same (the child is a process of its own, even while it borrows
  the parent's memory).
io_uring
- IORING_OP_WRITE and IORING_OP_READ are not write(2)/read(2): not counted,
  inline or in io-wq workers (IOSQE_ASYNC); the workers are not counted as
  created threads. Documented gap. io_uring_setup's fd does count as an fd.
- IORING_OP_SEND on TCP goes through sock_sendmsg and IS counted.
sendfile and splice
- into a TCP socket: counted as TCP segments (the 1000th kills).
- from a file to a non-socket: neither read bytes nor writes (not those
  syscalls). Documented gap.
Started before the killer
- judged at its first counted event after the killer starts: the fd level is
  read then (150 fds open → killed at its next call); writes and the other
  counters count from the killer's start. One that never makes another
  counted call is never judged (documented).
"""
import os
import signal

import pytest

import killer as K
import rel_common as R


KILLED = -signal.SIGKILL


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    return K.plain_copy(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def killer():
    """The module's only long-lived killer, gate open. Tests that need their
    own killer live in test_rel_evasion_gate.py (never two killers at once)."""
    with K.Killer(*R.OPEN) as k:
        yield k


def run(k, *steps, prog=K.WORK, out=False, timeout=60):
    p = R.Rel(*steps, prog=prog, out=out)
    try:
        p.rc = p.wait(timeout)
        p.final = p.progress()
    finally:
        p.close()
    p.events = k.find_events(pid=p.pid)
    return p


def kill_event(k, p, rule="writes", value=100):
    ev = k.wait_event(pid=p.pid, kind="kill")
    assert ev is not None, f"no kill event for {p.describe()}"
    assert K.rule_key(ev["rule"]) == K.rule_key(rule), ev
    if value is not None:
        assert ev["value"] == value, ev
    return ev


# ---- renaming ------------------------------------------------------------------

def test_rename_into_the_name_is_counted_from_then(killer, plain):
    p = R.Rel("write:150", "name:xoomp_in", "write:99", "sig", "write:1", "pause", prog=plain,
              out=True)
    with p:
        assert p.wait_state(K.S_WAITING), p.describe()
        assert p.alive(), "150 writes before the rename must not count"
        os.kill(p.pid, signal.SIGUSR1)
        assert p.wait(10) == KILLED, p.describe()
        assert p.out_size() == 250
        ev = kill_event(killer, p)
        assert ev["comm"] == "xoomp_in", ev


def test_rename_out_of_the_name_escapes(killer):
    p = run(killer, "write:50", "name:plain", "write:150", "rand:150", "open:150")
    assert p.rc == 0, p.describe()
    assert not p.events, p.events


def test_thread_rename_changes_nothing(killer, plain):
    p = run(killer, "thread:oomp_thread", "write:150", prog=plain)
    assert p.rc == 0, f"a non-target's thread named oomp_thread: {p.describe()}"
    assert not p.events
    p = run(killer, "thread:plainthread", "write:100", "pause")
    assert p.rc == KILLED, f"a target's thread renamed out still counts: {p.describe()}"
    kill_event(killer, p)


def test_exec_into_the_name_counts_from_the_exec(killer, plain):
    p = run(killer, "write:150", f"exec:{K.WORK}", "write:99", prog=plain)
    assert p.rc == 0, p.describe()
    p = run(killer, "write:150", f"exec:{K.WORK}", "write:100", "pause", prog=plain)
    assert p.rc == KILLED, p.describe()
    kill_event(killer, p)


def test_exec_out_of_the_name_escapes(killer, plain):
    p = run(killer, "write:99", f"exec:{plain}", "write:150")
    assert p.rc == 0, p.describe()
    assert not p.events


def test_exec_resets_counters(killer):
    p = run(killer, "write:99", f"exec:{K.WORK}", "write:99")
    assert p.rc == 0, p.describe()


# ---- children ----------------------------------------------------------------------

@pytest.mark.parametrize("how", ["forkw", "vforkw"])
def test_children_have_their_own_counters(killer, how):
    p = run(killer, "write:99", f"{how}:99", "rand:99")
    assert p.rc == 0, p.describe()
    assert p.final[K.P_B] == 0, f"{how} child of 99 writes: wait status {p.final[K.P_B]}"
    assert not p.events

    p = run(killer, "write:99", f"{how}:100", "rand:99")
    assert p.rc == 0, f"the parent lives when its {how} child dies: {p.describe()}"
    child, status = p.final[K.P_A], p.final[K.P_B]
    assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, \
        f"{how} child {child}: wait status {status}"
    ev = killer.wait_event(pid=child, kind="kill")
    assert ev is not None and ev["value"] == 100, ev
    assert not p.events, p.events


# ---- io_uring ----------------------------------------------------------------------

def test_io_uring_writes_are_counted(killer):
    p = R.Rel("uring-w:99", "pause", out=True)
    with p:
        assert p.wait_state(K.S_SLEEPING), p.describe()
        assert p.out_size() == 99
    p = R.Rel("uring-aw:150", out=True)
    with p:
        assert p.wait(30) == KILLED, p.describe()
        assert p.out_size() == 100
    kill_event(killer, p, "writes", 100)


def test_io_uring_reads_are_counted(killer):
    p = run(killer, "uring-r:11M", "pause")
    assert p.rc == KILLED, p.describe()
    ev = killer.wait_event(pid=p.pid, kind="kill")
    assert ev is not None and K.rule_key(ev["rule"]) == "readbytes", ev


def test_aio_writes_are_counted(killer):
    p = run(killer, "aio-aw:100", "pause")
    assert p.rc == KILLED, p.describe()
    kill_event(killer, p, "writes", 100)


def test_io_uring_tcp_send_is_counted(killer):
    p = run(killer, "uring-send:999")
    assert p.rc == 0, p.describe()
    p = run(killer, "uring-send:1000", "pause")
    assert p.rc == KILLED, p.describe()
    kill_event(killer, p, "tcp-packets", 1000)


# ---- sendfile and splice -------------------------------------------------------------

@pytest.mark.parametrize("via", ["sendfile", "splice"])
def test_sendfile_and_splice_into_tcp_are_counted(killer, via):
    res = K.work("tcp-send", 999, "--via", via, "--nodelay")
    assert res.ok, res.describe()
    res = K.work("tcp-send", 1000, "--via", via, "--nodelay", "--then-sleep")
    assert res.killed, res.describe()
    ev = killer.wait_event(pid=res.pid, kind="kill")
    assert ev is not None and K.rule_key(ev["rule"]) == "tcppackets" and ev["value"] == 1000, ev


# As /proc/PID/io counts them: sendfile reads its bytes (rchar) and each call
# is one write call (syscw); splice is neither. oomp_work sends 64 KiB a call.
def test_sendfile_to_a_file_below_both_limits_lives(killer):
    p = run(killer, "sendfile:6M")  # 96 calls, 6 MiB
    assert p.rc == 0, p.describe()
    assert not p.events


def test_sendfile_to_a_file_is_a_write_per_call(killer):
    p = run(killer, "sendfile:7M", "pause")  # the 100th call crosses
    assert p.rc == KILLED, p.describe()
    kill_event(killer, p, "writes", 100)


def test_splice_to_a_file_is_not_a_read_or_write(killer):
    p = run(killer, "splice:11M")
    assert p.rc == 0, p.describe()
    assert not p.events
