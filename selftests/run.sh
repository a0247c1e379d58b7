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

pass=0 fail=0 skip=0 broken=()

add() { # passed failed skipped suite
	pass=$((pass + $1)) fail=$((fail + $2)) skip=$((skip + $3))
	[ "$2" -eq 0 ] || broken+=("$4")
}

echo "== unit tests"
for t in $(sed -n 's/^unittest-y += //p' Kbuild); do
	log=$(mktemp)
	"$OUT/$t" --verbose=0 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	# [====] Synthesis: Tested: 9 | Passing: 9 | Failing: 0 | Crashing: 0
	syn=$(grep -o 'Tested: [0-9]* | Passing: [0-9]* | Failing: [0-9]* | Crashing: [0-9]*' "$log" | tail -1)
	rm -f "$log"
	if [ -z "$syn" ]; then
		echo "$t: no Criterion summary (exit $rc)"
		add 0 1 0 "$t"
		continue
	fi
	read -r tested passing failing crashing < <(tr -dc '0-9 ' <<<"$syn" | xargs)
	f=$((failing + crashing))
	[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
	add "$passing" "$f" $((tested - passing - failing - crashing)) "$t"
done

echo "== end-to-end tests"
vm=selftests/vm/test_*.sh
[ "${SKIP_VM:-0}" != 1 ] || vm=
for t in selftests/e2e/test_*.sh selftests/faultfs/test_*.sh $vm; do
	[ -f "$t" ] || continue
	echo "-- $t"
	log=$(mktemp)
	t0=$SECONDS
	timeout 600 bash "$t" 2>&1 | tee "$log"
	rc=${PIPESTATUS[0]}
	echo "-- took $((SECONDS - t0)) s: $t"
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed, [0-9]+ skipped$' "$log" | tail -1)
	rm -f "$log"
	if [ -z "$line" ]; then
		echo "$t: ended without a summary (exit $rc)"
		add 0 1 0 "$t"
		continue
	fi
	read -r p f s < <(tr -dc '0-9 ' <<<"$line" | xargs)
	[ "$rc" -eq 0 ] || [ "$f" -gt 0 ] || f=1
	add "$p" "$f" "$s" "$t"
done

echo
[ ${#broken[@]} -eq 0 ] || echo "failed in: ${broken[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" -eq 0 ]
