#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: ceph (test clusters and simulated hosts share addresses 127.0.0.2-3)
#
# Two hosts on one pool, each an iofenced with its own loopback address
# (127.0.0.2 and 127.0.0.3: a cgroup whose connections come from it) and a
# qemu victim with its disk in the pool. query-peer agrees both ways; a
# fence-peer of a live host is refused; host 3's daemon is SIGSTOPped (its
# VM keeps running: the case the blocklist is for), host 2 sees it dead
# after the window and blocklists it; host 3's VM can no longer write,
# and once its daemon runs again its heartbeat is refused and it fences
# (STORAGE_BLOCKLISTED), killing its VM. Host 2 never notices. Then
# unfence-peer lifts it, host 3's heartbeats land again and an unfence
# makes it healthy; a forced fence-peer of a live host is journalled as
# forced. Both commands are audited in host 2's journal.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_root
# shellcheck source=../ceph.sh
. "$(dirname "$0")/../ceph.sh"
ceph_need qemu
host_need
command -v jq >/dev/null || { skip "jq is missing"; exit 0; }

T=$(readlink -f "$T")
POOL=iofence-peers-$$
IV=1000 ATTEMPTS=3 TMO=3000

if ! cluster_up || ! cluster_pool "$POOL"; then
	not_ok "the test cluster starts with pool $POOL"
	exit 1
fi
ok "the test cluster is up, pool $POOL"
cl_rbd create "$POOL/vm2" --size 16M && cl_rbd create "$POOL/vm3" --size 16M
host_up h2 127.0.0.2 && host_up h3 127.0.0.3 || {
	not_ok "two simulated hosts (127.0.0.2, 127.0.0.3)"
	exit 1
}

# host_daemon NAME HOST [OPTIONS]: an iofenced inside HOST (its cgroup,
# its address); without OPTIONS, --no-bpf.
declare -A T_DSTART=()
host_daemon() {
	local name=$1 host=$2 sock="$T/$1.sock" log="$T/$1.log" pid
	shift 2
	[ $# -gt 0 ] || set -- --no-bpf
	# One process, the daemon itself: its pid is what SIGSTOP stops.
	(echo "$BASHPID" >"$(_host_cg "$host")/cgroup.procs" &&
		exec "$IOFENCED" --foreground --socket "$sock" \
			--state-dir "$T/$name.state" --watchdog none "$@") >"$log" 2>&1 &
	pid=$!
	T_DSTART[$name]=$(pid_start "$pid")
	on_exit "kill -CONT $pid; daemon_gone $name || kill -KILL $pid; reap $pid"
	printf -v "SOCK_$name" '%s' "$sock"
	printf -v "PID_$name" '%s' "$pid"
	daemon_answers "$name" "$sock" "$pid" "$log" 5
}
# Host 3 has its BPF programs, the network fence of its rbd victims too.
PIN3=$(pin_dir)-h3
on_exit "rm -rf $PIN3 $PIN3-net"
host_daemon d2 h2 && host_daemon d3 h3 --pin-dir "$PIN3" || exit 1
# shellcheck disable=SC2154 # set by host_daemon
S2=$SOCK_d2 S3=$SOCK_d3 P3=$PID_d3

# The hosts share this machine's /proc: each host's victims run a qemu
# of its own name, as if each host saw only its own processes.
for h in h2 h3; do
	cp "$(command -v qemu-system-x86_64)" "$T/qemu-$h-$$" || exit 1
done
# Its modules (block-rbd) are found next to the binary, or here.
export QEMU_MODULE_DIR=/usr/lib/x86_64-linux-gnu/qemu
SPEC="uuid=r1,type=rbd,pool=$POOL,conf=$CEPH_CONF,interval=${IV}ms,attempts=$ATTEMPTS"
t0=$(mono_ms)
arm_storages "$S2" host2 "$SPEC,victims=qemu-h2-$$" &&
	arm_storages "$S3" host3 "$SPEC,victims=qemu-h3-$$"
rc=$?
# Everything below is about these two: without them it would only fail.
check "both hosts arm rbd storage r1 on $POOL ($(($(mono_ms) - t0)) ms)" [ "$rc" -eq 0 ]
[ "$rc" -eq 0 ] || exit 1

RBD_VICTIM_QEMU=$T/qemu-h2-$$ RBD_VICTIM_HOST=h2 rbd_victim_start vm2 "$POOL" vm2 &&
	RBD_VICTIM_QEMU=$T/qemu-h3-$$ RBD_VICTIM_HOST=h3 rbd_victim_start vm3 "$POOL" vm3
if [ $? -ne 0 ]; then
	not_ok "a qemu victim on each host, its disk in $POOL"
	exit 1
fi
ok "a qemu victim on each host, its disk in $POOL"
# shellcheck disable=SC2154 # set by rbd_victim_start
V2=$RBDV_PID_vm2 V3=$RBDV_PID_vm3

# --- query-peer, both ways ------------------------------------------------
peer() { # SOCK HOST [ARGS...]: query-peer's reply, as JSON
	local sock=$1 host=$2
	shift 2
	ctl_t 60 "$sock" --json peer --storage r1 --host "$host" "$@"
}
check "host 2 sees host 3 alive" jqe '.liveness == "alive" and .progress >= 1' < <(peer "$S2" host3 --window 1500ms)
check "host 3 sees host 2 alive" jqe '.liveness == "alive" and .progress >= 1' < <(peer "$S3" host2 --window 1500ms)
rec=$(peer "$S2" host3 --window 0 | jq -c .record)
check "host 3's record names its clients' address 127.0.0.3:0/0 ($rec)" \
	jqe '.addrs == ["127.0.0.3:0/0"]' <<<"$rec"
rec=$(peer "$S3" host2 --window 0 | jq -c .record)
check "host 2's record names 127.0.0.2:0/0" jqe '.addrs == ["127.0.0.2:0/0"]' <<<"$rec"

out=$(ctl_t 60 "$S2" peer --storage r1 --host host3 --window 1500ms --blocklist 2>&1)
rc=$?
check "fence-peer of a live host is refused (exit $rc: $out)" \
	[ $rc -eq 3 ] && grep -q 'PeerNotDead\|only a dead host' <<<"$out"
check "... and the cluster has no blocklist entry for it" \
	eval "! cl_ceph osd blocklist ls 2>/dev/null | grep -q '^127.0.0.3:'"
out=$(ctl_t 10 "$S2" raw '{"execute":"fence-peer","arguments":{"storage":"r1","host":"host2"}}')
check "fence-peer of this host itself is refused ($out)" \
	jqe '.error.class == "InvalidArgument"' <<<"$out"

# --- host 3's daemon stops; its VM does not -----------------------------
kill -STOP "$P3"
t_stop=$(mono_ms)
out=$(peer "$S2" host3)
rc=$?
check "host 2 sees host 3 dead after the window ($(($(mono_ms) - t_stop)) ms; exit $rc)" \
	jqe '.liveness == "dead" and .window_ms >= 3000' <<<"$out"
rbd_victim_write vm3 0x33 0
check "host 3's VM still writes while only its daemon is stopped" [ $? -eq 0 ]

t0=$(mono_ms)
out=$(ctl_t 90 "$S2" peer --storage r1 --host host3 --blocklist 2>&1)
rc=$? t_bl=$(mono_ms)
check "iofencectl peer --blocklist: exit $rc after $((t_bl - t0)) ms (${out//$'\n'/ })" \
	[ $rc -eq 0 ] && grep -q 'blocklisted' <<<"$out"
check "the cluster blocklists 127.0.0.3:0/0" \
	grep -q '^127.0.0.3:0/0' < <(cl_ceph osd blocklist ls 2>/dev/null)
check "and not host 2" eval "! cl_ceph osd blocklist ls 2>/dev/null | grep -q '^127.0.0.2:'"
ev=$(jq -c '[.[] | select(.event == "PEER_FENCED")][0] // empty' < <(journal_of "$S2"))
check "host 2's journal audits it: PEER_FENCED with the peer, addresses, uid, not forced ($ev)" \
	jqe '.data.peer == "host3" and .data.addrs == ["127.0.0.3:0/0"] and .data.uid == 0 and .data.forced == false and .data.complete' <<<"$ev"

# The VM of the dead host: its write now fails, whatever its kernel held.
t0=$(mono_ms)
rbd_victim_write vm3 0x34 0 20 >/dev/null
rc=$?
check "host 3's VM can no longer write ($(($(mono_ms) - t0)) ms: $(grep -m1 'write failed' "$T/vm3.out"))" \
	[ $rc -ne 0 ] && grep -q 'write failed' "$T/vm3.out"

# --- host 3's daemon runs again: the cluster refuses it, it fences ------
kill -CONT "$P3"
if wait_until 30 j_has "$S3" STORAGE_BLOCKLISTED r1; then
	ok "host 3, resumed, hears its heartbeat refused: STORAGE_BLOCKLISTED"
else
	not_ok "host 3 reports STORAGE_BLOCKLISTED within 30 s"
fi
st=$(hb_of "$S3" r1)
check "host 3's storage is fenced ($(jq -c '[.state, .last_error]' <<<"$st"))" jqe '.state == "fenced"' <<<"$st"
check "its fence says blocklisted, or its own timeout came first" \
	jqe '.fence.reason | test("blocklisted|no heartbeat")' < <(ctl_sock "$S3" --json storage r1 | jq .heartbeat)
check "host 3's VM is killed" wait_until 15 eval "! kill -0 $V3 2>/dev/null"
marks() { bpftool -j map dump pinned "$PIN3-net/fenced" 2>/dev/null | jq -c '[.[] | .formatted.key // empty]'; }
# A kernel without what the network fence needs: the daemon says so.
NF_OFF=$(grep -m1 'network fence off' "$T/d3.log")
if [ -n "$NF_OFF" ]; then
	skip "the network fence of host 3 (its daemon: ${NF_OFF#*: })"
else
	check "its sockets were cut off first: the network fence marks pid $V3 ($(marks))" \
		jqe --argjson p "$V3" 'index($p) != null' < <(marks)
	check "host 3's status shows the network fence" \
		jqe '.io.net_fence | has("packets_dropped")' < <(ctl_sock "$S3" --json storage r1)
fi
check "host 2's VM lives" kill -0 "$V2"
check "host 2 stayed healthy throughout (no HEARTBEAT_LATE, no fence)" \
	eval '[ "$(j_count "$(journal_of "$S2")" HEARTBEAT_LATE r1)" -eq 0 ] && [ "$(hb_of "$S2" r1 | jq -r .state)" = healthy ]'

# --- unfence-peer lifts it ----------------------------------------------
out=$(ctl_t 60 "$S2" peer --storage r1 --host host3 --unblocklist 2>&1)
rc=$?
check "iofencectl peer --unblocklist: exit $rc (${out//$'\n'/ })" [ $rc -eq 0 ]
check "the cluster no longer blocklists 127.0.0.3" \
	eval "! cl_ceph osd blocklist ls 2>/dev/null | grep -q '^127.0.0.3:'"
check "host 2's journal audits it: PEER_UNFENCED" \
	jqe '[.[] | select(.event == "PEER_UNFENCED" and .data.peer == "host3")] | length == 1' < <(journal_of "$S2")
if wait_until 30 j_has "$S3" STORAGE_RESTORED r1; then
	ok "host 3's heartbeats land again on a new connection (STORAGE_RESTORED), still fenced"
else
	not_ok "host 3's heartbeats land again within 30 s ($(hb_of "$S3" r1))"
fi
out=$(ctl_sock "$S3" unfence r1 2>&1)
check "unfence, and host 3 is healthy again (${out//$'\n'/ })" \
	wait_until 10 eval '[ "$(hb_of "$S3" r1 | jq -r .state)" = healthy ]'
check "host 2 sees host 3 alive again" jqe '.liveness == "alive"' < <(peer "$S2" host3 --window 1500ms)
[ -n "$NF_OFF" ] ||
	check "unfence lifted the network fence's marks ($(marks))" jqe '. == []' < <(marks)

# --- a forced fence-peer of a live host ---------------------------------
out=$(ctl_t 90 "$S2" peer --storage r1 --host host3 --window 0 --blocklist --force 2>&1)
check "peer --blocklist --force of a live host: done (${out//$'\n'/ })" grep -q 'forced' <<<"$out"
check "journalled as forced" \
	jqe '[.[] | select(.event == "PEER_FENCED" and .data.forced == true)] | length == 1' < <(journal_of "$S2")
bl_count() { j_count "$(journal_of "$S3")" STORAGE_BLOCKLISTED r1; }
check "the host it fenced hears it again: a second STORAGE_BLOCKLISTED (once per refusal)" \
	wait_until 30 eval '[ "$(bl_count)" -eq 2 ]'
sleep 2
check "... and only once while the entry holds ($(bl_count))" [ "$(bl_count)" -eq 2 ]
ctl_t 60 "$S2" peer --storage r1 --host host3 --unblocklist >/dev/null
check "unblocklisted again" eval "! cl_ceph osd blocklist ls 2>/dev/null | grep -q '^127.0.0.3:'"

# --- what fence-peer refuses --------------------------------------------
mkdir -p "$T/nfs"
ctl_sock "$S2" setup --host host2 --storage "uuid=f1,type=file,target=$T/nfs,victims=iofence-test-nobody" >/dev/null
out=$(ctl_t 10 "$S2" raw '{"execute":"fence-peer","arguments":{"storage":"f1","host":"host3"}}')
check "fence-peer on a file storage is refused ($out)" \
	jqe '.error.class == "InvalidArgument" and (.error.desc | test("rbd"))' <<<"$out"
out=$(ctl_t 30 "$S2" raw '{"execute":"fence-peer","arguments":{"storage":"r1","host":"nohost","window_ms":0}}')
check "fence-peer of a host without a record is refused ($out)" \
	jqe '.error.class == "NotFound"' <<<"$out"
