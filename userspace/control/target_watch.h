/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Whether each armed storage's target path still names what was armed:
 * a file storage's mount unmounted (lazily, under the open record) or a
 * mount put over it, a block device node gone or another one behind the
 * path, a loop device detached with losetup -d (gone once its last user
 * closes it). The heartbeats go on where they went, which is where the
 * VMs that still hold the old storage write; nothing is fenced for it.
 * It is said, once per change: a log line and TARGET_CHANGED.
 *
 * One statx at a time, on the control ring in io-wq with a deadline (the
 * path may be on a dead server), storage after storage, each about every
 * TARGET_CHECK_MS. A statx stuck in the kernel holds further checks back
 * until it returns, which the log says once.
 */
#ifndef IOFENCE_TARGET_WATCH_H
#define IOFENCE_TARGET_WATCH_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <linux/stat.h>

#include "storage.h"
#include "timed_op.h"

/* Each storage's target is looked at about this often. */
#define TARGET_CHECK_MS 5000
/* One look's deadline. */
#define TARGET_CHECK_DEADLINE_MS 2000

struct daemon;

struct target_watch {
	struct timed_op op;
	struct daemon *d;
	struct statx stx;
	char path[PATH_MAX];
	char uuid[STORAGE_UUID_MAX + 1];
	unsigned int next; /* the storage index to look at next */
	uint64_t next_ms;
	bool stuck_told;
};

void target_watch_init(struct target_watch *w, struct daemon *d);
/* From the control plane's pulse: starts the next look when it is due. */
void target_watch_tick(struct target_watch *w);

#endif
