#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: alone (valgrind serialises the daemon: another test's process stuck on a dead mount would stop it whole)
#
# The daemon under valgrind's memcheck through one scenario end to end
# (issue 12): no definite leak, no invalid access. The plain build (-O2 -g,
# no sanitizer: valgrind cannot run an ASan binary), with the BPF tracker,
# two storages: a file storage on tmpfs that stays healthy and one on a
# faultfs mount that dies ("dead": every request hangs) and is fenced,
# restored, unfenced and torn down; then set-host-state and SIGTERM. Then
# valgrind's verdict: its exit status, its error summary, its leak summary.
#
# Valgrind slows the daemon down some 30 times: the timeline is in seconds
# (interval 1 s, timeout 8 s), every wait is generous. Under valgrind the
# daemon's io_uring loops wait in poll(2) (userspace/lib/loop.c): valgrind
# up to 3.22 holds its big lock across io_uring_enter(), which would stop
# every other thread. Valgrind (3.19 to this day) has no pidfd_send_signal,
# and before 3.21 no pidfd_open: there the fence cannot kill, and must say
# so in its victim search. Hung requests leave their callers in D state:
# the hang is released before anything is killed or unmounted.
. "$(dirname "$0")/../lib.sh"
need_root
FAULTFS=${FAULTFS:-$OUT/faultfs}
# shellcheck source=../faultfs/faultfs.sh
. "$(dirname "$0")/../faultfs/faultfs.sh"

command -v valgrind >/dev/null || { skip "valgrind not installed"; exit 0; }
for need in jq fusermount3 readelf; do
	command -v "$need" >/dev/null || { skip "$need is missing"; exit 0; }
done
[ -c /dev/fuse ] || { skip "/dev/fuse is missing"; exit 0; }
[ -x "$FAULTFS" ] || { not_ok "faultfs binary $FAULTFS (make tests)"; exit 1; }
[ -x "$IOFENCED" ] || { not_ok "daemon binary $IOFENCED (make all)"; exit 1; }
# The sanitizer pass of CI (SANITIZE=1): valgrind and ASan cannot share a
# process; the plain pass runs this test.
if sanitizer_build "$IOFENCED"; then
	skip "$IOFENCED is a sanitizer build: valgrind runs the plain one"
	exit 0
fi

# Valgrind 3.19 runs readlinkat() holding its big lock, as it does
# io_uring_enter(): a victim search that reads the exe of a process stuck
# in the kernel (an exec from a dead mount, another test's D-state VM)
# would stop the whole daemon, not one worker of it. Such a process on
# the host (not one of ours) is waited out for a while, then named.
stuck_exes() {
	local p
	for p in /proc/[0-9]*; do
		timeout 1 readlink "$p/exe" >/dev/null 2>&1
		[ $? -ne 124 ] || echo "${p#/proc/}"
	done
}
stuck=$(stuck_exes)
[ -z "$stuck" ] || wait_until 30 eval '[ -z "$(stuck_exes)" ]' || {
	skip "valgrind would stop the daemon: /proc/PID/exe of $(echo $stuck) does not answer (a process stuck in the kernel)"
	exit 0
}

T=$(readlink -f "$T")
# The binaries as they are now: a rebuild while the test runs changes nothing.
mkdir -p "$T/bin" "$T/vm"
if ! cp "$IOFENCED" "$T/bin/iofenced.real" || ! cp "$IOFENCECTL" "$FAULTFS" "$T/bin/"; then
	not_ok "copy $IOFENCED, $IOFENCECTL and $FAULTFS (make all tests)"
	exit 1
fi
IOFENCECTL=$T/bin/${IOFENCECTL##*/}
FAULTFS=$T/bin/${FAULTFS##*/}
export FAULTFS_LOG=$T/faultfs.out

# memcheck: a definite leak is an error, as is any invalid access; both
# make valgrind exit VG_RC. Uninitialised values are not looked for:
# memcheck cannot see what the kernel writes through io_uring (reads,
# statx, accept) or the bpf(2) commands it does not know, so what those
# fill counts as uninitialised. (Looked for, this scenario gives 6
# reports, every one inside libbpf: bpf_attr tails that libbpf leaves
# unset and valgrind's bpf wrapper checks, data valgrind does not know
# the kernel wrote; none in iofence's code.) fuse-compatible: stat, readlink, close and the like may
# block on a FUSE mount, and valgrind then lets the other threads run.
VG_RC=97
VG_LOG=$T/valgrind.log
SUPP=$(readlink -f "$(dirname "$0")/../valgrind.supp")
VG=(valgrind --tool=memcheck --leak-check=full "--show-leak-kinds=definite,indirect"
	--errors-for-leak-kinds=definite --undef-value-errors=no
	"--error-exitcode=$VG_RC" --track-fds=no --sim-hints=fuse-compatible
	--vgdb=no --num-callers=40 --log-file="$VG_LOG")
[ -f "$SUPP" ] && VG+=(--suppressions="$SUPP")
# libbpf reads the kernel's BTF (5 MiB) from sysfs, which hands it out
# 4 KiB per read(2), and valgrind checks the whole rest of the buffer at
# each read: a minute per start. The daemon runs in a mount namespace of
# its own where the same bytes are a tmpfs file (one read); mounts made
# outside (faultfs) reach it, nothing of its own leaves it.
BTF=/sys/kernel/btf/vmlinux
NS=()
if [ -r "$BTF" ] && cp "$BTF" "$T/vmlinux.btf" && command -v unshare >/dev/null; then
	NS=(unshare -m --propagation slave sh -c 'mount --bind "$0" '"$BTF"' && exec "$@"' "$T/vmlinux.btf")
fi
{
	echo '#!/bin/sh'
	printf 'exec'
	printf ' %q' "${NS[@]}" "${VG[@]}" "$T/bin/iofenced.real"
	printf ' "$@"\n'
} >"$T/bin/iofenced"
chmod +x "$T/bin/iofenced"
IOFENCED=$T/bin/iofenced

# The dummy VM: a copy of sleep under this run's own name, which only
# these storages' victim patterns match.
VM=qemu-vg-$$
cp /bin/sleep "$T/vm/$VM"
QSLEEP=$T/vm/$VM

# The healthy storage on tmpfs: nothing but the daemon can make it late.
OK=$(mktemp -d /dev/shm/iofence-ok.XXXXXX) || { not_ok "a tmpfs folder for the healthy storage"; exit 1; }
on_exit "rm -rf '$OK'"
PIN=$(pin_dir)
on_exit "rm -rf '$PIN'"

IV=1000 TMO=8000 GRACE=2000
SPEC="interval_ms=$IV,timeout_ms=$TMO,kill_grace_ms=$GRACE,strategy=kill-only,victims=$VM"

show_log() {
	echo "# log of the daemon:"
	grep -v ' event ' "$T/vg.log" | tail -30 | sed 's/^/#   /'
}
# ev_seq JOURNAL: the events of ff and of the host state, in order (the
# kills of a fenced storage come as often as its victims do: left out).
ev_seq() {
	jq -r '[.[] | select(.data.storage == "ff" or .event == "HOST_STATE_CHANGED") |
		select(.event != "FENCE_KILLED") | .event] | join(" ")' <<<"$1"
}

t_start=$(mono_ms)
ff_mount M ff || { not_ok "faultfs mounts"; exit 1; }
mkdir -p "$M/ff"
truncate -s 1M "$M/ff/vm.img"

# --- the daemon, two storages ------------------------------------------------

DAEMON_START_S=60 daemon_on vg vg --pin-dir "$PIN" ||
	{ not_ok "the daemon starts under valgrind"; exit 1; }
ok "the daemon answers under valgrind ($(($(mono_ms) - t_start)) ms after the test began)"
S=$SOCK_vg
check "it says it waits in poll(2) under valgrind" grep -q 'running under valgrind' "$T/vg.log"

arm_storages "$S" h1 "uuid=ok,type=file,target=$OK,$SPEC" "uuid=ff,type=file,target=$M/ff,$SPEC" ||
	{ not_ok "both storages armed"; show_log; exit 1; }
ok "both storages armed"
proc_spawn V 'exec "$QSLEEP" 1000 3<>"$M/ff/vm.img"'
check "heartbeats succeed on both" wait_until 30 eval 'hb_wrote "$S" ok 2 && hb_wrote "$S" ff 2'
st=$(ctl_t 20 "$S" --json status)
check "query-status: both healthy" \
	jqe '[.storages[] | select(.uuid == "ok" or .uuid == "ff") | .heartbeat.state] == ["healthy", "healthy"]' <<<"$st"
bpf=$(jq -c '.bpf.active' <<<"$st")
check "query-status: the BPF tracker runs under valgrind (active: $bpf)" [ "$bpf" = true ]
[ "$bpf" = true ] || grep -i bpf "$T/vg.log" | head -3 | sed 's/^/#   /'

# --- ff dies, is fenced, comes back ------------------------------------------

faultfs_set "$M" dead '*' || { not_ok "faultfs: mode dead"; exit 1; }
t_dead=$(mono_ms)
check "ff: FENCE_FIRED" wait_until $((TMO / 1000 + 30)) j_has "$S" FENCE_FIRED ff
echo "# ff fenced $(($(mono_ms) - t_dead)) ms after its mount died (timeout $TMO ms)"
check "ff: FENCE_COMPLETED" wait_until $((GRACE / 1000 + 30)) j_has "$S" FENCE_COMPLETED ff
j=$(journal_of "$S")
fired=$(j_first "$j" FENCE_FIRED ff)
done_=$(j_first "$j" FENCE_COMPLETED ff)
echo "# FENCE_FIRED victims $(jq -c '.data.victims' <<<"$fired"), scan $(jq -c '.data.scan' <<<"$fired")"
# Killed where valgrind has the pidfd calls; where it has not, the victim
# search says that it could not open the dummy, never that it is clean.
if jqe --argjson v "$V" '[.data.victims[]? | select(.pid == $v)] | length == 1' <<<"$fired"; then
	check "ff: the dummy VM $V is killed" wait_until 20 proc_killed "$V"
	check "ff: FENCE_COMPLETED: all dead" jqe '.data.all_dead' <<<"$done_"
else
	check "ff: the victim search names the dummy VM $V it could not open (valgrind has no pidfd calls)" \
		jqe --argjson v "$V" '.data.scan | .skipped >= 1 and .last_pid == $v and (.last_error | type) == "string"' <<<"$fired"
fi
check "ok: never fenced ($(j_count "$j" HEARTBEAT_LATE ok) late)" [ "$(j_count "$j" FENCE_FIRED ok)" = 0 ]

hangs_release
check "ff: STORAGE_RESTORED once released" wait_until 30 j_has "$S" STORAGE_RESTORED ff
out=$(ctl_t 20 "$S" unfence ff 2>&1)
check "ff: unfence ($(tr '\n' ' ' <<<"$out"))" j_has "$S" STORAGE_UNFENCED ff
out=$(ctl_t 30 "$S" teardown --host h1 --storage ff 2>&1)
check "ff: teardown ($(tr '\n' ' ' <<<"$out"))" grep -q 'ff: disarmed' <<<"$out"
out=$(ctl_t 20 "$S" set-host-state disconnected 2>&1)
check "set-host-state disconnected ($(tr '\n' ' ' <<<"$out"))" \
	eval '[ "$(ctl_t 20 "$S" --json status | jq -r .host_state)" = disconnected ]'
j=$(journal_of "$S")
seq=$(ev_seq "$j")
want="HOST_STATE_CHANGED ARMED HEARTBEAT_LATE FENCE_FIRED FENCE_COMPLETED STORAGE_RESTORED STORAGE_UNFENCED DISARMED HOST_STATE_CHANGED"
check "the events in order: $seq" [ "$seq" = "$want" ]
check "ok: never fenced" [ "$(j_count "$j" FENCE_FIRED ok)" = 0 ]
proc_kill "$V"

# --- SIGTERM, and valgrind's verdict -------------------------------------------

t_term=$(mono_ms)
daemon_stop vg 60
rc=$?
echo "# the daemon and valgrind's leak check took $(($(mono_ms) - t_term)) ms after SIGTERM"
check "SIGTERM: valgrind exits 0 (no error, the daemon's own status 0; $VG_RC: errors): $rc" [ "$rc" -eq 0 ]
[ "$t_fail" -eq 0 ] || show_log
if [ ! -s "$VG_LOG" ]; then
	not_ok "valgrind wrote its log $VG_LOG"
	exit 1
fi
errs=$(sed -n 's/.*ERROR SUMMARY: \([0-9]*\) errors.*/\1/p' "$VG_LOG" | tail -1)
check "valgrind: ERROR SUMMARY: ${errs:-none} errors" [ "$errs" = 0 ]
if grep -q 'All heap blocks were freed' "$VG_LOG"; then
	ok "valgrind: all heap blocks were freed"
else
	def=$(sed -n 's/.*definitely lost: \([0-9,]*\) bytes.*/\1/p' "$VG_LOG" | tail -1)
	check "valgrind: definitely lost: ${def:-none} bytes" [ "$def" = 0 ]
fi
sed -n '/HEAP SUMMARY/,$p' "$VG_LOG" | grep -E 'in use at exit|lost:|reachable:|suppressed:' |
	sed 's/^==[0-9]*== */# valgrind: /'
unhandled=$(grep -E 'unhandled|WARNING' "$VG_LOG" | sed -E 's/^(==|--)[0-9]+(==|--) *//' | sort | uniq -c)
[ -z "$unhandled" ] || sed 's/^/# valgrind: /' <<<"$unhandled"
if [ "${errs:-x}" != 0 ] || [ "$rc" -ne 0 ]; then
	echo "# valgrind's report:"
	grep -E '^==[0-9]+==' "$VG_LOG" | sed -n '/^==[0-9]*== [A-Z][a-z]/,$p' | head -150 | sed 's/^/#   /'
fi
echo "# the test took $(($(mono_ms) - t_start)) ms"
