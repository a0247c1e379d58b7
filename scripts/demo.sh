#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The demo: a real iofenced on a throw-away state folder, a loop device as
# the "primary storage", armed through the socket, written to, and the
# per-storage I/O counters the BPF program kept, seen two ways. Then a real
# fence: a second loop device over a file on faultfs (the FUSE fault
# injector of the tests), held by a dummy VM, hangs; the daemon kills the
# VM, the storage comes back, and it is unfenced. The daemon never opens
# the host's watchdog (--watchdog none): a demo must not reset the host.
set -eu
cd "$(dirname "$0")/.."
: "${OUT:=build}"
IOFENCED=$OUT/iofenced
IOFENCECTL=$OUT/iofencectl
# shellcheck disable=SC2034 # for faultfs.sh
FAULTFS=$OUT/faultfs
# shellcheck source-path=SCRIPTDIR source=../selftests/faultfs/faultfs.sh
. selftests/faultfs/faultfs.sh

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (BPF, loop devices)"; exit 1; }

work=$(mktemp -d /tmp/iofence-demo.XXXXXX)
work=$(readlink -f "$work") # faultfs finds its mount by the real path
sock=$work/iofenced.sock
pin=/sys/fs/bpf/iofence-demo-$$
ff=$work/faultfs
vm=$work/vm/qemu-system-x86_64
pid='' dev='' dev2='' vm_pid=''

cleanup() {
	set +e
	# Hung requests first: what waits on one cannot die until released.
	faultfs_mounted "$ff" && _faultfs_ctl_write "$ff" "healthy *" 2>/dev/null
	[ -n "$vm_pid" ] && [ "$(readlink "/proc/$vm_pid/exe")" = "$vm" ] &&
		kill -KILL "$vm_pid"
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid"
	[ -n "$dev" ] && losetup -d "$dev"
	[ -n "$dev2" ] && losetup -d "$dev2"
	faultfs_stop "$ff" >/dev/null 2>&1
	faultfs_mounted "$ff" || rm -rf "$work"
	rm -rf "$pin"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "start iofenced (state in $work, maps pinned under $pin)"
"$IOFENCED" --foreground --socket "$sock" --state-dir "$work/state" \
	--pin-dir "$pin" --watchdog none 2>&1 | sed -u 's/^/  [iofenced] /' &
pid=$(pgrep -n -f "iofenced --foreground --socket $sock")
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.05; done

step "a 64 MiB loop device plays the shared LUN"
truncate -s 64M "$work/lun.img"
dev=$(losetup --find --show "$work/lun.img")
echo "  $dev"

step "the connect agent arms it early, right after the hypervisor connect step"
echo "  (the management side has not marked the host connected yet, so this"
echo "   reconnect uses the one-time no_status_check bypass)"
run "$IOFENCECTL" --socket "$sock" setup --reconnect --no-status-check \
	--host demo-host \
	--storage "uuid=primary-1,type=block,target=$dev,interval=2s,attempts=5"

step "a VM writes 4 MiB to it"
run dd if=/dev/urandom of="$dev" bs=64k count=64 oflag=direct status=none

step "what the BPF program counted, through the daemon"
run "$IOFENCECTL" --socket "$sock" status

step "later the host is connected; the late setup is a no-op that says so"
run "$IOFENCECTL" --socket "$sock" set-host-state connected
run "$IOFENCECTL" --socket "$sock" setup --host demo-host \
	--storage "uuid=primary-1,type=block,target=$dev,interval=2s,attempts=5"

step "what the agent was told, from the event journal"
run "$IOFENCECTL" --socket "$sock" events

step "the same counters, straight from the pinned map"
run scripts/iofence-inspect --pin-dir "$pin"

ctl() { "$IOFENCECTL" --socket "$sock" "$@"; }
last_seq() { ctl --json status | jq -r .last_seq; }
# wait_event SEQ NAME SECONDS: until NAME is journalled after SEQ.
wait_event() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		ctl --json events --since "$1" |
			jq -e --arg n "$2" 'any(.[]; .event == $n)' >/dev/null && return 0
		sleep 0.1
	done
	echo "demo: no $2 within $3 s" >&2
	return 1
}

step "a second LUN that can fail: a loop device over a file on faultfs"
faultfs_start "$work/backing" "$ff"
truncate -s 64M "$ff/lun2.img"
dev2=$(losetup --find --show --direct-io=on "$ff/lun2.img")
echo "  $dev2 -> $ff/lun2.img"
echo "  (faultfs passes I/O through until told, in $ff/.faultfs-ctl,"
echo "   to make it slow, hang or fail)"

step "arm it with small timings: a heartbeat every 200 ms, fence after 1 s without one"
run "$IOFENCECTL" --socket "$sock" setup --host demo-host \
	--storage "uuid=primary-2,type=block,target=$dev2,interval=200ms,timeout=1s,kill_grace=1s"

step "a dummy VM uses it: a copy of sleep named qemu-system-x86_64, holding $dev2 open"
mkdir -p "$(dirname "$vm")"
cp /bin/sleep "$vm"
"$vm" infinity 3<>"$dev2" &
vm_pid=$!
disown "$vm_pid" # its SIGKILL is the point of the demo, not news
sleep 0.3
run ps -o pid,stat,args -p "$vm_pid"
printf '  fd 3 -> %s\n' "$(readlink "/proc/$vm_pid/fd/3")"

step "both storages are healthy"
run "$IOFENCECTL" --socket "$sock" status

step "the storage hangs: every request to lun2.img blocks, heartbeats too"
mark=$(last_seq)
printf '$ echo "hang lun2.img" > %s\n' "$ff/.faultfs-ctl"
faultfs_set "$ff" hang lun2.img
wait_event "$mark" FENCE_COMPLETED 10

step "what the daemon did: late, then the fence at t_ok + 1 s, the VM killed"
run "$IOFENCECTL" --socket "$sock" events --since "$mark"
ctl --json events --since "$mark" | jq -r '.[] |
	select(.event == "FENCE_FIRED") |
	"  fired \(.data.late_by_us) us after the contract said fence, \(.data.since_ok_ms) ms after the last good heartbeat"'
ctl --json events --since "$mark" | jq -r '.[] |
	select(.event == "FENCE_COMPLETED") | .data.victims[] |
	"  pid \(.pid) (\(.exe)): \(.result), \(.dead_after_us) us after that moment"'

step "the dummy VM is gone"
run ps -o pid,stat,comm -p "$vm_pid" || echo "  pid $vm_pid: no such process"
vm_pid=

step "the storage comes back: the hung write lands, the storage stays fenced"
mark=$(last_seq)
printf '$ echo "healthy lun2.img" > %s\n' "$ff/.faultfs-ctl"
faultfs_set "$ff" healthy lun2.img
wait_event "$mark" STORAGE_RESTORED 10
run "$IOFENCECTL" --socket "$sock" events --since "$mark"
run "$IOFENCECTL" --socket "$sock" storage primary-2

step "the operator unfences it, and heartbeats go on"
mark=$(last_seq)
printf '$ %s --socket %s unfence primary-2\n' "$IOFENCECTL" "$sock"
# Refused (and retried) while the last heartbeat is as old as a late one.
for _ in $(seq 30); do
	reply=$(ctl unfence primary-2 2>&1) && break
	sleep 0.1
done
echo "$reply"
wait_event "$mark" STORAGE_UNFENCED 5
run "$IOFENCECTL" --socket "$sock" events --since "$mark"
run "$IOFENCECTL" --socket "$sock" status

step "tear it down: disarm, detach the loop device, unmount faultfs"
run "$IOFENCECTL" --socket "$sock" teardown --host demo-host --storage primary-2
losetup -d "$dev2"
echo "  $dev2 detached"
dev2=
faultfs_stop "$ff"
echo "  $ff unmounted"

step "stop the daemon: it unpins and removes its socket"
kill -TERM "$pid"
wait "$pid" || true
pid=
ls "$pin" 2>/dev/null || echo "  $pin: gone"
[ -e "$sock" ] || echo "  $sock: gone"
echo
echo "demo: done"
