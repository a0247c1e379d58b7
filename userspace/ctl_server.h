/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control socket: accepts connections, frames their input into lines,
 * hands each line to the dispatcher and queues replies and events for
 * sending, all through the loop. A connection whose unsent output passes
 * CTL_MAX_OUTPUT (a client that stopped reading) is closed, so no client
 * can make the daemon hold memory or stall.
 */
#ifndef IOFENCE_CTL_SERVER_H
#define IOFENCE_CTL_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <jansson.h>

#include "linebuf.h"
#include "list.h"
#include "loop.h"

/* Unsent bytes a client may leave queued before it is disconnected. */
#define CTL_MAX_OUTPUT (4 * 1024 * 1024)
/* Connections subscribed to events at once. */
#define CTL_MAX_SUBSCRIBERS 32

struct ctl_server;
struct ctl_conn;

/* Called for each complete, non-blank line. */
typedef void (*ctl_dispatch_fn)(void *ctx, struct ctl_conn *c, char *line,
				size_t len);

struct ctl_out {
	struct ctl_out *next;
	size_t len;
	char *buf;
};

struct ctl_conn {
	struct ctl_server *srv;
	struct list_head link;
	uint64_t id; /* never reused: replies find their caller by it */
	int fd;
	struct ucred cred;
	struct linebuf in;
	struct loop_op recv_op;
	struct loop_op send_op;
	struct ctl_out *out_head, *out_tail;
	size_t out_bytes;
	size_t out_sent; /* of out_head */
	unsigned int awaiting; /* replies a command will send later */
	bool closing;
	bool close_when_drained; /* once nothing is queued or awaited */
	bool in_cb; /* inside its recv callback: do not free yet */
	bool subscribed;
};

struct ctl_server {
	struct loop *loop;
	int fd;
	char *path;
	struct loop_op accept_op;
	struct list_head conns;
	unsigned int nconns;
	unsigned int max_conns;
	uint64_t next_id;
	ctl_dispatch_fn dispatch;
	void *ctx;
	json_t *greeting;
	uint64_t idle_timeout_ms; /* 0: never */
};

/*
 * Binds @path with mode 0660 and group @gid (or root's when @gid is -1),
 * refusing to take over a socket that another daemon still serves.
 */
int ctl_server_open(struct ctl_server *s, struct loop *l, const char *path,
		    gid_t gid, unsigned int max_conns, json_t *greeting,
		    ctl_dispatch_fn dispatch, void *ctx);
void ctl_server_close(struct ctl_server *s);
/*
 * Closes connections that sent no complete request for @seconds while
 * nothing is owed to them; subscribers are exempt. 0: never.
 */
void ctl_server_set_idle_timeout(struct ctl_server *s, unsigned int seconds);

struct ctl_conn *ctl_server_find(struct ctl_server *s, uint64_t id);

/* Queues @msg (stolen) on @c; returns 0 or a negative errno. */
int ctl_conn_send(struct ctl_conn *c, json_t *msg);
/* Sends what is queued and awaited, then closes. */
void ctl_conn_close_after_send(struct ctl_conn *c);
void ctl_conn_close(struct ctl_conn *c);

#endif
