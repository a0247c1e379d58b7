#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A process whose /proc entries block must not hold the victim search
# (victims.c, victims_probe.c: each process's reads run on a helper with
# a deadline, and one that passes it is given up on).
#   1 on the fenced storage, a victim stuck in D state holding its mmap
#     lock (helpers/mmap_hold.c, with an fd on the storage too): its
#     cmdline, smaps and environ block. It is found by its fd and killed
#     at once (SIGKILL needs no /proc read), listed, its name given up on;
#     the victims before and after it die, the one after it is still
#     named (its -uuid), and the search completes (before, it sat in the
#     stuck victim's cmdline for as long as the hang lasted: FENCE_FIRED
#     at kill grace with the search unfinished, every later census stuck
#     too). The stuck victim cannot die until the hang ends, so the fence
#     escalates (strategy force). Beside them, another storage's VM
#     stuck the same way, first in /proc order: never a victim, never
#     killed.
#   2 the same stuck victim under strategy permissive, which kills
#     nobody: its cmdline stays blocked. The search reads past it (its
#     name given up on) and names the victim after it; before, every
#     search and census sat in it until the hang ended.
# What blocks in pass 1 (fds, cwd, exe, stat) or in maps (read under
# per-VMA locks on this kernel) cannot be made to block here on purpose:
# the unit tests (test_victims, victims_fake) cover those passes with
# FIFOs in a fake /proc.
# Interval 200 ms, timeout 1 s, kill grace 500 ms. Hung requests leave
# their callers in D state: every cleanup releases the hangs first. Nothing
# here reads a stuck process's cmdline but through timeout(1): ps and
# pgrep -f would block.
. "$(dirname "$0")/isolation.sh"
MMAP_HOLD=${MMAP_HOLD:-$OUT/mmap_hold}
[ -x "$MMAP_HOLD" ] || { not_ok "helper $MMAP_HOLD (make tests)"; exit 1; }
mkdir -p "$T/vmh"
cp "$MMAP_HOLD" "$T/vmh/$VM"
# shellcheck disable=SC2034 # used by the snippets proc_spawn evaluates
QHOLD=$T/vmh/$VM
mkdir -p "$T/vmb"
cp /bin/bash "$T/vmb/$VM"
# shellcheck disable=SC2034 # likewise
QBASH=$T/vmb/$VM

# task_states PID: the states of its threads, e.g. "D D ".
task_states() {
	local f
	for f in /proc/"$1"/task/*/stat; do
		sed -n 's/.*) \(.\).*/\1/p' "$f" 2>/dev/null
	done | sort | tr '\n' ' '
}
# blocks PID ENTRY: reading /proc/PID/ENTRY takes more than a second.
blocks() {
	timeout 1 cat "/proc/$1/$2" >/dev/null 2>&1
	[ $? -eq 124 ]
}
# hold VAR FILE [REDIRECTIONS]: a dummy VM mapping FILE, stuck on it
# (FILE hung, the page faulted in, a writer queued on its mmap lock).
hold() {
	local var=$1 file=$2 out=$T/hold.$RANDOM hpid
	shift 2
	proc_spawn hpid "exec \"\$QHOLD\" '$file' >'$out' $*"
	wait_until 3 grep -qx mapped "$out" || { echo "# holder: $(cat "$out")"; return 1; }
	printf -v "$var" '%s' "$hpid"
	HOLD_OUT=$out
}
stick() { # PID FILE-RELATIVE MOUNT OUT: hang FILE, fault it in, wait
	faultfs_set "$3" hang "$2" || return 1
	kill -USR1 "$1"
	wait_until 3 grep -qx holding "$4" || return 1
	wait_until 3 eval '[ "$(task_states '"$1"')" = "D D " ]'
}

sc1() {
	local f0=$t_fail M B S H V1 VM_ H2 VU U t_dead j ev st rc
	U=7c9e6679-7425-40de-944b-e07fc1f90ae7
	ff_mount M v1 || { not_ok "1: faultfs mounts"; return; }
	ff_mount B b1 || { not_ok "1: the other storage's faultfs mounts"; return; }
	mkdir -p "$OK/ok1" "$M/s1"
	truncate -s 1M "$M/s1/vm1.img" "$M/s1/vm2.img" "$M/s1/vm3.img" "$M/s1/vm4.img"
	# Written behind the mounts: no page of them is cached.
	head -c 65536 /dev/urandom >"$B.backing/mem.img"
	head -c 65536 /dev/urandom >"$M.backing/s1/mem2.img"
	mkfifo "$T/vu.fifo"
	daemon_on s1 s1 --no-bpf || { not_ok "1: daemon starts"; return; }
	S=$SOCK_s1
	arm_storages "$S" h1 "uuid=ok,type=file,target=$OK/ok1,$SPEC" \
		"uuid=s1,type=file,target=$M/s1,$SPEC" || { not_ok "1: storages armed"; return; }
	# /proc order is pid order: the other storage's stuck VM first.
	pids_ascend 5000
	hold H "$B/mem.img" || { not_ok "1: the other storage's VM maps its file"; return; }
	H_OUT=$HOLD_OUT
	proc_spawn V1 'exec "$QSLEEP" 1000 3<>"$M/s1/vm1.img"'
	# Known by its mapping alone (mmap_hold closes its fd).
	hold VM_ "$M/s1/vm2.img" || { not_ok "1: the mapping victim maps its file"; return; }
	# The victim stuck on this storage, with an fd on it too.
	hold H2 "$M/s1/mem2.img" "3<>'$M/s1/vm3.img'" || { not_ok "1: the stuck victim maps its file"; return; }
	H2_OUT=$HOLD_OUT
	# After it: a victim that names its VM (-uuid), as qemu does.
	proc_spawn VU 'exec "$QBASH" -c "read -r -u 5 _" x -uuid "$U" 3<>"$M/s1/vm4.img" 5<>"$T/vu.fifo"'
	check "1: pid order: stuck VM $H, victims $V1 $VM_, stuck victim $H2, victim $VU" \
		eval "[ $H -lt $V1 ] && [ $V1 -lt $VM_ ] && [ $VM_ -lt $H2 ] && [ $H2 -lt $VU ]"
	wait_until 10 hb_wrote "$S" s1 5
	stick "$H" mem.img "$B" "$H_OUT"
	st=$(task_states "$H")
	check "1: the other storage's VM: both threads in D state ($st)" [ "$st" = "D D " ]
	check "1: ... its cmdline blocks (a read waits > 1 s)" blocks "$H" cmdline
	stick "$H2" s1/mem2.img "$M" "$H2_OUT"
	st=$(task_states "$H2")
	check "1: the stuck victim: both threads in D state ($st)" [ "$st" = "D D " ]
	check "1: ... its cmdline blocks" blocks "$H2" cmdline
	qs_watch_start "$S" ok "$T/w1"
	sleep 1

	ff_dead "$M" s1/.iofence/h1
	t_dead=$(now_ms)
	killed_within "1: the victims around the stuck one (fd, mapping, named)" \
		"$t_dead" "$KILL_BOUND" "$V1" "$VM_" "$VU"
	check "1: the stuck victim got its SIGKILL (it dies once released)" \
		wait_until 3 pid_exiting "$H2"
	check "1: FENCE_FIRED" wait_until 5 j_has "$S" FENCE_FIRED s1
	check "1: FENCE_COMPLETED" wait_until 5 j_has "$S" FENCE_COMPLETED s1
	sleep 1
	qs_watch_stop "$T/w1"
	qs_watch_check "1: a stuck VM and a stuck victim" "$T/w1" "$IV" "$LATE"
	j=$(journal_of "$S") || not_ok "1: journal"
	fence_check "1: s1" "$j" s1 "$t_dead" "$TMO" "$IV" "$GRACE"
	ev=$(j_first "$j" FENCE_FIRED s1)
	echo "# 1: FENCE_FIRED scan: $(jq -c '.data.scan' <<<"$ev")"
	echo "# 1: FENCE_FIRED victims: $(jq -c '[.data.victims[] | [.pid, .why, .vm_uuid]]' <<<"$ev")"
	check "1: FENCE_FIRED: the search completed despite the stuck ones" \
		jqe '.data.scan.complete and .data.scan.examined >= 5' <<<"$ev"
	check "1: ... before the kill grace was over (it did not wait for it)" \
		jqe ".data.since_ok_ms < $((TMO + GRACE))" <<<"$ev"
	victims_named "1" "$j" s1 "$V1" "$VM_" "$H2" "$VU"
	check "1: the victim after the stuck one is named ($U)" \
		jqe "[.data.victims[] | select(.pid == $VU and .vm_uuid == \"$U\")] | length == 1" <<<"$ev"
	check "1: the other storage's stuck VM is no victim" \
		eval "! j_victims '$j' s1 | grep -qx $H"
	check "1: ... and was not killed (still in D state, no SIGKILL)" \
		eval "proc_alive $H && ! pid_exiting $H"
	ev=$(j_first "$j" FENCE_ESCALATED s1)
	check "1: a victim that cannot die: FENCE_ESCALATED ($(jq -c .data <<<"$ev"))" \
		jqe '.data.alive >= 1 and .data.search_complete' <<<"$ev"
	healthy_check "1" "$j" ok
	[ "$t_fail" -eq "$f0" ] || show_log s1
	hangs_release
	check "1: released: the stuck victim dies of its SIGKILL" wait_until 5 eval "! proc_alive $H2"
	proc_kill "$H"
	proc_kill "$V1"
	proc_kill "$VM_"
	proc_kill "$H2"
	proc_kill "$VU"
	daemon_stop s1 15
	rc=$?
	check "1: SIGTERM once released: clean exit ($rc)" [ "$rc" -eq 0 ]
	faultfs_stop "$M"
	faultfs_stop "$B"
}

# --- 2. permissive: a stuck victim that nobody kills ---------------------------

sc2() {
	local f0=$t_fail M S H3 VU2 U t_dead j ev rc
	U=3f2504e0-4f89-41d3-9a0c-0305e82c3301
	ff_mount M v2 || { not_ok "2: faultfs mounts"; return; }
	mkdir -p "$OK/ok2" "$M/s2"
	truncate -s 1M "$M/s2/vm1.img" "$M/s2/vm2.img"
	head -c 65536 /dev/urandom >"$M.backing/s2/mem.img"
	mkfifo "$T/vu2.fifo"
	daemon_on s2 s2 --no-bpf || { not_ok "2: daemon starts"; return; }
	S=$SOCK_s2
	arm_storages "$S" h2 "uuid=ok,type=file,target=$OK/ok2,$SPEC" \
		"uuid=s2,type=file,target=$M/s2,${SPEC/strategy=force/strategy=permissive}" ||
		{ not_ok "2: storages armed"; return; }
	pids_ascend 5000
	hold H3 "$M/s2/mem.img" "3<>'$M/s2/vm1.img'" || { not_ok "2: the stuck victim maps its file"; return; }
	stick "$H3" s2/mem.img "$M" "$HOLD_OUT"
	check "2: the stuck victim: D state, cmdline blocks" \
		eval "[ \"\$(task_states $H3)\" = 'D D ' ] && blocks $H3 cmdline"
	# Started once the first is stuck: no search read its name before.
	proc_spawn VU2 'exec "$QBASH" -c "read -r -u 5 _" x -uuid "$U" 3<>"$M/s2/vm2.img" 5<>"$T/vu2.fifo"'
	check "2: pid order: stuck victim $H3, then victim $VU2" [ "$H3" -lt "$VU2" ]
	wait_until 10 hb_wrote "$S" s2 5
	sleep 0.5

	ff_dead "$M" s2/.iofence/h2
	t_dead=$(now_ms)
	check "2: FENCE_FIRED" wait_until 5 j_has "$S" FENCE_FIRED s2
	j=$(journal_of "$S") || not_ok "2: journal"
	ev=$(j_first "$j" FENCE_FIRED s2)
	echo "# 2: FENCE_FIRED $(ms_since "$t_dead") ms after the break: scan $(jq -c '.data.scan' <<<"$ev"), victims $(jq -c '[.data.victims[] | [.pid, .result, .vm_uuid]]' <<<"$ev")"
	check "2: the search completed, past the stuck victim's command line" \
		jqe '.data.scan.complete' <<<"$ev"
	check "2: ... and did not wait for the kill grace" \
		jqe ".data.since_ok_ms < $((TMO + GRACE))" <<<"$ev"
	check "2: both victims listed as spared, the second named ($U)" \
		jqe "([.data.victims[] | select(.result == \"spared\")] | length == 2) and
		     ([.data.victims[] | select(.pid == $H3)] | length == 1) and
		     ([.data.victims[] | select(.pid == $VU2 and .vm_uuid == \"$U\")] | length == 1)" <<<"$ev"
	check "2: permissive: nobody killed" eval "proc_alive $H3 && ! pid_exiting $H3 && proc_alive $VU2"
	healthy_check "2" "$j" ok
	[ "$t_fail" -eq "$f0" ] || show_log s2
	hangs_release
	proc_kill "$H3"
	proc_kill "$VU2"
	daemon_stop s2 15
	rc=$?
	check "2: SIGTERM once released: clean exit ($rc)" [ "$rc" -eq 0 ]
	faultfs_stop "$M"
}

# VB_ONLY="1" runs only those.
# shellcheck disable=SC2086
run_scenarios ${VB_ONLY:-1 2}
