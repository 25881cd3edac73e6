"""The Debian package under a real systemd as PID 1 (issue 11, items 7-8).

Runs only in the systemd guest: `make test-vm-systemd` boots one with
virtme-ng's --systemd over this machine's root, /etc, /usr and /var as
throw-away overlays, and runs this module there; `make test` leaves this
folder out. In order, on one installed package: install (enabled, started,
active), start (active only after the ready line), reload (reloading, then
active, same process), a kill in `journalctl -o json` with its fields, a
`unit =` policy matching a transient unit started after the reload that
added it, the watchdog restarting a SIGSTOPped loader, an upgrade over
itself, a purge.
Memory ballast keeps the gate open throughout.
"""
from __future__ import annotations

import glob
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import killer as K  # noqa: E402  (puts src/ on the path)
from oomkiller.outputs.journald import MESSAGE_IDS  # noqa: E402

UNIT = "oomkiller.service"
KILL_ID = MESSAGE_IDS["kill"]
# systemd's own catalog: a unit's reload job started / finished.
UNIT_RELOADING = "d34d037fff1847e6ae669a370e694725"
UNIT_RELOADED = "7b05ebc668384222baa8881179cfda54"
WATCHDOG = 30        # WatchdogSec= of dist/oomkiller.service
JOURNAL_WAIT = 60.0  # journald under TCG can lag a few seconds
# A reload loads a whole generation (3 s in this guest last run): generous.
RELOAD_WAIT = 600.0
# systemd sends SIGABRT, then SIGCONT, on a watchdog timeout; restart after 2 s.
RESTART_WAIT = WATCHDOG + 120.0
# docker's "don't start services" policy, on the root this guest shares with
# the development machine. Removed in the guest's /usr overlay only.
POLICY_RC = Path("/usr/sbin/policy-rc.d")
CONF = Path("/etc/oomkiller.conf")  # the package's conffile
# A transient unit (systemd-run) for the `unit =` policy: its cgroup appears
# only when it starts, after the killer loaded the policy.
CI_UNIT = "oomkt-ci.service"
CI_LIMIT = 40
# A section's unset min-used is the built-in 1G; the ballast keeps it open
# anyway, 0 says the gate is not what this test is about.
CI_POLICY = f"""
[policy ci]
unit = {CI_UNIT}
max-writes = {CI_LIMIT}
min-used = 0
"""


def sh(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(list(cmd), capture_output=True, text=True, timeout=600,
                         stdin=subprocess.DEVNULL)
    if check:
        assert res.returncode == 0, f"{' '.join(cmd)}: exit {res.returncode}\n{res.stdout}{res.stderr}"
    return res


def show(*props: str) -> dict[str, str]:
    out = sh("systemctl", "show", UNIT, "-p", ",".join(props)).stdout
    return dict(ln.split("=", 1) for ln in out.splitlines() if "=" in ln)


def mono(props: dict[str, str], name: str) -> int:
    v = int(props[name])
    assert v > 0, f"{name} not set: {props}"
    return v


def cursor() -> int:
    """Now, on the journal's clock (CLOCK_MONOTONIC, this boot): later reads
    keep only entries after it. Not journalctl --after-cursor: with field
    matches it missed entries that were there (systemd 252, seen here)."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


def entries(*matches: str, after: int | None = None) -> list[dict]:
    out = sh("journalctl", "-b", "-q", "-o", "json", "--no-pager", "--all", *matches,
             check=False).stdout
    got = [json.loads(ln) for ln in out.splitlines() if ln.startswith("{")]
    return [e for e in got if after is None or int(e["__MONOTONIC_TIMESTAMP"]) > after]


# What systemd itself logs about the unit, and what the loader logs.
SYSTEMD = ("-u", UNIT)


def by_systemd(e: dict) -> bool:
    return e.get("_PID") == "1"


def ours(props: dict[str, str]) -> tuple[str, ...]:
    return (f"_SYSTEMD_UNIT={UNIT}", f"_PID={props['MainPID']}")


def wait_entry(pred, *matches: str, after: int | None = None, timeout: float = JOURNAL_WAIT) -> dict:
    found = K.wait_until(lambda: next((e for e in entries(*matches, after=after) if pred(e)), None),
                         timeout, step=0.5)
    assert found, f"no journal entry {matches} after {after} within {timeout}s"
    return found


def wait_active(timeout: float = 300.0) -> dict[str, str]:
    props = K.wait_until(lambda: (lambda p: p if (p["ActiveState"], p["SubState"]) == ("active", "running")
                                  else None)(show("ActiveState", "SubState")), timeout, step=0.5)
    assert props, f"{UNIT} not active/running within {timeout}s: {show('ActiveState', 'SubState')}"
    return show("ActiveState", "SubState", "MainPID", "NRestarts", "StatusText",
                "ExecMainStartTimestampMonotonic", "ActiveEnterTimestampMonotonic")


def save(name: str, text: str) -> None:
    """Leave `text` in the host's results folder (vm/guest-exec.sh's $VM_OUT)."""
    out = os.environ.get("VM_OUT")
    if out:
        Path(out, name).write_text(text)


def reload_said(props: dict[str, str]) -> str:
    """`systemctl reload`, then the loader's own word on it (its MESSAGE)."""
    c = cursor()
    sh("systemctl", "reload", UNIT)
    said = wait_entry(lambda e: any(w in e.get("MESSAGE", "") for w in ("reloaded:", "cannot reload")),
                      *ours(props), after=c, timeout=RELOAD_WAIT)
    return said["MESSAGE"]


def installed() -> bool:
    res = sh("dpkg-query", "-W", "-f=${Status}", "oomkiller", check=False)
    return res.returncode == 0 and res.stdout.endswith(" installed")


@pytest.fixture(scope="module")
def deb(e2e_session) -> Path:
    comm = Path("/proc/1/comm").read_text().strip()
    if comm != "systemd":
        pytest.fail(f"PID 1 is {comm!r}, not systemd: these tests run in the systemd guest "
                    "(make test-vm-systemd)")
    debs = glob.glob(str(K.ROOT / "build" / "oomkiller_*_all.deb"))
    assert len(debs) == 1, f"want one build/oomkiller_*_all.deb (make deb): {debs}"
    if POLICY_RC.exists():
        fs = sh("findmnt", "-n", "-o", "FSTYPE", "--target", str(POLICY_RC)).stdout.strip()
        assert fs == "overlay", f"{POLICY_RC} is on {fs}, not the guest's overlay: not removing it"
        POLICY_RC.unlink()
    assert not installed()
    # The module takes ~12 min under TCG: the ballast must outlive it.
    with K.Ballast.opening(1 * K.GiB, lifetime=3600) as ballast:
        try:
            yield Path(debs[0])
        finally:
            if installed():
                sh("dpkg", "--purge", "oomkiller", check=False)
            save("journal.txt", sh("journalctl", "-b", "-o", "short-monotonic", "--no-pager",
                                   check=False).stdout)
        assert ballast.proc.poll() is None, "the ballast (a non-target) died"


def test_install_enables_and_starts_the_unit(deb):
    sh("dpkg", "-i", str(deb))
    assert installed()
    assert sh("systemctl", "is-enabled", UNIT).stdout.strip() == "enabled"
    props = wait_active()
    assert show("Type")["Type"] == "notify"
    assert int(props["MainPID"]) > 0


def test_start_is_active_only_after_the_ready_line(deb):
    sh("systemctl", "stop", UNIT)
    assert show("ActiveState")["ActiveState"] == "inactive"
    sh("systemctl", "start", UNIT)  # returns once the start job is done: READY=1
    props = wait_active()
    started = mono(props, "ExecMainStartTimestampMonotonic")
    active = mono(props, "ActiveEnterTimestampMonotonic")
    ready = wait_entry(lambda e: "ready: families" in e.get("MESSAGE", ""), *ours(props))
    line = int(ready["__MONOTONIC_TIMESTAMP"])
    # The line is stamped when journald reads it, which may be a little after
    # systemd read READY=1 (sent right after the line): allow 2 s of that.
    # A READY=1 sent before the hooks were attached would put activation
    # seconds before the line (loading takes seconds under TCG).
    assert started < line, (started, line)
    assert active >= line - 2_000_000, f"active at {active} us, ready line at {line} us"
    # STATUS=: families, gate, tracked, kills.
    for word in ("mem=", "sys=", "tcp=", "rand=", "gate", "tracked", "kills"):
        assert word in props["StatusText"], props["StatusText"]


def test_reload_goes_through_reloading_back_to_active(deb):
    before = wait_active()
    c = cursor()
    sh("systemctl", "reload", UNIT)
    wait_entry(lambda e: by_systemd(e) and e.get("MESSAGE_ID") == UNIT_RELOADING, *SYSTEMD, after=c)
    done = wait_entry(lambda e: by_systemd(e) and e.get("MESSAGE_ID") == UNIT_RELOADED, *SYSTEMD, after=c)
    assert done.get("JOB_RESULT") == "done", done
    said = wait_entry(lambda e: any(w in e.get("MESSAGE", "") for w in ("reloaded:", "cannot reload")),
                      *ours(before), after=c, timeout=RELOAD_WAIT)
    assert "reloaded:" in said["MESSAGE"], said["MESSAGE"]
    after = wait_active()
    assert after["MainPID"] == before["MainPID"], "reload restarted the service"
    assert after["NRestarts"] == before["NRestarts"]


def test_a_kill_shows_in_the_journal_with_its_fields(deb):
    props = wait_active()
    r = K.work("write", 150)
    assert r.killed, r.describe()
    e = wait_entry(lambda e: e.get("MESSAGE_ID") == KILL_ID, f"OBJECT_PID={r.pid}", *ours(props))
    save("journal-kill.json", json.dumps(e, indent=1, sort_keys=True) + "\n")
    assert e["OOMKILLER_EVENT"] == "kill"
    assert e["OOMKILLER_POLICY"] == "default"
    assert K.rule_key(e["OOMKILLER_RULE"]) == "writes"
    assert int(e["OOMKILLER_VALUE"]) >= K.LIMITS["writes"] == int(e["OOMKILLER_LIMIT"])
    assert int(e["OOMKILLER_MEM_USED"]) >= K.GiB
    assert "oomp" in e["OOMKILLER_COMM"]
    assert e["_SYSTEMD_UNIT"] == UNIT and e["SYSLOG_IDENTIFIER"] == "oomkiller"
    assert int(e["PRIORITY"]) <= 5 and e["MESSAGE"], e
    # The package's catalog entry is in journald's catalog.
    assert KILL_ID in sh("journalctl", "--list-catalog", KILL_ID).stdout


def test_a_unit_policy_matches_a_unit_started_after_it(deb):
    before = wait_active()
    original = CONF.read_text()
    cg = Path("/sys/fs/cgroup/system.slice", CI_UNIT)
    try:
        CONF.write_text(original + CI_POLICY)
        said = reload_said(before)
        # Resolved while the unit is unknown to systemd: system.slice's.
        assert "reloaded:" in said, said
        assert f"policy ci: unit={CI_UNIT} (/system.slice/{CI_UNIT})" in said, said
        assert "policy default:" in said, said
        props = wait_active()
        assert props["MainPID"] == before["MainPID"], "reload restarted the service"
        # The unit's cgroup appears only now: matched by the cgroup_mkdir hook.
        assert not cg.exists(), f"{cg} exists before the unit starts"
        c = cursor()
        run = sh("systemd-run", "--unit", CI_UNIT, "--collect", "--wait",
                 str(K.WORK), "write:150", check=False)
        how = f"systemd-run: exit {run.returncode}\n{run.stdout}{run.stderr}"
        exited = wait_entry(lambda e: by_systemd(e) and "Main process exited" in e.get("MESSAGE", ""),
                            "-u", CI_UNIT, after=c)
        assert "code=killed, status=9/KILL" in exited["MESSAGE"], f"{exited['MESSAGE']}; {how}"
        e = wait_entry(lambda e: e.get("MESSAGE_ID") == KILL_ID, "OOMKILLER_POLICY=ci", *ours(props),
                       after=c)
        save("journal-kill-policy.json", json.dumps(e, indent=1, sort_keys=True) + "\n")
        assert e["OOMKILLER_EVENT"] == "kill" and K.rule_key(e["OOMKILLER_RULE"]) == "writes", e
        assert int(e["OOMKILLER_LIMIT"]) == CI_LIMIT == int(e["OOMKILLER_VALUE"]), e
        assert "oomp" in e["OOMKILLER_COMM"], e
        assert e["_SYSTEMD_UNIT"] == UNIT, e
        # The same program outside the unit: the default policy (100 writes)
        # lets it do more writes than ci's limit.
        r = K.work("write", 60)
        assert r.ok, r.describe()
    finally:
        sh("systemctl", "stop", CI_UNIT, check=False)
        sh("systemctl", "reset-failed", CI_UNIT, check=False)
        CONF.write_text(original)
    assert sh("systemctl", "show", "-P", "LoadState", CI_UNIT).stdout.strip() == "not-found"
    # Back to the package's own settings for the tests that follow (the
    # upgrade finds its conffile unchanged).
    said = reload_said(wait_active())
    assert "reloaded:" in said and "policy ci" not in said, said


def test_the_watchdog_restarts_a_stopped_loader(deb):
    before = wait_active()
    pid = int(before["MainPID"])
    c = cursor()
    os.kill(pid, signal.SIGSTOP)
    try:
        ok = K.wait_until(lambda: show("MainPID")["MainPID"] not in ("0", str(pid)), RESTART_WAIT, step=1)
        assert ok, f"{UNIT} not restarted within {RESTART_WAIT}s of SIGSTOP: {show('ActiveState', 'SubState')}"
    finally:
        if K.alive(pid):
            os.kill(pid, signal.SIGCONT)
    wait_entry(lambda e: by_systemd(e) and "watchdog timeout" in e.get("MESSAGE", "").lower(),
               *SYSTEMD, after=c)
    after = wait_active()
    assert int(after["NRestarts"]) == int(before["NRestarts"]) + 1
    assert not K.alive(pid)
    r = K.work("write", 150)  # the restarted killer kills
    assert r.killed, r.describe()


def test_upgrade_over_itself_restarts_the_service(deb):
    before = wait_active()
    sh("dpkg", "-i", str(deb))
    after = wait_active()
    assert after["MainPID"] != before["MainPID"], "the upgrade did not restart the service"
    r = K.work("write", 150)
    assert r.killed, r.describe()


def test_purge_leaves_nothing(deb):
    pid = int(wait_active()["MainPID"])
    sh("dpkg", "--purge", "oomkiller")
    assert not installed()
    assert show("LoadState")["LoadState"] == "not-found"
    assert K.wait_until(lambda: not K.alive(pid), 30, step=0.2), "the loader outlived the purge"
    for f in ("/usr/sbin/oomkiller", "/usr/lib/systemd/system/oomkiller.service",
              "/etc/oomkiller.conf", "/sys/fs/bpf/oomkiller", "/run/oomkiller"):
        assert not os.path.exists(f), f"purge left {f}"
    left = [n for n in K.bpf_prog_names(sorted(K.bpf_prog_ids())).values()
            if n.startswith(("oomk", "on_", "handle_"))]
    assert not left, f"programs left loaded after the purge: {left}"
