#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Persistence end to end: a real daemon SIGKILLed at random points of a
# stream of setups and teardowns, restarted on the same state dir each
# time, must come back with exactly the state before the interrupted
# request or after it; flags, event numbers and flight ids survive. Then a
# torn state file and a leftover state.tmp.
. "$(dirname "$0")/../lib.sh"
need_root
export LC_ALL=C

ST="$T/r.state"   # the one state dir every run uses
STATE="$ST/state"
ROUNDS=${ROUNDS:-10}
NOPS=40

# --- helpers ------------------------------------------------------------

rq() { ctl_sock "$S" raw "$1"; }
fst() { printf '{"uuid":"%s","type":"%s","target":"%s"%s}' "$1" "$2" "$3" "${4:+,$4}"; }

check_log_clean() { # run name
	if grep -qE 'Sanitizer|runtime error' "$T/$1.log"; then
		not_ok "$1: no sanitizer report in its log" \
			"$(grep -m1 -E 'Sanitizer|runtime error' "$T/$1.log")"
	else
		ok "$1: no sanitizer report in its log"
	fi
}

# Each run is a daemon r<N> of its own (own socket and log) on $ST.
run=0
restart() {
	run=$((run + 1))
	R=r$run
	start_daemon "$R" --no-bpf --state-dir "$ST" || return 1
	eval "S=\$SOCK_$R P=\$PID_$R"
}
crash() { # SIGKILL the current run
	kill -KILL "$P" 2>/dev/null
	{ wait "$P"; } 2>/dev/null
	check_log_clean "$R"
}
stop() { # SIGTERM the current run
	stop_daemon "$R"
	check "$R: SIGTERM: clean exit status" [ $? -eq 0 ]
	check_log_clean "$R"
}

# The state as a model: "uuid=interval/reconnect ..." sorted by uuid.
observed() {
	rq '{"execute":"query-status"}' |
		jqr '[.return.storages[] | "\(.uuid)=\(.params.interval_ms)/\(.reconnect)"] | sort | join(" ")'
}
model_apply() { # model op...
	local -A m=()
	local e u
	for e in $1; do m[${e%%=*}]=${e#*=}; done
	shift
	case $1 in
	setup) # uuid interval reconnect: armed, updated, or unchanged
		if [ -z "${m[$2]}" ] || [ "${m[$2]%/*}" != "$3" ]; then
			m[$2]="$3/$4"
		fi ;;
	teardown)
		shift
		for u; do unset "m[$u]"; done ;;
	esac
	for u in "${!m[@]}"; do echo "$u=${m[$u]}"; done | sort | paste -sd' '
}
declare -A TGT TYP
op_json() { # op...
	local u l=()
	case $1 in
	setup)
		printf '{"execute":"setup","arguments":{"host_uuid":"h1","no_status_check":true,"reconnect":%s,"storages":[%s]}}\n' \
			"$4" "$(fst "$2" "${TYP[$2]}" "${TGT[$2]}" "\"interval_ms\":$3")" ;;
	teardown)
		shift
		for u; do l+=("\"$u\""); done
		printf '{"execute":"teardown","arguments":{"host_uuid":"h1","storages":[%s]}}\n' \
			"$(IFS=,; echo "${l[*]}")" ;;
	hs)
		printf '{"execute":"set-host-state","arguments":{"state":"%s"}}\n' "$2" ;;
	events)
		printf '{"execute":"query-events","arguments":{"since":0}}\n' ;;
	esac
}
# Every armed storage is h1's, with its own target and type.
targets_ok() {
	local u h t y
	while read -r u h t y; do
		[ "$h" = h1 ] && [ "$t" = "${TGT[$u]}" ] && [ "$y" = "${TYP[$u]}" ] || return 1
	done < <(rq '{"execute":"query-status"}' |
		jqr '.return.storages[] | "\(.uuid) \(.host_uuid) \(.params.target) \(.params.type)"')
}

# --- three storages, one of them a reconnect ---------------------------

mkdir -p "$T/m/s1" "$T/m/s3" "$T/m/s4" "$T/m/s5"
dev=$(make_loop "$T/disk.img" 16M) || { not_ok "loop device"; exit 1; }
# make_loop's own on_exit ran in the $(...) subshell and is lost: ours.
on_exit "losetup -d $dev"
TGT=([s1]="$T/m/s1" [s2]="$dev" [s3]="$T/m/s3" [s4]="$T/m/s4" [s5]="$T/m/s5")
TYP=([s1]=file [s2]=block [s3]=file [s4]=file [s5]=file)

restart || { not_ok "daemon starts"; exit 1; }
rq '{"execute":"set-host-state","arguments":{"state":"connected"}}' >/dev/null
r=$(rq "$(op_json setup s1 2000 false | jq -c '.arguments.storages += [
	{"uuid":"s2","type":"block","target":"'"$dev"'"}]')")
check "s1 (file) and s2 (block) armed" \
	[ "$(jqr '[.return.storages[].result] | join(",")' <<<"$r")" = armed,armed ]
r=$(rq "$(op_json setup s3 2000 true)")
check "s3 armed with reconnect:true" \
	[ "$(jqr '"\(.return.storages[0].result) \(.return.reconnect)"' <<<"$r")" = "armed true" ]
M=$(observed)
check "the model matches: $M" [ "$M" = "s1=2000/false s2=2000/false s3=2000/true" ]

# An idle crash: everything stored comes back as it was.
full() {
	rq '{"execute":"query-status"}' |
		jq -S -c '[.return.storages[] | {uuid, host_uuid, reconnect, armed_at, params}] | sort_by(.uuid)'
}
flights() { rq '{"execute":"query-status"}' | jq -c '[.return.storages[] | [.uuid, .flight, .updated_at]] | sort'; }
before=$(full)
fl_before=$(flights)
sleep 1.1   # a re-arm in the same second would hide a lost armed_at
crash
restart || { not_ok "restart after an idle crash"; exit 1; }
check "idle crash: uuid, host, reconnect, armed_at and params all back" [ "$(full)" = "$before" ]
fl_after=$(flights)
[ "$fl_after" = "$fl_before" ] ||
	echo "# note: [uuid, flight, updated_at] before the crash $fl_before, after $fl_after"
check "idle crash: host state back" \
	[ "$(rq '{"execute":"query-status"}' | jqr .return.host_state)" = connected ]

# --- crashes in the middle of a stream of setups and teardowns ----------

TEMPLATE=(
	"setup s4 1000 false" "setup s4 1500 false" "hs disconnected"
	"setup s5 1000 true" "events" "setup s1 3000 false" "teardown s4"
	"hs connected" "setup s1 2000 true" "teardown s5" "setup s4 1000 true"
	"events" "teardown s4 s5" "teardown s4" "setup s5 500 true" "events"
	"setup s1 2000 false"
)
SEEN="$T/seen.jsonl"   # every event a client was shown
: >"$SEEN"
rq '{"execute":"query-events","arguments":{"since":0}}' | jq -c '.return.events[]' >>"$SEEN"
max_flight=0
mismatch=0 torn=0 lost_flag=0 events_bad=0 seq_bad=0 flight_bad=0 stream_bad=0 hits=""
for ((round = 1; round <= ROUNDS; round++)); do
	# The requests, and the model after each: E[0] now, E[k] after k.
	E=("$M")
	: >"$T/stream.in"
	for ((k = 0; k < NOPS; k++)); do
		op=${TEMPLATE[$(((k + round * 5) % ${#TEMPLATE[@]}))]}
		op_json $op >>"$T/stream.in"
		E+=("$(model_apply "${E[$k]}" $op)")
	done
	timeout 20 "$IOFENCECTL" --socket "$S" raw <"$T/stream.in" >"$T/stream.out" 2>/dev/null &
	cpid=$!
	# Odd rounds count from the client's start, even ones from its first
	# reply (a slow client, as under ASan, would else be hit before it
	# sends anything).
	if ((round % 2 == 0)); then
		for ((i = 0; i < 200; i++)); do
			[ -s "$T/stream.out" ] && break
			sleep 0.01
		done
	fi
	sleep "$(printf '0.%03d' $((RANDOM % 51)))"
	crash
	wait "$cpid"
	k=$(wc -l <"$T/stream.out")
	# Every reply the client got was a success, else the model is off.
	[ "$(jq -s '[.[] | select(.error)] | length' "$T/stream.out")" = 0 ] ||
		stream_bad=$((stream_bad + 1))
	jq -c '.return.events[]?' "$T/stream.out" >>"$SEEN"
	f=$(jq -s '[.[].return.flight // 0] | max // 0' "$T/stream.out")
	((f > max_flight)) && max_flight=$f
	prev_last=$(jq -s '[.[].seq] | max // 0' "$SEEN")

	restart || { not_ok "round $round: restart"; break; }
	got=$(observed)
	if [ "$got" = "${E[$k]}" ]; then
		M=$got hits+=" $k:before"
	elif ((k < NOPS)) && [ "$got" = "${E[$((k + 1))]}" ]; then
		M=$got hits+=" $k:after"
	else
		mismatch=$((mismatch + 1))
		echo "# round $round: $k replies; got '$got', expected '${E[$k]}' or '${E[$((k + 1))]}'"
		M=$got
	fi
	case " $got " in *" s1="*" s2="*" s3="*) ;; *) torn=$((torn + 1)) ;; esac
	targets_ok || torn=$((torn + 1))
	case " $got " in *" s3=2000/true "*) ;; *) lost_flag=$((lost_flag + 1)) ;; esac

	# Event numbers: only growing, and what a client saw stays as it was.
	J=$(rq '{"execute":"query-events","arguments":{"since":0}}' | jq -c .return)
	[ "$(jq '[.events[].seq] as $s | $s == ($s | unique) and .last_seq == ($s | max)' <<<"$J")" = true ] ||
		seq_bad=$((seq_bad + 1))
	[ "$(jq --argjson p "$prev_last" '.last_seq > $p' <<<"$J")" = true ] ||
		seq_bad=$((seq_bad + 1))
	bad=$(jq -n --slurpfile seen "$SEEN" --argjson j "$J" '
		($j.events | map({key: (.seq | tostring), value: .}) | from_entries) as $m |
		($j.events | map(.seq) | min) as $lo |
		[$seen[] | select(.seq >= $lo) | select($m[.seq | tostring] != .)] | length')
	if [ "$bad" != 0 ]; then
		events_bad=$((events_bad + 1))
		echo "# round $round: $bad event(s) a client saw differ after the restart"
	fi
	# The re-arm flights of this run come after every flight before it.
	[ "$(jq --argjson p "$prev_last" --argjson f "$max_flight" \
		'[.events[] | select(.seq > $p and .event == "REARMED") | .data.flight] |
		 length >= 3 and all(. > $f)' <<<"$J")" = true ] || flight_bad=$((flight_bad + 1))
	jq -c '.events[]' <<<"$J" >>"$SEEN"
	f=$(jq '[.events[].data.flight // 0] | max // 0' <<<"$J")
	((f > max_flight)) && max_flight=$f
done
echo "# crash points (replies received:state found):$hits"
check "$ROUNDS crashes: the stream replies were all successes" [ "$stream_bad" = 0 ]
check "$ROUNDS crashes: state = before or after the interrupted request, never a mix" [ "$mismatch" = 0 ]
check "$ROUNDS crashes: never empty, s1 s2 s3 always there with their targets" [ "$torn" = 0 ]
check "$ROUNDS crashes: s3's reconnect flag survives" [ "$lost_flag" = 0 ]
check "$ROUNDS crashes: event numbers only grow" [ "$seq_bad" = 0 ]
check "$ROUNDS crashes: events a client saw keep their numbers" [ "$events_bad" = 0 ]
check "$ROUNDS crashes: flight ids only grow" [ "$flight_bad" = 0 ]
check "daemon answers after the last restart" eval 'rq "{\"execute\":\"query-version\"}" >/dev/null'

# --- an event shown, then a crash before it is stored -------------------

# set-host-state replies before the state is written; its event must not be
# seen (and so never renumbered) until a write carries it, even when that
# write fails (state.tmp a folder) and the daemon then dies.
hs=$(rq '{"execute":"query-status"}' | jqr .return.host_state)
[ "$hs" = connected ] && other=disconnected || other=connected
mkdir "$ST/state.tmp"
rq "{\"execute\":\"set-host-state\",\"arguments\":{\"state\":\"$other\"}}" >/dev/null
shown=$(rq '{"execute":"query-events","arguments":{"since":0}}' | jq -cS '.return.events[-1]')
crash
rmdir "$ST/state.tmp"
restart || { not_ok "restart"; exit 1; }
n=$(jqr .seq <<<"$shown")
now=$(rq "{\"execute\":\"query-events\",\"arguments\":{\"since\":$((n - 1))}}" |
	jq -cS ".return.events[] | select(.seq == $n)")
check "an event shown by query-events (seq $n, $(jqr .event <<<"$shown")) is never renumbered after a crash" \
	eval '[ -z "$now" ] || [ "$now" = "$shown" ]'
[ -z "$now" ] || [ "$now" = "$shown" ] || echo "# seq $n was $shown, now $now"

# The same at start-up: REARMED events whose write failed stay held.
stop
mkdir "$ST/state.tmp"
restart || { not_ok "restart"; exit 1; }
shown=$(rq '{"execute":"query-events","arguments":{"since":0}}' |
	jq -c '[.return.events[] | select(.event == "REARMED")] | .[-3:]')
crash
rmdir "$ST/state.tmp"
restart || { not_ok "restart"; exit 1; }
J=$(rq '{"execute":"query-events","arguments":{"since":0}}' | jq -c .return.events)
bad=$(jq -n --argjson s "$shown" --argjson j "$J" \
	'[$s[] as $e | $j[] | select(.seq == $e.seq and . != $e)] | length')
check "REARMED events shown after a failed start-up write are never renumbered ($bad reused)" \
	[ "$bad" = 0 ]
[ "$bad" = 0 ] || echo "# shown: $(jq -c '[.[] | [.seq, .data.flight, .timestamp.microseconds]]' <<<"$shown"), now: $(jq -c --argjson s "$shown" '[.[] | select(.seq as $q | $s | map(.seq) | index($q)) | [.seq, .data.flight, .timestamp.microseconds]]' <<<"$J")"

# --- a torn state file --------------------------------------------------

rq '{"execute":"set-host-state","arguments":{"state":"connected"}}' >/dev/null
rq "$(op_json setup s4 1000 false)" >/dev/null
stop
cp "$STATE" "$T/state.good"
truncate -s -5 "$STATE"
cp "$STATE" "$T/state.torn"
restart || { not_ok "restart on a torn state file"; exit 1; }
check "torn state: the daemon says the file is unusable" \
	grep -q "state: $STATE is unusable (.*truncated" "$T/$R.log"
corrupt=$(ls "$ST" | grep '^state\.corrupt-' | head -1)
check "torn state: kept as state.corrupt-* ($corrupt), byte for byte" \
	eval '[ -n "$corrupt" ] && cmp -s "$ST/$corrupt" "$T/state.torn"'
check "torn state: starts with nothing armed" [ "$(observed)" = "" ]
check "torn state: the daemon answers" eval 'rq "{\"execute\":\"query-version\"}" >/dev/null'
r=$(rq "$(op_json setup s4 1000 false)")
check "torn state: a setup works and writes a new state file" \
	eval '[ "$(jqr ".return.storages[0].result" <<<"$r")" = armed ] && [ -s "$STATE" ]'

# --- a leftover state.tmp -----------------------------------------------

stop
want=$(jq -Rrs 'split("\n")[1] | fromjson | [.storages[].params.uuid] | sort | join(" ")' <"$STATE")
cp "$T/state.good" "$ST/state.tmp"   # valid, and different: s1 s2 s3 s4
restart || { not_ok "restart with a leftover state.tmp"; exit 1; }
have=$(rq '{"execute":"query-status"}' | jqr '[.return.storages[].uuid] | sort | join(" ")')
check "leftover state.tmp: ignored, the state file wins (armed: '$have')" \
	[ "$have" = "$want" ]
check "leftover state.tmp: removed at start" [ ! -e "$ST/state.tmp" ]
stop
