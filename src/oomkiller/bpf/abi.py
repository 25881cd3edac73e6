"""bpf/oomkiller.h mirrored once as ctypes: structs, rule ids, event kinds, flags.

The loader checks every struct below against the object's BTF before loading,
member by member (names and offsets) and by size (generation.py), so a header
change that isn't mirrored here fails loudly instead of corrupting settings
or events.
"""

from __future__ import annotations

from ctypes import Structure, c_char, c_int32, c_uint32, c_uint64

OOMK_COMM_LEN = 16
OOMK_NAME_MAX = 15

# enum oomk_rule: index of oomk_config.limits / oomk_proc.counters
RULE_FDS, RULE_WRITES, RULE_READ_BYTES, RULE_THREADS, RULE_RAND, RULE_TCP_PACKETS = range(6)
RULE_MAX = 6
# Names, options and defaults: rules.RULES.

# enum oomk_event_kind
EV_KILL, EV_DRY_RUN, EV_CONDEMNED, EV_HOLD = 1, 2, 3, 4
# What the loader prints; EV_HOLD is a wakeup for libprobes, never printed.
EVENT_NAMES = {EV_KILL: "kill", EV_DRY_RUN: "dry-run", EV_CONDEMNED: "condemned"}

# enum oomk_lib_state: values of the libs map
LIB_PENDING, LIB_PROBED, LIB_NONE, LIB_UNPROBEABLE = range(4)

# oomk_config.flags
CF_SYS_TP = 1 << 0
CF_MEM_TP = 1 << 1
CF_SYS_TWIN = 1 << 2
CF_TASK_KFUNCS = 1 << 3
CF_SIGNAL_TASK = 1 << 4
CF_PREEMPT = 1 << 5
CF_SOCK_TP = 1 << 6
CF_TREES = 1 << 7
# procs keys of trees' entries (scope = tree): no pid has the top bit
TREE_KEY = 1 << 31

OOMK_DUE_MAX = 64
OOMK_POLICY_MAX = 64
OOMK_PATH_MAX = 128

# oomk_policy.sel, oomk_config.sel_any: selectors given
SEL_NAME, SEL_EXE, SEL_CGROUP, SEL_USER = 1 << 0, 1 << 1, 1 << 2, 1 << 3


class OomkPolicy(Structure):
    _fields_ = [
        ("min_used", c_uint64),
        ("limits", c_uint64 * RULE_MAX),
        ("exe_dev", c_uint64),
        ("exe_ino", c_uint64),
        ("sel", c_uint32),
        ("uid", c_uint32),
        ("cg_level", c_uint32),
        ("dry_run", c_uint32),
        ("tree", c_uint32),
        ("name_len", c_uint32),
        ("id", c_uint32),
        ("_pad", c_uint32),
        ("name", c_char * OOMK_COMM_LEN),
        ("cg_path", c_char * OOMK_PATH_MAX),
    ]


class OomkConfig(Structure):
    _fields_ = [
        ("min_used", c_uint64),  # the lowest gate of all policies
        ("loader_tgid", c_uint32),
        ("flags", c_uint32),
        ("generation", c_uint32),  # reload (issue 5): programs run while == active_gen
        ("exempt_tgid", c_uint32),  # never a target besides loader_tgid: selftest's process
        ("npol", c_uint32),
        ("sel_any", c_uint32),
        ("rules_on", c_uint32),
        ("_pad", c_uint32),
        ("pol", OomkPolicy * OOMK_POLICY_MAX),
    ]


class OomkProc(Structure):
    _fields_ = [
        ("counters", c_uint64 * RULE_MAX),
        ("start_time", c_uint64),
        ("value", c_uint64),
        ("condemned", c_uint32),
        ("state", c_uint32),
        ("comm", c_char * OOMK_COMM_LEN),
        ("generation", c_uint32),
        ("tid", c_uint32),
        ("policy", c_uint32),
        ("tree", c_uint32),
        ("members", c_uint32),
        ("pol_id", c_uint32),
    ]


class OomkEvent(Structure):
    _fields_ = [
        ("ts_boot_ns", c_uint64),
        ("value", c_uint64),
        ("limit", c_uint64),
        ("mem_used", c_uint64),
        ("pid", c_uint32),
        ("tid", c_uint32),
        ("kind", c_uint32),
        ("rule", c_uint32),
        ("comm", c_char * OOMK_COMM_LEN),
        ("policy", c_uint32),
        ("generation", c_uint32),
    ]


class OomkStats(Structure):
    _fields_ = [
        ("mem_used", c_uint64),
        ("samples", c_uint64),
        ("kills", c_uint64),
        ("dry_runs", c_uint64),
        ("condemned", c_uint64),
        ("dropped", c_uint64),
        ("untracked", c_uint64),
        ("sweeps", c_uint64),
        ("kill_failed", c_uint64),
        ("untracked_threads", c_uint64),
        ("gate_open", c_uint64),
        ("tracked", c_uint64),
        ("holds", c_uint64),
        ("libs_unseen", c_uint64),
        ("unprobeable", c_uint64),
        ("rule_condemned", c_uint64 * RULE_MAX),
        ("rule_kills", c_uint64 * RULE_MAX),
        ("rule_dry_runs", c_uint64 * RULE_MAX),
        ("rule_kill_failed", c_uint64 * RULE_MAX),
    ]


class OomkFileId(Structure):
    _fields_ = [
        ("dev", c_uint64),
        ("ino", c_uint64),
    ]


class OomkHold(Structure):
    _fields_ = [
        ("start_boottime", c_uint64),
        ("file", OomkFileId),
        ("addr", c_uint64),
    ]


class OomkDue(Structure):
    _fields_ = [
        ("n", c_uint32),
        ("more", c_uint32),
        ("tgids", c_uint32 * OOMK_DUE_MAX),
    ]


class OomkHandover(Structure):
    _fields_ = [
        ("value", c_uint64),
        ("tgid", c_uint32),
        ("rule", c_uint32),
        ("comm", c_char * OOMK_COMM_LEN),
        ("err", c_int32),
        ("policy", c_uint32),
    ]


# C struct name -> mirror, for the BTF member-by-member check.
SHARED_STRUCTS = {
    "oomk_config": OomkConfig,
    "oomk_policy": OomkPolicy,
    "oomk_proc": OomkProc,
    "oomk_event": OomkEvent,
    "oomk_stats": OomkStats,
    "oomk_file_id": OomkFileId,
    "oomk_hold": OomkHold,
    "oomk_due": OomkDue,
    "oomk_handover": OomkHandover,
}
