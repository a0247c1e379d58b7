/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The fencer of one armed storage: it writes the heartbeat record every
 * interval and walks the timeline contract (timeline.h) from the last
 * write that succeeded:
 *
 *   healthy --(no success by t_ok + late)--> late   HEARTBEAT_LATE
 *   late    --(a write succeeds)-----------> healthy HEARTBEAT_RESTORED
 *   any     --(no success by t_ok + T)-----> fenced  FENCE_FIRED
 *
 * A fence kills the victims (strategy permitting), runs the fence hook,
 * and waits kill_grace for them to die: FENCE_COMPLETED, or with "force"
 * and survivors FENCE_ESCALATED, which stops the watchdog's petting.
 * Heartbeats go on while fenced; when one succeeds again the storage is
 * STORAGE_RESTORED but stays fenced (and its new victims are killed)
 * until `unfence` or a teardown: a host that lost its storage never
 * silently resumes.
 *
 * Never more than one heartbeat write is in flight: a write stuck in the
 * kernel counts as failed at its deadline, and the next attempt waits
 * until it has left the kernel.
 *
 * The fencer belongs to its storage and follows it through an update in
 * place (fencer_move). When the storage is freed the fencer writes a
 * last, clean-shutdown record if it can, and frees itself once nothing of
 * it is in the kernel any more.
 */
#ifndef IOFENCE_FENCER_H
#define IOFENCE_FENCER_H

#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

struct daemon;
struct storage;
struct fencer;

/*
 * Starts heartbeats for the just committed @s (s->hb is set); @fence is
 * the fence state a previous run persisted for it, or NULL.
 */
int fencer_start(struct daemon *d, struct storage *s, json_t *fence);
/* An update in place: @to takes over @from's fencer and its history. */
void fencer_move(struct storage *from, struct storage *to);
/* From storage_free(): a last record, then gone once idle. */
void fencer_stop(struct fencer *f);
/* At shutdown, before the loop quiesces: the clean-shutdown records. */
void fencer_shutdown(struct fencer *f);

/* A heartbeat write is in the kernel. */
bool fencer_writing(const struct fencer *f);
/* The persisted fence state (NULL when not fenced). */
json_t *fencer_state_json(const struct fencer *f);
/* query-status: the heartbeat and fence state, with absolute figures. */
json_t *fencer_status_json(const struct fencer *f);
/* With "force" and a fence that could not finish: no more petting. */
bool fencer_holds_watchdog(const struct fencer *f);
/*
 * `unfence`: lifts a fence once heartbeats succeed again. 0, or -EINVAL
 * (not fenced) / -EAGAIN (the storage is still lost) with a message.
 */
int fencer_unfence(struct fencer *f, uid_t uid, char *err, size_t len);

#endif
