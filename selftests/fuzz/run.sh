#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Runs each libFuzzer target of selftests/fuzz for FUZZ_SECONDS (30) with
# its seed corpus and dictionary; exits non-zero on any finding (crash,
# leak, sanitizer report, broken invariant, timeout). `make fuzz` builds
# the targets into $OUT (build/fuzz) and calls this; CI calls it too.
#
#   FUZZ_SECONDS  seconds per target (default 30)
#   FUZZ_TARGETS  the targets to run, by name (default: all built ones)
#   FUZZ_JOBS     how many run at once (default: nproc)
#   FUZZ_WORK     scratch folder: the corpus each run grows, and what it
#                 found (default: a new one under /tmp, removed when
#                 nothing was found). The seed corpora in git are only read.
#
# A finding is left in $FUZZ_WORK/<target>/ as crash-*, leak-* or
# timeout-*; replay it with `$OUT/fuzz_<target> FILE`, fix the code, and
# keep it under selftests/fuzz/regressions/<target>/ so that
# test_fuzz_regressions replays it from then on.
set -u
cd "$(dirname "$0")/../.."
: "${OUT:=build/fuzz}" "${FUZZ_SECONDS:=30}"
: "${FUZZ_TARGETS:=request state record config linebuf rbd_cmdline}"
: "${FUZZ_JOBS:=$(nproc)}"
work=${FUZZ_WORK:-$(mktemp -d /tmp/iofence-fuzz.XXXXXX)}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()

# fuzz_one TARGET: one target's run, and one line on how it went;
# false on a finding.
fuzz_one() {
	local t=$1 bin=$OUT/fuzz_$1 dir=$work/$1 start rc secs done_line cov eps runs
	if [ ! -x "$bin" ]; then
		echo "fuzz_$t: $bin not built (make fuzz builds it)"
		return 1
	fi
	mkdir -p "$dir/corpus"
	start=$(date +%s)
	# New inputs go to the first folder, the scratch one.
	"$bin" -max_total_time="$FUZZ_SECONDS" -timeout=10 \
		-dict="selftests/fuzz/$t.dict" -artifact_prefix="$dir/" \
		-print_final_stats=1 -close_fd_mask=3 \
		"$dir/corpus" "selftests/fuzz/corpus/$t" >"$dir/log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$dir/log" | tail -1)
	cov=$(sed -n 's/.* cov: \([0-9]*\) ft: \([0-9]*\) .*/cov \1 ft \2/p' <<<"$done_line")
	eps=$(sed -n 's/^stat::average_exec_per_sec:[[:space:]]*//p' "$dir/log")
	runs=$(sed -n 's/^stat::number_of_executed_units:[[:space:]]*//p' "$dir/log")
	if [ "$rc" -ne 0 ]; then
		echo "fuzz_$t: FOUND something after ${secs}s (exit $rc); log and input in $dir:"
		grep -E 'ERROR|SUMMARY|invariant|Test unit written|deadly' "$dir/log" | head -20
		return 1
	fi
	echo "fuzz_$t: ok, ${secs}s, ${runs:-?} runs, ${eps:-?} exec/s, ${cov:-cov ?}"
}

# A target is one process on one CPU: FUZZ_JOBS (nproc) run at once.
declare -A running=()
reap() {
	local pid
	wait -n -p pid "${!running[@]}" || failed+=("${running[$pid]}")
	unset "running[$pid]"
}
for t in $FUZZ_TARGETS; do
	[ ${#running[@]} -lt "$FUZZ_JOBS" ] || reap
	fuzz_one "$t" &
	running[$!]=$t
done
while [ ${#running[@]} -gt 0 ]; do reap; done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzzing found something in: ${failed[*]} (see $work)"
	exit 1
fi
[ -n "${FUZZ_WORK:-}" ] || rm -rf "$work"
echo "fuzzing: no finding in ${FUZZ_TARGETS// /, } (${FUZZ_SECONDS}s each)"
