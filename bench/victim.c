// SPDX-License-Identifier: GPL-2.0
/*
 * oomp_victim RULE K MAXOPS PACE_US PROGFILE [ARG]: a target that does one
 * kind of operation in a loop until it is killed or has done MAXOPS of them.
 *
 * Its progress is observable from outside after it dies: PROGFILE (made by
 * the driver, at least one page) is mapped shared, and before operation i
 * (1-based) the victim stores i in `started`; before operation K, the one
 * that crosses the limit, it also stores the time. It starts only when the
 * driver sets `go`, so the driver's pidfd exists before anything can die. These are plain stores
 * into shared memory, no syscall, so they count against no rule. A killer
 * that stops the victim in the hook of operation K leaves started == K:
 * overshoot = started - K. For `writes` the output file's size tells the
 * same from the kernel's side.
 *
 * RULE   operation                               ARG
 * writes write(2) 1 byte to a file               the file
 * reads  read(2) ARG bytes from /dev/zero        chunk size (default 65536)
 * fds    open(2) /dev/null, never closed
 * threads pthread_create + pthread_join
 * rand   libc rand()
 * tcp    send(2) 16 bytes on a TCP_NODELAY socket  port of the driver's sink
 * sleep  K writes to a file, then pause() forever  the file
 * self   nothing; at K it sends itself SIGKILL (the latency reference)
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct progress {
	uint64_t started;	/* index of the last operation begun */
	uint64_t t_cross_ns;	/* CLOCK_MONOTONIC just before operation K */
	uint64_t t_first_ns;	/* just before operation 1 */
	uint64_t phase;		/* 1 looping, 2 survived MAXOPS, 3 asleep */
	uint64_t last;		/* op-specific: last rand() value, fd, ... */
	uint64_t go;		/* set by the driver once it holds our pidfd */
};

static volatile struct progress *p;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void *empty(void *arg)
{
	return arg;
}

static void die(const char *what)
{
	perror(what);
	exit(3);
}

int main(int argc, char **argv)
{
	static char buf[1 << 20];
	const char *rule, *arg;
	struct timespec pace;
	uint64_t k, maxops, i;
	long pace_us, chunk = 65536;
	int fd = -1, pfd;

	if (argc < 6) {
		fprintf(stderr, "usage: %s RULE K MAXOPS PACE_US PROGFILE [ARG]\n", argv[0]);
		return 2;
	}
	rule = argv[1];
	k = strtoull(argv[2], NULL, 0);
	maxops = strtoull(argv[3], NULL, 0);
	pace_us = atol(argv[4]);
	arg = argc > 6 ? argv[6] : NULL;
	pace.tv_sec = pace_us / 1000000;
	pace.tv_nsec = (pace_us % 1000000) * 1000;

	pfd = open(argv[5], O_RDWR);
	if (pfd < 0)
		die(argv[5]);
	p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, pfd, 0);
	if (p == MAP_FAILED)
		die("mmap");
	close(pfd);

	if (!strcmp(rule, "writes") || !strcmp(rule, "sleep")) {
		fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0)
			die(arg);
	} else if (!strcmp(rule, "reads")) {
		if (arg)
			chunk = atol(arg);
		if (chunk <= 0 || chunk > (long)sizeof(buf))
			return 2;
		fd = open("/dev/zero", O_RDONLY);
		if (fd < 0)
			die("/dev/zero");
	} else if (!strcmp(rule, "tcp")) {
		struct sockaddr_in sa = { .sin_family = AF_INET };
		int one = 1;

		sa.sin_port = htons(atoi(arg));
		sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
			die("connect");
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	} else if (!strcmp(rule, "fds")) {
		struct rlimit rl;

		/* Room for every open, so a slow killer's overshoot is visible. */
		if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < maxops + 64) {
			rl.rlim_cur = rl.rlim_max < maxops + 64 ? rl.rlim_max : maxops + 64;
			setrlimit(RLIMIT_NOFILE, &rl);
		}
	} else if (strcmp(rule, "threads") && strcmp(rule, "rand") && strcmp(rule, "self")) {
		fprintf(stderr, "%s: unknown rule %s\n", argv[0], rule);
		return 2;
	}

	/* Wait for the driver without a syscall: a syscall could count. */
	while (!p->go)
		__builtin_ia32_pause();
	p->phase = 1;
	p->t_first_ns = now_ns();
	for (i = 1; i <= maxops; i++) {
		p->started = i;
		if (i == k)
			p->t_cross_ns = now_ns();
		switch (rule[0] == 's' && rule[1] == 'e' ? 'S' : rule[0]) {
		case 'w':	/* writes */
		case 's':	/* sleep */
			if (write(fd, "x", 1) != 1)
				die("write");
			if (rule[0] == 's' && i == k) {
				p->phase = 3;
				for (;;)
					pause();
			}
			break;
		case 'r':
			if (rule[1] == 'e') {	/* reads */
				if (read(fd, buf, chunk) != chunk)
					die("read");
			} else {		/* rand */
				p->last = rand();
			}
			break;
		case 'S':
			break;
		case 'f': {			/* fds */
			int nfd = open("/dev/null", O_RDONLY);

			if (nfd < 0)
				die("open");
			p->last = nfd;
			break;
		}
		case 't':
			if (rule[1] == 'h') {	/* threads */
				pthread_t th;

				if (pthread_create(&th, NULL, empty, NULL) ||
				    pthread_join(th, NULL))
					die("pthread");
			} else {		/* tcp */
				if (send(fd, "0123456789abcdef", 16, 0) != 16)
					die("send");
			}
			break;
		}
		if (rule[0] == 's' && rule[1] == 'e' && i == k)
			kill(getpid(), SIGKILL);
		if (pace_us > 0)
			nanosleep(&pace, NULL);
	}
	p->phase = 2;
	return 0;
}
