#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# One daemon per state: a second iofenced on the state dir, the socket or
# the pin dir of a running one exits at once, naming what is taken and by
# which pid, and the running one's journal, pins, state file and status
# are exactly as they were. Once the first stops, its state is free.
. "$(dirname "$0")/../lib.sh"
need_root

PIN=$(pin_dir)
PIN2=$PIN-other
on_exit "rm -rf '$PIN' '$PIN2'"
ST=$T/a.state
start_daemon a --pin-dir "$PIN" --state-dir "$ST" ||
	{ not_ok "first daemon starts"; exit 1; }
S=$SOCK_a
mkdir -p "$T/mnt"
out=$(ctl_sock "$S" setup --host host-a --no-status-check \
	--storage "uuid=fs1,type=file,target=$T/mnt")
check "first daemon arms a storage" grep -qx "fs1: armed" <<<"$out"

# What must not move: the journal, the pins, the state file, the status
# (its counters and clocks aside).
journal() { ctl_sock "$S" raw '{"execute":"query-events"}'; }
pins() { ls -l --time-style=+%s.%N "$PIN" 2>&1; }
state_sum() { sha256sum <"$ST/state"; }
status() {
	ctl_sock "$S" --json status |
		jq -cS '{host_state, last_seq, bpf: .bpf.active,
			storages: [.storages[] | {uuid, index, flight,
				armed_at, updated_at, params,
				hb: .heartbeat.state}]}'
}
j0=$(journal) p0=$(pins) s0=$(state_sum) st0=$(status)
[ -n "$j0" ] && [ -n "$s0" ] && [ -n "$st0" ] ||
	{ not_ok "first daemon's state read"; exit 1; }

# second NAME WANT-RE iofenced-options...: runs a second daemon, which
# must exit non-zero well before its timeout with WANT-RE in its log.
second() {
	local name=$1 want=$2 log="$T/$1.log" t0 rc ms
	shift 2
	t0=$(now_ms)
	timeout 20 "$IOFENCED" --foreground --watchdog none "$@" >"$log" 2>&1
	rc=$?
	ms=$(($(now_ms) - t0))
	check "$name: exits with an error (status $rc)" \
		[ "$rc" -ne 0 -a "$rc" -ne 124 ]
	check "$name: exits at once (${ms} ms, bound 5000)" [ "$ms" -lt 5000 ]
	if grep -qE "$want" "$log"; then
		ok "$name: says what is taken and by whom"
	else
		not_ok "$name: says what is taken and by whom" "$(head -3 "$log")"
	fi
	check "$name: no BPF loaded, nothing armed" \
		bash -c "! grep -qE 'BPF tracker loaded|re-arming|ready on' '$log'"
}
unchanged() { # name: the first daemon is exactly as it was, and answers
	check "$1: first daemon's journal unchanged" [ "$(journal)" = "$j0" ]
	check "$1: first daemon's pins unchanged" [ "$(pins)" = "$p0" ]
	check "$1: first daemon's state file unchanged" [ "$(state_sum)" = "$s0" ]
	check "$1: first daemon's status unchanged" [ "$(status)" = "$st0" ]
	check "$1: first daemon still running" pid_alive "$PID_a"
}

pid=$PID_a
second same-state "state dir $ST: another iofenced is serving it \(pid $pid, holding $ST/lock\)" \
	--state-dir "$ST" --socket "$T/b.sock" --pin-dir "$PIN2"
check "same-state: never made its socket or its pin dir" \
	[ ! -e "$T/b.sock" -a ! -e "$PIN2" ]
unchanged same-state

second same-socket "socket $S: another iofenced is serving it \(pid $pid, holding $S.lock\)" \
	--state-dir "$T/c.state" --socket "$S" --pin-dir "$PIN2"
check "same-socket: wrote no state, made no pin dir" \
	[ ! -e "$T/c.state/state" -a ! -e "$PIN2" ]
check "same-socket: the socket is still the first daemon's" [ -S "$S" ]
unchanged same-socket

second same-pins "pin dir $PIN: another iofenced is serving it \(pid $pid, holding a lock on it\)" \
	--state-dir "$T/d.state" --socket "$T/d.sock" --pin-dir "$PIN"
check "same-pins: wrote no state, made no socket" \
	[ ! -e "$T/d.state/state" -a ! -e "$T/d.sock" ]
unchanged same-pins

# --no-bpf takes no pin dir: it may share one (and it touches no pins).
second same-state-no-bpf "state dir $ST: another iofenced is serving it \(pid $pid," \
	--state-dir "$ST" --socket "$T/e.sock" --no-bpf
unchanged same-state-no-bpf

# A detached daemon (no --foreground) is the child of the fork: the lock
# file names it, not the parent that exited.
"$IOFENCED" --socket "$T/f.sock" --state-dir "$T/f.state" --no-bpf \
	--watchdog none >"$T/f.log" 2>&1
rc=$?
fpid=$(pgrep -f -- "--socket $T/f.sock --state-dir")
[ -n "$fpid" ] && on_exit "kill -TERM $fpid"
check "detached daemon started (status $rc)" [ "$rc" -eq 0 -a -n "$fpid" ]
lpid=$(cat "$T/f.state/lock" 2>/dev/null)
check "its lock file names the running daemon ($fpid), not its parent ($lpid)" \
	[ "$lpid" = "$fpid" ]
second detached "state dir $T/f.state: another iofenced is serving it \(pid $fpid," \
	--state-dir "$T/f.state" --socket "$T/g.sock" --no-bpf
if [ -n "$fpid" ]; then
	kill -TERM "$fpid" 2>/dev/null
	check "detached daemon stops on SIGTERM" \
		wait_until 10 bash -c "! kill -0 $fpid 2>/dev/null"
	on_exit_drop "kill -TERM $fpid"
fi

# Stopped, the first one's state, socket and pins are free again.
stop_daemon a
check "first daemon: clean exit" [ $? -eq 0 ]
on_exit_drop "kill -KILL $PID_a; reap $PID_a"
mv "$T/a.log" "$T/a-first.log"
if start_daemon a --pin-dir "$PIN" --state-dir "$ST"; then
	ok "a new daemon starts on the same state dir, socket and pin dir"
	out=$(ctl_sock "$S" --json status | jqr '[.storages[].uuid] | join(" ")')
	check "it re-armed what the first one had armed ($out)" [ "$out" = fs1 ]
else
	not_ok "a new daemon starts on the same state dir, socket and pin dir"
fi
