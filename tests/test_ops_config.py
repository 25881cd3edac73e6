"""Config file precedence, end to end (issue 5)."""
from __future__ import annotations

import subprocess

import killer as K
import ops_helpers as H


def test_the_file_sets_a_limit_and_the_command_line_beats_it(tmp_path, monkeypatch):
    conf = H.write_config(tmp_path / "oomkiller.conf", "# test\nmax-writes = 50\nmin-used = 0\n")
    monkeypatch.setenv("OOMKILLER_CONFIG", conf)
    with K.Killer() as k:
        assert "writes=50 " in k.ready_line and "min-used=0B" in k.ready_line
        res = K.work("write", "49")
        assert res.ok, res.describe()
        res = K.work("write", "50")
        assert res.killed and res.done == 49, res.describe()
        ev = k.wait_event(pid=res.pid, kind="kill", timeout=10)
        assert ev and ev["limit"] == 50
    with K.Killer("--max-writes", "80") as k:
        assert "writes=80 " in k.ready_line and "min-used=0B" in k.ready_line
        res = K.work("write", "79")
        assert res.ok, res.describe()
        res = K.work("write", "80")
        assert res.killed and res.done == 79, res.describe()
        assert k.wait_event(pid=res.pid, kind="kill", timeout=10)["limit"] == 80


def test_config_option_beats_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OOMKILLER_CONFIG", H.write_config(tmp_path / "env.conf",
                                                          "max-writes = 50\n"))
    named = H.write_config(tmp_path / "named.conf", "max-writes = 70\n")
    with K.Killer("--config", named, "--min-used", "0") as k:
        assert "writes=70 " in k.ready_line


def test_a_bad_config_is_one_line_and_exit_2(tmp_path, monkeypatch):
    for text, what in [("max-writes = 0\n", "--max-writes"), ("max-wirtes = 5\n", "max-writes"),
                       ("max-writes\n", ":1:")]:
        conf = H.write_config(tmp_path / "bad.conf", text)
        monkeypatch.setenv("OOMKILLER_CONFIG", conf)
        res = subprocess.run([str(K.OOMKILLER)], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        assert res.returncode == 2, (text, res)
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("oomkiller: ")
        assert conf in res.stderr and what in res.stderr, res.stderr
        assert "Traceback" not in res.stderr
    assert not H.PIN_DIR.exists()
