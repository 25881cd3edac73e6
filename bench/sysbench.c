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
 *       uring   one IORING_OP_NOP submitted and waited for (io_uring_enter),
 *               on a ring made before the clock starts
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/io_uring.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

/* n NOPs, one submitted and reaped per io_uring_enter: ns per request. */
static int uring_nops(long n, unsigned long long *t0, unsigned long long *t1)
{
	struct io_uring_params p = {0};
	unsigned *sq_tail, *sq_mask, *sq_array, *cq_head;
	struct io_uring_sqe *sqes;
	char *sq, *cq;
	int fd = syscall(SYS_io_uring_setup, 4, &p);

	if (fd < 0)
		return 1;
	sq = mmap(NULL, p.sq_off.array + p.sq_entries * sizeof(unsigned), PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQ_RING);
	cq = mmap(NULL, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		  PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_CQ_RING);
	sqes = mmap(NULL, p.sq_entries * sizeof(*sqes), PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_POPULATE, fd, IORING_OFF_SQES);
	if (sq == MAP_FAILED || cq == MAP_FAILED || sqes == MAP_FAILED)
		return 1;
	sq_tail = (void *)(sq + p.sq_off.tail);
	sq_mask = (void *)(sq + p.sq_off.ring_mask);
	sq_array = (void *)(sq + p.sq_off.array);
	cq_head = (void *)(cq + p.cq_off.head);
	*t0 = now_ns();
	for (long i = 0; i < n; i++) {
		unsigned tail = *sq_tail, idx = tail & *sq_mask;

		memset(&sqes[idx], 0, sizeof(sqes[idx]));
		sqes[idx].opcode = IORING_OP_NOP;
		sq_array[idx] = idx;
		__atomic_store_n(sq_tail, tail + 1, __ATOMIC_RELEASE);
		if (syscall(SYS_io_uring_enter, fd, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0) != 1)
			return 1;
		__atomic_store_n(cq_head, *cq_head + 1, __ATOMIC_RELEASE);
	}
	*t1 = now_ns();
	return 0;
}

int main(int argc, char **argv)
{
	unsigned long long t0, t1;
	volatile int sink = 0;
	long i, n;
	char c = 'x';
	int fd = -1;

	if (argc != 3 || (n = atol(argv[2])) <= 0) {
		fprintf(stderr, "usage: %s write|read|getppid|rand|thread|uring N\n", argv[0]);
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
	} else if (!strcmp(argv[1], "uring")) {
		if (uring_nops(n, &t0, &t1))
			return 1;
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
