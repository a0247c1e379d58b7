/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The timeline contract of one storage (DESIGN.md, "The timeline
 * contract"), in one place: every figure the daemon acts on or publishes is
 * derived here from the storage's parameters by a named function.
 *
 * All times are in ms after t_ok, the completion of the last heartbeat
 * write that succeeded (the record peers can see). With I = interval_ms,
 * T = timeout_ms, G = kill_grace_ms and W = the watchdog's timeout:
 *
 *   t_ok + I         the next heartbeat is due; a write not done by then
 *                    makes the storage late (HEARTBEAT_LATE) and attempts
 *                    go on, each bounded by io_timeout_ms
 *   t_ok + T         the storage is lost: fence (FENCE_FIRED); victims
 *                    are sent SIGKILL through their pidfds
 *   t_ok + T + G     victims still alive or writes still in flight:
 *                    with "force" stop petting the watchdog
 *                    (FENCE_ESCALATED)
 *   t_ok + T + G + W the host has been reset by the watchdog
 *
 * The published fence deadline is therefore T + G + W for "force": no
 * write of this host reaches the storage after it. "kill-only" and
 * "permissive" cannot promise that (a victim in D state outlives any
 * kill), so they publish no deadline (0) and peers must not rely on one.
 * Nothing extends these figures: not block evidence, not load.
 */
#ifndef IOFENCE_TIMELINE_H
#define IOFENCE_TIMELINE_H

#include <stdint.h>

#include "storage.h"

/* Parameter bounds and defaults, as the setup command documents them. */
#define TL_INTERVAL_MIN_MS 100
#define TL_INTERVAL_MAX_MS 600000
#define TL_INTERVAL_DEFAULT_MS 2000
#define TL_IO_TIMEOUT_MIN_MS 10
#define TL_ATTEMPTS_MIN 1
#define TL_ATTEMPTS_MAX 100
#define TL_ATTEMPTS_DEFAULT 5
#define TL_TIMEOUT_MAX_MS 3600000
#define TL_KILL_GRACE_MAX_MS 600000
#define TL_KILL_GRACE_DEFAULT_MS 5000
/* The watchdog's timeout when no device tells us its own. */
#define TL_WATCHDOG_DEFAULT_MS 60000

/* T: from t_ok to the fence. */
uint64_t timeline_timeout_ms(const struct storage_params *p);
/* From t_ok to HEARTBEAT_LATE. */
uint64_t timeline_late_ms(const struct storage_params *p);
/* From t_ok to escalation (stop petting the watchdog). */
uint64_t timeline_escalate_ms(const struct storage_params *p);
/* The published deadline after t_ok, or 0 when the strategy gives none. */
uint64_t timeline_fence_deadline_ms(const struct storage_params *p,
				    uint64_t watchdog_ms);

#endif
