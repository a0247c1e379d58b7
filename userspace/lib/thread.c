// SPDX-License-Identifier: GPL-2.0-only
#include <signal.h>

#include "thread.h"

int thread_start_stack(pthread_t *t, void *(*fn)(void *), void *arg,
		       size_t stack_size)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int ret;

	ret = pthread_attr_init(&attr);
	if (ret)
		return -ret;
	ret = pthread_attr_setstacksize(&attr, stack_size);
	if (!ret) {
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		ret = pthread_create(t, &attr, fn, arg);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_attr_destroy(&attr);
	return -ret;
}

int thread_start(pthread_t *t, void *(*fn)(void *), void *arg)
{
	return thread_start_stack(t, fn, arg, THREAD_STACK_SIZE);
}
