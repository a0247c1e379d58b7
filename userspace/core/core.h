/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The fencing core: one thread at real-time priority with its own
 * io_uring ring, owning every storage's fencer (heartbeat writes, the
 * timeline's deadlines, kills) and the watchdog. It shares no memory
 * with the control plane: the control plane sends it messages (start,
 * update and stop a fencer, unfence, hold the watchdog, shut down) and
 * it sends back snapshots, events and replies.
 *
 * Nothing on this thread can wait on a storage or on a client:
 *   - heartbeat writes go to io-wq (IOSQE_ASYNC): io_uring would run an
 *     O_DIRECT write to a FUSE or NFS file inline in io_uring_enter;
 *   - closes go to io-wq too (a FLUSH to a dead server blocks);
 *   - victim searches and the VM census run in worker threads (pool.h),
 *     each process's /proc reads on a helper with a deadline
 *     (victims_probe.h); fence hooks are spawned from threads with an
 *     fd table of their own (spawner.h), from a worker only when the
 *     spawner could not start; all of them report by message;
 *   - it never reads the socket, the state file or the journal;
 *   - log lines go to the logger thread (logger.h).
 * Each turn handles what completed, and what it does per completion is
 * bounded (no loop over /proc, no JSON parsing).
 */
#ifndef IOFENCE_CORE_H
#define IOFENCE_CORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "chan.h"
#include "lag.h"
#include "list.h"
#include "loop.h"
#include "pool.h"
#include "watchdog.h"

/* The core measures its lag this often. */
#define CORE_PROBE_MS 10
/* ... and reports its lag and the watchdog this often. */
#define CORE_REPORT_MS 250
/* VM censuses (for the records) under way at once, over all storages. */
#define CORE_CENSUSES_MAX 2
/* CORE_LAG when a lag passes this share of the smallest interval, in %. */
#define CORE_LAG_WARN_PCT 10

/*
 * The control plane's handlers of what the core sends; each runs on the
 * control plane's thread and frees its message.
 */
struct core_ops {
	msg_fn fencer_report; /* struct msg_fencer_report */
	msg_fn unfence_done; /* struct msg_unfence_done */
	msg_fn core_report; /* struct msg_core_report */
	msg_fn core_event; /* struct msg_core_event */
};

struct core {
	struct loop loop;
	const struct core_ops *ops;
	struct chan in; /* from the control plane and the workers */
	struct chan *out; /* the control plane's */
	struct pool pool;
	struct watchdog wd;
	struct list_head fencers; /* live and stopping */
	unsigned int nfencers;
	bool rearm_hung; /* the control plane holds the watchdog */
	unsigned int censuses; /* VM censuses under way */
	bool shutting_down;
	struct msg shutdown; /* sent once, by core_stop() */
	uint64_t shutdown_until_ns;
	int rt_priority;
	pthread_t thread;
	bool running;
	int done_fd; /* an eventfd: the core has let go of everything */

	/* lag */
	struct loop_op probe;
	struct __kernel_timespec probe_ts;
	uint64_t probe_due_ns;
	uint64_t next_report_ns;
	struct lag lag;
	uint64_t lag_event_ns; /* the last CORE_LAG */
	bool wd_failing_told; /* WATCHDOG_FAILING sent, no RESTORED since */
};

/* What the core reports of itself, every CORE_REPORT_MS. */
struct msg_core_report {
	struct msg m;
	struct lag_summary lag;
	bool wd_holding;
	uint64_t wd_pets;
	bool wd_failing; /* the last keepalive's write failed */
	uint64_t wd_failed; /* keepalives that failed */
	int wd_errno; /* the last failure's */
	uint64_t workers, workers_busy, workers_stuck;
};

/* An event that belongs to no storage (CORE_LAG, WATCHDOG_*). */
struct msg_core_event {
	struct msg m;
	const char *name;
	json_t *data;
};

/*
 * Makes the ring. The caller then opens c->wd on it (watchdog_open), and
 * may read c->wd.timeout_ms, which never changes, from then on; the
 * rest of the core is the core thread's once core_start() ran. @out is
 * the control plane's channel.
 */
int core_open(struct core *c, struct chan *out, const struct core_ops *ops,
	      int rt_priority);
/* Starts the thread. */
int core_start(struct core *c);
/* From the control plane. */
void core_send(struct core *c, struct msg *m, msg_fn fn);
/* The watchdog is held while a re-arm hung (the control plane's part). */
void core_hold_rearm(struct core *c, bool hold);
/*
 * A last heartbeat for every fencer, which stays armed for the next
 * daemon (bounded by SHUTDOWN_QUIESCE_MS), the watchdog's magic close unless it holds, then
 * the thread ends and is joined. Safe when the thread never started.
 */
void core_stop(struct core *c);

/* Core side, for fencer.c: a message to the control plane. */
static inline void core_report(struct core *c, struct msg *m, msg_fn fn)
{
	chan_send(c->out, m, fn);
}
void core_watchdog_update(struct core *c);
void core_lag_sample(struct core *c, uint64_t due_ns, uint64_t now_ns);

#endif
