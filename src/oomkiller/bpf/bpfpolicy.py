"""Policies into the BPF object: oomk_config.pol[] before load, and the
cgroup ids of their cgroup paths (the pol_cgid map) after attach.

BPF chooses: the loader only copies what the settings say (policy.py).
"""

from __future__ import annotations

import os
import zlib
from typing import Optional, Sequence

from oomkiller.bpf import abi
from oomkiller.config import selectors
from oomkiller.config.policy import Policy
from oomkiller.config.rules import OFF, RULES


def selectors_of(p: Policy) -> int:
    sel = 0
    if p.comm is not None:
        sel |= abi.SEL_NAME
    if p.exe_id is not None:
        sel |= abi.SEL_EXE
    if p.cgroup is not None:
        sel |= abi.SEL_CGROUP
    if p.uid is not None:
        sel |= abi.SEL_USER
    return sel


def policy_id(name: str) -> int:
    """oomk_policy.id: the same for one name in every generation, so that a
    tree (scope = tree) outlives a reload that keeps its policy."""
    return zlib.crc32(os.fsencode(name)) or 1


def fill(cfg: abi.OomkConfig, policies: Sequence[Policy]) -> None:
    """cfg.npol, pol[], sel_any, rules_on, min_used (the lowest gate), and
    the CF_TREES flag (after cfg.flags is set)."""
    assert 0 < len(policies) <= abi.OOMK_POLICY_MAX
    cfg.npol = len(policies)
    cfg.sel_any = 0
    cfg.rules_on = 0
    cfg.min_used = min(p.min_used for p in policies)
    for i, p in enumerate(policies):
        out = cfg.pol[i]
        out.min_used = p.min_used
        for rule in RULES:
            out.limits[rule.id] = p.limits[rule.id]
            if p.limits[rule.id] < OFF:
                cfg.rules_on |= 1 << rule.id
        out.sel = selectors_of(p)
        cfg.sel_any |= out.sel
        if p.comm is not None:
            name = os.fsencode(p.comm)
            out.name_len = len(name)
            out.name = name  # c_char array: NUL padded
        if p.exe_id is not None:
            out.exe_dev, out.exe_ino = p.exe_id
        if p.uid is not None:
            out.uid = p.uid
        if p.cgroup is not None:
            out.cg_level = p.cgroup_level
            out.cg_path = os.fsencode(p.cgroup)
        out.dry_run = int(p.dry_run)
        out.tree = int(p.scope == "tree")
        out.id = policy_id(p.name)
        if out.tree:
            cfg.flags |= abi.CF_TREES


def cgroup_id(path: str, mount: Optional[str] = None) -> Optional[int]:
    """The id of cgroup v2 `path` ("/a/b"), None if there is none: a cgroup's
    id is its directory's inode number (kernfs)."""
    try:
        mount = mount or selectors.cgroup2_mount()
        return os.stat(mount + (path if path != "/" else "")).st_ino
    except OSError:
        return None


def cgroup_ids(policies: Sequence[Policy]) -> dict[int, int]:
    """Policy index -> id of its cgroup, for those whose cgroup exists now."""
    ids = {}
    for i, p in enumerate(policies):
        if p.cgroup is not None:
            found = cgroup_id(p.cgroup)
            if found is not None:
                ids[i] = found
    return ids
