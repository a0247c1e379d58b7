#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# SIGKILL at random points (issue 12, faults), seeded: the seed is
# printed, and FAULT_SEED=N makes the same choices again (which request,
# which delay; the machine's timing still moves the exact point). Four
# kinds of kill point; the CI default is 200 kills: FAULT_A=16 kills in
# a stream, FAULT_B=5 kills of a fenced daemon plus FAULT_FENCE_CYCLES=2
# from healthy, FAULT_C=28 starts each killed FAULT_C_BURST=6 times
# during its re-arm (168), FAULT_D=9 flights killed while they persist.
# FAULT_ITERATIONS=N sets A, B, C and D to N at once (the long run:
# FAULT_ITERATIONS=50 FAULT_FENCE_CYCLES=4, 454 kills); FAULT_KINDS=ABCD
# picks the kinds; FAULT_KEEP=DIR keeps the daemon logs, status and
# journal of a restart whose victims survive.
#   A  a stream of setup, teardown and set-host-state, each request sent
#      once the reply to the one before came (iofencectl raw);
#   B  a storage fenced (its heartbeats fail: faultfs eio) while its
#      victims are killed, new ones started at each kill; a few times
#      from healthy through the fence's firing (FAULT_FENCE_CYCLES);
#      with the BPF tracker where it loads, its pins taken over;
#   C  the re-arm at start-up, on storages whose record reads are slow
#      (a burst of kills, each during a start, then a start checked);
#   D  a flight whose state write is slow (the state dir on faultfs,
#      state.tmp slowed), killed while it persists.
# After each restart: the armed set is the state after the last reply
# the client got, or after the request that was under way, never a mix;
# the host state one that a reply or the state file held; a fence that a
# subscriber was shown is still there, in the daemon and, where the
# tracker holds a kernel fence (BPF LSM), in its slot; its victims die,
# or the fence escalates; a restored fence's first search settles it
# (FENCE_COMPLETED, with FENCE_ESCALATED when it could not finish);
# the journal has no number twice and its numbers only grow; nothing is
# left unarmed. Every daemon but B's runs with --no-bpf.
. "$(dirname "$0")/../e2e/isolation.sh"
export LC_ALL=C

SEED=${FAULT_SEED:-$(($(date +%s%N) / 1000 % 1000000))}
NA=${FAULT_A:-${FAULT_ITERATIONS:-16}}
NB=${FAULT_B:-${FAULT_ITERATIONS:-5}}
NC=${FAULT_C:-${FAULT_ITERATIONS:-28}}
ND=${FAULT_D:-${FAULT_ITERATIONS:-9}}
BURST=${FAULT_C_BURST:-6}
CYCLES=${FAULT_FENCE_CYCLES:-2}
KINDS=${FAULT_KINDS:-ABCD}
RANDOM=$SEED
echo "# FAULT_SEED=$SEED FAULT_A=$NA FAULT_B=$NB FAULT_C=$NC FAULT_C_BURST=$BURST FAULT_D=$ND FAULT_FENCE_CYCLES=$CYCLES FAULT_KINDS=$KINDS (FAULT_SEED=$SEED reproduces these choices)"
# Kills per kind, said at the end.
declare -A KILLS=()
killed() { KILLS[$1]=$((${KILLS[$1]:-0} + 1)); }
NOBODY=victims=iofence-test-nobody

# --- one daemon at a time, restarted many times -----------------------------

# The current daemon: its pid and start time, so that the cleanup never
# signals a recycled pid. Each run has its own log, k<run>.log.
D_PID='' D_START='' D_RUN=0 D_SOCK='' D_LOG=''
d_alive() { [ -n "$D_PID" ] && pid_alive "$D_PID" && [ "$(pid_start "$D_PID")" = "$D_START" ]; }
d_kill() {
	d_alive && kill -KILL "$D_PID" 2>/dev/null
	[ -z "$D_PID" ] || wait "$D_PID" 2>/dev/null
	D_PID=''
}
on_exit d_kill
# d_spawn STATE [options...]: a daemon on $T/STATE.state, socket
# $T/STATE.sock; does not wait for it.
d_spawn() {
	local st=$1
	shift
	D_RUN=$((D_RUN + 1))
	D_SOCK=$T/$st.sock D_LOG=$T/k$D_RUN.log
	"$IOFENCED" --foreground --socket "$D_SOCK" --state-dir "$T/$st.state" \
		--watchdog none "$@" >"$D_LOG" 2>&1 &
	D_PID=$!
	D_START=$(pid_start "$D_PID")
}
d_start() { # STATE [options...]: spawned, and answering within 10 s
	d_spawn "$@"
	daemon_answers "k$D_RUN" "$D_SOCK" "$D_PID" "$D_LOG" 10
}
rq() { ctl_t 20 "$D_SOCK" raw "$1"; }
status() { rq '{"execute":"query-status"}'; }
journal() { rq '{"execute":"query-events","arguments":{"since":0}}' | jq -c .return; }
# ms_sleep MS
ms_sleep() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }

# The journal after a restart: numbers unique and growing, above every
# number seen before, and every event seen before that it still holds
# the same. Keeps what it holds in SEEN. Returns 1 when any is not so.
SEEN=$T/seen.jsonl
: >"$SEEN"
SEEN_MAX=0
journal_ok() { # label
	local j bad
	j=$(journal) || { echo "# $1: no journal"; return 1; }
	bad=$(jq -rn --slurpfile seen "$SEEN" --argjson j "$j" --argjson max "$SEEN_MAX" '
		($j.events | map(.seq)) as $s |
		($j.events | map({key: (.seq | tostring), value: .}) | from_entries) as $m |
		[if $s != ($s | unique) then "repeated or unordered seq" else empty end,
		 if ($j.last_seq // 0) < $max then "last_seq \($j.last_seq) below \($max), seen before" else empty end,
		 ($seen[] | select($m[.seq | tostring] != null and $m[.seq | tostring] != .) |
			"seq \(.seq) was \(.event), now \($m[.seq | tostring].event)")] | join("; ")')
	# The journal only drops its oldest: what it holds now is all that
	# the next look can compare.
	jq -c '.events[]' <<<"$j" >"$SEEN"
	SEEN_MAX=$(jq '.last_seq // 0' <<<"$j")
	[ -z "$bad" ] && return 0
	echo "# $1: journal: $bad"
	return 1
}
# unarmed_none: every stored storage is armed (none listed unarmed).
unarmed_none() { [ "$(status | jq '.return.unarmed // [] | length')" = 0 ]; }

# Per-kind tallies, checked once per kind.
declare -A BAD
bad() { BAD[$1]=$((${BAD[$1]:-0} + 1)); }
tally() { # kind label key
	check "$1: $2 (${BAD[$3]:-0} bad)" [ "${BAD[$3]:-0}" = 0 ]
}

# --- A: a stream of setup, teardown, set-host-state --------------------------

# The model: "uuid=interval/reconnect ..." sorted, and the host state.
observed() {
	status | jqr '[.return.storages[] | "\(.uuid)=\(.params.interval_ms)/\(.reconnect)"] | sort | join(" ")'
}
model_apply() { # model op...
	local -A m=()
	local e u
	for e in $1; do m[${e%%=*}]=${e#*=}; done
	shift
	case $1 in
	setup)
		if [ -z "${m[$2]}" ] || [ "${m[$2]%/*}" != "$3" ]; then m[$2]="$3/$4"; fi ;;
	teardown)
		shift
		for u; do unset "m[$u]"; done ;;
	esac
	for u in "${!m[@]}"; do echo "$u=${m[$u]}"; done | sort | paste -sd' '
}
op_json() { # op...
	local u l=()
	case $1 in
	setup)
		printf '{"execute":"setup","arguments":{"host_uuid":"h1","no_status_check":true,"reconnect":%s,"storages":[{"uuid":"%s","type":"file","target":"%s","interval_ms":%s,"victims":["iofence-test-nobody"]}]}}\n' \
			"$4" "$2" "${TBASE:-$T/a}/$2" "$3" ;;
	teardown)
		shift
		for u; do l+=("\"$u\""); done
		printf '{"execute":"teardown","arguments":{"host_uuid":"h1","storages":[%s]}}\n' \
			"$(IFS=,; echo "${l[*]}")" ;;
	hs)
		printf '{"execute":"set-host-state","arguments":{"state":"%s"}}\n' "$2" ;;
	esac
}
# rand_op: one request of the stream, chosen by the seeded generator
# (in this shell: a $(...) would not move its state).
rand_op() {
	local r=$((RANDOM % 10)) u=s$((RANDOM % 5 + 1)) iv=$(((RANDOM % 3 + 2) * 500))
	local rc=false hs=(connecting connected disconnected)
	((RANDOM % 2)) && rc=true
	if ((r < 5)); then
		OP="setup $u $iv $rc"
	elif ((r < 8)); then
		OP="teardown $u"
		local u2=s$((RANDOM % 5 + 1))
		((r == 7)) && [ "$u2" != "$u" ] && OP="teardown $u $u2"
	else
		OP="hs ${hs[$((RANDOM % 3))]}"
	fi
}

kind_a() {
	local i k n M E HS got hs_got ops out cpid lastp j allowed hits=''
	mkdir -p "$T/a/s1" "$T/a/s2" "$T/a/s3" "$T/a/s4" "$T/a/s5"
	d_start a --no-bpf || { not_ok "A: daemon starts"; return; }
	M=$(observed) HSNOW=$(status | jqr .return.host_state)
	journal_ok "A start" || bad a_journal
	for ((i = 1; i <= NA; i++)); do
		n=$((RANDOM % 25 + 10))
		E=("$M") HS=("$HSNOW") ops=()
		: >"$T/a.in"
		for ((k = 0; k < n; k++)); do
			rand_op
			op_json $OP >>"$T/a.in"
			case $OP in
			hs*) HS+=("${OP#hs }") ;;
			*) HS+=("${HS[$k]}") ;;
			esac
			ops[$k]=$OP
		done
		timeout 20 "$IOFENCECTL" --socket "$D_SOCK" raw <"$T/a.in" >"$T/a.out" 2>/dev/null &
		cpid=$!
		# Half of the kills count from the client's start, half from
		# its first reply (a slow client would else be hit before it
		# sends anything).
		if ((RANDOM % 2)); then
			wait_until 2 test -s "$T/a.out"
		fi
		ms_sleep $((RANDOM % 40))
		d_kill
		killed A
		wait "$cpid" 2>/dev/null
		k=$(wc -l <"$T/a.out")
		[ "$(jq -s '[.[] | select(.error)] | length' "$T/a.out")" = 0 ] || {
			bad a_stream
			echo "# A$i: an error reply: $(jq -c 'select(.error)' "$T/a.out" | head -1)"
		}
		d_start a --no-bpf || { not_ok "A$i: restart"; return; }
		# The model after each request, up to the one under way.
		for ((j = 0; j < k + 1 && j < n; j++)); do
			E+=("$(model_apply "${E[$j]}" ${ops[$j]})")
		done
		got=$(observed)
		if [ "$got" = "${E[$k]}" ]; then
			hits+=" $k/$n:before"
		elif ((k < n)) && [ "$got" = "${E[$((k + 1))]}" ]; then
			hits+=" $k/$n:after"
		else
			bad a_state
			echo "# A$i: $k of $n replies; armed '$got', want '${E[$k]}' or '${E[$((k + 1))]}' (${ops[*]:0:$((k + 1))})"
		fi
		M=$got
		# set-host-state replies before its write: the host state is
		# one of those from the last write that a reply vouched for (a
		# setup's or teardown's) to the request under way.
		hs_got=$(status | jqr .return.host_state)
		lastp=0
		for ((j = 0; j < k; j++)); do
			case ${ops[$j]} in hs*) ;; *) lastp=$((j + 1)) ;; esac
		done
		allowed=" ${HS[*]:$lastp:$((k - lastp + 2))} "
		[[ $allowed == *" $hs_got "* ]] || {
			bad a_host
			echo "# A$i: host state '$hs_got', want one of:$allowed"
		}
		HSNOW=$hs_got
		unarmed_none || bad a_unarmed
		journal_ok "A$i" || bad a_journal
	done
	echo "# A: kill points (replies received/sent:state found):$hits"
	tally A "$NA kills in a stream: every reply a success" a_stream
	tally A "$NA kills in a stream: armed set before or after the request under way, never a mix" a_state
	tally A "$NA kills in a stream: host state one that a reply or the state file held" a_host
	tally A "$NA kills in a stream: nothing unarmed after a restart" a_unarmed
	tally A "$NA kills in a stream: the journal never repeats a number, never goes back" a_journal
	d_kill
}

# --- B: a fenced storage, its victims being killed ----------------------------

PIN=''
B_OPTS=(--no-bpf)
B_IV=200 B_TMO=1000 B_GRACE=300
B_SPEC="interval_ms=$B_IV,timeout_ms=$B_TMO,kill_grace_ms=$B_GRACE,victims=$VM"
st_of() { # uuid: its heartbeat state
	status | jqr --arg u "$1" '.return.storages[] | select(.uuid == $u) | .heartbeat.state'
}
kfence_of() { # uuid: its kernel fence (io.kernel_fence), or null
	status | jq -c --arg u "$1" '.return.storages[] | select(.uuid == $u) | .io.kernel_fence // null'
}
# The subscriber of the current daemon: its events, one JSON line each.
watch_start() {
	: >"$T/watch.out"
	"$IOFENCECTL" --socket "$D_SOCK" --json watch >>"$T/watch.out" 2>/dev/null &
	W_PID=$!
}
watch_saw() { # event storage
	jqe -s --arg e "$1" --arg s "$2" 'any(.[]; .event == $e and .data.storage == $s)' <"$T/watch.out"
}
watch_end() { kill "$W_PID" 2>/dev/null; wait "$W_PID" 2>/dev/null; [ -z "${FAULT_DEBUG:-}" ] || { echo "# watch:"; head -c 3000 "$T/watch.out"; }; }
# victims NAME COUNT: COUNT dummy VMs with the storage's image open;
# their pids in the array NAME.
spawn_victims() {
	local -n arr=$1
	local p
	arr=()
	for ((p = 0; p < $2; p++)); do
		proc_spawn v 'exec "$QSLEEP" 1000 3<>"$BM/f/vm.img"'
		arr+=("$v")
	done
	# Victims once they run the VM's program (a fork not yet exec'd is
	# no victim by the filter).
	for p in "${arr[@]}"; do
		wait_until 2 eval '[ "$(readlink /proc/$p/exe)" = "$QSLEEP" ]'
	done
}
# After a restart: fenced at once if a subscriber was shown the fence,
# else within T of the restart; the kernel's fence where it holds one;
# every victim dead; the healthy storage healthy.
after_restart_b() { # label shown(0/1) victims...
	local label=$1 shown=$2 st kf
	shift 2
	st=$(st_of f)
	if [ "$shown" = 1 ] && [ "$st" != fenced ]; then
		bad b_kept
		echo "# $label: the fence was shown before the kill, the restarted daemon says '$st'"
	fi
	wait_until $(((B_TMO + 2000) / 1000)) eval '[ "$(st_of f)" = fenced ]' || {
		bad b_fenced
		echo "# $label: not fenced after the restart: $(st_of f)"
	}
	kf=$(kfence_of f)
	if jqe '.active == true' <<<"$kf"; then
		jqe '.fenced == true' <<<"$kf" || {
			bad b_kernel
			echo "# $label: the kernel fence is not set: $kf"
		}
		KF_SEEN=held
	elif [ "$kf" != null ]; then
		KF_SEEN=${KF_SEEN:-"not held (no BPF LSM): $kf"}
	fi
	# Every victim dies, or (the contract of force) the fence escalated,
	# its search unfinished or a victim alive: the watchdog then resets
	# the host. The second is counted and said.
	if ! wait_until 10 all_killed "$@"; then
		if [ "$(hb_of "$D_SOCK" f | jqr .fence.escalated)" = true ]; then
			B_ESCALATED=$((${B_ESCALATED:-0} + 1))
			echo "# $label: victims alive, the fence escalated (the watchdog's reset): $(hb_of "$D_SOCK" f | jq -c '.fence | {completed, escalated, scan}')"
		else
			bad b_victims
			echo "# $label: victims still alive after the restart, no escalation:$(for p in "$@"; do proc_killed "$p" || echo -n " $p($(pid_state "$p"))"; done)"
			grep -v 'HEARTBEAT' "$D_LOG" | tail -25 | cut -c1-400 | sed 's/^/#   /'
			if [ -n "${FAULT_KEEP:-}" ]; then
				mkdir -p "$FAULT_KEEP"
				cp "$T"/k*.log "$FAULT_KEEP/" 2>/dev/null
				hb_of "$D_SOCK" f >"$FAULT_KEEP/$label.hb.json"
				status >"$FAULT_KEEP/$label.status.json"
				journal >"$FAULT_KEEP/$label.journal.json"
				cp -r "$T/b.state" "$FAULT_KEEP/" 2>/dev/null
				for p in "$@"; do echo "$p: $(cat /proc/$p/stat 2>/dev/null) exe=$(readlink /proc/$p/exe) fds=$(ls -l /proc/$p/fd 2>/dev/null | tr '\n' ' ')"; done >"$FAULT_KEEP/$label.victims"
			fi
		fi
	fi
	# This daemon's own verdict on the fence: FENCE_COMPLETED (a
	# restored fence's first search is held to kill_grace too), and
	# FENCE_ESCALATED with it unless that search completed; a fence
	# escalated before the kill stays so, with nothing more to say.
	if wait_until $(((B_GRACE + 3000) / 1000)) eval 'grep -q "event FENCE_COMPLETED .*\"storage\":\"f\"" "$D_LOG" ||
		[ "$(hb_of "$D_SOCK" f | jqr .fence.escalated)" = true ]'; then
		hb_of "$D_SOCK" f | jqe '.fence.escalated or .fence.scan.complete' || {
			bad b_settled
			echo "# $label: the fence's search did not complete, and it did not escalate: $(hb_of "$D_SOCK" f | jq -c .fence)"
		}
	else
		bad b_settled
		echo "# $label: no FENCE_COMPLETED from the restarted daemon: $(hb_of "$D_SOCK" f | jq -c .fence)"
	fi
	[ "$(st_of ok)" = healthy ] || { bad b_healthy; echo "# $label: ok is $(st_of ok)"; }
	unarmed_none || bad b_unarmed
	journal_ok "$label" || bad b_journal
	for p in "$@"; do proc_kill "$p"; done
}

kind_b() {
	local i c at shown vs=() t_break t_restart ev fired
	ff_mount BM bm || { not_ok "B: faultfs mounts"; return; }
	mkdir -p "$BM/f" "$T/b/ok"
	truncate -s 1M "$BM/f/vm.img"
	if [ -d /sys/fs/bpf ] && [ "$(stat -f -c %T /sys/fs/bpf)" = bpf_fs ]; then
		PIN=$(pin_dir)
		on_exit "rm -rf '$PIN'"
		B_OPTS=(--pin-dir "$PIN")
	else
		skip "B: no bpffs on /sys/fs/bpf: the fenced storage's daemons run without the BPF tracker"
	fi
	d_start b "${B_OPTS[@]}" || { not_ok "B: daemon starts"; return; }
	arm_storages "$D_SOCK" h1 "uuid=f,type=file,target=$BM/f,$B_SPEC" \
		"uuid=ok,type=file,target=$T/b/ok,interval_ms=$B_IV,timeout_ms=30000,$NOBODY" ||
		{ not_ok "B: storages armed"; return; }
	journal_ok "B start" || bad b_journal
	# From healthy through the fence: kills before it fires, while its
	# victims die, after.
	for ((c = 1; c <= CYCLES; c++)); do
		wait_until 5 hb_wrote "$D_SOCK" f 2
		spawn_victims vs 6
		watch_start
		# Odd cycles before the fence fires, even ones while its
		# victims die or after.
		if ((c % 2)); then
			at=$((B_TMO - 700 + RANDOM % 700))
		else
			at=$((B_TMO + RANDOM % (B_GRACE + 300)))
		fi
		faultfs_set "$BM" eio '*'
		t_break=$(now_ms)
		ms_sleep "$at"
		d_kill
		killed B
		watch_end
		shown=0
		watch_saw FENCE_FIRED f && shown=1
		echo "# B cycle $c: killed $at ms after the storage broke (fence shown: $shown)"
		t_restart=$(now_ms)
		d_start b "${B_OPTS[@]}" || { not_ok "B cycle $c: restart"; return; }
		after_restart_b "B cycle $c" "$shown" "${vs[@]}"
		# Fenced by T after the break, or, where the restarted daemon
		# cannot read its record (faultfs eio fails reads too) and so
		# counts from its re-arm, by T after the restart: a gap of the
		# design (Documentation/design.md, section 14).
		ev=$(journal_of "$D_SOCK" | jq -c --argjson t "$t_break" '[.[] | select(.event == "FENCE_FIRED" and
			.data.storage == "f" and .timestamp.seconds * 1000 + .timestamp.microseconds / 1000 >= $t)][0] // empty')
		fired=$([ -n "$ev" ] && echo $(($(j_ms "$ev") - t_break)))
		# A fence whose state write went out before its event's did
		# is restored without one: its fenced_at (in seconds) then.
		[ -n "$fired" ] || fired=$(hb_of "$D_SOCK" f | jq --argjson t "$t_break" '.fence.fenced_at // empty | . * 1000 - $t')
		echo "# B cycle $c: FENCE_FIRED ${fired:-never} ms after the break, $((${fired:-0} + t_break - t_restart)) ms after the restart (T = $B_TMO ms)"
		[ -n "$fired" ] && { [ "$fired" -le $((B_TMO + 1500)) ] ||
			[ $((fired + t_break - t_restart)) -le $((B_TMO + 1500)) ]; } || bad b_late
		# Back to healthy, for the next cycle.
		faultfs_set "$BM" healthy '*'
		wait_until 5 eval '[ "$(hb_of "$D_SOCK" f | jqr .fence.restored)" = true ]' ||
			wait_until 3 eval 'j_has "$D_SOCK" STORAGE_RESTORED f'
		wait_until 5 eval 'ctl_t 5 "$D_SOCK" unfence f >/dev/null 2>&1' ||
			echo "# B cycle $c: unfence refused: $(ctl_t 5 "$D_SOCK" unfence f 2>&1)"
		wait_until 3 eval '[ "$(st_of f)" = healthy ]' || echo "# B cycle $c: f stays $(st_of f)"
	done
	# Fenced, with new victims at every kill: the fence is shown, so it
	# must outlive each kill, and the new victims must die.
	faultfs_set "$BM" eio '*'
	wait_until $(((B_TMO + 3000) / 1000)) eval '[ "$(st_of f)" = fenced ]' ||
		{ not_ok "B: f fenced"; return; }
	for ((i = 1; i <= NB; i++)); do
		watch_start
		spawn_victims vs $((RANDOM % 4 + 1))
		ms_sleep $((RANDOM % (2 * B_IV)))
		d_kill
		killed B
		watch_end
		d_start b "${B_OPTS[@]}" || { not_ok "B$i: restart"; return; }
		after_restart_b "B$i" 1 "${vs[@]}"
	done
	echo "# B: kernel fence ${KF_SEEN:-not reported (no tracker)}"
	tally B "$NB + $CYCLES kills of a fencing daemon: a fence shown is still there after the restart" b_kept
	tally B "$NB + $CYCLES kills: fenced after each restart" b_fenced
	tally B "$CYCLES kills from healthy: fenced by T + 1.5 s of the break, or of the restart" b_late
	tally B "$NB + $CYCLES kills: the kernel fence set where the tracker holds one" b_kernel
	echo "# B: ${B_ESCALATED:-0} restarts whose fence escalated (victim search unfinished) instead of killing"
	tally B "$NB + $CYCLES kills: every victim dies, or the fence escalates to the watchdog" b_victims
	tally B "$NB + $CYCLES kills: a restored fence's first search settles it (FENCE_COMPLETED; escalated unless complete)" b_settled
	tally B "$NB + $CYCLES kills: the healthy storage stays healthy" b_healthy
	tally B "$NB + $CYCLES kills: nothing unarmed" b_unarmed
	tally B "$NB + $CYCLES kills: the journal never repeats a number" b_journal
	faultfs_set "$BM" healthy '*'
	d_kill
}

# --- C: the re-arm at start-up -----------------------------------------------

kind_c() {
	local i b at want got specs=() u
	ff_mount CM cm || { not_ok "C: faultfs mounts"; return; }
	for u in c1 c2 c3; do
		mkdir -p "$CM/$u"
		specs+=("uuid=$u,type=file,target=$CM/$u,interval_ms=1000,timeout_ms=30000,$NOBODY")
	done
	for u in c4 c5; do
		mkdir -p "$T/c/$u"
		specs+=("uuid=$u,type=file,target=$T/c/$u,interval_ms=1000,timeout_ms=30000,$NOBODY")
	done
	d_start c --no-bpf || { not_ok "C: daemon starts"; return; }
	arm_storages "$D_SOCK" h1 "${specs[@]}" || { not_ok "C: storages armed"; return; }
	want=$(status | jqr '[.return.storages[].uuid] | sort | join(" ")')
	journal_ok "C start" || bad c_journal
	# Every read of c1..c3's records takes 150 ms from now on.
	faultfs_set "$CM" slow 150 '*'
	for ((i = 1; i <= NC; i++)); do
		d_kill
		# A burst: each start killed during its re-arm (or, now and
		# then, just after it); what is stored must outlive them all.
		for ((b = 1; b <= BURST; b++)); do
			at=$((RANDOM % 160))
			d_spawn c --no-bpf
			ms_sleep "$at"
			d_kill
			killed C
			grep -q 'ready on' "$D_LOG" && C_READY=$((${C_READY:-0} + 1))
		done
		d_start c --no-bpf || { not_ok "C$i: restart"; return; }
		got=$(status | jqr '[.return.storages[].uuid] | sort | join(" ")')
		[ "$got" = "$want" ] || { bad c_set; echo "# C$i (the last killed $at ms into its start): armed '$got', want '$want'"; }
		unarmed_none || { bad c_unarmed; echo "# C$i: unarmed: $(status | jq -c .return.unarmed)"; }
		journal_ok "C$i" || bad c_journal
	done
	echo "# C: ${C_READY:-0} of $((NC * BURST)) kills came after the daemon was ready, the rest during its start"
	tally C "$((NC * BURST)) kills during the re-arm: the armed set is the stored one" c_set
	tally C "$((NC * BURST)) kills during the re-arm: nothing left unarmed" c_unarmed
	tally C "$((NC * BURST)) kills during the re-arm: the journal never repeats a number" c_journal
	faultfs_set "$CM" healthy '*'
	d_kill
}

# --- D: a flight killed while it persists --------------------------------------

kind_d() {
	local i at before after got op u k
	ff_mount DM dm || { not_ok "D: faultfs mounts"; return; }
	mkdir -p "$T/d/d1" "$T/d/d2" "$T/d/d3"
	# The state dir is on faultfs; only its temporary file is slowed.
	mkdir -p "$DM/state"
	ln -s "$DM/state" "$T/d.state"
	d_start d --no-bpf || { not_ok "D: daemon starts"; return; }
	arm_storages "$D_SOCK" h1 "uuid=d1,type=file,target=$T/d/d1,$NOBODY" ||
		{ not_ok "D: d1 armed"; return; }
	journal_ok "D start" || bad d_journal
	faultfs_set "$DM" slow 120 state/state.tmp
	for ((i = 1; i <= ND; i++)); do
		before=$(observed)
		u=d$((RANDOM % 2 + 2))
		if [[ " $before " == *" $u="* ]]; then
			op="teardown $u"
		else
			op="setup $u 1000 false"
		fi
		after=$(model_apply "$before" $op)
		at=$((RANDOM % 320))
		timeout 20 "$IOFENCECTL" --socket "$D_SOCK" raw "$(TBASE=$T/d op_json $op)" >"$T/d.out" 2>/dev/null &
		k=$!
		ms_sleep "$at"
		d_kill
		killed D
		wait "$k" 2>/dev/null
		d_start d --no-bpf || { not_ok "D$i: restart"; return; }
		got=$(observed)
		if [ -s "$T/d.out" ]; then
			[ "$got" = "$after" ] || { bad d_state; echo "# D$i: replied, armed '$got', want '$after'"; }
			D_HITS+=" $at:replied"
		elif [ "$got" = "$before" ]; then
			D_HITS+=" $at:before"
		elif [ "$got" = "$after" ]; then
			D_HITS+=" $at:after"
		else
			bad d_state
			echo "# D$i ($op, killed at $at ms): armed '$got', want '$before' or '$after'"
		fi
		unarmed_none || bad d_unarmed
		journal_ok "D$i" || bad d_journal
	done
	echo "# D: kill points (ms after the request:state found):${D_HITS:-}"
	tally D "$ND kills while persisting: the armed set before or after, as the reply said" d_state
	tally D "$ND kills while persisting: nothing unarmed" d_unarmed
	tally D "$ND kills while persisting: the journal never repeats a number" d_journal
	faultfs_set "$DM" healthy '*'
	d_kill
}

# Each kind has a state dir of its own, and so a journal of its own.
journal_reset() { : >"$SEEN"; SEEN_MAX=0; }
t_start=$(mono_ms)
for k in A B C D; do
	[[ $KINDS == *$k* ]] || continue
	t_k=$(mono_ms)
	journal_reset
	"kind_${k,,}"
	echo "# $k: ${KILLS[$k]:-0} kills in $((($(mono_ms) - t_k) / 1000)) s"
done
echo "# kills: A ${KILLS[A]:-0}, B ${KILLS[B]:-0}, C ${KILLS[C]:-0}, D ${KILLS[D]:-0}; $(( ${KILLS[A]:-0} + ${KILLS[B]:-0} + ${KILLS[C]:-0} + ${KILLS[D]:-0} )) in all, $D_RUN daemons started in $((($(mono_ms) - t_start) / 1000)) s (FAULT_SEED=$SEED)"
