#!/bin/sh
# Fetch stock Debian generic amd64 kernels, unpack them and make their
# modules loadable by virtme-ng's initramfs. For each SPEC, prints one line:
#   VMLINUZ MODDIR
#
#   vm/fetch-kernel.sh [SPEC...]      default: newest
#
# SPEC is "newest" (the highest linux-image-VER-amd64 in unstable or
# trixie-backports), a version prefix ("6.18.5": the highest package whose
# VER starts with it at a boundary, e.g. linux-image-6.18.5+deb13-amd64; "6.1"
# is 6.1.x, never 6.12 or 6.18), or an exact uname -r ("6.18.5+deb13-amd64").
# SUITE:SPEC looks in that suite alone: "bookworm:6.1" is Debian 12's own
# kernel, "trixie:6.12" Debian 13's. Cached in $VM_CACHE (default
# /var/cache/oomkiller-vm): an exact SPEC already cached needs no network,
# and reruns download nothing new. If the archive can't be reached, the
# newest cached kernel that matches is used.
#
# The mirror comes from this machine's own apt sources, so no host name is
# written here. Versions are resolved at run time: unstable moves every few
# weeks, backports less often.
set -eu
PATH=$PATH:/usr/sbin:/sbin

CACHE=${VM_CACHE:-/var/cache/oomkiller-vm}
# Suites searched for a SPEC without SUITE:; all are on the main archive.
SUITES=${VM_SUITES:-unstable trixie-backports}
FLAVOUR=amd64   # generic: the "cloud" flavour has no 9p, which virtme needs

say() { echo "vm: $*" >&2; }
die() { echo "vm: $*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "fetching the kernel needs root (apt-get, $CACHE): run: sudo make ..."
mkdir -p "$CACHE"

# Serialise fetches: two lanes started at once must not unpack into the same dir.
exec 9>"$CACHE/.lock"
flock 9

# The first Debian mirror this machine uses: deb822 sources first, then the
# one-line format. Security mirrors don't carry unstable or backports.
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

# One private apt state per set of suites ($CACHE/apt/bookworm, ...), so a
# lane on bookworm and one on unstable don't update each other's lists away.
APT=
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

# Whether uname -r $2 is what SPEC $1 asks for: "newest" is any; a prefix
# must end where a version component does (6.1 -> 6.1.0-50-amd64, not 6.18.5).
matches() {
	case $1 in
	newest) return 0 ;;
	*-"$FLAVOUR") [ "$2" = "$1" ] ;;
	*) case $2 in "$1"[.+-]*) return 0 ;; *) return 1 ;; esac ;;
	esac
}

# The newest cached kernel whose uname -r matches SPEC.
newest_cached() {
	for d in "$CACHE"/*/.ready; do
		[ -f "$d" ] || continue
		v=$(basename "$(dirname "$d")")
		if matches "$1" "$v"; then echo "$v"; fi
	done | sort -V | tail -n1
}

# apt-get update of the private state for SUITES (space-separated), once per
# call for each set of suites; it leaves APT pointing there.
updated=
update() {
	APT="$CACHE/apt/$(echo $1 | tr ' ' '+')"
	case "$updated " in
	*" $APT=0 "*) return 0 ;;
	*" $APT=1 "*) return 1 ;;
	esac
	rc=1
	if [ -z "$URI" ]; then
		say "no Debian mirror found in /etc/apt"
	else
		mkdir -p "$APT/empty" "$APT/state/lists/partial" "$APT/cache/archives/partial"
		: >"$APT/state/status"
		keyring=/usr/share/keyrings/debian-archive-keyring.gpg
		for suite in $1; do
			echo "deb [signed-by=$keyring] $URI $suite main"
		done >"$APT/sources.list"
		if aptq update >"$APT/update.log" 2>&1; then
			rc=0
		else
			say "apt-get update failed (see $APT/update.log)"
		fi
	fi
	updated="$updated $APT=$rc"
	return "$rc"
}

# apt-cache show succeeds even for a name with no version to download.
has_candidate() {
	apt_cache policy "$1" 2>/dev/null | grep -q '^ *Candidate: [0-9]'
}

# uname -r of the highest linux-image-VER-amd64 in the suites matching SPEC.
# Package names carry the version (linux-image-6.18.5+deb13-amd64), so
# sort -V on them ranks kernels; -dbg, -unsigned and the cloud/rt flavours
# don't end in -amd64.
resolve() {
	apt_cache pkgnames linux-image- 2>/dev/null |
		sed -n "s/^linux-image-\([0-9][^-]*\(-[0-9][^-]*\)\{0,1\}\)-$FLAVOUR\$/\1-$FLAVOUR/p" |
		while read -r v; do
			if matches "$1" "$v"; then echo "$v"; fi
		done | sort -V -r | while read -r v; do
			# pkgnames also lists names only referenced (Provides,
			# old versions): take the highest that can be downloaded.
			if has_candidate "linux-image-$v"; then echo "$v"; break; fi
		done
}

# Download and unpack linux-image-KVER (and its split parts) into $CACHE/KVER.
fetch() {
	KVER=$1
	dir="$CACHE/$KVER"
	[ -f "$dir/.ready" ] && return 0
	say "fetching Linux $KVER"
	rm -rf "$dir" && mkdir -p "$dir/debs" "$dir/root"
	# From 6.19 on linux-image-VER is a metapackage over
	# linux-{binary,modules,base}-VER; older ones (6.18.5+deb13) carry
	# everything themselves, and their linux-base dependency isn't in the
	# archive, which is why we download and unpack rather than install.
	# Take the image and whichever of those exist.
	pkgs="linux-image-$KVER"
	for p in binary modules base; do
		if has_candidate "linux-$p-$KVER"; then
			pkgs="$pkgs linux-$p-$KVER"
		fi
	done
	(cd "$dir/debs" && aptq download $pkgs >"$dir/download.log" 2>&1) ||
		die "apt-get download $pkgs failed (see $dir/download.log)"
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
}

[ $# -gt 0 ] || set -- newest
for spec in "$@"; do
	case $spec in
	*:*) suites=${spec%%:*} spec=${spec#*:} ;;
	*) suites=$SUITES ;;
	esac
	kver=
	case $spec in
	*-"$FLAVOUR") [ -f "$CACHE/$spec/.ready" ] && kver=$spec ;;
	esac
	if [ -z "$kver" ] && update "$suites"; then
		kver=$(resolve "$spec")
		[ -n "$kver" ] || die "no linux-image-$spec*-$FLAVOUR in $suites (another suite? SUITE:$spec)"
		fetch "$kver"
	fi
	if [ -z "$kver" ]; then
		kver=$(newest_cached "$spec")
		[ -n "$kver" ] || die "cannot resolve kernel $spec and none is cached in $CACHE"
		say "using cached kernel $kver for $spec"
	fi
	dir="$CACHE/$kver"
	mod="$dir/root/lib/modules/$kver"
	found=
	for k in "$mod/vmlinuz" "$dir/root/boot/vmlinuz-$kver"; do
		if [ -f "$k" ]; then echo "$k $mod"; found=1; break; fi
	done
	[ -n "$found" ] || die "no vmlinuz in $dir"
done
