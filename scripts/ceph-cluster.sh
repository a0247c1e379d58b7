#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# A throw-away single-node Ceph cluster for the tests: one ceph-mon and one
# ceph-osd (memstore: the data lives in the OSD's memory), auth off, pools
# of size 1, everything under one directory: no systemd, no /etc/ceph, no
# /var/lib/ceph. Clients use DIR/ceph.conf (-c DIR/ceph.conf).
#
#   ceph-cluster.sh start DIR [--addr IP] [--timeout S]
#   ceph-cluster.sh pool DIR NAME       a pool of size 1, application rbd
#   ceph-cluster.sh status DIR
#   ceph-cluster.sh stop DIR
#
# DIR/mon.pid and DIR/osd.pid hold the daemons' pids, for tests that stop
# or kill them. Every wait has a deadline: a cluster that does not come up
# fails with the last lines of its logs, and is stopped again.
#
# Sourced, it only defines the ceph_cluster_* functions (same arguments).

# The mon's port: a free one below the ephemeral range, so that two
# clusters, or a stale one that was never stopped, do not collide. The
# OSD binds what is free in ms_bind_port_min..max by itself.
_cc_free_port() {
	local lo used p i
	read -r lo _ </proc/sys/net/ipv4/ip_local_port_range
	[ "${lo:-0}" -gt 12000 ] || lo=32768
	used=$(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u)
	for ((i = 0; i < 100; i++)); do
		p=$((10000 + RANDOM % (lo - 10000)))
		grep -qx "$p" <<<"$used" || { echo "$p"; return 0; }
	done
	return 1
}

_cc_log() { printf 'ceph-cluster: %s\n' "$*" >&2; }

# _cc_tail DIR: the last lines of every log of the cluster, to stderr.
_cc_tail() {
	local f
	for f in "$1"/log/*.log "$1"/log/*.out; do
		[ -s "$f" ] || continue
		printf '  -- %s\n' "$f" >&2
		tail -n 15 "$f" | sed 's/^/  /' >&2
	done
}

# _cc_ours DIR PID: PID runs (not a zombie) a daemon of this cluster.
_cc_ours() {
	local st
	[ -n "$2" ] || return 1
	st=$(sed -n 's/.*) \(.\).*/\1/p' "/proc/$2/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ] &&
		tr '\0' ' ' <"/proc/$2/cmdline" 2>/dev/null | grep -qF -- "$1/ceph.conf"
}

_cc_pid() { cat "$1/$2.pid" 2>/dev/null; } # DIR mon|osd

_cc_mono_ms() {
	local up
	read -r up _ </proc/uptime
	echo $((10#${up/./} * 10))
}

# _cc_wait DIR DEADLINE_MS WHAT CMD...: CMD until it succeeds; fails when
# the deadline passes or a daemon of the cluster died.
_cc_wait() {
	local dir=$1 end=$2 what=$3 d
	shift 3
	until "$@" >/dev/null 2>&1; do
		for d in mon osd; do
			[ -e "$dir/$d.pid" ] || continue
			_cc_ours "$dir" "$(_cc_pid "$dir" "$d")" && continue
			_cc_log "the $d died while waiting for $what"
			return 1
		done
		if [ "$(_cc_mono_ms)" -ge "$end" ]; then
			_cc_log "no $what in time"
			return 1
		fi
		sleep 0.2
	done
}

# _cc_ceph DIR ARGS...: the ceph CLI against this cluster, bounded.
_cc_ceph() {
	local dir=$1
	shift
	timeout 20 ceph -c "$dir/ceph.conf" --connect-timeout 10 "$@"
}

_cc_mon_leader() {
	timeout 5 ceph --admin-daemon "$1/run/ceph-mon.a.asok" mon_status 2>/dev/null |
		grep -q '"state": "leader"'
}
_cc_osd_up() {
	_cc_ceph "$1" osd dump 2>/dev/null | grep -q '^osd\.0 up '
}

_cc_write_conf() { # dir addr port
	local d=$1
	cat >"$d/ceph.conf" <<EOF
# Written by ceph-cluster.sh: a single-node test cluster, auth off.
[global]
fsid = $(cat /proc/sys/kernel/random/uuid)
mon host = [v2:$2:$3]
mon initial members = a
auth cluster required = none
auth service required = none
auth client required = none
ms bind ipv4 = true
ms bind ipv6 = false
ms bind msgr1 = false
run dir = $d/run
crash dir = $d/crash
exporter sock dir = $d/run
keyring = $d/keyring
log file = $d/log/\$name.log
log to stderr = false
err to stderr = false
admin socket = $d/run/\$cluster-\$name.asok
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
osd crush chooseleaf type = 0
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon warn on insecure global id reclaim allowed = false
mon data avail warn = 1
mon data avail crit = 0

[mon]
mon data = $d/mon.\$id
mon cluster log file = $d/log/\$cluster.\$channel.log
public addr = $2

[osd]
osd data = $d/osd.\$id
osd objectstore = memstore
memstore device bytes = 536870912
public addr = $2
cluster addr = $2

[client]
admin socket = $d/run/\$cluster-\$name.\$pid.\$cctid.asok
log file = $d/log/\$name.\$pid.log
EOF
}

# _cc_spawn DIR mon|osd ID CMD...: CMD in the background, out of the
# caller's stdio (a caller reading our output through a pipe is not held
# open), its output to DIR/log/mon.ID.out, its pid to DIR/mon.pid. When
# this runs as a script rather than sourced, the daemons outlive it as
# orphans: a PID 1 that does not reap leaves them zombies once stopped.
_cc_spawn() {
	local dir=$1 kind=$2 id=$3
	shift 3
	"$@" </dev/null >>"$dir/log/$kind.$id.out" 2>&1 &
	echo $! >"$dir/$kind.pid"
}

ceph_cluster_start() {
	local dir='' addr=127.0.0.1 tmo=60 end port try uuid id
	while [ $# -gt 0 ]; do
		case $1 in
		--addr) addr=$2; shift 2 ;;
		--timeout) tmo=$2; shift 2 ;;
		-*) _cc_log "start: unknown option $1"; return 2 ;;
		*) dir=$1; shift ;;
		esac
	done
	[ -n "$dir" ] || { _cc_log "usage: start DIR [--addr IP] [--timeout S]"; return 2; }
	for b in ceph-mon ceph-osd monmaptool ceph rados ss; do
		command -v "$b" >/dev/null || { _cc_log "$b is missing (scripts/deps.sh)"; return 3; }
	done
	mkdir -p "$dir" && dir=$(readlink -f "$dir") || return 1
	if _cc_ours "$dir" "$(_cc_pid "$dir" mon)" || _cc_ours "$dir" "$(_cc_pid "$dir" osd)"; then
		_cc_log "a cluster runs in $dir already (stop it first)"
		return 1
	fi
	end=$(($(_cc_mono_ms) + tmo * 1000))
	rm -rf "$dir/mon.a" "$dir/osd.0" "$dir/run" "$dir/log" "$dir/crash" \
		"$dir/ceph.conf" "$dir/keyring" "$dir/monmap" "$dir/mon.pid" "$dir/osd.pid"
	mkdir -p "$dir/run" "$dir/log" "$dir/crash" "$dir/osd.0" || return 1
	: >"$dir/keyring"

	# The mon, on a port of its own; another one if that was taken between
	# the look and the bind.
	for try in 1 2 3; do
		port=$(_cc_free_port) || { _cc_log "no free port"; return 1; }
		rm -rf "$dir/mon.a" "$dir/monmap"
		_cc_write_conf "$dir" "$addr" "$port"
		# The mon finds itself in the monmap by its name: a map built
		# from "mon host" alone names it noname-a, and it probes forever.
		if ! timeout 30 monmaptool --create --fsid "$(sed -n 's/^fsid = //p' "$dir/ceph.conf")" \
			--addv a "[v2:$addr:$port]" "$dir/monmap" >>"$dir/log/mon.a.out" 2>&1 ||
			! timeout 30 ceph-mon -c "$dir/ceph.conf" --mkfs -i a --monmap "$dir/monmap" \
				>>"$dir/log/mon.a.out" 2>&1; then
			_cc_log "ceph-mon --mkfs failed"
			_cc_tail "$dir"
			return 1
		fi
		_cc_spawn "$dir" mon a ceph-mon -c "$dir/ceph.conf" -i a -f
		_cc_wait "$dir" "$end" "mon leader" _cc_mon_leader "$dir" && break
		if ! grep -q 'Address already in use' "$dir"/log/*.log 2>/dev/null || [ $try -eq 3 ]; then
			_cc_tail "$dir"
			ceph_cluster_stop "$dir"
			return 1
		fi
		_cc_log "port $port was taken: another one"
		ceph_cluster_stop "$dir"
		rm -f "$dir"/log/*
	done

	# The OSD: registered, its store made, started, up in the osdmap.
	uuid=$(cat /proc/sys/kernel/random/uuid)
	id=$(_cc_ceph "$dir" osd new "$uuid" 2>>"$dir/log/osd.0.out")
	if [ "$id" != 0 ]; then
		_cc_log "osd new gave '${id}', not 0"
		_cc_tail "$dir"
		ceph_cluster_stop "$dir"
		return 1
	fi
	if ! timeout 30 ceph-osd -c "$dir/ceph.conf" -i 0 --mkfs --osd-uuid "$uuid" \
		>>"$dir/log/osd.0.out" 2>&1; then
		_cc_log "ceph-osd --mkfs failed"
		_cc_tail "$dir"
		ceph_cluster_stop "$dir"
		return 1
	fi
	_cc_spawn "$dir" osd 0 ceph-osd -c "$dir/ceph.conf" -i 0 -f
	if ! _cc_wait "$dir" "$end" "osd.0 up" _cc_osd_up "$dir"; then
		_cc_tail "$dir"
		ceph_cluster_stop "$dir"
		return 1
	fi
	echo "$dir/ceph.conf"
}

# _cc_probe DIR POOL: a write to POOL lands (its PGs are active).
_cc_probe() {
	timeout 10 rados -c "$1/ceph.conf" -p "$2" --rados-osd-op-timeout 5 \
		put iofence-cluster-probe /dev/null
}

ceph_cluster_pool() { # dir name [--timeout S]
	local dir=$1 name=$2 tmo=${4:-30} end
	if [ -z "$dir" ] || [ -z "$name" ]; then
		_cc_log "usage: pool DIR NAME"
		return 2
	fi
	end=$(($(_cc_mono_ms) + tmo * 1000))
	# Size 1 and min_size 1 are the defaults of ceph.conf.
	if ! _cc_ceph "$dir" osd pool create "$name" 8 8 replicated >/dev/null 2>&1 ||
		! _cc_ceph "$dir" osd pool application enable "$name" rbd >/dev/null 2>&1; then
		_cc_log "pool $name: the mon refused or did not answer"
		return 1
	fi
	_cc_wait "$dir" "$end" "active pool $name" _cc_probe "$dir" "$name" || {
		_cc_tail "$dir"
		return 1
	}
	timeout 10 rados -c "$dir/ceph.conf" -p "$name" --rados-osd-op-timeout 5 \
		rm iofence-cluster-probe >/dev/null 2>&1
	return 0
}

# _cc_stop_one DIR mon|osd: SIGTERM (and SIGCONT: a stopped daemon takes
# no signal), SIGKILL after 10 s; waits until it is gone, 5 s more at most.
_cc_stop_one() {
	local dir=$1 pid i
	pid=$(_cc_pid "$dir" "$2")
	_cc_ours "$dir" "$pid" || { rm -f "$dir/$2.pid"; return 0; }
	kill -TERM "$pid" 2>/dev/null
	kill -CONT "$pid" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		_cc_ours "$dir" "$pid" || break
		sleep 0.1
	done
	if _cc_ours "$dir" "$pid"; then
		_cc_log "$2 (pid $pid) ignored SIGTERM for 10 s: SIGKILL"
		kill -KILL "$pid" 2>/dev/null
		for ((i = 0; i < 50; i++)); do
			_cc_ours "$dir" "$pid" || break
			sleep 0.1
		done
	fi
	# Our child when we started it in this shell: reap it.
	wait "$pid" 2>/dev/null
	if _cc_ours "$dir" "$pid"; then
		_cc_log "$2 (pid $pid) survives SIGKILL"
		return 1
	fi
	rm -f "$dir/$2.pid"
}

ceph_cluster_stop() { # dir
	local dir rc=0
	dir=$(readlink -f "$1" 2>/dev/null) || return 0
	[ -d "$dir" ] || return 0
	_cc_stop_one "$dir" osd || rc=1
	_cc_stop_one "$dir" mon || rc=1
	return $rc
}

ceph_cluster_status() { # dir
	local dir d pid rc=0
	dir=$(readlink -f "$1" 2>/dev/null) || return 1
	for d in mon osd; do
		pid=$(_cc_pid "$dir" "$d")
		if _cc_ours "$dir" "$pid"; then
			echo "$d: pid $pid, state $(sed -n 's/.*) \(.\).*/\1/p' "/proc/$pid/stat")"
		else
			echo "$d: not running"
			rc=1
		fi
	done
	[ $rc -eq 0 ] && _cc_ceph "$dir" -s
	return $rc
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -u
	cmd=${1:-}
	shift || true
	case $cmd in
	start) ceph_cluster_start "$@" ;;
	pool) ceph_cluster_pool "$@" ;;
	stop) ceph_cluster_stop "$@" ;;
	status) ceph_cluster_status "$@" ;;
	*)
		echo "usage: $0 start DIR [--addr IP] [--timeout S] | pool DIR NAME | status DIR | stop DIR" >&2
		exit 2
		;;
	esac
fi
