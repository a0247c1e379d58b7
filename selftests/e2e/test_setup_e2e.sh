#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# setup end to end, through the real socket of real daemons: the host-state
# check and its one-time bypass, single-flight with many concurrent clients
# and the reconnect dimension, all-or-nothing batches rolled back before and
# after commit, access control, path rules, and connection/line limits.
. "$(dirname "$0")/../lib.sh"
need_root

# Sockets and folders must be reachable by nobody for the access checks.
chmod 755 "$T"

# --- helpers ------------------------------------------------------------

rq() { ctl_sock "$1" raw "$2"; } # socket json: the reply line
# A file storage: uuid target [extra "key":value pairs].
fst() { printf '{"uuid":"%s","type":"file","target":"%s"%s}' "$1" "$2" "${3:+,$3}"; }
# A setup request: host extra-arguments storage-json...
setup_req() {
	local host=$1 extra=$2 IFS=,
	shift 2
	printf '{"execute":"setup","arguments":{"host_uuid":"%s"%s,"storages":[%s]}}' \
		"$host" "${extra:+,$extra}" "$*"
}
teardown_req() { # host [uuid...]
	local host=$1 IFS=,
	shift
	if [ $# -eq 0 ]; then
		printf '{"execute":"teardown","arguments":{"host_uuid":"%s"}}' "$host"
	else
		local l=()
		for u in "$@"; do l+=("\"$u\""); done
		printf '{"execute":"teardown","arguments":{"host_uuid":"%s","storages":[%s]}}' \
			"$host" "${l[*]}"
	fi
}
class_of() { jqr '.error.class // "none"' <<<"$1"; }
desc_of() { jqr '.error.desc // ""' <<<"$1"; }
# The armed storages of a host, compactly: uuid, interval, flight, reconnect.
armed() { # socket host
	rq "$1" '{"execute":"query-status"}' |
		jq -c --arg h "$2" '[.return.storages[] | select(.host_uuid == $h) |
			{uuid, iv: .params.interval_ms, flight, reconnect, target: .params.target}] |
			sort_by(.uuid)'
}
last_seq() { rq "$1" '{"execute":"query-status"}' | jqr .return.last_seq; }
# After a daemon stops: nothing from ASan/UBSan/LSan in its log.
check_log_clean() { # name
	if grep -qE 'Sanitizer|runtime error' "$T/$1.log"; then
		not_ok "$1: no sanitizer report in its log" \
			"$(grep -m1 -E 'Sanitizer|runtime error' "$T/$1.log")"
	else
		ok "$1: no sanitizer report in its log"
	fi
}
stop_and_check() { # name
	stop_daemon "$1"
	check "$1: SIGTERM: clean exit status" [ $? -eq 0 ]
	check_log_clean "$1"
}
as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }

start_daemon a --no-bpf || { not_ok "daemon a starts"; exit 1; }
S=$SOCK_a

# --- 1. the host-state check and its one-time bypass -------------------

mkdir -p "$T/m1/p1" "$T/m1/p2"
r=$(rq "$S" '{"execute":"query-status"}')
check "1: initial host state is connecting" [ "$(jqr .return.host_state <<<"$r")" = connecting ]

r=$(rq "$S" "$(setup_req h1 '' "$(fst p1 "$T/m1/p1")")")
check "1: setup while connecting -> HostNotConnected" [ "$(class_of "$r")" = HostNotConnected ]
check "1: refused setup armed nothing" [ "$(armed "$S" h1)" = '[]' ]

r=$(rq "$S" "$(setup_req h1 '"no_status_check":true' "$(fst p1 "$T/m1/p1")")")
check "1: no_status_check:true while connecting -> armed" \
	[ "$(jqr '.return.storages[0].result' <<<"$r")" = armed ]
r=$(rq "$S" '{"execute":"query-status"}')
check "1: the bypass changed no stored state (still connecting)" \
	[ "$(jqr .return.host_state <<<"$r")" = connecting ]

r=$(rq "$S" "$(setup_req h1 '' "$(fst p2 "$T/m1/p2")")")
check "1: the very next setup without the bypass -> HostNotConnected" \
	[ "$(class_of "$r")" = HostNotConnected ]
check "1: ... and p2 stays unarmed" \
	[ "$(armed "$S" h1 | jqr '[.[].uuid] | join(",")')" = p1 ]

r=$(rq "$S" '{"execute":"set-host-state","arguments":{"state":"connected"}}')
check "1: set-host-state connected answers with the previous state" \
	[ "$(jqr '.return | "\(.state)/\(.previous)"' <<<"$r")" = connected/connecting ]
r=$(rq "$S" "$(setup_req h1 '' "$(fst p2 "$T/m1/p2")")")
check "1: connected -> setup works" [ "$(jqr '.return.storages[0].result' <<<"$r")" = armed ]

rq "$S" '{"execute":"set-host-state","arguments":{"state":"disconnected"}}' >/dev/null
r=$(rq "$S" "$(setup_req h1 '' "$(fst p2 "$T/m1/p2" '"interval_ms":1000')")")
check "1: disconnected -> HostNotConnected again" [ "$(class_of "$r")" = HostNotConnected ]
rq "$S" '{"execute":"set-host-state","arguments":{"state":"connected"}}' >/dev/null
rq "$S" "$(teardown_req h1)" >/dev/null

# --- 3. single-flight, many concurrent clients ---------------------------

NB=64   # storages in the batch: enough for the flight to last
NC=24   # concurrent clients
sts=()
for ((i = 1; i <= NB; i++)); do
	mkdir -p "$T/m3/f$i"
	sts+=("$(fst "f$i" "$T/m3/f$i")")
done
REQ_PLAIN=$(setup_req h3 '' "${sts[@]}")
REQ_RECON=$(setup_req h3 '"reconnect":true' "${sts[@]}")

# launch DIR TAG N REQUEST: N clients, each connected and waiting on the
# shared lock $DIR/TAG.lock (held by us) before sending REQUEST.
launch() {
	local dir=$1 tag=$2 n=$3 req=$4 i
	for ((i = 1; i <= n; i++)); do
		(
			# Our lock fds are not theirs: an inherited one would keep
			# the lock held.
			for f in "${LOCKFDS[@]}"; do exec {f}>&-; done
			{ flock -s "$dir/$tag.lock" true; printf '%s\n' "$req"; } |
				timeout 30 "$IOFENCECTL" --socket "$S" raw >"$dir/$tag.$i" 2>&1
		) &
		pids+=($!)
	done
}
# Waits until N connections (plus our own query) are open.
await_conns() { # n
	local i c
	for ((i = 0; i < 200; i++)); do
		c=$(rq "$S" '{"execute":"query-status"}' | jqr .return.connections)
		[ "$c" -ge $(($1 + 1)) ] && return 0
		sleep 0.02
	done
	return 1
}
LOCKFDS=()
hold_lock() { # file fd-var
	exec {lockfd}>"$1"
	flock -x "$lockfd"
	LOCKFDS+=("$lockfd")
	printf -v "$2" '%s' "$lockfd"
}

D3="$T/sf"
mkdir -p "$D3"
pids=()
hold_lock "$D3/same.lock" L
launch "$D3" same "$NC" "$REQ_PLAIN"
check "3: $NC clients connected and waiting" await_conns "$NC"
seq0=$(last_seq "$S")
exec {L}>&-   # release them together
wait "${pids[@]}"
replies=$(cat "$D3"/same.*)
nok=$(jq -s '[.[] | select(.return)] | length' <<<"$replies")
check "3: all $NC identical setups succeed ($nok)" [ "$nok" = "$NC" ]
check "3: every reply covers the whole batch" \
	[ "$(jq -s "[.[] | select((.return.storages | length) == $NB)] | length" <<<"$replies")" = "$NC" ]
flights=$(jq -s -c '[.[].return.flight] | unique' <<<"$replies")
nflights=$(jq length <<<"$flights")
echo "# 3: $NC identical requests ran as flight(s) $flights:" \
	"$(jq -s -c 'group_by(.return.flight) | map({flight: .[0].return.flight,
		joined: map(select(.return.joined)) | length,
		results: map(.return.storages[].result) | unique})' <<<"$replies")"
check "3: every flight id has exactly one non-joined reply" \
	[ "$(jq -s 'group_by(.return.flight) | map(map(select(.return.joined == false)) | length) | all(. == 1)' <<<"$replies")" = true ]
check "3: the storages were armed by exactly one flight (others: unchanged)" \
	[ "$(jq -s -c 'group_by(.return.flight) | map(.[0].return.storages | map(.result) | unique) | sort' <<<"$replies")" \
	= "$( ((nflights > 1)) && echo '[["armed"],["unchanged"]]' || echo '[["armed"]]')" ]
nfirst=$(jq -s '[.[] | select(.return.joined == false)] | length' <<<"$replies")
check "3: all $NC overlapped into one flight (one joined=false, $((NC - 1)) joined)" \
	[ "$nflights/$nfirst" = 1/1 ]
fid=$(jq -s '[.[] | select(.return.joined == false) | .return.flight] | min' <<<"$replies")
ev=$(rq "$S" "{\"execute\":\"query-events\",\"arguments\":{\"since\":$seq0}}")
check "3: one execution: exactly $NB ARMED events, all from flight $fid" \
	[ "$(jq -c '[.return.events[] | select(.event == "ARMED") | .data.flight] | [length, unique]' <<<"$ev")" = "[$NB,[$fid]]" ]
check "3: query-status shows the $NB storages armed by flight $fid" \
	[ "$(armed "$S" h3 | jq -c '[length, ([.[].flight] | unique)]')" = "[$NB,[$fid]]" ]

# Plain and reconnect requests for the same host and storages, at once:
# never one flight. $1 goes first, $2 about 20 ms after.
mixed_round() { # first-tag second-tag
	local first=$1 second=$2 L1 L2 t out
	rq "$S" "$(teardown_req h3)" >/dev/null
	rm -f "$D3"/plain.* "$D3"/recon.*
	pids=()
	hold_lock "$D3/plain.lock" L1p
	hold_lock "$D3/recon.lock" L1r
	launch "$D3" plain 8 "$REQ_PLAIN"
	launch "$D3" recon 8 "$REQ_RECON"
	await_conns 16 || return 1
	[ "$first" = plain ] && L1=$L1p L2=$L1r || L1=$L1r L2=$L1p
	exec {L1}>&-
	sleep 0.02
	exec {L2}>&-
	wait "${pids[@]}"
	for t in plain recon; do
		out=$(cat "$D3"/$t.*)
		echo "# 3: $first first: $t replies: $(jq -s -c 'group_by(.return.flight) |
			map({flight: .[0].return.flight, reconnect: .[0].return.reconnect,
			joined: map(select(.return.joined)) | length})' <<<"$out")"
	done
	return 0
}
check_mixed() { # first-tag
	local p r
	p=$(cat "$D3"/plain.*)
	r=$(cat "$D3"/recon.*)
	check "3 ($1 first): all 16 plain/reconnect requests succeed" \
		[ "$(cat "$D3"/plain.* "$D3"/recon.* | jq -s '[.[] | select(.return)] | length')" = 16 ]
	check "3 ($1 first): plain replies say reconnect:false" \
		[ "$(jq -s -c '[.[].return.reconnect] | unique' <<<"$p")" = '[false]' ]
	check "3 ($1 first): reconnect replies say reconnect:true" \
		[ "$(jq -s -c '[.[].return.reconnect] | unique' <<<"$r")" = '[true]' ]
	check "3 ($1 first): plain and reconnect never share a flight id" \
		[ "$(jq -n --argjson p "$(jq -s -c '[.[].return.flight]' <<<"$p")" \
			--argjson r "$(jq -s -c '[.[].return.flight]' <<<"$r")" \
			'[$p[] as $x | $r[] | select(. == $x)] | length')" = 0 ]
	check "3 ($1 first): each flight has exactly one non-joined reply" \
		[ "$(cat "$D3"/plain.* "$D3"/recon.* | jq -s 'group_by(.return.flight) |
			map(map(select(.return.joined == false)) | length) | all(. == 1)')" = true ]
}
if mixed_round plain recon; then check_mixed plain; else not_ok "3 (plain first): clients connect"; fi
if mixed_round recon plain; then check_mixed reconnect; else not_ok "3 (reconnect first): clients connect"; fi
check "3: the reconnect flag is stored from the flight that armed (reconnect first)" \
	[ "$(armed "$S" h3 | jq -c '[.[].reconnect] | unique')" = '[true]' ]
rq "$S" "$(teardown_req h3)" >/dev/null

# --- 4. all-or-nothing, rolled back in reverse ---------------------------

mkdir -p "$T/m4/A" "$T/m4/B"
r=$(rq "$S" "$(setup_req h4 '' "$(fst A "$T/m4/A" '"interval_ms":1000')")")
check "4: A armed with interval_ms 1000" [ "$(jqr '.return.storages[0].result' <<<"$r")" = armed ]
before=$(armed "$S" h4)
fa=$(jq '.[0].flight' <<<"$before")
seq0=$(last_seq "$S")
state0=$(cat "$T/a.state/state")

batch=$(setup_req h4 '' "$(fst A "$T/m4/A" '"interval_ms":2000')" \
	"$(fst B "$T/m4/B")" "$(fst C "$T/m4/C-missing")")
r=$(rq "$S" "$batch")
check "4: batch with a missing target -> ArmingFailed" [ "$(class_of "$r")" = ArmingFailed ]
check "4: ... naming storages[2] (C) and its step" \
	grep -q '^storages\[2\] (C): open target .*C-missing: No such file or directory' <<<"$(desc_of "$r")"
after=$(armed "$S" h4)
check "4: A still armed with interval_ms 1000 and flight $fa (B not armed)" [ "$after" = "$before" ]
check "4: no events from the failed batch" [ "$(last_seq "$S")" = "$seq0" ]
check "4: state file untouched by the failed batch" [ "$(cat "$T/a.state/state")" = "$state0" ]
if [ -e "$T/m4/B/.iofence" ]; then
	echo "# 4: note: the failed batch left $(cd "$T/m4/B" && find .iofence | tr '\n' ' ')behind on B (created while staging, not removed by the rollback)"
else
	echo "# 4: note: nothing was created on B"
fi

# Failing in the middle, with an update of A that fails itself.
r=$(rq "$S" "$(setup_req h4 '' "$(fst B "$T/m4/B")" \
	"$(fst A "$T/m4/A-gone" '"interval_ms":1000')")")
check "4: an update of A to a missing target -> ArmingFailed naming storages[1]" \
	grep -q '^storages\[1\] (A): open target' <<<"$(desc_of "$r")"
check "4: ... A keeps its target, B not armed" [ "$(armed "$S" h4)" = "$before" ]

# Rollback after commit: the state write fails.
mkdir "$T/a.state/state.tmp"
r=$(rq "$S" "$(setup_req h4 '' "$(fst A "$T/m4/A" '"interval_ms":2000')" "$(fst B "$T/m4/B")")")
check "4: unwritable state -> ArmingFailed" [ "$(class_of "$r")" = ArmingFailed ]
check "4: ... 'persisting the state', rolled back" \
	grep -q 'persisting the state: .*rolled back' <<<"$(desc_of "$r")"
check "4: ... A back to interval_ms 1000 and flight $fa, B not armed" [ "$(armed "$S" h4)" = "$before" ]
check "4: ... no events" [ "$(last_seq "$S")" = "$seq0" ]
check "4: ... state file unchanged" [ "$(cat "$T/a.state/state")" = "$state0" ]
rmdir "$T/a.state/state.tmp"
r=$(rq "$S" "$(setup_req h4 '' "$(fst A "$T/m4/A" '"interval_ms":2000')" "$(fst B "$T/m4/B")")")
check "4: the retry works: A updated, B armed" \
	[ "$(jqr '[.return.storages[].result] | join(",")' <<<"$r")" = updated,armed ]
now=$(armed "$S" h4)
check "4: ... A now interval_ms 2000" [ "$(jq -c '[.[] | {uuid, iv}]' <<<"$now")" = '[{"uuid":"A","iv":2000},{"uuid":"B","iv":2000}]' ]
ev=$(rq "$S" "{\"execute\":\"query-events\",\"arguments\":{\"since\":$seq0}}")
check "4: ... events UPDATED A, ARMED B" \
	[ "$(jq -c '[.return.events[] | "\(.event) \(.data.storage)"]' <<<"$ev")" = '["UPDATED A","ARMED B"]' ]
check "4: ... the state file records it" grep -q '"interval_ms":2000' "$T/a.state/state"

# --- 9. access control and path rules ------------------------------------

start_daemon g --no-bpf --socket-group nogroup || not_ok "daemon g starts"
start_daemon c --no-bpf --socket-group nogroup --control-group nogroup ||
	not_ok "daemon c starts"
mkdir -p "$T/m9/x"
chmod -R a+rX "$T/m9"
check "9: --socket-group: socket 0660 root:nogroup" \
	[ "$(stat -c '%a %U:%G' "$SOCK_g")" = "660 root:nogroup" ]
check "9: no --socket-group: socket 0660 root:root" \
	[ "$(stat -c '%a %U:%G' "$S")" = "660 root:root" ]

rq "$SOCK_g" '{"execute":"set-host-state","arguments":{"state":"connected"}}' >/dev/null
rq "$SOCK_g" "$(setup_req h9 '' "$(fst x "$T/m9/x")")" >/dev/null
g0=$(rq "$SOCK_g" '{"execute":"query-status"}' | jq -c '[.return.host_state, [.return.storages[] | {uuid, params}]]')
r=$(as_nobody timeout 20 "$IOFENCECTL" --socket "$SOCK_g" raw '{"execute":"query-status"}')
check "9: nobody in the socket group may query-status" \
	[ "$(jqr '.return.storages | length' <<<"$r")" = 1 ]
r=$(as_nobody timeout 20 "$IOFENCECTL" --socket "$SOCK_g" raw \
	"$(setup_req h9 '"no_status_check":true' "$(fst y "$T/m9/x" '"interval_ms":1000')")")
check "9: nobody's setup -> PermissionDenied" [ "$(class_of "$r")" = PermissionDenied ]
check "9: ... the reply names the uid" grep -q 'uid 65534' <<<"$(desc_of "$r")"
r=$(as_nobody timeout 20 "$IOFENCECTL" --socket "$SOCK_g" raw '{"execute":"set-host-state","arguments":{"state":"disconnected"}}')
check "9: nobody's set-host-state -> PermissionDenied" [ "$(class_of "$r")" = PermissionDenied ]
r=$(as_nobody timeout 20 "$IOFENCECTL" --socket "$SOCK_g" raw "$(teardown_req h9)")
check "9: nobody's teardown -> PermissionDenied" [ "$(class_of "$r")" = PermissionDenied ]
check "9: ... state unchanged" \
	[ "$(rq "$SOCK_g" '{"execute":"query-status"}' | jq -c '[.return.host_state, [.return.storages[] | {uuid, params}]]')" = "$g0" ]

r=$(as_nobody timeout 20 "$IOFENCECTL" --socket "$SOCK_c" raw \
	"$(setup_req h9 '"no_status_check":true' "$(fst x "$T/m9/x")")")
check "9: --control-group nogroup: nobody may setup" \
	[ "$(jqr '.return.storages[0].result' <<<"$r")" = armed ]
r=$(as_nobody timeout 20 "$IOFENCECTL" --socket "$SOCK_c" raw "$(teardown_req h9)")
check "9: ... and teardown" [ "$(jqr '.return.storages[0].result' <<<"$r")" = disarmed ]

out=$(as_nobody timeout 20 "$IOFENCECTL" --socket "$S" raw '{"execute":"query-status"}' 2>&1)
rc=$?
check "9: without --socket-group nobody cannot connect (exit $rc)" \
	[ "$rc/$(grep -c 'Permission denied' <<<"$out")" = 2/1 ]

# Paths: absolute and normalised, the field named.
for bad in "/tmp/../etc" "/tmp//x" "rel/x" "/tmp/./x" "$T/m9/x/"; do
	r=$(rq "$S" "$(setup_req h9 '' "$(fst ok1 "$T/m9/x")" "$(fst bad "$bad")")")
	check "9: target '$bad' -> InvalidArgument naming storages[1].target" \
		[ "$(class_of "$r")/$(grep -c '^storages\[1\]\.target: must be' <<<"$(desc_of "$r")")" = InvalidArgument/1 ]
done
r=$(rq "$S" "$(setup_req h9 '' "$(fst ok1 "$T/m9/x" '"fence_hook":"hook.sh"')")")
check "9: relative fence_hook -> InvalidArgument naming storages[0].fence_hook" \
	grep -q '^storages\[0\]\.fence_hook: must be an absolute path' <<<"$(desc_of "$r")"
check "9: nothing armed by the refused requests" [ "$(armed "$S" h9)" = '[]' ]

# Symlinks: never followed for file storages.
mkdir -p "$T/m9/real" "$T/m9/parent/sub" "$T/m9/outside"
ln -s "$T/m9/real" "$T/m9/link"
ln -s "$T/m9/parent" "$T/m9/plink"
r=$(rq "$S" "$(setup_req h9 '' "$(fst sl "$T/m9/link")")")
check "9: a target that is a symlink -> ArmingFailed (open target)" \
	grep -q '^storages\[0\] (sl): open target .*: Too many levels of symbolic links' <<<"$(desc_of "$r")"
r=$(rq "$S" "$(setup_req h9 '' "$(fst sl2 "$T/m9/plink/sub")")")
check "9: a target below a symlink -> ArmingFailed (open target)" \
	grep -q '^storages\[0\] (sl2): open target' <<<"$(desc_of "$r")"
check "9: ... nothing written through them" \
	eval '[ ! -e "$T/m9/real/.iofence" ] && [ ! -e "$T/m9/parent/sub/.iofence" ]'

mkdir -p "$T/m9/t1/elsewhere" "$T/m9/t2" "$T/m9/t3/.iofence"
ln -s elsewhere "$T/m9/t1/.iofence"
ln -s "$T/m9/outside" "$T/m9/t2/.iofence"
echo precious >"$T/m9/outside/file"
ln -s "$T/m9/outside/file" "$T/m9/t3/.iofence/h9"
r=$(rq "$S" "$(setup_req h9 '' "$(fst sy1 "$T/m9/t1")")")
check "9: .iofence a symlink inside the target -> ArmingFailed (heartbeat record)" \
	grep -q '^storages\[0\] (sy1): open heartbeat record' <<<"$(desc_of "$r")"
r=$(rq "$S" "$(setup_req h9 '' "$(fst sy2 "$T/m9/t2")")")
check "9: .iofence a symlink out of the target -> ArmingFailed (heartbeat record)" \
	grep -q '^storages\[0\] (sy2): open heartbeat record' <<<"$(desc_of "$r")"
r=$(rq "$S" "$(setup_req h9 '' "$(fst sy3 "$T/m9/t3")")")
check "9: the record a symlink -> ArmingFailed (heartbeat record)" \
	grep -q '^storages\[0\] (sy3): open heartbeat record' <<<"$(desc_of "$r")"
check "9: ... no record written through any of them" \
	[ "[$(ls -A "$T/m9/t1/elsewhere")] [$(ls -A "$T/m9/outside")] $(cat "$T/m9/outside/file")" = "[] [file] precious" ]
check "9: ... nothing armed" [ "$(armed "$S" h9)" = '[]' ]

stop_and_check g
stop_and_check c

# --- 10. limits ----------------------------------------------------------

start_daemon l --no-bpf --max-connections 2 || not_ok "daemon l starts"
# hold N: a client connected, answered once, then idle on a FIFO.
hold() {
	local f="$T/hold$1"
	mkfifo "$f.in"
	timeout 30 "$IOFENCECTL" --socket "$SOCK_l" raw <"$f.in" >"$f.out" 2>&1 &
	printf -v "HPID$1" '%s' "$!"
	on_exit "kill $!"
	exec {fd}>"$f.in"
	printf -v "HFD$1" '%s' "$fd"
	echo '{"execute":"query-version"}' >&"$fd"
	for ((i = 0; i < 200; i++)); do
		grep -q '"package":"iofence"' "$f.out" 2>/dev/null && return 0
		sleep 0.02
	done
	return 1
}
check "10: two clients connected (the limit)" eval 'hold 1 && hold 2'
out=$(ctl_sock "$SOCK_l" raw '{"execute":"query-version"}' 2>&1)
rc=$?
check "10: a third connection is refused (exit $rc: $out)" \
	[ "$rc/$(grep -c 'connections: at most 2 at once' <<<"$out")" = 2/1 ]
if command -v python3 >/dev/null; then
	line=$(timeout 10 python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
b = b""
while not b.endswith(b"\n"):
    d = s.recv(4096)
    if not d:
        break
    b += d
sys.stdout.write(b.decode())' "$SOCK_l")
	check "10: ... with a LimitExceeded error line" \
		[ "$(class_of "$line")" = LimitExceeded ]
else
	skip "no python3 to read the refusal line itself"
fi
check "10: the daemon logs the refusal" grep -q 'refusing a connection: 2 already open' "$T/l.log"

exec {HFD2}>&-
wait "$HPID2"
ok=0
for ((i = 0; i < 100; i++)); do
	ctl_sock "$SOCK_l" raw '{"execute":"query-version"}' >/dev/null 2>&1 && { ok=1; break; }
	sleep 0.02
done
check "10: a slot freed -> connections accepted again" [ $ok = 1 ]

big=$(head -c 70000 /dev/zero | tr '\0' x)
# The client may see its send fail once the daemon closes: stdout only.
out=$(timeout 10 "$IOFENCECTL" --socket "$SOCK_l" raw "$big" 2>/dev/null)
check "10: a 70000-byte line -> LimitExceeded" [ "$(class_of "$out")" = LimitExceeded ]
check "10: ... saying so" grep -q 'line longer than 65536 bytes' <<<"$out"
echo '{"execute":"query-version","id":"after"}' >&"$HFD1"
for ((i = 0; i < 100; i++)); do
	grep -q '"id":"after"' "$T/hold1.out" && break
	sleep 0.02
done
check "10: the other client is still answered" grep -q '"id":"after"' "$T/hold1.out"
check "10: new connections are still answered" eval 'ctl_sock "$SOCK_l" version >/dev/null'
exec {HFD1}>&-
wait "$HPID1"
stop_and_check l

# --- the end ---------------------------------------------------------------

check "daemon a alive after all of it" eval 'ctl_sock "$S" version >/dev/null'
stop_and_check a
