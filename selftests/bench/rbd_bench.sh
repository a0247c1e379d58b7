#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# rbd storages on a single-node test cluster of the bench's own
# (scripts/ceph-cluster.sh, memstore), each part with a private iofenced
# (no BPF, no watchdog):
#
#   setup    ROUNDS (default 20) setups of an rbd storage, each until the
#            reply says armed (a librados connection and a first
#            heartbeat), and its teardown: p50/p99/max ms, as iofencectl
#            sees them.
#   latency  HB_SECONDS (default 30) of heartbeats every 200 ms on a
#            healthy cluster: .heartbeat.latency_us.last sampled once per
#            heartbeat (write_full of iofence.<host>, then a mon "version"
#            round trip), beside a file storage on tmpfs in the same
#            daemon, for scale; and the daemon's own maxima.
#   hang     HANGS (default 10) hangs: the OSD SIGSTOPped at a random
#            phase of the 500 ms interval (attempts 3: T = 1.5 s) under a
#            qemu victim whose disk is in the pool; late_by_us of
#            FENCE_FIRED and dead_after_us of FENCE_COMPLETED, both from
#            the contract point t_ok + T.
#   peer     two simulated hosts (127.0.0.2 and .3, selftests/ceph.sh),
#            each a daemon in its cgroup with a qemu victim in the pool;
#            host 3's daemon SIGSTOPped, host 2 runs iofencectl peer
#            --blocklist --force --window 0 (ROUNDS_PEER rounds, default
#            5), then once without --force (its window, the storage's
#            timeout, included). From the command's start: its return,
#            the first write of host 3's qemu that fails (writes in a loop
#            through its monitor, each a write and a flush), and the
#            entry seen by a client polling "osd blocklist ls" every
#            20 ms. Each round then resumes host 3 (it fences itself),
#            lifts the entry and unfences it; a fresh qemu each round, as
#            a blocklisted librbd client stays dead.
#
# ROUNDS=3 HANGS=3 ROUNDS_PEER=2 HB_SECONDS=15 is a quick run (about 3
# minutes). Numbers are printed, never judged. Exit status 1 on a missed
# fence (a hang that did not kill its victim, a blocklist after which the
# dead host's VM still writes) or a false fence (a fence of a healthy
# storage: the latency part's, host 2's), 2 when the bench cannot run, 0
# otherwise, also when it skips (not root, no Ceph packages, no qemu).
set -u -o pipefail
cd "$(dirname "$0")/../.." || exit 2
: "${OUT:=build}"
: "${ROUNDS:=20}"
: "${HB_SECONDS:=30}"
: "${HANGS:=10}"
: "${ROUNDS_PEER:=5}"
export OUT
# The tests' helpers (scratch dir $T, cleanups, processes), with the
# bench's own exit: no test count, its own status.
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. selftests/lib.sh
stopped=() bg=()

# shellcheck disable=SC2317 # run by the EXIT trap
bench_exit() {
	local rc=$? p
	trap - EXIT INT TERM
	set +e
	# First what is stopped: a stopped process takes no SIGTERM, and a
	# stopped OSD holds up every client's exit.
	[ -n "${CEPH_DIR:-}" ] && _cc_ours "$CEPH_DIR" "${CEPH_OSD_PID:-}" &&
		kill -CONT "$CEPH_OSD_PID"
	for p in "${stopped[@]}"; do kill -CONT "$p" 2>/dev/null; done
	for p in "${bg[@]}"; do kill -TERM "$p" 2>/dev/null; done
	for p in "${bg[@]}"; do wait "$p" 2>/dev/null; done
	# Then, last in first out: qemus, daemons, hosts, the cluster.
	run_cleanups
	rm -rf "$T"
	exit "$rc"
}
trap bench_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say() { printf '%s\n' "$*"; }
# ceph_need reports what is missing through skip.
skip() { say "== rbd bench: SKIP: $1"; }
skip_all() {
	skip "$1"
	exit 0
}
dlog=
broken() {
	say "rbd bench: cannot run: $*" >&2
	[ -n "$dlog" ] && [ -f "$dlog" ] && tail -20 "$dlog" | sed 's/^/#   /' >&2
	exit 2
}

[ "$(id -u)" -eq 0 ] || skip_all "needs root (cgroups, BPF, a cluster of its own)"
command -v jq >/dev/null || skip_all "jq is missing"
for b in "$IOFENCED" "$IOFENCECTL"; do
	[ -x "$b" ] || skip_all "$b is not built (make all)"
done
# shellcheck source-path=SCRIPTDIR source=../ceph.sh
. selftests/ceph.sh
ceph_need qemu
# The blocklist poller is a librados client of its own (Debian's python3).
PYRADOS=/usr/bin/python3
"$PYRADOS" -c 'import rados' 2>/dev/null ||
	skip_all "no python3 rados module (Debian package python3-rados)"
# The peer part's simulated hosts.
hosts_why=
CGROUP2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ -z "$CGROUP2" ]; then
	hosts_why="no cgroup2 mount"
elif ! command -v bpftool >/dev/null; then
	hosts_why="bpftool is missing"
elif [ ! -f "$CEPH_NET_BPF" ]; then
	hosts_why="$CEPH_NET_BPF is not built (make tests)"
fi

T=$(readlink -f "$T")
POOL=iofence-bench-$$

# A private copy of the programs: a rebuild during the bench does not
# swap them under it.
mkdir "$T/bin" || broken "cannot make $T/bin"
cp "$IOFENCED" "$IOFENCECTL" "$T/bin/" || broken "cannot copy the programs"
IOFENCED=$T/bin/iofenced IOFENCECTL=$T/bin/iofencectl
# The victims' qemu, under names of the bench's own: no fence of the
# bench kills another qemu of this machine, nor one of another part.
QEMU=$(command -v qemu-system-x86_64)
for q in bench h2 h3; do
	cp "$QEMU" "$T/qemu-$q-$$" || broken "cannot copy $QEMU"
done
# Their modules (block-rbd) are found next to the binary, or here.
export QEMU_MODULE_DIR=/usr/lib/x86_64-linux-gnu/qemu

now_us() { local t=${EPOCHREALTIME//[.,]/}; echo $((10#$t)); }
ms() { awk -v v="$1" 'BEGIN { printf "%.3f", v / 1000 }'; } # µs -> ms
sleep_ms() { sleep "$(awk -v v="$1" 'BEGIN { printf "%.3f", v / 1000 }')"; }

# stats FILE: "p50 p99 max" of its numbers (µs), in ms, nearest rank.
stats() {
	sort -n "$1" | awk '{ v[NR] = $1 }
	function rank(p,  i) { i = int((p * NR + 99) / 100); return v[i < 1 ? 1 : i] }
	END {
		if (!NR) { print "- - -"; exit }
		printf "%.3f %.3f %.3f\n", rank(50) / 1000, rank(99) / 1000, v[NR] / 1000
	}'
}
row_head() { printf '  %-44s %12s %12s %12s %4s\n' "" p50 p99 max n; }
row() { # LABEL FILE
	local p50 p99 max
	read -r p50 p99 max < <(stats "$2")
	printf '  %-44s %9s ms %9s ms %9s ms %4s\n' "$1" "$p50" "$p99" "$max" "$(grep -c . "$2")"
}

# bench_daemon NAME [HOST]: a private iofenced, in HOST's cgroup when
# given (one process, the daemon itself: what SIGSTOP stops); sets
# SOCK_<NAME>, PID_<NAME> and dlog; killed on exit.
bench_daemon() {
	local name=$1 cg='' pid
	[ -z "${2:-}" ] || cg=$(_host_cg "$2")/cgroup.procs
	dlog=$T/$name.log
	(
		[ -z "$cg" ] || echo "$BASHPID" >"$cg" || exit 1
		exec "$IOFENCED" --foreground --socket "$T/$name.sock" \
			--state-dir "$T/$name.state" --watchdog none --no-bpf
	) >"$dlog" 2>&1 &
	pid=$!
	T_DSTART[$name]=$(pid_start "$pid")
	on_exit "kill -CONT $pid; daemon_gone $name || kill -KILL $pid; wait $pid"
	printf -v "SOCK_$name" '%s' "$T/$name.sock"
	printf -v "PID_$name" '%s' "$pid"
	daemon_answers "$name" "$T/$name.sock" "$pid" "$dlog" 5 ||
		broken "iofenced $name did not start"
	ctl_sock "$T/$name.sock" set-host-state connected >/dev/null ||
		broken "set-host-state connected ($name)"
}
end_daemon() { # NAME
	daemon_stop "$1" 15 >/dev/null
	[ $? -ne 124 ] && return 0
	local v="PID_$1"
	kill -KILL "${!v}" 2>/dev/null
	wait "${!v}" 2>/dev/null
}

last_seq() { # SOCK
	local n i
	for ((i = 0; i < 5; i++)); do
		n=$(ctl_sock "$1" --json status | jq -r '.last_seq') &&
			[[ $n =~ ^[0-9]+$ ]] && { echo "$n"; return 0; }
		sleep 0.1
	done
	return 1
}
# events_after SOCK SEQ UUID: that storage's events after SEQ, an array.
events_after() {
	ctl_sock "$1" --json events --since "$2" |
		jq -c --arg u "$3" '[.[] | select(.data.storage == $u)]'
}
# wait_event SOCK SEQ UUID NAME MS: the events after SEQ once NAME is there.
wait_event() {
	local end=$(($(now_us) + $5 * 1000)) evs
	while :; do
		evs=$(events_after "$1" "$2" "$3") &&
			jq -e --arg n "$4" 'any(.event == $n)' <<<"$evs" >/dev/null &&
			{ printf '%s\n' "$evs"; return 0; }
		(($(now_us) < end)) || return 1
		sleep 0.1
	done
}
# shellcheck disable=SC2317 # through eval
hb_state() { hb_of "$1" "$2" | jq -r .state; } # SOCK UUID
# wait_hb SOCK UUID STATE SECONDS
wait_hb() { wait_until "$4" eval "[ \"\$(hb_state '$1' '$2')\" = '$3' ]"; }
# unfence_healthy SOCK SEQ UUID: after a fence, once the heartbeats land
# again (STORAGE_RESTORED), unfenced and healthy.
unfence_healthy() {
	wait_event "$1" "$2" "$3" STORAGE_RESTORED 30000 >/dev/null ||
		broken "no STORAGE_RESTORED of $3 within 30 s: $(hb_of "$1" "$3")"
	wait_until 10 eval "ctl_sock '$1' unfence '$3' >/dev/null 2>&1" ||
		broken "unfence $3"
	wait_hb "$1" "$3" healthy 10 || broken "$3 not healthy after its unfence"
}
# victim NAME IMG QEMU [HOST]: a fresh qemu victim; sets vpid.
victim() {
	local v
	RBD_VICTIM_QEMU=$3 RBD_VICTIM_HOST=${4:-} rbd_victim_start "$1" "$POOL" "$2" >&2 ||
		broken "qemu victim $1 on $POOL/$2"
	v="RBDV_PID_$1"
	vpid=${!v}
}

missed=0 false_fences=0
# Set by bench_daemon (printf -v).
SOCK_setup='' SOCK_lat='' SOCK_hang='' SOCK_d2='' SOCK_d3='' PID_d3=''

# --- the cluster -----------------------------------------------------------

t0=$(now_us)
cluster_up || broken "the test cluster does not start"
cluster_pool "$POOL" || broken "no pool $POOL"
for img in hang vm2; do
	cl_rbd create "$POOL/$img" --size 16M || broken "rbd create $POOL/$img"
done
say "== rbd bench: cluster up with pool $POOL in $(ms $(($(now_us) - t0))) ms (one mon, one memstore OSD, on 127.0.0.1; ceph $(ceph --version | awk '{ print $3 }'))"

# --- setup to armed ----------------------------------------------------------

part_setup() {
	local i t0 t1 out res spec f=$T/setup_us g=$T/teardown_us
	: >"$f"
	: >"$g"
	bench_daemon setup
	spec="uuid=r1,type=rbd,pool=$POOL,conf=$CEPH_CONF,interval=1s,victims=iofence-test-nobody"
	for ((i = 0; i < ROUNDS; i++)); do
		t0=$(now_us)
		out=$(ctl_t 60 "$SOCK_setup" --json setup --host bench --no-status-check \
			--storage "$spec" 2>&1)
		t1=$(now_us)
		res=$(jq -r '[.storages[].result] | join(",")' <<<"$out" 2>/dev/null)
		[ "$res" = armed ] || broken "setup $i: $out"
		echo $((t1 - t0)) >>"$f"
		t0=$(now_us)
		out=$(ctl_t 60 "$SOCK_setup" teardown --host bench --storage r1 2>&1) ||
			broken "teardown $i: $out"
		echo $(($(now_us) - t0)) >>"$g"
	done
	say
	say "== setup to armed: $ROUNDS rounds of setup and teardown of an rbd storage (iofencectl's view, its start included)"
	row_head
	row "setup (until armed)" "$f"
	row "teardown" "$g"
	end_daemon setup
}

# --- heartbeat latency on a healthy cluster --------------------------------

part_latency() {
	local mark end evs u n late fired h
	local s=$T/lat_samples
	: >"$s"
	bench_daemon lat
	mkdir -p "$T/nfs"
	arm_storages "$SOCK_lat" bench \
		"uuid=r1,type=rbd,pool=$POOL,conf=$CEPH_CONF,interval=200ms,victims=iofence-test-nobody" \
		"uuid=f1,type=file,target=$T/nfs,interval=200ms,victims=iofence-test-nobody" >&2 ||
		broken "setup of r1 (rbd) and f1 (file on tmpfs)"
	if ! wait_until 10 hb_wrote "$SOCK_lat" r1 3 || ! wait_until 10 hb_wrote "$SOCK_lat" f1 3; then
		broken "no heartbeats: $(hb_of "$SOCK_lat" r1) $(hb_of "$SOCK_lat" f1)"
	fi
	mark=$(last_seq "$SOCK_lat") || broken "status"
	end=$((SECONDS + HB_SECONDS))
	# One sample per heartbeat: its seq tells a new one from a repeat.
	while ((SECONDS < end)); do
		ctl_sock "$SOCK_lat" --json status | jq -r '.storages[] |
			select(.uuid == "r1" or .uuid == "f1") |
			"\(.uuid) \(.heartbeat.seq) \(.heartbeat.latency_us.last)"' >>"$s"
		sleep 0.1
	done
	say
	say "== heartbeat latency: $HB_SECONDS s at interval 200 ms, healthy cluster; one sample per heartbeat (.heartbeat.latency_us.last)"
	row_head
	for u in r1 f1; do
		awk -v u="$u" '$1 == u && $3 ~ /^[0-9]+$/ { print $2, $3 }' "$s" | sort -un -k1,1 |
			awk '{ print $2 }' >"$T/lat_$u"
	done
	row "rbd (write_full + mon version)" "$T/lat_r1"
	row "file on tmpfs, same daemon (for scale)" "$T/lat_f1"
	for u in r1 f1; do
		h=$(hb_of "$SOCK_lat" "$u")
		evs=$(events_after "$SOCK_lat" "$mark" "$u")
		late=$(jq 'map(select(.event == "HEARTBEAT_LATE")) | length' <<<"$evs")
		fired=$(jq 'map(select(.event == "FENCE_FIRED")) | length' <<<"$evs")
		n=$(jq -r '"writes ok/failed/timed out \(.writes_ok)/\(.writes_failed)/\(.writes_timed_out), latency max \(.latency_us.max / 1000) ms, jitter max \(.jitter_us.max / 1000) ms"' <<<"$h")
		say "  $u: $n, $late late, $fired fences"
		false_fences=$((false_fences + ${fired:-0}))
	done
	end_daemon lat
}

# --- fence delay with the OSD stopped at a random phase --------------------

HANG_IV=500 HANG_ATTEMPTS=3
HANG_T=$((HANG_IV * HANG_ATTEMPTS))
part_hang() {
	local i=0 ok=0 mark since phase wait_ms evs fired done_ dead late q
	local dead_f=$T/dead_after_us late_f=$T/late_by_us
	: >"$dead_f"
	: >"$late_f"
	bench_daemon hang
	q=$T/qemu-bench-$$
	arm_storages "$SOCK_hang" bench \
		"uuid=h1,type=rbd,pool=$POOL,conf=$CEPH_CONF,interval=${HANG_IV}ms,attempts=$HANG_ATTEMPTS,victims=${q##*/}" >&2 ||
		broken "setup of h1"
	wait_hb "$SOCK_hang" h1 healthy 10 || broken "h1 not healthy"
	say
	say "== fence delay: $HANGS hangs of the OSD (SIGSTOP at a random phase of the interval), interval $HANG_IV ms, attempts $HANG_ATTEMPTS (T = $HANG_T ms), a qemu victim on $POOL/hang"
	while ((ok + missed < HANGS)); do
		i=$((i + 1))
		victim "hvm$i" hang "$q"
		wait_hb "$SOCK_hang" h1 healthy 10 || broken "h1 not healthy before hang $i"
		mark=$(last_seq "$SOCK_hang") || broken "status"
		# The phase: ms since the last good heartbeat, when stopped.
		phase=$((RANDOM % HANG_IV))
		since=$(hb_of "$SOCK_hang" h1 | jq -r .since_ok_ms)
		[[ $since =~ ^[0-9]+$ ]] || broken "since_ok_ms: $since"
		wait_ms=$(((phase - since % HANG_IV + HANG_IV) % HANG_IV))
		sleep_ms "$wait_ms"
		kill -STOP "$CEPH_OSD_PID"
		# Quiet until the fence is due: no poller competes with the kill.
		sleep_ms $((HANG_T + 300))
		evs=$(wait_event "$SOCK_hang" "$mark" h1 FENCE_COMPLETED 8000)
		kill -CONT "$CEPH_OSD_PID"
		fired=$(jq -c 'map(select(.event == "FENCE_FIRED"))[0] // empty' <<<"$evs")
		done_=$(jq -c 'map(select(.event == "FENCE_COMPLETED"))[0] // empty' <<<"$evs")
		dead=$(jq -r --argjson p "$vpid" '.data.victims[]? |
			select(.pid == $p and .result == "dead") | .dead_after_us' <<<"$done_")
		late=$(jq -r '.data.late_by_us // empty' <<<"$fired")
		if [ -z "$fired" ]; then
			missed=$((missed + 1))
			say "  hang $i: MISSED: no FENCE_FIRED within $((HANG_T + 8300)) ms"
		elif [ -z "$dead" ] || ! wait_until 2 eval "! proc_alive $vpid"; then
			missed=$((missed + 1))
			say "  hang $i: MISSED: victim $vpid not killed: $(jq -c .data.victims <<<"${done_:-$fired}")"
		else
			ok=$((ok + 1))
			echo "$dead" >>"$dead_f"
			echo "$late" >>"$late_f"
			printf '  hang %2d: stopped %3d ms after t_ok; fence fired %s ms late, qemu %d dead %s ms after t_ok+T\n' \
				"$i" "$phase" "$(ms "$late")" "$vpid" "$(ms "$dead")"
		fi
		proc_kill "$vpid"
		[ -n "$fired" ] && unfence_healthy "$SOCK_hang" "$mark" h1
	done
	say
	say "  fences: $ok of $HANGS hangs killed their qemu, $missed missed"
	row_head
	row "fence fired after t_ok+T (late_by_us)" "$late_f"
	row "qemu dead after t_ok+T (dead_after_us)" "$dead_f"
	end_daemon hang
}

# --- fence-peer to refusal -------------------------------------------------

# Polls "osd blocklist ls" from a client of its own, connected before
# the clock starts: "ready" on stdout, then, to FILE, the wall µs of the
# end of the first answer that lists ADDR, that of its start, the polls.
BL_POLL='
import json, os, sys, time
import rados
conf, addr, out, secs = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
c = rados.Rados(conffile=conf)
c.connect(timeout=10)
cmd = json.dumps({"prefix": "osd blocklist ls", "format": "json"})
def listed():
    ret, buf, err = c.mon_command(cmd, b"", timeout=10)
    if ret != 0:
        raise OSError("osd blocklist ls: %d %s" % (ret, err))
    # Pacific answers two arrays back to back (addresses, then ranges).
    return ("\"addr\":\"%s\"" % addr) in buf.decode(errors="replace")
if listed():
    print("listed already", flush=True)
    sys.exit(1)
print("ready", flush=True)
end, n = time.time() + secs, 0
while time.time() < end:
    t0 = time.time()
    n += 1
    if listed():
        with open(out, "w") as f:
            f.write("%d %d %d\n" % (time.time() * 1e6, t0 * 1e6, n))
        break
    time.sleep(0.02)
c.shutdown()
'

# peer_round LABEL FORCE(0|1) SAMPLES_PREFIX: one fence-peer of host 3.
peer_round() {
	local label=$1 force=$2 pre=$3 mark3 mark2 t0 args rc t_ret ts te wrote=0 why
	local n=$peer_n bl pid ev w
	peer_n=$((peer_n + 1))
	# An image of its own: the last round's, its lock held by a killed
	# client, would be taken by breaking that lock, which blocklists
	# the client (an entry of its own, for an hour).
	cl_rbd create "$POOL/vm3_$n" --size 16M || broken "rbd create $POOL/vm3_$n"
	victim "pvm3_$n" "vm3_$n" "$T/qemu-h3-$$" h3
	local v3=$vpid
	rbd_victim_write "pvm3_$n" 0x33 0 >&2 || broken "host 3's qemu does not write"
	wait_hb "$SOCK_d3" r1 healthy 10 || broken "host 3 not healthy"
	mark3=$(last_seq "$SOCK_d3") mark2=$(last_seq "$SOCK_d2") || broken "status"
	rm -f "$T/bl.seen" "$T/peer.done"
	"$PYRADOS" -c "$BL_POLL" "$CEPH_CONF" 127.0.0.3:0/0 "$T/bl.seen" 120 >"$T/bl.out" 2>&1 &
	bl=$!
	bg+=("$bl")
	if ! wait_until 15 grep -qs . "$T/bl.out" || ! grep -q ready "$T/bl.out"; then
		broken "blocklist poller: $(cat "$T/bl.out")"
	fi
	kill -STOP "$PID_d3"
	stopped+=("$PID_d3")
	args=(peer --storage r1 --host host3 --blocklist)
	((force)) && args+=(--window 0 --force)
	t0=$(now_us)
	(
		out=$(ctl_t 120 "$SOCK_d2" "${args[@]}" 2>&1)
		rc=$?
		echo "$rc $(now_us) ${out//$'\n'/ }" >"$T/peer.done"
	) &
	pid=$!
	bg+=("$pid")
	# Host 3's qemu writes until a write fails (or 60 s pass).
	while (($(now_us) - t0 < 60000000)); do
		ts=$(now_us)
		rbd_victim_write "pvm3_$n" 0x44 0 20 >/dev/null && { wrote=$((wrote + 1)); continue; }
		te=$(now_us)
		break
	done
	wait "$pid"
	wait "$bl"
	read -r rc t_ret out <"$T/peer.done" || broken "$label: no answer from peer"
	[ "$rc" -eq 0 ] || broken "$label: iofencectl ${args[*]}: exit $rc: $out"
	kill -CONT "$PID_d3"
	stopped=()
	if [ -z "${te:-}" ]; then
		missed=$((missed + 1))
		say "  $label: MISSED: host 3's qemu still writes 60 s after the blocklist ($wrote writes)"
	else
		why=timed\ out
		grep -q 'write failed' "$T/pvm3_$n.out" && why="write failed"
		echo $((t_ret - t0)) >>"${pre}_ret"
		echo $((te - t0)) >>"${pre}_write"
		w=-
		if read -r w _ <"$T/bl.seen" 2>/dev/null; then
			echo $((w - t0)) >>"${pre}_listed"
			w=$(ms $((w - t0)))
		else
			say "  $label: the blocklist poller saw nothing: $(tr '\n' ' ' <"$T/bl.out")"
		fi
		printf '  %-8s: returned at %s ms, listed at %s ms; the write that failed (%s, after %d that did) started at %s ms, ended at %s ms\n' \
			"$label" "$(ms $((t_ret - t0)))" "$w" "$why" "$wrote" \
			"$(ms $((ts - t0)))" "$(ms $((te - t0)))"
	fi
	# Host 3, resumed, hears its heartbeat refused and fences itself.
	ev=$(wait_event "$SOCK_d3" "$mark3" r1 FENCE_COMPLETED 30000) ||
		say "  $label: host 3 did not fence itself within 30 s: $(hb_of "$SOCK_d3" r1)"
	wait_until 15 eval "! proc_alive $v3" ||
		say "  $label: host 3's qemu $v3 survived its host's fence"
	proc_kill "$v3"
	out=$(ctl_t 60 "$SOCK_d2" peer --storage r1 --host host3 --unblocklist 2>&1) ||
		broken "unblocklist: $out"
	wait_until 30 eval "! cl_ceph osd blocklist ls 2>/dev/null | grep -q '^127.0.0.3:0/0 '" ||
		broken "127.0.0.3 still blocklisted"
	unfence_healthy "$SOCK_d3" "$mark3" r1
	# Host 2 never noticed.
	ev=$(events_after "$SOCK_d2" "$mark2" r1)
	w=$(jq 'map(select(.event == "FENCE_FIRED")) | length' <<<"$ev")
	if [ "${w:-0}" -gt 0 ] || ! proc_alive "$V2"; then
		false_fences=$((false_fences + ${w:-1}))
		say "  $label: FALSE FENCE on host 2: $(jq -c 'map(select(.event != "ARMED"))' <<<"$ev")"
	fi
}

part_peer() {
	local i spec p=$T/peer
	peer_n=1
	if ! host_up h2 127.0.0.2 || ! host_up h3 127.0.0.3; then
		broken "two simulated hosts (127.0.0.2, 127.0.0.3)"
	fi
	bench_daemon d2 h2
	bench_daemon d3 h3
	spec="uuid=r1,type=rbd,pool=$POOL,conf=$CEPH_CONF,interval=1s,attempts=3"
	arm_storages "$SOCK_d2" host2 "$spec,victims=qemu-h2-$$" >&2 ||
		broken "setup of r1 on host 2"
	arm_storages "$SOCK_d3" host3 "$spec,victims=qemu-h3-$$" >&2 ||
		broken "setup of r1 on host 3"
	victim pvm2 vm2 "$T/qemu-h2-$$" h2
	V2=$vpid
	say
	say "== fence-peer to refusal: host 2 blocklists host 3 (daemon SIGSTOPped, its qemu writing); interval 1 s, attempts 3; from the command's start"
	for ((i = 1; i <= ROUNDS_PEER; i++)); do
		peer_round "forced $i" 1 "$p"
	done
	peer_round "window" 0 "$T/peerw"
	say
	say "  --blocklist --force --window 0, $ROUNDS_PEER rounds:"
	row_head
	row "iofencectl peer returns" "${p}_ret"
	row "first failing write of host 3's qemu" "${p}_write"
	row "entry listed (osd blocklist ls, 20 ms polls)" "${p}_listed"
	say "  --blocklist with its window (the storage's timeout, 3 s), 1 round:"
	row "iofencectl peer returns" "$T/peerw_ret"
	row "first failing write of host 3's qemu" "$T/peerw_write"
	row "entry listed" "$T/peerw_listed"
	say "  (a write is a qemu-io write and flush through the monitor, two python3 round trips: it resolves to that)"
	end_daemon d2
	end_daemon d3
}

((ROUNDS > 0)) && part_setup
((HB_SECONDS > 0)) && part_latency
((HANGS > 0)) && part_hang
if ((ROUNDS_PEER > 0)); then
	if [ -n "$hosts_why" ]; then
		say
		say "== fence-peer: SKIP: $hosts_why (no simulated hosts)"
	else
		part_peer
	fi
fi

say
rc=0
if [ "$missed" -gt 0 ]; then
	say "rbd bench: $missed missed fences"
	rc=1
fi
if [ "$false_fences" -gt 0 ]; then
	say "rbd bench: $false_fences false fences"
	rc=1
fi
[ "$rc" -eq 0 ] && say "rbd bench: no missed fence, no false fence"
exit "$rc"
