"""io_uring's direct descriptor table (issue 18): files a ring holds without
an fd count toward `fds`, and stop counting when the table or the ring goes.

`oomp_work uring-direct:N` opens /dev/null N times into a new ring's sparse
direct table (IORING_OP_OPENAT with IORING_FILE_INDEX_ALLOC); its fd table
then holds 0, 1, 2 and the ring's fd.
"""
import killer as K

LIMIT = 100


def _killed_for_fds(k: K.Killer, res: K.Result) -> dict:
    assert res.killed, res.describe()
    ev = k.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, f"no kill event for {res.pid}: {k.events[-5:]}"
    assert K.rule_key(ev["rule"]) == "fds" and ev["value"] == LIMIT, ev
    return ev


def test_120_files_in_the_direct_table_die(default_killer):
    res = K.run(K.WORK, "uring-direct:120", progress=True)
    _killed_for_fds(default_killer, res)
    # 4 fds (0, 1, 2, the ring) + 96 files in the table make 100
    assert res.progress[K.P_DONE] == LIMIT - 4 - 1, res.describe()


def test_direct_files_and_fds_add_up(default_killer):
    res = K.run(K.WORK, "uring-direct:90", "open:10", progress=True)
    _killed_for_fds(default_killer, res)


def test_a_ring_known_only_by_its_registered_index_counts(default_killer):
    """The ring's fd registered (IORING_REGISTER_RING_FDS) and closed: its
    table still counts, through the thread's registered rings."""
    res = K.run(K.WORK, "uring-direct:50", "uring-reg", "uring-direct:60", progress=True)
    assert res.killed, res.describe()
    ev = default_killer.wait_event(pid=res.pid, kind="kill")
    assert ev is not None and K.rule_key(ev["rule"]) == "fds" and ev["value"] == LIMIT, ev


def test_a_table_unregistered_stops_counting(default_killer):
    """90 files in the table, then the table unregistered: 90 plain fds
    more live (a kept count of the table would have killed them)."""
    res = K.run(K.WORK, "uring-direct:90", "uring-drop", "open:90", progress=True)
    assert res.ok, res.describe()
    assert not default_killer.find_events(pid=res.pid), default_killer.find_events(pid=res.pid)


def test_a_ring_closed_stops_counting(default_killer):
    res = K.run(K.WORK, "uring-direct:90", "uring-close", "open:90", progress=True)
    assert res.ok, res.describe()
    assert not default_killer.find_events(pid=res.pid), default_killer.find_events(pid=res.pid)


def test_95_direct_files_live(default_killer):
    """4 fds + 95 files in the table: 99, alive after the killer judged it
    (its level in `status` is 99, then two more samples pass)."""
    with K.Workload(K.WORK, "uring-direct:95", "pause", progress=True) as w:
        assert w.wait_state(K.S_SLEEPING), "did not reach pause()"
        procs = {p["pid"]: p for p in default_killer.status()["processes"]}
        assert procs[w.pid]["counters"]["fds"] == LIMIT - 1, procs.get(w.pid)
        default_killer.wait_samples(2)
        assert w.alive()
        assert not default_killer.find_events(pid=w.pid), default_killer.find_events(pid=w.pid)
