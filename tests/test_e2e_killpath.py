"""The kill path (issue 17) with a killer of its own (a config file, a
reload), in whichever family it runs (the VM lane: every family, kernel):
a kill needs the name at the moment it is sent, so a condemned target that
renamed out of the name survives the sweep and its own exec into a
program without the name.
"""
from __future__ import annotations

import os
import signal

import killer as K
import ops_helpers as H


def test_a_condemned_target_that_left_the_name_is_never_killed(tmp_path, monkeypatch):
    """Condemned with the gate closed; it renames itself out of the name; a
    reload opens the gate and sweeps (the sweep skips it); then it execs a
    program without the name, with the gate open: the exec hook must not
    kill it either (it once did: `kill ... comm=plainwork`)."""
    conf = tmp_path / "oomkiller.conf"
    monkeypatch.setenv("OOMKILLER_CONFIG",
                       H.write_config(conf, "min-used = 1T\ninterval = 600\n"))
    plain = K.plain_copy(tmp_path)
    with K.Killer() as k, K.Workload(K.WORK, "--timeout", "300", "write:150", "name:plainname",
                                     "sig", f"exec:{plain}", "write:5", "pause",
                                     progress=True) as w:
        assert w.wait_state(K.S_WAITING), f"target never got to its signal wait: {w.progress()}"
        ev = k.wait_event(pid=w.pid, kind="condemned")
        assert ev is not None and K.rule_key(ev["rule"]) == "writes", k.events[-5:]
        sweeps = k.status()["sweeps"]
        H.write_config(conf, "min-used = 0\ninterval = 600\n")
        k.send_signal(signal.SIGHUP)
        # A reload loads a whole generation: as long as a start (fentry under TCG: a minute).
        assert H.wait_stderr(k, "reloaded:", k.ready_timeout), k.stderr_text()
        # The reload's own tick swept (the gate is open now): the sweep saw
        # the entry and left it, the name being gone.
        assert K.wait_until(lambda: k.status()["sweeps"] > sweeps, 30), k.status()
        assert w.alive(), "killed by the sweep after leaving the name"
        os.kill(w.pid, signal.SIGUSR1)
        assert w.wait_state(K.S_SLEEPING), f"exec'd image never paused: {w.progress()}"
        assert w.progress()[K.P_IMAGE] == 1, w.progress()
        assert w.alive(), "killed at or after its exec into a non-target"
        assert not k.find_events(pid=w.pid, kind="kill"), k.find_events(pid=w.pid)
        assert all("oomp" in e["comm"] for e in k.find_events(kind="kill"))
