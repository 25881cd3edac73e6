"""Map full (issue 6): --capacity 8 and more targets than that.

Documented behaviour (README, Known limits): a target that finds the map
full is not tracked; it is counted in the BPF `untracked` total, the loader
prints `oomkiller: warning: ... not tracked: process map full` on stderr, and
it cannot be killed until an entry frees up. Targets already tracked are
enforced as before. Nothing crashes and no non-target is ever killed; once a
tracked target exits, its entry is free for the next target.
"""
import os
import signal

import killer as K
import rel_common as R


CAPACITY = 8


def test_map_full_never_crashes_and_keeps_enforcing(tmp_path):
    plain = K.plain_copy(tmp_path)
    with K.Killer(*R.OPEN, "--capacity", CAPACITY, "--interval", "0.5") as k, R.Group() as g:
        base = R.tracked(k)
        assert base < CAPACITY, f"{base} targets already tracked before the test"
        holders = [g.spawn("write:1", "sig", "write:150", "pause") for _ in range(CAPACITY - base)]
        for h in holders:
            assert h.wait_state(K.S_WAITING), h.describe()
        assert R.tracked(k) == CAPACITY, "the holders fill the map"
        assert {h.pid for h in holders} <= R.tracked_pids(k)

        extras = [g.spawn("write:150", "open:150", "rand:150", "pause") for _ in range(6)]
        outsider = g.spawn("write:150", "open:150", "rand:150", "threads:150", "pause", prog=plain)
        for p in (*extras, outsider):
            assert p.wait_state(K.S_SLEEPING), p.describe()
        warn = K.wait_until(lambda: [ln for ln in k.stderr_lines
                                     if "not tracked" in ln and "map full" in ln], 5)
        assert warn, f"no untracked warning on stderr:\n{k.stderr_text()}"
        assert all("Traceback" not in ln for ln in k.stderr_lines)
        k.wait_samples(2)
        assert all(p.alive() for p in extras), "untracked targets are documented to live"
        assert outsider.alive(), "a non-target died with the map full"
        assert k.running(), f"the killer died with the map full:\n{k.stderr_text()}"
        assert R.tracked(k) == CAPACITY

        # tracked ones are still enforced
        for h in holders[:2]:
            os.kill(h.pid, signal.SIGUSR1)
            assert h.wait(10) == -signal.SIGKILL, h.describe()
            ev = k.wait_event(pid=h.pid, kind="kill")
            assert ev is not None and ev["value"] == 100, ev
        # their entries are free again: a new target is tracked and enforced
        assert K.wait_until(lambda: R.tracked(k) == CAPACITY - 2, 5, 0.1), R.tracked(k)
        fresh = g.spawn("write:100", "pause")
        assert fresh.wait(10) == -signal.SIGKILL, fresh.describe()
        assert all(p.alive() for p in extras)
        assert outsider.alive()
        assert not k.find_events(pid=outsider.pid)
        assert not [e for e in k.find_events(kind="kill") if e["pid"] in {p.pid for p in extras}]
        assert k.running()
    assert k.returncode == 0, k.stderr_text()


def test_thread_records_do_not_leak_through_non_leader_execs():
    """A thread that execs while not the leader loses its tid without an
    exit; its record once stayed in the thread map for good, and with
    --capacity 50 (100 thread records) 2000 such execs filled it, after
    which new targets escaped writes, reads, threads and TCP unwarned.
    5000 of them now, then every rule still kills a fresh target."""
    with K.Killer(*R.OPEN, "--capacity", 50) as k:
        with R.Rel("texec:5000", "pause") as p:
            assert p.wait_state(K.S_SLEEPING, timeout=240), p.describe()
            assert p.slot(K.P_IMAGE) == 5000, p.describe()
            p.kill()
        for op, count, rule in (("write", 150, "writes"), ("read", 11 * K.MiB, "read-bytes"),
                                ("threads", 150, "threads"), ("rand", 150, "rand"),
                                ("open", 150, "fds"),
                                ("tcp-send", 1500, "tcp-packets")):
            res = K.work(op, count)
            assert res.killed, f"{rule} escaped after the execs: {res.describe()}"
            ev = k.wait_event(pid=res.pid, kind="kill")
            assert ev is not None and K.rule_key(ev["rule"]) == K.rule_key(rule), ev
        assert k.status()["untracked_threads"] == 0, k.status()
        assert not [ln for ln in k.stderr_lines if "not tracked" in ln], k.stderr_text()
