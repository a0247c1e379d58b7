// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "chan.h"
#include "log.h"

int chan_init(struct chan *c, void *ctx)
{
	memset(c, 0, sizeof(*c));
	atomic_init(&c->head, NULL);
	c->ctx = ctx;
	c->efd = eventfd(0, EFD_CLOEXEC);
	if (c->efd < 0) {
		pr_err("eventfd: %s", strerror(errno));
		return -errno;
	}
	return 0;
}

void chan_send(struct chan *c, struct msg *m, msg_fn fn)
{
	struct msg *old = atomic_load_explicit(&c->head, memory_order_relaxed);
	uint64_t one = 1;

	m->fn = fn;
	do
		m->next = old;
	while (!atomic_compare_exchange_weak_explicit(
		&c->head, &old, m, memory_order_release, memory_order_relaxed));
	/* Only a counter overflow could fail, after 2^64 - 1 wake-ups. */
	if (write(c->efd, &one, sizeof(one)) != sizeof(one))
		pr_err("channel wake-up lost: %s", strerror(errno));
}

unsigned int chan_drain(struct chan *c)
{
	struct msg *m =
		atomic_exchange_explicit(&c->head, NULL, memory_order_acquire);
	struct msg *fifo = NULL, *next;
	unsigned int n = 0;

	/* The list is newest first: turn it around. */
	for (; m; m = next) {
		next = m->next;
		m->next = fifo;
		fifo = m;
	}
	for (m = fifo; m; m = next, n++) {
		next = m->next;
		m->fn(m, c->ctx);
	}
	return n;
}

static void read_arm(struct chan *c)
{
	struct io_uring_sqe *sqe = loop_sqe(c->loop, &c->op);

	io_uring_prep_read(sqe, c->efd, &c->count, sizeof(c->count), 0);
}

static void read_done(struct loop_op *op, int res, unsigned int flags)
{
	struct chan *c = container_of(op, struct chan, op);

	if (res < 0 && res != -EINTR && res != -ECANCELED)
		pr_err("channel eventfd read: %s", strerror(-res));
	chan_drain(c);
	if (!c->loop->stopping)
		read_arm(c);
}

void chan_attach(struct chan *c, struct loop *l)
{
	c->loop = l;
	c->op.cb = read_done;
	read_arm(c);
}

void chan_wait(struct chan *c)
{
	uint64_t n;

	if (read(c->efd, &n, sizeof(n)) < 0 && errno != EINTR)
		pr_err("channel eventfd read: %s", strerror(errno));
	chan_drain(c);
}

void chan_exit(struct chan *c)
{
	chan_drain(c);
	if (c->efd >= 0)
		close(c->efd);
	c->efd = -1;
}
