// SPDX-License-Identifier: GPL-2.0-only
/*
 * setup and teardown, as flights. A flight is one execution of a batch;
 * identical requests (same host, same storages with the same parameters,
 * same reconnect flag) that arrive while it is queued or running join it
 * and get its result. Flights run one at a time, in arrival order, so no
 * two batches ever interleave on a storage.
 *
 * A flight runs in three phases:
 *   stage    open every new or changed storage's targets, asynchronously,
 *            each step with a deadline; nothing served changes yet
 *   commit   put the staged storages in place, in order; an updated one
 *            takes its predecessor's slot, so it is never unarmed
 *   persist  write the state file; only then is the reply "armed"
 * A failure in any phase undoes what the flight did so far, in reverse
 * order, back to exactly the state before it, and the reply says which
 * storage and which step failed.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "arm.h"
#include "commands.h"
#include "deadlines.h"
#include "fencer.h"
#include "log.h"

/* Storages one host may have armed. */
#define STORAGES_PER_HOST_MAX 512

enum plan {
	PLAN_SKIP, /* not connected on this host */
	PLAN_UNCHANGED, /* armed with these very parameters */
	PLAN_ARM,
	PLAN_UPDATE,
	PLAN_DISARM,
	PLAN_ABSENT, /* teardown of something not armed */
	PLAN_FAILED, /* re-arm at start-up only: left out, logged */
};

static const char *const plan_results[] = {
	[PLAN_SKIP] = "skipped",    [PLAN_UNCHANGED] = "unchanged",
	[PLAN_ARM] = "armed",	    [PLAN_UPDATE] = "updated",
	[PLAN_DISARM] = "disarmed", [PLAN_ABSENT] = "absent",
	[PLAN_FAILED] = "failed",
};

struct flight;

struct item {
	struct flight *f;
	struct storage_params p; /* teardown: only p.uuid */
	enum plan plan;
	struct storage *staged; /* ARM, UPDATE: the new storage */
	struct storage *prev; /* UPDATE, DISARM: the one it replaces */
	bool committed;
	struct arm_op arm;
	json_t *event; /* journalled, published once persisted */
	uint64_t orig_flight; /* re-arm: what the state file says */
	int64_t orig_armed;
	json_t *entry; /* re-arm: the state file's entry, kept if it fails */
	bool hung; /* re-arm: failed at a deadline, the storage hangs */
	json_t *why; /* re-arm: why it failed (a string), for REARM_FAILED */
};

struct waiter {
	struct waiter *next;
	uint64_t conn_id;
	json_t *id;
	bool joined;
};

struct flight {
	struct list_head link;
	struct daemon *d;
	uint64_t id;
	char *key;
	char *host_uuid;
	bool teardown;
	bool reconnect;
	bool rearm; /* start-up: a storage that fails is left out */
	bool retry; /* a re-arm tried again later: a failure is no news */
	bool started;
	uint64_t deadline_ms;
	struct waiter *waiters;
	enum proto_class err_class;
	char err[512]; /* empty: success */
	json_t *err_data; /* the error's data, iofence-protocol(7); or NULL */
	unsigned int n;
	unsigned int staging; /* storages still being staged */
	unsigned int failed; /* the first storage that failed staging */
	bool whole_host; /* teardown of all the host has when it runs */
	struct item *items;
};

static void flight_finish(struct flight *f);

static void flight_fail(struct flight *f, enum proto_class cls, const char *fmt,
			...) __attribute__((format(printf, 3, 4)));
static void flight_fail(struct flight *f, enum proto_class cls, const char *fmt,
			...)
{
	va_list ap;

	f->err_class = cls;
	json_decref(f->err_data);
	f->err_data = NULL;
	va_start(ap, fmt);
	vsnprintf(f->err, sizeof(f->err), fmt, ap);
	va_end(ap);
}

/*
 * A failure of one member, storages[@i] or one of its keys (@key; NULL:
 * the storage itself): the desc is "@member@head: reason", where @head
 * names the storage's uuid, and the data says the same for programs.
 */
static void flight_fail_at(struct flight *f, enum proto_class cls,
			   enum args_rule rule, unsigned int i, const char *key,
			   const char *head, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
static void flight_fail_at(struct flight *f, enum proto_class cls,
			   enum args_rule rule, unsigned int i, const char *key,
			   const char *head, const char *fmt, ...)
{
	char member[ARGS_MEMBER_MAX];
	size_t n;
	va_list ap;

	if (key)
		snprintf(member, sizeof(member), "storages[%u].%s", i, key);
	else
		snprintf(member, sizeof(member), "storages[%u]", i);
	flight_fail(f, cls, "%s%s: ", member, head);
	n = strlen(f->err);
	va_start(ap, fmt);
	vsnprintf(f->err + n, sizeof(f->err) - n, fmt, ap);
	va_end(ap);
	f->err_data = json_pack("{s:s,s:s,s:s}", "member", member, "rule",
				args_rule_name(rule), "reason", f->err + n);
}

/* --- the BPF slots follow the table ---------------------------------- */

/* Points the slot of the storage's uuid at @s (an update keeps it). */
static int track(struct daemon *d, struct storage *s)
{
	return tracker_arm(&d->tracker, s);
}

/* Frees the slot, unless a newer storage of the uuid holds it. */
static void untrack(struct daemon *d, struct storage *s)
{
	tracker_disarm(&d->tracker, s);
}

void storage_disarm(struct daemon *d, struct storage *s)
{
	daemon_net_unfence(d, s);
	untrack(d, s);
	storage_remove(&d->storages, s);
	storage_free(s);
}

/* --- phase 1: stage -------------------------------------------------- */

static struct storage *storage_new(struct flight *f, struct item *it)
{
	struct storage *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->target_fd = s->record_fd = -1;
	s->host_uuid = strdup(f->host_uuid);
	if (!s->host_uuid || storage_params_copy(&s->p, &it->p)) {
		storage_free(s);
		return NULL;
	}
	s->reconnect = f->reconnect;
	s->flight = f->id;
	return s;
}

static void commit(struct flight *f);

/* Drops what staging opened, newest first. */
static void unstage(struct flight *f)
{
	for (unsigned int i = f->n; i-- > 0;) {
		struct item *it = &f->items[i];

		if (it->staged && !it->committed) {
			storage_free(it->staged);
			it->staged = NULL;
		}
	}
}

/*
 * One record, one storage: two storages writing the same heartbeat
 * record overwrite each other's heartbeats, and a peer reading it sees
 * neither. For files that is the same file (a bind mount or a second
 * path to one folder, with the same host), for block devices the same
 * device with overlapping bytes, whatever the hosts.
 */
static bool same_record(const struct storage *a, const struct storage *b)
{
	if (a->p.type != b->p.type)
		return false;
	if (a->p.type == STORAGE_RBD)
		return !strcmp(a->host_uuid, b->host_uuid) &&
		       !strcmp(a->p.target, b->p.target) &&
		       !strcmp(a->p.ceph_conf, b->p.ceph_conf);
	if (a->p.type == STORAGE_FILE)
		return a->record_ino && a->record_ino == b->record_ino &&
		       a->record_dev == b->record_dev;
	return a->dev && a->dev == b->dev &&
	       a->record_offset < b->record_offset + b->record_size &&
	       b->record_offset < a->record_offset + a->record_size;
}

static void describe_same(const struct storage *a, const struct storage *b,
			  char *buf, size_t len)
{
	if (a->p.type == STORAGE_RBD)
		snprintf(
			buf, len,
			"both write object iofence.%s in %s of the cluster of %s, and a heartbeat record belongs to one storage only",
			a->host_uuid, a->p.target, a->p.ceph_conf);
	else if (a->p.type == STORAGE_FILE)
		snprintf(
			buf, len,
			"%s/" ARM_RECORD_DIR "/%s and %s/" ARM_RECORD_DIR
			"/%s are one file (device %u:%u, inode %llu), and a heartbeat record belongs to one storage only",
			a->p.target, a->host_uuid, b->p.target, b->host_uuid,
			major(a->record_dev), minor(a->record_dev),
			(unsigned long long)a->record_ino);
	else
		snprintf(
			buf, len,
			"slot %u of %s and slot %u of %s are the same bytes of block device %u:%u (offset %llu), and a heartbeat record belongs to one storage only",
			a->p.slot, a->p.target, b->p.slot, b->p.target,
			major(a->dev), minor(a->dev),
			(unsigned long long)a->record_offset);
}

/*
 * Another storage that would write the record of storages[@i], staged,
 * or NULL: one staged before it, or one armed that this flight does not
 * replace (@replaced, by table index).
 */
static const struct storage *record_taken(struct flight *f, unsigned int i,
					  const bool *replaced)
{
	const struct storage *s = f->items[i].staged;
	struct storage *o;
	unsigned int k;

	for (k = 0; k < i; k++)
		if (f->items[k].staged && same_record(s, f->items[k].staged))
			return f->items[k].staged;
	storage_for_each(&f->d->storages, k, o)
		if (!replaced[k] && same_record(s, o))
			return o;
	return NULL;
}

/* Re-arming at start-up: @it is left out, said once, here. */
static void __attribute__((format(printf, 2, 3)))
rearm_failed(struct item *it, const char *fmt, ...)
{
	char why[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	/* A path cut to the buffer may end mid-character. */
	proto_utf8_fix(why);
	pr_err("re-arm %s: %s; left unarmed", it->p.uuid, why);
	it->plan = PLAN_FAILED;
	json_decref(it->why);
	it->why = json_string(why);
}

/*
 * Before anything is put in place: a refusal changes nothing. Re-arming
 * at start-up leaves the storage out, kept in the state file, as any
 * other storage that fails to re-arm.
 */
static void check_records(struct flight *f)
{
	bool replaced[STORAGE_MAX] = { false };
	const struct storage *o;
	char why[512];

	for (unsigned int i = 0; i < f->n; i++)
		if (f->items[i].staged && f->items[i].prev)
			replaced[f->items[i].prev->idx] = true;
	for (unsigned int i = 0; i < f->n && !f->err[0]; i++) {
		struct item *it = &f->items[i];

		if (!it->staged || !(o = record_taken(f, i, replaced)))
			continue;
		describe_same(it->staged, o, why, sizeof(why));
		if (f->rearm) {
			storage_free(it->staged);
			it->staged = NULL;
			rearm_failed(
				it,
				"same heartbeat record as storage %s (host %s): %s",
				o->p.uuid, o->host_uuid, why);
			continue;
		}
		flight_fail_at(
			f, PROTO_INVALID_ARGUMENT, ARGS_INVALID, i, NULL, "",
			"same heartbeat record as storage %s (host %s): %s; nothing was changed",
			o->p.uuid, o->host_uuid, why);
	}
}

/* Every storage of the batch is staged, or failed to be. */
static void staged_all(struct flight *f)
{
	if (!f->err[0])
		check_records(f);
	if (f->err[0]) {
		unstage(f);
		flight_finish(f);
	} else {
		commit(f);
	}
}

static void staged_one(struct arm_op *a, int res)
{
	struct item *it = container_of(a, struct item, arm);
	struct flight *f = it->f;
	unsigned int i = it - f->items;

	if (res) {
		const char *why = a->why[0]	    ? a->why :
				  res == -ETIMEDOUT ? "deadline passed" :
						      strerror(-res);

		storage_free(it->staged);
		it->staged = NULL;
		if (f->rearm) {
			rearm_failed(it, "%s %s: %s", a->failed_step,
				     it->p.target, why);
			it->hung = res == -ETIMEDOUT &&
				   it->p.strategy == FENCE_FORCE;
		} else if (!f->err[0] || i < f->failed) {
			/* Of several failures, the first storage is named. */
			char head[STORAGE_UUID_MAX + 4];

			f->failed = i;
			snprintf(head, sizeof(head), " (%s)", it->p.uuid);
			flight_fail_at(f,
				       res == -ETIMEDOUT ? PROTO_TIMEOUT :
							   PROTO_ARMING_FAILED,
				       ARGS_FAILED, i, NULL, head,
				       "%s %s: %s; nothing was changed",
				       a->failed_step, it->p.target, why);
		}
	}
	if (!--f->staging)
		staged_all(f);
}

/*
 * All storages are staged at once: the batch takes as long as its slowest
 * storage, not the sum of them. The extra count keeps a step that fails
 * at once from ending the phase before every storage has started.
 */
static void stage(struct flight *f)
{
	f->staging = 1;
	for (unsigned int i = 0; i < f->n; i++) {
		struct item *it = &f->items[i];

		if (it->plan != PLAN_ARM && it->plan != PLAN_UPDATE)
			continue;
		it->staged = storage_new(f, it);
		if (!it->staged) {
			flight_fail(f, PROTO_GENERIC_ERROR, "out of memory");
			break;
		}
		if (it->prev)
			it->staged->armed_real_s = it->prev->armed_real_s;
		if (it->orig_flight) {
			it->staged->flight = it->orig_flight;
			it->staged->armed_real_s = it->orig_armed;
		}
		f->staging++;
		it->arm.read_may_fail = f->rearm;
		it->arm.chan = &f->d->in;
		it->arm.rt_priority = f->d->cfg.rt_priority;
		arm_start(&it->arm, &f->d->loop, it->staged, f->deadline_ms,
			  staged_one);
	}
	if (!--f->staging)
		staged_all(f);
}

/* --- phase 2: commit, and its undo ----------------------------------- */

static void undo_item(struct daemon *d, struct item *it)
{
	struct storage *s = it->staged;

	if (!it->committed)
		return;
	it->committed = false;
	switch (it->plan) {
	case PLAN_ARM:
		storage_disarm(d, s);
		it->staged = NULL;
		break;
	case PLAN_UPDATE:
		/* The old one goes back into its own slot. */
		d->storages.slot[s->idx] = it->prev;
		fencer_move(s, it->prev);
		track(d, it->prev);
		storage_free(s);
		it->staged = NULL;
		break;
	case PLAN_DISARM:
		d->storages.slot[it->prev->idx] = it->prev;
		d->storages.count++;
		track(d, it->prev);
		break;
	default:
		break;
	}
}

static void undo(struct flight *f)
{
	for (unsigned int i = f->n; i-- > 0;)
		undo_item(f->d, &f->items[i]);
	unstage(f);
}

/*
 * Re-armed at start-up: a fence outlives the restart, as long as the
 * target is still the storage that was fenced. A path that now leads to a
 * device without this host's record of the storage (a reused loop, nbd or
 * sdX name) is another storage: its VMs are not the fenced ones. A record
 * that cannot be read at all keeps the fence: that storage is still lost.
 */
static json_t *restored_fence(struct item *it)
{
	json_t *fence = it->entry ? json_object_get(it->entry, "fence") : NULL;
	struct storage *s = it->staged;

	if (!fence || s->record_mine || s->record_unread)
		return fence;
	pr_warn("%s: was fenced, but %s holds no record of host %s for it: another device behind the same path? The fence is not restored",
		s->p.uuid, s->p.target, s->host_uuid);
	return NULL;
}

static int commit_item(struct daemon *d, struct item *it)
{
	struct storage *s = it->staged, *prev = it->prev;
	struct timespec now;
	int ret;

	clock_gettime(CLOCK_REALTIME, &now);
	switch (it->plan) {
	case PLAN_ARM:
		if (!s->armed_real_s)
			s->armed_real_s = now.tv_sec;
		s->updated_real_s = now.tv_sec;
		ret = storage_insert(&d->storages, s);
		if (ret)
			return ret;
		ret = track(d, s);
		if (!ret)
			ret = fencer_start(d, s, restored_fence(it));
		if (ret) {
			untrack(d, s);
			storage_remove(&d->storages, s);
			return ret;
		}
		break;
	case PLAN_UPDATE:
		/* In place: the slot is never empty. */
		s->updated_real_s = now.tv_sec;
		s->idx = prev->idx;
		d->storages.slot[s->idx] = s;
		/* Its slot too, with the new timeout and devices. */
		ret = track(d, s);
		if (ret) {
			d->storages.slot[s->idx] = prev;
			track(d, prev);
			return ret;
		}
		fencer_move(prev, s);
		break;
	case PLAN_DISARM:
		untrack(d, prev);
		storage_remove(&d->storages, prev);
		break;
	default:
		return 0;
	}
	it->committed = true;
	return 0;
}

static void persisted(void *ctx, int err);
static void journal_events(struct flight *f);

static void commit(struct flight *f)
{
	struct daemon *d = f->d;
	unsigned int i;
	int ret = 0;

	for (i = 0; i < f->n; i++) {
		ret = commit_item(d, &f->items[i]);
		if (ret)
			break;
	}
	if (ret) {
		char head[STORAGE_UUID_MAX + 4];

		snprintf(head, sizeof(head), " (%s)", f->items[i].p.uuid);
		flight_fail_at(f, PROTO_ARMING_FAILED, ARGS_FAILED, i, NULL,
			       head, "%s: %s; rolled back",
			       ret == -ENOSPC ? "table full" :
			       ret == -ENOMEM ? "heartbeat" :
						"BPF device map",
			       strerror(-ret));
		undo(f);
		flight_finish(f);
		return;
	}
	journal_events(f);
	ret = persist_request(&d->persist, persisted, f);
	if (ret)
		persisted(f, ret);
}

/* --- phase 3: persisted ---------------------------------------------- */

static json_t *event_data(struct flight *f, struct item *it)
{
	return json_pack("{s:s,s:s,s:b,s:I}", "storage", it->p.uuid,
			 "host_uuid", f->host_uuid, "reconnect", f->reconnect,
			 "flight", (json_int_t)f->id);
}

/*
 * The batch's events go into the journal before the write that makes the
 * batch durable, so that write carries them too: once the reply says
 * "armed", an agent that was away finds every event in query-events.
 * They reach subscribers only after the write succeeded.
 */
static void journal_events(struct flight *f)
{
	static const char *const events[] = {
		[PLAN_ARM] = "ARMED",
		[PLAN_UPDATE] = "UPDATED",
		[PLAN_DISARM] = "DISARMED",
	};

	for (unsigned int i = 0; i < f->n; i++) {
		struct item *it = &f->items[i];
		const char *name = NULL;
		json_t *data;

		if (it->plan == PLAN_ARM || it->plan == PLAN_UPDATE ||
		    it->plan == PLAN_DISARM)
			name = f->rearm ? "REARMED" : events[it->plan];
		else if (it->plan == PLAN_FAILED && !f->retry)
			name = "REARM_FAILED";
		if (!name)
			continue;
		data = event_data(f, it);
		if (it->plan == PLAN_FAILED) {
			json_object_set_new(data, "hung",
					    json_boolean(it->hung));
			json_object_set(data, "reason", it->why);
		}
		it->event = json_incref(daemon_event_journal(f->d, name, data));
	}
}

enum events_fate { EV_PUBLISH, EV_DROP, EV_DEFER };

static void events_end(struct flight *f, enum events_fate fate)
{
	for (unsigned int i = 0; i < f->n; i++) {
		json_t *ev = f->items[i].event;

		if (!ev)
			continue;
		if (fate == EV_PUBLISH)
			daemon_event_publish(f->d, ev);
		else if (fate == EV_DEFER)
			daemon_event_defer(f->d, ev);
		else
			journal_drop(
				&f->d->journal,
				json_integer_value(json_object_get(ev, "seq")));
		json_decref(ev);
		f->items[i].event = NULL;
	}
}

static void persisted(void *ctx, int err)
{
	struct flight *f = ctx;

	if (err && f->rearm) {
		/*
		 * Armed as the state file said; its events wait, held, for
		 * a write that carries them.
		 */
		pr_err("flight %llu: events not persisted: %s",
		       (unsigned long long)f->id, strerror(-err));
		events_end(f, EV_DEFER);
	} else if (err) {
		flight_fail(f, PROTO_ARMING_FAILED,
			    "persisting the state: %s; rolled back",
			    strerror(-err));
		undo(f);
		events_end(f, EV_DROP);
	} else {
		events_end(f, EV_PUBLISH);
	}
	flight_finish(f);
}

/* --- the end of a flight --------------------------------------------- */

static json_t *success(struct flight *f, bool joined)
{
	json_t *list = json_array();

	for (unsigned int i = 0; i < f->n; i++) {
		struct item *it = &f->items[i];
		json_t *r = json_pack("{s:s,s:s}", "uuid", it->p.uuid, "result",
				      plan_results[it->plan]);

		if (it->plan == PLAN_SKIP)
			json_object_set_new(
				r, "reason",
				json_string(
					it->prev ?
						"not connected on this host; left armed as it was" :
						"not connected on this host"));
		json_array_append_new(list, r);
	}
	return json_pack("{s:I,s:b,s:s,s:b,s:o}", "flight", (json_int_t)f->id,
			 "joined", joined, "host_uuid", f->host_uuid,
			 "reconnect", f->reconnect, "storages", list);
}

static bool flight_idle(const struct flight *f)
{
	for (unsigned int i = 0; i < f->n; i++)
		if (!arm_idle(&f->items[i].arm))
			return false;
	return true;
}

static void flight_free(struct flight *f)
{
	for (unsigned int i = 0; i < f->n; i++) {
		storage_params_free(&f->items[i].p);
		json_decref(f->items[i].entry);
		json_decref(f->items[i].why);
		arm_release(&f->items[i].arm);
	}
	free(f->items);
	free(f->key);
	free(f->host_uuid);
	json_decref(f->err_data);
	free(f);
}

/*
 * A teardown of "all of the host's" means all it has when the flight
 * runs, so that a setup queued ahead of it is torn down too. Nothing of
 * the flight is in flight yet, so its items may move.
 */
static int whole_host_items(struct flight *f)
{
	struct daemon *d = f->d;
	unsigned int n = storage_host_count(&d->storages, f->host_uuid), k, i;
	struct item *items = calloc(n ? n : 1, sizeof(*items));
	struct storage *s;

	if (!items)
		return -ENOMEM;
	i = 0;
	storage_for_each(&d->storages, k, s) {
		if (strcmp(s->host_uuid, f->host_uuid))
			continue;
		items[i].f = f;
		items[i].p.uuid = strdup(s->p.uuid);
		if (!items[i++].p.uuid) {
			while (i--)
				free(items[i].p.uuid);
			free(items);
			return -ENOMEM;
		}
	}
	for (i = 0; i < f->n; i++)
		storage_params_free(&f->items[i].p);
	free(f->items);
	f->items = items;
	f->n = n;
	return 0;
}

static void flight_start(struct flight *f);

static void unarmed_forget(struct daemon *d, const char *uuid)
{
	json_t *entry;
	size_t i;

	json_array_foreach(d->unarmed, i, entry) {
		const char *u = json_string_value(json_object_get(
			json_object_get(entry, "params"), "uuid"));

		if (u && !strcmp(u, uuid)) {
			json_array_remove(d->unarmed, i);
			break;
		}
	}
	/* A slot kept for it since an earlier daemon goes, unless it is armed now. */
	tracker_forget(&d->tracker, uuid);
	json_array_foreach(d->unarmed_hung, i, entry) {
		if (!strcmp(json_string_value(entry), uuid)) {
			json_array_remove(d->unarmed_hung, i);
			daemon_watchdog_update(d);
			return;
		}
	}
}

/*
 * A storage that hung while re-arming was promised a fence deadline this
 * host can no longer keep (no fd, no victims, no heartbeat): with "force"
 * the watchdog resets the host within that deadline instead, unless a
 * setup arms the storage or a teardown lets it go first.
 */
static void unarmed_keep(struct daemon *d, struct item *it)
{
	json_t *entry;
	size_t i;

	/* A retry that failed again replaces its entry, and holds once. */
	json_array_foreach(d->unarmed, i, entry)
		if (entry == it->entry)
			return;
	json_array_append(d->unarmed, it->entry);
	if (!it->hung)
		return;
	json_array_foreach(d->unarmed_hung, i, entry)
		if (!strcmp(json_string_value(entry), it->p.uuid))
			return;
	pr_crit("re-arm %s: its storage hangs and its contract cannot be kept: the watchdog is no longer petted until it is armed or torn down",
		it->p.uuid);
	json_array_append_new(d->unarmed_hung, json_string(it->p.uuid));
	daemon_watchdog_update(d);
}

/* A flight whose step hangs in the kernel is freed when the step ends. */
static void flight_orphan(struct arm_op *a)
{
	struct item *it = container_of(a, struct item, arm);
	struct flight *f = it->f;

	if (flight_idle(f)) {
		list_del(&f->link);
		flight_free(f);
	}
}

static void flight_finish(struct flight *f)
{
	struct daemon *d = f->d;
	struct waiter *w, *next;
	bool ok = !f->err[0];

	if (ok) {
		for (unsigned int i = 0; i < f->n; i++) {
			struct item *it = &f->items[i];

			if (it->plan == PLAN_UPDATE || it->plan == PLAN_DISARM)
				storage_free(it->prev);
			/*
			 * A storage that failed to re-arm stays in the state
			 * file, to be tried again, until a setup arms it or a
			 * teardown names it.
			 */
			if (it->plan == PLAN_FAILED)
				unarmed_keep(d, it);
			else if (it->plan != PLAN_SKIP &&
				 it->plan != PLAN_UNCHANGED)
				unarmed_forget(d, it->p.uuid);
		}
	} else {
		pr_warn("flight %llu (%s %s): %s", (unsigned long long)f->id,
			f->teardown ? "teardown" : "setup", f->host_uuid,
			f->err);
	}
	for (w = f->waiters; w; w = next) {
		next = w->next;
		json_t *msg =
			ok ? proto_return(success(f, w->joined), w->id) :
			     proto_error(f->err_class, w->id, "%s", f->err);

		if (!ok && msg && f->err_data)
			json_object_set(json_object_get(msg, "error"), "data",
					f->err_data);
		cmd_reply_later(d, w->conn_id, msg);
		json_decref(w->id);
		free(w);
	}
	list_del(&f->link);
	if (flight_idle(f)) {
		flight_free(f);
	} else {
		list_add_tail(&f->link, &d->stuck_flights);
		for (unsigned int i = 0; i < f->n; i++)
			f->items[i].arm.orphan = flight_orphan;
	}
	if (!list_empty(&d->flights)) {
		f = list_entry(d->flights.next, struct flight, link);
		if (!f->started)
			flight_start(f);
	} else if (d->starting && !d->queueing_rearm) {
		daemon_started(d);
	}
}

/* --- planning, against the table as it is when the flight starts ------ */

static int plan(struct flight *f)
{
	struct daemon *d = f->d;
	unsigned int added = 0;

	for (unsigned int i = 0; i < f->n; i++) {
		struct item *it = &f->items[i];
		struct storage *s = storage_find(&d->storages, it->p.uuid);

		it->prev = s;
		if (s && strcmp(s->host_uuid, f->host_uuid)) {
			flight_fail_at(f, PROTO_INVALID_ARGUMENT, ARGS_INVALID,
				       i, "uuid", "", "%s is armed for host %s",
				       it->p.uuid, s->host_uuid);
			return -EINVAL;
		}
		if (f->teardown)
			it->plan = s ? PLAN_DISARM : PLAN_ABSENT;
		else if (!it->p.connected)
			it->plan = PLAN_SKIP;
		else if (!s)
			it->plan = PLAN_ARM, added++;
		else if (storage_params_equal(&s->p, &it->p))
			it->plan = PLAN_UNCHANGED;
		else
			it->plan = PLAN_UPDATE;
	}
	if (added && storage_host_count(&d->storages, f->host_uuid) + added >
			     STORAGES_PER_HOST_MAX) {
		flight_fail(f, PROTO_LIMIT_EXCEEDED,
			    "storages: host %s may have at most %d armed",
			    f->host_uuid, STORAGES_PER_HOST_MAX);
		return -ENOSPC;
	}
	if (d->storages.count + added > STORAGE_MAX) {
		flight_fail(f, PROTO_LIMIT_EXCEEDED,
			    "storages: at most %d armed in all", STORAGE_MAX);
		return -ENOSPC;
	}
	return 0;
}

static void flight_start(struct flight *f)
{
	f->started = true;
	if (f->d->loop.stopping) {
		flight_fail(f, PROTO_GENERIC_ERROR,
			    "the daemon is stopping; nothing was changed");
		flight_finish(f);
		return;
	}
	if (loop_now_ms() >= f->deadline_ms) {
		flight_fail(
			f, PROTO_TIMEOUT,
			"deadline passed while queued behind another setup; nothing was changed");
		flight_finish(f);
		return;
	}
	if (f->whole_host && whole_host_items(f)) {
		flight_fail(f, PROTO_GENERIC_ERROR, "out of memory");
		flight_finish(f);
		return;
	}
	if (plan(f)) {
		flight_finish(f);
		return;
	}
	stage(f);
}

static struct flight *flight_new(struct daemon *d, unsigned int n,
				 const char *host, bool reconnect,
				 uint64_t timeout_ms)
{
	struct flight *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->items = calloc(n ? n : 1, sizeof(f->items[0]));
	if (!f->items) {
		free(f);
		return NULL;
	}
	f->d = d;
	f->n = n;
	f->reconnect = reconnect;
	f->deadline_ms = loop_now_ms() + timeout_ms;
	f->host_uuid = strdup(host);
	list_init(&f->link);
	for (unsigned int i = 0; i < n; i++)
		f->items[i].f = f;
	if (!f->host_uuid) {
		free(f->items);
		free(f);
		return NULL;
	}
	return f;
}

/*
 * Flights run one at a time, in order, except the re-arms at start-up:
 * those run side by side (each one storage, before any request can
 * come), so that a storage that hangs costs the others nothing: a
 * healthy storage must not wait out a dead one's deadline.
 */
static void flight_queue(struct daemon *d, struct flight *f)
{
	struct list_head *pos;
	bool now = true;

	for (pos = d->flights.next; pos != &d->flights; pos = pos->next)
		now &= f->rearm && list_entry(pos, struct flight, link)->rearm;
	f->id = ++d->next_flight;
	list_add_tail(&f->link, &d->flights);
	if (now)
		flight_start(f);
}

static struct flight *flight_find(struct daemon *d, const char *key)
{
	struct list_head *pos, *tmp;

	list_for_each_safe(pos, tmp, &d->flights) {
		struct flight *f = list_entry(pos, struct flight, link);

		if (!strcmp(f->key, key))
			return f;
	}
	return NULL;
}

static int add_waiter(struct flight *f, struct ctl_conn *c, json_t *id,
		      bool joined)
{
	struct waiter *w = calloc(1, sizeof(*w));

	if (!w)
		return -ENOMEM;
	w->conn_id = c->id;
	w->id = json_incref(id);
	w->joined = joined;
	w->next = f->waiters;
	f->waiters = w;
	return 0;
}

/*
 * The flight key: host, teardown or setup, reconnect, and the storages with
 * every parameter (defaults applied), as canonical JSON.
 */
static char *flight_key(struct flight *f)
{
	json_t *list = json_array(), *key;
	char *s;

	for (unsigned int i = 0; i < f->n; i++)
		json_array_append_new(
			list, f->teardown ?
				      json_string(f->items[i].p.uuid) :
				      storage_params_json(&f->items[i].p));
	key = json_pack("{s:s,s:b,s:b,s:b,s:o}", "host", f->host_uuid,
			"teardown", f->teardown, "whole_host", f->whole_host,
			"reconnect", f->reconnect, "storages", list);
	s = key ? json_dumps(key, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
	json_decref(key);
	return s;
}

/* Queues @f, or joins the caller to an identical flight; frees @f then. */
static json_t *submit(struct daemon *d, struct ctl_conn *c, json_t *id,
		      struct flight *f)
{
	struct flight *same;

	f->key = flight_key(f);
	if (!f->key) {
		flight_free(f);
		return proto_error(PROTO_GENERIC_ERROR, id, "out of memory");
	}
	same = flight_find(d, f->key);
	if (same) {
		flight_free(f);
		if (add_waiter(same, c, id, true))
			return proto_error(PROTO_GENERIC_ERROR, id,
					   "out of memory");
		return NULL;
	}
	if (add_waiter(f, c, id, false)) {
		flight_free(f);
		return proto_error(PROTO_GENERIC_ERROR, id, "out of memory");
	}
	flight_queue(d, f);
	return NULL;
}

/* --- the commands ---------------------------------------------------- */

const char *const setup_args[] = { "host_uuid",	 "reconnect", "no_status_check",
				   "timeout_ms", "storages",  NULL };
const char *const teardown_args[] = { "host_uuid", "storages", NULL };

static int parse_host(json_t *args, const char **host, struct args_err *e)
{
	int ret = args_string(args, "", "host_uuid", true, host, e);

	if (!ret && !storage_uuid_valid(*host))
		ret = args_fail(
			e, NULL, "host_uuid",
			"must be 1 to %d of A-Z a-z 0-9 . _ : - and not start with '.'",
			STORAGE_UUID_MAX);
	return ret;
}

static int check_duplicates(struct flight *f, struct args_err *e)
{
	for (unsigned int i = 0; i < f->n; i++)
		for (unsigned int j = 0; j < i; j++)
			if (!strcmp(f->items[i].p.uuid, f->items[j].p.uuid)) {
				char key[32];

				snprintf(key, sizeof(key), "storages[%u]", i);
				args_fail_rule(e, ARGS_DUPLICATE, key, "uuid",
					       "%s is storages[%u] already",
					       f->items[i].p.uuid, j);
				snprintf(e->other[0], sizeof(e->other[0]),
					 "storages[%u].uuid", j);
				return -EINVAL;
			}
	return 0;
}

json_t *cmd_setup(struct daemon *d, struct ctl_conn *c,
		  struct proto_request *req)
{
	json_t *args = req->arguments, *list, *st;
	bool reconnect = false, no_check = false;
	uint64_t timeout = SETUP_DEFAULT_DEADLINE_MS;
	const char *host = NULL;
	struct flight *f = NULL;
	struct args_err e;
	size_t i, n;

	if (parse_host(args, &host, &e) ||
	    args_bool(args, "", "reconnect", &reconnect, &e) ||
	    args_bool(args, "", "no_status_check", &no_check, &e) ||
	    args_uint(args, "", "timeout_ms", false, SETUP_MIN_DEADLINE_MS,
		      SETUP_MAX_DEADLINE_MS, &timeout, &e))
		goto invalid;
	list = json_object_get(args, "storages");
	n = json_array_size(list);
	if (!json_is_array(list) || !n || n > STORAGES_PER_HOST_MAX) {
		args_fail(&e, NULL, "storages",
			  "must be a list of 1 to %d storages",
			  STORAGES_PER_HOST_MAX);
		goto invalid;
	}
	f = flight_new(d, n, host, reconnect, timeout);
	if (!f)
		return proto_error(PROTO_GENERIC_ERROR, req->id,
				   "out of memory");
	json_array_foreach(list, i, st)
		if (storage_params_parse(st, i, &f->items[i].p, &e))
			goto invalid;
	if (check_duplicates(f, &e))
		goto invalid;
	/* Checked per request: a bypass never outlives its request. */
	if (!no_check && d->host_state != HOST_CONNECTED) {
		const char *state = host_state_name(d->host_state);
		json_t *msg = proto_error(
			PROTO_HOST_NOT_CONNECTED, req->id,
			"host state is %s; setup needs connected, or no_status_check for this request",
			state);
		json_t *err = json_object_get(msg, "error");

		flight_free(f);
		json_object_set_new(
			err, "data",
			json_pack(
				"{s:s,s:s,s:s}", "rule",
				args_rule_name(ARGS_HOST_STATE), "reason",
				json_string_value(json_object_get(err, "desc")),
				"state", state));
		return msg;
	}
	return submit(d, c, req->id, f);

invalid:
	if (f)
		flight_free(f);
	return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
}

json_t *cmd_teardown(struct daemon *d, struct ctl_conn *c,
		     struct proto_request *req)
{
	json_t *args = req->arguments, *list, *v;
	const char *host = NULL;
	struct flight *f = NULL;
	struct args_err e;
	size_t i, n;

	if (parse_host(args, &host, &e))
		goto invalid;
	list = json_object_get(args, "storages");
	if (list && (!json_is_array(list) || !json_array_size(list) ||
		     json_array_size(list) > STORAGES_PER_HOST_MAX)) {
		args_fail(
			&e, NULL, "storages",
			"must be a list of 1 to %d storage uuids (or absent for all of the host's)",
			STORAGES_PER_HOST_MAX);
		goto invalid;
	}
	n = json_array_size(list);
	f = flight_new(d, n, host, false, SETUP_DEFAULT_DEADLINE_MS);
	if (!f)
		return proto_error(PROTO_GENERIC_ERROR, req->id,
				   "out of memory");
	f->teardown = true;
	f->whole_host = !list;
	if (list) {
		json_array_foreach(list, i, v) {
			const char *u = json_string_value(v);

			if (!u || !storage_uuid_valid(u)) {
				char key[32];

				snprintf(key, sizeof(key), "storages[%zu]", i);
				args_fail(&e, NULL, key,
					  "must be a storage uuid");
				goto invalid;
			}
			f->items[i].p.uuid = strdup(u);
		}
	}
	for (i = 0; i < n; i++)
		if (!f->items[i].p.uuid) {
			flight_free(f);
			return proto_error(PROTO_GENERIC_ERROR, req->id,
					   "out of memory");
		}
	if (check_duplicates(f, &e))
		goto invalid;
	return submit(d, c, req->id, f);

invalid:
	if (f)
		flight_free(f);
	return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
}

/*
 * Start-up: each storage of the state file is re-armed by a best-effort
 * flight of its own that replies to nobody, keeping the flight id that
 * armed it.
 */
/*
 * One flight for the stored storage @entry (storages[@i] of the state
 * file). With @retry it is one that failed before and is still kept in
 * d->unarmed: nothing is added there again.
 */
static void rearm_one(struct daemon *d, json_t *entry, size_t i, bool retry)
{
	const char *host =
		json_string_value(json_object_get(entry, "host_uuid"));
	bool reconnect = json_is_true(json_object_get(entry, "reconnect"));
	struct args_err e;
	struct flight *f;

	if (!host || !storage_uuid_valid(host)) {
		if (!retry) {
			pr_err("state: storages[%zu]: bad host_uuid; kept, not armed",
			       i);
			json_array_append(d->unarmed, entry);
		}
		return;
	}
	f = flight_new(d, 1, host, reconnect, SETUP_DEFAULT_DEADLINE_MS);
	if (!f)
		return;
	f->rearm = true;
	f->retry = retry;
	if (storage_params_parse(json_object_get(entry, "params"), i,
				 &f->items[0].p, &e)) {
		if (!retry) {
			pr_err("state: %s; kept, not armed", e.msg);
			json_array_append(d->unarmed, entry);
		}
		flight_free(f);
		return;
	}
	f->items[0].entry = json_incref(entry);
	f->key = flight_key(f);
	if (!f->key) {
		flight_free(f);
		return;
	}
	f->items[0].orig_flight =
		json_integer_value(json_object_get(entry, "flight"));
	f->items[0].orig_armed =
		json_integer_value(json_object_get(entry, "armed_at"));
	flight_queue(d, f);
}

void setup_rearm(struct daemon *d, json_t *list)
{
	json_t *entry;
	size_t i;

	d->queueing_rearm = true;
	json_array_foreach(list, i, entry)
		rearm_one(d, entry, i, false);
	d->queueing_rearm = false;
	if (list_empty(&d->flights))
		daemon_started(d);
}

void setup_rearm_retry(struct daemon *d)
{
	json_t *copy = json_copy(d->unarmed), *entry;
	size_t i;

	/* Each keeps its place in d->unarmed until it is armed. */
	json_array_foreach(copy, i, entry)
		rearm_one(d, entry, i, true);
	json_decref(copy);
}
