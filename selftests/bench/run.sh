#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Benchmarks: control-plane latency against a real iofenced with its BPF
# tracker loaded. Numbers are printed, never judged: timing goals live
# here, not in the tests.
set -eu
cd "$(dirname "$0")/../.."
: "${OUT:=build}"
work=$(mktemp -d /tmp/iofence-bench.XXXXXX)
pin=/sys/fs/bpf/iofence-bench-$$
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid"
	rm -rf "$work" "$pin"
}
trap cleanup EXIT

"$OUT/iofenced" --foreground --socket "$work/sock" --state-dir "$work/state" \
	--pin-dir "$pin" 2>"$work/log" &
pid=$!
for _ in $(seq 100); do [ -S "$work/sock" ] && break; sleep 0.05; done
mkdir -p "$work/targets"
echo "== control plane (state dir on $(df --output=fstype "$work" | tail -1))"
"$OUT/bench_ctl" "$work/sock" "$work/targets" "${ROUNDS:-50}"
