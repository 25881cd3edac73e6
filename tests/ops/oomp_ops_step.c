// SPDX-License-Identifier: GPL-2.0
/*
 * oomp_ops_step: writes in steps the test controls (tests/test_ops_*.py).
 *
 *   oomp_ops_step N -p PROGRESS [--timeout S]
 *
 * Makes N write(2)s of one byte to /dev/null, then sleeps in sigsuspend(2),
 * which no rule counts. On each SIGUSR1 it writes on until its total equals
 * the PROGRESS file's slot 7 (set by the test), then sleeps again. The
 * progress file has oomp_work's layout (tests/killer.py: magic, done, state,
 * ...), stored without syscalls, so the test sees exactly how many writes
 * returned: a process killed in the hook of its Kth write shows done K-1.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { P_MAGIC, P_DONE, P_STATE, P_IMAGE, P_PID, P_TOTAL, P_BASE, P_WANT, P_SLOTS };
enum { S_RUNNING = 1, S_SLEEPING = 3 };
#define PROG_MAGIC 0x706d6f6fULL

static void die(const char *what)
{
	dprintf(2, "oomp_ops_step: %s: %s\n", what, strerror(errno));
	exit(3);
}

static void on_usr1(int sig)
{
	(void)sig;
}

int main(int argc, char **argv)
{
	volatile uint64_t *prog;
	const char *path = NULL;
	unsigned timeout = 120;
	long long n = -1;
	sigset_t block, wait_mask;
	int fd, out, i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "-p") && i + 1 < argc)
			path = argv[++i];
		else if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = atoi(argv[++i]);
		else
			n = atoll(argv[i]);
	}
	if (n < 0 || !path) {
		dprintf(2, "usage: oomp_ops_step N -p PROGRESS [--timeout S]\n");
		return 2;
	}
	alarm(timeout);	/* safety net: nothing a test starts outlives it long */
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigprocmask(SIG_BLOCK, &block, &wait_mask);
	sigdelset(&wait_mask, SIGUSR1);
	signal(SIGUSR1, on_usr1);

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0 || ftruncate(fd, P_SLOTS * sizeof(uint64_t)))
		die("progress");
	prog = mmap(NULL, P_SLOTS * sizeof(uint64_t), PROT_READ | PROT_WRITE,
		    MAP_SHARED, fd, 0);
	if (prog == MAP_FAILED)
		die("mmap");
	close(fd);
	out = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (out < 0)
		die("open /dev/null");
	prog[P_PID] = getpid();
	prog[P_WANT] = n;
	prog[P_MAGIC] = PROG_MAGIC;
	for (;;) {
		prog[P_STATE] = S_RUNNING;
		while (prog[P_DONE] < __atomic_load_n(&prog[P_WANT], __ATOMIC_SEQ_CST)) {
			if (syscall(SYS_write, out, "x", 1) != 1)
				die("write");
			__atomic_add_fetch(&prog[P_DONE], 1, __ATOMIC_SEQ_CST);
			__atomic_add_fetch(&prog[P_TOTAL], 1, __ATOMIC_SEQ_CST);
		}
		__atomic_store_n(&prog[P_STATE], S_SLEEPING, __ATOMIC_SEQ_CST);
		sigsuspend(&wait_mask);
	}
}
