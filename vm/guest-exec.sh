#!/bin/sh
# Runs inside the guest (vm/run.sh passes it to vng --exec): run $OUT/cmd in
# the project root and leave its output and status in $OUT, a folder shared
# read-write with the host. The command travels as a file, not on the kernel
# command line: x86 caps that at 2048 bytes, and a longer one panics the
# kernel at boot (fortify, lib/string_helpers.c, seen on 7.2.13).
OUT=$1
cd "$(dirname "$0")/.." || exit 1
touch "$OUT/started"
# VM_OUT: where a test may leave what it saw (tests/systemd/ saves the journal).
VM_OUT=$OUT sh "$OUT/cmd" </dev/null >"$OUT/stdout" 2>"$OUT/stderr"
echo $? >"$OUT/rc.tmp"
mv "$OUT/rc.tmp" "$OUT/rc"
