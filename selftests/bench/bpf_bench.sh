#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# What iofence's block tracing costs. fio (4k random writes, direct,
# iodepth 32, io_uring) on a loop device backed by a file in /dev/shm, in
# rounds of four conditions, interleaved (each round runs them in a rotated
# order, so drift over the run spreads over all of them):
#   none     no tracing at all (no iofenced)
#   armed    iofenced armed on that device
#   other    iofenced armed on another loop device only: the cost of a
#            device map lookup per request
#   biolat   libbpf-tools biolatency on that device
# It prints the median IOPS of each condition and its ratio to none, then
# runs each traced condition once more with kernel.bpf_stats_enabled=1 and
# prints the runs and average ns per run of every program (stats cost time
# of their own, so the IOPS rounds run without them).
#
# ROUNDS (default 12) rounds of BENCH_SECONDS (default 5) per condition,
# on a SIZE_MB (default 1024) device. Numbers
# are printed, never judged. Exit status 2 when it cannot run, else 0.
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 2
: "${OUT:=build}"
: "${ROUNDS:=12}"
: "${BENCH_SECONDS:=5}"
IOFENCED=$OUT/iofenced
IOFENCECTL=$OUT/iofencectl
SIZE_MB=${SIZE_MB:-1024}

[ "$(id -u)" -eq 0 ] || { echo "bpf_bench: needs root: skipped"; exit 0; }
for c in fio jq bpftool losetup; do
	command -v "$c" >/dev/null || { echo "bpf_bench: needs $c"; exit 2; }
done
BIOLAT=$(command -v biolatency || echo /usr/sbin/biolatency)
[ -x "$BIOLAT" ] || BIOLAT=

work=$(mktemp -d /dev/shm/iofence-bpf-bench.XXXXXX)
pin=/sys/fs/bpf/iofence-bpf-bench-$$
dpid= bpid= L1= L2=
stats0=$(sysctl -n kernel.bpf_stats_enabled 2>/dev/null || echo 0)
cleanup() {
	[ -n "$bpid" ] && kill -INT "$bpid" 2>/dev/null && wait "$bpid" 2>/dev/null
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid" 2>/dev/null
	sysctl -q -w kernel.bpf_stats_enabled="$stats0" 2>/dev/null
	[ -n "$L1" ] && losetup -d "$L1"
	[ -n "$L2" ] && losetup -d "$L2"
	rm -rf "$work" "$pin"
}
trap cleanup EXIT

truncate -s "${SIZE_MB}M" "$work/a.img" "$work/b.img"
L1=$(losetup --find --show "$work/a.img") || exit 2
L2=$(losetup --find --show "$work/b.img") || exit 2
# Written once, so that rounds do not differ in first-touch page faults.
dd if=/dev/zero of="$L1" bs=1M count="$SIZE_MB" oflag=direct status=none
sysctl -q -w kernel.bpf_stats_enabled=0

daemon_start() { # storage device
	"$IOFENCED" --foreground --socket "$work/sock" --state-dir "$work/state" \
		--pin-dir "$pin" --watchdog none --rt-priority 0 2>>"$work/log" &
	dpid=$!
	for _ in $(seq 200); do
		"$IOFENCECTL" --socket "$work/sock" version >/dev/null 2>&1 && break
		sleep 0.05
	done
	"$IOFENCECTL" --socket "$work/sock" set-host-state connected >/dev/null
	"$IOFENCECTL" --socket "$work/sock" setup --host bench \
		--storage "uuid=bench,type=block,target=$1,region_offset=$(((SIZE_MB - 1) << 20)),victims=iofence-bench-nobody" >/dev/null ||
		{ echo "bpf_bench: cannot arm $1"; exit 2; }
	# Past the arming margin, so that every request is counted.
	sleep 0.3
}
daemon_stop() {
	kill "$dpid"
	wait "$dpid" 2>/dev/null
	dpid=
	rm -rf "$work/state"
}
biolat_start() {
	"$BIOLAT" -d "${L1#/dev/}" >"$work/biolat.out" 2>&1 &
	bpid=$!
	# Its programs are attached once it prints its banner.
	for _ in $(seq 100); do
		grep -q Tracing "$work/biolat.out" 2>/dev/null && break
		sleep 0.05
	done
}
biolat_stop() {
	kill -INT "$bpid"
	wait "$bpid" 2>/dev/null
	bpid=
}

fio_iops() {
	# The last MiB holds the heartbeat region.
	fio --name=bench --filename="$L1" --size=$((SIZE_MB - 2))M --rw=randwrite --bs=4k --direct=1 \
		--iodepth=32 --ioengine=io_uring --runtime="$BENCH_SECONDS" --time_based \
		--output-format=json 2>/dev/null | jq '.jobs[0].write.iops | floor'
}

# The programs of a condition, as "name runs ns_per_run".
prog_stats() { # jq filter selecting programs
	bpftool -j prog show | jq -r "[.[] | select($1)] | .[] |
		\"\(.name) \(.run_cnt // 0) \(if (.run_cnt // 0) > 0 then (.run_time_ns / .run_cnt | floor) else 0 end)\""
}

run() { # condition -> IOPS
	case $1 in
	none) fio_iops ;;
	armed) daemon_start "$L1"; fio_iops; daemon_stop ;;
	other) daemon_start "$L2"; fio_iops; daemon_stop ;;
	biolat) biolat_start; fio_iops; biolat_stop ;;
	esac
}

conds=(none armed other)
[ -n "$BIOLAT" ] && conds+=(biolat) || echo "bpf_bench: no biolatency (Debian libbpf-tools): that condition is left out"
declare -A res=()
n=${#conds[@]}
echo "== BPF tracing cost: fio 4k randwrite direct iodepth=32 io_uring on $L1 (file in /dev/shm), $ROUNDS rounds of ${BENCH_SECONDS}s"
for ((r = 0; r < ROUNDS; r++)); do
	line="round $((r + 1)):"
	for ((i = 0; i < n; i++)); do
		c=${conds[$(((i + r) % n))]}
		v=$(run "$c")
		res[$c]+="$v "
		line+=" $c $v"
	done
	echo "$line"
done

median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { if (NR % 2) print a[(NR + 1) / 2]; else print int((a[NR / 2] + a[NR / 2 + 1]) / 2) }'; }
base=$(median <<<"${res[none]}")
echo "median IOPS (ratio to none):"
for c in "${conds[@]}"; do
	m=$(median <<<"${res[$c]}")
	printf '  %-7s %8d  %s\n' "$c" "$m" "$(awk -v m="$m" -v b="$base" 'BEGIN { printf "%.4f (%+.2f%%)", m / b, (m / b - 1) * 100 }')"
done

echo "ns per program run (kernel.bpf_stats_enabled=1, one more round each):"
sysctl -q -w kernel.bpf_stats_enabled=1
daemon_start "$L1"; fio_iops >/dev/null
prog_stats '.name | startswith("iofence_rq_")' | sed 's/^/  armed  /'
daemon_stop
daemon_start "$L2"; fio_iops >/dev/null
prog_stats '.name | startswith("iofence_rq_")' | sed 's/^/  other  /'
daemon_stop
if [ -n "$BIOLAT" ]; then
	biolat_start; fio_iops >/dev/null
	prog_stats '.name | test("^block_rq_[a-z]+_btf$")' | sed 's/^/  biolat /'
	biolat_stop
fi
sysctl -q -w kernel.bpf_stats_enabled=0
echo "(per request: one issue and one complete run; columns: name runs ns/run)"
exit 0
