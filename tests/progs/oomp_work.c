// SPDX-License-Identifier: GPL-2.0
/*
 * oomp_work: one parameterised workload for the e2e tests.
 *
 *   oomp_work OP COUNT [options]
 *
 * It does COUNT units of OP (calls, bytes for reads, fds for fd ops), then
 * prints "done" and exits 0. Its name contains "oomp", so it is a target; a
 * copy under a name without "oomp" is not.
 *
 * Progress is observable without syscalls (a syscall could itself count
 * toward a rule): with -p FILE the program mmaps FILE shared and stores
 * progress there after every unit (layout in enum prog_slot). For the write
 * ops the output file's size tells how many writes completed; the progress
 * counter is stored after each call returns, so a process killed in the hook
 * of its Nth write shows size N*chunk and progress N-1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/openat2.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
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
#include <unistd.h>

/* Progress file: little-endian u64 slots. */
enum prog_slot {
	P_MAGIC = 0,	/* PROG_MAGIC once mapped */
	P_DONE,		/* units completed in the current image */
	P_STATE,	/* enum prog_state */
	P_IMAGE,	/* 0, or 1 after the exec of --exec-reset */
	P_PID,
	P_TOTAL,	/* progress notes (calls, fds) over all images */
	P_BASE,		/* units the process had before its work (--total) */
	P_MSS,		/* tcp-send: the connection's MSS (TCP_MAXSEG) */
	P_SLOTS = 8,
};
enum prog_state { S_RUNNING = 1, S_FINISHED = 2, S_SLEEPING = 3 };
#define PROG_MAGIC 0x706d6f6fULL /* "oomp" */

static volatile uint64_t dummy_prog[P_SLOTS];
static volatile uint64_t *prog = dummy_prog;

static const char *op_name;
static long long count;
static const char *out_path;
static const char *in_path = "/dev/zero";
static const char *prog_path;
static const char *rename_to;
static const char *via = "send";
static long chunk = -1;
static int opt_total, opt_sleep, opt_exec_reset, opt_in_thread, opt_quiet;
static int opt_nodelay, opt_concurrent, image;
static long fd_base = 1000, fd_stride = 37, maxseg, segs;
static unsigned timeout_s = 120;
static char **saved_argv;
static int saved_argc;

static void die(const char *what)
{
	dprintf(2, "oomp_work: %s: %s\n", what, strerror(errno));
	exit(3);
}

static void note(uint64_t done)
{
	__atomic_store_n(&prog[P_DONE], done, __ATOMIC_SEQ_CST);
	__atomic_add_fetch(&prog[P_TOTAL], 1, __ATOMIC_SEQ_CST);
}

static void map_progress(void)
{
	int fd;
	void *p;

	if (!prog_path)
		return;
	fd = open(prog_path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		die("open progress");
	if (ftruncate(fd, P_SLOTS * sizeof(uint64_t)))
		die("ftruncate progress");
	p = mmap(NULL, P_SLOTS * sizeof(uint64_t), PROT_READ | PROT_WRITE,
		 MAP_SHARED, fd, 0);
	if (p == MAP_FAILED)
		die("mmap progress");
	close(fd);
	prog = p;
	if (image == 0)
		prog[P_TOTAL] = 0;
	prog[P_DONE] = 0;
	prog[P_IMAGE] = image;
	prog[P_PID] = getpid();
	prog[P_MAGIC] = PROG_MAGIC;
	prog[P_STATE] = S_RUNNING;
}

/* ---- fds ---------------------------------------------------------- */

static long count_open_fds(void)
{
	struct rlimit rl;
	long n = 0, fd, max = 65536;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < (rlim_t)max)
		max = rl.rlim_cur;
	for (fd = 0; fd < max; fd++)
		if (fcntl(fd, F_GETFD) >= 0)
			n++;
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

	prog[P_BASE] = have;
	target = opt_total ? n : have + n;
	if (is_accept) {
		lfd = listener(SOCK_STREAM, &addr);
		have++;
	}
	if (!strcmp(op, "dup2-high") || !strcmp(op, "dup3"))
		next_high = fd_base;
	/* pairs: make the remaining count even, so the last call lands on it */
	while (pairs && (target - have) % 2) {
		if (syscall(SYS_open, "/dev/null", O_RDONLY) < 0)
			die("open");
		have++;
	}
	prog[P_DONE] = have;
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
			if (!r) { have++; r = fds[1]; }
		} else if (!strcmp(op, "pipe")) {
			r = syscall(SYS_pipe, fds);
			if (!r) { have++; r = fds[1]; }
		} else if (!strcmp(op, "pipe2")) {
			r = syscall(SYS_pipe2, fds, 0);
			if (!r) { have++; r = fds[1]; }
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
		have++;
		if (!is_accept)
			note(have);
	}
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

static void op_writes(const char *op, long long n)
{
	long c = chunk > 0 ? chunk : 16;
	char *buf = malloc(c);
	off_t base = 0;
	int fd;
	long long i;

	if (!buf)
		die("malloc");
	memset(buf, 'w', c);
	if (out_path) {
		fd = open(out_path, O_WRONLY | O_CREAT | (image ? 0 : O_TRUNC) |
			  O_CLOEXEC, 0644);
		if (fd < 0)
			die("open out");
		base = lseek(fd, 0, SEEK_END);
	} else {
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd < 0)
			die("open /dev/null");
	}
	for (i = 0; i < n; i++) {
		off_t off = base + i * c;
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
		note(i + 1);
	}
	close(fd);
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
#include <elf.h>
#include <link.h>
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

		prog[P_BASE] = before;
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

static void op_tcp(long long n)
{
	long c = chunk > 0 ? chunk : 16;
	struct sockaddr_in addr;
	int lfd = listener(SOCK_STREAM, &addr), cfd, sfd, one = 1;
	int maxseg_i = (int)maxseg, mss = 0;
	socklen_t mlen = sizeof(mss);
	int mfd = -1, pfd[2] = { -1, -1 };
	char *buf = malloc(c);
	pthread_t th;
	long long i;

	if (!buf)
		die("malloc");
	memset(buf, 't', c);
	cfd = socket(AF_INET, SOCK_STREAM, 0);
	if (cfd < 0)
		die("socket");
	if (opt_nodelay && setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one,
				      sizeof(one)))
		die("TCP_NODELAY");
	if (maxseg && setsockopt(cfd, IPPROTO_TCP, TCP_MAXSEG, &maxseg_i,
				 sizeof(maxseg_i)))
		die("TCP_MAXSEG");
	if (connect(cfd, (struct sockaddr *)&addr, sizeof(addr)))
		die("connect");
	sfd = accept(lfd, NULL, NULL);
	if (sfd < 0)
		die("accept");
	/* connected: TCP_MAXSEG reads back the MSS in use (tp->mss_cache) */
	if (getsockopt(cfd, IPPROTO_TCP, TCP_MAXSEG, &mss, &mlen))
		die("getsockopt TCP_MAXSEG");
	prog[P_MSS] = mss;
	if (segs > 0) {
		/* --segs K: K*mss - mss/2 bytes, which is K segments */
		c = segs * mss - mss / 2;
		buf = realloc(buf, c);
		if (!buf)
			die("realloc");
		memset(buf, 't', c);
	}
	/* receiver in a thread, so large sends never block on a full buffer */
	errno = pthread_create(&th, NULL, drain, (void *)(long)sfd);
	if (errno)
		die("pthread_create");
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
			r = send(cfd, buf, c, 0);
		else if (!strcmp(via, "sendto"))
			r = syscall(SYS_sendto, cfd, buf, c, 0, NULL, 0);
		else if (!strcmp(via, "sendmsg"))
			r = syscall(SYS_sendmsg, cfd, &mh, 0);
		else if (!strcmp(via, "write"))
			r = syscall(SYS_write, cfd, buf, c);
		else if (!strcmp(via, "writev"))
			r = syscall(SYS_writev, cfd, iov, 2);
		else if (!strcmp(via, "sendfile")) {
			off_t off = 0;
			r = sendfile(cfd, mfd, &off, c);
		} else if (!strcmp(via, "splice")) {
			loff_t off = 0;
			if (splice(mfd, &off, pfd[1], NULL, c, 0) != c)
				die("splice in");
			r = splice(pfd[0], NULL, cfd, NULL, c, 0);
		} else {
			errno = EINVAL;
			die(via);
		}
		if (r != c)
			die("tcp send");
		note(i + 1);
	}
	shutdown(cfd, SHUT_WR);
	pthread_join(th, NULL);
	close(cfd);
	close(sfd);
	close(lfd);
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

/* ---- dispatch ------------------------------------------------------ */

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

static void run_op(const char *op, long long n)
{
	if (is_fd_op(op))
		op_fds(op, n);
	else if (is_write_op(op))
		op_writes(op, n);
	else if (is_read_op(op))
		op_reads(op, n);
	else if (!strcmp(op, "threads"))
		op_threads(n);
	else if (!strcmp(op, "rand"))
		op_rand(n);
	else if (!strcmp(op, "tcp-send"))
		op_tcp(n);
	else if (!strcmp(op, "udp-send"))
		op_udp(n);
	else if (!strcmp(op, "sleep"))
		; /* nothing: pair with --then-sleep */
	else if (!strcmp(op, "all")) {
		/* Every rule crossed, by a margin, for the non-target test. */
		op_writes("write", 150);
		op_reads("read", 11LL << 20);
		op_threads(150);
		op_rand(150);
		op_tcp(1500);
		op_fds("open", 150);
	} else {
		dprintf(2, "oomp_work: unknown op %s\n", op);
		exit(2);
	}
}

static void *op_thread(void *arg)
{
	(void)arg;
	rename_self();
	run_op(op_name, count);
	return NULL;
}

static void exec_self(void)
{
	char path[PATH_MAX], **argv;
	ssize_t len = readlink("/proc/self/exe", path, sizeof(path) - 1);
	int i, j = 0;

	if (len < 0)
		die("readlink");
	path[len] = 0;
	argv = calloc(saved_argc + 3, sizeof(*argv));
	if (!argv)
		die("calloc");
	for (i = 0; i < saved_argc; i++)
		argv[j++] = saved_argv[i];
	argv[j++] = "--image";
	argv[j++] = "1";
	argv[j] = NULL;
	/* exec the real path, not /proc/self/exe: comm comes from its name */
	execv(path, argv);
	die("execv");
}

static void usage(void)
{
	dprintf(2, "usage: oomp_work OP COUNT [-o OUT] [-i IN] [-p PROGRESS] "
		"[-c CHUNK] [--total] [--then-sleep] [--exec-reset] "
		"[--in-thread] [--rename NAME] [--via HOW] [--nodelay] "
		"[--base N] [--stride N] [--concurrent] [--maxseg N] [--segs K] "
		"[-q] [--timeout S]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "in", required_argument, NULL, 'i' },
		{ "progress", required_argument, NULL, 'p' },
		{ "chunk", required_argument, NULL, 'c' },
		{ "total", no_argument, NULL, 'T' },
		{ "then-sleep", no_argument, NULL, 'S' },
		{ "exec-reset", no_argument, NULL, 'E' },
		{ "in-thread", no_argument, NULL, 'H' },
		{ "rename", required_argument, NULL, 'R' },
		{ "via", required_argument, NULL, 'v' },
		{ "nodelay", no_argument, NULL, 'N' },
		{ "base", required_argument, NULL, 'b' },
		{ "stride", required_argument, NULL, 's' },
		{ "concurrent", no_argument, NULL, 'C' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "timeout", required_argument, NULL, 't' },
		{ "image", required_argument, NULL, 'I' },
		{ "maxseg", required_argument, NULL, 'M' },
		{ "segs", required_argument, NULL, 'K' },
		{ NULL, 0, NULL, 0 },
	};
	struct rlimit rl;
	int c;

	saved_argc = argc;
	saved_argv = argv;
	while ((c = getopt_long(argc, argv, "o:i:p:c:qt:", opts, NULL)) != -1) {
		switch (c) {
		case 'o': out_path = optarg; break;
		case 'i': in_path = optarg; break;
		case 'p': prog_path = optarg; break;
		case 'c': chunk = atol(optarg); break;
		case 'T': opt_total = 1; break;
		case 'S': opt_sleep = 1; break;
		case 'E': opt_exec_reset = 1; break;
		case 'H': opt_in_thread = 1; break;
		case 'R': rename_to = optarg; break;
		case 'v': via = optarg; break;
		case 'N': opt_nodelay = 1; break;
		case 'b': fd_base = atol(optarg); break;
		case 's': fd_stride = atol(optarg); break;
		case 'C': opt_concurrent = 1; break;
		case 'q': opt_quiet = 1; break;
		case 't': timeout_s = atoi(optarg); break;
		case 'I': image = atoi(optarg); break;
		case 'M': maxseg = atol(optarg); break;
		case 'K': segs = atol(optarg); break;
		default: usage();
		}
	}
	if (argc - optind != 2)
		usage();
	op_name = argv[optind];
	count = atoll(argv[optind + 1]);
	if (count < 0)
		usage();

	/* Safety net: nothing a test starts outlives it for long. */
	alarm(timeout_s);
	/* sparse fds go high: lift the soft limit to the hard one */
	if (!getrlimit(RLIMIT_NOFILE, &rl)) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	map_progress();

	if (opt_in_thread) {
		pthread_t t;

		errno = pthread_create(&t, NULL, op_thread, NULL);
		if (errno)
			die("pthread_create");
		pthread_join(t, NULL);
	} else {
		run_op(op_name, count);
	}
	if (opt_exec_reset && image == 0)
		exec_self();

	prog[P_STATE] = S_FINISHED;
	if (opt_sleep) {
		prog[P_STATE] = S_SLEEPING;
		for (;;)
			pause();
	}
	if (!opt_quiet)
		printf("done %s %lld\n", op_name, count);
	return 0;
}
