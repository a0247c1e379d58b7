// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofence kernel side: per-storage evidence of armed storages.
 *
 * Block I/O: tp_btf programs on block_rq_issue, block_rq_complete,
 * block_rq_requeue and block_rq_error count, per storage slot, what its
 * devices complete, fail and hold in flight. The device map says which
 * devices belong to which slot; I/O on any other device costs one hash
 * lookup and nothing more.
 *
 * Heartbeats seen by the kernel: io_uring_create, io_uring_submit_req (or
 * io_uring_submit_sqe) and io_uring_complete recognise the daemon's own
 * ring (struct iofence_daemon) and stamp a slot when a write to its
 * heartbeat record completes on that ring.
 *
 * The kernel write fence: BPF LSM programs refuse with EIO every write
 * to a fenced slot's files and block devices, but the daemon's own, and
 * fence a guarded slot by themselves once it had no kernel-seen
 * heartbeat for its T (the dead man's switch). The daemon loads them
 * where the kernel runs BPF LSM programs (5.7, with bpf among its LSMs)
 * and leaves them out elsewhere.
 *
 * Kernels: one object for every kernel from 5.5 (tp_btf). CO-RE covers
 * what moved: rq->rq_disk (gone in 5.17, rq->q->disk since 5.15),
 * rq->part (a struct hd_struct before 5.11), and the request_queue
 * argument that block_rq_issue and block_rq_requeue lost in 5.11 (the
 * loader reads their prototypes from the kernel's BTF into rq_arg).
 * Kernel-seen heartbeats need 5.19 (io_uring_submit_sqe with the request
 * first, io_kiocb.cqe; io_uring_submit_req since 6.3); on older kernels
 * the loader leaves those programs out, and the write fence with them.
 * Tested on 6.18, and on 6.1 with the write fence (selftests/vm).
 *
 * Every time is bpf_ktime_get_ns(), CLOCK_MONOTONIC, like the daemon's.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "iofence.h"

char LICENSE[] SEC("license") = "GPL";

/*
 * Which argument of block_rq_issue and block_rq_requeue is the request:
 * 0 since 5.11, 1 before (they also passed the queue). Set by the loader.
 */
const volatile __u32 rq_arg = 0;
/* The LSM programs are loaded with this object: fences mean refusals. */
const volatile __u32 fence_on = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IOFENCE_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct iofence_slot);
	/* The daemon reads and writes its fields in place. */
	__uint(map_flags, BPF_F_MMAPABLE);
} slots SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, IOFENCE_MAX_SLOTS);
	__type(key, __u32);
	__type(value, struct iofence_write_ages);
	/* The daemon reads and writes its fields in place. */
	__uint(map_flags, BPF_F_MMAPABLE);
} write_ages SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IOFENCE_MAX_DEVS);
	__type(key, struct iofence_devkey);
	__type(value, struct iofence_dev);
} devices SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IOFENCE_MAX_SLOTS);
	__type(key, struct iofence_record_key);
	__type(value, struct iofence_record);
} records SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct iofence_daemon);
	/* The daemon reads and writes its fields in place. */
	__uint(map_flags, BPF_F_MMAPABLE);
} daemon SEC(".maps");

/* Start times of requests the kernel did not stamp (no stats, no elevator). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, IOFENCE_MAX_TIMED_RQS);
	__type(key, __u64);
	__type(value, __u64);
} timed_rqs SEC(".maps");

/* The daemon's writes in flight on its ring; LRU: a lost one ages out. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, IOFENCE_MAX_HB_PENDING);
	__type(key, __u64);
	__type(value, struct iofence_hb_pending);
} hb_pending SEC(".maps");

/* What CO-RE looks for on older kernels. */
struct request___old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

struct hd_struct___old {
	struct device __dev;
} __attribute__((preserve_access_index));

#define REQ_OP_MASK_ ((1u << 8) - 1)
#define REQ_OP_WRITE_ 1u
#define MQ_RQ_IDLE_ 0
#define S_IFMT_ 0170000
#define S_IFBLK_ 0060000
#define IORING_OP_WRITEV_ 2
#define IORING_OP_WRITE_FIXED_ 5
#define IORING_OP_WRITE_ 23
/* include/linux/fs.h, mman.h, mm.h and errno.h: BTF has no macros. */
#define MAY_WRITE_ 0x2
#define FMODE_WRITE_ 0x2
#define PROT_WRITE_ 0x2
#define MAP_TYPE_ 0x0f
#define MAP_SHARED_ 0x01
#define MAP_SHARED_VALIDATE_ 0x03
#define VM_SHARED_ 0x08
#define EIO_ 5

/* The partition the request went to when the kernel tracks it, else its disk. */
static __always_inline __u32 rq_dev(struct request *rq)
{
	struct gendisk *disk;

	if (bpf_core_type_exists(struct hd_struct___old)) {
		struct hd_struct___old *part = (void *)BPF_CORE_READ(rq, part);

		if (part)
			return BPF_CORE_READ(part, __dev.devt);
	} else {
		struct block_device *part = rq->part;

		if (part)
			return part->bd_dev;
	}
	if (bpf_core_field_exists(((struct request___old *)rq)->rq_disk))
		disk = BPF_CORE_READ((struct request___old *)rq, rq_disk);
	else
		disk = rq->q->disk;
	if (!disk)
		return 0;
	return IOFENCE_MKDEV(disk->major, disk->first_minor);
}

/* The slot of a request's device, with the device's entry. */
static __always_inline struct iofence_slot *
slot_of(struct request *rq, __u32 *slot, struct iofence_dev **dp)
{
	__u32 dev = rq_dev(rq);
	struct iofence_devkey k = { dev >> IOFENCE_MINORBITS,
				    dev & IOFENCE_MINORMASK };
	struct iofence_dev *d = bpf_map_lookup_elem(&devices, &k);

	if (!d || d->role == IOFENCE_DEV_LOOP_BACKING)
		return NULL;
	*slot = d->slot;
	*dp = d;
	return bpf_map_lookup_elem(&slots, slot);
}

static __always_inline bool rq_is_write(struct request *rq)
{
	return rq->cmd_flags & 1;
}

static __always_inline bool rq_started(struct request *rq)
{
	return rq->state != MQ_RQ_IDLE_;
}

/*
 * When the request started, for the in-flight count, its age and its
 * latency: the kernel's own stamp where it takes one (block stats or an
 * elevator: most disks), else ours, taken at issue and kept by request
 * until completion. 0: not counted in flight (it started before the
 * device was armed, or there was no room to time it).
 */
static __always_inline __u64 rq_t0_issue(struct request *rq,
					 struct iofence_slot *s,
					 struct iofence_dev *d)
{
	__u64 t = rq->start_time_ns, key = (__u64)rq;

	if (t)
		return t >= d->armed_ns ? t : 0;
	t = bpf_ktime_get_ns();
	if (t < d->armed_ns)
		return 0;
	if (bpf_map_update_elem(&timed_rqs, &key, &t, BPF_ANY)) {
		__sync_fetch_and_add(&s->untimed, 1);
		return 0;
	}
	return t;
}

/*
 * The request's start again, after its issue; with @done the last time.
 * Sets *counted when its issue counted it in flight.
 */
static __always_inline __u64 rq_t0_later(struct request *rq,
					 struct iofence_dev *d, bool done,
					 bool *counted)
{
	__u64 t = rq->start_time_ns, key = (__u64)rq, *v;

	if (!t) {
		v = bpf_map_lookup_elem(&timed_rqs, &key);
		if (!v) {
			*counted = false;
			return 0;
		}
		t = *v;
		if (done)
			bpf_map_delete_elem(&timed_rqs, &key);
	}
	*counted = t >= d->armed_ns;
	return t;
}

/* A write enters (+1) or leaves (-1) the bucket of the epoch it started in. */
static __always_inline void write_age(__u32 slot, __u64 t0, int delta)
{
	struct iofence_write_ages *a = bpf_map_lookup_elem(&write_ages, &slot);
	struct iofence_epoch *e;
	__u32 epoch;

	if (!a)
		return;
	epoch = t0 >> IOFENCE_EPOCH_SHIFT;
	e = &a->e[epoch & (IOFENCE_EPOCHS - 1)];
	/* Empty: the bucket is this epoch's; else it keeps the older one. */
	if (delta > 0 && (e->writes <= 0 || (__s32)(epoch - e->epoch) < 0))
		e->epoch = epoch;
	__sync_fetch_and_add(&e->writes, delta);
}

/* In (+1) or out of (-1) the flight. */
static __always_inline void in_flight(struct iofence_slot *s, __u32 slot,
				      struct request *rq, __u64 t0, int delta)
{
	if (!rq_is_write(rq)) {
		__sync_fetch_and_add(&s->reads_in_flight, delta);
		return;
	}
	__sync_fetch_and_add(&s->writes_in_flight, delta);
	write_age(slot, t0, delta);
}

static __always_inline int on_issue(struct request *rq)
{
	struct iofence_slot *s;
	struct iofence_dev *d;
	__u32 slot;
	__u64 t0;

	s = slot_of(rq, &slot, &d);
	if (!s)
		return 0;
	t0 = rq_t0_issue(rq, s, d);
	if (t0)
		in_flight(s, slot, rq, t0, 1);
	return 0;
}

SEC("tp_btf/block_rq_issue")
int iofence_rq_issue(__u64 *ctx)
{
	if (rq_arg)
		return on_issue((struct request *)ctx[1]);
	return on_issue((struct request *)ctx[0]);
}

/*
 * An issued request put back until its next issue. The dispatcher also
 * puts back requests that the driver never started: those were never
 * issued.
 */
static __always_inline int on_requeue(struct request *rq)
{
	struct iofence_slot *s;
	struct iofence_dev *d;
	bool counted;
	__u32 slot;
	__u64 t0;

	s = slot_of(rq, &slot, &d);
	if (!s || !rq_started(rq))
		return 0;
	__sync_fetch_and_add(&s->requeued, 1);
	t0 = rq_t0_later(rq, d, false, &counted);
	if (counted)
		in_flight(s, slot, rq, t0, -1);
	return 0;
}

SEC("tp_btf/block_rq_requeue")
int iofence_rq_requeue(__u64 *ctx)
{
	if (rq_arg)
		return on_requeue((struct request *)ctx[1]);
	return on_requeue((struct request *)ctx[0]);
}

static __always_inline __u32 log2_u64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) {
		v >>= 32;
		r += 32;
	}
	if (v >> 16) {
		v >>= 16;
		r += 16;
	}
	if (v >> 8) {
		v >>= 8;
		r += 8;
	}
	if (v >> 4) {
		v >>= 4;
		r += 4;
	}
	if (v >> 2) {
		v >>= 2;
		r += 2;
	}
	if (v >> 1)
		r += 1;
	return r;
}

/*
 * blk_update_request() fires this for every part of a request that
 * completes, failed or not, before it ends the request. The request is
 * done with the part that covers what is left of it. A flush-sequenced
 * write fires it twice: at its data's completion, and with 0 bytes when
 * the sequence ends; an empty preflush write fires it only at that end
 * and was never issued itself. No write completes 0 bytes otherwise, so
 * a zero-byte write completion is left out.
 */
SEC("tp_btf/block_rq_complete")
int BPF_PROG(iofence_rq_complete, struct request *rq, blk_status_t error,
	     unsigned int nr_bytes)
{
	__u32 slot, op = rq->cmd_flags & REQ_OP_MASK_;
	struct iofence_slot *s;
	struct iofence_dev *d;
	__u64 now, t0, lat;
	bool counted;

	s = slot_of(rq, &slot, &d);
	if (!s)
		return 0;
	if (!error)
		__sync_fetch_and_add(&s->bytes, nr_bytes);
	if (nr_bytes < rq->__data_len)
		return 0;
	if (op == REQ_OP_WRITE_ && !nr_bytes)
		return 0;
	now = bpf_ktime_get_ns();
	if (error) {
		__sync_fetch_and_add(&s->done_failed, 1);
		s->last_error_ns = now;
		s->last_error_status = error;
	} else {
		__sync_fetch_and_add(&s->done_ok, 1);
		s->last_ok_ns = now;
	}
	/* Ended before it was issued (a dying queue): never in flight. */
	if (!rq_started(rq))
		return 0;
	t0 = rq_t0_later(rq, d, true, &counted);
	if (t0 && now > t0) {
		lat = log2_u64((now - t0) / 1000);
		if (lat >= IOFENCE_HIST_SLOTS)
			lat = IOFENCE_HIST_SLOTS - 1;
		__sync_fetch_and_add(&s->latency_us[lat], 1);
	}
	if (counted)
		in_flight(s, slot, rq, t0, -1);
	return 0;
}

/* Where it exists: the errors the kernel reports (not quiet, not passthrough). */
SEC("tp_btf/block_rq_error")
int BPF_PROG(iofence_rq_error, struct request *rq, blk_status_t error,
	     unsigned int nr_bytes)
{
	struct iofence_slot *s;
	struct iofence_dev *d;
	__u32 slot;

	s = slot_of(rq, &slot, &d);
	if (s)
		__sync_fetch_and_add(&s->errors_logged, 1);
	return 0;
}

/* --- heartbeats seen by the kernel ------------------------------------ */

static __always_inline struct iofence_daemon *daemon_entry(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&daemon, &zero);
}

/* The registered thread's next ring is the daemon's, once. */
SEC("tp_btf/io_uring_create")
int BPF_PROG(iofence_uring_create, int fd, void *ring, __u32 sq_entries,
	     __u32 cq_entries, __u32 flags)
{
	struct iofence_daemon *dm = daemon_entry();
	__u64 id = bpf_get_current_pid_tgid();

	if (!dm || !dm->tid || (__u32)id != dm->tid ||
	    (__u32)(id >> 32) != dm->tgid)
		return 0;
	/* What a later process that gets the same pid cannot have. */
	dm->start_ns = bpf_get_current_task_btf()->group_leader->start_time;
	dm->ring = (__u64)ring;
	dm->ring_created_ns = bpf_ktime_get_ns();
	dm->tid = 0;
	return 0;
}

static __always_inline bool daemon_ring(struct iofence_daemon *dm, __u64 ring)
{
	return dm && dm->ring && ring == dm->ring &&
	       (__u32)(bpf_get_current_pid_tgid() >> 32) == dm->tgid;
}

/* A write on the daemon's ring: when it was submitted, and where to. */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(iofence_uring_submit, struct io_kiocb *req)
{
	struct iofence_daemon *dm = daemon_entry();
	struct iofence_hb_pending p;
	__u64 key = (__u64)req;
	__u8 op;

	if (!daemon_ring(dm, (__u64)BPF_CORE_READ(req, ctx)))
		return 0;
	op = BPF_CORE_READ(req, opcode);
	if (op != IORING_OP_WRITE_ && op != IORING_OP_WRITEV_ &&
	    op != IORING_OP_WRITE_FIXED_)
		return 0;
	p.submitted_ns = bpf_ktime_get_ns();
	/* Prepared already: the offset is in the request's io_rw. */
	p.offset = BPF_CORE_READ((struct io_rw *)req, kiocb.ki_pos);
	bpf_map_update_elem(&hb_pending, &key, &p, BPF_ANY);
	return 0;
}

/* --- the kernel write fence ------------------------------------------ */

/*
 * Sets @bits in *@p: BPF_ATOMIC | BPF_OR (5.12), which clang emits from
 * __sync_fetch_and_or() only with -mcpu=v3; the daemon sets its bit in
 * the same word at the same time, so a plain store could lose one.
 */
static __always_inline void fence_or(__u64 *p, __u64 bits)
{
	asm volatile("lock *(u64 *)(%0 + 0) |= %1"
		     :
		     : "r"(p), "r"(bits)
		     : "memory");
}

/*
 * The dead man's switch, at @now: a guarded slot that had no successful
 * heartbeat for T is fenced, sticky, from the moment T ran out (writes
 * after it were refused, whenever the first came). True when fenced.
 */
static __always_inline bool deadman(struct iofence_slot *s, __u64 now)
{
	__u64 at = iofence_deadman_at(s);

	if (!at || now <= at)
		return false;
	if (!(s->fenced & IOFENCE_FENCED_DEADMAN)) {
		/* Racing programs store the same moment; the daemon an earlier one. */
		if (!s->fenced_at_ns)
			s->fenced_at_ns = at;
		fence_or(&s->fenced, IOFENCE_FENCED_DEADMAN);
	}
	return true;
}

/*
 * A completion on the daemon's ring of a write it submitted: a heartbeat
 * when the file written is a slot's record. The ring is the first
 * argument and the request the second in every prototype since 5.18;
 * the result is read from the request, where every one of them has it.
 */
SEC("tp_btf/io_uring_complete")
int iofence_uring_complete(__u64 *ctx)
{
	struct iofence_daemon *dm = daemon_entry();
	struct iofence_record_key k = {};
	struct iofence_hb_pending *pp, p;
	struct io_kiocb *req = (void *)ctx[1];
	struct iofence_record *rec;
	struct iofence_slot *s;
	__u64 key = (__u64)req, now;
	struct inode *inode;
	struct file *file;
	__u32 dev, slot;
	__s32 res;

	if (!daemon_ring(dm, ctx[0]) || !req)
		return 0;
	pp = bpf_map_lookup_elem(&hb_pending, &key);
	if (!pp)
		return 0;
	p = *pp;
	bpf_map_delete_elem(&hb_pending, &key);
	file = BPF_CORE_READ(req, file);
	if (!file)
		return 0;
	inode = BPF_CORE_READ(file, f_inode);
	if ((BPF_CORE_READ(inode, i_mode) & S_IFMT_) == S_IFBLK_) {
		dev = BPF_CORE_READ(inode, i_rdev);
	} else {
		dev = BPF_CORE_READ(inode, i_sb, s_dev);
		k.ino = BPF_CORE_READ(inode, i_ino);
	}
	k.dev.major = dev >> IOFENCE_MINORBITS;
	k.dev.minor = dev & IOFENCE_MINORMASK;
	k.offset = p.offset;
	rec = bpf_map_lookup_elem(&records, &k);
	if (!rec)
		return 0;
	slot = rec->slot;
	s = bpf_map_lookup_elem(&slots, &slot);
	if (!s || s->generation != rec->generation)
		return 0;
	res = BPF_CORE_READ(req, cqe.res);
	s->last_heartbeat_res = res;
	now = bpf_ktime_get_ns();
	/* One that lands after T ran out ends no fence that began meanwhile. */
	if (fence_on)
		deadman(s, now);
	if (res <= 0) {
		__sync_fetch_and_add(&s->heartbeats_failed, 1);
		return 0;
	}
	if (p.submitted_ns > s->last_heartbeat_ns)
		s->last_heartbeat_ns = p.submitted_ns;
	s->last_heartbeat_done_ns = now;
	__sync_fetch_and_add(&s->heartbeats, 1);
	__sync_fetch_and_add(&dm->heartbeats, 1);
	return 0;
}

/*
 * The slot an inode belongs to: a block device node's device (i_rdev), or
 * any other file's file system (its superblock's s_dev), when the device
 * map names it; a loop device's backing device is the backing file
 * system's, not the storage's.
 */
static __always_inline struct iofence_slot *inode_slot(struct inode *inode)
{
	struct iofence_devkey k;
	struct iofence_dev *d;
	__u32 dev, slot;

	if (!inode)
		return NULL;
	if ((inode->i_mode & S_IFMT_) == S_IFBLK_)
		dev = inode->i_rdev;
	else
		dev = inode->i_sb->s_dev;
	k.major = dev >> IOFENCE_MINORBITS;
	k.minor = dev & IOFENCE_MINORMASK;
	d = bpf_map_lookup_elem(&devices, &k);
	if (!d || d->role == IOFENCE_DEV_LOOP_BACKING)
		return NULL;
	slot = d->slot;
	return bpf_map_lookup_elem(&slots, &slot);
}

/*
 * The daemon's process: its registered tgid, started when the one that
 * registered started. Its io-wq workers are threads of it; the children
 * it spawns (fence hooks) are not.
 */
static __always_inline bool is_daemon(void)
{
	struct iofence_daemon *dm = daemon_entry();

	if (!dm || !dm->start_ns ||
	    (__u32)(bpf_get_current_pid_tgid() >> 32) != dm->tgid)
		return false;
	return bpf_get_current_task_btf()->group_leader->start_time ==
	       dm->start_ns;
}

/* A write to @inode: -EIO when its slot is fenced and the writer not the daemon. */
static __always_inline int fence_write(struct inode *inode)
{
	struct iofence_slot *s = inode_slot(inode);

	if (!s || s->type == IOFENCE_SLOT_FREE || !s->guarded)
		return 0;
	if (!s->fenced && !deadman(s, bpf_ktime_get_ns()))
		return 0;
	if (is_daemon())
		return 0;
	__sync_fetch_and_add(&s->writes_refused, 1);
	return -EIO_;
}

/*
 * rw_verify_area() and vfs_fallocate() ask this hook: write(2), writev,
 * pwrite and pwritev; io_uring's writes (io_write() verifies the area,
 * inline or in io-wq); AIO's (aio_write()); fallocate(2) (every mode,
 * punching holes included); copy_file_range(2) and sendfile(2), for the
 * file written; splice(2) into a file; reflinks and dedupe
 * (remap_verify_area). A write through a mapping does not: mmap_file
 * and file_mprotect below refuse the writable shared mapping instead.
 */
SEC("lsm/file_permission")
int BPF_PROG(iofence_file_permission, struct file *file, int mask, int ret)
{
	/* An earlier LSM's refusal stands. */
	if (ret || !(mask & MAY_WRITE_))
		return ret;
	return fence_write(file->f_inode);
}

/* An open for writing, O_TRUNC included (path_truncate sees it too). */
SEC("lsm/file_open")
int BPF_PROG(iofence_file_open, struct file *file, int ret)
{
	if (ret || !(file->f_mode & FMODE_WRITE_))
		return ret;
	return fence_write(file->f_inode);
}

static __always_inline bool map_shared(unsigned long flags)
{
	unsigned long type = flags & MAP_TYPE_;

	return type == MAP_SHARED_ || type == MAP_SHARED_VALIDATE_;
}

/* A new shared mapping that may write: its stores reach the file. */
SEC("lsm/mmap_file")
int BPF_PROG(iofence_mmap_file, struct file *file, unsigned long reqprot,
	     unsigned long prot, unsigned long flags, int ret)
{
	if (ret || !file || !(prot & PROT_WRITE_) || !map_shared(flags))
		return ret;
	return fence_write(file->f_inode);
}

/* A shared mapping made writable. */
SEC("lsm/file_mprotect")
int BPF_PROG(iofence_file_mprotect, struct vm_area_struct *vma,
	     unsigned long reqprot, unsigned long prot, int ret)
{
	struct file *file = vma->vm_file;

	if (ret || !file || !(prot & PROT_WRITE_) ||
	    !(vma->vm_flags & VM_SHARED_))
		return ret;
	return fence_write(file->f_inode);
}

/*
 * truncate(2), and up to 6.1 ftruncate(2) and open(O_TRUNC) as well; the
 * kernel asks it whatever the file's mode, so any size change is refused.
 */
SEC("lsm/path_truncate")
int BPF_PROG(iofence_path_truncate, const struct path *path, int ret)
{
	if (ret)
		return ret;
	return fence_write(path->dentry->d_inode);
}

/* ftruncate(2) since 6.2, which asks this one instead. */
SEC("lsm/file_truncate")
int BPF_PROG(iofence_file_truncate, struct file *file, int ret)
{
	if (ret)
		return ret;
	return fence_write(file->f_inode);
}
