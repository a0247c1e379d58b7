#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The manual cannot drift from the code: the names of commands, their
# arguments, error classes, events and setup storage keys are read from
# the sources, and each must have its entry in iofence-protocol.7; each
# command and option of `iofencectl --help` (and of each command's own
# help, where it has one) must be in iofencectl.8, each option of
# `iofenced --help` under OPTIONS in iofenced.8, each setting the config
# loader takes (`iofenced --check-config` prints them) in iofenced.conf.5
# and in the example config, which must load; each map, field and link of
# the BPF side in iofence-bpf.7; the worked example of the timeline must
# be what a daemon reports for its parameters; and every page renders
# without warnings. A name added to the code fails here until it is
# documented.
cd "$(dirname "$0")/../.." || exit 1
. selftests/lib.sh

# The sources: userspace/lib, core, control and iofencectl.
SRC=userspace
PROTO_MAN=${PROTO_MAN:-$SRC/iofence-protocol.7}
CTL_MAN=${CTL_MAN:-$SRC/iofencectl/iofencectl.8}
DAEMON_MAN=${DAEMON_MAN:-$SRC/control/iofenced.8}
CONF_MAN=${CONF_MAN:-$SRC/control/iofenced.conf.5}
CONF_EXAMPLE=${CONF_EXAMPLE:-$SRC/control/iofenced.conf}
BPF_MAN=${BPF_MAN:-bpf/iofence-bpf.7}
BPF_H=bpf/iofence.h
# src FILE: where FILE (a name, such as commands.c) is in the tree.
src() { ls "$SRC"/*/"$1"; }

# part FILE LEVEL NAME: the body of ".SH NAME" (LEVEL SH) or ".SS NAME"
# (LEVEL SS, which the next .SS or .SH ends), with roff's \- as -.
part() {
	sed -e 's/\\-/-/g' -e 's/\\%//g' "$1" | awk -v level="$2" -v want="$3" '
		/^\.S[HS] / {
			if ($1 == "." level || $1 == ".SH") {
				name = substr($0, 5)
				gsub(/"/, "", name)
				on = ($1 == "." level && name == want)
				next
			}
		}
		on'
}

# has_entry NAME: stdin has NAME as a tag, ".B NAME", ".BR NAME ..." or
# ".BI NAME ...", not merely a mention in passing.
has_entry() {
	grep -Eq "^\.B[IR]? \"?$1([ \"]|$)"
}

# The tags of a section's .TP entries that are one bold word.
tags() {
	awk 'tp && /^\.B [A-Za-z_-]+$/ { print $2 } { tp = /^\.TP/ }'
}

# entry TAG: the text of the .TP entries tagged ".B TAG" on stdin.
entry() {
	awk -v tag=".B $1" '/^\.(TP|PP|SS|SH)/ { on = 0 } on; tp && $0 == tag { on = 1 } { tp = /^\.TP/ }'
}

# The value of a #define, in bytes or whatever unit it counts.
define_value() { # file macro
	local v
	v=$(sed -n "s/^#define $2[[:space:]]\{1,\}\([^/]*\).*/\1/p" "$(src "$1")")
	[ -n "$v" ] && echo $((v))
}

# mentions VALUE: stdin has VALUE as a number of its own, or in MiB.
mentions() {
	local re="$1"
	[ $(($1 % 1048576)) -eq 0 ] && re="($1|$(($1 / 1048576)) MiB)"
	grep -Eq "(^|[^0-9])$re([^0-9]|\$)"
}

# The headings of a section.
headings() { # file section
	part "$1" SH "$2" | sed -n 's/^\.SS "\{0,1\}\([^"]*\)"\{0,1\}$/\1/p'
}

# The events: the upper-case literals of every function that calls one of
# daemon_event*() or, in the fencing core, report() (a fencer's) or hands
# a message to ops->core_event, and of the string tables it indexes,
# since the name is often picked from one (setup.c) before the call.
event_names() {
	local f
	for f in "$SRC"/*/*.c; do
		awk '
		function literals(text,    out) {
			while (match(text, /"[A-Z][A-Z_]*"/)) {
				out = out " " substr(text, RSTART + 1, RLENGTH - 2)
				text = substr(text, RSTART + RLENGTH)
			}
			return out
		}
		!infn && match($0, /^static const char \*const [a-z_]+\[/) {
			tname = substr($0, 26, RLENGTH - 26)
			table = ""
			intable = 1
		}
		intable {
			table = table $0
			if ($0 ~ /^};/) {
				tables[tname] = literals(table)
				intable = 0
			}
		}
		/^{/ { infn = 1; body = "" }
		infn { body = body "\n" $0 }
		infn && /^}/ {
			infn = 0
			if (body !~ /(daemon|fencer)_event[a-z_]*\(|[^a-z_]report\(|ops->core_event/)
				next
			printf "%s", literals(body)
			for (t in tables)
				if (body ~ "[^A-Za-z0-9_]" t "\\[")
					printf "%s", tables[t]
		}' "$f"
	done | tr ' ' '\n' | sed '/^$/d' | sort -u
}

# "command key..." for each command: the argument names its entry in the
# command table points at (a NAME[] table, in any source file), which is
# what the dispatcher lets through.
command_args() {
	local all name table
	all=$(cat "$SRC"/*/*.c | tr -s '[:space:]' ' ')
	sed -n '/^const struct command commands\[\] = {/,/^};/p' "$(src commands.c)" |
		tr -s '[:space:]' ' ' | grep -o '{ "[a-z-]*"[^}]*}' |
		sed -n 's/^{ "\([a-z-]*\)".*, *\([a-z_]*\) *}$/\1 \2/p' |
		while read -r name table; do
			echo "$name" $(grep -o "const char \*const $table\[\] = {[^}]*}" <<<"$all" |
				head -1 | sed 's/.*{//; s/}//; s/NULL//; s/[",]/ /g')
		done
}

commands=$(sed -n '/^const struct command commands\[\] = {/,/^};/p' "$(src commands.c)" |
	grep -o '^[[:space:]]*{ "[a-z-]*"' | grep -o '[a-z-]*')
classes=$(sed -n '/class_names\[[A-Z_]*\] = {/,/^};/p' "$(src proto.c)" |
	grep -o '= "[A-Za-z]*"' | tr -d '= "')
events=$(event_names)
keys=$(sed -n '/storage_keys\[\] = {/,/};/p' "$(src storage_params.c)" |
	grep -o '"[a-z_]*"' | tr -d '"')

# An extraction that finds nothing means the sources changed shape: this
# test must then be taught the new one, not pass on empty lists.
check "commands.c: the command table is read" [ "$(wc -w <<<"$commands")" -ge 5 ]
check "proto.c: the error classes are read" [ "$(wc -w <<<"$classes")" -ge 5 ]
check "*.c: the events are read" [ "$(wc -w <<<"$events")" -ge 3 ]
# Those of the fencing core too, which reach the journal by message.
for e in HEARTBEAT_LATE FENCE_FIRED FENCE_COMPLETED CORE_LAG; do
	check "*.c: the core's event $e is read" grep -qx "$e" <<<"$events"
done
check "storage_params.c: the storage keys are read" [ "$(wc -w <<<"$keys")" -ge 5 ]
check "commands.c: the argument tables are read" \
	[ "$(command_args | grep -c '^setup host_uuid reconnect')" -eq 1 ]

have_groff=
if command -v groff >/dev/null && command -v col >/dev/null; then
	have_groff=1
	for m in "$PROTO_MAN" "$CTL_MAN" "$DAEMON_MAN" "$CONF_MAN" "$BPF_MAN"; do
		out=$(LC_ALL=C.UTF-8 groff -t -man -ww -Tutf8 -z "$m" 2>&1)
		check "$(basename "$m") renders without warnings${out:+: $out}" [ -z "$out" ]
	done
else
	skip "groff or col not installed (scripts/deps.sh installs them): pages not rendered"
fi

documented=$(headings "$PROTO_MAN" COMMANDS)
for c in $commands; do
	check "command $c has its heading under COMMANDS" grep -qx -- "$c" <<<"$documented"
done
for c in $documented; do
	check "documented command $c is in commands.c" grep -qx -- "$c" <<<"$commands"
done

while read -r c args; do
	for a in $args; do
		check "argument $a of $c is documented" \
			has_entry "$a" < <(part "$PROTO_MAN" SS "$c")
	done
done < <(command_args)

for k in $keys; do
	check "setup storage key $k is documented" \
		has_entry "$k" < <(part "$PROTO_MAN" SS setup)
done

for e in $classes; do
	check "error class $e is documented" \
		has_entry "$e" < <(part "$PROTO_MAN" SH "ERROR CLASSES")
done
for e in $(part "$PROTO_MAN" SH "ERROR CLASSES" | tags); do
	check "documented error class $e is in proto.c" grep -qx -- "$e" <<<"$classes"
done

for e in $events; do
	check "event $e is documented" \
		has_entry "$e" < <(part "$PROTO_MAN" SH EVENTS)
done

# Figures the reference states, where it states them: "file macro
# section-or-command tag". A changed figure fails until the page follows.
while read -r file macro where tag; do
	v=$(define_value "$file" "$macro")
	if [ -z "$v" ]; then
		not_ok "$file: $macro is read"
		continue
	fi
	if [ "$where" = LIMITS ]; then
		text=$(part "$PROTO_MAN" SH LIMITS | entry "${tag//_/ }")
	else
		text=$(part "$PROTO_MAN" SS "$where" | entry "$tag")
	fi
	check "$macro ($v) is stated for $where $tag" mentions "$v" <<<"$text"
done <<'EOF'
proto.h PROTO_MAX_LINE LIMITS Request_line
ctl_server.h CTL_MAX_OUTPUT LIMITS Unsent_output
config.h IOFENCE_DEFAULT_MAX_CONNECTIONS LIMITS Connections
ctl_server.h CTL_MAX_SUBSCRIBERS LIMITS Subscribers
setup.c STORAGES_PER_HOST_MAX LIMITS Storages
storage.h STORAGE_MAX LIMITS Storages
storage.h STORAGE_UUID_MAX LIMITS Names
storage.h STORAGE_VICTIMS_MAX LIMITS Victims
journal.h JOURNAL_MAX LIMITS Journal
deadlines.h SETUP_DEFAULT_DEADLINE_MS setup timeout_ms
deadlines.h SETUP_MIN_DEADLINE_MS setup timeout_ms
deadlines.h SETUP_MAX_DEADLINE_MS setup timeout_ms
timeline.h TL_INTERVAL_MIN_MS setup interval_ms
timeline.h TL_INTERVAL_MAX_MS setup interval_ms
timeline.h TL_INTERVAL_DEFAULT_MS setup interval_ms
timeline.h TL_IO_TIMEOUT_MIN_MS setup io_timeout_ms
timeline.h TL_ATTEMPTS_MIN setup max_attempts
timeline.h TL_ATTEMPTS_MAX setup max_attempts
timeline.h TL_ATTEMPTS_DEFAULT setup max_attempts
timeline.h TL_TIMEOUT_MAX_MS setup timeout_ms
timeline.h TL_KILL_GRACE_MAX_MS setup kill_grace_ms
timeline.h TL_KILL_GRACE_DEFAULT_MS setup kill_grace_ms
storage.h BLOCK_SLOT_MAX setup slot
EOF

if help=$("$IOFENCECTL" --help 2>/dev/null); then
	subs=$(sed -n '/^Commands/,/^$/p' <<<"$help" | grep -E '^  [a-z]' | awk '{ print $1 }')
	check "iofencectl --help lists commands" [ -n "$subs" ]
	for s in $subs; do
		check "iofencectl $s is documented" \
			has_entry "$s" < <(part "$CTL_MAN" SH COMMANDS)
	done
else
	skip "$IOFENCECTL --help failed: build it first (make)"
fi

# --- options, settings and the BPF side, from the programs themselves ---

# render FILE: the page as a reader sees it, in plain ASCII (roff's \- and
# - both come out as -), without overstrike, on lines too wide to break
# an option's entry.
render() {
	LC_ALL=C groff -t -man -Tascii -P-cbou -rLL=200n "$1" 2>/dev/null | col -bx
}
# rsection NAME: the body of the rendered section NAME on stdin.
rsection() { awk -v want="$1" '/^[A-Z]/ { on = ($0 == want); next } on'; }
# help_options: every -x and --long-name that a help text on stdin shows
# as an option (after a space, a comma or a bracket).
help_options() {
	grep -oE '(^|[ ,[])--?[A-Za-z][A-Za-z0-9-]*' | sed 's/^[ ,[]//' | sort -u
}
# has_option OPT: stdin has OPT as a word of its own.
has_option() { grep -qE -- "(^|[^A-Za-z0-9-])$1([^A-Za-z0-9-]|\$)"; }
# flat: stdin on one line, with single spaces.
flat() { tr -s '[:space:]' ' '; }
not() { ! "$@"; }
quiet() { "$@" >/dev/null 2>&1; }

if [ -n "$have_groff" ] && help=$("$IOFENCED" --help 2>/dev/null); then
	opts=$(help_options <<<"$help")
	check "iofenced --help lists options" [ "$(wc -w <<<"$opts")" -ge 10 ]
	man_opts=$(render "$DAEMON_MAN" | rsection OPTIONS)
	for o in $opts; do
		check "iofenced option $o is under OPTIONS in iofenced.8" has_option "$o" <<<"$man_opts"
	done
	# Entries of options that no longer exist fail as well.
	for o in $(grep -E '^ {7}-' <<<"$man_opts" | help_options); do
		check "documented iofenced option $o is in --help" has_option "$o" <<<"$help"
	done
else
	skip "$IOFENCED --help failed or no groff: iofenced.8 not checked"
fi

if [ -n "$have_groff" ] && help=$("$IOFENCECTL" --help 2>/dev/null); then
	page=$(render "$CTL_MAN")
	for o in $(help_options <<<"$help"); do
		check "iofencectl option $o is in iofencectl.8" has_option "$o" <<<"$page"
	done
	# Each command's own help, in whichever form exits 0.
	subs=$(sed -n '/^Commands/,/^$/p' <<<"$help" | grep -E '^  [a-z]' | awk '{ print $1 }')
	helped=0
	for s in $subs; do
		if sub=$("$IOFENCECTL" help "$s" 2>/dev/null) ||
			sub=$("$IOFENCECTL" "$s" --help 2>/dev/null); then
			helped=$((helped + 1))
			for o in $(help_options <<<"$sub"); do
				check "iofencectl $s option $o is in iofencectl.8" has_option "$o" <<<"$page"
			done
		fi
	done
	[ "$helped" -gt 0 ] ||
		skip "no command of iofencectl has help of its own (help SUB, SUB --help): its options are checked from --help alone"
else
	skip "$IOFENCECTL --help failed or no groff: iofencectl.8 options not checked"
fi

# The settings, as the loader's own --check-config prints them: each is a
# line "key = value", the default watchdog commented out.
defaults=$("$IOFENCED" --check-config --config /dev/null 2>&1)
check "iofenced --check-config runs with an empty file" \
	grep -q '^\[daemon\]$' <<<"$defaults"
keys=$(sed -n 's/^#\{0,1\}\([a-z_]*\) =.*/\1/p' <<<"$defaults")
check "iofenced --check-config prints the settings" [ "$(wc -w <<<"$keys")" -ge 10 ]
# default KEY: its value in the defaults, "" for none.
default() { sed -n "s/^#\{0,1\}$1 = \{0,1\}//p" <<<"$defaults"; }
# An ASan build runs no real-time thread unless told to (config.h): it
# must say so, and the documents give the other builds' default, 10.
if sanitizer_build "$IOFENCED"; then
	check "ASan build: rt_priority's default is 0" [ "$(default rt_priority)" = 0 ]
	check "ASan build: --help says its --rt-priority default is 0, and why" \
		grep -q "This is an ASan build: --rt-priority defaults to 0, not 10, because" \
		<<<"$("$IOFENCED" --help 2>/dev/null)"
	defaults=$(sed 's/^\(#\{0,1\}rt_priority = \)0$/\110/' <<<"$defaults")
fi

help=$("$IOFENCED" --help 2>/dev/null)
cf="$T/probe.conf"
for o in $(help_options <<<"$help" | grep '^--'); do
	k=${o#--}
	k=${k//-/_}
	if grep -qx -- "$k" <<<"$keys"; then
		continue
	fi
	# An option without a setting: the loader must refuse it by name,
	# so that the settings are exactly the options --check-config shows.
	printf '[daemon]\n%s = 1\n' "$k" >"$cf"
	out=$("$IOFENCED" --check-config --config "$cf" 2>&1)
	check "option $o has no setting, and a file naming $k is refused" \
		grep -q "unknown setting '$k'" <<<"$out"
done
for k in $keys; do
	check "setting $k is the option --${k//_/-}" has_option "--${k//_/-}" <<<"$help"
done
printf '[daemon]\nno_such_setting = 1\n' >"$cf"
check "an unknown setting is refused" \
	not quiet "$IOFENCED" --check-config --config "$cf"
printf '[other]\nverbose = yes\n' >"$cf"
check "an unknown section is refused" \
	not quiet "$IOFENCED" --check-config --config "$cf"
check "a config file that --config names must exist" \
	not quiet "$IOFENCED" --check-config --config "$T/absent.conf"
# What --check-config prints loads, and gives the same settings.
printf '%s\n' "$defaults" >"$cf"
check "what --check-config prints loads as it was" \
	[ "$("$IOFENCED" --check-config --config "$cf" 2>&1 | sed 1d)" = "$(sed 1d <<<"$defaults")" ]

if [ -n "$have_groff" ]; then
	settings=$(render "$CONF_MAN" | rsection SETTINGS)
	for k in $keys; do
		text=$(awk -v k="$k" '/^       [a-z_]+ = / { on = ($1 == k) } on' <<<"$settings" | flat)
		v=$(default "$k")
		check "setting $k has its entry in iofenced.conf.5" [ -n "$text" ]
		want="default: empty"
		[ -n "$v" ] && want="default $v"
		check "iofenced.conf.5 gives $k's default (${v:-empty})" \
			grep -qF -- "$want" <<<"$text"
	done
	for k in $(grep -oE '^ {7}[a-z_]+ = ' <<<"$settings" | awk '{ print $1 }'); do
		check "documented setting $k is one the loader takes" grep -qx -- "$k" <<<"$keys"
	done
fi

# The example config: it loads; every setting is there, commented out at
# its default, but the groups that the package's sysusers.d makes.
out=$("$IOFENCED" --check-config --config "$CONF_EXAMPLE" 2>&1)
errs=$("$IOFENCED" --check-config --config "$CONF_EXAMPLE" 2>&1 >/dev/null)
check "the example config loads${errs:+: $errs}" \
	quiet "$IOFENCED" --check-config --config "$CONF_EXAMPLE"
check "the example config sets socket_group = iofence" grep -qx 'socket_group = iofence' <<<"$out"
check "the example config sets control_group = iofence-admin" grep -qx 'control_group = iofence-admin' <<<"$out"
for k in $keys; do
	line=$(grep -E "^#?$k =" "$CONF_EXAMPLE")
	check "setting $k is in the example config once" [ "$(grep -c . <<<"$line")" -eq 1 ]
	case $k in
	socket_group | control_group) continue ;;
	esac
	v=$(sed "s/^#$k = \{0,1\}//" <<<"$line")
	check "the example config has $k commented out" [ "${line:0:1}" = "#" ]
	check "the example config shows $k's default (${v:-empty})" [ "$v" = "$(default "$k")" ]
done
# Nothing else is set.
check "the example config sets nothing but the groups" \
	[ "$(grep -vE '^[[:space:]]*(#|;|$|\[daemon\]$)' "$CONF_EXAMPLE" | sed 's/ = .*//' | sort | xargs)" = "control_group socket_group" ]

# The BPF side: each map of iofence.bpf.c has its heading, each field of
# the shared structs and each pinned link is named in iofence-bpf.7.
maps=$(sed -n 's/^} \([a-z_]*\) SEC(".maps");/\1/p' bpf/iofence.bpf.c)
check "iofence.bpf.c: the maps are read" [ "$(wc -w <<<"$maps")" -ge 5 ]
bpf_headings=$(sed -e 's/\\-/-/g' "$BPF_MAN" | sed -n 's/^\.SS //p' | tr ', ' '\n\n')
for m in $maps; do
	check "map $m has its heading in iofence-bpf.7" grep -qx -- "$m" <<<"$bpf_headings"
done
fields=$(awk '/^struct iofence_[a-z_]+ \{/ { on = 1; next } on && /^\};/ { on = 0 } on' "$BPF_H" |
	grep -oE '^[[:space:]]+(enum |struct )?[a-z_0-9]+ [a-z_0-9]+(\[[A-Z_0-9]+\])?;' |
	sed 's/\[.*//; s/;//' | awk '{ print $NF }' | grep -v '^pad[0-9]*$' | sort -u)
check "iofence.h: the fields are read" [ "$(wc -w <<<"$fields")" -ge 30 ]
bpf_text=$(sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' "$BPF_MAN")
for f in $fields; do
	check "BPF field $f is in iofence-bpf.7" grep -qw -- "$f" <<<"$bpf_text"
done
links=$(grep -o '"link_[a-z_]*"' "$(src tracker.c)" | tr -d '"' | sort -u)
check "tracker.c: the links are read" [ "$(wc -w <<<"$links")" -ge 7 ]
for l in $links; do
	check "link $l is in iofence-bpf.7" grep -qw -- "$l" <<<"$bpf_text"
done

# --- the worked example of the timeline, against a running daemon -------

ex=$(part "$PROTO_MAN" SS "Choosing the timeline")
wdt=$(grep -oE -- '--watchdog-timeout [0-9]+' <<<"$ex" | awk '{ print $2 }')
spec=$(grep -oE 'uuid=[^ ]+' <<<"$ex" | head -1)
page_tl=$(awk '/jq \.timeline/ { on = 1; next } on && /^\{/ { j = 1 } j { print } j && /^\}/ { exit }' <<<"$ex")
check "the worked example names a watchdog timeout" [ -n "$wdt" ]
check "the worked example names a storage" [ -n "$spec" ]
check "the worked example shows its timeline" quiet jq -e .fence_deadline_ms <<<"$page_tl"
if [ ! -x "$IOFENCED" ]; then
	skip "$IOFENCED missing: build it first (make)"
elif [ -n "$wdt" ] && [ -n "$spec" ]; then
	# The page's storage, on a folder of this test, killing nobody; a
	# FIFO as the watchdog, so that nothing can reset this machine.
	mkdir -p "$T/ps1"
	mkfifo "$T/wd"
	spec=$(sed -E "s|target=[^,]*|target=$T/ps1|" <<<"$spec"),victims=iofence-test-nobody
	uuid=$(sed -E 's/^uuid=([^,]*).*/\1/' <<<"$spec")
	if start_daemon ex --no-bpf --watchdog "$T/wd" --watchdog-timeout "$wdt"; then
		ctl_sock "$SOCK_ex" setup --no-status-check --host h1 --storage "$spec" >/dev/null
		got=$(ctl_sock "$SOCK_ex" --json storage "$uuid" | jq -S .timeline)
		check "the worked example's timeline is the daemon's (page $(jq -c . <<<"$page_tl"), daemon $(jq -c . <<<"$got"))" \
			[ "$got" = "$(jq -S . <<<"$page_tl")" ]
		record_read() {
			rec=$(ctl_sock "$SOCK_ex" --json peer --storage "$uuid" --host h1 --window 0 | jq -c .record)
			[ -n "$rec" ] && [ "$rec" != null ]
		}
		wait_until 10 record_read
		text=$(render "$PROTO_MAN" | sed -n '/^   Choosing the timeline/,/^   [A-Z]/p' | flat)
		for k in interval_ms timeout_ms fence_deadline_ms; do
			v=$(jq -r ".$k" <<<"$rec")
			check "the worked example's record carries $k $v" grep -qF -- "$k $v" <<<"$text"
		done
		# Its arithmetic: F in seconds, and H - F = the margin.
		f=$(($(jq -r .fence_deadline_ms <<<"$got") / 1000))
		check "the worked example states F = $f s" grep -qE -- "= $f s" <<<"$text"
		h=$(grep -oE 'example: H = [0-9]+ s' <<<"$text" | grep -oE '[0-9]+')
		check "the worked example's margin is H - F = $((h - f)) s" \
			grep -qF -- "margin of $h - $f = $((h - f)) s" <<<"$text"
	else
		not_ok "a daemon with the worked example's watchdog starts"
	fi
fi
