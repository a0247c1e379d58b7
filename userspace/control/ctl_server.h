/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control socket: accepts connections, frames their input into lines,
 * hands each line to the dispatcher and queues replies and events for
 * sending, all through the loop. No client can make the daemon hold
 * memory or spend its time on it without bound:
 *
 * - a connection whose queued output passes CTL_PAUSE_OUTPUT (its client
 *   is not reading) is no longer read from, and the lines it already sent
 *   wait, in order, until its output drains below CTL_RESUME_OUTPUT;
 * - one whose queued output would pass CTL_MAX_OUTPUT (a subscriber that
 *   stopped reading) is closed;
 * - one that sends no request for the idle timeout while nothing is owed
 *   to it is closed (subscribers are exempt: waiting is their job).
 */
#ifndef IOFENCE_CTL_SERVER_H
#define IOFENCE_CTL_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <jansson.h>

#include "linebuf.h"
#include "list.h"
#include "loop.h"

/* Unsent bytes a client may leave queued before it is disconnected. */
#define CTL_MAX_OUTPUT (1024 * 1024)
/* Queued output at which a connection stops being read from... */
#define CTL_PAUSE_OUTPUT (32 * 1024)
/* ...and below which it is read from again. */
#define CTL_RESUME_OUTPUT (8 * 1024)
/*
 * The socket's own send buffer (SO_SNDBUF; the kernel doubles it): with
 * the pause mark, all the output a client that never reads can make the
 * daemon produce, and so all the work it can ask for.
 */
#define CTL_SNDBUF (8 * 1024)
/* Connections subscribed to events at once. */
#define CTL_MAX_SUBSCRIBERS 32
/* How often idle connections are looked for. */
#define CTL_SWEEP_MS 1000

/*
 * Lines dispatched per turn of the loop, in all and of one connection at
 * a time: the rest wait their turn, first come first served, so that no
 * crowd of clients holds the loop for longer than a few requests' time
 * and one that pipelines many requests delays the others by a few of its
 * own, not by all of them.
 */
#define CTL_TURN_LINES 64
#define CTL_CONN_LINES 16

/*
 * Output is queued in mapped chunks of this size (header included), sent
 * several at once; up to CTL_CHUNK_CACHE spare ones are kept for reuse.
 */
#define CTL_CHUNK_SIZE (16 * 1024)
#define CTL_CHUNK_CACHE 64
#define CTL_SEND_IOV 16

struct ctl_server;
struct ctl_conn;

/* Called for each complete, non-blank line. */
typedef void (*ctl_dispatch_fn)(void *ctx, struct ctl_conn *c, char *line,
				size_t len);

struct ctl_chunk {
	struct ctl_chunk *next;
	size_t len;
	char data[];
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
	struct list_head ready; /* on srv->ready or unread: lines left */
	bool queued;
	struct ctl_chunk *out_head, *out_tail;
	size_t out_bytes; /* queued, not yet sent */
	size_t out_sent; /* of out_head */
	/* What the send in flight covers; the kernel reads it. */
	struct iovec iov[CTL_SEND_IOV];
	struct msghdr msg;
	uint64_t active_ms; /* last request, awaited reply or output sent */
	unsigned int awaiting; /* replies a command will send later */
	bool closing;
	bool close_when_drained; /* once nothing is queued or awaited */
	bool in_cb; /* dispatching its lines: do not free, send after */
	bool paused; /* output over the pause mark: not read from */
	bool subscribed;
};

/* A message being serialised, before it is queued. */
struct ctl_enc {
	char *buf;
	size_t len, cap;
};

struct ctl_server {
	struct loop *loop;
	int fd;
	char *path;
	bool inherited; /* passed by the service manager: not ours to remove */
	bool accepting;
	struct loop_op accept_op;
	struct loop_op sweep_op;
	struct loop_op turn_op; /* a NOP: the next turn's lines */
	/*
	 * Connections waiting for their turn: those that read their
	 * replies first, then those whose replies pile up unread.
	 */
	struct list_head ready, unread;
	int budget; /* lines left to dispatch in this turn */
	struct __kernel_timespec sweep_ts;
	struct list_head conns;
	unsigned int nconns;
	unsigned int max_conns;
	unsigned int npaused;
	uint64_t next_id;
	uint64_t idle_timeout_ms; /* 0: never */
	ctl_dispatch_fn dispatch;
	void *ctx;
	json_t *greeting;
	struct ctl_enc enc;
	struct ctl_chunk *spare; /* chunks kept for reuse */
	unsigned int nspare;
	bool freed; /* a connection was freed since the last sweep */
	uint64_t dropped_slow; /* over CTL_MAX_OUTPUT */
	uint64_t dropped_idle;
	uint64_t refused_full; /* over max_conns */
	uint64_t refused_unlogged; /* since the last refusal logged */
	uint64_t refused_log_ms;
};

/*
 * Serves @fd, a listening socket the service manager passed (socket
 * activation; @path is its name, for the log), as it is; or, with @fd
 * -1, binds @path with mode 0660 and group @gid (or root's when @gid is
 * -1), refusing to take over a socket that another daemon still serves.
 */
int ctl_server_open(struct ctl_server *s, struct loop *l, const char *path,
		    int fd, gid_t gid, unsigned int max_conns, json_t *greeting,
		    ctl_dispatch_fn dispatch, void *ctx);
/*
 * Takes no more connections: those that come wait in the socket's
 * backlog, which a passed socket keeps for the next daemon. At the start
 * of a stop.
 */
void ctl_server_stop_accepting(struct ctl_server *s);
/* Closes every connection and the socket; removes it unless passed. */
void ctl_server_close(struct ctl_server *s);
/*
 * Closes connections that sent no complete request for @seconds while
 * nothing is owed to them; subscribers are exempt. 0: never.
 */
void ctl_server_set_idle_timeout(struct ctl_server *s, unsigned int seconds);
/*
 * The server's counters, for query-status: connections open, their limit,
 * subscribers, connections paused now, and since the start those dropped
 * for not reading or for idleness and those refused because all were in
 * use. Put into @o (json_put.h).
 */
void ctl_server_stats_put(json_t *o, const struct ctl_server *s);

struct ctl_conn *ctl_server_find(struct ctl_server *s, uint64_t id);

/* Queues @msg (stolen) on @c; returns 0 or a negative errno. */
int ctl_conn_send(struct ctl_conn *c, json_t *msg);
/* Sends what is queued and awaited, then closes. */
void ctl_conn_close_after_send(struct ctl_conn *c);
void ctl_conn_close(struct ctl_conn *c);

#endif
