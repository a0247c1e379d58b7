#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: ceph (test clusters and simulated hosts share addresses 127.0.0.2-3)
#
# The test cluster of the rbd tests, on its own (no iofenced yet): it
# starts and stops cleanly, a pool round-trips an object, qemu victims
# reach their RBD images through librbd and their writes land, a
# SIGSTOPped OSD makes a bounded op fail in its time and SIGCONT brings it
# back, and a blocklisted address (the fence Ceph enforces) refuses the
# writes of the clients bound to it until the entry is removed.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_root
# shellcheck source=../ceph.sh
. "$(dirname "$0")/../ceph.sh"
ceph_need qemu
host_need
command -v jq >/dev/null || { skip "jq is missing"; exit 0; }

T=$(readlink -f "$T")
POOL=iofence-test

# img_bytes IMG OFFSET: the 4 KiB of the image at OFFSET (within its first
# 4 MiB), as one hex byte when they are all the same, else "mixed"; read
# from its first data object, as the cluster holds it (an rbd export of
# the whole image takes seconds).
declare -A IMG_PREFIX=()
img_bytes() {
	local p=${IMG_PREFIX[$1]:-}
	if [ -z "$p" ]; then
		p=$(cl_rbd info "$POOL/$1" --format json | jq -r .block_name_prefix)
		IMG_PREFIX[$1]=$p
	fi
	rm -f "$T/img.obj"
	cl_rados -p "$POOL" get "$p.0000000000000000" "$T/img.obj" >/dev/null 2>&1 || { echo none; return; }
	od -An -v -tx1 -j "$2" -N 4096 "$T/img.obj" | tr ' ' '\n' | grep . | sort -u |
		awk '{ b = $0; n++ } END { print (n == 1 ? b : n == 0 ? "none" : "mixed") }'
}
img_is() { [ "$(img_bytes "$1" "$2")" = "$3" ]; } # IMG OFFSET BYTE
# failed_in RC MS LO HI: a command failed by itself (not killed by timeout)
# after LO..HI ms.
failed_in() { [ "$1" -ne 0 ] && [ "$1" -ne 124 ] && between "$2" "$3" "$4"; }
not_grep() { ! grep -q -- "$1" <<<"$2"; } # RE TEXT
not_there() { # FILE...
	local f
	for f in "$@"; do [ ! -e "$f" ] || return 1; done
}

# --- the cluster --------------------------------------------------------
t0=$(mono_ms)
if ! cluster_up; then
	not_ok "the cluster starts"
	exit 1
fi
ok "the cluster starts: mon and osd up in $(($(mono_ms) - t0)) ms"
check "mon.pid and osd.pid name the running ceph-mon and ceph-osd" \
	[ "$(readlink "/proc/$CEPH_MON_PID/exe")" = /usr/bin/ceph-mon ] &&
	[ "$(readlink "/proc/$CEPH_OSD_PID/exe")" = /usr/bin/ceph-osd ]
# Everything of the cluster under its directory: no /etc/ceph, /var/lib/ceph.
outside=$(for f in /proc/"$CEPH_MON_PID"/fd/* /proc/"$CEPH_OSD_PID"/fd/*; do
	readlink "$f"
done | grep '^/' | grep -vE "^($T|/dev|/proc|/sys|/usr)/" | sort -u)
check "the daemons keep no file open outside $T${outside:+ (not: $outside)}" [ -z "$outside" ]

t0=$(mono_ms)
if cluster_pool "$POOL"; then
	ok "pool $POOL made and active in $(($(mono_ms) - t0)) ms"
else
	not_ok "pool $POOL made and active"
	exit 1
fi
check "pool $POOL: size 1, application rbd" \
	jqe '.size == 1 and .min_size == 1 and (.application_metadata | has("rbd"))' \
	< <(cl_ceph osd pool ls detail -f json | jq -c --arg p "$POOL" '.[] | select(.pool_name == $p)')

head -c 65536 /dev/urandom >"$T/obj"
cl_rados -p "$POOL" put obj1 "$T/obj" && cl_rados -p "$POOL" get obj1 "$T/obj.back"
check "rados put and get round-trip a 64 KiB object" cmp -s "$T/obj" "$T/obj.back"

# --- qemu victims on RBD images -----------------------------------------
cl_rbd create "$POOL/vm1" --size 16M && cl_rbd create "$POOL/vm2" --size 16M &&
	cl_rbd create "$POOL/vm3" --size 16M
check "rbd create: three 16 MiB images" [ "$(cl_rbd ls "$POOL" | wc -l)" -eq 3 ]

UUID1=$(cat /proc/sys/kernel/random/uuid)
if rbd_victim_start vm1 "$POOL" vm1 "$UUID1"; then
	ok "qemu vm1 (-drive file=rbd:...) starts without KVM, its image open"
else
	not_ok "qemu vm1 starts with its rbd disk"
	exit 1
fi
# Its librados client talks to the mon and to the OSD.
peers=$(ss -Htnp state established 2>/dev/null | grep "pid=$RBDV_PID_vm1," |
	awk '{ print $4 }' | sort -u | wc -l)
check "vm1 holds TCP connections to the cluster (to $peers addresses; want mon and osd)" \
	[ "$peers" -ge 2 ]
check "vm1's command line names its uuid and the rbd pool" \
	grep -q -- "-uuid.$UUID1.*rbd:$POOL/vm1" < <(tr '\0' ' ' <"/proc/$RBDV_PID_vm1/cmdline")
before=$(img_bytes vm1 8192)
rbd_victim_write vm1 0x5a 8192
check "a write through vm1's monitor lands in the image (bytes at 8 KiB: $before -> $(img_bytes vm1 8192))" \
	[ "$(img_bytes vm1 8192)" = 5a ]
rbd_victim_write vm1 0x3c 8192
check "a second write lands too" [ "$(img_bytes vm1 8192)" = 3c ]

if RBD_VICTIM_BLOCKDEV=1 rbd_victim_start vm2 "$POOL" vm2; then
	ok "qemu vm2 (-blockdev JSON, as libvirt writes it) starts"
	rbd_victim_write vm2 0x77 0
	check "a write through vm2's monitor lands in its image" [ "$(img_bytes vm2 0)" = 77 ]
else
	not_ok "qemu vm2 (-blockdev) starts"
fi

# --- a hung OSD ----------------------------------------------------------
kill -STOP "$CEPH_OSD_PID"
t0=$(mono_ms)
out=$(cl_rados -p "$POOL" --rados-osd-op-timeout 2 put obj2 "$T/obj" 2>&1)
rc=$? dt=$(($(mono_ms) - t0))
check "OSD stopped: a put with rados_osd_op_timeout 2 fails in $dt ms (want 1500..10000; exit $rc: ${out//$'\n'/ })" \
	failed_in "$rc" "$dt" 1500 10000
check "its error is ETIMEDOUT (110)" grep -q '(110)' <<<"$out"
kill -CONT "$CEPH_OSD_PID"
t0=$(mono_ms)
if wait_until 30 cl_rados -p "$POOL" --rados-osd-op-timeout 5 put obj2 "$T/obj"; then
	ok "SIGCONT: writes land again ($(($(mono_ms) - t0)) ms)"
else
	not_ok "SIGCONT: writes land again within 30 s"
fi
rbd_victim_write vm1 0x11 8192
check "vm1 writes again after the OSD came back" [ "$(img_bytes vm1 8192)" = 11 ]

# --- a second host: its own address, a network fence, the blocklist -----
# Host h2: its clients' connections come from 127.0.0.2 (a cgroup program).
host_up h2 127.0.0.2
check "host h2 is up (cgroup, host_src and net_fence attached)" [ $? -eq 0 ]
out=$(host_exec h2 rados -c "$CEPH_CONF" -p "$POOL" --debug-ms=10 --log-to-stderr=true --log-file= \
	put from2 "$T/obj" 2>&1 | grep -o 'learned my addr [^ ]*' | head -n 1)
check "a client in host h2 writes, and the cluster sees it as 127.0.0.2 ($out)" \
	grep -q 'learned my addr 127.0.0.2:' <<<"$out"
if RBD_VICTIM_HOST=h2 rbd_victim_start vm3 "$POOL" vm3; then
	ok "qemu vm3 starts in host h2"
	src=$(ss -Htnp state established 2>/dev/null | grep "pid=$RBDV_PID_vm3," | awk '{ print $3 }' |
		sed 's/:[0-9]*$//' | sort -u | tr '\n' ' ')
	check "vm3's connections come from 127.0.0.2 ($src)" [ "$src" = "127.0.0.2 " ]
	rbd_victim_write vm3 0x21 0
	check "vm3 writes" [ "$(img_bytes vm3 0)" = 21 ]

	# The network fence: h2's packets to the cluster dropped, its
	# established connections included; other hosts untouched.
	host_fence h2 127.0.0.1
	t0=$(mono_ms)
	rbd_victim_write vm3 0x22 0 4 >/dev/null
	rc=$?
	check "net-fenced: vm3's write does not complete ($(($(mono_ms) - t0)) ms, monitor timeout 4 s)" [ $rc -ne 0 ]
	check "net-fenced: its packets to the cluster are dropped ($(host_dropped h2 127.0.0.1))" \
		[ "$(host_dropped h2 127.0.0.1)" -gt 0 ]
	check "net-fenced: the image keeps the bytes of before" [ "$(img_bytes vm3 0)" = 21 ]
	check "net-fenced: a client outside h2 still writes" \
		cl_rados -p "$POOL" --rados-osd-op-timeout 10 put from1 "$T/obj"
	host_unfence h2 127.0.0.1
	t0=$(mono_ms)
	wait_until 60 rbd_victim_hmp vm3 'info version' 2 >/dev/null
	check "unfenced: vm3's held write completes ($(($(mono_ms) - t0)) ms) and lands" \
		wait_until 10 img_is vm3 0 22
else
	not_ok "qemu vm3 starts in host h2"
fi

# The blocklist: the cluster itself refuses the host's writes. vm3's host
# "dies" (SIGSTOP) holding its image's exclusive lock; once blocklisted,
# the VM restarts on another host at once: librbd breaks the lock of a
# blocklisted owner without waiting out its watch (30 s).
[ -z "${RBDV_PID_vm3:-}" ] || kill -STOP "$RBDV_PID_vm3"
cl_ceph osd blocklist add 127.0.0.2:0/0 >/dev/null 2>&1
check "ceph osd blocklist add 127.0.0.2:0/0" grep -q '^127.0.0.2:0/0' < <(cl_ceph osd blocklist ls 2>/dev/null)
out=$(host_exec h2 rados -c "$CEPH_CONF" -p "$POOL" --rados-osd-op-timeout 10 put from2 "$T/obj" 2>&1)
check "blocklisted: a new h2 client's write fails with ESHUTDOWN (EBLOCKLISTED, 108): ${out//$'\n'/ }" \
	grep -q '(108)' <<<"$out"
if [ -n "${RBDV_PID_vm3:-}" ]; then
	t0=$(mono_ms)
	if rbd_victim_start vm3b "$POOL" vm3 && rbd_victim_write vm3b 0x25 0 20; then
		ok "blocklisted: vm3 restarted on host 1 writes its image $(($(mono_ms) - t0)) ms after start"
	else
		not_ok "blocklisted: vm3 restarted on host 1 writes its image within 20 s"
	fi
	check "blocklisted: the image has the restarted VM's bytes" [ "$(img_bytes vm3 0)" = 25 ]
	kill -CONT "$RBDV_PID_vm3"
	rbd_victim_write vm3 0x23 0 30 >/dev/null
	rc=$?
	check "blocklisted: vm3, resumed, cannot write: $(grep -m1 'write failed' "$T/vm3.out")" [ $rc -ne 0 ]
	check "blocklisted: its error is EBLOCKLISTED (-108)" grep -q 'task.ret -108' "$T/vm3.out"
	check "blocklisted: the image keeps the restarted VM's bytes" [ "$(img_bytes vm3 0)" = 25 ]
fi
check "blocklisted: a 127.0.0.1 client still writes" \
	cl_rados -p "$POOL" --rados-osd-op-timeout 10 put from1 "$T/obj"
cl_ceph osd blocklist rm 127.0.0.2:0/0 >/dev/null 2>&1
check "ceph osd blocklist rm 127.0.0.2:0/0" not_grep '^127.0.0.2:0/0' "$(cl_ceph osd blocklist ls 2>/dev/null)"
out=$(host_exec h2 rados -c "$CEPH_CONF" -p "$POOL" --rados-osd-op-timeout 10 put from2 "$T/obj" 2>&1)
check "unblocklisted: a new h2 client writes${out:+ ($out)}" [ $? -eq 0 ]
if [ -n "${RBDV_PID_vm3:-}" ]; then
	# librbd keeps an image it lost to a blocklist closed to writes: only
	# a new client (a restarted VM) writes again.
	rbd_victim_write vm3 0x24 0 30 >/dev/null
	check "unblocklisted: vm3, blocklisted while it ran, still cannot write" [ $? -ne 0 ]
	check "unblocklisted: the image keeps the restarted VM's bytes" [ "$(img_bytes vm3 0)" = 25 ]
fi

# --- stop: nothing left ---------------------------------------------------
stop_everything
t0=$(mono_ms)
cluster_down
rc=$?
check "the cluster stops cleanly ($(($(mono_ms) - t0)) ms)" [ $rc -eq 0 ]
# By pid: reading every process's command line (pgrep -f) can block on
# another test's victim whose mmap lock a hung storage holds.
left=
for v in CEPH_MON_PID CEPH_OSD_PID "${!RBDV_PID_@}"; do
	pid_alive "${!v}" && left+=" $v=${!v}"
done
check "no ceph daemon and no qemu of the test left${left:+ (not:$left)}" [ -z "$left" ]
check "DIR/mon.pid and DIR/osd.pid are gone" not_there "$CEPH_DIR/mon.pid" "$CEPH_DIR/osd.pid"
