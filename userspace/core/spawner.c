// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "spawner.h"
#include "thread.h"

/* How long a stop waits for the spawner thread (it only makes threads). */
#define SPAWNER_STOP_MS 1000

static struct chan in;
static pthread_t thread;
static sem_t ready;
static int unshared; /* the spawner thread's unshare(): 0 or -errno */
static bool running, stopping;

static void *job_main(void *arg)
{
	struct spawn_job *job = arg;

	pthread_setname_np(pthread_self(), "iofence-hook");
	job->run(job);
	return NULL;
}

/* On the spawner thread: the job's thread shares this thread's table. */
static void start_job(struct msg *m, void *ctx)
{
	struct spawn_job *job = container_of(m, struct spawn_job, m);
	pthread_t t;
	int ret;

	ret = thread_start(&t, job_main, job);
	if (!ret) {
		pthread_detach(t);
		return;
	}
	/* Run late rather than not at all; later jobs wait for this one. */
	pr_warn("spawner: no thread for a job (%s): run in line",
		strerror(-ret));
	job->run(job);
}

static void stop(struct msg *m, void *ctx)
{
	__atomic_store_n(&stopping, true, __ATOMIC_RELEASE);
	free(m);
}

static void *spawner_main(void *arg)
{
	pthread_setname_np(pthread_self(), "iofence-spawn");
	/*
	 * From here on the daemon's new fds, its storages' among them, are
	 * not in this thread's table, nor in those of the threads it makes.
	 */
	unshared = unshare(CLONE_FILES) ? -errno : 0;
	sem_post(&ready);
	if (unshared)
		return NULL;
	while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE))
		chan_wait(&in);
	return NULL;
}

int spawner_start(void)
{
	int ret = chan_init(&in, NULL);

	if (ret)
		return ret;
	if (sem_init(&ready, 0, 0)) {
		ret = -errno;
		chan_exit(&in);
		return ret;
	}
	ret = thread_start(&thread, spawner_main, NULL);
	if (!ret) {
		while (sem_wait(&ready) && errno == EINTR)
			;
		ret = unshared;
		if (ret)
			pthread_join(thread, NULL);
	}
	sem_destroy(&ready);
	if (ret) {
		chan_exit(&in);
		return ret;
	}
	__atomic_store_n(&running, true, __ATOMIC_RELEASE);
	return 0;
}

void spawner_stop(void)
{
	struct timespec until;
	struct msg *m;

	if (!__atomic_exchange_n(&running, false, __ATOMIC_ACQ_REL))
		return;
	m = malloc(sizeof(*m));
	if (m)
		chan_send(&in, m, stop);
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += SPAWNER_STOP_MS / 1000;
	until.tv_nsec += (SPAWNER_STOP_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	/* Held only by a job run in line: it stays behind. */
	if (!m || pthread_clockjoin_np(thread, NULL, CLOCK_MONOTONIC, &until))
		pthread_detach(thread);
	/*
	 * The channel stays open: a job sent after this is never run, and
	 * never started from this thread, whose table is the daemon's.
	 */
}

int spawner_submit(struct spawn_job *job, spawn_fn run)
{
	if (!__atomic_load_n(&running, __ATOMIC_ACQUIRE))
		return -ENODEV;
	job->run = run;
	chan_send(&in, &job->m, start_job);
	return 0;
}
