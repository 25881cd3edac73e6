#!/bin/sh
# Boot the VM lane's guest and run one shell command in it, in this project's
# directory, as root, over this machine's own root filesystem.
#
#   vm/run.sh [--] CMD
#
# CMD's stdout and stderr come back on ours, as it runs; we exit with CMD's
# status. The guest console (kernel messages, virtme's own chatter) goes to
# $OUT/console.log and is shown only when the guest fails to report a status.
# An oops or panic in the guest's console is always reported, with its lines,
# and makes us exit 125 (written to $OUT/oops too).
#
# Environment (set by mk/vm.mk): VNG, VM_CACHE, VM_MEMORY, VM_CPUS, KERNEL,
# MODULES, VM_KERNEL (a vm/fetch-kernel.sh SPEC, default newest; KERNEL
# wins), VM_TCG_THREAD (single or multi, default single), VM_SYSTEMD (1:
# boot systemd as the guest's init, vng --systemd; default 0), VM_TIMEOUT
# (seconds, default 1800), VM_OUT (results folder, default a fresh one
# under build/vm-out).
set -eu
PATH=$PATH:/usr/sbin:/sbin

[ "${1:-}" = -- ] && shift
[ $# -eq 1 ] || { echo "usage: vm/run.sh [--] CMD" >&2; exit 2; }
CMD=$1

HERE=$(cd "$(dirname "$0")/.." && pwd)
VNG=${VNG:-$HERE/build/vm-venv/bin/vng}
case $VNG in /*) ;; *) VNG=$HERE/$VNG ;; esac
[ -x "$VNG" ] || { echo "vm: $VNG missing: run: make vm-deps" >&2; exit 1; }
# vng starts virtme-run from PATH.
PATH=$(dirname "$VNG"):$PATH

# Which kernel: the user's, or a stock Debian one (fetched and cached).
if [ -n "${KERNEL:-}" ]; then
	set -- $("$HERE/vm/prep-kernel.sh" "$KERNEL" "${MODULES:-}")
else
	set -- $("$HERE/vm/fetch-kernel.sh" "${VM_KERNEL:-newest}")
fi
VMLINUZ=$1

OUT=${VM_OUT:-}
if [ -z "$OUT" ]; then
	mkdir -p "$HERE/build/vm-out"
	OUT=$(mktemp -d "$HERE/build/vm-out/run.XXXXXX")
fi
mkdir -p "$OUT"
rm -f "$OUT/rc" "$OUT/started"
: >"$OUT/stdout"
: >"$OUT/stderr"

printf '%s\n' "$CMD" >"$OUT/cmd"

# Single-threaded TCG: under QEMU's default multi-threaded TCG the guest
# panicked with "Oops: int3" at syscall tracepoint jump-label sites
# (syscall_exit_work+0x6e, trace_syscall_exit+0xa) while programs on
# sys_enter/sys_exit were attached and detached every few seconds, on both
# 6.18.5 and 7.2.13, after 194 s and 377 s: cross-modifying code (text_poke
# and its int3 dance) racing other vCPU threads. One host thread for all
# vCPUs never did. vng 1.42 passes no -accel of its own with --disable-kvm
# (just -machine q35 -cpu max), so ours is the only one; --qemu-opts must
# come last, it takes the rest of the line.
case ${VM_TCG_THREAD:-single} in
single | multi) ;;
*) echo "vm: VM_TCG_THREAD=$VM_TCG_THREAD: want single or multi" >&2; exit 2 ;;
esac
ACCEL="tcg,thread=${VM_TCG_THREAD:-single}"

# VM_SYSTEMD=1: systemd is PID 1 (vng --systemd). vng then runs the guest
# command from serial-getty@ttyS0 once systemd reaches its login prompts,
# with /etc, /usr and /var as tmpfs-backed overlays. The guest must not take
# itself for a container: see vm/no-container-root.sh.
SYSTEMD_OPT=
WRAP=
case ${VM_SYSTEMD:-0} in
0) ;;
1) SYSTEMD_OPT=--systemd; WRAP=$HERE/vm/no-container-root.sh ;;
*) echo "vm: VM_SYSTEMD=$VM_SYSTEMD: want 0 or 1" >&2; exit 2 ;;
esac

vng_pid=
cleanup() {
	# timeout(1) leads its own process group: signal it and it passes the
	# signal on to vng and QEMU.
	[ -n "$vng_pid" ] && kill -TERM "$vng_pid" 2>/dev/null || true
}
trap 'cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM

t0=$(date +%s)
$WRAP timeout -k 10 "${VM_TIMEOUT:-1800}" "$VNG" -r "$VMLINUZ" $SYSTEMD_OPT \
	--force-9p --disable-kvm --verbose \
	--memory "${VM_MEMORY:-6G}" --cpus "${VM_CPUS:-2}" \
	--overlay-rwdir "$HERE" --rwdir "$OUT" \
	--exec "'$HERE/vm/guest-exec.sh' '$OUT'" \
	--qemu-opts="-accel $ACCEL" </dev/null >"$OUT/console.log" 2>&1 &
vng_pid=$!

# Stream CMD's output while the guest runs; tail exits once vng has gone.
tail -q -n +1 --pid="$vng_pid" -F "$OUT/stdout" 2>/dev/null &
t1=$!
tail -q -n +1 --pid="$vng_pid" -F "$OUT/stderr" >&2 2>/dev/null &
t2=$!

# Watch the boot: a kernel that panics before init may leave QEMU idling
# rather than exiting, so don't wait the whole VM_TIMEOUT for it.
# systemd's boot under TCG took ~2 min.
if [ -n "$SYSTEMD_OPT" ]; then boot_limit=${VM_BOOT_TIMEOUT:-600}; else boot_limit=${VM_BOOT_TIMEOUT:-300}; fi
why=
while kill -0 "$vng_pid" 2>/dev/null; do
	# For the record: QEMU's command line, with our -accel in it.
	if [ ! -s "$OUT/qemu.cmdline" ]; then
		# -F: $OUT may hold regex characters (6.18.5+deb13-amd64).
		pgrep -a qemu-system | grep -F -e "$OUT" | head -n1 | cut -d' ' -f2- >"$OUT/qemu.cmdline" || true
	fi
	if [ ! -f "$OUT/started" ]; then
		if grep -q -e 'Kernel panic' -e 'PANIC: early exception' "$OUT/console.log"; then
			why="the guest kernel panicked at boot"
		elif [ $(( $(date +%s) - t0 )) -ge "$boot_limit" ]; then
			why="the guest did not start CMD within ${boot_limit}s"
		fi
		if [ -n "$why" ]; then
			cleanup
			break
		fi
	fi
	sleep 1
done
vng_rc=0
wait "$vng_pid" || vng_rc=$?
vng_pid=
wait "$t1" "$t2" 2>/dev/null || true
t=$(( $(date +%s) - t0 ))

# The guest kernel's own word, whatever CMD said: an oops can kill one test's
# process and leave the rest running, and a panic stops the guest.
OOPS='Oops:|Kernel panic|BUG:|general protection|PANIC: early exception'
if grep -E -q "$OOPS" "$OUT/console.log"; then
	grep -E -A 12 "$OOPS" "$OUT/console.log" >"$OUT/oops"
	echo "vm: GUEST KERNEL OOPS/PANIC ($OUT/console.log):" >&2
	head -n 40 "$OUT/oops" | sed 's/^/vm:   /' >&2
	[ -f "$OUT/rc" ] && echo "vm: command exited $(cat "$OUT/rc") (not trusted after an oops)" >&2
	exit 125
fi

if [ ! -f "$OUT/rc" ]; then
	if [ -n "$why" ]; then
		echo "vm: $why" >&2
	elif [ "$vng_rc" = 124 ] || [ "$vng_rc" = 137 ]; then
		echo "vm: guest timed out after ${VM_TIMEOUT:-1800}s" >&2
	elif [ -f "$OUT/started" ]; then
		echo "vm: the guest died before CMD finished (vng exit $vng_rc)" >&2
	else
		echo "vm: the guest did not boot (vng exit $vng_rc)" >&2
	fi
	echo "vm: last console lines ($OUT/console.log):" >&2
	tail -n 30 "$OUT/console.log" | sed 's/^/vm:   /' >&2
	exit 125
fi
rc=$(cat "$OUT/rc")
echo "vm: $(uname -m) guest, ${t}s wall, command exited $rc" >&2
exit "$rc"
