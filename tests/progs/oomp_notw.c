// SPDX-License-Identifier: GPL-2.0
/*
 * oomp_notw: what is and is not a write, and descriptors made by calls the
 * per-syscall hooks never listed (issue 17). Built 64- and 32-bit (gcc -m32).
 *
 *   oomp_notw notw OUT N   ~750 calls that bump syscw without being a write
 *                          (writev-family EBADF, EFAULT, EINVAL, ESPIPE,
 *                          EOPNOTSUPP, zero-length writev on a file and on a
 *                          TCP socket, empty sendfile to a TCP socket), then
 *                          N one-byte write()s to OUT
 *   oomp_notw epipe N      N write()/writev() calls that fail with EPIPE (they
 *                          reach the pipe's write method)
 *   oomp_notw eagain N     one write that fills a non-blocking pipe, then N
 *                          write()/writev() calls that fail with EAGAIN
 *   oomp_notw nsfd N       N descriptors from ioctl(NS_GET_USERNS)
 *
 * Each prints "done" (one write more) and exits 0 when it gets to the end;
 * exit 3 when a call does not fail or succeed as it should.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void fail(const char *what)
{
	fprintf(stderr, "oomp_notw: %s: %s\n", what, strerror(errno));
	exit(3);
}

/* The call must fail with err. */
static void want(long ret, int err, const char *what)
{
	if (ret != -1 || errno != err)
		fail(what);
}

static int tcp_pair(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM, 0), c = socket(AF_INET, SOCK_STREAM, 0);

	if (l < 0 || c < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len) ||
	    connect(c, (struct sockaddr *)&a, sizeof(a)))
		fail("tcp");
	return c;
}

static void notw(const char *out, long n)
{
	char b = 'x';
	struct iovec one = { &b, 1 }, none = { &b, 0 };
	int f = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	int ro = open("/dev/null", O_RDONLY), p[2], c, empty;
	char tmpl[] = "/tmp/oomp_notw.XXXXXX";

	if (f < 0 || ro < 0 || pipe(p))
		fail("open");
	c = tcp_pair();
	empty = mkstemp(tmpl);
	if (empty < 0)
		fail("mkstemp");
	unlink(tmpl);
	for (int i = 0; i < 99; i++) {
		want(writev(-1, &one, 1), EBADF, "writev -1");
		want(writev(ro, &one, 1), EBADF, "writev O_RDONLY");
		if (writev(f, &none, 1) != 0)
			fail("writev zero");
		/* raw: libc's declaration rightly objects to these arguments */
		want(syscall(SYS_writev, f, (struct iovec *)1, 1), EFAULT, "writev bad iov");
		want(syscall(SYS_writev, f, &one, 5000), EINVAL, "writev vlen");
		want(pwritev(p[1], &one, 1, 0), ESPIPE, "pwritev pipe");
		want(pwritev2(f, &one, 1, 0, 0x1000), EOPNOTSUPP, "pwritev2 flags");
	}
	for (int i = 0; i < 150; i++) {
		if (writev(c, &none, 1) != 0)
			fail("writev zero tcp");
		if (sendfile(c, empty, NULL, 10) != 0)
			fail("sendfile empty tcp");
	}
	for (long i = 0; i < n; i++)
		if (write(f, &b, 1) != 1)
			fail("write");
}

static void failing_writes(int fd, long n, int err)
{
	char b = 'x';
	struct iovec one = { &b, 1 };

	for (long i = 0; i < n; i++) {
		if (i & 1)
			want(writev(fd, &one, 1), err, "writev");
		else
			want(write(fd, &b, 1), err, "write");
	}
}

int main(int argc, char **argv)
{
	int p[2], fd;
	long n;

	alarm(60);
	if (argc < 3)
		goto usage;
	n = atol(argv[argc - 1]);
	if (!strcmp(argv[1], "notw") && argc == 4) {
		notw(argv[2], n);
	} else if (!strcmp(argv[1], "epipe")) {
		signal(SIGPIPE, SIG_IGN);
		if (pipe(p))
			fail("pipe");
		close(p[0]);
		failing_writes(p[1], n, EPIPE);
	} else if (!strcmp(argv[1], "eagain")) {
		static char fill[65536];

		if (pipe2(p, O_NONBLOCK))
			fail("pipe");
		if (write(p[1], fill, sizeof(fill)) != sizeof(fill))
			fail("fill");
		failing_writes(p[1], n, EAGAIN);
	} else if (!strcmp(argv[1], "nsfd")) {
		fd = open("/proc/self/ns/net", O_RDONLY);
		if (fd < 0)
			fail("open ns");
		for (long i = 0; i < n; i++)
			if (ioctl(fd, NS_GET_USERNS) < 0)
				fail("NS_GET_USERNS");
	} else {
		goto usage;
	}
	printf("done %s %ld\n", argv[1], n);
	return 0;
usage:
	fprintf(stderr, "usage: oomp_notw notw OUT N | epipe N | eagain N | nsfd N\n");
	return 2;
}
