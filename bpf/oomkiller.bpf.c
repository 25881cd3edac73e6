// SPDX-License-Identifier: GPL-2.0
/*
 * oomkiller: the whole policy. Counters per process (tgid) in a hash map,
 * a memory gate fed by si_meminfo() samples, SIGKILL sent from BPF.
 *
 * Each data source has thin variant programs around one static body:
 *   fx_*  fentry/fexit          (best: trampolines, no cost for other calls)
 *   kp_*  kprobe/kretprobe
 *   tp_*  tracepoints           (always there; the only family on kernels
 *                                without CONFIG_KPROBES and trampolines)
 * The loader keeps one variant per source with set_autoload before load.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "oomkiller.h"

char LICENSE[] SEC("license") = "GPL";

#define SIGKILL		9
#define IPPROTO_TCP	6
#define SOCK_STREAM	1
#define CLONE_THREAD	0x00010000
#define PF_IO_WORKER	0x00000010

const volatile struct oomk_config cfg = {};
struct oomk_stats stats = {};

/* Set when a target is condemned with the gate closed; sweep clears it.
 * Not static: clang 14 shrinks a static flag to one byte and the .bss
 * DATASEC it emits then fails the kernel's BTF check ("Invalid size"). */
__u32 sweep_pending;

/* Reload without a gap (SIGHUP): the loader loads the next generation of
 * this object on the same maps (this .bss included), attaches it, then
 * makes it live with one store to active_gen and detaches the old one.
 * Each program does nothing unless its own generation is the live one. */
__u32 active_gen;

static __always_inline bool live(void)
{
	return active_gen == cfg.generation;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);	/* the loader sets --capacity */
	__type(key, __u32);
	__type(value, struct oomk_proc);
} procs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

/* A ring buffer has no value type, so name the record once: it puts
 * struct oomk_event in the object's BTF for the loader's size check. */
struct oomk_event *oomk_event_type_ __attribute__((unused));

/* kprobe family only: argument stash between entry and return, by thread. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u64);
	__type(value, __u64);
} kp_args SEC(".maps");

extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym;
extern void bpf_task_release(struct task_struct *p) __ksym;
/* Linux 6.13 (commit 6280cf718db0): signal another task from BPF. */
extern int bpf_send_signal_task(struct task_struct *task, int sig,
				enum pid_type type, u64 value) __ksym;

/* ---------------------------------------------------------------------
 * Which syscalls matter. x86_64 numbers; one table drives the tracepoint
 * family's dispatch, and the same list generates fexit/kretprobe variants.
 */
enum sys_kind { K_NONE = 0, K_WRITE, K_READ, K_FD, K_SYSINFO };

#define NR_sysinfo	99
#define SYS_NR_MAX	512

#define FOR_EACH_SYSCALL(X)						\
	X(read, 0, K_READ)	X(pread64, 17, K_READ)			\
	X(readv, 19, K_READ)	X(preadv, 295, K_READ)			\
	X(preadv2, 327, K_READ)						\
	X(write, 1, K_WRITE)	X(pwrite64, 18, K_WRITE)		\
	X(writev, 20, K_WRITE)	X(pwritev, 296, K_WRITE)		\
	X(pwritev2, 328, K_WRITE)					\
	X(open, 2, K_FD)	X(creat, 85, K_FD)			\
	X(openat, 257, K_FD)	X(openat2, 437, K_FD)			\
	X(open_by_handle_at, 304, K_FD)					\
	X(socket, 41, K_FD)	X(socketpair, 53, K_FD)			\
	X(accept, 43, K_FD)	X(accept4, 288, K_FD)			\
	X(recvmsg, 47, K_FD)	X(recvmmsg, 299, K_FD)			\
	X(pipe, 22, K_FD)	X(pipe2, 293, K_FD)			\
	X(dup, 32, K_FD)	X(dup2, 33, K_FD)	X(dup3, 292, K_FD) \
	X(fcntl, 72, K_FD)						\
	X(eventfd, 284, K_FD)	X(eventfd2, 290, K_FD)			\
	X(memfd_create, 319, K_FD)	X(memfd_secret, 447, K_FD)	\
	X(epoll_create, 213, K_FD)	X(epoll_create1, 291, K_FD)	\
	X(inotify_init, 253, K_FD)	X(inotify_init1, 294, K_FD)	\
	X(fanotify_init, 300, K_FD)					\
	X(signalfd, 282, K_FD)	X(signalfd4, 289, K_FD)			\
	X(timerfd_create, 283, K_FD)	X(userfaultfd, 323, K_FD)	\
	X(perf_event_open, 298, K_FD)	X(bpf, 321, K_FD)		\
	X(pidfd_open, 434, K_FD)	X(pidfd_getfd, 438, K_FD)	\
	X(io_uring_setup, 425, K_FD)	X(io_uring_enter, 426, K_FD)	\
	X(mq_open, 240, K_FD)	X(open_tree, 428, K_FD)			\
	X(fsopen, 430, K_FD)	X(fsmount, 432, K_FD)	X(fspick, 433, K_FD) \
	X(clone, 56, K_FD)	X(clone3, 435, K_FD)

#define SYS_CLASS(name, nr, kind) [nr] = kind,
static const __u8 sys_class[SYS_NR_MAX] = {
	FOR_EACH_SYSCALL(SYS_CLASS)
	[NR_sysinfo] = K_SYSINFO,
};

/* ---------------------------------------------------------------------
 * Targets: the thread-group leader's comm contains cfg.name.
 */
#define ONES	0x0101010101010101ULL
#define HIGHS	0x8080808080808080ULL

static __always_inline bool comm_has_name(const char *comm)
{
	char c[OOMK_COMM_LEN];
	__u64 w0, w1, pat, x0, x1;
	__u32 i, j, len = cfg.name_len;

	/* Two loads, no helper: comm is a 16-byte array in task_struct. */
	w0 = *(const __u64 *)comm;
	w1 = *(const __u64 *)(comm + 8);

	/* Word-at-a-time prefilter: give up unless name[0] occurs at all.
	 * Most comms on a machine fail here in a dozen instructions. */
	pat = ONES * (__u8)cfg.name[0];
	x0 = w0 ^ pat;
	x1 = w1 ^ pat;
	if (!(((x0 - ONES) & ~x0 & HIGHS) | ((x1 - ONES) & ~x1 & HIGHS)))
		return false;

	__builtin_memcpy(c, &w0, 8);
	__builtin_memcpy(c + 8, &w1, 8);
	if (len == 0 || len > OOMK_NAME_MAX)
		return false;
	for (i = 0; i + len <= OOMK_COMM_LEN; i++) {
		for (j = 0; j < len; j++) {
			if (c[(i + j) & (OOMK_COMM_LEN - 1)] != cfg.name[j & (OOMK_COMM_LEN - 1)])
				break;
		}
		if (j == len)
			return true;
	}
	return false;
}

static __always_inline bool task_is_target(struct task_struct *t)
{
	return comm_has_name(t->group_leader->comm);
}

static __always_inline bool gate_open(void)
{
	return stats.samples && stats.mem_used >= cfg.min_used;
}

/* ---------------------------------------------------------------------
 * Open descriptors: a level read from the fd table. Popcount of open_fds,
 * so dup2 to a high number counts once and the highest number is not the
 * count. Only run for targets, after a call that may have made an fd.
 */
struct fd_walk {
	__u64 open_fds;		/* kernel address of the bitmap */
	__u32 words;		/* max_fds / 64 */
	__u64 count;
};

static __always_inline __u64 popcount64(__u64 x)
{
	x = x - ((x >> 1) & 0x5555555555555555ULL);
	x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
	x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fULL;
	return (x * ONES) >> 56;
}

#define FD_CHUNK 8	/* words read per helper call */

static long fd_chunk(__u32 i, struct fd_walk *w)
{
	__u64 buf[FD_CHUNK] = {};
	__u32 first = i * FD_CHUNK, n;

	if (first >= w->words)
		return 1;
	n = w->words - first;
	if (n > FD_CHUNK)
		n = FD_CHUNK;
	if (bpf_probe_read_kernel(buf, n * sizeof(__u64),
				  (void *)(w->open_fds + first * sizeof(__u64))))
		return 1;
	for (int k = 0; k < FD_CHUNK; k++)
		w->count += popcount64(buf[k]);
	return 0;
}

static __always_inline __u64 count_fds(struct task_struct *t)
{
	struct fd_walk w = {};
	struct fdtable *fdt;
	struct files_struct *files = t->files;

	if (!files)
		return 0;
	fdt = files->fdt;
	w.open_fds = (__u64)fdt->open_fds;
	w.words = fdt->max_fds / 64;
	/* sysctl fs.nr_open caps max_fds at 2^30: 2^24 words. */
	bpf_loop((w.words + FD_CHUNK - 1) / FD_CHUNK, fd_chunk, &w, 0);
	return w.count;
}

/* ---------------------------------------------------------------------
 * Events and kills.
 */
static __always_inline void emit(__u32 kind, __u32 tgid, __u32 tid, __u32 rule,
				 __u64 value, const char *comm)
{
	struct oomk_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&stats.dropped, 1);
		return;
	}
	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	e->value = value;
	e->limit = rule < OOMK_RULE_MAX ? cfg.limits[rule] : 0;
	e->mem_used = stats.mem_used;
	e->pid = tgid;
	e->tid = tid;
	e->kind = kind;
	e->rule = rule;
	__builtin_memcpy(e->comm, comm, OOMK_COMM_LEN);
	bpf_ringbuf_submit(e, 0);
}

/* Claim the kill once per process, whichever thread or CPU gets here. */
static __always_inline bool claim_kill(struct oomk_proc *p)
{
	return !(__sync_fetch_and_or(&p->state, OOMK_ST_KILLED) & OOMK_ST_KILLED);
}

/* Kill current, in the hook that saw the crossing: the signal is pending
 * before the task returns to user space, so it runs no further insn. */
static __always_inline void kill_current(struct oomk_proc *p, __u32 tgid, __u32 tid)
{
	__u32 rule = p->condemned - 1;

	if (!claim_kill(p))
		return;
	if (cfg.dry_run) {
		__sync_fetch_and_add(&stats.dry_runs, 1);
		emit(OOMK_EV_DRY_RUN, tgid, tid, rule, p->value, p->comm);
		return;
	}
	bpf_send_signal(SIGKILL);
	__sync_fetch_and_add(&stats.kills, 1);
	emit(OOMK_EV_KILL, tgid, tid, rule, p->value, p->comm);
}

/* value reached limit: condemn (sticky), then kill or defer. */
static __always_inline void condemn(struct oomk_proc *p, __u32 tgid, __u32 tid,
				    __u32 rule, __u64 value)
{
	if (__sync_val_compare_and_swap(&p->condemned, 0, rule + 1) != 0)
		return;		/* already condemned: the first rule stands */
	p->value = value;
	__sync_fetch_and_add(&stats.condemned, 1);
	if (gate_open()) {
		kill_current(p, tgid, tid);
		return;
	}
	sweep_pending = 1;
	emit(OOMK_EV_CONDEMNED, tgid, tid, rule, value, p->comm);
}

/* A condemned process that is still running meets an open gate. */
static __always_inline void enforce(struct oomk_proc *p, __u32 tgid, __u32 tid)
{
	if (p->condemned && !(p->state & OOMK_ST_KILLED) && gate_open())
		kill_current(p, tgid, tid);
}

static __always_inline void add_and_check(struct oomk_proc *p, __u32 tgid, __u32 tid,
					  __u32 rule, __u64 inc)
{
	__u64 limit = cfg.limits[rule];
	__u64 old;

	if (rule >= OOMK_RULE_MAX)
		return;
	/* fetch_add: concurrent threads lose no update and exactly one of
	 * them sees the crossing, with the exact value. */
	old = __sync_fetch_and_add(&p->counters[rule], inc);
	if (old < limit && old + inc >= limit)
		condemn(p, tgid, tid, rule, old + inc);
}

static __always_inline void fds_check(struct oomk_proc *p, struct task_struct *t,
				      __u32 tgid, __u32 tid)
{
	__u64 n = count_fds(t);

	p->counters[OOMK_RULE_FDS] = n;
	if (n >= cfg.limits[OOMK_RULE_FDS])
		condemn(p, tgid, tid, OOMK_RULE_FDS, n);
}

/* After a reload the limits may have dropped below counters that already
 * passed them, and the crossing test (old < limit <= new) would never
 * fire: judge the entry once against the new limits. */
static __always_inline void rejudge(struct oomk_proc *p, __u32 tgid, __u32 tid)
{
	if (p->generation == cfg.generation)
		return;
	p->generation = cfg.generation;
	for (__u32 r = 0; r < OOMK_RULE_MAX; r++) {
		if (p->counters[r] >= cfg.limits[r]) {
			condemn(p, tgid, tid, r, p->counters[r]);
			break;
		}
	}
}

/* Look up or create the target's entry. A new entry reads the fd level
 * at once, so a target that started before us, or inherited many fds,
 * is judged at its first event. NULL when the map is full. */
static __always_inline struct oomk_proc *proc_get(struct task_struct *t, __u32 tgid,
						  __u32 tid)
{
	struct task_struct *leader = t->group_leader;
	struct oomk_proc *p, init = {};

	p = bpf_map_lookup_elem(&procs, &tgid);
	if (p) {
		rejudge(p, tgid, tid);
		return p;
	}
	init.start_time = leader->start_time;
	init.generation = cfg.generation;
	__builtin_memcpy(init.comm, leader->comm, OOMK_COMM_LEN);
	/* -EEXIST only means another thread of the process got here first. */
	bpf_map_update_elem(&procs, &tgid, &init, BPF_NOEXIST);
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p) {
		/* Full: the target goes untracked; we never guess a kill. */
		__sync_fetch_and_add(&stats.untracked, 1);
		return NULL;
	}
	fds_check(p, t, tgid, tid);
	return p;
}

/* ---------------------------------------------------------------------
 * Syscall source: one body, three thin variants.
 */
static __always_inline int on_sys(__u32 kind, long ret)
{
	struct task_struct *t;
	struct oomk_proc *p;
	__u64 id;
	__u32 tgid, tid;

	if (ret < 0)
		return 0;		/* failed calls count nothing */
	t = bpf_get_current_task_btf();
	if (!task_is_target(t))
		return 0;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	p = proc_get(t, tgid, tid);
	if (!p)
		return 0;
	switch (kind) {
	case K_WRITE:
		add_and_check(p, tgid, tid, OOMK_RULE_WRITES, 1);
		break;
	case K_READ:
		if (ret > 0)
			add_and_check(p, tgid, tid, OOMK_RULE_READ_BYTES, ret);
		break;
	case K_FD:
		fds_check(p, t, tgid, tid);
		break;
	}
	enforce(p, tgid, tid);
	return 0;
}

/* ---------------------------------------------------------------------
 * Memory source: used = (totalram - freeram) * mem_unit, as si_meminfo()
 * fills struct sysinfo. Samples only move the gate; the sweep program,
 * run by the loader after each of its sysinfo() calls, kills the
 * condemned once the gate is open.
 */
static __always_inline void mem_sample(__u64 total, __u64 free, __u32 unit)
{
	stats.mem_used = (total - free) * unit;
	__sync_fetch_and_add(&stats.samples, 1);
}

static __always_inline void mem_sample_user(struct sysinfo *uinfo)
{
	struct sysinfo si;

	if (bpf_probe_read_user(&si, sizeof(si), uinfo))
		return;
	mem_sample(si.totalram, si.freeram, si.mem_unit);
}

/* tracepoint family: a single tp_btf sys_exit serves syscalls and, at the
 * loader's own sysinfo() return, memory. One program on sys_exit costs
 * less per syscall than an enter/exit pair or per-syscall tracepoints. */
SEC("tp_btf/sys_exit")
int BPF_PROG(tp_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 nr = regs->orig_ax;
	__u32 kind;

	if (nr >= SYS_NR_MAX)
		return 0;
	kind = sys_class[nr];
	if (kind == K_NONE || !live())
		return 0;
	if (kind == K_SYSINFO) {
		if ((cfg.flags & OOMK_CF_MEM_TP) && ret == 0 &&
		    (bpf_get_current_pid_tgid() >> 32) == cfg.loader_tgid)
			mem_sample_user((struct sysinfo *)regs->di);
		return 0;
	}
	if (!(cfg.flags & OOMK_CF_SYS_TP))
		return 0;
	return on_sys(kind, ret);
}

/* fentry family: fexit on each syscall's x64 entry point. */
#define SYS_FEXIT(name, nr, kind)					\
SEC("fexit/__x64_sys_" #name)						\
int BPF_PROG(fx_sys_##name, const struct pt_regs *regs, long ret)	\
{									\
	return live() ? on_sys(kind, ret) : 0;				\
}
FOR_EACH_SYSCALL(SYS_FEXIT)

/* kprobe family: kretprobe on the same entry points. */
#define SYS_KRETPROBE(name, nr, kind)					\
SEC("kretprobe/__x64_sys_" #name)					\
int BPF_KRETPROBE(kp_sys_##name, long ret)				\
{									\
	return live() ? on_sys(kind, ret) : 0;				\
}
FOR_EACH_SYSCALL(SYS_KRETPROBE)

SEC("fexit/si_meminfo")
int BPF_PROG(fx_mem_si_meminfo, struct sysinfo *val)
{
	if (!live())
		return 0;
	mem_sample(val->totalram, val->freeram, val->mem_unit);
	return 0;
}

SEC("kprobe/si_meminfo")
int BPF_KPROBE(kp_mem_si_meminfo_entry, struct sysinfo *val)
{
	__u64 id = bpf_get_current_pid_tgid(), ptr = (__u64)val;

	if (!live())
		return 0;
	bpf_map_update_elem(&kp_args, &id, &ptr, BPF_ANY);
	return 0;
}

SEC("kretprobe/si_meminfo")
int BPF_KRETPROBE(kp_mem_si_meminfo_exit)
{
	__u64 id = bpf_get_current_pid_tgid(), *ptr;
	struct sysinfo si;

	ptr = bpf_map_lookup_elem(&kp_args, &id);
	if (!ptr)
		return 0;
	if (!bpf_probe_read_kernel(&si, sizeof(si), (void *)*ptr))
		mem_sample(si.totalram, si.freeram, si.mem_unit);
	bpf_map_delete_elem(&kp_args, &id);
	return 0;
}

/* ---------------------------------------------------------------------
 * TCP source: data segments handed to the kernel, ceil(bytes / MSS) per
 * successful send, so Nagle, autocorking and GSO merging don't hide them.
 */
static __always_inline int on_tcp_send(struct sock *sk, long ret)
{
	struct task_struct *t;
	struct oomk_proc *p;
	__u64 id, segs;
	__u32 mss, tgid, tid;

	if (ret <= 0 || !live())
		return 0;
	t = bpf_get_current_task_btf();
	if (!task_is_target(t))
		return 0;
	if (BPF_CORE_READ(sk, sk_protocol) != IPPROTO_TCP ||
	    BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return 0;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	p = proc_get(t, tgid, tid);
	if (!p)
		return 0;
	mss = BPF_CORE_READ((struct tcp_sock *)sk, mss_cache);
	segs = mss ? ((__u64)ret + mss - 1) / mss : 1;
	add_and_check(p, tgid, tid, OOMK_RULE_TCP_PACKETS, segs);
	enforce(p, tgid, tid);
	return 0;
}

/* Linux 6.3 (commit 6e6eda44b939): sock_sendmsg's length, every family. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(tp_tcp_send_length, struct sock *sk, int ret, int flags)
{
	return on_tcp_send(sk, ret);
}

SEC("fexit/tcp_sendmsg")
int BPF_PROG(fx_tcp_sendmsg, struct sock *sk, struct msghdr *msg, size_t size, int ret)
{
	return on_tcp_send(sk, ret);
}

SEC("kprobe/tcp_sendmsg")
int BPF_KPROBE(kp_tcp_sendmsg_entry, struct sock *sk)
{
	__u64 id = bpf_get_current_pid_tgid(), ptr = (__u64)sk;

	if (!live() || !task_is_target(bpf_get_current_task_btf()))
		return 0;
	bpf_map_update_elem(&kp_args, &id, &ptr, BPF_ANY);
	return 0;
}

SEC("kretprobe/tcp_sendmsg")
int BPF_KRETPROBE(kp_tcp_sendmsg_exit, int ret)
{
	__u64 id = bpf_get_current_pid_tgid(), *ptr;
	struct sock *sk;

	ptr = bpf_map_lookup_elem(&kp_args, &id);
	if (!ptr)
		return 0;
	sk = (struct sock *)*ptr;
	bpf_map_delete_elem(&kp_args, &id);
	return on_tcp_send(sk, ret);
}

/* ---------------------------------------------------------------------
 * Sources every kernel has: process lifetime, threads, rand().
 */

/* Counters belong to the process image: exec starts them again. A
 * condemned process stays condemned (exec is no way out). */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;
	struct oomk_proc *e;

	if (!live())
		return 0;
	e = bpf_map_lookup_elem(&procs, &tgid);
	if (!e)
		return 0;
	if (!e->condemned) {
		bpf_map_delete_elem(&procs, &tgid);
		return 0;
	}
	for (int i = 0; i < OOMK_RULE_MAX; i++)
		e->counters[i] = 0;
	__builtin_memcpy(e->comm, p->comm, OOMK_COMM_LEN);
	enforce(e, tgid, (__u32)bpf_get_current_pid_tgid());
	return 0;
}

/* The entry goes with the last thread, so a reused PID inherits nothing. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	if (live() && p->signal->live.counter == 0)
		bpf_map_delete_elem(&procs, &tgid);
	return 0;
}

/* Threads created over the process's life (cumulative). Runs in the
 * creator's context after the clone succeeded. io_uring's workers are
 * the kernel's threads, not the program's, and don't count. */
SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	struct task_struct *t;
	struct oomk_proc *p;
	__u32 tgid = parent->tgid, tid = parent->pid;

	if (child->tgid != tgid || (child->flags & PF_IO_WORKER) || !live())
		return 0;
	t = bpf_get_current_task_btf();
	if (!task_is_target(t))
		return 0;
	p = proc_get(t, tgid, tid);
	if (!p)
		return 0;
	add_and_check(p, tgid, tid, OOMK_RULE_THREADS, 1);
	enforce(p, tgid, tid);
	return 0;
}

SEC("uprobe/libc.so.6:rand")
int BPF_KPROBE(on_rand)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct oomk_proc *p;
	__u64 id;
	__u32 tgid, tid;

	if (!live() || !task_is_target(t))
		return 0;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	p = proc_get(t, tgid, tid);
	if (!p)
		return 0;
	add_and_check(p, tgid, tid, OOMK_RULE_RAND, 1);
	enforce(p, tgid, tid);
	return 0;
}

/* ---------------------------------------------------------------------
 * The deferred path: kill every condemned target still alive once a
 * sample finds the gate open. Runs from the loader (BPF_PROG_RUN of a
 * syscall program) right after its sysinfo(), in every family: kprobe
 * programs can't call these kfuncs on every kernel, syscall programs can.
 */
static long sweep_one(struct bpf_map *map, __u32 *key, struct oomk_proc *p, void *ctx)
{
	struct task_struct *t;

	if (!p->condemned || (p->state & OOMK_ST_KILLED))
		return 0;
	t = bpf_task_from_pid(*key);
	if (!t)
		return 0;
	/* Same process, not a reused PID, and still a target by name. */
	if (t->tgid == *key && t->start_time == p->start_time &&
	    comm_has_name(t->comm) && claim_kill(p)) {
		__u32 rule = p->condemned - 1;

		if (cfg.dry_run) {
			__sync_fetch_and_add(&stats.dry_runs, 1);
			emit(OOMK_EV_DRY_RUN, *key, 0, rule, p->value, p->comm);
		} else {
			bpf_send_signal_task(t, SIGKILL, PIDTYPE_TGID, 0);
			__sync_fetch_and_add(&stats.kills, 1);
			emit(OOMK_EV_KILL, *key, 0, rule, p->value, p->comm);
		}
	}
	bpf_task_release(t);
	return 0;
}

SEC("syscall")
int sweep(void *ctx)
{
	if (!live() || !sweep_pending || !gate_open())
		return 0;
	/* Clear first: a condemnation during the walk sets it again. */
	sweep_pending = 0;
	__sync_fetch_and_add(&stats.sweeps, 1);
	bpf_for_each_map_elem(&procs, sweep_one, NULL, 0);
	return 0;
}
