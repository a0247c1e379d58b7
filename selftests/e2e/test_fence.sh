#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Heartbeats and fencing end to end, against storage that really breaks:
# loop devices and files on a faultfs (FUSE) mount whose requests hang,
# fail or slow down on command. Each scenario has its own daemon and its
# own faultfs file:
#   1 hang: fence, victim killed, bystander spared, restore, unfence
#   2 EIO: fence; teardown of a fenced storage
#   3 slow but alive under load: no fence
#   4 a short hang: late, restored, no fence
#   5 permissive spares; kill-only never escalates
#   6 force with a victim in D state: escalation stops the (FIFO) watchdog;
#     a clean shutdown writes the magic close
#   7 two daemons on one "NFS" mount: query-peer dead / alive
#   8 fence hooks: the daemon's default and a storage's own
#   9 updates while a slow heartbeat write is in flight: the fd that write
#     names is closed once it is out of the kernel, never left open
#
# Hung I/O leaves its callers in D state, unkillable until released: every
# cleanup releases the hangs first, then kills, then detaches, then unmounts.
. "$(dirname "$0")/../lib.sh"
need_root
FAULTFS=${FAULTFS:-$OUT/faultfs}
# shellcheck source=../faultfs/faultfs.sh
. "$(dirname "$0")/../faultfs/faultfs.sh"

for need in jq losetup fusermount3; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done
[ -c /dev/fuse ] || { skip "/dev/fuse is missing"; exit 0; }
[ -e /dev/loop-control ] || { skip "/dev/loop-control is missing"; exit 0; }
[ -x "$FAULTFS" ] || { not_ok "faultfs binary $FAULTFS (make tests)"; exit 1; }

T=$(readlink -f "$T")
MNT=$T/mnt
# The binaries as they are now: a rebuild while the test runs changes nothing.
mkdir -p "$T/bin"
if ! cp "$IOFENCED" "$T/bin/iofenced" || ! cp "$IOFENCECTL" "$T/bin/iofencectl"; then
	not_ok "copy $IOFENCED and $IOFENCECTL (make all)"
	exit 1
fi
IOFENCED=$T/bin/iofenced
IOFENCECTL=$T/bin/iofencectl
export FAULTFS_LOG=$T/faultfs.out
faultfs_start "$T/backing" "$MNT" || { not_ok "faultfs mounts"; exit 1; }
on_exit "faultfs_stop '$MNT'"

# The victims: copies named like qemu (the default victim patterns).
mkdir -p "$T/sleep" "$T/dd" "$T/bash"
cp /bin/sleep "$T/sleep/qemu-system-x86_64"
cp /bin/dd "$T/dd/qemu-system-x86_64"
cp /bin/bash "$T/bash/qemu-system-x86_64"
QSLEEP=$T/sleep/qemu-system-x86_64
QDD=$T/dd/qemu-system-x86_64
QBASH=$T/bash/qemu-system-x86_64

# --- cleanup -------------------------------------------------------------

# release_all: every hang of the mount released. Registered before each
# kill; once faultfs does not answer, faultfs_stop is what is left.
RELEASE_STUCK=
release_all() {
	[ -z "$RELEASE_STUCK" ] && faultfs_mounted "$MNT" || return 0
	faultfs_set "$MNT" healthy '*' && return 0
	RELEASE_STUCK=1
	echo "# faultfs does not answer: cannot release the hangs"
	return 1
}

# Background processes of ours not reaped yet, with their start times:
# with pids recycled fast (pid_max may be 32768), a pid alone is no name.
declare -A OURS=()
# alive PID: our process still runs (not a zombie, not a recycled pid).
alive() {
	[ -n "${OURS[$1]:-}" ] && pid_alive "$1" && [ "$(pid_start "$1")" = "${OURS[$1]}" ]
}
# bg_kill PID: SIGKILL, and reap it once it is gone (after a release).
bg_kill() {
	[ -n "${OURS[$1]:-}" ] || return 0
	alive "$1" && kill -KILL "$1" 2>/dev/null
	wait_until 10 eval "! alive $1" ||
		echo "# pid $1 survives SIGKILL (state $(pid_state "$1"))"
	wait "$1" 2>/dev/null
	unset "OURS[$1]"
}
# track PID: ours until bg_kill; the hangs are released before it.
track() {
	OURS[$1]=$(pid_start "$1")
	[ -n "${OURS[$1]}" ] || OURS[$1]=gone
	on_exit "bg_kill $1"
	on_exit release_all
}
# spawn VAR SNIPPET: a victim, started by SNIPPET (which execs it) out of
# this shell's jobs: its SIGKILL is expected, bash need not announce it.
spawn() {
	local pid
	pid=$( (eval "$2") </dev/null >>"$T/victims.out" 2>&1 & echo $!)
	track "$pid"
	printf -v "$1" '%s' "$pid"
}

# loop_detach LOOP FILE: only while it is still the loop of FILE.
loop_detach() {
	local f=/sys/block/${1#/dev/}/loop/backing_file
	[ -r "$f" ] && [ "$(cat "$f")" = "$2" ] && losetup -d "$1"
}
# new_loop VAR NAME: a 64 MiB loop device (direct I/O) on $MNT/NAME.
new_loop() {
	local loop
	truncate -s 64M "$MNT/$2" || return 1
	loop=$(losetup --find --show --direct-io=on "$MNT/$2") || return 1
	on_exit "loop_detach $loop '$MNT/$2'"
	printf -v "$1" '%s' "$loop"
}

# daemon NAME [options...]: start_daemon, its hangs released before its kill.
declare -A DSTART=()
daemon() {
	start_daemon "$@" || return 1
	local v="PID_$1"
	DSTART[$1]=$(pid_start "${!v}")
	on_exit release_all
}
# d_alive NAME: the daemon still runs (bash reaps at once: the pid may be
# recycled before the wait).
d_alive() {
	local v="PID_$1"
	pid_alive "${!v}" && [ "$(pid_start "${!v}")" = "${DSTART[$1]}" ]
}
# stop_daemon_bounded NAME: SIGTERM and its exit status; SIGKILL after 15 s.
stop_daemon_bounded() {
	local pid_var="PID_$1" rc
	local pid=${!pid_var}
	d_alive "$1" && kill -TERM "$pid"
	if ! wait_until 15 eval "! d_alive $1"; then
		echo "# daemon $1 still running 15 s after SIGTERM: SIGKILL"
		kill -KILL "$pid"
	fi
	wait "$pid"
	rc=$?
	# Reaped: its pid may be anyone's by the end of the test.
	on_exit_drop "kill -KILL $pid; reap $pid"
	on_exit_drop "kill -CONT $pid"
	return $rc
}
# sc_end NAME...: release, kill our processes, stop the daemons; 0 when
# every daemon exited 0, else the first other exit status.
sc_end() {
	local p st rc=0
	release_all
	for p in "${!OURS[@]}"; do bg_kill "$p"; done
	for p in "$@"; do
		stop_daemon_bounded "$p"
		st=$?
		[ $rc -ne 0 ] || rc=$st
	done
	return $rc
}
# The loop devices of the scenario (the daemons have let go of them).
loops_end() {
	local l
	for l in "$@"; do losetup -d "$l" 2>/dev/null; done
	return 0
}

# --- the daemon ----------------------------------------------------------

rq() { ctl_sock "$1" raw "$2"; } # socket json: the reply line
# arm SOCK HOST SPEC...: setup; succeeds when every storage is armed.
arm() {
	local sock=$1 host=$2 out
	shift 2
	local args=() s
	for s in "$@"; do args+=(--storage "$s"); done
	ctl_sock "$sock" set-host-state connected >/dev/null || return 1
	out=$(ctl_sock "$sock" --json setup --host "$host" "${args[@]}" 2>&1) || {
		echo "# setup failed: $out"
		return 1
	}
	[ "$(jq -r '[.storages[].result] | unique | join(",")' <<<"$out")" = armed ]
}
# st SOCK UUID: the storage's query-status entry.
st() {
	rq "$1" '{"execute":"query-status"}' |
		jq -c --arg u "$2" '.return.storages[] | select(.uuid == $u)'
}
hb() { st "$1" "$2" | jq -c '.heartbeat'; }
# The journal, as one array.
journal() { rq "$1" '{"execute":"query-events","arguments":{"since":0}}' | jq -c '.return.events'; }
# ev SOCK NAME STORAGE: the data of the first event NAME of STORAGE.
ev() {
	journal "$1" | jq -c --arg n "$2" --arg s "$3" \
		'[.[] | select(.event == $n and .data.storage == $s)][0].data // empty'
}
ev_count() { # sock name storage
	journal "$1" | jq --arg n "$2" --arg s "$3" \
		'[.[] | select(.event == $n and .data.storage == $s)] | length'
}
# ev_ms SOCK NAME STORAGE: the wall-clock ms of that first event.
ev_ms() {
	journal "$1" | jq --arg n "$2" --arg s "$3" \
		'[.[] | select(.event == $n and .data.storage == $s)][0].timestamp |
		 .seconds * 1000 + (.microseconds / 1000 | floor)'
}
has_ev() { [ "$(ev_count "$@")" -gt 0 ]; }
# wait_ev SECONDS SOCK NAME STORAGE: until the event is journalled.
wait_ev() { local s=$1; shift; wait_until "$s" has_ev "$@"; }
# The names of a storage's events, in order.
ev_names() { # sock storage
	journal "$1" | jq -r --arg s "$2" '[.[] | select(.data.storage == $s) | .event] | join(" ")'
}
unfence() { rq "$1" "{\"execute\":\"unfence\",\"arguments\":{\"uuid\":\"$2\"}}"; }
peer() { # sock storage host window_ms
	rq "$1" "{\"execute\":\"query-peer\",\"arguments\":{\"storage\":\"$2\",\"host\":\"$3\",\"window_ms\":$4}}"
}
# jtrue JSON FILTER: the filter holds.
jtrue() { [ "$(jq -r "$2" <<<"$1" 2>/dev/null)" = true ]; }
# writes_ok SOCK UUID: its successful heartbeat writes (0 if unknown).
writes_ok() {
	local n
	n=$(hb "$1" "$2" | jq -r '.writes_ok // 0')
	echo "${n:-0}"
}
wrote_more() { [ "$(writes_ok "$1" "$2")" -ge "$3" ]; } # sock uuid n
show_events() { # sock storage: the journal of a failed scenario
	journal "$1" | jq -c --arg s "$2" '.[] | select(.data.storage == $s) | [.seq, .event, .data]' |
		sed 's/^/#   /'
}
show_log() { # daemon name: its log, for a failed scenario
	echo "# log of daemon $1:"
	grep -v ' event ' "$T/$1.log" | sed 's/^/#   /'
}

BLOCK_SPEC='interval_ms=200,timeout_ms=1500,kill_grace_ms=1000'

# --- 1. hang: fence, kill, spare, restore, unfence ------------------------

sc1() {
	local f0=$t_fail L S V V2 B t_hang hb_ fired t_fire r c rc
	new_loop L d1.img || { not_ok "1: loop device on faultfs"; return; }
	daemon s1 --no-bpf || { not_ok "1: daemon starts"; return; }
	S=$SOCK_s1
	spawn V 'exec "$QSLEEP" 1000 3<>"$L"'
	spawn B 'exec sleep 1000 3<>"$L"'
	arm "$S" h1 "uuid=d1,type=block,target=$L,$BLOCK_SPEC,strategy=force" ||
		{ not_ok "1: storage armed"; sc_end s1; return; }
	check "1: heartbeats succeed on the healthy device" wait_until 5 wrote_more "$S" d1 3
	hb_=$(hb "$S" d1)
	check "1: heartbeat is O_DIRECT at RT I/O priority, healthy, fence ahead" \
		jtrue "$hb_" '.direct and .rt_ioprio and .state == "healthy" and .fence_in_ms > 0 and .fence_in_ms <= 1500'
	core=$(grep -lx iofence-core /proc/"$PID_s1"/task/*/comm 2>/dev/null | cut -d/ -f5 | head -1)
	if sanitizer_build "$IOFENCED"; then
		# ASan's allocator spins for its locks: no FIFO thread by default.
		check "1: ASan build: the fencing core thread runs SCHED_OTHER (its default there), and says why" \
			eval "[ -n '$core' ] && chrt -p $core | grep -q 'policy: SCHED_OTHER' &&
				grep -q 'real-time scheduling off (rt_priority 0, the default of an ASan build' '$T/s1.log'"
	else
		check "1: the fencing core thread runs SCHED_FIFO priority 10 (the default)" \
			eval "[ -n '$core' ] && chrt -p $core | grep -q 'policy: SCHED_FIFO' && chrt -p $core | grep -q 'priority: 10'"
	fi
	check "1: the control plane (main thread) is an ordinary one" \
		eval "chrt -p $PID_s1 | grep -q 'policy: SCHED_OTHER'"
	r=$(rq "$S" '{"execute":"query-peer","arguments":{"storage":"d1","host":"h1","window_ms":600}}')
	check "1: query-peer on a block storage needs the slot" grep -q '"error".*slot' <<<"$r"
	r=$(rq "$S" '{"execute":"query-peer","arguments":{"storage":"d1","host":"h1","slot":0,"window_ms":600}}')
	check "1: query-peer of its own slot 0: alive, with its timeout and interval" \
		jtrue "$r" '.return.liveness == "alive" and .return.progress > 0 and .return.record.timeout_ms == 1500 and .return.record.interval_ms == 200'
	r=$(rq "$S" '{"execute":"query-peer","arguments":{"storage":"d1","host":"h1","slot":1,"window_ms":600}}')
	check "1: query-peer of an unused slot: unknown" \
		jtrue "$r" '.return.liveness == "unknown" and (.return.reason | length > 0)'
	r=$(st "$S" d1 | jq -c .timeline)
	check "1: timeline late 400, fence 1500, escalate 2500, no deadline without a watchdog ($r)" \
		[ "$r" = '{"late_ms":400,"fence_ms":1500,"escalate_ms":2500,"fence_deadline_ms":0}' ]

	t_hang=$(now_ms)
	faultfs_set "$MNT" hang d1.img || { not_ok "1: faultfs hang"; sc_end s1; return; }
	check "1: HEARTBEAT_LATE" wait_ev 5 "$S" HEARTBEAT_LATE d1
	check "1: victim dead within timeout + 5 s of the hang" wait_until 6.5 eval "! alive $V"
	echo "# 1: victim gone $(($(now_ms) - t_hang)) ms after the hang"
	check "1: FENCE_FIRED journalled" wait_ev 5 "$S" FENCE_FIRED d1
	fired=$(ev "$S" FENCE_FIRED d1)
	echo "# 1: FENCE_FIRED $fired"
	check "1: FENCE_FIRED lists the victim $V (qemu-system-x86_64, block device)" \
		jtrue "$fired" "[.victims[] | select(.pid == $V and .exe == \"qemu-system-x86_64\" and .why == \"block device\")] | length == 1"
	check "1: the bystander (sleep $B) is not a victim" \
		jtrue "$fired" "[.victims[] | select(.pid == $B)] | length == 0"
	check "1: fence not before t_ok + timeout (since_ok_ms >= 1500, late_by_us >= 0)" \
		jtrue "$fired" '.since_ok_ms >= 1500 and .late_by_us >= 0'
	check "1: strategy force, reason says why" \
		jtrue "$fired" '.strategy == "force" and (.reason | test("no heartbeat succeeded for 1500 ms"))'
	t_fire=$(ev_ms "$S" FENCE_FIRED d1)
	# t_ok is at most one interval (and a write) before the hang.
	check "1: by the wall clock, the fence came >= timeout - interval after the hang ($((t_fire - t_hang)) ms)" \
		[ $((t_fire - t_hang)) -ge 1200 ]
	check "1: bystander alive" alive $B
	check "1: FENCE_COMPLETED, all dead" wait_ev 5 "$S" FENCE_COMPLETED d1
	r=$(ev "$S" FENCE_COMPLETED d1)
	check "1: FENCE_COMPLETED: all_dead, the victim dead after the fence moment" \
		jtrue "$r" ".all_dead and ([.victims[] | select(.pid == $V and .result == \"dead\" and .dead_after_us >= 0)] | length == 1)"
	check "1: no FENCE_ESCALATED (every victim died)" [ "$(ev_count "$S" FENCE_ESCALATED d1)" = 0 ]
	hb_=$(hb "$S" d1)
	check "1: status: fenced, write in flight, timed out" \
		jtrue "$hb_" '.state == "fenced" and .in_flight and .writes_timed_out >= 1 and .fence.completed and (.fence.restored | not)'

	r=$(unfence "$S" d1)
	check "1: unfence while still hung fails: still lost" \
		grep -q '"error".*still lost' <<<"$r"
	check "1: ... and the storage stays fenced" jtrue "$(hb "$S" d1)" '.state == "fenced"'

	# A VM started on the storage while it is fenced and still hung.
	spawn V2 'exec "$QSLEEP" 1000 3<>"$L"'
	check "1: a victim started while fenced (and hung) is killed" \
		wait_until 3 eval "! alive $V2"
	check "1: ... FENCE_KILLED lists it" \
		eval 'jtrue "$(ev "$S" FENCE_KILLED d1)" "[.victims[] | select(.pid == $V2)] | length == 1"'
	faultfs_set "$MNT" healthy d1.img
	check "1: released: STORAGE_RESTORED" wait_ev 5 "$S" STORAGE_RESTORED d1
	check "1: status: restored, still fenced" jtrue "$(hb "$S" d1)" '.state == "fenced" and .fence.restored'
	r=$(unfence "$S" d1)
	check "1: unfence after the restore succeeds" jtrue "$r" '.return.state == "healthy"'
	check "1: STORAGE_UNFENCED journalled" has_ev "$S" STORAGE_UNFENCED d1
	c=$(writes_ok "$S" d1)
	check "1: healthy again, heartbeats go on" wait_until 3 wrote_more "$S" d1 $((c + 3))
	check "1: events in order" \
		[ "$(ev_names "$S" d1 | sed 's/ FENCE_KILLED//')" = "ARMED HEARTBEAT_LATE FENCE_FIRED FENCE_COMPLETED STORAGE_RESTORED STORAGE_UNFENCED" ]
	check "1: bystander still alive" alive $B
	[ "$t_fail" -eq "$f0" ] || { show_events "$S" d1; show_log s1; }
	sc_end s1
	rc=$?
	check "1: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
	loops_end "$L"
}

# --- 2. EIO: fence; teardown while fenced --------------------------------

sc2() {
	local f0=$t_fail L L2 S V V2 fired r rc
	new_loop L d2.img || { not_ok "2: loop device on faultfs"; return; }
	new_loop L2 d2n.img || { not_ok "2: loop device on faultfs"; return; }
	daemon s2 --no-bpf || { not_ok "2: daemon starts"; return; }
	S=$SOCK_s2
	spawn V 'exec "$QSLEEP" 1000 3<>"$L"'
	# d2n: nothing runs on it, so its fence has no victim.
	arm "$S" h2 "uuid=d2,type=block,target=$L,$BLOCK_SPEC,strategy=force" \
		"uuid=d2n,type=block,target=$L2,$BLOCK_SPEC,strategy=force" ||
		{ not_ok "2: storage armed"; sc_end s2; return; }
	wait_until 5 wrote_more "$S" d2 2
	wait_until 5 wrote_more "$S" d2n 2
	faultfs_set "$MNT" eio d2.img
	faultfs_set "$MNT" eio d2n.img
	check "2: EIO: victim dead within timeout + 5 s" wait_until 6.5 eval "! alive $V"
	check "2: FENCE_FIRED journalled" wait_ev 5 "$S" FENCE_FIRED d2
	fired=$(ev "$S" FENCE_FIRED d2)
	check "2: FENCE_FIRED lists the victim, reason Input/output error" \
		jtrue "$fired" "([.victims[] | select(.pid == $V)] | length == 1) and (.reason | test(\"Input/output error\"))"
	check "2: fence not before t_ok + timeout" jtrue "$fired" '.since_ok_ms >= 1500 and .late_by_us >= 0'
	r=$(ev "$S" HEARTBEAT_LATE d2)
	check "2: HEARTBEAT_LATE says Input/output error, after >= 400 ms" \
		jtrue "$r" '.error == "Input/output error" and .since_ok_ms >= 400'
	check "2: status counts failed writes, not timeouts" \
		jtrue "$(hb "$S" d2)" '.writes_failed >= 2 and .last_error == "Input/output error"'
	check "2: FENCE_COMPLETED all dead" wait_ev 5 "$S" FENCE_COMPLETED d2
	check "2: ... all_dead" jtrue "$(ev "$S" FENCE_COMPLETED d2)" '.all_dead'
	check "2: no victim: FENCE_FIRED with an empty list" wait_ev 5 "$S" FENCE_FIRED d2n
	check "2: ... victims []" jtrue "$(ev "$S" FENCE_FIRED d2n)" '.victims == [] and .victims_omitted == 0'
	check "2: no victim: FENCE_COMPLETED all_dead" wait_ev 3 "$S" FENCE_COMPLETED d2n
	spawn V2 'exec "$QSLEEP" 1000 3<>"$L"'
	check "2: a victim started while fenced (and failing) is killed" \
		wait_until 5 eval "! alive $V2"
	check "2: ... FENCE_KILLED lists it" \
		eval 'jtrue "$(ev "$S" FENCE_KILLED d2)" "[.victims[] | select(.pid == $V2)] | length == 1"'
	r=$(unfence "$S" d2)
	check "2: unfence while failing: still lost" grep -q '"error".*still lost' <<<"$r"
	r=$(ctl_sock "$S" --json teardown --host h2)
	check "2: teardown of the fenced storage while failing" \
		jtrue "$r" '[.storages[].result] == ["disarmed", "disarmed"]'
	check "2: ... it is gone from the status" [ -z "$(st "$S" d2)" ]
	[ "$t_fail" -eq "$f0" ] || { show_events "$S" d2; show_events "$S" d2n; show_log s2; }
	sc_end s2
	rc=$?
	check "2: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
	loops_end "$L" "$L2"
}

# --- 3. slow but alive, under load: no fence ------------------------------

sc3() {
	local f0=$t_fail L S V LOADP hb_ ok0 ok1 ios rc late
	new_loop L d3.img || { not_ok "3: loop device on faultfs"; return; }
	daemon s3 --no-bpf || { not_ok "3: daemon starts"; return; }
	S=$SOCK_s3
	spawn V 'exec "$QSLEEP" 1000 3<>"$L"'
	arm "$S" h3 "uuid=d3,type=block,target=$L,interval_ms=300,timeout_ms=3000,kill_grace_ms=1000,strategy=force" ||
		{ not_ok "3: storage armed"; sc_end s3; return; }
	wait_until 5 wrote_more "$S" d3 2
	faultfs_set "$MNT" slow 30 d3.img
	ok0=$(writes_ok "$S" d3)
	# Guest-like load on the same device, clear of the heartbeat slot.
	if command -v fio >/dev/null; then
		fio --name=load --filename="$L" --rw=randwrite --bs=4k --direct=1 \
			--ioengine=libaio --iodepth=4 --offset=1M --size=32M \
			--time_based --runtime=6 --output-format=json \
			--output="$T/fio.json" >/dev/null 2>&1 &
	else
		timeout 6 dd if=/dev/zero of="$L" bs=4k seek=256 count=8000 \
			oflag=direct status=none 2>/dev/null &
	fi
	LOADP=$!
	track $LOADP
	wait_until 20 eval "! alive $LOADP"
	wait $LOADP 2>/dev/null
	if [ -s "$T/fio.json" ]; then
		ios=$(jq '.jobs[0].write.total_ios' "$T/fio.json")
		echo "# 3: fio wrote $ios blocks of 4k in 6 s"
		check "3: the load generator wrote to the device" [ "${ios:-0}" -gt 20 ]
	fi
	ok1=$(writes_ok "$S" d3)
	hb_=$(hb "$S" d3)
	echo "# 3: heartbeats during the load: $((ok1 - ok0)), latency $(jq -c .latency_us <<<"$hb_")"
	check "3: heartbeats went on under the load (>= 10 in 6 s)" [ $((ok1 - ok0)) -ge 10 ]
	check "3: the slowness was real (heartbeat latency max >= 25 ms)" \
		jtrue "$hb_" '.latency_us.max >= 25000'
	check "3: no FENCE_FIRED" [ "$(ev_count "$S" FENCE_FIRED d3)" = 0 ]
	check "3: storage healthy or late, never fenced" jtrue "$hb_" '.state != "fenced"'
	late=$(ev_count "$S" HEARTBEAT_LATE d3)
	echo "# 3: HEARTBEAT_LATE events under the load: $late"
	check "3: victim alive" alive $V
	sc_end s3
	rc=$?
	check "3: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
	loops_end "$L"
}

# --- 4. a blip: late, restored, no fence ---------------------------------

sc4() {
	local f0=$t_fail L S V late rest rc
	new_loop L d4.img || { not_ok "4: loop device on faultfs"; return; }
	daemon s4 --no-bpf || { not_ok "4: daemon starts"; return; }
	S=$SOCK_s4
	spawn V 'exec "$QSLEEP" 1000 3<>"$L"'
	arm "$S" h4 "uuid=d4,type=block,target=$L,interval_ms=200,io_timeout_ms=200,timeout_ms=3000,kill_grace_ms=1000,strategy=force" ||
		{ not_ok "4: storage armed"; sc_end s4; return; }
	wait_until 5 wrote_more "$S" d4 2
	faultfs_set "$MNT" hang d4.img
	sleep 0.7
	faultfs_set "$MNT" healthy d4.img
	check "4: HEARTBEAT_LATE" wait_ev 5 "$S" HEARTBEAT_LATE d4
	check "4: HEARTBEAT_RESTORED" wait_ev 5 "$S" HEARTBEAT_RESTORED d4
	late=$(ev "$S" HEARTBEAT_LATE d4)
	rest=$(ev "$S" HEARTBEAT_RESTORED d4)
	echo "# 4: late $late, restored $rest"
	check "4: late after t_ok + interval + io_timeout (since_ok_ms >= 400), fence still ahead" \
		jtrue "$late" '.since_ok_ms >= 400 and .fence_in_ms > 0'
	# Past the moment the blip would have fenced, had nothing succeeded.
	sleep 3
	check "4: no FENCE_FIRED" [ "$(ev_count "$S" FENCE_FIRED d4)" = 0 ]
	check "4: events: ARMED HEARTBEAT_LATE HEARTBEAT_RESTORED" \
		[ "$(ev_names "$S" d4)" = "ARMED HEARTBEAT_LATE HEARTBEAT_RESTORED" ]
	check "4: healthy" jtrue "$(hb "$S" d4)" '.state == "healthy"'
	check "4: victim alive" alive $V
	[ "$t_fail" -eq "$f0" ] || { show_events "$S" d4; show_log s4; }
	sc_end s4
	rc=$?
	check "4: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
	loops_end "$L"
}

# --- 5. permissive spares; kill-only never escalates ---------------------

sc5() {
	local f0=$t_fail L L2 S V D fired r rc
	new_loop L d5.img || { not_ok "5: loop device on faultfs"; return; }
	new_loop L2 d5k.img || { not_ok "5: loop device on faultfs"; return; }
	daemon s5 --no-bpf || { not_ok "5: daemon starts"; return; }
	S=$SOCK_s5
	spawn V 'exec "$QSLEEP" 1000 3<>"$L"'
	arm "$S" h5 "uuid=d5,type=block,target=$L,$BLOCK_SPEC,strategy=permissive" \
		"uuid=d5k,type=block,target=$L2,$BLOCK_SPEC,strategy=kill-only" ||
		{ not_ok "5: storages armed"; sc_end s5; return; }
	wait_until 5 wrote_more "$S" d5 2
	wait_until 5 wrote_more "$S" d5k 2

	# kill-only: a victim that cannot die (in D state on the hung device).
	faultfs_set "$MNT" hang d5k.img
	spawn D 'exec "$QDD" if=/dev/zero of="$L2" bs=4k seek=256 count=1000000 oflag=direct status=none'
	faultfs_set "$MNT" hang d5.img
	check "5: kill-only victim stuck in D state" wait_until 3 eval '[ "$(pid_state '"$D"')" = D ]'

	check "5: permissive: FENCE_FIRED" wait_ev 6.5 "$S" FENCE_FIRED d5
	fired=$(ev "$S" FENCE_FIRED d5)
	check "5: permissive: the victim listed as spared" \
		jtrue "$fired" ".strategy == \"permissive\" and ([.victims[] | select(.pid == $V and .result == \"spared\")] | length == 1)"
	check "5: kill-only: FENCE_FIRED lists the dd victim" wait_ev 6.5 "$S" FENCE_FIRED d5k
	check "5: ... with pid $D" jtrue "$(ev "$S" FENCE_FIRED d5k)" "[.victims[] | select(.pid == $D)] | length == 1"
	check "5: kill-only: FENCE_COMPLETED, not all dead" wait_ev 5 "$S" FENCE_COMPLETED d5k
	r=$(ev "$S" FENCE_COMPLETED d5k)
	check "5: ... all_dead false, the victim alive, after kill_grace (elapsed_ms >= 1000)" \
		jtrue "$r" ".all_dead == false and .elapsed_ms >= 1000 and ([.victims[] | select(.pid == $D and .result == \"alive\")] | length == 1)"
	sleep 1
	check "5: permissive: victim alive after timeout + kill_grace" alive $V
	check "5: permissive: status lists the victim as spared" \
		jtrue "$(hb "$S" d5)" ".fence.victims[0].pid == $V and .fence.victims[0].result == \"spared\" and (.fence.escalated | not)"
	# FENCE_COMPLETED is for force and kill-only (iofence-protocol(7)).
	check "5: permissive: complete at once, no FENCE_COMPLETED (nothing to wait for)" \
		eval 'jtrue "$(hb "$S" d5)" .fence.completed && [ "$(ev_count "$S" FENCE_COMPLETED d5)" = 0 ]'
	check "5: permissive: no FENCE_ESCALATED" [ "$(ev_count "$S" FENCE_ESCALATED d5)" = 0 ]
	check "5: kill-only: no FENCE_ESCALATED with a survivor" [ "$(ev_count "$S" FENCE_ESCALATED d5k)" = 0 ]
	check "5: kill-only: status not escalated" jtrue "$(hb "$S" d5k)" '.state == "fenced" and (.fence.escalated | not)'
	check "5: kill-only: the survivor is still in D state" [ "$(pid_state $D)" = D ]
	faultfs_set "$MNT" healthy d5k.img
	check "5: kill-only: released, the victim dies of its SIGKILL" wait_until 5 eval "! alive $D"
	faultfs_set "$MNT" healthy d5.img
	check "5: permissive: STORAGE_RESTORED" wait_ev 5 "$S" STORAGE_RESTORED d5
	check "5: permissive: victim still alive" alive $V
	[ "$t_fail" -eq "$f0" ] || { show_events "$S" d5; show_events "$S" d5k; show_log s5; }
	sc_end s5
	rc=$?
	check "5: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
	loops_end "$L" "$L2"
}

# --- 6. escalation stops the watchdog; magic close ------------------------

kcount() { tr -cd k <"$1" | wc -c; }
has_pets() { [ "$(kcount "$1")" -ge "$2" ]; } # file n

sc6() {
	local f0=$t_fail L S D W F CAT c0 c1 c2 c3 fired r tl rc
	F=$T/wd6.fifo
	W=$T/wd6.out
	mkfifo "$F"
	new_loop L d6.img || { not_ok "6: loop device on faultfs"; return; }
	daemon s6 --no-bpf --watchdog "$F" --watchdog-timeout 2 ||
		{ not_ok "6: daemon starts"; return; }
	S=$SOCK_s6
	cat "$F" >"$W" &
	CAT=$!
	track $CAT
	arm "$S" h6 "uuid=d6,type=block,target=$L,$BLOCK_SPEC,strategy=force" ||
		{ not_ok "6: storage armed"; sc_end s6; return; }
	tl=$(st "$S" d6 | jq -c .timeline)
	check "6: fence deadline = timeout + kill_grace + watchdog = 4500 ($tl)" \
		jtrue "$tl" '.fence_deadline_ms == 4500 and .escalate_ms == 2500'
	wait_until 5 wrote_more "$S" d6 2
	check "6: the watchdog is petted (every 500 ms)" wait_until 3 has_pets "$W" 2
	c0=$(kcount "$W")
	faultfs_set "$MNT" hang d6.img
	# dd, named like qemu, writing O_DIRECT: in D state, it survives SIGKILL.
	spawn D 'exec "$QDD" if=/dev/zero of="$L" bs=4k seek=256 count=1000000 oflag=direct status=none'
	check "6: the victim is stuck in D state" wait_until 3 eval '[ "$(pid_state '"$D"')" = D ]'
	check "6: FENCE_FIRED" wait_ev 6.5 "$S" FENCE_FIRED d6
	c1=$(kcount "$W")
	check "6: the watchdog was petted until the fence ($c0 -> $c1)" [ "$c1" -gt "$c0" ]
	fired=$(ev "$S" FENCE_FIRED d6)
	echo "# 6: FENCE_FIRED $fired"
	check "6: FENCE_FIRED: the victim, deadline 4500, deadline_left in (0, 3000]" \
		jtrue "$fired" "([.victims[] | select(.pid == $D)] | length == 1) and .fence_deadline_ms == 4500 and .deadline_left_ms > 0 and .deadline_left_ms <= 3000"
	check "6: FENCE_ESCALATED after kill_grace" wait_ev 5 "$S" FENCE_ESCALATED d6
	r=$(ev "$S" FENCE_ESCALATED d6)
	echo "# 6: FENCE_ESCALATED $r"
	check "6: FENCE_ESCALATED: 1 alive, petting stopped, reset within 2000 ms" \
		jtrue "$r" '.alive == 1 and .watchdog == "petting stopped" and .reset_within_ms == 2000'
	r=$(ev "$S" FENCE_COMPLETED d6)
	check "6: FENCE_COMPLETED: not all dead, after kill_grace (elapsed_ms >= 1000)" \
		jtrue "$r" '.all_dead == false and .elapsed_ms >= 1000'
	r=$(($(ev_ms "$S" FENCE_ESCALATED d6) - $(ev_ms "$S" FENCE_FIRED d6)))
	# FENCE_FIRED is stamped after the victim scan, a few ms past the fence.
	check "6: escalation not before fence + kill_grace (wall clock: $r ms, less the scan)" \
		[ "$r" -ge 900 ]
	check "6: status: escalated" jtrue "$(hb "$S" d6)" '.fence.escalated'
	sleep 0.3
	c2=$(kcount "$W")
	sleep 2
	c3=$(kcount "$W")
	check "6: no keepalive after the escalation ($c2 -> $c3 over 2 s)" [ "$c3" = "$c2" ]
	check "6: the victim survived its SIGKILL (D state)" [ "$(pid_state $D)" = D ]
	faultfs_set "$MNT" healthy d6.img
	check "6: released: the victim dies" wait_until 5 eval "! alive $D"
	check "6: released: STORAGE_RESTORED" wait_ev 5 "$S" STORAGE_RESTORED d6
	check "6: still escalated until unfence: no keepalive" [ "$(kcount "$W")" = "$c2" ]
	[ "$t_fail" -eq "$f0" ] || { show_events "$S" d6; show_log s6; }
	release_all
	bg_kill $D
	stop_daemon_bounded s6
	rc=$?
	wait_until 5 eval "! alive $CAT"
	sc_end
	check "6: SIGTERM while escalated: exit $rc" [ $rc -eq 0 ]
	check "6: no magic close while escalated" eval "! grep -q V '$W'"
	loops_end "$L"

	# Another run, without a fence: the clean shutdown disarms the watchdog.
	F=$T/wd6v.fifo
	W=$T/wd6v.out
	mkfifo "$F"
	daemon s6v --no-bpf --watchdog "$F" --watchdog-timeout 1 ||
		{ not_ok "6: daemon s6v starts"; return; }
	cat "$F" >"$W" &
	CAT=$!
	track $CAT
	check "6v: petted every 250 ms" wait_until 3 has_pets "$W" 3
	stop_daemon_bounded s6v
	rc=$?
	check "6v: the watchdog reader sees the end" wait_until 5 eval "! alive $CAT"
	sc_end
	check "6v: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
	check "6v: magic close: 'V' is the last byte ($(tail -c 8 "$W"))" \
		[ "$(tail -c 1 "$W")" = V ]
}

# --- 7. two daemons on one "NFS" mount: query-peer ------------------------

sc7() {
	local f0=$t_fail A B r rc
	mkdir -p "$MNT/nfs"
	daemon pa --no-bpf || { not_ok "7: daemon A starts"; return; }
	on_exit "kill -CONT $PID_pa" # never leave it stopped
	daemon pb --no-bpf || { not_ok "7: daemon B starts"; return; }
	A=$SOCK_pa B=$SOCK_pb
	local spec="uuid=nfs,type=file,target=$MNT/nfs,interval_ms=200,timeout_ms=1000,strategy=permissive"
	arm "$A" hostA "$spec" || { not_ok "7: A armed"; sc_end pa pb; return; }
	arm "$B" hostB "$spec" || { not_ok "7: B armed"; sc_end pa pb; return; }
	wait_until 5 wrote_more "$A" nfs 2
	wait_until 5 wrote_more "$B" nfs 2
	check "7: A's record is on the mount" test -s "$MNT/nfs/.iofence/hostA"

	r=$(peer "$B" nfs hostA 1500)
	echo "# 7: running: $r"
	check "7: A running: B sees it alive" \
		jtrue "$r" '.return.liveness == "alive" and .return.progress > 0 and .return.record.timeout_ms == 1000 and .return.record.interval_ms == 200'
	r=$(peer "$B" nfs nohost 200)
	check "7: a host without a record: unknown" \
		jtrue "$r" '.return.liveness == "unknown" and (.return.reason | test("no record"))'

	kill -STOP "$PID_pa"
	sleep 0.5 # a write in flight when it stopped lands
	r=$(peer "$B" nfs hostA 500)
	check "7: A stopped, window 500 < its timeout: unknown" \
		jtrue "$r" '.return.liveness == "unknown" and .return.progress == 0'
	r=$(peer "$B" nfs hostA 1500)
	echo "# 7: stopped: $r"
	check "7: A stopped, window 1500: dead, no progress" \
		jtrue "$r" '.return.liveness == "dead" and .return.progress == 0 and .return.window_ms == 1500 and .return.observed_ms >= 1500'
	kill -CONT "$PID_pa"
	check "7: A resumed: its heartbeats go on" wait_until 5 wrote_more "$A" nfs $(($(writes_ok "$A" nfs) + 2))
	r=$(peer "$B" nfs hostA 1500)
	echo "# 7: resumed: $r"
	check "7: A resumed: alive again" jtrue "$r" '.return.liveness == "alive" and .return.progress > 0'
	# Stopped past its timeout, A fenced itself on waking (permissive).
	r=$(ev "$A" FENCE_FIRED nfs)
	check "7: A fenced itself on waking, after >= its timeout" \
		jtrue "$r" '.strategy == "permissive" and .since_ok_ms >= 1000'
	check "7: B never fenced" [ "$(ev_count "$B" FENCE_FIRED nfs)" = 0 ]
	sc_end pa pb
	rc=$?
	check "7: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
}

# --- 8. fence hooks -------------------------------------------------------

# hook NAME: a hook that records its environment in $T/hook-NAME.<storage>.
hook() {
	cat >"$T/hook-$1.sh" <<-EOF
		#!/bin/sh
		chrt -p \$\$ >"$T/hook-$1.\$IOFENCE_STORAGE.sched"
		env | grep '^IOFENCE_' | sort >"$T/hook-$1.\$IOFENCE_STORAGE.tmp"
		mv "$T/hook-$1.\$IOFENCE_STORAGE.tmp" "$T/hook-$1.\$IOFENCE_STORAGE"
	EOF
	chmod 755 "$T/hook-$1.sh"
}

sc8() {
	local f0=$t_fail L S VA VB U r rc
	U=5d5e1c8a-0b57-4c1e-9a43-7c2f8d6e4b10
	hook default
	hook own
	mkdir -p "$MNT/s8"
	truncate -s 1M "$MNT/s8/vm.img"
	new_loop L d8.img || { not_ok "8: loop device on faultfs"; return; }
	daemon s8 --no-bpf --fence-hook "$T/hook-default.sh" || { not_ok "8: daemon starts"; return; }
	S=$SOCK_s8
	# A victim that names its VM with -uuid, as qemu does.
	mkfifo "$T/vm8.fifo"
	spawn VA 'exec "$QBASH" -c "read -r -u 5 _" x -uuid "$U" 3<>"$L" 5<>"$T/vm8.fifo"'
	spawn VB 'exec "$QSLEEP" 1000 3<>"$MNT/s8/vm.img"'
	arm "$S" h8 "uuid=d8,type=block,target=$L,$BLOCK_SPEC,strategy=force" \
		"uuid=f8,type=file,target=$MNT/s8,$BLOCK_SPEC,strategy=force,fence_hook=$T/hook-own.sh" ||
		{ not_ok "8: storages armed"; sc_end s8; return; }
	wait_until 5 wrote_more "$S" d8 2
	wait_until 5 wrote_more "$S" f8 2
	faultfs_set "$MNT" hang d8.img
	faultfs_set "$MNT" hang s8/.iofence/h8
	check "8: block storage fenced" wait_ev 6.5 "$S" FENCE_FIRED d8
	check "8: file storage fenced" wait_ev 6.5 "$S" FENCE_FIRED f8
	r=$(ev "$S" FENCE_FIRED d8)
	check "8: the block victim carries its VM uuid" \
		jtrue "$r" "[.victims[] | select(.pid == $VA and .vm_uuid == \"$U\")] | length == 1"
	check "8: the file victim (fd on the mount) listed" \
		jtrue "$(ev "$S" FENCE_FIRED f8)" "[.victims[] | select(.pid == $VB and .why == \"fd\")] | length == 1"
	check "8: the default hook ran for d8" wait_until 5 test -s "$T/hook-default.d8"
	check "8: the storage's own hook ran for f8" wait_until 5 test -s "$T/hook-own.f8"
	echo "# 8: default hook env: $(tr '\n' ' ' <"$T/hook-default.d8" 2>/dev/null)"
	echo "# 8: own hook env: $(tr '\n' ' ' <"$T/hook-own.f8" 2>/dev/null)"
	check "8: d8 hook: IOFENCE_STORAGE, HOST, STRATEGY" \
		eval "grep -qx 'IOFENCE_STORAGE=d8' '$T/hook-default.d8' &&
		      grep -qx 'IOFENCE_HOST=h8' '$T/hook-default.d8' &&
		      grep -qx 'IOFENCE_STRATEGY=force' '$T/hook-default.d8'"
	check "8: d8 hook: IOFENCE_REASON" \
		grep -qx 'IOFENCE_REASON=no heartbeat succeeded for 1500 ms (.*)' "$T/hook-default.d8"
	check "8: d8 hook: IOFENCE_VICTIMS lists $VA:qemu-system-x86_64:$U" \
		grep -qE "^IOFENCE_VICTIMS=(.* )?$VA:qemu-system-x86_64:$U( |\$)" "$T/hook-default.d8"
	check "8: f8 hook: IOFENCE_STORAGE=f8, victim $VB listed" \
		eval "grep -qx 'IOFENCE_STORAGE=f8' '$T/hook-own.f8' &&
		      grep -qE '^IOFENCE_VICTIMS=(.* )?$VB:qemu-system-x86_64:( |\$)' '$T/hook-own.f8'"
	check "8: the hook runs SCHED_OTHER, not at the daemon's RT priority" \
		grep -q 'policy: SCHED_OTHER' "$T/hook-default.d8.sched"
	check "8: a storage's own hook replaces the default" \
		eval "[ ! -e '$T/hook-default.f8' ] && [ ! -e '$T/hook-own.d8' ]"
	check "8: the daemon saw the hooks exit 0" \
		wait_until 3 eval "[ \$(grep -c 'fence hook .*: done' '$T/s8.log') -ge 2 ]"
	check "8: both victims dead" eval "! alive $VA && ! alive $VB"
	[ "$t_fail" -eq "$f0" ] || { show_events "$S" d8; show_events "$S" f8; show_log s8; }
	sc_end s8
	rc=$?
	check "8: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
	loops_end "$L"
}

# --- 9. updates during a slow write ----------------------------------------

# fds_on PID PATH: how many of PID's fds name PATH.
fds_on() {
	local n=0 l
	for l in /proc/"$1"/fd/*; do
		[ "$(readlink "$l" 2>/dev/null)" = "$2" ] && n=$((n + 1))
	done
	echo "$n"
}

sc9() {
	local f0=$t_fail S rec n0 n w0 k r rc
	mkdir -p "$MNT/s9"
	daemon s9 --no-bpf || { not_ok "9: daemon starts"; return; }
	S=$SOCK_s9
	local spec="uuid=s9,type=file,target=$MNT/s9,interval_ms=1000,io_timeout_ms=1000,timeout_ms=20000,strategy=permissive,victims=iofence-test-nobody"
	arm "$S" h9 "$spec,kill_grace_ms=1000" || { not_ok "9: armed"; sc_end s9; return; }
	wait_until 5 wrote_more "$S" s9 2
	rec=$MNT/s9/.iofence/h9
	n0=$(fds_on "$PID_s9" "$rec")
	echo "# 9: fds on the record before: $n0"
	# Each write now takes 700 ms: an update nearly always lands while
	# one is in flight, and brings the core a new fd.
	faultfs_set "$MNT" slow 700 s9/.iofence/h9
	w0=$(writes_ok "$S" s9)
	for k in 1 2 3; do
		r=$(ctl_sock "$S" --json setup --host h9 --storage "$spec,kill_grace_ms=$((1000 + k))" 2>&1)
		check "9: update $k: $(jq -r '[.storages[].result] | join(",")' <<<"$r" 2>/dev/null)" \
			jtrue "$r" '[.storages[].result] == ["updated"]'
	done
	check "9: heartbeats go on through the updates" \
		wait_until 10 wrote_more "$S" s9 $((w0 + 3))
	faultfs_set "$MNT" healthy s9/.iofence/h9
	# Closes go to io-wq: give them a moment.
	wait_until 5 eval '[ "$(fds_on "$PID_s9" "$rec")" -eq "$n0" ]'
	n=$(fds_on "$PID_s9" "$rec")
	check "9: after three updates, as many fds on the record as before ($n, was $n0)" \
		[ "$n" -eq "$n0" ]
	check "9: never fenced" [ "$(ev_count "$S" FENCE_FIRED s9)" = 0 ]
	[ "$t_fail" -eq "$f0" ] || { show_events "$S" s9; show_log s9; }
	sc_end s9
	rc=$?
	check "9: SIGTERM: clean exit ($rc)" [ $rc -eq 0 ]
}

t0=$(now_ms)
# FENCE_ONLY="1 6" runs only those scenarios.
for n in ${FENCE_ONLY:-1 2 3 4 5 6 7 8 9}; do
	sc=sc$n
	s0=$(now_ms)
	"$sc"
	echo "# $sc: $(($(now_ms) - s0)) ms"
done
echo "# total $(($(now_ms) - t0)) ms"
