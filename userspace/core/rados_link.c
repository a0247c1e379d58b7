// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "rados_lib.h"
#include "rados_link.h"
#include "record.h"
#include "thread.h"

struct rados_link {
	struct chan in;
	atomic_uint refs;
	char *conf, *client, *keyring, *pool, *ns;
	unsigned int connect_timeout_s, osd_op_timeout_s, mon_op_timeout_s;
	int rt_priority;
	const struct rados_lib *lib; /* loaded at the first connect */
	rados_t cluster;
	rados_ioctx_t io;
	bool connected;
	bool closing;
	char addrs[RADOS_ADDRS_MAX];
};

struct link_req {
	struct msg m;
	enum rados_op op;
	struct chan *reply;
	msg_fn fn;
	uint64_t tag;
	char *oid; /* write, read; command: the JSON */
	void *buf;
	size_t len; /* write: of buf; read: the most to read */
};

/*
 * librados runs on a link thread, and its library's initialisers too (it
 * is loaded there): Ceph's code expects a thread's usual 8 MiB (its
 * options table alone overflows 256 KiB). Under mlockall(MCL_ONFAULT)
 * only the pages it touches are resident.
 */
#define RADOS_LINK_STACK_SIZE (8 * 1024 * 1024)

static atomic_uint alive;
static atomic_uint pending; /* requests sent, their reply not yet sent */

unsigned int rados_links_alive(void)
{
	return atomic_load(&alive);
}

static bool wait_for(atomic_uint *count, unsigned int wait_ms)
{
	struct timespec tick = { .tv_nsec = 5 * 1000000 };

	for (unsigned int t = 0; atomic_load(count) && t < wait_ms; t += 5)
		nanosleep(&tick, NULL);
	return !atomic_load(count);
}

bool rados_links_quiet(unsigned int wait_ms)
{
	return wait_for(&pending, wait_ms);
}

bool rados_links_closed(unsigned int wait_ms)
{
	return wait_for(&alive, wait_ms);
}

void rados_reply_free(struct rados_reply *r)
{
	if (!r)
		return;
	free(r->data);
	free(r);
}

static void disconnect(struct rados_link *l)
{
	if (l->io)
		l->lib->ioctx_destroy(l->io);
	if (l->cluster)
		l->lib->shutdown(l->cluster);
	l->io = NULL;
	l->cluster = NULL;
	l->connected = false;
}

static int conf_seconds(struct rados_link *l, const char *key, unsigned int s)
{
	char v[16];

	snprintf(v, sizeof(v), "%u", s ? s : 1);
	return l->lib->conf_set(l->cluster, key, v);
}

/*
 * A fresh connection: the timeouts first, so that no step after them can
 * wait longer than the storage allows. Its own logging off: stderr is the
 * logger thread's, and an admin socket per connection would litter
 * /var/run/ceph.
 */
static int connect_cluster(struct rados_link *l, const char **step)
{
	static atomic_bool said_no_lib;
	const char *why;
	int ret;

	*step = "load librados";
	if (!l->lib && !(l->lib = rados_lib(&why))) {
		if (!atomic_exchange(&said_no_lib, true))
			pr_err("rados: cannot load librados: %s", why);
		return -ENOPKG;
	}
	*step = "create";
	ret = l->lib->create2(&l->cluster, "ceph", l->client, 0);
	if (ret) {
		l->cluster = NULL;
		return ret;
	}
	*step = "read the conf";
	ret = l->lib->conf_read_file(l->cluster, l->conf);
	if (ret)
		return ret;
	*step = "configure";
	if ((l->keyring &&
	     (ret = l->lib->conf_set(l->cluster, "keyring", l->keyring))) ||
	    (ret = conf_seconds(l, "client_mount_timeout",
				l->connect_timeout_s)) ||
	    (ret = conf_seconds(l, "rados_osd_op_timeout",
				l->osd_op_timeout_s)) ||
	    (ret = conf_seconds(l, "rados_mon_op_timeout",
				l->mon_op_timeout_s)) ||
	    (ret = l->lib->conf_set(l->cluster, "admin_socket", "")) ||
	    (ret = l->lib->conf_set(l->cluster, "log_to_stderr", "false")) ||
	    (ret = l->lib->conf_set(l->cluster, "err_to_stderr", "false")) ||
	    (ret = l->lib->conf_set(l->cluster, "log_file", "")))
		return ret;
	*step = "connect";
	ret = l->lib->connect(l->cluster);
	if (ret)
		return ret;
	*step = "pool";
	ret = l->lib->ioctx_create(l->cluster, l->pool, &l->io);
	if (ret) {
		l->io = NULL;
		return ret;
	}
	l->lib->ioctx_set_namespace(l->io, l->ns && *l->ns ? l->ns : NULL);
	l->connected = true;
	return 0;
}

static int ensure_connected(struct rados_link *l, const char **step)
{
	char *addrs = NULL;
	int ret;

	if (l->connected)
		return 0;
	disconnect(l);
	ret = connect_cluster(l, step);
	if (ret) {
		disconnect(l);
		return ret;
	}
	if (!l->lib->getaddrs(l->cluster, &addrs) && addrs)
		record_addrs_of_client(addrs, l->addrs, sizeof(l->addrs));
	free(addrs);
	return 0;
}

/* The monitors answer: a heartbeat that only the OSDs see proves little. */
static int mon_ping(struct rados_link *l)
{
	const char *cmd[] = { "{\"prefix\":\"version\"}" };
	char *out = NULL, *st = NULL;
	size_t outlen = 0, stlen = 0;
	int ret;

	ret = l->lib->mon_command(l->cluster, cmd, 1, "", 0, &out, &outlen, &st,
				  &stlen);
	l->lib->buffer_free(out);
	l->lib->buffer_free(st);
	return ret;
}

static int do_write(struct rados_link *l, struct link_req *q,
		    struct rados_reply *r)
{
	rados_completion_t c;
	int ret, mon;

	r->step = "write";
	ret = l->lib->aio_create_completion2(NULL, NULL, &c);
	if (ret)
		return ret;
	ret = l->lib->aio_write_full(l->io, q->oid, c, q->buf, q->len);
	if (!ret) {
		/* The monitors meanwhile: the write is on its way. */
		mon = mon_ping(l);
		l->lib->aio_wait_for_complete(c);
		ret = l->lib->aio_get_return_value(c);
		if (!ret && mon) {
			r->step = "ask the monitors";
			ret = mon;
		}
	}
	l->lib->aio_release(c);
	return ret;
}

static int do_read(struct rados_link *l, struct link_req *q,
		   struct rados_reply *r)
{
	int ret;

	r->step = "read";
	r->data = malloc(q->len ? q->len : 1);
	if (!r->data)
		return -ENOMEM;
	ret = l->lib->read(l->io, q->oid, r->data, q->len, 0);
	if (ret < 0)
		return ret;
	r->len = ret;
	return 0;
}

static int do_command(struct rados_link *l, struct link_req *q,
		      struct rados_reply *r)
{
	const char *cmd[] = { q->oid };
	char *out = NULL, *st = NULL;
	size_t outlen = 0, stlen = 0;
	int ret;

	r->step = "monitor command";
	ret = l->lib->mon_command(l->cluster, cmd, 1, "", 0, &out, &outlen, &st,
				  &stlen);
	if (st)
		snprintf(r->status, sizeof(r->status), "%.*s", (int)stlen, st);
	if (out && outlen && (r->data = malloc(outlen + 1))) {
		memcpy(r->data, out, outlen);
		r->data[outlen] = '\0';
		r->len = outlen;
	}
	l->lib->buffer_free(out);
	l->lib->buffer_free(st);
	/*
	 * A blocklist entry holds once the OSDs have the map that carries
	 * it: this client has it too before the answer goes, and every op it
	 * sends from now on makes an OSD catch up first.
	 */
	if (!ret)
		ret = l->lib->wait_for_latest_osdmap(l->cluster);
	return ret;
}

static void req_free(struct link_req *q)
{
	free(q->oid);
	free(q->buf);
	free(q);
}

static void on_request(struct msg *m, void *ctx)
{
	struct link_req *q = container_of(m, struct link_req, m);
	struct rados_link *l = ctx;
	struct rados_reply *r = calloc(1, sizeof(*r));
	const char *step = NULL;
	int ret;

	if (!r) {
		/* Never silent: the requester's deadline says the rest. */
		pr_crit("rados: out of memory: a %s request goes unanswered",
			q->op == RADOS_WRITE ? "write" : "read");
		req_free(q);
		atomic_fetch_sub(&pending, 1);
		return;
	}
	r->op = q->op;
	r->tag = q->tag;
	ret = ensure_connected(l, &step);
	if (ret) {
		r->step = step;
	} else {
		switch (q->op) {
		case RADOS_WRITE:
			ret = do_write(l, q, r);
			break;
		case RADOS_READ:
			ret = do_read(l, q, r);
			break;
		case RADOS_COMMAND:
			ret = do_command(l, q, r);
			break;
		default:
			break;
		}
	}
	/*
	 * Blocklisted: this connection can never write again. A new one
	 * (a new nonce) can, once the entry is removed.
	 */
	if (ret == -ESHUTDOWN)
		disconnect(l);
	r->res = ret;
	snprintf(r->addrs, sizeof(r->addrs), "%s", l->addrs);
	chan_send(q->reply, &r->m, q->fn);
	req_free(q);
	atomic_fetch_sub(&pending, 1);
}

static void on_close(struct msg *m, void *ctx)
{
	struct rados_link *l = ctx;

	free(m);
	l->closing = true;
}

static void *link_main(void *arg)
{
	struct rados_link *l = arg;
	struct sched_param sp = { .sched_priority = l->rt_priority };
	int ret;

	/* Before librados starts a thread: they all inherit it. */
	if (l->rt_priority &&
	    (ret = pthread_setschedparam(pthread_self(), SCHED_FIFO, &sp)))
		pr_warn("rados: SCHED_FIFO priority %d: %s; its heartbeats compete with the host's load",
			l->rt_priority, strerror(ret));

	while (!l->closing)
		chan_wait(&l->in);
	disconnect(l);
	chan_exit(&l->in);
	free(l->conf);
	free(l->client);
	free(l->keyring);
	free(l->pool);
	free(l->ns);
	free(l);
	atomic_fetch_sub(&alive, 1);
	return NULL;
}

static char *dup_or_null(const char *s, bool *fail)
{
	char *d = s ? strdup(s) : NULL;

	if (s && !d)
		*fail = true;
	return d;
}

static int send_req(struct rados_link *l, enum rados_op op, const char *oid,
		    const void *buf, size_t len, struct chan *reply, msg_fn fn,
		    uint64_t tag)
{
	struct link_req *q = calloc(1, sizeof(*q));
	bool fail = !q;

	if (q) {
		*q = (struct link_req){ .op = op,
					.reply = reply,
					.fn = fn,
					.tag = tag,
					.len = len };
		q->oid = dup_or_null(oid, &fail);
		if (buf && !(q->buf = malloc(len)))
			fail = true;
		else if (buf)
			memcpy(q->buf, buf, len);
	}
	if (fail) {
		if (q)
			req_free(q);
		return -ENOMEM;
	}
	atomic_fetch_add(&pending, 1);
	chan_send(&l->in, &q->m, on_request);
	return 0;
}

struct rados_link *rados_link_open(const struct rados_link_cfg *cfg,
				   struct chan *reply, msg_fn fn, uint64_t tag)
{
	struct rados_link *l = calloc(1, sizeof(*l));
	bool fail = !l;
	pthread_t t;
	int ret;

	if (!l)
		goto err;
	atomic_init(&l->refs, 1);
	l->conf =
		dup_or_null(cfg->conf ? cfg->conf : RADOS_CONF_DEFAULT, &fail);
	l->client = dup_or_null(
		cfg->client ? cfg->client : RADOS_CLIENT_DEFAULT, &fail);
	l->keyring = dup_or_null(cfg->keyring, &fail);
	l->pool = dup_or_null(cfg->pool, &fail);
	l->ns = dup_or_null(cfg->ns, &fail);
	l->connect_timeout_s = cfg->connect_timeout_s;
	l->osd_op_timeout_s = cfg->osd_op_timeout_s;
	l->mon_op_timeout_s = cfg->mon_op_timeout_s;
	l->rt_priority = cfg->rt_priority;
	if (fail || chan_init(&l->in, l) ||
	    send_req(l, RADOS_OPEN, NULL, NULL, 0, reply, fn, tag))
		goto err;
	atomic_fetch_add(&alive, 1);
	ret = thread_start_stack(&t, link_main, l, RADOS_LINK_STACK_SIZE);
	if (ret) {
		atomic_fetch_sub(&alive, 1);
		pr_err("rados: cannot start a link thread: %s", strerror(-ret));
		chan_exit(&l->in);
		goto err_free;
	}
	pthread_detach(t);
	return l;
err:
	pr_err("rados: out of memory for a link");
	if (l && l->in.efd > 0)
		chan_exit(&l->in);
err_free:
	if (l) {
		free(l->conf);
		free(l->client);
		free(l->keyring);
		free(l->pool);
		free(l->ns);
	}
	free(l);
	return NULL;
}

void rados_link_ref(struct rados_link *l)
{
	atomic_fetch_add(&l->refs, 1);
}

void rados_link_unref(struct rados_link *l)
{
	struct msg *m;

	if (!l || atomic_fetch_sub(&l->refs, 1) != 1)
		return;
	/*
	 * Behind every request already queued. Without memory for it the
	 * link stays: a leak, not a request lost.
	 */
	m = calloc(1, sizeof(*m));
	if (!m) {
		pr_crit("rados: out of memory: a link is left open");
		return;
	}
	chan_send(&l->in, m, on_close);
}

int rados_link_write(struct rados_link *l, const char *oid, const void *buf,
		     size_t len, struct chan *reply, msg_fn fn, uint64_t tag)
{
	return send_req(l, RADOS_WRITE, oid, buf, len, reply, fn, tag);
}

int rados_link_read(struct rados_link *l, const char *oid, size_t max,
		    struct chan *reply, msg_fn fn, uint64_t tag)
{
	return send_req(l, RADOS_READ, oid, NULL, max, reply, fn, tag);
}

int rados_link_command(struct rados_link *l, const char *json,
		       struct chan *reply, msg_fn fn, uint64_t tag)
{
	return send_req(l, RADOS_COMMAND, json, NULL, 0, reply, fn, tag);
}
