// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "thread.h"
#include "victims_probe.h"

enum {
	PROBE_QUEUED = 1, /* handed to a helper that has not taken it yet */
	PROBE_RUNNING,
	PROBE_DONE,
	PROBE_ABANDONED, /* its caller went on: the helper drops it */
};

struct helper {
	pthread_t thread;
	pid_t tid; /* 0 until it runs */
	pthread_cond_t go;
	struct probe *job; /* NULL: idle */
	int policy, prio; /* its class now */
	struct helper *next;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t done; /* CLOCK_MONOTONIC: some probe is done */
	struct helper *all;
	unsigned int n, stuck;
	unsigned long long timeouts, inline_runs;
} helpers = { .lock = PTHREAD_MUTEX_INITIALIZER };

static pthread_once_t helpers_once = PTHREAD_ONCE_INIT;
static bool helpers_ok;

static void helpers_init(void)
{
	pthread_condattr_t a;

	if (pthread_condattr_init(&a))
		return;
	if (!pthread_condattr_setclock(&a, CLOCK_MONOTONIC) &&
	    !pthread_cond_init(&helpers.done, &a))
		helpers_ok = true;
	pthread_condattr_destroy(&a);
}

/* Only when it differs: a helper serves searches of both classes. */
static void helper_class(struct helper *h, const struct probe *p)
{
	struct sched_param sp = { .sched_priority = p->prio };

	if (h->policy == p->policy && h->prio == p->prio)
		return;
	if (!pthread_setschedparam(pthread_self(), p->policy, &sp)) {
		h->policy = p->policy;
		h->prio = p->prio;
	}
}

static void *helper_main(void *arg)
{
	struct helper *h = arg;
	struct probe *p;

	pthread_setname_np(pthread_self(), "iofence-probe");
	pthread_mutex_lock(&helpers.lock);
	h->tid = (pid_t)syscall(SYS_gettid);
	for (;;) {
		while (!(p = h->job) || p->state != PROBE_QUEUED)
			pthread_cond_wait(&h->go, &helpers.lock);
		p->state = PROBE_RUNNING;
		pthread_mutex_unlock(&helpers.lock);
		helper_class(h, p);
		p->run(p);
		pthread_mutex_lock(&helpers.lock);
		h->job = NULL;
		if (p->state == PROBE_ABANDONED) {
			/* Stuck until what it holds is let go. */
			pthread_mutex_unlock(&helpers.lock);
			p->drop(p);
			pthread_mutex_lock(&helpers.lock);
			helpers.stuck--;
		} else {
			p->state = PROBE_DONE;
			pthread_cond_broadcast(&helpers.done);
		}
	}
	return NULL;
}

/* A new idle helper, under the lock; NULL at the bound or on failure. */
static struct helper *helper_new(const struct probe *p)
{
	struct helper *h;

	if (helpers.n >= PROBE_HELPERS_MAX)
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	if (pthread_cond_init(&h->go, NULL)) {
		free(h);
		return NULL;
	}
	/* It inherits its creator's class, which is the probe's. */
	h->policy = p->policy;
	h->prio = p->prio;
	if (thread_start_stack(&h->thread, helper_main, h, PROBE_STACK_SIZE)) {
		pthread_cond_destroy(&h->go);
		free(h);
		return NULL;
	}
	pthread_detach(h->thread);
	h->next = helpers.all;
	helpers.all = h;
	helpers.n++;
	return h;
}

static void deadline_in(struct timespec *t, unsigned int ms)
{
	clock_gettime(CLOCK_MONOTONIC, t);
	t->tv_sec += ms / 1000;
	t->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

/*
 * The helper is runnable (state R): it waits for a CPU, not for the
 * kernel. Its own thread's stat: nothing another process holds.
 */
static bool helper_runnable(const struct helper *h)
{
	char path[64], buf[256];
	const char *p;
	ssize_t n;
	int fd;

	if (!h->tid)
		return true;
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)h->tid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'R';
}

static void note_copy(const struct probe *p, char *note, size_t len)
{
	int n;

	if (!note || !len)
		return;
	n = __atomic_load_n(&p->noted, __ATOMIC_ACQUIRE);
	note[0] = '\0';
	if (n > 0)
		snprintf(note, len, "%s", p->note[n - 1]);
}

int probe_run(struct probe *p, unsigned int deadline_ms, char *note,
	      size_t note_len)
{
	struct sched_param sp;
	struct helper *h;
	struct timespec until;
	unsigned int rounds = 0;

	pthread_once(&helpers_once, helpers_init);
	__atomic_store_n(&p->noted, 0, __ATOMIC_RELAXED);
	if (pthread_getschedparam(pthread_self(), &p->policy, &sp)) {
		p->policy = SCHED_OTHER;
		sp.sched_priority = 0;
	}
	p->prio = sp.sched_priority;
	pthread_mutex_lock(&helpers.lock);
	for (h = helpers.all; h && h->job; h = h->next)
		;
	if (!h && helpers_ok)
		h = helper_new(p);
	if (!h) {
		helpers.inline_runs++;
		pthread_mutex_unlock(&helpers.lock);
		p->run(p);
		return 0;
	}
	p->state = PROBE_QUEUED;
	h->job = p;
	pthread_cond_signal(&h->go);
	deadline_in(&until, deadline_ms);
	while (p->state != PROBE_DONE) {
		if (pthread_cond_timedwait(&helpers.done, &helpers.lock,
					   &until) != ETIMEDOUT)
			continue;
		if (p->state == PROBE_DONE)
			break;
		/*
		 * Not started, or running: the helper waits for a CPU (a
		 * census at SCHED_OTHER on a busy host), not for /proc.
		 * Given up on, it would keep every search from reading
		 * that process while it runs: it gets its deadline again,
		 * PROBE_RUNNABLE_ROUNDS times at most.
		 */
		if (p->state == PROBE_QUEUED ||
		    (++rounds < PROBE_RUNNABLE_ROUNDS && helper_runnable(h))) {
			deadline_in(&until, deadline_ms);
			continue;
		}
		p->state = PROBE_ABANDONED;
		helpers.stuck++;
		helpers.timeouts++;
		note_copy(p, note, note_len);
		pthread_mutex_unlock(&helpers.lock);
		return -ETIMEDOUT;
	}
	pthread_mutex_unlock(&helpers.lock);
	return 0;
}

void probe_note(struct probe *p, const char *s)
{
	int n = p->noted;

	if (n >= PROBE_NOTES)
		return;
	snprintf(p->note[n], sizeof(p->note[n]), "%s", s);
	__atomic_store_n(&p->noted, n + 1, __ATOMIC_RELEASE);
}

bool probe_stuck(pid_t pid, enum probe_kind kind, char *note, size_t len)
{
	bool stuck = false;

	pthread_mutex_lock(&helpers.lock);
	for (struct helper *h = helpers.all; h && !stuck; h = h->next) {
		struct probe *p = h->job;

		if (p && p->state == PROBE_ABANDONED && p->pid == pid &&
		    p->kind == kind) {
			note_copy(p, note, len);
			stuck = true;
		}
	}
	pthread_mutex_unlock(&helpers.lock);
	return stuck;
}

void probe_stats(struct probe_stats *st)
{
	pthread_mutex_lock(&helpers.lock);
	st->helpers = helpers.n;
	st->stuck = helpers.stuck;
	st->timeouts = helpers.timeouts;
	st->inline_runs = helpers.inline_runs;
	pthread_mutex_unlock(&helpers.lock);
}
