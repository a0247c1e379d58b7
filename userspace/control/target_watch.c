// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "daemon.h"
#include "log.h"
#include "target_watch.h"

#define LOOP_MAJOR_NR 7

/*
 * A loop device detached while held open (losetup -d sets autoclear):
 * it goes when its last user closes it. sysfs, not the storage: read
 * inline, as the device set is.
 */
static bool loop_detaching(dev_t dev)
{
	char path[64], c = '0';
	int fd;

	if (major(dev) != LOOP_MAJOR_NR)
		return false;
	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/autoclear",
		 major(dev), minor(dev));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (read(fd, &c, 1) != 1)
		c = '0';
	close(fd);
	return c == '1';
}

/* What changed, in @why; false when the path names what was armed. */
static bool changed(const struct storage *s, int res, const struct statx *x,
		    char *why, size_t len)
{
	dev_t now;

	if (res < 0) {
		snprintf(why, len, "%s", strerror(-res));
		return true;
	}
	if (s->p.type == STORAGE_FILE) {
		now = makedev(x->stx_dev_major, x->stx_dev_minor);
		if (now == s->fs_dev)
			return false;
		snprintf(
			why, len,
			"it is on device %u:%u now, armed on %u:%u: unmounted, or another mount over it",
			major(now), minor(now), major(s->fs_dev),
			minor(s->fs_dev));
		return true;
	}
	now = makedev(x->stx_rdev_major, x->stx_rdev_minor);
	if (!S_ISBLK(x->stx_mode) || now != s->dev) {
		snprintf(
			why, len,
			"it names %s%u:%u now, armed as %u:%u: the device went away",
			S_ISBLK(x->stx_mode) ? "device " : "no block device, ",
			major(now), minor(now), major(s->dev), minor(s->dev));
		return true;
	}
	if (loop_detaching(s->dev)) {
		snprintf(why, len,
			 "loop device %s is detached once closed (losetup -d)",
			 s->p.target);
		return true;
	}
	return false;
}

static void look_done(struct timed_op *t, int res)
{
	struct target_watch *w = container_of(t, struct target_watch, op);
	struct storage *s = storage_find(&w->d->storages, w->uuid);
	char why[256];

	/* A look cut short says nothing of the target. */
	if (!s || res == -ETIMEDOUT || res == -ECANCELED || res == -EINTR ||
	    strcmp(s->p.target, w->path))
		return;
	if (!changed(s, res, &w->stx, why, sizeof(why))) {
		if (s->target_changed)
			pr_info("%s: target %s is what was armed again",
				s->p.uuid, s->p.target);
		s->target_changed = false;
		return;
	}
	if (s->target_changed)
		return;
	s->target_changed = true;
	if (s->p.type == STORAGE_FILE)
		pr_warn("%s: target %s is no longer the file system armed (%s); its heartbeats go on to the one armed, which VMs that still hold it write to",
			s->p.uuid, s->p.target, why);
	else if (!strncmp(why, "loop device", 11))
		pr_warn("%s: %s; its heartbeats go on to it until then",
			s->p.uuid, why);
	else
		pr_warn("%s: target %s: %s; its heartbeats go on to the device armed",
			s->p.uuid, s->p.target, why);
	daemon_event(w->d, "TARGET_CHANGED",
		     json_pack("{s:s,s:s,s:s}", "storage", s->p.uuid, "target",
			       s->p.target, "reason", why));
}

void target_watch_init(struct target_watch *w, struct daemon *d)
{
	memset(w, 0, sizeof(*w));
	w->d = d;
	timed_op_init(&w->op, look_done, NULL);
}

void target_watch_tick(struct target_watch *w)
{
	struct storage_table *t = &w->d->storages;
	uint64_t now = loop_now_ms();
	struct io_uring_sqe *sqe;
	struct storage *s = NULL;
	unsigned int i;

	if (now < w->next_ms || !t->count)
		return;
	if (!timed_op_idle(&w->op)) {
		if (!w->stuck_told)
			pr_warn("%s: a look at target %s is stuck in the kernel; no target is looked at until it returns",
				w->uuid, w->path);
		w->stuck_told = true;
		return;
	}
	w->stuck_told = false;
	for (i = 0; i < STORAGE_MAX && !s; i++) {
		s = t->slot[(w->next + i) % STORAGE_MAX];
		if (s && s->p.type == STORAGE_RBD)
			s = NULL;
	}
	w->next_ms = now + TARGET_CHECK_MS / t->count;
	if (!s)
		return;
	w->next = (w->next + i) % STORAGE_MAX;
	snprintf(w->uuid, sizeof(w->uuid), "%s", s->p.uuid);
	snprintf(w->path, sizeof(w->path), "%s", s->p.target);
	sqe = timed_op_sqe(&w->d->loop, &w->op);
	/* The path is looked up anew: that is the point. No sync of attributes. */
	io_uring_prep_statx(sqe, AT_FDCWD, w->path, AT_STATX_DONT_SYNC,
			    STATX_TYPE, &w->stx);
	sqe->flags |= IOSQE_ASYNC;
	timed_op_submit(&w->d->loop, &w->op, TARGET_CHECK_DEADLINE_MS);
}
