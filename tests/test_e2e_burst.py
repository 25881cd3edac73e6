"""Bursts of processes (issue 17, item 7): many targets started together on
few CPUs lose no count, in whichever family the killer runs.

Threads of one process racing (tests/test_rel_races.py) are one shape;
this is the other: 60 processes forked first and released at once, each
over a limit (all must die by SIGKILL), then 60 under it (all must exit 0).
On 7.x, a preempted run of a tp_btf or fexit program makes the kernel skip
that program's next runs on its CPU, and a short-lived process could make
every call after its 100th inside that window: the hooks that count are
twinned (docs/DESIGN.md) so that one skipped run never loses a count.
OOMKILLER_BURST_ROUNDS rounds per rule (the VM lane: VM_BURST_ROUNDS).
"""
from __future__ import annotations

import os

import pytest

import killer as K
import rel_common as R

N = 60
ROUNDS = int(os.environ.get("OOMKILLER_BURST_ROUNDS", "5"))
# rule: (burst op, units over the limit, units under it)
CASES = {
    "writes": ("write", 150, 50),
    "read-bytes": ("read", 11 * K.MiB, 9 * K.MiB),
    "rand": ("rand", 150, 50),
}


def _burst(op: str, units: int) -> tuple[int, int]:
    """(killed by SIGKILL, exited otherwise) of N children doing `units` each."""
    with R.Rel(f"burst:{N}:{units}:0:{op}") as p:
        rc = p.wait(300)
        assert rc == 0, p.describe()
        return p.slot(K.P_A), p.slot(K.P_B)


@pytest.fixture(scope="module")
def open_killer(e2e_session):
    """One killer for the module (under TCG an fentry killer takes up to a
    minute to load), gate open."""
    with K.Killer(*R.OPEN) as k:
        yield k


@pytest.mark.parametrize("rule", sorted(CASES))
def test_a_burst_of_processes_loses_no_count(open_killer, rule):
    k = open_killer
    op, over, under = CASES[rule]
    before = len(k.find_events(kind="kill"))
    for r in range(ROUNDS):
        killed, other = _burst(op, over)
        assert (killed, other) == (N, 0), \
            f"round {r + 1} of {ROUNDS}: {other} of {N} targets over the {rule} " \
            f"limit escaped ({killed} killed)\n{k.stderr_text()}"
        killed, other = _burst(op, under)
        assert (killed, other) == (0, N), \
            f"round {r + 1} of {ROUNDS}: {killed} of {N} targets under the {rule} " \
            f"limit were killed"
    kills = k.find_events(kind="kill")[before:]
    assert len(kills) == N * ROUNDS, f"{len(kills)} kill events for {N * ROUNDS} kills"
    assert all(K.rule_key(e["rule"]) == K.rule_key(rule) for e in kills), kills[:3]
