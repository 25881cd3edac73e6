#!/bin/sh
# make test-vm: for each kernel of the matrix, boot one guest and run the
# suite in it per attach family (vm/guest-suite.sh); the guests run side by
# side. Then report kernel x family from the result files the guests left in
# the shared folders. Exits 0 only if every family passed on every kernel.
#
#   vm/test-vm.sh [FAMILY...]     default: fentry kprobe tracepoint auto
#
# Environment (mk/vm.mk sets it): VM_KERNELS (vm/fetch-kernel.sh SPECs,
# default "6.18.5 newest"), or KERNEL [MODULES] for one kernel you bring;
# VM_PARALLEL (guests at once, default 2), VM_RACE_ROUNDS, VM_PYTEST_ARGS,
# VM_FAMILY_TIMEOUT.
#
# Layout: build/vm-out/test.XXXXXX/tree is the snapshot the guests run, and
# build/vm-out/test.XXXXXX/KVER/ holds each kernel's FAMILY.result and .log,
# console.log and (after an oops) oops.
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- fentry kprobe tracepoint auto
say() { echo "test-vm: $*"; }

mkdir -p "$HERE/build/vm-out"
RUN=$(mktemp -d "$HERE/build/vm-out/test.XXXXXX")
# Per family plus boot; vm/run.sh kills the guest after this.
: "${VM_FAMILY_TIMEOUT:=600}"
VM_TIMEOUT=${VM_TIMEOUT:-$(( VM_FAMILY_TIMEOUT * $# + 600 ))}
export VM_TIMEOUT

# Which kernels: resolved (and fetched) one after another before any guest
# starts, so the guests themselves need no network and no lock.
kernels=
if [ -n "${KERNEL:-}" ]; then
	# One kernel you bring; vm/run.sh stages it. Named for its modules or
	# the version in its bzImage header.
	k=${MODULES:+$(basename "$MODULES")}
	[ -n "$k" ] || k=$(file -bL "$KERNEL" 2>/dev/null | sed -n 's/.*version \([^ ,]*\).*/\1/p')
	kernels=${k:-user}
else
	lines=$("$HERE/vm/fetch-kernel.sh" ${VM_KERNELS:-6.18.5 newest}) || {
		say "cannot fetch kernels: ${VM_KERNELS:-6.18.5 newest}"
		exit 1
	}
	for m in $(echo "$lines" | awk '{print $2}'); do
		kernels="$kernels $(basename "$m")"
	done
fi
set -f; nk=$(echo $kernels | wc -w); set +f
say "kernels:$(printf ' %s' $kernels) (${VM_KERNELS:+VM_KERNELS='$VM_KERNELS', }${VM_PARALLEL:-2} at once);" \
	"families: $*; race rounds ${VM_RACE_ROUNDS:-1}, burst rounds ${VM_BURST_ROUNDS:-1}"

# Run in a snapshot of the tree as built, not the live tree: on a shared
# machine others rebuild ./oomkiller and edit src/ while the suite runs (seen:
# "bad local file header" from a zipapp replaced mid-run). Same layout, so
# tests find ./oomkiller and build/progs relative to themselves. Every guest
# sees it under its own overlay, so one snapshot serves them all.
TREE=$RUN/tree
mkdir -p "$TREE"
(cd "$HERE" && tar -cf - --exclude=./.git --exclude=./build/vm-out \
	--exclude=./build/vm-venv --exclude='__pycache__' .) | (cd "$TREE" && tar -xf -) || {
	say "cannot snapshot the tree into $TREE"
	exit 1
}

q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
env="VM_PYTEST_ARGS=$(q "${VM_PYTEST_ARGS:-tests/test_e2e_*.py}") VM_FAMILY_TIMEOUT=$VM_FAMILY_TIMEOUT"
env="$env OOMKILLER_RACE_ROUNDS=$(q "${VM_RACE_ROUNDS:-1}")"
env="$env OOMKILLER_BURST_ROUNDS=$(q "${VM_BURST_ROUNDS:-1}")"
env="$env OOMKILLER_TEST_READY_TIMEOUT=$(q "${VM_READY_TIMEOUT:-120}")"
env="$env VM_DESELECT=$(q "${VM_DESELECT:-}")"
env="$env OOMKILLER_TEST_STOP_TIMEOUT=$(q "${VM_STOP_TIMEOUT:-120}")"

# One guest: its output streamed with the kernel's name in front, its
# status and wall time left in its folder (sh has no pipefail).
guest() {
	kver=$1 out=$RUN/$1
	mkdir -p "$out"
	cmd="cd $(q "$TREE") && $env vm/guest-suite.sh $(q "$out") $FAMILIES"
	t0=$(date +%s)
	{
		if [ -n "${KERNEL:-}" ]; then
			VM_OUT=$out "$HERE/vm/run.sh" -- "$cmd" 2>&1
		else
			VM_OUT=$out VM_KERNEL=$kver "$HERE/vm/run.sh" -- "$cmd" 2>&1
		fi
		echo $? >"$out/vm.rc"
	} | sed -u "s/^/[$kver] /"
	echo $(( $(date +%s) - t0 )) >"$out/wall"
}

FAMILIES=$*
t0=$(date +%s)
n=0
for kver in $kernels; do
	guest "$kver" &
	n=$((n + 1))
	# Each guest is one busy host thread under single-threaded TCG.
	if [ $n -ge "${VM_PARALLEL:-2}" ]; then wait; n=0; fi
done
wait
t=$(( $(date +%s) - t0 ))

echo
say "summary (${t}s in all, logs in ${RUN#$HERE/}):"
printf 'test-vm: %-22s %-11s %-7s %6s  %s\n' kernel family verdict secs summary
fail=0
for kver in $kernels; do
	out=$RUN/$kver
	rc=$(cat "$out/vm.rc" 2>/dev/null || echo '?')
	oops=
	[ -s "$out/oops" ] && oops=1
	for fam in $FAMILIES; do
		if [ -f "$out/$fam.result" ]; then
			read -r verdict secs summary <"$out/$fam.result"
		elif [ -f "$out/$fam.started" ] && [ -n "$oops" ]; then
			verdict=FAIL secs=- summary="the guest kernel panicked during it"
		elif [ -f "$out/$fam.started" ]; then
			verdict=FAIL secs=- summary="the guest stopped during it (guest exit $rc)"
		else
			verdict="NOT-RUN" secs=- summary="the guest stopped before it"
		fi
		printf 'test-vm: %-22s %-11s %-7s %6s  %s\n' "$kver" "$fam" "$verdict" "$secs" "$summary"
		[ "$verdict" = PASS ] || fail=1
		# What failed, and pytest's first lines of why: CI shows only
		# this output's tail, never the logs.
		if [ "$verdict" != PASS ] && [ -f "$out/$fam.log" ]; then
			echo "test-vm: $kver $fam:" >>"$RUN/why"
			{
				grep -E '^(FAILED|ERROR) ' "$out/$fam.log" | head -n 20
				grep -E '^E  ' "$out/$fam.log" | head -n 30 | cut -c1-1200
			} | sed 's/^/test-vm:   /' >>"$RUN/why"
		fi
	done
	say "$kver: $(cat "$out/kernel" 2>/dev/null || echo '(no uname from the guest)')," \
		"$(cat "$out/wall" 2>/dev/null || echo '?')s wall, guest exit $rc"
	if [ -n "$oops" ]; then
		say "$kver: GUEST KERNEL OOPS/PANIC ($out/oops):"
		head -n 20 "$out/oops" | sed 's/^/test-vm:   /'
		fail=1
	fi
	[ "$rc" = 0 ] || fail=1
done
if [ $fail = 0 ]; then
	say "all $# families passed on $nk kernel(s)"
	exit 0
fi
# Last, where a CI page's tail shows it.
[ -f "$RUN/why" ] && cat "$RUN/why"
say "FAILED"
exit 1
