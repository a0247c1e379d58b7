/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * One I/O with a deadline, and the owner hears exactly once, at the first
 * of completion or deadline. A deadline does not wait for the I/O to give
 * up: an op stuck in the kernel (a hung NFS, a D-state write) may complete
 * much later, so the owner must keep the timed_op and what the I/O points
 * to alive while timed_op_idle() is false, and undo what a late result did
 * (close a late fd) in @late.
 *
 * The deadline is a timeout of its own (a ticket), not a linked one: on
 * Linux 6.18 a linked timeout was seen never to fire for an open blocked
 * in an io-wq worker (a FIFO with no reader), which is exactly the hung
 * case a deadline is for. When the ticket fires
 * the I/O is cancelled as far as the kernel can; when the I/O completes
 * first the ticket is removed. A ticket's completion may come after the
 * next step started, so it is stamped with the step it guards.
 */
#ifndef IOFENCE_TIMED_OP_H
#define IOFENCE_TIMED_OP_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

struct timed_op;
struct ticket;
/* @res is the I/O's result, or -ETIMEDOUT when the deadline came first. */
typedef void (*timed_op_cb)(struct timed_op *t, int res);

struct timed_op {
	struct loop_op io;
	struct loop *loop;
	timed_op_cb done;
	timed_op_cb late; /* an I/O result after done() said -ETIMEDOUT */
	/* After done(): the op holds nothing any more, its owner may free. */
	void (*idle)(struct timed_op *t);
	struct ticket *ticket; /* of the current step, while pending */
	unsigned int gen; /* which step: bumped at each submission */
	unsigned int tickets; /* tickets whose CQE is still to come */
	bool reported;
};

void timed_op_init(struct timed_op *t, timed_op_cb done, timed_op_cb late);
/* An SQE for the I/O; prepare it, then call timed_op_submit(). */
struct io_uring_sqe *timed_op_sqe(struct loop *l, struct timed_op *t);
/*
 * Starts the deadline. Without memory for its ticket the I/O is cancelled
 * and done() hears -ENOMEM: no I/O ever runs without a deadline.
 */
void timed_op_submit(struct loop *l, struct timed_op *t, uint64_t timeout_ms);
/*
 * An I/O another thread does (a librados request on a link thread), with
 * the same deadline and the same done/late/idle contract: begin it, hand
 * the request over, then timed_op_submit() for the deadline; the answer,
 * as a message, ends it with timed_op_complete().
 */
void timed_op_begin_remote(struct loop *l, struct timed_op *t);
void timed_op_complete(struct timed_op *t, int res);
static inline bool timed_op_idle(const struct timed_op *t)
{
	return !t->io.busy && !t->tickets;
}
/*
 * The deadline came first and the I/O is still in the kernel. Not the
 * same as reported: an I/O done in time is reported at once, and is not
 * idle until its ticket's removal comes back.
 */
static inline bool timed_op_overdue(const struct timed_op *t)
{
	return t->reported && t->io.busy;
}

#endif
