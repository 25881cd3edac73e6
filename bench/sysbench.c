// SPDX-License-Identifier: GPL-2.0
/*
 * sysbench MODE N: time N calls of one operation in a tight loop and print
 * the nanoseconds per call. Built twice by mk/bench.mk: as `benchsys` (a
 * non-target) and as `oomp_benchsys` (a target: its comm contains "oomp").
 *
 * MODE: write   write(2) 1 byte to /dev/null
 *       read    read(2) 1 byte from /dev/zero
 *       getppid getppid(2), through syscall(2) so libc cannot cache it
 *       rand    libc rand()
 *       thread  pthread_create + pthread_join of an empty thread
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static unsigned long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static void *empty(void *arg)
{
	return arg;
}

int main(int argc, char **argv)
{
	unsigned long long t0, t1;
	volatile int sink = 0;
	long i, n;
	char c = 'x';
	int fd = -1;

	if (argc != 3 || (n = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: %s write|read|getppid|rand|thread N\n", argv[0]);
		return 2;
	}
	if (!strcmp(argv[1], "write"))
		fd = open("/dev/null", O_WRONLY);
	else if (!strcmp(argv[1], "read"))
		fd = open("/dev/zero", O_RDONLY);

	if (!strcmp(argv[1], "write")) {
		t0 = now_ns();
		for (i = 0; i < n; i++)
			if (write(fd, &c, 1) != 1)
				return 1;
		t1 = now_ns();
	} else if (!strcmp(argv[1], "read")) {
		t0 = now_ns();
		for (i = 0; i < n; i++)
			if (read(fd, &c, 1) != 1)
				return 1;
		t1 = now_ns();
	} else if (!strcmp(argv[1], "getppid")) {
		t0 = now_ns();
		for (i = 0; i < n; i++)
			sink += syscall(SYS_getppid);
		t1 = now_ns();
	} else if (!strcmp(argv[1], "rand")) {
		t0 = now_ns();
		for (i = 0; i < n; i++)
			sink += rand();
		t1 = now_ns();
	} else if (!strcmp(argv[1], "thread")) {
		pthread_t th;

		t0 = now_ns();
		for (i = 0; i < n; i++) {
			if (pthread_create(&th, NULL, empty, NULL) || pthread_join(th, NULL))
				return 1;
		}
		t1 = now_ns();
	} else {
		fprintf(stderr, "%s: unknown mode %s\n", argv[0], argv[1]);
		return 2;
	}
	(void)sink;
	/* stdout is a pipe to the driver: this one write comes after the loop. */
	printf("%.2f\n", (double)(t1 - t0) / n);
	return 0;
}
