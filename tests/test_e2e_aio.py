"""Linux AIO (issue 18): io_submit writes count as writes, bytes that
io_getevents reports for reads as bytes read.

oomp_work's AIO steps: `aio-aw:N` makes N writes of 1 byte to OUT, one
io_submit each (each reaped); `aio-awb:N` submits all N in one io_submit;
`aio-ar:N` reads N bytes from /dev/zero, 64 KiB a request, each reaped.
"""
import killer as K

WRITES = 100




def test_aio_over_the_limits_dies(default_killer):
    """150 writes one io_submit each die at the 100th, with the file at 100
    bytes; 150 in one io_submit die at its exit (judged together, as writev
    is); an 11 MiB read dies. Side by side."""
    with K.Workload(K.WORK, "aio-aw:150", progress=True, out=True) as one, \
         K.Workload(K.WORK, "aio-awb:150", progress=True, out=True) as batch, \
         K.Workload(K.WORK, "aio-ar:11M", progress=True) as read:
        res = {n: w.wait() for n, w in (("one", one), ("batch", batch), ("read", read))}
        for n, r in res.items():
            assert r.killed, f"{n}: {r.describe()}"
        assert default_killer.kill_event(res["one"].pid, "writes")["value"] == WRITES
        assert res["one"].out_size == WRITES, res["one"].describe()
        assert default_killer.kill_event(res["batch"].pid, "writes")["value"] == 150
        ev = default_killer.kill_event(res["read"].pid, "read-bytes")
        assert 10 << 20 <= ev["value"] < (10 << 20) + 65536, ev


def test_aio_under_the_limits_lives(default_killer):
    """99 writes and 10,000,000 bytes read: `status` shows them, and two
    samples later both are alive."""
    with K.Workload(K.WORK, "aio-aw:99", "pause", progress=True, out=True) as w, \
         K.Workload(K.WORK, "aio-ar:10000000", "pause", progress=True) as r:
        for p, rule, want in ((w, "writes", WRITES - 1), (r, "read-bytes", 10000000)):
            assert p.wait_state(K.S_SLEEPING), "did not reach pause()"
            K.wait_until(lambda: default_killer.counter(p.pid, rule) >= want, 20)
            got = default_killer.counter(p.pid, rule)
            # read-bytes also holds what the dynamic loader read (rchar)
            assert got == want if rule == "writes" else want <= got < want + 65536, \
                default_killer.status()["processes"]
        assert w.out_size() == WRITES - 1
        default_killer.wait_samples(2)
        for p in (w, r):
            assert p.alive()
            assert not default_killer.find_events(pid=p.pid), default_killer.find_events(pid=p.pid)
