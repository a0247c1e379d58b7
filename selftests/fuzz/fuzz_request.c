// SPDX-License-Identifier: GPL-2.0-only
/*
 * One request line, as commands_dispatch() takes it: parsed, its
 * command looked up and refused as commands_refuse() refuses, then its
 * command's own argument checks, in the command's real handler, against
 * a daemon that arms nothing:
 *
 * - no storage is armed, so every command that names one (query-storage,
 *   unfence, query-peer, fence-peer, unfence-peer) ends, after checking
 *   its arguments, at NotFound;
 * - the daemon's loop is stopping, so a setup or teardown that passes
 *   every check (storage_params_parse() of each storage, duplicates,
 *   the flight's key) is refused by its flight before any step, and
 *   nothing is opened, written or run: the hostile input never reaches
 *   a storage or the fence hook it names.
 *
 * Three handlers are not called: subscribe and query-status (they take
 * no arguments: the name check is all of their validation) and
 * set-host-state, whose only check, of "state", is made here as it makes
 * it; its handler would persist the change.
 */
#include <string.h>

#include "args.h"
#include "commands.h"
#include "daemon.h"
#include "fuzz.h"
#include "log.h"
#include "proto.h"

static struct daemon *fake_daemon(void)
{
	static struct daemon *d;

	if (d)
		return d;
	log_init("fuzz_request", LOG_CRIT);
	d = calloc(1, sizeof(*d));
	FUZZ_CHECK(d);
	d->loop.stopping = true;
	d->host_state = HOST_CONNECTED;
	d->socket_gid = d->control_gid = (gid_t)-1;
	journal_init(&d->journal);
	list_init(&d->flights);
	list_init(&d->peers);
	list_init(&d->stuck_flights);
	list_init(&d->ctl.conns);
	list_init(&d->ctl.ready);
	list_init(&d->ctl.unread);
	return d;
}

/* A reply is one line, an error or a return, carrying the request's id. */
static void check_reply(json_t *reply, json_t *id)
{
	json_t *err = json_object_get(reply, "error");
	size_t len;
	char *line;

	FUZZ_CHECK(reply);
	FUZZ_CHECK(!!err != !!json_object_get(reply, "return"));
	if (err) {
		json_t *data = json_object_get(err, "data");

		FUZZ_CHECK(json_is_string(json_object_get(err, "class")));
		FUZZ_CHECK(json_is_string(json_object_get(err, "desc")));
		/* The facts for programs are all there, whatever was cut. */
		if (data) {
			FUZZ_CHECK(
				json_is_string(json_object_get(data, "rule")));
			FUZZ_CHECK(json_is_string(
				json_object_get(data, "reason")));
		}
		/* An argument's error names it, unless its name is "". */
		if (data &&
		    strcmp(json_string_value(json_object_get(data, "rule")),
			   "host_state") &&
		    strncmp(json_string_value(json_object_get(err, "desc")),
			    ": ", 2))
			FUZZ_CHECK(json_is_string(
				json_object_get(data, "member")));
	}
	if (id)
		FUZZ_CHECK(json_equal(json_object_get(reply, "id"), id));
	else
		FUZZ_CHECK(!json_object_get(reply, "id"));
	line = proto_dump_line(reply, &len);
	FUZZ_CHECK(line);
	FUZZ_CHECK(len && line[len - 1] == '\n');
	FUZZ_CHECK(memchr(line, '\n', len) == line + len - 1);
	free(line);
}

static json_t *set_host_state_check(struct proto_request *req)
{
	const char *name = NULL;
	enum host_state s;
	struct args_err e;

	if (args_string(req->arguments, "", "state", true, &name, &e))
		return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
	if (host_state_parse(name, &s)) {
		args_fail(&e, "", "state", "must be a host state");
		return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
	}
	return proto_return(NULL, req->id);
}

static json_t *run(struct daemon *d, struct ctl_conn *c,
		   const struct command *cmd, struct proto_request *req)
{
	if (!strcmp(cmd->name, "set-host-state"))
		return set_host_state_check(req);
	if (!strcmp(cmd->name, "subscribe") ||
	    !strcmp(cmd->name, "query-status"))
		return proto_return(NULL, req->id);
	return cmd->fn(d, c, req);
}

int fuzz_request(const uint8_t *data, size_t size)
{
	struct daemon *d = fake_daemon();
	struct ctl_conn c = { .id = 1, .fd = -1 };
	const struct command *cmd;
	struct proto_request req;
	json_t *reply;

	if (proto_parse_request((const char *)data, size, &req, &reply)) {
		FUZZ_CHECK(!req.root);
		check_reply(reply, json_object_get(reply, "id"));
		return 0;
	}
	FUZZ_CHECK(req.execute && json_is_object(req.arguments));
	cmd = command_find(req.execute);
	/* c's credentials are root's: every command gets to its checks. */
	reply = commands_refuse(d, &c, cmd, &req);
	if (!reply)
		reply = run(d, &c, cmd, &req);
	/* Only a flight answers later, and this daemon's refuse at once. */
	if (reply)
		check_reply(reply, req.id);
	else
		FUZZ_CHECK(!strcmp(cmd->name, "setup") ||
			   !strcmp(cmd->name, "teardown"));
	FUZZ_CHECK(list_empty(&d->flights));
	FUZZ_CHECK(list_empty(&d->peers));
	FUZZ_CHECK(d->storages.count == 0);
	proto_request_free(&req);
	return 0;
}
FUZZ_ENTRY(fuzz_request);
