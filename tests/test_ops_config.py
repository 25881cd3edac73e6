"""Config file precedence, end to end (issue 5)."""
from __future__ import annotations

import os
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


def test_a_named_policy_applies_its_own_limit(tmp_path):
    """[policy NAME] (issue 20): an exe-selected policy's limit, not default's."""
    conf = H.write_config(tmp_path / "p.conf", "min-used = 0\n"
                          f"[policy work]\nexe = {K.WORK}\nmax-writes = 30\nmin-used = 0\n")
    with K.Killer("--config", conf) as k:
        res = K.work("write", "29")
        assert res.ok, res.describe()
        res = K.work("write", "30")
        assert res.killed and res.done == 29, res.describe()
        assert k.wait_event(pid=res.pid, kind="kill", timeout=10)["limit"] == 30


POLICY_ERRORS = [
    # (config text, the line named)
    ("[policy ci]\nname = x\ninterval = 2\n", 3),
    ("[policy ci]\nmax-fds = 5\n", 1),
    ("[policy ci]\nname = x\nmax-fd = 5\n", 3),
    ("[policy ci]\nname = x\nexe = /nonexistent/prog\n", 3),
    ("[policy ci]\nname = x\nuser = oomkt-nobody-here\n", 3),
    ("[policy ci]\nname = x\ncgroup = /oomkt-absent/x\n", 3),
    ("default-policy = off\n", 1),
]


def test_a_bad_policy_is_one_line_and_exit_2_from_check_and_the_daemon(tmp_path):
    """The daemon refuses before it loads anything, exactly as check does.
    It runs only once check refused the file: a file check accepts would
    start a killer."""
    env = {k: v for k, v in os.environ.items() if k != "OOMKILLER_CONFIG"}
    env["OOMKILLER_BPF_OBJ"] = "/nonexistent/oomkiller.bpf.o"  # nor could it load
    for text, line in POLICY_ERRORS:
        conf = H.write_config(tmp_path / "bad.conf", text)
        runs = []
        for args in (["check", "--config", conf], ["--config", conf]):
            res = subprocess.run([str(K.OOMKILLER), *args], capture_output=True, text=True,
                                 timeout=30, env=env, stdin=subprocess.DEVNULL)
            K.one_line_error(res, 2, f"{args[0]} {text!r}")
            assert res.stderr.startswith(f"oomkiller: {conf}:{line}: "), res.stderr
            assert res.stdout == ""
            runs.append(res.stderr)
        assert runs[0] == runs[1]
    assert not H.PIN_DIR.exists()


def test_an_exe_on_overlayfs_is_refused(tmp_path):
    """On overlayfs the kernel runs the layer's inode, not the one the path
    names: an exe policy there would match nothing, so it is an error."""
    for d in ("lower", "upper", "work", "merged"):
        (tmp_path / d).mkdir()
    (tmp_path / "lower" / "prog").write_bytes(b"#!/bin/sh\n")
    opts = f"lowerdir={tmp_path}/lower,upperdir={tmp_path}/upper,workdir={tmp_path}/work"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(tmp_path / "merged")],
                   check=True, capture_output=True, timeout=30)
    try:
        conf = H.write_config(tmp_path / "o.conf",
                              f"[policy o]\nname = oomp\nexe = {tmp_path}/merged/prog\n")
        res = subprocess.run([str(K.OOMKILLER), "check", "--config", conf], capture_output=True,
                             text=True, timeout=30, stdin=subprocess.DEVNULL)
        K.one_line_error(res, 2, "check with an exe on overlayfs")
        assert f"{conf}:3: exe: '{tmp_path}/merged/prog' is on overlay, where the kernel" \
            in res.stderr, res.stderr
    finally:
        subprocess.run(["umount", str(tmp_path / "merged")], capture_output=True, timeout=30)
