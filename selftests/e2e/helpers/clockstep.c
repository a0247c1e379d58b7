// SPDX-License-Identifier: GPL-2.0-only
/*
 * An LD_PRELOAD shim for test_faults_env.sh: the wall clock of one
 * process stepped, and the host's left alone. CLOCK_REALTIME (and its
 * coarse variant, time(), gettimeofday()) read as the real clock plus
 * the offset in seconds that the file named by $CLOCKSTEP_FILE holds
 * when it is read; the monotonic and boot-time clocks are untouched.
 * A daemon whose every deadline runs on those must not notice a step.
 *
 * Built by the test itself (cc -shared), not by the Makefile: it is no
 * program of the tree, and only that test loads it.
 */
#include <dlfcn.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static int offset_fd = -2;

/* The offset now: one pread of a small file, as a test needs no more. */
static long long offset_s(void)
{
	char buf[32];
	ssize_t n;

	if (offset_fd == -2) {
		const char *path = getenv("CLOCKSTEP_FILE");

		offset_fd = path ? open(path, O_RDONLY | O_CLOEXEC) : -1;
	}
	if (offset_fd < 0)
		return 0;
	n = pread(offset_fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return strtoll(buf, NULL, 10);
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int ret;

	if (!real_clock_gettime)
		real_clock_gettime =
			(clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
	ret = real_clock_gettime(id, ts);
	if (!ret && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec += offset_s();
	return ret;
}

time_t time(time_t *t)
{
	struct timespec ts;
	time_t now;

	clock_gettime(CLOCK_REALTIME, &ts);
	now = ts.tv_sec;
	if (t)
		*t = now;
	return now;
}

int gettimeofday(struct timeval *tv, void *tz)
{
	struct timespec ts;

	(void)tz;
	clock_gettime(CLOCK_REALTIME, &ts);
	tv->tv_sec = ts.tv_sec;
	tv->tv_usec = ts.tv_nsec / 1000;
	return 0;
}
