// SPDX-License-Identifier: GPL-2.0
/*
 * oomp_ia32: a 64-bit target that makes i386 syscalls through int $0x80,
 * 150 getpid() (i386 20, x86-64's writev) and 150 lseek() to 1 MiB (i386
 * 19, x86-64's readv). It writes and reads nothing, so it must exit 0:
 * read by the x86-64 table it would "write" 150 times and "read" 150 MiB.
 */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

static long int80(long nr, long a, long b, long c)
{
	long r;

	/* The compat entry zeroes r8-r11 on return. */
	__asm__ volatile("int $0x80" : "=a"(r) : "a"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory", "r8", "r9", "r10", "r11");
	return r;
}

int main(int argc, char **argv)
{
	int fd = open(argv[0], O_RDONLY);
	long pid = getpid();

	alarm(60);
	if (fd < 0)
		return 3;
	for (int i = 0; i < 150; i++)
		if (int80(20, 0, 0, 0) != pid)
			return 3;
	for (int i = 0; i < 150; i++)
		if (int80(19, fd, 1 << 20, SEEK_SET) != 1 << 20)
			return 3;
	printf("done ia32 getpid 150 lseek 150\n");
	return 0;
}
