// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_server.h"
#include "deadlines.h"
#include "json_put.h"
#include "paths.h"
#include "log.h"
#include "proto.h"

#define LISTEN_BACKLOG 64

static void conn_recv_arm(struct ctl_conn *c);

/*
 * What a connection holds for its lifetime (its line buffer, its queued
 * output) is mapped, not taken from the heap: the daemon runs under
 * mlockall(), where free pages inside the heap cannot be given back
 * (MADV_DONTNEED fails on locked pages), and a flood of connections would
 * leave its peak as the daemon's RSS for good. munmap always returns them.
 */
#define CHUNK_DATA (CTL_CHUNK_SIZE - sizeof(struct ctl_chunk))
/*
 * The line buffer starts at a page and grows as a line needs, up to the
 * longest line, its newline and a NUL: an idle connection costs 4 KiB.
 */
#define INBUF_MIN 4096
#define INBUF_CAP_MAX (PROTO_MAX_LINE + 1)
#define INBUF_MAX (((INBUF_CAP_MAX + 1) + 4095) & ~4095ul)

/* The mapping behind a line buffer of capacity @cap. */
static size_t inbuf_size(size_t cap)
{
	return cap == INBUF_CAP_MAX ? INBUF_MAX : cap + 1;
}

static void *map(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	return p == MAP_FAILED ? NULL : p;
}

static struct ctl_chunk *chunk_get(struct ctl_server *s)
{
	struct ctl_chunk *k = s->spare;

	if (k) {
		s->spare = k->next;
		s->nspare--;
	} else {
		k = map(CTL_CHUNK_SIZE);
		if (!k)
			return NULL;
	}
	k->next = NULL;
	k->len = 0;
	return k;
}

static void chunk_put(struct ctl_server *s, struct ctl_chunk *k)
{
	if (s->nspare >= CTL_CHUNK_CACHE) {
		munmap(k, CTL_CHUNK_SIZE);
		return;
	}
	k->next = s->spare;
	s->spare = k;
	s->nspare++;
}

/* linebuf's layout, in a mapping of its own. */
static int inbuf_init(struct linebuf *lb)
{
	*lb = (struct linebuf){ .buf = map(INBUF_MIN), .cap = INBUF_MIN - 1 };
	return lb->buf ? 0 : -ENOMEM;
}

/*
 * A full buffer without a newline: room for a longer line, or -EMSGSIZE
 * when it holds the longest already. Never with a recv in flight (a full
 * buffer has none).
 */
static int inbuf_grow(struct linebuf *lb)
{
	size_t size = inbuf_size(lb->cap), bigger = 2 * size;
	void *p;

	if (lb->cap == INBUF_CAP_MAX)
		return -EMSGSIZE;
	if (bigger > INBUF_MAX)
		bigger = INBUF_MAX;
	p = mremap(lb->buf, size, bigger, MREMAP_MAYMOVE);
	if (p == MAP_FAILED)
		return -ENOMEM;
	lb->buf = p;
	lb->cap = bigger == INBUF_MAX ? INBUF_CAP_MAX : bigger - 1;
	return 0;
}

static void out_free(struct ctl_conn *c)
{
	struct ctl_chunk *k, *next;

	for (k = c->out_head; k; k = next) {
		next = k->next;
		chunk_put(c->srv, k);
	}
	c->out_head = c->out_tail = NULL;
	c->out_bytes = c->out_sent = 0;
}

static void conn_free(struct ctl_conn *c)
{
	out_free(c);
	list_del(&c->link);
	c->srv->nconns--;
	if (c->paused)
		c->srv->npaused--;
	if (c->queued)
		list_del(&c->ready);
	c->srv->freed = true;
	munmap(c->in.buf, inbuf_size(c->in.cap));
	close(c->fd);
	pr_debug("connection %llu closed", (unsigned long long)c->id);
	free(c);
}

/* Frees once the kernel holds none of the connection's buffers. */
static void conn_maybe_free(struct ctl_conn *c)
{
	if (c->closing && !c->recv_op.busy && !c->send_op.busy && !c->in_cb)
		conn_free(c);
}

void ctl_conn_close(struct ctl_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	/* Ends the recv and send in flight; their callbacks free. */
	shutdown(c->fd, SHUT_RDWR);
	conn_maybe_free(c);
}

/* From a callback of @c: close it, or free it if already closing. */
static void conn_release(struct ctl_conn *c)
{
	if (c->closing)
		conn_maybe_free(c);
	else
		ctl_conn_close(c);
}

void ctl_conn_close_after_send(struct ctl_conn *c)
{
	c->close_when_drained = true;
	if (!c->out_head && !c->awaiting)
		ctl_conn_close(c);
}

/* One sendmsg for as much of the queue as CTL_SEND_IOV chunks hold. */
static void conn_send_kick(struct ctl_conn *c)
{
	struct io_uring_sqe *sqe;
	struct ctl_chunk *k;
	size_t off = c->out_sent;
	unsigned int n = 0;

	if (c->send_op.busy || !c->out_head || c->closing || c->in_cb)
		return;
	for (k = c->out_head; k && n < CTL_SEND_IOV; k = k->next, off = 0)
		c->iov[n++] = (struct iovec){ .iov_base = k->data + off,
					      .iov_len = k->len - off };
	c->msg = (struct msghdr){ .msg_iov = c->iov, .msg_iovlen = n };
	sqe = loop_sqe(c->srv->loop, &c->send_op);
	io_uring_prep_sendmsg(sqe, c->fd, &c->msg, MSG_NOSIGNAL);
}

/* Drops the first @n queued bytes, which the kernel has taken. */
static void out_consume(struct ctl_conn *c, size_t n)
{
	c->out_bytes -= n;
	while (n) {
		struct ctl_chunk *k = c->out_head;
		size_t left = k->len - c->out_sent;

		if (n < left) {
			c->out_sent += n;
			return;
		}
		n -= left;
		c->out_sent = 0;
		c->out_head = k->next;
		if (!c->out_head)
			c->out_tail = NULL;
		chunk_put(c->srv, k);
	}
}

static void conn_pause(struct ctl_conn *c, bool pause)
{
	if (c->paused == pause)
		return;
	c->paused = pause;
	if (pause)
		c->srv->npaused++;
	else
		c->srv->npaused--;
	pr_debug("connection %llu: %s", (unsigned long long)c->id,
		 pause ? "not reading its replies; paused" : "resumed");
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

/*
 * Hands the buffered lines to the dispatcher until none is left, the
 * output passes the pause mark or the turn's share is used; the rest
 * wait in the buffer, in order. Returns true when a share ran out.
 */
static bool conn_dispatch(struct ctl_conn *c)
{
	struct ctl_server *s = c->srv;
	unsigned int n = 0;
	size_t len;
	char *line;
	int ret;

	c->in_cb = true;
	while (!c->paused && !c->closing && !c->close_when_drained &&
	       n < CTL_CONN_LINES && s->budget > 0 &&
	       (ret = linebuf_next(&c->in, &line, &len)) != 0) {
		if (ret == -EMSGSIZE) {
			ret = inbuf_grow(&c->in);
			if (!ret)
				break; /* read on into the room made */
		}
		n++;
		s->budget--;
		if (ret < 0) {
			ctl_conn_send(
				c,
				ret == -EMSGSIZE ?
					proto_error(
						PROTO_LIMIT_EXCEEDED, NULL,
						"request: line longer than %d bytes; closing the connection",
						PROTO_MAX_LINE) :
					proto_error(
						PROTO_GENERIC_ERROR, NULL,
						"request: out of memory for a line this long; closing the connection"));
			ctl_conn_close_after_send(c);
			break;
		}
		if (blank(line, len))
			continue;
		c->active_ms = loop_now_ms();
		s->dispatch(s->ctx, c, line, len);
	}
	c->in_cb = false;
	return n == CTL_CONN_LINES || s->budget <= 0;
}

/*
 * Waits for the next turn, behind those already waiting. One whose last
 * replies still fill its socket (it is slow to read them, or does not)
 * waits behind all those that read theirs: a crowd that never reads
 * delays a client that does by a turn, not by a round of the crowd.
 */
static void conn_queue(struct ctl_conn *c)
{
	struct ctl_server *s = c->srv;
	int unread = 0;

	if (!c->queued) {
		if (ioctl(c->fd, SIOCOUTQ, &unread))
			unread = 0;
		list_add_tail(&c->ready,
			      unread >= CTL_SNDBUF ? &s->unread : &s->ready);
		c->queued = true;
	}
	if (!s->turn_op.busy)
		io_uring_prep_nop(loop_sqe(s->loop, &s->turn_op));
}

/*
 * After any I/O of @c: resume it once its output drained, dispatch what
 * it sent, send what that made, and read on unless it is paused, done or
 * the loop is stopping.
 */
static void conn_continue(struct ctl_conn *c)
{
	bool more;

	if (c->paused && c->out_bytes < CTL_RESUME_OUTPUT)
		conn_pause(c, false);
	more = conn_dispatch(c);
	if (c->closing) {
		conn_maybe_free(c);
		return;
	}
	if (c->close_when_drained && !c->out_head && !c->awaiting) {
		ctl_conn_close(c);
		return;
	}
	conn_send_kick(c);
	if (c->paused || c->close_when_drained || c->srv->loop->stopping)
		return;
	/* Read on only once what was read is dispatched. */
	if (more)
		conn_queue(c);
	else if (!c->recv_op.busy)
		conn_recv_arm(c);
}

/* Those waiting on @list, each once, in order, as far as the budget goes. */
static void turn_serve(struct ctl_server *s, struct list_head *list)
{
	struct list_head *tail = list->prev;
	bool last = false;

	/* One that queues itself again waits for the next turn. */
	while (!last && s->budget > 0 && !list_empty(list)) {
		struct ctl_conn *c =
			list_entry(list->next, struct ctl_conn, ready);

		last = &c->ready == tail;
		list_del(&c->ready);
		c->queued = false;
		conn_continue(c);
	}
}

static void turn_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ctl_server *s = container_of(op, struct ctl_server, turn_op);

	if (s->loop->stopping)
		return;
	s->budget = CTL_TURN_LINES;
	turn_serve(s, &s->ready);
	turn_serve(s, &s->unread);
	if ((!list_empty(&s->ready) || !list_empty(&s->unread)) &&
	    !s->turn_op.busy)
		io_uring_prep_nop(loop_sqe(s->loop, &s->turn_op));
}

static void conn_send_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ctl_conn *c = container_of(op, struct ctl_conn, send_op);

	if (res < 0) {
		if (!c->closing)
			pr_debug("connection %llu: send: %s",
				 (unsigned long long)c->id, strerror(-res));
		conn_release(c);
		return;
	}
	if (res > 0)
		c->active_ms = loop_now_ms();
	out_consume(c, res);
	if (c->closing || c->srv->loop->stopping) {
		conn_release(c);
		return;
	}
	conn_continue(c);
}

static int enc_grow(struct ctl_enc *e, size_t n)
{
	size_t cap = e->cap ? e->cap : 4096;
	char *buf;

	while (cap < e->len + n)
		cap *= 2;
	buf = realloc(e->buf, cap);
	if (!buf)
		return -ENOMEM;
	e->buf = buf;
	e->cap = cap;
	return 0;
}

/* Room for @n more bytes of @e. */
static inline int enc_reserve(struct ctl_enc *e, size_t n)
{
	return e->len + n <= e->cap ? 0 : enc_grow(e, n);
}

static inline int enc_put(struct ctl_enc *e, const void *p, size_t n)
{
	if (enc_reserve(e, n))
		return -ENOMEM;
	memcpy(e->buf + e->len, p, n);
	e->len += n;
	return 0;
}

static inline int enc_char(struct ctl_enc *e, char ch)
{
	if (enc_reserve(e, 1))
		return -ENOMEM;
	e->buf[e->len++] = ch;
	return 0;
}

static int enc_int(struct ctl_enc *e, json_int_t v)
{
	char buf[24], *p = buf + sizeof(buf);
	unsigned long long u = v < 0 ? -(unsigned long long)v :
				       (unsigned long long)v;

	do
		*--p = '0' + u % 10;
	while (u /= 10);
	if (v < 0)
		*--p = '-';
	return enc_put(e, p, buf + sizeof(buf) - p);
}

/* The length of the UTF-8 sequence at @s (at most @n bytes), 0 if bad. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	size_t len;
	uint32_t cp;

	if (s[0] < 0xc2 || s[0] > 0xf4)
		return 0;
	len = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : 4;
	if (len > n)
		return 0;
	cp = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/* Bytes a string cannot carry as they are: 1 escaped, 2 UTF-8 to check. */
static const unsigned char enc_special[256] = {
	[0 ... 0x1f] = 1,
	['"'] = 1,
	['\\'] = 1,
	[0x80 ... 0xff] = 2,
};

/* As jansson escapes: ", \, and control characters; UTF-8 as it is. */
static int enc_string(struct ctl_enc *e, const char *str, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, run;
	char *o;

	/* The worst case, \u00XX for each byte, then no more checks. */
	if (enc_reserve(e, 6 * n + 2))
		return -ENOMEM;
	o = e->buf + e->len;
	*o++ = '"';
	while (i < n) {
		unsigned char ch;

		for (run = i; i < n && !enc_special[s[i]]; i++)
			;
		memcpy(o, s + run, i - run);
		o += i - run;
		if (i == n)
			break;
		ch = s[i];
		if (enc_special[ch] == 2) {
			size_t len = utf8_seq(s + i, n - i);

			if (!len)
				return -EILSEQ;
			memcpy(o, s + i, len);
			o += len;
			i += len;
			continue;
		}
		*o++ = '\\';
		switch (ch) {
		case '"':
		case '\\':
			*o++ = ch;
			break;
		case '\b':
			*o++ = 'b';
			break;
		case '\f':
			*o++ = 'f';
			break;
		case '\n':
			*o++ = 'n';
			break;
		case '\r':
			*o++ = 'r';
			break;
		case '\t':
			*o++ = 't';
			break;
		default:
			memcpy(o, "u00", 3);
			o[3] = hex[ch >> 4];
			o[4] = hex[ch & 15];
			o += 5;
		}
		i++;
	}
	*o++ = '"';
	e->len = o - e->buf;
	return 0;
}

/* Replies never nest this deep; deeper is left to jansson. */
#define ENC_MAX_DEPTH 32

/*
 * Compact JSON, byte for byte what json_dumps(JSON_COMPACT) writes, but
 * straight into one reused buffer: jansson's dump checks each object and
 * array for reference loops through a hash table keyed by its address
 * printed with snprintf, and grows a fresh buffer per message, which made
 * it half the daemon's time under query-status load.
 */
static int enc_value(struct ctl_enc *e, json_t *v, int depth)
{
	const char *lit;
	int ret = 0;

	if (depth > ENC_MAX_DEPTH)
		return -E2BIG;
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		bool first = true;

		if (enc_char(e, '{'))
			return -ENOMEM;
		for (void *it = json_object_iter(v); it && !ret;
		     it = json_object_iter_next(v, it)) {
			if (!first && enc_char(e, ','))
				return -ENOMEM;
			first = false;
			ret = enc_string(e, json_object_iter_key(it),
					 json_object_iter_key_len(it));
			if (!ret)
				ret = enc_char(e, ':');
			if (!ret)
				ret = enc_value(e, json_object_iter_value(it),
						depth + 1);
		}
		return ret ? ret : enc_char(e, '}');
	}
	case JSON_ARRAY:
		if (enc_char(e, '['))
			return -ENOMEM;
		for (size_t i = 0; i < json_array_size(v) && !ret; i++) {
			if (i && enc_char(e, ','))
				return -ENOMEM;
			ret = enc_value(e, json_array_get(v, i), depth + 1);
		}
		return ret ? ret : enc_char(e, ']');
	case JSON_STRING:
		return enc_string(e, json_string_value(v),
				  json_string_length(v));
	case JSON_INTEGER:
		return enc_int(e, json_integer_value(v));
	case JSON_REAL:
		return -ENOTSUP; /* none today; jansson knows their format */
	case JSON_TRUE:
		lit = "true";
		break;
	case JSON_FALSE:
		lit = "false";
		break;
	default:
		lit = "null";
		break;
	}
	return enc_put(e, lit, strlen(lit));
}

/* @msg (borrowed) as one line in s->enc. */
static int enc_line(struct ctl_server *s, json_t *msg)
{
	struct ctl_enc *e = &s->enc;
	char *line;
	size_t len;
	int ret;

	e->len = 0;
	ret = enc_value(e, msg, 0);
	if (!ret)
		return enc_char(e, '\n');
	if (ret == -ENOMEM)
		return ret;
	/* What this encoder does not take, jansson does, or fails alike. */
	e->len = 0;
	line = proto_dump_line(json_incref(msg), &len);
	if (!line)
		return -ENOMEM;
	ret = enc_put(e, line, len);
	free(line);
	return ret;
}

static int out_append(struct ctl_conn *c, const char *p, size_t n)
{
	struct ctl_chunk *k = c->out_tail;

	c->out_bytes += n;
	while (n) {
		size_t room = k ? CHUNK_DATA - k->len : 0;

		if (!room) {
			k = chunk_get(c->srv);
			if (!k)
				return -ENOMEM;
			if (c->out_tail)
				c->out_tail->next = k;
			else
				c->out_head = k;
			c->out_tail = k;
			room = CHUNK_DATA;
		}
		if (room > n)
			room = n;
		/* Past what a send in flight covers: the kernel never reads it. */
		memcpy(k->data + k->len, p, room);
		k->len += room;
		p += room;
		n -= room;
	}
	return 0;
}

int ctl_conn_send(struct ctl_conn *c, json_t *msg)
{
	struct ctl_server *s = c->srv;
	int ret;

	if (c->closing) {
		json_decref(msg);
		return -EPIPE;
	}
	if (!msg)
		return -ENOMEM;
	ret = enc_line(s, msg);
	json_decref(msg);
	if (ret)
		return ret;
	/* One message, however long, always fits an empty queue. */
	if (c->out_bytes && c->out_bytes + s->enc.len > CTL_MAX_OUTPUT) {
		pr_warn("connection %llu (pid %d): over %d bytes unread, disconnecting a client that stopped reading",
			(unsigned long long)c->id, c->cred.pid, CTL_MAX_OUTPUT);
		s->dropped_slow++;
		ctl_conn_close(c);
		return -ENOBUFS;
	}
	if (out_append(c, s->enc.buf, s->enc.len)) {
		pr_err("connection %llu: out of memory for a reply; disconnecting",
		       (unsigned long long)c->id);
		ctl_conn_close(c);
		return -ENOMEM;
	}
	/* A big one-off message does not pin its buffer. */
	if (s->enc.cap > CTL_PAUSE_OUTPUT) {
		free(s->enc.buf);
		s->enc = (struct ctl_enc){ 0 };
	}
	if (c->out_bytes >= CTL_PAUSE_OUTPUT)
		conn_pause(c, true);
	conn_send_kick(c);
	return 0;
}

static void conn_recv_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ctl_conn *c = container_of(op, struct ctl_conn, recv_op);

	if (res <= 0 || c->closing || c->srv->loop->stopping) {
		if (res < 0 && res != -ECANCELED && !c->closing)
			pr_debug("connection %llu: recv: %s",
				 (unsigned long long)c->id, strerror(-res));
		/*
		 * EOF (perhaps only a half-close): answer what is queued and
		 * what is still being worked on, then close.
		 */
		if (res == 0 && !c->closing && (c->out_head || c->awaiting))
			c->close_when_drained = true;
		else
			conn_release(c);
		return;
	}
	linebuf_commit(&c->in, res);
	conn_continue(c);
}

static void conn_recv_arm(struct ctl_conn *c)
{
	struct io_uring_sqe *sqe;
	size_t avail;
	char *buf = linebuf_space(&c->in, &avail);

	sqe = loop_sqe(c->srv->loop, &c->recv_op);
	io_uring_prep_recv(sqe, c->fd, buf, avail, 0);
}

/* One short line, if the socket's buffer takes it at once; else none. */
static void tell(int fd, json_t *msg)
{
	size_t len;
	char *line = proto_dump_line(msg, &len);

	if (line && send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		pr_debug("telling a client why it is let go: send: %s",
			 strerror(errno));
	free(line);
}

static void refuse(int fd, json_t *msg)
{
	tell(fd, msg);
	close(fd);
}

static void conn_new(struct ctl_server *s, int fd)
{
	socklen_t len = sizeof(struct ucred);
	struct ctl_conn *c;

	if (s->nconns >= s->max_conns) {
		/* The first of a burst now, the rest summed up by the sweep. */
		s->refused_full++;
		if (!s->refused_unlogged++)
			pr_warn("refusing a connection: %u already open",
				s->nconns);
		refuse(fd, proto_error(PROTO_LIMIT_EXCEEDED, NULL,
				       "connections: at most %u at once",
				       s->max_conns));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || inbuf_init(&c->in)) {
		free(c);
		refuse(fd,
		       proto_error(PROTO_GENERIC_ERROR, NULL, "out of memory"));
		return;
	}
	c->srv = s;
	c->fd = fd;
	c->id = ++s->next_id;
	c->active_ms = loop_now_ms();
	c->recv_op.cb = conn_recv_done;
	c->send_op.cb = conn_send_done;
	if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &(int){ CTL_SNDBUF },
		       sizeof(int)))
		pr_debug("connection %llu: SO_SNDBUF: %s",
			 (unsigned long long)c->id, strerror(errno));
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c->cred, &len)) {
		/* Unknown peers get no rights: uid -1 matches nobody. */
		c->cred = (struct ucred){ .pid = 0, .uid = -1, .gid = -1 };
	}
	list_add_tail(&c->link, &s->conns);
	s->nconns++;
	pr_debug("connection %llu from pid %d uid %d",
		 (unsigned long long)c->id, c->cred.pid, c->cred.uid);
	ctl_conn_send(c, json_incref(s->greeting));
	conn_recv_arm(c);
}

/* Individual log lines per sweep; the rest of a burst is one line. */
#define SWEEP_LOG_MAX 4

static void drop_idle(struct ctl_conn *c, unsigned int logged)
{
	struct ctl_server *s = c->srv;
	unsigned int secs = s->idle_timeout_ms / 1000;

	if (logged < SWEEP_LOG_MAX)
		pr_warn("connection %llu (pid %d): no request for %u s; closing it",
			(unsigned long long)c->id, c->cred.pid, secs);
	s->dropped_idle++;
	/* Told why, if that cannot land in the middle of other output. */
	if (!c->out_head)
		tell(c->fd,
		     proto_error(
			     PROTO_TIMEOUT, NULL,
			     "idle: no request for %u s; closing the connection",
			     secs));
	ctl_conn_close(c);
}

static void sweep_arm(struct ctl_server *s)
{
	struct io_uring_sqe *sqe = loop_sqe(s->loop, &s->sweep_op);

	s->sweep_ts = (struct __kernel_timespec){
		.tv_sec = CTL_SWEEP_MS / 1000,
		.tv_nsec = (CTL_SWEEP_MS % 1000) * 1000000L,
	};
	io_uring_prep_timeout(sqe, &s->sweep_ts, 0, 0);
}

/*
 * Once a second, one pass over the connections for all their idle
 * timeouts (no timer each), and memory freed by closed connections goes
 * back to the system, so that a flood leaves no lasting RSS behind.
 */
static void sweep_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ctl_server *s = container_of(op, struct ctl_server, sweep_op);
	uint64_t now = loop_now_ms();
	struct list_head *pos, *tmp;
	unsigned int dropped = 0;

	if (s->loop->stopping)
		return;
	list_for_each_safe(pos, tmp, &s->conns) {
		struct ctl_conn *c = list_entry(pos, struct ctl_conn, link);

		if (c->closing || c->subscribed)
			continue;
		/* A command still running for it: its wait starts after. */
		if (c->awaiting)
			c->active_ms = now;
		else if (s->idle_timeout_ms &&
			 now - c->active_ms >= s->idle_timeout_ms)
			drop_idle(c, dropped++);
	}
	if (dropped > SWEEP_LOG_MAX)
		pr_warn("closed %u more connections that sent no request for %llu s",
			dropped - SWEEP_LOG_MAX,
			(unsigned long long)s->idle_timeout_ms / 1000);
	if (s->refused_unlogged > 1)
		pr_warn("refused %llu more connections: %u already open",
			(unsigned long long)s->refused_unlogged - 1, s->nconns);
	s->refused_unlogged = 0;
	if (s->freed) {
		s->freed = false;
		malloc_trim(0);
	}
	sweep_arm(s);
}

void ctl_server_stats_put(json_t *o, const struct ctl_server *s)
{
	const struct list_head *pos;
	unsigned int subscribers = 0;

	for (pos = s->conns.next; pos != &s->conns; pos = pos->next)
		subscribers +=
			list_entry(pos, struct ctl_conn, link)->subscribed;
	json_put_int(o, "connections", s->nconns);
	json_put_int(o, "max_connections", s->max_conns);
	json_put_int(o, "subscribers", subscribers);
	json_put_int(o, "paused", s->npaused);
	json_put_int(o, "dropped_slow", (json_int_t)s->dropped_slow);
	json_put_int(o, "dropped_idle", (json_int_t)s->dropped_idle);
	json_put_int(o, "refused_full", (json_int_t)s->refused_full);
}

static void accept_arm(struct ctl_server *s)
{
	struct io_uring_sqe *sqe = loop_sqe(s->loop, &s->accept_op);

	io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_CLOEXEC);
}

static void accept_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ctl_server *s = container_of(op, struct ctl_server, accept_op);

	if (res >= 0) {
		/* Taken in the instant before the accept was cancelled. */
		if (s->loop->stopping || !s->accepting)
			close(res);
		else
			conn_new(s, res);
	} else if (res != -ECANCELED) {
		/* EMFILE and friends pass; the next accept may succeed. */
		pr_warn("accept on %s: %s", s->path, strerror(-res));
	}
	if (!(flags & IORING_CQE_F_MORE) && !s->loop->stopping && s->accepting)
		accept_arm(s);
}

/*
 * This daemon holds the socket's lock (instance_lock.c), so no live
 * iofenced serves it. Seen once: a restart right behind a SIGKILL found
 * the dead daemon's socket answering, its locks free; most likely the
 * accept its io_uring had armed held it until the ring's teardown, which
 * the kernel runs after the process is gone. It gets as long to go as a
 * lock does (INSTANCE_WAIT_MS).
 */

/*
 * Something accepts connections on @addr (1), a socket file is there
 * that nothing serves (0), or neither (-1: no file, or one bind() will
 * say what is wrong with).
 */
static int answers(const struct sockaddr_un *addr)
{
	/* A listener whose backlog is full would hold a blocking connect. */
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	int ret;

	if (fd < 0)
		return -1;
	if (!connect(fd, (const struct sockaddr *)addr, sizeof(*addr)) ||
	    errno == EAGAIN)
		ret = 1;
	else
		ret = errno == ECONNREFUSED ? 0 : -1;
	close(fd);
	return ret;
}

/* -EADDRINUSE when something still answers on @addr; clears a stale one. */
static int claim_path(const struct sockaddr_un *addr)
{
	int ret = answers(addr);

	for (int waited = 0; ret == 1 && waited < INSTANCE_WAIT_MS;
	     waited += INSTANCE_POLL_MS) {
		usleep(INSTANCE_POLL_MS * 1000);
		ret = answers(addr);
	}
	if (ret == 1)
		return -EADDRINUSE;
	if (!ret && unlink(addr->sun_path))
		return -errno;
	return 0;
}

/* Binds @path itself: mode 0660, group @gid (root's when -1). */
static int bind_path(struct ctl_server *s, const char *path, gid_t gid)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	mode_t old_umask;
	int ret;

	if (strlen(path) >= sizeof(addr.sun_path)) {
		pr_err("socket path %s: longer than %zu bytes", path,
		       sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	ret = mkdir_parents(path, 0755);
	if (ret) {
		pr_err("socket path %s: cannot create its folder: %s", path,
		       strerror(-ret));
		return ret;
	}
	ret = claim_path(&addr);
	if (ret) {
		pr_err("socket path %s: %s", path,
		       ret == -EADDRINUSE ?
			       "something still accepts connections on it" :
			       strerror(-ret));
		return ret;
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		return -errno;
	/* The socket is never, even briefly, open to others. */
	old_umask = umask(0117);
	ret = bind(s->fd, (struct sockaddr *)&addr, sizeof(addr)) ? -errno : 0;
	umask(old_umask);
	/* Without a socket group, root's group: nobody else gets in. */
	if (!ret && chown(path, 0, gid == (gid_t)-1 ? 0 : gid))
		ret = -errno;
	if (!ret && listen(s->fd, LISTEN_BACKLOG))
		ret = -errno;
	if (ret) {
		pr_err("socket %s: %s", path, strerror(-ret));
		close(s->fd);
		s->fd = -1;
	}
	return ret;
}

/*
 * A socket the service manager made: its owner, mode and backlog are the
 * socket unit's, and it is neither changed nor removed here. Who may
 * connect is still worth a word when it is not what this daemon would
 * have made.
 */
static void check_inherited(const char *path, gid_t gid)
{
	struct stat st;

	if (path[0] != '/' || stat(path, &st))
		return;
	/* connect() needs write permission on the socket file. */
	if (st.st_mode & S_IWOTH)
		pr_warn("socket %s (passed by the service manager): mode %04o lets anyone connect; SocketMode=0660 would not",
			path, (unsigned int)(st.st_mode & 07777));
	if (gid != (gid_t)-1 && st.st_gid != gid)
		pr_warn("socket %s (passed by the service manager): its group is %u, not --socket-group's %u; set SocketGroup= in the socket unit",
			path, (unsigned int)st.st_gid, (unsigned int)gid);
}

static int server_open(struct ctl_server *s, struct loop *l, const char *path,
		       int fd, gid_t gid, unsigned int max_conns,
		       json_t *greeting, ctl_dispatch_fn dispatch, void *ctx)
{
	int ret;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	list_init(&s->conns);
	list_init(&s->ready);
	list_init(&s->unread);
	if (fd >= 0) {
		s->fd = fd;
		s->inherited = true;
		check_inherited(path, gid);
	} else {
		ret = bind_path(s, path, gid);
		if (ret)
			return ret;
	}
	s->path = strdup(path);
	s->loop = l;
	s->max_conns = max_conns;
	s->greeting = greeting;
	s->dispatch = dispatch;
	s->ctx = ctx;
	s->accept_op.cb = accept_done;
	s->sweep_op.cb = sweep_done;
	s->turn_op.cb = turn_done;
	s->budget = CTL_TURN_LINES;
	s->accepting = true;
	accept_arm(s);
	sweep_arm(s);
	return 0;
}

int ctl_server_open(struct ctl_server *s, struct loop *l, const char *path,
		    int fd, gid_t gid, unsigned int max_conns, json_t *greeting,
		    ctl_dispatch_fn dispatch, void *ctx)
{
	int ret = server_open(s, l, path, fd, gid, max_conns, greeting,
			      dispatch, ctx);

	/* The greeting is the server's once it runs, and dropped if not. */
	if (ret)
		json_decref(greeting);
	return ret;
}

void ctl_server_stop_accepting(struct ctl_server *s)
{
	struct io_uring_sync_cancel_reg reg = {
		.addr = (uint64_t)(uintptr_t)&s->accept_op,
		.fd = -1,
		.timeout = { .tv_sec = -1, .tv_nsec = -1 },
	};
	int ret;

	if (s->fd < 0 || !s->accepting)
		return;
	s->accepting = false;
	if (!s->accept_op.busy)
		return;
	/*
	 * Synchronous: once it returns no connection is taken from the
	 * backlog any more. Its last completion comes through the loop.
	 */
	ret = io_uring_register_sync_cancel(&s->loop->ring, &reg);
	if (ret < 0 && ret != -ENOENT && ret != -EALREADY)
		pr_warn("socket %s: cannot stop accepting: %s", s->path,
			strerror(-ret));
}

void ctl_server_set_idle_timeout(struct ctl_server *s, unsigned int seconds)
{
	s->idle_timeout_ms = (uint64_t)seconds * 1000;
}

struct ctl_conn *ctl_server_find(struct ctl_server *s, uint64_t id)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &s->conns) {
		struct ctl_conn *c = list_entry(pos, struct ctl_conn, link);

		if (c->id == id && !c->closing)
			return c;
	}
	return NULL;
}

/* Call after loop_quiesce(): no op of ours is in flight any more. */
void ctl_server_close(struct ctl_server *s)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &s->conns) {
		struct ctl_conn *c = list_entry(pos, struct ctl_conn, link);

		c->recv_op.busy = c->send_op.busy = false;
		c->closing = true;
		conn_free(c);
	}
	if (s->fd >= 0) {
		close(s->fd);
		/* The service manager's socket stays: it holds the backlog. */
		if (!s->inherited)
			unlink(s->path);
	}
	free(s->path);
	free(s->enc.buf);
	s->enc = (struct ctl_enc){ 0 };
	while (s->spare) {
		struct ctl_chunk *k = s->spare;

		s->spare = k->next;
		munmap(k, CTL_CHUNK_SIZE);
	}
	s->nspare = 0;
	json_decref(s->greeting);
	s->fd = -1;
}
