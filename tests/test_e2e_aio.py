"""Linux AIO (issue 18): io_submit writes count as writes, bytes that
io_getevents reports for reads as bytes read.

oomp_work's AIO steps: `aio-aw:N` makes N writes of 1 byte to OUT, one
io_submit each (each reaped); `aio-awb:N` submits all N in one io_submit;
`aio-ar:N` reads N bytes from /dev/zero, 64 KiB a request, each reaped.
"""
import killer as K

WRITES = 100


def _kill_event(k: K.Killer, pid: int, rule: str) -> dict:
    ev = k.wait_event(pid=pid, kind="kill")
    assert ev is not None, f"no kill event for {pid}: {k.events[-5:]}"
    assert K.rule_key(ev["rule"]) == K.rule_key(rule), ev
    return ev


def _counter(k: K.Killer, pid: int, rule: str) -> int:
    procs = {p["pid"]: p for p in k.status()["processes"]}
    return procs[pid]["counters"][rule] if pid in procs else -1


def test_150_aio_writes_die_at_the_100th(default_killer):
    res = K.run(K.WORK, "aio-aw:150", progress=True, out=True)
    assert res.killed, res.describe()
    assert _kill_event(default_killer, res.pid, "writes")["value"] == WRITES
    assert res.out_size == WRITES, res.describe()


def test_150_aio_writes_in_one_io_submit_die(default_killer):
    """One call submits all 150: it is judged at its exit, as writev is."""
    res = K.run(K.WORK, "aio-awb:150", progress=True, out=True)
    assert res.killed, res.describe()
    assert _kill_event(default_killer, res.pid, "writes")["value"] == 150


def test_99_aio_writes_live(default_killer):
    with K.Workload(K.WORK, "aio-aw:99", "pause", progress=True, out=True) as w:
        assert w.wait_state(K.S_SLEEPING), "did not reach pause()"
        assert w.out_size() == WRITES - 1
        K.wait_until(lambda: _counter(default_killer, w.pid, "writes") == WRITES - 1, 20)
        assert _counter(default_killer, w.pid, "writes") == WRITES - 1, \
            default_killer.status()["processes"]
        default_killer.wait_samples(2)
        assert w.alive()
        assert not default_killer.find_events(pid=w.pid), default_killer.find_events(pid=w.pid)


def test_an_11_mib_aio_read_dies(default_killer):
    res = K.run(K.WORK, "aio-ar:11M", progress=True)
    assert res.killed, res.describe()
    ev = _kill_event(default_killer, res.pid, "read-bytes")
    assert 10 << 20 <= ev["value"] < (10 << 20) + 65536, ev


def test_aio_reads_below_the_limit_live(default_killer):
    with K.Workload(K.WORK, "aio-ar:10000000", "pause", progress=True) as w:
        assert w.wait_state(K.S_SLEEPING), "did not reach pause()"
        K.wait_until(lambda: _counter(default_killer, w.pid, "read-bytes") >= 10000000, 20)
        assert _counter(default_killer, w.pid, "read-bytes") >= 10000000
        default_killer.wait_samples(2)
        assert w.alive()
        assert not default_killer.find_events(pid=w.pid), default_killer.find_events(pid=w.pid)
