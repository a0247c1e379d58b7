#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: alone (64 daemons: the machine is theirs)
#
# A simulated cluster: CLUSTER_N daemons (default 64; 32 in a sanitizer
# build), one per host, each with its own socket, state dir and pin dir
# (--no-bpf, --watchdog none), share one faultfs "NFS" and arm the same
# file storage on it. Each host runs one dummy VM (a copy of sleep named
# vm-<host>-<pid of this test>, with a file open on the mount) that only
# its own daemon's victims filter matches.
#
#   1 every daemon's query-peer for every other host says alive (the
#     whole N x (N-1) matrix, pipelined by build/cluster_ctl)
#   2 the storage dies (faultfs "dead *": every request hangs): every
#     daemon fences inside its contract (FENCE_FIRED at t_ok + T, late by
#     less than the slack), every dummy VM is killed by its own daemon and
#     by no other; the spread of late_by_us across the daemons is printed
#   3 released: every storage restored, unfenced, healthy again
#   4 CLUSTER_STOP daemons (default 4) SIGSTOPped: all others see them
#     dead after a window of their timeout, alive again after SIGCONT;
#     a stopped host fences itself on waking, the others never
#   5 every daemon stops cleanly on SIGTERM, nothing is left mounted
#
# Knobs: CLUSTER_N, CLUSTER_STOP, CLUSTER_RT_PRIO (--rt-priority of every
# daemon; unset, the daemon's own default: 10, which measured keeps the
# fences' late_by_us under 0.3 ms at 64 daemons, against up to 5 ms at
# 0, and 0 in an ASan build, whose allocator stalls real-time threads),
# CLUSTER_INTERVAL_MS (500), CLUSTER_TIMEOUT_MS (3000), CLUSTER_PARALLEL
# (the bound on queries in flight, 4096), CLUSTER_REPORT (a file that
# gets the figures as key=value lines, for selftests/bench/cluster_bench.sh).
# Runtime: about 30 s for 64 daemons, 25 s for 32 under ASan.
. "$(dirname "$0")/../lib.sh"
need_root
FAULTFS=${FAULTFS:-$OUT/faultfs}
# shellcheck source=../faultfs/faultfs.sh
. "$(dirname "$0")/../faultfs/faultfs.sh"

for need in jq fusermount3; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done
[ -c /dev/fuse ] || { skip "/dev/fuse is missing"; exit 0; }
for b in "$FAULTFS" "$OUT/cluster_ctl"; do
	[ -x "$b" ] || { not_ok "$b (make tests)"; exit 1; }
done

# Under ASan every daemon costs two to three times as much, and its leak
# check at exit scans its whole memory: 64 of them take over a minute to
# exit on two CPUs. The sanitizer pass runs half as many.
if [ -z "${CLUSTER_N:-}" ]; then
	CLUSTER_N=64
	grep -qa __asan_init "$IOFENCED" 2>/dev/null && CLUSTER_N=32
fi
: "${CLUSTER_STOP:=4}"
: "${CLUSTER_RT_PRIO:=}"
RT_ARGS=(${CLUSTER_RT_PRIO:+--rt-priority "$CLUSTER_RT_PRIO"})
: "${CLUSTER_INTERVAL_MS:=500}"
: "${CLUSTER_TIMEOUT_MS:=3000}"
: "${CLUSTER_PARALLEL:=4096}"
N=$CLUSTER_N IV=$CLUSTER_INTERVAL_MS TMO=$CLUSTER_TIMEOUT_MS GRACE=1000
if [ "$N" -lt 2 ] || [ "$CLUSTER_STOP" -ge "$N" ]; then
	not_ok "CLUSTER_N=$N, CLUSTER_STOP=$CLUSTER_STOP: want 2 hosts or more, fewer stopped than hosts"
	exit 1
fi

T=$(readlink -f "$T")
mkdir -p "$T/bin" "$T/vm"
if ! cp "$IOFENCED" "$IOFENCECTL" "$FAULTFS" "$OUT/cluster_ctl" "$T/bin/"; then
	not_ok "copy the binaries (make all tests)"
	exit 1
fi
IOFENCED=$T/bin/${IOFENCED##*/}
IOFENCECTL=$T/bin/${IOFENCECTL##*/}
FAULTFS=$T/bin/${FAULTFS##*/}
CTL=$T/bin/cluster_ctl
cp /bin/sleep "$T/bin/sleep"
export FAULTFS_LOG=$T/faultfs.out

report() { # key value
	echo "# $1: $2"
	[ -z "${CLUSTER_REPORT:-}" ] || echo "$1=$2" >>"$CLUSTER_REPORT"
}
t_start=$(mono_ms)
phase() { echo "# $(($(mono_ms) - t_start)) ms: $*"; }

# Every hung request pins a faultfs worker: one per daemon for its
# heartbeat, one per dummy VM closing its file, and the status reads.
ff_mount MNT nfs -o max_threads=$((2 * N + 64)) || { not_ok "faultfs mounts"; exit 1; }
STORE=$MNT/store
mkdir -p "$STORE"
SPEC="uuid=nfs,type=file,target=$STORE,interval_ms=$IV,timeout_ms=$TMO,kill_grace_ms=$GRACE,strategy=kill-only"

HOSTS=()
for ((i = 0; i < N; i++)); do HOSTS+=("$(printf 'h%02d' "$i")"); done
printf '%s\n' "${HOSTS[@]}" >"$T/hosts"
for h in "${HOSTS[@]}"; do echo "$h $T/$h.sock"; done >"$T/askers"

# --- the daemons -----------------------------------------------------------

# All started at once, then waited for: one by one, 64 starts would take
# the time of 64. Each is registered as daemon_on registers its own.
cluster_start() {
	local h pid
	for h in "${HOSTS[@]}"; do
		"$IOFENCED" --foreground --socket "$T/$h.sock" --state-dir "$T/$h.state" \
			--pin-dir "$T/$h.pin" --no-bpf --watchdog none \
			"${RT_ARGS[@]}" >"$T/$h.log" 2>&1 &
		pid=$!
		T_DSTART[$h]=$(pid_start "$pid")
		printf -v "PID_$h" '%s' "$pid"
		printf -v "SOCK_$h" '%s' "$T/$h.sock"
		on_exit "daemon_gone $h || kill -KILL $pid; reap $pid"
	done
	# A stopped daemon is never left stopped, and its hangs go first.
	on_exit cluster_cont
	on_exit hangs_release
	for h in "${HOSTS[@]}"; do
		local v=PID_$h
		daemon_answers "$h" "$T/$h.sock" "${!v}" "$T/$h.log" 20 || return 1
	done
}
cluster_cont() {
	local h v
	for h in "${HOSTS[@]}"; do
		v=PID_$h
		kill -CONT "${!v}" 2>/dev/null
	done
	return 0
}

# on_each CMD: CMD HOST for every host, at most 32 at a time, each in a
# subshell of its own (outputs to files of its own, by the caller).
on_each() {
	local h pids=() p
	for h in "${HOSTS[@]}"; do
		(
			trap - EXIT
			"$@" "$h"
		) </dev/null &
		pids+=($!)
		if [ "${#pids[@]}" -ge 32 ]; then
			# Only these: a bare wait would wait for the daemons too.
			for p in "${pids[@]}"; do wait "$p"; done
			pids=()
		fi
	done
	for p in "${pids[@]}"; do wait "$p"; done
}

arm_one() { # host
	local s=SOCK_$1
	if arm_storages "${!s}" "$1" "$SPEC,victims=vm-$1-$$" >"$T/$1.arm" 2>&1; then
		echo armed >>"$T/$1.arm"
	fi
}
journal_one() { # host: its journal, into $T/<host>.journal
	local s=SOCK_$1
	journal_of "${!s}" >"$T/$1.journal" 2>/dev/null
}
unfence_one() { # host
	local s=SOCK_$1
	ctl_sock "${!s}" raw '{"execute":"unfence","arguments":{"uuid":"nfs"}}' >"$T/$1.unfence" 2>&1
}
# ev_table EVENT: one line per host, from the journals as last read:
# "HOST COUNT LATE_BY_US SINCE_OK_MS WALL_MS VICTIM_PIDS SCAN" of its first
# EVENT of the storage (fields "-" when it has none): one jq for all.
ev_table() {
	local h files=()
	for h in "${HOSTS[@]}"; do files+=("$T/$h.journal"); done
	jq -r --arg n "$1" 'input_filename as $f | [.[]? | select(.event == $n and .data.storage == "nfs")] as $e |
		($e[0] // {}) as $x | [($f | sub(".*/"; "") | sub("[.]journal$"; "")), ($e | length),
		($x.data.late_by_us // "-"), ($x.data.since_ok_ms // "-"),
		(if $x.timestamp then $x.timestamp.seconds * 1000 + ($x.timestamp.microseconds / 1000 | floor) else "-" end),
		([$x.data.victims[]?.pid] | map(tostring) | join(",") | if . == "" then "-" else . end),
		($x.data.scan // {} | tojson | gsub(" "; "_"))] | join(" ")' \
		"${files[@]}" 2>/dev/null
}
# hosts_with EVENT MIN: how many hosts journalled EVENT MIN times or more
# (journals read again first).
hosts_with() {
	on_each journal_one
	ev_table "$1" | awk -v m="$2" '$2 >= m { n++ } END { print n + 0 }'
}
# count_where CMD: for how many hosts CMD HOST succeeds.
count_where() {
	local h n=0
	for h in "${HOSTS[@]}"; do "$@" "$h" && n=$((n + 1)); done
	echo "$n"
}
any_alive() { # a dummy VM still runs
	local p
	for p in "${VMS[@]}"; do proc_alive "$p" && return 0; done
	return 1
}
# query WINDOW_MS ASKERS TARGETS OUTFILE: the matrix, through cluster_ctl.
query() {
	local rc
	"$CTL" query --window "$1" --parallel "$CLUSTER_PARALLEL" --timeout 60 nfs "$2" "$3" >"$4" 2>"$T/cluster_ctl.err"
	rc=$?
	[ "$rc" -eq 0 ] || head -20 "$T/cluster_ctl.err" | sed 's/^/# cluster_ctl: /'
	return $rc
}
summary_of() { grep '^summary ' "$1"; }
field() { # file key: a value of its summary line
	summary_of "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"
}
# not_all FILE LIVENESS: the queries that did not answer LIVENESS, a few.
not_all() {
	awk -v want="$2" '$1 != "summary" && $3 != want' "$1" | head -5 | sed 's/^/#   /'
}

phase "starting $N daemons (--rt-priority ${CLUSTER_RT_PRIO:-the daemon default})"
cluster_start || { not_ok "$N daemons answer on their sockets"; exit 1; }
ok "$N daemons answer on their sockets"
report start_ms $(($(mono_ms) - t_start))

# The dummy VMs, each on a file of its own on the mount.
VMS=()
for h in "${HOSTS[@]}"; do
	ln "$T/bin/sleep" "$T/vm/vm-$h-$$"
	proc_spawn v "exec '$T/vm/vm-$h-$$' 1000 3<>'$STORE/vm-$h.img'"
	VMS+=("$v")
done

t0=$(mono_ms)
on_each arm_one
n=0
for h in "${HOSTS[@]}"; do grep -qx armed "$T/$h.arm" && n=$((n + 1)); done
check "every daemon armed the shared storage ($n of $N, $(($(mono_ms) - t0)) ms)" [ "$n" -eq "$N" ]
[ "$n" -eq "$N" ] || { for h in "${HOSTS[@]}"; do grep -qx armed "$T/$h.arm" || sed "s/^/# $h: /" "$T/$h.arm"; done | head -10; exit 1; }
check "every host's record is on the shared storage" \
	wait_until 10 eval '[ "$(ls "$STORE/.iofence" | wc -l)" -ge "$N" ]'

# --- 1. everybody sees everybody alive ---------------------------------------

phase "1: the query-peer matrix"
# A window of two intervals holds at least one write of a live peer.
W=$((2 * IV))
query "$W" "$T/askers" "$T/hosts" "$T/matrix"
rc=$?
s=$(summary_of "$T/matrix")
echo "# 1: $s"
check "1: the $N x $((N - 1)) query-peer matrix answered (exit $rc)" [ "$rc" -eq 0 ]
check "1: every daemon sees every other host alive ($(field "$T/matrix" alive) of $((N * (N - 1))))" \
	[ "$(field "$T/matrix" alive)" = $((N * (N - 1))) ]
not_all "$T/matrix" alive
report matrix_queries "$(field "$T/matrix" queries)"
report matrix_window_ms "$W"
report matrix_wall_ms "$(field "$T/matrix" wall_ms)"
report matrix_latency_p50_us "$(field "$T/matrix" p50_us)"
report matrix_latency_p99_us "$(field "$T/matrix" p99_us)"

# --- 2. the storage dies: every daemon fences ---------------------------------

phase "2: the storage dies"
# The hang takes effect somewhere inside the faultfs command; on a loaded
# machine starting that command alone can take a second.
t_hang=$(now_ms)
faultfs_set "$MNT" dead '*' || { not_ok "2: faultfs dead mode"; exit 1; }
t_hung=$(now_ms)
echo "# 2: the faultfs command took $((t_hung - t_hang)) ms"
# Fenced at t_ok + T, t_ok at most an interval before the hang; the
# journals are read on tmpfs, never on the mount.
check "2: every daemon journals FENCE_FIRED" \
	wait_until $((TMO / 1000 + 20)) eval '[ "$(hosts_with FENCE_FIRED 1)" -eq "$N" ]'
SLACK_US=1500000
lo=$((TMO - IV - 100)) hi=$((t_hung - t_hang + TMO + 1500))
bad='' wall='' late='' victims_bad=''
declare -A vm_of=()
for i in "${!HOSTS[@]}"; do vm_of[${HOSTS[$i]}]=${VMS[$i]}; done
while read -r h cnt lb so ms named scan; do
	[ "$cnt" -ge 1 ] || { bad+=" $h(none)"; continue; }
	at=$((ms - t_hang))
	wall+="$at "
	late+="$lb "
	if ! between "$lb" 0 "$SLACK_US" || [ "$so" -lt "$TMO" ] || ! between "$at" "$lo" "$hi"; then
		bad+=" $h(late_by_us=$lb since_ok_ms=$so at=$at)"
	fi
	# Its own dummy VM, and nobody else's.
	[ "$named" = "${vm_of[$h]}" ] || victims_bad+=" $h(named: $named, its VM ${vm_of[$h]}, scan $scan)"
done < <(ev_table FENCE_FIRED)
check "2: every fence inside its contract: late_by_us 0..$SLACK_US, since_ok_ms >= $TMO, at $lo..$hi ms after the hang${bad:+ (not:$bad)}" \
	[ -z "$bad" ]
check "2: every daemon's fence named its own dummy VM and only it${victims_bad:+ (not:$victims_bad)}" \
	[ -z "$victims_bad" ]
# The spread across the daemons: min / p50 / p90 / max.
spread() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END {
	printf "min %d p50 %d p90 %d max %d (n=%d)", v[1], v[int((NR + 1) / 2)], v[int((NR * 9 + 9) / 10)], v[NR], NR }'; }
# A search that did not finish by t_ok + T + G (a process it could not
# get past: on a shared machine, another test's dying one) is told, not
# judged: the victims it had found by then are named and killed.
report fence_scans_complete "$(ev_table FENCE_FIRED | grep -c '"complete":true') of $N"
report fence_late_by_us "$(spread <<<"$late")"
report fence_at_ms_after_hang "$(spread <<<"$wall")"
# A dummy VM killed while its file's close hangs on the dead mount
# stays in its exit (D state) until the release: killed, not yet gone.
check "2: every dummy VM killed within T + grace + 5 s of the hang" \
	wait_until $(((TMO + GRACE + 5000) / 1000)) all_killed "${VMS[@]}"
phase "2: fenced"

# --- 3. released, unfenced ----------------------------------------------------

phase "3: released"
faultfs_set "$MNT" healthy '*'
t0=$(mono_ms)
check "3: every daemon sees its storage restored (STORAGE_RESTORED)" \
	wait_until 20 eval '[ "$(hosts_with STORAGE_RESTORED 1)" -eq "$N" ]'
check "3: every dummy VM gone for good" wait_until 10 eval '! any_alive'
phase "3: restored"
on_each unfence_one
files=()
for h in "${HOSTS[@]}"; do files+=("$T/$h.unfence"); done
# One jq for all replies: "HOST STATE-OR-ERROR".
jq -R -r 'input_filename as $f | (fromjson? // {}) as $r | ($f | sub(".*/"; "") | sub("[.]unfence$"; "")) + " " +
	($r.return.state // ($r.error.desc // "no reply"))' "${files[@]}" >"$T/unfenced"
n=$(awk '$2 == "healthy"' "$T/unfenced" | wc -l)
check "3: every daemon unfenced its storage ($n of $N)" [ "$n" -eq "$N" ]
awk '$2 != "healthy"' "$T/unfenced" | head -5 | sed 's/^/#   /'
phase "3: unfenced"

# --- 4. a few hosts stop: dead, then alive ------------------------------------

NS=$CLUSTER_STOP
STOPPED=() RUNNING=()
# Spread over the hosts: one in the middle of each N / NS of them.
declare -A is_stopped=()
for ((k = 0; k < NS; k++)); do is_stopped[$((k * N / NS + N / NS / 2))]=1; done
for ((i = 0; i < N; i++)); do
	if [ -n "${is_stopped[$i]:-}" ]; then
		STOPPED+=("${HOSTS[$i]}")
	else
		RUNNING+=("${HOSTS[$i]}")
	fi
done
printf '%s\n' "${STOPPED[@]}" >"$T/stopped"
for h in "${RUNNING[@]}"; do echo "$h $T/$h.sock"; done >"$T/running"

if [ "${#STOPPED[@]}" -gt 0 ]; then
	phase "4: stopping ${STOPPED[*]}"
	# A running peer wrote since the unfence: alive before the stop.
	query "$W" "$T/running" "$T/stopped" "$T/before"
	check "4: before the stop, ${STOPPED[*]} alive for every other host ($(field "$T/before" alive))" \
		[ "$(field "$T/before" alive)" = $(((N - NS) * NS)) ]
	for h in "${STOPPED[@]}"; do v=PID_$h; kill -STOP "${!v}"; done
	sleep 0.3 # a write in flight when it stopped lands
	query "$TMO" "$T/running" "$T/stopped" "$T/stopped.q"
	echo "# 4: stopped: $(summary_of "$T/stopped.q")"
	check "4: stopped: every other host sees them dead after a window of their timeout ($(field "$T/stopped.q" dead) of $(((N - NS) * NS)))" \
		[ "$(field "$T/stopped.q" dead)" = $(((N - NS) * NS)) ]
	not_all "$T/stopped.q" dead
	for h in "${STOPPED[@]}"; do v=PID_$h; kill -CONT "${!v}"; done
	query "$W" "$T/running" "$T/stopped" "$T/resumed"
	echo "# 4: resumed: $(summary_of "$T/resumed")"
	check "4: resumed: every other host sees them alive again ($(field "$T/resumed" alive) of $(((N - NS) * NS)))" \
		[ "$(field "$T/resumed" alive)" = $(((N - NS) * NS)) ]
	not_all "$T/resumed" alive
	on_each journal_one
	declare -A fired=()
	while read -r h cnt _; do fired[$h]=$cnt; done < <(ev_table FENCE_FIRED)
	bad=''
	for h in "${STOPPED[@]}"; do [ "${fired[$h]:-0}" -eq 2 ] || bad+=" $h(${fired[$h]:-0})"; done
	check "4: a stopped host fenced itself on waking, past its timeout${bad:+ (not:$bad)}" [ -z "$bad" ]
	bad=''
	for h in "${RUNNING[@]}"; do [ "${fired[$h]:-0}" -eq 1 ] || bad+=" $h(${fired[$h]:-0})"; done
	check "4: no running host fenced again${bad:+ (not:$bad)}" [ -z "$bad" ]
	report stopped_window_ms "$TMO"
	report stopped_wall_ms "$(field "$T/stopped.q" wall_ms)"
fi

# --- 5. the end -----------------------------------------------------------------

phase "5: stopping every daemon"
hangs_release
for p in "${!T_PROCS[@]}"; do proc_kill "$p"; done
cluster_cont
for h in "${HOSTS[@]}"; do v=PID_$h; kill -TERM "${!v}"; done
check "5: every daemon exits on SIGTERM" wait_until 30 eval '[ "$(count_where daemon_gone)" -eq "$N" ]'
bad=
for h in "${HOSTS[@]}"; do
	v=PID_$h
	wait "${!v}"
	rc=$?
	[ "$rc" -eq 0 ] || bad+=" $h($rc)"
done
check "5: every daemon exited 0${bad:+ (not:$bad)}" [ -z "$bad" ]
faultfs_stop "$MNT"
left=$(leftovers)
check "5: nothing left mounted${left:+ (left: $left)}" [ -z "$left" ]
report runtime_ms $(($(mono_ms) - t_start))
phase "done"
