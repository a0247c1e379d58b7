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
 *          symlink, never outside the target)
 *          statx <target>: its device, for the BPF tracker
 *   block: open <target> (a block device, for writing)
 *          statx: must be a block device; its number
 */
#ifndef IOFENCE_ARM_H
#define IOFENCE_ARM_H

#include <stdint.h>
#include <sys/stat.h>
#include <linux/openat2.h>

#include "loop.h"
#include "storage.h"
#include "timed_op.h"

#define ARM_RECORD_DIR ".iofence"

struct arm_op;
/* @res: 0, or a negative errno; s->... filled on success. */
typedef void (*arm_cb)(struct arm_op *a, int res);

struct arm_op {
	struct loop *loop;
	struct storage *s; /* being staged: fds and dev filled here */
	uint64_t deadline_ms; /* monotonic; the whole request's */
	struct timed_op op;
	struct open_how how;
	struct statx stx;
	char record_path[sizeof(ARM_RECORD_DIR) + STORAGE_UUID_MAX + 1];
	int step;
	const char *failed_step; /* what failed, for the error */
	arm_cb done;
	/* Set by an owner that is gone: called when the op turns idle. */
	void (*orphan)(struct arm_op *a);
};

void arm_start(struct arm_op *a, struct loop *l, struct storage *s,
	       uint64_t deadline_ms, arm_cb done);
static inline bool arm_idle(const struct arm_op *a)
{
	return timed_op_idle(&a->op);
}

#endif
