#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-only
#
# Makes the guest of selftests/vm in build/vm/guest from Debian's own kernel
# package, unpacked there (never installed into the host's /boot): the kernel
# and its modules, the kernel's BTF and a vmlinux.h from it, and the base of
# its initramfs: busybox and the modules that selftests/vm/init loads
# (run-in-vm.sh appends the init itself at each run).
# Idempotent: a second run finds the guest made and does nothing.
set -eu
trap '[ $? -eq 0 ] || log "failed: see above"' EXIT
cd "$(dirname "$0")/../.."
G=build/vm/guest

# What selftests/vm/init mounts with: the host's root over virtio 9p under an
# overlay, an ext4 scratch disk; and loop and FUSE for the tests.
boot_modules=(virtio_pci 9pnet_virtio 9p overlay virtio_blk ext4 crc32c_generic loop fuse)

log() { printf 'vm: %s\n' "$*" >&2; }

mkdir -p build/vm
exec 9>build/vm/.prepare.lock
flock 9
[ -s "$G/release" ] && exit 0

# linux-image-amd64 only names the versioned package; apt's lists may be older
# than the archive, which keeps only the newest kernel.
kernel_pkg() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[^ ]*\)$/\1/p' | head -1
}
download() { # package
	[ -n "$1" ] && (cd "$G.tmp/deb" && apt-get download -q -o APT::Sandbox::User=root "$1" >/dev/null)
}

rm -rf "$G" "$G.tmp"
mkdir -p "$G.tmp/deb"
pkg=$(kernel_pkg)
if ! download "$pkg"; then
	apt-get update -qq || :
	pkg=$(kernel_pkg)
	download "$pkg" || { log "cannot download linux-image-amd64's kernel (${pkg:-none})"; exit 1; }
fi
kver=${pkg#linux-image-}
dpkg-deb -x "$G.tmp"/deb/*.deb "$G.tmp/root"
rm -rf "$G.tmp/deb"
# The package's postinst would run depmod; modprobe needs its indexes.
depmod -b "$G.tmp/root" "$kver"

# The ELF image inside the xz-compressed kernel boots straight through its PVH
# entry: under TCG, decompressing the bzImage would take 10 s of each boot.
# Its .BTF section is the guest kernel's BTF.
vmlinuz=$G.tmp/root/boot/vmlinuz-$kver
off=$(LC_ALL=C grep -obUaP '\xfd7zXZ\x00' "$vmlinuz" | head -1 | cut -d: -f1)
[ -n "$off" ] || { log "$vmlinuz: no xz payload"; exit 1; }
# xz stops at the end of its stream and fails on what follows it.
tail -c +$((off + 1)) "$vmlinuz" | xz -dcq >"$G.tmp/vmlinux" 2>/dev/null || :
[ "$(head -c 4 "$G.tmp/vmlinux")" = $'\x7fELF' ] || { log "$vmlinuz: no ELF image inside"; exit 1; }
objcopy -O binary --only-section=.BTF "$G.tmp/vmlinux" "$G.tmp/vmlinux.btf"
bpftool btf dump file "$G.tmp/vmlinux.btf" format c >"$G.tmp/vmlinux.h"

# The initramfs: busybox and the boot modules in load order.
ir=$G.tmp/initramfs
mkdir -p "$ir/bin" "$ir/modules"
cp /bin/busybox "$ir/bin/busybox"
for m in "${boot_modules[@]}"; do
	modprobe -d "$G.tmp/root" -S "$kver" --show-depends "$m" | awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r ko; do
	cp "$ko" "$ir/modules/"
	echo "${ko##*/}" >>"$ir/modules/order"
done
# Not compressed: TCG takes longer to inflate it than qemu to load it.
(cd "$ir" && find . | busybox cpio -o -H newc 2>/dev/null) >"$G.tmp/base.cpio"
rm -rf "$ir"

echo "$kver" >"$G.tmp/release"
mv "$G.tmp" "$G"
log "guest kernel $kver in $G"
