#!/bin/sh
# make test-vm: boot the guest once and run the suite in it per attach family
# (vm/guest-suite.sh), then report per family from the result files the
# guest left in the shared folder. Exits 0 only if every family passed.
#
#   vm/test-vm.sh [FAMILY...]     default: fentry kprobe tracepoint auto
set -u
HERE=$(cd "$(dirname "$0")/.." && pwd)
[ $# -gt 0 ] || set -- fentry kprobe tracepoint auto

mkdir -p "$HERE/build/vm-out"
VM_OUT=$(mktemp -d "$HERE/build/vm-out/test.XXXXXX")
export VM_OUT
# Per family plus boot; vm/run.sh kills the guest after this.
: "${VM_FAMILY_TIMEOUT:=600}"
VM_TIMEOUT=${VM_TIMEOUT:-$(( VM_FAMILY_TIMEOUT * $# + 600 ))}
export VM_TIMEOUT

# Run in a snapshot of the tree as built, not the live tree: on a shared
# machine others rebuild ./oomkiller and edit src/ while the suite runs (seen:
# "bad local file header" from a zipapp replaced mid-run). Same layout, so
# tests find ./oomkiller and build/progs relative to themselves.
TREE=$VM_OUT/tree
mkdir -p "$TREE"
(cd "$HERE" && tar -cf - --exclude=./.git --exclude=./build/vm-out \
	--exclude=./build/vm-venv --exclude='__pycache__' .) | (cd "$TREE" && tar -xf -) || {
	echo "test-vm: cannot snapshot the tree into $TREE" >&2
	exit 1
}

q() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
cmd="VM_PYTEST_ARGS=$(q "${VM_PYTEST_ARGS:-tests/test_e2e_*.py}") VM_FAMILY_TIMEOUT=$VM_FAMILY_TIMEOUT"
cmd="cd $(q "$TREE") && $cmd vm/guest-suite.sh $(q "$VM_OUT") $*"

t0=$(date +%s)
vm_rc=0
"$HERE/vm/run.sh" -- "$cmd" || vm_rc=$?
t=$(( $(date +%s) - t0 ))

echo
echo "test-vm: summary ($(cat "$VM_OUT/kernel" 2>/dev/null || echo "guest"), ${t}s in all, logs in ${VM_OUT#$HERE/}):"
fail=0
for fam in "$@"; do
	if [ -f "$VM_OUT/$fam.result" ]; then
		read -r verdict secs summary <"$VM_OUT/$fam.result"
		echo "test-vm: $fam: $verdict ($summary, ${secs}s)"
		[ "$verdict" = PASS ] || fail=1
	else
		echo "test-vm: $fam: NOT RUN (the guest stopped before it)"
		fail=1
	fi
done
if [ $fail = 0 ] && [ $vm_rc = 0 ]; then
	echo "test-vm: all $# families passed"
	exit 0
fi
[ $vm_rc = 0 ] || [ $vm_rc = 1 ] || echo "test-vm: guest exit $vm_rc"
echo "test-vm: FAILED"
exit 1
