// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdlib.h>

#include "timed_op.h"

struct ticket {
	struct loop_op op;
	struct timed_op *t;
	unsigned int gen;
	struct __kernel_timespec ts;
};

static void report(struct timed_op *t, int res)
{
	t->reported = true;
	t->done(t, res);
}

static void settle(struct timed_op *t)
{
	if (t->reported && t->idle && timed_op_idle(t))
		t->idle(t);
}

static void io_done(struct loop_op *op, int res, unsigned int flags)
{
	struct timed_op *t = container_of(op, struct timed_op, io);

	if (!t->reported) {
		/* Cancelled by its own link timeout: the deadline passed. */
		report(t, res == -ECANCELED ? -ETIMEDOUT : res);
	} else if (t->late && res != -ECANCELED) {
		t->late(t, res);
	}
	settle(t);
}

static void ticket_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ticket *k = container_of(op, struct ticket, op);
	struct timed_op *t = k->t;
	bool mine = k->gen == t->gen;

	free(k);
	t->tickets--;
	/* -ETIME: it fired. -ECANCELED: the I/O finished in time. */
	if (mine && res == -ETIME && !t->reported)
		report(t, -ETIMEDOUT);
	else
		settle(t);
}

void timed_op_init(struct timed_op *t, timed_op_cb done, timed_op_cb late)
{
	*t = (struct timed_op){ .done = done, .late = late };
	t->io.cb = io_done;
}

struct io_uring_sqe *timed_op_sqe(struct loop *l, struct timed_op *t)
{
	/* The I/O and its timeout must go in one submission, as a pair. */
	if (io_uring_sq_space_left(&l->ring) < 2)
		io_uring_submit(&l->ring);
	t->reported = false;
	t->gen++;
	t->sqe = loop_sqe(l, &t->io);
	return t->sqe;
}

void timed_op_submit(struct loop *l, struct timed_op *t, uint64_t timeout_ms)
{
	struct ticket *k = malloc(sizeof(*k));
	struct io_uring_sqe *sqe;

	if (!k) {
		/* Never an I/O without a deadline: make it fail at once. */
		io_uring_prep_nop(t->sqe);
		io_uring_sqe_set_data(t->sqe, NULL);
		t->io.busy = false;
		l->inflight--;
		t->sqe = NULL;
		t->reported = true;
		t->done(t, -ENOMEM);
		return;
	}
	*k = (struct ticket){ .op.cb = ticket_done, .t = t, .gen = t->gen };
	k->ts.tv_sec = timeout_ms / 1000;
	k->ts.tv_nsec = (timeout_ms % 1000) * 1000000;
	t->sqe->flags |= IOSQE_IO_LINK;
	t->sqe = NULL;
	t->tickets++;
	sqe = loop_sqe(l, &k->op);
	io_uring_prep_link_timeout(sqe, &k->ts, 0);
}
