# SPDX-License-Identifier: GPL-2.0-only
#
# Shared by the end-to-end tests: TAP-style results, a private daemon per
# test, and cleanup that runs however the test ends. Source it from bash.

: "${OUT:=build}"
IOFENCED=${IOFENCED:-$OUT/iofenced}
IOFENCECTL=${IOFENCECTL:-$OUT/iofencectl}
TEST_NAME=$(basename "$0" .sh)

t_pass=0
t_fail=0
t_skip=0
t_num=0
t_cleanups=()

ok() { # name
	t_num=$((t_num + 1)) t_pass=$((t_pass + 1))
	echo "ok $t_num - $1"
}
not_ok() { # name [detail]
	t_num=$((t_num + 1)) t_fail=$((t_fail + 1))
	echo "not ok $t_num - $1${2:+: $2}"
}
skip() { # reason
	t_num=$((t_num + 1)) t_skip=$((t_skip + 1))
	echo "SKIP: $1"
}
# check NAME CMD...: passes when CMD succeeds.
check() {
	local name=$1
	shift
	if "$@"; then ok "$name"; else not_ok "$name"; fi
}

# Cleanups run last-in first-out on exit, success or not.
on_exit() { t_cleanups+=("$*"); }
run_cleanups() {
	local i
	for ((i = ${#t_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${t_cleanups[$i]}" >/dev/null 2>&1 || true
	done
	t_cleanups=()
}
# Loop devices on files of this test, however they were made (a loop made
# in a $(...) subshell registers its cleanup there, where it is lost).
detach_loops() {
	local l f
	for l in /sys/block/loop*; do
		f=$l/loop/backing_file
		[ -r "$f" ] || continue
		case "$(cat "$f")" in
		"$T"/*) losetup -d "/dev/${l##*/}" 2>/dev/null ;;
		esac
	done
}

finish() {
	run_cleanups
	detach_loops
	# A sanitizer build reports into the daemon logs: that is a failure.
	local log
	for log in "$T"/*.log; do
		[ -f "$log" ] || continue
		if grep -qE 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$log"; then
			not_ok "sanitizer report in $(basename "$log")"
			grep -E -A12 'ERROR: [A-Za-z]+Sanitizer|runtime error:' "$log" | sed 's/^/#   /'
		fi
	done
	# Lazily: a process of the test may still hold a file in it.
	[ -z "$t_tmpfs" ] || umount -l "$T" 2>/dev/null
	rm -rf "$T"
	echo "$t_pass passed, $t_fail failed, $t_skip skipped"
	[ "$t_fail" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'exit 130' INT TERM

# Scratch space on tmpfs where there is one. On this VM's disk a write
# can wait on an ext4 journal commit behind slow I/O, for seconds under
# load: a test's own log, reply and state files must not, or it times
# the disk instead of the daemon. IOFENCE_TEST_TMP overrides.
tmp_base=${IOFENCE_TEST_TMP:-}
if [ -z "$tmp_base" ]; then
	tmp_base=/tmp
	[ -d /dev/shm ] && [ -w /dev/shm ] &&
		[ "$(stat -f -c %T /dev/shm 2>/dev/null)" = tmpfs ] && tmp_base=/dev/shm
fi
T=$(mktemp -d "$tmp_base/iofence-$TEST_NAME.XXXXXX")
# A tmpfs of the test's own, as root: a file storage in $T is then on a
# device no other test's process has a file or a cwd on, so a fence of
# one test never finds another's processes among its victims when
# run.sh runs two tests at once (they shared /dev/shm's tmpfs before).
t_tmpfs=
[ "$(id -u)" != 0 ] || ! mount -t tmpfs -o mode=0700 "iofence-$TEST_NAME" "$T" 2>/dev/null || t_tmpfs=1

# A pin dir of this test's own under bpffs.
pin_dir() { echo "/sys/fs/bpf/iofence-test-$TEST_NAME-$$"; }

# daemon_answers NAME SOCK PID LOG SECONDS: waits until the daemon answers
# on SOCK; fails, showing its log, when it exits or SECONDS pass first.
daemon_answers() {
	local name=$1 sock=$2 pid=$3 log=$4 i
	for ((i = 0; i < $5 * 20; i++)); do
		[ -S "$sock" ] && ctl_sock "$sock" version >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "# daemon $name did not start:" >&2
	sed 's/^/#   /' "$log" >&2
	return 1
}

# start_daemon NAME [iofenced options...]: a private daemon; sets
# SOCK_<NAME> and PID_<NAME>, and stops it on exit.
start_daemon() {
	local name=$1 sock="$T/$1.sock" log="$T/$1.log"
	shift
	# Never the host's real watchdog: a test that wants one passes its own.
	"$IOFENCED" --foreground --socket "$sock" --state-dir "$T/$name.state" \
		--watchdog none \
		"$@" >"$log" 2>&1 &
	local pid=$!
	on_exit "kill -KILL $pid; reap $pid"
	printf -v "SOCK_$name" '%s' "$sock"
	printf -v "PID_$name" '%s' "$pid"
	daemon_answers "$name" "$sock" "$pid" "$log" 5
}

# stop_daemon NAME: SIGTERM, and the exit status of the daemon (125 when
# it cannot be reaped within 30 s, see reap).
stop_daemon() {
	local pid_var="PID_$1"
	kill -TERM "${!pid_var}" 2>/dev/null
	reap "${!pid_var}" 30
}

ctl_sock() { # socket args...
	local sock=$1
	shift
	timeout 20 "$IOFENCECTL" --socket "$sock" "$@"
}

# A loop device on a fresh file under $T; detached on exit by finish().
make_loop() { # file size
	truncate -s "$2" "$1" || return 1
	losetup --find --show "$1"
}

# jqr FILTER: jq over stdin, raw output; the tests' JSON reader.
jqr() { jq -r "$@"; }

need_root() {
	[ "$(id -u)" -eq 0 ] || { skip "needs root"; exit 0; }
}

# --- waiting on processes and conditions ---------------------------------

# now_ms: the wall clock (CLOCK_REALTIME, as in event timestamps) in ms.
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# mono_ms: a clock that only moves forward (CLOCK_BOOTTIME, from
# /proc/uptime, to 10 ms), for durations: the wall clock may be stepped
# (NTP, a VM resumed and set right), and a wait timed by it would end
# early or late. now_ms stays for comparisons with event timestamps.
mono_ms() {
	local up
	read -r up _ </proc/uptime
	echo $((10#${up/./} * 10))
}

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; fails
# when SECONDS (may be fractional) pass first. For bounds, not speed.
wait_until() {
	local end
	end=$(($(mono_ms) + $(awk -v s="$1" 'BEGIN { printf "%d", s * 1000 }')))
	shift
	while ! "$@"; do
		[ "$(mono_ms)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

# threads_out PID: no thread of PID runs any more: all gone, or only its
# zombie leader left.
threads_out() {
	local f st
	for f in /proc/"$1"/task/*/stat; do
		st=$(sed -n 's/.*) \(.\).*/\1/p' "$f" 2>/dev/null)
		case "$st" in '' | Z | X) ;; *) return 1 ;; esac
	done
}
# show_threads PID: each thread's state, wait channel and kernel stack.
show_threads() {
	local t
	for t in /proc/"$1"/task/*; do
		[ -d "$t" ] || continue
		echo "#   thread ${t##*/} ($(cat "$t/comm" 2>/dev/null)):" \
			"state $(sed -n 's/.*) \(.\).*/\1/p' "$t/stat" 2>/dev/null), wchan $(cat "$t/wchan" 2>/dev/null)"
		timeout 1 cat "$t/stack" 2>/dev/null | head -12 | sed 's/^/#     /'
	done
}
# reap PID [SECONDS]: wait for PID and return its exit status, once every
# thread of it is out (SECONDS, 10 by default). A process whose main
# thread exited shows as a zombie while a thread is still in the kernel
# (an io-wq worker on a storage that hangs), and `wait` would sit there
# until run.sh's 600 s: instead, 125 and where each thread is. The
# process is then left to init.
reap() {
	wait_until "${2:-10}" threads_out "$1" || {
		echo "# pid $1 cannot be reaped: a thread of it is still there after ${2:-10} s"
		show_threads "$1"
		return 125
	}
	wait "$1"
}

# sanitizer_build BINARY: it was built with ASan or UBSan (SANITIZE=1).
sanitizer_build() { readelf -d "$1" 2>/dev/null | grep -qE 'lib(a|ub)san'; }

# pid_state PID: the one-letter state (R, S, D, T, Z...), empty when gone.
pid_state() { sed -n 's/.*) \(.\).*/\1/p' "/proc/$1/stat" 2>/dev/null; }

# pid_alive PID: the process exists and is not a zombie (kill -0 succeeds
# on a child that died and was not reaped yet).
pid_alive() {
	local st
	st=$(pid_state "$1")
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pid_start PID: its start time (clock ticks since boot), to tell the
# process from a later one that got the same pid; empty when gone.
pid_start() { sed -n 's/.*) //p' "/proc/$1/stat" 2>/dev/null | awk '{ print $20 }'; }

# on_exit_drop CMD...: forgets a cleanup that on_exit registered with
# exactly this text, e.g. a kill of a pid that was reaped already and
# may be recycled by the time the test ends.
on_exit_drop() {
	local i
	for i in "${!t_cleanups[@]}"; do
		[ "${t_cleanups[$i]}" = "$*" ] && unset 't_cleanups[i]'
	done
	t_cleanups=("${t_cleanups[@]}")
}

# --- hung storages next to a healthy one (test_isolation_*.sh) -----------
#
# A test that hangs storages proves two things: the broken storages fence
# on time, and nothing else notices. These helpers watch the second part
# from outside, as a management client would: a well-behaved client that
# keeps asking query-status, and the healthy storage's heartbeats.
# Nothing here reads a process's cmdline or maps, or stats a file on a
# mount: a victim stuck on a hung FUSE mount blocks such readers (ps and
# pgrep -f included) until the hang is released.

# pid_exiting PID: gone, a zombie, or past SIGKILL and in its exit (flag
# PF_EXITING): killed, though a victim whose last close waits on a hung
# FUSE mount (FLUSH) stays in D state there until the hang is released.
pid_exiting() {
	local st flags
	st=$(sed -n 's/.*) //p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] || return 0
	case $st in Z* | X*) return 0 ;; esac
	flags=$(awk '{ print $7 }' <<<"$st")
	[ -n "$flags" ] && (((flags & 0x4) != 0))
}

# jqe FILTER...: the filter holds on stdin: its last output is neither
# false nor null, and there is one (jq 1.6's -e passes empty input).
jqe() {
	local r
	r=$(jq "$@" 2>/dev/null | tail -n 1)
	[ -n "$r" ] && [ "$r" != false ] && [ "$r" != null ]
}

# ms_since MS: milliseconds from MS (now_ms) to now.
ms_since() { echo $(($(now_ms) - $1)); }

# qs_watch_start SOCK UUID FILE: a background client that asks for
# query-status every 200 ms, each time on a new connection, and appends
# one line per answer to FILE: "<wall ms> <latency ms> <exit status>
# <JSON of UUID's heartbeat and the daemon's lag, or null>". Sets
# QS_WATCH_PID; qs_watch_stop FILE ends it. An answer that takes 10 s
# is recorded as exit status 124.
qs_watch_start() {
	local sock=$1 uuid=$2 file=$3
	: >"$file"
	rm -f "$file.stop"
	(
		trap - EXIT
		while [ ! -e "$file.stop" ]; do
			t0=$(now_ms)
			out=$(timeout 10 "$IOFENCECTL" --socket "$sock" --json status 2>/dev/null)
			rc=$?
			t1=$(now_ms)
			j=$(jq -c --arg u "$uuid" '{hb: ([.storages[]? | select(.uuid == $u) | .heartbeat][0]),
				lag: .lag, clients: .clients}' <<<"$out" 2>/dev/null)
			echo "$t0 $((t1 - t0)) $rc ${j:-null}" >>"$file"
			sleep 0.2
		done
	) </dev/null >/dev/null 2>&1 &
	QS_WATCH_PID=$!
	on_exit "touch '$file.stop'; kill $QS_WATCH_PID; wait $QS_WATCH_PID"
}
qs_watch_stop() { # file
	touch "$1.stop"
	wait "$QS_WATCH_PID" 2>/dev/null
	on_exit_drop "touch '$1.stop'; kill $QS_WATCH_PID; wait $QS_WATCH_PID"
}

# qs_watch_check LABEL FILE INTERVAL_MS LATE_MS: the checks of a watched
# healthy storage. Every query answered within 2 s; in every answer the
# storage is healthy and its last success at most LATE_MS old (the moment
# it would be late); its writes_ok grew by at least half of one write per
# interval over the watch; the daemon reports its heartbeat jitter and
# its lag. Generous bounds: a slow machine passes, a stalled daemon not.
qs_watch_check() {
	local label=$1 file=$2 iv=$3 late=$4 all n slow bad span grew want last
	# One JSON array of the samples: {t, lat, rc, d}.
	all=$(awk '{ d = $0; sub(/^[^ ]+ [^ ]+ [^ ]+ /, "", d)
		printf "{\"t\":%s,\"lat\":%s,\"rc\":%s,\"d\":%s}\n", $1, $2, $3, d }' "$file" | jq -cs .)
	n=$(jq length <<<"$all")
	if [ "${n:-0}" -lt 3 ]; then
		not_ok "$label: the watching client got answers (${n:-0})"
		return
	fi
	slow=$(jq -r '[.[] | select(.lat > 2000 or .rc != 0) | "\(.lat) ms (exit \(.rc))"] | join(", ")' <<<"$all")
	check "$label: query-status answered within 2 s, $n times${slow:+ (not: $slow)}" [ -z "$slow" ]
	bad=$(jq -r --argjson late "$late" '[.[] | select(.rc == 0) | .d.hb |
		select(. == null or .state != "healthy" or (.since_ok_ms | type) != "number" or .since_ok_ms > $late) |
		"\(.state // "missing") since_ok \(.since_ok_ms // "-")"] | unique | join(", ")' <<<"$all")
	check "$label: healthy storage healthy, its last success <= $late ms old, in every answer${bad:+ (not: $bad)}" \
		[ -z "$bad" ]
	read -r span grew < <(jq -r '[.[] | select(.rc == 0 and .d.hb != null)] |
		if length < 2 then "0 0" else "\(.[-1].t - .[0].t) \(.[-1].d.hb.writes_ok - .[0].d.hb.writes_ok)" end' <<<"$all")
	want=$((span / iv / 2))
	check "$label: healthy storage wrote $grew heartbeats in $span ms (want >= $want)" \
		[ "${grew:-0}" -ge "$want" ]
	last=$(jq -c '[.[] | select(.rc == 0 and .d.hb != null)][-1].d // {}' <<<"$all")
	check "$label: heartbeat jitter reported (jitter_us.last, .max): $(jq -c '.hb.jitter_us' <<<"$last")" \
		jqe '(.hb.jitter_us.last | type) == "number" and (.hb.jitter_us.max | type) == "number"' <<<"$last"
	check "$label: healthy heartbeats start on time (jitter_us.max < interval / 2)" \
		jqe --argjson b $((iv * 500)) '(.hb.jitter_us.max | type) == "number" and .hb.jitter_us.max < $b' <<<"$last"
	check "$label: the daemon reports the lag of its core and control sides: $(jq -c '.lag' <<<"$last")" \
		jqe '[.lag.core, .lag.control] | all(. != null and ([.worst_us, .recent_us, .p50_us, .p99_us, .samples] |
			all(type == "number")))' <<<"$last"
	check "$label: the core's timers never ran interval / 2 late (lag.core.worst_us)" \
		jqe --argjson b $((iv * 500)) '(.lag.core.worst_us | type) == "number" and .lag.core.worst_us < $b' <<<"$last"
}

# --- processes of the test, safe against recycled pids ---------------------

# Our background processes not reaped yet, with their start times.
declare -A T_PROCS=()
# proc_track PID: ours; killed at exit, after the hangs are released.
proc_track() {
	T_PROCS[$1]=$(pid_start "$1")
	[ -n "${T_PROCS[$1]}" ] || T_PROCS[$1]=gone
	on_exit "proc_kill $1"
	on_exit hangs_release
}
# proc_alive PID: our process still runs (not a zombie, not a new pid).
proc_alive() {
	[ -n "${T_PROCS[$1]:-}" ] && pid_alive "$1" && [ "$(pid_start "$1")" = "${T_PROCS[$1]}" ]
}
# proc_killed PID: ours no longer runs, or is past SIGKILL in its exit.
proc_killed() {
	! proc_alive "$1" || pid_exiting "$1"
}
# proc_kill PID: SIGKILL, and reap it once gone (release the hangs first).
proc_kill() {
	[ -n "${T_PROCS[$1]:-}" ] || return 0
	proc_alive "$1" && kill -KILL "$1" 2>/dev/null
	wait_until 10 eval "! proc_alive $1" ||
		echo "# pid $1 survives SIGKILL (state $(pid_state "$1"))"
	wait "$1" 2>/dev/null
	unset "T_PROCS[$1]"
}
# proc_spawn VAR SNIPPET: SNIPPET (which execs the program) in the
# background, out of this shell's jobs (its SIGKILL is news to nobody),
# its output to $T/procs.out; VAR gets its pid.
proc_spawn() {
	local pid
	pid=$( (eval "$2") </dev/null >>"$T/procs.out" 2>&1 & echo $!)
	proc_track "$pid"
	printf -v "$1" '%s' "$pid"
}

# pids_ascend N: the next N pids come out in ascending order. A scenario
# that needs /proc's order (pid order) across processes it starts must not
# straddle the wrap at pid_max (32768 here): near the top, the next pid is
# moved back to the bottom, where the kernel skips the ones in use.
pids_ascend() {
	local max last
	max=$(cat /proc/sys/kernel/pid_max) last=$(cat /proc/sys/kernel/ns_last_pid)
	[ $((max - last)) -gt "$1" ] && return 0
	echo "# pid $last is within $1 of pid_max $max: next pids from 300"
	echo 299 >/proc/sys/kernel/ns_last_pid
}

# --- faultfs mounts whose hangs are released at exit ------------------------
# (the test sources selftests/faultfs/faultfs.sh and sets FAULTFS)

T_MOUNTS=()
# ff_mount VAR NAME [faultfs options...]: faultfs on $T/NAME over
# $T/NAME.backing; unmounted at exit, after every hang is released.
ff_mount() {
	local var=$1 m=$T/$2
	shift 2
	faultfs_start "$m.backing" "$m" "$@" || return 1
	on_exit "faultfs_stop '$m'"
	T_MOUNTS+=("$m")
	on_exit hangs_release
	printf -v "$var" '%s' "$m"
}
# hangs_release: every file of every mount of the test healthy again.
hangs_release() {
	local m rc=0
	for m in "${T_MOUNTS[@]}"; do
		faultfs_mounted "$m" || continue
		FAULTFS_CTL_TIMEOUT=3 faultfs_set "$m" healthy '*' 2>/dev/null || {
			echo "# faultfs on $m does not answer: its hangs stay"
			rc=1
		}
	done
	return $rc
}
# leftovers [PREFIX]: what is still mounted or attached (loop devices)
# under PREFIX (default: all of $T), one per line; empty: nothing.
leftovers() {
	local p=${1:-$T} l f
	# The test's own tmpfs at $T is no leftover: finish() unmounts it.
	awk -v p="$p" -v own="${t_tmpfs:+$T}" '($5 == p || index($5, p "/") == 1) && $5 != own { print "mount " $5 }' /proc/self/mountinfo
	for l in /sys/block/loop*; do
		f=$l/loop/backing_file
		[ -r "$f" ] || continue
		case "$(cat "$f")" in "$p"*) echo "loop /dev/${l##*/}" ;; esac
	done
}

# --- daemons that may hang on their storages --------------------------------

declare -A T_DSTART=()
# daemon_on NAME STATE [iofenced options...]: a daemon whose socket and
# state dir are $T/STATE.sock and $T/STATE.state (so that a second daemon
# can take over the state of a first), its log $T/NAME.log; sets
# SOCK_<NAME> and PID_<NAME>. Killed at exit, after the hangs are released.
# It has DAEMON_START_S seconds (default 5) to answer on its socket.
daemon_on() {
	local name=$1 st=$2 sock="$T/$2.sock" log="$T/$1.log" pid
	shift 2
	"$IOFENCED" --foreground --socket "$sock" --state-dir "$T/$st.state" \
		--watchdog none "$@" >"$log" 2>&1 &
	pid=$!
	T_DSTART[$name]=$(pid_start "$pid")
	on_exit "daemon_gone $name || kill -KILL $pid; reap $pid"
	on_exit hangs_release
	printf -v "SOCK_$name" '%s' "$sock"
	printf -v "PID_$name" '%s' "$pid"
	daemon_answers "$name" "$sock" "$pid" "$log" "${DAEMON_START_S:-5}"
}
# daemon_gone NAME: its process no longer runs (a zombie counts as gone).
daemon_gone() {
	local v="PID_$1"
	! pid_alive "${!v}" || [ "$(pid_start "${!v}")" != "${T_DSTART[$1]}" ]
}
# daemon_stop NAME SECONDS: SIGTERM, and its exit status once it exits;
# 124 (and still running) when SECONDS pass first, 125 when a thread of
# it stays in the kernel SECONDS more (see reap).
daemon_stop() {
	local v="PID_$1"
	daemon_gone "$1" || kill -TERM "${!v}" 2>/dev/null
	wait_until "$2" daemon_gone "$1" || return 124
	reap "${!v}" "$2"
}

# ctl_t SECONDS SOCK ARGS...: iofencectl with its own time bound.
ctl_t() {
	local s=$1 sock=$2
	shift 2
	timeout "$s" "$IOFENCECTL" --socket "$sock" "$@"
}
# arm_storages SOCK HOST SPEC...: setup of those storages for HOST (host
# state connected first); succeeds when every one of them is armed.
arm_storages() {
	local sock=$1 host=$2 out s args=()
	shift 2
	for s in "$@"; do args+=(--storage "$s"); done
	ctl_sock "$sock" set-host-state connected >/dev/null || return 1
	out=$(ctl_sock "$sock" --json setup --host "$host" "${args[@]}" 2>&1) || {
		echo "# setup failed: $out"
		return 1
	}
	[ "$(jq -r '[.storages[].result] | unique | join(",")' <<<"$out")" = armed ]
}
# hb_of SOCK UUID: that storage's heartbeat object (query-status).
hb_of() {
	ctl_sock "$1" --json status | jq -c --arg u "$2" '.storages[] | select(.uuid == $u) | .heartbeat'
}
# hb_wrote SOCK UUID N: it has N successful heartbeat writes or more.
hb_wrote() { [ "$(hb_of "$1" "$2" | jq -r '.writes_ok // 0')" -ge "$3" ] 2>/dev/null; }
# journal_of SOCK: the whole journal, one JSON array.
journal_of() { ctl_sock "$1" --json events --since 0; }
# j_count JOURNAL EVENT STORAGE: how many EVENTs of STORAGE (0 when the
# journal could not be read).
j_count() {
	local n
	n=$(jq --arg n "$2" --arg s "$3" '[.[] | select(.event == $n and .data.storage == $s)] | length' <<<"$1" 2>/dev/null)
	echo "${n:-0}"
}
# j_first JOURNAL EVENT STORAGE: the first such event, whole (empty: none).
j_first() {
	jq -c --arg n "$2" --arg s "$3" '[.[] | select(.event == $n and .data.storage == $s)][0] // empty' <<<"$1"
}
# j_ms EVENT_JSON: its wall-clock time in ms.
j_ms() { jq '.timestamp.seconds * 1000 + (.timestamp.microseconds / 1000 | floor)' <<<"$1"; }
# j_has SOCK EVENT STORAGE: the journal holds such an event.
j_has() { [ "$(j_count "$(journal_of "$1")" "$2" "$3")" -gt 0 ] 2>/dev/null; }

# between V LO HI: LO <= V <= HI (integers).
between() { [ "$1" -ge "$2" ] 2>/dev/null && [ "$1" -le "$3" ]; }

# fence_check LABEL JOURNAL STORAGE T0_MS TIMEOUT_MS INTERVAL_MS GRACE_MS:
# STORAGE, broken at T0, fenced on time: FENCE_FIRED about T after T0 (its
# last success may be an interval before T0), FENCE_COMPLETED about the
# kill grace later, both with the account of their victim search.
fence_check() {
	local label=$1 j=$2 s=$3 t0=$4 tmo=$5 iv=$6 grace=$7 ev done_ at dt
	ev=$(j_first "$j" FENCE_FIRED "$s")
	if [ -z "$ev" ]; then
		not_ok "$label: FENCE_FIRED"
		return 1
	fi
	at=$(($(j_ms "$ev") - t0))
	check "$label: FENCE_FIRED $at ms after the storage broke (T = $tmo ms; want T - interval - 100 .. T + 1500)" \
		between "$at" $((tmo - iv - 100)) $((tmo + 1500))
	check "$label: FENCE_FIRED accounts for its victim search: $(jq -c '.data.scan' <<<"$ev")" \
		jqe '.data.scan | (.examined | type) == "number" and (.skipped | type) == "number" and
			has("last_error") and (.complete | type) == "boolean"' <<<"$ev"
	done_=$(j_first "$j" FENCE_COMPLETED "$s")
	if [ -z "$done_" ]; then
		not_ok "$label: FENCE_COMPLETED"
		return 1
	fi
	dt=$(($(j_ms "$done_") - $(j_ms "$ev")))
	check "$label: FENCE_COMPLETED $dt ms after FENCE_FIRED (kill grace $grace ms; want <= grace + 1500)" \
		[ "$dt" -le $((grace + 1500)) ]
	check "$label: FENCE_COMPLETED accounts for its victim search" \
		jqe '.data.scan | (.examined | type) == "number" and (.skipped | type) == "number"' <<<"$done_"
}
# healthy_check LABEL JOURNAL STORAGE: never late, never fenced. A
# CORE_LAG is told, not judged: its threshold is a fraction of an
# interval, a goal of the bench rather than a bound of a test.
healthy_check() {
	local late fired lag
	if ! jqe 'type == "array"' <<<"$2"; then
		not_ok "$1: healthy storage $3: the journal tells (no journal read)"
		return
	fi
	late=$(j_count "$2" HEARTBEAT_LATE "$3")
	fired=$(j_count "$2" FENCE_FIRED "$3")
	check "$1: healthy storage $3: no HEARTBEAT_LATE ($late), no FENCE_FIRED ($fired)" \
		[ "${late:-x}${fired:-x}" = 00 ]
	[ "${late:-x}${fired:-x}" = 00 ] ||
		jq -c --arg u "$3" '.[] | select(.data.storage == $u and .event != "ARMED") | [.seq, .timestamp, .event, .data]' <<<"$2" |
		head -20 | sed 's/^/#   /'
	lag=$(jq -c '[.[] | select(.event == "CORE_LAG") | .data]' <<<"$2")
	[ "$lag" = "[]" ] || echo "# $1: CORE_LAG $lag"
}
# killed_within LABEL T0_MS BOUND_MS PID...: every one of them killed (see
# proc_killed) by T0 + BOUND; says when, counted from T0.
all_killed() {
	local p
	for p in "$@"; do proc_killed "$p" || return 1; done
}
killed_within() {
	local label=$1 t0=$2 bound=$3 left s p
	shift 3
	s=$((t0 + bound - $(now_ms)))
	[ "$s" -ge 0 ] || s=0
	s=$(awk -v m="$s" 'BEGIN { print m / 1000 }')
	if wait_until "$s" all_killed "$@"; then
		ok "$label: killed $(ms_since "$t0") ms after the storage broke (bound $bound ms)"
	else
		left=
		for p in "$@"; do proc_killed "$p" || left+=" $p($(pid_state "$p"))"; done
		not_ok "$label: killed within $bound ms of the storage breaking" "still running:$left"
	fi
}
# j_victims JOURNAL STORAGE...: the pids that the fences of those storages
# named (FENCE_FIRED, FENCE_KILLED), one per line.
j_victims() {
	local j=$1
	shift
	jq -r --args '$ARGS.positional as $s | .[] | select((.event == "FENCE_FIRED" or .event == "FENCE_KILLED")
		and (.data.storage as $x | $s | index($x))) | .data.victims[]?.pid' "$@" <<<"$j" | sort -un
}
# victims_named LABEL JOURNAL "STORAGE..." PID...: each PID was named by a
# fence of those storages: this daemon killed it, not something else.
victims_named() {
	local label=$1 j=$2 p missing='' named
	# shellcheck disable=SC2086 # a list of storages
	named=$(j_victims "$j" $3)
	shift 3
	for p in "$@"; do grep -qx "$p" <<<"$named" || missing+=" $p"; done
	check "$label: the fence named its victims ($*)${missing:+, not:$missing}" [ -z "$missing" ]
}
# all_alive PID...: every one of them still runs.
all_alive() {
	local p
	for p in "$@"; do proc_alive "$p" || return 1; done
}
# stop_everything: what the exit of a test does, done now, so that the
# test can then check that nothing is left behind: the hangs released,
# our processes killed, the daemons stopped (SIGKILL after 10 s), loop
# devices on the test's files detached, faultfs mounts unmounted.
stop_everything() {
	local p n m v
	hangs_release
	for p in "${!T_PROCS[@]}"; do proc_kill "$p"; done
	for n in "${!T_DSTART[@]}"; do
		daemon_gone "$n" && continue
		daemon_stop "$n" 10 >/dev/null
		[ $? -ne 124 ] && continue
		v="PID_$n"
		kill -KILL "${!v}" 2>/dev/null
		wait_until 10 daemon_gone "$n"
	done
	detach_loops
	for m in "${T_MOUNTS[@]}"; do
		faultfs_mounted "$m" && faultfs_stop "$m"
	done
	return 0
}

# check_released: stops every daemon and helper the test started, then
# checks that nothing is left mounted or attached under $T.
check_released() {
	local r
	stop_everything
	r=$(leftovers)
	check "released and stopped: nothing left mounted or attached under the test dir${r:+ ($r)}" [ -z "$r" ]
}

# run_scenarios N...: runs sc<N> for each N, timed, then check_released.
run_scenarios() {
	local n s0 t0
	t0=$(now_ms)
	for n; do
		s0=$(now_ms)
		"sc$n"
		echo "# sc$n: $(ms_since "$s0") ms"
	done
	check_released
	echo "# total $(ms_since "$t0") ms"
}
