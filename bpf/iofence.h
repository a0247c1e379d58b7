/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Types shared by the BPF tracker and the daemon. The BPF side sees them
 * through vmlinux.h types, userspace through <linux/types.h>; both agree on
 * the layout, and BTF carries the field names to bpftool.
 */
#ifndef IOFENCE_BPF_H
#define IOFENCE_BPF_H

/* Devices the daemon watches at once; also bounds the map's memory. */
#define IOFENCE_MAX_DEVS 1024

/*
 * Block I/O evidence for one device of an armed storage, keyed by the
 * kernel's dev_t (major << 20 | minor). The daemon creates the entry when it
 * arms the storage; the BPF program only updates entries that exist, so it
 * never tracks a device nobody asked for.
 */
struct dev_stats {
	__u32 storage_idx; /* the daemon's handle for the storage */
	__u32 pad;
	__u64 completions; /* requests completed, with or without error */
	__u64 errors; /* requests completed with a non-zero blk_status_t */
	__u64 bytes; /* bytes completed without error */
	__u64 last_complete_ns; /* bpf_ktime_get_ns() of the last completion */
	__u64 last_error_ns; /* bpf_ktime_get_ns() of the last error */
	__s32 last_error; /* last blk_status_t seen, 0 if none */
	__u32 pad2;
};

/* Kernel dev_t encoding (include/linux/kdev_t.h), not glibc's. */
#define IOFENCE_MINORBITS 20
#define IOFENCE_MKDEV(ma, mi) (((__u32)(ma) << IOFENCE_MINORBITS) | (mi))

#endif
