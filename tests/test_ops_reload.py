"""SIGHUP: re-read the config, apply new limits without a gap (issue 5)."""
from __future__ import annotations

import shutil
import signal

import killer as K
import ops_helpers as H



def test_sighup_lowers_a_limit_for_running_and_new_targets(tmp_path, monkeypatch):
    conf = tmp_path / "oomkiller.conf"
    monkeypatch.setenv("OOMKILLER_CONFIG", H.write_config(conf, "max-writes = 1000\n"))
    with K.Killer("--min-used", "0") as k:
        assert "writes=1000 " in k.ready_line
        with H.Stepper(200) as w:
            assert w.wait_writes(200)
            assert H.find_proc(H.status_json(), w.pid)["counters"]["writes"] == 200
            gen = H.status_json()["generation"]

            H.write_config(conf, "max-writes = 150\n")
            line = H.reload(k, "oomkiller: reloaded:")
            assert "writes=150 " in line and "min-used=0B" in line  # the command line still wins
            st = H.status_json()
            assert st["generation"] == gen + 1
            assert st["policy"]["limits"]["writes"] == 150
            # Counters carried over: same map, same entry, not judged yet.
            p = H.find_proc(st, w.pid)
            assert p["counters"]["writes"] == 200 and not p["condemned"]
            assert w.alive() and w.done() == 200

            w.want(201)  # its next write kills it
            res = w.wait(20)
            assert res.killed, res.describe()
            assert res.done == 200, res.describe()  # the 201st write returned to nobody
            ev = k.wait_event(pid=w.pid, kind="kill", timeout=10)
            assert ev is not None, k.stdout_lines
            assert ev["rule"] == "writes" and ev["limit"] == 150 and ev["value"] >= 150

        res = K.work("write", "149")
        assert res.ok, res.describe()
        res = K.work("write", "150")
        assert res.killed and res.done == 149, res.describe()
        assert k.wait_event(pid=res.pid, kind="kill", timeout=10)["limit"] == 150
        # None but the kernel's skipped runs, which a preemptible kernel may report any time.
        assert not [ln for ln in k.stderr_lines if "warning" in ln and "the kernel skipped" not in ln], \
            k.stderr_text()


def test_sighup_with_a_bad_config_keeps_the_policy(tmp_path, monkeypatch):
    conf = tmp_path / "oomkiller.conf"
    monkeypatch.setenv("OOMKILLER_CONFIG", H.write_config(conf, "max-writes = 60\n"))
    with K.Killer("--min-used", "0") as k:
        H.write_config(conf, "max-writes = 0\n")
        line = H.reload(k, "cannot reload")
        assert "warning" in line and str(conf) in line and "keeping" in line
        assert H.status_json()["policy"]["limits"]["writes"] == 60
        res = K.work("write", "60")
        assert res.killed and res.done == 59, res.describe()

        # A new capacity needs a restart; the rest applies.
        H.write_config(conf, "max-writes = 70\ncapacity = 99\ninterval = 0.5\n")
        line = H.reload(k, "reloaded:")
        assert "writes=70 " in line and "interval=0.5s" in line
        assert any("capacity" in ln and "restart" in ln for ln in k.stderr_lines)
        st = H.status_json()
        assert st["capacity"] == 16384 and st["policy"]["interval"] == 0.5
        res = K.work("write", "69")
        assert res.ok, res.describe()
        res = K.work("write", "70")
        assert res.killed and res.done == 69, res.describe()


def test_reloads_leave_nothing_behind(tmp_path, monkeypatch):
    conf = tmp_path / "oomkiller.conf"
    monkeypatch.setenv("OOMKILLER_CONFIG", H.write_config(conf, "max-writes = 100\n"))
    with K.Killer("--min-used", "0") as k:
        first = H.killer_prog_ids(k.pid)
        every = set(first)
        for n in (90, 80, 70):
            H.write_config(conf, f"max-writes = {n}\n")
            H.reload(k, f"writes={n} ")
            # The old generation is gone: as many programs as one generation.
            now = H.killer_prog_ids(k.pid)
            assert len(now) == len(first) and not (now & every)
            assert H.gone(every), K.bpf_prog_names(sorted(every))
            every |= now
        res = K.work("write", "70")
        assert res.killed and res.done == 69, res.describe()
    assert H.gone(every), K.bpf_prog_names(sorted(every))
    assert not H.PIN_DIR.exists()


def test_a_reload_that_opens_the_gate_kills_the_condemned_at_once(tmp_path, monkeypatch):
    # Condemned behind a closed gate, with the next tick 10 minutes away: the
    # reload that opens the gate runs its own tick (issue 17, item 2).
    conf = tmp_path / "oomkiller.conf"
    monkeypatch.setenv("OOMKILLER_CONFIG", H.write_config(conf, "min-used = 1T\ninterval = 600\n"))
    with K.Killer() as k, K.sleeper("write", 150) as victim:
        assert "interval=600s" in k.ready_line, k.ready_line
        ev = k.wait_event(pid=victim.pid, kind="condemned", timeout=10)
        assert ev is not None and K.rule_key(ev["rule"]) == "writes", k.events
        assert victim.wait_state(K.S_SLEEPING), victim.args
        assert victim.alive(), "condemned target killed while the gate was closed"

        H.write_config(conf, "min-used = 0\ninterval = 600\n")
        H.reload(k, "min-used=0B")
        K.wait_until(lambda: victim.proc.poll() is not None, 30)
        rc = victim.proc.poll()
        assert rc == -signal.SIGKILL, \
            f"condemned target not killed within 30 s of the reload (returncode {rc}); " \
            f"killer stderr:\n{k.stderr_text()}"
        kill = k.wait_event(pid=victim.pid, kind="kill", timeout=10)
        assert kill is not None, k.stdout_lines
        assert K.rule_key(kill["rule"]) == "writes" and kill["tid"] == 0, kill  # by the sweep


def test_a_reload_keeps_rand_probed_in_every_file_and_can_switch_it_off(tmp_path, monkeypatch):
    """The rand() uprobes on files probed while running (a static program
    here) move to the new generation: its 100th call still kills. With rand
    off after a reload, nothing counts it and nobody is held; back on, the
    file is still known (no new hold) and the rule holds again."""
    prog = tmp_path / "oomp_rand_reload"
    shutil.copy2(K.prog_path("oomp_rand_static"), prog)
    conf = tmp_path / "oomkiller.conf"
    monkeypatch.setenv("OOMKILLER_CONFIG", H.write_config(conf, "max-rand = 100\n"))
    with K.Killer("--min-used", "0") as k:
        res = K.run(prog, "150")
        assert res.killed, res.describe()
        holds = H.status_json()["holds"]
        H.reload(k, "oomkiller: reloaded:")
        res = K.run(prog, "150")
        assert res.killed, f"rand in a file probed before the reload escaped: {res.describe()}"
        ev = k.wait_event(pid=res.pid, kind="kill", timeout=10)
        assert ev is not None and ev["rule"] == "rand" and ev["value"] == 100, ev

        H.write_config(conf, "max-rand = off\n")
        H.reload(k, "rand=off")
        res = K.run(prog, "150")
        assert res.ok, res.describe()
        H.write_config(conf, "max-rand = 100\n")
        H.reload(k, "rand=100")
        res = K.run(prog, "150")
        assert res.killed, res.describe()
        assert H.status_json()["holds"] == holds, "a file settled before was held again"
