// SPDX-License-Identifier: GPL-2.0
/*
 * ballast BYTES: hold BYTES of touched anonymous memory, print "ready",
 * then sleep until killed. Its name has no "oomp": it is never a target.
 * The tests use it to raise used memory and open the killer's gate.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	long page = sysconf(_SC_PAGESIZE);
	unsigned timeout = argc > 2 ? atoi(argv[2]) : 600;
	size_t len;
	char *p;

	if (argc < 2) {
		fprintf(stderr, "usage: ballast BYTES [TIMEOUT_S]\n");
		return 2;
	}
	/* Safety net: a forgotten ballast frees its memory by itself. */
	alarm(timeout);
	len = strtoull(argv[1], NULL, 0);
	p = mmap(NULL, len ? len : 1, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		perror("ballast: mmap");
		return 1;
	}
	/* non-zero bytes: nothing can dedupe or treat them as zero pages */
	for (size_t off = 0; off < len; off += page)
		p[off] = 1;
	printf("ready %zu\n", len);
	fflush(stdout);
	for (;;)
		pause();
}
