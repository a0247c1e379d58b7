// SPDX-License-Identifier: GPL-2.0-only
/* query-status: what the daemon holds, for people and programs. */
#include <stdio.h>
#include <sys/sysmacros.h>

#include "args.h"
#include "commands.h"

/* The block evidence the BPF tracker holds for the storage's device. */
static json_t *io_json(struct daemon *d, const struct storage *s)
{
	struct dev_stats st;
	char dev[32];

	if (!s->dev)
		return json_null();
	snprintf(dev, sizeof(dev), "%u:%u", major(s->dev), minor(s->dev));
	if (tracker_read_dev(&d->tracker, tracker_kdev(s->dev), &st))
		return json_pack("{s:s,s:b}", "device", dev, "tracked", 0);
	return json_pack("{s:s,s:b,s:I,s:I,s:I,s:i}", "device", dev, "tracked",
			 1, "completions", (json_int_t)st.completions,
			 "errors", (json_int_t)st.errors, "bytes",
			 (json_int_t)st.bytes, "last_error", st.last_error);
}

static json_t *storage_json(struct daemon *d, const struct storage *s)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:i,s:b,s:I,s:o}", "uuid", s->uuid,
			 "host_uuid", s->host_uuid, "type",
			 storage_type_name(s->type), "target", s->target,
			 "index", s->idx, "reconnect", s->reconnect,
			 "armed_at", (json_int_t)s->armed_real_s, "io",
			 io_json(d, s));
}

json_t *cmd_query_status(struct daemon *d, struct ctl_conn *c,
			 struct proto_request *req)
{
	static const char *const none[] = { NULL };
	json_t *list = json_array();
	struct args_err e;
	struct storage *s;
	unsigned int i;

	if (args_only(req->arguments, "", none, &e)) {
		json_decref(list);
		return proto_error(PROTO_INVALID_ARGUMENT, req->id, "%s",
				   e.msg);
	}
	storage_for_each(&d->storages, i, s)
		json_array_append_new(list, storage_json(d, s));
	return proto_return(
		json_pack("{s:I,s:I,s:{s:b,s:s?},s:I,s:o}", "uptime_ms",
			  (json_int_t)(loop_now_ms() - d->start_mono_ms),
			  "requests", (json_int_t)d->requests, "bpf",
			  "active", d->tracker.active, "pin_dir",
			  d->tracker.active ? d->tracker.pin_dir : NULL,
			  "connections", (json_int_t)d->ctl.nconns,
			  "storages", list),
		req->id);
}
