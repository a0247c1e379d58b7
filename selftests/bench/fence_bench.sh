#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Fencing on a real data path: a loop device (direct I/O) over a file on
# faultfs is the shared LUN, a copy of sleep named qemu-system-x86_64 that
# holds it open is the VM, and a private iofenced (no BPF, no watchdog)
# heartbeats to it.
#
#   delay  HANGS hangs (default 20), each with a fresh victim: how long after
#          the contract's fence moment (t_ok + T) the victim is dead
#          (dead_after_us of FENCE_COMPLETED) and the fence was fired
#          (late_by_us of FENCE_FIRED). Goal: dead_after p99 under 20 ms.
#   soak   SOAK_SECONDS (default 600) of a storage slowed by SOAK_SLOW_MS
#          (default 20) per request under fio (or dd loops) on the same
#          device, with the default-like interval 1 s and timeout 5 s: the
#          fences (goal: none), the late heartbeats, the heartbeat latency;
#          the victim must survive.
#
# HANGS=0 or SOAK_SECONDS=0 skips that part; HANGS=5 SOAK_SECONDS=20 is a
# quick run. Numbers are printed, not judged, except two: the exit status
# is 1 on a missed fence (a hang that did not kill its victim) or a false
# fence (any FENCE_FIRED during the soak), 2 when the bench could not run,
# 0 otherwise (also when it skips: not root, no FUSE, no loop devices).
# A dummy VM that dies with no fence journalled was killed by something
# else on the machine (another daemon's test): it is reported, and replaced
# (soak) or its hang repeated (delay).
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 2
: "${OUT:=build}"
: "${HANGS:=20}"
: "${SOAK_SECONDS:=600}"
: "${SOAK_SLOW_MS:=20}"
: "${SOAK_LOAD:=auto}" # fio, dd or auto (fio when installed)
IOFENCED=$OUT/iofenced
IOFENCECTL=$OUT/iofencectl
FAULTFS=${FAULTFS:-$OUT/faultfs}

# The delay part's storage: short figures, so that a hang is quick.
HANG_TIMEOUT_MS=1000
HANG_SPEC="interval_ms=200,timeout_ms=$HANG_TIMEOUT_MS,kill_grace_ms=1000"
# The soak's storage: the defaults' order of magnitude.
SOAK_SPEC="interval_ms=1000,timeout_ms=5000"
DISK_MB=256
LOAD_OFFSET_MB=16 # guest I/O stays clear of the heartbeat region

# shellcheck source-path=SCRIPTDIR source=../faultfs/faultfs.sh
. selftests/faultfs/faultfs.sh

say() { printf '%s\n' "$*"; }
skip_all() {
	say "== fence bench: SKIP: $*"
	exit 0
}
# A harness step failed: no numbers to trust.
broken() {
	say "fence bench: cannot run: $*" >&2
	[ -n "$dlog" ] && [ -f "$dlog" ] && sed 's/^/#   /' "$dlog" | tail -20 >&2
	exit 2
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root (loop devices, FUSE)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
[ -e /dev/loop-control ] || skip_all "no /dev/loop-control"
command -v fusermount3 >/dev/null || skip_all "fusermount3 is missing"
command -v jq >/dev/null || skip_all "jq is missing"
for b in "$IOFENCED" "$IOFENCECTL" "$FAULTFS"; do
	[ -x "$b" ] || skip_all "$b is not built (make all tests)"
done

work=$(mktemp -d /tmp/iofence-fence-bench.XXXXXX) || exit 2
work=$(readlink -f "$work") # faultfs finds its mount by the real path
mnt=$work/mnt
export FAULTFS_LOG=$work/faultfs.log
vm_exe=$work/qemu-system-x86_64
loop='' dpid='' sock='' dlog=''
victims=() loaders=()

now_us() { local t=${EPOCHREALTIME//[.,]/}; echo $((10#$t)); }

# A victim pid is only ever killed while it still runs our copy of sleep.
is_victim() { [ "$(readlink "/proc/$1/exe" 2>/dev/null)" = "$vm_exe" ]; }

# shellcheck disable=SC2317 # for cleanup, run by the EXIT trap
kill_pids() { # signal pid...
	local sig=$1 p
	shift
	for p in "$@"; do kill "-$sig" "$p" 2>/dev/null; done
}

# wait_gone SECONDS PID...: until none of them runs (a zombie is gone).
wait_gone() {
	local t=$(($1 * 10)) p alive
	shift
	while ((t-- > 0)); do
		alive=0
		for p in "$@"; do
			[ -r "/proc/$p/stat" ] &&
				[[ $(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null) != Z* ]] &&
				alive=1
		done
		((alive)) || return 0
		sleep 0.1
	done
	return 1
}

stop_daemon() {
	[ -n "$dpid" ] || return 0
	kill -TERM "$dpid" 2>/dev/null
	wait_gone 10 "$dpid" || kill -KILL "$dpid" 2>/dev/null
	wait "$dpid" 2>/dev/null
	dpid=
}

# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	set +e
	# First the hangs: whatever waits on a hung request is in D state
	# and cannot die until it is released.
	faultfs_mounted "$mnt" && _faultfs_ctl_write "$mnt" "healthy *" 2>/dev/null
	kill_pids TERM "${loaders[@]}"
	for p in "${victims[@]}"; do is_victim "$p" && kill -KILL "$p"; done
	wait_gone 10 "${loaders[@]}" || kill_pids KILL "${loaders[@]}"
	for p in "${loaders[@]}"; do wait "$p" 2>/dev/null; done
	stop_daemon
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	faultfs_stop "$mnt" || say "fence bench: $mnt is still mounted" >&2
	if faultfs_mounted "$mnt"; then
		say "fence bench: leaving $work behind" >&2
	else
		rm -rf "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# A private copy of the programs: a rebuild while the soak runs does not
# swap them under it.
mkdir "$work/bin" || broken "cannot make $work/bin"
cp "$IOFENCED" "$IOFENCECTL" "$FAULTFS" "$work/bin/" ||
	broken "cannot copy the programs"
IOFENCED=$work/bin/${IOFENCED##*/}
IOFENCECTL=$work/bin/${IOFENCECTL##*/}
FAULTFS=$work/bin/${FAULTFS##*/}
{ "$IOFENCED" --version && "$IOFENCECTL" --help; } >/dev/null ||
	broken "the copied programs do not run"

ctl() { timeout 20 "$IOFENCECTL" --socket "$sock" "$@"; }

# start_daemon NAME: a private iofenced that never opens the host's watchdog.
start_daemon() {
	local i
	sock=$work/$1.sock dlog=$work/$1.log
	"$IOFENCED" --foreground --socket "$sock" --state-dir "$work/$1.state" \
		--no-bpf --watchdog none >"$dlog" 2>&1 &
	dpid=$!
	for ((i = 0; i < 100; i++)); do
		[ -S "$sock" ] && ctl version >/dev/null 2>&1 && return 0
		kill -0 "$dpid" 2>/dev/null || break
		sleep 0.05
	done
	broken "iofenced did not start"
}

# arm UUID SPEC: the host connected, one block storage on the loop device.
arm() {
	ctl set-host-state connected >/dev/null ||
		broken "set-host-state connected"
	ctl setup --host bench-host \
		--storage "uuid=$1,type=block,target=$loop,$2" >/dev/null ||
		broken "setup of $1 on $loop"
}

last_seq() {
	local n i
	for ((i = 0; i < 5; i++)); do
		n=$(ctl --json status | jq -r '.last_seq') &&
			[[ $n =~ ^[0-9]+$ ]] && { echo "$n"; return 0; }
		sleep 0.1
	done
	return 1
}
hb() { ctl --json status | jq -r --arg u "$1" \
	'.storages[] | select(.uuid == $u) | .heartbeat'; }

# events_after SEQ UUID: that storage's events after SEQ, a JSON array.
events_after() {
	ctl --json events --since "$1" |
		jq -c --arg u "$2" '[.[] | select(.data.storage == $u)]'
}

# wait_event SEQ UUID NAME MS: the events after SEQ once NAME is among them.
wait_event() {
	local end=$(($(now_us) + $4 * 1000)) evs
	while :; do
		evs=$(events_after "$1" "$2") &&
			jq -e --arg n "$3" 'any(.event == $n)' <<<"$evs" >/dev/null &&
			{ printf '%s\n' "$evs"; return 0; }
		(($(now_us) < end)) || return 1
		sleep 0.1
	done
}

# wait_hb UUID STATE MS: the heartbeat reaches STATE.
wait_hb() {
	local end=$(($(now_us) + $3 * 1000))
	until [ "$(hb "$1" | jq -r .state)" = "$2" ]; do
		(($(now_us) < end)) || return 1
		sleep 0.05
	done
}

# start_victim: a dummy VM holding the loop device open; sets vpid.
start_victim() {
	local i
	"$vm_exe" infinity 3<>"$loop" </dev/null >/dev/null 2>&1 &
	vpid=$!
	disown "$vpid" # its SIGKILL is the point, not news
	victims+=("$vpid")
	for ((i = 0; i < 100; i++)); do
		is_victim "$vpid" && return 0
		sleep 0.01
	done
	broken "dummy VM $vpid did not start"
}

# stats FILE: "p50 p99 max" of its numbers (µs), in ms, nearest rank.
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 }
	function rank(p,  i) { i = int((p * NR + 99) / 100); return v[i < 1 ? 1 : i] }
	END {
		if (!NR) { print "- - -"; exit }
		printf "%.3f %.3f %.3f\n", rank(50) / 1000, rank(99) / 1000, v[NR] / 1000
	}'
}

# --- the shared LUN --------------------------------------------------------

faultfs_start "$work/backing" "$mnt" || broken "faultfs does not mount"
truncate -s "${DISK_MB}M" "$mnt/disk.img" || broken "no image on faultfs"
loop=$(losetup --find --show --direct-io=on "$mnt/disk.img") ||
	broken "no loop device over $mnt/disk.img"
cp /bin/sleep "$vm_exe" || broken "no copy of sleep"
missed=0 false_fences=0

# --- delay: hang, fence, measure, release, unfence, again -----------------

fence_delay() {
	local uuid=hang i=0 t mark evs fired done_ dead late n ours
	local ok_hangs=0 extra=0 void=0
	local dead_f=$work/dead_after_us late_f=$work/late_by_us
	: >"$dead_f"
	: >"$late_f"
	start_daemon delay
	arm "$uuid" "$HANG_SPEC"
	wait_hb "$uuid" healthy 5000 || broken "no healthy heartbeat on $loop"
	say "== fence delay: $HANGS hangs of $loop (loop, direct I/O, over faultfs); $HANG_SPEC"
	while ((ok_hangs + missed < HANGS)); do
		i=$((i + 1))
		start_victim
		mark=$(last_seq) || broken "status"
		faultfs_set "$mnt" hang disk.img || broken "faultfs hang"
		# Quiet until the fence is due: no poller of ours competes with
		# the victim for a CPU while it is being killed.
		sleep "$(awk -v t="$HANG_TIMEOUT_MS" 'BEGIN { print t / 1000 + 0.3 }')"
		evs=$(wait_event "$mark" "$uuid" FENCE_COMPLETED \
			$((HANG_TIMEOUT_MS + 6000)))
		faultfs_set "$mnt" healthy disk.img || broken "faultfs release"
		fired=$(jq -c 'map(select(.event == "FENCE_FIRED"))[0] // empty' <<<"$evs")
		done_=$(jq -c 'map(select(.event == "FENCE_COMPLETED"))[0] // empty' <<<"$evs")
		dead=$(jq -r --argjson p "$vpid" '.data.victims[]? |
			select(.pid == $p and .result == "dead") | .dead_after_us' <<<"$done_")
		late=$(jq -r '.data.late_by_us // empty' <<<"$fired")
		n=$(jq -r '.data.victims | length' <<<"$fired" 2>/dev/null)
		# Whether any event of this daemon names the victim.
		ours=$(events_after "$mark" "$uuid" | jq --argjson p "$vpid" \
			'[.[].data.victims[]? | select(.pid == $p)] | length')
		if [ -z "$fired" ]; then
			missed=$((missed + 1))
			say "  hang $i: MISSED: no FENCE_FIRED within $((HANG_TIMEOUT_MS + 6000)) ms"
		elif [ "${ours:-0}" -eq 0 ] && ! is_victim "$vpid"; then
			# Another program killed it (a test of a daemon of its
			# own, on the same machine): no sample, not a miss.
			void=$((void + 1))
			say "  hang $i: void: victim $vpid died before the fence, not by this daemon"
			((void <= HANGS)) || broken "the dummy VMs keep dying from outside"
		elif [ -z "$dead" ] || ! wait_gone 2 "$vpid"; then
			missed=$((missed + 1))
			say "  hang $i: MISSED: victim $vpid not killed: $(jq -c .data.victims <<<"${done_:-$fired}")"
		else
			ok_hangs=$((ok_hangs + 1))
			echo "$dead" >>"$dead_f"
			echo "$late" >>"$late_f"
			[ "${n:-1}" -eq 1 ] || extra=$((extra + n - 1))
			printf '  hang %2d: victim %d dead %.3f ms after t_ok+T, fence fired %.3f ms late\n' \
				"$i" "$vpid" "$(awk -v v="$dead" 'BEGIN { print v / 1000 }')" \
				"$(awk -v v="$late" 'BEGIN { print v / 1000 }')"
		fi
		is_victim "$vpid" && kill -KILL "$vpid"
		# The hung write lands: the storage is back, but stays fenced.
		[ -n "$fired" ] || continue
		wait_event "$mark" "$uuid" STORAGE_RESTORED 5000 >/dev/null ||
			broken "no STORAGE_RESTORED after the release"
		for ((t = 0; t < 50; t++)); do
			ctl raw "{\"execute\":\"unfence\",\"arguments\":{\"uuid\":\"$uuid\"}}" |
				jq -e .return >/dev/null && break
			sleep 0.1
		done
		wait_hb "$uuid" healthy 5000 || broken "no unfence"
	done
	read -r dp50 dp99 dmax < <(stats "$dead_f")
	read -r lp50 lp99 lmax < <(stats "$late_f")
	say
	say "  fences: $ok_hangs of $HANGS hangs killed their victim (pid matched), $missed missed$( ((extra)) && echo ", $extra other victims")$( ((void)) && echo "; $void hangs void (victim killed from outside) and repeated")"
	printf '  %-30s %10s %10s %10s\n' "" p50 p99 max
	printf '  %-30s %7s ms %7s ms %7s ms\n' "victim dead after t_ok+T" "$dp50" "$dp99" "$dmax"
	printf '  %-30s %7s ms %7s ms %7s ms\n' "fence fired after t_ok+T" "$lp50" "$lp99" "$lmax"
	say "  (goal: dead p99 under 20 ms; p99 is the nearest rank, over $ok_hangs samples)"
	stop_daemon
}

# --- soak: slow storage under load, a victim that must survive ------------

start_load() {
	local secs=$1 kind=$SOAK_LOAD
	if [ "$kind" = auto ]; then
		kind="dd"
		command -v fio >/dev/null && kind=fio
	fi
	if [ "$kind" = fio ]; then
		fio --name=load --filename="$loop" --rw=randrw --bs=64k \
			--direct=1 --iodepth=8 --ioengine=libaio --time_based \
			--runtime="$secs" --offset="${LOAD_OFFSET_MB}M" \
			--output-format=json --output="$work/fio.json" \
			>"$work/fio.log" 2>&1 &
		loaders+=("$!")
		load_desc="fio randrw 64k iodepth 8"
		return
	fi
	# Four writers and readers of 64 KiB blocks, in chunks of 1 MiB.
	for _ in 1 2 3 4; do
		(
			end=$((SECONDS + secs)) blocks=$(((DISK_MB - LOAD_OFFSET_MB) * 16 - 16))
			while ((SECONDS < end)); do
				b=$((LOAD_OFFSET_MB * 16 + (RANDOM * 32768 + RANDOM) % blocks))
				dd if=/dev/zero of="$loop" bs=64k count=16 seek="$b" \
					oflag=direct conv=notrunc status=none
				dd if="$loop" of=/dev/null bs=64k count=16 skip="$b" \
					iflag=direct status=none
			done
		) 2>/dev/null &
		loaders+=("$!")
	done
	load_desc="4 dd loops, 64k direct"
}

soak() {
	local uuid=soak secs=$SOAK_SECONDS mark t0 el next=60 evs fired late \
		restored h alive load_ok outside=0 p
	faultfs_set "$mnt" slow "$SOAK_SLOW_MS" disk.img || broken "faultfs slow"
	start_daemon soak
	arm "$uuid" "$SOAK_SPEC"
	wait_hb "$uuid" healthy 10000 || broken "no healthy heartbeat on $loop"
	start_victim
	mark=$(last_seq) || broken "status"
	start_load "$secs"
	say
	say "== soak: $secs s of $loop slowed by $SOAK_SLOW_MS ms per request, $load_desc on it; $SOAK_SPEC"
	t0=$SECONDS
	while (((el = SECONDS - t0) < secs)); do
		if ((el >= next)); then
			next=$((next + 60))
			evs=$(events_after "$mark" "$uuid")
			h=$(hb "$uuid")
			printf '  %4d s: %s fences, %s late heartbeats, latency max %s ms\n' "$el" \
				"$(jq 'map(select(.event == "FENCE_FIRED")) | length' <<<"$evs")" \
				"$(jq 'map(select(.event == "HEARTBEAT_LATE")) | length' <<<"$evs")" \
				"$(jq '.latency_us.max / 1000' <<<"$h")"
		fi
		if ! is_victim "$vpid"; then
			evs=$(events_after "$mark" "$uuid")
			jq -e 'any(.event == "FENCE_FIRED")' <<<"$evs" >/dev/null && break
			# Not this daemon: it journals every kill.
			outside=$((outside + 1))
			say "  $el s: victim $vpid died, not by this daemon (no fence journalled): a new one"
			((outside <= 10)) || broken "the dummy VMs keep dying from outside"
			start_victim
		fi
		sleep 1
	done
	alive=no
	is_victim "$vpid" && alive=yes
	load_ok=yes
	for p in "${loaders[@]}"; do
		if wait_gone 30 "$p"; then
			wait "$p" 2>/dev/null || load_ok="exited with an error"
		else
			kill -TERM "$p" 2>/dev/null
			wait "$p" 2>/dev/null
			load_ok="stopped, still running"
		fi
	done
	loaders=()
	evs=$(events_after "$mark" "$uuid") || broken "events"
	h=$(hb "$uuid") || broken "status"
	fired=$(jq 'map(select(.event == "FENCE_FIRED")) | length' <<<"$evs")
	late=$(jq 'map(select(.event == "HEARTBEAT_LATE")) | length' <<<"$evs")
	restored=$(jq 'map(select(.event == "HEARTBEAT_RESTORED")) | length' <<<"$evs")
	false_fences=$fired
	if [ "$alive" = no ] && [ "$fired" -eq 0 ]; then
		outside=$((outside + 1))
		alive="no, died at the end, not by this daemon"
	fi
	((outside)) && alive="$alive ($outside killed from outside, replaced)"
	say
	printf '  %-38s %s\n' "duration" "$((SECONDS - t0)) s"
	printf '  %-38s %s\n' "FENCE_FIRED (goal 0)" "$fired"
	printf '  %-38s %s\n' "HEARTBEAT_LATE / _RESTORED" "$late / $restored"
	printf '  %-38s %s\n' "heartbeat writes ok/failed/timed out" \
		"$(jq -r '"\(.writes_ok) / \(.writes_failed) / \(.writes_timed_out)"' <<<"$h")"
	printf '  %-38s %s\n' "heartbeat latency last / max" \
		"$(jq -r '"\(.latency_us.last / 1000) ms / \(.latency_us.max / 1000) ms"' <<<"$h")"
	printf '  %-38s %s\n' "dummy VM alive at the end" "$alive"
	if [ -s "$work/fio.json" ]; then
		printf '  %-38s %s\n' "fio (load, $load_ok)" "$(jq -r '.jobs[0] |
			"read \(.read.iops | floor) IOPS \(.read.bw / 1024 | floor) MiB/s, write \(.write.iops | floor) IOPS \(.write.bw / 1024 | floor) MiB/s, write clat p99 \((.write.clat_ns.percentile["99.000000"] // 0) / 1e4 | floor / 100) ms"' \
			"$work/fio.json" 2>/dev/null)"
	else
		printf '  %-38s %s\n' "load" "$load_desc, $load_ok"
	fi
	if [ "$false_fences" -gt 0 ]; then
		jq -c '.[] | select(.event == "FENCE_FIRED" or .event == "HEARTBEAT_LATE")' <<<"$evs" |
			sed 's/^/#   /'
	fi
	stop_daemon
	faultfs_set "$mnt" healthy disk.img
}

[ "$HANGS" -gt 0 ] && fence_delay
[ "$SOAK_SECONDS" -gt 0 ] && soak

say
rc=0
if [ "$missed" -gt 0 ]; then
	say "fence bench: $missed missed fences"
	rc=1
fi
if [ "$false_fences" -gt 0 ]; then
	say "fence bench: $false_fences false fences in the soak"
	rc=1
fi
[ "$rc" -eq 0 ] && say "fence bench: no missed fence, no false fence"
exit "$rc"
