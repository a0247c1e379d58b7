# shellcheck shell=bash
# SPDX-License-Identifier: GPL-2.0-only
#
# For tests on rbd storages: a single-node Ceph cluster of the test's own
# (scripts/ceph-cluster.sh) and qemu victims whose disk is an RBD image,
# reached through librbd. Source it after lib.sh.
#
#   ceph_need [qemu]            SKIP (and exit) unless the packages are here
#   cluster_up                  the cluster in $T/ceph; stopped on exit
#   cluster_pool NAME           a pool of size 1, application rbd
#   cluster_down                stop it now (its pids gone, checked)
#   cl_ceph / cl_rados / cl_rbd ARGS...   the tools on it, time-bounded
#   rbd_victim_start NAME POOL IMG [UUID]  a qemu with that image as disk
#   rbd_victim_write NAME [BYTE] [OFFSET]  one 4 KiB write through its HMP
#   rbd_victim_hmp NAME CMD [SECONDS]      any HMP command, its output
#   host_up NAME ADDR           a simulated host: a cgroup whose TCP
#                               connections to 127/8 come from ADDR
#   host_exec NAME CMD...       CMD in that host (its cgroup)
#   host_fence NAME ADDR / host_unfence NAME ADDR
#                               the host's packets to ADDR dropped / not
#
# Sets CEPH_DIR, CEPH_CONF, CEPH_MON_PID, CEPH_OSD_PID. A victim's pid is
# in RBDV_PID_<NAME>, its HMP socket is $T/NAME.hmp.
#
# No librados option binds a client's sockets to an address of its own
# (ms_bind_before_connect with public_addr binds the OSD's heartbeat
# messengers only): a host's address comes from a cgroup/connect4 program
# (bpf_bind) in build/bpf/ceph_net.bpf.o, as a second NIC would give it.

# shellcheck source-path=SCRIPTDIR source=../scripts/ceph-cluster.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/ceph-cluster.sh"

# ceph_need [qemu]: the cluster's packages (and qemu's rbd driver), or a
# SKIP that says which Debian package is missing.
ceph_need() {
	local b pkg
	for b in ceph-mon:ceph-mon ceph-osd:ceph-osd ceph:ceph-common rados:ceph-common \
		rbd:ceph-common python3:python3 ss:iproute2; do
		command -v "${b%%:*}" >/dev/null && continue
		pkg=${b#*:}
		skip "${b%%:*} is missing (Debian package $pkg; scripts/deps.sh)"
		exit 0
	done
	[ "${1:-}" = qemu ] || return 0
	if ! command -v qemu-system-x86_64 >/dev/null; then
		skip "qemu-system-x86_64 is missing (Debian package qemu-system-x86)"
		exit 0
	fi
	# qemu's rbd driver is a module of its own in Debian.
	if ! ls /usr/lib/x86_64-linux-gnu/qemu/block-rbd.so >/dev/null 2>&1 &&
		! qemu-system-x86_64 -drive help 2>/dev/null | grep -q rbd; then
		skip "qemu has no rbd driver (Debian package qemu-block-extra)"
		exit 0
	fi
}

# shellcheck disable=SC2034 # for the tests
cluster_up() {
	CEPH_DIR=$T/ceph
	on_exit cluster_down
	ceph_cluster_start "$CEPH_DIR" >/dev/null || return 1
	CEPH_CONF=$CEPH_DIR/ceph.conf
	CEPH_MON_PID=$(cat "$CEPH_DIR/mon.pid")
	CEPH_OSD_PID=$(cat "$CEPH_DIR/osd.pid")
}
cluster_pool() { ceph_cluster_pool "$CEPH_DIR" "$1"; }

CEPH_NET_BPF=${CEPH_NET_BPF:-$(dirname "${BASH_SOURCE[0]}")/../build/bpf/ceph_net.bpf.o}

# host_need: what host_up needs, or a SKIP that says what is missing.
host_need() {
	CGROUP2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
	if [ -z "$CGROUP2" ]; then
		skip "no cgroup2 mount: no simulated hosts"
		exit 0
	fi
	command -v bpftool >/dev/null || { skip "bpftool is missing"; exit 0; }
	[ -f "$CEPH_NET_BPF" ] || { not_ok "$CEPH_NET_BPF (make tests)"; exit 1; }
}

_host_cg() { echo "${CGROUP2:?host_need first}/iofence-test-$$-$1"; }
_host_pin() { echo "$(pin_dir)-$1"; }

# host_up NAME ADDR: the host's cgroup, with host_src (its address) and
# net_fence (nothing fenced yet) attached; taken down on exit.
host_up() {
	local cg pin
	cg=$(_host_cg "$1") pin=$(_host_pin "$1")
	mkdir -p "$cg" "$pin" || return 1
	on_exit host_down "$1"
	# shellcheck disable=SC2046 # the four bytes of the address
	bpftool prog loadall "$CEPH_NET_BPF" "$pin/progs" pinmaps "$pin/maps" &&
		bpftool map update pinned "$pin/maps/src_addr" key 0 0 0 0 value $(tr . ' ' <<<"$2") &&
		bpftool cgroup attach "$cg" connect4 pinned "$pin/progs/host_src" multi &&
		bpftool cgroup attach "$cg" egress pinned "$pin/progs/net_fence" multi
}
# host_down NAME: its programs detached, its cgroup and pins removed (its
# processes must be gone: they are killed first, registered later).
host_down() {
	local cg pin p
	cg=$(_host_cg "$1") pin=$(_host_pin "$1")
	for p in host_src:connect4 net_fence:egress; do
		bpftool cgroup detach "$cg" "${p#*:}" pinned "$pin/progs/${p%%:*}" 2>/dev/null
	done
	rmdir "$cg" 2>/dev/null
	rm -rf "$pin"
}
# host_exec NAME CMD...: CMD in the host's cgroup.
host_exec() {
	local cg
	cg=$(_host_cg "$1")
	shift
	(echo "$BASHPID" >"$cg/cgroup.procs" && exec "$@")
}
# host_fence NAME ADDR: every packet of the host's sockets to ADDR is
# dropped from now on, established connections included.
host_fence() {
	# shellcheck disable=SC2046
	bpftool map update pinned "$(_host_pin "$1")/maps/fenced_dst" \
		key $(tr . ' ' <<<"$2") value 0 0 0 0 0 0 0 0
}
host_unfence() {
	# shellcheck disable=SC2046
	bpftool map delete pinned "$(_host_pin "$1")/maps/fenced_dst" key $(tr . ' ' <<<"$2")
}
# host_dropped NAME ADDR: how many packets to ADDR were dropped.
host_dropped() {
	# shellcheck disable=SC2046
	bpftool -j map lookup pinned "$(_host_pin "$1")/maps/fenced_dst" key $(tr . ' ' <<<"$2") 2>/dev/null |
		jq -r '.formatted.value // 0' 2>/dev/null
}
cluster_down() { [ -z "${CEPH_DIR:-}" ] || ceph_cluster_stop "$CEPH_DIR"; }

cl_ceph() { timeout 30 ceph -c "$CEPH_CONF" --connect-timeout 10 "$@"; }
cl_rados() { timeout 30 rados -c "$CEPH_CONF" "$@"; }
cl_rbd() { timeout 30 rbd -c "$CEPH_CONF" "$@"; }

# rbd_victim_start NAME POOL IMG [UUID]: a qemu without KVM and without a
# guest (-machine none) whose drive d0 is POOL/IMG through librbd, as a
# VM's disk is: the image is opened, its librados client connected. It
# writes when told (rbd_victim_write). RBD_VICTIM_BLOCKDEV=1 names the
# disk with -blockdev JSON instead, as libvirt writes it; RBD_VICTIM_HOST
# runs it in that host (host_up); RBD_VICTIM_QEMU is the binary to run
# (a copy under another name, for victim filters of their own). Killed on
# exit.
rbd_victim_start() {
	local name=$1 pool=$2 img=$3 uuid=${4:-} hmp=$T/$1.hmp cmd vpid args
	local conf=$CEPH_CONF in=
	[ -z "${RBD_VICTIM_HOST:-}" ] || in="echo \$BASHPID >$(_host_cg "$RBD_VICTIM_HOST")/cgroup.procs && "
	[ -n "$uuid" ] || uuid=$(cat /proc/sys/kernel/random/uuid)
	args=(-machine none -nographic -nodefaults -no-user-config
		-name "$name" -uuid "$uuid" -monitor "unix:$hmp,server=on,wait=off")
	if [ "${RBD_VICTIM_BLOCKDEV:-0}" = 1 ]; then
		args+=(-blockdev "{\"driver\":\"rbd\",\"pool\":\"$pool\",\"image\":\"$img\",\"conf\":\"$conf\",\"user\":\"admin\",\"node-name\":\"d0-storage\",\"cache\":{\"direct\":true,\"no-flush\":false},\"auto-read-only\":true,\"discard\":\"unmap\"}"
			-blockdev '{"node-name":"d0","read-only":false,"driver":"raw","file":"d0-storage"}')
	else
		args+=(-drive "file=rbd:$pool/$img:conf=$conf:id=admin,format=raw,if=none,id=d0,cache=none")
	fi
	rm -f "$hmp"
	printf -v cmd '%q ' "${args[@]}"
	# Its output apart: qemu-io prints what it did on qemu's stdout.
	proc_spawn vpid "${in}exec ${RBD_VICTIM_QEMU:-qemu-system-x86_64} $cmd >'$T/$name.out' 2>&1"
	printf -v "RBDV_PID_$name" '%s' "$vpid"
	# Up when its monitor answers: by then the image is open.
	if ! wait_until 30 rbd_victim_hmp "$name" info\ version 2 >/dev/null; then
		echo "# qemu $name did not come up:"
		tail -n 20 "$T/$name.out" | sed 's/^/#   /'
		return 1
	fi
}

# rbd_victim_hmp NAME CMD [SECONDS]: CMD on the victim's human monitor;
# prints its output, fails when the monitor did not answer in SECONDS
# (default 10: a write to a hung cluster blocks the monitor).
rbd_victim_hmp() {
	[ -S "$T/$1.hmp" ] || return 1
	timeout $((${3:-10} + 2)) python3 - "$T/$1.hmp" "$2" "${3:-10}" <<'EOF'
import re, socket, sys

s = socket.socket(socket.AF_UNIX)
s.settimeout(float(sys.argv[3]))
s.connect(sys.argv[1])
buf = b""


def prompt():
    global buf
    while b"(qemu) " not in buf:
        d = s.recv(4096)
        if not d:
            sys.exit(1)
        buf += d
    out, buf = buf.split(b"(qemu) ", 1)
    return out


try:
    prompt()
    s.sendall(sys.argv[2].encode() + b"\n")
    out = prompt().decode(errors="replace")
except OSError:
    sys.exit(1)
# The monitor echoes the command with terminal escapes: drop them.
out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]|\x1b[A-Za-z]|\r", "", out)
lines = out.split("\n")
print("\n".join(lines[1:]).strip())
EOF
}

# rbd_victim_write NAME [BYTE] [OFFSET] [SECONDS]: one 4 KiB write of BYTE
# (default 0xa5) at OFFSET (default 0) of its disk, and a flush: through
# the monitor's qemu-io, into librbd. Succeeds when qemu-io says, on the
# victim's output, that it wrote; fails when the monitor does not answer
# in SECONDS (default 10: the write waits on a hung cluster).
rbd_victim_write() {
	local out=$T/$1.out n
	n=$(grep -c '^wrote 4096/4096 bytes' "$out")
	rbd_victim_hmp "$1" "qemu-io d0 \"write -P ${2:-0xa5} ${3:-0} 4k\"" "${4:-10}" >/dev/null || return 1
	rbd_victim_hmp "$1" 'qemu-io d0 "flush"' "${4:-10}" >/dev/null || return 1
	[ "$(grep -c '^wrote 4096/4096 bytes' "$out")" -gt "$n" ] || {
		echo "# $1: $(tail -n 3 "$out" | tr '\n' ' ')"
		return 1
	}
}
