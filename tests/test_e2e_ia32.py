"""i386 syscalls are counted by the i386 table, never by x86-64's (issue 9),
and the seed's programs built with gcc -m32 behave as the 64-bit ones."""
import pytest

import killer as K
from conftest import EXTRA32, PROGS32, SEED_PROGS
from test_e2e_seed import MUST_DIE, MUST_LIVE


def test_int80_getpid_and_lseek_are_not_writes_or_reads(default_killer, bystander):
    res = K.run("oomp_ia32")
    assert res.ok, f"i386 getpid/lseek must not count: {res.describe()}"
    assert res.stdout.startswith("done"), res.describe()
    assert not default_killer.find_events(pid=res.pid)


def test_32bit_builds_cover_the_seed():
    assert sorted(p.name for p in PROGS32.iterdir()) == sorted(SEED_PROGS + EXTRA32)


@pytest.mark.parametrize("prog", sorted(MUST_DIE))
def test_32bit_seed_violator_dies_by_sigkill(default_killer, bystander, prog):
    res = K.run(PROGS32 / prog)
    assert res.killed, f"expected SIGKILL: {res.describe()}"
    assert "done" not in res.stdout, res.describe()
    ev = default_killer.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, f"no kill event for pid {res.pid}; events: {default_killer.events[-5:]}"
    assert K.rule_key(ev["rule"]) == K.rule_key(MUST_DIE[prog]), ev
    if MUST_DIE[prog] == "writes":  # at its 100th write, as the 64-bit build
        assert ev["value"] == ev["limit"] == 100, ev


@pytest.mark.parametrize("prog", MUST_LIVE)
def test_32bit_seed_compliant_exits_0(default_killer, bystander, prog):
    res = K.run(PROGS32 / prog)
    assert res.ok, f"expected exit 0: {res.describe()}"
    assert not default_killer.find_events(pid=res.pid)
