// SPDX-License-Identifier: GPL-2.0
/* Seed workload: opens 150 fds (limit 100, 0/1/2 included). Must be killed. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	alarm(60);
	for (int i = 0; i < 150; i++)
		if (open("/dev/null", O_RDONLY) < 0) {
			perror("open");
			return 3;
		}
	printf("done fds 150\n");
	return 0;
}
