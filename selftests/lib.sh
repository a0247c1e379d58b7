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
	rm -rf "$T"
	echo "$t_pass passed, $t_fail failed, $t_skip skipped"
	[ "$t_fail" -eq 0 ]
}
trap 'finish; exit $?' EXIT
trap 'exit 130' INT TERM

T=$(mktemp -d "/tmp/iofence-$TEST_NAME.XXXXXX")

# A pin dir of this test's own under bpffs.
pin_dir() { echo "/sys/fs/bpf/iofence-test-$TEST_NAME-$$"; }

# start_daemon NAME [iofenced options...]: a private daemon; sets
# SOCK_<NAME> and PID_<NAME>, and stops it on exit.
start_daemon() {
	local name=$1 sock="$T/$1.sock" log="$T/$1.log" i
	shift
	# Never the host's real watchdog: a test that wants one passes its own.
	"$IOFENCED" --foreground --socket "$sock" --state-dir "$T/$name.state" \
		--watchdog none \
		"$@" >"$log" 2>&1 &
	local pid=$!
	on_exit "kill -KILL $pid; wait $pid"
	printf -v "SOCK_$name" '%s' "$sock"
	printf -v "PID_$name" '%s' "$pid"
	for ((i = 0; i < 100; i++)); do
		[ -S "$sock" ] && ctl_sock "$sock" version >/dev/null 2>&1 && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	echo "# daemon $name did not start:" >&2
	sed 's/^/#   /' "$log" >&2
	return 1
}

# stop_daemon NAME: SIGTERM, and the exit status of the daemon.
stop_daemon() {
	local pid_var="PID_$1"
	kill -TERM "${!pid_var}" 2>/dev/null
	wait "${!pid_var}"
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

# wait_until SECONDS CMD...: runs CMD every 50 ms until it succeeds; fails
# when SECONDS (may be fractional) pass first. For bounds, not speed.
wait_until() {
	local end
	end=$(($(date +%s%N) + $(awk -v s="$1" 'BEGIN { printf "%d", s * 1e9 }')))
	shift
	while ! "$@"; do
		[ "$(date +%s%N)" -lt "$end" ] || return 1
		sleep 0.05
	done
}

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
