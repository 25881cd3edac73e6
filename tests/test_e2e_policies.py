"""Policies from the config file, end to end (issue 20): the real killer, real
workloads, real SIGKILLs. Each selector (user, cgroup, exe, name) picks its
own limits; the first matching policy applies; dry-run, the gate and limits
are each policy's own; a reload chooses every process's policy again and
keeps its counts; status, events, the ready line and metrics name the policy.

Every policy here also needs min-used = 0 in its section: what a section
leaves unset is the built-in default (1G), not the top-level value.
"""
from __future__ import annotations

import os
import pwd
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import pytest

import killer as K
import ops_helpers as H

sys.path.insert(0, str(K.ROOT / "src"))
from oomkiller.config import selectors  # noqa: E402

# A uid no process on this machine runs as (it needs no passwd entry): a
# policy that selects it matches nothing.
NOBODY_UID = 4000000123


def conf(path: Path, text: str) -> str:
    return H.write_config(path, "default-policy = off\nmin-used = 0\n" + text)


def event(k: K.Killer, pid: int, kind: str, policy: str, value: int, limit: int) -> dict:
    """pid's `kind` event, which must come, for writes at value/limit under policy."""
    ev = k.wait_event(pid=pid, kind=kind, timeout=10)
    assert ev is not None, f"no {kind} event for {pid}: {k.events[-5:]}\n{k.stderr_text()}"
    assert (ev["rule"], ev["value"], ev["limit"], ev.get("policy")) == \
        ("writes", value, limit, policy), f"expected writes {value}/{limit} policy {policy}: {ev}"
    return ev


def no_kills_of_others(k: K.Killer, pids: set[int]) -> None:
    wrong = [e for e in k.events if e.get("event") == "kill" and e.get("pid") not in pids]
    assert not wrong, f"kills of processes this test did not mean to kill: {wrong}"


# ---- user ------------------------------------------------------------------------

@pytest.fixture
def system_user():
    """A real system user for the test; deleted afterwards, whatever happened."""
    name = f"oomkt-pol{secrets.token_hex(3)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
                    name], check=True, capture_output=True, timeout=30)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=30)


class AsUser(K.Workload):
    """A workload run as another user, in a progress directory that user owns."""

    def __init__(self, user: pwd.struct_passwd, *args: object):
        super().__init__(K.WORK, *args, progress=True)
        self.user = user
        os.chown(self.tmp, user.pw_uid, user.pw_gid)

    def start(self) -> None:
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, cwd=self.tmp,
                                     user=self.user.pw_uid, group=self.user.pw_gid,
                                     extra_groups=[])


def test_a_user_policy_kills_that_users_process_only(tmp_path, system_user):
    c = conf(tmp_path / "p.conf", f"[policy batch]\nuser = {system_user.pw_name}\n"
                                  "max-writes = 20\nmin-used = 0\n")
    with K.Killer("--config", c) as k:
        assert f"policy batch: user={system_user.pw_name} ({system_user.pw_uid})" in k.ready_line, \
            k.ready_line
        # root's run first, then the user's: the killer was live around it.
        res = K.work("write", 30)
        assert res.ok and res.done == 30, f"root's process, which no policy selects: {res.describe()}"
        with AsUser(system_user, "write:30") as w:
            res = w.wait()
        assert res.killed and res.done == 19, \
            f"{system_user.pw_name}'s process, under max-writes = 20: {res.describe()}"
        event(k, res.pid, "kill", "batch", 20, 20)
        no_kills_of_others(k, {res.pid})


# ---- cgroup ------------------------------------------------------------------------

@pytest.fixture
def cgroup_dir():
    """CG and CG/sub under the cgroup2 mount; removed afterwards, once any
    process left in them is killed."""
    mount = selectors.cgroup2_mount()
    assert mount, "no cgroup2 file system mounted"
    name = f"oomkt-pol-{secrets.token_hex(3)}"
    cg = Path(mount) / name
    sub = cg / "sub"
    cg.mkdir()
    try:
        sub.mkdir()
        yield f"/{name}", cg
    finally:
        for d in (sub, cg):
            if not d.is_dir():
                continue
            for pid in (d / "cgroup.procs").read_text().split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            K.wait_until(lambda: not (d / "cgroup.procs").read_text().split(), 10)
            d.rmdir()


def in_cgroup(w: K.Workload, cg: Path) -> K.Workload:
    """w, set to start in cgroup cg: a shell moves itself there, then execs w."""
    w.args = ["/bin/sh", "-c", f'echo $$ > {cg}/cgroup.procs && exec "$0" "$@"', *w.args]
    return w


def test_a_cgroup_policy_kills_in_the_cgroup_and_below_and_after_a_move(tmp_path, cgroup_dir):
    path, cg = cgroup_dir
    c = conf(tmp_path / "p.conf", f"[policy cg]\ncgroup = {path}\nmax-writes = 20\nmin-used = 0\n")
    with K.Killer("--config", c) as k:
        assert f"policy cg: cgroup={path} " in k.ready_line, k.ready_line
        res = K.work("write", 30)
        assert res.ok and res.done == 30, f"outside the cgroup: {res.describe()}"

        killed = set()
        for where in (cg, cg / "sub"):
            with in_cgroup(K.Workload(K.WORK, "write:30", progress=True), where) as w:
                res = w.wait()
            assert res.killed and res.done == 19, f"in {where}: {res.describe()}"
            event(k, res.pid, "kill", "cg", 20, 20)
            killed.add(res.pid)

        # Moved in while it waits, after 5 writes no policy counted.
        with K.Workload(K.WORK, "write:5", "sig", "write:30", progress=True) as w:
            assert w.wait_state(K.S_WAITING), f"never reached sig: {w.progress()}"
            assert w.progress()[K.P_TOTAL] == 5, w.progress()
            assert H.find_proc(H.status_json(), w.pid) is None, "tracked before it is in the cgroup"
            (cg / "cgroup.procs").write_text(str(w.pid))
            os.kill(w.pid, signal.SIGUSR1)
            res = w.wait()
        assert res.killed, f"moved into the cgroup, then 30 writes: {res.describe()}"
        assert res.done == 19 and res.progress[K.P_TOTAL] == 5 + 19, \
            f"counted from the move: the 20th write after it kills ({res.describe()})"
        event(k, res.pid, "kill", "cg", 20, 20)
        killed.add(res.pid)
        no_kills_of_others(k, killed)


def test_moved_into_a_cgroup_policy_a_quiet_sqpoll_ring_is_counted_from_the_move(
        tmp_path, cgroup_dir):
    """A process becomes a target by a move, not by anything it does, and
    then only feeds an SQPOLL ring, making no syscall: no syscall exit ever
    makes its entry. Its io_uring writes count from the move all the same
    (the io_uring hooks make it): the 20th kills it, with 20 bytes in the
    file. (Before, such counts were dropped until a syscall exit: it wrote
    all 30 and lived.)"""
    path, cg = cgroup_dir
    c = conf(tmp_path / "p.conf", f"[policy cg]\ncgroup = {path}\nname = oomp\n"
                                  "max-writes = 20\nmin-used = 0\n")
    with K.Killer("--config", c) as k:
        with K.Workload(K.WORK, "uring-wsqq:30", progress=True, out=True) as w:
            assert w.wait_state(K.S_WAITING), f"no ring made: {w.progress()}"
            assert H.find_proc(H.status_json(), w.pid) is None, "tracked before it is in the cgroup"
            (cg / "cgroup.procs").write_text(str(w.pid))
            K.write_slot(w.progress_path, K.P_CTL, 1)
            res = w.wait()
        assert res.killed and res.out_size == 20, \
            f"moved in, then 30 writes through SQPOLL with no syscall: {res.describe()}"
        event(k, res.pid, "kill", "cg", 20, 20)
        no_kills_of_others(k, {res.pid})


# ---- first match, dry-run, gate and limits per policy --------------------------------

def test_the_first_matching_policy_applies_with_its_own_dry_run_gate_and_limit(tmp_path):
    exe_a = K.plain_copy(tmp_path, "oomp_exea")
    exe_c = K.plain_copy(tmp_path, "oomp_exec")
    c = conf(tmp_path / "p.conf",
             f"[policy a]\nexe = {exe_a}\nmax-writes = 10\ndry-run = yes\nmin-used = 0\n"
             f"[policy c]\nexe = {exe_c}\nmax-writes = 10\nmin-used = 1000T\n"
             "[policy b]\nname = oomp\nmax-writes = 20\nmin-used = 0\n")
    with K.Killer("--config", c) as k:
        # a: exe and name both match; a comes first: its dry-run at 10.
        res = K.work("write", 30, prog=exe_a)
        assert res.ok and res.done == 30, f"policy a is dry-run: {res.describe()}"
        event(k, res.pid, "dry-run", "a", 10, 10)
        assert not k.find_events(pid=res.pid, kind="kill")

        # b: plain oomp_work is no exe of a or c.
        res = K.work("write", 30)
        assert res.killed and res.done == 19, f"policy b, max-writes = 20: {res.describe()}"
        kill_b = event(k, res.pid, "kill", "b", 20, 20)

        # c: condemned at 10 behind its own closed gate, while b's is open
        # (b just killed): it lives on, also through the sweeps.
        with K.sleeper("write", 30, prog=exe_c) as w:
            assert w.wait_state(K.S_SLEEPING), f"policy c's target: {w.progress()} alive={w.alive()}"
            event(k, w.pid, "condemned", "c", 10, 10)
            k.wait_samples(2)
            assert w.alive(), "a target of policy c (min-used = 1000T) died with its gate closed"
            p = H.find_proc(H.status_json(), w.pid)
            assert p and p["policy"] == "c" and p["condemned"] and not p["killed"], p
        no_kills_of_others(k, {kill_b["pid"]})


# ---- reload ------------------------------------------------------------------------

def test_a_reload_applies_a_policys_new_limit_to_kept_counts(tmp_path):
    path = tmp_path / "p.conf"
    c = conf(path, "[policy a]\nname = oomp\nmax-writes = 100\nmin-used = 0\n")
    with K.Killer("--config", c) as k, H.Stepper(50) as w:
        assert w.wait_writes(50), f"stepper: {w.progress()}"
        p = H.find_proc(H.status_json(), w.pid)
        assert p and p["policy"] == "a" and p["counters"]["writes"] == 50, p

        conf(path, "[policy a]\nname = oomp\nmax-writes = 80\nmin-used = 0\n")
        H.reload(k, "writes=80 ")
        # Kept counts; the policy is chosen again when the process next runs
        # (until then status names none: the old place in the list may be
        # another policy's now).
        p = H.find_proc(H.status_json(), w.pid)
        assert p and p["policy"] is None and p["counters"]["writes"] == 50, \
            f"counts not kept across the reload: {p}"
        assert w.alive() and w.done() == 50

        w.want(200)
        res = w.wait(20)
        assert res.killed and res.done == 79, f"new limit 80 on 50 kept writes: {res.describe()}"
        event(k, w.pid, "kill", "a", 80, 80)
        no_kills_of_others(k, {w.pid})


def test_a_reload_that_drops_a_policy_frees_its_targets(tmp_path):
    path = tmp_path / "p.conf"
    c = conf(path, "[policy a]\nname = oomp\nmax-writes = 100\nmin-used = 0\n")
    with K.Killer("--config", c) as k, H.Stepper(50) as w:
        assert w.wait_writes(50), f"stepper: {w.progress()}"
        p = H.find_proc(H.status_json(), w.pid)
        assert p and p["policy"] == "a" and p["counters"]["writes"] == 50, p

        conf(path, f"[policy z]\nname = oomp\nuser = {NOBODY_UID}\nmax-writes = 10\nmin-used = 0\n")
        line = H.reload(k, "reloaded:")
        assert "policy z:" in line and "policy a:" not in line, line
        st = H.status_json()
        assert [p["name"] for p in st["policies"]] == ["z"], st["policies"]

        w.want(200)
        assert w.wait_writes(200, timeout=20), \
            f"with policy a gone, 200 writes should pass: {w.progress()} alive={w.alive()}; " \
            f"events {k.find_events(pid=w.pid)}"
        k.wait_samples(1)
        assert w.alive(), f"killed with no policy selecting it: {k.find_events(pid=w.pid)}"
        assert not k.find_events(pid=w.pid), k.find_events(pid=w.pid)
        no_kills_of_others(k, set())

        # Status: no policy selects it now, so none may claim it. (The entry
        # kept from policy a holds a's index, 0, which is z's now.)
        st = H.status_json()
        p = H.find_proc(st, w.pid)
        z = st["policies"][0]
        assert (p is None or p["policy"] != "z") and z["tracked"] == 0, \
            f"status shows a process that no policy selects (uid {os.getuid()}, not " \
            f"{NOBODY_UID}) under policy z, tracked {z['tracked']}, at its limits: {p}"


# ---- surfaces: status, events, ready line, metrics --------------------------------

def test_status_events_ready_line_and_metrics_name_the_policy(tmp_path):
    exe_a = K.plain_copy(tmp_path, "oomp_exea")
    metrics = tmp_path / "oomkiller.prom"
    c = conf(tmp_path / "p.conf",
             f"[policy a]\nexe = {exe_a}\nmax-writes = 90\nmin-used = 0\n"
             "[policy b]\nname = oomp\nmax-writes = 20\nmin-used = 0\n")
    with K.Killer("--config", c, "--metrics-file", metrics, json_events=False) as k:
        ready = k.ready_line
        assert f"; policy a: exe={exe_a} min-used=0B " in ready and \
            '; policy b: name~"oomp" min-used=0B ' in ready, ready
        assert ready.index("policy a:") < ready.index("policy b:") < ready.index("interval="), ready

        with K.sleeper("write", 3, prog=exe_a) as wa, K.sleeper("write", 4) as wb:
            assert wa.wait_state(K.S_SLEEPING) and wb.wait_state(K.S_SLEEPING)
            st = H.status_json()
            pa, pb = H.find_proc(st, wa.pid), H.find_proc(st, wb.pid)
            assert pa and pa["policy"] == "a" and pa["counters"]["writes"] == 3, pa
            assert pb and pb["policy"] == "b" and pb["counters"]["writes"] == 4, pb
            assert [(p["name"], p["limits"]["writes"], p["tracked"]) for p in st["policies"]] == \
                [("a", 90, 1), ("b", 20, 1)], st["policies"]

            res = H.status()
            assert res.returncode == 0, res.stderr
            lines = res.stdout.splitlines()
            pol_lines = [ln for ln in lines if ln.startswith("policy ")]
            assert [ln.split(":")[0] for ln in pol_lines] == ["policy a", "policy b"], res.stdout
            assert "writes=90 " in pol_lines[0] and "writes=20 " in pol_lines[1], pol_lines
            header = next((ln.split() for ln in lines if ln.startswith("PID ")), None)
            assert header and header[:3] == ["PID", "NAME", "POLICY"], res.stdout
            rows = {ln.split()[0]: ln.split() for ln in lines if ln.split()[:1] in
                    ([str(wa.pid)], [str(wb.pid)])}
            assert rows[str(wa.pid)][1:3] == ["oomp_exea", "a"], rows
            assert rows[str(wa.pid)][header.index("WRITES")] == "3/90", rows
            assert rows[str(wb.pid)][1:3] == ["oomp_work", "b"], rows
            assert rows[str(wb.pid)][header.index("WRITES")] == "4/20", rows

        res = K.work("write", 30)
        assert res.killed and res.done == 19, res.describe()
        line = K.wait_until(lambda: next((ln for ln in list(k.stdout_lines)
                                          if f" kill pid={res.pid} " in ln), None), 10)
        assert line is not None, k.stdout_lines
        assert line.endswith(" policy=b"), f"a kill's text line ends in policy=NAME: {line!r}"

        want = 'oomkiller_policy_kills_total{policy="b",rule="writes"} 1'

        def text():
            try:
                return metrics.read_text()
            except FileNotFoundError:
                return ""
        assert K.wait_until(lambda: want in text().splitlines(), 10), \
            f"{want!r} not in {metrics}:\n{text()}"
        m = text().splitlines()
        assert 'oomkiller_policy_kills_total{policy="a",rule="writes"} 0' in m, m
        assert 'oomkiller_policy_limit{policy="a",rule="writes"} 90' in m
        assert 'oomkiller_policy_limit{policy="b",rule="writes"} 20' in m
        assert 'oomkiller_policy_gate_threshold_bytes{policy="b"} 0' in m
