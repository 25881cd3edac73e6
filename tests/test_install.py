"""make install / uninstall into a DESTDIR, the systemd unit as systemd-analyze
sees it, and the man page as groff and man(1) see it. Runs the real make."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from oomkiller.commands import cli  # noqa: E402

UNIT = ROOT / "dist" / "oomkiller.service"
CONF = ROOT / "dist" / "oomkiller.conf"
MAN = ROOT / "doc" / "oomkiller.8"
TIMEOUT = 600  # make may build the zipapp (and apt-get the checkers) first


def make(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    p = subprocess.run(["make", "--no-print-directory", "-C", str(ROOT), *args],
                       capture_output=True, text=True, timeout=TIMEOUT)
    if check:
        assert p.returncode == 0, f"make {' '.join(args)}: {p.returncode}\n{p.stdout}\n{p.stderr}"
    return p


@pytest.fixture(scope="module", autouse=True)
def tools():
    """systemd-analyze, groff and man, installed by the Makefile when missing."""
    make("install-deps")
    for tool in ("systemd-analyze", "groff", "man"):
        assert shutil.which(tool), f"{tool} missing after make install-deps"


def installed(destdir: Path, prefix: str = "/usr/local") -> dict[str, Path]:
    base = destdir / prefix.lstrip("/")
    return {
        "sbin": base / "sbin" / "oomkiller",
        "unit": base / "lib" / "systemd" / "system" / "oomkiller.service",
        "man": base / "share" / "man" / "man8" / "oomkiller.8",
        "conf": destdir / "etc" / "oomkiller.conf",
    }


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def exec_start(unit_text: str) -> list[str]:
    return re.findall(r"^ExecStart=(.*)$", unit_text, re.M)


def verify(unit_text: str, workdir: Path, man_root: Path) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "oomkiller.service"
    path.write_text(unit_text)
    env = dict(os.environ, MANPATH=str(man_root), SYSTEMD_LOG_COLOR="0")
    return subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True,
                          text=True, env=env, timeout=120)


# -- install ------------------------------------------------------------------

def test_install_puts_every_file_with_its_mode(tmp_path):
    make("install", f"DESTDIR={tmp_path}", "PREFIX=/usr/local")
    f = installed(tmp_path)
    for path in f.values():
        assert path.is_file(), path
    assert mode(f["sbin"]) == 0o755
    assert mode(f["unit"]) == 0o644
    assert mode(f["man"]) == 0o644
    assert mode(f["conf"]) == 0o644
    assert f["sbin"].read_bytes() == (ROOT / "oomkiller").read_bytes()
    assert f["man"].read_bytes() == MAN.read_bytes()
    assert f["conf"].read_bytes() == CONF.read_bytes()
    # nothing else lands in the DESTDIR
    files = {p for p in tmp_path.rglob("*") if not p.is_dir()}
    assert files == set(f.values())


def test_installed_zipapp_carries_the_package_and_the_object(tmp_path):
    make("install", f"DESTDIR={tmp_path}")
    sbin = installed(tmp_path)["sbin"]
    assert sbin.read_bytes().startswith(b"#!/usr/bin/env python3\n")
    names = zipfile.ZipFile(sbin).namelist()
    for name in ("oomkiller/commands/cli.py", "oomkiller/config/config.py",
                 "oomkiller/oomkiller.bpf.o"):
        assert name in names


def test_unit_exec_start_follows_prefix(tmp_path):
    make("install", f"DESTDIR={tmp_path}", "PREFIX=/opt/ok")
    unit = installed(tmp_path, "/opt/ok")["unit"]
    text = unit.read_text()
    assert exec_start(text) == ["/opt/ok/sbin/oomkiller"]
    # everything but that line is the shipped unit
    strip = lambda t: [ln for ln in t.splitlines() if not ln.startswith("ExecStart=")]  # noqa: E731
    assert strip(text) == strip(UNIT.read_text())
    assert installed(tmp_path, "/opt/ok")["sbin"].is_file()


def test_existing_config_is_not_overwritten(tmp_path):
    conf = tmp_path / "etc" / "oomkiller.conf"
    conf.parent.mkdir()
    conf.write_text("max-fds = 7\n")
    p = make("install", f"DESTDIR={tmp_path}")
    assert conf.read_text() == "max-fds = 7\n"
    assert "KEEP" in p.stdout


# -- the unit -----------------------------------------------------------------

def test_systemd_analyze_verify_accepts_the_installed_unit(tmp_path):
    dest = tmp_path / "dest"
    make("install", f"DESTDIR={dest}", "PREFIX=/usr/local")
    f = installed(dest)
    text = f["unit"].read_text()
    assert exec_start(text) == ["/usr/local/sbin/oomkiller"]
    # verify checks that ExecStart is an executable file and that
    # Documentation=man:oomkiller(8) resolves: point both into the DESTDIR.
    staged = text.replace("ExecStart=/usr/local/sbin/oomkiller", f"ExecStart={f['sbin']}")
    man_root = f["man"].parent.parent
    p = verify(staged, tmp_path / "ok", man_root)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "oomkiller.service" not in p.stderr, p.stderr  # not even a warning

    # The check is not vacuous: a missing executable or man page fails it.
    p = verify(text.replace("ExecStart=/usr/local/sbin/oomkiller",
                            f"ExecStart={dest}/absent/oomkiller"), tmp_path / "bad1", man_root)
    assert p.returncode != 0 and "not executable" in p.stderr, p.stderr
    p = verify(staged, tmp_path / "bad2", tmp_path / "no-man")
    assert p.returncode != 0 and "man oomkiller(8)" in p.stderr, p.stderr


def test_make_check_unit():
    make("check-unit")


def test_unit_hardening():
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # keys are case-sensitive
    parser.read_string(UNIT.read_text())
    s = parser["Service"]
    assert s["Type"] == "notify" and s["NotifyAccess"] == "main"
    assert s["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert s["WatchdogSec"] == "30s"
    assert s["Restart"] == "on-failure"
    assert set(s["CapabilityBoundingSet"].split()) == {"CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN"}
    for key in ("NoNewPrivileges", "ProtectHome", "PrivateTmp", "ProtectKernelModules",
                "ProtectControlGroups", "RestrictNamespaces", "LockPersonality",
                "MemoryDenyWriteExecute"):
        assert s[key] == "yes", key
    assert s["ProtectSystem"] == "strict"
    assert s["SystemCallArchitectures"] == "native"
    assert "/sys/fs/bpf" in s["ReadWritePaths"].split()
    assert s["RuntimeDirectory"] == "oomkiller"
    assert s["StandardOutput"] == "journal"
    # it would hide /proc/kallsyms, which the kprobe family probes
    assert "ProtectKernelTunables" not in s
    assert parser["Install"]["WantedBy"] == "multi-user.target"


# -- uninstall ----------------------------------------------------------------

def test_uninstall_removes_everything(tmp_path):
    make("install", f"DESTDIR={tmp_path}")
    make("uninstall", f"DESTDIR={tmp_path}")
    for path in installed(tmp_path).values():
        assert not path.exists(), path
    assert not [p for p in tmp_path.rglob("*") if not p.is_dir()]


def test_uninstall_keeps_an_edited_config(tmp_path):
    make("install", f"DESTDIR={tmp_path}")
    f = installed(tmp_path)
    with f["conf"].open("a") as out:
        out.write("max-fds = 50\n")
    p = make("uninstall", f"DESTDIR={tmp_path}")
    assert f["conf"].is_file() and "max-fds = 50" in f["conf"].read_text()
    assert "modified" in p.stdout
    for key in ("sbin", "unit", "man"):
        assert not f[key].exists()


def test_uninstall_of_nothing_is_fine(tmp_path):
    make("uninstall", f"DESTDIR={tmp_path}")


# -- the man page -------------------------------------------------------------

def test_man_page_has_no_warnings():
    p = subprocess.run(["groff", "-man", "-ww", "-z", str(MAN)], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "" and p.stdout == "", p.stderr
    p = subprocess.run(["man", "--warnings", "-l", str(MAN)], capture_output=True, text=True,
                       env=dict(os.environ, MANWIDTH="80"), timeout=60)
    assert p.returncode == 0 and p.stderr == "", p.stderr
    assert "SYNOPSIS" in p.stdout and "EXIT STATUS" in p.stdout


def test_make_check_man():
    make("check-man")


def test_installed_man_page_is_found_by_man(tmp_path):
    make("install", f"DESTDIR={tmp_path}")
    man_root = installed(tmp_path)["man"].parent.parent
    p = subprocess.run(["man", "-w", "8", "oomkiller"], capture_output=True, text=True,
                       env=dict(os.environ, MANPATH=str(man_root)), timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == str(installed(tmp_path)["man"])


def test_man_page_documents_every_option():
    text = subprocess.run(["man", "-l", str(MAN)], capture_output=True, text=True,
                          env=dict(os.environ, MANWIDTH="200"), timeout=60).stdout
    text = text.replace("\u2010", "-").replace("\u2212", "-")
    options = {s for a in cli.build_parser()._actions for s in a.option_strings}
    options |= {"--config"}
    for option in options:
        assert re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text), option
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "FILES", "SIGNALS",
                    "EXIT STATUS", "EXAMPLES", "SEE ALSO"):
        assert re.search(rf"^{section}$", text, re.M), section
    for word in ("/etc/oomkiller.conf", "/sys/fs/bpf/oomkiller/", "SIGHUP", "status",
                 "16384", "read-bytes", "tcp-packets"):
        assert word in text, word
