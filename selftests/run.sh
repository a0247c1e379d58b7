#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Runs every test: the Criterion unit tests, then the end-to-end scripts,
# and ends with one line "N passed, N failed, N skipped" over all of them.
# Exit status is non-zero when anything failed. Each script's wall time
# is printed after it ("-- took N s"), for the CI's time budget.
# SKIP_VM=1 leaves out selftests/vm (whole guests under TCG here: the
# sanitizer pass of CI runs without them).
set -u
cd "$(dirname "$0")/.."
: "${OUT:=build}"
export OUT

pass=0 fail=0 skip=0 broken=() failures=()

add() { # passed failed skipped suite
	pass=$((pass + $1)) fail=$((fail + $2)) skip=$((skip + $3))
	[ "$2" -eq 0 ] || broken+=("$4")
}

# A CI log is often read from its end only: what failed is said again
# there, each suite's failed checks (Criterion's assertion and [FAIL]
# lines, a script's "not ok" lines), or its last lines, under its name.
note_failures() { # suite log
	local lines
	lines=$(grep -E '^\[FAIL\]|^\[----\] .*[^ ]|^not ok' "$2" |
		grep -v '^\[----\] Criterion v' | head -20)
	[ -n "$lines" ] ||
		lines="(no failed check printed; its last lines:)"$'\n'"$(tail -5 "$2")"
	failures+=("-- $1:" "$lines")
}

echo "== unit tests"
for t in $(sed -n 's/^unittest-y += //p' Kbuild); do
	log=$(mktemp)
	"$OUT/$t" --verbose=0 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# [====] Synthesis: Tested: 9 | Passing: 9 | Failing: 0 | Crashing: 0
	syn=$(grep -o 'Tested: [0-9]* | Passing: [0-9]* | Failing: [0-9]* | Crashing: [0-9]*' "$log" | tail -1)
	if [ -z "$syn" ]; then
		echo "$t: no Criterion summary (exit $rc)"
		note_failures "$t" "$log"
		rm -f "$log"
		add 0 1 0 "$t"
		continue
	fi
	read -r tested passing failing crashing < <(tr -dc '0-9 ' <<<"$syn" | xargs)
	f=$((failing + crashing))
	[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
	[ "$f" -eq 0 ] || note_failures "$t" "$log"
	rm -f "$log"
	add "$passing" "$f" $((tested - passing - failing - crashing)) "$t"
done

echo "== end-to-end tests"
# The scripts mostly wait (for deadlines, fences, guests), so they run
# CHECK_JOBS at a time (2 by default; 1 runs them one by one). A script
# that must not share the machine, or a resource, says so in a line
# "# check-lane: NAME": two scripts of one lane never run together, and
# the lane "alone" runs with nothing else beside it, after all others.
# Each script's output is printed whole when it ends.
jobs=${CHECK_JOBS:-2}
vm=selftests/vm/test_*.sh
[ "${SKIP_VM:-0}" != 1 ] || vm=
lane_of() { sed -n 's/^# check-lane: *\([a-z0-9_-]*\).*/\1/p' "$1" | head -1; }

declare -A pid_script=() pid_t0=() pid_log=() busy_lane=()
queue=() alone=()
for t in selftests/e2e/test_*.sh selftests/faultfs/test_*.sh $vm; do
	[ -f "$t" ] || continue
	if [ "$(lane_of "$t")" = alone ]; then alone+=("$t"); else queue+=("$t"); fi
done

start_one() { # script
	local log
	log=$(mktemp)
	timeout 600 bash "$1" >"$log" 2>&1 &
	pid_script[$!]=$1 pid_t0[$!]=$SECONDS pid_log[$!]=$log
	local lane
	lane=$(lane_of "$1")
	[ -z "$lane" ] || busy_lane[$lane]=1
}

finish_one() { # pid rc
	local t=${pid_script[$1]} log=${pid_log[$1]} rc=$2 line p f s lane
	echo "-- $t"
	cat "$log"
	echo "-- took $((SECONDS - pid_t0[$1])) s: $t"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
	lane=$(lane_of "$t")
	[ -z "$lane" ] || unset "busy_lane[$lane]"
	unset "pid_script[$1]" "pid_t0[$1]" "pid_log[$1]"
	if [ -z "$line" ]; then
		echo "$t: ended without a summary (exit $rc)"
		note_failures "$t" "$log"
		rm -f "$log"
		add 0 1 0 "$t"
		return
	fi
	read -r p f s < <(tr -dc '0-9 ' <<<"$line" | xargs)
	[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
	[ "$f" -eq 0 ] || note_failures "$t" "$log"
	rm -f "$log"
	add "$p" "$f" "$s" "$t"
}

# Starts a queued script whose lane is free; false if none can. A lane
# is a chain that runs one script at a time, so its scripts go first:
# started late, the chain would run on alone after everything else.
start_next() {
	local i t lane pick=
	for i in "${!queue[@]}"; do
		t=${queue[$i]}
		lane=$(lane_of "$t")
		[ -n "$lane" ] && [ -n "${busy_lane[$lane]:-}" ] && continue
		[ -z "$pick" ] && pick=$i
		[ -n "$lane" ] && { pick=$i; break; }
	done
	[ -n "$pick" ] || return 1
	t=${queue[$pick]}
	unset "queue[$pick]"
	queue=("${queue[@]}")
	start_one "$t"
}

reap_one() {
	local pid rc
	wait -n -p pid "${!pid_script[@]}"
	rc=$?
	finish_one "$pid" "$rc"
}

while [ ${#queue[@]} -gt 0 ] || [ ${#pid_script[@]} -gt 0 ]; do
	while [ ${#pid_script[@]} -lt "$jobs" ] && start_next; do :; done
	reap_one
done
for t in "${alone[@]}"; do
	start_one "$t"
	reap_one
done

echo
if [ ${#failures[@]} -gt 0 ]; then
	echo "== what failed"
	printf '%s\n' "${failures[@]}"
fi
[ ${#broken[@]} -eq 0 ] || echo "failed in: ${broken[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
