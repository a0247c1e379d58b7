// SPDX-License-Identifier: GPL-2.0-only
#include <stdlib.h>
#include <jansson.h>

#include "alloc_count.h"

long live_allocs;
long allocs_left = -1;
int alloc_failed;

static void *counting_malloc(size_t n)
{
	void *p;

	if (allocs_left == 0) {
		alloc_failed = 1;
		return NULL;
	}
	if (allocs_left > 0)
		allocs_left--;
	p = malloc(n);
	if (p)
		live_allocs++;
	return p;
}

static void counting_free(void *p)
{
	if (!p)
		return;
	live_allocs--;
	free(p);
}

void counting_init(void)
{
	json_set_alloc_funcs(counting_malloc, counting_free);
	live_allocs = 0;
	allocs_left = -1;
	alloc_failed = 0;
}

void counting_fini(void)
{
	json_set_alloc_funcs(malloc, free);
}

void fail_after(long n)
{
	allocs_left = n;
	alloc_failed = 0;
}
