#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: ceph (its section 5 starts a test cluster)
#
# Security end to end (issue 12): what a caller without rights, a hostile
# request, a hostile storage or a peer's hostile record can make the daemon
# do. Nothing, each time with a clear error, the daemon alive and its state
# as it was.
#   1 rights before arguments: nobody (in the socket group, not in the
#     control group) is refused every mutating command, with valid and
#     bogus arguments alike, in the same words; introspection ignores
#     arguments, the other queries refuse unknown ones
#   2 hostile paths: "..", a symlinked target, a symlinked .iofence, a
#     record that is a symlink, a FIFO or a directory
#   3 a record replaced by a symlink, then a FIFO, between two heartbeats:
#     the writer goes on through its fd; query-peer, an update and a
#     re-arm at start-up open the path again and refuse it
#   4 uuids with shell metacharacters; lines of 64 MiB, deep nesting,
#     invalid UTF-8, NUL bytes
#   5 a peer's record is hostile input: files, block slots and RADOS
#     objects (where Ceph is installed; IOFENCE_SECURITY_RBD=0 leaves
#     them out)
#   6 the fence kills inside its victim rules only: a root shell, a
#     bystander, disguised ones and the test runner itself hold files of
#     the fenced storage (faultfs, dead); the fence hook gets the uuids and
#     victims in its environment, never through a shell
. "$(dirname "$0")/../lib.sh"
need_root
FAULTFS=$(readlink -f "${FAULTFS:-$OUT/faultfs}")
# shellcheck source=../faultfs/faultfs.sh
. "$(dirname "$0")/../faultfs/faultfs.sh"

for need in jq python3 setpriv losetup; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done

T=$(readlink -f "$T")
# Sockets, binaries and folders reachable by nobody.
chmod 755 "$T"
mkdir -p "$T/bin" "$T/m" "$T/out" "$T/vm"
if ! cp "$IOFENCED" "$IOFENCECTL" "$(dirname "$0")/helpers/hostile.py" "$T/bin/"; then
	not_ok "copy $IOFENCED, $IOFENCECTL and hostile.py (make all)"
	exit 1
fi
IOFENCED=$T/bin/${IOFENCED##*/}
IOFENCECTL=$T/bin/${IOFENCECTL##*/}
HOSTILE=$T/bin/hostile.py
chmod -R a+rX "$T"

as_nobody() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$@"; }
rq() { ctl_sock "$1" raw "$2"; }
# rqs SOCK: each line of stdin a request, each reply a line.
rqs() { timeout 30 "$IOFENCECTL" --socket "$1" raw; }
class_of() { jqr '.error.class // "none"' <<<"$1"; }
desc_of() { jqr '.error.desc // ""' <<<"$1"; }
# The reply of id ID among the replies on stdin.
by_id() { jq -c --arg i "$1" 'select(.id == $i)'; }
# What the daemon guards, and its journal: equal before and after. The
# journal is counted without CORE_LAG, which is the core's timing on a
# machine shared with other tests (reported from 10% of the smallest
# interval, 20 ms here): unchanged bounds that one on its own.
snap() {
	local st j
	st=$(rq "$1" '{"execute":"query-status"}' | jq -c '.return | [.host_state,
		[.storages[] | {uuid, host_uuid, params, flight}], .unarmed]')
	j=$(journal_of "$1" | jq -c '[.[] | select(.event != "CORE_LAG")] | [length, (last.seq // 0)]')
	echo "[$st,$j]"
}
# unchanged SOCK BEFORE: the daemon answers, snap is BEFORE, and the core
# was never held up by half the storages' interval of 200 ms (a hostile
# request must not stall it; less is the load of the machine). Else what
# differs is shown.
unchanged() {
	local now seq lag
	alive_answers "$1" || return 1
	now=$(snap "$1")
	seq=$(jq '.[1][1]' <<<"$2")
	lag=$(journal_of "$1" | jq --argjson s "$seq" \
		'[.[] | select(.seq > $s and .event == "CORE_LAG") | .data.lag_us] | max // 0')
	[ "$now" = "$2" ] && [ "$lag" -lt 100000 ] && return 0
	echo "# before: $2"
	echo "# now:    $now"
	echo "# the core's worst lag since: $lag us"
	journal_of "$1" | jq -c --argjson s "$seq" '.[] | select(.seq > $s) | [.seq, .event, .data]' |
		head -5 | sed 's/^/#   journalled since: /'
	return 1
}
alive_answers() { rq "$1" '{"execute":"query-version"}' | jqe '.return.major == 0'; }
fst() { # uuid target [extra "key":value pairs]: a file storage
	printf '{"uuid":"%s","type":"file","target":"%s","interval_ms":200,"timeout_ms":2000,"victims":["iofence-test-nobody"]%s}' \
		"$1" "$2" "${3:+,$3}"
}
setup_req() { # host storage-json [extra "key":value pairs]
	printf '{"execute":"setup","arguments":{"host_uuid":"%s","storages":[%s]%s}}' "$1" "$2" "${3:+,$3}"
}
wrote() { # sock uuid: its successful heartbeat writes
	rq "$1" '{"execute":"query-status"}' |
		jq -r --arg u "$2" '[.return.storages[] | select(.uuid == $u) | .heartbeat.writes_ok][0] // 0'
}
wrote_more() { [ "$(wrote "$1" "$2")" -ge "$3" ]; }

GROUP=nogroup
CONTROL=daemon
getent group "$CONTROL" >/dev/null || CONTROL=root
# g: nobody may connect (socket group) but not change state; c: a control
# group nobody is not in.
daemon_on g g --no-bpf --socket-group "$GROUP" || { not_ok "daemon g starts"; exit 1; }
daemon_on c c --no-bpf --socket-group "$GROUP" --control-group "$CONTROL" ||
	{ not_ok "daemon c starts"; exit 1; }
G=$SOCK_g
mkdir -p "$T/m/s1"
for s in "$G" "$SOCK_c"; do
	rq "$s" '{"execute":"set-host-state","arguments":{"state":"connected"}}' >/dev/null
	r=$(rq "$s" "$(setup_req h1 "$(fst s1 "$T/m/s1")")")
	check "setup of s1 on $(basename "$s")" jqe '.return.storages[0].result == "armed"' <<<"$r"
done

# --- 1. rights before arguments ------------------------------------------

SETUP_OK=$(setup_req h1 "$(fst s1 "$T/m/s1")")
# Per mutating command: its arguments, valid first, then bogus ones.
declare -A REQS=(
	[set-host-state]='{"state":"disconnected"}|{"state":"bogus","zz_unknown":1}|{"state":7}|'
	[setup]="$(jq -c .arguments <<<"$SETUP_OK")"'|{"host_uuid":"h1","storages":[{"uuid":"s1","type":"nfs","colour":1}],"zz_unknown":true}|{"zz_unknown":1}|'
	[teardown]='{"host_uuid":"h1"}|{"host_uuid":5,"zz_unknown":1}|'
	[unfence]='{"uuid":"s1"}|{"uuid":"nonexistent","zz_unknown":1}|'
	[fence-peer]='{"storage":"s1","host":"h2"}|{"storage":"nonexistent","host":"bad host;x","zz_unknown":1}|'
	[unfence-peer]='{"storage":"s1","host":"h2"}|{"host":7,"zz_unknown":1}|{}'
)
# requests_of CMD: its requests, one a line, ids CMD/0, CMD/1...
requests_of() {
	local i=0 a IFS='|'
	for a in ${REQS[$1]}; do
		if [ -n "$a" ]; then
			printf '{"execute":"%s","arguments":%s,"id":"%s/%d"}\n' "$1" "$a" "$1" "$i"
		else
			printf '{"execute":"%s","id":"%s/%d"}\n' "$1" "$1" "$i"
		fi
		i=$((i + 1))
	done
}
all_requests() { local c; for c in "${!REQS[@]}"; do requests_of "$c"; done; }

rights() { # label socket
	local label=$1 s=$2 before out c n descs cls
	before=$(snap "$s")
	out=$(all_requests | as_nobody "$IOFENCECTL" --socket "$s" raw)
	for c in "${!REQS[@]}"; do
		n=$(requests_of "$c" | wc -l)
		cls=$(jq -r --arg c "$c" 'select(.id | startswith($c + "/")) | .error.class // "return"' <<<"$out" | sort -u | xargs)
		check "1 $label: nobody's $c, $n ways (valid and bogus arguments): all PermissionDenied ($cls)" \
			[ "$cls" = PermissionDenied ]
		descs=$(jq -r --arg c "$c" 'select(.id | startswith($c + "/")) | .error.desc' <<<"$out" | sort -u)
		check "1 $label: ... in one description, the documented one: $descs" \
			[ "$descs" = "$c: changes state; only root or the control group may (you are uid $(id -u nobody) gid $(getent group nogroup | cut -d: -f3))" ]
		check "1 $label: ... no error data (no member, no rule) in any" \
			[ "$(jq -c --arg c "$c" 'select(.id | startswith($c + "/")) | .error | keys' <<<"$out" | sort -u)" = '["class","desc"]' ]
	done
	check "1 $label: no reply names an argument (zz_unknown, colour, nfs, nonexistent, h2)" \
		eval '! grep -qE "zz_unknown|colour|nfs|nonexistent|h2" <<<"$out"'
	check "1 $label: nothing changed (query-status and journal as before)" unchanged "$s" "$before"
}
rights "no --control-group" "$G"
rights "--control-group $CONTROL" "$SOCK_c"

# The same bogus requests from those with the rights: InvalidArgument.
out=$(all_requests | grep zz_unknown | rqs "$G")
check "1: root's bogus requests are InvalidArgument, naming zz_unknown (the arguments are looked at only now)" \
	[ "$(jq -r '[.error.class, .error.data.member] | join(" ")' <<<"$out" | sort -u)" = "InvalidArgument zz_unknown" ]
out=$(all_requests | grep zz_unknown | setpriv --reuid=nobody --regid=nogroup --groups "$CONTROL" \
	"$IOFENCECTL" --socket "$SOCK_c" raw)
check "1: a member of the control group (supplementary) gets InvalidArgument too" \
	[ "$(jq -r '.error.class' <<<"$out" | sort -u)" = InvalidArgument ]
out=$(as_nobody timeout 20 "$IOFENCECTL" --socket "$G" set-host-state disconnected 2>&1)
rc=$?
check "1: iofencectl set-host-state as nobody fails (exit $rc) and says why" \
	eval '[ $rc -ne 0 ] && grep -q "only root or the control group" <<<"$out"'

# Introspection takes whatever a client sends; the other queries refuse.
out=$(as_nobody "$IOFENCECTL" --socket "$G" raw <<'EOF'
{"execute":"query-capabilities","arguments":{"zz_future":1,"filter":["x"]},"id":"caps"}
{"execute":"query-commands","arguments":{"zz_future":1},"id":"cmds"}
{"execute":"query-version","arguments":{"zz_future":1},"id":"query-version"}
{"execute":"query-status","arguments":{"zz_future":1},"id":"query-status"}
{"execute":"subscribe","arguments":{"zz_future":1},"id":"subscribe"}
{"execute":"query-commands","arguments":5,"id":"notobj"}
{"execute":"setup","arguments":[],"id":"notobj-setup"}
EOF
)
check "1: query-capabilities ignores unknown arguments" \
	jqe '.return.capabilities | index("single-flight") != null' <<<"$(by_id caps <<<"$out")"
check "1: query-commands ignores unknown arguments" \
	jqe '[.return.commands[] | select(.mutating) | .name] | sort == ["fence-peer","set-host-state","setup","teardown","unfence","unfence-peer"]' \
	<<<"$(by_id cmds <<<"$out")"
for q in query-version query-status subscribe; do
	check "1: $q refuses them: InvalidArgument naming zz_future" \
		jqe '.error.class == "InvalidArgument" and .error.data.member == "zz_future" and .error.data.rule == "unknown"' \
		<<<"$(by_id "$q" <<<"$out")"
done
check "1: arguments that are not an object: GenericError, for introspection too" \
	jqe '.error.class == "GenericError"' <<<"$(by_id notobj <<<"$out")"
check "1: ... and for nobody's setup: a request not well formed, refused before the rights (as documented)" \
	jqe '.error.class == "GenericError"' <<<"$(by_id notobj-setup <<<"$out")"

# --- 2. hostile paths --------------------------------------------------------

mkdir -p "$T/m/x" "$T/outside/dir" "$T/m/di" "$T/m/rl/.iofence" "$T/m/rk/.iofence" \
	"$T/m/ff/.iofence" "$T/m/dd/.iofence/h1"
echo keep >"$T/outside/file"
ln -s "$T/m/x" "$T/m/lt"
ln -s "$T/m" "$T/lp"
ln -s "$T/outside/dir" "$T/m/di/.iofence"
ln -s "$T/outside/rec" "$T/m/rl/.iofence/h1"
ln -s "$T/outside/file" "$T/m/rk/.iofence/h1"
mkfifo "$T/m/ff/.iofence/h1"
before=$(snap "$G")
hostile_setup() { # label class pattern storage-json
	local t0 r el cls=$2 pat=$3
	t0=$(mono_ms)
	r=$(rq "$G" "$(setup_req h1 "$4")")
	el=$(($(mono_ms) - t0))
	check "2: $1: $2 in $el ms, the reason said ($(desc_of "$r"))" \
		eval '[ "$(class_of "$r")" = "$cls" ] && grep -qE -- "$pat" <<<"$(desc_of "$r")" && [ $el -lt 3000 ]'
	check "2: $1: ... the daemon answers, nothing changed" unchanged "$G" "$before"
}
hostile_setup "target with .." InvalidArgument '^storages\[0\]\.target: must be normalised' "$(fst p "$T/m/../m/x")"
hostile_setup "target with ." InvalidArgument '^storages\[0\]\.target: must be normalised' "$(fst p "$T/m/./x")"
hostile_setup "fence_hook with .." InvalidArgument '^storages\[0\]\.fence_hook: must be normalised' \
	"$(fst p "$T/m/x" "\"fence_hook\":\"$T/bin/../bin/hook\"")"
hostile_setup "target a symlink" ArmingFailed 'open target.*symbolic links' "$(fst p "$T/m/lt")"
hostile_setup "a symlink in the target's path" ArmingFailed 'open target.*symbolic links' "$(fst p "$T/lp/x")"
hostile_setup ".iofence a symlink to elsewhere" ArmingFailed 'open heartbeat record.*symbolic links' "$(fst p "$T/m/di")"
hostile_setup "the record a symlink to a new file" ArmingFailed 'open heartbeat record.*symbolic links' "$(fst p "$T/m/rl")"
hostile_setup "the record a symlink to a file" ArmingFailed 'open heartbeat record.*symbolic links' "$(fst p "$T/m/rk")"
hostile_setup "the record a FIFO" ArmingFailed 'not a regular file \(a FIFO\)' "$(fst p "$T/m/ff")"
hostile_setup "the record a directory" ArmingFailed 'open heartbeat record.*Is a directory' "$(fst p "$T/m/dd")"
check "2: nothing written outside: outside/dir empty, outside/rec absent, outside/file kept" \
	eval '[ -z "$(ls -A "$T/outside/dir")" ] && [ ! -e "$T/outside/rec" ] && [ "$(cat "$T/outside/file")" = keep ]'

# --- 3. a record replaced between two heartbeats ------------------------------

R=$T/m/r1
REC=$R/.iofence/h1
mkdir -p "$R"
r=$(rq "$G" "$(setup_req h1 "$(fst r1 "$R")")")
check "3: r1 armed" jqe '.return.storages[0].result == "armed"' <<<"$r"
check "3: r1 heartbeats" wait_until 5 wrote_more "$G" r1 3
before=$(snap "$G")
ln "$REC" "$R/.iofence/h1.old"
ln -s "$T/outside/file" "$REC.new" && mv -T "$REC.new" "$REC"
cp "$R/.iofence/h1.old" "$T/h1.then"
n=$(wrote "$G" r1)
check "3: the record a symlink now: heartbeats go on through the fd" wait_until 5 wrote_more "$G" r1 $((n + 3))
check "3: ... into the file it had open (now h1.old), not through the symlink" \
	eval '[ "$(cat "$T/outside/file")" = keep ] && ! cmp -s "$R/.iofence/h1.old" "$T/h1.then"'
r=$(rq "$G" '{"execute":"query-peer","arguments":{"storage":"r1","host":"h1","window_ms":0}}')
check "3: query-peer of it: unknown, the record's path is a symbolic link ($(jqr .return.reason <<<"$r"))" \
	jqe '.return.liveness == "unknown" and (.return.reason | test("symbolic link"))' <<<"$r"
r=$(rq "$G" "$(setup_req h1 "$(fst r1 "$R" '"kill_grace_ms":1000')")")
check "3: an update opens it again: ArmingFailed, symbolic links ($(desc_of "$r"))" \
	eval '[ "$(class_of "$r")" = ArmingFailed ] && grep -q "symbolic links" <<<"$(desc_of "$r")"'
check "3: ... r1 armed as before, nothing changed" unchanged "$G" "$before"
# Each replacement atomic (a rename): no moment without a record.
mkfifo "$REC.new" && mv -T "$REC.new" "$REC"
t0=$(mono_ms)
r=$(rq "$G" '{"execute":"query-peer","arguments":{"storage":"r1","host":"h1","window_ms":0}}')
el=$(($(mono_ms) - t0))
check "3: the record a FIFO: query-peer unknown in $el ms, not a regular file ($(jqr .return.reason <<<"$r"))" \
	eval 'jqe ".return.liveness == \"unknown\" and (.return.reason | test(\"not a regular file\"))" <<<"$r" && [ $el -lt 3000 ]'
r=$(rq "$G" "$(setup_req h1 "$(fst r1 "$R" '"kill_grace_ms":1000')")")
check "3: ... an update: ArmingFailed, not a regular file (a FIFO) ($(desc_of "$r"))" \
	eval '[ "$(class_of "$r")" = ArmingFailed ] && grep -q "not a regular file (a FIFO)" <<<"$(desc_of "$r")"'
check "3: ... r1 armed as before, nothing changed" unchanged "$G" "$before"
n=$(wrote "$G" r1)
check "3: ... and its heartbeats go on" wait_until 5 wrote_more "$G" r1 $((n + 2))

# A re-arm at start-up opens the path again: refused, left unarmed, said so.
rearm_refused() { # label log-pattern
	local rc r
	daemon_stop g 15
	rc=$?
	check "3: $1: daemon g stopped (exit $rc)" [ "$rc" -eq 0 ]
	daemon_on g g --no-bpf --socket-group "$GROUP" || { not_ok "3: $1: daemon g starts again"; return; }
	G=$SOCK_g
	r=$(rq "$G" '{"execute":"query-status"}')
	check "3: $1: re-armed s1, left r1 unarmed (kept in the state file)" \
		jqe '([.return.storages[].uuid] == ["s1"]) and ([.return.unarmed[].params.uuid] == ["r1"])' <<<"$r"
	check "3: $1: ... the log says why" grep -qE "re-arm r1: .*$2" "$T/g.log"
}
rearm_refused "re-arm with the record a FIFO" 'not a regular file \(a FIFO\)'
ln -s "$T/outside/file" "$REC.new" && mv -T "$REC.new" "$REC"
rearm_refused "re-arm with the record a symlink" 'symbolic links'
check "3: outside/file still untouched" [ "$(cat "$T/outside/file")" = keep ]
rq "$G" '{"execute":"teardown","arguments":{"host_uuid":"h1","storages":["r1"]}}' >/dev/null

# --- 4. hostile uuids and lines ------------------------------------------------

before=$(snap "$G")
PWN=pw$$
BAD_UUIDS=("a;touch $PWN" "\$(touch $PWN)" "\`touch $PWN\`" "a|b" "a b" "a&b" "a>$PWN" "a'b" 'a"b'
	$'a\nb' $'a\tb' "*" "../x" ".hidden" "a/b" "a\$b" 'a\b' "~root" "a!b" "a#b" "{a,b}" "a%b"
	$'\xc3\xa9t\xc3\xa9' "$(printf 'x%.0s' {1..65})")
reqs=$(for u in "${BAD_UUIDS[@]}"; do
	jq -nc --arg u "$u" --arg t "$T/m/x" \
		'{execute: "setup", arguments: {host_uuid: "h1", storages: [{uuid: $u, type: "file", target: $t}]}, id: "s"}'
	jq -nc --arg u "$u" --arg t "$T/m/x" \
		'{execute: "setup", arguments: {host_uuid: $u, storages: [{uuid: "u1", type: "file", target: $t}]}, id: "h"}'
	jq -nc --arg u "$u" '{execute: "query-peer", arguments: {storage: "s1", host: $u}, id: "p"}'
done)
out=$(rqs "$G" <<<"$reqs")
check "4: ${#BAD_UUIDS[@]} uuids with metacharacters, as storage uuid: each InvalidArgument naming storages[0].uuid" \
	[ "$(by_id s <<<"$out" | jq -r '[.error.class, .error.data.member] | join(" ")' | sort | uniq -c | xargs)" = "${#BAD_UUIDS[@]} InvalidArgument storages[0].uuid" ]
check "4: ... as host_uuid: each InvalidArgument naming host_uuid" \
	[ "$(by_id h <<<"$out" | jq -r '[.error.class, .error.data.member] | join(" ")' | sort | uniq -c | xargs)" = "${#BAD_UUIDS[@]} InvalidArgument host_uuid" ]
check "4: ... as query-peer's host: each InvalidArgument naming host" \
	[ "$(by_id p <<<"$out" | jq -r '[.error.class, .error.data.member] | join(" ")' | sort | uniq -c | xargs)" = "${#BAD_UUIDS[@]} InvalidArgument host" ]
check "4: ... nothing ran ($PWN nowhere)" \
	eval '[ ! -e "/proc/$PID_g/cwd/$PWN" ] && [ ! -e "$T/$PWN" ] && [ ! -e "$T/m/x/$PWN" ]'
check "4: ... the daemon answers, nothing changed" unchanged "$G" "$before"

rss_kb() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status"; }
rss0=$(rss_kb "$PID_g")
t0=$(mono_ms)
out=$(python3 -c 'import sys; sys.stdout.buffer.write(b"{\"execute\":\"query-version\",\"id\":\"" + b"a" * (64 << 20) + b"\"}\n")' |
	python3 "$HOSTILE" send "$G")
el=$(($(mono_ms) - t0))
rss1=$(rss_kb "$PID_g")
check "4: a line of 64 MiB: LimitExceeded without an id, then the connection closes ($el ms)" \
	[ "$(sed -n 2p <<<"$out" | jq -c '[.error.class, has("id")]')/$(wc -l <<<"$out")" = '["LimitExceeded",false]/2' ]
check "4: ... the daemon did not keep it (RSS $rss0 -> $rss1 kB, want < +16 MiB)" [ $((rss1 - rss0)) -lt 16384 ]
out=$(python3 -c 'import sys; sys.stdout.buffer.write(b"{\"execute\":\"setup\",\"arguments\":" + b"[" * 100000 + b"]" * 100000 + b"}\n")' |
	python3 "$HOSTILE" send "$G")
check "4: JSON nested 100000 deep (200 kB): LimitExceeded" \
	jqe '.error.class == "LimitExceeded"' <<<"$(sed -n 2p <<<"$out")"
# Within the line limit: the parser's depth limit, then the connection goes on.
out=$(python3 - "$HOSTILE" "$G" <<'EOF'
import subprocess, sys
lines = [
    b'{"execute":"setup","arguments":{"host_uuid":"h1","storages":' + b"[" * 32000 + b"]" * 32000 + b"}}",
    b'{"execute":"query-status","arguments":' + b'{"a":' * 10000 + b"1" + b"}" * 10000 + b"}",
    b'{"execute":"query-version","id":"\xff\xfe"}',
    b'{"execute":"query-version","id":"\xc0\xaf"}',
    b'{"execute":"query-version","id":"\xed\xa0\x80"}',
    b'{"execute":"query-version","id":"\xe2\x82"}',
    b'{"execute":"teardown","arguments":{"host_uuid":"h\xff1"}}',
    b'{"execute":"query-\x00version"}',
    b'{"execute":"query-version"}\x00',
    b'\x00',
    b'{"execute":"teardown","arguments":{"host_uuid":"h\\u0000x"}}',
    b'{"execute":"query-version","id":"after"}',
]
data = b"\n".join(lines) + b"\n"
sys.stdout.buffer.write(subprocess.run(["python3", sys.argv[1], "send", sys.argv[2]],
                                       input=data, capture_output=True).stdout)
EOF
)
check "4: 32000 levels of arrays, 10000 of objects: GenericError, the depth said ($(sed -n 2p <<<"$out" | jqr .error.desc))" \
	eval '[ "$(sed -n 2,3p <<<"$out" | jq -r ".error.class + \" \" + (.error.desc | test(\"depth\") | tostring)" | sort -u)" = "GenericError true" ]'
check "4: invalid UTF-8 (4 ways, and in an argument): GenericError, no id" \
	[ "$(sed -n 4,8p <<<"$out" | jq -c '[.error.class, has("id")]' | sort -u)" = '["GenericError",false]' ]
check "4: NUL bytes in a line (3 ways, and \\u0000 in a string): GenericError" \
	[ "$(sed -n 9,12p <<<"$out" | jq -r '.error.class' | sort -u)" = GenericError ]
check "4: ... and the same connection still answers the next line" \
	jqe '.id == "after" and .return.major == 0' <<<"$(sed -n 13p <<<"$out")"
check "4: the daemon answers, nothing changed" unchanged "$G" "$before"

# --- 5. a peer's record is hostile input ---------------------------------------

# craft DIR: records of hosts h* as files in DIR (size $SIZE).
SIZE=4096
craft() {
	local d=$1 p=(python3 "$HOSTILE" record)
	"${p[@]}" "$d/hg" size=$SIZE garbage=1
	"${p[@]}" "$d/hc" size=$SIZE host=hc badcrc=1
	"${p[@]}" "$d/hn" size=$SIZE host=hn nvms=65535
	"${p[@]}" "$d/hv" size=$SIZE host=hv version=2
	"${p[@]}" "$d/hm" size=$SIZE host=other
	"${p[@]}" "$d/hz" size=$SIZE host=hz timeout=0
	"${p[@]}" "$d/hi" size=$SIZE host=hi interval=0
	"${p[@]}" "$d/hb" size=$SIZE host=hb interval=200 timeout=4000000
	"${p[@]}" "$d/hx" size=$SIZE host=hex:68011b5b326a
	"${p[@]}" "$d/hu" size=$SIZE host=hex:68c3
	"${p[@]}" "$d/hs" size=$SIZE host=hs state=9
	"${p[@]}" "$d/hd" size=$SIZE host=hd
}
# expect_peers LABEL REPLIES: each hostile record unknown, with its reason;
# hd, a good but stale record, dead.
expect_peers() {
	local l=$1 out=$2 h why r
	for h in hg:"no valid record" hc:"no valid record" hn:"no valid record" hv:"newer format" \
		hm:"names another host" hz:"not trusted" hi:"not trusted" hb:"not trusted" \
		hx:"no valid record" hu:"no valid record" hs:"no valid record"; do
		why=${h#*:} h=${h%%:*}
		r=$(by_id "$h" <<<"$out")
		check "5 $l: $h: unknown, '$why', no record given ($(jqr '.return.reason // .error.desc' <<<"$r"))" \
			jqe --arg w "$why" '.return.liveness == "unknown" and (.return.reason | contains($w)) and (.return | has("record") | not)' <<<"$r"
	done
	r=$(by_id hd <<<"$out")
	check "5 $l: hd, a good record that did not move over its timeout: dead (the records are well made)" \
		jqe '.return.liveness == "dead" and .return.record.seq == 7' <<<"$r"
}
peer_reqs() { # storage [slot...]: one query-peer per host, window 1 s
	local s=$1 h i=0
	shift
	for h in hg hc hn hv hm hz hi hb hx hu hs hd; do
		if [ $# -gt 0 ]; then
			printf '{"execute":"query-peer","arguments":{"storage":"%s","host":"%s","slot":%d,"window_ms":1000},"id":"%s"}\n' \
				"$s" "$h" "$1" "$h"
			shift
		else
			printf '{"execute":"query-peer","arguments":{"storage":"%s","host":"%s","window_ms":1000},"id":"%s"}\n' \
				"$s" "$h" "$h"
		fi
		i=$((i + 1))
	done
}

P=$T/m/p1
mkdir -p "$P/.iofence"
r=$(rq "$G" "$(setup_req h1 "$(fst p1 "$P")")")
check "5: file storage p1 armed" jqe '.return.storages[0].result == "armed"' <<<"$r"
craft "$P/.iofence"
before=$(snap "$G")
out=$(peer_reqs p1 | rqs "$G")
expect_peers "file" "$out"
: >"$P/.iofence/he"
head -c 100 /dev/urandom >"$P/.iofence/ht"
out=$(printf '{"execute":"query-peer","arguments":{"storage":"p1","host":"%s","window_ms":1000},"id":"%s"}\n' he he ht ht | rqs "$G")
check "5 file: an empty record file: unknown ($(by_id he <<<"$out" | jqr .return.reason))" \
	jqe '.return.liveness == "unknown"' <<<"$(by_id he <<<"$out")"
check "5 file: a record file of 100 bytes: unknown, no valid record" \
	jqe '.return.liveness == "unknown" and (.return.reason | contains("no valid record"))' <<<"$(by_id ht <<<"$out")"
check "5 file: the daemon answers, nothing changed" unchanged "$G" "$before"

# Block slots: slot 0 ours, the crafted records in slots 1 to 12 (512
# bytes: the loop device's logical block size).
IMG=$T/blk.img
if L=$(make_loop "$IMG" 1M); then
	on_exit "losetup -d $L"
	r=$(rq "$G" "$(setup_req h1 "{\"uuid\":\"b1\",\"type\":\"block\",\"target\":\"$L\",\"slot\":0,\"interval_ms\":200,\"timeout_ms\":2000,\"victims\":[\"iofence-test-nobody\"]}")")
	check "5: block storage b1 armed" jqe '.return.storages[0].result == "armed"' <<<"$r"
	mkdir -p "$T/slots"
	SIZE=512 craft "$T/slots"
	i=1
	for h in hg hc hn hv hm hz hi hb hx hu hs hd; do
		dd if="$T/slots/$h" of="$IMG" bs=4096 seek=$i conv=notrunc status=none
		i=$((i + 1))
	done
	before=$(snap "$G")
	out=$(peer_reqs b1 1 2 3 4 5 6 7 8 9 10 11 12 | rqs "$G")
	expect_peers "block" "$out"
	check "5 block: the daemon answers, nothing changed" unchanged "$G" "$before"
	# A slot to arm, holding a "live record" of a host whose name is no
	# text: not a record, and the refusal reaches its client.
	python3 "$HOSTILE" record "$T/slots/bad" size=512 host=hex:68ff1b5b32 state=1
	dd if="$T/slots/bad" of="$IMG" bs=4096 seek=13 conv=notrunc status=none
	r=$(rq "$G" "$(setup_req h1 "{\"uuid\":\"b2\",\"type\":\"block\",\"target\":\"$L\",\"slot\":13,\"victims\":[\"iofence-test-nobody\"]}")")
	check "5 block: arming a slot whose record names a host in bytes that are no text: ArmingFailed, not an iofence record ($(desc_of "$r"))" \
		eval '[ "$(class_of "$r")" = ArmingFailed ] && grep -q "not an iofence record" <<<"$(desc_of "$r")"'
	check "5 block: ... nothing changed" unchanged "$G" "$before"
else
	not_ok "5: a loop device for the block slots"
fi

# RADOS objects, on a machine with Ceph: its test cluster costs 25 to
# 40 s (IOFENCE_SECURITY_RBD=0 leaves it out; test_record has the
# decoders' unit tests, record_decode and record_addrs_decode, which an
# rbd query-peer reads an object through).
rbd_records() {
	local have=1 b
	if [ "${IOFENCE_SECURITY_RBD:-1}" = 0 ]; then
		skip "5 rbd: RADOS objects left out (IOFENCE_SECURITY_RBD=0)"
		return
	fi
	for b in ceph-mon ceph-osd ceph rados; do command -v "$b" >/dev/null || have=; done
	if [ -z "$have" ] || [ "${IOFENCE_TEST_CEPH:-1}" = 0 ]; then
		skip "5 rbd: Ceph is not installed (or IOFENCE_TEST_CEPH=0)"
		return
	fi
	# shellcheck source=../ceph.sh
	. "$(dirname "$0")/../ceph.sh"
	cluster_up || { not_ok "5 rbd: the test cluster starts"; return; }
	cluster_pool secpool || { not_ok "5 rbd: pool secpool"; return; }
	r=$(rq "$G" "$(setup_req h1 "{\"uuid\":\"rb1\",\"type\":\"rbd\",\"pool\":\"secpool\",\"ceph_conf\":\"$CEPH_CONF\",\"interval_ms\":1000,\"timeout_ms\":10000,\"victims\":[\"iofence-test-nobody\"]}")")
	jqe '.return.storages[0].result == "armed"' <<<"$r" ||
		{ not_ok "5: rbd storage rb1 armed" "$r"; tail -20 "$T/g.log" | sed 's/^/#   /'; return; }
	ok "5: rbd storage rb1 armed"
	mkdir -p "$T/objs"
	craft "$T/objs"
	# hz names an address, which fence-peer must not blocklist.
	python3 "$HOSTILE" record "$T/objs/hz" size=4096 host=hz timeout=0 addrs=127.0.0.9:0/0
	for h in hg hc hn hv hm hz hi hb hx hu hs hd; do
		cl_rados -p secpool put "iofence.$h" "$T/objs/$h" || not_ok "5 rbd: rados put iofence.$h"
	done
	before=$(snap "$G")
	out=$(peer_reqs rb1 | rqs "$G")
	expect_peers "rbd" "$out"
	r=$(rq "$G" '{"execute":"fence-peer","arguments":{"storage":"rb1","host":"hz","window_ms":1000}}')
	check "5 rbd: fence-peer of hz (timeout 0): refused, nothing blocklisted ($(desc_of "$r"))" \
		eval '[ "$(class_of "$r")" = NotFound ] && ! cl_ceph osd blocklist ls 2>/dev/null | grep -q 127.0.0.9'
	check "5 rbd: the daemon answers, nothing changed" unchanged "$G" "$before"
	rq "$G" '{"execute":"teardown","arguments":{"host_uuid":"h1","storages":["rb1"]}}' >/dev/null
}
rbd_records

# --- 6. the fence kills inside its victim rules only ----------------------------

fence_rules() {
	local M F S V1 V2 B1 B1c B2 B3 B4 B5 r j fired named hook want
	if [ ! -c /dev/fuse ] || ! command -v fusermount3 >/dev/null || [ ! -x "$FAULTFS" ]; then
		skip "6: needs /dev/fuse, fusermount3 and $FAULTFS"
		return
	fi
	export FAULTFS_LOG=$T/faultfs.out
	ff_mount M ffm || { not_ok "6: faultfs mounts"; return; }
	F=$M/f
	mkdir -p "$F"
	truncate -s 1M "$F/vm.img"
	VMN=qemu-sec-$$
	# A victim whose name is made to break a shell that would see it.
	VMX="qemu-sec-$$;touch $PWN;\$(touch $PWN)\`id\`|&"
	[ ${#VMX} -lt 64 ] || { not_ok "6: the odd name fits VICTIM_EXE_MAX"; return; }
	cp /bin/sleep "$T/vm/$VMN"
	cp /bin/sleep "$T/vm/$VMX"
	cat >"$T/bin/hook.sh" <<EOF
#!/bin/sh
printf 'argc=%s\\ncwd=%s\\nstorage=%s\\nhost=%s\\nstrategy=%s\\nvictims=%s\\n' "\$#" "\$(pwd)" \\
	"\$IOFENCE_STORAGE" "\$IOFENCE_HOST" "\$IOFENCE_STRATEGY" "\$IOFENCE_VICTIMS" >"$T/hook.tmp"
mv "$T/hook.tmp" "$T/hook.out"
EOF
	chmod 755 "$T/bin/hook.sh"
	daemon_on f f --no-bpf || { not_ok "6: daemon f starts"; return; }
	S=$SOCK_f
	rq "$S" '{"execute":"set-host-state","arguments":{"state":"connected"}}' >/dev/null
	r=$(rq "$S" "$(jq -nc --arg t "$F" --arg v "$VMN*" --arg h "$T/bin/hook.sh" \
		'{execute: "setup", arguments: {host_uuid: "H.2_x:y-z", storages: [{uuid: "S.1_a:b-c", type: "file",
		target: $t, interval_ms: 200, timeout_ms: 1000, kill_grace_ms: 500, strategy: "kill-only",
		victims: [$v], fence_hook: $h}]}}')")
	check "6: storage S.1_a:b-c of host H.2_x:y-z armed (every character a uuid may have)" \
		jqe '.return.storages[0].result == "armed"' <<<"$r" || return
	proc_spawn V1 'exec "$T/vm/$VMN" 1000 3<>"$F/vm.img"'
	proc_spawn V2 'exec "$T/vm/$VMX" 1000 3<>"$F/vm.img"'
	# A root shell (its child sleep holds the file too), a bystander
	# whose argv[0] and one whose comm pretend to be the VM, one with its
	# working directory there, and a "VM" with no file on the storage.
	proc_spawn B1 'exec bash -c "sleep 1000; :" 3<>"$F/vm.img"'
	proc_spawn B2 'exec -a "$VMN" sleep 1000 3<>"$F/vm.img"'
	proc_spawn B3 'exec bash -c "printf %s \"$VMN\" >/proc/\$\$/comm; sleep 1000; :" 3<>"$F/vm.img"'
	proc_spawn B4 'cd "$F" && exec sleep 1000'
	proc_spawn B5 'exec "$T/vm/$VMN" 1000'
	wait_until 5 eval '[ -n "$(cat /proc/$B1/task/$B1/children 2>/dev/null)" ]'
	B1c=$(xargs <"/proc/$B1/task/$B1/children")
	[ -n "$B1c" ] && on_exit "kill -KILL $B1c"
	check "6: heartbeats before" wait_until 5 wrote_more "$S" "S.1_a:b-c" 3
	check "6: B3's comm is the VM's name, its exe bash" \
		eval '[ "$(cat /proc/$B3/comm)" = "$VMN" ] && [ "$(basename "$(readlink /proc/$B3/exe)")" = bash ]'
	# The test runner itself holds a file of the storage. Every command
	# it runs inherits that fd and closes it at its exit: a FLUSH, which
	# must be served, so this one file stays alive; the record and the
	# VMs' image die (a working directory there would not do: bash
	# stats "." to look a command up).
	exec 7<>"$F/runner.img"
	on_exit "exec 7>&-"
	faultfs_set "$M" dead f/vm.img && faultfs_set "$M" dead "f/.iofence/H.2_x:y-z" ||
		{ not_ok "6: faultfs mode dead"; return; }
	local t0
	t0=$(now_ms)
	killed_within "6: the victims (named $VMN*)" "$t0" 5000 "$V1" "$V2"
	check "6: FENCE_FIRED journalled" wait_until 5 j_has "$S" FENCE_FIRED "S.1_a:b-c"
	sleep 1
	check "6: the root shell $B1 (bash) and its child $B1c (sleep) alive" all_alive "$B1"
	check "6: ... its child" eval 'pid_alive "$B1c" && ! pid_exiting "$B1c"'
	check "6: the bystander with argv[0] $VMN alive" all_alive "$B2"
	check "6: the bash with comm $VMN alive" all_alive "$B3"
	check "6: the bystander with its cwd on the storage alive" all_alive "$B4"
	check "6: a $VMN with no file on the storage alive" all_alive "$B5"
	check "6: the test runner ($$, bash, an fd on the storage) alive: this line runs" pid_alive $$
	j=$(journal_of "$S")
	named=$(j_victims "$j" "S.1_a:b-c" | xargs)
	want=$(printf '%s\n' "$V1" "$V2" | sort -n | xargs)
	check "6: the fence named exactly its victims ($named; want $want)" [ "$named" = "$want" ]
	fired=$(j_first "$j" FENCE_FIRED "S.1_a:b-c")
	check "6: ... the odd name verbatim in FENCE_FIRED" \
		jqe --arg x "$VMX" --argjson p "$V2" '[.data.victims[] | select(.pid == $p and .exe == $x)] | length == 1' <<<"$fired"
	if wait_until 7 test -s "$T/hook.out"; then
		ok "6: the fence hook ran"
	else
		not_ok "6: the fence hook ran"
		grep -iE 'hook' "$T/f.log" | sed 's/^/#   /'
	fi
	hook=$(cat "$T/hook.out" 2>/dev/null)
	check "6: ... with no argument, the uuids in its environment as they are" \
		[ "$(sed -n '/^argc=/p; /^storage=/p; /^host=/p; /^strategy=/p' <<<"$hook" | xargs)" = "argc=0 storage=S.1_a:b-c host=H.2_x:y-z strategy=kill-only" ]
	check "6: ... the victims too, the odd name verbatim" \
		eval 'grep -qF "$V1:$VMN:" <<<"$hook" && grep -qF "$V2:$VMX:" <<<"$hook"'
	check "6: ... and no shell ran them ($PWN nowhere)" \
		eval '[ ! -e "$T/$PWN" ] && [ ! -e "/proc/$PID_f/cwd/$PWN" ] && [ ! -e "$(sed -n "s/^cwd=//p" <<<"$hook")/$PWN" ]'
	hangs_release
	exec 7>&-
	stop_everything
	rc=$?
	check "6: released, stopped, nothing left mounted" eval '[ $rc -eq 0 ] && [ -z "$(leftovers "$M")" ]'
}
# Sections 1 to 5 are done: their daemons go.
daemon_stop g 15 >/dev/null
daemon_stop c 15 >/dev/null
fence_rules
