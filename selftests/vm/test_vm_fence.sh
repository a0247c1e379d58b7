#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: alone (whole guests under TCG take both CPUs, and their deadlines are tight for a guest)
#
# The kernel write fence and its dead man's switch, with the real iofenced,
# in the selftests/vm guest (Debian's 6.1, lsm=...,bpf); on a host that
# cannot run the guest it says why and skips.
#   1 the daemon fences a file storage on faultfs and a block storage on a
#     loop device over another faultfs file, both dead: a process outside
#     the victim filter is refused (EIO, not a hang) at once; once they
#     answer again, every write path is refused (write, pwrite, io_uring
#     inline and in io-wq, AIO, copy_file_range, splice, sendfile,
#     fallocate, ftruncate, truncate, a new shared writable mapping,
#     mprotect of a shared one, opens for writing), reads and read-only
#     mappings pass, a process named iofenced is refused too, the daemon's
#     own heartbeats pass; FENCE_COMPLETED carries the proof; unfence
#     lifts it. A healthy storage and an unarmed file system are never
#     touched
#   2 SIGSTOP on healthy storages: writes are refused from t_ok + T (the
#     kernel's), SIGCONT, heartbeats and unfence end it
#   3 SIGKILL: the same; a process that got the dead daemon's pid does not
#     pass; a restarted daemon takes the slots over; teardown lifts a fence
#   4 SIGKILL and a restart within T: not one refusal
#   5 a clean stop keeps the pins, and the switch goes on guarding: past T
#     the storage is refused; the restarted daemon, which counts from the
#     stop's last heartbeat as peers do (a stop is no release), fences it
#     too, and unfence lifts both
source "$(dirname "$0")/in-vm.sh"
source "$(dirname "$0")/../lib.sh"
need_root
FAULTFS=${FAULTFS:-$OUT/faultfs}
# shellcheck source=../faultfs/faultfs.sh
. "$(dirname "$0")/../faultfs/faultfs.sh"
FIO=$OUT/fence_io

for need in bpftool jq losetup; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done
for b in "$FIO" "$FAULTFS" "$IOFENCED" "$IOFENCECTL"; do
	[ -x "$b" ] || { not_ok "$b (make all tests)"; exit 1; }
done

T=$(readlink -f "$T")
PIN=/sys/fs/bpf/iofence-test-vm-fence
IV=300 TMO=2400 GRACE=300
P="interval=${IV}ms,timeout=${TMO}ms,kill_grace=${GRACE}ms,victims=iofence-test-nobody"
export DAEMON_START_S=30

# --- storages ----------------------------------------------------------------

ff_mount FA fa -o page_cache || { not_ok "faultfs mounts"; exit 1; }
ff_mount FB fb || { not_ok "faultfs mounts"; exit 1; }
truncate -s 64K "$FA/vm.img" && truncate -s 64M "$FB/lb.img" ||
	{ not_ok "files on faultfs"; exit 1; }
LB=$(losetup --find --show "$FB/lb.img") || { not_ok "loop device"; exit 1; }
on_exit "losetup -d $LB"
for m in ok un; do
	mkdir -p "$T/$m" && mount -t tmpfs "iofence-$m" "$T/$m" || { not_ok "tmpfs $m"; exit 1; }
	on_exit "umount -l '$T/$m'"
	truncate -s 64K "$T/$m/vm.img"
done
OK=$T/ok UN=$T/un

# The writers below, killed at exit once the hangs are released: one
# cleanup for all (each of lib.sh's costs a release; an emulated guest
# spends seconds on each).
IO_PIDS=()
io_kill_all() {
	hangs_release
	kill -KILL "${IO_PIDS[@]}" 2>/dev/null
	wait "${IO_PIDS[@]}" 2>/dev/null
}
on_exit io_kill_all

# --- the process that writes: fence_io ----------------------------------------

declare -A IO_IN IO_OUT
# io_start NAME FILE [PROGRAM [OPTION...]]: a fence_io on FILE (opened
# now), asked by io_do; its pid in IO_PID.
io_start() {
	local n=$1 f=$2 prog=${3:-$FIO} fd line pid
	rm -f "$T/$n.in" "$T/$n.out"
	mkfifo "$T/$n.in" "$T/$n.out"
	"$prog" "${@:4}" "$f" <"$T/$n.in" >"$T/$n.out" 2>>"$T/$n.err" &
	pid=$!
	IO_PIDS+=("$pid")
	exec {fd}>"$T/$n.in"
	IO_IN[$n]=$fd
	exec {fd}<"$T/$n.out"
	IO_OUT[$n]=$fd
	IO_PID=$pid
	read -t 10 -r line <&"${IO_OUT[$n]}" && [ "$line" = ready ]
}
# io_do NAME OP: its answer (ok, EIO, ...); "hung" after 5 s.
io_do() {
	local op r
	echo "$2" >&"${IO_IN[$1]}"
	read -t 5 -r op r <&"${IO_OUT[$1]}" || { echo hung; return; }
	echo "$r"
}
io_stop() { # name
	exec {IO_IN[$1]}>&- {IO_OUT[$1]}<&-
}
# io_all LABEL NAME WANT OP...: every OP answers WANT.
io_all() {
	local label=$1 n=$2 want=$3 op r bad=''
	shift 3
	for op; do
		r=$(io_do "$n" "$op")
		[ "$r" = "$want" ] || bad+=" $op=$r"
	done
	check "$label: $* all $want${bad:+ (not:$bad)}" [ -z "$bad" ]
}
FILE_W=(write pwrite uring uring_async aio copy splice sendfile fallocate ftruncate truncate mmap mprotect open open_trunc)
BLOCK_W=(write pwrite uring uring_async aio splice sendfile fallocate mmap mprotect open open_trunc)
READS=(read mmap_read)

# --- the daemon and what it shows ---------------------------------------------

start() { # name: a daemon on the shared state and pins
	daemon_on "$1" st --pin-dir "$PIN" || return 1
	# First of the cleanups: what the switch fenced writes again.
	on_exit "rm -rf '$PIN'"
	eval "S=\$SOCK_$1 D=\$PID_$1"
}
slot_of() { bpftool map dump pinned "$PIN/slots" | jq -c --arg u "$1" '[.[] | select(.value.uuid == $u)][0].value // empty'; }
state_of() { hb_of "$S" "$1" | jq -r .state; }
kf_of() { ctl_sock "$S" --json status | jq -c --arg u "$1" '.storages[] | select(.uuid == $u) | .io.kernel_fence'; }
# back UUID...: each is healthy, or fenced with its heartbeats restored.
back() {
	local st
	st=$(ctl_sock "$S" --json status | jq -r --args '$ARGS.positional as $u | [.storages[] |
		select(.uuid as $x | $u | index($x)) | .heartbeat |
		select(.state == "healthy" or (.state == "fenced" and .fence.restored))] | length' "$@")
	[ "$st" = $# ]
}
restored() { # uuid: heartbeats succeed again, still fenced
	[ "$(hb_of "$S" "$1" | jq -r '"\(.state) \(.fence.restored)"')" = "fenced true" ]
}
kfenced() { [ "$(kf_of "$1" | jq -r .fenced)" = true ]; }
# kf_check LABEL UUID FILTER [JQ OPTION...]: its kernel_fence passes FILTER.
kf_check() {
	local k
	k=$(kf_of "$2")
	check "$1: $k" jqe "${@:4}" "$3" <<<"$k"
}
# probe_start NAME FILE: writes a byte to FILE every 20 ms, logging changes.
probe_start() {
	"$FIO" --probe 20 "$2" </dev/null >"$T/$1.probe" 2>&1 &
	PROBE_PID=$!
	IO_PIDS+=("$PROBE_PID")
	wait_until 5 probe_ok_again "$1"
}
probe_stop() { kill -TERM "$PROBE_PID"; wait_until 5 grep -q ' end ' "$T/$1.probe"; }
# The probe's lines: before and after a write, its result, the write before.
probe_refused() { awk '$3 == "EIO" { f = 1 } END { exit !f }' "$T/$1.probe"; }
probe_ok_again() { [ "$(awk '$3 != "end" { r = $3 } END { print r }' "$T/$1.probe")" = ok ]; }

start a || { not_ok "daemon starts"; exit 1; }
caps=$(ctl_sock "$S" --json capabilities)
if ! jqe '.capabilities | index("kernel-write-fence")' <<<"$caps"; then
	not_ok "query-capabilities has kernel-write-fence" "$(jq -c . <<<"$caps"); $(grep -i fence "$T/a.log")"
	exit 1
fi
ok "kernel $(uname -r): query-capabilities has kernel-write-fence"
check "the daemon says so, in one line" grep -q 'BPF tracker loaded, .*with the kernel write fence' "$T/a.log"
lsm=$(bpftool prog show | grep -c ' lsm  name iofence_')
check "bpftool lists its LSM programs ($lsm)" [ "$lsm" -ge 5 ]
arm_storages "$S" host-a "uuid=ff,type=file,target=$FA,$P" \
	"uuid=lb,type=block,target=$LB,region_offset=1048576,$P" \
	"uuid=ok,type=file,target=$OK,$P" || { not_ok "arm ff, lb, ok"; exit 1; }
wait_until 10 hb_wrote "$S" ok 3
for u in ff lb ok; do
	kf_check "$u: its kernel fence is active, not fenced, the switch armed" $u \
		'.active and (.fenced | not) and (.switch_in_ms | type) == "number" and .writes_refused == 0'
done

# --- 1: the daemon fences -------------------------------------------------------
echo "# $(awk '{print $1}' /proc/uptime) s since boot"

io_start ff "$FA/vm.img" && io_start lb "$LB" && io_start ok "$OK/vm.img" &&
	io_start un "$UN/vm.img" || { not_ok "fence_io opens the files"; exit 1; }
cp "$FIO" "$T/iofenced"
io_start named "$FA/vm.img" "$T/iofenced" || not_ok "a fence_io named iofenced opens ff's file"
io_all "1 before the fence: ff" ff ok "${FILE_W[@]}" "${READS[@]}"
io_all "1 before the fence: lb" lb ok "${BLOCK_W[@]}" "${READS[@]}"

t0=$(now_ms)
faultfs_set "$FA" dead '*' && faultfs_set "$FB" dead '*' || not_ok "faultfs dead"
wait_until $(((TMO + 3000) / 1000)) eval 'kfenced ff && kfenced lb' ||
	not_ok "1: ff and lb fenced in the kernel within T + 3 s"
ok "1: ff and lb fenced in the kernel after $(ms_since "$t0") ms (T = $TMO ms)"
for u in ff lb; do
	r=$(io_do $u write)
	check "1 while dead: a write(2) to $u is refused at once, not held ($r)" [ "$r" = EIO ]
done
r=$(io_do named write)
check "1: a process named iofenced is refused too ($r)" [ "$r" = EIO ]
wait_until 5 j_has "$S" FENCE_COMPLETED ff && wait_until 5 j_has "$S" FENCE_COMPLETED lb
J=$(journal_of "$S")
for u in ff lb; do
	done_=$(j_first "$J" FENCE_COMPLETED $u)
	echo "# $u FENCE_COMPLETED: $(jq -c '.data | {all_dead, elapsed_ms, writes_in_flight, kernel_fence}' <<<"$done_")"
	check "1: $u's FENCE_COMPLETED proves the kernel fence: active, since t_ok + T + $(jq .data.kernel_fence.since_ms <<<"$done_") ms" \
		jqe '.data.kernel_fence.active and (.data.kernel_fence.since_ms | type) == "number" and
			.data.kernel_fence.since_ms > -500 and .data.kernel_fence.since_ms < 2000 and
			(.data.writes_in_flight | type) == "number"' <<<"$done_"
done

faultfs_set "$FA" healthy '*' && faultfs_set "$FB" healthy '*' || not_ok "faultfs healthy"
wait_until 10 eval 'restored ff && restored lb' ||
	not_ok "1: ff and lb restored" "$(hb_of "$S" ff) $(hb_of "$S" lb)"
ok "1: the daemon's own heartbeats pass the fence: ff and lb restored, still fenced"
io_all "1 back, still fenced: ff" ff EIO "${FILE_W[@]}"
io_all "1 back, still fenced: ff" ff ok "${READS[@]}"
io_all "1 back, still fenced: lb" lb EIO "${BLOCK_W[@]}"
io_all "1 back, still fenced: lb" lb ok "${READS[@]}"
io_all "1: the healthy storage ok, not fenced" ok ok "${FILE_W[@]}" "${READS[@]}"
io_all "1: an unarmed file system" un ok "${FILE_W[@]}"
nff=$(slot_of ff | jq .writes_refused) nlb=$(slot_of lb | jq .writes_refused)
check "1: the slots counted the refusals: ff $nff >= $((${#FILE_W[@]} + 2)), lb $nlb >= $((${#BLOCK_W[@]} + 1))" \
	eval "[ ${nff:-0} -ge $((${#FILE_W[@]} + 2)) ] && [ ${nlb:-0} -ge $((${#BLOCK_W[@]} + 1)) ]"
kf_check "1: query-status shows them" ff \
	'.fenced and (.reasons | index("daemon")) and .writes_refused == $n' --argjson n "${nff:-0}"
kf_check "1: ok never fenced, never refused" ok '(.fenced | not) and .writes_refused == 0'
for u in ff lb; do
	out=$(ctl_sock "$S" unfence $u 2>&1)
	check "1: unfence $u ($out)" grep -q unfenced <<<"$out"
done
io_all "1 unfenced: ff" ff ok "${FILE_W[@]}"
io_all "1 unfenced: lb" lb ok "${BLOCK_W[@]}"
check "1: unfence is audited: STORAGE_UNFENCED with the uid" \
	jqe '[.[] | select(.event == "STORAGE_UNFENCED" and .data.uid == 0)] | length == 2' <<<"$(journal_of "$S")"
io_stop named

# --- 2: SIGSTOP ------------------------------------------------------------------
echo "# $(awk '{print $1}' /proc/uptime) s since boot"

# switch_at UUID: when the kernel's switch runs out (ns, CLOCK_MONOTONIC).
switch_at() { slot_of "$1" | jq '(if .armed_ns > .last_heartbeat_ns then .armed_ns else .last_heartbeat_ns end) + .timeout_ns'; }
# refusal_check LABEL NAME DEADLINE_NS: the probe's writes passed up to
# the deadline and were refused from it on: the last write that passed
# began before it, the first refused one ended after it, soon.
refusal_check() {
	local r0 r1 o0 o1
	read -r r0 r1 _ o0 o1 < <(awk '$3 == "EIO" { print; exit }' "$T/$2.probe")
	if [ -z "$r0" ] || [ -z "$3" ]; then
		not_ok "$1: the probe was refused" "$(cat "$T/$2.probe")"
		return
	fi
	echo "# $1: the first write refused began $(((r0 - $3) / 1000)) us after the kernel's t_ok + T, the last one that passed $((($3 - o0) / 1000)) us before it"
	check "$1: writes pass until t_ok + T and are refused from it on, within 1 s" \
		eval "[ $o0 -le $3 ] && [ $r1 -gt $3 ] && [ $((r0 - $3)) -lt 1000000000 ]"
}

wait_until 5 hb_wrote "$S" ok 1
probe_start p2 "$OK/vm.img"
kill -STOP "$D"
on_exit "kill -CONT $D"
wait_until $(((TMO + 3000) / 1000)) probe_refused p2 || not_ok "2: stopped, writes to ok are refused within T + 3 s"
at=$(switch_at ok)
refusal_check "2 SIGSTOP" p2 "$at"
r=$(io_do lb write)
check "2: the block storage too, by its own switch ($r)" [ "$r" = EIO ]
r=$(io_do un write)
check "2: the unarmed file system takes writes ($r)" [ "$r" = ok ]
kill -CONT "$D"
wait_until 10 back ok || not_ok "2: ok heartbeats again after SIGCONT"
check "2: SIGCONT and heartbeats: still refused" eval '! probe_ok_again p2'
kf_check "2: the slot says why" ok '.fenced and (.reasons | index("dead man'"'"'s switch"))'
unf() { # uuid...: unfence each, once they are not lost any more
	local out u
	wait_until 10 back "$@" || return 1
	for u; do
		out=$(ctl_sock "$S" unfence "$u" 2>&1)
		grep -q unfenced <<<"$out" || { echo "# unfence $u: $out"; return 1; }
	done
}
check "2: unfence ff, lb and ok" unf ff lb ok
check "2: writes pass again" wait_until 2 probe_ok_again p2
probe_stop p2

# --- 3: SIGKILL ---------------------------------------------------------------
echo "# $(awk '{print $1}' /proc/uptime) s since boot"

probe_start p3 "$OK/vm.img"
kill -KILL "$D"
wait "$D" 2>/dev/null
# A process that gets the dead daemon's pid (clone3's set_tid), before the
# switch runs out: it opens the file as the daemon did.
if io_start as_daemon "$OK/vm.img" "$FIO" --pid "$D" &&
	[ "$(cat "/proc/$D/comm" 2>/dev/null)" = fence_io ]; then
	as_daemon=yes
else
	not_ok "3: a process gets the dead daemon's pid $D" "$(cat "$T/as_daemon.err")"
fi
wait_until $(((TMO + 3000) / 1000)) probe_refused p3 || not_ok "3: killed, writes to ok are refused within T + 3 s"
refusal_check "3 SIGKILL" p3 "$(switch_at ok)"
if [ -n "${as_daemon:-}" ]; then
	r=$(io_do as_daemon write)
	check "3: a process with the dead daemon's pid $D does not pass as it ($r)" [ "$r" = EIO ]
fi
start b || { not_ok "3: a new daemon starts"; exit 1; }
check "3: it took the BPF side over" grep -q 'taken over from an earlier daemon, .*with the kernel write fence' "$T/b.log"
check "3: still refused after the restart" eval '! probe_ok_again p3'
check "3: unfence ff and ok" unf ff ok
kf_check "3: lb stays fenced until it goes" lb .fenced
out=$(ctl_sock "$S" teardown --host host-a --storage lb 2>&1)
check "3: teardown of lb ($(tr '\n' ' ' <<<"$out"))" grep -q 'lb: disarmed' <<<"$out"
r=$(io_do lb write)
check "3: teardown lifts lb's fence ($r)" [ "$r" = ok ]
check "3: writes to ok pass again" wait_until 2 probe_ok_again p3
probe_stop p3

# --- 4: SIGKILL and a restart within T ------------------------------------------
echo "# $(awk '{print $1}' /proc/uptime) s since boot"

# A T that a restart fits in here (an emulated guest takes seconds).
TMO4=10000
out=$(ctl_sock "$S" --json setup --host host-a --storage "uuid=ok,type=file,target=$OK,${P/timeout=${TMO}ms/timeout=${TMO4}ms}")
check "4: ok updated to T = $TMO4 ms" jqe '.storages[0].result == "updated"' <<<"$out"
kf_check "4: the slot's T follows the update" ok '.timeout_ms == $t' --argjson t $TMO4
wait_until 5 hb_wrote "$S" ok 1
probe_start p4 "$OK/vm.img"
t0=$(mono_ms)
kill -KILL "$D"
wait "$D" 2>/dev/null
start c || { not_ok "4: a new daemon starts"; exit 1; }
up=$(($(mono_ms) - t0))
wait_until 5 hb_wrote "$S" ok 2
probe_stop p4
read -r _ _ _ n4 r4 < <(grep ' end ' "$T/p4.probe")
check "4: restarted ${up} ms after the kill: not one of $n4 writes refused (${r4})" [ "${r4:-x}" = 0 ]
kf_check "4: ok's slot never fenced" ok '(.fenced | not) and .writes_refused == 0'

# --- 5: a stop keeps the pins -------------------------------------------------------
echo "# $(awk '{print $1}' /proc/uptime) s since boot"

probe_start p5 "$FA/vm.img"
daemon_stop c 10 >/dev/null
check "5: SIGTERM: the pins stay while storages are armed" \
	eval "[ -e '$PIN/slots' ] && [ -e '$PIN/link_lsm_file_permission' ]"
check "5: the LSM programs still run" [ "$(bpftool prog show | grep -c ' lsm  name iofence_')" -eq "$lsm" ]
wait_until $(((TMO + 3000) / 1000)) probe_refused p5 || not_ok "5: stopped, writes to ff are refused within T + 3 s"
refusal_check "5 stopped" p5 "$(switch_at ff)"
start d || { not_ok "5: a new daemon starts"; exit 1; }
wait_until 5 hb_wrote "$S" ff 1
st5=$(state_of ff)
kf_check "5: stopped longer than T, the restarted daemon fences ff itself ($st5), the kernel fence holds" ff \
	'.fenced and (.reasons | index("daemon")) and $st == "fenced"' --arg st "$st5"
out=$(ctl_sock "$S" unfence ff 2>&1)
check "5: unfence lifts both fences ($out)" grep -q unfenced <<<"$out"
check "5: journalled as the daemon's fence, not the kernel's only" \
	jqe '[.[] | select(.event == "STORAGE_UNFENCED" and .data.storage == "ff")][-1].data | (.kernel_only // false) | not' <<<"$(journal_of "$S")"
check "5: ff takes writes again" wait_until 2 probe_ok_again p5
probe_stop p5
daemon_stop d 10 >/dev/null
rm -rf "$PIN"
# One release of the hangs, first, where every daemon's cleanup has its own.
on_exit_drop hangs_release
on_exit hangs_release
echo "# $(awk '{print $1}' /proc/uptime) s since boot"
