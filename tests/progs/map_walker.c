// SPDX-License-Identifier: GPL-2.0
/* map_walker: what a monitoring agent's bpf(2) reads do to the killer's
 * classic tracepoint and kprobe programs, made as bad as it gets.
 *
 * A bpf(2) map call holds its CPU's bpf_prog_active while it runs, with
 * migration off but preemption on. Where the kernel preempts (lazy
 * preemption, Debian's default since 6.18), a caller preempted inside one
 * keeps it held while others run on that CPU, and every classic tracepoint
 * and kprobe program run there meanwhile is skipped. This makes the hold
 * long: BPF_MAP_LOOKUP_BATCH on an empty hash map of 2^20 buckets walks them
 * all in one hold. It does so until killed (or its parent is gone), one
 * process per CPU the tests start.
 *
 * Not a target: its name holds no "oomp". Exit 1 if the map can't be made.
 */
#include <errno.h>
#include <linux/bpf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <signal.h>
#include <unistd.h>

#define BUCKETS (1u << 20)
#define BATCH 64

static long bpf(int cmd, union bpf_attr *attr)
{
	return syscall(__NR_bpf, cmd, attr, sizeof(*attr));
}

int main(void)
{
	static __u32 keys[BATCH], values[BATCH];
	union bpf_attr attr;
	__u32 out;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	memset(&attr, 0, sizeof(attr));
	attr.map_type = BPF_MAP_TYPE_HASH;
	attr.key_size = sizeof(__u32);
	attr.value_size = sizeof(__u32);
	attr.max_entries = BUCKETS;
	attr.map_flags = BPF_F_NO_PREALLOC;
	strcpy(attr.map_name, "map_walker");
	fd = bpf(BPF_MAP_CREATE, &attr);
	if (fd < 0) {
		fprintf(stderr, "map_walker: BPF_MAP_CREATE: %s\n", strerror(errno));
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;) {
		memset(&attr, 0, sizeof(attr));
		attr.batch.map_fd = fd;
		attr.batch.out_batch = (__u64)(unsigned long)&out;
		attr.batch.keys = (__u64)(unsigned long)keys;
		attr.batch.values = (__u64)(unsigned long)values;
		attr.batch.count = BATCH;
		if (bpf(BPF_MAP_LOOKUP_BATCH, &attr) < 0 && errno != ENOENT) {
			fprintf(stderr, "map_walker: BPF_MAP_LOOKUP_BATCH: %s\n", strerror(errno));
			return 1;
		}
	}
}
