#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The walking skeleton end to end: a real iofenced with private paths, the
# real BPF program counting a real loop device, the real socket.
. "$(dirname "$0")/../lib.sh"
need_root

PIN=$(pin_dir)
on_exit "rm -rf '$PIN'"
start_daemon a --pin-dir "$PIN" || { not_ok "daemon starts"; exit 1; }
ok "daemon starts and answers"
S=$SOCK_a
ctl_sock "$S" raw '{"execute":"set-host-state","arguments":{"state":"connected"}}' >/dev/null

check "socket is mode 0660" [ "$(stat -c %a "$S")" = 660 ]

# The kernel write fence: the capability where it runs, else one log line why.
caps=$(ctl_sock "$S" --json capabilities)
fence_lines=$(grep -c 'kernel write fence' "$T/a.log")
if jqe '.capabilities | index("kernel-write-fence")' <<<"$caps"; then
	check "kernel-write-fence in query-capabilities, and the log says the fence loaded" \
		grep -q 'BPF tracker .*with the kernel write fence' "$T/a.log"
else
	check "no kernel write fence here: query-capabilities omits it, one log line says why: $(grep 'kernel write fence' "$T/a.log")" \
		[ "$fence_lines" -eq 1 ]
fi
start_daemon nb --no-bpf || not_ok "a --no-bpf daemon starts"
check "--no-bpf: no kernel-write-fence capability" \
	jqe '.capabilities | index("kernel-write-fence") | not' <<<"$(ctl_sock "$SOCK_nb" --json capabilities)"
check "--no-bpf: one log line says so" [ "$(grep -c 'no kernel write fence' "$T/nb.log")" -eq 1 ]
stop_daemon nb

ver=$(ctl_sock "$S" --json version)
check "query-version answers" [ "$(jqr .package <<<"$ver")" = iofence ]

greet=$(timeout 5 "$IOFENCECTL" --socket "$S" raw '{"execute":"query-version","id":7}')
check "reply carries the request id" [ "$(jqr .id <<<"$greet")" = 7 ]

status=$(ctl_sock "$S" --json status)
if [ "$(jqr .bpf.active <<<"$status")" != true ]; then
	skip "BPF tracker did not load here: $(grep -i bpf "$T/a.log" | head -1)"
else
	ok "BPF tracker active"
	check "slots map pinned" [ -e "$PIN/slots" ]
	check "block_rq_complete link pinned" [ -e "$PIN/link_rq_complete" ]

	dev=$(make_loop "$T/disk.img" 64M)
	out=$(ctl_sock "$S" setup --host host-a --storage "uuid=ps1,type=block,target=$dev")
	check "setup arms a block storage" grep -qx "ps1: armed" <<<"$out"
	out=$(ctl_sock "$S" setup --host host-a --storage "uuid=ps1,type=block,target=$dev")
	check "setup again says unchanged" grep -qx "ps1: unchanged" <<<"$out"

	dd if=/dev/zero of="$dev" bs=4096 count=256 oflag=direct status=none
	status=$(ctl_sock "$S" --json status)
	comp=$(jqr '.storages[0].io.completions' <<<"$status")
	bytes=$(jqr '.storages[0].io.bytes' <<<"$status")
	check "BPF counted the writes (completions $comp >= 256)" [ "$comp" -ge 256 ]
	check "BPF counted the bytes ($bytes >= 1 MiB)" [ "$bytes" -ge 1048576 ]

	dump=$(bpftool map dump pinned "$PIN/slots")
	check "bpftool prints named fields" grep -q '"done_ok": ' <<<"$dump"
	bcomp=$(jq '[.[].value | select(.uuid == "ps1")][0] | .done_ok + .done_failed' <<<"$dump")
	check "bpftool and query-status agree ($bcomp >= $comp)" [ "$bcomp" -ge "$comp" ]

	out=$(ctl_sock "$S" setup --host host-a --storage "uuid=ps2,type=block,target=$T" 2>&1)
	check "a directory is not a block storage" grep -q 'ArmingFailed: --storage #1 (uuid ps2): open device .*: Is a directory' <<<"$out"
fi

mkdir -p "$T/mnt"
out=$(ctl_sock "$S" setup --host host-a --storage "uuid=fs1,type=file,target=$T/mnt")
check "setup arms a file storage" grep -qx "fs1: armed" <<<"$out"
out=$(ctl_sock "$S" setup --host host-a --storage "uuid=fs9,type=file,target=$T/missing" 2>&1)
check "missing target refused" grep -q -- '--storage #1 (uuid fs9): open target .*No such file' <<<"$out"
n=$(ctl_sock "$S" --json status | jqr '[.storages[].uuid] | index("fs9")')
check "a refused setup arms nothing" [ "$n" = null ]

out=$(ctl_sock "$S" raw '{"execute":"no-such-thing"}' 2>&1)
check "unknown command is CommandNotFound" grep -q '"class":"CommandNotFound"' <<<"$out"

out=$(printf '%s\n' '{"execute":' '{"execute":"query-version","id":2}' |
	timeout 5 "$IOFENCECTL" --socket "$S" raw)
check "malformed JSON: parse error with line and column" \
	grep -q '"desc":"parse error at line 1 column [0-9]*:' <<<"$out"
check "malformed JSON: the connection survives" grep -q '"id":2' <<<"$out"

out=$(head -c 70000 /dev/zero | tr '\0' x | timeout 5 "$IOFENCECTL" --socket "$S" raw 2>/dev/null)
check "an oversize line is refused with LimitExceeded" grep -q LimitExceeded <<<"$out"

out=$(ctl_sock "$S" setup --host host-a --storage "uuid=x,type=file,target=relative/path" 2>&1)
check "relative path refused, field named" grep -q -- '--storage #1 (uuid x): target=relative/path: must be an absolute path' <<<"$out"
out=$(ctl_sock "$S" raw '{"execute":"setup","arguments":{"host_uuid":"h","storages":[{"uuid":"a","type":"file","target":"/tmp","colour":"red"}]}}' 2>&1)
check "unknown argument refused, field named" grep -q 'storages\[0\].colour: unknown argument' <<<"$out"

ctl_sock "$S" version >/dev/null
check "daemon alive after bad input" kill -0 "$PID_a"

# A second daemon on the same socket must refuse, not steal it.
"$IOFENCED" --foreground --socket "$S" --state-dir "$T/b.state" --no-bpf >"$T/b.log" 2>&1
check "a second daemon refuses a served socket" grep -q 'another iofenced is serving it' "$T/b.log"

# A socket nobody holds the lock of, which still accepts connections for
# a while (a SIGKILLed daemon's, until its io_uring lets go): the daemon
# waits for it to go, 2 s at most, then refuses.
listen_for() { # PATH SECONDS: a listener on PATH that goes after SECONDS
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(8)
print("up", flush=True); time.sleep(float(sys.argv[2]))' "$1" "$2"
}
G=$T/ghost.sock
coproc GHOST { listen_for "$G" 0.6; }
on_exit "kill $GHOST_PID 2>/dev/null"
read -r _ <&"${GHOST[0]}"
t0=$(date +%s%N)
"$IOFENCED" --foreground --socket "$G" --state-dir "$T/g.state" --no-bpf \
	--watchdog none >"$T/g.log" 2>&1 &
gp=$!
on_exit "kill -KILL $gp 2>/dev/null; reap $gp"
# Not daemon_answers: a client of the listener would wait for a greeting.
check "a socket that still answers for 0.6 s is waited for, then served" \
	wait_until 8 grep -q "ready on $G" "$T/g.log"
check "... after it went ($((($(date +%s%N) - t0) / 1000000)) ms)" \
	[ $((($(date +%s%N) - t0) / 1000000)) -ge 500 ]
kill -TERM "$gp"
reap "$gp" 10
rm -f "$G"
coproc GHOST { listen_for "$G" 30; }
read -r _ <&"${GHOST[0]}"
t0=$(date +%s%N)
timeout 10 "$IOFENCED" --foreground --socket "$G" --state-dir "$T/g2.state" \
	--no-bpf --watchdog none >"$T/g2.log" 2>&1
rc=$? el=$((($(date +%s%N) - t0) / 1000000))
check "one that keeps answering is refused after the wait (exit $rc, $el ms)" \
	eval '[ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $el -ge 1900 ]'
check "... saying so: $(grep -m1 'still accepts' "$T/g2.log")" \
	grep -q "socket path $G: something still accepts connections on it" "$T/g2.log"
kill "$GHOST_PID" 2>/dev/null

bpf=$(ctl_sock "$S" --json status | jqr .bpf.active)
stop_daemon a
check "SIGTERM: clean exit status" [ $? -eq 0 ]
check "SIGTERM: socket removed" [ ! -e "$S" ]
if [ "$bpf" = true ]; then
	# A stop keeps what is armed guarded: the programs, the maps and
	# the kernel fence stay for a restarted daemon; only teardown disarms.
	check "SIGTERM: the pins stay while storages are armed" [ -e "$PIN/slots" ]
	start_daemon a2 --pin-dir "$PIN" --state-dir "$T/a.state" || not_ok "a restarted daemon starts"
	check "restarted: it takes the pins over" grep -q 'taken over from an earlier daemon' "$T/a2.log"
	out=$(ctl_sock "$SOCK_a2" teardown --host host-a 2>&1)
	check "teardown of every storage ($(tr '\n' ' ' <<<"$out"))" grep -q 'fs1: disarmed' <<<"$out"
	stop_daemon a2
	check "SIGTERM with nothing armed: pins removed" [ ! -e "$PIN" ]
fi
