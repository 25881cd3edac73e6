"""Issue 20's overhead condition: the killer with 16 policies loaded.

BPF chooses a process's policy once per image and keeps the choice in task
storage, so a non-target's call should cost the same with 16 policies as
with the one built-in `default`. The config (`--config`, in the run's temp
dir) has `default-policy = off` and 16 `[policy NAME]` sections that keep
every selector path live in BPF and match nothing but the bench's target:

  nomatch00..03   name = oompzz00..03     a name no process has
  nomatch04..07   exe  = TMP/never-run-N  a regular file nobody can exec (empty)
  nomatch08..10   cgroup = /oomkiller-bench.PID/pN, empty cgroups made for the run
  nomatch11..14   user = 4000000211..214  uids nobody runs as; 14 has scope = tree
  benchsys-target name = oomp_benchsys    last, so the target tries all 15 first

Every section has the overhead rounds' unreachable limits and min-used 1T.
check() asserts from `oomkiller status --json` that `benchsys` stays a
non-target and `oomp_benchsys` gets the last policy.
"""
from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Optional

from harness import KIDS, Killer, log, wait_until
from limits import HIGH_LIMITS
from paths import BUILD
from oomkiller.config.rules import RULES
from oomkiller.config.selectors import cgroup2_mount

N_POLICIES = 16
TARGET_POLICY = "benchsys-target"
NO_UID = 4000000200        # + i: uids nobody runs as (below selectors.UID_MAX)
NAMES = [f"nomatch{i:02d}" for i in range(N_POLICIES - 1)] + [TARGET_POLICY]


def _limits_lines() -> list[str]:
    return [f"{r.option} = {HIGH_LIMITS[r.name]}" for r in RULES] + ["min-used = 1T"]


def config_text(exes: list[Path], cgroups: list[str]) -> str:
    """The config: default off, 15 sections matching nothing, then the target's."""
    sel: list[list[str]] = []
    sel += [[f"name = oompzz{i:02d}"] for i in range(4)]
    sel += [[f"exe = {p}"] for p in exes]
    sel += [[f"cgroup = {c}"] for c in cgroups]
    sel += [[f"user = {NO_UID + i}"] for i in range(len(sel), len(sel) + 4)]
    sel[-1].append("scope = tree")
    assert len(sel) == N_POLICIES - 1
    sel.append(["name = oomp_benchsys"])
    lines = ["# bench/policies.py: issue 20's 16-policy overhead condition",
             "default-policy = off", "min-used = 1T", ""]
    for name, s in zip(NAMES, sel):
        lines += [f"[policy {name}]", *s, *_limits_lines(), ""]
    return "\n".join(lines)


class PolicyConfig:
    """The config file, the exe files and the empty cgroups it names, made on
    enter and removed on exit, failure included (the killer must be stopped
    first: rounds stop it at the end of each visit)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.path = tmp / "policies.conf"
        self.cg_root: Optional[Path] = None
        self.cg_dirs: list[Path] = []

    def __enter__(self) -> "PolicyConfig":
        try:
            mount = cgroup2_mount()
            if mount is None:
                raise RuntimeError("no cgroup2 mount: the 16-policy condition needs one")
            self.cg_root = Path(mount) / f"oomkiller-bench.{os.getpid()}"
            self.cg_root.mkdir()
            for i in range(3):
                d = self.cg_root / f"p{i}"
                d.mkdir()
                self.cg_dirs.append(d)
            exes = []
            for i in range(4):
                p = self.tmp / f"never-run-{i}"
                p.write_bytes(b"")
                exes.append(p)
            cgroups = ["/" + str(d.relative_to(mount)) for d in self.cg_dirs]
            self.path.write_text(config_text(exes, cgroups))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for d in self.cg_dirs[::-1] + ([self.cg_root] if self.cg_root else []):
            try:
                d.rmdir()
            except FileNotFoundError:
                pass
            except OSError as e:
                log(f"could not remove cgroup {d}: {e.strerror}: remove it with rmdir")
        self.cg_dirs, self.cg_root = [], None

    def args(self) -> list[str]:
        return ["--min-used", "1T", "--config", str(self.path)]


def check(killer: Killer, want: list[str]) -> dict:
    """Assert that killer runs the policies named in want (in order), that
    `benchsys` is no target and `oomp_benchsys` is, under want's last policy,
    from `oomkiller status --json` while both run. The two run from start to
    check, so both have made calls that BPF judged; the target showing up is
    the fact waited on."""
    st = killer.status()
    got = [p["name"] for p in st["policies"]]
    if got != want:
        raise RuntimeError(f"the killer runs policies {got}, not {want}")
    procs = [KIDS.start([str(BUILD / b), "write", "1000000000"], stdout=subprocess.DEVNULL,
                        stdin=subprocess.DEVNULL) for b in ("benchsys", "oomp_benchsys")]
    try:
        nt, t = procs[0].pid, procs[1].pid
        seen: dict[int, dict] = {}

        def target_judged() -> bool:
            seen.clear()
            seen.update({p["pid"]: p for p in killer.status()["processes"]})
            return t in seen
        if not wait_until(target_judged, 30, 0.1):
            raise RuntimeError(f"oomp_benchsys (pid {t}) not tracked within 30 s")
        if seen[t]["policy"] != want[-1]:
            raise RuntimeError(f"oomp_benchsys has policy {seen[t]['policy']}, not {want[-1]}")
        if nt in seen:
            raise RuntimeError(f"benchsys (pid {nt}) is tracked, policy {seen[nt]['policy']}: "
                               "the non-target rows would time a target")
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"{p.args[0]} exited {p.returncode} during the check")
    finally:
        for p in procs:
            KIDS.stop(p)
    return {"policies": got, "target_policy": seen[t]["policy"], "non_target_tracked": False}
