#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# iofenced under systemd, without systemd as PID 1: the units pass
# `systemd-analyze verify` with not one warning; the daemon talks the
# sd_notify protocol to a NOTIFY_SOCKET this test owns (READY only once
# the stored state is re-armed, STATUS lines a person reads, WATCHDOG at
# half of WATCHDOG_USEC and none after STOPPING); it serves a socket
# passed by systemd-socket-activate with a request already waiting; and
# a planned restart under a held socket keeps everything armed: the pins,
# the kernel slots, the record a peer reads, while a setup waits in the
# backlog and succeeds.
. "$(dirname "$0")/../lib.sh"
need_root
export LC_ALL=C

NOTIFY_SINK=$OUT/notify_sink
LISTEN_HOLD=$OUT/listen_hold
for p in "$IOFENCED" "$IOFENCECTL" "$NOTIFY_SINK" "$LISTEN_HOLD"; do
	[ -x "$p" ] || { not_ok "$p is built"; exit 1; }
done
HERE=$(cd "$(dirname "$0")/../.." && pwd)
NOBODY=victims=iofence-test-nobody

# spec UUID DIR: a file storage whose fence would kill nothing.
spec() {
	mkdir -p "$2"
	echo "uuid=$1,type=file,target=$2,interval_ms=500,attempts=20,$NOBODY"
}
# rec_state DIR HOST: the state field of HOST's record (1 armed, 2
# fencing, 3 fenced, 4 clean shutdown), read from the bytes themselves.
rec_state() { od -An -tu2 -j6 -N2 "$1/.iofence/$2" 2>/dev/null | tr -d ' '; }
rec_seq() { od -An -tu8 -j16 -N8 "$1/.iofence/$2" 2>/dev/null | tr -d ' '; }

# sink_start NAME: a NOTIFY_SOCKET at $T/NAME.notify, its lines in
# $T/NAME.out ("<mono ms> <pid> <NAME=value>").
sink_start() {
	local pid
	proc_spawn pid "exec '$NOTIFY_SINK' '$T/$1.notify' >'$T/$1.out'"
	wait_until 5 grep -q '^listening' "$T/$1.out"
}
# sink_lines NAME KEY: the values of KEY, "<ms> <value>" per line.
sink_lines() { awk -v k="$2=" 'index($3, k) == 1 { v = $0; sub(/^[^ ]+ [^ ]+ [^=]+=/, "", v); print $1, v }' "$T/$1.out"; }
# sink_has NAME KEY[=VALUE]: such a line came.
sink_has() { grep -q " $2" "$T/$1.out"; }

# notify_daemon NAME SINK WATCHDOG_PID|self ARGS...: a daemon told of
# systemd's NOTIFY_SOCKET and a 2 s watchdog; sets PID_NAME, SOCK_NAME.
notify_daemon() {
	local name=$1 sink=$2 wpid=$3 pid
	shift 3
	# exec keeps one pid from bash to iofenced: WATCHDOG_PID names it.
	W=$wpid bash -c 'export WATCHDOG_PID=${W/self/$$}; exec "$@"' _ env -u W \
		NOTIFY_SOCKET="$T/$sink.notify" WATCHDOG_USEC=2000000 \
		"$IOFENCED" --foreground --watchdog none "$@" >"$T/$name.log" 2>&1 &
	pid=$!
	on_exit "kill -KILL $pid; wait $pid"
	printf -v "PID_$name" '%s' "$pid"
}

# --- 1. the units ----------------------------------------------------------

verify_units() {
	local u="$T/units" man="$T/man" pages missing='' p out
	if ! command -v systemd-analyze >/dev/null; then
		skip "systemd-analyze is not installed"
		return
	fi
	mkdir -p "$u"
	sed "s|@SBINDIR@|$(cd "$OUT" && pwd)|g" "$HERE/scripts/systemd/iofenced.service" >"$u/iofenced.service"
	cp "$HERE/scripts/systemd/iofenced.socket" "$u/"
	check "the service names @SBINDIR@/iofenced, for install to substitute" \
		grep -q '^ExecStart=@SBINDIR@/iofenced --foreground$' "$HERE/scripts/systemd/iofenced.service"
	# The man pages of Documentation=, from the tree, as man finds them.
	while read -r p; do
		mkdir -p "$man/man${p##*.}"
		ln -sf "$p" "$man/man${p##*.}/"
	done < <(find "$HERE/userspace" "$HERE/bpf" -name '*.[1-8]')
	pages=$(sed -n 's/^Documentation=//p' "$u"/iofenced.* | tr ' ' '\n' | sed -n 's/^man:\(.*\)(\(.\))$/\1.\2/p' | sort -u)
	for p in $pages; do
		[ -e "$man/man${p##*.}/$p" ] || missing+=" $p"
	done
	if [ -n "$missing" ]; then
		skip "Documentation= man pages not in the tree yet:$missing; verify runs with --man=no"
		out=$(cd "$u" && MANPATH="$man" systemd-analyze verify --man=no ./iofenced.service ./iofenced.socket 2>&1)
	else
		out=$(cd "$u" && MANPATH="$man" systemd-analyze verify ./iofenced.service ./iofenced.socket 2>&1)
	fi
	check "systemd-analyze verify: not one warning${out:+ (got: $(head -c 600 <<<"$out" | tr '\n' '|'))}" [ -z "$out" ]
	check "the socket unit: /run/iofence/iofenced.sock, 0660, group iofence, a backlog" \
		eval "grep -qx 'ListenStream=/run/iofence/iofenced.sock' '$u/iofenced.socket' &&
			grep -qx 'SocketMode=0660' '$u/iofenced.socket' && grep -qx 'SocketGroup=iofence' '$u/iofenced.socket' &&
			grep -q '^Backlog=[0-9]' '$u/iofenced.socket'"
}
verify_units

# --- 2. sd_notify: READY after the re-arm, STATUS, WATCHDOG ------------------

notify_test() {
	local st="$T/n.state" s1 s2 lines ready rearm n t0 prev iv ivs bad stop_ms after
	s1=$(spec sd1 "$T/st-n1")
	s2=$(spec sd2 "$T/st-n2")
	daemon_on n0 n --no-bpf || { not_ok "2: a first daemon starts"; return; }
	check "2: a storage armed" arm_storages "$SOCK_n0" h1 "$s1"
	daemon_stop n0 10
	check "2: SIGTERM: exit 0" [ $? -eq 0 ]

	sink_start n1 || { not_ok "2: notify_sink listens"; return; }
	notify_daemon n1 n1 self --no-bpf --socket "$T/n.sock" --state-dir "$st"
	if ! wait_until 10 sink_has n1 READY=1; then
		not_ok "2: READY=1 arrives"
		sed 's/^/#   /' "$T/n1.log" "$T/n1.out"
		return
	fi
	ok "2: READY=1 arrives"
	ready=$(sink_lines n1 READY | head -1 | cut -d' ' -f1)
	rearm=$(grep -m1 ' STATUS=re-arming 1 storage' "$T/n1.out" | cut -d' ' -f1)
	check "2: a STATUS says the re-arm first: $(grep -m1 'STATUS=re-arming' "$T/n1.out" | cut -d' ' -f3-)" \
		[ -n "$rearm" ]
	# READY and its STATUS are one datagram: the line said at READY.
	lines=$(awk -v t="$ready" '$1 == t' "$T/n1.out" | cut -d' ' -f3-)
	check "2: READY comes with the storage re-armed: $(tail -1 <<<"$lines")" \
		grep -qx 'STATUS=1 storage armed, 0 late, 0 fenced; watchdog none, kernel fence off (--no-bpf); host connected' <<<"$lines"
	check "2: the log re-armed it (REARMED) before it said ready" \
		eval "grep -n -m1 'event REARMED' '$T/n1.log' | cut -d: -f1 | { read -r a; b=\$(grep -n -m1 'ready on' '$T/n1.log' | cut -d: -f1); [ -n \"\$a\" ] && [ -n \"\$b\" ] && [ \$a -lt \$b ]; }"
	check "2: the record is armed and its heartbeats go on" wait_until 5 hb_wrote "$T/n.sock" sd1 2
	[ -n "$rearm" ] && echo "# READY came $(awk -v a="$rearm" -v b="$ready" 'BEGIN { printf "%.1f", b - a }') ms after the re-arm began"
	check "2: every message comes from the daemon's own pid (NotifyAccess=main)" \
		eval "[ -z \"\$(awk -v p=$PID_n1 '\$2 != p' '$T/n1.out' | grep -v '^listening')\" ]"

	# A change is told at the next pulse; nothing is said while nothing changes.
	n=$(grep -c ' STATUS=' "$T/n1.out")
	check "2: a second storage armed" arm_storages "$T/n.sock" h1 "$s2"
	check "2: STATUS follows: 2 storages armed" \
		wait_until 3 grep -q ' STATUS=2 storages armed, 0 late, 0 fenced;' "$T/n1.out"
	n=$(grep -c ' STATUS=' "$T/n1.out")
	sleep 2
	check "2: no STATUS while nothing changes ($(($(grep -c ' STATUS=' "$T/n1.out") - n)) in 2 s)" \
		[ "$(grep -c ' STATUS=' "$T/n1.out")" -eq "$n" ]

	# WATCHDOG=1 every WATCHDOG_USEC / 2 = 1 s.
	wait_until 5 eval "[ \$(grep -c ' WATCHDOG=1' '$T/n1.out') -ge 4 ]"
	ivs=$(sink_lines n1 WATCHDOG | awk 'NR > 1 { printf "%d ", $1 - p } { p = $1 }')
	check "2: WATCHDOG=1 keeps coming ($(grep -c ' WATCHDOG=1' "$T/n1.out") so far)" \
		[ "$(grep -c ' WATCHDOG=1' "$T/n1.out")" -ge 4 ]
	bad=$(for iv in $ivs; do between "$iv" 500 1900 || echo "$iv"; done)
	check "2: WATCHDOG=1 about every WATCHDOG_USEC / 2 (1000 ms; want 500..1900): $ivs" [ -z "$bad" ]
	echo "# WATCHDOG=1 intervals (ms): $ivs"

	# SIGTERM: STOPPING=1 with what stays armed, then no WATCHDOG=1.
	kill -TERM "$PID_n1"
	wait_until 10 eval "! kill -0 $PID_n1 2>/dev/null"
	wait "$PID_n1"
	check "2: SIGTERM: exit 0" [ $? -eq 0 ]
	check "2: STOPPING=1 arrives" sink_has n1 STOPPING=1
	stop_ms=$(sink_lines n1 STOPPING | head -1 | cut -d' ' -f1)
	lines=$(awk -v t="$stop_ms" '$1 == t' "$T/n1.out" | cut -d' ' -f3-)
	check "2: with it, STATUS=stopping; 2 storages stay armed: $(tail -1 <<<"$lines")" \
		grep -q '^STATUS=stopping; 2 storages stay armed;' <<<"$lines"
	sleep 1.5
	after=$(awk -v t="$stop_ms" '$1 >= t && $3 == "WATCHDOG=1"' "$T/n1.out" | wc -l)
	check "2: no WATCHDOG=1 at or after STOPPING=1 ($after)" [ "$after" -eq 0 ]
	check "2: the records stay armed over the stop (state 1): $(rec_state "$T/st-n1" h1) $(rec_state "$T/st-n2" h1)" \
		[ "$(rec_state "$T/st-n1" h1)$(rec_state "$T/st-n2" h1)" = 11 ]
}
notify_test

# --- 3. systemd-socket-activate, a request already waiting -------------------

activate_test() {
	local sock="$T/act.sock" pid out t0
	if ! command -v systemd-socket-activate >/dev/null; then
		skip "systemd-socket-activate is not installed"
		return
	fi
	sink_start a || { not_ok "3: notify_sink listens"; return; }
	# It execs the daemon at the first connection; --socket names another
	# path, so the log must say which one is served. WATCHDOG_PID is
	# another process's: no WATCHDOG=1 then.
	systemd-socket-activate -l "$sock" -E NOTIFY_SOCKET="$T/a.notify" -E WATCHDOG_USEC=1000000 -E WATCHDOG_PID=1 \
		"$IOFENCED" --foreground --no-bpf --watchdog none --socket "$T/act-other.sock" \
		--state-dir "$T/act.state" >"$T/act.log" 2>&1 &
	pid=$!
	on_exit "kill -KILL $pid; wait $pid"
	if ! wait_until 5 test -S "$sock"; then
		not_ok "3: systemd-socket-activate listens on $sock"
		return
	fi
	check "3: no daemon runs before the first connection" \
		eval "! grep -q 'iofenced' /proc/$pid/comm"
	t0=$(mono_ms)
	out=$(timeout 20 "$IOFENCECTL" --socket "$sock" --json status 2>&1)
	check "3: the request made before the daemon ran gets its reply ($(($(mono_ms) - t0)) ms)" \
		jqe '.host_state == "connecting"' <<<"$out"
	check "3: the daemon says it serves the passed socket, not --socket" \
		grep -q "socket: serving $sock, which the service manager passed, not --socket $T/act-other.sock" "$T/act.log"
	check "3: it bound nothing at --socket" [ ! -e "$T/act-other.sock" ]
	check "3: its lock is next to the socket it serves" [ -e "$sock.lock" ]
	check "3: READY=1" sink_has a READY=1
	sleep 1.2
	check "3: WATCHDOG_PID of another process: no WATCHDOG=1" eval "! sink_has a WATCHDOG=1"
	kill -TERM "$pid"
	wait_until 10 eval "! kill -0 $pid 2>/dev/null"
	wait "$pid"
	check "3: SIGTERM: exit 0" [ $? -eq 0 ]
	check "3: the passed socket is not removed by the daemon" [ -S "$sock" ]
}
activate_test

# --- 4. a planned restart under a held socket ---------------------------------

restart_test() {
	local sock="$T/h.sock" st="$T/h.state" pin log="$T/hold.out" p1 p2 s1 s2 bpf slot1 slot2
	local watch="$T/pins.watch" j out cpid rc seq_between
	pin=$(pin_dir)
	on_exit "rm -rf '$pin'"
	s1=$(spec sd1 "$T/st-h1")
	s2=$(spec sd2 "$T/st-h2")
	"$LISTEN_HOLD" "$sock" 2 "$IOFENCED" --foreground --watchdog none --socket "$sock" \
		--state-dir "$st" --pin-dir "$pin" >"$log" 2>"$T/hold.err" &
	local hold=$!
	on_exit "kill -TERM $hold; wait $hold"
	wait_until 5 grep -q ' run 1 pid ' "$log" || { not_ok "4: listen_hold runs the daemon"; return; }
	p1=$(awk '$2 == "run" && $3 == 1 { print $5 }' "$log")
	# Both runs write to one log: the daemon's stderr is listen_hold's.
	daemon_answers h1 "$sock" "$p1" "$T/hold.err" 10 || { not_ok "4: the first run answers"; return; }
	check "4: a storage armed" arm_storages "$sock" h1 "$s1"
	out=$(ctl_sock "$sock" --json status)
	bpf=$(jqr .bpf.active <<<"$out")
	slot1=$(jq -c '.storages[0].io.slot' <<<"$out")
	[ "$bpf" = true ] || skip "4: the BPF tracker did not load here: no pins to keep"
	: >"$watch"
	if [ "$bpf" = true ]; then
		# Every 20 ms until the end: a moment without the pins is a line.
		(
			trap - EXIT
			while [ ! -e "$watch.stop" ]; do
				[ -e "$pin/slots" ] || echo "$(mono_ms) no slots" >>"$watch"
				sleep 0.02
			done
		) &
		local wpid=$!
		on_exit "touch '$watch.stop'; wait $wpid"
	fi

	kill -TERM "$p1"
	# Connects while run 1 stops: never taken from the backlog only to
	# be closed (the stop cancels the accept first), so it is answered.
	timeout 30 "$IOFENCECTL" --socket "$sock" --json status >"$T/at-term.out" 2>&1 &
	local tpid=$!
	on_exit "kill -KILL $tpid; wait $tpid"
	wait_until 10 grep -q ' run 1 exit ' "$log"
	check "4: run 1: SIGTERM: exit 0" grep -q ' run 1 exit 0$' "$log"
	# No daemon runs now: what peers and the kernel see.
	check "4: between the runs, the record is armed, not released (state $(rec_state "$T/st-h1" h1); 4 would be clean shutdown)" \
		[ "$(rec_state "$T/st-h1" h1)" = 1 ]
	seq_between=$(rec_seq "$T/st-h1" h1)
	[ "$bpf" = true ] && check "4: between the runs, the pins are there" [ -e "$pin/slots" ]
	# A setup that comes now waits in the backlog, and is answered by run 2.
	timeout 30 "$IOFENCECTL" --socket "$sock" --json setup --host h1 --storage "$s1" --storage "$s2" \
		>"$T/setup.out" 2>&1 &
	cpid=$!
	on_exit "kill -KILL $cpid; wait $cpid"
	sleep 0.5
	check "4: the setup waits in the backlog (still running with no daemon)" kill -0 "$cpid"
	kill -USR1 "$hold"
	wait_until 5 grep -q ' run 2 pid ' "$log" || { not_ok "4: run 2 starts"; return; }
	p2=$(awk '$2 == "run" && $3 == 2 { print $5 }' "$log")
	wait "$cpid"
	rc=$?
	wait "$tpid"
	check "4: a client that connected at the SIGTERM is answered (exit $?, by a daemon up $(jq .uptime_ms "$T/at-term.out" 2>/dev/null) ms)" \
		jqe '.storages | length >= 1' <"$T/at-term.out"
	check "4: the waiting setup succeeds (exit $rc): $(jq -c '[.storages[] | [.uuid, .result]]' "$T/setup.out" 2>/dev/null || head -c 300 "$T/setup.out")" \
		eval "[ $rc -eq 0 ] && jqe '[.storages[] | .result] == [\"unchanged\", \"armed\"]' <'$T/setup.out'"
	out=$(ctl_sock "$sock" --json status)
	check "4: run 2 has both armed" jqe '[.storages[].uuid] | sort == ["sd1", "sd2"]' <<<"$out"
	j=$(journal_of "$sock")
	check "4: run 2 re-armed sd1 (REARMED)" [ "$(j_count "$j" REARMED sd1)" -ge 1 ]
	check "4: no DISARMED, REARM_FAILED or fence of sd1 across the restart" \
		[ "$(($(j_count "$j" DISARMED sd1) + $(j_count "$j" REARM_FAILED sd1) + $(j_count "$j" FENCE_FIRED sd1)))" -eq 0 ]
	check "4: the heartbeats go on from the record (seq past $seq_between)" \
		wait_until 5 eval "[ \"\$(rec_seq '$T/st-h1' h1)\" -gt $seq_between ]"
	if [ "$bpf" = true ]; then
		slot2=$(jq -c '.storages[] | select(.uuid == "sd1") | .io.slot' <<<"$out")
		check "4: run 2 took the pins over" grep -q 'taken over from an earlier daemon' "$T/hold.err"
		check "4: sd1 keeps its kernel slot ($slot1, then $slot2)" [ "$slot1" = "$slot2" ]
		touch "$watch.stop"
		sleep 0.1
		check "4: the pins never vanished over the restart${watch:+ ($(wc -l <"$watch") misses)}" [ ! -s "$watch" ]
	fi
	check "4: no teardown-like log line in either run" eval "! grep -qE 'disarm|unpin|pins removed' '$T/hold.err'"
	# The end: teardown disarms, and only it.
	out=$(ctl_sock "$sock" teardown --host h1 2>&1)
	check "4: teardown disarms ($(tr '\n' ' ' <<<"$out"))" grep -q 'sd1: disarmed' <<<"$out"
	check "4: after teardown the record says clean shutdown (4): $(rec_state "$T/st-h1" h1)" \
		[ "$(rec_state "$T/st-h1" h1)" = 4 ]
	kill -TERM "$p2"
	wait_until 10 grep -q ' run 2 exit ' "$log"
	check "4: run 2: SIGTERM: exit 0" grep -q ' run 2 exit 0$' "$log"
	[ "$bpf" = true ] && check "4: SIGTERM with nothing armed: the pins go" [ ! -e "$pin" ]
}
restart_test

# --- 5. a daemon that detaches keeps the passed socket -----------------------

detach_test() {
	local sock="$T/d.sock" log="$T/detach.out" hold child
	# RUNS 2: the holder keeps the socket after the first run's parent exits.
	"$LISTEN_HOLD" "$sock" 2 "$IOFENCED" --no-bpf --watchdog none --socket "$sock" \
		--state-dir "$T/d.state" >"$log" 2>"$T/detach.err" &
	hold=$!
	on_exit "kill -TERM $hold; wait $hold"
	wait_until 10 grep -q ' run 1 exit ' "$log"
	check "5: without --foreground the parent exits 0 once the child is ready" grep -q ' run 1 exit 0$' "$log"
	child=$(cat "$T/d.state/lock" 2>/dev/null)
	[ -n "$child" ] && on_exit "kill -KILL $child"
	check "5: the detached daemon serves the socket it was passed" \
		eval "ctl_sock '$sock' version >/dev/null && grep -q 'passed by the service manager' '$T/detach.err'"
	[ -n "$child" ] && kill -TERM "$child"
	check "5: it stops on SIGTERM" wait_until 10 eval "! kill -0 $child 2>/dev/null"
}
detach_test
