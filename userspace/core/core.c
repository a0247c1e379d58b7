// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core.h"
#include "rados_link.h"
#include "deadlines.h"
#include "fencer_core.h"
#include "log.h"
#include "sanitizer.h"
#include "thread.h"

/* Enough for every fencer's write, timer, victim polls and messages. */
#define CORE_LOOP_ENTRIES 4096
#define NS_PER_MS 1000000ull
/* A worker busy this long is taken for stuck (on a dead storage). */
#define CORE_WORKER_STUCK_MS 5000

struct msg_hold {
	struct msg m;
	bool hold;
};

static void send_report(struct core *c)
{
	struct msg_core_report *r = calloc(1, sizeof(*r));
	unsigned int stuck;
	uint64_t now = loop_now_ns();

	if (!r)
		return;
	lag_summarize(&c->lag, now, &r->lag);
	r->wd_holding = c->wd.holding;
	r->wd_pets = c->wd.pets;
	r->wd_failing = c->wd.failing;
	r->wd_failed = c->wd.failed;
	r->wd_errno = c->wd.last_errno;
	r->workers = c->pool.n;
	r->workers_busy =
		pool_busy(&c->pool, now, CORE_WORKER_STUCK_MS, &stuck);
	r->workers_stuck = stuck;
	core_report(c, &r->m, c->ops->core_report);
}

void core_lag_sample(struct core *c, uint64_t due_ns, uint64_t now_ns)
{
	uint64_t lag = now_ns > due_ns ? now_ns - due_ns : 0;
	uint64_t threshold = (uint64_t)fencers_min_interval_ms(c) * NS_PER_MS *
			     CORE_LAG_WARN_PCT / 100;
	struct msg_core_event *e;

	lag_add(&c->lag, now_ns, lag);
	if (!threshold || lag <= threshold ||
	    (c->lag_event_ns &&
	     now_ns - c->lag_event_ns < LAG_RECENT_S * 1000 * NS_PER_MS))
		return;
	c->lag_event_ns = now_ns;
	pr_warn("fencing core ran %llu µs late (over %d%% of the smallest interval)",
		(unsigned long long)(lag / 1000), CORE_LAG_WARN_PCT);
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->name = "CORE_LAG";
	e->data = json_pack("{s:I,s:I}", "lag_us", (json_int_t)(lag / 1000),
			    "threshold_us", (json_int_t)(threshold / 1000));
	core_report(c, &e->m, c->ops->core_event);
}

/* Once per episode: the watchdog's keepalives fail, or work again. */
static void watchdog_tell(struct core *c)
{
	const struct watchdog *w = &c->wd;
	struct msg_core_event *e;

	if (w->failing == c->wd_failing_told)
		return;
	c->wd_failing_told = w->failing;
	send_report(c);
	e = calloc(1, sizeof(*e));
	if (!e)
		return;
	e->name = w->failing ? "WATCHDOG_FAILING" : "WATCHDOG_RESTORED";
	e->data = json_pack("{s:s,s:I,s:I,s:s?}", "device", w->path, "failed",
			    (json_int_t)w->failed, "timeout_ms",
			    (json_int_t)w->timeout_ms, "error",
			    w->failing ? strerror(w->last_errno) : NULL);
	core_report(c, &e->m, c->ops->core_event);
}

static void probe_arm(struct core *c)
{
	struct io_uring_sqe *sqe = loop_sqe(&c->loop, &c->probe);

	c->probe_ts.tv_sec = c->probe_due_ns / 1000000000ull;
	c->probe_ts.tv_nsec = c->probe_due_ns % 1000000000ull;
	io_uring_prep_timeout(sqe, &c->probe_ts, 0, IORING_TIMEOUT_ABS);
}

/*
 * The core's own pulse: measures how late it runs, reports, and ends
 * the shutdown once the last records are out (or their time is up).
 */
static void probe_done(struct loop_op *op, int res, unsigned int flags)
{
	struct core *c = container_of(op, struct core, probe);
	uint64_t now = loop_now_ns();

	if (c->loop.stopping)
		return;
	core_lag_sample(c, c->probe_due_ns, now);
	watchdog_tell(c);
	if (now >= c->next_report_ns) {
		send_report(c);
		c->next_report_ns = now + CORE_REPORT_MS * NS_PER_MS;
	}
	if (c->shutting_down &&
	    (!fencers_writing(c) || now >= c->shutdown_until_ns)) {
		loop_stop(&c->loop);
		return;
	}
	c->probe_due_ns += CORE_PROBE_MS * NS_PER_MS;
	/* After a stall, the next probe is a period from now, not a burst. */
	if (c->probe_due_ns < now)
		c->probe_due_ns = now + CORE_PROBE_MS * NS_PER_MS;
	probe_arm(c);
}

void core_watchdog_update(struct core *c)
{
	bool hold = c->rearm_hung || fencers_hold_watchdog(c);

	if (hold == c->wd.holding)
		return;
	watchdog_hold(&c->wd, hold);
	send_report(c);
}

static void on_hold(struct msg *m, void *ctx)
{
	struct msg_hold *h = container_of(m, struct msg_hold, m);
	struct core *c = ctx;

	c->rearm_hung = h->hold;
	free(h);
	core_watchdog_update(c);
}

void core_hold_rearm(struct core *c, bool hold)
{
	struct msg_hold *h = calloc(1, sizeof(*h));

	if (!h) {
		pr_crit("out of memory: cannot tell the core to %s the watchdog",
			hold ? "hold" : "resume");
		return;
	}
	h->hold = hold;
	core_send(c, &h->m, on_hold);
}

static void on_shutdown(struct msg *m, void *ctx)
{
	struct core *c = ctx;

	c->shutting_down = true;
	c->shutdown_until_ns = loop_now_ns() + SHUTDOWN_QUIESCE_MS * NS_PER_MS;
	/*
	 * A stop is a restart to come, not a release: each storage gets a
	 * last heartbeat, and peers keep counting the contract from it.
	 */
	fencers_shutdown(c);
}

void core_send(struct core *c, struct msg *m, msg_fn fn)
{
	chan_send(&c->in, m, fn);
}

int core_open(struct core *c, struct chan *out, const struct core_ops *ops,
	      int rt_priority)
{
	int ret;

	memset(c, 0, sizeof(*c));
	c->out = out;
	c->ops = ops;
	c->rt_priority = rt_priority;
	c->wd.fd = -1;
	list_init(&c->fencers);
	c->done_fd = eventfd(0, EFD_CLOEXEC);
	if (c->done_fd < 0)
		return -errno;
	ret = loop_init(&c->loop, CORE_LOOP_ENTRIES);
	if (ret) {
		close(c->done_fd);
		return ret;
	}
	ret = chan_init(&c->in, c);
	if (ret) {
		loop_exit(&c->loop);
		close(c->done_fd);
		return ret;
	}
	pool_init(&c->pool, &c->in, rt_priority);
	c->probe.cb = probe_done;
	return 0;
}

static void harden(struct core *c)
{
	struct sched_param sp = { .sched_priority = c->rt_priority };
	int ret;

	pthread_setname_np(pthread_self(), "iofence-core");
	if (!c->rt_priority) {
		pr_info("fencing core: real-time scheduling off (rt_priority 0%s)",
			BUILD_ASAN ?
				", the default of an ASan build: its allocator's spin locks stall real-time threads" :
				"");
		return;
	}
	ret = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	if (ret)
		pr_warn("fencing core: SCHED_FIFO priority %d: %s; CPU load may delay a fence",
			c->rt_priority, strerror(ret));
	else if (BUILD_ASAN)
		pr_warn("fencing core: SCHED_FIFO in an ASan build: its allocator's spin locks can stall real-time threads for up to the kernel's RT throttling period (about 1 s) each time");
}

static void *core_main(void *arg)
{
	struct core *c = arg;
	unsigned int promised;
	int ret;

	harden(c);
	watchdog_start(&c->wd);
	c->probe_due_ns = loop_now_ns() + CORE_PROBE_MS * NS_PER_MS;
	probe_arm(c);
	send_report(c);
	ret = loop_run(&c->loop);
	if (ret)
		pr_crit("fencing core: its loop failed: %s", strerror(-ret));
	loop_quiesce(&c->loop, CANCEL_QUIESCE_MS);
	pool_exit(&c->pool, CANCEL_QUIESCE_MS);
	/* Messages still queued release what they carry. */
	chan_drain(&c->in);
	promised = fencers_promising_reset(c);
	fencers_free(c);
	/* Close what the fencers left for io-wq before the ring goes. */
	io_uring_submit(&c->loop.ring);
	watchdog_close(&c->wd, promised);
	chan_exit(&c->in);
	loop_exit(&c->loop);
	/*
	 * Said before the thread ends: the end itself waits in the kernel
	 * for this thread's io-wq workers, and one stuck on a dead storage
	 * never comes back. Nobody joins the thread.
	 */
	if (eventfd_write(c->done_fd, 1))
		pr_err("fencing core: cannot say it is done: %s",
		       strerror(errno));
	return NULL;
}

int core_start(struct core *c)
{
	int ret;

	chan_attach(&c->in, &c->loop);
	ret = thread_start(&c->thread, core_main, c);
	if (ret) {
		pr_err("fencing core thread: %s", strerror(-ret));
		return ret;
	}
	c->running = true;
	return 0;
}

void core_stop(struct core *c)
{
	struct pollfd pfd = { .fd = c->done_fd, .events = POLLIN };
	int wait_ms = SHUTDOWN_QUIESCE_MS + 2 * CANCEL_QUIESCE_MS + 1000;

	if (c->running) {
		core_send(c, &c->shutdown, on_shutdown);
		/* Its shutdown is bounded; this bound only guards a bug. */
		if (poll(&pfd, 1, wait_ms) != 1)
			pr_crit("fencing core: not done after %d ms; leaving it",
				wait_ms);
		pthread_detach(c->thread);
		c->running = false;
	} else {
		chan_drain(&c->in);
		fencers_free(c);
		/* Never started: no storage's deadline counted on it. */
		watchdog_close(&c->wd, 0);
		/* An rbd write still in librados answers here when it ends. */
		if (rados_links_quiet(CANCEL_QUIESCE_MS))
			chan_exit(&c->in);
		else
			pr_warn("a Ceph heartbeat is still in librados: the core's channel stays open for its answer");
		loop_exit(&c->loop);
	}
	close(c->done_fd);
	c->done_fd = -1;
}
