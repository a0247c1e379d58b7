#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Self-test of faultfs on real loop devices: a 64 MiB image on the mount is
# attached with and without direct I/O and written to under every fault mode.
# Needs root, /dev/fuse and loop devices.  FAULTFS names the binary (default
# build/faultfs, relative to the current directory or the source tree).

set -u

here=$(dirname "$(readlink -f "$0")")
top=$(readlink -f "$here/../..")
FAULTFS=${FAULTFS:-build/faultfs}
if [[ $FAULTFS != /* && ! -x $FAULTFS && -x $top/$FAULTFS ]]; then
	FAULTFS=$top/$FAULTFS
fi
# shellcheck source-path=SCRIPTDIR source=faultfs.sh
. "$here/faultfs.sh"

n=0
npass=0
nfail=0
nskip=0
work=
mnt=
backing=
loops=()
bg_pids=()

pass()
{
	n=$((n + 1))
	npass=$((npass + 1))
	echo "ok $n - $1"
}

fail()
{
	n=$((n + 1))
	nfail=$((nfail + 1))
	echo "not ok $n - $1"
}

# check <name> <command...>: one test line from a command's status.
check()
{
	local name=$1

	shift
	if "$@"; then
		pass "$name"
	else
		fail "$name"
	fi
}

# not <command...>: succeeds when the command fails.
not()
{
	! "$@"
}

diag()
{
	echo "# $*"
}

skip_all()
{
	echo "SKIP: $1"
	nskip=$((nskip + 1))
	exit 0
}

# A setup step failed: the remaining tests would only fail after it.
bail()
{
	fail "$1"
	exit 1
}

now_ms()
{
	echo $(($(date +%s%N) / 1000000))
}

proc_state()
{
	sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1
}

running()
{
	local st

	st=$(proc_state "$1")
	[[ -n $st && $st != Z ]]
}

# wait_done <pid> <seconds>: the pid's exit status, 124 if still running.
wait_done()
{
	local pid=$1 tenths=$(($2 * 10)) i st

	for ((i = 0; i < tenths; i++)); do
		if ! running "$pid"; then
			wait "$pid"
			st=$?
			forget_bg "$pid"
			return $st
		fi
		sleep 0.1
	done
	return 124
}

forget_bg()
{
	local i

	for i in "${!bg_pids[@]}"; do
		[[ ${bg_pids[i]} == "$1" ]] && unset "bg_pids[i]"
	done
}

forget_loop()
{
	local i

	for i in "${!loops[@]}"; do
		[[ ${loops[i]} == "$1" ]] && unset "loops[i]"
	done
}

# A control write that does not go through means faultfs is wedged, and every
# later step on the mount would hang as well: stop here and clean up.
fault()
{
	faultfs_set "$mnt" "$@" || bail "faultfs accepts \"$*\""
}

ctl_shows()
{
	faultfs_status "$mnt" | grep -qxF -- "$1"
}

ctl_accepts()
{
	_faultfs_ctl_write "$mnt" "$1" 2>/dev/null
}

direct_rw()
{
	dd if=/dev/zero of="$1" bs=4k count=4 seek=8 oflag=direct \
		conv=notrunc status=none &&
		dd if="$1" of=/dev/null bs=4k count=4 skip=8 iflag=direct \
			status=none
}

# ms_of <command...>: run it, print how long it took.
ms_of()
{
	local t0

	t0=$(now_ms)
	"$@" || return
	echo $(($(now_ms) - t0))
}

loop_write()
{
	dd if=/dev/zero of="$1" bs="$2" count="$3" oflag=direct status=none \
		2>/dev/null
}

direct_read()
{
	dd if="$1" of=/dev/null bs=4k count=1 skip=7 iflag=direct \
		status=none 2>/dev/null
}

# hung_count <file>: the control file's hung= for it, "" if unreadable.
hung_count()
{
	faultfs_status "$mnt" 2>/dev/null |
		awk -v f="$1" 'substr($0, index($0, " file=") + 6) == f {
			sub(/.* hung=/, ""); sub(/ .*/, ""); print }'
}

# wait_hung <file> <n>: up to 5 s for n requests on the file to hang.
wait_hung()
{
	local i

	for ((i = 0; i < 50; i++)); do
		[[ $(hung_count "$1") == "$2" ]] && return 0
		sleep 0.1
	done
	return 1
}

release_all()
{
	[[ -n $mnt ]] && faultfs_mounted "$mnt" || return 0
	_faultfs_ctl_write "$mnt" "healthy *" 2>/dev/null
}

cleanup()
{
	local st=$? pid loop deadline

	trap - EXIT INT TERM
	# Order matters: writers blocked on a hung request are unkillable,
	# and the loop devices and the mount stay busy until they finish.
	release_all
	deadline=$((SECONDS + 10))
	for pid in "${bg_pids[@]}"; do
		while running "$pid" && ((SECONDS < deadline)); do
			sleep 0.1
		done
		if running "$pid"; then
			# Unkillable while in D state; stopping faultfs below
			# fails its request and lets it go.
			diag "background pid $pid still running, killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
	done
	for loop in "${loops[@]}"; do
		losetup -d "$loop" 2>/dev/null
	done
	if [[ -n $mnt ]]; then
		faultfs_stop "$mnt" ||
			diag "could not unmount $mnt"
	fi
	for pid in "${bg_pids[@]}"; do
		wait "$pid" 2>/dev/null
	done
	if [[ -n $work ]]; then
		if [[ -n $mnt ]] && faultfs_mounted "$mnt"; then
			diag "leaving $work behind, $mnt is still mounted"
		else
			rm -rf -- "$work"
		fi
	fi
	echo "$npass passed, $nfail failed, $nskip skipped"
	((nfail == 0)) || st=1
	exit $st
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

((EUID == 0)) || skip_all "must run as root (loop devices, FUSE mounts)"
[[ -c /dev/fuse ]] || skip_all "/dev/fuse is missing"
[[ -e /dev/loop-control ]] || skip_all "/dev/loop-control is missing"
command -v losetup >/dev/null || skip_all "losetup is missing"
command -v fusermount3 >/dev/null || skip_all "fusermount3 is missing"
losetup -f >/dev/null 2>&1 || skip_all "no free loop device"
[[ -x $FAULTFS ]] || bail "faultfs binary $FAULTFS is executable (set FAULTFS)"

work=$(mktemp -d "${TMPDIR:-/tmp}/faultfs-test.XXXXXX") ||
	bail "create a work directory"
# The helpers find the mount in the mount table, which has real paths.
work=$(readlink -f "$work")
backing=$work/backing
mnt=$work/mnt
export FAULTFS_LOG=$work/faultfs.log

# ---- basics on the mount ----

faultfs_start "$backing" "$mnt" || bail "faultfs mounts"
pass "faultfs mounts"

check "control file lists the default mode" \
	ctl_shows 'mode=healthy ms=0 served=0 failed=0 hung=0 file=*'
check "control file rejects a bad command" \
	not ctl_accepts "explode disk.img"
check "control file rejects slow without a delay" \
	not ctl_accepts "slow disk.img"

dd if=/dev/zero of="$mnt/disk.img" bs=1M count=64 conv=fsync status=none ||
	bail "create a 64 MiB image through the mount"
check "create a 64 MiB image through the mount" \
	test "$(stat -c %s "$backing/disk.img")" -eq $((64 << 20))

check "O_DIRECT write and read on the mount" direct_rw "$mnt/disk.img"

head -c $((1 << 20)) /dev/urandom >"$work/pattern"

# ---- faults below a loop device ----

loop_suite()
{
	local dio=$1 loop sysdio t_ok t_slow pid st failed0 failed1

	loop=$(losetup --find --show --direct-io="$dio" "$mnt/disk.img") || {
		fail "losetup --direct-io=$dio on a faultfs file"
		return
	}
	loops+=("$loop")
	sysdio=$(cat "/sys/block/${loop#/dev/}/loop/dio" 2>/dev/null)
	if [[ $dio == on ]]; then
		check "losetup --direct-io=on attaches with dio active" \
			test "$sysdio" = 1
	else
		check "losetup --direct-io=off attaches" test "$sysdio" = 0
	fi

	fault healthy disk.img
	check "[dio=$dio] healthy: direct write of 1 MiB to $loop" \
		dd if="$work/pattern" of="$loop" bs=64k oflag=direct \
		status=none
	check "[dio=$dio] healthy: data reads back through the loop device" \
		cmp -s "$work/pattern" \
		<(dd if="$loop" bs=64k count=16 iflag=direct status=none)
	check "[dio=$dio] healthy: data reached the backing file" \
		cmp -s -n $((1 << 20)) "$work/pattern" "$backing/disk.img"

	t_ok=$(ms_of loop_write "$loop" 64k 10)
	fault slow 100 disk.img
	t_slow=$(ms_of loop_write "$loop" 64k 10)
	diag "10 writes: healthy ${t_ok:-?} ms, slow 100 ${t_slow:-?} ms"
	check "[dio=$dio] slow 100: 10 writes take >= 1 s, far longer than healthy" \
		test -n "$t_ok" -a -n "$t_slow" -a "${t_slow:-0}" -ge 1000 \
		-a "${t_slow:-0}" -gt $((${t_ok:-0} + 500))

	failed0=$(faultfs_field "$mnt" disk.img failed)
	fault eio disk.img
	check "[dio=$dio] eio: direct write fails" not loop_write "$loop" 4k 1
	check "[dio=$dio] eio: direct read fails" not direct_read "$loop"
	failed1=$(faultfs_field "$mnt" disk.img failed)
	check "[dio=$dio] eio: failures are counted" \
		test "${failed1:-0}" -gt "${failed0:-0}"
	fault healthy disk.img
	check "[dio=$dio] healthy again: direct write succeeds" \
		loop_write "$loop" 4k 1

	fault hang disk.img
	# dd itself, not a subshell, so that its own state can be seen.
	dd if=/dev/zero of="$loop" bs=4k count=1 oflag=direct status=none &
	pid=$!
	bg_pids+=("$pid")
	sleep 2
	st=$(proc_state "$pid")
	check "[dio=$dio] hang: writer is still blocked after 2 s" \
		test -n "$st" -a "$st" != Z
	check "[dio=$dio] hang: writer is in D state (state ${st:-gone})" \
		test "$st" = D
	check "[dio=$dio] hang: control file answers, shows the hung request" \
		test "$(hung_count disk.img)" = 1
	fault healthy disk.img
	wait_done "$pid" 10
	check "[dio=$dio] hang: released by healthy, writer completes" \
		test $? -eq 0

	fault hang disk.img
	dd if=/dev/zero of="$loop" bs=4k count=1 oflag=direct status=none \
		2>/dev/null &
	pid=$!
	bg_pids+=("$pid")
	sleep 0.5
	fault eio disk.img
	wait_done "$pid" 10
	st=$?
	check "[dio=$dio] hang released into eio: writer fails" \
		test "$st" -ne 0 -a "$st" -ne 124
	fault healthy disk.img

	check "[dio=$dio] detach $loop" losetup -d "$loop"
	forget_loop "$loop"
}

loop_suite on
loop_suite off

# ---- "*", many hung requests, counters ----

mkdir -p "$mnt/many" || bail "mkdir on the mount"
for i in $(seq 1 16); do
	dd if=/dev/zero of="$mnt/many/f$i" bs=4k count=1 status=none
done
fault eio '*'
check "eio *: applies to every file" not direct_read "$mnt/many/f1"
fault hang '*'
pids=()
# More hung requests than libfuse's default of 10 worker threads.
for i in $(seq 1 16); do
	dd if=/dev/zero of="$mnt/many/f$i" bs=4k count=1 oflag=direct \
		conv=notrunc status=none &
	pids+=("$!")
	bg_pids+=("$!")
done
check "hang *: 16 hung requests, control file still served" \
	wait_hung '*' 16
fault healthy '*'
st=0
for pid in "${pids[@]}"; do
	wait_done "$pid" 10 || st=1
done
check "healthy *: all 16 writers complete" test $st -eq 0
check "healthy *: per-file modes follow the default" \
	test "$(faultfs_field "$mnt" many/f3 mode)" = healthy
fault reset '*'
check "reset *: zeroes the counters" \
	test "$(faultfs_field "$mnt" '*' served)" = 0

# ---- faultfs_stop releases hangs before unmounting ----

fault hang disk.img
dd if=/dev/zero of="$mnt/disk.img" bs=4k count=1 oflag=direct conv=notrunc \
	status=none &
pid=$!
bg_pids+=("$pid")
sleep 0.5
daemon=$FAULTFS_PID
check "faultfs_stop unmounts" faultfs_stop "$mnt"
wait_done "$pid" 10
check "faultfs_stop released the hung writer" test $? -eq 0
check "faultfs process exited" not kill -0 "$daemon" 2>/dev/null
