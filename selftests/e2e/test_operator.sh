#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The operator's view, without --json (issue 10):
#   1 status and storage: the live time to fence, the last good heartbeat
#     as wall-clock time, the watchdog and kernel fence, and the processes
#     a fence would kill now (pid, exe, VM uuid): a dummy VM on the
#     storage is listed, bystanders are not (one on the storage but not
#     matched by the victim filter, one matched but on another device)
#   2 peer: words and exit status, 0 alive, 1 dead, 2 unknown, 3 no
#     answer; a dead peer's VMs may be restarted after its record's fence
#     deadline, a wall-clock time; a record without a deadline gives none
#   3 metrics: OpenMetrics text, every family there with sane values
#   4 the census that lists the would-be victims, beside a victim in D
#     state holding its mmap lock on a dead faultfs storage: the census
#     gives up on it (counted unreadable) and keeps up, query-status
#     answers at once, and says so; a census held up by hung heartbeats
#     is called stale
# The storages of 1 and 2 are on a tmpfs of their own: the dummy VMs'
# binaries, the bystander's file and the test's cwd are on other devices.
. "$(dirname "$0")/isolation.sh" python3 date
MMAP_HOLD=${MMAP_HOLD:-$OUT/mmap_hold}

ctl() { ctl_sock "$@"; }
# A storage's heartbeat object, or the whole status.
hbj() { ctl "$1" --json status | jq -c --arg u "$2" '.storages[] | select(.uuid == $u) | .heartbeat'; }
# epoch_ms TEXT: an ISO time as iofencectl prints it, in ms since the epoch.
epoch_ms() {
	local s
	s=$(date -d "$1" +%s%3N 2>/dev/null) || return 1
	echo "$s"
}
near_now() { # ms bound_ms
	local d=$(($(now_ms) - $1))
	[ "${d#-}" -le "$2" ]
}

ST=$T/st
mkdir -p "$ST"
if ! mount -t tmpfs -o size=16m iofence-test "$ST"; then
	not_ok "a tmpfs of the test's own"
	exit 1
fi
on_exit "umount -l '$ST'"

# --- 1. status and storage ---------------------------------------------------

VMUUID=0e3c8d0a-5b7e-4e51-9a1f-3d2c1b0a9f8e
sc1() {
	local S V B1 B2 out line left left2 t hb hb2
	mkdir -p "$ST/s1" "$T/vmb"
	truncate -s 1M "$ST/s1/vm.img" "$ST/s1/other.img" "$T/elsewhere.img"
	# A dummy VM that names its VM uuid on its command line, as qemu does.
	cp /bin/bash "$T/vmb/$VM"
	cp /bin/sleep "$T/vmb/notavm-$$"
	daemon_on op1 op1 --no-bpf || { not_ok "1: daemon starts"; return; }
	S=$SOCK_op1
	proc_spawn V 'cd / && exec "$T/vmb/$VM" -c "while :; do sleep 1; done" qemu -name g1 -uuid '$VMUUID' 3<>"$ST/s1/vm.img"'
	# On the storage, but the victim filter does not match it.
	proc_spawn B1 'cd / && exec "$T/vmb/notavm-$$" 1000 3<>"$ST/s1/other.img"'
	# Matched by the filter, but its file is on another device.
	proc_spawn B2 'cd / && exec "$QSLEEP" 1000 3<>"$T/elsewhere.img"'
	arm_storages "$S" h1 "uuid=s1,type=file,target=$ST/s1,interval_ms=2000,timeout_ms=20000,victims=$VM" ||
		{ not_ok "1: storage armed"; return; }
	check "1: heartbeats written" wait_until 10 hb_wrote "$S" s1 1
	check "1: the census lists the dummy VM (victims_now)" wait_until 15 eval \
		"hbj '$S' s1 | jq -e '.victims_now | length > 0' >/dev/null"
	hb=$(hbj "$S" s1)
	echo "# 1: heartbeat: $(jq -c '{fence_in_ms, since_ok_ms, last_ok_at, fences, victims_now, victims_now_more, victims_now_age_ms}' <<<"$hb")"
	check "1: victims_now: the dummy VM alone, with its exe and VM uuid" \
		jqe --argjson p "$V" --arg e "$VM" --arg u "$VMUUID" \
		'.victims_now == [{pid: $p, exe: $e, vm_uuid: $u}] and .victims_now_more == 0 and .victims_now_age_ms >= 0 and .victims_now_age_ms < 15000' <<<"$hb"
	check "1: fence_in_ms + since_ok_ms is the timeout; fences 0" \
		jqe '.fence_in_ms + .since_ok_ms == 20000 and .fence_in_ms > 0 and .fences == 0' <<<"$hb"
	check "1: last_ok_at is a wall-clock time within 3 s of ours, less since_ok_ms" \
		jqe --argjson now "$(now_ms)" '(.last_ok_at.seconds * 1000 + (.last_ok_at.microseconds / 1000 | floor) + .since_ok_ms - $now) | fabs < 3000' <<<"$hb"
	# The time to fence goes down between two heartbeats.
	for _ in 1 2 3; do
		hb=$(hbj "$S" s1)
		sleep 0.4
		hb2=$(hbj "$S" s1)
		[ "$(jq .seq <<<"$hb")" = "$(jq .seq <<<"$hb2")" ] && break
	done
	check "1: fence_in_ms decreases between heartbeats ($(jq .fence_in_ms <<<"$hb") -> $(jq .fence_in_ms <<<"$hb2"))" \
		[ "$(jq .fence_in_ms <<<"$hb2")" -lt "$(jq .fence_in_ms <<<"$hb")" ]

	out=$(ctl "$S" status)
	echo "$out" | sed 's/^/# status: /'
	check "1: status shows the watchdog's state (none here)" grep -q '^watchdog: none' <<<"$out"
	check "1: status shows the kernel fence's state (off with --no-bpf)" grep -q '^kernel fence: off' <<<"$out"
	line=$(grep -E '^ +fence in ' <<<"$out")
	check "1: a line under the storage: fence in, last ok, would kill 1 now" \
		grep -Eq '^ +fence in [0-9]+\.[0-9]s, last ok [0-9T:.+-]+, would kill 1 now \(as of [0-9.]+m?s ago\)$' <<<"$line"
	left=$(sed -E 's/^ +fence in ([0-9]+)\.([0-9])s.*/\1\2/' <<<"$line")
	check "1: fence in ${left}00 ms: within (0, 20 s]" between "${left:-0}" 1 200
	t=$(sed -E 's/.*last ok ([^,]+),.*/\1/' <<<"$line")
	t=$(epoch_ms "$t")
	check "1: last ok is wall-clock time, within interval + 3 s of date ($t)" near_now "${t:-0}" 5000
	# Again, within one heartbeat interval: the figure is live.
	for _ in 1 2 3; do
		line=$(ctl "$S" status | grep -E '^ +fence in ')
		sleep 0.5
		left2=$(ctl "$S" status | grep -E '^ +fence in ' | sed -E 's/^ +fence in ([0-9]+)\.([0-9])s.*/\1\2/')
		left=$(sed -E 's/^ +fence in ([0-9]+)\.([0-9])s.*/\1\2/' <<<"$line")
		[ "$left2" -lt "$left" ] && break
	done
	check "1: status's fence in goes down (${left}00 -> ${left2}00 ms)" [ "$left2" -lt "$left" ]

	out=$(ctl "$S" storage s1)
	echo "$out" | sed 's/^/# storage: /'
	check "1: storage: the outlook line" grep -Eq '^outlook +fence in [0-9.]+s, last ok .*, would kill 1 now' <<<"$out"
	check "1: storage: would kill the dummy VM, by pid, exe and VM uuid" \
		grep -qx "would kill $V $VM VM $VMUUID" <<<"$out"
	check "1: storage: no bystander listed ($B1 not matched, $B2 elsewhere)" \
		eval "! grep -Eq '^would kill ($B1|$B2) ' <<<\"\$out\""
	check "1: the bystanders and the VM still run" all_alive "$V" "$B1" "$B2"
	proc_kill "$V"
	proc_kill "$B1"
	proc_kill "$B2"
	daemon_stop op1 10 >/dev/null
}

# --- 2. peer ---------------------------------------------------------------

sc2() {
	local A B C F CAT out rc t t_kill t_after tl spec
	mkdir -p "$ST/sh"
	F=$T/wd.fifo
	mkfifo "$F"
	cat "$F" >/dev/null &
	CAT=$!
	proc_track "$CAT"
	daemon_on pa pa --no-bpf --watchdog "$F" --watchdog-timeout 2 || { not_ok "2: daemon A starts"; return; }
	daemon_on pb pb --no-bpf || { not_ok "2: daemon B starts"; return; }
	daemon_on pc pc --no-bpf || { not_ok "2: daemon C starts"; return; }
	A=$SOCK_pa B=$SOCK_pb C=$SOCK_pc
	spec="uuid=sh,type=file,target=$ST/sh,interval_ms=200,timeout_ms=1000,kill_grace_ms=500,victims=iofence-test-nobody"
	arm_storages "$A" hostA "$spec,strategy=force" || { not_ok "2: A armed"; return; }
	arm_storages "$B" hostB "$spec,strategy=permissive" || { not_ok "2: B armed"; return; }
	arm_storages "$C" hostC "$spec,strategy=permissive" || { not_ok "2: C armed"; return; }
	tl=$(ctl "$A" --json storage sh | jq -c .timeline)
	check "2: A publishes a fence deadline of 1000 + 500 + 2000 ms ($tl)" jqe '.fence_deadline_ms == 3500' <<<"$tl"
	wait_until 5 hb_wrote "$A" sh 3
	wait_until 5 hb_wrote "$C" sh 3

	out=$(ctl "$B" peer --storage sh --host hostA --window 1.5s)
	rc=$?
	echo "$out" | sed 's/^/# peer alive: /'
	check "2: A running: peer exits 0 ($rc)" [ "$rc" -eq 0 ]
	check "2: ... and says alive: do not restart its VMs" grep -qx 'alive: do not restart its VMs' <<<"$out"
	out=$(ctl "$B" peer --storage sh --host nohost --window 200ms)
	rc=$?
	echo "$out" | sed 's/^/# peer unknown: /'
	check "2: a host with no record: peer exits 2 ($rc)" [ "$rc" -eq 2 ]
	check "2: ... and says unknown: do not restart" grep -q '^unknown: do not restart its VMs' <<<"$out"

	t_kill=$(now_ms)
	kill -KILL "$PID_pa" "$PID_pc"
	# Reaped here, where the shell's "Killed" has somewhere to go.
	wait "$PID_pa" "$PID_pc" 2>/dev/null
	wait_until 5 daemon_gone pa
	wait_until 5 daemon_gone pc
	out=$(ctl "$B" peer --storage sh --host hostA --window 1.5s)
	rc=$?
	t_after=$(now_ms)
	echo "$out" | sed 's/^/# peer dead: /'
	check "2: A killed (SIGKILL): peer exits 1 ($rc)" [ "$rc" -eq 1 ]
	t=$(sed -nE 's/^dead; its VMs may be restarted (after|now: the deadline passed at) ([^ ]+) .*/\2/p' <<<"$out")
	check "2: ... and says when its VMs may be restarted ($t)" [ -n "$t" ]
	t=$(epoch_ms "$t")
	# The record's last write began before the kill and before our first
	# read; the deadline counts from the later of its write and that read.
	check "2: ... no earlier than its last write + 3.5 s, no later than the answer + 3.5 s ($((t - t_kill)) ms after the kill)" \
		between "${t:-0}" $((t_kill - 1000 + 3500)) $((t_after + 3500 + 1000))
	check "2: ... no earlier than the first read + 3.5 s (the window began at least 1.5 s before the answer)" \
		[ "${t:-0}" -ge $((t_after - 1500 - 500 + 3500)) ]
	out=$(ctl "$B" peer --storage sh --host hostC --window 1.5s)
	rc=$?
	echo "$out" | sed 's/^/# peer dead, no deadline: /'
	check "2: C killed, permissive: peer exits 1 ($rc)" [ "$rc" -eq 1 ]
	check "2: ... and says no safe time can be derived from its record" \
		grep -q '^dead; its record publishes no fence deadline .*no safe time' <<<"$out"
	ctl "$T/nobody.sock" peer --storage sh --host hostA >/dev/null 2>&1
	rc=$?
	check "2: no daemon: peer exits 3 ($rc), not a liveness" [ "$rc" -eq 3 ]
	ctl "$B" peer --storage sh >/dev/null 2>&1
	rc=$?
	check "2: a usage error: peer exits 3 ($rc)" [ "$rc" -eq 3 ]
	ctl "$B" peer --storage nosuch --host hostA --window 0 >/dev/null 2>&1
	rc=$?
	check "2: an error reply (no such storage): peer exits 3 ($rc)" [ "$rc" -eq 3 ]
	daemon_stop pb 10 >/dev/null
	proc_kill "$CAT"
}

# --- 3. metrics --------------------------------------------------------------

# The line grammar of the OpenMetrics text format (the parts used here):
# families with TYPE (gauge or counter), UNIT and HELP before their
# samples, all samples of a family together, counters' samples in _total,
# units as a suffix of the name, label values quoted and escaped, numbers,
# and "# EOF" last. Prints what is wrong, one per line; nothing: none.
cat >"$T/om_check.py" <<'EOF'
import re, sys
text = sys.stdin.read()
bad = []
if not text.endswith("# EOF\n"):
    bad.append("does not end with '# EOF'")
lines = text.split("\n")[:-1]
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
sample = re.compile(r"^(%s)(\{%s(?:,%s)*\})? (-?[0-9]+(?:\.[0-9]+)?(?:e[+-]?[0-9]+)?|[+-]Inf|NaN)$" % (name, label, label))
meta = re.compile(r"^# (TYPE|UNIT|HELP) (%s) (.*)$" % name)
types, seen_done, cur = {}, set(), None
for i, l in enumerate(lines[:-1], 1):
    m = meta.match(l)
    if m:
        kind, fam, rest = m.groups()
        if fam != cur:
            if fam in seen_done or fam in types:
                bad.append("line %d: family %s again" % (i, fam))
            if cur: seen_done.add(cur)
            cur = fam
        if kind == "TYPE":
            if rest not in ("gauge", "counter"):
                bad.append("line %d: type %s" % (i, rest))
            types[fam] = rest
        if kind == "UNIT" and not fam.endswith("_" + rest):
            bad.append("line %d: unit %s is not the suffix of %s" % (i, rest, fam))
        continue
    m = sample.match(l)
    if not m:
        bad.append("line %d: not OpenMetrics: %r" % (i, l))
        continue
    n = m.group(1)
    want = cur + "_total" if types.get(cur) == "counter" else cur
    if n != want:
        bad.append("line %d: sample %s outside its family (%s)" % (i, n, cur))
    if types.get(cur) == "counter" and float(m.group(3)) < 0:
        bad.append("line %d: negative counter" % i)
print("\n".join(bad))
EOF

# mval TEXT NAME [LABELS]: the value of a sample (LABELS: a regex of them).
mval() {
	awk -v n="$2" -v l="${3:-}" '
		{ split($0, a, " "); s = a[1]; v = a[2] }
		s == n || (index(s, n "{") == 1 && (l == "" || s ~ l)) { print v; exit }' <<<"$1"
}
# ge A B: A >= B, as decimals.
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "" && a + 0 >= b + 0) }'; }

sc3() {
	local S out bad f v t
	mkdir -p "$ST/m1"
	daemon_on om om --no-bpf || { not_ok "3: daemon starts"; return; }
	S=$SOCK_om
	proc_spawn V 'cd / && exec "$QSLEEP" 1000 3<>"$ST/m1/vm.img"'
	arm_storages "$S" hm "uuid=m1,type=file,target=$ST/m1,interval_ms=500,timeout_ms=10000,victims=$VM" ||
		{ not_ok "3: storage armed"; return; }
	wait_until 10 hb_wrote "$S" m1 2
	wait_until 15 eval "hbj '$S' m1 | jq -e '.victims_now | length > 0' >/dev/null"
	out=$(ctl "$S" metrics)
	check "3: metrics exits 0" [ $? -eq 0 ]
	echo "$out" | grep -v '^#' | sed 's/^/# metrics: /'
	bad=$(python3 "$T/om_check.py" <<<"$out")
	check "3: the OpenMetrics line grammar holds${bad:+ ($(head -3 <<<"$bad" | tr '\n' ';'))}" [ -z "$bad" ]
	for f in iofence_storage_state:gauge iofence_heartbeat_latency_seconds:gauge \
		iofence_heartbeat_writes:counter iofence_fence_in_seconds:gauge \
		iofence_fences:counter iofence_victims_now:gauge iofence_heartbeat_last_ok_timestamp_seconds:gauge \
		iofence_lag_recent_seconds:gauge iofence_lag_worst_seconds:gauge iofence_connections:gauge \
		iofence_events:counter iofence_requests:counter iofence_uptime_seconds:gauge; do
		check "3: family ${f%%:*} (${f#*:})" grep -qx "# TYPE ${f%%:*} ${f#*:}" <<<"$out"
	done
	check "3: m1 is healthy (1), not late or fenced (0)" eval \
		"[ \"$(mval "$out" iofence_storage_state 'state="healthy"')\" = 1 ] &&
		 [ \"$(mval "$out" iofence_storage_state 'state="late"')\" = 0 ] &&
		 [ \"$(mval "$out" iofence_storage_state 'state="fenced"')\" = 0 ]"
	check "3: samples are labelled storage and host" grep -q '^iofence_fences_total{storage="m1",host="hm"} 0$' <<<"$out"
	v=$(mval "$out" iofence_heartbeat_writes_total 'result="ok"')
	check "3: writes ok counted ($v >= 2)" ge "$v" 2
	check "3: writes failed 0" [ "$(mval "$out" iofence_heartbeat_writes_total 'result="failed"')" = 0 ]
	v=$(mval "$out" iofence_fence_in_seconds)
	check "3: time to fence in (9, 10] s ($v)" eval "ge $v 9 && ! ge $v 10.001"
	v=$(mval "$out" iofence_heartbeat_latency_seconds)
	check "3: heartbeat latency in [0, 1] s ($v)" eval "ge $v 0 && ! ge $v 1"
	check "3: one victim now" [ "$(mval "$out" iofence_victims_now)" = 1 ]
	t=$(mval "$out" iofence_heartbeat_last_ok_timestamp_seconds)
	check "3: last ok timestamp within 3 s of now ($t)" near_now "$(awk -v t="$t" 'BEGIN { printf "%.0f", t * 1000 }')" 3000
	check "3: one connection (this one)" [ "$(mval "$out" iofence_connections)" = 1 ]
	v=$(ctl "$S" --json status | jq .last_seq)
	check "3: events total is the journal's last_seq ($v)" ge "$(mval "$out" iofence_events_total)" "$v"
	check "3: lag of both sides" eval "mval \"\$out\" iofence_lag_recent_seconds 'side=\"core\"' | grep -q . &&
		mval \"\$out\" iofence_lag_recent_seconds 'side=\"control\"' | grep -q ."
	proc_kill "$V"
	daemon_stop om 10 >/dev/null
}

# --- 4. the census, beside a victim in D state -------------------------------

sc4() {
	local M S H out rc t0 slow t_hang
	if [ ! -x "$MMAP_HOLD" ]; then
		not_ok "4: helper $MMAP_HOLD (make tests)"
		return
	fi
	mkdir -p "$T/vmh" "$OK/ok4"
	cp "$MMAP_HOLD" "$T/vmh/$VM"
	ff_mount M r4 || { not_ok "4: faultfs mounts"; return; }
	mkdir -p "$M/s4"
	head -c 65536 /dev/urandom >"$M.backing/s4/mem.img"
	daemon_on d4 d4 --no-bpf || { not_ok "4: daemon starts"; return; }
	S=$SOCK_d4
	arm_storages "$S" h4 "uuid=ok,type=file,target=$OK/ok4,$SPEC" \
		"uuid=s4,type=file,target=$M/s4,$SPEC" || { not_ok "4: storages armed"; return; }
	proc_spawn H 'cd / && exec "$T/vmh/$VM" "$M/s4/mem.img" >"$T/hold.out"'
	check "4: the holder maps its file" wait_until 3 grep -qx mapped "$T/hold.out"
	check "4: the census lists the holder" wait_until 15 eval \
		"hbj '$S' s4 | jq -e --argjson p $H '[.victims_now[]?.pid] | index(\$p) != null' >/dev/null"
	qs_watch_start "$S" ok "$T/w4"
	faultfs_set "$M" hang s4/mem.img
	kill -USR1 "$H"
	check "4: the holder faults in its page, and waits" wait_until 3 grep -qx holding "$T/hold.out"
	check "4: its mmap lock is taken: a reader of its cmdline blocks" \
		eval "wait_until 3 eval '[ \"\$(pid_state $H)\" = D ]' && ! timeout 1 cat /proc/$H/cmdline >/dev/null 2>&1"
	t_hang=$(mono_ms)
	# The next census cannot read the holder's maps (its mmap lock is
	# held): it gives up on it after 200 ms, counts it, and goes on; the
	# censuses after it keep coming (one starts at a heartbeat, every 5 s).
	check "4: a census counts the holder unreadable (victims_now_scan.skipped, last_pid $H), heartbeats go on" \
		wait_until 20 eval "hbj '$S' s4 | jq -e --argjson p $H \
			'.victims_now_scan.skipped >= 1 and .victims_now_scan.last_pid == \$p and .state == \"healthy\"' >/dev/null"
	while [ $(($(mono_ms) - t_hang)) -lt 9000 ]; do sleep 0.5; done
	check "4: ... and the censuses keep up: 9 s after the hang the last is < 7 s old, and counts it too" \
		wait_until 5 eval "hbj '$S' s4 | jq -e --argjson p $H \
			'.victims_now_age_ms < 7000 and .victims_now_scan.skipped >= 1 and .victims_now_scan.last_pid == \$p' >/dev/null"
	ff_dead "$M" '*'
	slow=
	for _ in 1 2 3 4 5; do
		t0=$(mono_ms)
		ctl_t 5 "$S" --json status >/dev/null || slow="$slow failed"
		[ $(($(mono_ms) - t0)) -lt 2000 ] || slow="$slow $(($(mono_ms) - t0))ms"
	done
	check "4: query-status answers within 2 s meanwhile${slow:+ (not:$slow)}" [ -z "$slow" ]
	check "4: the dead storage is fenced" wait_until 10 eval \
		"hbj '$S' s4 | jq -e '.state == \"fenced\" and .fence_in_ms == null' >/dev/null"
	wait_until 15 eval "hbj '$S' s4 | jq -e '.victims_now_age_ms > 15000' >/dev/null"
	out=$(ctl_t 5 "$S" status)
	rc=$?
	echo "$out" | sed 's/^/# status: /'
	# Hung heartbeats hold up the census (it starts at one): stale.
	check "4: status answers ($rc), s4 FENCED, the holder unreadable, the census called stale" \
		eval "[ $rc -eq 0 ] && grep -Eq '^ +FENCED, last ok .*, would kill none now, 1 unreadable \(as of [0-9.m]+s ago: stale\)' <<<\"\$out\""
	out=$(ctl_t 5 "$S" storage s4)
	rc=$?
	echo "$out" | sed 's/^/# storage: /'
	check "4: storage s4 answers ($rc), the holder unreadable" \
		eval "[ $rc -eq 0 ] && grep -q 'would kill none now, 1 unreadable' <<<\"\$out\""
	qs_watch_stop "$T/w4"
	qs_watch_check "4: a victim in D state the census cannot read" "$T/w4" "$IV" "$LATE"
	hangs_release
	check "4: released: the holder dies" eval "proc_kill $H; ! proc_alive $H"
	daemon_stop d4 15
	rc=$?
	check "4: SIGTERM once released: clean exit ($rc)" [ "$rc" -eq 0 ]
	faultfs_stop "$M"
}

for n in ${OP_ONLY:-1 2 3 4}; do
	s0=$(now_ms)
	"sc$n"
	echo "# sc$n: $(ms_since "$s0") ms"
done
stop_everything
