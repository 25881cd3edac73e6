#!/bin/sh
# Runs inside the guest (vm/test-vm.sh starts it through vm/run.sh): the
# end-to-end suite once per attach family, then auto, one after another.
#
#   vm/guest-suite.sh RESULTS [FAMILY...]
#
# For each family F it writes RESULTS/F.started when it begins, RESULTS/F.log
# (pytest's output, also streamed) and RESULTS/F.result, one line:
# "PASS|FAIL SECONDS SUMMARY". The host reads those files, not the console,
# so a family the guest never finished shows as not run (or, started and
# unfinished, as the one a panic stopped). A kernel oops during a family
# (dmesg) fails it, whatever pytest said. Environment: VM_PYTEST_ARGS (what pytest runs, default
# "tests/test_e2e_*.py"; vm/test-vm.sh passes the kernel's set, mk/vm.mk
# VM_FULL_SET or VM_SHORT_SET), VM_FAMILY_TIMEOUT (seconds per family,
# default 600), OOMKILLER_RACE_ROUNDS and OOMKILLER_BURST_ROUNDS (the set's).
set -u
RESULTS=$1
shift
[ $# -gt 0 ] || set -- fentry kprobe tracepoint auto
cd "$(dirname "$0")/.." || exit 1

PYTHON=/usr/bin/python3
PYTEST_ARGS=${VM_PYTEST_ARGS:-tests/test_e2e_*.py}
LIMIT=${VM_FAMILY_TIMEOUT:-600}

say() { echo "test-vm: $*"; }

# The guest's init leaves RLIMIT_NOFILE at the kernel's 1024/4096; the
# sparse-fd tests dup onto fd 5000 and up (this host's hard limit is 20000).
ulimit -Hn 65536 && ulimit -Sn 65536 || say "cannot raise RLIMIT_NOFILE: $(ulimit -Hn)"

# Every e2e module first touches a ~2.8 GiB ballast to open the gate. Under
# TCG with 4 KiB pages that is ~700k emulated faults: 19 s per module; with
# THP always, 8 s (measured on 7.2.13). Used memory, as sysinfo() counts it,
# is the same either way.
echo always >/sys/kernel/mm/transparent_hugepage/enabled 2>/dev/null ||
	say "cannot set THP to always: ballasts will be slow"

uname -r >"$RESULTS/kernel"

# What the kernel offers, for the record.
say "guest kernel $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024) " MiB"}' /proc/meminfo)," \
	"RLIMIT_NOFILE $(ulimit -Sn)/$(ulimit -Hn)," \
	"event sources: $(ls /sys/bus/event_source/devices | tr '\n' ' ')"

# auto must prefer fentry or kprobe where the kernel has them: read the
# ready line of a dry run and refuse a tracepoint pick for mem/sys/tcp.
check_auto() {
	flock /tmp/oomkiller-e2e.lock sh -c '
		./oomkiller --dry-run 2>"$1" & pid=$!
		i=0
		while [ $i -lt 180 ] && ! grep -q "^oomkiller: ready" "$1"; do
			kill -0 $pid 2>/dev/null || break
			sleep 1; i=$((i + 1))
		done
		kill -INT $pid 2>/dev/null; wait $pid' sh "$RESULTS/auto.ready" >/dev/null
	line=$(grep "^oomkiller: ready" "$RESULTS/auto.ready")
	fams=$(echo "$line" | sed -n 's/.*families \([^;]*\);.*/\1/p')
	if [ -z "$fams" ]; then
		say "auto: no ready line from ./oomkiller --dry-run:"
		sed 's/^/test-vm:   /' "$RESULTS/auto.ready"
		return 1
	fi
	bad=
	case " $fams " in
	*" mem=fentry "* | *" mem=kprobe "*) ;;
	*) bad="$bad mem" ;;
	esac
	# sys: the tracepoint (families.AUTO_ORDER says why); tcp: the
	# sock_send_length tracepoint, hooked twice, in every family, or off on
	# a kernel without that event (6.1), as the ready line then says.
	case " $fams " in *" sys=tracepoint "*) ;; *) bad="$bad sys" ;; esac
	tcp=tracepoint
	case "$line" in *"; kernel: tcp-packets off: no sock_send_length "*) tcp=off ;; esac
	case " $fams " in *" tcp=$tcp "*) ;; *) bad="$bad tcp" ;; esac
	if [ -n "$bad" ]; then
		say "auto: unexpected family for:$bad (want mem=fentry|kprobe sys=tracepoint tcp=$tcp): $fams"
		return 1
	fi
	say "auto: ready line picks $fams"
}

OOPS='Oops:|Kernel panic|BUG:|general protection'
oopses() { dmesg 2>/dev/null | grep -E -c "$OOPS"; }

for fam in "$@"; do
	# VM_DESELECT: what the lane leaves out for now (mk/vm.mk says why).
	fam_args=${VM_DESELECT:-}
	say "$fam: running $PYTHON -m pytest -q $PYTEST_ARGS $fam_args"
	t0=$(date +%s)
	: >"$RESULTS/$fam.started"
	oops0=$(oopses)
	ok=1
	if [ "$fam" = auto ]; then
		unset OOMKILLER_TEST_ATTACH
		check_auto || ok=0
	else
		export OOMKILLER_TEST_ATTACH=$fam
	fi
	# pytest's status travels in a file: sh has no pipefail.
	{
		timeout -k 30 "$LIMIT" $PYTHON -m pytest -q -p no:cacheprovider \
			-o faulthandler_timeout=300 --durations=10 $PYTEST_ARGS $fam_args 2>&1
		echo $? >"$RESULTS/$fam.rc"
	} | tee "$RESULTS/$fam.log"
	rc=$(cat "$RESULTS/$fam.rc")
	t=$(( $(date +%s) - t0 ))
	[ "$rc" = 124 ] && echo "test-vm: $fam: pytest timed out after ${LIMIT}s" | tee -a "$RESULTS/$fam.log"
	[ "$rc" = 0 ] || ok=0
	# pytest -q ends with e.g. "3 failed, 117 passed in 301.2s".
	summary=$(grep -E '[0-9]+ (passed|failed|error|errors|skipped)' "$RESULTS/$fam.log" | tail -n1 |
		sed -e 's/=//g' -e 's/ in [0-9.]*s.*//' -e 's/^ *//' -e 's/ *$//')
	[ -n "$summary" ] || summary="pytest exit $rc"
	if [ "$(oopses)" != "$oops0" ]; then
		ok=0
		summary="KERNEL OOPS; $summary"
		say "$fam: the kernel oopsed during this family:"
		dmesg | grep -E -A 12 "$OOPS" | tee "$RESULTS/$fam.oops" | sed 's/^/test-vm:   /'
	fi
	if [ $ok = 1 ]; then verdict=PASS; else verdict=FAIL; fi
	echo "$verdict $t $summary" >"$RESULTS/$fam.result"
	say "$fam: $verdict ($summary, ${t}s)"
done
