"""Load (issue 6): hundreds of targets at once, and thousands churned.

- 300 targets cross limits at the same instant (released by one pipe closing):
  every one dies by SIGKILL with a kill event naming the rule it crossed.
- 300 targets stay just under every limit at once: every one lives.
- 2000 (at least) short-lived targets, half crossing and half not, churned
  for 40 s (OOMKILLER_CHURN_SECONDS): the process
  map is back to its baseline size afterwards (no leaked entry) and the
  loader's RSS is stable (±10 % of its size after warm-up).
"""
import os
import random
import signal
import time

import pytest

import killer as K
import rel_common as R


N = 300
CHURN = int(os.environ.get("OOMKILLER_CHURN_TARGETS", "2000"))  # at least this many
CHURN_SECONDS = float(os.environ.get("OOMKILLER_CHURN_SECONDS", "40"))  # and this long
CHURN_BUDGET = 60.0  # seconds

# rule -> the steps that cross it
CROSS = {
    "writes": ["write:100"],
    "read-bytes": ["read:10M"],
    "fds": ["open:100"],
    "threads": ["threads:100"],
    "rand": ["rand:100"],
    "tcp-packets": ["--nodelay", "tcp-send:1000"],
}
# every rule used, none reached: fds ~60 (0-2, pipe, out, 50, sockets),
# threads 90 + tcp's receiver, writes 99, read 5M, rand 99, tcp 500 segments
UNDER = ["write:99", "read:5M", "open:50", "threads:90", "rand:99", "--nodelay", "tcp-send:500"]


@pytest.fixture(scope="module")
def killer():
    with K.Killer(*R.OPEN) as k:
        yield k


def _spawn_gated(group, steps_for, n):
    r, w = os.pipe()
    try:
        procs = [group.spawn(f"gate:{r}", *steps_for(i), pass_fds=(r,)) for i in range(n)]
    finally:
        os.close(r)
    return procs, w


def test_300_targets_crossing_at_once_all_die(killer):
    rules = list(CROSS)
    with R.Group() as g:
        procs, w = _spawn_gated(g, lambda i: CROSS[rules[i % len(rules)]], N)
        try:
            waiting = K.wait_until(lambda: all(p.state() == K.S_WAITING for p in procs), 60, 0.2)
            assert waiting, [p.describe() for p in procs if p.state() != K.S_WAITING][:5]
        finally:
            os.close(w)  # release all 300 at once
        R.wait_all(procs, 90)
        survivors = [p.describe() for p in procs if p.poll() != -signal.SIGKILL]
        assert not survivors, f"{len(survivors)} of {N} not killed, e.g. {survivors[:3]}"
        for i, p in enumerate(procs):
            ev = killer.wait_event(pid=p.pid, kind="kill", timeout=10)
            assert ev is not None, f"no kill event for {p.describe()}"
            rule = rules[i % len(rules)]
            assert K.rule_key(ev["rule"]) == K.rule_key(rule), (rule, ev)
            assert ev["value"] >= ev["limit"] == K.LIMITS[rule], ev
            if rule in ("writes", "rand", "threads"):
                assert ev["value"] == ev["limit"], f"counted calls are exact at the kill: {ev}"
    assert killer.running()


def test_300_targets_under_every_limit_all_live(killer):
    with R.Group() as g:
        procs, w = _spawn_gated(g, lambda i: [*UNDER, "pause"], N)
        try:
            K.wait_until(lambda: all(p.state() == K.S_WAITING for p in procs), 60, 0.2)
        finally:
            os.close(w)
        slept = K.wait_until(lambda: all(p.state() == K.S_SLEEPING for p in procs), 120, 0.2)
        assert slept, [p.describe() for p in procs if p.state() != K.S_SLEEPING][:3]
        held = R.tracked(killer)
        assert held >= N, f"{N} sleeping targets but the process map holds {held}"
        killer.wait_samples(2)  # two memory samples and sweeps with the gate open
        dead = [p.describe() for p in procs if not p.alive()]
        assert not dead, f"{len(dead)} compliant targets died, e.g. {dead[:3]}"
        pids = {p.pid for p in procs}
        bad = [e for e in killer.find_events() if e.get("pid") in pids]
        assert not bad, f"events for compliant targets: {bad[:5]}"
    assert killer.running()


def test_2000_short_lived_targets_no_map_leak_and_stable_rss(killer):
    rng = random.Random(6)
    base = R.tracked(killer)
    kinds = [  # (steps, dies)
        (["write:100"], True), (["write:20"], False), (["open:100"], True),
        (["open:20", "write:5"], False),
        (["rand:100"], True), (["threads:3", "rand:10"], False), (["threads:100"], True),
        (["read:64K", "write:99"], False),
    ]
    concurrency = 12
    warm_rss = None
    started = 0
    wrong = []
    t0 = time.monotonic()
    with R.Group() as g:
        running = []
        def more():
            return started < CHURN or time.monotonic() - t0 < CHURN_SECONDS

        while more() or running:
            assert time.monotonic() - t0 < CHURN_BUDGET, \
                f"churn overran: {started} started in {time.monotonic() - t0:.0f}s"
            while more() and len(running) < concurrency:
                steps, dies = kinds[rng.randrange(len(kinds))]
                p = g.spawn(*steps, timeout=60)
                p.dies = dies
                running.append(p)
                started += 1
                if started == 200:
                    warm_rss = R.rss_kib(killer.pid)
            still = []
            for p in running:
                rc = p.poll()
                if rc is None:
                    still.append(p)
                    continue
                if rc != (-signal.SIGKILL if p.dies else 0):
                    wrong.append(p.describe())
                p.kill()
                os.unlink(p.progress_path)
                os.unlink(p.err_path)
            running = still
            time.sleep(0.002)  # pace the reaping loop; each outcome is read from the process
        g.procs.clear()  # all reaped
    assert started >= CHURN
    assert not wrong, f"{len(wrong)} of {started} ended wrongly, e.g. {wrong[:3]}"
    K.wait_until(lambda: R.tracked(killer) == base, 10, 0.2)
    final = R.tracked(killer)
    assert final == base, f"process map holds {final} entries after the churn, baseline {base} " \
                          f"(pids {sorted(R.tracked_pids(killer))[:10]})"
    end_rss = R.rss_kib(killer.pid)
    assert warm_rss is not None
    assert abs(end_rss - warm_rss) <= 0.10 * warm_rss, \
        f"loader RSS {warm_rss} KiB after warm-up, {end_rss} KiB after {started} targets"
    assert killer.running()
