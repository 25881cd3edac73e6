"""The Debian package, for real on this machine: `make deb` builds it,
lintian finds no error, and dpkg installs it, the installed program runs and
kills, it upgrades over itself keeping an edited conffile, and purges
leaving nothing (issue 11). What systemd does with the unit at install is
the systemd guest lane's: systemd is not PID 1 here, so the maintainer
scripts only manage the enablement symlinks."""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import killer as K

CONF = Path("/etc/oomkiller.conf")
WANTS = Path("/etc/systemd/system/multi-user.target.wants/oomkiller.service")
FILES = ["/usr/sbin/oomkiller", "/usr/lib/systemd/system/oomkiller.service",
         "/usr/lib/systemd/catalog/oomkiller.catalog", "/usr/share/man/man8/oomkiller.8.gz",
         "/usr/share/doc/oomkiller/copyright",
         "/usr/share/doc/oomkiller/examples/oomkiller.rules.yml", str(CONF)]


def sh(*cmd: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(list(cmd), capture_output=True, text=True, timeout=600,
                          stdin=subprocess.DEVNULL, **kw)


def installed() -> bool:
    res = sh("dpkg-query", "-W", "-f=${Status}", "oomkiller")
    return res.returncode == 0 and "installed" in res.stdout and "not-installed" not in res.stdout


@pytest.fixture(scope="module")
def deb() -> Path:
    res = sh("make", "-C", str(K.ROOT), "deb")
    assert res.returncode == 0, res.stdout + res.stderr
    debs = glob.glob(str(K.ROOT / "build" / "oomkiller_*_all.deb"))
    assert len(debs) == 1, debs
    return Path(debs[0])


def test_lintian_finds_no_error(deb):
    res = sh("lintian", "--fail-on", "error", str(deb))
    assert res.returncode == 0, res.stdout + res.stderr
    assert not [ln for ln in res.stdout.splitlines() if ln.startswith("E:")], res.stdout


def test_install_run_upgrade_purge(e2e_session, deb, tmp_path):
    assert not installed(), "the oomkiller package is already installed here: purge it first"
    saved = None
    if CONF.exists():  # a `make install`'s file: put it back afterwards
        saved = tmp_path / "oomkiller.conf.saved"
        shutil.copy2(CONF, saved)
        CONF.unlink()
    env = {k: v for k, v in os.environ.items() if k != "OOMKILLER_CONFIG"}
    try:
        res = sh("dpkg", "-i", str(deb))
        assert res.returncode == 0, res.stdout + res.stderr
        assert installed()
        for f in FILES:
            assert os.path.exists(f), f
        assert WANTS.is_symlink(), "postinst did not enable the unit"
        unit = Path("/usr/lib/systemd/system/oomkiller.service").read_text()
        assert "ExecStart=/usr/sbin/oomkiller\n" in unit and "Type=notify" in unit

        # The installed program: its shebang, check, and a real kill.
        assert open("/usr/sbin/oomkiller", "rb").readline() == b"#!/usr/bin/python3\n"
        res = sh("/usr/sbin/oomkiller", "check", env=env)
        assert res.returncode == 0 and "config: /etc/oomkiller.conf" in res.stdout, res
        k = K.Killer("--min-used", "0")
        k.args[0] = "/usr/sbin/oomkiller"
        with k:
            r = K.work("write", 150)
            assert r.killed, r.describe()
            assert k.wait_event(pid=r.pid, kind="kill") is not None

        # Upgrade over itself: an edited conffile stays as the administrator left it.
        CONF.write_text(CONF.read_text() + "max-writes = 50\n")
        res = sh("dpkg", "--force-confold", "-i", str(deb))
        assert res.returncode == 0, res.stdout + res.stderr
        assert CONF.read_text().endswith("max-writes = 50\n")
        res = sh("/usr/sbin/oomkiller", "check", env=env)
        assert "max-writes       50            /etc/oomkiller.conf:" in res.stdout, res.stdout

        res = sh("dpkg", "--purge", "oomkiller")
        assert res.returncode == 0, res.stdout + res.stderr
        assert not installed()
        left = [f for f in FILES if os.path.exists(f)]
        assert not left, f"purge left {left}"
        assert not WANTS.exists() and not WANTS.is_symlink(), "purge left the enablement symlink"
        assert not glob.glob("/var/lib/systemd/deb-systemd-helper-enabled/**/oomkiller*",
                             recursive=True), "purge left deb-systemd-helper's state"
    finally:
        if installed():
            sh("dpkg", "--purge", "oomkiller")
        if saved is not None:
            shutil.copy2(saved, CONF)
