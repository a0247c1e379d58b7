#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
# check-lane: alone (whole guests under TCG take both CPUs, and their deadlines are tight for a guest)
#
# In the selftests/vm guest (Debian's kernel, lsm=...,bpf), the BPF LSM write
# fence of vm_lsm.bpf.c loads, attaches to file_permission and refuses a
# write to the one file it names with EIO, while a read of it and a write to
# another file pass; once detached it is gone and refuses nothing. Both
# builds: against the guest kernel's BTF, and against the host's (CO-RE, as
# bpf/ is built).
source "$(dirname "$0")/in-vm.sh"
source "$(dirname "$0")/../lib.sh"
need_root

lsms=$(cat /sys/kernel/security/lsm)
if [[ ,$lsms, != *,bpf,* ]]; then
	not_ok "bpf among the active LSMs" "$lsms"
	exit
fi
ok "kernel $(uname -r), active LSMs $lsms, scratch in $T"

# write FILE: appends a line; fails with write(2)'s error message.
write() { { printf 'x\n' >>"$1"; } 2>&1; }
no_fence_prog() { ! bpftool prog show | grep -q '^[0-9]*: lsm  name fence_write '; }

# loader_ready PID OUT: it attached, or it exited (and said why).
loader_ready() { grep -qx attached "$2" || ! kill -0 "$1" 2>/dev/null; }

fence_round() { # build
	local obj=build/bpf/vm_lsm.$1.bpf.o f=$T/$1.marked g=$T/$1.other
	local out=$T/$1.out ctl=$T/$1.ctl fd pid err
	printf 'data\n' >"$f"
	printf 'data\n' >"$g"
	mkfifo "$ctl"
	"$OUT/vm_lsm" "$obj" "$f" <"$ctl" >"$out" 2>&1 &
	pid=$!
	exec {fd}>"$ctl"
	# Its link goes with it (no pin).
	on_exit "kill $pid"
	wait_until 60 loader_ready "$pid" "$out"
	if ! grep -qx attached "$out"; then
		not_ok "$1: loads and attaches" "$(cat "$out")"
		return
	fi
	ok "$1: loads and attaches to file_permission"
	check "$1: bpftool shows it attached" \
		bash -c "bpftool link show | grep -q 'prog_type lsm  attach_type lsm_mac'"

	err=$(write "$f")
	if [[ $err == *"Input/output error"* ]]; then
		ok "$1: a write to the marked file fails with EIO"
	else
		not_ok "$1: a write to the marked file fails with EIO" "${err:-it passed}"
	fi
	check "$1: a read of the marked file passes" test "$(cat "$f")" = data
	err=$(write "$g")
	check "$1: a write to another file passes" test -z "$err"

	exec {fd}>&-
	wait "$pid"
	check "$1: the program counted the one refusal" grep -qx 'refused 1' "$out"
	check "$1: detached" grep -qx detached "$out"
	check "$1: the program is gone" wait_until 10 no_fence_prog
	err=$(write "$f")
	check "$1: the marked file takes writes again" test -z "$err"
}

fence_round guest
fence_round host
