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
#define SIGSTOP		19
#define VM_EXEC		0x00000004
#define IPPROTO_TCP	6
#define IPPROTO_MPTCP	262
#define SOCK_STREAM	1
#define PF_IO_WORKER	0x00000010
#define S_IFMT		00170000
#define S_IFSOCK	0140000
#define EBADF		9
#define EFAULT		14
#define EINVAL		22
#define ESPIPE		29
#define EOVERFLOW	75
#define EOPNOTSUPP	95
#define ECANCELED	125
#define EAGAIN		11

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

/* kprobe family only: si_meminfo's argument between entry and return, for
 * the loader's own threads only. LRU: a return the kretprobe missed (its
 * instance pool is bounded) leaves an entry that ages out, never a full map. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 64);
	__type(key, __u64);
	__type(value, __u64);
} kp_args SEC(".maps");

/* Every kfunc is weak, and called only behind the cfg.flags bit that says
 * the kernel has it (OOMK_CF_*, set by the loader from vmlinux BTF): the
 * verifier drops a call behind a 0 bit as dead code, and libbpf leaves an
 * unresolved weak kfunc alone, so one object loads on every kernel.
 * Linux 6.2 (commit 3f0e6f2b41d3): a task by pid, for tracing and syscall
 * programs; 6.1 has none (OOMK_CF_TASK_KFUNCS). */
extern struct task_struct *bpf_task_from_pid(s32 pid) __ksym __weak;
extern void bpf_task_release(struct task_struct *p) __ksym __weak;
/* Linux 6.10: a program that runs preemptible and without a recursion
 * guard (a uprobe) keeps its CPU while it runs; see on_rand_call(). */
extern void bpf_preempt_disable(void) __ksym __weak;
extern void bpf_preempt_enable(void) __ksym __weak;
/* Linux 6.13 (commit 6280cf718db0): signal another task from BPF. Before
 * it, the loader sends the deferred kills (hand_over). */
extern int bpf_send_signal_task(struct task_struct *task, int sig,
				enum pid_type type, u64 value) __ksym __weak;

/* ---------------------------------------------------------------------
 * Which syscalls matter. Numbers come from the uapi headers: x86-64's
 * <asm/unistd_64.h>, and i386's as NR32_* (mk/ generates oomk_unistd_32.h
 * from <asm/unistd_32.h>, whose __NR_* names clash with the 64-bit ones).
 * Writes and reads are counted from the kernel's own per-thread counters
 * (see "Counting" below); these tables only say when to look.
 */
#if !defined(__TARGET_ARCH_x86)
#error "oomkiller's syscall tables cover x86-64 (and its ia32 ABI) only"
#endif
#include <asm/unistd_64.h>
#include "oomk_unistd_32.h"

/* K_MAP: may have made a file executable (mmap, mprotect: see lib_sys()).
 * K_URING: a K_FD call that names an io_uring ring (see ring_sys()).
 * K_AIO_*: io_submit, io_[p]getevents (aio_exit()): x86-64's only, and in
 * no per-syscall list: a sys_exit program counts them, in every family. */
enum sys_kind { K_NONE = 0, K_WRITE, K_READ, K_FD, K_SYSINFO, K_MAP, K_URING,
		K_AIO_SUBMIT, K_AIO_REAP };

#define SYS_NR_MAX	512
#define TS_COMPAT	0x0002	/* arch/x86/include/asm/thread_info.h */

/* x86-64: also the list of fexit/kretprobe variants (__x64_sys_NAME). */
#define FOR_EACH_SYSCALL(X)						\
	X(read, K_READ)		X(pread64, K_READ)	X(readv, K_READ) \
	X(preadv, K_READ)	X(preadv2, K_READ)			\
	X(write, K_WRITE)	X(pwrite64, K_WRITE)	X(writev, K_WRITE) \
	X(pwritev, K_WRITE)	X(pwritev2, K_WRITE)			\
	X(sendfile, K_READ)	X(copy_file_range, K_READ)		\
	X(open, K_FD)		X(creat, K_FD)		X(openat, K_FD)	\
	X(openat2, K_FD)	X(open_by_handle_at, K_FD)		\
	X(socket, K_FD)		X(socketpair, K_FD)			\
	X(accept, K_FD)		X(accept4, K_FD)			\
	X(recvmsg, K_FD)	X(recvmmsg, K_FD)			\
	X(pipe, K_FD)		X(pipe2, K_FD)				\
	X(dup, K_FD)		X(dup2, K_FD)		X(dup3, K_FD)	\
	X(fcntl, K_FD)		X(eventfd, K_FD)	X(eventfd2, K_FD) \
	X(memfd_create, K_FD)	X(memfd_secret, K_FD)			\
	X(epoll_create, K_FD)	X(epoll_create1, K_FD)			\
	X(inotify_init, K_FD)	X(inotify_init1, K_FD)			\
	X(fanotify_init, K_FD)	X(signalfd, K_FD)	X(signalfd4, K_FD) \
	X(timerfd_create, K_FD)	X(userfaultfd, K_FD)			\
	X(perf_event_open, K_FD) X(bpf, K_FD)				\
	X(pidfd_open, K_FD)	X(pidfd_getfd, K_FD)			\
	X(io_uring_setup, K_URING) X(io_uring_enter, K_URING)			\
	X(mq_open, K_FD)	X(open_tree, K_FD)			\
	X(fsopen, K_FD)		X(fsmount, K_FD)	X(fspick, K_FD)	\
	X(clone, K_FD)		X(clone3, K_FD)		X(ioctl, K_FD)	\
	X(seccomp, K_FD)	X(landlock_create_ruleset, K_FD)

/* i386, for 32-bit processes (int $0x80, sysenter): tracepoint family. */
#define FOR_EACH_SYSCALL32(X)						\
	X(read, K_READ)		X(pread64, K_READ)	X(readv, K_READ) \
	X(preadv, K_READ)	X(preadv2, K_READ)			\
	X(write, K_WRITE)	X(pwrite64, K_WRITE)	X(writev, K_WRITE) \
	X(pwritev, K_WRITE)	X(pwritev2, K_WRITE)			\
	X(sendfile, K_READ)	X(sendfile64, K_READ)			\
	X(copy_file_range, K_READ)					\
	X(open, K_FD)		X(creat, K_FD)		X(openat, K_FD)	\
	X(openat2, K_FD)	X(open_by_handle_at, K_FD)		\
	X(socketcall, K_FD)	X(socket, K_FD)		X(socketpair, K_FD) \
	X(accept4, K_FD)	X(recvmsg, K_FD)	X(recvmmsg, K_FD) \
	X(recvmmsg_time64, K_FD) X(pipe, K_FD)		X(pipe2, K_FD)	\
	X(dup, K_FD)		X(dup2, K_FD)		X(dup3, K_FD)	\
	X(fcntl, K_FD)		X(fcntl64, K_FD)			\
	X(eventfd, K_FD)	X(eventfd2, K_FD)			\
	X(memfd_create, K_FD)	X(memfd_secret, K_FD)			\
	X(epoll_create, K_FD)	X(epoll_create1, K_FD)			\
	X(inotify_init, K_FD)	X(inotify_init1, K_FD)			\
	X(fanotify_init, K_FD)	X(signalfd, K_FD)	X(signalfd4, K_FD) \
	X(timerfd_create, K_FD)	X(userfaultfd, K_FD)			\
	X(perf_event_open, K_FD) X(bpf, K_FD)				\
	X(pidfd_open, K_FD)	X(pidfd_getfd, K_FD)			\
	X(io_uring_setup, K_URING) X(io_uring_enter, K_URING)			\
	X(mq_open, K_FD)	X(open_tree, K_FD)			\
	X(fsopen, K_FD)		X(fsmount, K_FD)	X(fspick, K_FD)	\
	X(clone, K_FD)		X(clone3, K_FD)		X(ioctl, K_FD)	\
	X(seccomp, K_FD)	X(landlock_create_ruleset, K_FD)

/* The ia32 entry points behind those (__ia32_SYM), for fexit/kretprobe: a
 * kernel that lacks one just doesn't check at that call in this family. */
#define FOR_EACH_IA32_ENTRY(X)						\
	X(sys_read, K_READ)		X(sys_readv, K_READ)		\
	X(sys_ia32_pread64, K_READ)	X(compat_sys_preadv, K_READ)	\
	X(compat_sys_preadv2, K_READ)					\
	X(sys_write, K_WRITE)		X(sys_writev, K_WRITE)		\
	X(sys_ia32_pwrite64, K_WRITE)	X(compat_sys_pwritev, K_WRITE)	\
	X(compat_sys_pwritev2, K_WRITE)					\
	X(compat_sys_sendfile, K_READ)	X(sys_sendfile64, K_READ)	\
	X(compat_sys_sendfile64, K_READ)				\
	X(sys_copy_file_range, K_READ)					\
	X(compat_sys_open, K_FD)	X(compat_sys_openat, K_FD)	\
	X(sys_creat, K_FD)		X(sys_openat2, K_FD)		\
	X(sys_dup, K_FD)		X(sys_dup2, K_FD)	X(sys_dup3, K_FD) \
	X(sys_pipe, K_FD)		X(sys_pipe2, K_FD)		\
	X(compat_sys_socketcall, K_FD)	X(sys_socket, K_FD)		\
	X(sys_accept4, K_FD)		X(compat_sys_fcntl64, K_FD)	\
	X(compat_sys_ia32_clone, K_FD)	X(sys_clone3, K_FD)		\
	X(compat_sys_ioctl, K_FD)	X(sys_seccomp, K_FD)		\
	X(sys_landlock_create_ruleset, K_FD)

#define SYS_CLASS(name, kind) [__NR_##name] = kind,
static const __u8 sys_class[SYS_NR_MAX] = {
	FOR_EACH_SYSCALL(SYS_CLASS)
	[__NR_sysinfo] = K_SYSINFO,
	[__NR_mmap] = K_MAP, [__NR_mprotect] = K_MAP, [__NR_pkey_mprotect] = K_MAP,
	[__NR_io_submit] = K_AIO_SUBMIT,
	[__NR_io_getevents] = K_AIO_REAP, [__NR_io_pgetevents] = K_AIO_REAP,
};

#define SYS_CLASS32(name, kind) [NR32_##name] = kind,
static const __u8 sys_class32[SYS_NR_MAX] = {
	FOR_EACH_SYSCALL32(SYS_CLASS32)
	[NR32_mmap] = K_MAP, [NR32_mmap2] = K_MAP, [NR32_mprotect] = K_MAP,
	[NR32_pkey_mprotect] = K_MAP,
};

/* The calls that can send on a socket and also count once in ioac.syscw:
 * write-family calls through vfs_write()/vfs_writev() (pwrite64 and
 * pwritev fail with ESPIPE on a socket first), and sendfile, which bumps
 * syscw once per call (fs/read_write.c, do_sendfile). */
static __always_inline bool syscw_sends(__u64 nr, bool compat)
{
	if (compat)
		return nr == NR32_write || nr == NR32_writev || nr == NR32_pwritev2 ||
		       nr == NR32_sendfile || nr == NR32_sendfile64;
	return nr == __NR_write || nr == __NR_writev || nr == __NR_pwritev2 ||
	       nr == __NR_sendfile;
}

static __always_inline bool in_compat_syscall(struct task_struct *t)
{
	return t->thread_info.status & TS_COMPAT;
}

/* ---------------------------------------------------------------------
 * Policies. A process's policy is the first of cfg.pol whose selectors all
 * match it (policy.py). The choice is made once per process image and kept
 * in `sels`, task storage on the thread-group leader, with the leader's
 * comm it was made for. It is made again when the comm differs (a
 * rename), after a move to another cgroup (on_cgroup_attach() counts it),
 * after exec (exec_checkpoint() drops it), and after a reload (`sels` is
 * each generation's own map). So a call of a process with no policy costs
 * one task-storage lookup and two compares, however many policies there
 * are (reading the cgroup's id on every call instead, four probe reads,
 * doubled a non-target's cost in make bench); and the name selector keeps
 * today's meaning: a process renamed into the name is a target from its
 * next call on.
 */
struct oomk_sel {
	__u64 comm0, comm1;	/* the leader's comm the choice was made for */
	__s32 policy;		/* index in cfg.pol, -1: none */
	__u32 moves;		/* cgroup moves seen (on_cgroup_attach) */
	__u32 valid;		/* moves + 1 when the choice was made; 0: none */
	__u32 _pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct oomk_sel);
} sels SEC(".maps");

/* The id of each policy's cgroup (cg_path), by policy index; 0: no such
 * cgroup yet. The loader writes the ones that exist when it loads;
 * on_cgroup_mkdir() the ones made later (a unit started after the
 * killer), before any process can be in them. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, OOMK_POLICY_MAX);
	__type(key, __u32);
	__type(value, __u64);
} pol_cgid SEC(".maps");

/* A policy index the verifier can see is bounded: a mask clang can't drop
 * (it drops one after a compare it knows of, and clang 14 spills a 32-bit
 * index with its bounds lost). */
static __always_inline __u64 pol_index(__u64 i)
{
	asm volatile("%0 &= 63" : "+r"(i));
	return i;
}
_Static_assert(OOMK_POLICY_MAX == 64, "pol_index() masks with 63");

#define POL(i)	(&cfg.pol[pol_index(i)])
#define ONES	0x0101010101010101ULL

static __always_inline bool rule_on(__u32 rule)
{
	return cfg.rules_on & (1u << rule);
}

static __always_inline __u64 limit_of(__u32 pol, __u32 rule)
{
	return rule < OOMK_RULE_MAX ? POL(pol)->limits[rule] : (__u64)-1;
}

/* The comm as two words (w0, w1) contains pol's name. Each start position
 * is one masked compare of the 16 bytes from there (zeros shifted in past
 * the end, which no name byte equals), with no branch on a comm byte but
 * the verdict: a byte-by-byte search forked the verifier's states at every
 * byte, and in the sweep a 6-byte name went past its million
 * instructions. The name is read through volatile: clang folds a plain
 * load of const cfg to its {} initializer. */
static __always_inline bool comm_has(__u64 w0, __u64 w1, const volatile struct oomk_policy *pol)
{
	__u64 n0, n1, m0, m1, a, b;
	__u32 i, len = pol->name_len;

	if (len == 0 || len > OOMK_NAME_MAX)
		return false;
	n0 = *(const volatile __u64 *)pol->name;
	n1 = *(const volatile __u64 *)(pol->name + 8);
	m0 = len >= 8 ? ~0ULL : (1ULL << (8 * len)) - 1;
	m1 = len <= 8 ? 0 : (1ULL << (8 * (len - 8))) - 1;
	for (i = 0; i < OOMK_COMM_LEN; i++) {
		if (i + len > OOMK_COMM_LEN)
			break;
		if (i == 0) {
			a = w0;
			b = w1;
		} else if (i < 8) {
			a = (w0 >> (8 * i)) | (w1 << (64 - 8 * i));
			b = w1 >> (8 * i);
		} else {
			a = w1 >> (8 * (i - 8));
			b = 0;
		}
		if (!((a ^ n0) & m0) && !((b ^ n1) & m1))
			return true;
	}
	return false;
}

/* What the selectors look at, read once per choice. */
struct sel_facts {
	__u64 w0, w1;		/* the leader's comm */
	__u64 dev, ino;		/* its image's file (mm->exe_file) */
	__u64 cg;		/* its cgroup v2 (struct cgroup *) */
	__u32 level;		/* that cgroup's depth */
	__u32 uid;		/* real uid */
	__s32 policy;		/* the verdict */
	__u32 _pad;
};

/* Whether cgroup cg (at depth level) is pol i's cgroup or below it: its
 * ancestor at pol's depth has pol's cgroup id. */
static __always_inline bool cg_under(struct sel_facts *f, __u32 i,
				     const volatile struct oomk_policy *pol)
{
	struct cgroup *cg = (struct cgroup *)f->cg;
	__u32 steps, want_level = pol->cg_level, j;
	__u64 *want = bpf_map_lookup_elem(&pol_cgid, &i);

	if (!want || !*want || !cg || f->level < want_level)
		return false;
	steps = f->level - want_level;
	if (steps > 32)
		return false;
	/* A cgroup's `self` css is its first member: css.parent is the
	 * parent cgroup's address. */
	for (j = 0; j < 32; j++) {
		if (j >= steps)
			break;
		cg = (struct cgroup *)BPF_CORE_READ(cg, self.parent);
	}
	return cg && BPF_CORE_READ(cg, kn, id) == *want;
}

static long sel_one(__u32 i, struct sel_facts *f)
{
	const volatile struct oomk_policy *pol;
	__u32 sel;

	if (i >= OOMK_POLICY_MAX)
		return 1;
	pol = POL(i);
	sel = pol->sel;
	if (!sel)
		return 0;
	if ((sel & OOMK_SEL_NAME) && !comm_has(f->w0, f->w1, pol))
		return 0;
	if ((sel & OOMK_SEL_EXE) && (f->ino != pol->exe_ino || f->dev != pol->exe_dev))
		return 0;
	if ((sel & OOMK_SEL_USER) && f->uid != pol->uid)
		return 0;
	if ((sel & OOMK_SEL_CGROUP) && !cg_under(f, i, pol))
		return 0;
	f->policy = i;
	return 1;
}

/* The choice itself: the index of the first policy that matches leader's
 * process, or -1. Neither the killer nor the selftest that started it is
 * ever a target (a --name that matches the interpreter must not make the
 * killer count its own event writes). */
static __noinline int select_policy(struct task_struct *leader)
{
	struct sel_facts f = { .policy = -1 };
	struct cgroup *cg;
	struct file *exe;
	__u32 tgid = leader->tgid;

	if (tgid == cfg.loader_tgid || tgid == cfg.exempt_tgid || !tgid)
		return -1;
	f.w0 = *(const __u64 *)leader->comm;
	f.w1 = *(const __u64 *)(leader->comm + 8);
	if (cfg.sel_any & OOMK_SEL_EXE) {
		exe = BPF_CORE_READ(leader, mm, exe_file);
		if (exe) {
			f.ino = BPF_CORE_READ(exe, f_inode, i_ino);
			f.dev = BPF_CORE_READ(exe, f_inode, i_sb, s_dev);
		}
	}
	if (cfg.sel_any & OOMK_SEL_USER)
		f.uid = BPF_CORE_READ(leader, real_cred, uid.val);
	if (cfg.sel_any & OOMK_SEL_CGROUP) {
		cg = BPF_CORE_READ(leader, cgroups, dfl_cgrp);
		f.cg = (__u64)cg;
		if (cg)
			f.level = BPF_CORE_READ(cg, level);
	}
	bpf_loop(cfg.npol < OOMK_POLICY_MAX ? cfg.npol : OOMK_POLICY_MAX, sel_one, &f, 0);
	return f.policy;
}

static __noinline int tree_member_policy(__u32 tgid, __u64 start_time);

/* The policy of leader's process (its index in cfg.pol), or -1: not a
 * target. A tree's member has its tree's policy, whatever it is now. The
 * choice is kept; when task storage can't be had (the kernel refuses it
 * under recursion, or no memory), it is made afresh. */
static __noinline int policy_of_leader(struct task_struct *leader)
{
	__u64 w0 = *(const __u64 *)leader->comm;
	__u64 w1 = *(const __u64 *)(leader->comm + 8);
	struct oomk_sel *s;
	__u32 moves = 0;
	int pol, member;

	s = bpf_task_storage_get(&sels, leader, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (s) {
		moves = s->moves;
		if (s->valid == moves + 1 && s->comm0 == w0 && s->comm1 == w1)
			return s->policy;
	}
	/* moves is read before the cgroup is: a move from here on leaves this
	 * choice stale at once (valid != moves + 1). */
	pol = select_policy(leader);
	if (cfg.flags & OOMK_CF_TREES) {
		member = tree_member_policy(leader->tgid, leader->start_time);
		if (member >= 0)
			pol = member;
	}
	if (s) {
		s->valid = 0;
		s->comm0 = w0;
		s->comm1 = w1;
		s->policy = pol;
		s->valid = moves + 1;
	}
	return pol;
}

/* The choice for current's process when none is kept: a global function,
 * which the verifier checks once per program, not at each call site
 * (lib_mapped(), ur_target(), on_sys(), ...; inlined, the choice was a
 * fifth of what it walked in tp_sys_exit). */
__noinline int choose_current(void)
{
	return policy_of_leader(bpf_get_current_task_btf()->group_leader);
}

/* The policy of current's process, for the hooks (each runs in the process
 * it counts): the kept choice read inline, one task-storage lookup and
 * three compares with no call on a non-target's path (the call alone made
 * a non-target's write 1.38x the floor in make bench), else
 * choose_current(). */
static __always_inline int policy_of_current(void)
{
	struct task_struct *leader = bpf_get_current_task_btf()->group_leader;
	struct oomk_sel *s = bpf_task_storage_get(&sels, leader, 0, 0);

	if (s && s->valid == s->moves + 1 && s->comm0 == *(const __u64 *)leader->comm &&
	    s->comm1 == *(const __u64 *)(leader->comm + 8))
		return s->policy;
	return choose_current();
}

/* The gate of policy pol: open once a sample finds its min_used in use. */
static __always_inline bool gate_open_for(__u32 pol)
{
	return stats.samples && stats.mem_used >= POL(pol)->min_used;
}

/* Some policy's gate is open (the lowest: cfg.min_used). */
static __always_inline bool gate_open(void)
{
	return stats.samples && stats.mem_used >= cfg.min_used;
}

/* ---------------------------------------------------------------------
 * Open descriptors: a level read from the fd table. Popcount of open_fds,
 * so dup2 to a high number counts once and the highest number is not the
 * count. Only run for targets, after a call that may have made an fd.
 * A set bit can also be a slot reserved by a call still in progress
 * (get_unused_fd_flags(); the file comes at fd_install(), when it ends: an
 * open blocked on a FIFO, an io_uring open in a worker), so a popcount at
 * the limit is checked again by counting the slots that hold a file: the
 * limit is on descriptors open, as /proc/PID/fd lists them.
 */
struct fd_walk {
	__u64 open_fds;		/* kernel address of the bitmap */
	__u64 files;		/* kernel address of the struct file * array */
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

/* One word of the bitmap: how many of its 64 slots hold a file (a slot
 * with a file always has its bit set). Branchless per slot, (x | -x) >> 63
 * is 1 for a pointer and 0 for NULL: a branch per slot would make the
 * verifier walk 2^64 paths. */
static long fd_installed(__u32 i, struct fd_walk *w)
{
	__u64 bits, f[FD_CHUNK];

	if (i >= w->words ||
	    bpf_probe_read_kernel(&bits, sizeof(bits), (void *)(w->open_fds + i * sizeof(bits))))
		return 1;
	if (!bits)
		return 0;
	for (int c = 0; c < 64 / FD_CHUNK; c++) {
		if (bpf_probe_read_kernel(f, sizeof(f), (void *)(w->files +
			((__u64)i * 64 + c * FD_CHUNK) * sizeof(f[0]))))
			return 1;
		for (int k = 0; k < FD_CHUNK; k++) {
			__u64 neg = 0 - f[k];

			/* hide that neg is -f[k], or clang makes it f[k] != 0 again */
			asm volatile("" : "+r"(neg));
			w->count += (f[k] | neg) >> 63;
		}
	}
	return 0;
}

static __always_inline void fd_walk_init(struct fd_walk *w, struct fdtable *fdt)
{
	w->open_fds = (__u64)fdt->open_fds;
	w->files = (__u64)fdt->fd;
	w->words = fdt->max_fds / 64;
}

/* The bitmap's popcount: descriptors open plus slots reserved. */
static __always_inline __u64 count_fds(struct task_struct *t)
{
	struct fd_walk w = {};
	struct files_struct *files = t->files;

	if (!files)
		return 0;
	fd_walk_init(&w, files->fdt);
	/* sysctl fs.nr_open caps max_fds at 2^30: 2^24 words. */
	bpf_loop((w.words + FD_CHUNK - 1) / FD_CHUNK, fd_chunk, &w, 0);
	return w.count;
}

/* Descriptors open: the set slots that hold a file. A word at a time, so
 * only when the popcount has reached the limit. */
static __always_inline __u64 count_installed_fds(struct task_struct *t)
{
	struct fd_walk w = {};
	struct files_struct *files = t->files;

	if (!files)
		return 0;
	fd_walk_init(&w, files->fdt);
	bpf_loop(w.words, fd_installed, &w, 0);
	return w.count;
}

/* io_uring's direct descriptor tables: files a ring holds without an fd
 * (IORING_OP_OPENAT/ACCEPT/SOCKET into a table slot, registered files).
 * They count toward the fds level of the process whose rings hold them.
 * Its rings: up to URING_FDS ring fds seen at io_uring_setup's and
 * io_uring_enter's exits (`urings`), and the calling thread's registered
 * rings. Each is counted from the fd table (or the registered slot) at
 * every check, never from a count kept aside: no tracepoint marks a ring's
 * teardown, and a kept count would outlive its files. */
#define URING_FDS	4
#define URING_REG	16	/* IO_RINGFD_REG_MAX */
#define URING_SLOTS	(URING_FDS + URING_REG)

struct oomk_rings {
	__s32 fd[URING_FDS];	/* -1: free */
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);		/* tgid */
	__type(value, struct oomk_rings);
} urings SEC(".maps");

struct ring_walk {
	struct task_struct *t;
	__s32 fd[URING_FDS];		/* a copy of the process's urings entry */
	__u32 seen[URING_SLOTS];	/* ctx of each slot counted (its low half:
					 * the stack is tight), or 0 */
	__u64 count;
};

/* The file at descriptor fd of t's table, or NULL. */
static __always_inline struct file *fd_file(struct task_struct *t, long fd)
{
	struct files_struct *files = BPF_CORE_READ(t, files);
	struct file *f = NULL;
	struct fdtable *fdt;

	if (fd < 0 || !files)
		return NULL;
	fdt = BPF_CORE_READ(files, fdt);
	if ((unsigned long)fd >= BPF_CORE_READ(fdt, max_fds) ||
	    bpf_probe_read_kernel(&f, sizeof(f),
				  (void *)((__u64)BPF_CORE_READ(fdt, fd) + fd * sizeof(f))))
		return NULL;
	return f;
}

/* The ring file in t's registered-ring slot i (io_uring_register's
 * IORING_REGISTER_RING_FDS), or NULL. */
static __always_inline struct file *ring_reg_file(struct task_struct *t, __u32 i)
{
	struct io_uring_task *tctx = BPF_CORE_READ(t, io_uring);
	struct file *f = NULL;

	if (!tctx || bpf_probe_read_kernel(&f, sizeof(f),
					   &tctx->registered_rings[i & (URING_REG - 1)]))
		return NULL;
	return f;
}

/* The ring behind file f, or 0: only a live io_uring file ("[io_uring]")
 * whose ctx is not being torn down (refs killed, __PERCPU_REF_DEAD). */
static __always_inline __u64 ring_of(struct file *f)
{
	char name[12] = {};
	struct io_ring_ctx *ctx;

	if (!f || bpf_probe_read_kernel_str(name, sizeof(name),
					    BPF_CORE_READ(f, f_path.dentry, d_name.name)) != 11)
		return 0;
	for (int i = 0; i < 11; i++)
		if (name[i] != "[io_uring]"[i])
			return 0;
	ctx = BPF_CORE_READ(f, private_data);
	if (!ctx || (BPF_CORE_READ(ctx, refs.percpu_count_ptr) & 2))
		return 0;
	return (__u64)ctx;
}

/* One word of a ring's direct-table bitmap. Not fd_chunk: this runs in
 * ring_slot's callback, and before Linux 6.13 (no private stack) the
 * three frames of main program, ring_slot and fd_chunk's buffer passed
 * the verifier's 512 bytes in the fexit and kretprobe syscall programs. */
static long fd_word(__u32 i, struct fd_walk *w)
{
	__u64 bits;

	if (i >= w->words ||
	    bpf_probe_read_kernel(&bits, sizeof(bits), (void *)(w->open_fds + i * sizeof(bits))))
		return 1;
	w->count += popcount64(bits);
	return 0;
}

/* Before Linux 6.13 the direct table's size is the ring's nr_user_files. */
struct io_ring_ctx___old {
	unsigned int nr_user_files;
} __attribute__((preserve_access_index));

static __always_inline __u64 ring_direct(__u64 ring)
{
	struct io_ring_ctx *ctx = (struct io_ring_ctx *)ring;
	struct fd_walk w = {};
	__u32 nr;

	if (bpf_core_field_exists(ctx->file_table.data))
		nr = BPF_CORE_READ(ctx, file_table.data.nr);
	else if (bpf_core_field_exists(((struct io_ring_ctx___old *)ctx)->nr_user_files))
		nr = BPF_CORE_READ((struct io_ring_ctx___old *)ctx, nr_user_files);
	else
		return 0;
	w.open_fds = (__u64)BPF_CORE_READ(ctx, file_table.bitmap);
	if (!w.open_fds || !nr)
		return 0;
	w.words = (nr + 63) / 64;
	bpf_loop(w.words, fd_word, &w, 0);
	return w.count;
}

static long ring_slot(__u32 i, struct ring_walk *rw)
{
	struct file *f;
	__u64 ring;

	if (i >= URING_SLOTS)
		return 1;
	if (i < URING_FDS)
		f = fd_file(rw->t, rw->fd[i & (URING_FDS - 1)]);
	else
		f = ring_reg_file(rw->t, i - URING_FDS);
	ring = ring_of(f);
	if (!ring)
		return 0;
	/* One ring, two ways in (its fd and a registered slot): once. Two
	 * rings equal in their low halves would count as one: never more. */
	for (int k = 0; k < URING_SLOTS; k++)
		if (rw->seen[k] == (__u32)ring)
			return 0;
	if (i < URING_SLOTS)
		rw->seen[i] = (__u32)ring;
	rw->count += ring_direct(ring);
	return 0;
}

/* Not inlined: its walk state stays off the frames of the syscall
 * programs, which before 6.13 count with their callbacks' against 512
 * bytes (6.1 rounds each frame up to 32: 544 with it inlined). */
static __noinline __u64 count_direct(struct task_struct *t, __u32 tgid)
{
	struct ring_walk rw = { .t = t, .fd = { -1, -1, -1, -1 } };
	struct oomk_rings *r = bpf_map_lookup_elem(&urings, &tgid);

	if (r)
		__builtin_memcpy(rw.fd, r->fd, sizeof(rw.fd));
	bpf_loop(URING_SLOTS, ring_slot, &rw, 0);
	return rw.count;
}

/* ---------------------------------------------------------------------
 * Events and kills.
 */
static __always_inline void emit(__u32 kind, __u32 tgid, __u32 tid, __u32 rule,
				 __u64 value, const char *comm, __u32 pol)
{
	struct oomk_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		__sync_fetch_and_add(&stats.dropped, 1);
		return;
	}
	e->ts_boot_ns = bpf_ktime_get_boot_ns();
	e->value = value;
	e->limit = rule < OOMK_RULE_MAX ? limit_of(pol, rule) : 0;
	e->policy = pol;
	e->generation = cfg.generation;
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

/* One more of a total and of its rule's share (rule < OOMK_RULE_MAX). */
static __always_inline void count_rule(__u64 *total, __u64 *per_rule, __u32 rule)
{
	__sync_fetch_and_add(total, 1);
	if (rule < OOMK_RULE_MAX)
		__sync_fetch_and_add(&per_rule[rule], 1);
}

/* ---------------------------------------------------------------------
 * Trees (scope = tree). A tree policy keeps one total for the process it
 * first chose and everything that process forks or execs afterwards, in
 * a tree's entry of procs under a key no pid has (TREE_KEY set). Each
 * member keeps its own entry, with tree = that key, for what is its own
 * (start time, fd level, the kill claim); counts and the verdict go to
 * the tree's entry (acct()). Membership outlives exec and renames, so
 * handing the work to children that exec another program is no way out;
 * it ends at exit, or when a reload removes the tree's policy or makes it
 * scope = process. A tree's policy is known by oomk_policy.id, which a
 * reload keeps for the same name: tree entries outlive generations.
 */
#define TREE_KEY	0x80000000u
__u32 tree_seq;

/* Where p's counts go: its tree's entry, or p itself. */
static __always_inline struct oomk_proc *acct(struct oomk_proc *p)
{
	__u32 key = p->tree;
	struct oomk_proc *te;

	if (!(cfg.flags & OOMK_CF_TREES) || !key)
		return p;
	te = bpf_map_lookup_elem(&procs, &key);
	return te ? te : p;
}

struct id_find {
	__u32 id;
	__s32 index;
};

static long id_one(__u32 i, struct id_find *f)
{
	if (i >= OOMK_POLICY_MAX)
		return 1;
	if (POL(i)->id == f->id && POL(i)->tree) {
		f->index = i;
		return 1;
	}
	return 0;
}

/* The index of the tree policy whose id is `id` in this generation, -1. */
static __noinline int tree_policy_index(__u32 id)
{
	struct id_find f = { .id = id, .index = -1 };

	bpf_loop(cfg.npol < OOMK_POLICY_MAX ? cfg.npol : OOMK_POLICY_MAX, id_one, &f, 0);
	return f.index;
}

/* A tree whose policy is still a tree policy: te->policy is made its
 * index in this generation. 0: the policy is gone (its members are no
 * longer targets). */
static __noinline int tree_live(struct oomk_proc *te)
{
	int index;

	if (te->generation == cfg.generation)
		return 1;
	index = tree_policy_index(te->pol_id);
	if (index < 0)
		return 0;
	te->policy = index;
	return 1;
}

/* The tree policy of process tgid, a member, or -1. */
static __noinline int tree_member_policy(__u32 tgid, __u64 start_time)
{
	struct oomk_proc *p, *te;
	__u32 key;

	if (tgid == cfg.loader_tgid || tgid == cfg.exempt_tgid)
		return -1;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p || !p->tree || p->start_time != start_time)
		return -1;
	key = p->tree;
	te = bpf_map_lookup_elem(&procs, &key);
	if (!te)
		return -1;
	return tree_policy_index(te->pol_id);
}

/* p leaves its tree (it exits, or its policy changed). Once: the twins
 * both try, and only one takes the key. The last member out deletes it. */
static __noinline void tree_leave(struct oomk_proc *p)
{
	__u32 key = __sync_lock_test_and_set(&p->tree, 0);
	struct oomk_proc *te;

	if (!key)
		return;
	te = bpf_map_lookup_elem(&procs, &key);
	if (!te)
		return;
	__sync_fetch_and_sub(&te->counters[OOMK_RULE_FDS], p->counters[OOMK_RULE_FDS]);
	if (__sync_fetch_and_sub(&te->members, 1) == 1 && !bpf_map_delete_elem(&procs, &key))
		__sync_fetch_and_sub(&stats.tracked, 1);
}

/* p starts a tree of policy pol: it is the first process that policy
 * chose. Its fd level is the tree's first. */
static __noinline void tree_new(struct oomk_proc *p, __u32 pol)
{
	struct oomk_proc init = {};
	__u32 key = TREE_KEY | ((__sync_fetch_and_add(&tree_seq, 1) + 1) & ~TREE_KEY);

	init.members = 1;
	init.pol_id = POL(pol)->id;
	init.policy = pol;
	init.generation = cfg.generation;
	init.start_time = p->start_time;
	init.counters[OOMK_RULE_FDS] = p->counters[OOMK_RULE_FDS];
	__builtin_memcpy(init.comm, p->comm, OOMK_COMM_LEN);
	if (bpf_map_update_elem(&procs, &key, &init, BPF_NOEXIST)) {
		__sync_fetch_and_add(&stats.untracked, 1);	/* full: it counts alone */
		return;
	}
	__sync_fetch_and_add(&stats.tracked, 1);
	p->tree = key;
}

/* Bring p's membership in line with its policy now, pol. */
static __noinline void tree_fix(struct oomk_proc *p, __u32 pol)
{
	struct oomk_proc *te;
	__u32 key = p->tree;

	if (key) {
		te = bpf_map_lookup_elem(&procs, &key);
		if (te && POL(pol)->tree && te->pol_id == POL(pol)->id) {
			te->policy = pol;
			return;
		}
		tree_leave(p);
	}
	if (POL(pol)->tree)
		tree_new(p, pol);
}

/* child, a new process of p's tree, joins it: an entry of its own now,
 * before it first runs (sched_process_fork comes before its wake-up). */
static __noinline void tree_adopt(struct oomk_proc *p, struct task_struct *child, __u32 pol)
{
	struct oomk_proc init = {}, *te;
	__u32 key = p->tree, ctgid = child->tgid;

	te = bpf_map_lookup_elem(&procs, &key);
	if (!te)
		return;
	init.start_time = child->start_time;
	init.generation = cfg.generation;
	init.policy = pol;
	init.tree = key;
	__builtin_memcpy(init.comm, child->comm, OOMK_COMM_LEN);
	if (bpf_map_update_elem(&procs, &ctgid, &init, BPF_NOEXIST))
		return;		/* the twin adopted it, or procs is full */
	__sync_fetch_and_add(&stats.tracked, 1);
	__sync_fetch_and_add(&te->members, 1);
}

/* The kernel refused the signal (the task is exiting, or the irq_work
 * bpf_send_signal needs is busy): the process stays condemned and not
 * killed, and the next checkpoint or sweep tries again. */
static __always_inline void kill_refused(struct oomk_proc *p, __u32 rule)
{
	__sync_fetch_and_and(&p->state, ~OOMK_ST_KILLED);
	count_rule(&stats.kill_failed, stats.rule_kill_failed, rule);
	sweep_pending = 1;
}

/* After a claim: report a dry run, or a kill the kernel accepted. */
static __always_inline void killed(struct oomk_proc *p, __u32 pol, __u32 tgid, __u32 tid,
				   __u32 rule, __u64 value, const char *comm, int err)
{
	if (POL(pol)->dry_run) {
		count_rule(&stats.dry_runs, stats.rule_dry_runs, rule);
		emit(OOMK_EV_DRY_RUN, tgid, tid, rule, value, comm, pol);
	} else if (err) {
		kill_refused(p, rule);
	} else {
		count_rule(&stats.kills, stats.rule_kills, rule);
		emit(OOMK_EV_KILL, tgid, tid, rule, value, comm, pol);
	}
}

/* The one way a SIGKILL leaves this object. p is the process's entry, a
 * the entry that holds its verdict: p, or its tree's (acct()). `leader` is
 * the process's thread-group leader; `self`: current is one of its
 * threads, in a hook, and bpf_send_signal() makes the signal pending
 * before it returns to user space, so it runs no further insn. Else (the
 * deferred sweep, a thread's exit) the kfunc signals it from outside.
 * Checked here, at the moment of sending, whoever calls: the process the
 * entry was made for (tgid and the leader's start_time: not a reused PID),
 * and a target right now: a policy still applies (an exec or a rename out
 * of its selectors, or a reload that removed it, means no kill; a tree's
 * member is one while its tree's policy is). A process whose policy
 * changed meanwhile (a reload, a move) stays condemned, and the policy it
 * has now says whether its gate is open and if it is a dry run.
 *
 * The verdict (rule, value) is read once, before the claim, and the event
 * says what was read and the name of the task signalled; an entry with no
 * verdict is never killed. (A kill event once reported rule 2^32 - 1: two
 * uprobe runs sharing a private stack, see on_rand_call().) */
static __always_inline void kill(struct oomk_proc *p, struct oomk_proc *a,
				 struct task_struct *leader, __u32 tgid, __u32 tid, bool self,
				 bool own)
{
	__u32 rule = a->condemned - 1;
	__u64 value = a->value;
	int err = 0, pol;

	/* The event names the thread that crossed, not whichever of its
	 * threads reached a hook first (another one's syscall exit can run
	 * between the crossing and its own enforce()); in a tree, the thread
	 * that crossed may be another process's: then the one killed. */
	if (self && a == p)
		tid = p->tid;

	if (rule >= OOMK_RULE_MAX || leader->tgid != tgid || leader->start_time != p->start_time)
		return;
	/* self: the hook found current's process a target in this run, and
	 * proc_get() gave the entry that policy (choosing again here would
	 * put a sixth frame on io_uring's walks: 560 bytes of stack). */
	if (!self) {
		if (a == p) {
			/* own: current is one of its threads (its exit) */
			pol = own ? policy_of_current() : policy_of_leader(leader);
			if (pol < 0)
				return;
			if (p->policy != pol)
				p->policy = pol;
		} else if (!tree_live(a)) {
			return;
		}
	}
	pol = a->policy;
	if (!gate_open_for(pol) || !claim_kill(p))
		return;
	if (!POL(pol)->dry_run)
		err = self ? bpf_send_signal(SIGKILL) :
			     bpf_send_signal_task(leader, SIGKILL, PIDTYPE_TGID, 0);
	killed(p, pol, tgid, tid, rule, value, leader->comm, err);
}

/* Kill process tgid from outside its own running threads: kfuncs, so
 * tracing and syscall programs only. Before Linux 6.13 there is no kfunc
 * to signal another task: the next sweep hands the kill to the loader. */
static __always_inline void kill_tgid(struct oomk_proc *p, struct oomk_proc *a, __u32 tgid,
				      bool own)
{
	struct task_struct *t;

	if (!(cfg.flags & OOMK_CF_SIGNAL_TASK)) {
		sweep_pending = 1;
		return;
	}
	t = bpf_task_from_pid(tgid);
	if (!t)
		return;
	kill(p, a, t, tgid, 0, false, own);
	bpf_task_release(t);
}

/* value reached limit: condemn (sticky). The caller's enforce() kills it
 * if the gate is open; with the gate closed the sweep will. The first rule
 * claims it, writes value, then publishes condemned (an xchg: a full
 * barrier), so whoever sees condemned sees the value it was reached at.
 * p: the entry that holds the verdict (a tree's, for its members). */
static __always_inline void condemn(struct oomk_proc *p, __u32 tgid, __u32 tid,
				    __u32 rule, __u64 value)
{
	if (__sync_fetch_and_or(&p->state, OOMK_ST_CONDEMNING) & OOMK_ST_CONDEMNING)
		return;		/* already condemned: the first rule stands */
	p->value = value;
	p->tid = tid;
	__sync_lock_test_and_set(&p->condemned, rule + 1);
	count_rule(&stats.condemned, stats.rule_condemned, rule);
	if (gate_open_for(p->policy))
		return;
	sweep_pending = 1;
	emit(OOMK_EV_CONDEMNED, tgid, tid, rule, value, p->comm, p->policy);
}

/* p is to die now: its verdict (in a) stands, it is not killed yet, and
 * its policy's gate is open. */
static __always_inline bool due(struct oomk_proc *p, struct oomk_proc *a)
{
	return a->condemned && !(p->state & OOMK_ST_KILLED) && gate_open_for(a->policy);
}

/* A condemned process that is still running meets an open gate: current,
 * one of its threads, is in a hook. A condemned tree's other members die
 * at their next hook, or at the sweep, which the loader runs at once when
 * this kill's event reaches it. */
static __always_inline void enforce(struct oomk_proc *p, __u32 tgid, __u32 tid)
{
	struct oomk_proc *a = acct(p);

	if (!due(p, a))
		return;
	kill(p, a, bpf_get_current_task_btf()->group_leader, tgid, tid, true, true);
	if (a != p)
		sweep_pending = 1;
}

static __always_inline void add_and_check(struct oomk_proc *p, __u32 tgid, __u32 tid,
					  __u32 rule, __u64 inc)
{
	__u64 limit, old;

	if (rule >= OOMK_RULE_MAX)
		return;
	p = acct(p);
	limit = limit_of(p->policy, rule);
	/* fetch_add: concurrent threads lose no update and exactly one of
	 * them sees the crossing, with the exact value. */
	old = __sync_fetch_and_add(&p->counters[rule], inc);
	if (old < limit && old + inc >= limit)
		condemn(p, tgid, tid, rule, old + inc);
}

/* A member's fd level n into its tree's total, which comes back: each
 * member adds the change of its own level (an xchg, so concurrent
 * threads' changes add up), and takes its level out when it leaves. */
static __always_inline __u64 tree_level(struct oomk_proc *a, struct oomk_proc *p, __u64 n)
{
	__u64 old = __sync_lock_test_and_set(&p->counters[OOMK_RULE_FDS], n);

	return __sync_add_and_fetch(&a->counters[OOMK_RULE_FDS], n - old);
}

static __always_inline void fds_check(struct oomk_proc *p, struct task_struct *t,
				      __u32 tgid, __u32 tid)
{
	volatile __u64 *level = &p->counters[OOMK_RULE_FDS];
	struct oomk_proc *a = acct(p);
	__u64 n, direct = 0, limit = limit_of(a->policy, OOMK_RULE_FDS);

	if (p->state & OOMK_ST_URING)
		direct = count_direct(t, tgid);
	/* Judge the level read back from the map, not the loop's sum: a sum
	 * compared with the limit (a constant to the verifier: frozen
	 * .rodata) makes the verifier track it precisely through every
	 * bpf_loop iteration, and loading took seconds at --max-fds 1M and
	 * minutes at 2^30. A level another thread stored meanwhile is a real
	 * count of the same table too. A tree's member adds its level to its
	 * tree's, whose total comes back. Each count is made once, here: a
	 * second call of either loop doubled what the verifier walks. */
	n = count_fds(t) + direct;
	if (a != p) {
		n = tree_level(a, p, n);
	} else {
		*level = n;
		n = *level;
	}
	if (n < limit)
		return;
	/* Installed <= reserved: the popcount never hides a crossing. */
	n = count_installed_fds(t) + direct;
	if (a != p) {
		n = tree_level(a, p, n);
	} else {
		*level = n;
		n = *level;
	}
	if (n >= limit)
		condemn(a, tgid, tid, OOMK_RULE_FDS, n);
}

/* After a reload the limits may have dropped below counters that already
 * passed them, and the crossing test (old < limit <= new) would never
 * fire: judge the entry once against the new limits. p: the entry that
 * holds the counts (acct()). */
static __always_inline void rejudge(struct oomk_proc *p, __u32 tgid, __u32 tid)
{
	if (p->generation == cfg.generation)
		return;
	p->generation = cfg.generation;
	for (__u32 r = 0; r < OOMK_RULE_MAX; r++) {
		if (p->counters[r] >= limit_of(p->policy, r)) {
			condemn(p, tgid, tid, r, p->counters[r]);
			break;
		}
	}
}

/* Drop tgid's entry; only the one delete that removes it counts (the
 * twins both try). A tree's member leaves its tree first. */
static __always_inline void untrack(__u32 tgid)
{
	struct oomk_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (p && p->tree)
		tree_leave(p);
	if (!bpf_map_delete_elem(&procs, &tgid))
		__sync_fetch_and_sub(&stats.tracked, 1);
	bpf_map_delete_elem(&urings, &tgid);
}

/* Look up or create the target's entry. A new entry reads the fd level
 * at once, so a target that started before us, or inherited many fds,
 * is judged at its first event. NULL when the map is full. */
/* A new entry for tgid (or the one another thread just made), NULL if
 * procs is full. Not inlined, nor is thr_set(): their initial values stay
 * off the frames of the programs that call them, which a kernel before
 * 6.13 (no private stack) adds to their callbacks' frames against 512
 * bytes; on 6.12 the io_uring_setup syscall programs came to 592. */
static __noinline struct oomk_proc *proc_new(struct task_struct *leader, __u32 tgid,
					     __u32 pol)
{
	struct oomk_proc *p, init = {};

	init.start_time = leader->start_time;
	init.generation = cfg.generation;
	init.policy = pol;
	__builtin_memcpy(init.comm, leader->comm, OOMK_COMM_LEN);
	/* -EEXIST only means another thread of the process got here first. */
	if (!bpf_map_update_elem(&procs, &tgid, &init, BPF_NOEXIST))
		__sync_fetch_and_add(&stats.tracked, 1);
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		/* Full: the target goes untracked; we never guess a kill. */
		__sync_fetch_and_add(&stats.untracked, 1);
	return p;
}

/* pol: the process's policy now. A different one than the entry's (a
 * reload, a rename, a move) judges the counts it has by its limits. */
static __always_inline struct oomk_proc *proc_get(struct task_struct *t, __u32 tgid,
						  __u32 tid, __u32 pol)
{
	struct oomk_proc *p = bpf_map_lookup_elem(&procs, &tgid);

	if (p) {
		if (p->policy != pol) {
			p->policy = pol;
			p->generation = 0;
		}
		if ((cfg.flags & OOMK_CF_TREES) && (p->tree || POL(pol)->tree))
			tree_fix(p, pol);
		rejudge(acct(p), tgid, tid);
		return p;
	}
	p = proc_new(t->group_leader, tgid, pol);
	if (p) {
		if ((cfg.flags & OOMK_CF_TREES) && POL(pol)->tree)
			tree_fix(p, pol);
		fds_check(p, t, tgid, tid);
	}
	return p;
}

/* ---------------------------------------------------------------------
 * Counting writes and reads. The kernel counts each thread's write calls
 * (ioac.syscw) and bytes read (ioac.rchar) itself, exactly, as
 * /proc/PID/io shows them (CONFIG_TASK_XACCT, on in Debian's kernels). A
 * hook run is only a checkpoint: it folds the thread's growth since its
 * last checkpoint into the process's counters. So a run the kernel skips
 * (the recursion guard of a preempted fexit or, on 7.x, tp_btf sys_exit
 * run; a kretprobe whose instance pool is full) delays a check and loses
 * no count; the thread's exit is its last checkpoint.
 *
 * syscw also counts calls that are not writes (README): write calls on
 * sockets, which are the TCP rule's business, and writev-family calls that
 * never reached a write method. Each such call is marked once in `notw`
 * (sock_send(), not_a_write()), and fold() takes them out.
 */
struct oomk_thr {
	__u64 start_time;	/* tells a reused tid apart */
	__u64 notw;		/* syscw bumps that were not writes */
	__u64 notw_mark;	/* the syscw value of the last call counted in notw */
	__u64 seen_w;		/* syscw - notw already folded into the process */
	__u64 seen_r;		/* rchar already folded */
	__u64 tcp_seen[2];	/* TCP segments each sock_send_length twin saw */
	__u64 tcp_folded;	/* the larger of the two, already folded */
	__u64 aio_sum;		/* scratch of an AIO walk (aio_exit()): a sum in a map
				 * value is not tracked through bpf_loop */
	__u32 tgid;
	__u32 _pad;
};

/* LRU: a record whose thread vanished unseen (both exit twins skipped)
 * ages out instead of filling the map, and a full map makes room by
 * dropping the least recently used record, never by refusing a target's
 * thread. An evicted live thread is met again at its next checkpoint and
 * counted from there; what it had not yet folded is the only loss. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);	/* the loader sets 2 x --capacity */
	__type(key, __u32);
	__type(value, struct oomk_thr);
} thrs SEC(".maps");

static __noinline struct oomk_thr *thr_set(struct task_struct *t, __u32 tgid, __u32 tid,
					   __u64 seen_w, __u64 seen_r)
{
	struct oomk_thr init = {
		.start_time = t->start_time, .tgid = tgid,
		.seen_w = seen_w, .seen_r = seen_r,
	};

	if (bpf_map_update_elem(&thrs, &tid, &init, BPF_ANY)) {
		__sync_fetch_and_add(&stats.untracked_threads, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&thrs, &tid);
}

/* The thread's record. At first sight (a thread older than the killer,
 * or a process that became a target by rename) counting starts here, the
 * current call (back_w writes, back_r bytes) included. Threads and
 * processes made while we watch start at zero (on_fork), exec'd images at
 * exec (on_exec). */
static __always_inline struct oomk_thr *thr_get(struct task_struct *t, __u32 tgid, __u32 tid,
						__u64 back_w, __u64 back_r)
{
	struct oomk_thr *th = bpf_map_lookup_elem(&thrs, &tid);
	__u64 w, r;

	if (th && th->tgid == tgid && th->start_time == t->start_time)
		return th;
	w = t->ioac.syscw;
	r = t->ioac.rchar;
	return thr_set(t, tgid, tid, w > back_w ? w - back_w : 0, r > back_r ? r - back_r : 0);
}

/* Fold current's growth into the process. Only the thread itself folds
 * its record, so the compare-and-swap never races in practice; if it
 * ever lost, the growth would simply be folded at the next checkpoint. */
static __always_inline void fold(struct oomk_proc *p, struct oomk_thr *th, struct task_struct *t,
				 __u32 tgid, __u32 tid)
{
	__u64 w = t->ioac.syscw, r = t->ioac.rchar, notw = th->notw, old;

	/* Inside a socket write notw is ahead of syscw by one: no growth. */
	if (w >= notw) {
		w -= notw;
		old = th->seen_w;
		if (w > old && __sync_val_compare_and_swap(&th->seen_w, old, w) == old)
			add_and_check(p, tgid, tid, OOMK_RULE_WRITES, w - old);
	}
	old = th->seen_r;
	if (r > old && __sync_val_compare_and_swap(&th->seen_r, old, r) == old)
		add_and_check(p, tgid, tid, OOMK_RULE_READ_BYTES, r - old);
}

/* A checkpoint of current: its writes, reads and fd level. */
static __always_inline void checkpoint(struct oomk_proc *p, struct task_struct *t, __u32 tgid,
				       __u32 tid, __u64 back_w, __u64 back_r)
{
	struct oomk_thr *th = thr_get(t, tgid, tid, back_w, back_r);

	if (th)
		fold(p, th, t, tgid, tid);
	fds_check(p, t, tgid, tid);
}

/* ---------------------------------------------------------------------
 * rand() in every copy of the C library: which files have the uprobe.
 *
 * The uprobe sits on an inode, and a target can call rand() in any file it
 * maps: the host's libc, one replaced on disk since (a new inode), a
 * container's, musl, a static program. So each file a target maps for
 * execution is looked up by identity in `libs`. One never seen is added
 * PENDING, and the target is stopped (SIGSTOP from BPF, delivered before
 * it runs another instruction) with an entry in `holds`. The loader
 * (libprobes.py) reads the file's symbols, attaches the uprobe where it
 * defines rand(), settles the entry, and resumes the process (SIGCONT,
 * checked against start_boottime). So no call is made before the probe is
 * there. Each file is settled once per killer lifetime: only the first
 * targets to map it are held.
 */
/* LRU: past 4096 files the least recently mapped is forgotten, and held
 * for once more if a target maps it again; its uprobe stays. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct oomk_file_id);
	__type(value, __u32);		/* enum oomk_lib_state */
} libs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);		/* tgid */
	__type(value, struct oomk_hold);
} holds SEC(".maps");

struct oomk_hold *oomk_hold_type_ __attribute__((unused));

/* A file's identity is the inode behind the mapping (vm_file), which is
 * the one a uprobe lands on: for an overlayfs file the real (lower or
 * upper) inode, shared by every container that maps it, where
 * /proc/PID/maps shows the overlay's. The loader never makes keys of its
 * own (libprobes.py): two keys for one inode would mean two uprobes, and
 * every call counted twice. */
static long exec_file_of(struct task_struct *t, struct vm_area_struct *vma, void *ctx)
{
	struct oomk_file_id *id = ctx;
	struct inode *ino;

	if (!(vma->vm_flags & VM_EXEC) || !vma->vm_file)
		return 0;
	ino = vma->vm_file->f_inode;
	id->dev = ino->i_sb->s_dev;
	id->ino = ino->i_ino;
	return 0;
}

/* A target maps the file at addr for execution: make sure it is settled
 * before the target runs on. Only while the rand rule is on. */
static __always_inline void lib_mapped(struct task_struct *t, __u64 addr)
{
	struct oomk_file_id id = {};
	struct oomk_hold h = {};
	__u32 pending = OOMK_LIB_PENDING, *st, tgid;

	if (!rule_on(OOMK_RULE_RAND) || policy_of_current() < 0)
		return;
	if (bpf_find_vma(t, addr, exec_file_of, &id, 0) || !id.ino)
		return;
	st = bpf_map_lookup_elem(&libs, &id);
	if (st && *st != OOMK_LIB_PENDING)
		return;
	if (!st && bpf_map_update_elem(&libs, &id, &pending, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&libs, &id)) {
		__sync_fetch_and_add(&stats.libs_unseen, 1);
		return;
	}
	tgid = t->tgid;
	h.start_boottime = t->group_leader->start_boottime;
	h.file = id;
	h.addr = addr;
	/* Already held: the loader settles every file the process maps
	 * before it resumes it. */
	if (bpf_map_update_elem(&holds, &tgid, &h, BPF_NOEXIST)) {
		if (!bpf_map_lookup_elem(&holds, &tgid))
			__sync_fetch_and_add(&stats.libs_unseen, 1);
		return;
	}
	bpf_send_signal(SIGSTOP);
	__sync_fetch_and_add(&stats.holds, 1);
	emit(OOMK_EV_HOLD, tgid, (__u32)bpf_get_current_pid_tgid(), OOMK_RULE_RAND, 0,
	     t->group_leader->comm, 0);
}

/* At the exit of a K_MAP call of target t: the mapping at mmap's result,
 * or at mprotect's address, may be a file now executable. */
static __always_inline void lib_sys(struct task_struct *t, long ret)
{
	struct pt_regs *regs;
	__u64 nr;

	if (ret < 0 && ret > -4096)
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return;
	nr = regs->orig_ax;
	if (in_compat_syscall(t))
		lib_mapped(t, nr == NR32_mmap || nr == NR32_mmap2 ? (__u32)ret : (__u32)regs->bx);
	else
		lib_mapped(t, nr == __NR_mmap ? ret : regs->di);
}

/* ---------------------------------------------------------------------
 * io_uring reads and writes, counted per request as the synchronous calls
 * are: a write once it reached the file's write method, bytes read as its
 * result says. No tracepoint follows a request's issue, so each request is
 * counted where its result is first there to read:
 *   - at the next io_uring_submit_req of its batch: a request the kernel
 *     finished inline sits last on the ring's deferred completions
 *     (submit_state.compl_reqs) until the batch ends, with its result. So
 *     the 100th write of a batch condemns before the 101st is issued, and
 *     the SIGKILL fails that one (EINTR: a buffered write checks first);
 *   - at io_uring_complete: every request that posts a CQE (io-wq's, a
 *     poll-driven retry, the last of a batch, a failure);
 *   - in the ring's cache of free requests, where a finished request
 *     waits, result and all, until its next use (ur_walk_free): the only
 *     place a request that asked for no CQE (IOSQE_CQE_SKIP_SUCCESS) and
 *     was finished by io-wq (every buffered write to ext4 is) is seen;
 *   - when its address starts a new life unwalked: a write that asked for
 *     no CQE and got none succeeded (a failure posts one), one write.
 * `ur_done` keeps one mark per request address and life, so each life
 * counts once, whichever program sees it first. Each event has twins, a
 * tp_btf and a classic tracepoint program, as exec, exit and sock sends
 * do: a classic run is skipped while its CPU's bpf_prog_active is held,
 * and a bpf(2) map call holds it preemptibly (migrate_disable): a status
 * reader preempted inside one left an io-wq worker's next ~20 CQEs
 * uncounted in the VM lane (6.18.5, 7.3.4), so a 150-write batch died at
 * its ~122nd. A tp_btf run has a guard of its own. Credited to the
 * process whose thread runs the hook: the submitter, its SQPOLL thread or
 * io-wq worker (threads of one process); a kill there kills it. */

#define REQ_F_CQE_SKIP	(1ULL << 6)	/* = IOSQE_CQE_SKIP_SUCCESS_BIT (UAPI) */

/* A mark's state, in the order a life moves through them:
 *   UR_LIVE, UR_LIVE_SKIP_WRITE  begun (submit_req saw it), not counted;
 *   UR_COUNTED                   counted before its CQE (a batch's tail);
 *   UR_ENDED                     its CQE posted (at CQ tail `cq`), counted;
 *   UR_WALKED                    freed, and a walk of the free cache saw it.
 * A life whose submit_req no program ran for starts from its address's
 * last mark: ENDED or WALKED there means that life ended, so the event
 * that finds it (a CQE, a batch's tail) counts the new one. */
enum ur_state { UR_LIVE = 0, UR_LIVE_SKIP_WRITE, UR_COUNTED, UR_ENDED, UR_WALKED };

/* Where ur_count() runs. */
enum ur_at { UR_AT_TAIL, UR_AT_CQE, UR_AT_WALK };

struct ur_mark {
	__u32 state;		/* enum ur_state */
	__u32 tgid;		/* whose request this life is */
	__u64 ring;		/* the life's submission: its ring, and the ring's */
	__u32 head;		/* SQ head after its SQE was taken (the twin's test) */
	__u32 cq;		/* UR_ENDED: the ring's CQ tail at its CQE (the twins' test) */
};

/* LRU: a mark outlives its request (nothing hooks the free) until the
 * address is used again. A COUNTED mark evicted while its request is
 * still in flight would count it twice: that takes 32768 newer requests
 * of targets between a request's finish and its batch's end. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 32768);
	__type(key, __u64);		/* struct io_kiocb * */
	__type(value, struct ur_mark);
} ur_done SEC(".maps");

/* The rule an opcode counts toward (UAPI numbers: enum io_uring_op). */
static __always_inline __u32 ur_rule(__u8 op)
{
	switch (op) {
	case 2: case 5: case 23: case 61:	/* WRITEV, WRITE_FIXED, WRITE, WRITEV_FIXED (6.15) */
		return OOMK_RULE_WRITES;
	case 1: case 4: case 22: case 60:	/* READV, READ_FIXED, READ, READV_FIXED (6.15) */
		return OOMK_RULE_READ_BYTES;
	}
	return OOMK_RULE_MAX;
}

static __always_inline __u64 ur_flags(struct io_kiocb *req)
{
	__u64 flags = 0;

	/* io_req_flags_t grew from 32 to 64 bits (6.10): the low half
	 * holds the bit on either, little-endian. */
	bpf_probe_read_kernel(&flags, 4, (void *)req + bpf_core_field_offset(struct io_kiocb, flags));
	return flags;
}

/* Add inc to current's process under rule, and judge it. Its entry was
 * made by ur_target() at the latest. A global function: the
 * verifier checks it once, not at each of the io_uring programs' many
 * call sites (inlined, on_uring_submit_tp passed the 1M-instruction limit
 * with some --name values). */
__noinline int ur_add(__u32 rule, __u64 inc)
{
	struct oomk_proc *p;
	__u64 id = bpf_get_current_pid_tgid();
	__u32 tgid = id >> 32, tid = (__u32)id;

	if (rule >= OOMK_RULE_MAX)
		return 0;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return 0;
	add_and_check(p, tgid, tid, rule, inc);
	enforce(p, tgid, tid);
	return 0;
}

/* Count req's result, once per life. A write's result says whether it
 * reached the write method: the checks before it fail with EBADF, EFAULT,
 * EINVAL, ESPIPE, EOPNOTSUPP or EOVERFLOW (io_rw_init_file,
 * rw_verify_area), a cancelled link never ran (ECANCELED), and 0 wrote
 * nothing; anything else (bytes, EAGAIN, EINTR, EIO, ENOSPC, EPIPE)
 * counts, as syscw would for write(2). A result that counts nothing still
 * settles the life. `at`: the batch's tail (before its CQE), its CQE, or a
 * walk of the free cache (a finished life, counted only if nothing did). */
static __always_inline void ur_count(struct io_kiocb *req, enum ur_at at)
{
	struct ur_mark init = {}, *m;
	__u64 key = (__u64)req, inc = 0, ring;
	__u32 rule, old, next, cq = 0, tgid;
	__s32 res;

	if (!req)
		return;
	rule = ur_rule(BPF_CORE_READ(req, opcode));
	if (rule >= OOMK_RULE_MAX || !rule_on(rule))
		return;
	res = BPF_CORE_READ(req, cqe.res);
	/* On the deferred list with -EAGAIN: maybe a request to reissue
	 * (REQ_F_REISSUE), which ends again later; its end counts it. */
	if (at == UR_AT_TAIL && res == -EAGAIN)
		return;
	if (rule == OOMK_RULE_READ_BYTES)
		inc = res > 0 ? res : 0;
	else if (res != 0 && res != -EBADF && res != -EFAULT && res != -EINVAL &&
		 res != -ESPIPE && res != -EOPNOTSUPP && res != -EOVERFLOW && res != -ECANCELED)
		inc = 1;
	tgid = bpf_get_current_pid_tgid() >> 32;
	ring = (__u64)BPF_CORE_READ(req, ctx);
	next = UR_COUNTED;
	if (at == UR_AT_CQE) {
		next = UR_ENDED;
		/* Moved once per CQE the ring posts: the same for a CQE's
		 * twins, another at the address's next CQE. */
		cq = BPF_CORE_READ((struct io_ring_ctx *)ring, cached_cq_tail);
	}
	m = bpf_map_lookup_elem(&ur_done, &key);
	if (!m) {
		init.state = next;
		init.tgid = tgid;
		init.ring = ring;
		init.cq = cq;
		if (bpf_map_update_elem(&ur_done, &key, &init, BPF_NOEXIST))
			return;
		goto count;
	}
	old = m->state;
	if (at == UR_AT_WALK && old >= UR_COUNTED)
		return;
	if (at == UR_AT_TAIL && old == UR_COUNTED)
		return;		/* counted at an earlier submit_req, or by its twin */
	if (at == UR_AT_CQE) {
		if (old == UR_ENDED && m->cq == cq && m->ring == ring)
			return;	/* this CQE's twin counted it */
		m->cq = cq;
		if (old == UR_COUNTED) {	/* counted as a batch's tail */
			__sync_val_compare_and_swap(&m->state, old, UR_ENDED);
			return;
		}
	}
	if (old >= UR_ENDED) {		/* a life no submit_req run saw begin */
		m->tgid = tgid;
		m->ring = ring;
	}
	if (__sync_val_compare_and_swap(&m->state, old, next) != old)
		return;
count:
	if (inc)
		ur_add(rule, inc);
}

/* The request the batch finished last: the tail of the ring's deferred
 * completions, while a batch is under way (the list's first set). */
static __always_inline struct io_kiocb *ur_tail(struct io_ring_ctx *ctx)
{
	struct io_wq_work_node *last;

	if (!ctx || !BPF_CORE_READ(ctx, submit_state.compl_reqs.first))
		return NULL;
	last = BPF_CORE_READ(ctx, submit_state.compl_reqs.last);
	if (!last)
		return NULL;
	return (void *)last - bpf_core_field_offset(struct io_kiocb, comp_list);
}

/* The ring's cache of free requests is a stack (submit_state.free_list):
 * a finished request is pushed with its result, and stays so until popped
 * for a new request. A walk from the top counts each request not counted
 * yet (those that posted no CQE) and marks it WALKED, down to the first one
 * an earlier walk marked: only the top ever changes, so what lies below it
 * was walked already. Run in the ring's submitting thread, after the
 * kernel has run its task work (which frees io-wq's requests). */
#define UR_WALK_MAX	1024

/* PREEMPT_RT's struct mutex (CONFIG_PREEMPT_RT: Debian's -rt flavour). */
struct mutex___rt {
	struct rt_mutex_base rtmutex;
} __attribute__((preserve_access_index));

/* The task holding ring ctx's uring_lock, or 0 (flag bits masked:
 * MUTEX_FLAGS 0x07, RT_MUTEX_HAS_WAITERS 1). */
static __always_inline __u64 ur_lock_owner(struct io_ring_ctx *ctx)
{
	struct mutex___rt *rt = (void *)&ctx->uring_lock;

	if (bpf_core_field_exists(ctx->uring_lock.owner))
		return BPF_CORE_READ(ctx, uring_lock.owner.counter) & ~0x07UL;
	return (__u64)BPF_CORE_READ(rt, rtmutex.owner) & ~1UL;
}

struct ur_walk {
	struct io_wq_work_node *node;
	struct io_ring_ctx *ctx;
	__u64 owner;		/* the lock's holder as the walk began: current, or 0 */
};

static long ur_walk_one(__u32 i, struct ur_walk *w)
{
	struct io_wq_work_node *node = w->node;
	struct io_kiocb *req;
	struct ur_mark *m;
	__u32 state;
	__u64 key;

	if (!node)
		return 1;
	req = (void *)node - bpf_core_field_offset(struct io_kiocb, comp_list);
	key = (__u64)req;
	m = bpf_map_lookup_elem(&ur_done, &key);
	if (!m)
		return 1;
	state = m->state;
	/* Unlocked, the list holds still only while nobody holds the lock:
	 * checked again before each count and each step. */
	if (state == UR_WALKED || ur_lock_owner(w->ctx) != w->owner)
		return 1;
	/* A request the kernel took fresh from the slab carries the mark of
	 * its last life, maybe another process's ring: not ours to count. */
	if (state < UR_COUNTED && m->tgid == (__u32)(bpf_get_current_pid_tgid() >> 32))
		ur_count(req, UR_AT_WALK);
	state = m->state;
	if (state != UR_WALKED)
		__sync_val_compare_and_swap(&m->state, state, UR_WALKED);
	w->node = BPF_CORE_READ(node, next);
	return 0;
}

/* Walk the ring's cache of free requests. Only the holder of its
 * uring_lock changes that list (a submission takes requests from it, a
 * flush of completions gives them back), so it is walked only by the
 * holder, or while nobody holds it: an io-wq worker finishing a request
 * while the submitter takes the list's requests for its next ones would
 * read a request in flight as a finished one, and count it before it ran
 * (the VM lane on 7.3.4 saw 22 writes past the 100th so). */
static __always_inline void ur_walk_free(struct io_ring_ctx *ctx)
{
	struct ur_walk w = { .ctx = ctx };

	if (!ctx)
		return;
	w.owner = ur_lock_owner(ctx);
	if (w.owner && w.owner != (__u64)bpf_get_current_task_btf())
		return;
	w.node = BPF_CORE_READ(ctx, submit_state.free_list.next);
	bpf_loop(UR_WALK_MAX, ur_walk_one, &w, 0);
}

/* current's process is a target. Its entry is made here if no hook made
 * it yet: a process whose every syscall exit so far was missed (each of
 * their hooks can be skipped: a kretprobe's pool, on 7.x a tp_btf run's
 * guard, a classic run's bpf_prog_active), or one that became a target
 * with no syscall since (moved into a policy's cgroup) and only feeds an
 * SQPOLL ring. ur_add() dropped such a process's counts until a syscall
 * exit made it (test_moved_into_a_cgroup_policy_a_quiet_sqpoll_ring_...:
 * its 30 writes lived). Made at the programs' top level: inside ur_add()
 * a walk's stack passes 512 bytes. */
static __always_inline bool ur_target(void)
{
	__u64 id;
	__u32 tgid;
	int pol;

	if (!live())
		return false;
	pol = policy_of_current();
	if (pol < 0)
		return false;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	if (!bpf_map_lookup_elem(&procs, &tgid))
		proc_get(bpf_get_current_task_btf(), tgid, (__u32)id, pol);
	return true;
}

/* At the exit of io_uring_setup (the ring's fd is its result) or
 * io_uring_enter (its first argument, unless IORING_ENTER_REGISTERED_RING
 * says it is a registered ring's index) of a target: its rings count from
 * now on. A ring it holds and never names is not seen. */
#define IORING_ENTER_REGISTERED_RING	(1U << 4)

static __always_inline void ring_sys(struct oomk_proc *p, struct task_struct *t, __u32 tgid,
				     long ret)
{
	struct oomk_rings init = { .fd = { -1, -1, -1, -1 } }, *r;
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(t);
	bool compat = in_compat_syscall(t);
	__u64 nr, flags;
	long fd;

	if (!regs)
		return;
	if (!(p->state & OOMK_ST_URING))
		__sync_fetch_and_or(&p->state, OOMK_ST_URING);
	nr = regs->orig_ax;
	if (nr == (compat ? NR32_io_uring_setup : __NR_io_uring_setup)) {
		fd = ret;
	} else {
		flags = compat ? (__u32)regs->si : regs->r10;
		fd = compat ? (int)regs->bx : (int)regs->di;
		if (flags & IORING_ENTER_REGISTERED_RING)
			return;
	}
	if (fd < 0)
		return;
	r = bpf_map_lookup_elem(&urings, &tgid);
	if (!r) {
		bpf_map_update_elem(&urings, &tgid, &init, BPF_NOEXIST);
		r = bpf_map_lookup_elem(&urings, &tgid);
		if (!r)
			return;
	}
	for (int i = 0; i < URING_FDS; i++)
		if (r->fd[i] == fd)
			return;
	for (int i = 0; i < URING_FDS; i++)
		if (r->fd[i] < 0) {
			r->fd[i] = fd;
			return;
		}
	r->fd[fd & (URING_FDS - 1)] = fd;	/* full: one of four makes room */
}

/* At io_uring_enter's exit the ring it named is walked: the batch's last
 * request, if it posted no CQE, is counted only so. A global function,
 * verified once, called from the sys programs that see io_uring_enter
 * (x86-64 calls only). */
__noinline int ur_enter_walk(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct pt_regs *regs;
	struct file *f;
	long fd;

	if (in_compat_syscall(t))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs || regs->orig_ax != __NR_io_uring_enter)
		return 0;
	fd = (int)regs->di;
	if (fd < 0)
		return 0;
	if (regs->r10 & IORING_ENTER_REGISTERED_RING)
		f = fd < URING_REG ? ring_reg_file(t, fd) : NULL;
	else
		f = fd_file(t, fd);
	ur_walk_free((struct io_ring_ctx *)ring_of(f));
	return 0;
}

/* ---------------------------------------------------------------------
 * Linux AIO. io_submit returns how many of its iocbs were submitted, and
 * the kernel submits one (io_submit_one() returns 0) only once it called
 * the file's method: aio_read() and aio_write() fail before the call (fs/
 * aio.c) or return 0 after it. So a write is each of the first `ret` iocbs
 * whose opcode is a write, read from the caller's memory at the exit, as
 * the kernel read it. Bytes read come with the results: each event
 * io_getevents or io_pgetevents returns whose iocb is a read adds its
 * result. Results a program takes from the ring in its own memory, with
 * no syscall, are not seen (OPERATIONS). Counted at the sys programs'
 * exit (on_sys(), K_AIO_*; x86-64 calls: ia32's are not seen) by exactly
 * one program per call, since twin runs would count it twice: the classic
 * twin where it is loaded (OOMK_CF_SYS_TWIN), else tp_btf sys_exit. A
 * global function: the sys programs stay within the verifier's limits. */
#define IOCB_CMD_PREAD		0
#define IOCB_CMD_PWRITE		1
#define IOCB_CMD_PREADV		7
#define IOCB_CMD_PWRITEV	8
#define AIO_MAX			65536	/* fs.aio-max-nr's default: more per call is rare */

struct aio_walk {
	__u64 list;		/* user address: iocb pointers, or io_events */
	__u64 n;
	struct oomk_thr *th;	/* the sum goes to th->aio_sum */
};

static __always_inline __u16 aio_opcode(__u64 cb)
{
	__u16 op = 0xffff;

	if (cb)
		bpf_probe_read_user(&op, sizeof(op), (void *)cb +
				    __builtin_offsetof(struct iocb, aio_lio_opcode));
	return op;
}

static long aio_submitted(__u32 i, struct aio_walk *w)
{
	__u64 cb = 0;
	__u16 op;

	if (i >= w->n)
		return 1;
	bpf_probe_read_user(&cb, sizeof(cb), (void *)(w->list + (__u64)i * sizeof(cb)));
	op = aio_opcode(cb);
	if ((op == IOCB_CMD_PWRITE || op == IOCB_CMD_PWRITEV) && w->th)
		w->th->aio_sum++;
	return 0;
}

static long aio_reaped(__u32 i, struct aio_walk *w)
{
	struct io_event ev = {};
	__u16 op;

	if (i >= w->n)
		return 1;
	if (bpf_probe_read_user(&ev, sizeof(ev), (void *)(w->list + (__u64)i * sizeof(ev))))
		return 0;
	op = aio_opcode(ev.obj);
	if ((op == IOCB_CMD_PREAD || op == IOCB_CMD_PREADV) && ev.res > 0 && w->th)
		w->th->aio_sum += ev.res;
	return 0;
}

__noinline int aio_exit(long ret, __u32 submit)
{
	struct aio_walk w = {};
	struct task_struct *t;
	struct pt_regs *regs;
	struct oomk_proc *p;
	struct oomk_thr *th;
	__u32 rule = submit ? OOMK_RULE_WRITES : OOMK_RULE_READ_BYTES, tgid, tid;
	__u64 id, sum;

	if (ret <= 0 || !rule_on(rule))
		return 0;
	t = bpf_get_current_task_btf();
	if (in_compat_syscall(t))
		return 0;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return 0;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	/* on_sys() made both records (plain lookups: the stack is shared) */
	p = bpf_map_lookup_elem(&procs, &tgid);
	th = bpf_map_lookup_elem(&thrs, &tid);
	if (!p || !th || th->tgid != tgid)
		return 0;
	th->aio_sum = 0;
	w.th = th;
	/* io_submit(ctx, nr, iocbpp); io_[p]getevents(ctx, min_nr, nr, events, ...) */
	w.n = ret < AIO_MAX ? ret : AIO_MAX;
	if (submit) {
		w.list = regs->dx;
		bpf_loop(w.n, aio_submitted, &w, 0);
	} else {
		w.list = regs->r10;
		bpf_loop(w.n, aio_reaped, &w, 0);
	}
	sum = th->aio_sum;
	if (sum)
		add_and_check(p, tgid, tid, rule, sum);
	return 0;
}

/* ---------------------------------------------------------------------
 * Syscall source: one body, three thin variants.
 */
static __always_inline bool fd_is_socket(struct task_struct *t, long fd)
{
	struct file *f = fd_file(t, fd);

	return f && (BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) == S_IFSOCK;
}

/* At the exit of a write-family call: is its syscw bump not a write?
 * Measured on 6.18: writev, pwritev and pwritev2 bump syscw whatever
 * happens (fs/read_write.c, do_writev and do_pwritev), but for a negative
 * position, which fails first; so their EBADF, EFAULT, EINVAL, ESPIPE,
 * EOPNOTSUPP and EOVERFLOW (the checks before the file's write method),
 * and a zero-length call, which never calls it, are taken out. write,
 * pwrite64 and sendfile bump it only once past those checks. On a socket,
 * none is a write: a call that reached sock_sendmsg() was marked in
 * sock_send(), and what never got there wrote nothing: a zero-length writev
 * (above) or an empty sendfile, the one case that needs the fd table.
 * Marked once per call (notw_mark, as sock_send() does), and only while
 * syscw holds a bump not yet taken out or folded, so that a call whose
 * bump is already behind a thread's first-sight baseline takes out nothing
 * (and a read, which bumps nothing, stops there). */
static __always_inline void not_a_write(struct oomk_thr *th, struct task_struct *t, long ret)
{
	__u64 w = t->ioac.syscw, nr;
	struct pt_regs *regs;
	bool compat, vec, notw;
	long pos;

	if (th->notw_mark == w || th->seen_w + th->notw >= w)
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	if (!regs)
		return;
	nr = regs->orig_ax;
	compat = in_compat_syscall(t);
	/* Before Linux 6.3 there is no sock_send_length to mark socket writes
	 * as they happen: any call on a socket fd is marked here, at its exit
	 * (tp_btf sys_exit, which nothing skips on 6.x, is in every family). */
	if (!(cfg.flags & OOMK_CF_SOCK_TP) && syscw_sends(nr, compat) &&
	    fd_is_socket(t, compat ? (int)regs->bx : (int)regs->di)) {
		th->notw_mark = w;
		__sync_fetch_and_add(&th->notw, 1);
		return;
	}
	if (compat) {
		vec = nr == NR32_writev || nr == NR32_pwritev || nr == NR32_pwritev2;
		pos = (long)(((__u64)(__u32)regs->di << 32) | (__u32)regs->si);
		if ((nr == NR32_pwritev && pos < 0) || (nr == NR32_pwritev2 && pos < -1))
			return;		/* EINVAL, no bump */
		if (!vec && nr != NR32_sendfile && nr != NR32_sendfile64)
			return;
	} else {
		vec = nr == __NR_writev || nr == __NR_pwritev || nr == __NR_pwritev2;
		pos = (long)regs->r10;
		if ((nr == __NR_pwritev && pos < 0) || (nr == __NR_pwritev2 && pos < -1))
			return;
		if (!vec && nr != __NR_sendfile)
			return;
	}
	if (vec)
		notw = ret == 0 || ret == -EBADF || ret == -EFAULT || ret == -EINVAL ||
		       ret == -ESPIPE || ret == -EOPNOTSUPP || ret == -EOVERFLOW;
	else
		notw = ret == 0 && fd_is_socket(t, compat ? (int)regs->bx : (int)regs->di);
	if (notw) {
		th->notw_mark = w;
		__sync_fetch_and_add(&th->notw, 1);
	}
}

/* Every counted call is a checkpoint, whatever it returned: a write that
 * reached the write method and failed (EAGAIN, EPIPE) moved syscw, and
 * the 100th kills. In the tracepoint family every syscall exit of a target
 * comes here (K_NONE too), so the fd level is checked however a descriptor
 * was made (an ioctl, landlock, a new syscall). */
static __always_inline int on_sys(__u32 kind, long ret, bool twin)
{
	struct task_struct *t;
	struct oomk_proc *p;
	struct oomk_thr *th;
	__u64 id;
	__u32 tgid, tid;
	int pol;

	t = bpf_get_current_task_btf();
	pol = policy_of_current();
	if (pol < 0)
		return 0;
	if (kind == K_MAP)
		lib_sys(t, ret);
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	p = proc_get(t, tgid, tid, pol);
	if (!p)
		return 0;
	if (kind == K_URING) {
		ring_sys(p, t, tgid, ret);
		ur_enter_walk();
	}
	/* At a thread's first sight, count the call that brought us here if it
	 * succeeded (a failed one may not have moved the counters). */
	/* K_NONE and K_MAP move neither syscw nor rchar (K_AIO_* neither: the
	 * record is aio_exit()'s scratch) */
	if (kind != K_NONE && kind != K_MAP) {
		th = thr_get(t, tgid, tid, kind == K_WRITE && ret >= 0,
			     kind == K_READ && ret > 0 ? ret : 0);
		if (th) {
			if (kind == K_WRITE || kind == K_READ)	/* K_READ: sendfile */
				not_a_write(th, t, ret);
			fold(p, th, t, tgid, tid);
		}
	}
	if ((kind == K_AIO_SUBMIT || kind == K_AIO_REAP) &&
	    (twin || !(cfg.flags & OOMK_CF_SYS_TWIN)))
		aio_exit(ret, kind == K_AIO_SUBMIT);
	fds_check(p, t, tgid, tid);
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
	stats.gate_open = gate_open();
}

static __always_inline void mem_sample_user(struct sysinfo *uinfo)
{
	struct sysinfo si;

	if (bpf_probe_read_user(&si, sizeof(si), uinfo))
		return;
	mem_sample(si.totalram, si.freeram, si.mem_unit);
}

static __always_inline __u32 sys_kind(__u64 nr)
{
	if (nr >= SYS_NR_MAX)
		return K_NONE;
	/* An ia32 call (int $0x80, even from a 64-bit process) has i386's
	 * numbers: i386 20 is getpid, x86-64 20 writev. */
	if (in_compat_syscall(bpf_get_current_task_btf()))
		return sys_class32[nr];
	return sys_class[nr];
}

/* tracepoint family: sys_exit serves syscalls and, at the loader's own
 * sysinfo() return, memory. One program on sys_exit costs less per
 * syscall than an enter/exit pair or per-syscall tracepoints. The other
 * families load it too, beside their own sys programs (OOMK_CF_SYS_TP): a
 * kretprobe is skipped while a preempted bpf(2) map call holds its CPU's
 * bpf_prog_active, a fexit while a preempted run of it holds its guard, and
 * before 7.0 nothing skips a tp_btf run. Since 7.0 it is hooked twice, as
 * the other unskippable hooks are (see "Hooks that must never be skipped"
 * below): the tp_btf run is preemptible there and skipped while another
 * run of it is preempted on that CPU, and a burst of processes on 2 CPUs
 * could make every call after its 100th inside that window. The checkpoint
 * is idempotent (fold() moves marks by cmpxchg, not_a_write() marks a call
 * once), so the second run finds it done. */
SEC("tp_btf/sys_exit")
int BPF_PROG(tp_sys_exit, struct pt_regs *regs, long ret)
{
	__u32 kind = sys_kind(regs->orig_ax);

	if (!live())
		return 0;
	if (kind == K_SYSINFO) {
		if ((cfg.flags & OOMK_CF_MEM_TP) && ret == 0 &&
		    (bpf_get_current_pid_tgid() >> 32) == cfg.loader_tgid)
			mem_sample_user((struct sysinfo *)regs->di);
		return 0;
	}
	if (!(cfg.flags & OOMK_CF_SYS_TP))
		return 0;
	return on_sys(kind, ret, false);
}

/* Loaded only as the sys source's twin where tp_btf/sys_exit is preemptible
 * (7.0+), in every family (families.TP_SYS_EXIT_TWIN). */
SEC("tracepoint/raw_syscalls/sys_exit")
int tp_sys_exit_tp(struct trace_event_raw_sys_exit *ctx)
{
	__u32 kind = sys_kind(ctx->id);

	if (!live() || kind == K_SYSINFO)
		return 0;
	return on_sys(kind, ctx->ret, true);
}

/* fentry family: fexit on each syscall's x64 entry point. */
#define SYS_FEXIT(name, kind)					\
SEC("fexit/__x64_sys_" #name)						\
int BPF_PROG(fx_sys_##name, const struct pt_regs *regs, long ret)	\
{									\
	return live() ? on_sys(kind, ret, false) : 0;				\
}
FOR_EACH_SYSCALL(SYS_FEXIT)

/* x86-64's sendfile (40) is sys_sendfile64 (syscall_64.tbl). */
SEC("fexit/__x64_sys_sendfile64")
int BPF_PROG(fx_sys_sendfile64, const struct pt_regs *regs, long ret)
{
	return live() ? on_sys(K_READ, ret, false) : 0;
}

#define SYS_FEXIT32(sym, kind)						\
SEC("fexit/__ia32_" #sym)						\
int BPF_PROG(fx_sys_i32_##sym, const struct pt_regs *regs, long ret)	\
{									\
	return live() ? on_sys(kind, ret, false) : 0;				\
}
FOR_EACH_IA32_ENTRY(SYS_FEXIT32)

/* kprobe family: kretprobe on the same entry points. */
#define SYS_KRETPROBE(name, kind)					\
SEC("kretprobe/__x64_sys_" #name)					\
int BPF_KRETPROBE(kp_sys_##name, long ret)				\
{									\
	return live() ? on_sys(kind, ret, false) : 0;				\
}
FOR_EACH_SYSCALL(SYS_KRETPROBE)

SEC("kretprobe/__x64_sys_sendfile64")
int BPF_KRETPROBE(kp_sys_sendfile64, long ret)
{
	return live() ? on_sys(K_READ, ret, false) : 0;
}

#define SYS_KRETPROBE32(sym, kind)					\
SEC("kretprobe/__ia32_" #sym)						\
int BPF_KRETPROBE(kp_sys_i32_##sym, long ret)				\
{									\
	return live() ? on_sys(kind, ret, false) : 0;				\
}
FOR_EACH_IA32_ENTRY(SYS_KRETPROBE32)

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

	/* Only the loader's samples feed the gate: stash nothing for others. */
	if (!live() || (id >> 32) != cfg.loader_tgid)
		return 0;
	bpf_map_update_elem(&kp_args, &id, &ptr, BPF_ANY);
	return 0;
}

SEC("kretprobe/si_meminfo")
int BPF_KRETPROBE(kp_mem_si_meminfo_exit)
{
	__u64 id = bpf_get_current_pid_tgid(), *ptr;
	struct sysinfo si;

	if (!live() || (id >> 32) != cfg.loader_tgid)
		return 0;
	ptr = bpf_map_lookup_elem(&kp_args, &id);
	if (!ptr)
		return 0;
	if (!bpf_probe_read_kernel(&si, sizeof(si), (void *)*ptr))
		mem_sample(si.totalram, si.freeram, si.mem_unit);
	bpf_map_delete_elem(&kp_args, &id);
	return 0;
}

/* ---------------------------------------------------------------------
 * Hooks that must never be skipped: a thread's birth, exec and last
 * checkpoint at its exit, and sends on sockets. On 6.x a tracepoint runs
 * with preemption off and its tp_btf program is skipped only if it nests
 * in itself. Since 7.0 (SRCU-fast tracepoints) a tp_btf program is
 * preemptible, and is skipped while another run of it is preempted on the
 * same CPU (its recursion guard). A classic tracepoint program still runs
 * with preemption off (perf's trace glue), and is skipped only while
 * bpf_prog_active is held on that CPU: a kprobe-type program runs, or a
 * task is preempted inside a bpf(2) map syscall.
 *
 * So each of these hooks is attached twice, as tp_btf (`on_X`) and as a
 * classic tracepoint (`on_X_tp`): the two are skipped for unrelated
 * reasons, and a count is lost only if both are skipped for the same
 * event. Both run one after the other in the thread the event belongs to,
 * and whatever they do is idempotent, so the second finds its work done.
 */

/* The TCP socket whose MSS sizes a send on sk, or NULL: sk is no stream
 * socket of TCP or MPTCP. An MPTCP socket (Linux 5.6) sends every byte as
 * TCP segments of its subflows, through no sock_sendmsg() of theirs: its
 * sends are counted here, against the MSS of its first subflow (still
 * there after a fallback to plain TCP), or of the first on its list once
 * that one has closed. */
static __always_inline struct tcp_sock *tcp_of(struct sock *sk)
{
	struct mptcp_subflow_context *sub;
	struct list_head *node;
	struct sock *ssk;
	__u16 proto = BPF_CORE_READ(sk, sk_protocol);

	if (BPF_CORE_READ(sk, sk_type) != SOCK_STREAM)
		return NULL;
	if (proto == IPPROTO_TCP)
		return (struct tcp_sock *)sk;
	if (proto != IPPROTO_MPTCP || !bpf_core_type_exists(struct mptcp_sock))
		return NULL;
	ssk = BPF_CORE_READ((struct mptcp_sock *)sk, first);
	if (!ssk) {
		node = BPF_CORE_READ((struct mptcp_sock *)sk, conn_list.next);
		if (!node || node == (void *)sk + bpf_core_field_offset(struct mptcp_sock, conn_list))
			return NULL;
		sub = (void *)node - bpf_core_field_offset(struct mptcp_subflow_context, node);
		ssk = BPF_CORE_READ(sub, tcp_sock);
	}
	return (struct tcp_sock *)ssk;
}

/* Sockets: every sock_sendmsg(), whatever the call (Linux 6.3, commit
 * 6e6eda44b939). The TCP source in every family, and what fold() takes
 * out of syscw. TCP: data segments handed to the kernel, ceil(bytes /
 * MSS) per successful send, so Nagle, autocorking and GSO merging don't
 * hide them. Each twin adds what it sees to its own per-thread total and
 * the process gets the larger: never a segment counted twice. */
static __always_inline void sock_send(struct sock *sk, int ret, int twin)
{
	struct task_struct *t;
	struct oomk_proc *p;
	struct oomk_thr *th;
	struct pt_regs *regs;
	struct tcp_sock *tcp;
	__u64 id, segs, mark, seen, old;
	__u32 mss, tgid, tid;
	int pol;

	if (!live())
		return;
	t = bpf_get_current_task_btf();
	pol = policy_of_current();
	if (pol < 0)
		return;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	p = proc_get(t, tgid, tid, pol);
	if (!p)
		return;
	th = thr_get(t, tgid, tid, 0, 0);
	if (!th)
		return;
	/* syscw grows at the end of the call, so during it syscw + 1 names
	 * the call: a sendfile that sends many times is taken out once, and
	 * the twin finds it marked. */
	regs = (struct pt_regs *)bpf_task_pt_regs(t);
	mark = t->ioac.syscw + 1;
	if (regs && th->notw_mark != mark && syscw_sends(regs->orig_ax, in_compat_syscall(t))) {
		th->notw_mark = mark;
		__sync_fetch_and_add(&th->notw, 1);
	}
	if (ret > 0 && (tcp = tcp_of(sk))) {
		mss = BPF_CORE_READ(tcp, mss_cache);
		segs = mss ? ((__u64)ret + mss - 1) / mss : 1;
		seen = __sync_add_and_fetch(&th->tcp_seen[twin & 1], segs);
		old = th->tcp_folded;
		if (seen > old && __sync_val_compare_and_swap(&th->tcp_folded, old, seen) == old)
			add_and_check(p, tgid, tid, OOMK_RULE_TCP_PACKETS, seen - old);
	}
	fold(p, th, t, tgid, tid);
	enforce(p, tgid, tid);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(on_sock_send, struct sock *sk, int ret, int flags)
{
	sock_send(sk, ret, 0);
	return 0;
}

SEC("tracepoint/sock/sock_send_length")
int on_sock_send_tp(struct trace_event_raw_sock_msg_length *ctx)
{
	sock_send((struct sock *)BPF_CORE_READ(ctx, sk), BPF_CORE_READ(ctx, ret), 1);
	return 0;
}

/* A new request enters its ring at address req: the life that address had
 * ended (a write that asked for no CQE and got none counts now, for the
 * process it belonged to), a new one begins, and the request the batch
 * finished last is counted. The second twin finds the life begun: same
 * ring, same SQ head (io_get_sqe moved it past this SQE; it moves once
 * per SQE, so the pair names one submission). */
static __always_inline void ur_submit(struct io_kiocb *req)
{
	struct ur_mark mark = {}, *m;
	struct io_ring_ctx *ring;
	__u64 key = (__u64)req;
	__u32 rule;

	if (!ur_target() || !req)
		return;
	ring = BPF_CORE_READ(req, ctx);
	mark.tgid = bpf_get_current_pid_tgid() >> 32;
	mark.ring = (__u64)ring;
	mark.head = BPF_CORE_READ(ring, cached_sq_head);
	m = bpf_map_lookup_elem(&ur_done, &key);
	if (m && m->ring == mark.ring && m->head == mark.head && m->tgid == mark.tgid)
		goto begun;
	if (m && m->state == UR_LIVE_SKIP_WRITE && m->tgid == mark.tgid &&
	    __sync_val_compare_and_swap(&m->state, UR_LIVE_SKIP_WRITE, UR_COUNTED) ==
		    UR_LIVE_SKIP_WRITE)
		ur_add(OOMK_RULE_WRITES, 1);
	rule = ur_rule(BPF_CORE_READ(req, opcode));
	if (rule == OOMK_RULE_WRITES && (ur_flags(req) & REQ_F_CQE_SKIP))
		mark.state = UR_LIVE_SKIP_WRITE;
	/* In place: an update would free the old element at once (LRU), and a
	 * walker still holding it would write its WALKED into whatever mark
	 * reused it. */
	if (m) {
		m->tgid = mark.tgid;
		m->ring = mark.ring;
		m->head = mark.head;
		__sync_lock_test_and_set(&m->state, mark.state);
	} else {
		bpf_map_update_elem(&ur_done, &key, &mark, BPF_NOEXIST);
	}
begun:
	ur_count(ur_tail(ring), UR_AT_TAIL);
	ur_walk_free(ring);
}

SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(on_uring_submit, struct io_kiocb *req)
{
	ur_submit(req);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_submit_req")
int on_uring_submit_tp(struct trace_event_raw_io_uring_submit_req *ctx)
{
	ur_submit((struct io_kiocb *)BPF_CORE_READ(ctx, req));
	return 0;
}

/* Before Linux 6.3 the same event was io_uring_submit_sqe, with req at the
 * same place; the loader keeps the pair the kernel has. */
SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(on_uring_submit_sqe, struct io_kiocb *req)
{
	ur_submit(req);
	return 0;
}

struct trace_event_raw_io_uring_submit_sqe___old {
	struct trace_entry ent;
	void *ctx;
	void *req;
} __attribute__((preserve_access_index));

SEC("tracepoint/io_uring/io_uring_submit_sqe")
int on_uring_submit_sqe_tp(struct trace_event_raw_io_uring_submit_sqe___old *ctx)
{
	ur_submit((struct io_kiocb *)BPF_CORE_READ(ctx, req));
	return 0;
}

/* The task ran its io_uring task work, which frees the requests io-wq
 * finished: often after io_uring_enter has returned, on the way back to
 * user space. So the ring it last submitted to is walked here too (a
 * DEFER_TASKRUN ring's local work names its ring). */
static __always_inline void ur_task_work(struct io_uring_task *tctx)
{
	if (ur_target() && tctx)
		ur_walk_free((struct io_ring_ctx *)BPF_CORE_READ(tctx, last));
}

SEC("tp_btf/io_uring_task_work_run")
int BPF_PROG(on_uring_tw, void *tctx)
{
	ur_task_work(tctx);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_task_work_run")
int on_uring_tw_tp(struct trace_event_raw_io_uring_task_work_run *ctx)
{
	ur_task_work((struct io_uring_task *)BPF_CORE_READ(ctx, tctx));
	return 0;
}

static __always_inline void ur_local_work(struct io_ring_ctx *ring)
{
	if (ur_target())
		ur_walk_free(ring);
}

SEC("tp_btf/io_uring_local_work_run")
int BPF_PROG(on_uring_local_tw, void *ring)
{
	ur_local_work(ring);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_local_work_run")
int on_uring_local_tw_tp(struct trace_event_raw_io_uring_local_work_run *ctx)
{
	ur_local_work((struct io_ring_ctx *)BPF_CORE_READ(ctx, ctx));
	return 0;
}

/* A completion: its request counted (a CQE of no request, a multishot's
 * or a message's, carries none), and for a target that uses rings a
 * checkpoint of the fds level, in whatever thread posts it (an io-wq
 * worker, the SQPOLL thread: threads of the process sharing its fd table).
 * So a target that fills a direct table through SQPOLL, making no
 * syscall, is still judged. */
static __always_inline void ur_complete(struct io_ring_ctx *ring, struct io_kiocb *req)
{
	struct task_struct *t;
	struct oomk_proc *p;
	__u64 id;
	__u32 tgid;

	if (!ur_target())
		return;
	ur_count(req, UR_AT_CQE);
	ur_walk_free(ring);
	t = bpf_get_current_task_btf();
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p || !(p->state & OOMK_ST_URING))
		return;
	fds_check(p, t, tgid, (__u32)id);
	enforce(p, tgid, (__u32)id);
}

/* Its first two arguments are these on every kernel since 5.x; what
 * follows them (the CQE's fields, or a pointer to the CQE) is not read. */
SEC("tp_btf/io_uring_complete")
int BPF_PROG(on_uring_complete, struct io_ring_ctx *ring, struct io_kiocb *req)
{
	ur_complete(ring, req);
	return 0;
}

SEC("tracepoint/io_uring/io_uring_complete")
int on_uring_complete_tp(struct trace_event_raw_io_uring_complete *ctx)
{
	ur_complete((struct io_ring_ctx *)BPF_CORE_READ(ctx, ctx),
		    (struct io_kiocb *)BPF_CORE_READ(ctx, req));
	return 0;
}

/* Counters belong to the process image: exec starts them again, from the
 * exec'ing thread's counters now (it may be an old non-leader thread that
 * took over the leader's pid). A condemned process stays condemned (exec
 * is no way out). */
static __always_inline void exec_checkpoint(struct task_struct *p, __u32 old_pid)
{
	struct oomk_sel *sel;
	__u32 tgid = p->tgid;
	int pol;
	struct pt_regs *regs;
	struct oomk_proc *e;

	if (!live())
		return;
	/* A non-leader thread exec'd: it goes on as the leader (tid = tgid),
	 * and its old tid is gone without an exit. */
	if (old_pid != tgid)
		bpf_map_delete_elem(&thrs, &old_pid);
	/* A new image: its policy is chosen again (p leads its group now). */
	sel = bpf_task_storage_get(&sels, p, 0, 0);
	if (sel)
		sel->valid = 0;
	pol = policy_of_current();
	if (pol >= 0) {
		thr_set(p, tgid, tgid, p->ioac.syscw, p->ioac.rchar);
		/* The first user instruction: a static program's own text, or
		 * its interpreter's (ld.so; musl's is its libc). */
		regs = (struct pt_regs *)bpf_task_pt_regs(p);
		if (regs)
			lib_mapped(p, regs->ip);
	}
	else if (bpf_map_lookup_elem(&thrs, &tgid))
		bpf_map_delete_elem(&thrs, &tgid);
	e = bpf_map_lookup_elem(&procs, &tgid);
	if (!e)
		return;
	/* A tree's member stays one, its counts in the tree's entry. */
	if (e->tree && pol >= 0) {
		__builtin_memcpy(e->comm, p->comm, OOMK_COMM_LEN);
		e->policy = pol;
		enforce(e, tgid, (__u32)bpf_get_current_pid_tgid());
		return;
	}
	if (!e->condemned) {
		untrack(tgid);
		return;
	}
	for (int i = 0; i < OOMK_RULE_MAX; i++)
		e->counters[i] = 0;
	__builtin_memcpy(e->comm, p->comm, OOMK_COMM_LEN);
	if (pol < 0)
		return;		/* exec'd out of every policy: no kill */
	e->policy = pol;
	enforce(e, tgid, (__u32)bpf_get_current_pid_tgid());
}

SEC("tp_btf/sched_process_exec")
int BPF_PROG(on_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	exec_checkpoint(p, old_pid);
	return 0;
}

SEC("tracepoint/sched/sched_process_exec")
int on_exec_tp(struct trace_event_raw_sched_process_exec *ctx)
{
	exec_checkpoint(bpf_get_current_task_btf(), ctx->old_pid);
	return 0;
}

/* A thread's last checkpoint: while other threads of the process live,
 * what it did counts, and the kill goes to the process (current is
 * exiting: bpf_send_signal would refuse). The records go with it, so a
 * reused PID inherits nothing, and the twin finds nothing left to do. */
static __always_inline void exit_checkpoint(struct task_struct *t)
{
	__u32 tgid = t->tgid, tid = t->pid;
	bool group_dead = t->signal->live.counter == 0;
	struct oomk_proc *p, *a;
	struct oomk_thr *th;

	if (!live())
		return;
	th = bpf_map_lookup_elem(&thrs, &tid);
	if (th) {
		if (!group_dead && th->tgid == tgid && th->start_time == t->start_time &&
		    policy_of_current() >= 0 && (p = bpf_map_lookup_elem(&procs, &tgid))) {
			fold(p, th, t, tgid, tid);
			fds_check(p, t, tgid, tid);
			a = acct(p);
			if (due(p, a))
				kill_tgid(p, a, tgid, true);
		}
		bpf_map_delete_elem(&thrs, &tid);
	}
	if (group_dead && bpf_map_lookup_elem(&procs, &tgid))
		untrack(tgid);
}

SEC("tp_btf/sched_process_exit")
int BPF_PROG(on_exit, struct task_struct *t)
{
	exit_checkpoint(t);
	return 0;
}

SEC("tracepoint/sched/sched_process_exit")
int on_exit_tp(void *ctx)
{
	exit_checkpoint(bpf_get_current_task_btf());
	return 0;
}

/* Runs in the creator's context after the clone succeeded, before the
 * child first runs. The child's ioac starts at zero, and so does its
 * record. Threads created over the process's life count (cumulative);
 * io_uring's workers are the kernel's threads, not the program's, and
 * don't count. A child is counted by whichever twin makes its record: the
 * other finds it made. No record (thrs full), no count: never twice. */
static __always_inline void fork_checkpoint(struct task_struct *child)
{
	struct task_struct *t;
	struct oomk_proc *p;
	struct oomk_thr *th;
	__u32 tgid, tid, ctid = child->pid;
	__u64 id;
	int pol;

	if ((child->flags & PF_IO_WORKER) || !live())
		return;
	t = bpf_get_current_task_btf();
	pol = policy_of_current();
	if (pol < 0)
		return;
	th = bpf_map_lookup_elem(&thrs, &ctid);
	if (th && th->tgid == child->tgid && th->start_time == child->start_time)
		return;		/* the twin saw this birth */
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	p = proc_get(t, tgid, tid, pol);
	/* A new process of a tree is its member from birth. */
	if ((cfg.flags & OOMK_CF_TREES) && p && p->tree && child->tgid != tgid)
		tree_adopt(p, child, pol);
	if (!thr_set(child, child->tgid, ctid, 0, 0) || !p)
		return;
	if (child->tgid == tgid)
		add_and_check(p, tgid, tid, OOMK_RULE_THREADS, 1);
	checkpoint(p, t, tgid, tid, 0, 0);
	enforce(p, tgid, tid);
}

SEC("tp_btf/sched_process_fork")
int BPF_PROG(on_fork, struct task_struct *parent, struct task_struct *child)
{
	fork_checkpoint(child);
	return 0;
}

SEC("tracepoint/sched/sched_process_fork")
int on_fork_tp(struct trace_event_raw_sched_process_fork *ctx)
{
	struct task_struct *child;

	/* 6.1: no task kfuncs, and the loader leaves this twin out. */
	if (!(cfg.flags & OOMK_CF_TASK_KFUNCS))
		return 0;
	child = bpf_task_from_pid(BPF_CORE_READ(ctx, child_pid));
	if (child) {
		fork_checkpoint(child);
		bpf_task_release(child);
	}
	return 0;
}

/* ---------------------------------------------------------------------
 * A process moved to another cgroup (cgroup.procs): its policy is chosen
 * again at its next call. The event comes after the move, once per
 * process, with its leader (cgroup_attach_task()). Not behind live():
 * each generation's choices are in its own sels.
 */
SEC("tp_btf/cgroup_attach_task")
int BPF_PROG(on_cgroup_attach, struct cgroup *dst, const char *path, struct task_struct *task,
	     bool threadgroup)
{
	struct oomk_sel *s;

	if (!(cfg.sel_any & OOMK_SEL_CGROUP))
		return 0;
	s = bpf_task_storage_get(&sels, task->group_leader, 0, 0);
	if (s)
		__sync_fetch_and_add(&s->moves, 1);
	return 0;
}

/* ---------------------------------------------------------------------
 * Cgroups made after the loader looked up the policies' cgroup paths: the
 * unit of a `unit =` policy started after the killer. Its id is recorded
 * here, when it is made, before any process can be in it. Not behind
 * live(): each generation records into its own pol_cgid, and the next one
 * needs it before it goes live.
 */
struct mkdir_walk {
	char path[OOMK_PATH_MAX];	/* NUL padded, as cfg's cg_path */
	__u64 id;
};

static long mkdir_one(__u32 i, struct mkdir_walk *w)
{
	const volatile struct oomk_policy *pol;
	__u32 j;

	if (i >= OOMK_POLICY_MAX)
		return 1;
	pol = POL(i);
	if (!(pol->sel & OOMK_SEL_CGROUP))
		return 0;
	for (j = 0; j < OOMK_PATH_MAX / 8; j++)
		if (((const volatile __u64 *)pol->cg_path)[j] != ((__u64 *)w->path)[j])
			return 0;
	bpf_map_update_elem(&pol_cgid, &i, &w->id, BPF_ANY);
	return 0;
}

SEC("tp_btf/cgroup_mkdir")
int BPF_PROG(on_cgroup_mkdir, struct cgroup *cgrp, const char *path)
{
	struct mkdir_walk w = {};

	/* The v2 hierarchy's root is hierarchy 0; v1's mkdirs don't matter. */
	if (!(cfg.sel_any & OOMK_SEL_CGROUP) || BPF_CORE_READ(cgrp, root, hierarchy_id))
		return 0;
	if (bpf_probe_read_kernel_str(w.path, sizeof(w.path), path) <= 0)
		return 0;
	w.id = BPF_CORE_READ(cgrp, kn, id);
	bpf_loop(cfg.npol < OOMK_POLICY_MAX ? cfg.npol : OOMK_POLICY_MAX, mkdir_one, &w, 0);
	return 0;
}

/* ---------------------------------------------------------------------
 * rand(): a uprobe, which has no recursion guard.
 */
static __always_inline void rand_called(void)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct oomk_proc *p;
	__u64 id;
	__u32 tgid, tid;
	int pol;

	if (!live())
		return;
	/* Not policy_of_current(): on_rand_call() runs this with preemption
	 * off, and the verifier may refuse a global function call
	 * there ("global function calls are not allowed with preemption
	 * disabled" on 6.12; 6.18 allows it). */
	pol = policy_of_leader(t->group_leader);
	if (pol < 0)
		return;
	id = bpf_get_current_pid_tgid();
	tgid = id >> 32;
	tid = (__u32)id;
	p = proc_get(t, tgid, tid, pol);
	if (!p)
		return;
	add_and_check(p, tgid, tid, OOMK_RULE_RAND, 1);
	checkpoint(p, t, tgid, tid, 0, 0);
	enforce(p, tgid, tid);
}

/* With preemption off from the first insn to the last. Since 6.13 the x86
 * JIT runs a kprobe-type program that uses 64 bytes of stack or more on a
 * per-CPU private stack (the kernel's bpf_enable_priv_stack()), and a
 * uprobe's program runs preemptible with no recursion guard: two targets
 * calling rand() on one CPU, one preempted mid-run, shared that stack. In
 * the VM lane's rand bursts (6.18.5 and 7.3.4, lazy preemption) a spilled
 * map value pointer was overwritten: kill events with a garbage rule, then
 * an oops writing the fd level to address 1. kretprobes run with
 * preemption off, and fexit and tp_btf programs behind their recursion
 * guard, so only the uprobes need this. */
static __always_inline int on_rand_call(void)
{
	/* Before 6.10 there are no such kfuncs, and no private stack (6.13). */
	if (cfg.flags & OOMK_CF_PREEMPT)
		bpf_preempt_disable();
	rand_called();
	if (cfg.flags & OOMK_CF_PREEMPT)
		bpf_preempt_enable();
	return 0;
}

/* Attached by the loader (libprobes.py) to every file that defines rand()
 * a target maps: no section path, nothing for libbpf to auto-attach. */
SEC("uprobe")
int BPF_KPROBE(on_rand)
{
	return on_rand_call();
}

/* ---------------------------------------------------------------------
 * The deferred path: kill every condemned target still alive once a
 * sample finds the gate open. Runs from the loader (BPF_PROG_RUN of a
 * syscall program) right after its sysinfo(), in every family: kprobe
 * programs can't call these kfuncs on every kernel, syscall programs can.
 * Before Linux 6.13 (no bpf_send_signal_task) the sweep only lists the
 * tgids due, in its context, and the loader hands each back to hand_over.
 */
/* The list sweep builds before 6.13, in .bss, not on its stack: a count
 * on the stack that grows with each callback never lets the verifier's
 * states converge, and the sweep did not load (E2BIG). Only the loader
 * runs sweep, one run at a time. */
struct oomk_due due_list;

static long sweep_one(struct bpf_map *map, __u32 *key, struct oomk_proc *p, void *ctx)
{
	struct oomk_proc *a;
	__u32 n, tgid = *key;

	/* A tree's entry is no process: its members die. */
	if (tgid & TREE_KEY)
		return 0;
	a = acct(p);
	if (!a->condemned || (p->state & OOMK_ST_KILLED))
		return 0;
	if (a != p && !tree_live(a))
		return 0;
	/* Behind a gate still closed (another policy's opened this sweep):
	 * the next sweep looks again. */
	if (!gate_open_for(a->policy)) {
		sweep_pending = 1;
		return 0;
	}
	if (cfg.flags & OOMK_CF_SIGNAL_TASK) {
		kill_tgid(p, a, tgid, false);
		return 0;
	}
	n = due_list.n;
	if (n >= OOMK_DUE_MAX) {
		due_list.more = 1;
		return 1;
	}
	due_list.tgids[n] = tgid;
	due_list.n = n + 1;
	return 0;
}

SEC("syscall")
int sweep(struct oomk_due *ctx)
{
	if (!live() || !sweep_pending || !gate_open())
		return 0;
	/* Clear first: a condemnation during the walk sets it again. */
	sweep_pending = 0;
	__sync_fetch_and_add(&stats.sweeps, 1);
	if (!(cfg.flags & OOMK_CF_SIGNAL_TASK))
		__builtin_memset(&due_list, 0, sizeof(due_list));
	bpf_for_each_map_elem(&procs, sweep_one, NULL, 0);
	if (cfg.flags & OOMK_CF_SIGNAL_TASK)
		return 0;
	if (due_list.more)
		sweep_pending = 1;
	__builtin_memcpy(ctx, &due_list, sizeof(due_list));
	return 0;
}

#define SIGNAL_GROUP_EXIT	0x00000004	/* include/linux/sched/signal.h */

/* Before Linux 6.13: a task iterator on one tgid the sweep listed, read by
 * the loader after it opened a pidfd on that tgid. The same checks as
 * kill(), then the claim; the record it writes is the loader's order to
 * send SIGKILL through the pidfd. The pidfd was opened first, and the
 * process checked here (its leader's start_time) was alive before that
 * and is alive now, so it is the process the pidfd names: a reused PID is
 * never signalled. */
SEC("iter/task")
int hand_over(struct bpf_iter__task *ctx)
{
	struct task_struct *t = ctx->task, *leader;
	struct oomk_handover h = {};
	struct oomk_proc *p, *a;
	__u32 tgid;
	int pol;

	if (!t || !live())
		return 0;
	leader = t->group_leader;
	tgid = t->tgid;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p)
		return 0;
	a = acct(p);
	if (!due(p, a) || a->condemned - 1 >= OOMK_RULE_MAX ||
	    leader->tgid != tgid || leader->start_time != p->start_time ||
	    (BPF_CORE_READ(t, signal, flags) & SIGNAL_GROUP_EXIT))
		return 0;
	if (a == p) {
		pol = policy_of_leader(leader);
		if (pol < 0)
			return 0;
		if (p->policy != pol)
			p->policy = pol;
	} else if (!tree_live(a)) {
		return 0;
	}
	pol = a->policy;
	if (!gate_open_for(pol))
		return 0;
	h.policy = pol;
	h.rule = a->condemned - 1;
	h.value = a->value;
	h.tgid = tgid;
	__builtin_memcpy(h.comm, leader->comm, OOMK_COMM_LEN);
	if (!claim_kill(p))
		return 0;
	if (POL(pol)->dry_run) {
		killed(p, pol, tgid, 0, h.rule, h.value, h.comm, 0);
		return 0;
	}
	__sync_fetch_and_or(&p->state, OOMK_ST_HANDED);
	bpf_seq_write(ctx->meta->seq, &h, sizeof(h));
	return 0;
}

/* The loader sent the kill hand_over claimed (err 0) or could not. The
 * event is made from the claim's record: a process killed may be gone
 * from procs already. A refusal un-claims it for the next sweep. */
SEC("syscall")
int kill_sent(struct oomk_handover *ctx)
{
	struct oomk_handover h = *ctx;
	struct oomk_proc *p = bpf_map_lookup_elem(&procs, &h.tgid);

	if (h.rule >= OOMK_RULE_MAX)
		return 0;
	if (p) {
		if (!(__sync_fetch_and_and(&p->state, ~OOMK_ST_HANDED) & OOMK_ST_HANDED))
			return 0;
		if (h.err) {
			kill_refused(p, h.rule);
			return 0;
		}
	} else if (h.err) {
		return 0;	/* gone before the signal: no kill */
	}
	count_rule(&stats.kills, stats.rule_kills, h.rule);
	emit(OOMK_EV_KILL, h.tgid, 0, h.rule, h.value, h.comm, h.policy);
	return 0;
}
