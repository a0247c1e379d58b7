// SPDX-License-Identifier: GPL-2.0-only
/*
 * The smallest BPF LSM write fence: file_permission refuses every write to
 * one file with -EIO, and lets reads and other files pass. The loader
 * (vm_lsm.c) names the file in the map before it attaches the program.
 *
 * It proves that the selftests/vm guest kernel runs BPF LSM programs built
 * here, against its own BTF (vm_lsm.guest.bpf.o) and, relocated by CO-RE,
 * against this host's (vm_lsm.host.bpf.o), as bpf/ is built.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

/* Macros of include/linux/fs.h and errno.h: BTF has no macros. */
#define MAY_WRITE 0x2
#define EIO 5

char LICENSE[] SEC("license") = "GPL";

struct fenced_file {
	__u64 ino;
	__u32 dev; /* the kernel's dev_t: major << 20 | minor */
	__u32 pad;
	__u64 refused;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fenced_file);
} fenced SEC(".maps");

SEC("lsm/file_permission")
int BPF_PROG(fence_write, struct file *file, int mask, int ret)
{
	struct inode *inode = file->f_inode;
	struct fenced_file *f;
	__u32 key = 0;

	/* An earlier LSM's refusal stands. */
	if (ret)
		return ret;
	if (!(mask & MAY_WRITE))
		return 0;
	f = bpf_map_lookup_elem(&fenced, &key);
	if (!f || !f->ino || inode->i_ino != f->ino ||
	    inode->i_sb->s_dev != f->dev)
		return 0;
	__sync_fetch_and_add(&f->refused, 1);
	return -EIO;
}
