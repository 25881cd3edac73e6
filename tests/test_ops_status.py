"""`oomkiller status` against a live killer and live targets (issue 5)."""
from __future__ import annotations

import datetime
import json

import killer as K
import ops_helpers as H


def test_status_without_a_killer_exits_1():
    res = H.status()
    assert res.returncode == 1, res
    assert res.stdout == ""
    assert res.stderr == "oomkiller: no killer running\n"
    assert H.status("--json").returncode == 1


def test_status_shows_live_targets_closest_first():
    with K.Killer("--min-used", "0", "--max-writes", "100") as k:
        with H.Stepper(57) as near, H.Stepper(90) as nearer:
            assert near.wait_writes(57) and nearer.wait_writes(90)
            st = H.status_json()
            for key in ("tracked", "capacity", "gate_open", "mem_used_bytes", "families",
                        "processes", "kills", "policy", "dropped", "untracked", "condemned"):
                assert key in st, key
            assert st["pid"] == k.pid
            assert st["capacity"] == 16384
            assert st["gate_open"] is True and st["mem_used_bytes"] > 0
            assert st["families"]["sys"] in ("fentry", "kprobe", "tracepoint")
            assert st["policy"]["limits"]["writes"] == 100
            assert "writes=100" in st["policy"]["text"]
            assert st["tracked"] == len(st["processes"]) >= 2
            mine = [p["pid"] for p in st["processes"] if p["pid"] in (near.pid, nearer.pid)]
            assert mine == [nearer.pid, near.pid], "not sorted by closeness to a limit"
            p = H.find_proc(st, near.pid)
            assert p["comm"] == "oomp_work"
            assert p["counters"]["writes"] == 57
            assert p["counters"]["threads"] == 0 and p["counters"]["rand"] == 0
            assert p["counters"]["fds"] >= 3  # 0, 1, 2 and /dev/null at least
            assert p["condemned"] is False and p["killed"] is False
            assert H.find_proc(st, nearer.pid)["counters"]["writes"] == 90

            text = H.status()
            assert text.returncode == 0, text.stderr
            out = text.stdout
            assert f"pid {k.pid}" in out
            assert "policy:" in out and "writes=100" in out
            assert "gate open" in out
            assert "families:" in out and "sys=" in out
            assert "kills " in out and "tracked " in out and "/16384" in out
            rows = [ln for ln in out.splitlines() if ln.split()[:1] in ([str(near.pid)],
                                                                        [str(nearer.pid)])]
            assert len(rows) == 2
            assert rows[0].split()[0] == str(nearer.pid)
            assert "oomp_work" in rows[1] and "57/100" in rows[1]
            assert "90/100" in rows[0]

            # One more write each would not kill; 100 does, and the entry goes.
            nearer.want(100)
            res = nearer.wait(20)
            assert res.killed, res.describe()
            ev = k.wait_event(pid=nearer.pid, kind="kill", timeout=10)
            assert ev is not None and ev["rule"] == "writes"
            datetime.datetime.fromisoformat(ev["time"])  # ISO-8601
            st = H.status_json()
            assert st["kills"] >= 1
            assert K.wait_until(lambda: H.find_proc(H.status_json(), nearer.pid) is None, 10)
            assert H.find_proc(st, near.pid)["counters"]["writes"] == 57


def test_status_sees_a_condemned_target_with_the_gate_closed():
    gate = K.mem_total() * 4  # never reached
    with K.Killer("--min-used", str(gate), "--max-writes", "10") as k:
        with H.Stepper(12) as w:
            assert w.wait_writes(12)
            assert k.wait_event(pid=w.pid, kind="condemned", timeout=10)
            st = H.status_json()
            assert st["gate_open"] is False
            assert st["condemned"] >= 1
            p = H.find_proc(st, w.pid)
            assert p["condemned"] is True and p["condemned_rule"] == "writes"
            assert p["killed"] is False
            text = H.status().stdout
            assert "gate closed" in text and "condemned (writes)" in text
            assert w.alive()
    assert json.loads(json.dumps(st))  # plain JSON types only
