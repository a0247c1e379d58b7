// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chan.h"
#include "log.h"
#include "logger.h"
#include "thread.h"

struct log_line {
	struct msg m;
	int prio;
	char text[];
};

static struct chan in;
static pthread_t thread;
static bool running, stopping;
static unsigned int pending, dropped;

static void write_line(struct msg *m, void *ctx)
{
	struct log_line *l = container_of(m, struct log_line, m);
	unsigned int lost = __atomic_exchange_n(&dropped, 0, __ATOMIC_RELAXED);
	char note[96];

	if (lost) {
		snprintf(note, sizeof(note),
			 "%u log lines dropped: stderr was not being read",
			 lost);
		log_write(LOG_WARNING, note);
	}
	log_write(l->prio, l->text);
	__atomic_sub_fetch(&pending, 1, __ATOMIC_RELAXED);
	free(l);
}

static void sink(int prio, const char *text)
{
	size_t len = strlen(text) + 1;
	struct log_line *l;

	if (__atomic_add_fetch(&pending, 1, __ATOMIC_RELAXED) >
	    LOGGER_PENDING_MAX) {
		__atomic_sub_fetch(&pending, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	l = malloc(sizeof(*l) + len);
	if (!l) {
		__atomic_sub_fetch(&pending, 1, __ATOMIC_RELAXED);
		__atomic_add_fetch(&dropped, 1, __ATOMIC_RELAXED);
		return;
	}
	l->prio = prio;
	memcpy(l->text, text, len);
	chan_send(&in, &l->m, write_line);
}

static void stop(struct msg *m, void *ctx)
{
	__atomic_store_n(&stopping, true, __ATOMIC_RELEASE);
	free(m);
}

static void *logger_main(void *arg)
{
	pthread_setname_np(pthread_self(), "iofence-log");
	while (!__atomic_load_n(&stopping, __ATOMIC_ACQUIRE))
		chan_wait(&in);
	return NULL;
}

int logger_start(void)
{
	int ret = chan_init(&in, NULL);

	if (ret)
		return ret;
	ret = thread_start(&thread, logger_main, NULL);
	if (ret) {
		chan_exit(&in);
		return ret;
	}
	running = true;
	log_set_sink(sink);
	return 0;
}

void logger_stop(void)
{
	struct timespec until;
	struct msg *m;

	if (!running)
		return;
	log_set_sink(NULL);
	m = malloc(sizeof(*m));
	if (m)
		chan_send(&in, m, stop);
	/* Monotonic: a clock stepped back must not hold the exit for as long. */
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += LOGGER_STOP_MS / 1000;
	until.tv_nsec += (LOGGER_STOP_MS % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	/* A logger stuck on a full stderr stays behind, with its lines. */
	if (!m || pthread_clockjoin_np(thread, NULL, CLOCK_MONOTONIC, &until)) {
		pthread_detach(thread);
		running = false;
		return;
	}
	chan_exit(&in);
	running = false;
}
