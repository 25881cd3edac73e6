"""`oomkiller check`: the daemon's own parsing, each setting's origin, and
the daemon's own one-line errors; it never loads BPF."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

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
    """The top-level rows: key -> (value, origin), up to the first policy block."""
    got = {}
    for line in out.splitlines()[1:-1]:
        if line.startswith("policy "):
            break
        key, value, where = line.split(None, 2)
        got[key] = (value, where)
    return got


def policies(out: str) -> dict[str, tuple[str, dict[str, tuple[str, str]]]]:
    """Each `policy NAME: SELECTORS` block: name -> (selectors, {key: (value, origin)})."""
    got: dict[str, tuple[str, dict[str, tuple[str, str]]]] = {}
    current = None
    for line in out.splitlines()[1:-1]:
        if line.startswith("policy "):
            name, _, selectors = line[len("policy "):].partition(": ")
            current = got[name] = (selectors, {})
        elif current is not None:
            key, value, where = line.split(None, 2)
            current[1][key] = (value, where)
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


# Numbers as people write them (issue 17): ASCII digits, whole bytes, a limit
# below rules.OFF, a plain-decimal interval of at least 10 ms.
BAD_NUMBERS = [
    ("max-fds = ５", "--max-fds: '５' is not plain ASCII (U+FF15): type the digits 0-9 (or off)"),
    ("max-fds = 18446744073709551615",
     "--max-fds: '18446744073709551615' is too large: at most 18446744073709551614 (or off)"),
    ("min-used = 1.5", "--min-used: '1.5' is not a whole number of bytes: round it"),
    ("max-read = 1.5B", "--max-read: '1.5B' is not a whole number of bytes: round it (or off)"),
    ("interval = 1e-9", "--interval: '1e-9' is not a plain decimal number (such as 0.5 or 2)"),
    ("interval = 0.005",
     "--interval: must be at least 0.01 and at most 3600 seconds, got '0.005'"),
    ("capacity = ５", "--capacity: '５' is not plain ASCII (U+FF15): type the digits 0-9"),
]


@pytest.mark.parametrize("line,message", BAD_NUMBERS)
def test_a_bad_number_exits_2_naming_its_line(tmp_path, line, message):
    conf = tmp_path / "n.conf"
    conf.write_text(f"# numbers\n{line}\n", encoding="utf-8")
    res = check("--config", str(conf))
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr == f"oomkiller: {conf}:2: {message}\n"


@pytest.mark.parametrize("args,message", [
    (["--max-fds", "５"], "--max-fds: '５' is not plain ASCII (U+FF15)"),
    (["--max-tcp-packets", "18446744073709551615"],
     "--max-tcp-packets: '18446744073709551615' is too large"),
    (["--min-used", "0.3K"], "--min-used: '0.3K' is not a whole number of bytes (307.2)"),
    (["--interval", "1e-9"], "--interval: '1e-9' is not a plain decimal number"),
    (["--interval", "0.009"], "--interval: must be at least 0.01"),
])
def test_a_bad_number_flag_exits_2_with_one_line(args, message):
    res = check(*args)
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr.startswith(f"oomkiller: {message}") and res.stderr.count("\n") == 1, \
        res.stderr
    assert "Traceback" not in res.stderr


def test_numbers_as_people_write_them_are_accepted(tmp_path):
    conf = tmp_path / "ok.conf"
    conf.write_text("max-fds = off\nmax-rand = 18446744073709551614\nmin-used = 1.5G\n"
                    "interval = 0.01\n")
    res = check("--config", str(conf))
    assert res.returncode == 0, res.stderr
    r = rows(res.stdout)
    assert r["max-fds"] == ("off", f"{conf}:1")
    assert r["max-rand"] == ("18446744073709551614", f"{conf}:2"), "one below OFF: still on"
    assert r["min-used"] == ("1.5G", f"{conf}:3")
    assert r["interval"] == ("0.01s", f"{conf}:4")


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
