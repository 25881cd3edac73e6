#!/bin/sh
# mk/apt-install.sh WHAT PKG...: install missing Debian packages.
# Root installs them with apt-get; anyone else is told the command and
# make stops. Called by the Makefile and mk/*.mk with what they found missing.
what=$1; shift
[ $# -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "oomkiller: $what needs: $*: run: sudo apt-get install -y $*" >&2
	exit 1
fi
echo "  APT      $*"
apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null
