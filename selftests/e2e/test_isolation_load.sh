#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: alone (it measures lateness under a load of its own making)
#
# Nothing stalls the fencing (issue 8), under numbers and load: each
# scenario has one healthy storage that must never notice, and a client
# that keeps asking query-status.
#   3 sixteen hung storages at once on two faultfs mounts (the second one
#     serving direct I/O synchronously), data-only hangs ("hang": read,
#     write, fsync) and total ones ("dead": every operation, close
#     included) mixed, per file: all sixteen fenced, on time; and sixteen
#     healthy storages on a third faultfs mount never late nor fenced,
#     though io-wq would serialise their writes behind the stuck ones
#     were they queued "hashed"
#   4 block storages on loop devices whose backing files (on faultfs) hang,
#     one "dead", one "hang": fenced, their dummy VMs (holding the loop
#     devices open) killed
#   6 both CPUs busy with CPU hogs at normal priority: the healthy storage
#     stays healthy, a hung one still fences on time; and (6s) a daemon
#     stopped for 600 ms: its core reports the lag (CORE_LAG, lag.core)
# Interval 200 ms, timeout 1 s, kill grace 500 ms. Hung requests leave
# their callers in D state: every cleanup releases the hangs first.
. "$(dirname "$0")/isolation.sh" losetup
[ -e /dev/loop-control ] || { skip "/dev/loop-control is missing"; exit 0; }

# --- 3. sixteen hung storages -----------------------------------------------

sc3() {
	local f0=$t_fail MA MB MC S i m mnt specs=() ids=() VA VB t_first t_dead j n rc dead_ok=1
	local fine=() bad
	ff_mount MA r3a || { not_ok "3: faultfs mounts"; return; }
	# The second mount's server serves direct I/O synchronously, if it can.
	ff_mount MB r3b "${SYNC_DIO[@]}" || { not_ok "3: faultfs mounts"; return; }
	# The third one stays healthy: its storages must never notice.
	ff_mount MC r3c "${SYNC_DIO[@]}" || { not_ok "3: faultfs mounts"; return; }
	mkdir -p "$OK/ok3"
	for i in $(seq -w 1 16); do
		mnt=$MA
		[ $((10#$i % 2)) -eq 0 ] && mnt=$MB
		mkdir -p "$mnt/s$i"
		specs+=("uuid=s$i,type=file,target=$mnt/s$i,$SPEC")
		ids+=("s$i")
	done
	# Healthy storages on FUSE, where the kernel serializes a file's
	# writes in io_uring's io-wq by a hash of the inode: sixteen of them
	# share a bucket with one of the sixteen stuck writes all but
	# certainly, unless their writes stay out of io-wq's hashing.
	for i in $(seq -w 1 16); do
		mkdir -p "$MC/f$i"
		specs+=("uuid=f$i,type=file,target=$MC/f$i,$SPEC")
		fine+=("f$i")
	done
	truncate -s 1M "$MA/vm.img" "$MB/vm.img"
	daemon_on s3 s3 --no-bpf || { not_ok "3: daemon starts"; return; }
	S=$SOCK_s3
	arm_storages "$S" h3 "uuid=ok,type=file,target=$OK/ok3,$SPEC" "${specs[@]}" ||
		{ not_ok "3: thirty-three storages armed"; return; }
	proc_spawn VA 'exec "$QSLEEP" 1000 3<>"$MA/vm.img"'
	proc_spawn VB 'exec "$QSLEEP" 1000 3<>"$MB/vm.img"'
	wait_until 10 hb_wrote "$S" s16 3
	check "3: the victims run before the hangs" all_alive "$VA" "$VB"
	qs_watch_start "$S" ok "$T/w3"
	sleep 1
	# Records 1-4 and 9-12 hang their data, the others stop answering.
	t_first=$(now_ms)
	for i in $(seq -w 1 16); do
		mnt=$MA
		[ $((10#$i % 2)) -eq 0 ] && mnt=$MB
		m=hang
		[ $(((10#$i - 1) / 4 % 2)) -eq 1 ] && m=dead
		if [ $m = dead ] && [ $dead_ok = 1 ]; then
			ff_dead "$mnt" "s$i/.iofence/h3" || dead_ok=0
		else
			faultfs_set "$mnt" hang "s$i/.iofence/h3"
		fi
	done
	t_dead=$(now_ms)
	echo "# 3: sixteen hangs set in $((t_dead - t_first)) ms"
	killed_within "3: the victims on both mounts" "$t_first" "$KILL_BOUND" "$VA" "$VB"
	# Every fence and its kill grace, the healthy storage still watched.
	wait_until 5 eval 'n=$(journal_of "$S" | jq "[.[] | select(.event == \"FENCE_COMPLETED\")] | length"); [ "${n:-0}" -ge 16 ]'
	sleep 1
	qs_watch_stop "$T/w3"
	qs_watch_check "3: sixteen hung" "$T/w3" "$IV" "$LATE"
	j=$(journal_of "$S") || not_ok "3: journal"
	n=0
	for i in "${ids[@]}"; do
		[ "$(j_count "$j" FENCE_FIRED "$i")" -ge 1 ] && n=$((n + 1))
	done
	check "3: all sixteen fenced ($n)" [ "$n" -eq 16 ]
	# Each one on time: its own fence check, quietly unless it fails.
	local late_ones=
	for i in "${ids[@]}"; do
		local ev at
		ev=$(j_first "$j" FENCE_FIRED "$i")
		[ -n "$ev" ] || continue
		at=$(j_ms "$ev")
		between "$at" $((t_first + TMO - IV - 100)) $((t_dead + TMO + 1500)) ||
			late_ones+=" $i:$((at - t_first))ms"
	done
	check "3: each fenced T - interval - 100 ms .. T + 1.5 s after the hangs${late_ones:+ (not:$late_ones)}" [ -z "$late_ones" ]
	fence_check "3: s01 (hang)" "$j" s01 "$t_first" "$TMO" "$IV" "$GRACE"
	fence_check "3: s05 (dead)" "$j" s05 "$t_first" "$TMO" "$IV" "$GRACE"
	victims_named "3" "$j" "${ids[*]}" "$VA" "$VB"
	healthy_check "3" "$j" ok
	bad=
	for i in "${fine[@]}"; do
		n=$(jq --arg u "$i" '[.[] | select((.event == "HEARTBEAT_LATE" or .event == "FENCE_FIRED") and .data.storage == $u)] | length' <<<"$j")
		[ "${n:-1}" -eq 0 ] || bad+=" $i"
	done
	check "3: the sixteen healthy FUSE storages next to the stuck writes: never late, never fenced${bad:+ (late or fenced:$bad)}" [ -z "$bad" ]
	[ "$t_fail" -eq "$f0" ] || show_log s3
	hangs_release
	proc_kill "$VA"
	proc_kill "$VB"
	daemon_stop s3 15
	rc=$?
	check "3: SIGTERM once released: clean exit ($rc)" [ "$rc" -eq 0 ]
	faultfs_stop "$MA"
	faultfs_stop "$MB"
	faultfs_stop "$MC"
}

# --- 4. block storages on loop devices over faultfs files -------------------

# new_loop VAR MNT NAME: a 64 MiB loop device (direct I/O) on MNT/NAME.
new_loop() {
	local loop
	truncate -s 64M "$2/$3" || return 1
	loop=$(losetup --find --show --direct-io=on "$2/$3") || return 1
	on_exit "losetup -d $loop"
	on_exit hangs_release
	printf -v "$1" '%s' "$loop"
}

sc4() {
	local f0=$t_fail M S LD LH VD VH t_dead j rc r
	ff_mount M r4 || { not_ok "4: faultfs mounts"; return; }
	mkdir -p "$OK/ok4"
	new_loop LD "$M" dead.img || { not_ok "4: loop device on faultfs"; return; }
	new_loop LH "$M" hang.img || { not_ok "4: loop device on faultfs"; return; }
	daemon_on s4 s4 --no-bpf || { not_ok "4: daemon starts"; return; }
	S=$SOCK_s4
	arm_storages "$S" h4 "uuid=ok,type=file,target=$OK/ok4,$SPEC" \
		"uuid=bd,type=block,target=$LD,$SPEC" "uuid=bh,type=block,target=$LH,$SPEC" ||
		{ not_ok "4: storages armed"; return; }
	proc_spawn VD 'exec "$QSLEEP" 1000 3<>"$LD"'
	proc_spawn VH 'exec "$QSLEEP" 1000 3<>"$LH"'
	wait_until 10 hb_wrote "$S" bh 5
	check "4: the victims run before the hangs" all_alive "$VD" "$VH"
	qs_watch_start "$S" ok "$T/w4"
	sleep 1
	ff_dead "$M" dead.img
	faultfs_set "$M" hang hang.img
	t_dead=$(now_ms)
	killed_within "4: the dummy VMs holding the loop devices" "$t_dead" "$KILL_BOUND" "$VD" "$VH"
	sleep 1.5
	qs_watch_stop "$T/w4"
	qs_watch_check "4: loop devices hung" "$T/w4" "$IV" "$LATE"
	j=$(journal_of "$S") || not_ok "4: journal"
	fence_check "4: bd (backing file dead)" "$j" bd "$t_dead" "$TMO" "$IV" "$GRACE"
	fence_check "4: bh (backing file hung)" "$j" bh "$t_dead" "$TMO" "$IV" "$GRACE"
	victims_named "4: bd" "$j" bd "$VD"
	victims_named "4: bh" "$j" bh "$VH"
	check "4: the VMs are gone, not stuck in their exit" eval "! proc_alive $VD && ! proc_alive $VH"
	healthy_check "4" "$j" ok
	[ "$t_fail" -eq "$f0" ] || show_log s4
	hangs_release
	proc_kill "$VD"
	proc_kill "$VH"
	daemon_stop s4 15
	rc=$?
	check "4: SIGTERM once released: clean exit ($rc)" [ "$rc" -eq 0 ]
	losetup -d "$LD" "$LH"
	faultfs_stop "$M"
	r=$(leftovers "$M")
	check "4: no loop device nor mount left of the scenario${r:+ ($r)}" [ -z "$r" ]
}

# --- 6. CPU hogs --------------------------------------------------------------

sc6() {
	local f0=$t_fail M S V H1 H2 t_dead j rc
	ff_mount M r6 || { not_ok "6: faultfs mounts"; return; }
	mkdir -p "$OK/ok6" "$M/s6"
	truncate -s 1M "$M/s6/vm.img"
	daemon_on s6 s6 --no-bpf || { not_ok "6: daemon starts"; return; }
	S=$SOCK_s6
	arm_storages "$S" h6 "uuid=ok,type=file,target=$OK/ok6,$SPEC" \
		"uuid=s6,type=file,target=$M/s6,$SPEC" || { not_ok "6: storages armed"; return; }
	proc_spawn V 'exec "$QSLEEP" 1000 3<>"$M/s6/vm.img"'
	wait_until 10 hb_wrote "$S" s6 5
	# One hog per CPU, at normal priority.
	proc_spawn H1 'exec sh -c "while :; do :; done"'
	proc_spawn H2 'exec sh -c "while :; do :; done"'
	check "6: the hogs and the victim run" all_alive "$H1" "$H2" "$V"
	qs_watch_start "$S" ok "$T/w6"
	sleep 3
	ff_dead "$M" s6/.iofence/h6
	t_dead=$(now_ms)
	killed_within "6: the victim, under the hogs" "$t_dead" "$KILL_BOUND" "$V"
	sleep 2
	qs_watch_stop "$T/w6"
	check "6: the hogs still run (they were the load all along)" all_alive "$H1" "$H2"
	proc_kill "$H1"
	proc_kill "$H2"
	qs_watch_check "6: CPU hogs" "$T/w6" "$IV" "$LATE"
	j=$(journal_of "$S") || not_ok "6: journal"
	fence_check "6: s6 under the hogs" "$j" s6 "$t_dead" "$TMO" "$IV" "$GRACE"
	victims_named "6" "$j" s6 "$V"
	healthy_check "6" "$j" ok
	[ "$t_fail" -eq "$f0" ] || show_log s6
	hangs_release
	proc_kill "$V"
	daemon_stop s6 15
	rc=$?
	check "6: SIGTERM once released: clean exit ($rc)" [ "$rc" -eq 0 ]
	faultfs_stop "$M"
}

# --- 6s. a stopped daemon: the core measures its own lag -----------------------

sc6s() {
	local S st j ev rc
	mkdir -p "$OK/ok6s"
	daemon_on s6s s6s --no-bpf || { not_ok "6s: daemon starts"; return; }
	S=$SOCK_s6s
	arm_storages "$S" h6s "uuid=ok,type=file,target=$OK/ok6s,$SPEC" || { not_ok "6s: storage armed"; return; }
	wait_until 5 hb_wrote "$S" ok 3
	# 600 ms stopped: a heartbeat due at least 400 ms before it goes on.
	on_exit "kill -CONT $PID_s6s"
	kill -STOP "$PID_s6s"
	sleep 0.6
	kill -CONT "$PID_s6s"
	sleep 0.5
	st=$(ctl_sock "$S" --json status)
	j=$(journal_of "$S")
	ev=$(jq -c '[.[] | select(.event == "CORE_LAG")][0] // empty' <<<"$j" 2>/dev/null)
	echo "# 6s: after 600 ms stopped: lag $(jq -c .lag <<<"$st"), CORE_LAG ${ev:-none}"
	check "6s: the core reports its lag: CORE_LAG with lag_us >= 300 ms over its threshold_us" \
		jqe '.data.lag_us >= 300000 and .data.threshold_us > 0 and .data.lag_us > .data.threshold_us' <<<"$ev"
	check "6s: query-status shows it (lag.core.worst_us >= 300 ms)" \
		jqe '.lag.core.worst_us >= 300000' <<<"$st"
	daemon_stop s6s 15
	rc=$?
	check "6s: SIGTERM: clean exit ($rc)" [ "$rc" -eq 0 ]
}

# ISO_ONLY="3 6" runs only those.
# shellcheck disable=SC2086
run_scenarios ${ISO_ONLY:-3 4 6 6s}
