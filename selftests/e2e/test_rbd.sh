#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: ceph (test clusters and simulated hosts share addresses 127.0.0.2-3)
#
# rbd storages end to end, against a real single-node cluster and real
# qemu victims that reach their disks through librbd:
#   1 healthy: setup arms in bounded time; the object iofence.<host>
#     holds a record whose seq grows, an address block naming 127.0.0.1,
#     and the uuids of the VMs with a disk in the pool (-drive and
#     -blockdev); the census names them; the bystanders never
#   2 the OSD SIGSTOPped: late, then fenced inside the contract; victims
#     dead, bystanders alive, a file storage in the same daemon never
#     late; SIGCONT restores it, fenced until unfence, healthy after
#   5 teardown, update and SIGTERM while the OSD is stopped: each in its
#     bound, query-status answered meanwhile
#   3 the OSD killed (SIGKILL; memstore comes back empty: the cluster is
#     made anew afterwards): late, fenced, victims dead
#   4 the monitor killed: the heartbeat's monitor round trip fails; late,
#     fenced, victims dead
# The contract, from t_ok (the start of the last good heartbeat): late at
# t_ok + I + D, fenced at t_ok + T. Checked with slack, never for speed.
# Bystanders: a qemu with a disk in another pool, a "qemu" without any
# disk (a renamed sleep), and a process that names an image of the pool
# but is no qemu (python3): nothing here may kill them.
# shellcheck disable=SC2016 # jq programs in single quotes
# shellcheck source-path=SCRIPTDIR source=../lib.sh
. "$(dirname "$0")/../lib.sh"
need_root
# shellcheck source=../ceph.sh
. "$(dirname "$0")/../ceph.sh"
ceph_need qemu
command -v jq >/dev/null || { skip "jq is missing"; exit 0; }

T=$(readlink -f "$T")
mkdir -p "$T/bin" "$T/vm"
if ! cp "$IOFENCED" "$T/bin/iofenced" || ! cp "$IOFENCECTL" "$T/bin/iofencectl"; then
	not_ok "copy $IOFENCED and $IOFENCECTL (make all)"
	exit 1
fi
IOFENCED=$T/bin/iofenced
IOFENCECTL=$T/bin/iofencectl

# A stopped mon or OSD first, whatever else the exit does: a stopped
# daemon takes no SIGTERM, and every client of the cluster waits on it.
cont_cluster() {
	local p
	for p in "${CEPH_OSD_PID:-}" "${CEPH_MON_PID:-}"; do
		[ -n "$p" ] && _cc_ours "$CEPH_DIR" "$p" && kill -CONT "$p" 2>/dev/null
	done
	return 0
}
trap 'cont_cluster; finish; exit $?' EXIT

RUN=$$-$RANDOM
POOL=iofence-rbd-$RUN
OTHER=iofence-rbd-other-$RUN
# The contract of the rbd storages: I = D = 1 s, T = 4 s, G = 2 s.
IV=1000 IOT=1000 TMO=4000 GRACE=2000
RSPEC="interval=${IV},timeout=${TMO},kill_grace=${GRACE},victims=qemu-system-x86_64"
# The file storage next to them, on tmpfs, that nothing may make late.
FSPEC="interval=500ms,timeout=5s,victims=iofence-test-nobody"
SLACK=2000

uuidgen_() { cat /proc/sys/kernel/random/uuid; }

# --- the record object ---------------------------------------------------

# obj_get HOST FILE [NS]: the host's object of POOL into FILE.
obj_get() {
	rm -f "$2"
	cl_rados -p "$POOL" ${3:+-N "$3"} get "iofence.$1" "$2" >/dev/null 2>&1
}
u_at() { od -An -v --endian=little -t "u$2" -j "$3" -N "$2" "$1" | tr -d ' '; } # FILE SIZE OFF
rec_seq() { u_at "$1" 8 16; }
rec_state() { u_at "$1" 2 6; }
rec_nvms() { u_at "$1" 2 68; }
# rec_vms FILE: the VM uuids of the record, one per line, sorted.
rec_vms() {
	local n i h
	n=$(rec_nvms "$1")
	for ((i = 0; i < ${n:-0}; i++)); do
		h=$(od -An -v -tx1 -j $((200 + 16 * i)) -N 16 "$1" | tr -d ' \n')
		echo "${h:0:8}-${h:8:4}-${h:12:4}-${h:16:4}-${h:20:12}"
	done | sort
}
# rec_addrs FILE: the address block's magic, then its text.
rec_addrs() {
	local len
	len=$(u_at "$1" 2 4102)
	printf '%s %s\n' "$(dd if="$1" bs=1 skip=4096 count=4 2>/dev/null)" \
		"$(dd if="$1" bs=1 skip=4108 count="${len:-0}" 2>/dev/null)"
}
# seq_of HOST: the seq of its object's record now (empty: none).
seq_of() { obj_get "$1" "$T/seq.obj" && rec_seq "$T/seq.obj"; }
seq_above() { local s; s=$(seq_of "$1"); [ -n "$s" ] && [ "$s" -gt "$2" ]; } # HOST SEQ
# vms_are HOST "UUID..." : the record names exactly those VMs.
vms_are() {
	obj_get "$1" "$T/vms.obj" || return 1
	[ "$(rec_vms "$T/vms.obj" | tr '\n' ' ')" = "$(tr ' ' '\n' <<<"$2" | grep . | sort | tr '\n' ' ')" ]
}

# --- the daemon ----------------------------------------------------------

# arm SOCK HOST SPEC...: setup; succeeds when every storage is armed. Its
# time in ms goes to ARM_MS.
arm() {
	local sock=$1 host=$2 out s args=() t0
	shift 2
	for s in "$@"; do args+=(--storage "$s"); done
	t0=$(mono_ms)
	out=$(ctl_t 40 "$sock" --json setup --host "$host" --no-status-check "${args[@]}" 2>&1)
	ARM_MS=$(($(mono_ms) - t0))
	if [ "$(jq -r '[.storages[].result] | unique | join(",")' <<<"$out" 2>/dev/null)" != armed ]; then
		echo "# setup failed after $ARM_MS ms: $out"
		return 1
	fi
}
# sto SOCK UUID: iofencectl storage -j.
sto() { ctl_t 5 "$1" --json storage "$2"; }
hb_state() { sto "$1" "$2" | jq -r '.heartbeat.state'; }
hb_state_is() { [ "$(hb_state "$1" "$2")" = "$3" ]; }
# census SOCK UUID: "pid uuid" of each victim the census names, sorted.
census() { sto "$1" "$2" | jq -r '.heartbeat.victims_now[]? | "\(.pid) \(.vm_uuid)"' | sort; }
census_has() { # SOCK UUID "PID UUID"...
	local c l
	c=$(census "$1" "$2")
	shift 2
	for l in "$@"; do grep -qx "$l" <<<"$c" || return 1; done
}
j_has_ev() { j_has "$@"; } # SOCK EVENT STORAGE
show_journal() { # SOCK STORAGE
	journal_of "$1" | jq -c --arg s "$2" '.[] | select(.data.storage == $s) |
		[.seq, .timestamp.seconds, .event, .data.since_ok_ms, .data.reason // .data.error // null]' |
		sed 's/^/#   /'
}
show_log() { echo "# log of $1:"; grep -v ' event ' "$T/$1.log" | tail -25 | sed 's/^/#   /'; }
pid_of() { local v="PID_$1"; echo "${!v}"; }
log_tail() { echo "# the end of $1's log:"; tail -n 30 "$T/$1.log" | cut -c1-400 | sed 's/^/#   /'; }

# --- victims and bystanders ------------------------------------------------

# victims2 LABEL: two qemus with a disk in POOL, -drive and -blockdev;
# sets VA VB (pids) and UA UB (uuids).
victims2() {
	local a=$1a b=$1b v
	if ! cl_rbd create "$POOL/$a" --size 16M || ! cl_rbd create "$POOL/$b" --size 16M; then
		not_ok "$1: images $a and $b"
		return 1
	fi
	UA=$(uuidgen_) UB=$(uuidgen_)
	rbd_victim_start "$a" "$POOL" "$a" "$UA" || { not_ok "$1: qemu $a (-drive) starts"; return 1; }
	RBD_VICTIM_BLOCKDEV=1 rbd_victim_start "$b" "$POOL" "$b" "$UB" ||
		{ not_ok "$1: qemu $b (-blockdev) starts"; return 1; }
	v="RBDV_PID_$a" VA=${!v}
	v="RBDV_PID_$b" VB=${!v}
}
bystanders_alive() { all_alive "$BY_OTHER" "$BY_SLEEP" "$BY_PY"; }
bystanders_check() { # LABEL
	local p left=
	for p in "$BY_OTHER" "$BY_SLEEP" "$BY_PY"; do proc_alive "$p" || left+=" $p"; done
	check "$1: the bystanders live (qemu in $OTHER, disk-less \"qemu\", python3 naming $POOL)${left:+ (dead:$left)}" \
		[ -z "$left" ]
}

# --- the contract of a broken storage ---------------------------------------

# contract_check LABEL SOCK STORAGE T_BREAK VICTIM...: HEARTBEAT_LATE,
# then FENCE_FIRED, each in its place counted from t_ok (which the
# events give: their time less since_ok_ms, the last good start, and
# that is at most an interval and a write before the break); the
# victims killed by t_ok + T + slack. Sets LATE_REL, FIRE_REL (ms after
# the contract points), FIRE_AFTER_BREAK.
contract_check() {
	local l=$1 s=$2 u=$3 tb=$4 j late fired t_late t_fire ok_l ok_f
	shift 4
	if ! wait_until $(((TMO + SLACK + 4000) / 1000)) j_has_ev "$s" FENCE_FIRED "$u"; then
		not_ok "$l: FENCE_FIRED within T + $((SLACK + 4000)) ms of the break"
		show_journal "$s" "$u"
		return 1
	fi
	j=$(journal_of "$s")
	late=$(j_first "$j" HEARTBEAT_LATE "$u")
	fired=$(j_first "$j" FENCE_FIRED "$u")
	if [ -z "$late" ]; then
		not_ok "$l: HEARTBEAT_LATE before the fence"
		return 1
	fi
	t_late=$(j_ms "$late") t_fire=$(j_ms "$fired")
	ok_l=$((t_late - $(jq .data.since_ok_ms <<<"$late")))
	ok_f=$((t_fire - $(jq .data.since_ok_ms <<<"$fired")))
	echo "# $l: broke at 0; t_ok $((ok_l - tb)) ms (late) / $((ok_f - tb)) ms (fire), HEARTBEAT_LATE at $((t_late - tb)) ms, FENCE_FIRED at $((t_fire - tb)) ms"
	echo "# $l: LATE: $(jq -c .data <<<"$late")"
	echo "# $l: FIRED: $(jq -c '.data | del(.scan)' <<<"$fired")"
	check "$l: HEARTBEAT_LATE journalled before FENCE_FIRED" \
		[ "$(jq .seq <<<"$late")" -lt "$(jq .seq <<<"$fired")" ]
	check "$l: the last good heartbeat started before the break, at most I + 1 s earlier ($((ok_l - tb)) ms)" \
		between "$ok_l" $((tb - IV - 1000)) $((tb + 100))
	# Each t_ok is an event's journal stamp less its since_ok_ms: the
	# stamp waits for the control thread (40 ms once, beside another
	# test). Another heartbeat's t_ok would be I away: I / 4 tells them apart.
	check "$l: both events count from the same t_ok ($ok_l, $ok_f)" between $((ok_f - ok_l)) $((-IV / 4)) $((IV / 4))
	LATE_REL=$((t_late - ok_l - IV - IOT))
	FIRE_REL=$((t_fire - ok_l - TMO))
	FIRE_AFTER_BREAK=$((t_fire - tb))
	check "$l: HEARTBEAT_LATE at t_ok + I + D $(printf '%+d' $LATE_REL) ms (want -100 .. +$SLACK)" \
		between "$LATE_REL" -100 "$SLACK"
	check "$l: FENCE_FIRED at t_ok + T $(printf '%+d' $FIRE_REL) ms (want -100 .. +$SLACK)" \
		between "$FIRE_REL" -100 "$SLACK"
	check "$l: the fence's reason says no heartbeat succeeded: $(jq -r .data.reason <<<"$fired")" \
		grep -q 'no heartbeat succeeded' <<<"$(jq -r .data.reason <<<"$fired")"
	# (killed_within says when it saw them gone, counted from t_ok)
	killed_within "$l: victims (qemu with a disk in $POOL), from t_ok," "$ok_l" $((TMO + SLACK)) "$@"
	victims_named "$l" "$j" "$u" "$@"
}

# scenario_start LABEL DAEMON HOST: a daemon, two victims, an rbd storage
# r and a file storage ok on tmpfs, armed, r's heartbeats landing.
scenario_start() {
	local l=$1 d=$2 h=$3 v
	victims2 "$l" || return 1
	daemon_on "$d" "$d" --no-bpf || { not_ok "$l: daemon starts"; return 1; }
	v="SOCK_$d" S=${!v}
	mkdir -p "$T/ok-$d"
	arm "$S" "$h" "uuid=r,type=rbd,pool=$POOL,conf=$CEPH_CONF,$RSPEC" \
		"uuid=ok,type=file,target=$T/ok-$d,$FSPEC" ||
		{ not_ok "$l: storages armed"; show_log "$d"; return 1; }
	check "$l: armed in $ARM_MS ms; heartbeats land" wait_until 10 hb_wrote "$S" r 3
	check "$l: the census names both victims" \
		wait_until 10 census_has "$S" r "$VA $UA" "$VB $UB"
}

# scenario_end LABEL DAEMON: the daemon stopped (SIGTERM), its exit clean.
scenario_end() {
	local rc
	daemon_stop "$2" 15
	rc=$?
	check "$1: SIGTERM: the daemon exits cleanly ($rc)" [ "$rc" -eq 0 ]
	[ "$rc" -eq 0 ] || log_tail "$2"
}

# --- the cluster -----------------------------------------------------------

cluster_fresh() { # LABEL
	local t0
	t0=$(mono_ms)
	if ! cluster_up; then
		not_ok "$1: the cluster starts"
		return 1
	fi
	cluster_pool "$POOL" || { not_ok "$1: pool $POOL"; return 1; }
	echo "# $1: cluster and pool $POOL up in $(($(mono_ms) - t0)) ms"
}

cluster_fresh "0" || exit 1
cluster_pool "$OTHER" || { not_ok "pool $OTHER"; exit 1; }
cl_rbd create "$OTHER/by" --size 16M || { not_ok "image $OTHER/by"; exit 1; }
UBY=$(uuidgen_)
rbd_victim_start by "$OTHER" by "$UBY" || { not_ok "bystander qemu in $OTHER starts"; exit 1; }
v=RBDV_PID_by BY_OTHER=${!v}
cp /bin/sleep "$T/vm/qemu-system-x86_64"
proc_spawn BY_SLEEP "exec '$T/vm/qemu-system-x86_64' 100000"
proc_spawn BY_PY "exec python3 -c 'import time; time.sleep(100000)' -drive file=rbd:$POOL/x:conf=$CEPH_CONF,format=raw -uuid $(uuidgen_)"
# Past its exec: its command line is python's, naming the pool.
wait_until 5 eval "[[ \"\$(readlink /proc/$BY_PY/exe)\" == *python* ]]"

# --- 1 and 2: healthy, then the OSD stopped ---------------------------------

sc12() {
	local f0=$t_fail H=rbd-$RUN-1 s1 s2 st lat addrs t_stop j rst c ev
	scenario_start 1 d1 "$H" || return
	ARM1=$ARM_MS
	check "1: setup arms within 10 s ($ARM1 ms)" [ "$ARM1" -le 10000 ]
	st=$(cl_rados -p "$POOL" stat "iofence.$H" 2>&1)
	check "1: the object iofence.$H exists, 4608 bytes ($st)" grep -q 'size 4608$' <<<"$st"
	s1=$(seq_of "$H")
	check "1: its record's seq grows (from ${s1:-none})" wait_until 5 seq_above "$H" "${s1:-0}"
	obj_get "$H" "$T/o1"
	check "1: the record is armed (state $(rec_state "$T/o1")) and names host $H" \
		eval "[ \"$(rec_state "$T/o1")\" = 1 ] && [ \"\$(dd if='$T/o1' bs=1 skip=72 count=${#H} 2>/dev/null)\" = '$H' ]"
	addrs=$(rec_addrs "$T/o1")
	check "1: its address block (IOFA) names 127.0.0.1:0/0 ($addrs)" \
		grep -qE '^IOFA (.* )?127\.0\.0\.1:0/0( |$)' <<<"$addrs"
	check "1: the record's VM list names the two victims, no bystander" \
		wait_until 10 vms_are "$H" "$UA $UB"
	obj_get "$H" "$T/o1"
	echo "# 1: VM list: $(rec_nvms "$T/o1") uuids: $(rec_vms "$T/o1" | tr '\n' ' ')"
	c=$(census "$S" r)
	echo "# 1: census: ${c//$'\n'/, }"
	check "1: the census names exactly the two victims (-drive and -blockdev)" \
		[ "$c" = "$(printf '%s\n' "$VA $UA" "$VB $UB" | sort)" ]
	lat=$(sto "$S" r | jq -c '.heartbeat.latency_us')
	LAT1=$lat
	echo "# 1: heartbeat latency (write_full and monitor round trip): $lat us"
	check "1: heartbeat latency reported, under D ($lat us)" \
		jqe --argjson d $((IOT * 1000)) '.last < $d and .max < $d' <<<"$lat"
	bystanders_check 1
	[ "$t_fail" -eq "$f0" ] || show_log d1

	# 2: the OSD stopped.
	f0=$t_fail
	kill -STOP "$CEPH_OSD_PID"
	t_stop=$(now_ms)
	contract_check 2 "$S" r "$t_stop" "$VA" "$VB"
	LATE2=$LATE_REL FIRE2=$FIRE_REL BREAK2=$FIRE_AFTER_BREAK
	check "2: the storage is fenced" hb_state_is "$S" r fenced
	bystanders_check 2
	sleep 1
	kill -CONT "$CEPH_OSD_PID"
	rst=$(now_ms)
	if wait_until 30 j_has_ev "$S" STORAGE_RESTORED r; then
		ok "2: SIGCONT: STORAGE_RESTORED (at $(printf '%+d' $(($(j_ms "$(j_first "$(journal_of "$S")" STORAGE_RESTORED r)") - rst))) ms of it)"
	else
		not_ok "2: SIGCONT: STORAGE_RESTORED within 30 s"
		show_journal "$S" r
	fi
	s1=$(sto "$S" r | jq -r .heartbeat.writes_ok)
	sleep 3
	st=$(sto "$S" r | jq -c '.heartbeat | {state, writes_ok}')
	check "2: restored, it stays fenced while its heartbeats land ($st)" \
		jqe --argjson w "${s1:-0}" '.state == "fenced" and .writes_ok > $w' <<<"$st"
	check "2: no STORAGE_UNFENCED by itself" [ "$(j_count "$(journal_of "$S")" STORAGE_UNFENCED r)" = 0 ]
	# Fenced still: a VM started on the pool now is killed too, within
	# an interval or two.
	if cl_rbd create "$POOL/2c" --size 16M; then
		proc_spawn VC "exec qemu-system-x86_64 -machine none -nographic -nodefaults -no-user-config \
			-name 2c -uuid $(uuidgen_) -drive file=rbd:$POOL/2c:conf=$CEPH_CONF:id=admin,format=raw,if=none,id=d0 \
			>'$T/2c.out' 2>&1"
		killed_within "2: fenced, a qemu started on $POOL after the restore (counted from its start)" "$(now_ms)" $((2 * IV + SLACK)) "$VC"
		wait_until 3 eval "[ -n \"\$(j_first \"\$(journal_of '$S')\" FENCE_KILLED r)\" ]"
		victims_named "2: fenced (FENCE_KILLED)" "$(journal_of "$S")" r "$VC"
	else
		not_ok "2: image $POOL/2c"
	fi
	c=$(ctl_t 10 "$S" unfence r 2>&1)
	check "2: unfence r ($c)" [ $? -eq 0 ]
	check "2: unfenced: STORAGE_UNFENCED, healthy" \
		eval "j_has_ev '$S' STORAGE_UNFENCED r && wait_until 5 hb_state_is '$S' r healthy"
	s2=$(seq_of "$H")
	check "2: unfenced: its record's seq grows again" wait_until 5 seq_above "$H" "${s2:-0}"
	check "2: unfenced: the record is armed again" \
		eval "obj_get '$H' '$T/o2' && [ \"\$(rec_state '$T/o2')\" = 1 ]"
	j=$(journal_of "$S")
	healthy_check 2 "$j" ok
	ev=$(jq -r '[.[] | select(.data.storage == "r") | .event] | join(" ")' <<<"$j")
	echo "# 2: r's events: $ev"
	check "2: no STORAGE_BLOCKLISTED (nobody blocklisted us)" [ "$(j_count "$j" STORAGE_BLOCKLISTED r)" = 0 ]
	bystanders_check "2 (after)"
	[ "$t_fail" -eq "$f0" ] || show_log d1
	scenario_end 2 d1
}

# --- 5: teardown, update and stop while the OSD is stopped -------------------

# timed OUT CMD...: CMD in the background; "rc ms" into OUT, its output
# into OUT.reply.
timed() {
	local out=$1
	shift
	(
		t0=$(mono_ms)
		"$@" >"$out.reply" 2>&1
		echo "$? $(($(mono_ms) - t0))" >"$out"
	) &
	TIMED_PIDS+=" $!"
}
timed_result() { # LABEL OUT BOUND_MS
	local rc='' el=''
	wait_until $((($3 + 5000) / 1000)) test -s "$2"
	[ -s "$2" ] && read -r rc el <"$2"
	echo "# $1: exit ${rc:--} after ${el:--} ms: $(tr '\n' ' ' <"$2.reply" 2>/dev/null | cut -c1-300)"
	check "$1: returns within $3 ms (${el:-none} ms, exit ${rc:--})" between "${el:-999999}" 0 "$3"
	TIMED_RC=$rc
}

sc5() {
	local f0=$t_fail H=rbd-$RUN-5 td up slow n rc t0 el qsmax
	daemon_on d5 d5 --no-bpf || { not_ok "5: daemon starts"; return; }
	S=$T/d5.sock
	mkdir -p "$T/ok-d5"
	# T long: late, not fenced, while the commands run.
	arm "$S" "$H" "uuid=ra,type=rbd,pool=$POOL,conf=$CEPH_CONF,interval=1s,timeout=60s,victims=qemu-system-x86_64" \
		"uuid=rb,type=rbd,pool=$POOL,ns=n5,conf=$CEPH_CONF,interval=1s,timeout=60s,victims=qemu-system-x86_64" \
		"uuid=ok,type=file,target=$T/ok-d5,$FSPEC" ||
		{ not_ok "5: storages armed"; show_log d5; return; }
	ok "5: ra, rb (namespace n5) and ok armed in $ARM_MS ms"
	check "5: heartbeats land on both" eval "wait_until 10 hb_wrote '$S' ra 2 && wait_until 10 hb_wrote '$S' rb 2"
	check "5: rb's object is in namespace n5" eval "obj_get '$H' '$T/o5' n5"
	qs_watch_start "$S" ok "$T/w5"
	kill -STOP "$CEPH_OSD_PID"
	check "5: OSD stopped: ra and rb turn late" \
		eval "wait_until 6 j_has_ev '$S' HEARTBEAT_LATE ra && wait_until 6 j_has_ev '$S' HEARTBEAT_LATE rb"
	td=$T/td5 up=$T/up5 TIMED_PIDS=
	timed "$td" ctl_t 30 "$S" --json teardown --host "$H" --storage ra
	timed "$up" ctl_t 30 "$S" --json setup --host "$H" --no-status-check --timeout 5s \
		--storage "uuid=rb,type=rbd,pool=$POOL,ns=n5,conf=$CEPH_CONF,interval=2s,timeout=60s,victims=qemu-system-x86_64"
	timed_result "5: teardown of ra (OSD stopped)" "$td" 5000
	timed_result "5: setup updating rb to interval 2s (OSD stopped)" "$up" 10000
	# shellcheck disable=SC2086 # a list of pids
	kill $TIMED_PIDS 2>/dev/null
	# shellcheck disable=SC2086
	wait $TIMED_PIDS 2>/dev/null
	n=$(ctl_t 5 "$S" --json status | jq -c '[.storages[] | {uuid, i: .params.interval_ms, s: .heartbeat.state}]')
	echo "# 5: storages after: $n"
	check "5: ra is gone" jqe 'map(.uuid) | index("ra") == null' <<<"$n"
	if [ "$TIMED_RC" = 0 ]; then
		check "5: rb updated to interval 2000 ms" jqe '.[] | select(.uuid == "rb") | .i == 2000' <<<"$n"
	else
		check "5: the update failed: rb left as it was (interval 1000 ms)" \
			jqe '.[] | select(.uuid == "rb") | .i == 1000' <<<"$n"
	fi
	sleep 1
	qs_watch_stop "$T/w5"
	qsmax=$(awk 'BEGIN { m = 0 } $3 != 0 { bad++ } $2 > m { m = $2 } END { print m, bad + 0, NR }' "$T/w5")
	read -r qsmax slow n <<<"$qsmax"
	check "5: query-status answered each time within 1 s ($n answers, slowest $qsmax ms, $slow failed)" \
		eval "[ '$qsmax' -le 1000 ] && [ '$slow' = 0 ] && [ '$n' -ge 3 ]"
	healthy_check 5 "$(journal_of "$S")" ok
	t0=$(mono_ms)
	daemon_stop d5 10
	rc=$? el=$(($(mono_ms) - t0))
	check "5: SIGTERM with the OSD stopped: the daemon exits within 5 s ($el ms)" \
		eval "[ $el -le 5000 ] && [ $rc -ne 124 ]"
	check "5: ... and cleanly (exit $rc)" [ "$rc" -eq 0 ]
	[ "$rc" -eq 0 ] || log_tail d5
	daemon_gone d5 || { kill -KILL "$(pid_of d5)"; wait "$(pid_of d5)"; }
	kill -CONT "$CEPH_OSD_PID"
	[ "$t_fail" -eq "$f0" ] || show_log d5
	wait_until 30 cl_rados -p "$POOL" --rados-osd-op-timeout 5 put probe /dev/null
}

# --- 3: the OSD killed --------------------------------------------------------

sc3() {
	local f0=$t_fail H=rbd-$RUN-3 t_kill
	scenario_start 3 d3 "$H" || return
	kill -KILL "$CEPH_OSD_PID"
	t_kill=$(now_ms)
	wait "$CEPH_OSD_PID" 2>/dev/null
	contract_check 3 "$S" r "$t_kill" "$VA" "$VB"
	LATE3=$LATE_REL FIRE3=$FIRE_REL BREAK3=$FIRE_AFTER_BREAK
	bystanders_check 3
	healthy_check 3 "$(journal_of "$S")" ok
	[ "$t_fail" -eq "$f0" ] || show_log d3
	scenario_end 3 d3
}

# --- 4: the monitor killed -----------------------------------------------------

sc4() {
	local f0=$t_fail H=rbd-$RUN-4 t_kill j
	scenario_start 4 d4 "$H" || return
	kill -KILL "$CEPH_MON_PID"
	t_kill=$(now_ms)
	# Reaped here, quietly: the cluster's daemons are this shell's jobs.
	wait "$CEPH_MON_PID" 2>/dev/null
	contract_check 4 "$S" r "$t_kill" "$VA" "$VB"
	LATE4=$LATE_REL FIRE4=$FIRE_REL BREAK4=$FIRE_AFTER_BREAK
	j=$(journal_of "$S")
	echo "# 4: the late event's error: $(jq -c '.data.error' <<<"$(j_first "$j" HEARTBEAT_LATE r)")"
	bystanders_check 4
	healthy_check 4 "$j" ok
	[ "$t_fail" -eq "$f0" ] || show_log d4
	scenario_end 4 d4
}

T_START=$(mono_ms)
sc12
sc5
sc3
# A memstore OSD killed comes back empty: a new cluster for the monitor.
cluster_down
cluster_fresh 4 && sc4
echo "# numbers: setup-to-armed ${ARM1:-?} ms; heartbeat latency ${LAT1:-?} us;" \
	"late at t_ok+I+D ${LATE2:-?}/${LATE3:-?}/${LATE4:-?} ms, fence at t_ok+T ${FIRE2:-?}/${FIRE3:-?}/${FIRE4:-?} ms" \
	"(OSD stopped / OSD killed / mon killed); break to fence ${BREAK2:-?}/${BREAK3:-?}/${BREAK4:-?} ms (T = $TMO)"
stop_everything
cluster_down
echo "# total $(($(mono_ms) - T_START)) ms"
