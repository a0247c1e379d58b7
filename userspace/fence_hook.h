/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The fence hook: a command run at a fence, after the kills (it never
 * delays them), with what happened in its environment:
 *
 *   IOFENCE_STORAGE   the storage uuid
 *   IOFENCE_HOST      the host uuid
 *   IOFENCE_STRATEGY  force, kill-only or permissive
 *   IOFENCE_REASON    why the storage was fenced
 *   IOFENCE_VICTIMS   "pid:exe:vm_uuid" per victim, space-separated
 *
 * It is the place for `virsh destroy` or a report to the management node.
 * It runs with the default scheduling policy and signal mask, stdin from
 * /dev/null, and is killed when FENCE_HOOK_DEADLINE_MS passes. The loop
 * never waits for it: its pidfd is polled like any other I/O.
 */
#ifndef IOFENCE_FENCE_HOOK_H
#define IOFENCE_FENCE_HOOK_H

#include <stdbool.h>
#include <sys/types.h>

#include "timed_op.h"

struct fence_hook {
	struct loop *loop;
	struct timed_op op; /* the pidfd's poll, with the deadline */
	struct loop_op reap; /* after a kill: waits for the exit */
	int pidfd;
	pid_t pid;
	char what[80]; /* "fence hook <path> for <storage>", for the log */
};

void fence_hook_init(struct fence_hook *h, struct loop *l);
/* Starts @path; a hook still running from before is left to finish. */
void fence_hook_run(struct fence_hook *h, const char *path,
		    const char *const env[]);
static inline bool fence_hook_idle(const struct fence_hook *h)
{
	return h->pid <= 0 && timed_op_idle(&h->op) && !h->reap.busy;
}

#endif
