// SPDX-License-Identifier: GPL-2.0
/* Seed workload: 150 calls of libc rand() (limit 100). Must be killed. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(void)
{
	unsigned sum = 0;

	alarm(60);
	for (int i = 0; i < 150; i++)
		sum += rand();
	printf("done rand 150 %u\n", sum);
	return 0;
}
