#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Benchmarks: control-plane latency against a real iofenced with its BPF
# tracker loaded, then fencing on a real data path (fence_bench.sh: the
# delay from the contract's fence moment to a dead VM over HANGS hangs, and
# a SOAK_SECONDS soak under load; HANGS=5 SOAK_SECONDS=20 is a quick run),
# then the fencing core's lag and a healthy storage's heartbeats under
# stressors, and query-status throughput (isolation_bench.sh), then what
# the BPF tracker costs fio on a loop device (bpf_bench.sh), then rbd
# storages on a Ceph test cluster of its own (rbd_bench.sh: setup, the
# heartbeat's latency, the fence delay with the OSD stopped, fence-peer
# to the dead host's refusal; ROUNDS=3 HANGS=3 ROUNDS_PEER=2
# HB_SECONDS=15 is a quick run; ROUNDS and HANGS are shared with the
# benches above), skipped when the Ceph packages are not
# installed, then what glibc's and ASan's allocators cost SCHED_FIFO
# threads (rt_alloc_bench.sh; RTA_SECONDS=3 is a quick run), then the
# simulated cluster (cluster_bench.sh).
# Numbers are printed, never judged: timing goals live here, not in the
# tests. Only wrong fencing (a missed or a false fence) fails the fence
# bench, or a bench that cannot run.
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
	--pin-dir "$pin" --watchdog none 2>"$work/log" &
pid=$!
for _ in $(seq 100); do [ -S "$work/sock" ] && break; sleep 0.05; done
mkdir -p "$work/targets"
echo "== control plane (state dir on $(df --output=fstype "$work" | tail -1))"
"$OUT/bench_ctl" "$work/sock" "$work/targets" "${ROUNDS:-50}"
"$OUT/bench_ctl" --clients 4 --pipeline 32 --seconds 5 "$work/sock"
# Stopped first, so that it does not run beside the fence bench.
kill "$pid"
wait "$pid" || true
pid=

rc=0
echo
OUT=$OUT selftests/bench/fence_bench.sh || rc=$?
# The isolation of the fencing core under stressors (ISO_SECONDS per
# stressor; ISO_SECONDS=5 ISO_PIPE_SECONDS=3 is a quick run).
echo
st=0
OUT=$OUT selftests/bench/isolation_bench.sh || st=$?
[ "$rc" -ne 0 ] || rc=$st
# What the BPF tracker costs block I/O, against no tracing and biolatency
# (ROUNDS rounds of BENCH_SECONDS per condition).
echo
st=0
OUT=$OUT selftests/bench/bpf_bench.sh || st=$?
[ "$rc" -ne 0 ] || rc=$st
# rbd storages: ROUNDS setups, HB_SECONDS of heartbeats, HANGS hangs of
# the OSD, ROUNDS_PEER fence-peers.
echo
st=0
OUT=$OUT selftests/bench/rbd_bench.sh || st=$?
[ "$rc" -ne 0 ] || rc=$st
# What the allocator's locks cost real-time threads, glibc's and ASan's.
echo
st=0
OUT=$OUT selftests/bench/rt_alloc_bench.sh || st=$?
[ "$rc" -ne 0 ] || rc=$st
# A simulated cluster: query-peer's cost as the hosts grow, and the fence
# spread of 64 daemons on one dead storage (CLUSTER_PRIOS="10" is a
# quicker run).
echo
st=0
OUT=$OUT selftests/bench/cluster_bench.sh || st=$?
[ "$rc" -ne 0 ] || rc=$st
exit "$rc"
