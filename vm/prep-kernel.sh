#!/bin/sh
# Stage a kernel the user brings (make test-vm KERNEL=... [MODULES=...]) the
# way vm/fetch-kernel.sh stages Debian's, and print one line:
#   VMLINUZ MODDIR
#
# KERNEL is a bzImage. MODULES, if given, is its /lib/modules/VER tree: it is
# copied into $VM_CACHE/user/VER with the modules decompressed (virtme's
# initramfs can't load .ko.xz/.ko.zst) and indexed by depmod. Without
# MODULES, vng looks for modules next to KERNEL (e.g. /boot/vmlinuz-VER and
# /lib/modules/VER); a kernel with 9p and virtio built in needs none.
set -eu
PATH=$PATH:/usr/sbin:/sbin

KERNEL=$1
MODULES=${2:-}
CACHE=${VM_CACHE:-/var/cache/oomkiller-vm}

die() { echo "vm: $*" >&2; exit 1; }

[ -f "$KERNEL" ] || die "KERNEL=$KERNEL: no such file"
KERNEL=$(realpath "$KERNEL")
if [ -z "$MODULES" ]; then
	echo "$KERNEL -"
	exit 0
fi
[ -d "$MODULES" ] || die "MODULES=$MODULES: no such directory (want .../lib/modules/VER)"
MODULES=$(realpath "$MODULES")
VER=$(basename "$MODULES")

dir="$CACHE/user/$VER"
mod="$dir/root/lib/modules/$VER"
stamp="$KERNEL $(stat -c '%s %Y' "$KERNEL") $MODULES $(stat -c '%Y' "$MODULES")"

mkdir -p "$CACHE/user"
exec 9>"$CACHE/.lock"
flock 9
if [ "$(cat "$dir/.ready" 2>/dev/null)" != "$stamp" ]; then
	echo "vm: staging $KERNEL with modules $VER in $dir" >&2
	rm -rf "$dir"
	mkdir -p "$mod"
	cp -a "$MODULES/." "$mod/"
	find "$mod" -name '*.ko.xz' -exec xz -d {} +
	find "$mod" -name '*.ko.zst' -exec zstd -q -d --rm {} +
	find "$mod" -name '*.ko.gz' -exec gzip -d {} +
	cp "$KERNEL" "$mod/vmlinuz"
	depmod -b "$dir/root" "$VER"
	echo "$stamp" >"$dir/.ready"
fi
echo "$mod/vmlinuz $mod"
