#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Install what iofence needs to build, test and benchmark, and mount the
# kernel file systems it uses. Idempotent: a second run changes nothing.
set -u

# Debian packages: build, BPF pipeline, tests, benchmarks, the .deb
# (debian/rules needs no root: no fakeroot).
pkgs=(
	make gcc clang llvm pkg-config
	libbpf-dev bpftool libelf-dev zlib1g-dev libbpf-tools
	liburing-dev libjansson-dev libinih-dev
	libcriterion-dev libfuse3-dev fuse3
	fio jq util-linux procps e2fsprogs kmod
	qemu-system-x86 busybox-static xz-utils
	# the man pages: test_docs.sh renders them (groff, col), man reads them
	groff-base bsdextrautils man-db
	# the Debian package: test_install.sh builds it
	dpkg-dev debhelper
	# test_operator.sh checks the metrics' grammar
	python3
	# test_valgrind.sh runs the daemon under memcheck
	valgrind
	# rbd storages: librados to build; a single-node cluster for the tests
	# (scripts/ceph-cluster.sh) and qemu's rbd driver for their victims
	librados-dev ceph-mon ceph-osd ceph-common qemu-block-extra
)

log() { printf 'deps: %s\n' "$*"; }
rc=0

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then
		log "not root: cannot install ${missing[*]}; run: sudo $0"
		rc=1
	else
		log "installing ${missing[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq || { log "apt-get update failed"; rc=1; }
		apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
			{ log "apt-get install failed for: ${missing[*]}"; rc=1; }
	fi
else
	log "all packages present"
fi

# Kernel file systems: bpffs for pins, tracefs for tracepoints,
# securityfs to see which LSMs are active.
mount_fs() { # type dir
	if ! mountpoint -q "$2"; then
		if [ "$(id -u)" -ne 0 ]; then
			log "not root: cannot mount $1 on $2"
			rc=1
		elif ! mount -t "$1" "$1" "$2" 2>/dev/null; then
			log "could not mount $1 on $2 (the kernel may lack it)"
		else
			log "mounted $1 on $2"
		fi
	fi
}
mount_fs bpf /sys/fs/bpf
mount_fs tracefs /sys/kernel/tracing
mount_fs securityfs /sys/kernel/security

# FUSE needs its device node and module for the fault injector.
[ -e /dev/fuse ] || modprobe fuse 2>/dev/null || log "no /dev/fuse: FUSE tests will skip"
# Loop devices for the end-to-end tests.
[ -e /dev/loop-control ] || modprobe loop 2>/dev/null || log "no loop-control: loop tests will skip"

# The selftests/vm guest: Debian's kernel unpacked into build/vm/guest.
"$(dirname "$0")/../selftests/vm/prepare.sh" || rc=1

exit $rc
