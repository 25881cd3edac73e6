// SPDX-License-Identifier: GPL-2.0
/*
 * oomp_rel: a scripted workload for the reliability tests (tests/test_rel_*).
 *
 *   oomp_rel [-p PROGRESS] [-o OUT] [-t TIMEOUT_S] STEP...
 *
 * Runs its STEPs in order, then exits 0. Its name contains "oomp", so it is a
 * target; a copy under another name is not. Progress goes to a shared mmap of
 * PROGRESS (u64 slots, enum slot), never through a syscall that could count.
 *
 * Steps (N is a count; sizes accept a K/M suffix, powers of 1024):
 *   w:N          N write(2)s of 1 byte (to OUT with O_APPEND, else /dev/null)
 *   r:N          read(2) N bytes from /dev/zero, 64 KiB at a time
 *   fd:N         open N fds of /dev/null and keep them      close  close them
 *   t:N          create and join N pthreads, one by one
 *   c3:N         create N threads with a raw clone3(CLONE_THREAD), one by one
 *   c3fork:N     create N child processes with a raw clone3 (no CLONE_THREAD)
 *   rand:N       N calls of rand()
 *   tcp:N        N 16-byte sends on a loopback TCP socket (TCP_NODELAY)
 *   gate[:FD]    block until fd FD (3) reaches EOF (a barrier many processes
 *                share: read(2) returning 0 counts nothing)
 *   sig          block in sigwaitinfo() until SIGUSR1 (no counted syscall)
 *   pause        sleep in pause() forever (state S_SLEEPING)
 *   name:X       prctl(PR_SET_NAME, X) in the thread-group leader
 *   tname:X      a second thread renames itself to X, then does the next step
 *                (only that one), and is joined
 *   exec:PATH    execv(PATH) with the remaining steps as its arguments
 *   forkw:N      fork(); the child does N writes and _exits 0; slot A = child
 *                pid, slot B = its wait status
 *   vforkw:N     the same with vfork()
 *   race:T:N     T threads meet at a barrier, then each does N writes
 *   mt:T:K:N     T threads (the leader is thread 0) all started; thread K does
 *                N writes, the others sleep; K = -1: the leader pthread_exit()s
 *                first and thread 1 writes
 *   burst:N:M:S  fork N children (64 alive at a time); each does M writes,
 *                then pause()s if S is 1 or exits 0 if S is 0. With S = 1 the
 *                parent waits for slot C (set by the test) before reaping.
 *                Slot A = children killed by SIGKILL, B = others, after all
 *                are reaped
 *   uring-w:N    N IORING_OP_WRITE of 1 byte to OUT (or /dev/null)
 *   uring-aw:N   the same with IOSQE_ASYNC (runs in io-wq worker threads)
 *   uring-r:N    IORING_OP_READ of N bytes from /dev/zero, 64 KiB at a time
 *   uring-send:N N IORING_OP_SEND of 16 bytes on a loopback TCP socket
 *   sendfile:N   sendfile(2) N bytes from a memfd to /dev/null
 *   splice:N     splice(2) N bytes from a memfd through a pipe to /dev/null
 *   sleep:MS     nanosleep MS milliseconds
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <linux/sched.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum slot {
	P_MAGIC = 0,	/* PROG_MAGIC once mapped */
	P_STEPS,	/* steps completed */
	P_STATE,	/* enum state */
	P_MYPID,
	P_A, P_B, P_C,	/* per-step results (see the steps) */
	P_UNITS,	/* units of the current step completed */
	P_SLOTS = 8,
};
enum state { S_RUNNING = 1, S_FINISHED = 2, S_SLEEPING = 3, S_WAITING = 4 };
#define PROG_MAGIC 0x6c65725f706d6f6fULL /* "oomp_rel" */

static volatile uint64_t dummy[P_SLOTS];
static volatile uint64_t *prog = dummy;
static const char *out_path;
static int out_fd = -1;
static int held[4096], nheld;

static void die(const char *what)
{
	dprintf(2, "oomp_rel: %s: %s\n", what, strerror(errno));
	exit(3);
}

static void set(int s, uint64_t v)
{
	__atomic_store_n(&prog[s], v, __ATOMIC_SEQ_CST);
}

static long long num(const char *s)
{
	char *end;
	long long v = strtoll(s, &end, 0);

	if (*end == 'K' || *end == 'k')
		v <<= 10;
	else if (*end == 'M' || *end == 'm')
		v <<= 20;
	return v;
}

static int outfd(void)
{
	if (out_fd < 0) {
		out_fd = out_path ? open(out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644)
				  : open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (out_fd < 0)
			die("open out");
	}
	return out_fd;
}

static void do_writes(long long n)
{
	int fd = outfd();

	for (long long i = 0; i < n; i++) {
		if (syscall(SYS_write, fd, "w", 1) != 1)
			die("write");
		__atomic_add_fetch(&prog[P_UNITS], 1, __ATOMIC_SEQ_CST);
	}
}

static void do_reads(long long n)
{
	static char buf[65536];
	int fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		die("open /dev/zero");
	while (n > 0) {
		long r = syscall(SYS_read, fd, buf, n < (long long)sizeof(buf) ? n : (long long)sizeof(buf));
		if (r <= 0)
			die("read");
		n -= r;
	}
	close(fd);
}

static void *nothing(void *arg)
{
	return arg;
}

static void do_threads(long long n)
{
	for (long long i = 0; i < n; i++) {
		pthread_t t;

		errno = pthread_create(&t, NULL, nothing, NULL);
		if (errno)
			die("pthread_create");
		pthread_join(t, NULL);
		set(P_UNITS, i + 1);
	}
}

/*
 * A raw clone3 thread: the child starts on its own stack right after the
 * syscall, with no C frame, so it runs only this asm: count itself done and
 * exit(2) the thread. No libc call: it shares the parent's TLS.
 */
static volatile long c3_done;

static long clone3_raw(struct clone_args *ca)
{
	register long rax asm("rax") = SYS_clone3;
	register long rdi asm("rdi") = (long)ca;
	register long rsi asm("rsi") = sizeof(*ca);

	asm volatile("syscall\n\t"
		     "test %%rax, %%rax\n\t"
		     "jnz 1f\n\t"
		     "lock incq %[done]\n\t"
		     "mov $60, %%eax\n\t"	/* exit: this thread only */
		     "xor %%edi, %%edi\n\t"
		     "syscall\n\t"
		     "hlt\n"
		     "1:\n\t"
		     : "+r"(rax), [done] "+m"(c3_done)
		     : "r"(rdi), "r"(rsi)
		     : "rcx", "r11", "memory");
	return rax;
}

static void do_clone3_threads(long long n)
{
	const long stack_size = 16384;

	for (long long i = 0; i < n; i++) {
		char *stack = mmap(NULL, stack_size, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		struct clone_args ca = {
			.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND |
				 CLONE_THREAD | CLONE_SYSVSEM,
			.stack = (uint64_t)(uintptr_t)stack,
			.stack_size = stack_size,
		};
		long before = c3_done, r;

		if (stack == MAP_FAILED)
			die("mmap stack");
		r = clone3_raw(&ca);
		if (r < 0) {
			errno = -r;
			die("clone3");
		}
		while (__atomic_load_n(&c3_done, __ATOMIC_SEQ_CST) == before)
			sched_yield();
		/* the stack is leaked on purpose: the thread may still be exiting */
		set(P_UNITS, i + 1);
	}
}

static void do_clone3_forks(long long n)
{
	for (long long i = 0; i < n; i++) {
		struct clone_args ca = { .exit_signal = SIGCHLD };
		long r = syscall(SYS_clone3, &ca, sizeof(ca));
		int st;

		if (r < 0)
			die("clone3 fork");
		if (r == 0)
			_exit(0);
		if (waitpid(r, &st, 0) != r || !WIFEXITED(st))
			die("clone3 child");
		set(P_UNITS, i + 1);
	}
}

static volatile unsigned sink;

static void do_rand(long long n)
{
	for (long long i = 0; i < n; i++)
		sink += rand();
}

static void tcp_pair(int *cfd, int *sfd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (lfd < 0 || bind(lfd, (void *)&a, sizeof(a)) || listen(lfd, 1) ||
	    getsockname(lfd, (void *)&a, &len))
		die("listen");
	*cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (*cfd < 0 || setsockopt(*cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    connect(*cfd, (void *)&a, sizeof(a)))
		die("connect");
	*sfd = accept(lfd, NULL, NULL);
	if (*sfd < 0)
		die("accept");
	close(lfd);
}

static void *drain(void *arg)
{
	static char buf[65536];

	while (recv((int)(long)arg, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

static void do_tcp(long long n)
{
	int cfd, sfd;
	pthread_t th;

	tcp_pair(&cfd, &sfd);
	errno = pthread_create(&th, NULL, drain, (void *)(long)sfd);
	if (errno)
		die("pthread_create");
	for (long long i = 0; i < n; i++)
		if (send(cfd, "0123456789abcdef", 16, 0) != 16)
			die("send");
	shutdown(cfd, SHUT_WR);
	pthread_join(th, NULL);
	close(cfd);
	close(sfd);
}

/* ---- io_uring, raw: one SQE at a time, wait for its CQE ------------- */

struct uring {
	int fd;
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static void uring_init(struct uring *u)
{
	struct io_uring_params p = {0};
	char *sq, *cq;

	u->fd = syscall(SYS_io_uring_setup, 8, &p);
	if (u->fd < 0)
		die("io_uring_setup");
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_CQ_RING);
	u->sqes = mmap(NULL, p.sq_entries * sizeof(struct io_uring_sqe), PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, u->fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || u->sqes == MAP_FAILED)
		die("io_uring mmap");
	u->sq_tail = (void *)(sq + p.sq_off.tail);
	u->sq_mask = (void *)(sq + p.sq_off.ring_mask);
	u->sq_array = (void *)(sq + p.sq_off.array);
	u->cq_head = (void *)(cq + p.cq_off.head);
	u->cq_tail = (void *)(cq + p.cq_off.tail);
	u->cq_mask = (void *)(cq + p.cq_off.ring_mask);
	u->cqes = (void *)(cq + p.cq_off.cqes);
}

static int uring_do(struct uring *u, int op, int fd, void *buf, unsigned len, int flags)
{
	unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask, head;
	struct io_uring_sqe *sqe = &u->sqes[idx];
	int res;

	memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = (uint64_t)(uintptr_t)buf;
	sqe->len = len;
	sqe->off = (uint64_t)-1;	/* current file position */
	sqe->flags = flags;
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, u->fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) < 0)
		die("io_uring_enter");
	head = *u->cq_head;
	if (head == __atomic_load_n(u->cq_tail, __ATOMIC_ACQUIRE)) {
		errno = EAGAIN;
		die("io_uring: no completion");
	}
	res = u->cqes[head & *u->cq_mask].res;
	__atomic_store_n(u->cq_head, head + 1, __ATOMIC_RELEASE);
	return res;
}

static void do_uring(const char *kind, long long n)
{
	static char buf[65536];
	struct uring u;
	int fd, cfd = -1, sfd = -1;
	pthread_t th;

	uring_init(&u);
	if (!strcmp(kind, "r")) {
		fd = open("/dev/zero", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open /dev/zero");
		while (n > 0) {
			unsigned want = n < (long long)sizeof(buf) ? n : sizeof(buf);
			int r = uring_do(&u, IORING_OP_READ, fd, buf, want, 0);

			if (r <= 0) {
				errno = -r;
				die("io_uring read");
			}
			n -= r;
		}
		return;
	}
	if (!strcmp(kind, "send")) {
		tcp_pair(&cfd, &sfd);
		errno = pthread_create(&th, NULL, drain, (void *)(long)sfd);
		if (errno)
			die("pthread_create");
		for (long long i = 0; i < n; i++) {
			int r = uring_do(&u, IORING_OP_SEND, cfd, "0123456789abcdef", 16, 0);

			if (r != 16) {
				errno = r < 0 ? -r : EIO;
				die("io_uring send");
			}
			set(P_UNITS, i + 1);
		}
		shutdown(cfd, SHUT_WR);
		pthread_join(th, NULL);
		return;
	}
	fd = outfd();
	for (long long i = 0; i < n; i++) {
		int r = uring_do(&u, IORING_OP_WRITE, fd, "u", 1,
				 !strcmp(kind, "aw") ? IOSQE_ASYNC : 0);

		if (r != 1) {
			errno = r < 0 ? -r : EIO;
			die("io_uring write");
		}
		set(P_UNITS, i + 1);
	}
}

static void do_sendfile(const char *how, long long n)
{
	int mfd = memfd_create("oomp_rel", 0), dfd = open("/dev/null", O_WRONLY | O_CLOEXEC);
	int pfd[2];

	if (mfd < 0 || dfd < 0 || ftruncate(mfd, 1 << 20))
		die("memfd");
	if (!strcmp(how, "splice") && pipe(pfd))
		die("pipe");
	while (n > 0) {
		size_t want = n < 65536 ? n : 65536;
		loff_t off = 0;
		long r;

		if (!strcmp(how, "sendfile")) {
			r = sendfile(dfd, mfd, &off, want);
		} else {
			r = splice(mfd, &off, pfd[1], NULL, want, 0);
			if (r > 0 && splice(pfd[0], NULL, dfd, NULL, r, 0) != r)
				die("splice out");
		}
		if (r <= 0)
			die(how);
		n -= r;
	}
}

/* ---- threads ------------------------------------------------------------ */

static pthread_barrier_t bar;
static long long race_n;

static void *race_body(void *arg)
{
	pthread_barrier_wait(&bar);
	do_writes(race_n);
	return arg;
}

static void do_race(int t, long long n)
{
	pthread_t th[1024];

	race_n = n;
	if (t < 1 || t > 1024 || pthread_barrier_init(&bar, NULL, t))
		die("race");
	for (int i = 0; i < t; i++) {
		errno = pthread_create(&th[i], NULL, race_body, NULL);
		if (errno)
			die("pthread_create");
	}
	for (int i = 0; i < t; i++)
		pthread_join(th[i], NULL);
}

static volatile int mt_started;
static long long mt_n;
static volatile int mt_writer;

/* mt threads spin-wait for mt_writer to turn non-negative */
static void *mt_entry(void *arg)
{
	int me = (int)(long)arg;

	__atomic_add_fetch(&mt_started, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&mt_writer, __ATOMIC_SEQ_CST) < 0)
		usleep(1000);
	if (me == mt_writer) {
		set(P_A, syscall(SYS_gettid));
		do_writes(mt_n);
	}
	for (;;)
		pause();
	return NULL;
}

static void do_mt2(int t, int k, long long n)
{
	pthread_t th;

	mt_n = n;
	mt_writer = -1;
	for (int i = 1; i < t; i++) {
		errno = pthread_create(&th, NULL, mt_entry, (void *)(long)i);
		if (errno)
			die("pthread_create");
	}
	while (__atomic_load_n(&mt_started, __ATOMIC_SEQ_CST) < t - 1)
		sched_yield();
	set(P_STATE, S_SLEEPING);
	__atomic_store_n(&mt_writer, k < 0 ? 1 : k, __ATOMIC_SEQ_CST);
	if (k < 0)
		pthread_exit(NULL);	/* the leader becomes a zombie; the group lives */
	mt_entry((void *)0L);
}

/* ---- processes ------------------------------------------------------------ */

static void do_fork_writes(int use_vfork, long long n)
{
	pid_t pid;
	int st;

	pid = use_vfork ? vfork() : fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		/* vfork: only raw syscalls here, then _exit */
		int fd = syscall(SYS_open, "/dev/null", O_WRONLY);

		for (long long i = 0; i < n; i++)
			if (syscall(SYS_write, fd, "c", 1) != 1)
				_exit(3);
		_exit(0);
	}
	set(P_A, pid);
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	set(P_B, st);
}

static void do_burst(long long n, long long m, int sleep_after)
{
	long long started = 0, reaped = 0, killed = 0, other = 0;
	int st;

	while (reaped < n) {
		while (started < n && (sleep_after || started - reaped < 64)) {
			pid_t pid = fork();

			if (pid < 0)
				die("fork");
			if (pid == 0) {
				int fd = syscall(SYS_open, "/dev/null", O_WRONLY);

				for (long long i = 0; i < m; i++)
					syscall(SYS_write, fd, "b", 1);
				if (sleep_after)
					for (;;)
						pause();
				_exit(0);
			}
			started++;
			set(P_UNITS, started);
		}
		if (sleep_after && !__atomic_load_n(&prog[P_C], __ATOMIC_SEQ_CST)) {
			set(P_STATE, S_WAITING);
			while (!__atomic_load_n(&prog[P_C], __ATOMIC_SEQ_CST))
				usleep(10000);
			set(P_STATE, S_RUNNING);
		}
		if (wait(&st) < 0)
			die("wait");
		reaped++;
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			killed++;
		else
			other++;
		set(P_A, killed);
		set(P_B, other);
	}
}

static void *step_thread(void *arg)
{
	char **a = arg;

	if (prctl(PR_SET_NAME, a[0], 0, 0, 0))
		die("prctl thread");
	return NULL;
}

static void run_step(char **argv, int i, int argc);

struct tstep { char *name; char **argv; int i, argc; };

static void *tname_body(void *arg)
{
	struct tstep *s = arg;

	step_thread(&s->name);
	if (s->i < s->argc)
		run_step(s->argv, s->i, s->argc);
	return NULL;
}

static void run_step(char **argv, int i, int argc)
{
	char *s = argv[i], *v = strchr(s, ':');
	long long n = v ? num(v + 1) : 0;

	set(P_UNITS, 0);
	if (!strncmp(s, "w:", 2))
		do_writes(n);
	else if (!strncmp(s, "r:", 2))
		do_reads(n);
	else if (!strncmp(s, "fd:", 3)) {
		for (long long k = 0; k < n; k++) {
			int fd = open("/dev/null", O_RDONLY);

			if (fd < 0 || nheld >= 4096)
				die("open");
			held[nheld++] = fd;
		}
	} else if (!strcmp(s, "close")) {
		while (nheld)
			close(held[--nheld]);
	} else if (!strncmp(s, "t:", 2))
		do_threads(n);
	else if (!strncmp(s, "c3:", 3))
		do_clone3_threads(n);
	else if (!strncmp(s, "c3fork:", 7))
		do_clone3_forks(n);
	else if (!strncmp(s, "rand:", 5))
		do_rand(n);
	else if (!strncmp(s, "tcp:", 4))
		do_tcp(n);
	else if (!strncmp(s, "gate", 4)) {
		int fd = v ? (int)n : 3;
		char c;

		set(P_STATE, S_WAITING);
		while (read(fd, &c, 1) > 0)
			;
		set(P_STATE, S_RUNNING);
	} else if (!strcmp(s, "sig")) {
		sigset_t set_;

		sigemptyset(&set_);
		sigaddset(&set_, SIGUSR1);
		set(P_STATE, S_WAITING);
		while (sigwaitinfo(&set_, NULL) != SIGUSR1)
			;
		set(P_STATE, S_RUNNING);
	} else if (!strcmp(s, "pause")) {
		set(P_STATE, S_SLEEPING);
		for (;;)
			pause();
	} else if (!strncmp(s, "name:", 5)) {
		if (prctl(PR_SET_NAME, v + 1, 0, 0, 0))
			die("prctl");
	} else if (!strncmp(s, "tname:", 6)) {
		struct tstep ts = { v + 1, argv, i + 1, argc };
		pthread_t th;

		errno = pthread_create(&th, NULL, tname_body, &ts);
		if (errno)
			die("pthread_create");
		pthread_join(th, NULL);
		set(P_STEPS, prog[P_STEPS] + 1);	/* the step it ran */
	} else if (!strncmp(s, "exec:", 5)) {
		char **nargv = calloc(argc + 4, sizeof(*nargv));
		int j = 0;

		nargv[j++] = v + 1;
		for (int k = 1; k < i; k++)	/* options before the steps */
			if (argv[k][0] == '-')
				nargv[j++] = argv[k], nargv[j++] = argv[++k];
		for (int k = i + 1; k < argc; k++)
			nargv[j++] = argv[k];
		execv(v + 1, nargv);
		die("execv");
	} else if (!strncmp(s, "forkw:", 6))
		do_fork_writes(0, n);
	else if (!strncmp(s, "vforkw:", 7))
		do_fork_writes(1, n);
	else if (!strncmp(s, "race:", 5)) {
		char *w = strchr(v + 1, ':');

		if (!w)
			die("race:T:N");
		do_race(atoi(v + 1), num(w + 1));
	} else if (!strncmp(s, "mt:", 3)) {
		char *k = strchr(v + 1, ':'), *w = k ? strchr(k + 1, ':') : NULL;

		if (!w)
			die("mt:T:K:N");
		do_mt2(atoi(v + 1), atoi(k + 1), num(w + 1));
	} else if (!strncmp(s, "burst:", 6)) {
		char *m = strchr(v + 1, ':'), *z = m ? strchr(m + 1, ':') : NULL;

		if (!z)
			die("burst:N:M:S");
		do_burst(num(v + 1), num(m + 1), atoi(z + 1));
	} else if (!strncmp(s, "uring-", 6)) {
		*v = 0;
		do_uring(s + 6, n);
		*v = ':';
	} else if (!strncmp(s, "sendfile:", 9))
		do_sendfile("sendfile", n);
	else if (!strncmp(s, "splice:", 7))
		do_sendfile("splice", n);
	else if (!strncmp(s, "sleep:", 6)) {
		struct timespec ts = { n / 1000, (n % 1000) * 1000000 };

		nanosleep(&ts, NULL);
	} else {
		dprintf(2, "oomp_rel: unknown step %s\n", s);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	const char *prog_path = NULL;
	unsigned timeout_s = 120;
	sigset_t blocked;
	int i = 1;

	for (; i + 1 < argc && argv[i][0] == '-'; i += 2) {
		if (!strcmp(argv[i], "-p"))
			prog_path = argv[i + 1];
		else if (!strcmp(argv[i], "-o"))
			out_path = argv[i + 1];
		else if (!strcmp(argv[i], "-t"))
			timeout_s = atoi(argv[i + 1]);
		else
			break;
	}
	/* Safety net: nothing a test starts outlives it for long. */
	alarm(timeout_s);
	/* SIGUSR1 is for `sig`: block it so it waits pending, never kills */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigprocmask(SIG_BLOCK, &blocked, NULL);
	if (prog_path) {
		int fd = open(prog_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		void *p;

		if (fd < 0 || ftruncate(fd, P_SLOTS * sizeof(uint64_t)))
			die("progress");
		p = mmap(NULL, P_SLOTS * sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
		if (p == MAP_FAILED)
			die("mmap progress");
		close(fd);
		prog = p;
		prog[P_MYPID] = getpid();
		prog[P_MAGIC] = PROG_MAGIC;
		prog[P_STATE] = S_RUNNING;
	}
	for (; i < argc; i++) {
		run_step(argv, i, argc);
		if (!strncmp(argv[i], "tname:", 6))
			i++;	/* its thread ran the next step */
		set(P_STEPS, prog[P_STEPS] + 1);
	}
	set(P_STATE, S_FINISHED);
	return 0;
}
