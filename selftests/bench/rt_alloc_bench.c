// SPDX-License-Identifier: GPL-2.0-only
/*
 * What the allocator's locks cost real-time threads: two SCHED_FIFO
 * threads, one pinned to each of the first two CPUs, run bursts of small
 * allocations (BURST_MS of work, then as long asleep) beside ordinary
 * threads that allocate and free larger blocks without a pause. A burst
 * that waits on a lock held by a preempted ordinary thread shows as far
 * longer than BURST_MS: with an allocator whose waiters sleep (glibc's)
 * the holder runs again at once; with one whose waiters spin (ASan's),
 * the FIFO threads keep it off both CPUs until the kernel's RT
 * throttling stops them (sched_rt_runtime_us). This is why an ASan
 * build of iofenced runs no real-time thread by default (config.h).
 *
 * Usage: rt_alloc_bench [SECONDS [ORDINARY_THREADS]] (default 10 2).
 * Prints one line; numbers are never judged here.
 */
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "array_size.h"
#include "sanitizer.h"

#define BURST_MS 20
#define RT_PRIORITY 10
#define ORDINARY_MAX 16

struct rt_thread {
	pthread_t t;
	int cpu;
	int err; /* why it could not run at SCHED_FIFO, or 0 */
	unsigned int bursts;
	long long worst_us;
};

static atomic_bool stop;

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Small blocks, as a heartbeat's messages and JSON are. */
static void burst(unsigned int *seed)
{
	long long t0 = now_us();
	void *p[32];

	while (now_us() - t0 < BURST_MS * 1000) {
		for (size_t i = 0; i < ARRAY_SIZE(p); i++) {
			p[i] = malloc(16 + rand_r(seed) % 2048);
			if (p[i])
				memset(p[i], 0, 16);
		}
		for (size_t i = 0; i < ARRAY_SIZE(p); i++)
			free(p[i]);
	}
}

static void *rt_main(void *arg)
{
	struct rt_thread *r = arg;
	struct sched_param sp = { .sched_priority = RT_PRIORITY };
	struct timespec pause = { .tv_nsec = BURST_MS * 1000000L };
	unsigned int seed = r->cpu + 1;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(r->cpu, &set);
	r->err = pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	if (!r->err)
		r->err = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp);
	if (r->err)
		return NULL;
	while (!atomic_load(&stop)) {
		long long t0 = now_us(), took;

		burst(&seed);
		took = now_us() - t0;
		if (took > r->worst_us)
			r->worst_us = took;
		r->bursts++;
		nanosleep(&pause, NULL);
	}
	return NULL;
}

/* Blocks of 1-65 KiB, without a pause. */
static void *ordinary_main(void *arg)
{
	unsigned int seed = (unsigned int)(size_t)arg;
	void *p[64];

	while (!atomic_load(&stop)) {
		for (size_t i = 0; i < ARRAY_SIZE(p); i++)
			p[i] = malloc(1024 + rand_r(&seed) % 65536);
		for (size_t i = 0; i < ARRAY_SIZE(p); i++)
			free(p[i]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned int secs = argc > 1 ? (unsigned int)atoi(argv[1]) : 10;
	unsigned int n = argc > 2 ? (unsigned int)atoi(argv[2]) : 2;
	struct rt_thread rt[2] = { { .cpu = 0 }, { .cpu = 1 } };
	pthread_t ord[ORDINARY_MAX];
	int ret;

	if (!secs || n > ORDINARY_MAX) {
		fprintf(stderr,
			"usage: rt_alloc_bench [SECONDS (1 or more) [ORDINARY_THREADS (0-%d)]]\n",
			ORDINARY_MAX);
		return 2;
	}
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2) {
		printf("SKIP: needs 2 CPUs (one FIFO thread on each)\n");
		return 0;
	}
	for (unsigned int i = 0; i < n; i++) {
		ret = pthread_create(&ord[i], NULL, ordinary_main,
				     (void *)(size_t)(i + 100));
		if (ret) {
			fprintf(stderr, "rt_alloc_bench: a thread: %s\n",
				strerror(ret));
			return 1;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(rt); i++) {
		ret = pthread_create(&rt[i].t, NULL, rt_main, &rt[i]);
		if (ret) {
			fprintf(stderr, "rt_alloc_bench: a thread: %s\n",
				strerror(ret));
			return 1;
		}
	}
	sleep(secs);
	atomic_store(&stop, true);
	for (size_t i = 0; i < ARRAY_SIZE(rt); i++)
		pthread_join(rt[i].t, NULL);
	for (unsigned int i = 0; i < n; i++)
		pthread_join(ord[i], NULL);
	for (size_t i = 0; i < ARRAY_SIZE(rt); i++) {
		if (!rt[i].err)
			continue;
		printf("SKIP: SCHED_FIFO on CPU %d: %s\n", rt[i].cpu,
		       strerror(rt[i].err));
		return 0;
	}
	printf("%s allocator, %u ordinary threads, %u s: longest %d ms burst on the FIFO threads %lld / %lld us (%u / %u bursts)\n",
	       BUILD_ASAN ? "ASan's" : "glibc's", n, secs, BURST_MS,
	       rt[0].worst_us, rt[1].worst_us, rt[0].bursts, rt[1].bursts);
	return 0;
}
