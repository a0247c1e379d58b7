#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Helpers for bash tests that run on top of faultfs.  Source this file, then:
#
#   faultfs_start <backing-dir> <mountpoint> [faultfs options...]
#   faultfs_set <mountpoint> <mode> [ms] <file>   e.g. slow 50 disk.img
#   faultfs_status <mountpoint>                  print the status listing
#   faultfs_field <mountpoint> <file> <field>    mode, ms, served, failed, hung
#   faultfs_sock <mountpoint>                    print its control socket
#   faultfs_mounted <mountpoint>
#   faultfs_stop <mountpoint>
#   faultfs_stop_all
#
# Modes: healthy, slow <ms>, hang, eio (data requests), dead (every request).
# <file> is relative to the mount root, "*" means every file.  FAULTFS names
# the binary (default $OUT/faultfs, OUT defaulting to build), FAULTFS_LOG
# receives its output (default /dev/null).  faultfs_start leaves the daemon's
# pid in FAULTFS_PID.
#
# Control goes through a Unix socket outside the mount (faultfs --ctl-socket),
# so it works while the mount is wedged, from any shell: the socket's path is
# derived from the mountpoint's, in FAULTFS_CTL_DIR.  A faultfs started
# without these helpers has no socket; they fall back to its control file.
# Give <mountpoint> as faultfs_start got it or as its real path.
#
# Nothing here that may run while faultfs is wedged touches the mount: a
# process that waits on a FUSE request the daemon has taken cannot be killed,
# not even by timeout(1), until the request is answered.

: "${FAULTFS:=${OUT:-build}/faultfs}"
FAULTFS_CTL=.faultfs-ctl
if [[ -z ${FAULTFS_CTL_DIR:-} ]]; then
	if ((EUID == 0)) && [[ -d /run && -w /run ]]; then
		FAULTFS_CTL_DIR=/run/faultfs
	else
		FAULTFS_CTL_DIR=${TMPDIR:-/tmp}/faultfs-$EUID
	fi
fi
FAULTFS_PID=
declare -gA FAULTFS_PIDS=()

# The key under which faultfs_start filed a mountpoint: its real path.  A
# spelling that is known, or in the mount table, is one already; otherwise
# only the parent is resolved, which is outside the mount and cannot hang on
# it (a stat of the mountpoint itself could).
_faultfs_key()
{
	local lex parent

	lex=$(realpath -m -s -- "$1")
	if [[ -n ${FAULTFS_PIDS[$lex]+set} ]] || faultfs_mounted "$lex"; then
		echo "$lex"
		return
	fi
	parent=$(timeout -k 1 2 readlink -f -- "${lex%/*}/" 2>/dev/null)
	if [[ -n $parent ]]; then
		echo "${parent%/}/${lex##*/}"
	else
		echo "$lex"
	fi
}

faultfs_sock()
{
	local key sum

	key=$(_faultfs_key "$1")
	# A hash keeps the path short, under the 108 bytes of sun_path.
	sum=$(printf '%s' "$key" | md5sum)
	echo "$FAULTFS_CTL_DIR/${sum%% *}.sock"
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
	local backing=$1 mnt=$2 pid sock i

	shift 2
	mkdir -p -- "$backing" "$mnt" || return 1
	mnt=$(readlink -f -- "$mnt") || return 1
	mkdir -p -- "$FAULTFS_CTL_DIR" && chmod 0700 -- "$FAULTFS_CTL_DIR" ||
		return 1
	sock=$(faultfs_sock "$mnt")
	# -f keeps the process ours, so that its pid is the one to wait for.
	"$FAULTFS" -f --ctl-socket "$sock" "$@" "$backing" "$mnt" </dev/null \
		>>"${FAULTFS_LOG:-/dev/null}" 2>&1 &
	pid=$!
	for ((i = 0; i < 100; i++)); do
		# The socket is bound before the mount, so both are up now.
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

# _faultfs_ctl <mountpoint> [command]: send a command, or print the status.
_faultfs_ctl()
{
	local mnt=$1 sock

	shift
	sock=$(faultfs_sock "$mnt")
	if [[ -S $sock ]]; then
		timeout -k 1 "${FAULTFS_CTL_TIMEOUT:-5}" \
			"$FAULTFS" --ctl "$sock" "$@"
	elif (($#)); then
		# shellcheck disable=SC2016 # $1 and $2 are for the inner shell
		timeout -k 1 "${FAULTFS_CTL_TIMEOUT:-5}" \
			bash -c 'printf "%s\n" "$2" >"$1"' _ \
			"$mnt/$FAULTFS_CTL" "$*"
	else
		timeout -k 1 "${FAULTFS_CTL_TIMEOUT:-5}" \
			cat -- "$mnt/$FAULTFS_CTL"
	fi
}

_faultfs_ctl_write()
{
	_faultfs_ctl "$1" "$2"
}

_faultfs_ctl_read()
{
	_faultfs_ctl "$1"
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
	local mnt pid sock i

	mnt=$(_faultfs_key "$1")
	pid=${FAULTFS_PIDS[$mnt]:-}
	sock=$(faultfs_sock "$mnt")
	if faultfs_mounted "$mnt"; then
		# Hung requests first: their callers sit in D state, keep the
		# mount busy and would outlive the unmount.  Through the socket,
		# this works on a dead mount too.
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
		# faultfs removes it on exit, but not when it was killed.
		_faultfs_running "$pid" || rm -f -- "$sock"
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
