// SPDX-License-Identifier: GPL-2.0-only
/*
 * query-peer: is another host still writing heartbeats to a storage?
 *
 * The answer comes from the record only, never from clocks: the record is
 * read, again after the observation window, and the peer is
 *   alive    when its sequence number moved in between,
 *   dead     when it did not, over a window at least as long as the
 *            timeout the peer publishes (a live peer writes within it),
 *   unknown  when there is no readable record of that host, or the window
 *            was too short to tell.
 * The reply carries the record's published fence deadline and the VMs it
 * lists, which is what a management node needs before it restarts them.
 * Each read has a deadline; a hung storage answers "unknown".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/openat2.h>

#include "arm.h"
#include "args.h"
#include "commands.h"
#include "deadlines.h"
#include "log.h"
#include "record.h"

enum peer_step {
	PEER_OPEN,
	PEER_OPEN_BUFFERED, /* the file system has no O_DIRECT */
	PEER_READ,
	PEER_WAIT,
	PEER_DONE,
};

struct peer_query {
	struct list_head link;
	struct daemon *d;
	uint64_t conn_id;
	json_t *id;
	enum storage_type type;
	int dirfd; /* file: the storage's folder; block: -1 */
	int fd; /* the record: opened per read (file), the device (block) */
	uint32_t size;
	uint64_t offset;
	char path[sizeof(ARM_RECORD_DIR) + STORAGE_UUID_MAX + 1];
	char host[STORAGE_UUID_MAX + 1];
	char storage[STORAGE_UUID_MAX + 1];
	struct open_how how;
	void *buf;
	struct timed_op op;
	struct loop_op timer;
	struct __kernel_timespec ts;
	enum peer_step step;
	bool window_given;
	uint64_t window_ms;
	uint64_t started_ms;
	int nobs; /* observations done: 0, 1 or 2 */
	int err[2]; /* per observation: 0 or why it has no record */
	struct record obs[2];
	bool replied;
};

static void peer_next(struct peer_query *q);

/* Its fds are on the storage: closed in io-wq (a FLUSH may hang there). */
static void peer_free(struct peer_query *q)
{
	struct loop *l = &q->d->loop;

	list_del(&q->link);
	json_decref(q->id);
	loop_close(l, q->fd);
	loop_close(l, q->dirfd);
	free(q->buf);
	free(q);
}

static bool peer_idle(const struct peer_query *q)
{
	return timed_op_idle(&q->op) && !q->timer.busy;
}

static const char *obs_error(int err)
{
	switch (err) {
	case -ENOENT:
		return "no record of this host on the storage";
	case -ENODATA:
		return "the slot was never written";
	case -EBADMSG:
		return "no valid record (torn, corrupt or not iofence)";
	case -EPROTONOSUPPORT:
		return "a record of a newer format";
	case -ETIMEDOUT:
		return "reading the record timed out";
	case -EXDEV:
		return "the slot holds another host's record";
	default:
		return strerror(-err);
	}
}

static json_t *record_json(const struct record *r)
{
	json_t *vms = json_array();
	char uuid[37];

	for (unsigned int i = 0; i < r->nvms; i++) {
		record_uuid_format(r->vms[i], uuid);
		json_array_append_new(vms, json_string(uuid));
	}
	return json_pack("{s:I,s:s,s:b,s:I,s:i,s:i,s:i,s:o,s:i}", "seq",
			 (json_int_t)r->seq, "state",
			 record_state_name(r->state), "clean_shutdown",
			 r->state == RECORD_CLEAN_SHUTDOWN, "written_at_ms",
			 (json_int_t)(r->realtime_ns / 1000000), "interval_ms",
			 r->interval_ms, "timeout_ms", r->timeout_ms,
			 "fence_deadline_ms", r->fence_deadline_ms, "vms", vms,
			 "vms_omitted", r->vms_omitted);
}

static void reply(struct peer_query *q)
{
	const struct record *last = &q->obs[q->nobs - 1];
	const char *liveness = "unknown", *why = NULL;
	int err = q->err[q->nobs - 1];
	json_t *r;

	if (err) {
		why = obs_error(err);
	} else if (q->nobs < 2) {
		why = "no observation window";
	} else if (last->seq != q->obs[0].seq) {
		liveness = "alive";
	} else if (last->state == RECORD_CLEAN_SHUTDOWN) {
		/*
		 * Its timeline ended on purpose: nothing fences the host's
		 * VMs, which may still write. Never "dead": that would let
		 * a peer restart them beside the running ones.
		 */
		why = "the host stopped heartbeating on purpose (a teardown): it no longer guards the storage";
	} else if (q->window_ms >= last->timeout_ms) {
		liveness = "dead";
	} else {
		why = "no progress, but the window is shorter than the peer's timeout";
	}
	r = json_pack("{s:s,s:s,s:s,s:I,s:I}", "host", q->host, "storage",
		      q->storage, "liveness", liveness, "window_ms",
		      (json_int_t)q->window_ms, "observed_ms",
		      (json_int_t)(loop_now_ms() - q->started_ms));
	if (why)
		json_object_set_new(r, "reason", json_string(why));
	if (!err) {
		/* A second read is made only after a good first one. */
		if (q->nobs == 2)
			json_object_set_new(
				r, "progress",
				json_integer((json_int_t)(last->seq -
							  q->obs[0].seq)));
		json_object_set_new(r, "record", record_json(last));
	}
	q->replied = true;
	cmd_reply_later(q->d, q->conn_id, proto_return(r, q->id));
}

/* One observation is in: read again after the window, or answer. */
static void observed(struct peer_query *q, int err)
{
	int i = q->nobs++;

	q->err[i] = err;
	if (!err && strcmp(q->obs[i].host_uuid, q->host))
		q->err[i] = -EXDEV;
	if (q->type == STORAGE_FILE && q->fd >= 0) {
		loop_close(&q->d->loop, q->fd);
		q->fd = -1;
	}
	if (i == 0 && !q->err[0] && !q->window_given)
		q->window_ms = q->obs[0].timeout_ms;
	if (i == 0 && !q->err[0] && q->window_ms) {
		q->step = PEER_WAIT;
	} else {
		q->step = PEER_DONE;
		reply(q);
	}
}

static void op_done(struct timed_op *t, int res)
{
	struct peer_query *q = container_of(t, struct peer_query, op);

	switch (q->step) {
	case PEER_OPEN:
	case PEER_OPEN_BUFFERED:
		if (res == -EINVAL && q->step == PEER_OPEN) {
			q->step = PEER_OPEN_BUFFERED;
			return;
		}
		if (res < 0) {
			observed(q, res);
			return;
		}
		q->fd = res;
		q->step = PEER_READ;
		return;
	case PEER_READ:
		if (res < 0)
			observed(q, res);
		else
			observed(q, res ? record_decode(q->buf, res,
							&q->obs[q->nobs]) :
					  -ENODATA);
		return;
	default:
		return;
	}
}

/* An open that came after its deadline: nobody reads through it. */
static void op_late(struct timed_op *t, int res)
{
	struct peer_query *q = container_of(t, struct peer_query, op);

	if (res >= 0 &&
	    (q->step == PEER_OPEN || q->step == PEER_OPEN_BUFFERED ||
	     q->step == PEER_DONE || q->step == PEER_WAIT) &&
	    q->type == STORAGE_FILE && res != q->fd)
		loop_close(&q->d->loop, res);
}

static void op_idle(struct timed_op *t)
{
	peer_next(container_of(t, struct peer_query, op));
}

static void timer_done(struct loop_op *op, int res, unsigned int flags)
{
	struct peer_query *q = container_of(op, struct peer_query, timer);

	q->step = q->type == STORAGE_FILE ? PEER_OPEN : PEER_READ;
	peer_next(q);
}

static void peer_next(struct peer_query *q)
{
	struct io_uring_sqe *sqe;
	struct loop *l = &q->d->loop;

	if (l->stopping || q->step == PEER_DONE) {
		if (!q->replied && q->nobs)
			reply(q);
		if (peer_idle(q))
			peer_free(q);
		return;
	}
	if (q->step == PEER_WAIT) {
		q->ts.tv_sec = q->window_ms / 1000;
		q->ts.tv_nsec = (q->window_ms % 1000) * 1000000;
		io_uring_prep_timeout(loop_sqe(l, &q->timer), &q->ts, 0, 0);
		return;
	}
	sqe = timed_op_sqe(l, &q->op);
	if (q->step == PEER_READ) {
		io_uring_prep_read(sqe, q->fd, q->buf, q->size, q->offset);
	} else {
		q->how = (struct open_how){
			.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
				 (q->step == PEER_OPEN ? O_DIRECT : 0),
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
		};
		io_uring_prep_openat2(sqe, q->dirfd, q->path, &q->how);
	}
	/* The storage may hang: in io-wq, never inline in the loop. */
	sqe->flags |= IOSQE_ASYNC;
	timed_op_submit(l, &q->op, PEER_READ_DEADLINE_MS);
}

static json_t *invalid(struct proto_request *req, const struct args_err *e)
{
	return args_error(PROTO_INVALID_ARGUMENT, req->id, e);
}

json_t *cmd_query_peer(struct daemon *d, struct ctl_conn *c,
		       struct proto_request *req)
{
	const char *uuid = NULL, *host = NULL;
	uint64_t slot = 0, window = 0;
	struct peer_query *q;
	struct args_err e;
	struct storage *s;

	if (args_string(req->arguments, "", "storage", true, &uuid, &e) ||
	    args_string(req->arguments, "", "host", true, &host, &e) ||
	    args_uint(req->arguments, "", "window_ms", false, 0,
		      PEER_WINDOW_MAX_MS, &window, &e))
		return invalid(req, &e);
	if (!storage_uuid_valid(host)) {
		args_fail(
			&e, "", "host",
			"must be 1 to %d of A-Z a-z 0-9 . _ : - and not start with '.'",
			STORAGE_UUID_MAX);
		return invalid(req, &e);
	}
	s = storage_find(&d->storages, uuid);
	if (!s) {
		args_fail(&e, "", "storage", "no storage %s is armed here",
			  uuid);
		return args_error(PROTO_NOT_FOUND, req->id, &e);
	}
	if (s->p.type == STORAGE_BLOCK) {
		if (!json_object_get(req->arguments, "slot")) {
			args_fail_rule(
				&e, ARGS_MISSING, "", "slot",
				"missing; a block storage's records are found by slot");
			return invalid(req, &e);
		}
		if (args_uint(req->arguments, "", "slot", true, 0,
			      BLOCK_SLOT_MAX, &slot, &e))
			return invalid(req, &e);
	} else if (json_object_get(req->arguments, "slot")) {
		args_fail(&e, "", "slot", "only for block storages");
		return invalid(req, &e);
	}

	q = calloc(1, sizeof(*q));
	if (!q || posix_memalign(&q->buf, RECORD_SIZE_MAX, RECORD_SIZE_MAX)) {
		free(q);
		return proto_error(PROTO_GENERIC_ERROR, req->id,
				   "out of memory");
	}
	q->d = d;
	q->conn_id = c->id;
	q->id = json_incref(req->id);
	q->type = s->p.type;
	q->window_given = json_object_get(req->arguments, "window_ms");
	q->window_ms = window;
	q->started_ms = loop_now_ms();
	snprintf(q->host, sizeof(q->host), "%s", host);
	snprintf(q->storage, sizeof(q->storage), "%s", uuid);
	timed_op_init(&q->op, op_done, op_late);
	q->op.idle = op_idle;
	q->timer.cb = timer_done;
	q->fd = q->dirfd = -1;
	if (s->p.type == STORAGE_FILE) {
		q->size = RECORD_SIZE_MAX;
		snprintf(q->path, sizeof(q->path), ARM_RECORD_DIR "/%s", host);
		q->dirfd = dup(s->target_fd);
		q->step = PEER_OPEN;
	} else {
		q->size = s->record_size;
		q->offset = s->p.region_offset + slot * RECORD_SLOT_SIZE;
		q->fd = dup(s->record_fd);
		q->step = PEER_READ;
	}
	list_add_tail(&q->link, &d->peers);
	if (q->dirfd < 0 && q->fd < 0) {
		int err = errno;

		peer_free(q);
		return proto_error(PROTO_GENERIC_ERROR, req->id, "dup: %s",
				   strerror(err));
	}
	peer_next(q);
	return NULL;
}

void peer_queries_free(struct daemon *d)
{
	while (!list_empty(&d->peers))
		peer_free(list_entry(d->peers.next, struct peer_query, link));
	/* The loop runs no more: its closes go out now. */
	io_uring_submit(&d->loop.ring);
}
