// SPDX-License-Identifier: GPL-2.0-only
#include <limits.h>
#include <string.h>
#include <sys/socket.h>

#include "args.h"
#include "commands.h"
#include "fencer.h"
#include "log.h"

static json_t *cmd_query_version(struct daemon *d, struct ctl_conn *c,
				 struct proto_request *req)
{
	return proto_return(
		json_pack("{s:i,s:i,s:i,s:s}", "major", IOFENCE_VERSION_MAJOR,
			  "minor", IOFENCE_VERSION_MINOR, "micro",
			  IOFENCE_VERSION_MICRO, "package", "iofence"),
		req->id);
}

static json_t *cmd_query_commands(struct daemon *d, struct ctl_conn *c,
				  struct proto_request *req)
{
	json_t *list = json_array();

	for (const struct command *cmd = commands; cmd->name; cmd++)
		json_array_append_new(list, json_pack("{s:s,s:b,s:s}", "name",
						      cmd->name, "mutating",
						      cmd->mutating, "summary",
						      cmd->summary));
	return proto_return(json_pack("{s:o}", "commands", list), req->id);
}

static json_t *cmd_query_capabilities(struct daemon *d, struct ctl_conn *c,
				      struct proto_request *req)
{
	return proto_return(json_pack("{s:o,s:b}", "capabilities",
				      commands_capabilities(d), "bpf",
				      d->tracker.active),
			    req->id);
}

static json_t *cmd_set_host_state(struct daemon *d, struct ctl_conn *c,
				  struct proto_request *req)
{
	enum host_state prev = d->host_state, next;
	const char *name = NULL;
	struct args_err e;

	if (args_string(req->arguments, "", "state", true, &name, &e))
		return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
	if (host_state_parse(name, &next)) {
		args_fail(
			&e, "", "state",
			"must be \"connecting\", \"connected\" or \"disconnected\"");
		return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
	}
	d->host_state = next;
	if (prev != next)
		daemon_event(d, "HOST_STATE_CHANGED",
			     json_pack("{s:s,s:s,s:i}", "state", name,
				       "previous", host_state_name(prev), "uid",
				       (int)c->cred.uid));
	return proto_return(json_pack("{s:s,s:s}", "state", name, "previous",
				      host_state_name(prev)),
			    req->id);
}

/* Lifts a fence once the storage is back: an operator's decision. */
json_t *cmd_unfence(struct daemon *d, struct ctl_conn *c,
		    struct proto_request *req)
{
	const char *uuid = NULL;
	struct args_err e;
	struct storage *s;

	if (args_string(req->arguments, "", "uuid", true, &uuid, &e))
		return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
	s = storage_find(&d->storages, uuid);
	if (!s || !s->hb) {
		args_fail(&e, "", "uuid", "no storage %s is armed", uuid);
		return args_error(PROTO_NOT_FOUND, req->id, &e);
	}
	/* The dead man's switch fenced it while the core did not. */
	if (s->hb->snap.state != HB_FENCED && tracker_fenced(&d->tracker, s))
		return fencer_unfence_kernel(s->hb, c->cred.uid, req->id);
	/* The fence is the core's: it answers, at once, by message. */
	fencer_unfence(s->hb, c->cred.uid, c->id,
		       req->id ? json_incref(req->id) : NULL);
	return NULL;
}

const char *const peer_args[] = { "storage", "host", "slot", "window_ms",
				  NULL };
const char *const fence_peer_args[] = { "storage", "host", "window_ms", "force",
					NULL };
const char *const unfence_peer_args[] = { "storage", "host", NULL };
static const char *const no_args[] = { NULL };
static const char *const uuid_args[] = { "uuid", NULL };
static const char *const since_args[] = { "since", NULL };
static const char *const state_args[] = { "state", NULL };

const struct command commands[] = {
	{ "query-version", false, cmd_query_version, "the daemon's version",
	  no_args },
	/*
	 * A client learns what this daemon takes from these two: they
	 * answer whatever a client of another version sends them.
	 */
	{ "query-capabilities", false, cmd_query_capabilities,
	  "what this daemon can do on this machine", NULL },
	{ "query-commands", false, cmd_query_commands,
	  "every command, whether it changes state, and what it does", NULL },
	{ "query-status", false, cmd_query_status,
	  "the host state and every armed storage with its parameters, timeline and I/O counters",
	  no_args },
	{ "query-storage", false, cmd_query_storage,
	  "one armed storage, by uuid", uuid_args },
	{ "query-events", false, cmd_query_events,
	  "the journalled events after a sequence number", since_args },
	{ "subscribe", false, cmd_subscribe,
	  "send this connection every event from now on", no_args },
	{ "set-host-state", true, cmd_set_host_state,
	  "record the host's state on the management side", state_args },
	{ "setup", true, cmd_setup,
	  "arm a batch of a host's storages, all or nothing", setup_args },
	{ "teardown", true, cmd_teardown,
	  "disarm some or all of a host's storages", teardown_args },
	{ "unfence", true, cmd_unfence,
	  "lift the fence of a storage whose heartbeats succeed again",
	  uuid_args },
	{ "query-peer", false, cmd_query_peer,
	  "whether another host still writes heartbeats to a storage, over an observation window",
	  peer_args },
	{ "fence-peer", true, cmd_fence_peer,
	  "have the cluster refuse a dead peer's writes (rbd: osd blocklist)",
	  fence_peer_args },
	{ "unfence-peer", true, cmd_unfence_peer,
	  "lift a fence-peer: the cluster takes the peer's writes again",
	  unfence_peer_args },
	{},
};

const struct command *command_find(const char *name)
{
	for (const struct command *cmd = commands; cmd->name; cmd++)
		if (!strcmp(cmd->name, name))
			return cmd;
	return NULL;
}

json_t *commands_capabilities(const struct daemon *d)
{
	json_t *caps = json_pack("[s,s,s,s]", "single-flight", "reconnect",
				 "no-status-check", "event-journal");

	/* The LSM programs run: fenced storages refuse writes in the kernel. */
	if (caps && d->tracker.active && d->tracker.write_fence)
		json_array_append_new(caps, json_string("kernel-write-fence"));
	return caps;
}

void cmd_reply_later(struct daemon *d, uint64_t conn_id, json_t *msg)
{
	struct ctl_conn *c = ctl_server_find(&d->ctl, conn_id);

	if (!c) {
		json_decref(msg);
		return;
	}
	c->awaiting--;
	ctl_conn_send(c, msg);
}

/* Root, or a member of the control group, primary or supplementary. */
static bool may_mutate(const struct daemon *d, const struct ctl_conn *c)
{
	gid_t groups[NGROUPS_MAX];
	socklen_t len = sizeof(groups);

	if (c->cred.uid == 0)
		return true;
	if (d->control_gid == (gid_t)-1)
		return false;
	if (c->cred.gid == d->control_gid)
		return true;
	if (getsockopt(c->fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len))
		return false;
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		if (groups[i] == d->control_gid)
			return true;
	return false;
}

/* The daemon time a command takes, reported by query-status. */
static json_t *cmd_timed(struct daemon *d, const struct command *cmd,
			 struct ctl_conn *c, struct proto_request *req)
{
	uint64_t t0 = loop_now_ns(), ns;
	json_t *reply = cmd->fn(d, c, req);

	ns = loop_now_ns() - t0;
	d->handled++;
	d->handler_ns_total += ns;
	if (ns > d->handler_ns_max)
		d->handler_ns_max = ns;
	return reply;
}

json_t *commands_refuse(const struct daemon *d, const struct ctl_conn *c,
			const struct command *cmd,
			const struct proto_request *req)
{
	struct args_err e;

	/*
	 * Rights before arguments: a caller without them learns nothing
	 * about the arguments, not even which names a command takes.
	 */
	if (!cmd)
		return proto_error(PROTO_COMMAND_NOT_FOUND, req->id,
				   "execute: unknown command '%s'",
				   req->execute);
	if (cmd->mutating && !may_mutate(d, c))
		return proto_error(
			PROTO_PERMISSION_DENIED, req->id,
			"%s: changes state; only root or the control group may (you are uid %d gid %d)",
			cmd->name, (int)c->cred.uid, (int)c->cred.gid);
	if (cmd->args && args_only(req->arguments, "", cmd->args, &e))
		return args_error(PROTO_INVALID_ARGUMENT, req->id, &e);
	return NULL;
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
	reply = commands_refuse(d, c, cmd, &req);
	if (!reply)
		reply = cmd_timed(d, cmd, c, &req);
	if (reply)
		ctl_conn_send(c, reply);
	else
		c->awaiting++;
	proto_request_free(&req);
}
