// SPDX-License-Identifier: GPL-2.0
/*
 * oomp_rand [N]: N calls of libc rand() (default 150), then "done rand N SUM".
 * Built four ways (Makefile, PROGSLIBC): dynamic glibc, static glibc with and
 * without symbols, and musl, for the uprobe on rand (src/oomkiller/bpf/elfsym.py).
 * The sum is printed so that the compiler keeps every call.
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long n = argc > 1 ? atol(argv[1]) : 150;
	unsigned sum = 0;

	alarm(60);
	for (long i = 0; i < n; i++)
		sum += rand();
	printf("done rand %ld %u\n", n, sum);
	return 0;
}
