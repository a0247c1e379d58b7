// SPDX-License-Identifier: GPL-2.0-only
/* The control plane's side of the fencers: messages out, snapshots in. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "daemon.h"
#include "fencer.h"
#include "fencer_core.h"
#include "log.h"
#include "rados_link.h"
#include "timeline.h"

#define NS_PER_MS 1000000ull

/* What the core needs of @s, all of it its own. */
static int cfg_fill(struct daemon *d, const struct storage *s,
		    struct fencer_cfg *cfg)
{
	const char *hook = s->p.fence_hook ? s->p.fence_hook :
					     d->cfg.fence_hook;
	int ret;

	memset(cfg, 0, sizeof(*cfg));
	cfg->fd = -1;
	ret = storage_params_copy(&cfg->p, &s->p);
	if (!ret && hook && !(cfg->hook = strdup(hook)))
		ret = -ENOMEM;
	if (ret)
		goto err;
	snprintf(cfg->host_uuid, sizeof(cfg->host_uuid), "%s", s->host_uuid);
	if (s->p.type == STORAGE_RBD) {
		/* Its own reference, as the fd below is its own duplicate. */
		rados_link_ref(s->rados);
		cfg->rados = s->rados;
		storage_rbd_object(s->host_uuid, cfg->rados_oid,
				   sizeof(cfg->rados_oid));
		snprintf(cfg->rados_addrs, sizeof(cfg->rados_addrs), "%s",
			 s->rados_addrs);
	} else {
		/* Its own duplicate: the core closes it, ours stays ours. */
		cfg->fd = fcntl(s->record_fd, F_DUPFD_CLOEXEC, 0);
		if (cfg->fd < 0) {
			ret = -errno;
			goto err;
		}
	}
	cfg->size = s->record_size;
	cfg->offset = s->record_offset;
	cfg->direct = s->record_direct;
	if (s->p.type == STORAGE_FILE)
		devset_add(&cfg->devs, s->fs_dev);
	/* sysfs only: the holders of the device, never the storage itself. */
	if (s->dev && devset_add_stack(&cfg->devs, s->dev, "/sys"))
		pr_warn("%s: more than %d devices stacked on it; victims on the rest are not found",
			s->p.uuid, DEVSET_MAX);
	/* rbd: its victims' sockets are cut off as they are killed. */
	if (s->p.type == STORAGE_RBD)
		cfg->net = daemon_net_fence(d);
	cfg->seq_floor = s->next_seq;
	cfg->t_ok_ns = s->t_ok_ns;
	if (tracker_slot(&d->tracker, s, &cfg->slot, &cfg->ages) >= 0)
		cfg->slot_gen = __atomic_load_n(&cfg->slot->generation,
						__ATOMIC_ACQUIRE);
	return 0;
err:
	fencer_cfg_release(cfg);
	return ret;
}

static void restore_parse(json_t *fence, struct fence_restore *r)
{
	const char *reason =
		json_string_value(json_object_get(fence, "reason"));

	memset(r, 0, sizeof(*r));
	if (!json_is_object(fence))
		return;
	r->fenced = true;
	r->escalated = json_is_true(json_object_get(fence, "escalated"));
	r->fenced_real_s =
		json_integer_value(json_object_get(fence, "fenced_at"));
	snprintf(r->reason, sizeof(r->reason), "%s", reason ? reason : "");
}

int fencer_start(struct daemon *d, struct storage *s, json_t *fence)
{
	struct msg_fencer_start *m = calloc(1, sizeof(*m));
	struct fencer_link *f = calloc(1, sizeof(*f));
	int ret = -ENOMEM;

	if (!m || !f || (ret = cfg_fill(d, s, &m->cfg))) {
		free(m);
		free(f);
		return ret;
	}
	f->d = d;
	f->s = s;
	f->id = ++d->next_fencer_id;
	restore_parse(fence, &m->restore);
	/* Until the core's first report: what it is starting from. */
	f->snap.state = m->restore.fenced ? HB_FENCED : HB_HEALTHY;
	f->snap.t_ok_ns = s->t_ok_ns ? s->t_ok_ns : loop_now_ns();
	f->snap.fenced_real_s = m->restore.fenced_real_s;
	f->snap.escalated = m->restore.escalated;
	f->snap.completed = f->snap.failing = m->restore.fenced;
	memcpy(f->snap.reason, m->restore.reason, sizeof(f->snap.reason));
	f->snap.rt_ioprio = true;
	s->hb = f;
	m->id = f->id;
	m->idx = s->idx;
	core_send(&d->core, &m->m, fencer_on_start);
	return 0;
}

void fencer_move(struct storage *from, struct storage *to)
{
	struct fencer_link *f = from->hb;
	struct msg_fencer_update *m;

	from->hb = NULL;
	if (!f)
		return;
	to->hb = f;
	f->s = to;
	json_decref(f->status);
	f->status = NULL;
	m = calloc(1, sizeof(*m));
	if (!m || cfg_fill(f->d, to, &m->cfg)) {
		/*
		 * The core goes on with the old parameters and record fd,
		 * which stay valid: only the update is lost, and said.
		 */
		pr_err("%s: out of memory: its fencer keeps its old parameters",
		       to->p.uuid);
		free(m);
		return;
	}
	m->id = f->id;
	m->idx = to->idx;
	core_send(&f->d->core, &m->m, fencer_on_update);
}

void fencer_stop(struct fencer_link *f)
{
	struct msg_fencer_stop *m;

	/* After the core ended there is nobody to tell. */
	m = f->d->core.running ? calloc(1, sizeof(*m)) : NULL;
	if (m) {
		m->id = f->id;
		core_send(&f->d->core, &m->m, fencer_on_stop);
	} else if (f->d->core.running) {
		pr_crit("%s: out of memory: its fencer cannot be told to stop",
			f->s->p.uuid);
	}
	f->s->hb = NULL;
	json_decref(f->victims);
	json_decref(f->victims_now);
	json_decref(f->status);
	free(f);
}

static struct fencer_link *link_find(struct daemon *d, uint32_t idx,
				     uint64_t id)
{
	struct storage *s = idx < STORAGE_MAX ? d->storages.slot[idx] : NULL;
	unsigned int i;

	if (s && s->hb && s->hb->id == id)
		return s->hb;
	/* Moved meanwhile (an update rolled back): look everywhere. */
	storage_for_each(&d->storages, i, s)
		if (s->hb && s->hb->id == id)
			return s->hb;
	return NULL;
}

static json_t *census_json(const struct census_report *c)
{
	json_t *list = json_array();

	for (unsigned int i = 0; list && i < c->n; i++) {
		const struct census_vm *v = &c->vms[i];
		json_t *o = json_pack("{s:i,s:s,s:s?}", "pid", v->pid, "exe",
				      v->exe, "vm_uuid",
				      v->uuid[0] ? v->uuid : NULL);

		/* A name that is no UTF-8 still counts as a victim. */
		if (!o)
			o = json_pack("{s:i,s:s,s:n}", "pid", v->pid, "exe",
				      "(not UTF-8)", "vm_uuid");
		json_array_append_new(list, o);
	}
	return list;
}

static void census_take(struct fencer_link *f, const struct census_report *c)
{
	json_t *list = census_json(c);

	if (!list)
		return;
	json_decref(f->victims_now);
	f->victims_now = list;
	f->victims_now_more = c->found > c->n ? c->found - c->n : 0;
	f->victims_now_ns = c->started_ns;
	f->victims_now_scan = c->scan;
}

void fencer_on_report(struct msg *m, void *ctx)
{
	struct msg_fencer_report *r =
		container_of(m, struct msg_fencer_report, m);
	struct daemon *d = ctx;
	struct fencer_link *f = link_find(d, r->idx, r->id);

	if (f) {
		f->snap = r->snap;
		f->have_snap = true;
		json_decref(f->status);
		f->status = NULL;
		if (r->victims) {
			json_decref(f->victims);
			f->victims = r->victims;
			r->victims = NULL;
		}
		if (r->census)
			census_take(f, r->census);
		/*
		 * The kernel fence follows the core's: set from the first
		 * snapshot that is fenced (a fence as it fires, or one that
		 * survived a restart), lifted only by an unfence.
		 */
		if (f->snap.state == HB_FENCED)
			tracker_fence(&d->tracker, f->s);
		else if (r->event && !strcmp(r->event, "STORAGE_UNFENCED")) {
			tracker_unfence(&d->tracker, f->s);
			daemon_net_unfence(d, f->s);
		}
	}
	/* An event of a storage torn down since is still an event. */
	if (r->event)
		daemon_event(d, r->event, r->data);
	else
		json_decref(r->data);
	json_decref(r->victims);
	free(r->census);
	free(r);
}

void fencer_unfence(struct fencer_link *f, uid_t uid, uint64_t conn_id,
		    json_t *req_id)
{
	struct msg_unfence *m = calloc(1, sizeof(*m));

	if (!m) {
		cmd_reply_later(f->d, conn_id,
				proto_error(PROTO_GENERIC_ERROR, req_id,
					    "out of memory"));
		json_decref(req_id);
		return;
	}
	m->id = f->id;
	m->uid = uid;
	m->conn_id = conn_id;
	m->req_id = req_id;
	core_send(&f->d->core, &m->m, fencer_on_unfence);
}

json_t *fencer_unfence_kernel(struct fencer_link *f, uid_t uid, json_t *req_id)
{
	struct daemon *d = f->d;
	const char *uuid = f->s->p.uuid;

	if (f->snap.state != HB_HEALTHY || f->snap.failing)
		return proto_error(
			PROTO_GENERIC_ERROR, req_id,
			"uuid: storage %s is still lost; it stays fenced in the kernel",
			uuid);
	tracker_unfence(&d->tracker, f->s);
	daemon_event(d, "STORAGE_UNFENCED",
		     json_pack("{s:i,s:b,s:s,s:s}", "uid", (int)uid,
			       "kernel_only", 1, "storage", uuid, "host_uuid",
			       f->s->host_uuid));
	return proto_return(json_pack("{s:s,s:s}", "uuid", uuid, "state",
				      "healthy"),
			    req_id);
}

void fencer_on_unfence_done(struct msg *m, void *ctx)
{
	struct msg_unfence_done *r =
		container_of(m, struct msg_unfence_done, m);
	struct daemon *d = ctx;
	json_t *reply;

	if (!r->ret)
		reply = proto_return(json_pack("{s:s,s:s}", "uuid", r->uuid,
					       "state", "healthy"),
				     r->req_id);
	else if (r->ret == -ENOENT)
		reply = proto_error(PROTO_NOT_FOUND, r->req_id, "uuid: %s",
				    r->err);
	else
		reply = proto_error(PROTO_GENERIC_ERROR, r->req_id, "uuid: %s",
				    r->err);
	cmd_reply_later(d, r->conn_id, reply);
	json_decref(r->req_id);
	free(r);
}

uint64_t fencer_writing(const struct fencer_link *f)
{
	return f->snap.writing ? f->snap.seq : 0;
}

json_t *fencer_state_json(const struct fencer_link *f)
{
	if (f->snap.state != HB_FENCED)
		return NULL;
	return json_pack("{s:I,s:s,s:b}", "fenced_at",
			 (json_int_t)f->snap.fenced_real_s, "reason",
			 f->snap.reason, "escalated", f->snap.escalated);
}

/* strerror() calls ETIMEDOUT "Connection timed out", which misleads here. */
static const char *write_error(int err)
{
	return err == ETIMEDOUT ? "write deadline passed" : strerror(err);
}

/*
 * The wall-clock time of the last write that succeeded, from the core's
 * monotonic t_ok: null when none did, on this run or, by the record
 * found when it armed, on an earlier one of this boot.
 */
static json_t *last_ok_at_json(const struct fencer_link *f)
{
	const struct hb_snap *h = &f->snap;
	struct timespec rt;
	int64_t real_ns, ago_ns;

	if (!h->writes_ok && !f->s->t_ok_ns)
		return json_null();
	clock_gettime(CLOCK_REALTIME, &rt);
	ago_ns = (int64_t)loop_now_ns() - (int64_t)h->t_ok_ns;
	real_ns = (int64_t)rt.tv_sec * 1000000000 + rt.tv_nsec - ago_ns;
	return json_pack("{s:I,s:I}", "seconds",
			 (json_int_t)(real_ns / 1000000000), "microseconds",
			 (json_int_t)(real_ns % 1000000000 / 1000));
}

/* What the snapshot says, but for the figures that age with the clock. */
static json_t *status_fixed_json(const struct fencer_link *f)
{
	const struct hb_snap *h = &f->snap;
	json_t *o = json_pack(
		"{s:s,s:I,s:I,s:b,s:b,s:i,s:b,s:I,s:I,s:I,s:s?,s:{s:I,s:I},s:{s:I,s:I}}",
		"state", hb_state_name(h->state), "seq", (json_int_t)h->seq,
		"since_ok_ms", (json_int_t)0, "in_flight", h->writing, "direct",
		f->s->record_direct, "record_size", f->s->record_size,
		"rt_ioprio", h->rt_ioprio, "writes_ok",
		(json_int_t)h->writes_ok, "writes_failed",
		(json_int_t)h->writes_failed, "writes_timed_out",
		(json_int_t)h->writes_timed_out, "last_error",
		h->last_error ? write_error(h->last_error) : NULL, "latency_us",
		"last", (json_int_t)(h->last_latency_ns / 1000), "max",
		(json_int_t)(h->max_latency_ns / 1000), "jitter_us", "last",
		(json_int_t)(h->last_jitter_ns / 1000), "max",
		(json_int_t)(h->max_jitter_ns / 1000));

	if (!o)
		return NULL;
	json_object_set_new(o, "last_ok_at", last_ok_at_json(f));
	json_object_set_new(o, "fences", json_integer((json_int_t)h->fences));
	json_object_set_new(o, "victims_now",
			    f->victims_now ? json_incref(f->victims_now) :
					     json_null());
	json_object_set_new(o, "victims_now_more",
			    json_integer(f->victims_now_more));
	json_object_set_new(o, "victims_now_age_ms",
			    f->victims_now ? json_integer(0) : json_null());
	json_object_set_new(o, "victims_now_scan",
			    f->victims_now ?
				    scan_report_json(&f->victims_now_scan) :
				    json_null());
	if (h->state != HB_FENCED) {
		json_object_set_new(o, "fence_in_ms", json_integer(0));
		return o;
	}
	json_object_set_new(o, "fence_in_ms", json_null());
	json_object_set_new(
		o, "fence",
		json_pack("{s:I,s:s,s:b,s:b,s:b,s:o,s:o}", "fenced_at",
			  (json_int_t)h->fenced_real_s, "reason", h->reason,
			  "completed", h->completed, "escalated", h->escalated,
			  "restored", !h->failing, "victims",
			  f->victims ? json_incref(f->victims) : json_array(),
			  "scan", scan_report_json(&h->scan)));
	return o;
}

json_t *fencer_status_json(struct fencer_link *f)
{
	int64_t since_ok_ms =
		((int64_t)loop_now_ns() - (int64_t)f->snap.t_ok_ns) /
		(int64_t)NS_PER_MS;

	if (!f->status)
		f->status = status_fixed_json(f);
	if (!f->status)
		return NULL;
	json_integer_set(json_object_get(f->status, "since_ok_ms"),
			 since_ok_ms);
	if (f->victims_now)
		json_integer_set(
			json_object_get(f->status, "victims_now_age_ms"),
			((int64_t)loop_now_ns() - (int64_t)f->victims_now_ns) /
				(int64_t)NS_PER_MS);
	if (f->snap.state != HB_FENCED)
		json_integer_set(json_object_get(f->status, "fence_in_ms"),
				 (int64_t)timeline_timeout_ms(&f->s->p) -
					 since_ok_ms);
	return json_incref(f->status);
}
