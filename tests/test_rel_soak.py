"""Soak (issue 6): mixed churn of targets and non-targets doing every kind of
work, for OOMKILLER_SOAK_SECONDS (90 in `make test`, 600 in `make
test-stress`, mk/stress.mk). Then:

- every violator died by SIGKILL (for fork/vfork violators: the child);
- no compliant target and no non-target died (each exited 0), and the
  long-lived bystanders (a compliant target, a non-target that crossed every
  limit) are alive;
- the process map is back to its baseline size;
- the loader's RSS is within ±10 % of its size after warm-up.
"""
import os
import random
import signal
import time

import killer as K
import rel_common as R


SECONDS = float(os.environ.get("OOMKILLER_SOAK_SECONDS", "90"))
WARMUP = min(20.0, SECONDS / 4)
CONCURRENCY = 10

REL = str(K.WORK)
# (name, steps, expect): expect "killed", "ok", or "child-killed" (the parent
# lives, its fork/vfork child dies). Non-targets run as the plain copy.
VIOLATORS = [
    ("writes", ["write:100", "pause"], "killed"),
    ("read", ["read:10M", "pause"], "killed"),
    ("fds", ["open:100", "pause"], "killed"),
    ("pthreads", ["threads:100", "pause"], "killed"),
    ("clone3", ["c3:100", "pause"], "killed"),
    ("rand", ["rand:100", "pause"], "killed"),
    ("tcp", ["--nodelay", "tcp-send:1000", "pause"], "killed"),
    ("uring-send", ["uring-send:1000", "pause"], "killed"),
    ("uring-write", ["uring-wb:100", "pause"], "killed"),
    ("aio-write", ["aio-aw:100", "pause"], "killed"),
    ("mt", ["mt:8:5:100"], "killed"),
    ("race", ["race:16:7", "pause"], "killed"),
    ("exec-then-cross", ["write:99", f"exec:{REL}", "write:100", "pause"], "killed"),
    ("fork-child", ["write:50", "forkw:100"], "child-killed"),
    ("vfork-child", ["write:50", "vforkw:100"], "child-killed"),
]
COMPLIANT = [
    ("writes", ["write:99"], "ok"),
    ("read", ["read:5M"], "ok"),
    ("fds", ["open:90", "close", "open:90"], "ok"),
    ("threads", ["threads:50", "c3:40"], "ok"),
    ("rand", ["rand:99"], "ok"),
    ("tcp", ["--nodelay", "tcp-send:900"], "ok"),
    ("uring", ["uring-w:60", "uring-aw:39", "uring-r:9M"], "ok"),
    ("aio", ["aio-aw:99", "aio-ar:9M"], "ok"),
    ("sendfile", ["sendfile:6M", "splice:11M"], "ok"),  # 96 sendfile calls, 6 MiB read
    ("fork", ["write:60", "forkw:99", "vforkw:99", "write:39"], "ok"),
    ("exec-reset", ["write:99", f"exec:{REL}", "write:99"], "ok"),
    ("c3fork", ["c3fork:120"], "ok"),
]
NONTARGET = [
    ("everything", ["write:150", "read:11M", "open:150", "threads:150", "rand:150",
                    "--nodelay", "tcp-send:1500"], "ok"),
    ("rename-thread-in", ["thread:oomp_thr", "write:150"], "ok"),
]


def test_soak(tmp_path):
    plain = K.plain_copy(tmp_path)
    rng = random.Random(600)
    kinds = [(f"violator/{n}", s, e, K.WORK) for n, s, e in VIOLATORS] + \
            [(f"compliant/{n}", s, e, K.WORK) for n, s, e in COMPLIANT] + \
            [(f"non-target/{n}", s, e, plain) for n, s, e in NONTARGET]
    counts: dict[str, int] = {}
    wrong: list[str] = []
    with K.Killer(*R.OPEN, "--interval", "0.5") as k, R.Group() as g:
        bystanders = [
            g.spawn("write:50", "open:50", "pause", timeout=int(SECONDS) + 600),
            g.spawn("write:150", "open:150", "rand:150", "threads:150", "pause", prog=plain,
                    timeout=int(SECONDS) + 600),
        ]
        for b in bystanders:
            assert b.wait_state(K.S_SLEEPING), b.describe()
        base = R.tracked(k)
        warm_rss = None
        t0 = time.monotonic()
        running = []
        while time.monotonic() - t0 < SECONDS or running:
            assert time.monotonic() - t0 < SECONDS + 120, \
                f"soak overran: {len(running)} workloads still running"
            if warm_rss is None and time.monotonic() - t0 >= WARMUP:
                warm_rss = R.rss_kib(k.pid)
            while time.monotonic() - t0 < SECONDS and len(running) < CONCURRENCY:
                name, steps, expect, prog = kinds[rng.randrange(len(kinds))]
                p = g.spawn(*steps, prog=prog, timeout=120)
                p.name, p.expect, p.t0 = name, expect, time.monotonic()
                running.append(p)
                counts[name] = counts.get(name, 0) + 1
            still = []
            for p in running:
                rc = p.poll()
                if rc is None:
                    if p.expect == "killed" and time.monotonic() - p.t0 > 60:
                        wrong.append(f"{p.name}: not killed within 60s: {p.describe()}")
                        p.kill()
                    else:
                        still.append(p)
                    continue
                ok = {"killed": rc == -signal.SIGKILL, "ok": rc == 0,
                      "child-killed": rc == 0}[p.expect]
                if p.expect == "child-killed" and ok:
                    st = p.slot(K.P_B)
                    ok = st is not None and os.WIFSIGNALED(st) and \
                        os.WTERMSIG(st) == signal.SIGKILL
                if not ok:
                    wrong.append(f"{p.name}: {p.describe()}")
                p.kill()
                for path in (p.progress_path, p.err_path):
                    try:
                        os.unlink(path)
                    except FileNotFoundError:
                        pass
                g.procs.remove(p)
            running = still
            time.sleep(0.005)  # pace the reaping loop; each outcome is read from the process
        total = sum(counts.values())
        assert not wrong, f"{len(wrong)} of {total} workloads ended wrongly:\n" + \
            "\n".join(wrong[:10])
        for b in bystanders:
            assert b.alive(), f"bystander died during the soak: {b.describe()}"
            assert not k.find_events(pid=b.pid, kind="kill")
        K.wait_until(lambda: R.tracked(k) == base, 10, 0.2)
        final = R.tracked(k)
        assert final == base, f"process map holds {final} after the soak, baseline {base}"
        end_rss = R.rss_kib(k.pid)
        assert warm_rss is not None
        assert abs(end_rss - warm_rss) <= 0.10 * warm_rss, \
            f"loader RSS {warm_rss} KiB after warm-up, {end_rss} KiB after {total} workloads"
        assert k.running()
        print(f"soak {SECONDS:.0f}s: {total} workloads, loader RSS {warm_rss} -> {end_rss} KiB, "
              f"map {base} -> {final}; kinds {counts}")
