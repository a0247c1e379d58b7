// SPDX-License-Identifier: GPL-2.0-only
#include <string.h>

#include "args.h"
#include "commands.h"
#include "log.h"

static json_t *cmd_query_version(struct daemon *d, struct ctl_conn *c,
				 struct proto_request *req)
{
	static const char *const none[] = { NULL };
	struct args_err e;

	if (args_only(req->arguments, "", none, &e))
		return proto_error(PROTO_INVALID_ARGUMENT, req->id, "%s",
				   e.msg);
	return proto_return(json_pack("{s:i,s:i,s:i,s:s}", "major",
				      IOFENCE_VERSION_MAJOR, "minor",
				      IOFENCE_VERSION_MINOR, "micro",
				      IOFENCE_VERSION_MICRO, "package",
				      "iofence"),
			    req->id);
}

static json_t *cmd_query_commands(struct daemon *d, struct ctl_conn *c,
				  struct proto_request *req)
{
	json_t *list = json_array();

	for (const struct command *cmd = commands; cmd->name; cmd++)
		json_array_append_new(list,
				      json_pack("{s:s,s:b,s:s}", "name",
						cmd->name, "mutating",
						cmd->mutating, "summary",
						cmd->summary));
	return proto_return(json_pack("{s:o}", "commands", list), req->id);
}

const struct command commands[] = {
	{ "query-version", false, cmd_query_version,
	  "the daemon's version" },
	{ "query-commands", false, cmd_query_commands,
	  "every command, whether it changes state, and what it does" },
	{ "query-status", false, cmd_query_status,
	  "the daemon, the BPF tracker, and every armed storage with its I/O counters" },
	{ "setup", true, cmd_setup,
	  "arm a host's storages: open their targets and track their block devices" },
	{},
};

const struct command *command_find(const char *name)
{
	for (const struct command *cmd = commands; cmd->name; cmd++)
		if (!strcmp(cmd->name, name))
			return cmd;
	return NULL;
}

json_t *commands_capabilities(void)
{
	return json_pack("[s]", "bpf-block-evidence");
}

void cmd_reply_later(struct daemon *d, uint64_t conn_id, json_t *msg)
{
	struct ctl_conn *c = ctl_server_find(&d->ctl, conn_id);

	if (c)
		ctl_conn_send(c, msg);
	else
		json_decref(msg);
}

static bool may_mutate(const struct daemon *d, const struct ctl_conn *c)
{
	return c->cred.uid == 0 ||
	       (d->socket_gid != (gid_t)-1 && c->cred.gid == d->socket_gid);
}

void commands_dispatch(void *ctx, struct ctl_conn *c, char *line, size_t len)
{
	struct daemon *d = ctx;
	struct proto_request req;
	const struct command *cmd;
	json_t *reply;

	d->requests++;
	if (proto_parse_request(line, len, &req, &reply)) {
		ctl_conn_send(c, reply);
		return;
	}
	cmd = command_find(req.execute);
	if (!cmd)
		reply = proto_error(PROTO_COMMAND_NOT_FOUND, req.id,
				    "execute: unknown command '%s'",
				    req.execute);
	else if (cmd->mutating && !may_mutate(d, c))
		reply = proto_error(PROTO_PERMISSION_DENIED, req.id,
				    "%s: changes state; only root or the socket group may (you are uid %d gid %d)",
				    cmd->name, (int)c->cred.uid,
				    (int)c->cred.gid);
	else
		reply = cmd->fn(d, c, &req);
	if (reply)
		ctl_conn_send(c, reply);
	proto_request_free(&req);
}
