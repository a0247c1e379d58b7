// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/watchdog.h>

#include "log.h"
#include "watchdog.h"

/*
 * Four keepalives per timeout: one late timer or a busy moment does not
 * come near the reset, and the reset comes at most one timeout after the
 * petting stops.
 */
#define WATCHDOG_PETS_PER_TIMEOUT 4
/* A test device (FIFO, plain file) without its own timeout. */
#define WATCHDOG_TEST_TIMEOUT_S 60

/*
 * Non-blocking: a full FIFO (no test reading it) skips a pet. A pet that
 * fails is said once per episode, loudly: a device that misses its
 * keepalives resets the host a timeout after the last one that went
 * through, whatever the storages' contracts say. The core tells the
 * control plane from w->failing.
 */
static void pet(struct watchdog *w)
{
	ssize_t n = write(w->fd, "k", 1);
	uint64_t now = loop_now_ms();

	if (n == 1) {
		w->pets++;
		w->last_pet_ms = now;
		if (w->failing) {
			w->failing = false;
			pr_warn("watchdog %s: keepalives go through again, after %llu that failed",
				w->path, (unsigned long long)w->failed);
		}
		return;
	}
	w->failed++;
	w->last_errno = n < 0 ? errno : EIO;
	if (w->failing)
		return;
	w->failing = true;
	pr_crit("watchdog %s: a keepalive failed: %s; a device that gets none resets the host within %u ms of the last one (%llu ms ago)",
		w->path, strerror(w->last_errno), w->timeout_ms,
		(unsigned long long)(w->last_pet_ms ? now - w->last_pet_ms :
						      0));
}

static void timer_arm(struct watchdog *w)
{
	io_uring_prep_timeout(loop_sqe(w->loop, &w->timer), &w->every, 0, 0);
}

static void timer_done(struct loop_op *op, int res, unsigned int flags)
{
	struct watchdog *w = container_of(op, struct watchdog, timer);

	if (w->loop->stopping)
		return;
	if (!w->holding)
		pet(w);
	timer_arm(w);
}

static int device_timeout(struct watchdog *w, unsigned int timeout_s)
{
	int t = timeout_s;

	if (timeout_s && ioctl(w->fd, WDIOC_SETTIMEOUT, &t)) {
		pr_err("watchdog %s: cannot set a %us timeout: %s", w->path,
		       timeout_s, strerror(errno));
		return -errno;
	}
	/* The driver may round the timeout; what it keeps is what counts. */
	if (ioctl(w->fd, WDIOC_GETTIMEOUT, &t) || t <= 0) {
		pr_err("watchdog %s: cannot read its timeout: %s", w->path,
		       strerror(errno));
		return -EIO;
	}
	w->timeout_ms = (uint32_t)t * 1000;
	return 0;
}

int watchdog_open(struct watchdog *w, struct loop *l, const char *path,
		  unsigned int timeout_s, bool required)
{
	struct stat st;
	int ret;

	*w = (struct watchdog){ .loop = l, .fd = -1 };
	w->timer.cb = timer_done;
	if (!path || !strcmp(path, "none")) {
		pr_warn("no watchdog (--watchdog none): an escalated fence cannot reset the host; fence deadlines are published as none");
		return 0;
	}
	w->fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (w->fd < 0) {
		ret = -errno;
		if (required || ret != -ENOENT) {
			pr_err("watchdog %s: %s", path, strerror(-ret));
			return ret;
		}
		pr_warn("watchdog %s: not present: an escalated fence cannot reset the host; fence deadlines are published as none",
			path);
		return 0;
	}
	w->path = strdup(path);
	if (!w->path) {
		/* Opened: only the magic close keeps it from resetting us. */
		watchdog_close(w, 0);
		return -ENOMEM;
	}
	if (fstat(w->fd, &st) == 0 && S_ISCHR(st.st_mode)) {
		ret = device_timeout(w, timeout_s);
		if (ret) {
			/* Still open: close it so it does not reset us. */
			watchdog_close(w, 0);
			return ret;
		}
	} else {
		w->timeout_ms =
			(timeout_s ? timeout_s : WATCHDOG_TEST_TIMEOUT_S) *
			1000u;
	}
	pr_info("watchdog %s: timeout %u ms", path, w->timeout_ms);
	return 0;
}

void watchdog_start(struct watchdog *w)
{
	uint64_t every_ms = w->timeout_ms / WATCHDOG_PETS_PER_TIMEOUT;

	if (w->fd < 0)
		return;
	w->every.tv_sec = every_ms / 1000;
	w->every.tv_nsec = (every_ms % 1000) * 1000000;
	pet(w);
	timer_arm(w);
}

void watchdog_hold(struct watchdog *w, bool hold)
{
	if (hold == w->holding)
		return;
	w->holding = hold;
	if (w->fd < 0)
		pr_warn("%s, but there is no watchdog to reset the host",
			hold ? "a storage's contract cannot be kept (escalated fence, hung re-arm)" :
			       "every storage's contract can be kept again");
	else if (hold)
		pr_crit("watchdog %s: petting stopped, a storage's contract cannot be kept; the host resets within %u ms",
			w->path, w->timeout_ms);
	else
		pr_warn("watchdog %s: petting resumed", w->path);
	if (!hold && w->fd >= 0)
		pet(w);
}

void watchdog_close(struct watchdog *w, unsigned int promised)
{
	if (w->fd >= 0 && promised && !w->holding) {
		/*
		 * Peers count the fence deadline from the last heartbeat,
		 * reset included: a daemon that stays away must not leave
		 * VMs writing past it. A full timeout for the next daemon.
		 */
		pet(w);
		pr_crit("watchdog %s: left armed: %u storage%s stay%s armed with a fence deadline; the host resets within %u ms unless iofenced starts again (tear them down to stop for good)",
			w->path, promised, promised == 1 ? "" : "s",
			promised == 1 ? "s" : "", w->timeout_ms);
	} else if (w->fd >= 0 && !w->holding && write(w->fd, "V", 1) != 1) {
		pr_warn("watchdog %s: magic close failed: %s", w->path,
			strerror(errno));
	}
	if (w->fd >= 0) {
		close(w->fd);
		w->fd = -1;
	}
	free(w->path);
	w->path = NULL;
}
