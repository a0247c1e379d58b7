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
 *
 * On an rbd storage the record is the peer's object, read through a
 * connection of the query's own (a link thread, rados_link.h), so that a
 * slow cluster delays the query and never this host's heartbeats. There
 * the query can go further: fence-peer has the cluster refuse the dead
 * peer's writes (osd blocklist add of the addresses its record names),
 * and unfence-peer lifts that again. Both are audited in the journal.
 */
#include <errno.h>
#include <stdarg.h>
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
#include "rados_link.h"
#include "record.h"
#include "timeline.h"

/* Why an observation has no record, beyond the errnos of its I/O. */
#define PEER_NOT_REGULAR (-EMEDIUMTYPE) /* a FIFO, a device... */
#define PEER_IMPLAUSIBLE (-ERANGE) /* a timeline no setup accepts */

enum peer_step {
	PEER_CONNECT, /* rbd: the query's own connection */
	PEER_OPEN,
	PEER_OPEN_BUFFERED, /* the file system has no O_DIRECT */
	PEER_STATX, /* file: only a regular file is read */
	PEER_READ,
	PEER_WAIT,
	PEER_BLOCKLIST, /* rbd: fence-peer and unfence-peer, one address each */
	PEER_DONE,
};

enum peer_purpose {
	PEER_QUERY,
	PEER_FENCE, /* blocklist it, if dead */
	PEER_UNFENCE, /* lift that blocklist */
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
	struct statx stx;
	void *buf;
	struct timed_op op;
	struct loop_op timer;
	struct __kernel_timespec ts;
	enum peer_step step;
	enum peer_step io_step; /* what the I/O of the op is */
	bool window_given;
	uint64_t window_ms;
	uint64_t started_ms;
	int nobs; /* observations done: 0, 1 or 2 */
	int err[2]; /* per observation: 0 or why it has no record */
	struct record obs[2];
	bool replied;

	/* rbd */
	enum peer_purpose purpose;
	bool force;
	uid_t uid;
	struct rados_link *rados;
	struct storage_params p; /* the storage's, for the link */
	struct rados_link_cfg rados_cfg;
	const char *liveness; /* the answer, once there is one */
	const char *why;
	char addrs[RECORD_ADDRS_TEXT_MAX + 1]; /* the peer's, to blocklist */
	int addrs_err; /* 0, or why the record names none */
	char self_addrs[256]; /* this host's: never blocklisted */
	char *next_addr; /* the next one to go, in addrs */
	unsigned int done_addrs;
	char cmd_status[256]; /* the monitors' last word */
	int cmd_err;
};

static void peer_next(struct peer_query *q);

/* Before it is listed: nothing of it is in flight yet. */
static void peer_free_early(struct peer_query *q)
{
	json_decref(q->id);
	storage_params_free(&q->p);
	free(q->buf);
	free(q);
}

/* Its fds are on the storage: closed in io-wq (a FLUSH may hang there). */
static void peer_free(struct peer_query *q)
{
	struct loop *l = &q->d->loop;

	list_del(&q->link);
	json_decref(q->id);
	loop_close(l, q->fd);
	loop_close(l, q->dirfd);
	rados_link_unref(q->rados);
	storage_params_free(&q->p);
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
		return "the record names another host";
	case -ELOOP:
		return "the record's path is a symbolic link: not followed";
	case PEER_NOT_REGULAR:
		return "the record is not a regular file (a FIFO, a device...): not read";
	case PEER_IMPLAUSIBLE:
		return "the record's interval_ms and timeout_ms are outside what any setup accepts: not trusted";
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

/* What the observations say: q->liveness, and q->why when not plain. */
static void judge(struct peer_query *q)
{
	const struct record *last = &q->obs[q->nobs - 1];
	const char *liveness = "unknown", *why = NULL;
	int err = q->err[q->nobs - 1];

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
	q->liveness = liveness;
	q->why = why;
}

static json_t *addrs_json(const char *addrs)
{
	json_t *a = json_array();
	char buf[RECORD_ADDRS_TEXT_MAX + 1], *save = NULL, *tok;

	snprintf(buf, sizeof(buf), "%s", addrs);
	for (tok = strtok_r(buf, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save))
		json_array_append_new(a, json_string(tok));
	return a;
}

static void reply(struct peer_query *q)
{
	const struct record *last = &q->obs[q->nobs - 1];
	const char *liveness = q->liveness, *why = q->why;
	int err = q->err[q->nobs - 1];
	json_t *r;

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
	if (q->type == STORAGE_RBD && !err)
		json_object_set_new(json_object_get(r, "record"), "addrs",
				    addrs_json(q->addrs));
	if (q->purpose == PEER_FENCE)
		json_object_set_new(r, "forced", json_boolean(q->force));
	if (q->purpose != PEER_QUERY)
		json_object_set_new(r,
				    q->purpose == PEER_FENCE ? "blocklisted" :
							       "unblocklisted",
				    addrs_json(q->addrs));
	q->replied = true;
	cmd_reply_later(q->d, q->conn_id, proto_return(r, q->id));
}

/* --- rbd: fence-peer and unfence-peer --------------------------------- */

static void fail(struct peer_query *q, enum proto_class cls, const char *fmt,
		 ...) __attribute__((format(printf, 3, 4)));
static void fail(struct peer_query *q, enum proto_class cls, const char *fmt,
		 ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	q->replied = true;
	q->step = PEER_DONE;
	cmd_reply_later(q->d, q->conn_id, proto_error(cls, q->id, "%s", msg));
}

static bool is_own_addr(const struct peer_query *q, const char *addr)
{
	char own[sizeof(q->self_addrs)], *save = NULL, *tok;

	snprintf(own, sizeof(own), "%s", q->self_addrs);
	for (tok = strtok_r(own, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save))
		if (!strcmp(tok, addr))
			return true;
	return false;
}

/*
 * Whether the cluster may be told to refuse the peer's writes: only a
 * peer that is dead (or a forced fence, said so in the journal), only
 * with addresses its own record names, and never this host's own.
 */
static bool may_blocklist(struct peer_query *q)
{
	char buf[sizeof(q->addrs)], *save = NULL, *tok;
	int err = q->err[q->nobs - 1];

	if (err) {
		fail(q, PROTO_NOT_FOUND,
		     "host: no readable record of host %s on storage %s (%s): its addresses are not known",
		     q->host, q->storage, obs_error(err));
		return false;
	}
	if (q->purpose == PEER_FENCE && strcmp(q->liveness, "dead") &&
	    !q->force) {
		fail(q, PROTO_PEER_NOT_DEAD,
		     "host: host %s is %s on storage %s (%s); only a dead host is blocklisted (force overrides, and is journalled)",
		     q->host, q->liveness, q->storage,
		     q->why ? q->why : "its heartbeats go on");
		return false;
	}
	if (!q->addrs[0]) {
		fail(q, PROTO_NOT_FOUND,
		     "host: the record of host %s names no client address (%s)",
		     q->host,
		     q->addrs_err ? obs_error(q->addrs_err) :
				    "an empty address block");
		return false;
	}
	snprintf(buf, sizeof(buf), "%s", q->addrs);
	for (tok = strtok_r(buf, " ", &save); tok;
	     tok = strtok_r(NULL, " ", &save)) {
		if (is_own_addr(q, tok)) {
			fail(q, PROTO_INVALID_ARGUMENT,
			     "host: the record of host %s names %s, this host's own address: blocklisting it would cut this host off too",
			     q->host, tok);
			return false;
		}
	}
	return true;
}

static const char *purpose_name(const struct peer_query *q)
{
	return q->purpose == PEER_FENCE ? "fence-peer" : "unfence-peer";
}

/* The observations are in: answer, or go on to the cluster. */
static void conclude(struct peer_query *q)
{
	judge(q);
	if (q->purpose == PEER_QUERY) {
		reply(q);
		return;
	}
	if (!may_blocklist(q))
		return;
	if (q->purpose == PEER_FENCE && q->force && strcmp(q->liveness, "dead"))
		pr_warn("fence-peer FORCED by uid %d: host %s is %s on storage %s, blocklisting %s anyway",
			(int)q->uid, q->host, q->liveness, q->storage,
			q->addrs);
	else
		pr_warn("%s by uid %d: host %s on storage %s (%s): %s %s",
			purpose_name(q), (int)q->uid, q->host, q->storage,
			q->liveness,
			q->purpose == PEER_FENCE ? "blocklisting" :
						   "lifting the blocklist of",
			q->addrs);
	q->next_addr = q->addrs;
	q->step = PEER_BLOCKLIST;
}

/* The journal says what was done to the cluster, finished or not. */
static void blocklisted(struct peer_query *q, int err)
{
	json_t *data = json_pack("{s:s,s:s,s:o,s:b,s:i,s:s,s:b}", "storage",
				 q->storage, "peer", q->host, "addrs",
				 addrs_json(q->addrs), "forced", q->force,
				 "uid", (int)q->uid, "liveness", q->liveness,
				 "complete", !err);

	if (err)
		json_object_set_new(data, "error",
				    json_sprintf("%s: %s", strerror(-err),
						 q->cmd_status));
	json_object_set_new(data, "done", json_integer(q->done_addrs));
	daemon_event(q->d,
		     q->purpose == PEER_FENCE ? "PEER_FENCED" : "PEER_UNFENCED",
		     data);
	q->step = PEER_DONE;
	if (!err) {
		reply(q);
		return;
	}
	pr_err("%s of host %s: %u of its addresses done, then: %s (%s)",
	       purpose_name(q), q->host, q->done_addrs, strerror(-err),
	       q->cmd_status);
	fail(q, err == -ETIMEDOUT ? PROTO_TIMEOUT : PROTO_GENERIC_ERROR,
	     "%s of host %s: %u of its addresses (%s) done, then the monitors said: %s (%s)",
	     purpose_name(q), q->host, q->done_addrs, q->addrs, strerror(-err),
	     q->cmd_status[0] ? q->cmd_status : "nothing");
}

/* The next address's command, into @buf; false when none is left. */
static bool blocklist_cmd(struct peer_query *q, char *buf, size_t len)
{
	char addr[64];
	size_t n;

	q->next_addr += strspn(q->next_addr, " ");
	n = strcspn(q->next_addr, " ");
	if (!n || n >= sizeof(addr))
		return false;
	memcpy(addr, q->next_addr, n);
	addr[n] = '\0';
	if (q->purpose == PEER_FENCE)
		snprintf(
			buf, len,
			"{\"prefix\":\"osd blocklist\",\"blocklistop\":\"add\",\"addr\":\"%s\",\"expire\":%d.0}",
			addr, PEER_BLOCKLIST_EXPIRE_S);
	else
		snprintf(
			buf, len,
			"{\"prefix\":\"osd blocklist\",\"blocklistop\":\"rm\",\"addr\":\"%s\"}",
			addr);
	return true;
}

static void command_done(struct peer_query *q, int res)
{
	if (res < 0) {
		blocklisted(q, res);
		return;
	}
	q->done_addrs++;
	q->next_addr += strcspn(q->next_addr, " ");
	if (!q->next_addr[strspn(q->next_addr, " ")])
		blocklisted(q, 0);
}

/*
 * The checksum proves a record whole, not honest: a liveness is judged
 * only from a timeline that some setup could have armed, so that a record
 * claiming a timeout of 0 never makes its host "dead" at once.
 */
static bool timeline_plausible(const struct record *r)
{
	return r->interval_ms >= TL_INTERVAL_MIN_MS &&
	       r->interval_ms <= TL_INTERVAL_MAX_MS &&
	       r->timeout_ms >= r->interval_ms &&
	       r->timeout_ms <= TL_TIMEOUT_MAX_MS;
}

/* One observation is in: read again after the window, or answer. */
static void observed(struct peer_query *q, int err)
{
	int i = q->nobs++;

	q->err[i] = err;
	if (!err && strcmp(q->obs[i].host_uuid, q->host))
		q->err[i] = -EXDEV;
	else if (!err && !timeline_plausible(&q->obs[i]))
		q->err[i] = PEER_IMPLAUSIBLE;
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
		conclude(q);
	}
}

static void op_done(struct timed_op *t, int res)
{
	struct peer_query *q = container_of(t, struct peer_query, op);

	switch (q->step) {
	case PEER_CONNECT:
		if (res < 0)
			observed(q, res);
		else
			q->step = PEER_READ;
		return;
	case PEER_BLOCKLIST:
		command_done(q, res);
		return;
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
		q->step = PEER_STATX;
		return;
	case PEER_STATX:
		if (res < 0 || !S_ISREG(q->stx.stx_mode)) {
			observed(q, res < 0 ? res : PEER_NOT_REGULAR);
			return;
		}
		/* Opened without blocking on a FIFO; read as any file. */
		res = fcntl(q->fd, F_GETFL);
		if (res < 0 || fcntl(q->fd, F_SETFL, res & ~O_NONBLOCK)) {
			observed(q, -errno);
			return;
		}
		q->step = PEER_READ;
		return;
	case PEER_READ:
		if (q->type == STORAGE_RBD && res == (int)RECORD_BUF_SIZE)
			q->addrs_err = record_addrs_decode(
				(uint8_t *)q->buf + RECORD_SIZE_MAX,
				RECORD_ADDRS_SIZE, q->addrs, sizeof(q->addrs));
		else if (q->type == STORAGE_RBD)
			q->addrs_err = -ENODATA;
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

	/* Not a late read's byte count or a late statx's 0: an open's fd. */
	if (res >= 0 &&
	    (q->io_step == PEER_OPEN || q->io_step == PEER_OPEN_BUFFERED) &&
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

static void on_rados(struct msg *m, void *ctx)
{
	struct rados_reply *r = container_of(m, struct rados_reply, m);
	struct peer_query *q = (struct peer_query *)(uintptr_t)r->tag;
	int res = r->res;

	if (r->op == RADOS_OPEN)
		snprintf(q->self_addrs, sizeof(q->self_addrs), "%s", r->addrs);
	if (!res && r->op == RADOS_READ) {
		res = r->len < RECORD_BUF_SIZE ? (int)r->len : RECORD_BUF_SIZE;
		memcpy(q->buf, r->data, res);
	}
	if (r->op == RADOS_COMMAND)
		snprintf(q->cmd_status, sizeof(q->cmd_status), "%s", r->status);
	rados_reply_free(r);
	timed_op_complete(&q->op, res);
}

/* An rbd step: a request to the query's link, with its deadline. */
static void rbd_next(struct peer_query *q)
{
	struct loop *l = &q->d->loop;
	uint64_t tag = (uintptr_t)q, timeout = PEER_READ_DEADLINE_MS;
	char oid[STORAGE_RBD_OBJECT_MAX], cmd[256];
	int ret = 0;

	timed_op_begin_remote(l, &q->op);
	switch (q->step) {
	case PEER_CONNECT:
		q->rados = rados_link_open(&q->rados_cfg, &q->d->in, on_rados,
					   tag);
		ret = q->rados ? 0 : -ENOMEM;
		break;
	case PEER_READ:
		storage_rbd_object(q->host, oid, sizeof(oid));
		ret = rados_link_read(q->rados, oid, RECORD_BUF_SIZE, &q->d->in,
				      on_rados, tag);
		break;
	default: /* PEER_BLOCKLIST */
		timeout = PEER_BLOCKLIST_DEADLINE_MS;
		if (!blocklist_cmd(q, cmd, sizeof(cmd)))
			ret = -EINVAL;
		else
			ret = rados_link_command(q->rados, cmd, &q->d->in,
						 on_rados, tag);
		break;
	}
	timed_op_submit(l, &q->op, timeout);
	if (ret)
		timed_op_complete(&q->op, ret);
}

static void peer_next(struct peer_query *q)
{
	struct io_uring_sqe *sqe;
	struct loop *l = &q->d->loop;

	if (l->stopping && q->step == PEER_BLOCKLIST && !q->replied)
		/* Never a success for what was cut short: said, journalled. */
		blocklisted(q, -ECANCELED);
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
	if (q->type == STORAGE_RBD) {
		rbd_next(q);
		return;
	}
	sqe = timed_op_sqe(l, &q->op);
	q->io_step = q->step;
	if (q->step == PEER_READ) {
		io_uring_prep_read(sqe, q->fd, q->buf, q->size, q->offset);
	} else if (q->step == PEER_STATX) {
		/* The cached type is the type: no round trip to the server. */
		io_uring_prep_statx(sqe, q->fd, "",
				    AT_EMPTY_PATH | AT_STATX_DONT_SYNC,
				    STATX_TYPE, &q->stx);
	} else {
		/*
		 * O_NONBLOCK: a FIFO put in the record's place opens at
		 * once, to be refused by its type, instead of holding the
		 * open until its deadline.
		 */
		q->how = (struct open_how){
			.flags = O_RDONLY | O_CLOEXEC | O_NOFOLLOW |
				 O_NONBLOCK | O_NOCTTY |
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

/* The query's own connection: what it waits for is its own deadline. */
static int rbd_prepare(struct peer_query *q, const struct storage *s)
{
	unsigned int op_s = PEER_READ_DEADLINE_MS / 1000;

	if (storage_params_copy(&q->p, &s->p))
		return -ENOMEM;
	q->rados_cfg = (struct rados_link_cfg){
		.conf = q->p.ceph_conf,
		.client = q->p.ceph_client,
		.keyring = q->p.keyring,
		.pool = q->p.pool,
		.ns = q->p.ns,
		.connect_timeout_s = op_s,
		.osd_op_timeout_s = op_s,
		.mon_op_timeout_s = PEER_BLOCKLIST_DEADLINE_MS / 1000,
	};
	q->size = RECORD_BUF_SIZE;
	q->step = PEER_CONNECT;
	return 0;
}

static json_t *peer_start(struct daemon *d, struct ctl_conn *c,
			  struct proto_request *req, enum peer_purpose purpose)
{
	const char *uuid = NULL, *host = NULL;
	uint64_t slot = 0, window = 0;
	struct peer_query *q;
	struct args_err e;
	struct storage *s;
	bool force = false;

	if (args_string(req->arguments, "", "storage", true, &uuid, &e) ||
	    args_string(req->arguments, "", "host", true, &host, &e) ||
	    (purpose != PEER_UNFENCE &&
	     args_uint(req->arguments, "", "window_ms", false, 0,
		       PEER_WINDOW_MAX_MS, &window, &e)) ||
	    (purpose == PEER_FENCE &&
	     args_bool(req->arguments, "", "force", &force, &e)))
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
	if (purpose != PEER_QUERY && s->p.type != STORAGE_RBD) {
		args_fail(
			&e, "", "storage",
			"%s is a %s storage: only a Ceph cluster (an rbd storage) can refuse another host's writes",
			uuid, storage_type_name(s->p.type));
		return invalid(req, &e);
	}
	if (purpose == PEER_FENCE && !strcmp(host, s->host_uuid)) {
		args_fail(&e, "", "host",
			  "%s is this host: a host never blocklists itself",
			  host);
		return invalid(req, &e);
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
	if (!q || posix_memalign(&q->buf, RECORD_SIZE_MAX, RECORD_BUF_SIZE)) {
		free(q);
		return proto_error(PROTO_GENERIC_ERROR, req->id,
				   "out of memory");
	}
	q->d = d;
	q->conn_id = c->id;
	q->id = json_incref(req->id);
	q->type = s->p.type;
	q->window_given = json_object_get(req->arguments, "window_ms") ||
			  purpose == PEER_UNFENCE;
	q->window_ms = window;
	q->purpose = purpose;
	q->force = force;
	q->uid = c->cred.uid;
	q->started_ms = loop_now_ms();
	snprintf(q->host, sizeof(q->host), "%s", host);
	snprintf(q->storage, sizeof(q->storage), "%s", uuid);
	timed_op_init(&q->op, op_done, op_late);
	q->op.idle = op_idle;
	q->timer.cb = timer_done;
	q->fd = q->dirfd = -1;
	if (s->p.type == STORAGE_RBD) {
		if (rbd_prepare(q, s)) {
			peer_free_early(q);
			return proto_error(PROTO_GENERIC_ERROR, req->id,
					   "out of memory");
		}
		list_add_tail(&q->link, &d->peers);
		peer_next(q);
		return NULL;
	} else if (s->p.type == STORAGE_FILE) {
		q->size = RECORD_SIZE_MAX;
		snprintf(q->path, sizeof(q->path), ARM_RECORD_DIR "/%s", host);
		q->dirfd = fcntl(s->target_fd, F_DUPFD_CLOEXEC, 0);
		q->step = PEER_OPEN;
	} else {
		q->size = s->record_size;
		q->offset = s->p.region_offset + slot * RECORD_SLOT_SIZE;
		q->fd = fcntl(s->record_fd, F_DUPFD_CLOEXEC, 0);
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

json_t *cmd_query_peer(struct daemon *d, struct ctl_conn *c,
		       struct proto_request *req)
{
	return peer_start(d, c, req, PEER_QUERY);
}

json_t *cmd_fence_peer(struct daemon *d, struct ctl_conn *c,
		       struct proto_request *req)
{
	return peer_start(d, c, req, PEER_FENCE);
}

json_t *cmd_unfence_peer(struct daemon *d, struct ctl_conn *c,
			 struct proto_request *req)
{
	return peer_start(d, c, req, PEER_UNFENCE);
}

void peer_queries_free(struct daemon *d)
{
	while (!list_empty(&d->peers))
		peer_free(list_entry(d->peers.next, struct peer_query, link));
	/* The loop runs no more: its closes go out now. */
	io_uring_submit(&d->loop.ring);
}
