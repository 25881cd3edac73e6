// SPDX-License-Identifier: GPL-2.0
/* Seed workload: 150 pwrite64(2)s to an unlinked temp file (limit 100). Must be killed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/tmp", O_TMPFILE | O_RDWR, 0600);

	alarm(60);
	if (fd < 0)
		fd = open("/dev/null", O_WRONLY);
	if (fd < 0)
		return 3;
	for (int i = 0; i < 150; i++)
		if (pwrite(fd, "x", 1, i) != 1)
			return 3;
	printf("done pwrite64 150\n");
	return 0;
}
