#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A storage taken away under an armed fencer, and memory pressure (issue
# 12, faults):
#   1 a file storage's mount unmounted lazily (umount -l) while armed,
#     with a dummy VM holding a file on it;
#   2 an armed loop device detached (losetup -d), then the daemon killed
#     and restarted, which finds the device gone;
#   3 the daemon in a memory cgroup at its limit, a process beside it
#     allocating until the cgroup's OOM killer ends it, again and again:
#     its heartbeats keep their interval (measured), its memory locked
#     (mlockall as root). A daemon that could not lock it (a sanitizer
#     build) must say so, and the bound is skipped.
. "$(dirname "$0")/isolation.sh"
export LC_ALL=C
NOBODY=victims=iofence-test-nobody

# --- 1. umount -l under an armed fencer ---------------------------------------

sc1() {
	local M=$T/mnt/u S out v st
	mkdir -p "$M" "$T/s/ok1"
	mount -t tmpfs -o size=4m iofence-test-faults "$M" || { not_ok "1: a tmpfs to arm"; return; }
	on_exit "umount -l '$M'"
	mkdir -p "$M/u"
	truncate -s 1M "$M/u/vm.img"
	daemon_on u1 u1 --no-bpf || { not_ok "1: daemon starts"; return; }
	S=$SOCK_u1
	arm_storages "$S" h1 "uuid=u,type=file,target=$M/u,$SPEC" \
		"uuid=ok1,type=file,target=$T/s/ok1,interval_ms=$IV,$NOBODY" || { not_ok "1: armed"; return; }
	proc_spawn v 'exec "$QSLEEP" 1000 3<>"$M/u/vm.img"'
	wait_until 5 hb_wrote "$S" u 3
	umount -l "$M" || { not_ok "1: umount -l"; return; }
	on_exit_drop "umount -l '$M'"
	check "1: the mount is gone from the mount table" eval '! mountpoint -q "$M"'
	check "1: the daemon logs that the target is no longer the file system it armed" \
		wait_until 8 grep -q "u: target $M/u is no longer the file system armed" "$T/u1.log"
	check "1: ... and journals TARGET_CHANGED" wait_until 3 j_has "$S" TARGET_CHANGED u
	echo "# 1: $(journal_of "$S" | jq -c '[.[] | select(.event == "TARGET_CHANGED")][0].data')"
	st=$(hb_of "$S" u | jqr .state)
	check "1: its heartbeats go on, on the detached file system the dummy VM still writes to (state $st)" \
		eval 'hb_grows "$S" u && [ "$st" = healthy ]'
	check "1: the dummy VM, still on it, is not killed (nothing failed)" proc_alive "$v"
	check "1: the healthy storage stays healthy" eval '[ "$(hb_of "$S" ok1 | jqr .state)" = healthy ]'
	out=$(ctl_sock "$S" --json teardown --host h1 --storage u 2>&1)
	check "1: a teardown still disarms it" eval '[ "$(jqr ".storages[0].result" <<<"$out")" = disarmed ]'
	proc_kill "$v"
	daemon_stop u1 10
	check "1: a clean stop" [ $? -eq 0 ]
}
hb_grows() {
	local n
	n=$(hb_of "$1" "$2" | jqr '.writes_ok // 0')
	wait_until 5 hb_wrote "$1" "$2" $((n + 3))
}

# --- 2. losetup -d of an armed loop device ----------------------------------------

sc2() {
	local L S out ac j
	L=$(make_loop "$T/disk.img" 16M) || { not_ok "2: loop device"; return; }
	mkdir -p "$T/s/ok2"
	daemon_on l1 l --no-bpf || { not_ok "2: daemon starts"; return; }
	S=$SOCK_l1
	arm_storages "$S" h1 "uuid=l,type=block,target=$L,interval_ms=$IV,timeout_ms=1000,kill_grace_ms=300,$NOBODY" \
		"uuid=ok2,type=file,target=$T/s/ok2,interval_ms=$IV,$NOBODY" || { not_ok "2: armed"; return; }
	wait_until 5 hb_wrote "$S" l 3
	losetup -d "$L"
	ac=$(cat "/sys/block/${L##*/}/loop/autoclear" 2>/dev/null)
	echo "# 2: after losetup -d $L, held open by the daemon: autoclear ${ac:-gone}"
	check "2: the device is detached once its last user closes it: the daemon's heartbeats still reach it" hb_grows "$S" l
	check "2: the daemon logs that the loop device is being detached" \
		wait_until 8 grep -q "l: loop device $L is detached once closed (losetup -d)" "$T/l1.log"
	check "2: ... and journals TARGET_CHANGED" wait_until 3 j_has "$S" TARGET_CHANGED l
	echo "# 2: $(journal_of "$S" | jq -c '[.[] | select(.event == "TARGET_CHANGED")][0].data')"
	# The daemon dies: its fd closes, the device goes; the restart finds
	# it gone.
	kill -KILL "$PID_l1"
	wait "$PID_l1" 2>/dev/null
	wait_until 5 eval '[ ! -e "/sys/block/${L##*/}/loop/backing_file" ]'
	check "2: with the daemon gone, the loop device is detached" [ ! -e "/sys/block/${L##*/}/loop/backing_file" ]
	daemon_on l2 l --no-bpf || { not_ok "2: restart"; return; }
	S=$SOCK_l2
	j=$(journal_of "$S")
	check "2: restarted: REARM_FAILED for the storage whose device is gone" \
		[ "$(j_count "$j" REARM_FAILED l)" -ge 1 ]
	check "2: ... logged with the reason: $(grep -m1 're-arm l:' "$T/l2.log")" grep -q "re-arm l: " "$T/l2.log"
	out=$(ctl_sock "$S" --json status)
	check "2: it is kept, listed unarmed, not forgotten" \
		jqe '[.unarmed[]? | (.uuid // .params.uuid)] | index("l") != null' <<<"$out"
	check "2: the other storage is re-armed and healthy" \
		eval 'wait_until 3 eval "[ \"\$(hb_of \"$S\" ok2 | jqr .state)\" = healthy ]"'
	out=$(ctl_sock "$S" --json teardown --host h1 --storage l 2>&1)
	check "2: a teardown lets it go" eval '! ctl_sock "$S" --json status | jqe "[.unarmed[]? | (.uuid // .params.uuid)] | index(\"l\") != null"'
	daemon_stop l2 10
}

# --- 3. memory pressure ---------------------------------------------------------------

# The memory cgroup this shell is in, and how to limit one: v2
# (memory.max) or v1 (memory.limit_in_bytes).
mem_cgroup() {
	local p
	p=$(sed -n 's/^0::\(.*\)/\1/p' /proc/self/cgroup)
	for root in /sys/fs/cgroup /sys/fs/cgroup/unified; do
		if [ -n "$p" ] && grep -qw memory "$root/cgroup.controllers" 2>/dev/null &&
			[ -w "$root${p%/}" ]; then
			CG_BASE=$root${p%/} CG_MAX=memory.max CG_CUR=memory.current CG_EV=memory.events
			return 0
		fi
	done
	p=$(sed -n 's/^[0-9]*:memory:\(.*\)/\1/p' /proc/self/cgroup)
	if [ -n "$p" ] && [ -d "/sys/fs/cgroup/memory${p%/}" ]; then
		CG_BASE=/sys/fs/cgroup/memory${p%/} CG_MAX=memory.limit_in_bytes CG_CUR=memory.usage_in_bytes CG_EV=memory.failcnt
		return 0
	fi
	return 1
}

sc3() {
	local cg S use lim hog pid mj0 mj1 ev0 ev1 j kills
	command -v python3 >/dev/null || { skip "3: python3 (the memory hog) is missing"; return; }
	mem_cgroup || { skip "3: no memory cgroup to make a child of"; return; }
	# A child of our own cgroup: within whatever limit ours has.
	cg=$CG_BASE/iofence-test-faults-$$
	mkdir "$cg" || { skip "3: cannot make a memory cgroup under $CG_BASE"; return; }
	on_exit "rmdir '$cg'"
	[ "$CG_MAX" = memory.max ] && [ -w "$cg/memory.swap.max" ] && echo 0 >"$cg/memory.swap.max"
	# The daemon starts inside it: everything it maps is charged there.
	cat >"$T/in_cg" <<-EOF
		#!/bin/sh
		echo \$\$ >"$cg/cgroup.procs" || exit 1
		exec "$IOFENCED" "\$@"
	EOF
	chmod +x "$T/in_cg"
	mkdir -p "$T/s/m1"
	IOFENCED=$T/in_cg daemon_on m m --no-bpf || { not_ok "3: daemon starts in $cg"; return; }
	S=$SOCK_m
	# The unit sets OOMScoreAdjust=-1000; where lowering it is not
	# permitted (a sandbox), the hog is made the OOM killer's pick instead.
	echo -1000 >"/proc/$PID_m/oom_score_adj" 2>/dev/null ||
		echo "# 3: oom_score_adj -1000 is not permitted here; the hog gets +1000"
	arm_storages "$S" h1 "uuid=m1,type=file,target=$T/s/m1,interval_ms=$IV,timeout_ms=$TMO,$NOBODY" ||
		{ not_ok "3: m1 armed"; return; }
	# What this scenario claims holds for a daemon whose memory is
	# locked. One that could not lock it (a sanitizer build: its runtime
	# makes mlockall a no-op, and its quarantine takes fresh pages at
	# every free) must have said so; at the limit it waits for
	# memory, and the OOM cycles beside it starve the tests running
	# alongside.
	if [ "$(awk '/VmLck/ { print $2 }' "/proc/$PID_m/status")" = 0 ]; then
		check "3: memory not locked: the daemon says so, and why" \
			grep -q "mlockall: .*memory pressure may delay a fence" "$T/m.log"
		skip "3: the daemon's memory is not locked ($(grep -o 'mlockall: [^;]*' "$T/m.log" | head -1)): no heartbeat bound at the limit"
		daemon_stop m 10
		return
	fi
	wait_until 5 hb_wrote "$S" m1 5
	sleep 1
	use=$(cat "$cg/$CG_CUR")
	# Room for the hog: with oom_score_adj +1000 its badness is its RSS
	# plus the limit, above the daemon's (RSS file pages included).
	lim=$((use + 64 * 1024 * 1024))
	echo "$lim" >"$cg/$CG_MAX" || { not_ok "3: set $CG_MAX"; return; }
	echo "# 3: $cg: the daemon uses $((use / 1024)) KiB; limit $CG_MAX $((lim / 1024)) KiB; VmLck $(awk '/VmLck/ { print $2 }' "/proc/$PID_m/status") KiB"
	mj0=$(awk '{ print $12 }' "/proc/$PID_m/stat")
	ev0=$(cat "$cg/$CG_EV" | tr '\n' ' ')
	qs_watch_start "$S" m1 "$T/wm"
	# The hog: in the same cgroup, allocating and touching 1 MiB at a
	# time until the OOM killer ends it; started again until the time is up.
	(
		trap - EXIT
		exec 2>/dev/null
		end=$(($(mono_ms) + 8000))
		while [ "$(mono_ms)" -lt "$end" ]; do
			sh -c "echo \$\$ >'$cg/cgroup.procs' && echo 1000 >/proc/\$\$/oom_score_adj && exec python3 -c '
a = []
while True:
    a.append(b\"x\" * (1 << 20))
'" >/dev/null 2>&1
			echo x >>"$T/hog.kills"
		done
	) &
	hog=$!
	wait "$hog"
	qs_watch_stop "$T/wm"
	mj1=$(awk '{ print $12 }' "/proc/$PID_m/stat")
	ev1=$(cat "$cg/$CG_EV" | tr '\n' ' ')
	kills=$(wc -l <"$T/hog.kills" 2>/dev/null)
	echo "# 3: 8 s at the limit: the hog was ended $kills times; $CG_EV before: $ev0; after: $ev1; the daemon's major faults $mj0 -> $mj1"
	check "3: the daemon survives the pressure" pid_alive "$PID_m"
	check "3: the hog reached the limit (it was ended ${kills:-0} times)" [ "${kills:-0}" -ge 2 ]
	qs_watch_check "3: at the memory limit" "$T/wm" "$IV" $((2 * IV))
	j=$(journal_of "$S")
	healthy_check "3" "$j" m1
	echo "# 3: heartbeat at the end: $(hb_of "$S" m1 | jq -c '{writes_ok, latency_us, jitter_us}')"
	echo max >"$cg/$CG_MAX" 2>/dev/null || echo -1 >"$cg/$CG_MAX"
	daemon_stop m 10
}

sc1
sc2
sc3
