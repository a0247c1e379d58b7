/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The maps that the BPF tracker and the daemon share. The BPF side sees
 * these types through vmlinux.h, userspace through <linux/types.h>; both
 * agree on the layout, and BTF carries the field names to bpftool, so
 * `bpftool map dump pinned /sys/fs/bpf/iofence/slots` prints them.
 * iofence-bpf(7) (bpf/iofence-bpf.7) documents every field.
 *
 * One clock: every *_ns field is CLOCK_MONOTONIC in nanoseconds, which is
 * what bpf_ktime_get_ns() returns and what the daemon's deadlines run on
 * (loop_now_ns()). A request's own start time (rq->start_time_ns) is
 * ktime_get_ns() too, the same clock.
 */
#ifndef IOFENCE_BPF_H
#define IOFENCE_BPF_H

/* Bump when a map's layout or meaning changes: pins of another are replaced. */
#define IOFENCE_LAYOUT 3

/* Storage slots: one per armed storage, as many as the daemon arms. */
#define IOFENCE_MAX_SLOTS 1024
/* Devices over all slots: a storage's own, and what it sits on or under. */
#define IOFENCE_MAX_DEVS 4096
/* Requests timed by the fallback (no rq->start_time_ns), at once. */
#define IOFENCE_MAX_TIMED_RQS 8192
/* The daemon's heartbeat writes between submission and completion. */
#define IOFENCE_MAX_HB_PENDING 4096

/* A storage uuid is at most 64 characters (STORAGE_UUID_MAX); and a NUL. */
#define IOFENCE_UUID_SIZE 72

/* Completion latency: slot i counts [2^i, 2^(i+1)) µs; slot 0 also < 1 µs. */
#define IOFENCE_HIST_SLOTS 32

/*
 * Writes in flight by the epoch they started in: 2^24 ns (16.8 ms)
 * epochs in a ring of 64 (1.07 s); see struct iofence_write_ages.
 */
#define IOFENCE_EPOCH_SHIFT 24
#define IOFENCE_EPOCHS 64

/* Kernel dev_t encoding (include/linux/kdev_t.h), not glibc's. */
#define IOFENCE_MINORBITS 20
#define IOFENCE_MINORMASK ((1u << IOFENCE_MINORBITS) - 1)
#define IOFENCE_MKDEV(ma, mi) (((__u32)(ma) << IOFENCE_MINORBITS) | (mi))

enum iofence_slot_type {
	IOFENCE_SLOT_FREE = 0,
	IOFENCE_SLOT_FILE = 1, /* a shared file system */
	IOFENCE_SLOT_BLOCK = 2, /* a shared block device */
};

/* Why a slot is fenced in the kernel (bits of iofence_slot.fenced). */
enum iofence_fence_reason {
	IOFENCE_FENCED_BY_DAEMON = 1, /* the daemon fenced the storage */
	IOFENCE_FENCED_DEADMAN =
		2, /* no kernel-seen heartbeat for timeout_ns */
};

/*
 * One storage: what the kernel saw of it. The array index is the slot;
 * the daemon allocates it by uuid, so a restarted daemon finds the same
 * slot for the same storage. Only the daemon writes the identity and
 * the arming; the programs write the counters; both set fence bits.
 */
struct iofence_slot {
	char uuid[IOFENCE_UUID_SIZE]; /* the storage's uuid; "" when free */
	enum iofence_slot_type type;
	__u32 generation; /* bumped at every arming of the slot */
	__u64 armed_ns; /* when the daemon armed it */

	/*
	 * The kernel write fence (the LSM programs): writes to the slot's
	 * files and devices by anyone but the daemon are refused with EIO
	 * while fenced is nonzero. The daemon sets IOFENCE_FENCED_BY_DAEMON
	 * when it fences the storage; the programs set
	 * IOFENCE_FENCED_DEADMAN at the first write or heartbeat they see
	 * past iofence_deadman_at(). Both are sticky: only the daemon clears
	 * them, at unfence or teardown. A 64-bit word, so that the programs
	 * can set a bit with an atomic or of their oldest instruction set.
	 */
	__u64 fenced; /* enum iofence_fence_reason bits; 0: writable */
	__u64 fenced_at_ns; /* writes refused since; 0 while not fenced */
	__u64 timeout_ns; /* T, the storage's timeout_ms */
	__u64 writes_refused; /* since the fence began (unfence resets it) */

	/*
	 * Heartbeats seen by the kernel: completions on the daemon's own
	 * ring (struct iofence_daemon) of a write to this slot's record
	 * (struct iofence_record_key).
	 */
	__u64 heartbeats; /* completed with a positive result */
	__u64 heartbeats_failed; /* completed with 0 or an error */
	/*
	 * When the last successful one was submitted (t_ok as the kernel
	 * saw it: a write that landed late still counts from its start, so
	 * this stamp is never later than the one peers can have seen).
	 */
	__u64 last_heartbeat_ns;
	__u64 last_heartbeat_done_ns; /* ... and when it completed */
	__s32 last_heartbeat_res; /* the last one's result: bytes or -errno */
	/*
	 * 1: the LSM programs guard this slot (the daemon sets it at
	 * arming where they run): fenced refuses writes, and the dead man's
	 * switch runs. 0: fenced stays 0, nothing is refused.
	 */
	__u32 guarded;

	/* Block I/O on the slot's devices (struct iofence_dev). */
	__u64 done_ok; /* requests completed without error */
	__u64 done_failed; /* ... with a non-zero blk_status_t */
	__u64 bytes; /* bytes completed without error */
	__u64 errors_logged; /* block_rq_error: errors the kernel reported */
	__u64 requeued; /* issued requests put back for a later issue */
	__u64 untimed; /* not counted in flight: no room to time them */
	__u64 last_ok_ns; /* the last completion without error */
	__u64 last_error_ns; /* the last completion with one */
	__u32 last_error_status; /* its blk_status_t */
	__u32 pad2;
	__s64 reads_in_flight; /* issued, not completed: non-writes */
	__s64 writes_in_flight; /* ... writes (op_is_write) */
	__u64 latency_us[IOFENCE_HIST_SLOTS]; /* log2 histogram */
};

/*
 * The dead man's switch of a guarded slot: from this moment on writes
 * are refused, the switch having seen no successful heartbeat for T. It
 * arms at the slot's first kernel-seen heartbeat (a slot whose record
 * the kernel cannot see, or that never had a heartbeat, is fenced by the
 * daemon alone). 0: not armed. The one rule, for the programs, the
 * daemon and its fencing core alike.
 */
static inline __u64 iofence_deadman_at(const struct iofence_slot *s)
{
	__u64 from = s->last_heartbeat_ns;

	if (!s->guarded || !from || !s->timeout_ns)
		return 0;
	if (s->armed_ns > from)
		from = s->armed_ns;
	return from + s->timeout_ns;
}

/* A write epoch: writes in flight that started in it (see below). */
struct iofence_epoch {
	__u32 epoch; /* start_ns >> IOFENCE_EPOCH_SHIFT, of the oldest one */
	__s32 writes;
};

/*
 * The age of a slot's oldest write in flight, kept apart from the slot so
 * that a dump of the slots stays readable. A write that starts at t
 * counts in e[(t >> SHIFT) % EPOCHS]; a bucket that was empty takes its
 * epoch, one that is not keeps the older one. The completion takes the
 * write out of the same bucket. The oldest write started in the smallest
 * epoch among the buckets with writes, so its age is between
 * now - ((epoch + 1) << SHIFT) and now - (epoch << SHIFT). A write stuck
 * for minutes keeps its bucket's epoch however many newer writes pass
 * through it; after it completes, its bucket shows an age too old until
 * the newer writes in it drain (at most a ring's period under steady
 * load).
 */
struct iofence_write_ages {
	struct iofence_epoch e[IOFENCE_EPOCHS];
};

/* A device of a slot: why the daemon put it there. */
enum iofence_dev_role {
	IOFENCE_DEV_TARGET = 1, /* the storage's block device itself */
	IOFENCE_DEV_FS = 2, /* the s_dev of the storage's file system */
	IOFENCE_DEV_PARTITION = 3, /* a partition of a device above */
	IOFENCE_DEV_WHOLE_DISK = 4, /* the disk a partition above is on */
	IOFENCE_DEV_HOLDER = 5, /* stacked on a device above (dm, md) */
	IOFENCE_DEV_SLAVE = 6, /* a device above is stacked on it */
	/*
	 * Holds a loop device's backing file. Listed, but its I/O is not
	 * counted: it is the backing file system's, and the loop device's
	 * own requests stay in flight until their backing I/O completes.
	 */
	IOFENCE_DEV_LOOP_BACKING = 7,
};

/* A device as the maps key it: what bpftool shows as major:minor. */
struct iofence_devkey {
	__u32 major;
	__u32 minor;
};

/*
 * In flight counts only requests that started at armed_ns or later: the
 * daemon sets it a margin past the moment it writes the entry, so every
 * request counted at its completion was seen at its issue, and one that
 * was issued before the device was armed is seen at neither.
 */
struct iofence_dev {
	__u32 slot;
	enum iofence_dev_role role;
	__u64 armed_ns;
};

/*
 * A heartbeat record as the kernel sees the daemon's write to it: the
 * file's inode (file storage: its i_sb->s_dev and i_ino, as statx tells
 * them) or the block device (i_rdev, ino 0), and the write's offset.
 */
struct iofence_record_key {
	struct iofence_devkey dev;
	__u64 ino;
	__u64 offset;
};

struct iofence_record {
	__u32 slot;
	__u32 generation; /* the slot's when the record was registered */
};

/*
 * The daemon, as the kernel saw it: the only entry (key 0). Before it
 * makes the ring its fencing core heartbeats through, the daemon writes
 * its tgid and the tid of the thread that will make the ring; when that
 * thread makes its next ring (io_uring_create), the program takes the
 * ring's ctx and the start time of the thread's process, and clears
 * tid, so nothing after it can take the place. A completion counts as a
 * heartbeat only on that ring, seen from that process; a write passes
 * the kernel fence only from that process (its tgid and its start time:
 * a later process that got the same pid has another). A restarted
 * daemon registers again and takes over.
 */
struct iofence_daemon {
	__u32 layout; /* IOFENCE_LAYOUT of the programs that run */
	__u32 tgid;
	__u32 tid; /* waiting for this thread's next ring; 0: none */
	__u32 write_fence; /* 1: the LSM programs run (the kernel fence) */
	__u64 object_id; /* which BPF object runs (a checksum of it) */
	__u64 registered_ns;
	__u64 ring; /* the io_ring_ctx, as io_uring_create gave it */
	__u64 ring_created_ns;
	__u64 heartbeats; /* over all slots */
	__u64 start_ns; /* its process's start_time (task_struct) */
};

/* A write the daemon submitted on its ring, until it completes. */
struct iofence_hb_pending {
	__u64 submitted_ns;
	__u64 offset;
};

#endif
