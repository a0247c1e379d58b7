/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The kernel side as the daemon sees it. The tracker loads the BPF
 * programs and pins them and their maps under the pin dir, by names a
 * person reads (slots, devices, records, daemon, ...; link_rq_issue, ...).
 * It gives each armed storage a slot, found again by uuid so that a
 * restarted daemon keeps a storage's slot; keeps the device map in step
 * with what each storage sits on or under; registers the thread that
 * makes the ring the fencing core heartbeats through; and reads a slot's
 * evidence for status.
 *
 * Pinned programs outlive the daemon: a daemon that starts while the
 * same programs run (an earlier one crashed) takes them and their maps
 * over as they are, so nothing counted in flight is lost; other pins
 * (another build, another layout) are replaced.
 *
 * All of it runs on the control plane. Nothing here touches a storage:
 * the device set comes from sysfs, and the one ioctl that would (a loop
 * device's backing device: the kernel stats the backing file, which may
 * hang) runs on a thread of its own, whose answer comes back through the
 * control plane's channel. When BPF is unavailable the tracker is
 * inactive, says so in one log line, and every call is a no-op.
 */
#ifndef IOFENCE_TRACKER_H
#define IOFENCE_TRACKER_H

#include <stdbool.h>
#include <stdint.h>
#include <linux/types.h>
#include <jansson.h>

#include "iofence.h"

struct iofence_bpf;
struct bpf_link;
struct chan;
struct storage;
struct tracker_slot;

/* The programs, in the order they are attached. */
#define TRACKER_PROGS 13

struct tracker {
	struct iofence_bpf *skel;
	struct bpf_link *links[TRACKER_PROGS];
	char *pin_dir;
	const char *sysfs_root; /* "/sys" */
	bool active;
	bool heartbeats; /* the io_uring programs run: kernel-seen heartbeats */
	bool took_over; /* the programs of an earlier daemon kept running */
	/* The LSM programs run: fenced slots refuse writes (iofence.h). */
	bool write_fence;
	char fence_why[320]; /* why not, for the log */
	char off_why[512]; /* !active after tracker_open(): why */
	const char *submit_tp; /* io_uring_submit_req's older name, or NULL */
	struct chan *reply; /* the control plane's: loop lookups answer there */
	/* The maps, mapped: fields are read and written in place. */
	struct iofence_slot *slots;
	struct iofence_write_ages *ages;
	struct iofence_daemon *dm;
	size_t slots_len, ages_len, dm_len;
	struct tracker_slot *mine; /* IOFENCE_MAX_SLOTS: what each slot holds */
	int *by_idx; /* a storage's index to its slot, or -1 */
	unsigned int lookups; /* loop backing lookups not answered yet */
};

/* What a slot holds, read at one moment. */
struct tracker_evidence {
	uint32_t slot;
	struct iofence_slot s;
	uint64_t now_ns;
	/* The oldest write in flight started this long ago, within these. */
	bool oldest_write;
	uint64_t oldest_write_min_ns, oldest_write_max_ns;
};

/*
 * Returns 0, or a negative errno after one log line saying why the
 * tracker is off. @reply is the control plane's channel.
 */
int tracker_open(struct tracker *t, const char *pin_dir, struct chan *reply);
/*
 * Detaches, and with @unpin removes every pin under the pin dir; without,
 * the pinned programs and maps go on (a restarted daemon takes them over).
 */
void tracker_close(struct tracker *t, bool unpin);

/*
 * Called on the thread that makes the fencing core's ring, just before:
 * that thread's next ring is the daemon's for kernel-seen heartbeats.
 */
void tracker_register_ring(struct tracker *t);

/*
 * Gives @s its slot (the one of its uuid, else a free one), and points
 * its devices and its record at it; again for the same uuid (an update,
 * or an undo back to the storage it replaced) re-points the slot at @s,
 * keeping its counts. 0, or a negative errno (no free slot, a map full).
 */
int tracker_arm(struct tracker *t, const struct storage *s);
/* Frees @s's slot, unless another storage of its uuid took it since. */
void tracker_disarm(struct tracker *t, const struct storage *s);
/*
 * Frees the slot of @uuid if no storage holds it: one kept from an
 * earlier daemon, which a teardown names.
 */
void tracker_forget(struct tracker *t, const char *uuid);
/*
 * Once the daemon re-armed what its state holds: frees every slot kept
 * from an earlier daemon that no storage took and @keep does not want.
 */
void tracker_forget_stale(struct tracker *t,
			  bool (*keep)(const char *uuid, void *ctx), void *ctx);
/* Some slot is held (armed, or kept): the pins keep something. */
bool tracker_holds(const struct tracker *t);

/*
 * The kernel write fence (no-ops where the LSM programs do not run).
 * tracker_fence() sets IOFENCE_FENCED_BY_DAEMON on @s's slot: the daemon
 * fenced it. tracker_unfence() clears every reason and the refusal
 * count: an unfence. tracker_fenced(): writes to @s are refused now.
 */
void tracker_fence(struct tracker *t, const struct storage *s);
void tracker_unfence(struct tracker *t, const struct storage *s);
bool tracker_fenced(struct tracker *t, const struct storage *s);

/* -ENOENT when @s has no slot or the tracker is inactive. */
int tracker_read(struct tracker *t, const struct storage *s,
		 struct tracker_evidence *ev);
/*
 * The slot of @s as mapped, for the fencing core, which reads its
 * evidence in place (never writes it): valid until tracker_close(), which
 * comes after the core stopped. Returns the slot, or -ENOENT (NULLs).
 */
int tracker_slot(struct tracker *t, const struct storage *s,
		 const struct iofence_slot **slot,
		 const struct iofence_write_ages **ages);
/* The evidence of @s for query-status (the "io" object), or null. */
json_t *tracker_json(struct tracker *t, const struct storage *s);

/* An errno for a blk_status_t (block/blk-core.c's table); EIO if unknown. */
int tracker_blk_errno(unsigned int status);

#endif
