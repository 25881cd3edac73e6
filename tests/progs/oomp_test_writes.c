// SPDX-License-Identifier: GPL-2.0
/* Seed workload: 150 write(2)s to /dev/null (limit 100). Must be killed. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

int main(void)
{
	int fd = open("/dev/null", O_WRONLY);

	alarm(60);
	if (fd < 0)
		return 3;
	for (int i = 0; i < 150; i++)
		if (write(fd, "x", 1) != 1)
			return 3;
	printf("done write 150\n");
	return 0;
}
