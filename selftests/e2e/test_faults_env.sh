#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The daemon's surroundings fail (issue 12, faults); each gets a clear log
# line and an event, and nothing unsafe happens:
#   1 the state dir full (a 64 KiB tmpfs) and read-only (an ext4 that
#     turned itself read-only on an error, errors=remount-ro): a
#     setup or teardown that cannot be persisted is refused, says why, and
#     is rolled back; what was armed stays armed, its heartbeats go on;
#   2 bpffs missing: a pin dir that is not on bpffs, and bpffs unmounted
#     in a private mount namespace: the tracker is off (DEGRADED, with
#     the reason), heartbeats and fencing go on;
#   3 tracefs missing (unmounted in a private mount namespace): the
#     tracker needs none, and loads as it does with it;
#   4 the watchdog: a missing device named on the command line (refused
#     at start), the default one absent (DEGRADED), a device whose writes
#     fail (a file on faultfs: EIO; a FIFO nobody reads, full: EAGAIN,
#     never EPIPE, since the daemon holds it open read-write):
#     WATCHDOG_FAILING once, WATCHDOG_RESTORED once they go through;
#   5 the wall clock stepped back and forward by an hour, for the daemon
#     alone (an LD_PRELOAD shim: stepping the host's clock would break
#     every other test running on it): no deadline moves; and no timer
#     of the sources runs on CLOCK_REALTIME.
. "$(dirname "$0")/../lib.sh"
need_root
FAULTFS=${FAULTFS:-$OUT/faultfs}
# shellcheck source=../faultfs/faultfs.sh
. "$(dirname "$0")/../faultfs/faultfs.sh"
export LC_ALL=C
for need in jq unshare mount; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done
NOBODY=victims=iofence-test-nobody
IV=200
mkdir -p "$T/s"

# small_fs DIR SIZE [options]: a tmpfs of its own on DIR, unmounted at exit.
small_fs() {
	mkdir -p "$1"
	mount -t tmpfs -o "size=$2${3:+,$3}" "iofence-test-faults" "$1" || return 1
	on_exit "umount -l '$1'"
}
# fill DIR: its file system full, with DIR/filler.
fill() {
	dd if=/dev/zero of="$1/filler" bs=4k 2>/dev/null
	dd if=/dev/zero of="$1/filler2" bs=512 2>/dev/null
	return 0
}
armed_set() { ctl_sock "$1" --json status | jqr '[.storages[].uuid] | sort | join(" ")'; }
# hb_grows SOCK UUID: its successful writes grow by 3 within 5 s.
hb_grows() {
	local n
	n=$(hb_of "$1" "$2" | jqr '.writes_ok // 0')
	wait_until 5 hb_wrote "$1" "$2" $((n + 3))
}
# degraded SOCK PART: the journal holds DEGRADED of PART; prints its reason.
degraded() {
	journal_of "$1" | jq -er --arg p "$2" '[.[] | select(.event == "DEGRADED" and .data.part == $p)][0].data.reason'
}

# --- 1. the state dir full, then read-only --------------------------------------

sc1() {
	local S out
	small_fs "$T/full" 64k || { not_ok "1: a 64 KiB tmpfs"; return; }
	mkdir -p "$T/full/state" "$T/s/e1" "$T/s/e2"
	ln -s "$T/full/state" "$T/e.state"
	daemon_on e e --no-bpf || { not_ok "1: daemon starts"; return; }
	S=$SOCK_e
	arm_storages "$S" h1 "uuid=e1,type=file,target=$T/s/e1,interval_ms=$IV,$NOBODY" ||
		{ not_ok "1: e1 armed"; return; }
	cp "$T/full/state/state" "$T/state.before"
	fill "$T/full"
	echo "# 1: the state dir's file system: $(df -k --output=size,used,avail "$T/full" | tail -1) (KiB)"
	out=$(ctl_sock "$S" --json setup --host h1 --storage "uuid=e2,type=file,target=$T/s/e2,interval_ms=$IV,$NOBODY" 2>/dev/null | jq -c .)
	echo "# 1: setup with the state dir full: $out"
	check "1 full: the setup is refused, ArmingFailed" grep -q ArmingFailed <<<"$out"
	check "1 full: ... saying why (No space left on device) and that it was rolled back" \
		eval 'grep -q "No space left on device" <<<"$out" && grep -q "rolled back" <<<"$out"'
	check "1 full: the log says which step of the state write failed" \
		grep -q "state: write state.tmp in .*: No space left on device" "$T/e.log"
	check "1 full: nothing half-armed: the armed set is e1 alone" [ "$(armed_set "$S")" = e1 ]
	out=$(ctl_sock "$S" --json teardown --host h1 --storage e1 2>&1)
	check "1 full: a teardown is refused too, and rolled back: e1 stays armed" \
		eval 'grep -q "rolled back" <<<"$out" && [ "$(armed_set "$S")" = e1 ]'
	check "1 full: e1's heartbeats go on" hb_grows "$S" e1
	check "1 full: the state file is the one before" cmp -s "$T/full/state/state" "$T/state.before"
	rm -f "$T/full/filler" "$T/full/filler2"
	check "1 full: with room again, the setup arms e2" \
		arm_storages "$S" h1 "uuid=e2,type=file,target=$T/s/e2,interval_ms=$IV,$NOBODY"

	out=$(ctl_sock "$S" --json teardown --host h1 --storage e2 2>&1)
	check "1 full: room again, a teardown goes through" [ "$(armed_set "$S")" = e1 ]
	daemon_stop e 10
	check "1 full: a clean stop" [ $? -eq 0 ]
}

# Read-only: the daemon holds its state lock open for writing, so a
# remount is refused; an ext4 that turns itself read-only on an I/O error
# (errors=remount-ro, as a failing disk does) is not. Its disk: a loop
# device on a faultfs file that is made to fail.
sc1ro() {
	local S out L FM
	command -v mkfs.ext4 >/dev/null || { skip "1 ro: mkfs.ext4 is missing"; return; }
	ff_mount FM rodisk || { not_ok "1 ro: faultfs mounts"; return; }
	L=$(make_loop "$FM/ro.img" 16M) || { not_ok "1 ro: a loop device"; return; }
	on_exit "losetup -d $L"
	mkfs.ext4 -q "$L" && mkdir -p "$T/rofs" && mount -o errors=remount-ro,commit=1 "$L" "$T/rofs" ||
		{ not_ok "1 ro: ext4 on $L"; return; }
	on_exit "umount -l '$T/rofs'"
	mkdir -p "$T/rofs/state" "$T/s/r1" "$T/s/r2" "$T/s/r3"
	ln -s "$T/rofs/state" "$T/r.state"
	daemon_on r r --no-bpf || { not_ok "1 ro: daemon starts"; return; }
	S=$SOCK_r
	arm_storages "$S" h1 "uuid=r1,type=file,target=$T/s/r1,interval_ms=$IV,$NOBODY" \
		"uuid=r2,type=file,target=$T/s/r2,interval_ms=$IV,$NOBODY" || { not_ok "1 ro: armed"; return; }
	faultfs_set "$FM" eio ro.img
	out=$(ctl_sock "$S" --json teardown --host h1 --storage r2 2>/dev/null | jq -c . 2>/dev/null)
	echo "# 1 ro: teardown as the disk fails: $out"
	check "1 ro: a teardown whose state write fails is refused, rolled back" grep -q "rolled back" <<<"$out"
	# The journal's next commit fails too: ext4 aborts, read-only.
	timeout 5 sh -c "mkdir '$T/rofs/x' && sync -f '$T/rofs/x'" 2>/dev/null
	rofs() { ! touch "$T/rofs/state/probe" 2>&1 | grep -q "Read-only file system" && return 1; return 0; }
	wait_until 5 rofs
	check "1 ro: ext4 turned read-only: $(touch "$T/rofs/state/probe" 2>&1)" rofs
	faultfs_set "$FM" healthy ro.img
	out=$(ctl_sock "$S" --json setup --host h1 --storage "uuid=r3,type=file,target=$T/s/r3,interval_ms=$IV,$NOBODY" 2>/dev/null | jq -c . 2>/dev/null)
	echo "# 1 ro: setup with the state dir read-only: $out"
	check "1 ro: a setup is refused (Read-only file system), rolled back" \
		eval 'grep -q "Read-only file system" <<<"$out" && grep -q "rolled back" <<<"$out"'
	check "1 ro: r1 and r2 stay armed, nothing else" [ "$(armed_set "$S")" = "r1 r2" ]
	check "1 ro: their heartbeats go on" eval 'hb_grows "$S" r1 && hb_grows "$S" r2'
	check "1 ro: query-status answers, both healthy" \
		eval '[ "$(ctl_sock "$S" --json status | jqr "[.storages[].heartbeat.state] | unique | join(\",\")")" = healthy ]'
	daemon_stop r 10
	umount "$T/rofs"
	on_exit_drop "umount -l '$T/rofs'"
}

# --- 2. bpffs missing ---------------------------------------------------------------

sc2() {
	local S why nsout
	mkdir -p "$T/notbpf" "$T/s/b1"
	daemon_on b b --pin-dir "$T/notbpf/iofence" || { not_ok "2: daemon starts with a pin dir off bpffs"; return; }
	S=$SOCK_b
	check "2 off bpffs: the log says the tracker is off and why" \
		grep -q "BPF tracker off.*the pin dir $T/notbpf/iofence is not on bpffs" "$T/b.log"
	why=$(degraded "$S" bpf_tracker)
	check "2 off bpffs: DEGRADED bpf_tracker in the journal: $why" grep -q "not on bpffs" <<<"$why"
	check "2 off bpffs: nothing left in the pin dir's place" [ ! -e "$T/notbpf/iofence" ]
	check "2 off bpffs: a storage arms and heartbeats" \
		eval 'arm_storages "$S" h1 "uuid=b1,type=file,target=$T/s/b1,interval_ms=$IV,$NOBODY" && hb_grows "$S" b1'
	check "2 off bpffs: query-status: no kernel evidence for it (io: $(ctl_sock "$S" --json status | jq -c ".storages[0].io"))" \
		eval 'ctl_sock "$S" --json status | jqe ".storages[0].io.tracked != true"'
	daemon_stop b 10

	# bpffs unmounted in a mount namespace of the daemon's own.
	if ! mountpoint -q /sys/fs/bpf; then
		skip "2 ns: bpffs is not mounted here to begin with"
		return
	fi
	nsout=$(unshare -m --propagation private sh -c "umount /sys/fs/bpf && ! mountpoint -q /sys/fs/bpf && exec '$IOFENCED' --foreground --socket '$T/bn.sock' --state-dir '$T/bn.state' --watchdog none --pin-dir /sys/fs/bpf/iofence-test-faults-env-$$ --check-config" 2>&1)
	check "2 ns: bpffs can be unmounted in a private mount namespace" [ $? -eq 0 ]
	unshare -m --propagation private sh -c "umount /sys/fs/bpf && exec '$IOFENCED' --foreground --socket '$T/bn.sock' --state-dir '$T/bn.state' --watchdog none --pin-dir /sys/fs/bpf/iofence-test-faults-env-$$" >"$T/bn.log" 2>&1 &
	local pid=$!
	on_exit "kill -KILL $pid; wait $pid"
	if ! daemon_answers bn "$T/bn.sock" "$pid" "$T/bn.log" 10; then
		not_ok "2 ns: the daemon starts without bpffs" "$nsout"
		return
	fi
	check "2 ns: the log says the tracker is off, and asks for bpffs" \
		grep -q "BPF tracker off.*is bpffs mounted on /sys/fs/bpf" "$T/bn.log"
	why=$(degraded "$T/bn.sock" bpf_tracker)
	check "2 ns: DEGRADED bpf_tracker: $why" grep -q "bpffs" <<<"$why"
	check "2 ns: a storage arms and heartbeats" \
		eval 'arm_storages "$T/bn.sock" h1 "uuid=b1,type=file,target=$T/s/b1,interval_ms=$IV,$NOBODY" && hb_grows "$T/bn.sock" b1'
	check "2 ns: the host's bpffs was left alone" mountpoint -q /sys/fs/bpf
	kill -TERM "$pid"
	wait "$pid"
	check "2 ns: a clean stop" [ $? -eq 0 ]
	on_exit_drop "kill -KILL $pid; wait $pid"
}

# --- 3. tracefs missing ---------------------------------------------------------------

sc3() {
	local pin=/sys/fs/bpf/iofence-test-faults-env-tr-$$ pid n
	if ! mountpoint -q /sys/fs/bpf; then
		skip "3: no bpffs: the tracker cannot load with or without tracefs"
		return
	fi
	mkdir -p "$T/s/t1"
	on_exit "rm -rf '$pin'"
	unshare -m --propagation private sh -c "
		for m in /sys/kernel/tracing /sys/kernel/debug/tracing /sys/kernel/debug; do
			! mountpoint -q \$m || umount \$m || exit 1
		done
		[ -z \"\$(ls -A /sys/kernel/tracing)\" ] || exit 1
		exec '$IOFENCED' --foreground --socket '$T/tr.sock' --state-dir '$T/tr.state' --watchdog none --pin-dir '$pin'" \
		>"$T/tr.log" 2>&1 &
	pid=$!
	on_exit "kill -KILL $pid; wait $pid"
	daemon_answers tr "$T/tr.sock" "$pid" "$T/tr.log" 10 || { not_ok "3: the daemon starts without tracefs"; return; }
	check "3: without tracefs the tracker loads: $(grep -o 'BPF tracker [a-z]*[^,]*' "$T/tr.log" | head -1)" \
		grep -q "BPF tracker loaded" "$T/tr.log"
	check "3: no DEGRADED event" eval '! degraded "$T/tr.sock" bpf_tracker >/dev/null'
	arm_storages "$T/tr.sock" h1 "uuid=t1,type=file,target=$T/s/t1,interval_ms=$IV,$NOBODY" ||
		not_ok "3: a storage arms"
	wait_until 5 hb_wrote "$T/tr.sock" t1 5
	n=$(ctl_sock "$T/tr.sock" --json status | jq '.storages[0].io.heartbeats.count // 0')
	check "3: the kernel sees its heartbeats ($n), tracepoints attached without tracefs" [ "${n:-0}" -gt 0 ]
	check "3: the host's tracefs was left alone" mountpoint -q /sys/kernel/tracing
	kill -TERM "$pid"
	wait "$pid"
	on_exit_drop "kill -KILL $pid; wait $pid"
}

# --- 4. the watchdog ---------------------------------------------------------------------

sc4() {
	local S out rc wd ev
	mkdir -p "$T/s/w1"
	# Named, and missing: refused at start.
	out=$(timeout 10 "$IOFENCED" --foreground --socket "$T/wm.sock" --state-dir "$T/wm.state" \
		--no-bpf --watchdog "$T/no-such-watchdog" 2>&1)
	rc=$?
	check "4 named, missing: the daemon refuses to start (exit $rc)" [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ]
	check "4 named, missing: it says so: $(grep watchdog <<<"$out" | head -1)" \
		grep -q "watchdog $T/no-such-watchdog: No such file or directory" <<<"$out"
	# The default, absent (this host has no /dev/watchdog).
	if [ ! -e /dev/watchdog ]; then
		"$IOFENCED" --foreground --config /dev/null --socket "$T/wd.sock" --state-dir "$T/wd.state" \
			--no-bpf >"$T/wd.log" 2>&1 &
		local pid=$!
		on_exit "kill -KILL $pid; wait $pid"
		if daemon_answers wd "$T/wd.sock" "$pid" "$T/wd.log" 10; then
			check "4 default absent: the log says fence deadlines are published as none" \
				grep -q "watchdog /dev/watchdog: not present.*published as none" "$T/wd.log"
			check "4 default absent: DEGRADED watchdog: $(degraded "$T/wd.sock" watchdog)" \
				degraded "$T/wd.sock" watchdog >/dev/null
			kill -TERM "$pid"
			wait "$pid"
		else
			not_ok "4 default absent: the daemon starts"
		fi
		on_exit_drop "kill -KILL $pid; wait $pid"
	else
		skip "4 default absent: this host has a /dev/watchdog"
	fi

	# A device whose writes fail: a file on faultfs, failing with EIO.
	ff_mount WM wdfs || { not_ok "4: faultfs mounts"; return; }
	wd=$WM/wd
	: >"$wd"
	daemon_on w w --no-bpf --watchdog "$wd" --watchdog-timeout 1 || { not_ok "4: daemon with a file watchdog"; return; }
	S=$SOCK_w
	arm_storages "$S" h1 "uuid=w1,type=file,target=$T/s/w1,interval_ms=$IV,$NOBODY" ||
		{ not_ok "4: w1 armed"; return; }
	check "4 file: it is petted (pets grow)" wait_until 3 eval \
		'[ "$(ctl_sock "$S" --json status | jq .watchdog.pets)" -ge 2 ]'
	faultfs_set "$WM" eio wd
	check "4 eio: WATCHDOG_FAILING within 2 s" wait_until 2 j_has_core "$S" WATCHDOG_FAILING
	ev=$(journal_of "$S" | jq -c '[.[] | select(.event == "WATCHDOG_FAILING")][0].data')
	check "4 eio: ... naming the device and the error: $ev" \
		jqe --arg d "$wd" '.device == $d and .error == "Input/output error" and .failed >= 1' <<<"$ev"
	check "4 eio: the log line says the host resets within its timeout" \
		grep -q "watchdog $wd: a keepalive failed: Input/output error; a device that gets none resets the host within 1000 ms" "$T/w.log"
	check "4 eio: query-status: failing, failed, last_error" \
		eval 'ctl_sock "$S" --json status | jqe ".watchdog.failing == true and .watchdog.failed >= 1 and .watchdog.last_error == \"Input/output error\""'
	sleep 1
	check "4 eio: told once per episode" \
		[ "$(journal_of "$S" | jq '[.[] | select(.event == "WATCHDOG_FAILING")] | length')" = 1 ]
	check "4 eio: w1's heartbeats go on" hb_grows "$S" w1
	faultfs_set "$WM" healthy wd
	check "4 eio: WATCHDOG_RESTORED once writes go through" wait_until 2 j_has_core "$S" WATCHDOG_RESTORED
	check "4 eio: query-status: no longer failing" \
		eval 'ctl_sock "$S" --json status | jqe ".watchdog.failing == false"'
	daemon_stop w 10

	# A FIFO: the daemon opens it read-write, so it is a reader itself
	# and a write never gets EPIPE; nobody else reading, it fills up and
	# the write fails with EAGAIN instead (non-blocking: the core never
	# waits on it).
	mkfifo "$T/wd.fifo"
	exec 7<>"$T/wd.fifo"
	daemon_on f f --no-bpf --watchdog "$T/wd.fifo" --watchdog-timeout 1 || { not_ok "4: daemon with a FIFO watchdog"; exec 7>&-; return; }
	S=$SOCK_f
	timeout 5 dd if=/dev/zero of="$T/wd.fifo" bs=4096 count=32 oflag=nonblock 2>/dev/null
	check "4 FIFO full: WATCHDOG_FAILING (EAGAIN)" wait_until 2 j_has_core "$S" WATCHDOG_FAILING
	echo "# 4 FIFO: $(journal_of "$S" | jq -c '[.[] | select(.event == "WATCHDOG_FAILING")][0].data')"
	timeout 5 dd if="$T/wd.fifo" of=/dev/null bs=65536 count=4 iflag=nonblock 2>/dev/null
	check "4 FIFO drained: WATCHDOG_RESTORED" wait_until 2 j_has_core "$S" WATCHDOG_RESTORED
	check "4 FIFO: the daemon answers throughout" eval 'ctl_sock "$S" version >/dev/null'
	daemon_stop f 10
	exec 7>&-
}
# j_has_core SOCK EVENT: the journal holds EVENT (an event of no storage).
j_has_core() { journal_of "$1" | jqe --arg e "$2" 'any(.[]; .event == $e)'; }

# --- 5. the wall clock stepped -------------------------------------------------------

sc5() {
	local S cc so rec t_before lines j late
	# The sources: no timer, deadline or timed wait on CLOCK_REALTIME. The
	# io_uring timeouts are CLOCK_MONOTONIC unless a flag says otherwise.
	lines=$(grep -rn 'IORING_TIMEOUT_REALTIME\|IORING_TIMEOUT_BOOTTIME\|timerfd_create\|pthread_cond_timedwait\|pthread_timedjoin_np\|sem_timedwait\|CLOCK_REALTIME' \
		"$(dirname "$0")/../../userspace/control" "$(dirname "$0")/../../userspace/core" \
		"$(dirname "$0")/../../userspace/lib" --include='*.c' --include='*.h')
	echo "$lines" | sed 's/^/# 5: /'
	check "5: no io_uring timeout on the real-time clock, no timerfd, no timed wait on it" \
		eval '! grep -qE "IORING_TIMEOUT_REALTIME|timerfd_create|pthread_timedjoin_np|sem_timedwait" <<<"$lines"'
	# A condition variable's timed wait runs on the clock it was made
	# with: each file that waits on one must make it CLOCK_MONOTONIC.
	local f bad=
	for f in $(cut -d: -f1 <<<"$lines" | sort -u); do
		grep -q pthread_cond_timedwait "$f" || continue
		grep -q 'pthread_condattr_setclock(.*CLOCK_MONOTONIC' "$f" || bad="$bad $f"
	done
	check "5: every pthread_cond_timedwait is on a CLOCK_MONOTONIC condition variable${bad:+ (not:$bad)}" [ -z "$bad" ]
	check "5: CLOCK_REALTIME only stamps (events, records, armed_at, fenced_at, last_ok_at), in these places" \
		eval '[ -z "$(grep CLOCK_REALTIME <<<"$lines" | grep -vE "journal.c|setup.c|fencer.c|fencer_link.c|record.h")" ]'

	cc=${CC:-cc}
	command -v "$cc" >/dev/null || { skip "5: no C compiler for the clock shim"; return; }
	so=$T/clockstep.so
	"$cc" -shared -fPIC -O2 -o "$so" "$(dirname "$0")/helpers/clockstep.c" -ldl ||
		{ not_ok "5: the clock shim builds"; return; }
	echo 0 >"$T/clock.off"
	mkdir -p "$T/s/c1"
	# ASan wants to come first; the shim does not need it to.
	CLOCKSTEP_FILE=$T/clock.off LD_PRELOAD=$so ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0 \
		daemon_on c c --no-bpf || { not_ok "5: daemon under the clock shim"; return; }
	S=$SOCK_c
	arm_storages "$S" h1 "uuid=c1,type=file,target=$T/s/c1,interval_ms=$IV,timeout_ms=1000,kill_grace_ms=300,$NOBODY" ||
		{ not_ok "5: c1 armed"; return; }
	rec=$T/s/c1/.iofence/h1
	wait_until 5 hb_wrote "$S" c1 3
	# The record's CLOCK_REALTIME stamp (bytes 24..31, little endian, ns).
	rt() { od -A n -t u8 -j 24 -N 8 "$rec" | tr -d ' '; }
	t_before=$(hb_of "$S" c1 | jqr .writes_ok)
	echo -3600 >"$T/clock.off"
	sleep 1.5
	local back=$(( ($(rt) / 1000000000) - $(date +%s) ))
	echo 3600 >"$T/clock.off"
	sleep 1.5
	local fwd=$(( ($(rt) / 1000000000) - $(date +%s) ))
	echo 0 >"$T/clock.off"
	sleep 1
	echo "# 5: the daemon's records said the wall clock was ${back}s, then ${fwd}s off the host's"
	check "5: the shim stepped the daemon's wall clock back (record ${back}s off) and forward (${fwd}s)" \
		eval '[ "$back" -le -3590 ] && [ "$fwd" -ge 3590 ]'
	j=$(journal_of "$S")
	late=$(jq '[.[] | select(.data.storage == "c1" and (.event == "HEARTBEAT_LATE" or .event == "FENCE_FIRED"))] | length' <<<"$j")
	check "5: no HEARTBEAT_LATE, no FENCE_FIRED across both steps ($late)" [ "$late" = 0 ]
	check "5: heartbeats went on: $(($(hb_of "$S" c1 | jqr .writes_ok) - t_before)) in 4 s (interval $IV ms)" \
		[ $(($(hb_of "$S" c1 | jqr .writes_ok) - t_before)) -ge 10 ]
	check "5: since_ok_ms stays small: $(hb_of "$S" c1 | jqr .since_ok_ms)" \
		[ "$(hb_of "$S" c1 | jqr .since_ok_ms)" -lt 1000 ]
	daemon_stop c 10
}

sc1
sc1ro
sc2
sc3
sc4
sc5
