/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Where fence hooks are started from: threads whose fd table is a copy
 * taken at start-up, before the first storage was opened.
 *
 * A program spawned from a thread that shares the daemon's fd table gets
 * a copy of every fd, those of the storages included, and its execve()
 * closes the O_CLOEXEC ones. Closing a file of a dead NFS or FUSE mount
 * waits for the server to answer a flush, which it never does: the hook
 * would hang in execve, before its first instruction, on exactly the
 * storage it is run for. While there it also holds its exec lock, and
 * every reader of its /proc entries (ps, any daemon's victim search)
 * waits with it.
 *
 * spawner_start() makes one thread that unshares its fd table at once;
 * each job then runs on a thread of its own made by that one, sharing
 * its table, so that a hook stuck on a hung file system holds up no
 * other. Submitting takes no lock and never blocks: the core may.
 */
#ifndef IOFENCE_SPAWNER_H
#define IOFENCE_SPAWNER_H

#include "chan.h"

struct spawn_job;
/* Runs on the job's own thread; frees @job before it returns. */
typedef void (*spawn_fn)(struct spawn_job *job);

struct spawn_job {
	struct msg m;
	spawn_fn run;
};

/*
 * Before any storage is opened, after the logger started (its channel
 * must be in the copied table). 0, or a negative errno: no spawner.
 */
int spawner_start(void);
/* Jobs already running go on; the process exit ends them. */
void spawner_stop(void);
/* From any thread. -ENODEV: no spawner runs, @job is still the caller's. */
int spawner_submit(struct spawn_job *job, spawn_fn run);

#endif
