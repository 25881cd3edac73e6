"""Every rule at its exact boundary, default policy, gate open: limit-1 lives, limit dies.

Counts are the process's own totals since exec: `--total` makes oomp_work
include the fds it already had (0/1/2) and the bytes the dynamic loader
read before main (see loader_read_bytes in oomp_work.c).
"""
import pytest

import killer as K

CHUNK = 1  # bytes per write: oomp_work writes one byte a call unless -c

# rule: (op args for a count of N, N at the limit)
CASES = {
    "fds": (lambda n: ["open", n, "--total"], 100),
    "writes": (lambda n: ["write", n], 100),
    "read-bytes": (lambda n: ["read", n, "--total"], 10 * K.MiB),
    "threads": (lambda n: ["threads", n], 100),
    "rand": (lambda n: ["rand", n], 100),
    "tcp-packets": (lambda n: ["tcp-send", n, "--nodelay", "-c", 16], 1000),
    # an MPTCP socket's sends are TCP segments too (IPv6: tests/test_e2e_tcp.py)
    "tcp-packets-mptcp": (lambda n: ["tcp-send", n, "--mptcp", "-c", 1], 1000),
}


@pytest.mark.parametrize("rule", sorted(CASES))
def test_just_below_the_limit_lives(default_killer, bystander, rule):
    args, limit = CASES[rule]
    res = K.work(*args(limit - 1), out=(rule == "writes"))
    assert res.ok, f"{rule} at limit-1 ({limit - 1}) must live: {res.describe()}"
    base = res.progress[K.P_BASE] if rule == "read-bytes" else 0
    assert res.progress[K.P_DONE] == limit - 1 - base, res.describe()
    assert not default_killer.find_events(pid=res.pid), default_killer.find_events(pid=res.pid)


@pytest.mark.parametrize("rule", sorted(CASES))
def test_at_the_limit_dies(default_killer, bystander, rule):
    args, limit = CASES[rule]
    res = K.work(*args(limit), out=(rule == "writes"))
    assert res.killed, f"{rule} at the limit ({limit}) must die by SIGKILL: {res.describe()}"
    ev = default_killer.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, f"no kill event for {res.pid}: {default_killer.events[-5:]}"
    assert K.rule_key(ev["rule"]) == K.rule_key(rule.removesuffix("-mptcp")), ev
    assert ev["limit"] == limit, ev
    done = res.progress[K.P_DONE]
    if rule == "read-bytes":
        # killed in the read that crossed: its bytes never reached user space
        assert ev["value"] >= limit, ev
        assert res.progress[K.P_BASE] + done < limit, res.describe()
    else:
        # value is exact, and the crossing call was the last thing the process did
        assert ev["value"] == limit, ev
        assert done == limit - 1, f"ran on after the crossing call: {res.describe()}"
    if rule == "writes":
        assert res.out_size == limit * CHUNK, res.describe()
