#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The demo: a real iofenced on a throw-away state folder, a loop device as
# the "primary storage", armed through the socket, written to, and the
# per-storage I/O counters the BPF program kept, seen two ways.
set -eu
cd "$(dirname "$0")/.."
: "${OUT:=build}"
IOFENCED=$OUT/iofenced
IOFENCECTL=$OUT/iofencectl

[ "$(id -u)" -eq 0 ] || { echo "demo: needs root (BPF, loop devices)"; exit 1; }

work=$(mktemp -d /tmp/iofence-demo.XXXXXX)
sock=$work/iofenced.sock
pin=/sys/fs/bpf/iofence-demo-$$
pid= dev=

cleanup() {
	set +e
	[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid"
	[ -n "$dev" ] && losetup -d "$dev"
	rm -rf "$work" "$pin"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

step "start iofenced (state in $work, maps pinned under $pin)"
"$IOFENCED" --foreground --socket "$sock" --state-dir "$work/state" \
	--pin-dir "$pin" 2>&1 | sed 's/^/  [iofenced] /' &
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
run bpftool map dump pinned "$pin/dev_stats"

step "stop the daemon: it unpins and removes its socket"
kill -TERM "$pid"
wait "$pid" || true
pid=
ls "$pin" 2>/dev/null || echo "  $pin: gone"
[ -e "$sock" ] || echo "  $sock: gone"
echo
echo "demo: done"
