// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "loop.h"

/*
 * A write hung on a lost storage holds an io-wq worker until the storage
 * answers. Each storage has at most one heartbeat in flight, so enough
 * workers for all of them keep one hung storage from delaying another,
 * and the bound keeps a flood of hung I/O from growing threads forever.
 */
static void loop_bound_workers(struct loop *l)
{
	unsigned int max[2] = { LOOP_BOUNDED_WORKERS, LOOP_UNBOUNDED_WORKERS };
	int ret = io_uring_register_iowq_max_workers(&l->ring, max);

	if (ret < 0)
		pr_warn("io-wq worker limits not set (%s): this kernel grows them as it likes",
			strerror(-ret));
}

/*
 * Valgrind up to 3.22 runs io_uring_enter() holding the lock that lets one
 * thread at a time run: a thread that waits there for a completion stops
 * every other thread, signals included (fixed in 3.23, valgrind bug
 * 428364). Under valgrind the loops submit without waiting and wait in
 * poll(2) on the ring fd instead (POLLIN: completions are ready), which
 * valgrind knows may block. Every valgrind tool preloads its vgpreload_*
 * objects into the program: no build dependency on valgrind's headers,
 * and a binary built anywhere notices. Decided once per process; outside
 * valgrind the loops take the branch to the same code as ever.
 */
static bool poll_wait;
static pthread_once_t poll_wait_once = PTHREAD_ONCE_INIT;

static void poll_wait_decide(void)
{
	const char *preload = getenv("LD_PRELOAD");

	poll_wait = preload && strstr(preload, "vgpreload");
	if (poll_wait)
		pr_notice(
			"running under valgrind: io_uring loops wait in poll(2) on their ring, not in io_uring_enter()");
}

/*
 * What io_uring_submit_and_wait_timeout(@l, 1, @ms) does, in two steps
 * that valgrind knows how to run: submit without waiting, then poll the
 * ring for a completion for up to @ms (-1: no bound). Returns 0 or a
 * negative errno (-EINTR included); dispatch_cqes() reaps the rest.
 */
static int poll_submit_and_wait(struct loop *l, int ms)
{
	struct pollfd pfd = { .fd = l->ring.ring_fd, .events = POLLIN };
	int ret = io_uring_submit(&l->ring);

	if (ret < 0)
		return ret;
	/* The ring tells what completed before the poll: no wake-up is lost. */
	if (io_uring_cq_ready(&l->ring))
		return 0;
	return poll(&pfd, 1, ms) < 0 ? -errno : 0;
}

int loop_init(struct loop *l, unsigned int entries)
{
	int ret;

	pthread_once(&poll_wait_once, poll_wait_decide);
	memset(l, 0, sizeof(*l));
	ret = io_uring_queue_init(entries, &l->ring, 0);
	if (ret < 0) {
		pr_err("io_uring_queue_init: %s", strerror(-ret));
		return ret;
	}
	loop_bound_workers(l);
	return 0;
}

void loop_exit(struct loop *l)
{
	io_uring_queue_exit(&l->ring);
}

struct io_uring_sqe *loop_sqe(struct loop *l, struct loop_op *op)
{
	struct io_uring_sqe *sqe;

	while (!(sqe = io_uring_get_sqe(&l->ring)))
		io_uring_submit(&l->ring);
	io_uring_sqe_set_data(sqe, op);
	/* One SQE in flight per op at a time: owners see to that. */
	if (op) {
		op->busy = true;
		l->inflight++;
	}
	return sqe;
}

void loop_close(struct loop *l, int fd)
{
	struct io_uring_sqe *sqe;

	if (fd < 0)
		return;
	sqe = loop_sqe(l, NULL);
	io_uring_prep_close(sqe, fd);
	sqe->flags |= IOSQE_ASYNC;
}

void loop_stop(struct loop *l)
{
	l->stopping = true;
}

static void dispatch_cqes(struct loop *l)
{
	struct io_uring_cqe *cqe;

	while (io_uring_peek_cqe(&l->ring, &cqe) == 0) {
		struct loop_op *op = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		unsigned int flags = cqe->flags;

		/* Consume first: the callback may queue new SQEs. */
		io_uring_cqe_seen(&l->ring, cqe);
		if (!op)
			continue;
		if (!(flags & IORING_CQE_F_MORE)) {
			op->busy = false;
			l->inflight--;
		}
		op->cb(op, res, flags);
	}
}

static bool submit_error(int ret)
{
	return ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY &&
	       ret != -ETIME;
}

static int loop_run_poll(struct loop *l)
{
	int ret;

	while (!l->stopping) {
		ret = poll_submit_and_wait(l, -1);
		if (submit_error(ret)) {
			pr_err("io_uring submit and poll: %s", strerror(-ret));
			return ret;
		}
		dispatch_cqes(l);
	}
	return 0;
}

int loop_run(struct loop *l)
{
	int ret;

	if (poll_wait)
		return loop_run_poll(l);
	while (!l->stopping) {
		ret = io_uring_submit_and_wait(&l->ring, 1);
		if (submit_error(ret)) {
			pr_err("io_uring_submit_and_wait: %s", strerror(-ret));
			return ret;
		}
		dispatch_cqes(l);
	}
	return 0;
}

int loop_run_once(struct loop *l, unsigned int max_ms)
{
	struct __kernel_timespec ts = {
		.tv_sec = max_ms / 1000,
		.tv_nsec = (max_ms % 1000) * 1000000,
	};
	struct io_uring_cqe *cqe;
	int ret;

	if (poll_wait)
		ret = poll_submit_and_wait(l,
					   max_ms > INT_MAX ? -1 : (int)max_ms);
	else
		ret = io_uring_submit_and_wait_timeout(&l->ring, &cqe, 1, &ts,
						       NULL);
	if (submit_error(ret))
		return ret;
	dispatch_cqes(l);
	return 0;
}

/* How long loop_quiesce() waits for completions between two looks. */
#define QUIESCE_STEP_MS 10

void loop_quiesce(struct loop *l, unsigned int max_ms)
{
	uint64_t deadline = loop_now_ms() + max_ms;
	struct __kernel_timespec ts = { .tv_nsec = QUIESCE_STEP_MS * 1000000 };
	struct io_uring_cqe *cqe;
	struct io_uring_sqe *sqe;

	l->stopping = true;
	sqe = loop_sqe(l, NULL);
	io_uring_prep_cancel64(
		sqe, 0, IORING_ASYNC_CANCEL_ALL | IORING_ASYNC_CANCEL_ANY);
	while (l->inflight && loop_now_ms() < deadline) {
		int ret = poll_wait ? poll_submit_and_wait(l, QUIESCE_STEP_MS) :
				      io_uring_submit_and_wait_timeout(
					      &l->ring, &cqe, 1, &ts, NULL);

		if (submit_error(ret))
			break;
		dispatch_cqes(l);
	}
	if (l->inflight)
		pr_warn("%u I/O operations still in flight at exit",
			l->inflight);
}

uint64_t loop_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}
