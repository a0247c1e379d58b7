#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Careless and hostile clients of the control socket, each for a few
# seconds, next to one healthy storage: 500 clients that send requests and
# never read (and come back when let go), idle connections up to the limit,
# one-byte-a-second clients, and 32 subscribers that never read while
# setup/teardown churn makes events. Throughout, a well-behaved client's
# query-status is answered within 2 s, the healthy storage is never late or
# fenced, the clients are paused, dropped and refused as the limits say,
# and the daemon's RSS comes back near where it started. Everything is on
# loopback Unix sockets under $T, and every client ends with its phase.
. "$(dirname "$0")/../lib.sh"
need_root
for need in jq python3; do
	command -v "$need" >/dev/null || {
		skip "no $need"
		exit 0
	}
done

IDLE=2          # --idle-timeout
MAXC=600        # --max-connections
RT_MAX_MS=2000  # the bound on a well-behaved query-status round trip
RSS_SLACK_KB=$((64 * 1024))
NONREADERS=500
TRICKLERS=20
SUBSCRIBERS=32  # CTL_MAX_SUBSCRIBERS
NOMATCH=iofence-test-no-such-process # victims: a fence here kills nothing

# --- the clients -----------------------------------------------------------

# flood.py SOCK MODE N SECONDS [READYFILE]: N connections of one kind:
#   nonreader   sends requests and never reads; one let go comes back
#   idle        connects and waits
#   trickle     one byte a second of a line that never ends
#   subscriber  subscribes and never reads
# READYFILE is made once all N were tried. Modes but nonreader end once the
# server closed all of theirs. Prints one JSON summary.
cat >"$T/flood.py" <<'EOF'
import json, select, socket, sys, time

path, mode, n, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
end = time.monotonic() + seconds
REQ = b'{"execute":"query-status"}\n' * 64
st = {"opened": 0, "accepted": 0, "refused": 0, "refusal": None,
      "closed_by_server": 0, "timeout_msgs": 0, "still_open": 0}
after = []
conns = {}  # fd -> (socket, when opened)
poller = select.poll()


def first_line(s):
    buf, deadline = b"", time.monotonic() + 5
    while b"\n" not in buf and time.monotonic() < deadline:
        if select.select([s], [], [], deadline - time.monotonic())[0]:
            try:
                d = s.recv(4096)
            except BlockingIOError:
                continue
            if not d:
                break
            buf += d
    return buf.split(b"\n")[0]


def open_one():
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    s.setblocking(False)
    st["opened"] += 1
    if mode != "nonreader":
        try:
            msg = json.loads(first_line(s))
        except ValueError:
            msg = {}
        if "iofence" not in msg:
            st["refused"] += 1
            st["refusal"] = msg.get("error", {}).get("desc")
            s.close()
            return
        if mode == "subscriber":
            s.send(b'{"execute":"subscribe"}\n')
    st["accepted"] += 1
    conns[s.fileno()] = (s, time.monotonic())
    poller.register(s.fileno(), select.POLLRDHUP | select.POLLHUP | select.POLLERR)


def closed(fd):
    s, t = conns.pop(fd)
    poller.unregister(fd)
    st["closed_by_server"] += 1
    after.append(time.monotonic() - t)
    if mode != "nonreader":
        try:
            st["timeout_msgs"] += b'"class":"Timeout"' in s.recv(1 << 20)
        except OSError:
            pass
    s.close()


for _ in range(n):
    try:
        open_one()
    except OSError:
        st["refused"] += 1
if len(sys.argv) > 5:
    open(sys.argv[5], "w").close()
tick = 0.0
while time.monotonic() < end and (conns or mode == "nonreader"):
    for fd, _ in poller.poll(10):
        if fd in conns:
            closed(fd)
    if mode == "nonreader":
        for fd in list(conns):
            try:
                conns[fd][0].send(REQ)
            except BlockingIOError:
                pass
            except OSError:
                closed(fd)
        while len(conns) < n and time.monotonic() < end:
            try:
                open_one()
            except OSError:
                break
        time.sleep(0.02)
    elif mode == "trickle" and time.monotonic() - tick >= 1:
        tick = time.monotonic()
        for fd in list(conns):
            try:
                conns[fd][0].send(b"x")
            except OSError:
                closed(fd)
st["still_open"] = len(conns)
for s, _ in conns.values():
    s.close()
st["closed_after_min_s"] = round(min(after), 2) if after else None
st["closed_after_max_s"] = round(max(after), 2) if after else None
print(json.dumps(st))
EOF

# poll.py SOCK UUID OUT: the well-behaved client, query-status every 100 ms
# on one connection; a line per reply: round trip in ms, the storage's
# heartbeat state and since_ok_ms, connections, and "clients" if any.
cat >"$T/poll.py" <<'EOF'
import json, socket, sys, time

s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
f = s.makefile("rb")
f.readline()
with open(sys.argv[3], "a", buffering=1) as out:
    while True:
        t = time.monotonic()
        s.sendall(b'{"execute":"query-status"}\n')
        line = f.readline()
        if not line:
            out.write("EOF\n")
            break
        rt = (time.monotonic() - t) * 1000
        r = json.loads(line)["return"]
        hb = next((x["heartbeat"] for x in r["storages"] if x["uuid"] == sys.argv[2]), None) or {}
        out.write("%.1f %s %s %d %s\n" % (rt, hb.get("state"), hb.get("since_ok_ms"), r["connections"],
                                          json.dumps(r.get("clients"), separators=(",", ":"))))
        time.sleep(max(0, 0.1 - (time.monotonic() - t)))
EOF

# churn.py SOCK DIR N SECONDS STOPFILE WATCH: setup and teardown of N
# storages of another host, until SECONDS pass or STOPFILE exists; the
# journal is read after each round for WATCH's events, so none is lost
# to the journal's bound.
cat >"$T/churn.py" <<'EOF'
import json, os, socket, sys, time

path, d, n, seconds, stop, watch = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5], sys.argv[6]
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(path)
f = s.makefile("rb")
f.readline()


def call(req):
    s.sendall(json.dumps(req).encode() + b"\n")
    return json.loads(f.readline())


host = "churn-" + "h" * 50
storages = []
for i in range(n):
    u = "churn-%02d-" % i + "s" * 50
    os.makedirs(os.path.join(d, u), exist_ok=True)
    storages.append({"uuid": u, "type": "file", "target": os.path.join(d, u),
                     "interval_ms": 1000, "victims": [os.environ["NOMATCH"]]})
seq = call({"execute": "query-status"})["return"]["last_seq"]
out = {"rounds": 0, "errors": 0, "events": 0, "lost": False, "watch_events": []}
end = time.monotonic() + seconds
while time.monotonic() < end and not os.path.exists(stop):
    for req in ({"execute": "setup", "arguments": {"host_uuid": host, "no_status_check": True,
                                                   "storages": storages}},
                {"execute": "teardown", "arguments": {"host_uuid": host}}):
        out["errors"] += "error" in call(req)
    out["rounds"] += 1
    r = call({"execute": "query-events", "arguments": {"since": seq}})["return"]
    out["lost"] |= r["lost"]
    out["events"] += len(r["events"])
    out["watch_events"] += [e["event"] for e in r["events"] if e["data"].get("storage") == watch]
    seq = r["last_seq"]
print(json.dumps(out))
EOF
export NOMATCH

# --- helpers ---------------------------------------------------------------

rq() { ctl_sock "$S" raw "$1"; }
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$P/status"; }
# flood MODE N SECONDS [READYFILE]: one phase's clients, in the background;
# FLOOD_PID, and its summary in $T/MODE.json.
flood() {
	timeout $(($3 + 20)) python3 "$T/flood.py" "$S" "$1" "$2" "$3" ${4:+"$4"} >"$T/$1.json" &
	FLOOD_PID=$!
	on_exit "kill $FLOOD_PID"
}
# RSS every 100 ms into $T/rss.MODE until stopped: RSS_PID.
rss_watch() {
	(while :; do rss_kb; sleep 0.1; done) >"$T/rss.$1" &
	RSS_PID=$!
	on_exit "kill $RSS_PID"
}
max_of() { sort -n "$1" | tail -1; }
# Open connections, the one asking not counted.
conns() { echo $(($(rq '{"execute":"query-status"}' | jqr .return.connections) - 1)); }
# idle_drops: connections closed for idleness, by the log's account (some
# one line each, the rest of a sweep summed up in one).
idle_drops() {
	awk '/no request for [0-9]+ s; closing it/ { n++ }
	     match($0, /closed [0-9]+ more connections that sent no request/) {
		split(substr($0, RSTART), w, " "); n += w[2] }
	     END { print n + 0 }' "$T/f.log"
}
slow_drops() { grep -c 'disconnecting a client that stopped reading' "$T/f.log"; }
refusals() {
	awk '/refusing a connection: [0-9]+ already open/ { n++ }
	     match($0, /refused [0-9]+ more connections/) {
		split(substr($0, RSTART), w, " "); n += w[2] }
	     END { print n + 0 }' "$T/f.log"
}
# The well-behaved client's lines since line $1: max round trip, states.
polls_since() { tail -n +"$1" "$T/poll"; }
poll_mark() { wc -l <"$T/poll"; }
check_polls() { # phase mark
	local p=$1 from=$(($2 + 1)) n rt bad so
	n=$(polls_since "$from" | grep -vc EOF)
	rt=$(polls_since "$from" | awk '$1 + 0 > m { m = $1 + 0 } END { print m + 0 }')
	bad=$(polls_since "$from" | awk '$2 != "healthy"' | wc -l)
	so=$(polls_since "$from" | awk '$3 + 0 > m { m = $3 + 0 } END { print m + 0 }')
	echo "# $p: $n polls, slowest ${rt} ms, heartbeat since_ok_ms at most $so"
	check "$p: the well-behaved client was answered throughout ($n polls)" \
		eval '[ "$n" -ge 5 ] && ! polls_since "$from" | grep -q EOF'
	check "$p: ... each within $RT_MAX_MS ms (slowest $rt ms)" \
		awk -v m="$rt" -v b="$RT_MAX_MS" 'BEGIN { exit !(m <= b) }'
	check "$p: ... the healthy storage healthy in every reply" [ "$bad" -eq 0 ]
}
# The heartbeat events of hs in the journal after seq $1 (none expected).
hs_trouble() {
	rq "{\"execute\":\"query-events\",\"arguments\":{\"since\":$1}}" |
		jq -r '[.return.events[] | select(.data.storage == "hs" and
			(.event == "HEARTBEAT_LATE" or .event == "FENCE_FIRED")) | .event] | join(" ")'
}
last_seq() { rq '{"execute":"query-status"}' | jqr .return.last_seq; }
hs_state() {
	rq '{"execute":"query-status"}' | jqr '.return.storages[] | select(.uuid == "hs") | .heartbeat.state'
}
check_healthy() { # phase seq-before
	local t
	t=$(hs_trouble "$2")
	check "$1: no HEARTBEAT_LATE or FENCE_FIRED of the healthy storage${t:+ ($t)}" [ -z "$t" ]
	# What the daemon said of it, and of its own lag, when it was not.
	[ -z "$t" ] || grep -E 'hs:|"hs"|CORE_LAG|warning|crit|error' "$T/f.log" |
		tail -25 | sed 's/^/#   /'
	# What failed is counted: the next phase starts healthy again.
	if [ "$(hs_state)" = fenced ]; then
		rq '{"execute":"unfence","arguments":{"uuid":"hs"}}' >/dev/null
		wait_until 5 eval '[ "$(hs_state)" = healthy ]'
	fi
}
# A sanitizer's allocator keeps freed memory in quarantine: RSS is shown
# but not judged then.
SANITIZED=$(sanitizer_build "$IOFENCED" && echo 1)
check_rss_back() { # phase
	local now
	[ -n "$SANITIZED" ] ||
		wait_until 5 eval '[ "$(rss_kb)" -le $((RSS0 + RSS_SLACK_KB)) ]'
	now=$(rss_kb)
	echo "# $1: RSS ${RSS0} kB before, $(max_of "$T/rss.$1") kB at most during, $now kB after"
	if [ -n "$SANITIZED" ]; then
		skip "$1: RSS under a sanitizer, whose quarantine keeps what was freed"
		return
	fi
	check "$1: RSS back within 64 MiB of where it started ($now kB, from $RSS0 kB)" \
		[ "$now" -le $((RSS0 + RSS_SLACK_KB)) ]
}
# clients NAME: the counter from query-status "clients", empty without it.
clients() { rq '{"execute":"query-status"}' | jq -r ".return.clients.$1 // empty"; }

# --- the daemon and its healthy storage ------------------------------------

start_daemon f --no-bpf --max-connections $MAXC --idle-timeout $IDLE ||
	{ not_ok "daemon starts"; exit 1; }
S=$SOCK_f P=$PID_f
mkdir -p "$T/healthy" "$T/churn"
ctl_sock "$S" set-host-state connected >/dev/null
out=$(ctl_sock "$S" --json setup --no-status-check --host H \
	--storage "uuid=hs,type=file,target=$T/healthy,interval=200ms,attempts=5,victims=$NOMATCH" 2>&1)
check "a healthy storage is armed" \
	[ "$(jq -r '.storages[0].result' <<<"$out" 2>/dev/null)" = armed ]
: >"$T/poll"
python3 "$T/poll.py" "$S" hs "$T/poll" &
on_exit "kill $!"
wait_until 5 eval '[ "$(poll_mark)" -ge 10 ]'
RSS0=$(rss_kb)
echo "# RSS at the start: $RSS0 kB"
HAS_CLIENTS=$([ -n "$(clients connections)" ] && echo 1)
[ -n "$HAS_CLIENTS" ] ||
	skip "query-status has no \"clients\" yet: counters checked from the log only"

# --- 1. clients that never read --------------------------------------------

seq0=$(last_seq) mark=$(poll_mark)
rss_watch nonreader
flood nonreader $NONREADERS 6
paused_max=0
for ((i = 0; i < 50; i++)); do
	[ -n "$HAS_CLIENTS" ] && {
		p=$(clients paused)
		[ "${p:-0}" -gt "$paused_max" ] && paused_max=$p
	}
	kill -0 "$FLOOD_PID" 2>/dev/null || break
	sleep 0.2
done
wait "$FLOOD_PID"
r=$(cat "$T/nonreader.json")
echo "# 1: $r"
check "1: $NONREADERS clients that never read connected ($(jq -r .accepted <<<"$r") accepted)" \
	[ "$(jq -r '.accepted >= '$NONREADERS <<<"$r")" = true ]
check "1: ... paused, then let go once idle ($(jq -r .closed_by_server <<<"$r") let go)" \
	[ "$(jq -r '.closed_by_server >= '$NONREADERS <<<"$r")" = true ]
check "1: ... each logged and counted ($(idle_drops) idle drops in the log)" \
	[ "$(idle_drops)" -ge $NONREADERS ]
if [ -n "$HAS_CLIENTS" ]; then
	check "1: ... \"paused\" counted them (at most $paused_max at once)" \
		[ "$paused_max" -ge $((NONREADERS / 2)) ]
	check "1: ... \"dropped_idle\" too" [ "$(clients dropped_idle)" -ge $NONREADERS ]
fi
check "1: the connections are gone after it" wait_until 5 eval '[ "$(conns)" -eq 1 ]'
check_polls 1 "$mark"
check_healthy 1 "$seq0"
kill "$RSS_PID"
check_rss_back nonreader

# --- 2. idle connections up to the limit -----------------------------------

seq0=$(last_seq) mark=$(poll_mark) refused0=$(refusals) idle0=$(idle_drops)
rss_watch idle
flood idle $((MAXC + 50)) 10 "$T/idle.ready" # one is the poller's
wait_until 10 test -e "$T/idle.ready"
out=$(ctl_sock "$S" version 2>&1)
rc=$?
check "2: while full, a new connection is refused (exit $rc)" [ $rc -ne 0 ]
check "2: ... with a clear error: $out" grep -q "connections: at most $MAXC at once" <<<"$out"
wait "$FLOOD_PID"
r=$(cat "$T/idle.json")
echo "# 2: $r"
check "2: the connections up to the limit were accepted ($(jq -r .accepted <<<"$r"))" \
	[ "$(jq -r .accepted <<<"$r")" -eq $((MAXC - 1)) ]
check "2: ... the rest refused, saying why" \
	[ "$(jq -r '.refused == 51 and (.refusal | test("at most '$MAXC'"))' <<<"$r")" = true ]
check "2: ... all let go by the idle timeout, after ${IDLE} s or a sweep more" \
	[ "$(jq -r ".closed_by_server == $((MAXC - 1)) and .closed_after_min_s >= $IDLE and
		.closed_after_max_s < $IDLE + 4" <<<"$r")" = true ]
check "2: ... told so with a Timeout error" \
	[ "$(jq -r .timeout_msgs <<<"$r")" -eq $((MAXC - 1)) ]
n_idle=$(($(idle_drops) - idle0)) n_ref=$(($(refusals) - refused0))
check "2: ... logged ($n_idle idle drops, $n_ref refusals)" \
	eval '[ $n_idle -eq $((MAXC - 1)) ] && [ $n_ref -ge 52 ]'
check "2: new connections are accepted again" eval 'ctl_sock "$S" version >/dev/null'
[ -n "$HAS_CLIENTS" ] &&
	check "2: \"refused_full\" counted the refusals" [ "$(clients refused_full)" -ge 51 ]
check_polls 2 "$mark"
check_healthy 2 "$seq0"
kill "$RSS_PID"
check_rss_back idle

# --- 3. one byte a second ----------------------------------------------------

seq0=$(last_seq) mark=$(poll_mark)
flood trickle $TRICKLERS 10
wait "$FLOOD_PID"
r=$(cat "$T/trickle.json")
echo "# 3: $r"
check "3: $TRICKLERS clients that never end a line are let go as idle" \
	[ "$(jq -r ".accepted == $TRICKLERS and .closed_by_server == $TRICKLERS and
		.closed_after_min_s >= $IDLE and .closed_after_max_s < $IDLE + 4 and
		.timeout_msgs == $TRICKLERS" <<<"$r")" = true ]
check_polls 3 "$mark"
check_healthy 3 "$seq0"

# --- 4. subscribers that never read ----------------------------------------

seq0=$(last_seq) mark=$(poll_mark) slow0=$(slow_drops)
rss_watch subscriber
flood subscriber $SUBSCRIBERS 40
# Waiting is a subscriber's job: the idle timeout passes them by.
sleep $((IDLE + 2))
check "4: $SUBSCRIBERS subscribers outlive the idle timeout" \
	[ "$(conns)" -eq $((SUBSCRIBERS + 1)) ]
timeout 60 python3 "$T/churn.py" "$S" "$T/churn" 64 30 "$T/churn.stop" hs >"$T/churn.json" &
churn=$!
on_exit "kill $churn"
wait "$FLOOD_PID"
touch "$T/churn.stop"
wait "$churn"
r=$(cat "$T/subscriber.json") c=$(cat "$T/churn.json")
echo "# 4: $r"
echo "# 4: churn $c"
check "4: events flowed ($(jq -r .events <<<"$c") in $(jq -r .rounds <<<"$c") rounds, no error)" \
	[ "$(jq -r '.events > 0 and .errors == 0' <<<"$c")" = true ]
check "4: the subscribers were let go once over the output limit" \
	[ "$(jq -r ".accepted == $SUBSCRIBERS and .closed_by_server == $SUBSCRIBERS and
		.closed_after_min_s > $IDLE + 1" <<<"$r")" = true ]
check "4: ... each logged ($(($(slow_drops) - slow0)))" \
	[ $(($(slow_drops) - slow0)) -eq $SUBSCRIBERS ]
[ -n "$HAS_CLIENTS" ] &&
	check "4: ... and counted in \"dropped_slow\"" [ "$(clients dropped_slow)" -ge $SUBSCRIBERS ]
check "4: no HEARTBEAT_LATE or FENCE_FIRED of the healthy storage meanwhile" \
	[ "$(jq -r '.watch_events | map(select(. == "HEARTBEAT_LATE" or . == "FENCE_FIRED")) | length' <<<"$c")" -eq 0 ]
check_polls 4 "$mark"
check_healthy 4 "$seq0"
kill "$RSS_PID"
check_rss_back subscriber

# --- the end -----------------------------------------------------------------

st=$(rq '{"execute":"query-status"}')
hb=$(jq -c '.return.storages[] | select(.uuid == "hs") | .heartbeat' <<<"$st")
echo "# the healthy storage at the end: $hb"
echo "# the daemon's lag at the end: $(jq -c .return.lag <<<"$st")"
check "the healthy storage is healthy at the end" \
	[ "$(jq -r .state <<<"$hb")" = healthy ]
check "the daemon is alive and alone with its one client" \
	eval '[ "$(conns)" -eq 1 ] && kill -0 "$P"'
