#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Nothing stalls the fencing (issue 8): victim searches among processes
# that resist being read, next to a healthy storage that must never notice
# and a client that keeps asking query-status.
#   7 a process that root cannot read: its executable lies deeper than
#     PATH_MAX, so readlink of /proc/PID/exe fails (ENAMETOOLONG) for
#     anyone. (Root passes every permission check on /proc; the other way
#     to refuse it, an LSM, is not loadable on every machine: BPF LSM and
#     fentry programs are refused on the test VM.) The victims before and
#     after it in /proc still die, the fence counts the skip.
#   8 a dummy VM in D state holding its mmap lock: a thread faults in a page
#     of a file on a hung FUSE mount through /proc/self/mem (no way to drop
#     the lock while waiting), another waits in mmap() to take it for
#     writing, so every reader of its cmdline, environ or smaps blocks
#     (helpers/mmap_hold.c). The other victims of the storage die on time.
# Interval 200 ms, timeout 1 s, kill grace 500 ms. Hung requests leave
# their callers in D state: every cleanup releases the hangs first. Nothing
# here reads a process's cmdline: ps and pgrep -f would block on scenario 8.
. "$(dirname "$0")/isolation.sh"
MMAP_HOLD=${MMAP_HOLD:-$OUT/mmap_hold}
mkdir -p "$T/vmh"
QHOLD=
[ -x "$MMAP_HOLD" ] && cp "$MMAP_HOLD" "$T/vmh/$VM" && QHOLD=$T/vmh/$VM

# --- 7. a process that cannot be read -----------------------------------------

# A directory deeper than PATH_MAX, made one component at a time.
DEEP_NAME=$(printf 'd%.0s' {1..250})
DEEP_N=18
deep_cd() { # cd into the deep directory, making it on the way
	local i
	cd "$T" || return 1
	mkdir -p deep && cd deep || return 1
	for ((i = 0; i < DEEP_N; i++)); do
		mkdir -p "$DEEP_NAME" && cd "$DEEP_NAME" || return 1
	done
}

sc7() {
	local f0=$t_fail M S V1 U V2 t_dead j ev why rc
	ff_mount M r7 || { not_ok "7: faultfs mounts"; return; }
	mkdir -p "$OK/ok7" "$M/s7"
	truncate -s 1M "$M/s7/vm1.img" "$M/s7/vm2.img" "$T/u.img"
	(deep_cd && cp "$QSLEEP" "./$VM") || { not_ok "7: a binary deeper than PATH_MAX"; return; }
	daemon_on s7 s7 --no-bpf || { not_ok "7: daemon starts"; return; }
	S=$SOCK_s7
	arm_storages "$S" h7 "uuid=ok,type=file,target=$OK/ok7,$SPEC" \
		"uuid=s7,type=file,target=$M/s7,$SPEC" || { not_ok "7: storages armed"; return; }
	# /proc order is pid order: one victim before the unreadable process,
	# one after it. U holds a file elsewhere: it is no victim.
	pids_ascend 5000
	proc_spawn V1 'exec "$QSLEEP" 1000 3<>"$M/s7/vm1.img"'
	# A relative exec (env's), so that nothing needs the long path.
	proc_spawn U 'deep_cd && exec env ./"$VM" 1000 3<>"$T/u.img"'
	proc_spawn V2 'exec "$QSLEEP" 1000 3<>"$M/s7/vm2.img"'
	# Its name is readable (comm), its executable not.
	wait_until 3 eval "[ \"\$(cat /proc/$U/comm 2>/dev/null)\" = $VM ]"
	why=$(readlink -v "/proc/$U/exe" 2>&1 >/dev/null)
	echo "# 7: readlink /proc/$U/exe as root: ${why:-succeeded}"
	check "7: root cannot read the executable of process $U (comm $(cat "/proc/$U/comm" 2>/dev/null))" \
		eval "! readlink /proc/$U/exe >/dev/null 2>&1 && [ \"\$(cat /proc/$U/comm 2>/dev/null)\" = $VM ]"
	check "7: the victims and the unreadable process run, in pid order" \
		eval "all_alive $V1 $U $V2 && [ $V1 -lt $U ] && [ $U -lt $V2 ]"
	wait_until 10 hb_wrote "$S" s7 5
	qs_watch_start "$S" ok "$T/w7"
	sleep 1
	ff_dead "$M" s7/.iofence/h7
	t_dead=$(now_ms)
	killed_within "7: the victims before and after the unreadable process" "$t_dead" "$KILL_BOUND" "$V1" "$V2"
	sleep 1.5
	qs_watch_stop "$T/w7"
	qs_watch_check "7: an unreadable process" "$T/w7" "$IV" "$LATE"
	check "7: the unreadable process, on no storage, still runs" proc_alive "$U"
	j=$(journal_of "$S") || not_ok "7: journal"
	fence_check "7: s7" "$j" s7 "$t_dead" "$TMO" "$IV" "$GRACE"
	ev=$(j_first "$j" FENCE_FIRED s7)
	echo "# 7: FENCE_FIRED scan: $(jq -c '.data.scan' <<<"$ev")"
	check "7: FENCE_FIRED counts the unreadable process as skipped (scan.skipped >= 1)" \
		jqe '.data.scan.skipped >= 1' <<<"$ev"
	check "7: ... and says why (scan.last_error)" \
		jqe '.data.scan.last_error | type == "string" and length > 0' <<<"$ev"
	victims_named "7" "$j" s7 "$V1" "$V2"
	healthy_check "7" "$j" ok
	[ "$t_fail" -eq "$f0" ] || show_log s7
	hangs_release
	proc_kill "$V1"
	proc_kill "$U"
	proc_kill "$V2"
	daemon_stop s7 15
	rc=$?
	check "7: SIGTERM once released: clean exit ($rc)" [ "$rc" -eq 0 ]
	faultfs_stop "$M"
}

# --- 8. a victim in D state holding its mmap lock -----------------------------

# task_states PID: the states of its threads, e.g. "D D".
task_states() {
	local f
	for f in /proc/"$1"/task/*/stat; do
		sed -n 's/.*) \(.\).*/\1/p' "$f" 2>/dev/null
	done | sort | tr '\n' ' '
}

sc8() {
	local f0=$t_fail M S V1 H V2 t_dead j rc st
	if [ -z "$QHOLD" ]; then
		not_ok "8: helper $MMAP_HOLD (make tests)"
		return
	fi
	ff_mount M r8 || { not_ok "8: faultfs mounts"; return; }
	mkdir -p "$OK/ok8" "$M/s8"
	truncate -s 1M "$M/s8/vm1.img" "$M/s8/vm2.img"
	# Written behind the mount: no page of it is cached.
	head -c 65536 /dev/urandom >"$M.backing/s8/mem.img"
	daemon_on s8 s8 --no-bpf || { not_ok "8: daemon starts"; return; }
	S=$SOCK_s8
	arm_storages "$S" h8 "uuid=ok,type=file,target=$OK/ok8,$SPEC" \
		"uuid=s8,type=file,target=$M/s8,$SPEC" || { not_ok "8: storages armed"; return; }
	pids_ascend 5000
	proc_spawn V1 'exec "$QSLEEP" 1000 3<>"$M/s8/vm1.img"'
	proc_spawn H 'exec "$QHOLD" "$M/s8/mem.img" >"$T/hold.out"'
	proc_spawn V2 'exec "$QSLEEP" 1000 3<>"$M/s8/vm2.img"'
	check "8: the holder maps its file" wait_until 3 grep -qx mapped "$T/hold.out"
	wait_until 10 hb_wrote "$S" s8 5
	check "8: the victims run, in pid order around the holder" \
		eval "all_alive $V1 $H $V2 && [ $V1 -lt $H ] && [ $H -lt $V2 ]"
	qs_watch_start "$S" ok "$T/w8"
	sleep 1

	faultfs_set "$M" hang s8/mem.img
	kill -USR1 "$H"
	check "8: the holder faults in its page, and waits" wait_until 3 grep -qx holding "$T/hold.out"
	wait_until 3 eval '[ "$(task_states '"$H"')" = "D D " ]'
	st=$(task_states "$H")
	check "8: both of its threads in D state ($st)" [ "$st" = "D D " ]
	timeout 1 cat "/proc/$H/cmdline" >/dev/null 2>&1
	rc=$?
	check "8: its mmap lock is taken: a reader of its cmdline blocks (timeout: $rc)" [ "$rc" -eq 124 ]

	ff_dead "$M" s8/.iofence/h8
	t_dead=$(now_ms)
	killed_within "8: the other victims of the storage" "$t_dead" "$KILL_BOUND" "$V1" "$V2"
	sleep 1.5
	qs_watch_stop "$T/w8"
	qs_watch_check "8: a victim holding its mmap lock" "$T/w8" "$IV" "$LATE"
	echo "# 8: the holder, after the fence: $(task_states "$H")(killed: $(pid_exiting "$H" && echo yes || echo no))"
	j=$(journal_of "$S") || not_ok "8: journal"
	fence_check "8: s8" "$j" s8 "$t_dead" "$TMO" "$IV" "$GRACE"
	victims_named "8" "$j" s8 "$V1" "$V2"
	healthy_check "8" "$j" ok
	[ "$t_fail" -eq "$f0" ] || show_log s8
	hangs_release
	check "8: released: the holder dies (of the fence's SIGKILL, or ours)" \
		eval "proc_kill $H; ! proc_alive $H"
	proc_kill "$V1"
	proc_kill "$V2"
	daemon_stop s8 15
	rc=$?
	check "8: SIGTERM once released: clean exit ($rc)" [ "$rc" -eq 0 ]
	faultfs_stop "$M"
}

# ISO_ONLY="8" runs only those.
# shellcheck disable=SC2086
run_scenarios ${ISO_ONLY:-7 8}
