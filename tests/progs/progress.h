/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The progress file a workload shares with the tests: PROGRESS_SLOTS
 * little-endian u64 slots in a file the workload mmaps shared. tests/killer.py
 * reads it (read_progress) and checks its own copy of these numbers against
 * this header when it is imported.
 *
 * Every store is a plain memory write, never a syscall: a syscall could itself
 * count toward a rule. A value stored right after a call returns is how a test
 * tells "killed in the hook of the Nth call" (progress N-1) from "ran on".
 */
#ifndef OOMP_PROGRESS_H
#define OOMP_PROGRESS_H

#include <fcntl.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>

enum progress_slot {
	P_MAGIC = 0,	/* PROGRESS_MAGIC once mapped */
	P_DONE = 1,	/* units of the current step (fd steps: fds in the table) */
	P_STATE = 2,	/* enum progress_state */
	P_MYPID = 3,
	P_IMAGE = 4,	/* execs so far: 0 in the first image */
	P_TOTAL = 5,	/* units over all steps and images */
	P_BASE = 6,	/* units the process had before the step (--total) */
	P_STEPS = 7,	/* steps completed, over all images */
	P_MSS = 8,	/* tcp-send: the connection's MSS (TCP_MAXSEG) */
	P_A = 9,	/* per-step results (see the step) */
	P_B = 10,
	P_CTL = 11,	/* written by the test: burst's go-ahead, follow's total */
	PROGRESS_SLOTS = 16,
};

enum progress_state {
	S_RUNNING = 1,
	S_FINISHED = 2,
	S_SLEEPING = 3,	/* in pause() or waiting for SIGUSR1 with its work done */
	S_WAITING = 4,	/* blocked before more work: gate, sig, burst */
};

#define PROGRESS_MAGIC 0x6b726f77706d6f6fULL /* "oompwork" */

static volatile uint64_t progress_unmapped[PROGRESS_SLOTS];
static volatile uint64_t *progress = progress_unmapped;

static inline void progress_set(int slot, uint64_t v)
{
	__atomic_store_n(&progress[slot], v, __ATOMIC_SEQ_CST);
}

static inline uint64_t progress_get(int slot)
{
	return __atomic_load_n(&progress[slot], __ATOMIC_SEQ_CST);
}

static inline void progress_add(int slot, uint64_t v)
{
	__atomic_add_fetch(&progress[slot], v, __ATOMIC_SEQ_CST);
}

/*
 * Map PATH (created if missing) and publish PID, IMAGE and the magic. The
 * first image starts the totals at 0; an exec'd one (image > 0) keeps them.
 * Returns 0, or -1 with errno set.
 */
static inline int progress_map(const char *path, int image)
{
	size_t len = PROGRESS_SLOTS * sizeof(uint64_t);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	void *p;

	if (fd < 0)
		return -1;
	if (ftruncate(fd, len)) {
		close(fd);
		return -1;
	}
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	progress = p;
	if (image == 0) {
		progress_set(P_TOTAL, 0);
		progress_set(P_STEPS, 0);
	}
	progress_set(P_DONE, 0);
	progress_set(P_IMAGE, image);
	progress_set(P_MYPID, getpid());
	progress_set(P_STATE, S_RUNNING);
	progress_set(P_MAGIC, PROGRESS_MAGIC);
	return 0;
}

#endif
