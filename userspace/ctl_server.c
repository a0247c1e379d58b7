// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_server.h"
#include "log.h"
#include "proto.h"

#define LISTEN_BACKLOG 64

static void conn_recv_arm(struct ctl_conn *c);

static void conn_free(struct ctl_conn *c)
{
	struct ctl_out *o, *next;

	for (o = c->out_head; o; o = next) {
		next = o->next;
		free(o->buf);
		free(o);
	}
	list_del(&c->link);
	c->srv->nconns--;
	linebuf_free(&c->in);
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

static void conn_send_kick(struct ctl_conn *c)
{
	struct io_uring_sqe *sqe;

	if (c->send_op.busy || !c->out_head || c->closing)
		return;
	sqe = loop_sqe(c->srv->loop, &c->send_op);
	io_uring_prep_send(sqe, c->fd, c->out_head->buf + c->out_sent,
			   c->out_head->len - c->out_sent, MSG_NOSIGNAL);
}

static void conn_send_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ctl_conn *c = container_of(op, struct ctl_conn, send_op);
	struct ctl_out *o = c->out_head;

	if (res < 0) {
		if (!c->closing)
			pr_debug("connection %llu: send: %s",
				 (unsigned long long)c->id, strerror(-res));
		conn_release(c);
		return;
	}
	c->out_sent += res;
	if (c->out_sent == o->len) {
		c->out_head = o->next;
		if (!c->out_head)
			c->out_tail = NULL;
		c->out_bytes -= o->len;
		c->out_sent = 0;
		free(o->buf);
		free(o);
	}
	if (c->closing ||
	    (!c->out_head && !c->awaiting && c->close_when_drained)) {
		conn_release(c);
		return;
	}
	if (!c->srv->loop->stopping)
		conn_send_kick(c);
}

int ctl_conn_send(struct ctl_conn *c, json_t *msg)
{
	struct ctl_out *o;
	size_t len;
	char *line;

	if (c->closing) {
		json_decref(msg);
		return -EPIPE;
	}
	line = proto_dump_line(msg, &len);
	if (!line)
		return -ENOMEM;
	if (c->out_bytes + len > CTL_MAX_OUTPUT) {
		pr_warn("connection %llu (pid %d): over %d bytes unread, disconnecting a client that stopped reading",
			(unsigned long long)c->id, c->cred.pid, CTL_MAX_OUTPUT);
		free(line);
		ctl_conn_close(c);
		return -ENOBUFS;
	}
	o = malloc(sizeof(*o));
	if (!o) {
		free(line);
		return -ENOMEM;
	}
	*o = (struct ctl_out){ .buf = line, .len = len };
	if (c->out_tail)
		c->out_tail->next = o;
	else
		c->out_head = o;
	c->out_tail = o;
	c->out_bytes += len;
	conn_send_kick(c);
	return 0;
}

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

static void conn_recv_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ctl_conn *c = container_of(op, struct ctl_conn, recv_op);
	size_t len;
	char *line;
	int ret;

	if (res <= 0 || c->closing) {
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
	c->in_cb = true;
	while (!c->closing && !c->close_when_drained &&
	       (ret = linebuf_next(&c->in, &line, &len)) != 0) {
		if (ret < 0) {
			ctl_conn_send(
				c,
				proto_error(
					PROTO_LIMIT_EXCEEDED, NULL,
					"request: line longer than %d bytes; closing the connection",
					PROTO_MAX_LINE));
			ctl_conn_close_after_send(c);
			break;
		}
		if (!blank(line, len))
			c->srv->dispatch(c->srv->ctx, c, line, len);
	}
	c->in_cb = false;
	if (c->closing || c->close_when_drained || c->srv->loop->stopping) {
		/* With output queued or awaited, the send callback closes. */
		if (c->closing || (!c->out_head && !c->awaiting))
			conn_release(c);
		return;
	}
	conn_recv_arm(c);
}

static void conn_recv_arm(struct ctl_conn *c)
{
	struct io_uring_sqe *sqe;
	size_t avail;
	char *buf = linebuf_space(&c->in, &avail);

	sqe = loop_sqe(c->srv->loop, &c->recv_op);
	io_uring_prep_recv(sqe, c->fd, buf, avail, 0);
}

static void refuse(int fd, json_t *msg)
{
	size_t len;
	char *line = proto_dump_line(msg, &len);

	/* A fresh socket's buffer takes one short line without blocking. */
	if (line && send(fd, line, len, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
		pr_debug("refusing a connection: send: %s", strerror(errno));
	free(line);
	close(fd);
}

static void conn_new(struct ctl_server *s, int fd)
{
	socklen_t len = sizeof(struct ucred);
	struct ctl_conn *c;

	if (s->nconns >= s->max_conns) {
		pr_warn("refusing a connection: %u already open", s->nconns);
		refuse(fd, proto_error(PROTO_LIMIT_EXCEEDED, NULL,
				       "connections: at most %u at once",
				       s->max_conns));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (!c || linebuf_init(&c->in, PROTO_MAX_LINE)) {
		free(c);
		refuse(fd,
		       proto_error(PROTO_GENERIC_ERROR, NULL, "out of memory"));
		return;
	}
	c->srv = s;
	c->fd = fd;
	c->id = ++s->next_id;
	c->recv_op.cb = conn_recv_done;
	c->send_op.cb = conn_send_done;
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

static void accept_arm(struct ctl_server *s)
{
	struct io_uring_sqe *sqe = loop_sqe(s->loop, &s->accept_op);

	io_uring_prep_multishot_accept(sqe, s->fd, NULL, NULL, SOCK_CLOEXEC);
}

static void accept_done(struct loop_op *op, int res, unsigned int flags)
{
	struct ctl_server *s = container_of(op, struct ctl_server, accept_op);

	if (res >= 0) {
		if (s->loop->stopping)
			close(res);
		else
			conn_new(s, res);
	} else if (res != -ECANCELED) {
		/* EMFILE and friends pass; the next accept may succeed. */
		pr_warn("accept on %s: %s", s->path, strerror(-res));
	}
	if (!(flags & IORING_CQE_F_MORE) && !s->loop->stopping)
		accept_arm(s);
}

static int mkdir_parents(const char *path)
{
	char dir[PATH_MAX];
	char *p;

	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return -ENAMETOOLONG;
	p = strrchr(dir, '/');
	if (!p || p == dir)
		return 0;
	*p = '\0';
	for (p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(dir, 0755) && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(dir, 0755) && errno != EEXIST)
		return -errno;
	return 0;
}

/* -EADDRINUSE when a live daemon answers on @addr; clears a stale one. */
static int claim_path(const struct sockaddr_un *addr)
{
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int ret = 0;

	if (fd < 0)
		return -errno;
	if (!connect(fd, (const struct sockaddr *)addr, sizeof(*addr)))
		ret = -EADDRINUSE;
	else if (errno == ECONNREFUSED && unlink(addr->sun_path))
		ret = -errno;
	close(fd);
	return ret;
}

static int server_open(struct ctl_server *s, struct loop *l, const char *path,
		       gid_t gid, unsigned int max_conns, json_t *greeting,
		       ctl_dispatch_fn dispatch, void *ctx)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	mode_t old_umask;
	int ret;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	list_init(&s->conns);
	if (strlen(path) >= sizeof(addr.sun_path)) {
		pr_err("socket path %s: longer than %zu bytes", path,
		       sizeof(addr.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	ret = mkdir_parents(path);
	if (ret) {
		pr_err("socket path %s: cannot create its folder: %s", path,
		       strerror(-ret));
		return ret;
	}
	ret = claim_path(&addr);
	if (ret) {
		pr_err("socket path %s: %s", path,
		       ret == -EADDRINUSE ? "another iofenced is serving it" :
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
		return ret;
	}
	s->path = strdup(path);
	s->loop = l;
	s->max_conns = max_conns;
	s->greeting = greeting;
	s->dispatch = dispatch;
	s->ctx = ctx;
	s->accept_op.cb = accept_done;
	accept_arm(s);
	return 0;
}

int ctl_server_open(struct ctl_server *s, struct loop *l, const char *path,
		    gid_t gid, unsigned int max_conns, json_t *greeting,
		    ctl_dispatch_fn dispatch, void *ctx)
{
	int ret = server_open(s, l, path, gid, max_conns, greeting, dispatch,
			      ctx);

	/* The greeting is the server's once it runs, and dropped if not. */
	if (ret)
		json_decref(greeting);
	return ret;
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
		unlink(s->path);
	}
	free(s->path);
	json_decref(s->greeting);
	s->fd = -1;
}
