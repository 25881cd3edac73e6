#!/bin/sh
# vm/no-container-root.sh CMD...: run CMD chrooted into a view of this
# machine's root that lacks /.dockerenv, in a mount namespace of its own.
#
# Why: the systemd guest (vng --systemd) boots over this machine's root
# filesystem. systemd takes a /.dockerenv there to mean "in a Docker
# container" and then starts console-getty instead of serial-getty@ttyS0,
# so virtme-ng's drop-in that runs the guest command never runs, and logind
# and udev behave as in a container. Seen on this Debian 12 development
# machine, which is itself a Docker container. The view is a tmpfs holding
# bind mounts of every top-level entry but that one file; nothing on the
# real root changes, and the namespace goes when CMD exits. Without a
# /.dockerenv, CMD runs as is.
set -eu
[ $# -ge 1 ] || { echo "usage: vm/no-container-root.sh CMD..." >&2; exit 2; }
[ -e /.dockerenv ] || exec "$@"

if [ "${OOMKILLER_PRIVATE_ROOT:-}" != 1 ]; then
	OOMKILLER_PRIVATE_ROOT=1 exec unshare -m --propagation private "$0" "$@"
fi
R=/run/oomkiller-vm-root
mkdir -p "$R"
mount -t tmpfs -o mode=0755 oomkiller-vm-root "$R"
for e in /* /.[!.]*; do
	[ -e "$e" ] || [ -L "$e" ] || continue
	n=${e#/}
	if [ "$n" = .dockerenv ]; then continue
	elif [ -L "$e" ]; then cp -P "$e" "$R/$n"
	# /run holds $R itself: bind it without its submounts.
	elif [ "$e" = /run ]; then mkdir "$R/$n" && mount --bind "$e" "$R/$n"
	elif [ -d "$e" ]; then mkdir "$R/$n" && mount --rbind "$e" "$R/$n"
	else : >"$R/$n" && mount --bind "$e" "$R/$n"
	fi
done
cwd=$(pwd)
exec chroot "$R" sh -c 'cd "$1" && shift && exec "$@"' sh "$cwd" "$@"
