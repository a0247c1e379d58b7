/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Writing the daemon's state to the state dir, atomically and through the
 * loop: write a temp file, fsync it, rename it over the state file, fsync
 * the folder. Requests coalesce: whoever asks while a write is under way
 * is answered by the next write, which starts right after and carries
 * their change. Each stage has a deadline.
 */
#ifndef IOFENCE_PERSIST_H
#define IOFENCE_PERSIST_H

#include <stdbool.h>
#include <stddef.h>

#include "timed_op.h"

#define PERSIST_FILE "state"
#define PERSIST_TMP_FILE "state.tmp"

struct daemon;
typedef void (*persist_cb)(void *ctx, int err);

struct persist_wait {
	struct persist_wait *next;
	persist_cb cb;
	void *ctx;
};

struct persister {
	struct daemon *d;
	int dirfd;
	struct timed_op op;
	int stage;
	int tmpfd;
	char *buf;
	size_t len, off;
	struct persist_wait *current; /* answered by the write under way */
	struct persist_wait *pending; /* answered by the next one */
	size_t covers; /* pending events the write under way carries */
	bool running;
	bool wanted; /* a change with no waiter (an event) needs a write */
};

int persist_open(struct persister *p, struct daemon *d, const char *state_dir);
void persist_close(struct persister *p);
/* @cb(ctx, 0 or -errno) once a write that carries the current state ends. */
int persist_request(struct persister *p, persist_cb cb, void *ctx);
/* A write soon, nobody waiting for it. */
void persist_kick(struct persister *p);
static inline bool persist_idle(const struct persister *p)
{
	return !p->running && timed_op_idle(&p->op);
}

/*
 * Reads the state file at start-up. Returns 0 with *@doc (NULL when there
 * is none), or -EINVAL after moving a corrupt file aside (kept as
 * state.corrupt-<time>) and logging why.
 */
int persist_load(struct persister *p, json_t **doc);

#endif
