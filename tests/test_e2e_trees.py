"""scope = tree, and every selector kind in one killer (issue 20).

A tree policy keeps one total for the process it first chose and everything
that process forks or execs afterwards: a script named as a target that runs
150 `dd` children of one write each dies, with its tree, at the 100th write.
Every live member dies, whatever its name: that is what the policy says.

test_every_selector_kind_in_one_killer is the VM lane's (mk/vm.mk): one
killer start (the dear part under TCG) that proves name, exe, cgroup, user
and tree selection on the kernel at hand.
"""
from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

import killer as K
import ops_helpers as H

sys.path.insert(0, str(K.ROOT / "src"))
from oomkiller.config import selectors  # noqa: E402

# A uid no process here runs as; a process made to run as it has no passwd
# entry, which a uid selector does not need.
TEST_UID = 4000000124

DD_SCRIPT = """#!/bin/sh
# Started by tests/test_e2e_trees.py: a member that only sleeps, then 150
# children that each write one byte.
sleep 600 &
touch {dir}/sleeper.$!   # no write(2): a file named for its pid
i=0
while [ $i -lt 150 ]; do
  dd if=/dev/zero of={dir}/out bs=1 count=1 oflag=append conv=notrunc status=none
  i=$((i + 1))
done
touch {dir}/finished
"""


def conf(path: Path, text: str) -> str:
    return H.write_config(path, "default-policy = off\nmin-used = 0\n" + text)


def tree_script(tmp_path: Path, name: str = "oomp_tree") -> Path:
    script = tmp_path / name
    script.write_text(DD_SCRIPT.format(dir=tmp_path))
    script.chmod(0o755)
    return script


def sleeper_pid(d: Path) -> int:
    (path,) = d.glob("sleeper.*")
    return int(path.suffix[1:])


def gone(pid: int) -> bool:
    return K.wait_until(lambda: not K.alive(pid), 10)


def run_tree(script: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    try:
        return subprocess.run([str(script)], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    finally:
        # The tree's sweep may kill a sleeper between the look and the kill.
        for path in script.parent.glob("sleeper.*"):
            if K.alive(int(path.suffix[1:])):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(path.suffix[1:]), signal.SIGKILL)


def test_150_dd_children_die_in_their_tree_at_the_100th_write(tmp_path):
    script = tree_script(tmp_path)
    with K.Killer("--config", conf(tmp_path / "t.conf", "[policy t]\nname = oomp_tree\n"
                                   "max-writes = 100\nmin-used = 0\nscope = tree\n")) as k:
        assert "policy t: " in k.ready_line and "scope=tree" in k.ready_line, k.ready_line
        res = run_tree(script)
        assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
        assert (tmp_path / "out").stat().st_size == 100, "the 100th write completes, no 101st"
        assert not (tmp_path / "finished").exists()
        assert gone(sleeper_pid(tmp_path)), "the member that only slept lives on"

        def kills():
            return {e["pid"]: e for e in list(k.events) if e["event"] == "kill"}
        # The script, the 100th dd, the sleeper: the last event can come a
        # moment after the death it reports (a loaded host).
        K.wait_until(lambda: len(kills()) >= 3, 10)
        kills = kills()
        assert len(kills) == 3, kills
        assert all((e["rule"], e["value"], e["limit"], e["policy"]) == ("writes", 100, 100, "t")
                   for e in kills.values()), kills
        assert {e["comm"] for e in kills.values()} == {"oomp_tree", "dd", "sleep"}, kills
        # The tree's entry went with its last member.
        assert K.wait_until(lambda: H.status_json()["tracked"] == 0, 10), H.status_json()


def test_a_trees_fd_level_is_the_sum_of_its_members(tmp_path):
    """fds is a level: the tree's is what its members hold open together."""
    script = tmp_path / "oomp_fdtree"
    script.write_text(f"#!/bin/sh\nfor i in 1 2 3 4; do {K.WORK} open:30 pause & done\nwait\n")
    script.chmod(0o755)
    with K.Killer("--config", conf(tmp_path / "t.conf", "[policy f]\nname = oomp_fdtree\n"
                                   "max-fds = 100\nmin-used = 0\nscope = tree\n")) as k:
        res = subprocess.run([str(script)], capture_output=True, text=True, timeout=60,
                             stdin=subprocess.DEVNULL)
        assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
        ev = k.wait_event(kind="kill", timeout=10)
        assert ev["rule"] == "fds" and ev["policy"] == "f" and ev["value"] >= 100, ev
        assert K.wait_until(lambda: not [p for p in H.status_json()["processes"]], 10), \
            "members of the tree live on"


@pytest.fixture
def cgroup():
    mount = selectors.cgroup2_mount()
    assert mount, "no cgroup2 file system mounted"
    path = Path(mount) / f"oomkt-tree-{secrets.token_hex(3)}"
    path.mkdir()
    try:
        yield mount, path
    finally:
        for pid in (path / "cgroup.procs").read_text().split():
            os.kill(int(pid), signal.SIGKILL)
        K.wait_until(lambda: not (path / "cgroup.procs").read_text().strip(), 10)
        path.rmdir()


def as_uid(uid: int):
    def become():
        os.setgid(uid)
        os.setuid(uid)
    return become


@pytest.fixture
def native_tmp():
    """A directory every uid can enter (mode 755, under /dev/shm, /run or
    /tmp) on a file system where an exe selector can work: not overlayfs or
    FUSE (the VM lane's /tmp), and not the tests' own tree (the VM lane's
    copy of it is 700)."""
    where = selectors.native_dir()
    assert where, "no /dev/shm, /run or /tmp outside overlayfs and FUSE"
    d = Path(tempfile.mkdtemp(prefix="oomkt-exe-", dir=where))
    d.chmod(0o755)
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_every_selector_kind_in_one_killer(tmp_path, native_tmp, cgroup):
    """name, exe, cgroup, user and tree, each a policy of its own, in one
    killer; each workload matches only its own (all are named as targets,
    so that nothing else can die), and one more matches none and lives."""
    mount, cg = cgroup
    exe = K.plain_copy(native_tmp, "oomp_exe_sel")
    work = K.plain_copy(native_tmp, "oomp_work")  # one every uid can run
    script = tree_script(tmp_path)
    text = (f"[policy byexe]\nexe = {exe}\nmax-writes = 11\nmin-used = 0\n"
            f"[policy bycg]\ncgroup = /{cg.name}\nname = oomp_work\nmax-writes = 12\nmin-used = 0\n"
            f"[policy byuser]\nuser = {TEST_UID}\nname = oomp_work\nmax-writes = 13\nmin-used = 0\n"
            f"[policy bytree]\nname = oomp_tree\nmax-writes = 100\nmin-used = 0\nscope = tree\n"
            f"[policy byname]\nname = oomp_wor\nmax-writes = 14\nmin-used = 0\n")
    with K.Killer("--config", conf(tmp_path / "t.conf", text)) as k:
        for policy in ("byexe", "bycg", "byuser", "bytree", "byname"):
            assert f"policy {policy}: " in k.ready_line, k.ready_line
        # Matches none of them: a copy named to match no name, run as root.
        stray = K.plain_copy(tmp_path, "oomp_stray")
        res = K.work("write", 30, prog=stray)
        assert res.ok, res.describe()

        res = K.work("write", 30, prog=exe)
        assert res.killed and res.done == 10, res.describe()
        assert k.wait_event(pid=res.pid, kind="kill", timeout=10)["policy"] == "byexe"

        # In the cgroup from before its exec; then as the uid.
        procs = cg / "cgroup.procs"
        for argv, kw, policy, limit in (
                (["sh", "-c", f'echo $$ > {procs} && exec "$0" "$@"', str(work), "write:30"],
                 {}, "bycg", 12),
                ([str(work), "write:30"], {"preexec_fn": as_uid(TEST_UID), "cwd": "/"},
                 "byuser", 13)):
            with subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, **kw) as p:
                p.wait(60)
                assert p.returncode == -signal.SIGKILL, (argv, p.returncode, p.stderr.read())
            ev = k.wait_event(pid=p.pid, kind="kill", timeout=10)
            assert (ev["policy"], ev["limit"], ev["value"]) == (policy, limit, limit), ev

        res = K.work("write", 30)
        assert res.killed and res.done == 13, res.describe()
        assert k.wait_event(pid=res.pid, kind="kill", timeout=10)["policy"] == "byname"

        res = run_tree(script)
        assert res.returncode == -signal.SIGKILL, (res.returncode, res.stderr)
        assert (tmp_path / "out").stat().st_size == 100
        assert gone(sleeper_pid(tmp_path))
        assert {e["policy"] for e in k.events if e["event"] == "kill"} == \
            {"byexe", "bycg", "byuser", "byname", "bytree"}, k.events


def test_a_cgroup_made_again_after_the_killer_loaded_is_matched(tmp_path, cgroup):
    """A policy's cgroup removed and made again (a restarted unit) is a new
    cgroup with a new id: BPF records it when it is made (cgroup_mkdir), so
    a process in it is a target from its first call."""
    mount, cg = cgroup
    with K.Killer("--config", conf(tmp_path / "t.conf", f"[policy again]\ncgroup = /{cg.name}\n"
                                   "name = oomp_work\nmax-writes = 12\nmin-used = 0\n")) as k:
        cg.rmdir()
        cg.mkdir()
        procs = cg / "cgroup.procs"
        with subprocess.Popen(["sh", "-c", f'echo $$ > {procs} && exec "$0" "$@"', str(K.WORK),
                               "write:30"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) as p:
            p.wait(60)
            assert p.returncode == -signal.SIGKILL, (p.returncode, p.stderr.read())
        ev = k.wait_event(pid=p.pid, kind="kill", timeout=10)
        assert (ev["policy"], ev["limit"], ev["value"]) == ("again", 12, 12), ev
