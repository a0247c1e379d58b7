#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Helpers for bash tests that run on top of faultfs.  Source this file, then:
#
#   faultfs_start <backing-dir> <mountpoint> [faultfs options...]
#   faultfs_set <mountpoint> <mode> [ms] <file>   e.g. slow 50 disk.img
#   faultfs_status <mountpoint>                  print the control file
#   faultfs_field <mountpoint> <file> <field>    mode, ms, served, failed, hung
#   faultfs_mounted <mountpoint>
#   faultfs_stop <mountpoint>
#   faultfs_stop_all
#
# <file> is relative to the mount root, "*" means every file.  FAULTFS names
# the binary (default build/faultfs), FAULTFS_LOG receives its output (default
# /dev/null).  faultfs_start leaves the daemon's pid in FAULTFS_PID.
#
# Nothing here that may run while faultfs is wedged touches the mount without
# a timeout: a stat of a FUSE mount whose daemon is stuck blocks forever.

: "${FAULTFS:=build/faultfs}"
FAULTFS_CTL=.faultfs-ctl
FAULTFS_PID=
declare -gA FAULTFS_PIDS=()

# The key under which faultfs_start filed a mountpoint.  Resolving symlinks
# stats the path, so that is only tried, bounded, when the plain spelling
# is not known.
_faultfs_key()
{
	local lex

	lex=$(realpath -m -s -- "$1")
	if [[ -n ${FAULTFS_PIDS[$lex]+set} ]]; then
		echo "$lex"
	else
		timeout -k 1 2 readlink -f -- "$1" 2>/dev/null || echo "$lex"
	fi
}

# Reads the mount table instead of the mountpoint, which may hang.
faultfs_mounted()
{
	local m

	m=$(realpath -m -s -- "$1")
	# The mount table escapes these as octal.
	m=${m//\\/\\134}
	m=${m// /\\040}
	m=${m//$'\t'/\\011}
	m=${m//$'\n'/\\012}
	M=$m awk '$5 == ENVIRON["M"] { found = 1 } END { exit !found }' \
		/proc/self/mountinfo
}

faultfs_start()
{
	local backing=$1 mnt=$2 pid i

	shift 2
	mkdir -p -- "$backing" "$mnt" || return 1
	mnt=$(readlink -f -- "$mnt") || return 1
	# -f keeps the process ours, so that its pid is the one to wait for.
	"$FAULTFS" -f "$@" "$backing" "$mnt" </dev/null \
		>>"${FAULTFS_LOG:-/dev/null}" 2>&1 &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		if faultfs_mounted "$mnt"; then
			FAULTFS_PIDS[$mnt]=$pid
			# shellcheck disable=SC2034 # for the callers
			FAULTFS_PID=$pid
			return 0
		fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	echo "faultfs_start: $mnt did not come up" >&2
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	return 1
}

_faultfs_ctl_write()
{
	# shellcheck disable=SC2016 # $1 and $2 are for the inner shell
	timeout -k 1 "${FAULTFS_CTL_TIMEOUT:-5}" \
		bash -c 'printf "%s\n" "$2" >"$1"' _ "$1/$FAULTFS_CTL" "$2"
}

_faultfs_ctl_read()
{
	timeout -k 1 "${FAULTFS_CTL_TIMEOUT:-5}" cat -- "$1/$FAULTFS_CTL"
}

faultfs_set()
{
	local mnt=$1 IFS=' '

	shift
	if (($# < 2)); then
		echo "usage: faultfs_set <mountpoint> <mode> [ms] <file>" >&2
		return 2
	fi
	_faultfs_ctl_write "$mnt" "$*"
}

faultfs_status()
{
	_faultfs_ctl_read "$1"
}

faultfs_field()
{
	awk -v want="$2" -v key="$3" '
	{
		i = index($0, " file=")
		if (!i || substr($0, i + 6) != want)
			next
		n = split(substr($0, 1, i - 1), kv, " ")
		for (j = 1; j <= n; j++) {
			eq = index(kv[j], "=")
			if (substr(kv[j], 1, eq - 1) == key) {
				print substr(kv[j], eq + 1)
				found = 1
			}
		}
	}
	END { exit !found }' < <(_faultfs_ctl_read "$1")
}

_faultfs_running()
{
	local st

	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null)
	# An exited child stays in /proc until it is reaped.
	[[ -n $st && $st != Z* ]]
}

_faultfs_wait_gone()
{
	local pid=$1 tenths=$2 i

	for ((i = 0; i < tenths; i++)); do
		_faultfs_running "$pid" || return 0
		sleep 0.1
	done
	return 1
}

faultfs_stop()
{
	local mnt pid i

	mnt=$(_faultfs_key "$1")
	pid=${FAULTFS_PIDS[$mnt]:-}
	if faultfs_mounted "$mnt"; then
		# Hung requests first: their callers sit in D state, keep the
		# mount busy and would outlive the unmount.
		_faultfs_ctl_write "$mnt" "healthy *" 2>/dev/null
		for ((i = 0; i < 20; i++)); do
			timeout -k 1 5 fusermount3 -u "$mnt" 2>/dev/null &&
				break
			faultfs_mounted "$mnt" || break
			sleep 0.1
		done
		if faultfs_mounted "$mnt"; then
			timeout -k 1 5 umount -l "$mnt" 2>/dev/null ||
				timeout -k 1 5 fusermount3 -u -z "$mnt" \
					2>/dev/null
		fi
	fi
	if [[ -n $pid ]]; then
		# After a lazy unmount the daemon goes on serving open files;
		# SIGTERM also fails the requests that it still holds hung.
		if ! _faultfs_wait_gone "$pid" 50; then
			kill -TERM "$pid" 2>/dev/null
			_faultfs_wait_gone "$pid" 50 ||
				kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
		unset "FAULTFS_PIDS[$mnt]"
	fi
	! faultfs_mounted "$mnt"
}

faultfs_stop_all()
{
	local mnt ret=0

	for mnt in "${!FAULTFS_PIDS[@]}"; do
		faultfs_stop "$mnt" || ret=1
	done
	return $ret
}
