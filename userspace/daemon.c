// SPDX-License-Identifier: GPL-2.0-only
/* The daemon's state as a whole: host state, events, the persisted form. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "log.h"

#define STATE_DOC_VERSION 1

static const char *const host_state_names[] = {
	[HOST_CONNECTING] = "connecting",
	[HOST_CONNECTED] = "connected",
	[HOST_DISCONNECTED] = "disconnected",
};

const char *host_state_name(enum host_state s)
{
	return host_state_names[s];
}

int host_state_parse(const char *name, enum host_state *s)
{
	for (unsigned int i = 0; i < 3; i++) {
		if (!strcmp(name, host_state_names[i])) {
			*s = i;
			return 0;
		}
	}
	return -EINVAL;
}

json_t *daemon_state_doc(struct daemon *d)
{
	json_t *list = json_array();
	struct storage *s;
	unsigned int i;

	storage_for_each(&d->storages, i, s)
		json_array_append_new(
			list, json_pack("{s:s,s:b,s:I,s:I,s:I,s:o}", "host_uuid",
					s->host_uuid, "reconnect", s->reconnect,
					"flight", (json_int_t)s->flight,
					"armed_at", (json_int_t)s->armed_real_s,
					"updated_at",
					(json_int_t)s->updated_real_s, "params",
					storage_params_json(&s->p)));
	return json_pack("{s:i,s:s,s:o,s:o}", "version", STATE_DOC_VERSION,
			 "host_state", host_state_name(d->host_state),
			 "storages", list, "journal",
			 journal_save(&d->journal));
}

void daemon_event(struct daemon *d, const char *name, json_t *data)
{
	struct list_head *pos, *tmp;
	json_t *msg = journal_add(&d->journal, name, data);
	char *text;

	if (!msg) {
		pr_err("event %s: out of memory; not journalled", name);
		return;
	}
	text = json_dumps(json_object_get(msg, "data"), JSON_COMPACT);
	pr_info("event %s %s", name, text ? text : "");
	free(text);
	list_for_each_safe(pos, tmp, &d->ctl.conns) {
		struct ctl_conn *c = list_entry(pos, struct ctl_conn, link);

		if (c->subscribed && !c->closing)
			ctl_conn_send(c, json_incref(msg));
	}
	persist_kick(&d->persist);
}
