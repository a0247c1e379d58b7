// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pool.h"
#include "thread.h"

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	pthread_setname_np(pthread_self(), "iofence-work");
	while (!__atomic_load_n(&w->stop, __ATOMIC_ACQUIRE))
		chan_wait(&w->in);
	return NULL;
}

static void dispatch(struct worker *w, struct work *job);

/* On the owner: the worker finished its job. */
static void worker_idle(struct msg *m, void *ctx)
{
	struct worker *w = container_of(m, struct worker, idle);
	struct pool *p = w->pool;
	struct work *next = p->queue_head;

	w->busy = false;
	if (!next)
		return;
	p->queue_head = next->next_queued;
	if (!p->queue_head)
		p->queue_tail = NULL;
	dispatch(w, next);
}

static void set_class(struct worker *w, bool urgent)
{
	int prio = w->pool->rt_priority > 1 ? w->pool->rt_priority - 1 :
					      w->pool->rt_priority;
	struct sched_param sp = { .sched_priority = urgent ? prio : 0 };
	int ret;

	if (w->class == urgent)
		return;
	ret = pthread_setschedparam(
		pthread_self(), urgent && prio ? SCHED_FIFO : SCHED_OTHER, &sp);
	if (ret)
		pr_warn("worker: scheduling class: %s", strerror(ret));
	w->class = urgent;
}

/* On the worker: runs the job, then says so. */
static void run_job(struct msg *m, void *ctx)
{
	struct work *job = container_of(m, struct work, m);
	struct worker *w = ctx;

	set_class(w, job->urgent);
	job->run(job);
	chan_send(w->pool->owner, &w->idle, worker_idle);
}

static void dispatch(struct worker *w, struct work *job)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	w->busy = true;
	w->busy_since_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	w->pool->jobs++;
	chan_send(&w->in, &job->m, run_job);
}

static struct worker *worker_new(struct pool *p)
{
	struct worker *w = calloc(1, sizeof(*w));
	int ret;

	if (!w)
		return NULL;
	w->pool = p;
	w->class = -1;
	if (chan_init(&w->in, w)) {
		free(w);
		return NULL;
	}
	/* Each job sets its class: see struct work. */
	ret = thread_start(&w->thread, worker_main, w);
	if (ret) {
		pr_err("worker thread: %s", strerror(-ret));
		chan_exit(&w->in);
		free(w);
		return NULL;
	}
	p->w[p->n++] = w;
	return w;
}

void pool_init(struct pool *p, struct chan *owner, int rt_priority)
{
	memset(p, 0, sizeof(*p));
	p->owner = owner;
	p->rt_priority = rt_priority;
}

void pool_submit(struct pool *p, struct work *job, work_fn run)
{
	struct worker *w = NULL;
	uint64_t queued = 0;

	job->run = run;
	job->next_queued = NULL;
	for (unsigned int i = 0; i < p->n && !w; i++)
		if (!p->w[i]->busy)
			w = p->w[i];
	if (!w && p->n < POOL_WORKERS_MAX)
		w = worker_new(p);
	if (w) {
		dispatch(w, job);
		return;
	}
	/* Every worker is busy, perhaps stuck: the job waits its turn. */
	if (p->queue_tail)
		p->queue_tail->next_queued = job;
	else
		p->queue_head = job;
	p->queue_tail = job;
	for (struct work *q = p->queue_head; q; q = q->next_queued)
		queued++;
	if (queued > p->queued_max) {
		p->queued_max = queued;
		pr_warn("all %u workers busy (stuck on a dead storage?): %llu jobs wait",
			p->n, (unsigned long long)queued);
	}
}

unsigned int pool_busy(const struct pool *p, uint64_t now_ns, uint64_t ms,
		       unsigned int *stuck)
{
	unsigned int busy = 0;

	*stuck = 0;
	for (unsigned int i = 0; i < p->n; i++) {
		if (!p->w[i]->busy)
			continue;
		busy++;
		if (now_ns - p->w[i]->busy_since_ns > ms * 1000000ull)
			(*stuck)++;
	}
	return busy;
}

static void worker_stop(struct msg *m, void *ctx)
{
	struct worker *w = ctx;

	__atomic_store_n(&w->stop, true, __ATOMIC_RELEASE);
	free(m);
}

void pool_exit(struct pool *p, unsigned int max_ms)
{
	struct timespec until, now;
	unsigned int busy;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += max_ms / 1000;
	until.tv_nsec += (max_ms % 1000) * 1000000L;
	/* Jobs still queued never ran: they own nothing in the kernel. */
	while (p->queue_head) {
		struct work *q = p->queue_head;

		p->queue_head = q->next_queued;
		free(q);
	}
	p->queue_tail = NULL;
	for (;;) {
		busy = 0;
		chan_drain(p->owner);
		for (unsigned int i = 0; i < p->n; i++)
			busy += p->w[i]->busy;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (!busy || now.tv_sec > until.tv_sec ||
		    (now.tv_sec == until.tv_sec &&
		     now.tv_nsec >= until.tv_nsec))
			break;
		nanosleep(&(struct timespec){ .tv_nsec = 5000000 }, NULL);
	}
	for (unsigned int i = 0; i < p->n; i++) {
		struct worker *w = p->w[i];
		struct msg *stop;

		if (w->busy) {
			pr_warn("a worker is still busy at exit (stuck on a dead storage): left behind");
			pthread_detach(w->thread);
			continue;
		}
		stop = malloc(sizeof(*stop));
		if (!stop) {
			pthread_detach(w->thread);
			continue;
		}
		chan_send(&w->in, stop, worker_stop);
		pthread_join(w->thread, NULL);
		chan_exit(&w->in);
		free(w);
	}
	p->n = 0;
}
