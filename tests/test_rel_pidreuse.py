"""PID reuse (issue 6): a reused PID never inherits a condemnation or a count.

The killer keys its map by tgid in the initial PID namespace (what
bpf_get_current_pid_tgid() returns), so that is the number that must come
back. A lowered kernel.pid_max or ns_last_pid in a child namespace only
chooses the child-namespace number; the initial-namespace number would still
be allocated cyclically. So we force the exact reuse with clone3(set_tid)
(Linux 5.5, needs CAP_SYS_ADMIN): tests/progs/rel_setpid runs a program as a
chosen PID in the initial namespace, or fails if it is taken. Nothing global
is changed.

- A target condemned with the gate closed is killed by us and its PID comes
  back as a compliant target (and another as a non-target); the gate opens:
  they live, while a second condemned sleeper dies (the sweep did run).
- A target makes 99 writes and exits; its PID comes back and makes 99 more:
  it lives (a counter carried over would reach 100).
"""
import signal

import killer as K
import rel_common as R


def reuse(pid, *steps, prog=K.WORK, tmp=None):
    """A Rel run as exactly `pid` through rel_setpid (which mirrors its exit)."""
    r = R.Rel(*steps, prog=prog, prefix=[R.SETPID, pid], tmp=tmp)
    ok = K.wait_until(lambda: r.slot(K.P_MYPID) == pid or r.poll() is not None, 10)
    assert ok and r.slot(K.P_MYPID) == pid, \
        f"pid {pid} not reused: {r.describe()} (rel_setpid exit 4: pid taken)"
    return r


def test_condemned_pid_reused_by_compliant_target_is_not_killed(tmp_path):
    gate = R.closed_gate()
    plain = K.plain_copy(tmp_path)
    with K.Killer(*gate, "--interval", "0.5") as k, R.Group() as g:
        old = g.spawn("write:100", "pause")
        control = g.spawn("write:100", "pause")
        for p in (old, control):
            assert p.wait_state(K.S_SLEEPING), p.describe()
            ev = k.wait_event(pid=p.pid, kind="condemned")
            assert ev is not None, k.events
        old_nt = g.spawn("write:100", "pause")
        assert old_nt.wait_state(K.S_SLEEPING)
        assert k.wait_event(pid=old_nt.pid, kind="condemned") is not None
        assert {old.pid, old_nt.pid, control.pid} <= R.tracked_pids(k)
        pid, pid_nt = old.pid, old_nt.pid
        old.kill()
        old_nt.kill()
        gone = K.wait_until(lambda: not ({pid, pid_nt} & R.tracked_pids(k)), 5, 0.1)
        assert gone, f"exited pids still in the map: {R.tracked_pids(k)}"

        new = reuse(pid, "write:1", "pause", tmp=g.tmp)
        g.procs.append(new)
        new_nt = reuse(pid_nt, "write:150", "pause", prog=plain, tmp=g.tmp)
        g.procs.append(new_nt)
        for p in (new, new_nt):
            assert p.wait_state(K.S_SLEEPING), p.describe()
        assert pid in R.tracked_pids(k), "the new target has an entry of its own"
        assert pid_nt not in R.tracked_pids(k), "a non-target is never tracked"

        with R.opening_ballast(gate):
            rc = control.wait(10)
            assert rc == -signal.SIGKILL, f"the sweep did not run: {control.describe()}"
            k.wait_samples(3)  # three more samples and sweeps with the gate open
            assert new.alive(), f"reused pid {pid} (compliant target) killed: {new.describe()}"
            assert new_nt.alive(), f"reused pid {pid_nt} (non-target) killed"
        kills = [e for e in k.find_events(kind="kill") if e["pid"] in (pid, pid_nt)]
        assert not kills, kills


def test_reused_pid_starts_from_zero():
    with K.Killer(*R.OPEN) as k, R.Group() as g:
        old = g.spawn("write:99")
        assert old.wait(20) == 0, old.describe()
        pid = old.pid
        K.wait_until(lambda: pid not in R.tracked_pids(k), 5, 0.1)
        new = reuse(pid, "write:99", tmp=g.tmp)
        g.procs.append(new)
        rc = new.wait(20)
        assert rc == 0, f"pid {pid} reused after 99 writes, 99 more: {new.describe()}"
        assert not k.find_events(pid=pid)
        # and the same pid crossing on its own still dies
        again = reuse(pid, "write:100", "pause", tmp=g.tmp)
        g.procs.append(again)
        assert again.wait(20) == 128 + signal.SIGKILL, again.describe()
        ev = k.wait_event(pid=pid, kind="kill")
        assert ev is not None and ev["value"] == 100, ev
