// SPDX-License-Identifier: GPL-2.0
/* Seed workload: read(2)s 16 MiB from /dev/zero (limit 10 MiB). Must be killed. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static char buf[1 << 16];

int main(void)
{
	long total = 0;
	int fd = open("/dev/zero", O_RDONLY);

	alarm(60);
	if (fd < 0)
		return 3;
	while (total < 16L << 20) {
		ssize_t r = read(fd, buf, sizeof(buf));
		if (r <= 0)
			return 3;
		total += r;
	}
	printf("done read %ld\n", total);
	return 0;
}
