#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: ceph (test clusters and simulated hosts share addresses 127.0.0.2-3)
#
# The network fence (bpf/netfence.bpf.c) on real librbd victims: two qemu
# processes whose disks are RBD images of the test cluster, both started
# before the fence is attached, as VMs are before iofenced. The marked one
# can no longer write to its image, not even with what its sockets still
# queue after SIGKILL; the other writes throughout.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_root
# shellcheck source=../ceph.sh
. "$(dirname "$0")/../ceph.sh"
ceph_need qemu
command -v jq >/dev/null || { skip "jq is missing"; exit 0; }
NETFENCE_CTL=${NETFENCE_CTL:-$OUT/netfence_ctl}
[ -n "$(awk '$3 == "cgroup2"' /proc/mounts)" ] || { skip "no cgroup2 mount"; exit 0; }
[ -x "$NETFENCE_CTL" ] || { not_ok "$NETFENCE_CTL (make tests)"; exit 1; }

T=$(readlink -f "$T")
POOL=iofence-test
PIN=$(pin_dir)
nf() { "$NETFENCE_CTL" "$PIN" "$@" 2>>"$T/nf.log"; }

# img_bytes IMG OFFSET: its 4 KiB at OFFSET as the cluster holds them, one
# hex byte when they are all the same (see test_ceph_cluster.sh).
img_bytes() {
	local p
	p=$(cl_rbd info "$POOL/$1" --format json | jq -r .block_name_prefix)
	rm -f "$T/img.obj"
	cl_rados -p "$POOL" get "$p.0000000000000000" "$T/img.obj" >/dev/null 2>&1 || { echo none; return; }
	od -An -v -tx1 -j "$2" -N 4096 "$T/img.obj" | tr ' ' '\n' | grep . | sort -u |
		awk '{ b = $0; n++ } END { print (n == 1 ? b : n == 0 ? "none" : "mixed") }'
}
# queued LPORT...: the bytes in the send buffers of the sockets bound to them.
queued() {
	local p s=0
	for p in "$@"; do
		s=$((s + $(ss -Htn "( sport = :$p )" | awk '{ s += $3 } END { print s + 0 }')))
	done
	echo "$s"
}
dropped() { nf count "$1" | awk '{ print $1 }'; }

cluster_up || { not_ok "the cluster starts"; exit 1; }
cluster_pool "$POOL" || { not_ok "pool $POOL"; exit 1; }
cl_rbd create "$POOL/vm1" --size 16M && cl_rbd create "$POOL/vm2" --size 16M
if ! { rbd_victim_start vm1 "$POOL" vm1 && rbd_victim_start vm2 "$POOL" vm2; }; then
	not_ok "two qemu victims start with their rbd disks"
	exit 1
fi
ok "two qemu victims run with their rbd disks"

# After the victims, as a daemon that starts on a running host.
on_exit "'$NETFENCE_CTL' '$PIN' close; rm -rf '$PIN'"
if [ "$(nf open)" != loaded ]; then
	if grep -q 'cannot load the BPF programs' "$T/nf.log"; then
		skip "this kernel does not load the network fence: $(tail -n 1 "$T/nf.log")"
		exit 0
	fi
	not_ok "the network fence loads" "$(cat "$T/nf.log")"
	exit 1
fi
ok "the network fence loads and attaches, after the victims connected"

rbd_victim_write vm1 0x11 8192 && rbd_victim_write vm2 0x21 8192
check "both write to their images ($(img_bytes vm1 8192), $(img_bytes vm2 8192))" \
	[ "$(img_bytes vm1 8192)$(img_bytes vm2 8192)" = 1121 ]

# shellcheck disable=SC2154 # set by rbd_victim_start
P1=$RBDV_PID_vm1
mapfile -t LP1 < <(ss -Htnp | grep "pid=$P1," | awk '{ n = split($4, a, ":"); print a[n] }')
check "vm1 holds TCP connections to the cluster (${#LP1[@]})" [ "${#LP1[@]}" -ge 2 ]
read -r _ took < <(nf mark "$P1" 1)
check "vm1 marked (pid $P1; the mark and its claim took $((took / 1000)) us)" [ -n "$took" ]
t0=$(mono_ms)
rbd_victim_write vm1 0x22 8192 5
rc=$?
check "vm1's write does not complete (qemu-io gave up after $(($(mono_ms) - t0)) ms)" [ "$rc" -ne 0 ]
check "vm1's image keeps the old bytes ($(img_bytes vm1 8192))" [ "$(img_bytes vm1 8192)" = 11 ]
d0=$(dropped 1)
check "its packets are dropped ($d0)" [ "${d0:-0}" -gt 0 ]
rbd_victim_write vm2 0x23 8192
check "vm2 (not marked) writes on ($(img_bytes vm2 8192))" [ "$(img_bytes vm2 8192)" = 23 ]

q=$(queued "${LP1[@]}")
proc_kill "$P1"
check "vm1 SIGKILLed, gone" eval "! proc_alive $P1"
left=$(queued "${LP1[@]}")
echo "# vm1's sockets queued $q bytes before the kill, $left after"
check "its orphaned sockets still queue the write ($left bytes)" [ "$left" -gt 0 ]
sleep 5
check "5 s after the kill, vm1's image still has the old bytes ($(img_bytes vm1 8192))" \
	[ "$(img_bytes vm1 8192)" = 11 ]
d1=$(dropped 1)
check "the orphaned sockets' retransmissions are dropped ($d0 -> $d1)" [ "$d1" -gt "$d0" ]

check "unmark lifts vm1's mark" [ "$(nf unmark 1)" -eq 1 ]
# Its orphaned sockets were caught: they stay fenced (until they die).
lifted() { nf count 0 | awk '{ print $3 }'; }
wait_until 20 eval "[ \"\$(lifted)\" -gt 0 ]"
check "after the unmark, vm1's queued write still does not land ($(lifted) retransmissions dropped; image $(img_bytes vm1 8192))" \
	[ "$(img_bytes vm1 8192)" = 11 ]
rbd_victim_write vm2 0x24 8192
check "vm2 writes after the unmark too ($(img_bytes vm2 8192))" [ "$(img_bytes vm2 8192)" = 24 ]
