// SPDX-License-Identifier: GPL-2.0
/*
 * ballast GATE_BYTES MAX_BYTES: a non-target that opens oomkiller's memory
 * gate. It touches anonymous memory 4 MiB at a time and, after each step,
 * computes used = (totalram - freeram) * mem_unit with sysinfo(2), the
 * killer's own formula. The first time used >= GATE_BYTES it prints
 * "open T_NS" (CLOCK_MONOTONIC); at MAX_BYTES (or when the gate is open
 * and 64 MiB more are held, as a margin against others freeing memory) it
 * prints "held" and sleeps until it is killed.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysinfo.h>
#include <time.h>
#include <unistd.h>

#define STEP (4UL << 20)

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	unsigned long long gate, max, held = 0, open_at = 0;
	struct sysinfo si;

	if (argc != 3) {
		fprintf(stderr, "usage: %s GATE_BYTES MAX_BYTES\n", argv[0]);
		return 2;
	}
	gate = strtoull(argv[1], NULL, 0);
	max = strtoull(argv[2], NULL, 0);
	while (held < max) {
		char *m = mmap(NULL, STEP, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (m == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		memset(m, 0xa5, STEP);
		held += STEP;
		if (!open_at && !sysinfo(&si) &&
		    (unsigned long long)(si.totalram - si.freeram) * si.mem_unit >= gate) {
			open_at = held;
			printf("open %llu\n", (unsigned long long)now_ns());
			fflush(stdout);
		}
		if (open_at && held >= open_at + (64UL << 20))
			break;
	}
	printf("held %llu\n", held);
	fflush(stdout);
	for (;;)
		pause();
}
