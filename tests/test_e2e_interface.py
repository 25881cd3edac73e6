"""The interface as one running killer shows it (default policy, gate open):
--json events and their keys, stdout holding only events, the ready line."""
import os

import killer as K

JSON_KEYS = {"event", "pid", "comm", "rule", "value", "limit", "mem_used_bytes", "time"}
FAMILIES = ("fentry", "kprobe", "tracepoint")


# ---- events ------------------------------------------------------------------

def test_json_kill_event_has_every_key(default_killer):
    res = K.work("write", 100, "-q", out=True)
    assert res.killed, res.describe()
    ev = default_killer.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, default_killer.stdout_lines[-5:]
    assert JSON_KEYS <= set(ev), f"missing keys {JSON_KEYS - set(ev)} in {ev}"
    assert ev["event"] == "kill"
    assert ev["comm"] == "oomp_work"
    assert K.rule_key(ev["rule"]) == "writes"
    assert ev["value"] == 100 and ev["limit"] == 100, ev
    assert isinstance(ev["mem_used_bytes"], int) and ev["mem_used_bytes"] >= K.GiB, ev
    assert ev["time"] not in (None, "", 0), ev


def test_every_stdout_line_is_json(default_killer):
    res = K.work("rand", 100)
    assert res.killed, res.describe()
    assert default_killer.wait_event(pid=res.pid, kind="kill"), default_killer.stdout_lines[-5:]
    assert len(default_killer.events) == len(default_killer.stdout_lines), \
        [ln for ln in default_killer.stdout_lines if not ln.startswith("{")]


def test_ready_line_names_the_family_and_policy(default_killer):
    line = default_killer.ready_line
    assert line.startswith("oomkiller: ready"), line
    forced = os.environ.get(K.ATTACH_ENV)
    if forced and forced != "auto":
        assert forced in line, f"forced --attach {forced}, ready line: {line}"
    elif not os.path.exists("/sys/bus/event_source/devices/kprobe"):
        # this machine: no kprobes, no trampolines: only tracepoints can run
        assert "tracepoint" in line, line
        assert "kprobe" not in line and "fentry" not in line, line
    else:
        assert any(f in line for f in FAMILIES), line
    for rule in ("fds", "writes", "threads", "rand"):
        assert rule in line, f"policy missing {rule}: {line}"
