// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon.h"
#include "deadlines.h"
#include "log.h"
#include "persist.h"
#include "state_file.h"

enum stage {
	ST_OPEN,
	ST_WRITE,
	ST_FSYNC,
	ST_RENAME,
	ST_FSYNC_DIR,
	ST_DONE,
};

static const char *const stage_names[] = {
	[ST_OPEN] = "open " PERSIST_TMP_FILE,
	[ST_WRITE] = "write " PERSIST_TMP_FILE,
	[ST_FSYNC] = "fsync " PERSIST_TMP_FILE,
	[ST_RENAME] = "rename to " PERSIST_FILE,
	[ST_FSYNC_DIR] = "fsync the state dir",
};

static void write_start(struct persister *p);

static void answer(struct persist_wait *w, int err)
{
	while (w) {
		struct persist_wait *next = w->next;

		w->cb(w->ctx, err);
		free(w);
		w = next;
	}
}

static void write_end(struct persister *p, int err)
{
	struct persist_wait *w = p->current;

	if (err)
		pr_err("state: %s in %s: %s", stage_names[p->stage],
		       p->d->cfg.state_dir, strerror(-err));
	if (p->tmpfd >= 0) {
		loop_close(&p->d->loop, p->tmpfd);
		p->tmpfd = -1;
	}
	free(p->buf);
	p->buf = NULL;
	p->current = NULL;
	p->running = false;
	if (!err)
		daemon_events_written(p->d, p->covers);
	answer(w, err);
	if ((p->pending || p->wanted) && !p->d->loop.stopping)
		write_start(p);
}

static void stage_next(struct persister *p)
{
	struct io_uring_sqe *sqe;

	if (p->stage == ST_DONE) {
		write_end(p, 0);
		return;
	}
	sqe = timed_op_sqe(&p->d->loop, &p->op);
	switch (p->stage) {
	case ST_OPEN:
		io_uring_prep_openat(sqe, p->dirfd, PERSIST_TMP_FILE,
				     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
					     O_NOFOLLOW,
				     0600);
		break;
	case ST_WRITE:
		io_uring_prep_write(sqe, p->tmpfd, p->buf + p->off,
				    p->len - p->off, p->off);
		break;
	case ST_FSYNC:
		io_uring_prep_fsync(sqe, p->tmpfd, 0);
		break;
	case ST_RENAME:
		io_uring_prep_renameat(sqe, p->dirfd, PERSIST_TMP_FILE,
				       p->dirfd, PERSIST_FILE, 0);
		break;
	case ST_FSYNC_DIR:
		io_uring_prep_fsync(sqe, p->dirfd, 0);
		break;
	}
	/*
	 * A local disk can stall too (a full queue, a dying device): in
	 * io-wq, never inline in the loop.
	 */
	sqe->flags |= IOSQE_ASYNC;
	timed_op_submit(&p->d->loop, &p->op, PERSIST_STEP_DEADLINE_MS);
}

static void stage_done(struct timed_op *t, int res)
{
	struct persister *p = container_of(t, struct persister, op);

	if (res < 0) {
		write_end(p, res);
		return;
	}
	if (p->stage == ST_OPEN) {
		p->tmpfd = res;
	} else if (p->stage == ST_WRITE) {
		if (!res) {
			write_end(p, -EIO);
			return;
		}
		p->off += res;
		if (p->off < p->len) {
			stage_next(p);
			return;
		}
	}
	p->stage++;
	stage_next(p);
}

/* The last stage's deadline ticket is back: a queued write may start. */
static void stage_idle(struct timed_op *t)
{
	struct persister *p = container_of(t, struct persister, op);

	if ((p->pending || p->wanted) && !p->d->loop.stopping)
		write_start(p);
}

static void stage_late(struct timed_op *t, int res)
{
	struct persister *p = container_of(t, struct persister, op);

	/* A late open: the fd belongs to nobody now. */
	if (p->stage == ST_OPEN && res >= 0)
		loop_close(&p->d->loop, res);
}

static void write_start(struct persister *p)
{
	json_t *doc;

	if (p->running || !timed_op_idle(&p->op))
		return;
	p->current = p->pending;
	p->pending = NULL;
	p->wanted = false;
	/* The events waiting for a write now are in this one. */
	p->covers = json_array_size(p->d->pending_events);
	doc = daemon_state_doc(p->d);
	p->buf = doc ? state_encode(doc, &p->len) : NULL;
	json_decref(doc);
	p->running = true;
	p->stage = ST_OPEN;
	p->off = 0;
	if (!p->buf) {
		write_end(p, -ENOMEM);
		return;
	}
	stage_next(p);
}

int persist_request(struct persister *p, persist_cb cb, void *ctx)
{
	struct persist_wait *w = calloc(1, sizeof(*w)), **tail;

	if (!w)
		return -ENOMEM;
	w->cb = cb;
	w->ctx = ctx;
	for (tail = &p->pending; *tail; tail = &(*tail)->next)
		;
	*tail = w;
	write_start(p);
	return 0;
}

void persist_kick(struct persister *p)
{
	p->wanted = true;
	write_start(p);
}

int persist_open(struct persister *p, struct daemon *d, const char *state_dir)
{
	memset(p, 0, sizeof(*p));
	p->d = d;
	p->tmpfd = -1;
	timed_op_init(&p->op, stage_done, stage_late);
	p->op.idle = stage_idle;
	p->dirfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		pr_err("state dir %s: %s", state_dir, strerror(errno));
		return -errno;
	}
	return 0;
}

void persist_close(struct persister *p)
{
	answer(p->current, -ECANCELED);
	answer(p->pending, -ECANCELED);
	p->current = p->pending = NULL;
	if (p->tmpfd >= 0)
		close(p->tmpfd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	free(p->buf);
	p->buf = NULL;
}

/* Keeps a bad state file for a person to look at, and out of the way. */
static void set_aside(struct persister *p, const char *why)
{
	char name[64];

	snprintf(name, sizeof(name), PERSIST_FILE ".corrupt-%lld",
		 (long long)time(NULL));
	pr_err("state: %s/%s is unusable (%s); kept as %s, starting with nothing armed",
	       p->d->cfg.state_dir, PERSIST_FILE, why, name);
	if (renameat(p->dirfd, PERSIST_FILE, p->dirfd, name))
		pr_err("state: cannot set it aside: %s", strerror(errno));
}

int persist_load(struct persister *p, json_t **doc)
{
	char err[256], *buf;
	struct stat st;
	ssize_t n;
	int fd, ret;

	*doc = NULL;
	/* A temp file is a write that never finished; the old state stands. */
	unlinkat(p->dirfd, PERSIST_TMP_FILE, 0);
	fd = openat(p->dirfd, PERSIST_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		pr_err("state: %s: %s", PERSIST_FILE, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) || st.st_size > STATE_FILE_MAX) {
		close(fd);
		set_aside(p, "too large");
		return -EINVAL;
	}
	buf = malloc(st.st_size + 1);
	n = buf ? pread(fd, buf, st.st_size, 0) : -1;
	close(fd);
	if (n != st.st_size) {
		free(buf);
		set_aside(p, "short read");
		return -EINVAL;
	}
	ret = state_decode(buf, n, doc, err, sizeof(err));
	free(buf);
	/* Out of memory says nothing about the file: keep it. */
	if (ret == -ENOMEM) {
		pr_err("state: out of memory reading %s", PERSIST_FILE);
		return ret;
	}
	if (ret) {
		set_aside(p, err);
		return -EINVAL;
	}
	return 0;
}
