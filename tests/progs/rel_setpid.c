// SPDX-License-Identifier: GPL-2.0
/*
 * rel_setpid PID PROG [ARG...]: run PROG as process PID (in the initial PID
 * namespace, the numbers the killer keys its map by), by clone3() with
 * set_tid (Linux 5.5; needs CAP_SYS_ADMIN or CAP_CHECKPOINT_RESTORE). Fails
 * with exit 4 if PID is in use. Waits for it and exits as it did: its exit
 * code, or 128 + the signal that killed it. Its own name has no "oomp".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	pid_t want, got, parent;
	struct clone_args ca = { .exit_signal = SIGCHLD };
	int st;

	if (argc < 3) {
		fprintf(stderr, "usage: rel_setpid PID PROG [ARG...]\n");
		return 2;
	}
	want = atoi(argv[1]);
	parent = getpid();
	ca.set_tid = (uint64_t)(uintptr_t)&want;
	ca.set_tid_size = 1;
	got = syscall(SYS_clone3, &ca, sizeof(ca));
	if (got < 0) {
		fprintf(stderr, "rel_setpid: clone3 set_tid %d: %s\n", want, strerror(errno));
		return 4;
	}
	if (got == 0) {
		/* Die with us: a test that kills rel_setpid must not leave the
		 * target it started behind (the death signal survives exec). */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			_exit(5);
		execv(argv[2], argv + 2);
		fprintf(stderr, "rel_setpid: exec %s: %s\n", argv[2], strerror(errno));
		_exit(5);
	}
	if (waitpid(got, &st, 0) != got) {
		perror("rel_setpid: waitpid");
		return 6;
	}
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WEXITSTATUS(st);
}
