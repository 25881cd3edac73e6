// SPDX-License-Identifier: GPL-2.0
/*
 * oomp_work: the one workload program of the tests.
 *
 *   oomp_work [options] STEP...
 *
 * Runs its STEPs in order, then exits 0. Its name contains "oomp", so it is a
 * target; a copy under a name without "oomp" is not. Progress goes to the
 * shared file of -p (tests/progs/progress.h), never through a syscall that
 * could count. Options may come anywhere (GNU getopt moves them first).
 *
 * A STEP is NAME or NAME:ARG; counts take a K or M suffix (powers of 1024).
 * P_DONE counts the step's units as each returns, so a process killed in the
 * hook of its Nth call shows N-1; the out file's size (one byte per write
 * unless -c) shows how many writes completed.
 *
 * Units of one rule:
 *   open|openat|openat2|creat|socket|socketpair|pipe|pipe2|dup|dup2|
 *   dup2-high|dup3|fcntl-dupfd|fcntl-dupfd-cloexec|accept|accept4|eventfd|
 *   memfd|epoll|timerfd|inotify|signalfd|pidfd:N
 *                make N fds (--total: until the table holds N), kept open;
 *                P_DONE = fds in the table       close  close them all
 *   write|pwrite64|writev|pwritev|pwritev2:N
 *                N calls of -c bytes (1) to OUT (-o, O_APPEND) or /dev/null
 *   read|pread64|readv|preadv|preadv2:N
 *                N bytes from IN (-i, /dev/zero), -c (64 KiB) at a time;
 *                --total: N including what the dynamic loader read
 *   threads:N    N pthreads, each joined before the next (--concurrent: all
 *                started, then joined); --rename X: each names itself X
 *   fifo-open:N  N threads each open(IN, O_RDONLY) and keep it: on a FIFO
 *                they block, each holding a reserved fd slot, until a writer
 *                opens it (the next steps run meanwhile)
 *   c3:N         N threads by a raw clone3(CLONE_THREAD), one by one
 *   c3fork:N     N child processes by a raw clone3, each reaped
 *   rand:N       N calls of rand()
 *   tcp-send:N   N sends of -c bytes (16) on a loopback TCP connection:
 *                --via send|sendto|sendmsg|write|writev|sendfile|splice,
 *                --nodelay, --maxseg B, --segs K (K*mss - mss/2 bytes each),
 *                --v6 (over ::1), --mptcp (an MPTCP client and listener),
 *                --server-tcp (with --mptcp: a plain TCP listener, so the
 *                connection falls back to TCP), --mtu B (first, a network
 *                namespace of its own whose loopback has MTU B: an MSS that
 *                holds still where TCP_MAXSEG does not reach MPTCP subflows)
 *   udp-send:N   N datagrams of -c bytes (16) on loopback (--via write: on a
 *                connected socket)
 *   uring-w:N    N IORING_OP_WRITE of 1 byte to OUT (or /dev/null)
 *   uring-aw:N   the same with IOSQE_ASYNC (io-wq worker threads)
 *   uring-r:N    IORING_OP_READ of N bytes from /dev/zero, 64 KiB at a time
 *   uring-wb:N   N IORING_OP_WRITE of 1 byte to OUT in one io_uring_enter;
 *                uring-wbs:N the same, each IOSQE_CQE_SKIP_SUCCESS;
 *                uring-ws:N  one enter each, IOSQE_CQE_SKIP_SUCCESS;
 *                uring-wsq:N an SQPOLL ring, each waited for;
 *                uring-wsqq:N an SQPOLL ring and then no syscall: waits
 *                (state waiting) for the test's P_CTL, queues all N, and
 *                waits for their CQEs, spinning
 *   aio-aw:N     N Linux AIO writes of 1 byte to OUT, one io_submit each;
 *                aio-awb:N all in one io_submit
 *   aio-ar:N     N bytes read through Linux AIO from IN (/dev/zero)
 *   uring-send:N N IORING_OP_SEND of 16 bytes on a loopback TCP connection
 *   uring-direct:N  N IORING_OP_OPENAT of /dev/null into a ring's sparse
 *                direct table of 256 (files without an fd); the ring is
 *                made by the first such step, and kept
 *   uring-drop   unregister that ring's table (its files close)
 *   uring-close  close that ring's fd (the ring and its files go)
 *   uring-reg    register that ring's fd (IORING_REGISTER_RING_FDS), close
 *                the fd, and enter the ring by its index from then on
 *   sendfile:N   sendfile(2) N bytes from a memfd to /dev/null
 *   splice:N     splice(2) N bytes from a memfd through a pipe to /dev/null
 *   all          every rule crossed by a margin (the non-target tests)
 * Processes and threads:
 *   forkw:N      fork(); the child does N writes and _exits 0; P_A = child
 *                pid, P_B = its wait status          vforkw:N  with vfork()
 *   race:T:N     T threads meet at a barrier, then each does N writes
 *   mt:T:K:N     T threads (the leader is thread 0) all started; thread K does
 *                N writes (P_A = its tid), the others sleep; K = -1: the
 *                leader pthread_exit()s first and thread 1 writes
 *   burst:N:M:S[:OP]  fork N children (64 alive at a time); each does M
 *                writes, then pause()s if S is 1 or exits 0 if S is 0. With
 *                S = 1 the parent waits (S_WAITING) until the test sets P_CTL
 *                before it reaps. P_DONE = started, P_A = killed by SIGKILL,
 *                P_B = others. With OP (write, read or rand) all N are forked
 *                first and start together: M writes, M bytes read from
 *                /dev/zero (64 KiB at a time), or M rand() calls
 *   name:X       prctl(PR_SET_NAME, X) in the calling thread
 *   thread[:X]   a new thread (named X) runs the next step, and is joined
 *   exec:PATH    execv(PATH) with the options and the remaining steps
 *   texec:N      N execs in a row, each by a new (non-leader) thread: execv of
 *                this program's path with texec:N-1 and the remaining steps
 * Waiting (no counted syscall):
 *   gate[:FD]    block until fd FD (3) reaches EOF (a barrier many processes
 *                share: read(2) returning 0 counts nothing)
 *   sig          block until SIGUSR1
 *   follow:N     N writes, then sleep (S_SLEEPING); on each SIGUSR1 write on
 *                until the step's writes reach P_CTL, and sleep again
 *   pause        pause() forever (S_SLEEPING)
 *   sleep:MS     nanosleep MS milliseconds
 *
 * Exit: 0 when every step is done, 2 for bad usage, 3 when a call failed.
 */
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <link.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <linux/openat2.h>
#include <linux/sched.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

#ifndef IPPROTO_MPTCP
#define IPPROTO_MPTCP 262
#endif

static const char *out_path;
static const char *in_path = "/dev/zero";
static const char *rename_to;
static const char *via = "send";
static long chunk = -1;
static int opt_total, opt_nodelay, opt_concurrent, image;
static int opt_v6, opt_mptcp, opt_server_tcp;
static long fd_base = 1000, fd_stride = 37, maxseg, segs, mtu;
static int out_fd = -1;
static int *held, nheld, held_cap;	/* the fds the fd steps made, for close */
static char **opt_argv;			/* argv[1..opt_argc): the options */
static int opt_argc;

static void die(const char *what)
{
	dprintf(2, "oomp_work: %s: %s\n", what, strerror(errno));
	exit(3);
}

/* a unit of the current step returned: done is the step's count so far */
static void note(uint64_t done)
{
	progress_set(P_DONE, done);
	progress_add(P_TOTAL, 1);
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

/* OUT (append: exec'd images and threads add to it) or /dev/null, opened once */
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

static void hold(int fd)
{
	if (nheld == held_cap) {
		held_cap = held_cap ? 2 * held_cap : 256;
		held = realloc(held, held_cap * sizeof(*held));
		if (!held)
			die("realloc");
	}
	held[nheld++] = fd;
}

/* ---- fds ---------------------------------------------------------- */

/*
 * Fds open now, by one poll(2) over the table: closed numbers come back
 * POLLNVAL. (An fcntl per number made 65536 syscalls per fd step, which
 * hundreds of processes of the load tests pay at once.)
 */
static long count_open_fds(void)
{
	struct rlimit rl;
	long n = 0, fd, max = 65536;
	struct pollfd *p;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)max)
		max = rl.rlim_cur;
	p = calloc(max, sizeof(*p));
	if (!p)
		die("calloc");
	for (fd = 0; fd < max; fd++)
		p[fd].fd = fd;
	if (poll(p, max, 0) < 0)
		die("poll");
	for (fd = 0; fd < max; fd++)
		if (!(p[fd].revents & POLLNVAL))
			n++;
	free(p);
	return n;
}

static int listener(int type, struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, type, 0);

	if (fd < 0)
		die("socket");
	memset(addr, 0, sizeof(*addr));
	addr->sin_family = AF_INET;
	addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)addr, sizeof(*addr)))
		die("bind");
	if (type == SOCK_STREAM && listen(fd, 4096))
		die("listen");
	if (getsockname(fd, (struct sockaddr *)addr, &len))
		die("getsockname");
	return fd;
}

static const char *fd_ops[] = {
	"open", "openat", "openat2", "creat", "socket", "socketpair", "pipe",
	"pipe2", "dup", "dup2", "dup2-high", "dup3", "fcntl-dupfd",
	"fcntl-dupfd-cloexec", "accept", "accept4", "eventfd", "memfd",
	"epoll", "timerfd", "inotify", "signalfd", "pidfd", NULL,
};

static int is_fd_op(const char *op)
{
	for (int i = 0; fd_ops[i]; i++)
		if (!strcmp(op, fd_ops[i]))
			return 1;
	return 0;
}

/*
 * Create fds with one syscall until the table holds `target` fds. Paths that
 * make two fds per call are padded with open() first so that the last call
 * lands exactly on the target. Progress counts fds in the table.
 */
static void op_fds(const char *op, long long n)
{
	long have = count_open_fds(), target;
	int pairs = !strcmp(op, "socketpair") || !strcmp(op, "pipe") ||
		    !strcmp(op, "pipe2");
	int is_accept = !strcmp(op, "accept") || !strcmp(op, "accept4");
	struct sockaddr_in addr;
	int lfd = -1, sfd = -1, next_high = 0, r = -1;
	int fds[2];

	progress_set(P_BASE, have);
	target = opt_total ? n : have + n;
	if (is_accept) {
		lfd = listener(SOCK_STREAM, &addr);
		hold(lfd);
		have++;
	}
	if (!strcmp(op, "dup2-high") || !strcmp(op, "dup3"))
		next_high = fd_base;
	/* pairs: make the remaining count even, so the last call lands on it */
	while (pairs && (target - have) % 2) {
		r = syscall(SYS_open, "/dev/null", O_RDONLY);
		if (r < 0)
			die("open");
		hold(r);
		have++;
	}
	progress_set(P_DONE, have);
	/* accept: the peak of an iteration is have + 2 (see below) */
	while (is_accept ? have + 2 <= target : have < target) {
		if (!strcmp(op, "open"))
			r = syscall(SYS_open, "/dev/null", O_RDONLY);
		else if (!strcmp(op, "openat"))
			r = syscall(SYS_openat, AT_FDCWD, "/dev/null", O_RDONLY);
		else if (!strcmp(op, "openat2")) {
			struct open_how how = { .flags = O_RDONLY };
			r = syscall(SYS_openat2, AT_FDCWD, "/dev/null", &how,
				    sizeof(how));
		} else if (!strcmp(op, "creat")) {
			r = syscall(SYS_creat, "/dev/null", 0644);
		} else if (!strcmp(op, "socket"))
			r = socket(AF_INET, SOCK_STREAM, 0);
		else if (!strcmp(op, "socketpair")) {
			r = socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
			if (!r) { have++; hold(fds[0]); r = fds[1]; }
		} else if (!strcmp(op, "pipe")) {
			r = syscall(SYS_pipe, fds);
			if (!r) { have++; hold(fds[0]); r = fds[1]; }
		} else if (!strcmp(op, "pipe2")) {
			r = syscall(SYS_pipe2, fds, 0);
			if (!r) { have++; hold(fds[0]); r = fds[1]; }
		} else if (!strcmp(op, "dup"))
			r = syscall(SYS_dup, 0);
		else if (!strcmp(op, "dup2"))
			/* next free number: the table is dense here */
			r = syscall(SYS_dup2, 0, (int)have);
		else if (!strcmp(op, "dup2-high")) {
			r = syscall(SYS_dup2, 0, next_high);
			next_high += fd_stride;
		} else if (!strcmp(op, "dup3")) {
			r = syscall(SYS_dup3, 0, next_high, O_CLOEXEC);
			next_high += fd_stride;
		} else if (!strcmp(op, "fcntl-dupfd"))
			r = fcntl(0, F_DUPFD, 0);
		else if (!strcmp(op, "fcntl-dupfd-cloexec"))
			r = fcntl(0, F_DUPFD_CLOEXEC, 0);
		else if (is_accept) {
			/*
			 * The client socket is made and closed around the
			 * accept, so it is the accept that reaches each new
			 * peak: socket → have+1, accept → have+2, close →
			 * have+1. The last accept reaches the target; the
			 * table then holds target-1.
			 */
			sfd = socket(AF_INET, SOCK_STREAM, 0);
			if (sfd < 0)
				die("socket");
			if (connect(sfd, (struct sockaddr *)&addr, sizeof(addr)))
				die("connect");
			have++;
			if (!strcmp(op, "accept"))
				r = syscall(SYS_accept, lfd, NULL, NULL);
			else
				r = syscall(SYS_accept4, lfd, NULL, NULL, 0);
			if (r >= 0) {
				note(have + 1);
				close(sfd);
				have--;
			}
		} else if (!strcmp(op, "eventfd"))
			r = eventfd(0, 0);
		else if (!strcmp(op, "memfd"))
			r = memfd_create("oomp", 0);
		else if (!strcmp(op, "epoll"))
			r = epoll_create1(0);
		else if (!strcmp(op, "timerfd"))
			r = timerfd_create(CLOCK_MONOTONIC, 0);
		else if (!strcmp(op, "inotify"))
			r = inotify_init1(0);
		else if (!strcmp(op, "signalfd")) {
			sigset_t set;
			sigemptyset(&set);
			r = signalfd(-1, &set, 0);
		} else if (!strcmp(op, "pidfd"))
			r = syscall(SYS_pidfd_open, getpid(), 0);
		else {
			errno = EINVAL;
			die(op);
		}
		if (r < 0)
			die(op);
		hold(r);
		have++;
		if (!is_accept)
			note(have);
	}
}

static void op_close(void)
{
	while (nheld)
		close(held[--nheld]);
}

/* ---- writes and reads ---------------------------------------------- */

static int is_write_op(const char *op)
{
	return !strcmp(op, "write") || !strcmp(op, "pwrite64") ||
	       !strcmp(op, "writev") || !strcmp(op, "pwritev") ||
	       !strcmp(op, "pwritev2");
}

static int is_read_op(const char *op)
{
	return !strcmp(op, "read") || !strcmp(op, "pread64") ||
	       !strcmp(op, "readv") || !strcmp(op, "preadv") ||
	       !strcmp(op, "preadv2");
}

/* Threads may run this at once (race, mt): P_DONE and P_TOTAL are added to. */
static void op_writes(const char *op, long long n)
{
	long c = chunk > 0 ? chunk : 1;
	char *buf = malloc(c);
	int fd = outfd();
	long long i;

	if (!buf)
		die("malloc");
	memset(buf, 'w', c);
	for (i = 0; i < n; i++) {
		/* O_APPEND: the positioned writes append too (pwrite(2), BUGS) */
		off_t off = i * c;
		struct iovec iov[2] = {
			{ buf, c / 2 }, { buf + c / 2, c - c / 2 },
		};
		long r;

		if (!strcmp(op, "write"))
			r = syscall(SYS_write, fd, buf, c);
		else if (!strcmp(op, "pwrite64"))
			r = syscall(SYS_pwrite64, fd, buf, c, off);
		else if (!strcmp(op, "writev"))
			r = syscall(SYS_writev, fd, iov, 2);
		else if (!strcmp(op, "pwritev"))
			r = syscall(SYS_pwritev, fd, iov, 2, off, 0);
		else
			r = syscall(SYS_pwritev2, fd, iov, 2, off, 0, 0);
		if (r != c)
			die(op);
		progress_add(P_DONE, 1);
		progress_add(P_TOTAL, 1);
	}
	free(buf);
}

/*
 * Bytes the dynamic loader read before main, so that --total is exact for
 * reads. glibc 2.36 (elf/dl-load.c) reads each shared object it opens like
 * this: open_verify() read(2)s a 832-byte struct filebuf; if the program
 * headers end beyond what was read it pread64(2)s them, and
 * _dl_map_object_from_fd() pread64(2)s them once more. Notes are not read
 * from the file. On Debian 12's libc.so.6 that is 832 + 2 * 784 = 2400
 * bytes (checked with strace). We recompute it from the mapped headers,
 * without reading files; a test that needs it can log P_BASE.
 */
#define DL_FILEBUF 832

static int count_dso(struct dl_phdr_info *info, size_t size, void *data)
{
	const ElfW(Ehdr) *eh = NULL;
	long *bytes = data, len, maplen;
	struct stat st;
	int i;

	(void)size;
	/* the main program has no name, the vDSO no path, ld.so maps itself */
	if (!info->dlpi_name || info->dlpi_name[0] != '/' ||
	    strstr(info->dlpi_name, "/ld-linux"))
		return 0;
	for (i = 0; i < info->dlpi_phnum; i++)
		if (info->dlpi_phdr[i].p_type == PT_LOAD &&
		    info->dlpi_phdr[i].p_offset == 0) {
			eh = (const void *)(info->dlpi_addr +
					    info->dlpi_phdr[i].p_vaddr);
			break;
		}
	if (!eh || stat(info->dlpi_name, &st))
		return 0;
	len = st.st_size < DL_FILEBUF ? st.st_size : DL_FILEBUF;
	*bytes += len;
	maplen = (long)eh->e_phnum * sizeof(ElfW(Phdr));
	if ((long)eh->e_phoff + maplen > len)
		*bytes += 2 * maplen;
	return 0;
}

static long loader_read_bytes(void)
{
	long n = 0;

	dl_iterate_phdr(count_dso, &n);
	return n;
}

static void op_reads(const char *op, long long n)
{
	long c = chunk > 0 ? chunk : 65536;
	long long done = 0, target = n;
	char *buf = malloc(c);
	int fd = open(in_path, O_RDONLY | O_CLOEXEC);

	if (!buf)
		die("malloc");
	if (fd < 0)
		die("open in");
	if (opt_total) {
		long before = loader_read_bytes();

		progress_set(P_BASE, before);
		target = n - before;
	}
	while (done < target) {
		long want = target - done < c ? target - done : c;
		struct iovec iov[2] = {
			{ buf, want / 2 }, { buf + want / 2, want - want / 2 },
		};
		long r;

		if (!strcmp(op, "read"))
			r = syscall(SYS_read, fd, buf, want);
		else if (!strcmp(op, "pread64"))
			r = syscall(SYS_pread64, fd, buf, want, (off_t)0);
		else if (!strcmp(op, "readv"))
			r = syscall(SYS_readv, fd, iov, 2);
		else if (!strcmp(op, "preadv"))
			r = syscall(SYS_preadv, fd, iov, 2, 0, 0);
		else
			r = syscall(SYS_preadv2, fd, iov, 2, 0, 0, 0);
		if (r <= 0) {
			if (r == 0)
				errno = ENODATA;
			die(op);
		}
		done += r;
		note(done);
	}
	close(fd);
	free(buf);
}

/* ---- threads, rand ----------------------------------------------- */

static void rename_self(void)
{
	if (rename_to && prctl(PR_SET_NAME, rename_to, 0, 0, 0))
		die("prctl");
}

static void *thread_body(void *arg)
{
	rename_self();
	return arg;
}

static void op_threads(long long n)
{
	pthread_t *t = calloc(n ? n : 1, sizeof(*t));
	long long i;

	if (!t)
		die("calloc");
	for (i = 0; i < n; i++) {
		errno = pthread_create(&t[i], NULL, thread_body, NULL);
		if (errno)
			die("pthread_create");
		if (!opt_concurrent) {
			pthread_join(t[i], NULL);
			note(i + 1);
		}
	}
	if (opt_concurrent)
		for (i = 0; i < n; i++) {
			pthread_join(t[i], NULL);
			note(i + 1);
		}
	free(t);
}

static volatile unsigned rand_sink;

static void op_rand(long long n)
{
	long long i;

	for (i = 0; i < n; i++) {
		rand_sink += rand();
		note(i + 1);
	}
}

/* ---- network ------------------------------------------------------ */

static void *drain(void *arg)
{
	int fd = (int)(long)arg;
	static char buf[1 << 16];

	while (recv(fd, buf, sizeof(buf), 0) > 0)
		;
	return NULL;
}

/* A loopback TCP connection whose receiving end a thread drains, so that
 * large sends never block on a full buffer. */
struct tcp_conn {
	int lfd, cfd, sfd;
	pthread_t th;
};

/* --mtu: this process alone in a new network namespace, its loopback up
 * with that MTU (needs CAP_NET_ADMIN; the tests run as root). */
static void private_loopback(long m)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int s;

	if (unshare(CLONE_NEWNET))
		die("unshare CLONE_NEWNET");
	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	ifr.ifr_mtu = (int)m;
	if (s < 0 || ioctl(s, SIOCSIFMTU, &ifr) || ioctl(s, SIOCGIFFLAGS, &ifr))
		die("loopback mtu");
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(s, SIOCSIFFLAGS, &ifr))
		die("loopback up");
	close(s);
}

static void tcp_open(struct tcp_conn *t, int nodelay)
{
	struct sockaddr_storage addr = { .ss_family = opt_v6 ? AF_INET6 : AF_INET };
	socklen_t len = opt_v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
	int one = 1, maxseg_i = (int)maxseg;

	/* --mptcp: the client is MPTCP, and so is the listener unless
	 * --server-tcp, where the connection falls back to plain TCP */
	if (opt_v6)
		((struct sockaddr_in6 *)&addr)->sin6_addr = in6addr_loopback;
	else
		((struct sockaddr_in *)&addr)->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	t->lfd = socket(addr.ss_family, SOCK_STREAM,
			opt_mptcp && !opt_server_tcp ? IPPROTO_MPTCP : 0);
	if (t->lfd < 0 || bind(t->lfd, (struct sockaddr *)&addr, len) || listen(t->lfd, 16) ||
	    getsockname(t->lfd, (struct sockaddr *)&addr, &len))
		die("listener");
	t->cfd = socket(addr.ss_family, SOCK_STREAM, opt_mptcp ? IPPROTO_MPTCP : 0);
	if (t->cfd < 0)
		die("socket");
	if (nodelay && setsockopt(t->cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)))
		die("TCP_NODELAY");
	if (maxseg && setsockopt(t->cfd, IPPROTO_TCP, TCP_MAXSEG, &maxseg_i,
				 sizeof(maxseg_i)))
		die("TCP_MAXSEG");
	if (connect(t->cfd, (struct sockaddr *)&addr, len))
		die("connect");
	t->sfd = accept(t->lfd, NULL, NULL);
	if (t->sfd < 0)
		die("accept");
	errno = pthread_create(&t->th, NULL, drain, (void *)(long)t->sfd);
	if (errno)
		die("pthread_create");
}

static void tcp_close(struct tcp_conn *t)
{
	shutdown(t->cfd, SHUT_WR);
	pthread_join(t->th, NULL);
	close(t->cfd);
	close(t->sfd);
	close(t->lfd);
}

static void op_tcp(long long n)
{
	long c = chunk > 0 ? chunk : 16;
	struct tcp_conn t;
	struct tcp_info ti;
	socklen_t tlen = sizeof(ti);
	int mss, mfd = -1, pfd[2] = { -1, -1 };
	char *buf = malloc(c);
	long long i;

	if (!buf)
		die("malloc");
	memset(buf, 't', c);
	tcp_open(&t, opt_nodelay);
	/* connected: tcpi_snd_mss is the MSS in use (tp->mss_cache; on MPTCP,
	 * its first subflow's) */
	if (getsockopt(t.cfd, IPPROTO_TCP, TCP_INFO, &ti, &tlen))
		die("getsockopt TCP_INFO");
	mss = ti.tcpi_snd_mss;
	progress_set(P_MSS, mss);
	if (segs > 0) {
		/* --segs K: K*mss - mss/2 bytes, which is K segments */
		c = segs * mss - mss / 2;
		buf = realloc(buf, c);
		if (!buf)
			die("realloc");
		memset(buf, 't', c);
	}
	if (!strcmp(via, "sendfile") || !strcmp(via, "splice")) {
		/* a memfd of c zero bytes: no write(2) needed to fill it */
		mfd = memfd_create("oomp-src", 0);
		if (mfd < 0 || ftruncate(mfd, c))
			die("memfd");
		if (!strcmp(via, "splice") && pipe(pfd))
			die("pipe");
		/* one splice in, one out: the pipe must hold a whole chunk */
		if (pfd[0] >= 0 && c > 4096 && fcntl(pfd[1], F_SETPIPE_SZ, c) < c)
			die("F_SETPIPE_SZ");
	}
	for (i = 0; i < n; i++) {
		struct iovec iov[2] = { { buf, c / 2 }, { buf + c / 2, c - c / 2 } };
		struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
		long r;

		if (!strcmp(via, "send"))
			r = send(t.cfd, buf, c, 0);
		else if (!strcmp(via, "sendto"))
			r = syscall(SYS_sendto, t.cfd, buf, c, 0, NULL, 0);
		else if (!strcmp(via, "sendmsg"))
			r = syscall(SYS_sendmsg, t.cfd, &mh, 0);
		else if (!strcmp(via, "write"))
			r = syscall(SYS_write, t.cfd, buf, c);
		else if (!strcmp(via, "writev"))
			r = syscall(SYS_writev, t.cfd, iov, 2);
		else if (!strcmp(via, "sendfile")) {
			off_t off = 0;
			r = sendfile(t.cfd, mfd, &off, c);
		} else if (!strcmp(via, "splice")) {
			loff_t off = 0;
			if (splice(mfd, &off, pfd[1], NULL, c, 0) != c)
				die("splice in");
			r = splice(pfd[0], NULL, t.cfd, NULL, c, 0);
		} else {
			errno = EINVAL;
			die(via);
		}
		if (r != c)
			die("tcp send");
		note(i + 1);
	}
	tcp_close(&t);
	if (mfd >= 0)
		close(mfd);
	if (pfd[0] >= 0) {
		close(pfd[0]);
		close(pfd[1]);
	}
	free(buf);
}

static void op_udp(long long n)
{
	long c = chunk > 0 ? chunk : 16;
	struct sockaddr_in addr;
	int rfd = listener(SOCK_DGRAM, &addr);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	char *buf = malloc(c), rbuf[65536];
	long long i;

	if (fd < 0 || !buf)
		die("udp socket");
	memset(buf, 'u', c);
	/* --via write: write(2) on a connected socket, which is no file write. */
	if (!strcmp(via, "write") && connect(fd, (struct sockaddr *)&addr, sizeof(addr)))
		die("udp connect");
	for (i = 0; i < n; i++) {
		if (!strcmp(via, "write")) {
			if (syscall(SYS_write, fd, buf, c) != c)
				die("udp write");
		} else if (sendto(fd, buf, c, 0, (struct sockaddr *)&addr,
				  sizeof(addr)) != c)
			die("sendto");
		while (recv(rfd, rbuf, sizeof(rbuf), MSG_DONTWAIT) > 0)
			;
		note(i + 1);
	}
	close(fd);
	close(rfd);
	free(buf);
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

static void op_clone3_threads(long long n)
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
		note(i + 1);
	}
}

static void op_clone3_forks(long long n)
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
		note(i + 1);
	}
}

/* ---- io_uring, raw: one SQE at a time, wait for its CQE ------------- */

struct uring {
	int fd;
	int enter_fd;		/* fd, or its registered index (uring-reg) */
	unsigned enter_flags;	/* IORING_ENTER_REGISTERED_RING with an index */
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

/* An SQPOLL ring's thread stays awake this long after its last SQE (ms;
 * 0: the kernel's default, 1 s). */
static unsigned sq_idle_ms;

static void uring_setup(struct uring *u, unsigned entries, unsigned flags)
{
	struct io_uring_params p = { .flags = flags, .sq_thread_idle = sq_idle_ms };
	char *sq, *cq;

	u->fd = syscall(SYS_io_uring_setup, entries, &p);
	if (u->fd < 0)
		die("io_uring_setup");
	u->enter_fd = u->fd;
	u->enter_flags = 0;
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

static void uring_init(struct uring *u)
{
	uring_setup(u, 8, 0);
}

/* Submit one SQE (a copy of *tmpl) and wait for its completion: its res. */
static int uring_run(struct uring *u, const struct io_uring_sqe *tmpl)
{
	unsigned tail = *u->sq_tail, idx = tail & *u->sq_mask, head;
	int res;

	u->sqes[idx] = *tmpl;
	u->sq_array[idx] = idx;
	__atomic_store_n(u->sq_tail, tail + 1, __ATOMIC_RELEASE);
	if (syscall(SYS_io_uring_enter, u->enter_fd, 1, 1, IORING_ENTER_GETEVENTS | u->enter_flags,
		    NULL, 0) < 0)
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

static int uring_do(struct uring *u, int op, int fd, void *buf, unsigned len, int flags)
{
	struct io_uring_sqe sqe = {
		.opcode = op, .fd = fd, .addr = (uint64_t)(uintptr_t)buf, .len = len,
		.off = (uint64_t)-1,	/* current file position */
		.flags = flags,
	};

	return uring_run(u, &sqe);
}

static struct uring dring = { .fd = -1 };	/* the uring-direct steps' ring */

/* N opens of /dev/null into the direct table (a new ring with a sparse
 * table of 256 slots the first time): files the ring holds, with no fd. */
static void op_uring_direct(long long n)
{
	struct io_uring_rsrc_register reg = { .nr = 256, .flags = IORING_RSRC_REGISTER_SPARSE };
	struct uring *u = &dring;

	if (u->fd < 0) {
		uring_init(u);
		if (syscall(SYS_io_uring_register, u->fd, IORING_REGISTER_FILES2, &reg, sizeof(reg)))
			die("IORING_REGISTER_FILES2");
	}
	for (long long i = 0; i < n; i++) {
		struct io_uring_sqe sqe = {
			.opcode = IORING_OP_OPENAT, .fd = AT_FDCWD,
			.addr = (uint64_t)(uintptr_t)"/dev/null", .open_flags = O_RDONLY,
			.file_index = IORING_FILE_INDEX_ALLOC,
		};
		int r = uring_run(u, &sqe);

		if (r < 0) {
			errno = -r;
			die("io_uring openat direct");
		}
		note(i + 1);
	}
}

static void op_uring(const char *kind, long long n)
{
	static char buf[65536];
	struct uring u;
	int fd;

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
		struct tcp_conn t;

		tcp_open(&t, 1);
		for (long long i = 0; i < n; i++) {
			int r = uring_do(&u, IORING_OP_SEND, t.cfd, "0123456789abcdef", 16, 0);

			if (r != 16) {
				errno = r < 0 ? -r : EIO;
				die("io_uring send");
			}
			note(i + 1);
		}
		tcp_close(&t);
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
		note(i + 1);
	}
}

/* Wait until fd (OUT, written only here) has grown by n bytes since `from`:
 * writes that post no CQE are done when their bytes are there (a drain
 * NOP does not wait for them). Gives up after 30 s. */
static void wait_written(int fd, off_t from, long long n)
{
	struct stat st;

	for (int i = 0; i < 30000; i++) {
		if (fstat(fd, &st))
			die("fstat OUT");
		if (st.st_size >= from + n)
			return;
		usleep(1000);
	}
	errno = ETIMEDOUT;
	die("io_uring: writes without a CQE never landed");
}

/* Queue n writes of 1 byte to fd at its position, with SQE flags, and
 * publish them (no syscall). */
static void queue_writes(struct uring *u, int fd, long long n, unsigned char flags)
{
	for (long long i = 0; i < n; i++) {
		struct io_uring_sqe sqe = {
			.opcode = IORING_OP_WRITE, .fd = fd, .addr = (uintptr_t)"u",
			.len = 1, .off = (uint64_t)-1, .flags = flags,
		};
		unsigned tail = *u->sq_tail + i, idx = tail & *u->sq_mask;

		u->sqes[idx] = sqe;
		u->sq_array[idx] = idx;
	}
	__atomic_store_n(u->sq_tail, *u->sq_tail + n, __ATOMIC_RELEASE);
}

/* N writes of 1 byte to OUT through one ring (of N entries, at most
 * 4096): wb in one io_uring_enter; wbs the same, each with
 * IOSQE_CQE_SKIP_SUCCESS; ws one io_uring_enter each, with
 * IOSQE_CQE_SKIP_SUCCESS; wsq an SQPOLL ring, each waited for (the
 * kernel's thread submits them). Writes that post no CQE are waited for by
 * OUT's size (OUT must be a regular file then). P_DONE: writes done. */
static void op_uring_batch(const char *kind, long long n)
{
	int fd = outfd(), skip = !strcmp(kind, "wbs") || !strcmp(kind, "ws");
	unsigned entries = 1;
	struct uring u;
	struct stat st;
	off_t from;

	if (fstat(fd, &st))
		die("fstat OUT");
	from = st.st_size;

	while (entries < n && entries < 4096)
		entries <<= 1;
	if (n > entries) {
		errno = EINVAL;
		die("uring batch: at most 4096");
	}
	if (!strcmp(kind, "wsqq")) {
		sq_idle_ms = 60000;
		uring_setup(&u, entries, IORING_SETUP_SQPOLL);
		/* The thread sleeps until its first SQE, and then stays awake
		 * sq_idle_ms after its last: one NOP, woken and waited for. */
		u.sqes[*u.sq_tail & *u.sq_mask] = (struct io_uring_sqe){ .opcode = IORING_OP_NOP };
		u.sq_array[*u.sq_tail & *u.sq_mask] = *u.sq_tail & *u.sq_mask;
		__atomic_store_n(u.sq_tail, *u.sq_tail + 1, __ATOMIC_RELEASE);
		if (syscall(SYS_io_uring_enter, u.fd, 0, 1,
			    IORING_ENTER_GETEVENTS | IORING_ENTER_SQ_WAKEUP, NULL, 0) < 0)
			die("io_uring_enter");
		__atomic_store_n(u.cq_head, *u.cq_head + 1, __ATOMIC_RELEASE);
		/* From here on no syscall: wait for the test's go-ahead (P_CTL),
		 * hand all n to the awake SQPOLL thread, and wait for their CQEs,
		 * spinning on memory each time. */
		progress_set(P_STATE, S_WAITING);
		while (!progress_get(P_CTL))
			__builtin_ia32_pause();
		progress_set(P_STATE, S_RUNNING);
		queue_writes(&u, fd, n, 0);
		while (__atomic_load_n(u.cq_tail, __ATOMIC_ACQUIRE) - *u.cq_head < n)
			__builtin_ia32_pause();
		note(n);
		return;
	}
	uring_setup(&u, entries, !strcmp(kind, "wsq") ? IORING_SETUP_SQPOLL : 0);
	if (!strcmp(kind, "wsq")) {
		for (long long i = 0; i < n; i++) {
			struct io_uring_sqe sqe = {
				.opcode = IORING_OP_WRITE, .fd = fd, .addr = (uintptr_t)"u",
				.len = 1, .off = (uint64_t)-1,
			};
			unsigned tail = *u.sq_tail, idx = tail & *u.sq_mask, head;

			u.sqes[idx] = sqe;
			u.sq_array[idx] = idx;
			__atomic_store_n(u.sq_tail, tail + 1, __ATOMIC_RELEASE);
			/* Wake the thread if it sleeps, then wait for the CQE. */
			if (syscall(SYS_io_uring_enter, u.fd, 0, 1,
				    IORING_ENTER_GETEVENTS | IORING_ENTER_SQ_WAKEUP, NULL, 0) < 0)
				die("io_uring_enter");
			head = *u.cq_head;
			if (head == __atomic_load_n(u.cq_tail, __ATOMIC_ACQUIRE) ||
			    u.cqes[head & *u.cq_mask].res != 1) {
				errno = EIO;
				die("io_uring sqpoll write");
			}
			__atomic_store_n(u.cq_head, head + 1, __ATOMIC_RELEASE);
			note(i + 1);
		}
		return;
	}
	if (!strcmp(kind, "ws")) {
		for (long long i = 0; i < n; i++) {
			struct io_uring_sqe sqe = {
				.opcode = IORING_OP_WRITE, .fd = fd, .addr = (uintptr_t)"u",
				.len = 1, .off = (uint64_t)-1, .flags = IOSQE_CQE_SKIP_SUCCESS,
			};
			unsigned tail = *u.sq_tail, idx = tail & *u.sq_mask;

			u.sqes[idx] = sqe;
			u.sq_array[idx] = idx;
			__atomic_store_n(u.sq_tail, tail + 1, __ATOMIC_RELEASE);
			if (syscall(SYS_io_uring_enter, u.fd, 1, 0, 0, NULL, 0) != 1)
				die("io_uring_enter");
			note(i + 1);
		}
		wait_written(fd, from, n);
		return;
	}
	queue_writes(&u, fd, n, skip ? IOSQE_CQE_SKIP_SUCCESS : 0);
	if (syscall(SYS_io_uring_enter, u.fd, n, skip ? 0 : n, skip ? 0 : IORING_ENTER_GETEVENTS,
		    NULL, 0) != n)
		die("io_uring_enter");
	if (skip)
		wait_written(fd, from, n);
	note(n);
}

/* ---- Linux AIO (io_setup, io_submit, io_getevents), raw ------------- */

/* N writes of 1 byte to OUT: aw one io_submit each; awb all in one
 * io_submit (at most 4096). ar: N bytes read from IN (/dev/zero), 64 KiB a
 * request, each reaped with io_getevents. P_DONE: requests completed. */
static void op_aio(const char *kind, long long n)
{
	static char buf[65536];
	aio_context_t ctx = 0;
	struct io_event ev[64];
	int fd;

	if (syscall(SYS_io_setup, 4096, &ctx))
		die("io_setup");
	if (!strcmp(kind, "ar")) {
		long long done = 0;

		fd = open(in_path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			die("open IN");
		while (done < n) {
			struct iocb cb = {
				.aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = fd,
				.aio_buf = (uintptr_t)buf,
				.aio_nbytes = n - done < (long long)sizeof(buf) ? n - done : sizeof(buf),
			}, *cbs[1] = { &cb };

			if (syscall(SYS_io_submit, ctx, 1, cbs) != 1 ||
			    syscall(SYS_io_getevents, ctx, 1, 1, ev, NULL) != 1)
				die("aio read");
			if (ev[0].res <= 0) {
				errno = ev[0].res < 0 ? -ev[0].res : EIO;
				die("aio read");
			}
			done += ev[0].res;
			note(done);
		}
		return;
	}
	fd = outfd();
	if (!strcmp(kind, "awb")) {
		static struct iocb cb[4096];
		static struct iocb *cbs[4096];

		if (n > 4096) {
			errno = EINVAL;
			die("aio batch: at most 4096");
		}
		for (long long i = 0; i < n; i++) {
			cb[i] = (struct iocb){ .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_fildes = fd,
					       .aio_buf = (uintptr_t)"a", .aio_nbytes = 1 };
			cbs[i] = &cb[i];
		}
		if (syscall(SYS_io_submit, ctx, n, cbs) != n)
			die("io_submit");
		note(n);
		return;
	}
	for (long long i = 0; i < n; i++) {
		struct iocb cb = { .aio_lio_opcode = IOCB_CMD_PWRITE, .aio_fildes = fd,
				   .aio_buf = (uintptr_t)"a", .aio_nbytes = 1 }, *cbs[1] = { &cb };

		if (syscall(SYS_io_submit, ctx, 1, cbs) != 1 ||
		    syscall(SYS_io_getevents, ctx, 1, 1, ev, NULL) != 1)
			die("aio write");
		if (ev[0].res != 1) {
			errno = ev[0].res < 0 ? -ev[0].res : EIO;
			die("aio write");
		}
		note(i + 1);
	}
}

static void op_sendfile(const char *how, long long n)
{
	int mfd = memfd_create("oomp_work", 0), dfd = open("/dev/null", O_WRONLY | O_CLOEXEC);
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

/* ---- threads and processes ------------------------------------------ */

static pthread_barrier_t bar;
static long long race_n;

static void *race_body(void *arg)
{
	pthread_barrier_wait(&bar);
	op_writes("write", race_n);
	return arg;
}

static void op_race(int t, long long n)
{
	pthread_t th[1024];

	race_n = n;
	outfd();	/* opened once, before the threads race to it */
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
		progress_set(P_A, syscall(SYS_gettid));
		op_writes("write", mt_n);
	}
	for (;;)
		pause();
	return NULL;
}

static void op_mt(int t, int k, long long n)
{
	pthread_t th;

	mt_n = n;
	mt_writer = -1;
	outfd();
	for (int i = 1; i < t; i++) {
		errno = pthread_create(&th, NULL, mt_entry, (void *)(long)i);
		if (errno)
			die("pthread_create");
	}
	while (__atomic_load_n(&mt_started, __ATOMIC_SEQ_CST) < t - 1)
		sched_yield();
	progress_set(P_STATE, S_SLEEPING);
	__atomic_store_n(&mt_writer, k < 0 ? 1 : k, __ATOMIC_SEQ_CST);
	if (k < 0)
		pthread_exit(NULL);	/* the leader becomes a zombie; the group lives */
	mt_entry((void *)0L);
}

static void op_fork_writes(int use_vfork, long long n)
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
	progress_set(P_A, pid);
	if (waitpid(pid, &st, 0) != pid)
		die("waitpid");
	progress_set(P_B, st);
}

/* One burst child's work: op 0 writes, 1 reads bytes, 2 rand() calls. */
static void burst_child(int op, long long m)
{
	static char buf[65536];
	int fd = op == 1 ? syscall(SYS_open, "/dev/zero", O_RDONLY) :
			   syscall(SYS_open, "/dev/null", O_WRONLY);

	for (long long i = 0; i < m;) {
		if (op == 1) {
			long long left = m - i;
			long r = syscall(SYS_read, fd, buf, left < (long long)sizeof(buf) ?
					 left : (long long)sizeof(buf));

			if (r <= 0)
				_exit(3);
			i += r;
		} else if (op == 2) {
			rand_sink += rand();
			i++;
		} else {
			syscall(SYS_write, fd, "b", 1);
			i++;
		}
	}
}

static void op_burst(long long n, long long m, int sleep_after, int op, int together)
{
	long long started = 0, reaped = 0, killed = 0, other = 0;
	int st, go[2] = { -1, -1 };

	/* Together: every child blocks on the pipe until all are forked and
	 * the parent closes its end (read() returning 0 counts nothing). */
	if (together && pipe(go))
		die("pipe");
	while (reaped < n) {
		while (started < n && (sleep_after || together || started - reaped < 64)) {
			pid_t pid = fork();

			if (pid < 0)
				die("fork");
			if (pid == 0) {
				char c;

				if (together) {
					close(go[1]);
					while (read(go[0], &c, 1) > 0)
						;
				}
				burst_child(op, m);
				if (sleep_after)
					for (;;)
						pause();
				_exit(0);
			}
			started++;
			progress_set(P_DONE, started);
		}
		if (together && go[1] >= 0) {
			close(go[1]);
			close(go[0]);
			go[1] = -1;
		}
		if (sleep_after && !progress_get(P_CTL)) {
			progress_set(P_STATE, S_WAITING);
			while (!progress_get(P_CTL))
				usleep(10000);
			progress_set(P_STATE, S_RUNNING);
		}
		if (wait(&st) < 0)
			die("wait");
		reaped++;
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)
			killed++;
		else
			other++;
		progress_set(P_A, killed);
		progress_set(P_B, other);
	}
}

static void *fifo_open_body(void *arg)
{
	if (open(in_path, O_RDONLY) < 0)
		die("open fifo");
	for (;;)
		pause();
	return arg;
}

static void op_fifo_open(long long n)
{
	pthread_t th;

	for (long long i = 0; i < n; i++) {
		errno = pthread_create(&th, NULL, fifo_open_body, NULL);
		if (errno)
			die("pthread_create");
		progress_set(P_DONE, i + 1);
	}
}

/* ---- waiting -------------------------------------------------------- */

/* SIGUSR1 is blocked from the start, so one sent early waits pending. */
static void wait_usr1(void)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	while (sigwaitinfo(&set, NULL) != SIGUSR1)
		;
}

static void op_follow(long long n)
{
	int fd = outfd();

	progress_set(P_CTL, n);
	for (;;) {
		progress_set(P_STATE, S_RUNNING);
		while (progress_get(P_DONE) < progress_get(P_CTL)) {
			if (syscall(SYS_write, fd, "f", 1) != 1)
				die("write");
			progress_add(P_DONE, 1);
			progress_add(P_TOTAL, 1);
		}
		progress_set(P_STATE, S_SLEEPING);
		wait_usr1();
	}
}

static void op_all(void)
{
	/* Every rule crossed, by a margin, for the non-target tests. */
	op_writes("write", 150);
	op_reads("read", 11LL << 20);
	op_threads(150);
	op_rand(150);
	op_tcp(1500);
	op_fds("open", 150);
}

static void op_exec(const char *path, char **rest, int nrest)
{
	char **nargv = calloc(opt_argc + nrest + 4, sizeof(*nargv)), img[16];
	int j = 0;

	if (!nargv)
		die("calloc");
	nargv[j++] = (char *)path;
	for (int k = 1; k < opt_argc; k++) {
		if (!strcmp(opt_argv[k], "--image")) {
			k++;	/* replaced below */
			continue;
		}
		nargv[j++] = opt_argv[k];
	}
	snprintf(img, sizeof(img), "%d", image + 1);
	nargv[j++] = "--image";
	nargv[j++] = img;
	for (int k = 0; k < nrest; k++)
		nargv[j++] = rest[k];
	/* the path as given, not /proc/self/exe: comm comes from its name */
	execv(path, nargv);
	die("execv");
}

struct texec {
	char **steps;
	int nsteps;
};

static void *texec_body(void *arg)
{
	struct texec *te = arg;

	op_exec(opt_argv[0], te->steps, te->nsteps);
	return NULL;
}

/* exec from a new thread, so the exec'ing thread is not the leader: its old
 * tid disappears without an exit (issue 17: such records once leaked). */
static void op_texec(long long n, char **rest, int nrest)
{
	char **steps = calloc(nrest + 1, sizeof(*steps)), next[32];
	struct texec te = { steps, nrest + 1 };
	pthread_t th;

	if (!steps)
		die("calloc");
	snprintf(next, sizeof(next), "texec:%lld", n - 1);
	steps[0] = next;
	memcpy(steps + 1, rest, nrest * sizeof(*rest));
	errno = pthread_create(&th, NULL, texec_body, &te);
	if (errno)
		die("pthread_create");
	pthread_join(th, NULL);	/* never returns: the exec replaces us */
	die("texec");
}

/* ---- steps ---------------------------------------------------------- */

static int run_steps(char **steps, int nsteps);

struct thread_step {
	const char *name;
	char **steps;
};

static void *thread_step_body(void *arg)
{
	struct thread_step *ts = arg;

	if (ts->name && prctl(PR_SET_NAME, ts->name, 0, 0, 0))
		die("prctl thread");
	run_steps(ts->steps, 1);
	return NULL;
}

/* Run steps[0]; returns how many steps it consumed (thread runs two). */
static int run_step(char **steps, int nsteps)
{
	char *s = steps[0], *v = strchr(s, ':'), name[32];
	const char *arg = v ? v + 1 : "";
	long long n = v ? num(arg) : 0;
	size_t len = v ? (size_t)(v - s) : strlen(s);

	if (len >= sizeof(name))
		len = sizeof(name) - 1;
	memcpy(name, s, len);
	name[len] = 0;
	progress_set(P_DONE, 0);
	if (is_fd_op(name))
		op_fds(name, n);
	else if (!strcmp(name, "close"))
		op_close();
	else if (is_write_op(name))
		op_writes(name, n);
	else if (is_read_op(name))
		op_reads(name, n);
	else if (!strcmp(name, "threads"))
		op_threads(n);
	else if (!strcmp(name, "fifo-open"))
		op_fifo_open(n);
	else if (!strcmp(name, "c3"))
		op_clone3_threads(n);
	else if (!strcmp(name, "c3fork"))
		op_clone3_forks(n);
	else if (!strcmp(name, "rand"))
		op_rand(n);
	else if (!strcmp(name, "tcp-send"))
		op_tcp(n);
	else if (!strcmp(name, "udp-send"))
		op_udp(n);
	else if (!strcmp(name, "uring-w") || !strcmp(name, "uring-aw") ||
		 !strcmp(name, "uring-r") || !strcmp(name, "uring-send"))
		op_uring(name + 6, n);
	else if (!strcmp(name, "uring-wb") || !strcmp(name, "uring-wbs") ||
		 !strcmp(name, "uring-ws") || !strcmp(name, "uring-wsq") ||
		 !strcmp(name, "uring-wsqq"))
		op_uring_batch(name + 6, n);
	else if (!strcmp(name, "aio-aw") || !strcmp(name, "aio-awb") || !strcmp(name, "aio-ar"))
		op_aio(name + 4, n);
	else if (!strcmp(name, "uring-direct"))
		op_uring_direct(n);
	else if (!strcmp(name, "uring-drop")) {
		if (syscall(SYS_io_uring_register, dring.fd, IORING_UNREGISTER_FILES, NULL, 0))
			die("IORING_UNREGISTER_FILES");
	} else if (!strcmp(name, "uring-close")) {
		if (close(dring.fd))
			die("close ring");
	} else if (!strcmp(name, "uring-reg")) {
		struct io_uring_rsrc_update up = { .offset = -1U, .data = dring.fd };

		if (syscall(SYS_io_uring_register, dring.fd, IORING_REGISTER_RING_FDS, &up, 1) != 1 ||
		    close(dring.fd))
			die("IORING_REGISTER_RING_FDS");
		dring.enter_fd = up.offset;
		dring.enter_flags = IORING_ENTER_REGISTERED_RING;
	} else if (!strcmp(name, "sendfile") || !strcmp(name, "splice"))
		op_sendfile(name, n);
	else if (!strcmp(name, "all"))
		op_all();
	else if (!strcmp(name, "forkw") || !strcmp(name, "vforkw"))
		op_fork_writes(name[0] == 'v', n);
	else if (!strcmp(name, "race")) {
		char *w = strchr(arg, ':');

		if (!w)
			goto bad;
		op_race(atoi(arg), num(w + 1));
	} else if (!strcmp(name, "mt")) {
		char *k = strchr(arg, ':'), *w = k ? strchr(k + 1, ':') : NULL;

		if (!w)
			goto bad;
		op_mt(atoi(arg), atoi(k + 1), num(w + 1));
	} else if (!strcmp(name, "burst")) {
		char *m = strchr(arg, ':'), *z = m ? strchr(m + 1, ':') : NULL;
		char *o = z ? strchr(z + 1, ':') : NULL;
		int op = !o || !strcmp(o + 1, "write") ? 0 : !strcmp(o + 1, "read") ? 1 :
			 !strcmp(o + 1, "rand") ? 2 : -1;

		if (!z || op < 0)
			goto bad;
		op_burst(num(arg), num(m + 1), atoi(z + 1), op, o != NULL);
	} else if (!strcmp(name, "name")) {
		if (prctl(PR_SET_NAME, arg, 0, 0, 0))
			die("prctl");
	} else if (!strcmp(name, "thread")) {
		struct thread_step ts = { v ? arg : NULL, steps + 1 };
		pthread_t th;

		if (nsteps < 2)
			goto bad;
		errno = pthread_create(&th, NULL, thread_step_body, &ts);
		if (errno)
			die("pthread_create");
		pthread_join(th, NULL);
		return 2;
	} else if (!strcmp(name, "exec")) {
		op_exec(arg, steps + 1, nsteps - 1);
	} else if (!strcmp(name, "texec")) {
		if (n > 0)
			op_texec(n, steps + 1, nsteps - 1);
	} else if (!strcmp(name, "gate")) {
		int fd = v ? (int)n : 3;
		char c;

		progress_set(P_STATE, S_WAITING);
		while (read(fd, &c, 1) > 0)
			;
		progress_set(P_STATE, S_RUNNING);
	} else if (!strcmp(name, "sig")) {
		progress_set(P_STATE, S_WAITING);
		wait_usr1();
		progress_set(P_STATE, S_RUNNING);
	} else if (!strcmp(name, "follow")) {
		op_follow(n);
	} else if (!strcmp(name, "pause")) {
		progress_set(P_STATE, S_SLEEPING);
		for (;;)
			pause();
	} else if (!strcmp(name, "sleep")) {
		struct timespec ts = { n / 1000, (n % 1000) * 1000000 };

		nanosleep(&ts, NULL);
	} else {
		goto bad;
	}
	return 1;
bad:
	dprintf(2, "oomp_work: bad step %s (see the steps in oomp_work.c)\n", s);
	exit(2);
}

static int run_steps(char **steps, int nsteps)
{
	int i = 0;

	while (i < nsteps) {
		int used = run_step(steps + i, nsteps - i);

		i += used;
		progress_add(P_STEPS, used);
	}
	return i;
}

static void usage(void)
{
	dprintf(2, "usage: oomp_work [-p PROGRESS] [-o OUT] [-i IN] [-c CHUNK] "
		"[-t TIMEOUT_S] [--total] [--via HOW] [--nodelay] [--maxseg B] "
		"[--segs K] [--v6] [--mptcp] [--server-tcp] [--mtu B] [--base N] [--stride N] [--concurrent] [--rename NAME] "
		"STEP...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "progress", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ "in", required_argument, NULL, 'i' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "total", no_argument, NULL, 'T' },
		{ "via", required_argument, NULL, 'v' },
		{ "nodelay", no_argument, NULL, 'N' },
		{ "maxseg", required_argument, NULL, 'M' },
		{ "segs", required_argument, NULL, 'K' },
		{ "base", required_argument, NULL, 'b' },
		{ "stride", required_argument, NULL, 's' },
		{ "concurrent", no_argument, NULL, 'C' },
		{ "v6", no_argument, NULL, '6' },
		{ "mptcp", no_argument, NULL, 'm' },
		{ "server-tcp", no_argument, NULL, 'S' },
		{ "mtu", required_argument, NULL, 'U' },
		{ "rename", required_argument, NULL, 'R' },
		{ "image", required_argument, NULL, 'I' },	/* set by exec */
		{ NULL, 0, NULL, 0 },
	};
	const char *prog_path = NULL;
	unsigned timeout_s = 120;
	sigset_t blocked;
	struct rlimit rl;
	int c;

	while ((c = getopt_long(argc, argv, "p:o:i:c:t:", opts, NULL)) != -1) {
		switch (c) {
		case 'p': prog_path = optarg; break;
		case 'o': out_path = optarg; break;
		case 'i': in_path = optarg; break;
		case 'c': chunk = atol(optarg); break;
		case 't': timeout_s = atoi(optarg); break;
		case 'T': opt_total = 1; break;
		case 'v': via = optarg; break;
		case 'N': opt_nodelay = 1; break;
		case 'M': maxseg = atol(optarg); break;
		case 'K': segs = atol(optarg); break;
		case 'b': fd_base = atol(optarg); break;
		case 's': fd_stride = atol(optarg); break;
		case 'C': opt_concurrent = 1; break;
		case '6': opt_v6 = 1; break;
		case 'm': opt_mptcp = 1; break;
		case 'S': opt_server_tcp = 1; break;
		case 'U': mtu = atol(optarg); break;
		case 'R': rename_to = optarg; break;
		case 'I': image = atoi(optarg); break;
		default: usage();
		}
	}
	if (optind >= argc)
		usage();
	/* getopt has moved the options before the steps: exec passes them on */
	opt_argv = argv;
	opt_argc = optind;

	/* Safety net: nothing a test starts outlives it for long. */
	alarm(timeout_s);
	/* sparse fds go high: lift the soft limit to the hard one */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	/* SIGUSR1 is for sig and follow: blocked, it waits pending, never kills */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGUSR1);
	sigprocmask(SIG_BLOCK, &blocked, NULL);
	if (prog_path && progress_map(prog_path, image))
		die("progress");
	if (mtu > 0 && !image)
		private_loopback(mtu);
	run_steps(argv + optind, argc - optind);
	progress_set(P_STATE, S_FINISHED);
	return 0;
}
