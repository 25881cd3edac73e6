"""No wrong kill, no silent escape (issue 17), in whichever family the
killer runs (the VM lane runs this module once per family and kernel),
under one default killer; tests/test_e2e_killpath.py has those that need
their own.

- Writes are calls that reached a file's write method: writev-family calls
  that failed before it or wrote nothing, and any call on a socket, are not;
  failed writes that reached it (EPIPE, EAGAIN) are, and the 100th kills.
- Descriptors made by any call count when they are made (ioctl here).
Each program prints one line ("done", one write more) when it gets to its end.
"""
from __future__ import annotations

import pytest

import killer as K
from conftest import PROGS32

NOTW = "oomp_notw"
BUILDS = {"64": K.PROGS / NOTW, "32": PROGS32 / NOTW}


def _kill_event(k: K.Killer, res: K.Result, rule: str) -> dict:
    ev = k.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, f"no kill event for {res.pid}: {k.events[-5:]}"
    assert K.rule_key(ev["rule"]) == K.rule_key(rule), ev
    return ev


@pytest.mark.parametrize("bits", sorted(BUILDS))
def test_calls_that_never_reached_a_write_method_are_not_writes(default_killer, tmp_path, bits):
    """~750 writev/pwritev/pwritev2 calls that fail before the write method
    (EBADF, EFAULT, EINVAL, ESPIPE, EOPNOTSUPP) or write nothing, zero-length
    writevs and empty sendfiles on a TCP socket, then 98 real writes and the
    "done" line: 99 writes, alive."""
    out = tmp_path / "below"
    res = K.run(BUILDS[bits], "notw", out, 98)
    assert res.ok, f"not-writes counted as writes: {res.describe()}"
    assert res.stdout.startswith("done"), res.describe()
    assert out.stat().st_size == 98
    assert not default_killer.find_events(pid=res.pid)


@pytest.mark.parametrize("bits", sorted(BUILDS))
def test_after_the_not_writes_the_100th_real_write_kills(default_killer, tmp_path, bits):
    out = tmp_path / "at"
    res = K.run(BUILDS[bits], "notw", out, 150)
    assert res.killed, res.describe()
    ev = _kill_event(default_killer, res, "writes")
    assert ev["value"] == 100, ev
    assert out.stat().st_size == 100, "the 100th write completes, nothing after it"


@pytest.mark.parametrize("how,below,at", [("epipe", 98, 100), ("eagain", 97, 99)])
def test_failed_writes_that_reached_the_method_count_and_the_100th_kills(default_killer,
                                                                        how, below, at):
    """write()/writev() failing with EPIPE or EAGAIN reached the pipe's write
    method: they count, and the 100th (eagain: 1 filling write + 99) kills in
    its own call, with no successful write after it."""
    res = K.run(NOTW, how, below)
    assert res.ok and res.stdout.startswith("done"), res.describe()
    assert not default_killer.find_events(pid=res.pid)
    res = K.run(NOTW, how, at)
    assert res.killed, f"the 100th failed write must kill: {res.describe()}"
    assert "done" not in res.stdout, res.describe()
    assert _kill_event(default_killer, res, "writes")["value"] == 100


def test_descriptors_from_an_ioctl_count_when_made(default_killer):
    """NS_GET_USERNS makes a descriptor: 0/1/2, the ns file and 96 of them are
    100, and the 96th ioctl kills. 95 live."""
    res = K.run(NOTW, "nsfd", 95)
    assert res.ok and res.stdout.startswith("done"), res.describe()
    assert not default_killer.find_events(pid=res.pid)
    res = K.run(NOTW, "nsfd", 96)
    assert res.killed, f"100 descriptors from ioctl must kill: {res.describe()}"
    assert _kill_event(default_killer, res, "fds")["value"] == 100
