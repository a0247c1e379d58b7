// SPDX-License-Identifier: GPL-2.0-only
#include "lag.h"
#include "json_put.h"

#define NS_PER_US 1000ull
#define NS_PER_S 1000000000ull

/* Steps of the histogram: [upper bound of the range in µs, step in µs]. */
static const struct {
	uint64_t below_us, step_us;
} ranges[] = {
	{ 1000, 10 },
	{ 10000, 100 },
	{ 100000, 1000 },
	{ 10000000, 100000 },
};

static unsigned int bucket_of(uint64_t us)
{
	unsigned int base = 0;
	uint64_t from = 0;

	for (unsigned int i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		if (us < ranges[i].below_us)
			return base + (us - from) / ranges[i].step_us;
		base += (ranges[i].below_us - from) / ranges[i].step_us;
		from = ranges[i].below_us;
	}
	return LAG_BUCKETS - 1;
}

/* The upper bound of bucket @b, in µs. */
static uint64_t bucket_top(unsigned int b)
{
	uint64_t from = 0;

	for (unsigned int i = 0; i < sizeof(ranges) / sizeof(ranges[0]); i++) {
		unsigned int n =
			(ranges[i].below_us - from) / ranges[i].step_us;

		if (b < n)
			return from + (b + 1) * ranges[i].step_us;
		b -= n;
		from = ranges[i].below_us;
	}
	return UINT64_MAX / NS_PER_US;
}

_Static_assert(LAG_BUCKETS == 100 + 90 + 90 + 99 + 1, "ranges and buckets");

void lag_add(struct lag *l, uint64_t now_ns, uint64_t lag_ns)
{
	uint64_t s = now_ns / NS_PER_S;
	unsigned int slot = s % LAG_RECENT_S;

	l->hist[bucket_of(lag_ns / NS_PER_US)]++;
	l->samples++;
	if (lag_ns > l->worst_ns)
		l->worst_ns = lag_ns;
	if (l->slot_s[slot] != s) {
		l->slot_s[slot] = s;
		l->slot_max_ns[slot] = 0;
	}
	if (lag_ns > l->slot_max_ns[slot])
		l->slot_max_ns[slot] = lag_ns;
}

static uint64_t percentile_us(const struct lag *l, unsigned int pct)
{
	uint64_t want = (l->samples * pct + 99) / 100, seen = 0;

	if (!l->samples)
		return 0;
	for (unsigned int b = 0; b < LAG_BUCKETS; b++) {
		seen += l->hist[b];
		if (seen >= want)
			return bucket_top(b);
	}
	return bucket_top(LAG_BUCKETS - 1);
}

void lag_summarize(const struct lag *l, uint64_t now_ns,
		   struct lag_summary *out)
{
	uint64_t s = now_ns / NS_PER_S, recent = 0;

	for (unsigned int i = 0; i < LAG_RECENT_S; i++)
		if (l->slot_s[i] + LAG_RECENT_S > s &&
		    l->slot_max_ns[i] > recent)
			recent = l->slot_max_ns[i];
	*out = (struct lag_summary){
		.samples = l->samples,
		.worst_us = l->worst_ns / NS_PER_US,
		.recent_us = recent / NS_PER_US,
		.p50_us = percentile_us(l, 50),
		.p99_us = percentile_us(l, 99),
	};
}

void lag_summary_put(json_t *o, const struct lag_summary *s)
{
	json_put_int(o, "samples", (json_int_t)s->samples);
	json_put_int(o, "worst_us", (json_int_t)s->worst_us);
	json_put_int(o, "recent_us", (json_int_t)s->recent_us);
	json_put_int(o, "p50_us", (json_int_t)s->p50_us);
	json_put_int(o, "p99_us", (json_int_t)s->p99_us);
}
