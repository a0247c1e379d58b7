/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's threads (the fencing core, its workers, the logger) are
 * all started here: with every signal blocked (signals are the control
 * plane's, through its signalfd) and a small stack. Under mlockall
 * every page of a new mapping is made resident at once, so a default
 * 8 MiB stack would cost 8 MiB of locked memory per thread.
 */
#ifndef IOFENCE_THREAD_H
#define IOFENCE_THREAD_H

#include <pthread.h>

/* Enough for the deepest path: a victim search's PATH_MAX buffers. */
#define THREAD_STACK_SIZE (256 * 1024)

/* 0, or a negative errno. */
int thread_start(pthread_t *t, void *(*fn)(void *), void *arg);
/* With a stack of its own size: code that is not ours runs on it. */
int thread_start_stack(pthread_t *t, void *(*fn)(void *), void *arg,
		       size_t stack_size);

#endif
