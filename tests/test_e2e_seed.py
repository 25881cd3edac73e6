"""The seed's programs behave as issue 2 lists them, default policy, gate open."""
import pytest

import killer as K
from conftest import SEED_PROGS

MUST_DIE = {
    "oomp_test_fds": "fds",
    "oomp_test_threads": "threads",
    "oomp_test_reads": "read-bytes",
    "oomp_test_readv": "read-bytes",
    "oomp_test_writes": "writes",
    "oomp_test_pwrite64": "writes",
    "oomp_test_packets": "tcp-packets",
    "oomp_test_rand": "rand",
}
MUST_LIVE = ["oomp_test_rw_below", "oomp_test_packets_udp"]


def test_seed_table_is_complete():
    assert set(MUST_DIE) | set(MUST_LIVE) == set(SEED_PROGS)


@pytest.mark.parametrize("prog", sorted(MUST_DIE))
def test_seed_violator_dies_by_sigkill(default_killer, bystander, prog):
    why_off = default_killer.rules_off.get(MUST_DIE[prog])
    res = K.run(prog)
    if why_off is not None:
        # A kernel without what the rule needs (Debian 12's 6.1 has no
        # sock_send_length): the ready line says so, and nothing dies by it.
        assert "sock_send_length" in why_off and "Linux 6.3+" in why_off, why_off
        assert res.ok and res.stdout.startswith("done"), res.describe()
        assert not default_killer.find_events(pid=res.pid)
        return
    assert res.killed, f"expected SIGKILL: {res.describe()}"
    assert "done" not in res.stdout, res.describe()
    ev = default_killer.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, f"no kill event for pid {res.pid}; events: {default_killer.events[-5:]}"
    assert K.rule_key(ev["rule"]) == K.rule_key(MUST_DIE[prog]), ev
    assert ev["comm"] == prog[:15], ev  # comm: first 15 bytes


@pytest.mark.parametrize("prog", MUST_LIVE)
def test_seed_compliant_exits_0(default_killer, bystander, prog):
    res = K.run(prog)
    assert res.ok, f"expected exit 0: {res.describe()}"
    assert res.stdout.startswith("done"), res.describe()
    assert not default_killer.find_events(pid=res.pid), default_killer.find_events(pid=res.pid)


def test_bystander_survived_the_module(default_killer, bystander):
    assert bystander.alive(), "a compliant sleeping target died"
    assert not default_killer.find_events(pid=bystander.pid)
    assert default_killer.running(), "killer exited early:\n" + default_killer.stderr_text()
