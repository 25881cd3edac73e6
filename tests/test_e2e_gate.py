"""The memory gate closed: nobody dies, violators are condemned, compliant
targets live. (The gate opening under a condemned sleeper: test_e2e_deferred.py,
a module of its own, because one killer runs at a time.)

Works whether the machine is above or below 1 GiB used: every threshold is
computed from the current sysinfo(), not assumed.
"""
import pytest

import killer as K

VIOLATORS = [
    ("writes", ["write", 150]),
    ("fds", ["open", 150, "--total"]),
    ("read-bytes", ["read", 11 * K.MiB]),
    ("threads", ["threads", 150]),
    ("rand", ["rand", 150]),
    ("tcp-packets", ["tcp-send", 1500, "-c", 16]),
]
SEED_VIOLATORS = ["oomp_test_fds", "oomp_test_threads", "oomp_test_reads", "oomp_test_readv",
                  "oomp_test_writes", "oomp_test_pwrite64", "oomp_test_packets", "oomp_test_rand"]


# ---- gate closed -------------------------------------------------------------

@pytest.fixture(scope="module")
def closed_killer(e2e_session):
    gate = K.mem_used() + 8 * K.GiB
    with K.Killer("--min-used", gate) as k:
        k.gate = gate
        yield k


@pytest.fixture(scope="module")
def closed_bystander(closed_killer):
    with K.sleeper("sleep", 0) as w:
        assert w.wait_state(K.S_SLEEPING)
        yield w


@pytest.mark.parametrize("rule,args", VIOLATORS, ids=[v[0] for v in VIOLATORS])
def test_gate_closed_violator_lives_and_is_condemned(closed_killer, closed_bystander, rule, args):
    assert K.mem_used() < closed_killer.gate, "something opened the gate"
    res = K.work(*args)
    assert res.ok, f"gate closed, nobody dies: {res.describe()}"
    ev = closed_killer.wait_event(pid=res.pid, kind="condemned")
    assert ev is not None, f"no condemned event for {res.pid}: {closed_killer.events[-5:]}"
    assert K.rule_key(ev["rule"]) == K.rule_key(rule), ev
    assert ev["value"] >= ev["limit"] == K.LIMITS[rule], ev
    assert ev["mem_used_bytes"] < closed_killer.gate, ev
    assert {"event", "pid", "comm", "rule", "value", "limit", "mem_used_bytes", "time"} <= set(ev)
    assert not closed_killer.find_events(pid=res.pid, kind="kill")


@pytest.mark.parametrize("prog", SEED_VIOLATORS)
def test_gate_closed_seed_violators_live(closed_killer, closed_bystander, prog):
    res = K.run(prog)
    assert res.ok, f"gate closed, nobody dies: {res.describe()}"
    assert closed_killer.wait_event(pid=res.pid, kind="condemned") is not None


def test_gate_closed_compliant_bystander_alive(closed_killer, closed_bystander):
    assert closed_bystander.alive()
    assert not closed_killer.find_events(pid=closed_bystander.pid)
    assert not closed_killer.find_events(kind="kill"), closed_killer.find_events(kind="kill")
