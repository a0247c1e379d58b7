// SPDX-License-Identifier: GPL-2.0-only
/* query-status and query-storage: what the daemon holds. */
#include <stdio.h>
#include <sys/sysmacros.h>

#include "args.h"
#include "commands.h"
#include "fencer.h"
#include "json_put.h"
#include "lag.h"
#include "netfence.h"
#include "timeline.h"

/*
 * What the kernel saw of the storage: its BPF slot (tracker.h); for an
 * rbd storage, what the network fence refused its victims' sockets.
 */
static json_t *io_json(struct daemon *d, const struct storage *s)
{
	if (s->p.type != STORAGE_RBD)
		return tracker_json(&d->tracker, s);
	if (!d->net)
		return json_pack("{s:n}", "net_fence");
	return json_pack("{s:{s:I,s:I}}", "net_fence", "packets_dropped",
			 (json_int_t)netfence_dropped(d->net, s->idx),
			 "connects_refused",
			 (json_int_t)netfence_refused(d->net, s->idx));
}

/* Every figure of the contract, from timeline.h, as peers compute it. */
static json_t *timeline_json(struct daemon *d, const struct storage *s)
{
	const struct storage_params *p = &s->p;

	return json_pack(
		"{s:I,s:I,s:I,s:I}", "late_ms", (json_int_t)timeline_late_ms(p),
		"fence_ms", (json_int_t)timeline_timeout_ms(p), "escalate_ms",
		(json_int_t)timeline_escalate_ms(p), "fence_deadline_ms",
		(json_int_t)timeline_fence_deadline_ms(p,
						       d->core.wd.timeout_ms));
}

static json_t *storage_fixed_json(struct daemon *d, const struct storage *s)
{
	return json_pack("{s:s,s:s,s:s,s:i,s:b,s:I,s:I,s:I,s:o,s:o,s:n,s:n}",
			 "uuid", s->p.uuid, "host_uuid", s->host_uuid, "state",
			 "armed", "index", s->idx, "reconnect", s->reconnect,
			 "flight", (json_int_t)s->flight, "armed_at",
			 (json_int_t)s->armed_real_s, "updated_at",
			 (json_int_t)s->updated_real_s, "params",
			 storage_params_json(&s->p), "timeline",
			 timeline_json(d, s), "heartbeat", "io");
}

/*
 * A status poller asks far more often than anything changes: the fixed
 * part is built once, and only the live parts are set per query. The
 * object is shared with the next query, so the reply is encoded (as
 * replies are, at once) before it changes again.
 */
static json_t *storage_json(struct daemon *d, struct storage *s)
{
	json_t *hb;

	if (!s->status)
		s->status = storage_fixed_json(d, s);
	if (!s->status)
		return NULL;
	hb = s->hb ? fencer_status_json(s->hb) : json_null();
	if (json_object_set_new(s->status, "heartbeat", hb) ||
	    json_object_set_new(s->status, "io", io_json(d, s)))
		return NULL;
	return json_incref(s->status);
}

/* The device is the core's; what it does with it, the core reports. */
static void watchdog_put(json_t *o, const struct daemon *d)
{
	const struct watchdog *w = &d->core.wd;
	json_t *x;

	if (w->fd < 0) {
		json_object_set_new(o, "watchdog", json_null());
		return;
	}
	x = json_put_obj(o, "watchdog");
	json_put_str(x, "path", w->path);
	json_put_int(x, "timeout_ms", w->timeout_ms);
	json_put_bool(x, "petting", !d->core_last.wd_holding);
	json_put_int(x, "pets", (json_int_t)d->core_last.wd_pets);
	json_put_bool(x, "failing", d->core_last.wd_failing);
	json_put_int(x, "failed", (json_int_t)d->core_last.wd_failed);
	json_put_str(x, "last_error",
		     d->core_last.wd_failed ? strerror(d->core_last.wd_errno) :
					      NULL);
}

/* How late each side runs, and the core's workers. */
static void lag_put(json_t *o, const struct daemon *d)
{
	const struct msg_core_report *r = &d->core_last;
	struct lag_summary control;
	json_t *w;

	lag_summarize(&d->lag, loop_now_ns(), &control);
	lag_summary_put(json_put_obj(o, "core"), &r->lag);
	lag_summary_put(json_put_obj(o, "control"), &control);
	w = json_put_obj(o, "workers");
	json_put_int(w, "started", (json_int_t)r->workers);
	json_put_int(w, "busy", (json_int_t)r->workers_busy);
	json_put_int(w, "stuck", (json_int_t)r->workers_stuck);
	json_put_int(o, "core_report_age_ms",
		     (json_int_t)(loop_now_ms() - d->core_seen_ms));
}

/*
 * The reply is one object kept from query to query: its shape does not
 * change, so a query puts the figures in place (json_put.h) instead of
 * building some fifty values anew. Replies are encoded at once, before
 * the next query changes it.
 */
json_t *cmd_query_status(struct daemon *d, struct ctl_conn *c,
			 struct proto_request *req)
{
	json_t *o = d->status, *x, *list;
	struct storage *s;
	unsigned int i;

	if (!o && !(o = d->status = json_object()))
		return proto_error(PROTO_GENERIC_ERROR, req->id,
				   "out of memory");
	json_put_str(o, "host_state", host_state_name(d->host_state));
	json_put_int(o, "uptime_ms",
		     (json_int_t)(loop_now_ms() - d->start_mono_ms));
	json_put_int(o, "requests", (json_int_t)d->requests);
	if ((x = json_put_obj(o, "handler_ns"))) {
		json_put_int(x, "mean",
			     (json_int_t)(d->handled ? d->handler_ns_total /
							       d->handled :
						       0));
		json_put_int(x, "max", (json_int_t)d->handler_ns_max);
	}
	if ((x = json_put_obj(o, "bpf"))) {
		json_put_bool(x, "active", d->tracker.active);
		json_put_str(x, "pin_dir",
			     d->tracker.active ? d->tracker.pin_dir : NULL);
		json_put_bool(x, "write_fence",
			      d->tracker.active && d->tracker.write_fence);
	}
	watchdog_put(o, d);
	if ((x = json_put_obj(o, "lag")))
		lag_put(x, d);
	json_put_int(o, "connections", (json_int_t)d->ctl.nconns);
	if ((x = json_put_obj(o, "clients")))
		ctl_server_stats_put(x, &d->ctl);
	json_put_int(o, "last_seq", (json_int_t)journal_last_seq(&d->journal));
	if ((list = json_put_array(o, "storages")))
		storage_for_each(&d->storages, i, s)
			json_array_append_new(list, storage_json(d, s));
	json_object_set(o, "unarmed", d->unarmed);
	return proto_return(json_incref(o), req->id);
}

json_t *cmd_query_storage(struct daemon *d, struct ctl_conn *c,
			  struct proto_request *req)
{
	const char *uuid = NULL;
	struct args_err e;
	struct storage *s;

	if (args_string(req->arguments, "", "uuid", true, &uuid, &e))
		return proto_error(PROTO_INVALID_ARGUMENT, req->id, "%s",
				   e.msg);
	s = storage_find(&d->storages, uuid);
	if (!s)
		return proto_error(PROTO_NOT_FOUND, req->id,
				   "uuid: no storage %s is armed", uuid);
	return proto_return(storage_json(d, s), req->id);
}
