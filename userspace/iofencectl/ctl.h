/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * What iofencectl's parts share: the connection to the daemon, the exit
 * statuses, the values of its command line and the forms of its output.
 */
#ifndef IOFENCE_CTL_H
#define IOFENCE_CTL_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "deadlines.h"
#include "linebuf.h"

enum {
	CTL_EXIT_OK,
	CTL_EXIT_ERROR_REPLY,
	CTL_EXIT_USAGE, /* also: no connection, no reply */
	/* Each of these for one subcommand only: */
	CTL_EXIT_UNREACHABLE = 3, /* connect: no connection, no reply */
	CTL_EXIT_NOT_ARMED =
		3, /* teardown: some of what it named was not armed */
};

/*
 * setup and teardown answer once the state file is written, which their
 * own deadline does not bound: a write already under way, then theirs,
 * each of five stages of up to PERSIST_STEP_DEADLINE_MS. A client that
 * gave up sooner would not know what is armed.
 */
#define CTL_PERSIST_MARGIN_MS (2 * 5 * PERSIST_STEP_DEADLINE_MS)

/* What the command line asked of a subcommand. */
struct invocation {
	int argc;
	char **argv; /* argv[0] is the subcommand */
	json_t *args; /* the request's arguments; NULL: none */
	int deadline_ms; /* the daemon's own deadline for it; 0: none */
	const char *execute; /* NULL: the subcommand's own command */
	bool answered; /* the status is status_of()'s */
};

struct subcommand;

/* peer: its answer is its exit status; anything else that failed is 3. */
enum {
	PEER_EXIT_ALIVE,
	PEER_EXIT_DEAD,
	PEER_EXIT_UNKNOWN,
	PEER_EXIT_FAILED,
};

enum kind { KIND_STRING, KIND_UINT, KIND_DURATION, KIND_BOOL, KIND_LIST };

/*
 * An option of iofencectl or of a subcommand: its help, its getopt entry
 * and the protocol argument it gives, which names it in the daemon's
 * errors.
 */
struct opt_spec {
	const char *name; /* the long option, without "--" */
	int val; /* what getopt returns for it */
	bool short_too; /* val is also its short option, -val */
	const char *arg; /* its value, as help names it; NULL: none */
	const char *key; /* the protocol argument it gives; NULL: none */
	enum kind kind; /* that argument's kind of value */
	const char *help; /* '\n' breaks a line */
};

struct client {
	int fd;
	struct linebuf in;
	int timeout_ms; /* for each reply */
	bool timeout_given; /* then also for setup and teardown */
	int wait_ms; /* what the read under way waits, for its error */
	json_int_t next_id;
	bool json;
	/* The subcommand under way: how its errors name its arguments. */
	const char *sub;
	const struct opt_spec *opts; /* NULL-named end; NULL: none */
	const char *positional; /* the key of its one argument, or NULL */
};

/* watch ends on SIGINT or SIGTERM with status 0. */
extern volatile sig_atomic_t ctl_interrupted;

/* client.c */
int client_connect(struct client *cl, const char *path);
int64_t now_ms(void);
json_t *client_read(struct client *cl, int64_t deadline);
int send_all(int fd, const char *buf, size_t len);
json_t *client_call(struct client *cl, const char *execute, json_t *args,
		    int wait_ms);
int call(struct client *cl, const char *execute, json_t *args, int wait_ms,
	 json_t **reply);

/* spec.c */
/* The nearest of the names considered, if it is near enough @typed. */
struct suggestion {
	const char *typed;
	const char *best;
	int dist;
	int ties;
};

#define DURATION_RULE "500ms, 2s, 1.5s, 1m, or a number of ms"

int parse_duration(const char *s, uint64_t *ms, const char **why);
json_t *parse_value(enum kind kind, const char *text, const char **why);
json_t *parse_storage(const char *spec);
/* The command line's name of storage key @key (protocol's or not); NULL: none. */
const char *spec_key_word(const char *key);
enum kind spec_key_kind(const char *key);
void spec_keys_help(FILE *out, int column);
void spec_keys_consider(struct suggestion *sg);
void suggest_consider(struct suggestion *sg, const char *name);
const char *suggest_result(const struct suggestion *sg);

/* iofencectl.c: a subcommand's own options. */
void options_start(void);
int next_option(struct invocation *inv, const struct opt_spec *opts);
int no_more_arguments(struct invocation *inv);

/* connect.c: the connect agent's hook. */
extern const struct opt_spec connect_opts[];
extern const char connect_description[];
int parse_connect(struct invocation *inv);
int run_connect(struct client *cl, const struct subcommand *sc,
		struct invocation *inv);

/* fmt.c: short formatted text, by value so it can go inline in printf. */
struct text {
	char s[64];
};

int clamp_int(int64_t v);
json_int_t int_of(json_t *obj, const char *key);
const char *str_of(json_t *obj, const char *key);
struct text fmt_duration(json_int_t ms);
struct text fmt_left(json_int_t ms);
struct text fmt_bytes(json_int_t bytes);
struct text fmt_time(json_int_t sec, json_int_t usec);
struct text fmt_stamp(json_t *ts);
struct text fmt_deadline(json_t *timeline);
void print_json(json_t *v);
/* @text; each line after a '\n' in it indented to @column. */
void print_indented(FILE *out, const char *text, int column);
int max_width(json_t *list, const char *key, int min);

/* print.c: each reply for people. */
void print_status(json_t *ret);
void print_storage(json_t *s);
void print_version(json_t *ret);
void print_capabilities(json_t *ret);
void print_commands(json_t *ret);
void print_host_state(json_t *ret);
void print_unfence(json_t *ret);
void print_peer(json_t *ret);
int peer_status(json_t *ret);
void print_flight(json_t *ret);
void print_event(const struct client *cl, json_t *ev);

/* metrics.c: query-status in the OpenMetrics text format. */
void print_metrics(json_t *ret);

#endif
