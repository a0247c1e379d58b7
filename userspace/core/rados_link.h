/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A connection to a Ceph cluster, on a thread of its own.
 *
 * Every librados call may block: connecting and looking a pool up wait
 * for the monitors, a write waits for the OSD, shutting down waits for
 * what is in flight. None of them may run on the fencing core or on the
 * control plane's loop. So each connection (a rados_t and the pool's
 * io context) lives on one link thread, which does one request at a time
 * and answers by message into the requester's channel. A request is a
 * message too: sending one never blocks, and a link stuck in librados
 * holds up only its own queue.
 *
 * Every librados operation has a deadline librados enforces itself
 * (client_mount_timeout, rados_osd_op_timeout, rados_mon_op_timeout, set
 * from the storage's parameters by timeline.h), so a link always answers,
 * late at worst; the requester's own deadline comes first and says
 * -ETIMEDOUT on its side.
 *
 * A link is shared like an fd: each holder (a staged storage, the fencer
 * in the core, a query) takes a reference, and dropping the last one
 * queues the close behind every request already sent, so nothing sent is
 * ever lost and nothing is sent to a freed link. The thread then shuts
 * the connection down and exits on its own: nobody waits for it (a
 * shutdown against a dead cluster takes librados' own timeouts).
 *
 * A librados thread never touches anyone's state: completions are read
 * on the link thread, and what they say crosses as a message.
 */
#ifndef IOFENCE_RADOS_LINK_H
#define IOFENCE_RADOS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chan.h"

/* Ceph's own defaults, as its tools have them. */
#define RADOS_CONF_DEFAULT "/etc/ceph/ceph.conf"
#define RADOS_CLIENT_DEFAULT "client.admin"
#define RADOS_NAME_MAX 127
/* An address list, as rados_getaddrs() and the record carry it. */
#define RADOS_ADDRS_MAX 256

struct rados_link;

struct rados_link_cfg {
	const char *conf; /* a ceph.conf path */
	const char *client; /* "client.<id>" */
	const char *keyring; /* NULL: the conf's or Ceph's default */
	const char *pool;
	const char *ns; /* NULL or "": the default namespace */
	unsigned int connect_timeout_s; /* client_mount_timeout */
	unsigned int osd_op_timeout_s; /* rados_osd_op_timeout */
	unsigned int mon_op_timeout_s; /* rados_mon_op_timeout */
	/*
	 * A heartbeat link runs at the core's SCHED_FIFO priority, and so do
	 * the threads librados starts under it (they inherit it), as the
	 * io-wq workers of a file heartbeat do; 0: SCHED_OTHER (queries).
	 */
	int rt_priority;
};

enum rados_op {
	RADOS_OPEN, /* connected, pool looked up */
	RADOS_WRITE, /* an object replaced whole, then the monitors asked */
	RADOS_READ,
	RADOS_COMMAND, /* a monitor command */
};

/* A link's answer; the receiver owns it and frees it with rados_reply_free. */
struct rados_reply {
	struct msg m;
	enum rados_op op;
	uint64_t tag; /* the request's */
	int res; /* 0 or a negative errno */
	const char *step; /* what failed: "connect", "pool", "write" ... */
	char *data; /* read: the object; command: the monitor's output */
	size_t len;
	char status[256]; /* command: the monitor's status line */
	char addrs[RADOS_ADDRS_MAX]; /* open: this client's addresses */
};

void rados_reply_free(struct rados_reply *r);

/*
 * Starts a link thread that connects with @cfg and answers RADOS_OPEN
 * into @reply (@fn runs on its owner). Returns the link, holding one
 * reference, or NULL (out of memory, no thread: said in the log). The
 * reply comes whatever happens; on failure the link stays usable only
 * for rados_link_unref().
 */
struct rados_link *rados_link_open(const struct rados_link_cfg *cfg,
				   struct chan *reply, msg_fn fn, uint64_t tag);
void rados_link_ref(struct rados_link *l);
void rados_link_unref(struct rados_link *l);

/*
 * Replaces object @oid with @len bytes of @buf (copied), then asks the
 * monitors for their version: a heartbeat proves both the OSDs and the
 * monitors answer. A connection the cluster blocklisted (-ESHUTDOWN) is
 * dropped, and the next request connects anew.
 */
int rados_link_write(struct rados_link *l, const char *oid, const void *buf,
		     size_t len, struct chan *reply, msg_fn fn, uint64_t tag);
/* Reads up to @max bytes of object @oid; -ENOENT when there is none. */
int rados_link_read(struct rados_link *l, const char *oid, size_t max,
		    struct chan *reply, msg_fn fn, uint64_t tag);
/* A monitor command, JSON as the ceph tool sends it. */
int rados_link_command(struct rados_link *l, const char *json,
		       struct chan *reply, msg_fn fn, uint64_t tag);

/*
 * A stopping daemon: a link still in librados answers into a channel
 * whenever librados gives up. rados_links_quiet() waits up to @wait_ms
 * for every request to be answered (false: some are not, and the
 * channels they answer into must stay open); rados_links_closed() for
 * every link thread to end (false: some still run inside librados, and
 * the process must end without running exit handlers under them).
 */
unsigned int rados_links_alive(void);
bool rados_links_quiet(unsigned int wait_ms);
bool rados_links_closed(unsigned int wait_ms);

#endif
