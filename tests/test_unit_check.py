"""`oomkiller check`: the daemon's own parsing, each setting's origin, and
the daemon's own one-line errors; it never loads BPF."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OOMKILLER = ROOT / "oomkiller"


def check(*args: str, **env: str) -> subprocess.CompletedProcess:
    e = {k: v for k, v in os.environ.items() if k != "OOMKILLER_CONFIG"}
    e.update(env)
    # OOMKILLER_BPF_OBJ names nothing: a check that touched the object would fail.
    e["OOMKILLER_BPF_OBJ"] = "/nonexistent/oomkiller.bpf.o"
    return subprocess.run([str(OOMKILLER), "check", *args], capture_output=True, text=True,
                          timeout=30, env=e, stdin=subprocess.DEVNULL)


def rows(out: str) -> dict[str, tuple[str, str]]:
    got = {}
    for line in out.splitlines()[1:-1]:
        key, value, where = line.split(None, 2)
        got[key] = (value, where)
    return got


def test_each_setting_says_where_it_came_from(tmp_path):
    conf = tmp_path / "o.conf"
    conf.write_text("# limits\nmax-fds = 200\n\nmax-rand = off\nmax-writes = 70\n")
    res = check("--config", str(conf), "--max-writes", "50", "-v")
    assert res.returncode == 0, res.stderr
    assert res.stderr == ""
    r = rows(res.stdout)
    assert r["max-fds"] == ("200", f"{conf}:2")
    assert r["max-rand"] == ("off", f"{conf}:4")
    assert r["max-writes"] == ("50", "flag"), "the command line wins over the file"
    assert r["verbose"] == ("1", "flag")
    assert r["min-used"] == ("1.0G", "default") and r["name"] == ("oomp", "default")
    assert res.stdout.splitlines()[0] == f"config: {conf}"
    assert res.stdout.splitlines()[-1].startswith('policy: name~"oomp" min-used=1.0G fds=200 ')
    assert "rand=off" in res.stdout.splitlines()[-1]


def test_the_environment_names_the_file(tmp_path):
    conf = tmp_path / "env.conf"
    conf.write_text("dry-run = yes\n")
    res = check(OOMKILLER_CONFIG=str(conf))
    assert res.returncode == 0, res.stderr
    assert rows(res.stdout)["dry-run"] == ("yes", f"{conf}:1")


def test_a_bad_value_exits_2_naming_its_line(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("max-fds = 200\n# fine so far\nmax-rand = offf\n")
    res = check("--config", str(conf))
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr == f"oomkiller: {conf}:3: --max-rand: not a whole number: 'offf' (or off)\n"


def test_a_bad_line_exits_2_as_the_daemon_would(tmp_path):
    conf = tmp_path / "bad.conf"
    conf.write_text("max-fds = 200\nmax-fsd = 3\n")
    res = check("--config", str(conf))
    daemon = subprocess.run([str(OOMKILLER), "--config", str(conf)], capture_output=True,
                            text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert res.returncode == daemon.returncode == 2
    assert res.stderr == daemon.stderr
    assert res.stderr.startswith(f"oomkiller: {conf}:2: unknown key 'max-fsd'")
    assert len(res.stderr.splitlines()) == 1


def test_a_bad_flag_exits_2_with_one_line():
    res = check("--max-fds", "0")
    assert res.returncode == 2 and res.stdout == ""
    assert res.stderr == ("oomkiller: --max-fds: must be at least 1, got '0' (or off): "
                          "see oomkiller --help\n")


def test_no_file_is_all_defaults(tmp_path):
    res = check(OOMKILLER_CONFIG=str(tmp_path / "missing.conf"))
    assert res.returncode == 2, "a file the user named must exist"
    res = check("--config", "/dev/null")
    assert res.returncode == 0, res.stderr
    assert all(where == "default" for _, where in rows(res.stdout).values())
    got = rows(res.stdout)
    assert got["metrics-file"] == ("off", "default") and got["metrics-listen"] == ("off", "default")
