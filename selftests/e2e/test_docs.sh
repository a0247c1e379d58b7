#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The protocol reference cannot drift from the code: the names of commands,
# their arguments, error classes, events and setup storage keys are read
# from the sources, and each must have its entry in iofence-protocol.7;
# each command of `iofencectl --help` must have its entry in iofencectl.8.
# A name added to the code fails here until it is documented.
cd "$(dirname "$0")/../.." || exit 1
. selftests/lib.sh

# The sources: userspace/lib, core, control and iofencectl.
SRC=userspace
PROTO_MAN=${PROTO_MAN:-$SRC/iofence-protocol.7}
CTL_MAN=${CTL_MAN:-$SRC/iofencectl/iofencectl.8}
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

if command -v groff >/dev/null; then
	for m in "$PROTO_MAN" "$CTL_MAN"; do
		out=$(LC_ALL=C.UTF-8 groff -man -ww -Tutf8 -z "$m" 2>&1)
		check "$(basename "$m") renders without warnings${out:+: $out}" [ -z "$out" ]
	done
else
	skip "groff not installed: rendering not checked"
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
