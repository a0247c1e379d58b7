/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A message channel into one thread. Any thread sends; only the owner
 * receives, either from its io_uring loop (chan_attach) or, for a worker
 * without one, by blocking in chan_wait().
 *
 * Sending never blocks and never fails: a message is pushed onto a
 * lock-free list with one compare-and-swap, and the owner is woken
 * through an eventfd (a counter: a write to it never blocks before 2^64
 * wake-ups). The owner takes the whole list with one exchange and runs
 * the messages in the order they were sent. Nothing here takes a lock,
 * so a stalled receiver can never hold up a sender: its messages just
 * wait for it.
 */
#ifndef IOFENCE_CHAN_H
#define IOFENCE_CHAN_H

#include <stdatomic.h>
#include <stdint.h>

#include "loop.h"

struct msg;
/* Runs on the receiving thread, which then owns (and frees) @m. */
typedef void (*msg_fn)(struct msg *m, void *ctx);

struct msg {
	struct msg *next;
	msg_fn fn;
};

struct chan {
	_Atomic(struct msg *) head; /* newest first */
	int efd;
	void *ctx; /* passed to every message's fn */
	struct loop *loop; /* the owner's, once attached */
	struct loop_op op; /* the eventfd read in flight */
	uint64_t count;
};

int chan_init(struct chan *c, void *ctx);
/* Receives on @l from now on: each wake-up runs what came. */
void chan_attach(struct chan *c, struct loop *l);
/* From any thread. */
void chan_send(struct chan *c, struct msg *m, msg_fn fn);
/* Runs every message sent so far; returns how many. */
unsigned int chan_drain(struct chan *c);
/* A worker's wait: blocks until something was sent, then drains. */
void chan_wait(struct chan *c);
/* After the senders are gone: runs what is left, closes the eventfd. */
void chan_exit(struct chan *c);

#endif
