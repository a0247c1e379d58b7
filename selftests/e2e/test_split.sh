#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# The fencing core and the control plane are apart: starving one of CPU
# leaves the other at work, and each watchdog follows the side it must.
# A SCHED_FIFO hog at a priority above the core's is pinned to one CPU,
# and the starved thread is pinned there with it:
#   1 control plane starved: heartbeats go on, no HEARTBEAT_LATE, the
#     (FIFO) hardware watchdog is still petted; the lag is the control
#     plane's alone
#   2 fencing core starved: systemd's WATCHDOG=1 stops (no core report),
#     the hardware watchdog is not petted, and the core reports its own
#     lag: CORE_LAG, lag.core.worst_us
. "$(dirname "$0")/../lib.sh"
need_root
for need in jq python3 taskset chrt; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done
[ "$(nproc)" -ge 2 ] || { skip "needs 2 CPUs to starve one thread alone"; exit 0; }
[ "$(cat /proc/sys/kernel/sched_rt_runtime_us 2>/dev/null)" != -1 ] ||
	{ skip "RT throttling off: a FIFO hog would own its CPU for good"; exit 0; }

T=$(readlink -f "$T")
HOG_PRIO=50
# Nobody else's: this test's own shell stays off the hog's CPU.
taskset -pc 1 $$ >/dev/null

# Timestamps (ms, monotonic) of every watchdog pet and systemd message.
cat >"$T/listen.py" <<'EOF'
import os, socket, sys, threading, time
fifo, sock, out = sys.argv[1:4]
log = open(out, "w", buffering=1)
def now(): return int(time.monotonic() * 1000)
def pets():
    with open(fifo, "rb", buffering=0) as f:
        while True:
            b = f.read(1)
            if not b: return
            log.write("%d pet %s\n" % (now(), b.decode(errors="replace")))
def notify():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(sock)
    while True:
        m = s.recv(4096).decode(errors="replace")
        for l in m.split("\n"):
            if l: log.write("%d sd %s\n" % (now(), l))
threading.Thread(target=pets, daemon=True).start()
notify()
EOF
mkfifo "$T/wd.fifo"
python3 "$T/listen.py" "$T/wd.fifo" "$T/notify.sock" "$T/times" &
LISTEN=$!
on_exit "kill $LISTEN"
for ((i = 0; i < 50; i++)); do [ -S "$T/notify.sock" ] && break; sleep 0.05; done

mono_ms() { python3 -c 'import time; print(int(time.monotonic() * 1000))'; }
# The largest gap between two lines of KIND within [FROM, TO] ms.
max_gap() { # kind from to
	awk -v k="$1" -v a="$2" -v b="$3" '
		$2 == k && $1 >= a && $1 <= b { if (p) { g = $1 - p; if (g > m) m = g } p = $1 }
		END { print m + 0 }' "$T/times"
}
count() { # kind from to
	awk -v k="$1" -v a="$2" -v b="$3" '$2 == k && $1 >= a && $1 <= b { n++ } END { print n + 0 }' "$T/times"
}
core_tid() { grep -lx iofence-core /proc/"$1"/task/*/comm 2>/dev/null | cut -d/ -f5 | head -1; }
# hog SECONDS: a FIFO hog on CPU 0, ended from here (CPU 1): nothing
# that runs beside it on CPU 0 could end it.
hog() {
	local pid
	chrt -f "$HOG_PRIO" taskset -c 0 sh -c 'while :; do :; done' &
	pid=$!
	on_exit "kill -KILL $pid"
	sleep "$1"
	kill -KILL "$pid"
	wait "$pid" 2>/dev/null
}
st() { ctl_sock "$SOCK_d" --json status | jq -c --arg u "$1" '.storages[] | select(.uuid == $u)'; }
events() { ctl_sock "$SOCK_d" --json events 2>/dev/null; }
ev_count() { events | jq --arg n "$1" '[.[] | select(.event == $n)] | length'; }

# All times are CLOCK_MONOTONIC (python's time.monotonic()); the watchdog
# is petted every 500 ms, systemd told every 500 ms.
# The core at SCHED_FIFO 10, said even where it is the default: an ASan
# build's default is SCHED_OTHER (config.h), which RT throttling would
# let run 5% of CPU 0 beside the hog, and the scenarios are about a
# real-time core.
NOTIFY_SOCKET=$T/notify.sock WATCHDOG_USEC=1000000 \
	start_daemon d --no-bpf --watchdog "$T/wd.fifo" --watchdog-timeout 2 --rt-priority 10 ||
	{ not_ok "daemon starts"; exit 1; }
sanitizer_build "$IOFENCED" &&
	check "ASan build: SCHED_FIFO asked for is obeyed, with a warning" \
		grep -q 'warning: fencing core: SCHED_FIFO in an ASan build' "$T/d.log"
mkdir -p "$T/healthy"
ctl_sock "$SOCK_d" set-host-state connected >/dev/null
# interval 1 s, T = 5 s: a starved core goes late but is never fenced here;
# a victim filter no process matches: this storage is on the root fs.
check "a healthy storage is armed" ctl_sock "$SOCK_d" setup --host h \
	--storage "uuid=hs,type=file,target=$T/healthy,interval=1s,attempts=5,victims=iofence-test-nobody" >/dev/null
CORE=$(core_tid "$PID_d")
check "the fencing core is a thread of its own ($CORE)" [ -n "$CORE" ] && [ "$CORE" != "$PID_d" ]
check "systemd hears WATCHDOG=1" wait_until 3 eval '[ "$(count sd 0 999999999)" -ge 2 ]'

# --- 1. the control plane starved ------------------------------------------
taskset -pc 1 "$CORE" >/dev/null
taskset -pc 0 "$PID_d" >/dev/null
ok0=$(st hs | jq .heartbeat.writes_ok)
t0=$(mono_ms)
hog 4
t1=$(mono_ms)
taskset -pc 0,1 "$PID_d" >/dev/null
ok1=$(st hs | jq .heartbeat.writes_ok)
echo "# 1: starved $((t1 - t0)) ms; writes_ok $ok0 -> $ok1; pet gap $(max_gap pet "$t0" "$t1") ms; sd messages $(count sd $((t0 + 300)) "$t1")"
check "1: heartbeats went on while the control plane starved ($ok0 -> $ok1)" \
	[ $((ok1 - ok0)) -ge 3 ]
check "1: no HEARTBEAT_LATE" [ "$(ev_count HEARTBEAT_LATE)" = 0 ]
check "1: the watchdog was petted all along (gap <= 1000 ms)" eval \
	'[ "$(max_gap pet "$t0" "$t1")" -le 1000 ] && [ "$(count pet "$t0" "$t1")" -ge 5 ]'
# RT throttling leaves the starved thread 5% of CPU 0: it crawls, and
# says how late it ran; the core, on the other CPU, did not.
r=$(ctl_sock "$SOCK_d" --json status | jq -c .lag)
echo "# 1: lag $r"
check "1: the control plane measured its own stall (worst >= 300 ms), the core none of it" \
	jq -e '.control.worst_us >= 300000 and .core.worst_us < 300000' <<<"$r" >/dev/null
check "1: systemd hears WATCHDOG=1 again" \
	wait_until 3 eval '[ "$(count sd "$t1" 999999999)" -ge 1 ]'

# --- 2. the fencing core starved --------------------------------------------
taskset -pc 0 "$CORE" >/dev/null
taskset -pc 1 "$PID_d" >/dev/null
t0=$(mono_ms)
hog 2.5
t1=$(mono_ms)
taskset -pc 0,1 "$CORE" >/dev/null
sleep 0.6
echo "# 2: starved $((t1 - t0)) ms; sd gap $(max_gap sd "$t0" $((t1 + 600))) ms; pet gap $(max_gap pet $((t0 - 600)) $((t1 + 600))) ms"
check "2: systemd's WATCHDOG=1 stopped while the core was silent (gap >= 1200 ms)" \
	[ "$(max_gap sd $((t0 - 600)) $((t1 + 600)))" -ge 1200 ]
check "2: the hardware watchdog was not petted meanwhile (gap >= 2000 ms)" \
	[ "$(max_gap pet $((t0 - 600)) $((t1 + 600)))" -ge 2000 ]
check "2: CORE_LAG, lag >= 2 s" wait_until 3 eval \
	'events | jq -e "[.[] | select(.event == \"CORE_LAG\" and .data.lag_us >= 2000000)] | length >= 1" >/dev/null'
r=$(ctl_sock "$SOCK_d" --json status | jq -c .lag)
echo "# 2: lag $r"
check "2: query-status shows the core's worst lag >= 2 s" \
	jq -e '.core.worst_us >= 2000000 and .core.samples > 0' <<<"$r" >/dev/null
check "2: the storage was never fenced" [ "$(ev_count FENCE_FIRED)" = 0 ]
check "2: heartbeats go on" wait_until 5 eval '[ "$(st hs | jq -r .heartbeat.state)" = healthy ]'
# A stop with hs armed (force, F > 0) leaves the watchdog armed for the
# next daemon; once hs is torn down, nothing counts on it: magic close.
check "hs torn down" ctl_sock "$SOCK_d" teardown --host h --storage hs
check "SIGTERM: clean exit" eval 'kill -TERM $PID_d; wait $PID_d'
check "the watchdog's magic close" eval 'sleep 0.3; tail -1 "$T/times" | grep -q "pet V"'
