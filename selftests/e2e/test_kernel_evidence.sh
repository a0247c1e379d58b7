#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The kernel's evidence end to end, as query-status and bpftool show it:
#   1 a block storage on a loop device: completions, bytes and the latency
#     histogram move with its writes; bpftool prints the slot by name,
#     its uuid included, and the device map by major:minor
#   2 I/O on a device nobody armed changes nothing
#   3 a write stuck on a loop device over a hung faultfs file shows in
#     flight, with an age that grows; released, it leaves the flight
#   4 a file storage shows heartbeats seen by the kernel, in step with
#     the daemon's own count
#   5 another process writing the record file, through io_uring too, is
#     no heartbeat: last_heartbeat_ns does not move
#   3 also: that stuck write, in flight longer than io_timeout, turns the
#     storage late at once (HEARTBEAT_LATE with "evidence"), long before
#     t_ok + interval + io_timeout, and the extra attempt starts then
#   6 a force fence whose victim is dead but left writes in flight on the
#     storage's device (page cache writeback): FENCE_COMPLETED says so,
#     and the fence escalates
# Hung I/O leaves its writer in D state: the hang is released before
# anything is killed, detached or unmounted.
. "$(dirname "$0")/../lib.sh"
need_root
FAULTFS=${FAULTFS:-$OUT/faultfs}
# shellcheck source=../faultfs/faultfs.sh
. "$(dirname "$0")/../faultfs/faultfs.sh"

for need in bpftool jq losetup fio; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done
[ -e /dev/loop-control ] || { skip "/dev/loop-control is missing"; exit 0; }

PIN=$(pin_dir)
on_exit "rm -rf '$PIN'"
# Backing files on tmpfs: no block device under them, so no I/O of the
# test's own file system lands on a tracked device.
SHM=$(mktemp -d /dev/shm/iofence-test.XXXXXX)
on_exit "rm -rf '$SHM'"
NOBODY=victims=iofence-test-nobody

start_daemon a --pin-dir "$PIN" || { not_ok "daemon starts"; exit 1; }
S=$SOCK_a
if [ "$(ctl_sock "$S" --json status | jqr .bpf.active)" != true ]; then
	skip "BPF tracker did not load here: $(grep -i bpf "$T/a.log" | head -1)"
	exit 0
fi
ok "BPF tracker active"

io_of() { ctl_sock "$S" --json status | jq -c --arg u "$1" '.storages[] | select(.uuid == $u) | .io'; }
slot_of() { bpftool map dump pinned "$PIN/slots" | jq -c --arg u "$1" '[.[] | select(.value.uuid == $u)][0] // empty'; }
hsum() { jq '[.latency_us_log2[]] | add // 0'; }
# ff_loop MVAR LVAR NAME: a faultfs mount at $T/NAME (in MVAR) and a
# direct-I/O loop device (in LVAR) over a 64 MiB file on it, detached at exit.
ff_loop() {
	# Not "m": ff_mount's own local of that name would take the mount.
	local ffl_mnt ffl_dev
	ff_mount ffl_mnt "$3" || { not_ok "faultfs mounts"; return 1; }
	truncate -s 64M "$ffl_mnt/disk.img"
	ffl_dev=$(losetup --find --show --direct-io=on "$ffl_mnt/disk.img") ||
		{ not_ok "loop device on faultfs"; return 1; }
	on_exit "losetup -d $ffl_dev"
	printf -v "$1" '%s' "$ffl_mnt"
	printf -v "$2" '%s' "$ffl_dev"
}

# --- 1: a block storage -----------------------------------------------------

truncate -s 64M "$SHM/b1.img"
L1=$(losetup --find --show "$SHM/b1.img") || { not_ok "loop device"; exit 1; }
on_exit "losetup -d $L1"
# A long interval: no heartbeat of its own lands between two samples.
arm_storages "$S" host-a "uuid=b1,type=block,target=$L1,interval=60s,$NOBODY" ||
	not_ok "arm b1"
sleep 0.3
io0=$(io_of b1)
check "b1 has a slot and its device is tracked: $(jq -c '{slot, device, devices}' <<<"$io0")" \
	jqe '.tracked == true and (.slot | type) == "number" and (.devices[0].role == "target")' <<<"$io0"
dd if=/dev/zero of="$L1" bs=4096 count=256 oflag=direct status=none
io1=$(io_of b1)
c0=$(jq .completions <<<"$io0") c1=$(jq .completions <<<"$io1")
b0=$(jq .bytes <<<"$io0") b1=$(jq .bytes <<<"$io1")
h0=$(hsum <<<"$io0") h1=$(hsum <<<"$io1")
check "completions moved by the 256 writes ($c0 -> $c1)" [ $((c1 - c0)) -ge 256 ]
check "bytes moved by 1 MiB ($b0 -> $b1)" [ $((b1 - b0)) -ge 1048576 ]
check "the latency histogram counted them ($h0 -> $h1)" [ $((h1 - h0)) -ge 256 ]
check "nothing in flight once they are done: $(jq -c .in_flight <<<"$io1")" \
	jqe '.in_flight.writes == 0 and .in_flight.reads == 0 and .in_flight.oldest_write_ms == null' <<<"$io1"
check "no errors: $(jq -c '{errors, last_error}' <<<"$io1")" jqe '.errors == 0 and .last_error == 0' <<<"$io1"

dump=$(bpftool map dump pinned "$PIN/slots")
check "bpftool shows the slot's uuid" grep -q '"uuid": "b1"' <<<"$dump"
for f in done_ok done_failed bytes writes_in_flight latency_us last_heartbeat_ns fenced timeout_ns writes_refused; do
	check "bpftool names field $f" grep -q "\"$f\": " <<<"$dump"
done
sl=$(slot_of b1)
kdone=$(jq '.value.done_ok + .value.done_failed' <<<"$sl")
check "bpftool and query-status agree ($kdone >= $c1)" [ "${kdone:-0}" -ge "$c1" ]
check "the slot's timeout is the storage's T (300 s)" jqe '.value.timeout_ns == 300000000000' <<<"$sl"
check "the slot is a block one" jqe '.value.type == "IOFENCE_SLOT_BLOCK"' <<<"$sl"
maj=$((0x$(stat -c %t "$L1"))) min=$((0x$(stat -c %T "$L1")))
devs=$(bpftool map dump pinned "$PIN/devices")
check "the device map is keyed by major:minor ($maj:$min) and names the slot and role" \
	jqe --argjson ma "$maj" --argjson mi "$min" --argjson s "$(jq .key <<<"$sl")" \
	'any(.[]; .key.major == $ma and .key.minor == $mi and .value.slot == $s and .value.role == "IOFENCE_DEV_TARGET")' <<<"$devs"
progs=$(bpftool prog show)
for p in iofence_rq_issue iofence_rq_complete iofence_uring_complete; do
	check "bpftool prog show lists $p by name" grep -q "name $p " <<<"$progs"
done
insp=$(scripts/iofence-inspect --pin-dir "$PIN" summary 2>&1)
check "iofence-inspect shows b1 and its device" grep -q "b1 (block): devices $maj:$min target" <<<"$insp"

# --- 2: a device nobody armed -----------------------------------------------

truncate -s 64M "$SHM/other.img"
L2=$(losetup --find --show "$SHM/other.img") || not_ok "second loop device"
on_exit "losetup -d $L2"
before=$(slot_of b1)
dd if=/dev/zero of="$L2" bs=4096 count=512 oflag=direct status=none
dd if="$L2" of=/dev/null bs=4096 count=512 iflag=direct status=none
after=$(slot_of b1)
dhb=$(($(jq .value.heartbeats <<<"$after") - $(jq .value.heartbeats <<<"$before")))
dd_=$(($(jq '.value.done_ok + .value.done_failed' <<<"$after") - $(jq '.value.done_ok + .value.done_failed' <<<"$before")))
# A heartbeat of b1 itself, should one fall in the window, is a write and a flush or two.
check "1024 requests on an unarmed device moved no counter ($dd_ completions, $dhb heartbeats of b1 meanwhile)" \
	[ "$dd_" -le $((3 * dhb)) ]
check "the unarmed device is not in the device map" \
	jqe --argjson mi "$((0x$(stat -c %T "$L2")))" --argjson ma "$((0x$(stat -c %t "$L2")))" \
	'all(.[]; .key.major != $ma or .key.minor != $mi)' <<<"$(bpftool map dump pinned "$PIN/devices")"

# --- 3: a stuck write ---------------------------------------------------------

if [ ! -c /dev/fuse ] || [ ! -x "$FAULTFS" ]; then
	skip "faultfs or /dev/fuse is missing: no stuck write"
else
	ff_loop M L3 ff
	on_exit hangs_release
	# A long interval: after the hang, no heartbeat is due for 10 s, so
	# only the kernel's evidence can tell the daemon before that.
	arm_storages "$S" host-a "uuid=stuck,type=block,target=$L3,interval=10s,io_timeout=1s,timeout=120s,$NOBODY" ||
		not_ok "arm the storage over faultfs"
	# In flight counts requests that start after the arming's margin.
	sleep 0.3
	faultfs_set "$M" hang '*'
	proc_spawn W "exec dd if=/dev/zero of='$L3' bs=4096 count=1 seek=1000 oflag=direct status=none"
	w_in_flight() { jqe '.in_flight.writes >= 1 and .in_flight.oldest_write_ms.max >= 1000' <<<"$(io_of stuck)"; }
	if wait_until 10 w_in_flight; then
		a1=$(io_of stuck | jq .in_flight.oldest_write_ms.min)
		sleep 1.5
		io=$(io_of stuck)
		a2=$(jq .in_flight.oldest_write_ms.min <<<"$io")
		ok "a write stuck on the hung backing file is in flight: $(jq -c .in_flight <<<"$io")"
		check "its age grows ($a1 ms, then $a2 ms)" [ "$a2" -ge $((a1 + 1000)) ]
		check "the writer sits in D state meanwhile ($(pid_state "$W"))" [ "$(pid_state "$W")" = D ]
		kst=$(slot_of stuck)
		check "the kernel's own slot shows it too" jqe '.value.writes_in_flight >= 1' <<<"$kst"
		ages=$(scripts/iofence-inspect --pin-dir "$PIN" ages)
		check "iofence-inspect ages shows the epoch that holds it" \
			jqe --argjson s "$(jq .key <<<"$kst")" 'any(.[]; .slot == $s and (.epochs | length) > 0)' <<<"$ages"
	else
		not_ok "a write stuck on the hung backing file shows in flight" "$(io_of stuck | jq -c .in_flight)"
	fi
	late_ev() { j_first "$(journal_of "$S")" HEARTBEAT_LATE stuck; }
	check "the stuck write turned the storage late" wait_until 5 eval '[ -n "$(late_ev)" ]'
	ev=$(late_ev)
	check "... by the kernel's evidence, before t_ok + interval + io_timeout (11 s): $(jq -c .data <<<"$ev")" \
		jqe '.data.evidence.kind == "write stuck" and .data.evidence.oldest_write_ms >= 1000 and .data.since_ok_ms < 11000' <<<"$ev"
	check "... and the extra heartbeat attempt started then" \
		wait_until 3 eval 'jqe ".storages[] | select(.uuid == \"stuck\") | .heartbeat.in_flight == true and .heartbeat.state == \"late\"" <<<"$(ctl_sock "$S" --json status)"'
	hangs_release
	done_() { ! proc_alive "$W" && jqe '.in_flight.writes == 0 and .in_flight.oldest_write_ms == null' <<<"$(io_of stuck)"; }
	check "released, the write completes and leaves the flight: $(sleep 0.5; io_of stuck | jq -c .in_flight)" \
		wait_until 20 done_
fi

# --- 4: kernel-seen heartbeats of a file storage ----------------------------

mkdir -p "$SHM/fs"
arm_storages "$S" host-a "uuid=f1,type=file,target=$SHM/fs,interval=200ms,$NOBODY" ||
	not_ok "arm the file storage"
hb() { ctl_sock "$S" --json status | jq -c '.storages[] | select(.uuid == "f1") | {k: .io.heartbeats, d: .heartbeat.writes_ok}'; }
sleep 0.5
x1=$(hb)
sleep 1.5
x2=$(hb)
k1=$(jq .k.count <<<"$x1") k2=$(jq .k.count <<<"$x2") d2=$(jq .d <<<"$x2")
check "the kernel saw f1's heartbeats ($k1 -> $k2 in 1.5 s at 200 ms)" [ "$((k2 - k1))" -ge 3 ]
check "in step with the daemon's own count ($k2 kernel-seen, $d2 written)" between "$k2" $((d2 - 2)) $((d2 + 1))
check "the last one was submitted recently: $(jq -c .k <<<"$x2")" jqe '.k.since_ms < 1000 and .k.seen_by_kernel == true and .k.last_result > 0' <<<"$x2"
check "the file storage's device is its file system's: $(io_of f1 | jq -c .devices)" \
	jqe --arg d "$(stat -c '%Hd:%Ld' "$SHM/fs" 2>/dev/null || echo x)" '.devices[0].role == "file system" and .devices[0].device == $d' <<<"$(io_of f1)"

# --- 5: a writer that is not the daemon ---------------------------------------

mkdir -p "$SHM/fs2"
arm_storages "$S" host-a "uuid=f2,type=file,target=$SHM/fs2,interval=60s,$NOBODY" ||
	not_ok "arm the second file storage"
sleep 0.3
rec="$SHM/fs2/.iofence/host-a"
[ -f "$rec" ] || not_ok "the record file $rec exists"
s0=$(slot_of f2)
ring0=$(bpftool map dump pinned "$PIN/daemon" | jq -c '.[0].value | {tgid, ring}')
dd if=/dev/zero of="$rec" bs=4096 count=1 conv=notrunc status=none
fio --name=forge --filename="$rec" --rw=write --bs=4096 --size=4096 --ioengine=io_uring \
	--loops=4 --fsync=1 --output=/dev/null >/dev/null 2>&1 || not_ok "fio writes the record through io_uring"
s1=$(slot_of f2)
check "writes to the record by dd and fio (io_uring) are no heartbeat: last_heartbeat_ns and heartbeats do not move" \
	[ "$(jq -c '.value | [.last_heartbeat_ns, .heartbeats, .heartbeats_failed]' <<<"$s0")" = \
		"$(jq -c '.value | [.last_heartbeat_ns, .heartbeats, .heartbeats_failed]' <<<"$s1")" ]
check "their ring is not the daemon's: the registration is unchanged ($ring0)" \
	[ "$ring0" = "$(bpftool map dump pinned "$PIN/daemon" | jq -c '.[0].value | {tgid, ring}')" ]
check "the registration names the daemon's process" jqe --argjson p "$PID_a" '.tgid == $p and .ring != 0' <<<"$ring0"

# --- 6: a dead victim's writes still in flight --------------------------------

if [ ! -c /dev/fuse ] || [ ! -x "$FAULTFS" ] || [ ! -x "$OUT/writeback_left" ]; then
	skip "faultfs, /dev/fuse or $OUT/writeback_left is missing: no dead victim's writes"
else
	ff_loop M6 L6 ff6
	# The dummy VM under a name of this run's own: only this fence kills it.
	WB=$T/iofence-wb-$$
	cp "$OUT/writeback_left" "$WB"
	# Beside it, the same without writes left behind: its own heartbeat
	# write is stuck too, and that one is no reason to escalate.
	truncate -s 64M "$M6/disk0.img"
	L60=$(losetup --find --show --direct-io=on "$M6/disk0.img") || not_ok "loop device on faultfs"
	on_exit "losetup -d $L60"
	Q=$T/iofence-q-$$
	cp /bin/sleep "$Q"
	arm_storages "$S" host-a "uuid=wb,type=block,target=$L6,interval=200ms,timeout=1500ms,kill_grace=500ms,strategy=force,victims=${WB##*/}" \
		"uuid=wb0,type=block,target=$L60,interval=200ms,timeout=1500ms,kill_grace=500ms,strategy=force,victims=${Q##*/}" ||
		not_ok "arm the force storages"
	: >"$T/wb.out"
	V=$( (exec "$WB" "$L6" 1048576 </dev/null >"$T/wb.out" 2>&1) & echo $!)
	proc_track "$V"
	proc_spawn V0 "exec '$Q' 1000 3<>'$L60'"
	check "the dummy VM wrote 64 KiB into the page cache" wait_until 5 grep -q written "$T/wb.out"
	sleep 0.3
	faultfs_set "$M6" hang '*'
	kill -USR1 "$V"
	check "... and started their writeback, which the hung backing file holds" wait_until 5 grep -q started "$T/wb.out"
	done_ev() { j_first "$(journal_of "$S")" FENCE_COMPLETED wb; }
	check "the storage is fenced and its fence completes" wait_until 8 eval '[ -n "$(done_ev)" ]'
	ev=$(done_ev)
	check "FENCE_COMPLETED: the victim is dead, its writes still in flight: $(jq -c '.data | {all_dead, writes_in_flight}' <<<"$ev")" \
		jqe '.data.all_dead == true and .data.writes_in_flight >= 1' <<<"$ev"
	esc=$(j_first "$(journal_of "$S")" FENCE_ESCALATED wb)
	check "... so the force fence escalates: $(jq -c '.data | {alive, writes_in_flight}' <<<"$esc")" \
		jqe '.data.alive == 0 and .data.writes_in_flight >= 1' <<<"$esc"
	check "the victim is gone" wait_until 5 eval '! pid_alive "$V"'
	ev=$(j_first "$(journal_of "$S")" FENCE_COMPLETED wb0)
	check "the storage without writes left: FENCE_COMPLETED all dead, none in flight: $(jq -c '.data | {all_dead, writes_in_flight}' <<<"$ev")" \
		jqe '.data.all_dead == true and .data.writes_in_flight == 0' <<<"$ev"
	check "... and no FENCE_ESCALATED" [ "$(j_count "$(journal_of "$S")" FENCE_ESCALATED wb0)" = 0 ]
	hangs_release
	ctl_sock "$S" teardown --host host-a --storage wb --storage wb0 >/dev/null || not_ok "teardown of wb and wb0"
fi

# --- teardown clears the slot ---------------------------------------------------

ctl_sock "$S" teardown --host host-a --storage b1 >/dev/null || not_ok "teardown of b1"
check "a teardown frees the slot" [ -z "$(slot_of b1)" ]
check "... and its device leaves the device map" \
	jqe --argjson ma "$maj" --argjson mi "$min" 'all(.[]; .key.major != $ma or .key.minor != $mi)' <<<"$(bpftool map dump pinned "$PIN/devices")"
