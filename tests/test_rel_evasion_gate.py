"""Evasion and edge paths that need a killer of their own (issue 6): see
test_rel_evasion.py for the table. Here:

- sticky condemnation across a closed gate: condemned, then every fd closed,
  or exec'd into a target name → killed when the gate opens; condemned, then
  renamed or exec'd out of the name → not killed (documented escape); a
  compliant target and a non-target crossing everything → alive.
- targets started before the killer: judged at their first counted event.
- io_uring's io-wq workers are not counted as created threads.
"""
import os
import signal

import killer as K
import rel_common as R


KILLED = -signal.SIGKILL


def test_condemnation_is_sticky_across_a_closed_gate(tmp_path):
    plain = K.plain_copy(tmp_path)
    gate = R.closed_gate()
    cases = {  # name: (steps, prog, dies)
        "closed its fds": (["open:150", "close", "pause"], K.WORK, True),
        "exec into the name": (["write:100", f"exec:{K.WORK}", "pause"], K.WORK, True),
        "renamed out": (["write:100", "name:plain", "pause"], K.WORK, False),
        "exec out of the name": (["write:100", f"exec:{plain}", "pause"], K.WORK, False),
        "compliant": (["write:10", "pause"], K.WORK, False),
        "non-target crossing everything": (["write:150", "open:150", "rand:150", "threads:150",
                                            "pause"], plain, False),
    }
    with K.Killer(*gate, "--interval", "0.5") as k, R.Group() as g:
        procs = {name: g.spawn(*steps, prog=prog) for name, (steps, prog, _) in cases.items()}
        for name, p in procs.items():
            assert p.wait_state(K.S_SLEEPING), f"{name}: {p.describe()}"
            if name in ("compliant", "non-target crossing everything"):
                continue
            ev = k.wait_event(pid=p.pid, kind="condemned")
            assert ev is not None, f"{name}: not condemned: {k.events}"
        k.wait_samples(2)  # two samples and sweeps with the gate closed
        assert all(p.alive() for p in procs.values()), "killed with the gate closed"
        with R.opening_ballast(gate):
            for name, p in procs.items():
                if cases[name][2]:
                    rc = p.wait(10)
                    assert rc == KILLED, f"{name}: condemned, the gate opened: {p.describe()}"
            k.wait_samples(3)  # three samples and sweeps with the gate open
            for name, p in procs.items():
                if not cases[name][2]:
                    assert p.alive(), f"{name}: killed when the gate opened: {p.describe()}"
        for name, p in procs.items():
            kills = k.find_events(pid=p.pid, kind="kill")
            assert bool(kills) == cases[name][2], (name, kills)


def test_targets_started_before_the_killer():
    with R.Group() as g:
        fds = g.spawn("open:150", "sig", "write:1", "pause")
        w99 = g.spawn("write:150", "sig", "write:99", "pause")
        w100 = g.spawn("write:150", "sig", "write:100", "pause")
        asleep = g.spawn("open:150", "write:150", "pause")
        for p in (fds, w99, w100):
            assert p.wait_state(K.S_WAITING), p.describe()
        assert asleep.wait_state(K.S_SLEEPING)
        with K.Killer(*R.OPEN) as k:
            for p in (fds, w99, w100):
                os.kill(p.pid, signal.SIGUSR1)
            assert fds.wait(10) == KILLED, f"150 fds from before, then one write: {fds.describe()}"
            ev = k.wait_event(pid=fds.pid, kind="kill")
            assert ev is not None and K.rule_key(ev["rule"]) == "fds" and ev["value"] >= 150, ev
            assert w100.wait(10) == KILLED, w100.describe()
            ev = k.wait_event(pid=w100.pid, kind="kill")
            assert ev is not None and ev["value"] == 100, ev
            assert w99.wait_state(K.S_SLEEPING), w99.describe()
            k.wait_samples(2)
            assert w99.alive(), "writes before the killer started were counted"
            assert asleep.alive(), "a target that makes no call after the start is not judged"
            assert not k.find_events(pid=w99.pid) and not k.find_events(pid=asleep.pid)


def test_io_uring_workers_are_not_created_threads():
    # With --max-threads 1, one counted thread kills. IOSQE_ASYNC hands every
    # write to io-wq workers (iou-wrk-*), threads of the target's group.
    with K.Killer(*R.OPEN, "--max-threads", "1") as k, R.Rel("uring-aw:99", "pause") as p:
        assert p.wait_state(K.S_SLEEPING), p.describe()
        names = []
        for tid in os.listdir(f"/proc/{p.pid}/task"):
            try:
                names.append(open(f"/proc/{p.pid}/task/{tid}/comm").read().strip())
            except OSError:
                pass
        assert any(n.startswith("iou-wrk") for n in names), \
            f"no io-wq worker seen (threads {names}): the test proves nothing"
        assert p.pid in R.tracked_pids(k), "the killer never saw the io_uring target"
        k.wait_samples(1)
        assert p.alive(), p.describe()
        assert not k.find_events(pid=p.pid), k.find_events(pid=p.pid)


def test_io_wq_workers_beside_90_threads_of_its_own_live():
    """Issue 18's shape: io-wq workers (kernel-made) plus 90 threads the
    program made itself, under the default limit of 100 threads, live."""
    with K.Killer(*R.OPEN) as k, R.Rel("uring-aw:50", "threads:90", "pause") as p:
        assert p.wait_state(K.S_SLEEPING), p.describe()
        workers = 0
        for tid in os.listdir(f"/proc/{p.pid}/task"):
            try:
                workers += open(f"/proc/{p.pid}/task/{tid}/comm").read().startswith("iou-wrk")
            except OSError:
                pass
        assert workers >= 1, "no io-wq worker seen: the test proves nothing"
        assert p.pid in R.tracked_pids(k), "the killer never saw the io_uring target"
        k.wait_samples(1)
        assert p.alive(), p.describe()
        assert not k.find_events(pid=p.pid), k.find_events(pid=p.pid)
