/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Deadlines of the daemon's own operations, as named constants: no
 * operation waits without one, and no bare time figure appears elsewhere.
 * The per-storage timeline (heartbeats, fencing) is derived from each
 * storage's parameters instead, in timeline.h.
 */
#ifndef IOFENCE_DEADLINES_H
#define IOFENCE_DEADLINES_H

/* A setup request without its own timeout_ms. */
#define SETUP_DEFAULT_DEADLINE_MS 30000
/* Looking up one storage's target (statx), which a hung NFS may stall. */
#define SETUP_STEP_DEADLINE_MS 5000
/* Cancelling what is in flight when the daemon stops. */
#define SHUTDOWN_QUIESCE_MS 2000

#endif
