/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Deadlines of the daemon's own operations, as named constants: no
 * operation waits without one, and no bare time figure appears elsewhere.
 * The per-storage timeline (heartbeats, fencing) is derived from each
 * storage's parameters instead, in timeline.h.
 */
#ifndef IOFENCE_DEADLINES_H
#define IOFENCE_DEADLINES_H

/* A setup or teardown without its own timeout_ms, and its bounds. */
#define SETUP_DEFAULT_DEADLINE_MS 30000
#define SETUP_MIN_DEADLINE_MS 100
#define SETUP_MAX_DEADLINE_MS 600000
/* One step of arming a storage (open, mkdir, statx), within the above. */
#define ARM_STEP_DEADLINE_MS 5000
/*
 * rbd: connecting to the cluster, within the request's deadline too. It
 * runs on the storage's link thread, never a loop's, and what it waits
 * for is not a storage that may hang but a cluster that may answer late:
 * the first connection loads librados and runs its initialisers (tens
 * of MiB read from disk, slower still under a sanitizer), then hunts for
 * a monitor. 5 s refused, about once in five runs of the sanitizer
 * build, a test cluster that armed in 0.04-0.19 s on every other run
 * (librados' threads then ran at the link's SCHED_FIFO priority, which
 * ASan's allocator stalls, config.h; the margin stays for a loaded host).
 */
#define ARM_CONNECT_DEADLINE_MS 15000
/* One stage of writing the state file (open, write, fsync, rename). */
#define PERSIST_STEP_DEADLINE_MS 5000
/* One read of a peer's record (query-peer), and the longest window. */
#define PEER_READ_DEADLINE_MS 5000
#define PEER_WINDOW_MAX_MS 600000
/* What a query-peer adds to its window: two opens and two reads. */
#define PEER_READS_MARGIN_MS (4 * PEER_READ_DEADLINE_MS)
/*
 * fence-peer and unfence-peer: one monitor command (osd blocklist), which
 * returns once the new OSD map is committed. A blocklist entry expires
 * only long after anyone would remember it (about ten years): a fence
 * lasts until unfence-peer lifts it.
 */
#define PEER_BLOCKLIST_DEADLINE_MS 10000
#define PEER_BLOCKLIST_EXPIRE_S 315360000
/* What fence-peer adds: connecting, reading, a command per address. */
#define PEER_BLOCKLIST_MARGIN_MS \
	(2 * PEER_READ_DEADLINE_MS + 4 * PEER_BLOCKLIST_DEADLINE_MS)
/* A fence hook runs at most this long, then it is killed. */
#define FENCE_HOOK_DEADLINE_MS 10000
/*
 * A stored storage that failed to re-arm (its storage was lost while the
 * daemon was down) is tried again this often, so that one that comes
 * back is guarded again (and a watchdog hold for it ends) unasked.
 */
#define REARM_RETRY_MS 10000
/* The VM list a heartbeat record carries is at most this old. */
#define VM_CENSUS_MS 5000
/*
 * What a starting daemon grants the one before it to be gone, polling
 * every INSTANCE_POLL_MS: a stopping daemon lets go of its locks last,
 * moments after its socket; a killed one's socket may answer a little
 * after the process is gone (ctl_server.c). Longer, it is refused.
 */
#define INSTANCE_WAIT_MS 2000
#define INSTANCE_POLL_MS 50
/* The clean-shutdown records when the daemon stops. */
#define SHUTDOWN_QUIESCE_MS 2000
/*
 * Then what is still in flight is cancelled, and waited for this long:
 * what a cancel ends completes at once; what it cannot end is stuck on a
 * dead storage, and waiting longer would not help.
 */
#define CANCEL_QUIESCE_MS 500

#endif
