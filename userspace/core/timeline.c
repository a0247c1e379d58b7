// SPDX-License-Identifier: GPL-2.0-only
#include "timeline.h"

uint64_t timeline_next_write_ms(const struct storage_params *p)
{
	return p->interval_ms;
}

uint64_t timeline_retry_ms(const struct storage_params *p)
{
	return p->interval_ms / TL_RETRIES_PER_INTERVAL;
}

uint64_t timeline_late_ms(const struct storage_params *p)
{
	/* The write due at t_ok + I had its whole deadline to succeed. */
	return timeline_next_write_ms(p) + p->io_timeout_ms;
}

uint64_t timeline_evidence_poll_ms(const struct storage_params *p)
{
	uint64_t ms = p->io_timeout_ms / 2;

	return ms < TL_EVIDENCE_POLL_MIN_MS ? TL_EVIDENCE_POLL_MIN_MS : ms;
}

uint64_t timeline_stuck_write_ms(const struct storage_params *p)
{
	/* As long as a heartbeat write has before it counts as failed. */
	return p->io_timeout_ms;
}

uint64_t timeline_timeout_ms(const struct storage_params *p)
{
	/* Parsing puts interval × attempts here when the caller gave none. */
	return p->timeout_ms;
}

uint64_t timeline_escalate_ms(const struct storage_params *p)
{
	return timeline_timeout_ms(p) + p->kill_grace_ms;
}

uint64_t timeline_fence_deadline_ms(const struct storage_params *p,
				    uint64_t watchdog_ms)
{
	if (p->strategy != FENCE_FORCE || !watchdog_ms)
		return 0;
	return timeline_escalate_ms(p) + watchdog_ms;
}

unsigned int timeline_rados_op_timeout_s(const struct storage_params *p)
{
	/* librados counts whole seconds: D, rounded up, never 0 ("none"). */
	return (p->io_timeout_ms + 999) / 1000;
}

unsigned int timeline_rados_connect_timeout_s(const struct storage_params *p)
{
	/*
	 * A reconnect (after a blocklist entry is removed) is part of a
	 * heartbeat attempt, so it has the attempt's deadline too.
	 */
	return timeline_rados_op_timeout_s(p);
}
