"""`oomkiller selftest`, second part: prove that each selector kind decides.

The selftest's killer gets one private policy per kind in its config file,
each with its own writes limit (name 21, exe 22, cgroup 23, user 24, tree
25; the default policy's is 20) and every other limit off. Every one also
selects by the private name (a process must match every selector given),
so nothing else on the machine is ever a target. The named sections come
first in matching order, `default` last; so a kill event naming the
section at the section's limit proves the selector matched, and a twin
that fails only the selector dies under `default` at 20 instead:

  name    NAME-n                     NAME-w (default's name only)
  exe     a private copy of Python   Python itself
  cgroup  in a private cgroup        outside it
  user    as an unused uid           as root
  tree    a child named as no target, forked by NAME-t, dies with its tree
          at 25 (and NAME-t with it)       the same child alone lives

A kind this machine can't show (no cgroup2 mount, a Python that does not
run from a copy) is an `off` row with the reason.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

from oomkiller.config import selectors
from oomkiller.config.rules import RULES

if TYPE_CHECKING:  # selftest imports this module
    from oomkiller.commands.selftest import Killer, Runs

KINDS = ("name", "exe", "cgroup", "user", "tree")
WRITES = {"name": 21, "exe": 22, "cgroup": 23, "user": 24, "tree": 25}
DEFAULT_WRITES = 20  # selftest.LIMITS["writes"]: the default policy's
CGROUP_EMPTY_TIMEOUT = 10.0


def policy_of(kind: str) -> str:
    return f"selftest-{kind}"


@dataclass
class Row:
    kind: str
    state: str    # ok, FAILED or off
    detail: str


class Setup:
    """What the policies need here, made before the killer starts (a policy's
    exe and cgroup must exist when its config is read) and undone after."""

    def __init__(self, tmp: str, name: str, non_target: str) -> None:
        self.tmp, self.name, self.non_target = tmp, name, non_target
        self.off: dict[str, str] = {}
        self.uid = 4000000000 + os.getpid() % 1000000  # no process here runs as it
        self.exe = os.path.join(tmp, "python-selftest")
        self.exe_dir: Optional[str] = None  # made elsewhere when tmp can't hold it
        self.cgroup: Optional[str] = None  # the directory, once made
        self.cgroup_path = ""              # as the policy names it, from the mount
        self._copy_python()
        self._make_cgroup()

    def _copy_python(self) -> None:
        # A copy is a file of its own (device, inode); a link would be Python
        # itself. Not on overlayfs or FUSE (a container's /tmp, the VM
        # lane's), where an exe selector can't work.
        if selectors.foreign(self.tmp):
            where = selectors.native_dir()
            if where is None:
                self.off["exe"] = (f"{self.tmp} is on {selectors.foreign(self.tmp)}, and no "
                                   "/dev/shm, /run or /tmp can hold a program")
                return
            self.exe_dir = tempfile.mkdtemp(prefix="oomkiller-selftest-", dir=where)
            self.exe = os.path.join(self.exe_dir, "python-selftest")
        try:
            shutil.copy(os.path.realpath(sys.executable), self.exe)
            res = subprocess.run([self.exe, "-c", "import ctypes, mmap, socket"],
                                 capture_output=True, text=True, timeout=60,
                                 stdin=subprocess.DEVNULL)
            if res.returncode != 0:
                why = (res.stderr.strip().splitlines() or [f"exit {res.returncode}"])[-1]
                self.off["exe"] = f"a copy of {sys.executable} does not run: {why}"
        except (OSError, subprocess.SubprocessError) as e:
            self.off["exe"] = f"cannot run a copy of {sys.executable}: {e}"

    def _make_cgroup(self) -> None:
        mount = selectors.cgroup2_mount()
        if mount is None:
            self.off["cgroup"] = "no cgroup2 file system is mounted"
            return
        path = os.path.join(mount, f"oomkiller-selftest-{os.getpid()}")
        try:
            os.mkdir(path)
        except OSError as e:
            self.off["cgroup"] = f"cannot make a cgroup under {mount}: {e.strerror}"
            return
        self.cgroup = path
        self.cgroup_path = "/" + os.path.basename(path)

    def config(self) -> str:
        """The [policy] sections, for the kinds not off."""
        selector = {
            "name": f"name = {self.name}-n",
            "exe": f"name = {self.name}\nexe = {self.exe}",
            "cgroup": f"name = {self.name}\ncgroup = {self.cgroup_path}",
            "user": f"name = {self.name}\nuser = {self.uid}",
            "tree": f"name = {self.name}-t\nscope = tree",
        }
        out = []
        for kind in KINDS:
            if kind in self.off:
                continue
            limits = "".join(f"{r.option} = {WRITES[kind] if r.name == 'writes' else 'off'}\n"
                             for r in RULES)
            out.append(f"[policy {policy_of(kind)}]\n{selector[kind]}\n{limits}min-used = 0\n")
        return "\n".join(out)

    def close(self) -> None:
        """Remove the exe copy's directory if it was made outside tmp, and the
        cgroup: kill what is left in it (only our workloads can be), wait
        until it is empty, rmdir."""
        if self.exe_dir is not None:
            shutil.rmtree(self.exe_dir, ignore_errors=True)
            self.exe_dir = None
        if self.cgroup is None:
            return
        procs = os.path.join(self.cgroup, "cgroup.procs")
        deadline = time.monotonic() + CGROUP_EMPTY_TIMEOUT
        try:
            while True:
                with open(procs) as f:
                    pids = [int(p) for p in f.read().split()]
                if not pids or time.monotonic() > deadline:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                time.sleep(0.05)
            os.rmdir(self.cgroup)
            self.cgroup = None
        except OSError as e:
            sys.stderr.write(f"oomkiller: cannot remove the selftest's cgroup {self.cgroup}: "
                             f"{e.strerror}: remove it with rmdir\n")


def outcome(rc: int, ev: Optional[dict]) -> str:
    if rc == -signal.SIGKILL:
        if ev is None:
            return "killed, no kill event"
        return f"killed at {ev['rule']} {ev['value']}/{ev['limit']} by {ev['policy']}"
    return "lived" if rc == 0 else f"exit {rc}"


def killed_by(rc: int, ev: Optional[dict], policy: str, limit: int) -> bool:
    return (rc == -signal.SIGKILL and ev is not None and ev.get("event") == "kill"
            and (ev.get("rule"), ev.get("value"), ev.get("limit"), ev.get("policy"))
            == ("writes", limit, limit, policy))


@dataclass
class Run:
    """One workload run: its label in the row, its name, workload options, Python."""
    label: str
    name: str
    opts: tuple[str, ...] = ()
    exe: Optional[str] = None


def twins(setup: Setup, kind: str) -> tuple[Run, Run]:
    """The run the selector picks, and its twin that fails only the selector."""
    name = setup.name
    if kind == "name":
        return Run(f"{name}-n", f"{name}-n"), Run(f"{name}-w", f"{name}-w")
    if kind == "exe":
        return (Run("a copy of Python", f"{name}-e", exe=setup.exe),
                Run("Python itself", f"{name}-e"))
    if kind == "cgroup":
        procs = os.path.join(setup.cgroup or "", "cgroup.procs")
        return (Run(f"in {setup.cgroup_path}", f"{name}-c", (f"cgroup={procs}",)),
                Run("outside", f"{name}-c"))
    assert kind == "user"
    return Run(f"uid {setup.uid}", f"{name}-u", (f"uid={setup.uid}",)), Run("root", f"{name}-u")


def check(k: "Killer", runs: "Runs", setup: Setup, kind: str) -> Row:
    if kind in setup.off:
        return Row(kind, "off", setup.off[kind])
    if kind == "tree":
        return _check_tree(k, runs, setup)
    match, twin = twins(setup, kind)
    halves = []
    for run, want, limit in ((match, policy_of(kind), WRITES[kind]),
                             (twin, "default", DEFAULT_WRITES)):
        rc, _, pid = runs.run(run.name, "writes", WRITES[kind], opts=run.opts, exe=run.exe)
        ev = k.wait_event(pid) if rc == -signal.SIGKILL else None
        ok = killed_by(rc, ev, want, limit)
        halves.append((ok, f"{run.label}: {outcome(rc, ev)}"
                       + ("" if ok else f", not at {limit} by {want}")))
    return Row(kind, "ok" if all(ok for ok, _ in halves) else "FAILED",
               "; ".join(text for _, text in halves))


def _check_tree(k: "Killer", runs: "Runs", setup: Setup) -> Row:
    n, policy = WRITES["tree"], policy_of("tree")
    rc, _, root = runs.run(f"{setup.name}-t", "tree", n, opts=[f"child={setup.non_target}"])
    # The root dies with its child: wait for both kill events.
    evs = k.wait_events(lambda e: e.get("event") == "kill" and e.get("policy") == policy,
                        count=2)
    child = next((e for e in evs if e.get("pid") != root), None)
    child_ok = child is not None and child.get("comm") == setup.non_target and \
        killed_by(-signal.SIGKILL, child, policy, n)
    root_ok = rc == -signal.SIGKILL and any(e.get("pid") == root for e in evs)
    if child is None:
        first = f"its child {setup.non_target}: no kill event"
    else:
        first = f"its child {child.get('comm')}: {outcome(-signal.SIGKILL, child)}"
    first += f", {setup.name}-t " + ("with it" if root_ok else outcome(rc, None))
    if not (child_ok and root_ok):
        first += f" (expected both killed, the child at {n} by {policy})"
    alone_rc, _, _ = runs.run(setup.non_target, "writes", n)
    second = f"alone: {outcome(alone_rc, None)}"
    return Row("tree", "ok" if child_ok and root_ok and alone_rc == 0 else "FAILED",
               f"{first}; {second}")


def rows_text(rows: list[Row]) -> list[str]:
    return [f"{'selector':<12} {r.kind:<11} {r.state:<7}  {r.detail}" for r in rows]


def holds(rows: list[Row]) -> bool:
    return all(r.state != "FAILED" for r in rows)

