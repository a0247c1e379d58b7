/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The command table and the dispatcher. A handler returns the reply
 * message, or NULL when the reply comes later (it then owns sending it,
 * through cmd_reply_later()).
 */
#ifndef IOFENCE_COMMANDS_H
#define IOFENCE_COMMANDS_H

#include <stdbool.h>
#include <jansson.h>

#include "ctl_server.h"
#include "daemon.h"
#include "proto.h"

struct command {
	const char *name;
	bool mutating; /* needs root or the control group */
	json_t *(*fn)(struct daemon *d, struct ctl_conn *c,
		      struct proto_request *req);
	const char *summary;
	/*
	 * The argument names it takes; the dispatcher refuses others, once
	 * the caller's rights are checked. NULL: it ignores any.
	 */
	const char *const *args;
};

/* Argument names of the commands whose handlers live elsewhere. */
extern const char *const setup_args[];
extern const char *const teardown_args[];
extern const char *const peer_args[];
extern const char *const fence_peer_args[];
extern const char *const unfence_peer_args[];

extern const struct command commands[];

const struct command *command_find(const char *name);
/*
 * The refusal commands_dispatch() answers before a command runs: unknown
 * command, missing rights, an argument name the command does not take.
 * NULL when the command may run.
 */
json_t *commands_refuse(const struct daemon *d, const struct ctl_conn *c,
			const struct command *cmd,
			const struct proto_request *req);
/* ctl_server's dispatcher; @ctx is the daemon. */
void commands_dispatch(void *ctx, struct ctl_conn *c, char *line, size_t len);
/* The greeting's and query-capabilities' list: what this daemon can do here. */
json_t *commands_capabilities(const struct daemon *d);

/* Sends a deferred reply to connection @conn_id if it is still there. */
void cmd_reply_later(struct daemon *d, uint64_t conn_id, json_t *msg);

/* Handlers, one file each. */
json_t *cmd_setup(struct daemon *d, struct ctl_conn *c,
		  struct proto_request *req);
json_t *cmd_teardown(struct daemon *d, struct ctl_conn *c,
		     struct proto_request *req);
json_t *cmd_query_status(struct daemon *d, struct ctl_conn *c,
			 struct proto_request *req);
json_t *cmd_query_storage(struct daemon *d, struct ctl_conn *c,
			  struct proto_request *req);
json_t *cmd_subscribe(struct daemon *d, struct ctl_conn *c,
		      struct proto_request *req);
json_t *cmd_query_peer(struct daemon *d, struct ctl_conn *c,
		       struct proto_request *req);
json_t *cmd_unfence(struct daemon *d, struct ctl_conn *c,
		    struct proto_request *req);
json_t *cmd_fence_peer(struct daemon *d, struct ctl_conn *c,
		       struct proto_request *req);
json_t *cmd_unfence_peer(struct daemon *d, struct ctl_conn *c,
			 struct proto_request *req);
/* Frees what query-peer still has under way, after the loop stopped. */
void peer_queries_free(struct daemon *d);
json_t *cmd_query_events(struct daemon *d, struct ctl_conn *c,
			 struct proto_request *req);

#endif
