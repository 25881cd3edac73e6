"""The memory gate: closed, nobody dies (violators are condemned); opened,
condemned targets die, even asleep in pause(); compliant targets live.

Works whether the machine is above or below 1 GiB used: every threshold is
computed from the current sysinfo(), not assumed.
"""
import signal
import time

import pytest

import killer as K

VIOLATORS = [
    ("writes", ["write", 150, "-q"]),
    ("fds", ["open", 150, "--total"]),
    ("read-bytes", ["read", 11 * K.MiB]),
    ("threads", ["threads", 150]),
    ("rand", ["rand", 150]),
    ("tcp-packets", ["tcp-send", 1500, "-c", 16]),
]
SEED_VIOLATORS = ["oomp_test_fds", "oomp_test_threads", "oomp_test_reads", "oomp_test_readv",
                  "oomp_test_writes", "oomp_test_pwrite64", "oomp_test_packets", "oomp_test_rand"]


def sleeper(*args):
    return K.Workload("oomp_work", *args, "--then-sleep", "--timeout", "300", progress=True)


# ---- gate closed -------------------------------------------------------------

@pytest.fixture(scope="module")
def closed_killer(e2e_session):
    gate = K.mem_used() + 8 * K.GiB
    with K.Killer("--min-used", gate) as k:
        k.gate = gate
        yield k


@pytest.fixture(scope="module")
def closed_bystander(closed_killer):
    with sleeper("sleep", 0) as w:
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


# ---- the gate opens under a condemned sleeper ---------------------------------

INTERVAL = 0.5
DEADLINE = 10.0  # generous; the spec asks for two intervals


def test_condemned_sleeper_dies_when_the_gate_opens(e2e_session, tmp_path):
    gate = K.mem_used() + 2 * K.GiB
    plain = K.plain_copy(tmp_path)
    with K.Killer("--min-used", gate, "--interval", INTERVAL) as k, \
            sleeper("write", 150, "-q") as victim, \
            sleeper("sleep", 0) as compliant, \
            K.Workload(plain, "write", 150, "-q", "--then-sleep", "--timeout", "300",
                       progress=True) as outsider:
        for w in (victim, compliant, outsider):
            assert w.wait_state(K.S_SLEEPING), f"{w.args} did not reach pause()"
        ev = k.wait_event(pid=victim.pid, kind="condemned")
        assert ev is not None and K.rule_key(ev["rule"]) == "writes", k.events
        # a few intervals with the gate closed: the condemned sleeper lives
        K.wait_until(lambda: not victim.alive(), 4 * INTERVAL)
        assert victim.alive(), "condemned target killed while the gate was closed"
        assert K.mem_used() < gate

        with K.Ballast(gate + int(1.5 * K.GiB) - K.mem_used()):
            assert K.mem_used() >= gate, "ballast did not open the gate"
            t0 = time.monotonic()
            K.wait_until(lambda: victim.proc.poll() is not None, DEADLINE)
            rc = victim.proc.poll()
            print(f"condemned sleeper gone {time.monotonic() - t0:.2f}s after the ballast was up")
            assert rc == -signal.SIGKILL, \
                f"condemned sleeper not killed by SIGKILL within {DEADLINE}s of the gate opening " \
                f"(returncode {rc}); killer stderr:\n{k.stderr_text()}"
            kill = k.wait_event(pid=victim.pid, kind="kill")
            assert kill is not None, k.events
            assert kill["mem_used_bytes"] >= gate, kill
            # the sweep has run: compliant targets and non-targets are still there
            K.wait_until(lambda: not compliant.alive() or not outsider.alive(), 4 * INTERVAL)
            assert compliant.alive(), "a compliant target died when the gate opened"
            assert outsider.alive(), "a non-target died when the gate opened"
        assert not k.find_events(pid=compliant.pid)
        assert not k.find_events(pid=outsider.pid)
