// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "arm.h"
#include "deadlines.h"

enum arm_step {
	FILE_OPEN_TARGET,
	FILE_MKDIR,
	FILE_OPEN_RECORD,
	FILE_STATX,
	BLOCK_OPEN,
	BLOCK_STATX,
	ARM_DONE,
};

static const char *const step_names[] = {
	[FILE_OPEN_TARGET] = "open target",
	[FILE_MKDIR] = "create " ARM_RECORD_DIR,
	[FILE_OPEN_RECORD] = "open heartbeat record",
	[FILE_STATX] = "statx target",
	[BLOCK_OPEN] = "open device",
	[BLOCK_STATX] = "statx device",
};

static void arm_next(struct arm_op *a);

static void finish(struct arm_op *a, int res)
{
	a->failed_step = res ? step_names[a->step] : NULL;
	a->done(a, res);
}

/* The step's deadline: its own, cut short by the request's. */
static uint64_t step_timeout(const struct arm_op *a)
{
	uint64_t now = loop_now_ms();
	uint64_t left = a->deadline_ms > now ? a->deadline_ms - now : 0;

	return left < ARM_STEP_DEADLINE_MS ? left : ARM_STEP_DEADLINE_MS;
}

static void step_done(struct timed_op *t, int res)
{
	struct arm_op *a = container_of(t, struct arm_op, op);
	struct storage *s = a->s;

	if (res < 0 && !(a->step == FILE_MKDIR && res == -EEXIST)) {
		finish(a, res);
		return;
	}
	switch (a->step) {
	case FILE_OPEN_TARGET:
		s->target_fd = res;
		break;
	case FILE_OPEN_RECORD:
	case BLOCK_OPEN:
		s->record_fd = res;
		break;
	case FILE_STATX:
		/* NFS and FUSE have anonymous devices: no block evidence. */
		if (a->stx.stx_dev_major)
			s->dev = makedev(a->stx.stx_dev_major,
					 a->stx.stx_dev_minor);
		break;
	case BLOCK_STATX:
		if (!S_ISBLK(a->stx.stx_mode)) {
			finish(a, -ENOTBLK);
			return;
		}
		s->dev = makedev(a->stx.stx_rdev_major, a->stx.stx_rdev_minor);
		break;
	}
	a->step = a->step == FILE_STATX || a->step == BLOCK_STATX ? ARM_DONE :
								    a->step + 1;
	arm_next(a);
}

/* An open that finished after its deadline: nobody will use the fd. */
static void step_late(struct timed_op *t, int res)
{
	struct arm_op *a = container_of(t, struct arm_op, op);

	if (res >= 0 && (a->step == FILE_OPEN_TARGET ||
			 a->step == FILE_OPEN_RECORD || a->step == BLOCK_OPEN))
		close(res);
}

static void step_idle(struct timed_op *t)
{
	struct arm_op *a = container_of(t, struct arm_op, op);

	if (a->orphan)
		a->orphan(a);
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
		/* Beneath the target, and never through a symlink. */
		a->how = (struct open_how){
			.flags = O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
			.mode = 0644,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
		};
		io_uring_prep_openat2(sqe, s->target_fd, a->record_path,
				      &a->how);
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
		io_uring_prep_openat2(sqe, AT_FDCWD, s->p.target, &a->how);
		/*
		 * io_uring's inline try opens with O_NONBLOCK, which means
		 * something else to some devices (no media, FIFO): always
		 * open them with the plain blocking semantics, in io-wq.
		 */
		sqe->flags |= IOSQE_ASYNC;
		break;
	case BLOCK_STATX:
		io_uring_prep_statx(sqe, s->record_fd, "", AT_EMPTY_PATH,
				    STATX_TYPE, &a->stx);
		break;
	}
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
	a->orphan = NULL;
	timed_op_init(&a->op, step_done, step_late);
	a->op.idle = step_idle;
	snprintf(a->record_path, sizeof(a->record_path), ARM_RECORD_DIR "/%s",
		 s->host_uuid);
	a->step = s->p.type == STORAGE_FILE ? FILE_OPEN_TARGET : BLOCK_OPEN;
	arm_next(a);
}
