#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Self-test of faultfs on real loop devices: a 64 MiB image on the mount is
# attached with and without direct I/O and written to under every fault mode.
# Then "dead", per file and for the whole mount, control through the socket
# while the mount is wedged, faultfs_stop of a dead mount, and sync_dio.
# Needs root, /dev/fuse and loop devices; fio for the aio checks.  FAULTFS names the binary (default
# $OUT/faultfs, OUT defaulting to build, relative to the current directory
# or the source tree).

set -u

here=$(dirname "$(readlink -f "$0")")
top=$(readlink -f "$here/../..")
FAULTFS=${FAULTFS:-${OUT:-build}/faultfs}
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
fifos=()

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

skip()
{
	n=$((n + 1))
	nskip=$((nskip + 1))
	echo "ok $n - # SKIP $1"
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

# The control file in the mount, not the socket.  Bounded: its requests are
# served at once or still queued, and a queued one can be interrupted.
ctl_file_shows()
{
	timeout -k 1 5 cat -- "$mnt/$FAULTFS_CTL" | grep -qxF -- "$1"
}

status_matches()
{
	faultfs_status "$mnt" | grep -qE -- "$1"
}

ctl_file_matches()
{
	timeout -k 1 5 cat -- "$mnt/$FAULTFS_CTL" | grep -qE -- "$1"
}

ctl_file_accepts()
{
	# shellcheck disable=SC2016 # $1 and $2 are for the inner shell
	timeout -k 1 5 bash -c 'printf "%s\n" "$2" >"$1"' _ \
		"$mnt/$FAULTFS_CTL" "$1" 2>/dev/null
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

# hung_count <file> [mountpoint]: the status' hung= for it, "" if unknown.
hung_count()
{
	faultfs_status "${2:-$mnt}" 2>/dev/null |
		awk -v f="$1" 'substr($0, index($0, " file=") + 6) == f {
			sub(/.* hung=/, ""); sub(/ .*/, ""); print }'
}

# wait_hung <file> <n> [mountpoint]: up to 5 s for n requests on the file
# to be held at once.
wait_hung()
{
	local i

	for ((i = 0; i < 50; i++)); do
		[[ $(hung_count "$1" "${3:-}") == "$2" ]] && return 0
		sleep 0.1
	done
	return 1
}

# bg <command...>: runs it in the background, its pid in $bg.  A command
# that waits on a request faultfs holds cannot be killed, timeout(1)'s
# signals included, so every check of one is a bounded wait on its pid.
bg()
{
	"$@" &
	bg=$!
	bg_pids+=("$bg")
}

# all_running <pid...>
all_running()
{
	local pid

	for pid; do
		running "$pid" || return 1
	done
}

# all_done <seconds> <pid...>: each ends with status 0 within the time.
all_done()
{
	local deadline=$((SECONDS + $1)) pid st=0

	shift
	for pid; do
		wait_done "$pid" $((deadline > SECONDS ? deadline - SECONDS : 1)) ||
			st=1
	done
	return $st
}

# quiet <command...>: without its output.
quiet()
{
	"$@" >/dev/null 2>&1
}

# lists <dir> <name>
lists()
{
	# shellcheck disable=SC2010 # the listing through the mount is the test
	ls -- "$1" | grep -qxF -- "$2"
}

# returns_within <seconds> <command...>: it ends with status 0 in time.
returns_within()
{
	local secs=$1

	shift
	bg "$@"
	wait_done "$bg" "$secs"
}

# fd_op <path> <read|write|close>: a process that opens <path> now, waits
# for go_all, then reads 16 bytes, writes 7 or closes the fd, and exits.
# Its pid is in $bg.  This reaches the data path and FLUSH of a file whose
# lookup and open would block.
fd_op()
{
	local go i

	go=$work/go.${#fifos[@]}
	mkfifo -- "$go" || return 1
	fifos+=("$go")
	# shellcheck disable=SC2016 # for the inner shell
	bg bash -c '
		exec 3<>"$1" || exit 1
		read -r _ <"$2"
		case $3 in
		read) read -r -N 16 _ <&3 ;;
		write) printf "%s" written >&3 ;;
		close) exec 3>&- ;;
		esac' _ "$1" "$go" "$2"
	# The fd shows in /proc once open; -L does not follow it to the mount.
	for ((i = 0; i < 50; i++)); do
		[[ -L /proc/$bg/fd/3 ]] && return 0
		sleep 0.1
	done
	return 1
}

# Lets every fd_op process go on, once.
go_all()
{
	local go

	for go in "${fifos[@]}"; do
		# shellcheck disable=SC2016 # for the inner shell
		timeout -k 1 5 bash -c 'echo go >"$1"' _ "$go"
		rm -f -- "$go"
	done
	fifos=()
}

release_all()
{
	local m

	for m in "${!FAULTFS_PIDS[@]}"; do
		faultfs_mounted "$m" && _faultfs_ctl_write "$m" "healthy *" \
			2>/dev/null
	done
	# fd_op processes still waiting for their go.
	go_all 2>/dev/null
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
	faultfs_stop_all || diag "could not unmount every faultfs"
	for pid in "${bg_pids[@]}"; do
		wait "$pid" 2>/dev/null
	done
	if [[ -n $work ]]; then
		if grep -qF -- " $work/" /proc/self/mountinfo; then
			diag "leaving $work behind, a mount in it is still there"
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

check "control socket is there" test -S "$(faultfs_sock "$mnt")"
check "control socket lists the default mode" \
	ctl_shows 'mode=healthy ms=0 served=0 failed=0 hung=0 file=*'
check "control file lists the default mode" \
	ctl_file_shows 'mode=healthy ms=0 served=0 failed=0 hung=0 file=*'
check "control socket rejects a bad command" \
	not ctl_accepts "explode disk.img"
check "control file rejects a bad command" \
	not ctl_file_accepts "explode disk.img"
check "control socket rejects slow without a delay" \
	not ctl_accepts "slow disk.img"
check "control file takes a command" ctl_file_accepts "dead nothing.img"
check "control socket shows what the control file set" \
	ctl_shows 'mode=dead ms=0 served=0 failed=0 hung=0 file=nothing.img'
check "control socket takes a command" ctl_accepts "healthy nothing.img"
check "control file shows what the control socket set" \
	ctl_file_shows 'mode=healthy ms=0 served=0 failed=0 hung=0 file=nothing.img'

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
check "hang *: 16 hung requests, control socket still served" \
	wait_hung '*' 16
check "hang *: control file still served too" \
	ctl_file_matches '^mode=hang .* hung=16 file=\*$'
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

# ---- dead, per file ----

mkdir -p "$mnt/dead" "$mnt/live" || bail "mkdir on the mount"
for f in dead/f dead/h live/g; do
	head -c 65536 /dev/urandom >"$mnt/$f" || bail "write $f on the mount"
done

# Opened while healthy, so that the data path and FLUSH are reached.
fd_op "$mnt/dead/f" read || bail "open dead/f to read it later"
p_read=$bg
fd_op "$mnt/dead/f" write || bail "open dead/f to write it later"
p_write=$bg
fd_op "$mnt/dead/f" close || bail "open dead/f to close it later"
p_close=$bg
fault dead dead/f
bg quiet stat -- "$mnt/dead/f"
p_stat=$bg
bg quiet cat -- "$mnt/dead/f"
p_open=$bg
go_all
check "dead dead/f: stat, open, read, write and close are all held (hung=5)" \
	wait_hung dead/f 5
sleep 1
check "dead dead/f: stat does not return" running "$p_stat"
check "dead dead/f: a fresh open does not return" running "$p_open"
check "dead dead/f: read on an open fd does not return" running "$p_read"
check "dead dead/f: write on an open fd does not return" running "$p_write"
check "dead dead/f: close (FLUSH) does not return" running "$p_close"

check "dead dead/f: stat of another file in its directory" \
	returns_within 5 quiet stat -- "$mnt/dead/h"
check "dead dead/f: read of another file in its directory" \
	returns_within 5 cmp -s -- "$mnt/dead/h" "$backing/dead/h"
check "dead dead/f: O_DIRECT write to another file in its directory" \
	returns_within 5 dd if=/dev/zero of="$mnt/dead/h" bs=4k count=1 \
	oflag=direct conv=notrunc,nocreat status=none
check "dead dead/f: its directory lists" \
	returns_within 5 lists "$mnt/dead" f
check "dead dead/f: stat and read of a file elsewhere" \
	returns_within 5 cmp -s -- "$mnt/live/g" "$backing/live/g"
check "dead dead/f: create, write and close a file elsewhere" \
	returns_within 5 dd if=/dev/zero of="$mnt/live/new" bs=4k count=1 \
	conv=fsync status=none
check "dead dead/f: statfs of the mount" \
	returns_within 5 quiet df -- "$mnt"
check "dead dead/f: the control socket shows it" \
	test "$(faultfs_field "$mnt" dead/f mode)" = dead
check "dead dead/f: still held after the other files' I/O" \
	all_running "$p_stat" "$p_open" "$p_read" "$p_write" "$p_close"

t0=$(now_ms)
fault healthy dead/f
check "healthy dead/f: stat, open, read, write and close all return" \
	all_done 10 "$p_stat" "$p_open" "$p_read" "$p_write" "$p_close"
diag "5 held requests on dead/f returned $(($(now_ms) - t0)) ms after the release"
check "healthy dead/f: nothing is held any more" \
	test "$(hung_count dead/f)" = 0
check "healthy dead/f: the held write reached the backing file" \
	test "$(head -c 7 "$backing/dead/f")" = written

# A name missing from the dentry cache is looked up with its directory
# locked; the lookup of a dead one must not hold those of other names, nor
# listings (libfuse 3.14 would not ask for parallel lookups, faultfs does).
fault dead dead/ghost
bg quiet stat -- "$mnt/dead/ghost"
p_ghost=$bg
check "dead dead/ghost: the lookup of a missing name is held" \
	wait_hung dead/ghost 1
echo fresh >"$backing/dead/fresh"
check "dead dead/ghost: lookup of another new name in its directory" \
	returns_within 5 quiet stat -- "$mnt/dead/fresh"
check "dead dead/ghost: its directory lists" \
	returns_within 5 lists "$mnt/dead" fresh
fault healthy dead/ghost
wait_done "$p_ghost" 10
check "healthy dead/ghost: the held lookup returns ENOENT" test $? -eq 1

# ---- dead, the whole mount ----

fault dead '*'
bg quiet ls -- "$mnt"
p_ls=$bg
bg quiet stat -- "$mnt/disk.img"
p_stat=$bg
bg quiet df -- "$mnt"
p_df=$bg
bg mkdir -- "$mnt/made-dead"
p_mkdir=$bg
# shellcheck disable=SC2016 # for the inner shell
bg bash -c ': >"$1"' _ "$mnt/created-dead"
p_create=$bg
# mkdir and create each hold the root directory's lock while they look
# their name up, so one of them waits for it in the kernel: 4 at faultfs.
check "dead *: ls, stat, df and mkdir or create are held (hung=4)" \
	wait_hung '*' 4
sleep 1
check "dead *: the control file is not needed: the socket answers" \
	ctl_shows "mode=dead ms=0 served=0 failed=0 hung=1 file=disk.img"
check "dead *: ls of the root does not return" running "$p_ls"
check "dead *: stat does not return" running "$p_stat"
check "dead *: statfs (df) does not return" running "$p_df"
check "dead *: mkdir does not return" running "$p_mkdir"
check "dead *: create does not return" running "$p_create"
check "dead *: the control socket shows the mode and the held requests" \
	status_matches '^mode=dead .* hung=4 file=\*$'
check "dead *: the control socket takes commands" ctl_accepts "reset *"
t0=$(now_ms)
fault healthy '*'
check "healthy *: ls, stat, df, mkdir and create all return" \
	all_done 10 "$p_ls" "$p_stat" "$p_df" "$p_mkdir" "$p_create"
diag "5 processes held by dead * returned $(($(now_ms) - t0)) ms after the release"
check "healthy *: the held mkdir and create took effect" \
	test -d "$backing/made-dead" -a -f "$backing/created-dead"
check "healthy *: nothing is held any more" test "$(hung_count '*')" = 0

# A dead file that a hang follows: only its data requests stay held.
fault dead dead/h
bg cmp -s -- "$mnt/dead/h" "$backing/dead/h"
p_read=$bg
check "dead dead/h: a reader is held" wait_hung dead/h 1
fault hang dead/h
check "dead released into hang: stat returns" \
	returns_within 5 quiet stat -- "$mnt/dead/h"
sleep 0.5
check "dead released into hang: the read stays held" running "$p_read"
fault healthy dead/h
check "healthy dead/h: the reader finishes" all_done 10 "$p_read"

# ---- asynchronous direct I/O, the default ----

fio_aio()
{
	fio --name=aio --filename="$1" --rw=write --bs=4k --size=16k \
		--iodepth=4 --ioengine=libaio --direct=1 --fallocate=none \
		--output=/dev/null >/dev/null 2>&1
}

if command -v fio >/dev/null; then
	dd if=/dev/zero of="$mnt/aio.img" bs=4k count=4 status=none ||
		bail "create aio.img"
	fault hang aio.img
	bg fio_aio "$mnt/aio.img"
	check "async dio: 4 aio O_DIRECT writes are queued at once (hung=4)" \
		wait_hung aio.img 4
	fault healthy aio.img
	check "async dio: released, fio completes" all_done 10 "$bg"
else
	skip "fio is missing: aio checks"
fi

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

# ---- faultfs_stop on a dead mount ----

mnt2=$work/mnt2
faultfs_start "$work/backing2" "$mnt2" || bail "a second faultfs mounts"
sock2=$(faultfs_sock "$mnt2")
daemon=$FAULTFS_PID
echo data >"$mnt2/x" || bail "write on the second mount"
faultfs_set "$mnt2" dead '*' || bail "faultfs accepts \"dead *\""
bg quiet stat -- "$mnt2/x"
p_stat=$bg
# shellcheck disable=SC2016 # for the inner shell
bg bash -c ': >"$1"' _ "$mnt2/y"
p_create=$bg
check "dead mount: stat and create are held" wait_hung '*' 2 "$mnt2"
check "faultfs_stop on a dead mount succeeds" faultfs_stop "$mnt2"
check "faultfs_stop on a dead mount: unmounted" not faultfs_mounted "$mnt2"
check "faultfs_stop on a dead mount: released stat and create first" \
	all_done 10 "$p_stat" "$p_create"
check "faultfs_stop on a dead mount: the daemon exited" not running "$daemon"
check "faultfs_stop on a dead mount: no process serves it" \
	not quiet pgrep -f -- "$sock2"
check "faultfs_stop on a dead mount: its control socket is gone" \
	test ! -e "$sock2"

# ---- sync_dio ----

# shellcheck disable=SC2016 # for the inner shell
check "usage documents --sync-dio and --ctl-socket" \
	bash -c '"$1" --help | grep -q -- --sync-dio &&
		"$1" --help | grep -q -- --ctl-socket' _ "$FAULTFS"
mnt3=$work/mnt3
faultfs_start "$work/backing3" "$mnt3" -o sync_dio ||
	bail "faultfs mounts with -o sync_dio"
dd if=/dev/zero of="$mnt3/d.img" bs=4k count=4 status=none ||
	bail "create d.img on the sync_dio mount"
faultfs_set "$mnt3" hang d.img || bail "faultfs accepts \"hang d.img\""
bg dd if=/dev/zero of="$mnt3/d.img" bs=4k count=1 oflag=direct \
	conv=notrunc status=none
p_dd=$bg
check "sync_dio: an O_DIRECT write is held" wait_hung d.img 1 "$mnt3"
sleep 1
check "sync_dio: the writer does not return while its file hangs" \
	running "$p_dd"
faultfs_set "$mnt3" healthy d.img || bail "faultfs accepts \"healthy d.img\""
check "sync_dio: released, the write returns" all_done 10 "$p_dd"
if command -v fio >/dev/null; then
	faultfs_set "$mnt3" hang d.img || bail "faultfs accepts \"hang d.img\""
	bg fio_aio "$mnt3/d.img"
	p_fio=$bg
	check "sync_dio: the first aio O_DIRECT write is held" \
		wait_hung d.img 1 "$mnt3"
	sleep 1
	check "sync_dio: it blocks io_submit, no second write follows it" \
		test "$(hung_count d.img "$mnt3")" = 1
	faultfs_set "$mnt3" healthy d.img ||
		bail "faultfs accepts \"healthy d.img\""
	check "sync_dio: released, fio completes" all_done 10 "$p_fio"
else
	skip "fio is missing: sync_dio aio check"
fi
check "faultfs_stop of the sync_dio mount" faultfs_stop "$mnt3"
