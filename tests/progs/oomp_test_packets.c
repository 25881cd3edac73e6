// SPDX-License-Identifier: GPL-2.0
/*
 * Seed workload: 1500 TCP sends of 16 bytes over loopback to its own
 * listener (limit 1000 packets; each small send counts 1). Must be killed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char buf[4096];
	int l, c, s;

	alarm(60);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 1) ||
	    getsockname(l, (struct sockaddr *)&a, &len))
		return 3;
	c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a)))
		return 3;
	s = accept(l, NULL, NULL);
	if (s < 0)
		return 3;
	for (int i = 0; i < 1500; i++) {
		if (send(c, "0123456789abcdef", 16, 0) != 16)
			return 3;
		while (recv(s, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
	printf("done tcp 1500\n");
	return 0;
}
