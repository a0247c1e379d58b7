/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Worker threads for what may block: victim searches and the VM census
 * (reading /proc takes a process's mmap lock, which a qemu stuck on a
 * dead storage may hold), and fence hooks when the spawner (spawner.h)
 * could not start (posix_spawn of a program on a hung file system
 * blocks in exec). The core hands a job to an idle
 * worker and goes on; the job reports back by messages to the core's
 * channel. A worker stuck in D state only takes itself out: the next job
 * goes to another one, started when none is idle, up to POOL_WORKERS_MAX.
 *
 * The pool is the core's: only its thread submits, and workers tell it
 * they are idle again by a message, so no lock is shared.
 */
#ifndef IOFENCE_POOL_H
#define IOFENCE_POOL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "chan.h"

#define POOL_WORKERS_MAX 64

struct work;
/* Runs on a worker; frees @w (or hands it on) before it returns. */
typedef void (*work_fn)(struct work *w);

struct work {
	struct msg m;
	work_fn run;
	/*
	 * A kill waits on it: it runs just below the core's real-time
	 * priority (never beside it, so a burst of searches cannot delay
	 * a heartbeat). Other jobs run as ordinary work.
	 */
	bool urgent;
	struct work *next_queued;
};

struct worker {
	struct pool *pool;
	pthread_t thread;
	struct chan in;
	struct msg idle; /* back to the core when a job is over */
	bool busy;
	bool stop; /* set by a message: the worker thread reads it */
	int class; /* the worker's: -1 unknown, 0 ordinary, 1 urgent */
	uint64_t busy_since_ns;
};

struct pool {
	struct chan *owner; /* the core's inbox */
	struct worker *w[POOL_WORKERS_MAX];
	unsigned int n;
	struct work *queue_head, *queue_tail; /* no worker free */
	int rt_priority; /* the core's; urgent jobs run one below */
	uint64_t jobs, queued_max;
};

void pool_init(struct pool *p, struct chan *owner, int rt_priority);
/* From the owner's thread; never blocks. */
void pool_submit(struct pool *p, struct work *w, work_fn run);
/* Workers busy now; those busy for over @ms are likely stuck. */
unsigned int pool_busy(const struct pool *p, uint64_t now_ns, uint64_t ms,
		       unsigned int *stuck);
/*
 * Stops the idle workers and waits for them; a worker still busy after
 * @max_ms (stuck in the kernel) is left behind, with its memory.
 */
void pool_exit(struct pool *p, unsigned int max_ms);

#endif
