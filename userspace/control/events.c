// SPDX-License-Identifier: GPL-2.0-only
/* subscribe and query-events: the live event stream and the journal. */
#include "args.h"
#include "commands.h"

json_t *cmd_subscribe(struct daemon *d, struct ctl_conn *c,
		      struct proto_request *req)
{
	struct list_head *pos, *tmp;
	unsigned int subscribers = 0;

	list_for_each_safe(pos, tmp, &d->ctl.conns)
		subscribers +=
			list_entry(pos, struct ctl_conn, link)->subscribed;
	if (!c->subscribed && subscribers >= CTL_MAX_SUBSCRIBERS)
		return proto_error(PROTO_LIMIT_EXCEEDED, req->id,
				   "subscribe: at most %d subscribers at once",
				   CTL_MAX_SUBSCRIBERS);
	c->subscribed = true;
	/* What came before is in the journal: query-events since=seq. */
	return proto_return(
		json_pack("{s:I}", "seq",
			  (json_int_t)journal_last_seq(&d->journal)),
		req->id);
}

json_t *cmd_query_events(struct daemon *d, struct ctl_conn *c,
			 struct proto_request *req)
{
	uint64_t since = 0;
	struct args_err e;
	bool lost;
	json_t *list;

	if (args_uint(req->arguments, "", "since", false, 0, INT64_MAX, &since,
		      &e))
		return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
	list = journal_since(&d->journal, since, &lost);
	return proto_return(
		json_pack("{s:o,s:b,s:I}", "events", list, "lost", lost,
			  "last_seq",
			  (json_int_t)journal_last_seq(&d->journal)),
		req->id);
}
