// SPDX-License-Identifier: GPL-2.0
/*
 * The floor for `make bench`: empty programs on the mechanisms oomkiller
 * uses on this kernel (raw_tp sys_enter + sys_exit for syscalls, a uprobe
 * for libc rand()). Whatever they cost is the least any killer built on
 * the same hooks can cost; bench/run.py reports the killer against it.
 *
 * `make bench-vm` (bench/vm_families.py) adds each attach family's own
 * mechanism on write and read: fexit, kretprobe, tp_btf sys_exit. A
 * loader picks programs by name (floor.py --only).
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

SEC("fexit/__x64_sys_write")
int floor_fx_write(void *ctx)
{
	return 0;
}

SEC("fexit/__x64_sys_read")
int floor_fx_read(void *ctx)
{
	return 0;
}

SEC("kretprobe/__x64_sys_write")
int floor_kp_write(void *ctx)
{
	return 0;
}

SEC("kretprobe/__x64_sys_read")
int floor_kp_read(void *ctx)
{
	return 0;
}

SEC("tp_btf/sys_exit")
int floor_tp_sys_exit(void *ctx)
{
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
