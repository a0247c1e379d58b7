#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A simulated cluster on one faultfs "NFS" (issue 12).
#
#   peers   the cost of query-peer as the hosts on a file storage grow:
#           1, 16, 64 and 256 records in its .iofence folder (PEER_SIZES).
#           One daemon (--no-bpf, --watchdog none) heartbeats to it; the
#           other hosts' records are written by build/cluster_ctl, every
#           interval with the next sequence number, as live peers'
#           daemons would. Per size: the latency of one query-peer with
#           no window (one open and read of a record: the cost itself),
#           one after the other, PEER_ROUNDS times (default 200); a sweep
#           of every other host at once (pipelined, no window): its wall
#           time; the daemon's CPU time per query over CPU_QUERIES
#           (default 5000) of them; the sweep with a window of two
#           intervals (what a management node asks): wall time and how
#           many were alive; and the core's worst lag meanwhile.
#   fence   selftests/e2e/test_cluster.sh with CLUSTER_N daemons (default
#           64), once per --rt-priority in CLUSTER_PRIOS (default "10 0"):
#           the spread of the fences' late_by_us and of their times after
#           the hang across the daemons, the matrix's wall time, the whole
#           run's time.
#
# BENCH_PARTS picks the parts (default "peers fence"). Numbers are printed,
# not judged. Exit status 2 when a part cannot run, 1 when the cluster
# test fails, 0 otherwise (also on a skip).
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 2
: "${OUT:=build}"
: "${BENCH_PARTS:=peers fence}"
: "${PEER_SIZES:=1 16 64 256}"
: "${PEER_ROUNDS:=200}"
: "${CPU_QUERIES:=5000}"
: "${CLUSTER_N:=64}"
: "${CLUSTER_PRIOS:=10 0}"
IOFENCED=$OUT/iofenced
IOFENCECTL=$OUT/iofencectl
FAULTFS=${FAULTFS:-$OUT/faultfs}
CTL=$OUT/cluster_ctl
IV=500 TMO=3000

# shellcheck source-path=SCRIPTDIR source=../faultfs/faultfs.sh
. selftests/faultfs/faultfs.sh

say() { printf '%s\n' "$*"; }
skip_all() {
	say "== cluster bench: SKIP: $*"
	exit 0
}
[ "$(id -u)" -eq 0 ] || skip_all "needs root (FUSE)"
[ -c /dev/fuse ] || skip_all "no /dev/fuse"
command -v fusermount3 >/dev/null || skip_all "fusermount3 is missing"
command -v jq >/dev/null || skip_all "jq is missing"
for b in "$IOFENCED" "$IOFENCECTL" "$FAULTFS" "$CTL"; do
	[ -x "$b" ] || skip_all "$b is not built (make all tests)"
done

work='' dpid='' writer=''
broken() {
	say "cluster bench: cannot run: $*" >&2
	[ -f "$work/daemon.log" ] && tail -20 "$work/daemon.log" | sed 's/^/#   /' >&2
	exit 2
}
# shellcheck disable=SC2317 # run by the EXIT trap
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ -n "$work" ] || exit "$rc"
	faultfs_mounted "$work/mnt" && _faultfs_ctl_write "$work/mnt" "healthy *" 2>/dev/null
	[ -n "$writer" ] && kill "$writer" 2>/dev/null && wait "$writer"
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null && wait "$dpid"
	faultfs_stop "$work/mnt" || say "cluster bench: $work/mnt is still mounted" >&2
	faultfs_mounted "$work/mnt" || rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ctl() { timeout 20 "$IOFENCECTL" --socket "$work/sock" "$@"; }
# The daemon's CPU time so far, in clock ticks (its dead io-wq workers'
# included, which per-thread counters lose).
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$dpid/stat"; }
field() { grep '^summary ' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p"; }

peers_part() {
	local store rec n f hz q c0 c1 lag i
	work=$(mktemp -d /dev/shm/iofence-cluster-bench.XXXXXX) || broken "mktemp"
	work=$(readlink -f "$work")
	export FAULTFS_LOG=$work/faultfs.log
	faultfs_start "$work/backing" "$work/mnt" || broken "faultfs does not mount"
	store=$work/mnt/store
	rec=$store/.iofence
	mkdir -p "$store"
	"$IOFENCED" --foreground --socket "$work/sock" --state-dir "$work/state" \
		--pin-dir "$work/pin" --no-bpf --watchdog none >"$work/daemon.log" 2>&1 &
	dpid=$!
	for _ in $(seq 100); do ctl version >/dev/null 2>&1 && break; sleep 0.05; done
	ctl set-host-state connected >/dev/null || broken "the daemon does not answer"
	ctl setup --host self --storage "uuid=nfs,type=file,target=$store,interval_ms=$IV,timeout_ms=$TMO,victims=iofence-test-nobody" \
		>/dev/null || broken "setup"
	for _ in $(seq 100); do [ -s "$rec/self" ] && break; sleep 0.05; done
	hz=$(getconf CLK_TCK)
	echo "self $work/sock" >"$work/asker"
	say "== cluster bench: query-peer as the hosts grow (file storage on faultfs, interval $IV ms, timeout $TMO ms)"
	printf '%-6s %-24s %-14s %-24s %-28s %s\n' hosts "one query (us)" "sweep" \
		"daemon CPU/query" "sweep, window $((2 * IV)) ms" "core lag (worst of 10 s)"
	for n in $PEER_SIZES; do
		# The other hosts: n - 1 records, rewritten every interval.
		[ -n "$writer" ] && kill "$writer" && wait "$writer"
		writer=
		if [ "$n" -gt 1 ]; then
			"$CTL" records --interval "$IV" --timeout "$TMO" --every "$IV" \
				"$rec" nfs peer $((n - 1)) 2>>"$work/writer.err" &
			writer=$!
		fi
		for _ in $(seq 100); do
			[ "$(find "$rec" -maxdepth 1 -type f | wc -l)" -ge "$n" ] && break
			sleep 0.05
		done
		# The hosts asked about: every other one, or itself when alone.
		if [ "$n" -gt 1 ]; then
			for ((i = 0; i < n - 1; i++)); do printf 'peer%04d\n' "$i"; done >"$work/all"
		else
			echo self >"$work/all"
			# cluster_ctl skips the asker itself: ask as somebody else.
			echo "other $work/sock" >"$work/asker.one"
		fi
		f=$work/asker
		[ "$n" -gt 1 ] || f=$work/asker.one
		head -1 "$work/all" >"$work/one"
		for ((i = 1; i < PEER_ROUNDS; i++)); do head -1 "$work/all"; done >>"$work/one"
		"$CTL" query --window 0 --parallel 1 nfs "$f" "$work/one" >"$work/q1" ||
			broken "query-peer, one at a time"
		"$CTL" query --window 0 --parallel 256 nfs "$f" "$work/all" >"$work/q2" ||
			broken "query-peer sweep"
		# The daemon's CPU time per query: the hosts again and again,
		# CPU_QUERIES queries or more (its clock ticks are 10 ms).
		for ((q = 0; q < CPU_QUERIES; q += n > 1 ? n - 1 : 1)); do cat "$work/all"; done >"$work/many"
		c0=$(cpu_ticks)
		"$CTL" query --window 0 --parallel 256 nfs "$f" "$work/many" >"$work/q4" ||
			broken "query-peer, many"
		c1=$(cpu_ticks)
		q=$(field "$work/q4" queries)
		"$CTL" query --window $((2 * IV)) --parallel 256 nfs "$f" "$work/all" >"$work/q3" ||
			broken "query-peer sweep with a window"
		lag=$(ctl --json status | jq -r '.lag.core | "\(.recent_us) us (p99 \(.p99_us))"')
		printf '%-6s %-24s %-14s %-24s %-28s %s\n' "$n" \
			"p50 $(field "$work/q1" p50_us) p99 $(field "$work/q1" p99_us)" \
			"$(field "$work/q2" wall_ms) ms" \
			"$(awk -v t="$((c1 - c0))" -v hz="$hz" -v q="$q" \
				'BEGIN { printf "%.0f us (%d queries)", t * 1e6 / hz / q, q }')" \
			"$(field "$work/q3" wall_ms) ms, $(field "$work/q3" alive)/$(field "$work/q3" queries) alive" \
			"$lag"
	done
	[ -n "$writer" ] && kill "$writer" && wait "$writer"
	writer=
	kill "$dpid" && wait "$dpid"
	dpid=
	faultfs_stop "$work/mnt"
	rm -rf "$work"
	work=
}

fence_part() {
	local prio rep rc=0 st
	for prio in $CLUSTER_PRIOS; do
		rep=$(mktemp /dev/shm/iofence-cluster-report.XXXXXX)
		say "== cluster bench: $CLUSTER_N daemons, --rt-priority $prio (selftests/e2e/test_cluster.sh)"
		st=0
		CLUSTER_N=$CLUSTER_N CLUSTER_RT_PRIO=$prio CLUSTER_REPORT=$rep OUT=$OUT \
			bash selftests/e2e/test_cluster.sh >"$rep.out" 2>&1 || st=$?
		grep -E '^(not ok|[0-9]+ passed)' "$rep.out" | sed 's/^/  /'
		sed 's/^/  /' "$rep"
		[ "$st" -eq 0 ] || rc=1
		rm -f "$rep" "$rep.out"
	done
	return $rc
}

rc=0
for part in $BENCH_PARTS; do
	case $part in
	peers) peers_part ;;
	fence) fence_part || rc=1 ;;
	*) broken "unknown part $part" ;;
	esac
done
exit $rc
