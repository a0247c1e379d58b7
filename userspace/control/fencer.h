/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A storage's fencer as the control plane sees it. The fencer itself
 * runs in the fencing core (fencer.c, core.h); the control plane starts,
 * updates and stops it by messages and keeps the snapshot the core sends
 * after every change, from which it answers queries and writes the state
 * file. Nothing here waits for the core.
 *
 * See fencer.c for the heartbeat and fence state machine.
 */
#ifndef IOFENCE_FENCER_H
#define IOFENCE_FENCER_H

#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#include "fencer_msg.h"

struct daemon;
struct storage;

struct fencer_link {
	struct daemon *d;
	struct storage *s;
	uint64_t id;
	struct hb_snap snap;
	bool have_snap; /* the core has reported at least once */
	json_t *victims; /* of the fence, as last reported */
	/* what a fence would kill now: the last census; NULL before one */
	json_t *victims_now;
	unsigned int victims_now_more; /* found but not listed */
	uint64_t victims_now_ns; /* when that census began, monotonic */
	struct scan_report victims_now_scan; /* its skips */
	/*
	 * query-status's view of the snapshot, built at the first query
	 * after a report: a status poller asks far more often than the
	 * core reports. Only the figures that age are set per query.
	 */
	json_t *status;
};

/*
 * Starts heartbeats for the just committed @s (s->hb is set); @fence is
 * the fence state a previous run persisted for it, or NULL. Only
 * fails for want of memory or an fd.
 */
int fencer_start(struct daemon *d, struct storage *s, json_t *fence);
/* An update in place: @to takes over @from's fencer and its history. */
void fencer_move(struct storage *from, struct storage *to);
/* From storage_free(): the core writes a last record, then lets go. */
void fencer_stop(struct fencer_link *f);

/*
 * The sequence number of the record a heartbeat write had in the kernel
 * at the last snapshot, 0 when none had (records count from 1). The
 * snapshot is the core's, as of its last report: that write may be over.
 */
uint64_t fencer_writing(const struct fencer_link *f);
/* The persisted fence state (NULL when not fenced). */
json_t *fencer_state_json(const struct fencer_link *f);
/*
 * query-status: the heartbeat and fence state, with absolute figures.
 * A reference to an object the next call changes: encode it first.
 */
json_t *fencer_status_json(struct fencer_link *f);
/*
 * `unfence`: asks the core, which answers connection @conn_id's request
 * @req_id (stolen) later.
 */
void fencer_unfence(struct fencer_link *f, uid_t uid, uint64_t conn_id,
		    json_t *req_id);
/*
 * `unfence` of a storage that the kernel fenced (its dead man's switch)
 * while the core did not: lifted here once the core's last snapshot says
 * its heartbeats succeed. Returns the reply (@req_id is borrowed).
 */
json_t *fencer_unfence_kernel(struct fencer_link *f, uid_t uid, json_t *req_id);

/* The core's messages to the control plane (core_ops). */
void fencer_on_report(struct msg *m, void *ctx);
void fencer_on_unfence_done(struct msg *m, void *ctx);

#endif
