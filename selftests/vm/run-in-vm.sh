#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# run-in-vm.sh COMMAND [ARG...]: runs COMMAND as root in a guest booted with
# Debian's kernel (selftests/vm/prepare.sh) and the BPF LSM enabled, in the
# repository's directory, with this shell's exported environment plus
# IOFENCE_VM=1. The guest's root is this host's, read-only under a tmpfs
# overlay, so binaries built here run there unchanged; /tmp is a fresh ext4
# disk of VM_DISK bytes; the rest of the file system is described in
# selftests/vm/init. COMMAND's stdin is /dev/null; its stdout and stderr
# come here as written.
#
# VM_ACCEL=kvm runs the guest under KVM, =tcg under qemu's emulator; the
# default picks KVM where it runs a stock kernel (kvm_intel, kvm_amd). A PVM
# host's /dev/kvm (kvm_pvm) runs only kernels built as PVM guests, so there
# the guest is emulated: the same kernel and tests, several times slower.
#
# Exit status: COMMAND's; 77 after "SKIP: <reason>" when qemu, the guest
# kernel or the KVM asked for is missing; 125 when the guest left no status
# (it did not boot, it crashed, or VM_TIMEOUT seconds passed), after the
# tail of its console. VM_KEEP=1 keeps the run directory (console.log).
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
G=$repo/build/vm/guest
: "${VM_TIMEOUT:=540}" "${VM_MEM:=2G}" "${VM_CPUS:=2}" "${VM_DISK:=8G}" "${VM_ACCEL:=auto}"

skip() {
	echo "SKIP: $*"
	exit 77
}
[ $# -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]" >&2; exit 2; }
if [ "$VM_ACCEL" = auto ]; then
	VM_ACCEL=tcg
	if [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
		VM_ACCEL=kvm
	fi
fi
case $VM_ACCEL in
kvm) [ -w /dev/kvm ] || skip "no /dev/kvm"; accel=(-accel kvm -cpu host) ;;
tcg) accel=(-accel tcg,thread=multi -cpu max) ;;
*) echo "vm: VM_ACCEL=$VM_ACCEL: kvm, tcg or auto" >&2; exit 125 ;;
esac
command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64 (scripts/deps.sh)"
command -v busybox >/dev/null || skip "no busybox (scripts/deps.sh)"
[ -s "$G/release" ] || "$repo/selftests/vm/prepare.sh" || skip "no guest kernel (selftests/vm/prepare.sh)"
# The kernel's command line carries the paths, split at white space.
[[ $repo != *[[:space:]]* ]] || { echo "vm: $repo: white space in the path" >&2; exit 125; }

run=$(mktemp -d "$repo/build/vm/run.XXXXXX") || exit 125
[ "${VM_KEEP:-0}" = 1 ] || trap 'rm -rf "$run"' EXIT

# The initramfs is prepare.sh's base with this tree's init appended.
cp "$G/base.cpio" "$run/initrd"
# The kernel reads a second archive only from a 4-byte boundary on.
truncate -s %4 "$run/initrd"
(cd "$repo/selftests/vm" && echo init | busybox cpio -o -H newc 2>/dev/null) >>"$run/initrd"
truncate -s "$VM_DISK" "$run/scratch.img"
mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 "$run/scratch.img" || exit 125
# PID 1 of the guest's root runs the command and powers off.
export IOFENCE_VM=1
{
	export -p
	printf 'cd %q || exit 125\n' "$repo"
	printf '%q ' "$@"
	printf '</dev/null >/dev/ttyS1 2>/dev/ttyS2\n'
	printf 'echo $? >%q/status\n' "$run"
	printf 'sync\nexec busybox poweroff -f\n'
} >"$run/cmd.sh"

# The command's output comes through FIFOs and this shell's own descriptors:
# a file that qemu opened anew would have an offset of its own.
mkfifo "$run/stdout" "$run/stderr"
cat "$run/stdout" &
cat "$run/stderr" >&2 &

timeout -k 5 "$VM_TIMEOUT" qemu-system-x86_64 -nodefaults -no-user-config \
	-machine q35 "${accel[@]}" -smp "$VM_CPUS" -m "$VM_MEM" \
	-display none -no-reboot \
	-kernel "$G/vmlinux" -initrd "$run/initrd" \
	-append "console=ttyS0 panic=-1 lsm=landlock,lockdown,yama,bpf iofence.repo=$repo iofence.run=$run" \
	-serial "file:$run/console.log" \
	-chardev file,id=stdout,path="$run/stdout" -serial chardev:stdout \
	-chardev file,id=stderr,path="$run/stderr" -serial chardev:stderr \
	-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=root,mount_tag=root \
	-fsdev local,id=out,path="$run",security_model=none,multidevs=remap \
	-device virtio-9p-pci,fsdev=out,mount_tag=out \
	-drive file="$run/scratch.img",if=virtio,format=raw,cache=unsafe
rc=$?
wait

if [ -s "$run/status" ]; then
	exit "$(cat "$run/status")"
fi
[ "$rc" -eq 124 ] && echo "vm: timed out after ${VM_TIMEOUT}s" >&2
echo "vm: the guest left no exit status (qemu exited $rc); its console:" >&2
tail -n 40 "$run/console.log" | sed 's/^/vm:   /' >&2
exit 125
