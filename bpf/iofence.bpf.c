// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofence kernel side: per-device block I/O evidence for armed storages.
 *
 * Completions, errors and bytes are counted at block_rq_complete, which
 * blk_update_request() fires for every request, failed or not, before the
 * request is ended. The daemon reads them through the pinned map.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "iofence.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IOFENCE_MAX_DEVS);
	__type(key, __u32);
	__type(value, struct dev_stats);
} dev_stats SEC(".maps");

/* The partition the request went to when known, else its whole disk. */
static __always_inline __u32 rq_dev(struct request *rq)
{
	struct block_device *part = BPF_CORE_READ(rq, part);
	struct gendisk *disk;

	if (part)
		return BPF_CORE_READ(part, bd_dev);
	disk = BPF_CORE_READ(rq, q, disk);
	if (!disk)
		return 0;
	return IOFENCE_MKDEV(BPF_CORE_READ(disk, major),
			     BPF_CORE_READ(disk, first_minor));
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(block_rq_complete, struct request *rq, blk_status_t error,
	     unsigned int nr_bytes)
{
	__u32 dev = rq_dev(rq);
	struct dev_stats *st;
	__u64 now;

	st = bpf_map_lookup_elem(&dev_stats, &dev);
	if (!st)
		return 0;
	now = bpf_ktime_get_ns();
	__sync_fetch_and_add(&st->completions, 1);
	if (error) {
		__sync_fetch_and_add(&st->errors, 1);
		st->last_error_ns = now;
		st->last_error = error;
	} else {
		__sync_fetch_and_add(&st->bytes, nr_bytes);
	}
	st->last_complete_ns = now;
	return 0;
}
