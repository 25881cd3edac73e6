"""The interface as one running killer shows it (default policy, gate open):
--json events and their keys, stdout holding only events, the ready line."""
import os
import re

import killer as K

JSON_KEYS = {"event", "pid", "comm", "rule", "value", "limit", "mem_used_bytes", "time"}


# ---- events ------------------------------------------------------------------

def test_json_kill_event_has_every_key(default_killer):
    res = K.work("write", 100, out=True)
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
    m = re.search(r"families ([^;]*)", line)
    assert m, f"no families in the ready line: {line}"
    fams = dict(kv.split("=", 1) for kv in m.group(1).split())
    assert {"mem", "sys", "tcp"} <= set(fams), f"a data source is missing: {line}"
    # tcp is the sock_send_length tracepoint in every family (never skipped),
    # or off where the kernel lacks it (6.1), as the ready line then says.
    want = "off" if "tcp-packets" in default_killer.rules_off else "tracepoint"
    assert fams["tcp"] == want, line
    sources = {src: fams[src] for src in ("mem", "sys")}
    if forced and forced != "auto":
        assert set(sources.values()) == {forced}, f"forced --attach {forced}, ready line: {line}"
    elif not os.path.exists("/sys/bus/event_source/devices/kprobe"):
        # this machine: no kprobes, no trampolines: only tracepoints can run
        assert set(sources.values()) == {"tracepoint"}, line
        assert "kprobe" not in line and "fentry" not in line, line
    else:
        # kprobes here (the VM lane's stock kernel): auto takes fentry or
        # kprobe for mem, and the tracepoint for sys (families.AUTO_ORDER
        # says why)
        assert sources["mem"] in ("fentry", "kprobe"), f"auto picked {sources}: {line}"
        assert sources["sys"] == "tracepoint", f"auto picked {sources}: {line}"
    for rule in ("fds", "writes", "threads", "rand"):
        assert rule in line, f"policy missing {rule}: {line}"
