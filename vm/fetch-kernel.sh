#!/bin/sh
# Fetch the newest generic amd64 kernel from Debian unstable, unpack it and
# make its modules loadable by virtme-ng's initramfs. Prints one line:
#   VMLINUZ MODDIR
# Cached in $VM_CACHE (default /var/cache/oomkiller-vm): reruns download
# nothing new. If the archive can't be reached, the newest cached kernel
# is used.
#
# The mirror comes from this machine's own apt sources, so no host name is
# written here. VER is resolved at run time: unstable moves every few weeks.
set -eu
PATH=$PATH:/usr/sbin:/sbin

CACHE=${VM_CACHE:-/var/cache/oomkiller-vm}
SUITE=${VM_SUITE:-unstable}
FLAVOUR=amd64   # generic: the "cloud" flavour has no 9p, which virtme needs

say() { echo "vm: $*" >&2; }
die() { echo "vm: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "fetching the kernel needs root (apt-get, $CACHE): run: sudo make ..."
mkdir -p "$CACHE"

# Serialise fetches: two lanes started at once must not unpack into the same dir.
exec 9>"$CACHE/.lock"
flock 9

# The first Debian mirror this machine uses: deb822 sources first, then the
# one-line format. Security mirrors don't carry unstable.
mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f"
	done
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		awk '$1 == "deb" { for (i = 2; i <= NF; i++) if ($i !~ /^\[/ && $i !~ /\]$/ && $i !~ /=/) { print $i; break } }' "$f"
	done
}
URI=$(mirror | grep -v -e '-security' -e 'security\.' | head -n1)

newest_cached() {
	ls -1d "$CACHE"/*/.ready 2>/dev/null | sed 's,/\.ready$,,' | sort -V | tail -n1
}

APT="$CACHE/apt"
# apt-get and apt-cache on our own sources list and state, not the system's.
apt_private() {
	tool=$1; shift
	"$tool" \
		-o Dir::Etc::SourceList="$APT/sources.list" \
		-o Dir::Etc::SourceParts="$APT/empty" \
		-o Dir::Etc::PreferencesParts="$APT/empty" \
		-o Dir::Etc::Preferences="$APT/empty/none" \
		-o Dir::State="$APT/state" \
		-o Dir::State::status="$APT/state/status" \
		-o Dir::Cache="$APT/cache" \
		"$@"
}
aptq() { apt_private apt-get -q -o APT::Sandbox::User=root "$@"; }
apt_cache() { apt_private apt-cache "$@"; }

VER=
if [ -n "$URI" ]; then
	mkdir -p "$APT/empty" "$APT/state/lists/partial" "$APT/cache/archives/partial"
	: >"$APT/state/status"
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	echo "deb [signed-by=$keyring] $URI $SUITE main" >"$APT/sources.list"
	if aptq update >"$APT/update.log" 2>&1; then
		# linux-image-amd64 is the metapackage that tracks the current ABI.
		VER=$(apt_cache depends linux-image-$FLAVOUR 2>/dev/null |
			sed -n "s/^ *Depends: linux-image-\(.*\)-$FLAVOUR\$/\1/p" | head -n1)
	else
		say "apt-get update failed (see $APT/update.log)"
	fi
else
	say "no Debian mirror found in /etc/apt"
fi

if [ -z "$VER" ]; then
	dir=$(newest_cached)
	[ -n "$dir" ] || die "cannot resolve a $SUITE kernel and none is cached in $CACHE"
	say "using cached kernel $(basename "$dir")"
else
	KVER=$VER-$FLAVOUR
	dir="$CACHE/$KVER"
	if [ ! -f "$dir/.ready" ]; then
		say "fetching Linux $KVER from $SUITE"
		rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root"
		# Since 6.17-ish (trixie+1) linux-image-VER is a metapackage over
		# linux-{binary,modules,base}-VER; older ones carry everything
		# themselves. Take the image and whichever of those exist.
		pkgs="linux-image-$KVER"
		for p in binary modules base; do
			if apt_cache show "linux-$p-$KVER" >/dev/null 2>&1; then
				pkgs="$pkgs linux-$p-$KVER"
			fi
		done
		(cd "$dir/debs" && aptq download $pkgs >"$dir/download.log" 2>&1) ||
			die "apt-get download failed (see $dir/download.log)"
		for deb in "$dir"/debs/*.deb; do dpkg -x "$deb" "$dir/root"; done
		rm -rf "$dir/debs"
		# depmod -b looks in BASE/lib/modules; newer packages use /usr/lib.
		[ -e "$dir/root/lib" ] || ln -s usr/lib "$dir/root/lib"
		# virtme's initramfs can't load compressed modules ("Invalid ELF
		# header magic"): decompress and rebuild the indexes.
		find "$dir/root/lib/modules/$KVER" -name '*.ko.xz' -exec xz -d {} +
		find "$dir/root/lib/modules/$KVER" -name '*.ko.zst' -exec zstd -q -d --rm {} +
		depmod -b "$dir/root" "$KVER"
		touch "$dir/.ready"
	fi
fi

kver=$(basename "$dir")
mod="$dir/root/lib/modules/$kver"
for k in "$mod/vmlinuz" "$dir/root/boot/vmlinuz-$kver"; do
	if [ -f "$k" ]; then echo "$k $mod"; exit 0; fi
done
die "no vmlinuz in $dir"
