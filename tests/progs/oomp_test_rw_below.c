// SPDX-License-Identifier: GPL-2.0
/*
 * Seed workload: 50 write(2)s and 5 MiB of read(2), both well under the
 * limits (100 writes, 10 MiB). Must exit 0.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static char buf[1 << 16];

int main(void)
{
	int in = open("/dev/zero", O_RDONLY), out = open("/dev/null", O_WRONLY);
	long total = 0;

	alarm(60);
	if (in < 0 || out < 0)
		return 3;
	while (total < 5L << 20) {
		ssize_t r = read(in, buf, sizeof(buf));
		if (r <= 0)
			return 3;
		total += r;
	}
	for (int i = 0; i < 50; i++)
		if (write(out, buf, 64) != 64)
			return 3;
	printf("done read %ld write 50\n", total);
	return 0;
}
