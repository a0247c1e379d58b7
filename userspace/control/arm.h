/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Staging one storage: opening its heartbeat target and finding its block
 * device, as a chain of asynchronous steps, each bounded by a deadline, so
 * that a hung file system costs a setup its deadline and never stalls the
 * loop. Staging changes nothing the daemon serves: the staged storage is
 * put in place, or dropped, by the setup that asked for it.
 *
 *   file:  open <target> (a folder, no symlinks)
 *          mkdir <target>/.iofence
 *          open <target>/.iofence/<host> (created 0644, never through a
 *          symlink, never outside the target; O_DIRECT|O_DSYNC, or
 *          O_DSYNC alone where the file system refuses O_DIRECT)
 *          statx the record, from the cache: its identity (st_dev,
 *          st_ino), so that setup refuses two storages on one record
 *          read the record there
 *          statx <target>: its device, for the tracker and the victims
 *   block: open <target> (a block device, O_DIRECT|O_DSYNC)
 *          statx: must be a block device; its number; its logical block
 *          size, and the slot must lie inside the device
 *          read the slot
 *   rbd:   connect to the cluster and look the pool up (a link thread:
 *          rados_link.h), librados' own deadlines set from the storage's
 *          read the object iofence.<host> (the record, then the addresses)
 *
 * Every step runs in io-wq (IOSQE_ASYNC), never inline in the loop's
 * io_uring_enter(), and an fd nobody wants any more is closed there too.
 *
 * The record found decides where the sequence goes on and, on this boot,
 * when the last heartbeat succeeded (a restarted daemon keeps the deadline
 * peers computed). A slot holding another host's live record, or bytes
 * that are no record at all, is refused: never overwrite what is not ours.
 */
#ifndef IOFENCE_ARM_H
#define IOFENCE_ARM_H

#include <stdint.h>
#include <sys/stat.h>
#include <linux/openat2.h>

#include "chan.h"
#include "loop.h"
#include "storage.h"
#include "timed_op.h"

#define ARM_RECORD_DIR ".iofence"

struct arm_op;
/* @res: 0, or a negative errno; s->... filled on success. */
typedef void (*arm_cb)(struct arm_op *a, int res);

struct arm_op {
	struct loop *loop;
	struct chan *chan; /* rbd: the control plane's, for the link's replies */
	int rt_priority; /* rbd: the heartbeat link's, the core's */
	struct storage *s; /* being staged: fds and dev filled here */
	uint64_t deadline_ms; /* monotonic; the whole request's */
	struct timed_op op;
	struct open_how how;
	struct statx stx;
	/* file: the record's path; rbd: its object */
	char record_path[sizeof(ARM_RECORD_DIR) + STORAGE_UUID_MAX + 1];
	int step;
	void *buf; /* RECORD_SIZE_MAX, aligned for O_DIRECT */
	/*
	 * Re-arming at start-up: a record that cannot be read (a storage
	 * lost while the daemon was down) still arms, to be fenced.
	 */
	bool read_may_fail;
	const char *failed_step; /* what failed, for the error */
	char why[160]; /* the reason, when errno alone does not say it */
	arm_cb done;
	/* Set by an owner that is gone: called when the op turns idle. */
	void (*orphan)(struct arm_op *a);
};

void arm_start(struct arm_op *a, struct loop *l, struct storage *s,
	       uint64_t deadline_ms, arm_cb done);
/* Frees the buffer; the op must be idle. */
void arm_release(struct arm_op *a);
static inline bool arm_idle(const struct arm_op *a)
{
	return timed_op_idle(&a->op);
}

#endif
