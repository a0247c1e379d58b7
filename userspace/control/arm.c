// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <linux/fs.h>

#include "arm.h"
#include "deadlines.h"
#include "log.h"
#include "rados_link.h"
#include "record.h"
#include "timeline.h"

enum arm_step {
	FILE_OPEN_TARGET,
	FILE_MKDIR,
	FILE_OPEN_RECORD,
	FILE_OPEN_RECORD_BUFFERED,
	FILE_STATX_RECORD,
	FILE_READ_RECORD,
	FILE_STATX,
	BLOCK_OPEN,
	BLOCK_STATX,
	BLOCK_REOPEN,
	BLOCK_READ_SLOT,
	RBD_CONNECT,
	RBD_READ_RECORD,
	ARM_DONE,
};

static const char *const step_names[] = {
	[FILE_OPEN_TARGET] = "open target",
	[FILE_MKDIR] = "create " ARM_RECORD_DIR,
	[FILE_OPEN_RECORD] = "open heartbeat record",
	[FILE_OPEN_RECORD_BUFFERED] = "open heartbeat record",
	[FILE_STATX_RECORD] = "statx heartbeat record",
	[FILE_READ_RECORD] = "read heartbeat record",
	[FILE_STATX] = "statx target",
	[BLOCK_OPEN] = "open device",
	[BLOCK_STATX] = "statx device",
	[BLOCK_REOPEN] = "open device for O_DIRECT",
	[BLOCK_READ_SLOT] = "read heartbeat slot",
	[RBD_CONNECT] = "connect to the cluster of",
	[RBD_READ_RECORD] = "read heartbeat object in",
};

static const enum arm_step next_step[] = {
	[FILE_OPEN_TARGET] = FILE_MKDIR,
	[FILE_MKDIR] = FILE_OPEN_RECORD,
	[FILE_OPEN_RECORD] = FILE_STATX_RECORD,
	[FILE_OPEN_RECORD_BUFFERED] = FILE_STATX_RECORD,
	[FILE_STATX_RECORD] = FILE_READ_RECORD,
	[FILE_READ_RECORD] = FILE_STATX,
	[FILE_STATX] = ARM_DONE,
	[BLOCK_OPEN] = BLOCK_STATX,
	[BLOCK_STATX] = BLOCK_REOPEN,
	[BLOCK_REOPEN] = BLOCK_READ_SLOT,
	[BLOCK_READ_SLOT] = ARM_DONE,
	[RBD_CONNECT] = RBD_READ_RECORD,
	[RBD_READ_RECORD] = ARM_DONE,
};

static void arm_next(struct arm_op *a);

static void finish(struct arm_op *a, int res)
{
	a->failed_step = res ? step_names[a->step] : NULL;
	a->done(a, res);
}

static int refuse(struct arm_op *a, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int refuse(struct arm_op *a, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
	return -EEXIST;
}

static const char *file_type_name(mode_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFIFO:
		return "a FIFO";
	case S_IFCHR:
		return "a character device";
	case S_IFBLK:
		return "a block device";
	case S_IFSOCK:
		return "a socket";
	case S_IFDIR:
		return "a directory";
	case S_IFLNK:
		return "a symbolic link";
	default:
		return "of an unknown type";
	}
}

/* The step's deadline: its own, cut short by the request's. */
static uint64_t step_timeout(const struct arm_op *a)
{
	uint64_t now = loop_now_ms();
	uint64_t left = a->deadline_ms > now ? a->deadline_ms - now : 0;
	uint64_t own = a->step == RBD_CONNECT ? ARM_CONNECT_DEADLINE_MS :
						ARM_STEP_DEADLINE_MS;

	return left < own ? left : own;
}

/*
 * The block size decides the record size; the slot must lie inside the
 * device, so that no heartbeat ever lands past the configured region.
 */
static int block_geometry(struct arm_op *a)
{
	struct storage *s = a->s;
	uint64_t size, end;
	int lbs;

	if (ioctl(s->record_fd, BLKSSZGET, &lbs) ||
	    ioctl(s->record_fd, BLKGETSIZE64, &size))
		return -errno;
	if (lbs != 512 && lbs != 4096)
		return refuse(a,
			      "logical block size %d is neither 512 nor 4096",
			      lbs);
	s->record_size = lbs;
	s->record_offset =
		s->p.region_offset + (uint64_t)s->p.slot * RECORD_SLOT_SIZE;
	end = s->record_offset + RECORD_SLOT_SIZE;
	if (end > size)
		return refuse(
			a,
			"slot %u at offset %llu ends past the device's %llu bytes",
			s->p.slot, (unsigned long long)s->record_offset,
			(unsigned long long)size);
	return 0;
}

/*
 * What the record found means: the sequence goes on after it, and on
 * this boot its write time is when the last heartbeat succeeded.
 */
static int check_record(struct arm_op *a, int len)
{
	struct storage *s = a->s;
	struct timespec now;
	struct record r;
	int ret = len ? record_decode(a->buf, len, &r) : -ENODATA;

	if (ret == -ENODATA)
		return 0;
	if (ret) {
		if (s->p.type == STORAGE_RBD) {
			pr_warn("%s: object %s in %s is no valid record; rewriting it",
				s->p.uuid, a->record_path, s->p.target);
			return 0;
		}
		if (s->p.type == STORAGE_BLOCK)
			return refuse(
				a,
				"slot %u holds bytes that are not an iofence record; not overwriting them (zero the slot to use it)",
				s->p.slot);
		pr_warn("%s: %s/%s/%s is no valid record; rewriting it",
			s->p.uuid, s->p.target, ARM_RECORD_DIR, s->host_uuid);
		return 0;
	}
	if (strcmp(r.host_uuid, s->host_uuid) && s->p.type == STORAGE_RBD)
		return refuse(a, "object %s holds the record of host %s",
			      a->record_path, r.host_uuid);
	if (strcmp(r.host_uuid, s->host_uuid) &&
	    r.state != RECORD_CLEAN_SHUTDOWN)
		return refuse(a, "slot %u holds the live record of host %s",
			      s->p.slot, r.host_uuid);
	if (strcmp(r.host_uuid, s->host_uuid))
		return 0;
	s->record_mine = !strcmp(r.storage_uuid, s->p.uuid);
	s->next_seq = r.seq + 1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	/*
	 * A clean-shutdown record promised peers nothing (no deadline
	 * runs from it): the heartbeats start afresh. Any other record of
	 * this boot is a deadline peers are counting, which a restart
	 * must keep.
	 */
	if (r.state != RECORD_CLEAN_SHUTDOWN &&
	    !memcmp(r.boot_id, record_boot_id(), sizeof(r.boot_id)) &&
	    r.monotonic_ns <=
		    (uint64_t)now.tv_sec * 1000000000ull + now.tv_nsec)
		s->t_ok_ns = r.monotonic_ns;
	return 0;
}

static int read_done(struct arm_op *a, int res)
{
	if (res < 0 && a->read_may_fail) {
		a->s->record_unread = true;
		pr_warn("%s: %s %s: %s; armed, its heartbeats will tell",
			a->s->p.uuid, step_names[a->step], a->s->p.target,
			res == -ETIMEDOUT ? "deadline passed" : strerror(-res));
		return 0;
	}
	return res < 0 ? res : check_record(a, res);
}

static void step_done(struct timed_op *t, int res)
{
	struct arm_op *a = container_of(t, struct arm_op, op);
	struct storage *s = a->s;

	if (a->step == FILE_OPEN_RECORD && res == -EINVAL) {
		/* tmpfs and some FUSE file systems have no O_DIRECT. */
		pr_warn("%s: %s/%s has no O_DIRECT; heartbeats go through the page cache with O_DSYNC",
			s->p.uuid, s->p.target, ARM_RECORD_DIR);
		a->step = FILE_OPEN_RECORD_BUFFERED;
		arm_next(a);
		return;
	}
	if (a->step == FILE_STATX_RECORD && res < 0 && a->read_may_fail) {
		/* Re-arming a lost storage: armed, to be fenced, unchecked. */
		pr_warn("%s: %s %s: %s; not checked against the other storages",
			s->p.uuid, step_names[a->step], s->p.target,
			res == -ETIMEDOUT ? "deadline passed" : strerror(-res));
		a->step = next_step[a->step];
		arm_next(a);
		return;
	}
	if (a->step == RBD_CONNECT && res < 0 && a->read_may_fail) {
		/* As for a record that cannot be read: armed, to be fenced. */
		read_done(a, res);
		a->step = ARM_DONE;
		arm_next(a);
		return;
	}
	if (a->step == RBD_READ_RECORD && res == -ENOENT)
		res = 0; /* the first heartbeat creates it */
	if (a->step == FILE_READ_RECORD || a->step == BLOCK_READ_SLOT ||
	    a->step == RBD_READ_RECORD)
		res = read_done(a, res);
	if (res < 0 && !(a->step == FILE_MKDIR && res == -EEXIST)) {
		finish(a, res);
		return;
	}
	switch (a->step) {
	case FILE_OPEN_TARGET:
		s->target_fd = res;
		break;
	case BLOCK_REOPEN:
		loop_close(a->loop, s->record_fd);
		/* fall through */
	case FILE_OPEN_RECORD:
		s->record_direct = true;
		/* fall through */
	case BLOCK_OPEN:
	case FILE_OPEN_RECORD_BUFFERED:
		s->record_fd = res;
		break;
	case FILE_STATX_RECORD:
		/*
		 * A FIFO or a device put in the record's place would take
		 * heartbeats that no peer ever reads.
		 */
		if (!S_ISREG(a->stx.stx_mode)) {
			finish(a,
			       refuse(a,
				      "%s/%s/%s is not a regular file (%s); not writing heartbeats to it",
				      s->p.target, ARM_RECORD_DIR, s->host_uuid,
				      file_type_name(a->stx.stx_mode)));
			return;
		}
		/* Its identity: no two storages may write the same record. */
		s->record_dev =
			makedev(a->stx.stx_dev_major, a->stx.stx_dev_minor);
		s->record_ino = a->stx.stx_ino;
		break;
	case FILE_STATX:
		s->fs_dev = makedev(a->stx.stx_dev_major, a->stx.stx_dev_minor);
		/* NFS and FUSE have anonymous devices: no block evidence. */
		if (a->stx.stx_dev_major)
			s->dev = s->fs_dev;
		break;
	case BLOCK_STATX:
		if (!S_ISBLK(a->stx.stx_mode)) {
			finish(a, -ENOTBLK);
			return;
		}
		s->dev = makedev(a->stx.stx_rdev_major, a->stx.stx_rdev_minor);
		res = block_geometry(a);
		if (res) {
			finish(a, res);
			return;
		}
		break;
	}
	a->step = next_step[a->step];
	arm_next(a);
}

/* An open that finished after its deadline: nobody will use the fd. */
static void step_late(struct timed_op *t, int res)
{
	struct arm_op *a = container_of(t, struct arm_op, op);

	if (res >= 0 &&
	    (a->step == FILE_OPEN_TARGET || a->step == FILE_OPEN_RECORD ||
	     a->step == FILE_OPEN_RECORD_BUFFERED || a->step == BLOCK_OPEN ||
	     a->step == BLOCK_REOPEN))
		loop_close(a->loop, res);
}

static void step_idle(struct timed_op *t)
{
	struct arm_op *a = container_of(t, struct arm_op, op);

	if (a->orphan)
		a->orphan(a);
}

/* --- rbd: the same steps, through a link thread ---------------------- */

static void on_rados(struct msg *m, void *ctx)
{
	struct rados_reply *r = container_of(m, struct rados_reply, m);
	struct arm_op *a = (struct arm_op *)(uintptr_t)r->tag;
	int res = r->res;

	if (res < 0 && r->step) {
		if (res == -ENOENT && !strcmp(r->step, "pool"))
			snprintf(a->why, sizeof(a->why),
				 "the cluster has no pool %s", a->s->p.pool);
		else
			snprintf(a->why, sizeof(a->why), "%s: %s", r->step,
				 res == -ETIMEDOUT ?
					 "librados' deadline passed" :
					 strerror(-res));
	}
	if (!res && r->op == RADOS_OPEN)
		snprintf(a->s->rados_addrs, sizeof(a->s->rados_addrs), "%s",
			 r->addrs);
	if (!res && r->op == RADOS_READ) {
		res = r->len < RECORD_SIZE_MAX ? (int)r->len : RECORD_SIZE_MAX;
		memcpy(a->buf, r->data, res);
	}
	rados_reply_free(r);
	timed_op_complete(&a->op, res);
}

static int rbd_next(struct arm_op *a)
{
	const struct storage_params *p = &a->s->p;
	struct rados_link_cfg cfg = {
		.conf = p->ceph_conf,
		.client = p->ceph_client,
		.keyring = p->keyring,
		.pool = p->pool,
		.ns = p->ns,
		.connect_timeout_s = timeline_rados_connect_timeout_s(p),
		.osd_op_timeout_s = timeline_rados_op_timeout_s(p),
		.mon_op_timeout_s = timeline_rados_op_timeout_s(p),
		.rt_priority = a->rt_priority,
	};
	uint64_t tag = (uintptr_t)a;

	if (a->step == RBD_CONNECT) {
		a->s->rados = rados_link_open(&cfg, a->chan, on_rados, tag);
		return a->s->rados ? 0 : -ENOMEM;
	}
	return rados_link_read(a->s->rados, a->record_path,
			       RECORD_SIZE_MAX + RECORD_ADDRS_SIZE, a->chan,
			       on_rados, tag);
}

static void prep_open_record(struct arm_op *a, struct io_uring_sqe *sqe,
			     int direct)
{
	/* Beneath the target, and never through a symlink. */
	a->how = (struct open_how){
		.flags = O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_DSYNC |
			 direct,
		.mode = 0644,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	io_uring_prep_openat2(sqe, a->s->target_fd, a->record_path, &a->how);
}

static void arm_next(struct arm_op *a)
{
	struct storage *s = a->s;
	struct io_uring_sqe *sqe;
	uint64_t timeout = step_timeout(a);

	if (a->step == ARM_DONE) {
		finish(a, 0);
		return;
	}
	if (!timeout) {
		finish(a, -ETIMEDOUT);
		return;
	}
	if (a->step == RBD_CONNECT || a->step == RBD_READ_RECORD) {
		int ret;

		timed_op_begin_remote(a->loop, &a->op);
		ret = rbd_next(a);
		if (ret) {
			timed_op_complete(&a->op, ret);
			return;
		}
		timed_op_submit(a->loop, &a->op, timeout);
		return;
	}
	sqe = timed_op_sqe(a->loop, &a->op);
	switch (a->step) {
	case FILE_OPEN_TARGET:
		a->how = (struct open_how){
			.flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
			.resolve = RESOLVE_NO_SYMLINKS,
		};
		io_uring_prep_openat2(sqe, AT_FDCWD, s->p.target, &a->how);
		break;
	case FILE_MKDIR:
		io_uring_prep_mkdirat(sqe, s->target_fd, ARM_RECORD_DIR, 0755);
		break;
	case FILE_OPEN_RECORD:
		prep_open_record(a, sqe, O_DIRECT);
		break;
	case FILE_OPEN_RECORD_BUFFERED:
		prep_open_record(a, sqe, 0);
		break;
	case FILE_STATX_RECORD:
		/*
		 * The cached identity is the identity: an NFS client need
		 * not ask a server that may be gone.
		 */
		io_uring_prep_statx(sqe, s->record_fd, "",
				    AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
				    STATX_INO | STATX_TYPE, &a->stx);
		break;
	case FILE_READ_RECORD:
	case BLOCK_READ_SLOT:
		io_uring_prep_read(sqe, s->record_fd, a->buf, s->record_size,
				   s->record_offset);
		break;
	case FILE_STATX:
		io_uring_prep_statx(sqe, s->target_fd, "", AT_EMPTY_PATH,
				    STATX_TYPE, &a->stx);
		break;
	case BLOCK_OPEN:
		/*
		 * Device paths are symlinks by design (/dev/disk/by-id/...):
		 * follow those, but no /proc magic links.
		 */
		a->how = (struct open_how){
			.flags = O_WRONLY | O_CLOEXEC,
			.resolve = RESOLVE_NO_MAGICLINKS,
		};
		/*
		 * io_uring's inline try opens with O_NONBLOCK, which means
		 * something else to some devices (no media, FIFO): the
		 * IOSQE_ASYNC below opens them with the plain blocking
		 * semantics, in io-wq.
		 */
		io_uring_prep_openat2(sqe, AT_FDCWD, s->p.target, &a->how);
		break;
	case BLOCK_STATX:
		io_uring_prep_statx(sqe, s->record_fd, "", AT_EMPTY_PATH,
				    STATX_TYPE, &a->stx);
		break;
	case BLOCK_REOPEN:
		/*
		 * Only a device that proved to be a block device is opened
		 * for O_DIRECT reads and writes, and it is the very inode
		 * checked: reopened through our fd, not the path again.
		 */
		snprintf(a->record_path, sizeof(a->record_path),
			 "/proc/self/fd/%d", s->record_fd);
		io_uring_prep_openat(sqe, AT_FDCWD, a->record_path,
				     O_RDWR | O_CLOEXEC | O_DIRECT | O_DSYNC,
				     0);
		break;
	}
	/*
	 * Never tried inline: io_uring would issue a read, an open or an
	 * O_DIRECT I/O on a hung file system from io_uring_enter() itself
	 * and block the loop there. In io-wq, a hung storage holds a worker
	 * and the deadline still fires.
	 */
	sqe->flags |= IOSQE_ASYNC;
	timed_op_submit(a->loop, &a->op, timeout);
}

void arm_start(struct arm_op *a, struct loop *l, struct storage *s,
	       uint64_t deadline_ms, arm_cb done)
{
	a->loop = l;
	a->s = s;
	a->deadline_ms = deadline_ms;
	a->done = done;
	a->failed_step = NULL;
	a->why[0] = '\0';
	a->orphan = NULL;
	timed_op_init(&a->op, step_done, step_late);
	a->op.idle = step_idle;
	snprintf(a->record_path, sizeof(a->record_path), ARM_RECORD_DIR "/%s",
		 s->host_uuid);
	s->record_size = RECORD_SIZE_MAX;
	s->record_offset = 0;
	a->step = s->p.type == STORAGE_FILE ? FILE_OPEN_TARGET : BLOCK_OPEN;
	if (s->p.type == STORAGE_RBD) {
		storage_rbd_object(s->host_uuid, a->record_path,
				   sizeof(a->record_path));
		a->step = RBD_CONNECT;
	}
	if (!a->buf &&
	    posix_memalign(&a->buf, RECORD_SIZE_MAX, RECORD_SIZE_MAX)) {
		a->buf = NULL;
		finish(a, -ENOMEM);
		return;
	}
	arm_next(a);
}

void arm_release(struct arm_op *a)
{
	free(a->buf);
	a->buf = NULL;
}
