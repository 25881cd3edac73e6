/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Everything the BPF program and the loader share. Fixed-width fields only:
 * the loader mirrors each struct once as a ctypes.Structure and checks it,
 * member by member, against the object's BTF before it loads anything.
 */
#ifndef OOMKILLER_H
#define OOMKILLER_H

#define OOMK_COMM_LEN	16
/* The target substring must fit in a comm without its NUL. */
#define OOMK_NAME_MAX	15

/* Rule ids index oomk_config.limits and oomk_proc.counters. */
enum oomk_rule {
	OOMK_RULE_FDS		= 0,
	OOMK_RULE_WRITES	= 1,
	OOMK_RULE_READ_BYTES	= 2,
	OOMK_RULE_THREADS	= 3,
	OOMK_RULE_RAND		= 4,
	OOMK_RULE_TCP_PACKETS	= 5,
	OOMK_RULE_MAX		= 6,
};

enum oomk_event_kind {
	OOMK_EV_KILL		= 1,	/* SIGKILL sent from BPF */
	OOMK_EV_DRY_RUN		= 2,	/* would have been killed (--dry-run) */
	OOMK_EV_CONDEMNED	= 3,	/* crossed a limit while the gate was closed */
	OOMK_EV_HOLD		= 4,	/* stopped until the loader probes a file (holds) */
};

/* rand(): each file a target maps for execution, by identity. The loader
 * attaches the rand uprobe where the file defines rand() and settles the
 * entry; a target that maps a PENDING file is stopped (holds) until then. */
enum oomk_lib_state {
	OOMK_LIB_PENDING	= 0,	/* seen, not yet settled by the loader */
	OOMK_LIB_PROBED		= 1,	/* its rand() has the uprobe */
	OOMK_LIB_NONE		= 2,	/* defines no rand() */
	OOMK_LIB_UNPROBEABLE	= 3,	/* can't be probed (no symbols, or no room) */
};

/* Key of the `libs` hash map: the inode of a mapped file. */
struct oomk_file_id {
	__u64 dev;	/* inode->i_sb->s_dev (MAJOR << 20 | MINOR) */
	__u64 ino;
};

/* Value of the `holds` hash map, keyed by tgid: a target stopped (SIGSTOP
 * from BPF) until every file it maps is settled. */
struct oomk_hold {
	__u64 start_boottime;	/* leader's, as /proc/PID/stat shows it: the loader
				 * resumes only this process */
	struct oomk_file_id file;	/* the file that stopped it */
	__u64 addr;		/* an address in its mapping, for /proc/PID/maps */
};

/* oomk_config.flags: which parts of the tracepoint sys_exit program run. */
#define OOMK_CF_SYS_TP	(1u << 0)	/* count syscalls in tp_btf/sys_exit */
#define OOMK_CF_MEM_TP	(1u << 1)	/* sample memory at the loader's sysinfo() exit */
#define OOMK_CF_SYS_TWIN (1u << 2)	/* the classic sys_exit twin is loaded: it, not
					 * tp_btf, counts AIO (aio_exit()) */
/* What the kernel offers (probe.py). Each kfunc is a weak extern; a call
 * behind a flag that is 0 is dead code to the verifier, so one object
 * loads on every kernel. */
#define OOMK_CF_TASK_KFUNCS (1u << 3)	/* bpf_task_from_pid/_release (Linux 6.2) */
#define OOMK_CF_SIGNAL_TASK (1u << 4)	/* bpf_send_signal_task (Linux 6.13): else the
					 * loader sends the deferred kills (hand_over) */
#define OOMK_CF_PREEMPT	(1u << 5)	/* bpf_preempt_disable/_enable (Linux 6.10) */
#define OOMK_CF_SOCK_TP	(1u << 6)	/* the sock_send_length tracepoint (Linux 6.3):
					 * else not_a_write() looks for socket fds */
#define OOMK_CF_TREES	(1u << 7)	/* some policy has scope = tree */

/* oomk_proc.state bits */
#define OOMK_ST_KILLED	(1u << 0)	/* SIGKILL sent (or dry-run reported) */
#define OOMK_ST_CONDEMNING (1u << 1)	/* one rule claimed the condemnation */
#define OOMK_ST_URING	(1u << 2)	/* has made or used an io_uring ring (urings) */
#define OOMK_ST_HANDED	(1u << 3)	/* kill claimed, handed to the loader to send */

/* Policies: which processes (selectors, all given must match) and what
 * they may do. The first policy that matches a process, in order, is its
 * policy (policy.py puts `default` last). */
#define OOMK_POLICY_MAX	64
#define OOMK_PATH_MAX	128	/* a cgroup v2 path from the mount, NUL included */

/* oomk_policy.sel and oomk_config.sel_any: selectors given */
#define OOMK_SEL_NAME	(1u << 0)	/* name: the leader's comm contains name */
#define OOMK_SEL_EXE	(1u << 1)	/* exe: the image's file is exe_dev/exe_ino */
#define OOMK_SEL_CGROUP	(1u << 2)	/* cgroup, unit: in cg_path or below it */
#define OOMK_SEL_USER	(1u << 3)	/* user: real uid */

struct oomk_policy {
	__u64 min_used;				/* gate: bytes in use */
	__u64 limits[OOMK_RULE_MAX];		/* value >= limit condemns */
	__u64 exe_dev;				/* inode->i_sb->s_dev (MAJOR << 20 | MINOR) */
	__u64 exe_ino;
	__u32 sel;				/* OOMK_SEL_* */
	__u32 uid;
	__u32 cg_level;				/* depth of cg_path: "/" 0, "/a" 1 */
	__u32 dry_run;
	__u32 tree;				/* scope = tree */
	__u32 name_len;				/* 1..OOMK_NAME_MAX with OOMK_SEL_NAME */
	__u32 id;				/* the same for one policy name across reloads */
	__u32 _pad;
	char name[OOMK_COMM_LEN];		/* NUL padded */
	char cg_path[OOMK_PATH_MAX];		/* NUL padded: matched at cgroup_mkdir */
};

/* Settings: one `const volatile` global in .rodata, written before load. */
struct oomk_config {
	__u64 min_used;				/* the lowest gate of all policies */
	__u32 loader_tgid;			/* whose sysinfo() feeds the gate */
	__u32 flags;				/* OOMK_CF_* */
	__u32 generation;			/* runs only while == active_gen */
	__u32 exempt_tgid;			/* never a target: selftest's own process (0: none) */
	__u32 npol;				/* policies in pol[] */
	__u32 sel_any;				/* OOMK_SEL_* of any policy */
	__u32 rules_on;				/* 1 << rule for each rule on in any policy */
	__u32 _pad;
	struct oomk_policy pol[OOMK_POLICY_MAX];
};

/* Value of the `procs` hash map, keyed by tgid (__u32). */
struct oomk_proc {
	__u64 counters[OOMK_RULE_MAX];
	__u64 start_time;	/* leader's start_time: tells a reused PID apart */
	__u64 value;		/* counter value at condemnation */
	__u32 condemned;	/* 0, or rule id + 1 */
	__u32 state;		/* OOMK_ST_* */
	char comm[OOMK_COMM_LEN];
	__u32 generation;	/* limits this entry was last judged by */
	__u32 tid;		/* the thread that crossed (condemn()), for events */
	__u32 policy;		/* index in oomk_config.pol, as last selected */
	__u32 tree;		/* a tree's member: key of the tree's entry, else 0 */
	__u32 members;		/* a tree's entry: its members */
	__u32 pol_id;		/* a tree's entry: oomk_policy.id of its policy */
};

/* One ring buffer record. */
struct oomk_event {
	__u64 ts_boot_ns;	/* bpf_ktime_get_boot_ns() */
	__u64 value;
	__u64 limit;
	__u64 mem_used;
	__u32 pid;		/* tgid */
	__u32 tid;		/* thread that crossed, 0 for the deferred path */
	__u32 kind;		/* enum oomk_event_kind */
	__u32 rule;		/* enum oomk_rule */
	char comm[OOMK_COMM_LEN];
	__u32 policy;		/* index in oomk_config.pol */
	__u32 generation;	/* of the program that sent it: whose pol[] */
};

/* Before Linux 6.13 (no bpf_send_signal_task) a deferred kill goes
 * through the loader. `sweep` lists the tgids due (its BPF_PROG_RUN
 * context); for each, the loader opens a pidfd, then reads the hand_over
 * task iterator on that tgid, which checks the process and claims the
 * kill in one oomk_handover record; the loader sends SIGKILL through the
 * pidfd and runs `kill_sent` with the same record and the result. */
#define OOMK_DUE_MAX	64
struct oomk_due {
	__u32 n;		/* tgids listed */
	__u32 more;		/* 1: more were due than fit: sweep again */
	__u32 tgids[OOMK_DUE_MAX];
};

struct oomk_handover {
	__u64 value;		/* the verdict, as the claim read it */
	__u32 tgid;
	__u32 rule;
	char comm[OOMK_COMM_LEN];
	__s32 err;		/* the loader's: 0 or -errno of pidfd_send_signal */
	__u32 policy;
};

/* Totals in .bss, read by the loader through the mmaped map. */
struct oomk_stats {
	__u64 mem_used;		/* last sample, bytes */
	__u64 samples;		/* memory samples taken */
	__u64 kills;
	__u64 dry_runs;
	__u64 condemned;
	__u64 dropped;		/* events lost: ring buffer full */
	__u64 untracked;	/* targets refused by a full procs map */
	__u64 sweeps;		/* deferred walks of procs */
	__u64 kill_failed;	/* SIGKILL not sent (kernel refused): retried later */
	__u64 untracked_threads; /* threads refused by a full thread map */
	__u64 gate_open;	/* gate_open() at the last sample: what status shows */
	__u64 tracked;		/* entries in procs: inserts minus deletes */
	__u64 holds;		/* targets stopped until a file they mapped was probed */
	__u64 libs_unseen;	/* mappings not checked for rand(): holds map full */
	__u64 unprobeable;	/* files whose rand() can't be probed: the loader's count,
				 * stored here (only by it) for status and metrics */
	/* The totals above, per rule (enum oomk_rule), for metrics. */
	__u64 rule_condemned[OOMK_RULE_MAX];
	__u64 rule_kills[OOMK_RULE_MAX];
	__u64 rule_dry_runs[OOMK_RULE_MAX];
	__u64 rule_kill_failed[OOMK_RULE_MAX];
};

#endif /* OOMKILLER_H */
