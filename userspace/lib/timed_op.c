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

static void settle(struct timed_op *t)
{
	if (t->reported && t->idle && timed_op_idle(t))
		t->idle(t);
}

static void report(struct timed_op *t, int res)
{
	t->reported = true;
	t->done(t, res);
}

static void io_done(struct loop_op *op, int res, unsigned int flags)
{
	struct timed_op *t = container_of(op, struct timed_op, io);

	if (!t->reported) {
		/* In time: the deadline is no longer needed. */
		if (t->ticket) {
			struct io_uring_sqe *sqe = loop_sqe(t->loop, NULL);

			io_uring_prep_timeout_remove(
				sqe, (__u64)(uintptr_t)&t->ticket->op, 0);
			t->ticket = NULL;
		}
		report(t, res);
	} else if (t->late && res != -ECANCELED) {
		t->late(t, res);
	}
	settle(t);
}

static void ticket_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ticket *k = container_of(op, struct ticket, op);
	struct timed_op *t = k->t;
	bool fired = res == -ETIME && k->gen == t->gen && !t->reported;

	if (t->ticket == k)
		t->ticket = NULL;
	free(k);
	t->tickets--;
	if (fired) {
		/* Ask the kernel to give up the I/O; it may not be able to. */
		io_uring_prep_cancel(loop_sqe(t->loop, NULL), &t->io, 0);
		report(t, -ETIMEDOUT);
	}
	settle(t);
}

void timed_op_init(struct timed_op *t, timed_op_cb done, timed_op_cb late)
{
	*t = (struct timed_op){ .done = done, .late = late };
	t->io.cb = io_done;
}

struct io_uring_sqe *timed_op_sqe(struct loop *l, struct timed_op *t)
{
	t->loop = l;
	t->reported = false;
	t->gen++;
	return loop_sqe(l, &t->io);
}

void timed_op_begin_remote(struct loop *l, struct timed_op *t)
{
	t->loop = l;
	t->reported = false;
	t->gen++;
	t->io.busy = true;
}

void timed_op_complete(struct timed_op *t, int res)
{
	t->io.busy = false;
	io_done(&t->io, res, 0);
}

void timed_op_submit(struct loop *l, struct timed_op *t, uint64_t timeout_ms)
{
	struct ticket *k = malloc(sizeof(*k));

	if (!k) {
		/* Never an I/O without a deadline. */
		io_uring_prep_cancel(loop_sqe(l, NULL), &t->io, 0);
		report(t, -ENOMEM);
		return;
	}
	*k = (struct ticket){ .op.cb = ticket_done, .t = t, .gen = t->gen };
	k->ts.tv_sec = timeout_ms / 1000;
	k->ts.tv_nsec = (timeout_ms % 1000) * 1000000;
	t->ticket = k;
	t->tickets++;
	io_uring_prep_timeout(loop_sqe(l, &k->op), &k->ts, 0, 0);
}
