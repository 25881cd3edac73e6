"""`oomkiller --help` fits one screen and says everything (issue 5)."""
from __future__ import annotations

import os
import subprocess

import killer as K

DEFAULTS = [
    ("--config", "/etc/oomkiller.conf"), ("--min-used", "(1G)"), ("--name", "(oomp)"),
    ("--max-fds", "(100)"), ("--max-writes", "(100)"), ("--max-read", "(10M)"),
    ("--max-threads", "(100)"), ("--max-rand", "(100)"), ("--max-tcp-packets", "(1000)"),
    ("--interval", "(1)"), ("--capacity", "(16384)"), ("--dry-run", "(off)"),
    ("--json", "(off)"), ("--attach", "(auto)"), ("-v, --verbose", "(off)"),
]


def test_help_fits_one_screen_and_lists_every_option_with_its_default():
    res = subprocess.run([str(K.OOMKILLER), "--help"], capture_output=True, text=True,
                         timeout=30, env=dict(os.environ, COLUMNS="100"))
    assert res.returncode == 0 and res.stderr == ""
    lines = res.stdout.splitlines()
    assert len(lines) <= 45, len(lines)
    assert max(map(len, lines)) <= 100
    for option, default in DEFAULTS:
        line = next((ln for ln in lines if ln.strip().startswith(option)), None)
        assert line is not None, option
        assert default in line, line
    for word in ("--version", "--help", "oomkiller status", "counter >= limit", "SIGHUP",
                 "0 stopped", "1 environment", "2 bad usage", "already running"):
        assert word in res.stdout, word
