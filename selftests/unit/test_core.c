// SPDX-License-Identifier: GPL-2.0-only
/*
 * The pieces the fencing core is made of: the message channel between
 * threads (nothing lost, order kept per sender, a sender never waits),
 * the lag histogram, the worker pool (a stuck worker holds up no other
 * job), and the I/O with a deadline (what its owner may wait for).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "chan.h"
#include "lag.h"
#include "pool.h"
#include "timed_op.h"

#define SENDERS 4
#define PER_SENDER 50000

struct num_msg {
	struct msg m;
	int sender;
	int n;
};

struct tally {
	int next[SENDERS];
	int total;
	bool out_of_order;
};

static void count(struct msg *m, void *ctx)
{
	struct num_msg *nm = container_of(m, struct num_msg, m);
	struct tally *t = ctx;

	if (nm->n != t->next[nm->sender])
		t->out_of_order = true;
	t->next[nm->sender] = nm->n + 1;
	t->total++;
	free(nm);
}

static struct chan ch;

static void *sender(void *arg)
{
	int id = (int)(intptr_t)arg;

	for (int i = 0; i < PER_SENDER; i++) {
		struct num_msg *m = malloc(sizeof(*m));

		cr_assert_not_null(m);
		m->sender = id;
		m->n = i;
		chan_send(&ch, &m->m, count);
	}
	return NULL;
}

Test(chan, many_senders_nothing_lost_order_kept)
{
	struct tally t = { 0 };
	pthread_t th[SENDERS];

	cr_assert_eq(chan_init(&ch, &t), 0);
	for (int i = 0; i < SENDERS; i++)
		pthread_create(&th[i], NULL, sender, (void *)(intptr_t)i);
	/* Receive while they send: the exchange races the pushes. */
	while (t.total < SENDERS * PER_SENDER)
		chan_wait(&ch);
	for (int i = 0; i < SENDERS; i++)
		pthread_join(th[i], NULL);
	chan_exit(&ch);
	cr_expect_eq(t.total, SENDERS * PER_SENDER);
	cr_expect(!t.out_of_order, "a sender's messages came out of order");
}

Test(chan, drain_of_nothing_runs_nothing)
{
	struct tally t = { 0 };

	cr_assert_eq(chan_init(&ch, &t), 0);
	cr_expect_eq(chan_drain(&ch), 0);
	chan_exit(&ch);
}

Test(lag, percentiles_worst_and_recent)
{
	struct lag l = { 0 };
	struct lag_summary s;
	uint64_t t0 = 100ull * 1000000000ull;

	/* 98 samples of 5 µs, one of 700 µs, one of 3 ms. */
	for (int i = 0; i < 98; i++)
		lag_add(&l, t0, 5000);
	lag_add(&l, t0, 700000);
	lag_add(&l, t0, 3000000);
	lag_summarize(&l, t0, &s);
	cr_expect_eq(s.samples, 100);
	cr_expect_eq(s.worst_us, 3000);
	cr_expect_eq(s.recent_us, 3000);
	cr_expect_eq(s.p50_us, 10, "p50 %llu", (unsigned long long)s.p50_us);
	cr_expect_eq(s.p99_us, 710, "p99 %llu", (unsigned long long)s.p99_us);
	/* Eleven seconds on, the worst is history, not recent. */
	lag_summarize(&l, t0 + 11ull * 1000000000ull, &s);
	cr_expect_eq(s.recent_us, 0);
	cr_expect_eq(s.worst_us, 3000);
}

Test(lag, huge_lag_lands_in_the_last_bucket)
{
	struct lag l = { 0 };
	struct lag_summary s;

	lag_add(&l, 1, 3600ull * 1000000000ull);
	lag_summarize(&l, 1, &s);
	cr_expect_eq(s.worst_us, 3600ull * 1000000);
	cr_expect_gt(s.p99_us, 10000000);
}

struct sleep_job {
	struct work w;
	int fd; /* blocks reading it until the test writes */
	struct chan *done;
	struct msg *msg;
};

static int finished;

static void job_done(struct msg *m, void *ctx)
{
	finished++;
	free(m);
}

static void sleep_run(struct work *w)
{
	struct sleep_job *j = container_of(w, struct sleep_job, w);
	char c;

	if (j->fd >= 0 && read(j->fd, &c, 1) < 0)
		c = 0;
	chan_send(j->done, j->msg, job_done);
	free(j);
}

Test(pool, a_stuck_worker_holds_up_no_other_job)
{
	struct chan owner;
	struct pool p;
	int pfd[2];

	cr_assert_eq(chan_init(&owner, NULL), 0);
	cr_assert_eq(pipe(pfd), 0);
	pool_init(&p, &owner, 0);
	finished = 0;
	for (int i = 0; i < 5; i++) {
		struct sleep_job *j = calloc(1, sizeof(*j));

		j->fd = i == 0 ? pfd[0] : -1; /* the first one is "stuck" */
		j->done = &owner;
		j->msg = malloc(sizeof(*j->msg));
		pool_submit(&p, &j->w, sleep_run);
	}
	/* Four finish (each also reports idle) while the first blocks. */
	for (int i = 0; i < 200 && finished < 4; i++) {
		usleep(10000);
		chan_drain(&owner);
	}
	cr_expect_eq(finished, 4, "%d jobs finished past the stuck one",
		     finished);
	cr_assert_eq(write(pfd[1], "x", 1), 1);
	for (int i = 0; i < 200 && finished < 5; i++) {
		usleep(10000);
		chan_drain(&owner);
	}
	cr_expect_eq(finished, 5);
	pool_exit(&p, 1000);
	chan_exit(&owner);
	close(pfd[0]);
	close(pfd[1]);
}

/*
 * What a timed_op's owner saw when done() and idle() came: a shutdown
 * waits for a write that is done but not yet idle (it may owe a last
 * record), never for one that is overdue.
 */
struct watched_op {
	struct timed_op t;
	int res, dones, lates, idles;
	bool overdue_at_done, idle_at_done;
};

static void watched_done(struct timed_op *t, int res)
{
	struct watched_op *w = container_of(t, struct watched_op, t);

	w->res = res;
	w->dones++;
	w->overdue_at_done = timed_op_overdue(t);
	w->idle_at_done = timed_op_idle(t);
}

static void watched_late(struct timed_op *t, int res)
{
	container_of(t, struct watched_op, t)->lates++;
}

static void watched_idle(struct timed_op *t)
{
	container_of(t, struct watched_op, t)->idles++;
}

/* Reads a byte from @fd with a @timeout_ms deadline; pumps to idle. */
static void read_with_deadline(struct watched_op *w, int fd,
			       uint64_t timeout_ms)
{
	static char byte;
	struct loop l;
	struct io_uring_sqe *sqe;

	cr_assert_eq(loop_init(&l, 16), 0);
	timed_op_init(&w->t, watched_done, watched_late);
	w->t.idle = watched_idle;
	sqe = timed_op_sqe(&l, &w->t);
	io_uring_prep_read(sqe, fd, &byte, 1, 0);
	timed_op_submit(&l, &w->t, timeout_ms);
	for (int i = 0; i < 200 && !w->idles; i++)
		cr_assert_eq(loop_run_once(&l, 10), 0);
	loop_exit(&l);
}

Test(timed_op, done_in_time_waits_for_its_ticket_and_is_never_overdue)
{
	struct watched_op w = { 0 };
	int pfd[2];

	cr_assert_eq(pipe(pfd), 0);
	cr_assert_eq(write(pfd[1], "x", 1), 1);
	read_with_deadline(&w, pfd[0], 10000);
	cr_expect_eq(w.dones, 1);
	cr_expect_eq(w.res, 1);
	cr_expect_not(w.overdue_at_done, "done in time, yet overdue");
	cr_expect_not(w.idle_at_done,
		      "idle before its ticket's removal came back");
	cr_expect_eq(w.idles, 1, "never idle once its ticket was removed");
	cr_expect_eq(w.lates, 0);
	cr_expect_not(timed_op_overdue(&w.t));
	close(pfd[0]);
	close(pfd[1]);
}

Test(timed_op, deadline_first_is_overdue_until_the_io_ends)
{
	struct watched_op w = { 0 };
	int pfd[2];

	/* Nothing to read: only the deadline (and its cancel) end it. */
	cr_assert_eq(pipe(pfd), 0);
	read_with_deadline(&w, pfd[0], 20);
	cr_expect_eq(w.dones, 1);
	cr_expect_eq(w.res, -ETIMEDOUT);
	cr_expect(w.overdue_at_done, "the deadline came first: overdue");
	cr_expect_eq(w.idles, 1, "the cancelled read never ended");
	cr_expect_eq(w.lates, 0, "a cancelled read is no late result");
	cr_expect_not(timed_op_overdue(&w.t), "overdue once it ended");
	close(pfd[0]);
	close(pfd[1]);
}
