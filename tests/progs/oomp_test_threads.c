// SPDX-License-Identifier: GPL-2.0
/* Seed workload: creates 150 threads, all alive at once (limit 100). Must be killed. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static pthread_barrier_t bar;

static void *body(void *arg)
{
	pthread_barrier_wait(&bar);
	return arg;
}

int main(void)
{
	pthread_t t[150];

	alarm(60);
	pthread_barrier_init(&bar, NULL, 151);
	for (int i = 0; i < 150; i++)
		if (pthread_create(&t[i], NULL, body, NULL)) {
			fprintf(stderr, "pthread_create failed\n");
			return 3;
		}
	pthread_barrier_wait(&bar);
	for (int i = 0; i < 150; i++)
		pthread_join(t[i], NULL);
	printf("done threads 150\n");
	return 0;
}
