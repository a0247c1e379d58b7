/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * How late a thread runs: each sample is how long after its due time a
 * timer's completion was handled. Kept by the thread it measures, as a
 * histogram (for percentiles), its worst ever and its worst over the
 * last LAG_RECENT_S seconds.
 */
#ifndef IOFENCE_LAG_H
#define IOFENCE_LAG_H

#include <stdint.h>
#include <jansson.h>

#define LAG_RECENT_S 10
/* 10 µs steps below 1 ms, 100 µs below 10 ms, 1 ms below 100 ms, 100 ms to 10 s. */
#define LAG_BUCKETS (100 + 90 + 90 + 99 + 1)

struct lag {
	uint64_t hist[LAG_BUCKETS];
	uint64_t samples;
	uint64_t worst_ns;
	uint64_t slot_max_ns[LAG_RECENT_S]; /* per second, a ring */
	uint64_t slot_s[LAG_RECENT_S]; /* which second each slot holds */
};

struct lag_summary {
	uint64_t samples;
	uint64_t worst_us;
	uint64_t recent_us; /* worst over the last LAG_RECENT_S seconds */
	uint64_t p50_us, p99_us; /* bucket upper bounds */
};

void lag_add(struct lag *l, uint64_t now_ns, uint64_t lag_ns);
void lag_summarize(const struct lag *l, uint64_t now_ns,
		   struct lag_summary *out);
/* Puts @s into @o (json_put.h): samples, worst, recent, p50, p99. */
void lag_summary_put(json_t *o, const struct lag_summary *s);

#endif
