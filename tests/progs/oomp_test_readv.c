// SPDX-License-Identifier: GPL-2.0
/* Seed workload: readv(2)s 16 MiB from /dev/zero (limit 10 MiB). Must be killed. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/uio.h>
#include <unistd.h>

static char a[1 << 15], b[1 << 15];

int main(void)
{
	struct iovec iov[2] = { { a, sizeof(a) }, { b, sizeof(b) } };
	long total = 0;
	int fd = open("/dev/zero", O_RDONLY);

	alarm(60);
	if (fd < 0)
		return 3;
	while (total < 16L << 20) {
		ssize_t r = readv(fd, iov, 2);
		if (r <= 0)
			return 3;
		total += r;
	}
	printf("done readv %ld\n", total);
	return 0;
}
