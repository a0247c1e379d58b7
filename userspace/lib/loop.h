/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * An io_uring event loop, one per thread that has one (the control plane,
 * the fencing core): it owns its thread's state and nobody else touches
 * its ring. Every operation in flight is a struct loop_op embedded in its
 * owner; the CQE's user_data points back at it and its callback runs on
 * completion.
 */
#ifndef IOFENCE_LOOP_H
#define IOFENCE_LOOP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <liburing.h>

struct loop_op;
typedef void (*loop_cb)(struct loop_op *op, int res, unsigned int flags);

struct loop_op {
	loop_cb cb;
	bool busy; /* an SQE for it is queued or in flight */
};

struct loop {
	struct io_uring ring;
	unsigned int inflight; /* ops whose final CQE has not come yet */
	bool stopping;
};

#define container_of(ptr, type, member) \
	((type *)((char *)(ptr)-offsetof(type, member)))

/*
 * io-wq workers per NUMA node: bounded ones do regular file and block
 * I/O (heartbeats: one per storage, STORAGE_MAX of them, plus staging
 * and peer reads), unbounded ones the rest (opens, sockets).
 */
#define LOOP_BOUNDED_WORKERS (1024 + 64)
#define LOOP_UNBOUNDED_WORKERS 256

int loop_init(struct loop *l, unsigned int entries);
void loop_exit(struct loop *l);

/*
 * An SQE bound to @op (or, with @op NULL, one whose completion is
 * ignored, as for linked timeouts and cancellations). Flushes the
 * submission queue when it is full; never returns NULL.
 */
struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op);

/*
 * Closes @fd without ever blocking the caller: the close runs in io-wq,
 * so a FLUSH to a dead file server (FUSE, NFS CLOSE) blocks a worker,
 * not the loop. Nobody waits for it; a negative @fd is ignored.
 */
void loop_close(struct loop *l, int fd);

/*
 * Runs until loop_stop(); returns 0, or a negative errno from io_uring.
 * Under valgrind this and the other waits below poll(2) the ring instead
 * of waiting in io_uring_enter() (see loop.c).
 */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);
/* One round: waits up to @max_ms for a completion and runs what came. */
int loop_run_once(struct loop *l, unsigned int max_ms);
/*
 * After loop_stop(): cancels every op in flight and runs their callbacks
 * until none is left or @max_ms passed, so owners can free what the
 * kernel might still write into. Callbacks see l->stopping and re-arm
 * nothing.
 */
void loop_quiesce(struct loop *l, unsigned int max_ms);

/* Monotonic now, in nanoseconds and milliseconds. */
uint64_t loop_now_ns(void);
static inline uint64_t loop_now_ms(void)
{
	return loop_now_ns() / 1000000;
}

#endif
