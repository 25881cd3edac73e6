// SPDX-License-Identifier: GPL-2.0
/*
 * Seed workload: 1500 UDP datagrams over loopback to its own socket. UDP
 * never counts toward the tcp packets rule. Must exit 0.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	char buf[4096];
	int r, s;

	alarm(60);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	r = socket(AF_INET, SOCK_DGRAM, 0);
	if (r < 0 || bind(r, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(r, (struct sockaddr *)&a, &len))
		return 3;
	s = socket(AF_INET, SOCK_DGRAM, 0);
	if (s < 0)
		return 3;
	for (int i = 0; i < 1500; i++) {
		if (sendto(s, "0123456789abcdef", 16, 0, (struct sockaddr *)&a,
			   sizeof(a)) != 16)
			return 3;
		while (recv(r, buf, sizeof(buf), MSG_DONTWAIT) > 0)
			;
	}
	printf("done udp 1500\n");
	return 0;
}
