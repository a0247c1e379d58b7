/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A counting allocator for jansson, for the unit tests: it finds leaks
 * (live_allocs back to 0) and makes the n-th allocation fail.
 *
 * Every jansson value a test using it touches must be made after
 * counting_init() and gone before counting_fini(), or the count mixes up
 * allocators. Not for use around proto_dump_line(), which frees jansson's
 * buffer with libc directly.
 */
#ifndef IOFENCE_ALLOC_COUNT_H
#define IOFENCE_ALLOC_COUNT_H

extern long live_allocs;
extern long allocs_left; /* next allocations to succeed; -1: all */
extern int alloc_failed;

void counting_init(void);
void counting_fini(void);
/* The next @n allocations succeed, the one after fails. */
void fail_after(long n);

#endif
