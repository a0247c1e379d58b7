#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: ceph (it counts the programs at the cgroup2 root, where an rbd test's network fence attaches its own)
#
# The network fence of rbd storages (bpf/netfence.bpf.c), through
# netfence_ctl, on TCP over 127.0.0.1: a marked sender's bytes stop
# reaching the receiver while an unrelated sender's keep flowing; a
# stopped sender with a full send buffer, marked and SIGKILLed, delivers
# nothing more from the socket it leaves behind; a marked process is
# refused sockets and connects; a sender in a network namespace of its
# own is fenced all the same; unmarking lets a new sender through, but a
# socket caught by the fence stays fenced; a mark by pid is not one of a
# later process with that pid; a claim that misses a socket (UDP, never
# bound) says so, and neither it nor the sweep leaves anything pending;
# and a second open reuses the pinned programs rather than attaching
# them twice.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_root
NETFENCE_CTL=${NETFENCE_CTL:-$OUT/netfence_ctl}
PEER=$(dirname "$0")/helpers/netfence_peer.py
CG=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
[ -n "$CG" ] || { skip "no cgroup2 mount: cgroup BPF programs cannot attach"; exit 0; }
for c in python3 bpftool ss; do
	command -v "$c" >/dev/null || { skip "$c is missing"; exit 0; }
done
[ -x "$NETFENCE_CTL" ] || { not_ok "$NETFENCE_CTL (make tests)"; exit 1; }

PIN=$(pin_dir)
# The pins go, and with them the programs, however the test ends; our
# processes are killed before (cleanups run last-in first-out).
on_exit "'$NETFENCE_CTL' '$PIN' close; rm -rf '$PIN'"
nf() { "$NETFENCE_CTL" "$PIN" "$@" 2>>"$T/nf.log"; }

# --- the ends, and a sender from before the fence was attached -------------
proc_spawn RECV "exec python3 '$PEER' recv '$T'"
wait_until 10 test -s "$T/port" || { not_ok "the receiver listens"; exit 1; }
PORT=$(cat "$T/port")
# bytes NAME / last_ns NAME: what the receiver got from sender NAME.
bytes() { awk '{ print $1 }' "$T/c.$1" 2>/dev/null || echo 0; }
last_ns() { awk '{ print $2 }' "$T/c.$1" 2>/dev/null || echo 0; }
# grows NAME SECONDS: its byte count grows within SECONDS.
grows() {
	local b
	b=$(bytes "$1")
	wait_until "$2" eval "[ \"\$(bytes $1)\" -gt $b ]"
}
# still NAME SECONDS: its byte count does not move for SECONDS.
still() {
	local b
	b=$(bytes "$1")
	sleep "$2"
	[ "$(bytes "$1")" -eq "$b" ]
}
# sender VAR NAME [ENV...]: a sender named NAME, connected and flowing.
sender() {
	local port=$PORT
	[[ " ${*:3} " != *" V6=1 "* ]] || port=$(cat "$T/port6")
	proc_spawn "$1" "exec env ${*:3} python3 '$PEER' send $port $2 '$T'"
	wait_until 10 test -s "$T/c.$2" && grows "$2" 5
}
# queued LPORT: the Send-Q of the socket bound to local port LPORT.
queued() { ss -Htn "( sport = :$1 )" | awk '{ s += $3 } END { print s + 0 }'; }
# rcvq LPORT: what the receiver's end of that connection holds unread.
rcvq() { ss -Htn "( dport = :$1 )" | awk '{ s += $2 } END { print s + 0 }'; }
# dropped STORAGE / refused STORAGE: what its marks counted.
dropped() { nf count "$1" | awk '{ print $1 }'; }
refused() { nf count "$1" | awk '{ print $2 }'; }
# lifted: drops of sockets that stay fenced after their mark was lifted.
lifted() { nf count 0 | awk '{ print $3 }'; }

sender S1 s1 || { not_ok "sender s1 flows"; exit 1; }
ok "sender s1 flows, connected before the fence is attached"

out=$(nf open)
if [ "$out" != loaded ]; then
	if grep -q 'cannot load the BPF programs' "$T/nf.log"; then
		skip "this kernel does not load the network fence: $(tail -n 1 "$T/nf.log")"
		exit 0
	fi
	not_ok "the network fence loads and attaches at $CG" "$(cat "$T/nf.log")"
	exit 1
fi
ok "the network fence loads and attaches at $CG"
# ours NAME: how many programs named NAME the cgroup2 root runs.
ours() { bpftool cgroup show "$CG" | awk -v n="$1" '$NF == n' | wc -l; }
attached_once() {
	local p
	for p in nf_sock_create nf_connect4 nf_connect6 nf_egress; do
		[ "$(ours "$p")" -eq 1 ] || return 1
	done
}
check "each of its four programs runs once at the root (bpftool cgroup show)" attached_once
# The sweep's socket passes leave nothing behind them.
pending() { bpftool -j map dump pinned "$PIN/pending" | jq length; }
check "the sweep leaves nothing pending ($(pending))" [ "$(pending)" = 0 ]
check "a second open reuses the pins" [ "$(nf open)" = reused ]
check "still attached once after the reuse" attached_once

sender S2 s2 || { not_ok "sender s2 flows"; exit 1; }
ok "sender s2 flows, connected after"

# --- a live sender marked ------------------------------------------------
read -r mark_ns mark_took < <(nf mark "$S1" 1)
check "s1 marked (pid $S1, storage 1; the mark and its claim took $((mark_took / 1000)) us)" \
	[ -n "$mark_ns" ]
sleep 1
if still s1 2; then
	last=$(last_ns s1)
	ok "s1 (connected before the fence) stops: its last byte came $(((last - mark_ns) / 1000)) us after the mark, none in the 2 s after 1 s"
else
	not_ok "s1 (connected before the fence) stops after the mark" "$(bytes s1) bytes and counting"
fi
check "s1 still runs (a victim that survives its kill is fenced too)" proc_alive "$S1"
d1=$(dropped 1)
check "its dropped packets are counted ($d1)" [ "${d1:-0}" -gt 0 ]
check "s2 (not marked) keeps flowing" grows s2 3
check "storage 2 has nothing dropped" [ "$(dropped 2)" -eq 0 ]

# --- a stopped sender with a full send buffer, marked, then SIGKILLed --
touch "$T/pause.s3"
proc_spawn S3 "exec env FULL=1 python3 '$PEER' send $PORT s3 '$T'"
wait_until 10 test -s "$T/lport.s3"
LP3=$(cat "$T/lport.s3" 2>/dev/null)
if [ -z "$LP3" ]; then
	not_ok "sender s3 connects"
else
	wait_until 10 eval "[ \"\$(queued $LP3)\" -gt 0 ] && [ \"\$(rcvq $LP3)\" -gt 0 ]"
	sleep 0.5
	kill -STOP "$S3"
	q=$(queued "$LP3")
	check "s3 stopped with $q bytes in its send buffer (the receiver paused)" [ "$q" -gt 0 ]
	nf mark "$S3" 3 >/dev/null
	# All the receiver may still get: what it had, and what its kernel holds.
	sleep 0.2
	have=$(($(bytes s3) + $(rcvq "$LP3")))
	d3=$(dropped 3)
	rm -f "$T/pause.s3"
	kill -KILL "$S3"
	wait_until 10 eval "! proc_alive $S3"
	left=$(queued "$LP3")
	check "s3 SIGKILLed; its orphaned socket still queues $left bytes" [ "$left" -gt 0 ]
	sleep 3
	got=$(bytes s3)
	check "no byte of the orphaned send buffer arrives ($got received, $have the most allowed)" \
		[ "$got" -le "$have" ]
	d3b=$(dropped 3)
	check "the orphaned socket's retransmissions are dropped ($d3 -> $d3b)" [ "$d3b" -gt "$d3" ]
fi

# --- a socket made by one process, used by another -------------------------
proc_spawn S5 "exec env FORK=1 python3 '$PEER' send $PORT s5 '$T'"
if wait_until 10 test -s "$T/pid.s5" && grows s5 5; then
	C5=$(cat "$T/pid.s5")
	on_exit "kill -KILL $C5"
	nf mark "$C5" 7 >/dev/null
	sleep 1
	check "a child sending on its parent's socket, marked, stops (the claim at the mark gives it the socket)" still s5 2
	kill -KILL "$C5"
else
	not_ok "the forked sender s5 flows"
fi
# A socket no socket pass walks (UDP, never bound): the claim misses it
# and says so, and drops what it queued for it.
proc_spawn UB "exec python3 -c 'import socket, sys, time
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
print(\"made\", flush=True)
time.sleep(1000)' >'$T/ub.out'"
if wait_until 10 grep -qx made "$T/ub.out"; then
	nf mark "$UB" 9 >/dev/null
	check "a claim that misses an unbound UDP socket says so (-ENOEXEC)" \
		eval "tail -n 1 '$T/nf.log' | grep -q 'mark: Exec format error'"
	check "the claims leave nothing pending ($(pending))" [ "$(pending)" = 0 ]
	proc_kill "$UB"
	nf unmark 9 >/dev/null
else
	not_ok "a process with an unbound UDP socket runs"
fi

if [ -s "$T/port6" ]; then
	if sender S6 s6 V6=1; then
		nf mark "$S6" 8 >/dev/null
		sleep 1
		check "an IPv6 sender (::1), marked, stops ($(dropped 8) dropped)" still s6 2
	else
		not_ok "an IPv6 sender flows to ::1"
	fi
else
	skip "no ::1 here: IPv6 not tried"
fi

# --- a marked process is refused sockets and connects ----------------------
proc_spawn PR "exec python3 '$PEER' probe $PORT '$T'"
wait_until 10 test -e "$T/probe.ready"
r0=$(refused 4)
nf mark "$PR" 4 >/dev/null
touch "$T/probe.go"
wait_until 10 test -s "$T/probe.out"
check "a marked process: connect and socket refused ($(cat "$T/probe.out" 2>/dev/null))" \
	[ "$(cat "$T/probe.out" 2>/dev/null)" = "connect=EPERM socket=EPERM" ]
check "its refusals are counted ($r0 -> $(refused 4))" [ "$(refused 4)" -ge 2 ]

# --- another network namespace ---------------------------------------------
if unshare -n true 2>/dev/null; then
	mkdir -p "$T/ns"
	# The receiver in the background, the sender exec'd: the spawned pid.
	proc_spawn NS "exec unshare -n bash -c 'ip link set lo up;
		python3 \"$PEER\" recv \"$T/ns\" & echo \$! >\"$T/ns/recv.pid\";
		while [ ! -s \"$T/ns/port\" ]; do sleep 0.05; done;
		exec python3 \"$PEER\" send \$(cat \"$T/ns/port\") n1 \"$T/ns\"'"
	on_exit "kill \$(cat '$T/ns/recv.pid')"
	nsb() { awk '{ print $1 }' "$T/ns/c.n1" 2>/dev/null || echo 0; }
	if wait_until 10 eval "[ \"\$(nsb)\" -gt 0 ]"; then
		nf mark "$NS" 5 >/dev/null
		sleep 1
		b=$(nsb)
		sleep 2
		check "a sender in a network namespace of its own is fenced too ($(nsb) bytes, $(dropped 5) dropped)" \
			[ "$(nsb)" -eq "$b" ] && [ "$(dropped 5)" -gt 0 ]
	else
		not_ok "a sender in a network namespace of its own flows"
	fi
else
	skip "unshare -n: no network namespaces here"
fi

# --- unfence ------------------------------------------------------------
n=$(nf unmark 1)
check "unmark storage 1 lifts its one mark ($n)" [ "$n" -eq 1 ]
check "storage 3's mark stays" [ "$(dropped 3)" -ge "${d3b:-0}" ] &&
	bpftool map dump pinned "$PIN/fenced" | grep -q "\"storage_idx\": 3"
sender S4 s4
check "a new sender from a new process flows after the unmark" [ $? -eq 0 ]
# Its retransmissions go on: the first one after the unmark is dropped.
l0=$(lifted)
b1=$(bytes s1)
if wait_until 30 eval "[ \"\$(lifted)\" -gt $l0 ]"; then
	sleep 1
	check "s1's connection, caught while marked, stays fenced after the unmark ($(bytes s1) bytes, were $b1; $(lifted) dropped since)" \
		[ "$(bytes s1)" -eq "$b1" ]
else
	not_ok "s1's connection, caught while marked, tries again within 30 s of the unmark"
fi

# A later process with a marked pid: the mark's start time is not its own.
le32() { printf '%d %d %d %d' $(($1 & 255)) $(($1 >> 8 & 255)) $(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
# shellcheck disable=SC2046 # bytes
bpftool map update pinned "$PIN/fenced" key $(le32 "$S4") \
	value $(le32 6) 0 0 0 0 1 0 0 0 0 0 0 0 $(printf '0 %.0s' {1..16})
sleep 1
check "a mark of the pid of s4, from another start time, does not fence s4 (a recycled pid)" grows s4 5
nf mark "$S4" 6 >/dev/null
sleep 1
check "s4 marked: the stale mark of its pid is replaced, s4 stops" still s4 2
check "s2 flowed throughout" grows s2 3

# --- a restart keeps the fence -------------------------------------------
check "a restart reuses the pins" [ "$(nf open)" = reused ]
check "the programs still run once each at the root" attached_once
nf close
check "close unpins: the programs are gone from the root" \
	[ "$(ours nf_egress)" -eq 0 ] && [ ! -e "$PIN" ]
