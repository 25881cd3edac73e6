// SPDX-License-Identifier: GPL-2.0
/*
 * The floor for `make bench`: empty programs on the mechanisms oomkiller
 * uses on this kernel (raw_tp sys_enter + sys_exit for syscalls, a uprobe
 * for libc rand()). Whatever they cost is the least any killer built on
 * the same hooks can cost; bench/run.py reports the killer against it.
 */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

SEC("raw_tp/sys_enter")
int floor_sys_enter(void *ctx)
{
	return 0;
}

SEC("raw_tp/sys_exit")
int floor_sys_exit(void *ctx)
{
	return 0;
}

SEC("uprobe/libc.so.6:rand")
int floor_rand(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
