/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The timeline contract of one storage (Documentation/design.md, "The
 * timeline"), in one place: every figure the daemon acts on or publishes is
 * derived here from the storage's parameters by a named function.
 *
 * All times are in ms after t_ok, the start of the last heartbeat write
 * that succeeded (the record peers can see). The starting design counted
 * from its completion; the start is earlier by the write's latency and is never
 * later than the moment peers saw the record, even when the daemon sees
 * the completion late (CPU starvation, SIGSTOP): every deadline here is
 * at or before the one peers compute. With I = interval_ms,
 * D = io_timeout_ms (D <= I), T = timeout_ms (T >= I), G = kill_grace_ms
 * and W = the watchdog's timeout:
 *
 *   t_ok + I         the next heartbeat write starts; it has D to succeed
 *   t_ok + I + D     no success yet: the storage is late (HEARTBEAT_LATE).
 *                    A failed write is retried after I / 4 (at once when
 *                    it turns late), never with a write still in flight
 *   t_ok + T         the storage is lost: fence (FENCE_FIRED); victims
 *                    are sent SIGKILL through their pidfds
 *   t_ok + T + G     victims still alive: with "force" stop petting the
 *                    watchdog (FENCE_ESCALATED)
 *   t_ok + T + G + W the watchdog has reset the host
 *
 * The published fence deadline is therefore T + G + W for "force": no
 * write of this host reaches the storage after it. "kill-only" and
 * "permissive" cannot promise that (a victim in D state outlives any
 * kill), and neither can "force" without a watchdog: they publish no
 * deadline (0), and peers must not rely on one.
 *
 * rbd storages follow the same timeline. A heartbeat there is a RADOS
 * write of the record object and then a monitor round trip (the monitors
 * must answer too: a host they cannot reach can neither be blocklisted by
 * its peers nor learn that it was). librados enforces deadlines of its own,
 * in whole seconds: every operation of the connection, connecting again
 * included, gives up after D rounded up to a second. So a write that
 * missed its deadline D (late at t_ok + I + D, as for any storage) is out
 * of librados by D + 1 s at most after it started, and the next attempt
 * goes then: a dead cluster is retried, never waited for. The fence at
 * t_ok + T does not depend on librados at all: it is the core's timer.
 * A write the cluster refuses because it blocklisted this host fences at
 * once: the cluster has already cut the host off, and its VMs with it.
 *
 * A daemon that restarts takes t_ok from its own record when it was
 * written on this boot, so a restart never moves a deadline that peers
 * computed. Nothing else extends these figures: not block evidence, not
 * load.
 *
 * The kernel's evidence (iofence-bpf(7)) can only bring things forward.
 * The core looks at it every D / 2: a write on the storage's devices in
 * flight for longer than D, or TL_ERROR_BURST failed completions since
 * the last look, turns a healthy storage late at once (HEARTBEAT_LATE
 * with "evidence") and starts the extra attempt then, not at t_ok + I + D.
 * The fence stays at t_ok + T. Once fenced, the victims dead, writes
 * still in flight on those devices mean some may still land: with
 * "force" that escalates as a survivor does.
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
/* Failed writes are retried this many times per interval. */
#define TL_RETRIES_PER_INTERVAL 4
/* Failed block completions, between two looks, that turn a storage late. */
#define TL_ERROR_BURST 3
/* The kernel's evidence is looked at no less often than this. */
#define TL_EVIDENCE_POLL_MIN_MS 10

/* From t_ok to the next heartbeat write. */
uint64_t timeline_next_write_ms(const struct storage_params *p);
/* From a failed write's start to the next attempt. */
uint64_t timeline_retry_ms(const struct storage_params *p);
/* From t_ok to HEARTBEAT_LATE. */
uint64_t timeline_late_ms(const struct storage_params *p);
/* How often the core looks at the kernel's evidence. */
uint64_t timeline_evidence_poll_ms(const struct storage_params *p);
/* A write on the storage's devices in flight this long is stuck. */
uint64_t timeline_stuck_write_ms(const struct storage_params *p);
/* T: from t_ok to the fence. */
uint64_t timeline_timeout_ms(const struct storage_params *p);
/* From t_ok to escalation (stop petting the watchdog). */
uint64_t timeline_escalate_ms(const struct storage_params *p);
/* rbd: librados' own deadline for each operation of the heartbeat link. */
unsigned int timeline_rados_op_timeout_s(const struct storage_params *p);
/* rbd: and for connecting (client_mount_timeout), at arm time and after. */
unsigned int timeline_rados_connect_timeout_s(const struct storage_params *p);
/*
 * The published deadline after t_ok, or 0 when there is none (strategy,
 * or @watchdog_ms 0: no watchdog).
 */
uint64_t timeline_fence_deadline_ms(const struct storage_params *p,
				    uint64_t watchdog_ms);

#endif
