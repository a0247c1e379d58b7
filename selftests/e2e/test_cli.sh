#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# iofencectl as an operator meets it, through the real binary and a real
# daemon: help per command, --version, one-line usage errors that name
# what was meant, the daemon's errors in the command line's words (from
# the error data, never the protocol's names), teardown of what is not
# armed, and bash completion (without the bash-completion package).
cd "$(dirname "$0")/../.." || exit 1
. selftests/lib.sh
need_root

COMPLETION=scripts/bash-completion/iofencectl
CTL_MAN=userspace/iofencectl/iofencectl.8
PROTO_MAN=userspace/iofence-protocol.7
NOSOCK=$T/nobody-serves-this.sock
[ -x "$IOFENCECTL" ] || { not_ok "$IOFENCECTL is built"; exit 1; }

# run ARGS...: iofencectl; $rc, $out (stdout) and $err (stderr) after.
run() {
	timeout 20 "$IOFENCECTL" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	out=$(cat "$T/out")
	err=$(cat "$T/err")
}
lines() { [ -z "$1" ] && echo 0 || wc -l <<<"$1"; }

# The commands that --help lists, and the options that `help SUB` lists.
subs=$("$IOFENCECTL" --help | sed -n '/^Commands/,/^$/p' | grep -E '^  [a-z]' | awk '{ print $1 }')
sub_opts() { # sub: its --options, sorted, from its help
	"$IOFENCECTL" help "$1" | sed -n '/^Options:/,/^$/p' |
		grep -oE '^  (-., )? *--[a-z-]+' | grep -oE -- '--[a-z-]+' | sort -u
}
check "--help lists the commands, and help among them" \
	eval '[ "$(wc -w <<<"$subs")" -ge 10 ] && grep -qx help <<<"$subs"'

# --- 1. help per command --------------------------------------------------

for s in $subs; do
	run --socket "$NOSOCK" help "$s"
	h=$out
	check "help $s: exit 0, on stdout, nothing on stderr" \
		eval '[ $rc -eq 0 ] && [ -n "$h" ] && [ -z "$err" ]'
	[ "$s" = help ] && continue
	check "help $s: says its usage and what it does" \
		eval 'grep -q "^Usage: iofencectl \[OPTION\]\.\.\. $s" <<<"$h" && [ "$(lines "$h")" -ge 6 ]'
	run --socket "$NOSOCK" "$s" --help
	check "$s --help: the same, exit 0" eval '[ $rc -eq 0 ] && [ "$out" = "$h" ] && [ -z "$err" ]'
	run --socket "$NOSOCK" "$s" -h
	check "$s -h: the same, exit 0" eval '[ $rc -eq 0 ] && [ "$out" = "$h" ]'
	opts=$(sub_opts "$s")
	check "help $s: lists its options (--help at least): $(tr '\n' ' ' <<<"$opts")" grep -qx -- --help <<<"$opts"
	# Each option that help lists is one the command takes.
	for o in $opts; do
		[ "$o" = --help ] && continue
		run --socket "$NOSOCK" "$s" "$o" x
		check "$s $o: an option it knows" eval '! grep -q "unknown option" <<<"$err"'
		check "$s $o: documented in iofencectl(8)" grep -q -- "${o//-/\\\\-}" "$CTL_MAN"
	done
done
check "setup: its options" \
	[ "$(sub_opts setup | tr '\n' ' ')" = "--help --host --no-status-check --reconnect --storage --timeout " ]
check "peer: its options" [ "$(sub_opts peer | tr '\n' ' ')" = "--blocklist --force --help --host --slot --storage --unblocklist --window " ]
check "teardown: its options" [ "$(sub_opts teardown | tr '\n' ' ')" = "--help --host --storage " ]

# setup's help names every storage key of the daemon, by its short name
# or the protocol's, with units.
setup_help=$("$IOFENCECTL" help setup)
keys=$(sed -n '/storage_keys\[\] = {/,/};/p' userspace/control/storage_params.c | grep -o '"[a-z_]*"' | tr -d '"')
check "storage_params.c: the storage keys are read" [ "$(wc -w <<<"$keys")" -ge 10 ]
for k in $keys; do
	check "help setup: the storage key $k" grep -qE "(^  $k=|\(or $k=\))" <<<"$setup_help"
done
check "help setup: interval with its unit and bounds" grep -q '^  interval=DUR (or interval_ms=)' <<<"$setup_help"
check "help setup: type's values" grep -q '^  type=file|block' <<<"$setup_help"
check "help setup: what DUR is" grep -q '^DUR is 500ms, 2s' <<<"$setup_help"

run --socket "$NOSOCK" help
h=$out
run --socket "$NOSOCK" --help
check "help = --help, exit 0" eval '[ $rc -eq 0 ] && [ "$out" = "$h" ]'
check "--help: global options and where to read more" \
	eval 'grep -q -- "--socket PATH" <<<"$out" && grep -q -- "-V, --version" <<<"$out" &&
		grep -q "iofencectl help COMMAND" <<<"$out"'
run --socket "$NOSOCK" help nosuch
check "help nosuch: one line on stderr, exit 2 ($err)" \
	eval '[ $rc -eq 2 ] && [ "$(lines "$err")" -eq 1 ] && [ -z "$out" ]'
run --socket "$NOSOCK" help stup
check "help stup: suggests setup ($err)" grep -q "did you mean setup?" <<<"$err"
run --socket "$NOSOCK" help query-status
check "help query-status: the protocol's name works too" eval '[ $rc -eq 0 ] && grep -q "status" <<<"$out"'

# --- 2. --version ------------------------------------------------------------

want=$(awk '/define IOFENCE_VERSION_(MAJOR|MINOR|MICRO)/ { v = v (v == "" ? "" : ".") $3 } END { print v }' \
	userspace/lib/proto.h)
for v in --version -V; do
	run --socket "$NOSOCK" "$v"
	check "$v: iofencectl $want, exit 0 without connecting" \
		eval '[ $rc -eq 0 ] && [ "$(head -1 <<<"$out")" = "iofencectl $want" ] && [ -z "$err" ]'
	check "$v: says how to get the daemon's" grep -q "iofencectl version" <<<"$out"
done
check "the daemon's --version is the same version" \
	[ "$("$IOFENCED" --version | awk '{ print $2 }')" = "$want" ]

# --- 3. usage errors: one line, exit 2 ---------------------------------------

# usage_err LABEL WANT-RE ARGS...: exit 2, nothing on stdout, one line on
# stderr matching WANT-RE, never the usage.
# peer's answers are 0 to 2 (alive, dead, unknown): its failures exit 3.
failure_rc() { # usual-status subcommand
	if [ "$2" = peer ]; then echo 3; else echo "$1"; fi
}

usage_err() {
	local label=$1 re=$2 want
	shift 2
	want=$(failure_rc 2 "$1")
	run --socket "$NOSOCK" "$@"
	check "$label: exit $want, one stderr line ($err)" \
		eval '[ $rc -eq $want ] && [ -z "$out" ] && [ "$(lines "$err")" -eq 1 ] && ! grep -q "^Usage" <<<"$err"'
	check "$label: says $re" grep -qE -- "$re" <<<"$err"
}
usage_err "setup --reconect" "^iofencectl: setup: unknown option '--reconect' \(did you mean --reconnect\?\); see 'iofencectl help setup'$" \
	setup --reconect --host h --storage uuid=a,type=file,target=/
usage_err "teardown --hots" "did you mean --host\?" teardown --hots h
usage_err "peer --windw" "did you mean --window\?" peer --windw 1s
usage_err "peer --s: ambiguous" "option '--s' is ambiguous \(--storage, --slot\)" peer --s x
usage_err "setup --zzzzzzzz: nothing close" "unknown option '--zzzzzzzz'; see" setup --zzzzzzzz
usage_err "setup --reconnect=yes" "--reconnect takes no value" setup --reconnect=yes
usage_err "setup --host without a value" "--host needs a value" setup --host
usage_err "setup -x" "unknown option '-x'" setup -x
usage_err "--jsn status" "^iofencectl: unknown option '--jsn' \(did you mean --json\?\); see 'iofencectl --help'$" --jsn status
usage_err "--socket without a value" "--socket needs a value" --socket
usage_err "-q status" "unknown option '-q'" -q status
usage_err "stauts" "^iofencectl: unknown command 'stauts' \(did you mean status\?\); see 'iofencectl --help'$" stauts
usage_err "teardwon" "did you mean teardown\?" teardwon --host h
usage_err "no command" "no command given" --json
usage_err "status extra" "status: takes no arguments; see 'iofencectl help status'" status extra
usage_err "status --bogus" "status: unknown option '--bogus'" status --bogus
usage_err "storage without its uuid" "storage: takes one argument" storage
usage_err "setup without --storage" "needs --host and at least one --storage" setup --host h
usage_err "a --storage SPEC not KEY=VALUE" "'x' is not KEY=VALUE" setup --host h --storage x
usage_err "--timeout 0" "must be a positive duration" --timeout 0 status
usage_err "setup --timeout 2parsecs" "--timeout 2parsecs: not a duration" setup --host h --timeout 2parsecs --storage uuid=a,type=file,target=/

# --- 4. the daemon's errors in the command line's words -------------------------

start_daemon a --no-bpf || { not_ok "daemon a starts"; exit 1; }
S=$SOCK_a
mkdir -p "$T/m1" "$T/m2"
F1="uuid=ps1,type=file,target=$T/m1,victims=iofence-test-nobody"
F2="uuid=ps2,type=file,target=$T/m2,victims=iofence-test-nobody"

# daemon_err LABEL CLASS WANT... -- ARGS...: exit 1, one stderr line
# "iofencectl: CLASS: ..." with each WANT (a fixed string) in it, and none
# of the protocol's names.
daemon_err() {
	local label=$1 class=$2 w wants=() want
	shift 2
	while [ "$1" != -- ]; do wants+=("$1"); shift; done
	shift
	want=$(failure_rc 1 "$1")
	run --socket "$S" "$@"
	check "$label: exit $want, one stderr line" eval '[ $rc -eq $want ] && [ "$(lines "$err")" -eq 1 ]'
	check "$label: class $class ($err)" grep -q "^iofencectl: $class: " <<<"$err"
	for w in "${wants[@]}"; do
		check "$label: says '$w'" grep -qF -- "$w" <<<"$err"
	done
	check "$label: in the command line's words (no _ms, no_status_check, storages[)" \
		eval '! grep -qE "_ms|no_status_check|storages\[|host_uuid|max_attempts" <<<"$err"'
}

daemon_err "setup while connecting" HostNotConnected "host state is connecting" "--no-status-check" \
	"set-host-state connected" -- setup --host h1 --storage "$F1"
check "... armed nothing" eval '[ "$(ctl_sock "$S" --json status | jqr ".storages | length")" = 0 ]'
daemon_err "interval below its minimum" InvalidArgument "--storage #1 (uuid ps1): interval=50ms: must be between 100ms and 10m" -- \
	setup --no-status-check --host h1 --storage "$F1,interval=50ms"
daemon_err "interval_ms, the protocol's name, said as interval=" InvalidArgument "interval=20m: must be between 100ms and 10m" -- \
	setup --no-status-check --host h1 --storage "$F1,interval_ms=20m"
daemon_err "timeout below the interval" InvalidArgument \
	"--storage #1 (uuid ps1): timeout=1s is below interval=2s" "the fence would come before the next heartbeat is due" \
	"timeout= must be at least interval=" -- \
	setup --no-status-check --host h1 --storage "$F1,interval=2s,timeout=1s"
daemon_err "timeout below the default interval" InvalidArgument "timeout=500ms is below interval=2s" -- \
	setup --no-status-check --host h1 --storage "$F1,timeout=500ms"
daemon_err "io_timeout above the interval" InvalidArgument "io_timeout=3s is above interval=2s" \
	"io_timeout= must be at most interval=" -- \
	setup --no-status-check --host h1 --storage "$F1,interval=2s,io_timeout=3s"
daemon_err "interval x attempts above the timeout's maximum" InvalidArgument \
	"timeout= defaults to interval=10m x attempts=100 = 16h40m, above its maximum of 1h" -- \
	setup --no-status-check --host h1 --storage "$F1,interval=10m,attempts=100"
daemon_err "attempts out of range" InvalidArgument "attempts=0: must be between 1 and 100" -- \
	setup --no-status-check --host h1 --storage "$F1,attempts=0"
daemon_err "the second storage is wrong" InvalidArgument "--storage #2 (uuid ps2): target=relative: must be an absolute path" -- \
	setup --no-status-check --host h1 --storage "$F1" --storage "uuid=ps2,type=file,target=relative"
daemon_err "the second storage fails to open" ArmingFailed "--storage #2 (uuid ps2): open target $T/missing" -- \
	setup --no-status-check --host h1 --storage "$F1" --storage "uuid=ps2,type=file,target=$T/missing"
daemon_err "the same storage twice" InvalidArgument "--storage #2 (uuid ps1): the same storage as --storage #1 (uuid ps1)" -- \
	setup --no-status-check --host h1 --storage "$F1" --storage "$F1"
daemon_err "a mistyped key" InvalidArgument "--storage #1 (uuid ps1): unknown key 'intervall' (did you mean interval=?)" -- \
	setup --no-status-check --host h1 --storage "$F1,intervall=3s"
daemon_err "a key only for block storages" InvalidArgument "--storage #1 (uuid ps1): slot=3: only for block storages" -- \
	setup --no-status-check --host h1 --storage "$F1,slot=3"
daemon_err "a missing key" InvalidArgument "--storage #1: uuid= is missing" -- \
	setup --no-status-check --host h1 --storage "type=file,target=$T/m1"
daemon_err "setup's own --timeout" InvalidArgument "--timeout 50ms: must be between 100ms and 10m" -- \
	setup --no-status-check --host h1 --timeout 50ms --storage "$F1"
daemon_err "a bad host uuid" InvalidArgument "--host h/1: must be" -- \
	setup --no-status-check --host h/1 --storage "$F1"
daemon_err "set-host-state bogus" InvalidArgument "set-host-state bogus: must be" -- set-host-state bogus
daemon_err "unfence of what is not armed" NotFound "unfence zz: no storage zz is armed" -- unfence zz
daemon_err "peer on a storage not armed here" NotFound "--storage zz: no storage zz is armed here" -- \
	peer --storage zz --host h9 --window 1s
check "nothing was armed by the refused setups" \
	eval '[ "$(ctl_sock "$S" --json status | jqr ".storages | length")" = 0 ]'

# The error data, and --json: the error reply on stdout as it came.
req='{"execute":"setup","arguments":{"host_uuid":"h1","no_status_check":true,"storages":[{"uuid":"ps1","type":"file","target":"'$T/m1'","interval_ms":2000,"timeout_ms":1000}]}}'
r=$(ctl_sock "$S" raw "$req")
check "error data: member, rule, bounds and the member that bounds it: $(jq -c .error.data <<<"$r")" \
	jqe '.error.data == {member: "storages[0].timeout_ms", rule: "range", reason: "must be between 2000 and 3600000",
		min: 2000, max: 3600000, min_member: "storages[0].interval_ms"}' <<<"$r"
check "error data: the desc is the member, then its reason" \
	jqe '.error.desc == (.error.data.member + ": " + .error.data.reason)' <<<"$r"
run --socket "$S" --json setup --no-status-check --host h1 --storage "uuid=ps1,type=file,target=$T/m1,interval=2s,timeout=1s"
check "--json: exit 1, the error reply on stdout unchanged" \
	eval '[ $rc -eq 1 ] && [ "$(jq -c .error <<<"$out")" = "$(jq -c .error <<<"$r")" ]'
check "--json: and the line in the command line's words on stderr" grep -qF "timeout=1s is below interval=2s" <<<"$err"
r=$(ctl_sock "$S" raw '{"execute":"setup","arguments":{"host_uuid":"h1","storages":[{"uuid":"ps1","type":"file","target":"/"}]}}')
check "error data: HostNotConnected: rule host_state, the state: $(jq -c .error.data <<<"$r")" \
	jqe '.error.data.rule == "host_state" and .error.data.state == "connecting" and (.error.data | has("member") | not)' <<<"$r"
r=$(ctl_sock "$S" raw '{"execute":"setup","arguments":{"host_uuid":"h1","no_status_check":true,"storages":[{"uuid":"ps1","type":"file","target":"'$T/missing'"}]}}')
check "error data: a step that failed names its storage: $(jq -c .error.data <<<"$r")" \
	jqe '.error.data.member == "storages[0]" and .error.data.rule == "failed" and (.error.data.reason | startswith("open target"))' <<<"$r"

# --- 5. teardown of what is not armed ---------------------------------------------

ctl_sock "$S" set-host-state connected >/dev/null
run --socket "$S" setup --host h1 --storage "$F1" --storage "$F2"
check "setup arms ps1 and ps2" eval '[ $rc -eq 0 ] && grep -qx "ps1: armed" <<<"$out" && grep -qx "ps2: armed" <<<"$out"'
armed() { ctl_sock "$S" --json status | jq -c '[.storages[] | {uuid, host_uuid}] | sort_by(.uuid)'; }
before=$(armed)
run --socket "$S" teardown --host h1 --storage ps9
check "teardown of a storage not armed: exit 3 ($rc)" [ $rc -eq 3 ]
check "... says ps9: not armed" grep -qx "ps9: not armed" <<<"$out"
check "... and on stderr, one line ($err)" \
	eval '[ "$(lines "$err")" -eq 1 ] && grep -q "not armed: ps9" <<<"$err"'
check "... what is armed is unchanged" [ "$(armed)" = "$before" ]
run --socket "$S" teardown --host h2
check "teardown of a host with nothing armed: exit 3, says so ($out)" \
	eval '[ $rc -eq 3 ] && grep -qx "host h2: nothing armed" <<<"$out" && grep -q "host h2 has nothing armed" <<<"$err"'
check "... what is armed is unchanged" [ "$(armed)" = "$before" ]
run --socket "$S" --json teardown --host h1 --storage ps8
check "--json teardown of a storage not armed: exit 3, the reply as it came" \
	eval '[ $rc -eq 3 ] && jqe ".storages == [{uuid: \"ps8\", result: \"absent\"}]" <<<"$out"'
r=$(ctl_sock "$S" raw '{"execute":"teardown","arguments":{"host_uuid":"h1","storages":["ps7"]}}')
check "the protocol keeps it a success for agents (result absent)" \
	jqe '.return.storages == [{uuid: "ps7", result: "absent"}]' <<<"$r"
run --socket "$S" teardown --host h1 --storage ps9 --storage ps2
check "teardown of one armed and one not: exit 3" [ $rc -eq 3 ]
check "... ps2: disarmed, ps9: not armed" \
	eval 'grep -qx "ps2: disarmed" <<<"$out" && grep -qx "ps9: not armed" <<<"$out"'
check "... ps2 is gone, ps1 stays" [ "$(armed)" = '[{"uuid":"ps1","host_uuid":"h1"}]' ]

# --- 6. bash completion ----------------------------------------------------------

# complete LINE [bash-options]: what completing at the end of LINE offers,
# one per line, from a fresh bash that sourced the script (with the
# default COMP_WORDBREAKS, which split words at = and :).
cat >"$T/complete.sh" <<'EOF'
# complete.sh SCRIPT LINE: sources SCRIPT, completes at the end of LINE.
. "$1" || exit 9
COMP_LINE=$2 COMP_POINT=${#2}
COMP_WORDBREAKS=$' \t\n"\'><=;|&(:'
# COMP_WORDS as bash splits them: at blanks, and around = and :.
read -ra COMP_WORDS <<<"$(sed 's/\([=:]\)/ \1 /g' <<<"$COMP_LINE")"
COMP_CWORD=${#COMP_WORDS[@]}
[[ $COMP_LINE == *[[:space:]=:] ]] || COMP_CWORD=$((COMP_CWORD - 1))
_iofencectl
[ ${#COMPREPLY[@]} -eq 0 ] || printf '%s\n' "${COMPREPLY[@]}"
EOF
complete_line() { # LINE [PATH]
	if [ -n "${2:-}" ]; then
		PATH=$2 "$BASH" --norc --noprofile "$T/complete.sh" "$COMPLETION" "$1"
	else
		"$BASH" --norc --noprofile "$T/complete.sh" "$COMPLETION" "$1"
	fi
}
C=$IOFENCECTL
check "the completion script is valid bash and registers _iofencectl" \
	bash --norc -c ". $COMPLETION && complete -p iofencectl | grep -q _iofencectl"
check "no bash-completion helpers needed (none here, or unused)" \
	eval '! grep -qE "_init_completion|_get_comp_words_by_ref|__ltrim_colon" "$COMPLETION"'
got=$(complete_line "$C " | sort | tr '\n' ' ')
want=$(sort <<<"$subs" | tr '\n' ' ')
check "completion: the commands, as --help lists them ($got)" [ "$got" = "$want" ]
check "completion: st -> status storage" [ "$(complete_line "$C st" | tr '\n' ' ')" = "status storage " ]
check "completion: global options" \
	eval '[ "$(complete_line "$C --j")" = --json ] && complete_line "$C -" | grep -qx -- --version'
for s in $subs; do
	[ "$s" = help ] && continue
	got=$(complete_line "$C $s --" | sort | tr '\n' ' ')
	want=$(sub_opts "$s" | tr '\n' ' ')
	check "completion: $s's options, as its help lists them ($got)" [ "$got" = "$want" ]
done
check "completion: --socket PATH is skipped to find the command" \
	[ "$(complete_line "$C --socket $S setup --re")" = --reconnect ]
got=$(complete_line "$C setup --storage " | sort | tr '\n' ' ')
want=$(grep -oE '^  [a-z_]+=' <<<"$setup_help" | tr -d ' ' | sort | tr '\n' ' ')
check "completion: the --storage keys, as help setup lists them ($got)" [ "$got" = "$want" ]
check "completion: the key after a comma (readline's word starts after the =)" \
	[ "$(complete_line "$C setup --storage uuid=a,ty")" = "a,type=" ]
check "completion: type= -> file block" [ "$(complete_line "$C setup --storage uuid=a,type=" | tr '\n' ' ')" = "file block " ]
check "completion: strategy=k -> kill-only" [ "$(complete_line "$C setup --storage uuid=a,strategy=k")" = kill-only ]
check "completion: interval= offers durations" complete_line "$C setup --storage uuid=a,interval=" | grep -qx 2s
check "completion: set-host-state" \
	[ "$(complete_line "$C set-host-state con" | tr '\n' ' ')" = "connecting connected " ]
check "completion: help te -> teardown" [ "$(complete_line "$C help te")" = teardown ]
# From the live daemon: ps1 of h1 is armed.
check "completion: teardown --storage: the armed storages" [ "$(complete_line "$C --socket $S teardown --storage ")" = ps1 ]
check "completion: unfence: the armed storages" [ "$(complete_line "$C --socket=$S unfence p")" = ps1 ]
check "completion: storage: the armed storages" [ "$(complete_line "$C -s $S storage ")" = ps1 ]
check "completion: peer --storage: the armed storages" [ "$(complete_line "$C -s $S peer --storage ")" = ps1 ]
check "completion: --host: the hosts with storages armed" [ "$(complete_line "$C -s $S teardown --host ")" = h1 ]
# Without jq: a PATH of the few tools it may use.
mkdir -p "$T/bin"
for t in timeout sed sort; do ln -sf "$(command -v "$t")" "$T/bin/$t"; done
check "completion without jq: the armed storages all the same" \
	[ "$(complete_line "$C -s $S unfence " "$T/bin")" = ps1 ]
t0=$(mono_ms)
got=$(complete_line "$C -s $NOSOCK unfence ")
check "completion: no daemon on the socket: nothing, quietly, soon ($(($(mono_ms) - t0)) ms)" \
	eval '[ -z "$got" ] && [ $(($(mono_ms) - t0)) -lt 5000 ]'

# --- 7. the documentation --------------------------------------------------------

rules=$(sed -n '/rule_names\[ARGS_RULE_COUNT\] = {/,/^};/p' userspace/control/args.c | grep -o '= "[a-z_]*"' | tr -d '= "')
check "args.c: the error data's rules are read ($(wc -w <<<"$rules"))" [ "$(wc -w <<<"$rules")" -ge 8 ]
errors_part=$(sed -e 's/\\-/-/g' "$PROTO_MAN" | sed -n '/^\.SS Errors/,/^\.SS Events/p')
for r in $rules; do
	check "iofence-protocol(7) Errors: the rule $r" grep -qx "\.B $r" <<<"$errors_part"
done
for m in member rule reason min max min_member max_member same_as factors value type state; do
	check "iofence-protocol(7) Errors: the data member $m" grep -qE "^\.B[R]? $m( |$)" <<<"$errors_part"
done
status_part=$(sed -n '/^\.SH EXIT STATUS/,/^\.SH /p' "$CTL_MAN")
for code in 0 1 2 3; do
	check "iofencectl(8) EXIT STATUS: $code" grep -qx "\.B $code" <<<"$status_part"
done
check "iofencectl(8): --version" grep -q 'BR \\-V ", " \\-\\-version' "$CTL_MAN"
check "iofencectl(8): the bash completion" grep -q 'bash\\-completion/completions/iofencectl' "$CTL_MAN"
