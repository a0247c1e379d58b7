// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofencectl: the client of iofenced's control socket, for the connect
 * agent, operators and scripts. Each subcommand is one protocol command
 * (watch adds the journal to its subscription); replies print for people,
 * or as JSON with --json; exits non-zero on an error reply, with its text
 * on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "ctl.h"
#include "ctl_server.h"
#include "deadlines.h"
#include "proto.h"

/* How long to wait for the daemon's reply unless --timeout says. */
#define CTL_DEFAULT_TIMEOUT_MS 30000
/* Where a subcommand's summary starts in --help. */
#define HELP_COLUMN 26

struct subcommand {
	const char *name;
	const char *execute; /* the protocol command, also accepted as name */
	const char *usage; /* its arguments, for --help */
	const char *summary;
	const char *positional; /* the key of its one argument; NULL: none */
	int (*parse)(struct invocation *inv);
	void (*print)(json_t *ret);
	/* The exit status its reply means; NULL: 0. */
	int (*status_of)(json_t *ret);
	int fail_status; /* when it fails otherwise; 0: the usual ones */
	/* NULL: one request, its reply printed by print(). */
	int (*run)(struct client *cl, const struct subcommand *sc,
		   struct invocation *inv);
	/* The exit status when the daemon cannot be reached; 0: usage's. */
	int unreachable;
	/* For `iofencectl help NAME`: what it does, at length, and its options. */
	const char *description;
	const struct opt_spec *opts;
};

volatile sig_atomic_t ctl_interrupted;

/* --- subcommands: their arguments ------------------------------------ */

#define OPT_ENTRIES_MAX 16

static const char *sub_name(const struct invocation *inv)
{
	return inv->argv[0];
}

/* The long option @typed ("--name" or "--name=value") names. */
static struct text long_name(const char *typed)
{
	struct text t;

	snprintf(t.s, sizeof(t.s), "%.*s", (int)strcspn(typed + 2, "="),
		 typed + 2);
	return t;
}

/*
 * Why getopt_long refused @typed, in one line: unknown (and the option
 * it most likely meant), ambiguous, or given a value it does not take.
 * @see names the help to read.
 */
static void option_error(const char *who, const struct opt_spec *opts,
			 const char *typed, int short_opt, const char *see)
{
	struct suggestion sg = { 0 };
	const struct opt_spec *o, *exact = NULL;
	struct text name;
	char cands[128] = "";
	size_t n = 0;
	int prefixed = 0;

	if (short_opt || strncmp(typed, "--", 2)) {
		fprintf(stderr,
			"iofencectl: %sunknown option '-%c'; see '%s'\n", who,
			short_opt ? short_opt : typed[1], see);
		return;
	}
	name = long_name(typed);
	sg.typed = name.s;
	for (o = opts; o->name; o++) {
		if (!strcmp(o->name, name.s))
			exact = o;
		if (*name.s && !strncmp(o->name, name.s, strlen(name.s))) {
			prefixed++;
			if (n < sizeof(cands))
				n += snprintf(cands + n, sizeof(cands) - n,
					      "%s--%s", n ? ", " : "", o->name);
		}
		suggest_consider(&sg, o->name);
	}
	if (exact && !exact->arg)
		fprintf(stderr, "iofencectl: %s--%s takes no value; see '%s'\n",
			who, exact->name, see);
	else if (!exact && prefixed > 1)
		fprintf(stderr,
			"iofencectl: %soption '--%s' is ambiguous (%s); see '%s'\n",
			who, name.s, cands, see);
	else if (suggest_result(&sg))
		fprintf(stderr,
			"iofencectl: %sunknown option '--%s' (did you mean --%s?); see '%s'\n",
			who, name.s, suggest_result(&sg), see);
	else
		fprintf(stderr,
			"iofencectl: %sunknown option '--%s'; see '%s'\n", who,
			name.s, see);
}

/* getopt_long's table for @opts, and the string of their short options. */
static void getopt_table(const struct opt_spec *opts, struct option *out,
			 char *shorts, size_t len)
{
	size_t i = 0, n = 0;

	n += snprintf(shorts, len, ":");
	for (; opts[i].name && i < OPT_ENTRIES_MAX; i++) {
		out[i] = (struct option){ opts[i].name,
					  opts[i].arg ? required_argument :
							no_argument,
					  NULL, opts[i].val };
		if (opts[i].short_too && n + 3 < len)
			n += snprintf(shorts + n, len - n, "%c%s", opts[i].val,
				      opts[i].arg ? ":" : "");
	}
	out[i] = (struct option){};
}

/*
 * getopt_long over a subcommand's own options, which are all long;
 * errors name the subcommand, in one line.
 */
int next_option(struct invocation *inv, const struct opt_spec *opts)
{
	struct option table[OPT_ENTRIES_MAX + 1];
	char shorts[2 * OPT_ENTRIES_MAX + 3], who[64], see[80];
	int c;

	getopt_table(opts, table, shorts, sizeof(shorts));
	c = getopt_long(inv->argc, inv->argv, shorts, table, NULL);
	if (c != '?' && c != ':')
		return c;
	snprintf(who, sizeof(who), "%s: ", sub_name(inv));
	snprintf(see, sizeof(see), "iofencectl help %s", sub_name(inv));
	if (c == ':')
		fprintf(stderr, "iofencectl: %s%s needs a value; see '%s'\n",
			who, inv->argv[optind - 1], see);
	else
		/* optopt: a short option's letter; a long one leaves 0. */
		option_error(who, opts, inv->argv[optind - 1],
			     strncmp(inv->argv[optind - 1], "--", 2) ? optopt :
								       0,
			     see);
	return c;
}

void options_start(void)
{
	/* 0, not 1: glibc then forgets what the last parse left behind. */
	optind = 0;
	opterr = 0;
}

/* A usage error of the subcommand: one line, and where to read more. */
static int sub_usage(struct invocation *inv, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static int sub_usage(struct invocation *inv, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "iofencectl: %s: ", sub_name(inv));
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see 'iofencectl help %s'\n", sub_name(inv));
	return CTL_EXIT_USAGE;
}

int no_more_arguments(struct invocation *inv)
{
	if (optind >= inv->argc)
		return CTL_EXIT_OK;
	return sub_usage(inv, "unexpected argument '%s'", inv->argv[optind]);
}

/* Sets @key of the arguments to @text read as @kind; says why not. */
static int set_arg(struct invocation *inv, const char *key, enum kind kind,
		   const char *opt, const char *text)
{
	const char *why;
	json_t *v = parse_value(kind, text, &why);

	if (!v)
		return sub_usage(inv, "%s %s: %s", opt, text, why);
	json_object_set_new(inv->args, key, v);
	return CTL_EXIT_OK;
}

/* The option that getopt returned @c for: sets its argument. */
static int set_opt(struct invocation *inv, const struct opt_spec *opts, int c)
{
	char opt[64];

	for (const struct opt_spec *o = opts; o->name; o++) {
		if (o->val != c || !o->key)
			continue;
		if (!o->arg) {
			json_object_set_new(inv->args, o->key, json_true());
			return CTL_EXIT_OK;
		}
		snprintf(opt, sizeof(opt), "--%s", o->name);
		return set_arg(inv, o->key, o->kind, opt, optarg);
	}
	return CTL_EXIT_USAGE;
}

static int append_arg(struct invocation *inv, json_t *list, const char *opt,
		      const char *text)
{
	json_t *v = json_string(text);

	if (v && !json_array_append_new(list, v))
		return CTL_EXIT_OK;
	return sub_usage(inv, "%s %s: not valid UTF-8", opt, text);
}

static const struct opt_spec setup_opts[] = {
	{ "host", 'H', false, "UUID", "host_uuid", KIND_STRING,
	  "the host whose storages these are (required)" },
	{ "storage", 'S', false, "SPEC", "storages", KIND_STRING,
	  "a storage to arm, as KEY=VALUE,... (see below); at\n"
	  "least one, repeat for more" },
	{ "reconnect", 'r', false, NULL, "reconnect", KIND_BOOL,
	  "this setup is part of a reconnect of the host" },
	{ "no-status-check", 'n', false, NULL, "no_status_check", KIND_BOOL,
	  "let this one request through while the host state\n"
	  "is not connected" },
	{ "timeout", 't', false, "DUR", "timeout_ms", KIND_DURATION,
	  "the daemon's deadline for the request, 100ms to\n"
	  "10m (default 30s; not iofencectl's own --timeout)" },
	{},
};

static int parse_setup(struct invocation *inv)
{
	json_t *list = json_array(), *st;
	int c, ret = CTL_EXIT_OK;

	inv->deadline_ms = SETUP_DEFAULT_DEADLINE_MS;
	options_start();
	while (!ret && (c = next_option(inv, setup_opts)) != -1) {
		if (c == 'S') {
			st = parse_storage(optarg);
			if (st)
				json_array_append_new(list, st);
			else
				ret = CTL_EXIT_USAGE;
			continue;
		}
		ret = set_opt(inv, setup_opts, c);
		if (!ret && c == 't')
			inv->deadline_ms =
				clamp_int(int_of(inv->args, "timeout_ms"));
	}
	json_object_set_new(inv->args, "storages", list);
	if (ret)
		return ret;
	if (!json_object_get(inv->args, "host_uuid") || !json_array_size(list))
		return sub_usage(inv,
				 "needs --host and at least one --storage");
	return no_more_arguments(inv);
}

static const struct opt_spec teardown_opts[] = {
	{ "host", 'H', false, "UUID", "host_uuid", KIND_STRING,
	  "the host whose storages to disarm (required)" },
	{ "storage", 'S', false, "UUID", "storages", KIND_STRING,
	  "a storage to disarm, repeat for more; without it,\n"
	  "every storage of the host" },
	{},
};

static int parse_teardown(struct invocation *inv)
{
	json_t *list = json_array();
	int c, ret = CTL_EXIT_OK;

	inv->deadline_ms = SETUP_DEFAULT_DEADLINE_MS;
	options_start();
	while (!ret && (c = next_option(inv, teardown_opts)) != -1) {
		if (c == 'S')
			/* A uuid dropped here would widen what goes. */
			ret = append_arg(inv, list, "--storage", optarg);
		else
			ret = set_opt(inv, teardown_opts, c);
	}
	/* Without --storage: every storage of the host. */
	if (json_array_size(list))
		json_object_set(inv->args, "storages", list);
	json_decref(list);
	if (ret)
		return ret;
	if (!json_object_get(inv->args, "host_uuid"))
		return sub_usage(inv, "needs --host");
	return no_more_arguments(inv);
}

static const struct opt_spec peer_opts[] = {
	{ "storage", 'S', false, "UUID", "storage", KIND_STRING,
	  "the storage, armed here, to read the peer's record on\n"
	  "(required)" },
	{ "host", 'H', false, "UUID", "host", KIND_STRING,
	  "the other host (required)" },
	{ "slot", 'n', false, "N", "slot", KIND_UINT,
	  "the other host's slot on a block storage (required\n"
	  "there, refused for file storages)" },
	{ "window", 'w', false, "DUR", "window_ms", KIND_DURATION,
	  "how long to watch the record (default: the timeout it\n"
	  "publishes)" },
	{ "blocklist", 'b', false, NULL, NULL, KIND_BOOL,
	  "rbd: once it proves dead, have the cluster refuse its\n"
	  "writes (fence-peer); exit 0 when done" },
	{ "force", 'f', false, NULL, "force", KIND_BOOL,
	  "with --blocklist: even if it is not dead (journalled)" },
	{ "unblocklist", 'u', false, NULL, NULL, KIND_BOOL,
	  "rbd: lift a --blocklist (unfence-peer); exit 0 when done" },
	{},
};

/* peer: a query-peer waits out its observation window. */
static int parse_peer(struct invocation *inv)
{
	json_t *w;
	int c, ret = CTL_EXIT_OK;

	options_start();
	while (!ret && (c = next_option(inv, peer_opts)) != -1) {
		if (c == 'b' || c == 'u') {
			if (inv->execute)
				return sub_usage(
					inv,
					"--blocklist and --unblocklist exclude each other");
			inv->execute = c == 'b' ? "fence-peer" : "unfence-peer";
		} else {
			ret = set_opt(inv, peer_opts, c);
		}
	}
	if (ret)
		return ret;
	if (!json_object_get(inv->args, "storage") ||
	    !json_object_get(inv->args, "host"))
		return sub_usage(inv, "needs --storage and --host");
	if (json_object_get(inv->args, "force") &&
	    !(inv->execute && !strcmp(inv->execute, "fence-peer")))
		return sub_usage(inv, "--force goes with --blocklist only");
	if (inv->execute && !strcmp(inv->execute, "unfence-peer")) {
		if (json_object_get(inv->args, "window_ms") ||
		    json_object_get(inv->args, "slot"))
			return sub_usage(
				inv,
				"--unblocklist reads the record once: no --window, no --slot");
		inv->deadline_ms = PEER_BLOCKLIST_MARGIN_MS;
		return no_more_arguments(inv);
	}
	/* Without --window the peer's own timeout decides: up to the max. */
	w = json_object_get(inv->args, "window_ms");
	inv->deadline_ms = w ? json_integer_value(w) + PEER_READS_MARGIN_MS :
			       PEER_WINDOW_MAX_MS + PEER_READS_MARGIN_MS;
	if (inv->execute)
		inv->deadline_ms += PEER_BLOCKLIST_MARGIN_MS;
	return no_more_arguments(inv);
}

static const struct opt_spec since_opts[] = {
	{ "since", 'S', false, "N", "since", KIND_UINT,
	  "after the event numbered N (default 0: all that the\n"
	  "journal has)" },
	{},
};

/* events and watch. */
static int parse_since(struct invocation *inv)
{
	int c, ret = CTL_EXIT_OK;

	options_start();
	while (!ret && (c = next_option(inv, since_opts)) != -1)
		ret = set_opt(inv, since_opts, c);
	return ret ? ret : no_more_arguments(inv);
}

static int parse_raw(struct invocation *inv)
{
	if (inv->argc <= 2)
		return CTL_EXIT_OK;
	return sub_usage(inv, "takes at most one argument");
}

/* What subcommands with no options take: nothing, or one positional. */
static int parse_positional(const struct subcommand *sc, struct invocation *inv)
{
	if (!sc->positional) {
		if (inv->argc == 1)
			return CTL_EXIT_OK;
		if (inv->argv[1][0] == '-')
			return sub_usage(inv, "unknown option '%s'",
					 inv->argv[1]);
		return sub_usage(inv, "takes no arguments");
	}
	if (inv->argc == 2 && inv->argv[1][0] == '-')
		return sub_usage(inv, "unknown option '%s'", inv->argv[1]);
	if (inv->argc != 2)
		return sub_usage(inv, "takes one argument, %s", sc->usage);
	return set_arg(inv, sc->positional, KIND_STRING, sc->usage,
		       inv->argv[1]);
}

/* --- subcommands: running them --------------------------------------- */

/* A setup's reply waits for its deadline, unless --timeout was given. */
static int reply_wait(const struct client *cl, const struct invocation *inv)
{
	int wait = clamp_int((int64_t)inv->deadline_ms + CTL_PERSIST_MARGIN_MS);

	if (!inv->deadline_ms || cl->timeout_given || wait < cl->timeout_ms)
		return cl->timeout_ms;
	return wait;
}

static int run_simple(struct client *cl, const struct subcommand *sc,
		      struct invocation *inv)
{
	json_t *reply, *ret;
	int status = call(cl, inv->execute ? inv->execute : sc->execute,
			  inv->args, reply_wait(cl, inv), &reply);

	if (status)
		return status;
	ret = json_object_get(reply, "return");
	if (cl->json)
		print_json(ret);
	else
		sc->print(ret);
	status = sc->status_of ? sc->status_of(ret) : CTL_EXIT_OK;
	inv->answered = true;
	json_decref(reply);
	return status;
}

/* The key under which @seen holds an event shown from the journal. */
static struct text seq_key(json_t *ev)
{
	struct text t;

	snprintf(t.s, sizeof(t.s), "%lld", (long long)int_of(ev, "seq"));
	return t;
}

/*
 * The journal after --since (0 without it), printed; the numbers of the
 * events printed go into @seen, unless it is NULL.
 */
static int show_journal(struct client *cl, json_t *args, bool as_array,
			json_t *seen)
{
	json_t *reply, *ret, *list, *ev;
	int status = call(cl, "query-events", args, cl->timeout_ms, &reply);
	size_t i;

	if (status)
		return status;
	ret = json_object_get(reply, "return");
	list = json_object_get(ret, "events");
	if (as_array)
		print_json(list);
	json_array_foreach(list, i, ev) {
		if (!as_array)
			print_event(cl, ev);
		if (seen)
			json_object_set_new(seen, seq_key(ev).s, json_true());
	}
	if (json_is_true(json_object_get(ret, "lost")))
		fprintf(stderr,
			"iofencectl: some events after %lld are no longer in the journal\n",
			(long long)int_of(args, "since"));
	json_decref(reply);
	return CTL_EXIT_OK;
}

static int run_events(struct client *cl, const struct subcommand *sc,
		      struct invocation *inv)
{
	return show_journal(cl, inv->args, cl->json, NULL);
}

static void on_signal(int sig)
{
	ctl_interrupted = 1;
}

/*
 * subscribe, then the journal after --since, then each event as it comes.
 * The stream repeats what the journal had not yet sent to subscribers; a
 * set of the numbers shown tells those apart. Not "every number above
 * the last one shown": the daemon sends a setup's events once its state
 * is written, after events numbered later, so numbers come out of order.
 */
static int run_watch(struct client *cl, const struct subcommand *sc,
		     struct invocation *inv)
{
	/* A second signal kills, should the first come just before poll. */
	struct sigaction sa = { .sa_handler = on_signal,
				.sa_flags = SA_RESETHAND };
	json_t *reply, *ev, *seen = json_object();
	int status;

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	status = call(cl, sc->execute, NULL, cl->timeout_ms, &reply);
	json_decref(reply);
	if (!status && json_object_get(inv->args, "since"))
		status = show_journal(cl, inv->args, false, seen);
	fflush(stdout);
	while (!status && (ev = client_read(cl, -1))) {
		struct text key = seq_key(ev);

		if (json_object_get(seen, key.s))
			json_object_del(seen, key.s);
		else if (json_object_get(ev, "event"))
			print_event(cl, ev);
		fflush(stdout);
		json_decref(ev);
	}
	json_decref(seen);
	if (ctl_interrupted)
		return CTL_EXIT_OK;
	return status ? status : CTL_EXIT_USAGE;
}

/*
 * raw: each line of stdin (or the one argument) goes to the daemon as it
 * is, even when it is not valid JSON, and each reply is printed on a line
 * of its own. Returns 0, or 1 when any reply was an error.
 */
static int run_raw(struct client *cl, const struct subcommand *sc,
		   struct invocation *inv)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;

	for (;;) {
		json_t *msg;
		char *text;

		if (inv->argc == 2) {
			if (line)
				break;
			line = strdup(inv->argv[1]);
			n = strlen(line);
		} else if ((n = getline(&line, &cap, stdin)) < 0) {
			break;
		}
		while (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (!n)
			continue;
		/*
		 * When the daemon refuses a line mid-way (too long) and
		 * closes, its error is still waiting to be read.
		 */
		if (send_all(cl->fd, line, n) || send_all(cl->fd, "\n", 1))
			status = 2;
		/* The reply to this line: the next message not an event. */
		cl->wait_ms = cl->timeout_ms;
		do {
			msg = client_read(cl, now_ms() + cl->timeout_ms);
			if (!msg) {
				free(line);
				return 2;
			}
			if (!json_object_get(msg, "event"))
				break;
			json_decref(msg);
		} while (1);
		if (json_object_get(msg, "error") && !status)
			status = 1;
		text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(text ? text : "");
		fflush(stdout);
		free(text);
		json_decref(msg);
		if (status == 2)
			break;
	}
	free(line);
	return status;
}

/*
 * teardown: as setup prints, but what was not armed is said so, and the
 * exit status tells: the protocol keeps teardown idempotent for agents,
 * a person asked for something that was not there.
 */
static int run_teardown(struct client *cl, const struct subcommand *sc,
			struct invocation *inv)
{
	json_t *reply, *ret, *list, *st;
	int status = call(cl, inv->execute ? inv->execute : sc->execute,
			  inv->args, reply_wait(cl, inv), &reply);
	char absent[256] = "";
	size_t i, n = 0;

	if (status)
		return status;
	ret = json_object_get(reply, "return");
	list = json_object_get(ret, "storages");
	if (cl->json)
		print_json(ret);
	else
		printf("flight %lld%s\n", (long long)int_of(ret, "flight"),
		       json_is_true(json_object_get(ret, "joined")) ?
			       " (joined)" :
			       "");
	json_array_foreach(list, i, st) {
		bool armed = strcmp(str_of(st, "result"), "absent");

		if (!cl->json)
			printf("%s: %s\n", str_of(st, "uuid"),
			       armed ? str_of(st, "result") : "not armed");
		if (!armed && n < sizeof(absent))
			n += snprintf(absent + n, sizeof(absent) - n, "%s%s",
				      n ? ", " : "", str_of(st, "uuid"));
	}
	status = CTL_EXIT_OK;
	if (!json_array_size(list)) {
		if (!cl->json)
			printf("host %s: nothing armed\n",
			       str_of(ret, "host_uuid"));
		fprintf(stderr,
			"iofencectl: teardown: host %s has nothing armed\n",
			str_of(ret, "host_uuid"));
		status = CTL_EXIT_NOT_ARMED;
	} else if (n) {
		fprintf(stderr, "iofencectl: teardown: not armed: %s\n",
			absent);
		status = CTL_EXIT_NOT_ARMED;
	}
	json_decref(reply);
	return status;
}

static const struct subcommand subcommands[] = {
	{ .name = "status",
	  .execute = "query-status",
	  .usage = "",
	  .summary = "the host state and every armed storage",
	  .print = print_status,
	  .description =
		  "The host state on the management side, the BPF tracker, and\n"
		  "every armed storage: its heartbeat state, type, interval,\n"
		  "timeout, strategy, fence deadline and target, with what the\n"
		  "tracker counted on its device under it." },
	{ .name = "storage",
	  .execute = "query-storage",
	  .usage = "UUID",
	  .summary = "one armed storage in detail",
	  .positional = "uuid",
	  .print = print_storage,
	  .description =
		  "One armed storage, UUID, in detail: its host, when it was armed,\n"
		  "every parameter, its timeline, its heartbeats and fence, and\n"
		  "its I/O evidence." },
	{ .name = "version",
	  .execute = "query-version",
	  .usage = "",
	  .summary = "the daemon's version",
	  .print = print_version,
	  .description =
		  "The version of the daemon that answers on the socket\n"
		  "(iofencectl --version: this program's own)." },
	{ .name = "capabilities",
	  .execute = "query-capabilities",
	  .usage = "",
	  .summary = "what the daemon can do on this machine",
	  .print = print_capabilities,
	  .description =
		  "The protocol features the daemon offers, and whether\n"
		  "its BPF tracker runs on this machine." },
	{ .name = "commands",
	  .execute = "query-commands",
	  .usage = "",
	  .summary = "the protocol commands the daemon serves",
	  .print = print_commands,
	  .description =
		  "Every protocol command the daemon serves, whether it\n"
		  "changes state, and what it does." },
	{ .name = "set-host-state",
	  .execute = "set-host-state",
	  .usage = "connecting|connected|disconnected",
	  .summary = "record the host's state on the management side",
	  .positional = "state",
	  .print = print_host_state,
	  .description =
		  "Records the host's state on the management side: connecting,\n"
		  "connected or disconnected. setup needs connected (or its\n"
		  "--no-status-check). Prints the state and the one before." },
	{ .name = "setup",
	  .execute = "setup",
	  .usage =
		  "--host UUID [--reconnect] [--no-status-check] [--timeout DUR]\n"
		  "        --storage SPEC [--storage SPEC]...",
	  .summary = "arm storages of a host, all or nothing; setup\n"
		     "needs host state connected, or --no-status-check",
	  .parse = parse_setup,
	  .print = print_flight,
	  .description =
		  "Arms the storages of a host, all or nothing: each one is armed,\n"
		  "updated (armed before with other parameters), unchanged, or\n"
		  "skipped (not connected on this host); after an error nothing\n"
		  "has changed. Needs the host state connected, or\n"
		  "--no-status-check. Prints the flight, then UUID: RESULT per\n"
		  "storage.",
	  .opts = setup_opts },
	{ .name = "teardown",
	  .execute = "teardown",
	  .usage = "--host UUID [--storage UUID]...",
	  .summary = "disarm those storages of the host, or all of them",
	  .parse = parse_teardown,
	  .run = run_teardown,
	  .description =
		  "Disarms those storages of the host, or every one it has.\n"
		  "Prints the flight, then UUID: disarmed, or UUID: not armed.\n"
		  "Exits 3 when a storage named was not armed, or the host had\n"
		  "nothing armed; what was armed is disarmed all the same.",
	  .opts = teardown_opts },
	{ .name = "unfence",
	  .execute = "unfence",
	  .usage = "UUID",
	  .summary = "lift a storage's fence once its heartbeats\n"
		     "succeed again",
	  .positional = "uuid",
	  .print = print_unfence,
	  .description =
		  "Lifts the fence of storage UUID once its heartbeats succeed\n"
		  "again (refused while it is still lost), the kernel write\n"
		  "fence too." },
	{ .name = "peer",
	  .execute = "query-peer",
	  .usage = "--storage UUID --host UUID [--slot N] [--window DUR]\n"
		   "      [--blocklist [--force] | --unblocklist]",
	  .summary = "whether another host still writes heartbeats\n"
		     "there (waits DUR, default its timeout)",
	  .parse = parse_peer,
	  .print = print_peer,
	  .status_of = peer_status,
	  .fail_status = PEER_EXIT_FAILED,
	  .description =
		  "Whether another host still writes heartbeats to a storage\n"
		  "armed here: reads its record, again after the window, and\n"
		  "says alive, dead or unknown, with its fence deadline and the\n"
		  "VMs its record lists. Waits for the window, unless\n"
		  "iofencectl's --timeout is shorter.\n"
		  "On an rbd storage, --blocklist goes on, when the host proved\n"
		  "dead, to have the cluster refuse every write from its\n"
		  "addresses (osd blocklist add): its VMs may be restarted at\n"
		  "once. --unblocklist lifts that. Both are journalled.",
	  .opts = peer_opts },
	{ .name = "metrics",
	  .execute = "query-status",
	  .usage = "",
	  .summary = "the daemon's figures in the OpenMetrics text\n"
		     "format, for node_exporter's textfile collector",
	  .print = print_metrics,
	  .description =
		  "One query-status printed as OpenMetrics text (ending in\n"
		  "# EOF): per storage its state, heartbeat latency, writes,\n"
		  "time to fence and fences; per daemon the lag of each side,\n"
		  "connections and events. Write it to a .prom file that\n"
		  "node_exporter's textfile collector reads." },
	{ .name = "events",
	  .execute = "query-events",
	  .usage = "[--since N]",
	  .summary = "the journalled events after number N (default 0)",
	  .parse = parse_since,
	  .run = run_events,
	  .description =
		  "The events the daemon still has in its journal after number N,\n"
		  "one per line: SEQ TIME EVENT KEY=VALUE... (--json: one JSON\n"
		  "list). Warns when some of them left the journal already.",
	  .opts = since_opts },
	{ .name = "watch",
	  .execute = "subscribe",
	  .usage = "[--since N]",
	  .summary = "the journalled events after N, if given, then\n"
		     "every new event as it comes, until interrupted",
	  .parse = parse_since,
	  .run = run_watch,
	  .description =
		  "Subscribes to events; with --since, prints the journalled\n"
		  "events after N first; then every event as it comes, each\n"
		  "once, as events prints them (--json: one line each), until\n"
		  "SIGINT or SIGTERM (exit 0) or the daemon closes (exit 2).",
	  .opts = since_opts },
	{ .name = "connect",
	  .usage = "--host UUID [--reconnect] [--deadline DUR]\n"
		   "        [--storages FILE|-]",
	  .summary = "the connect agent's hook: set-host-state connecting,\n"
		     "then setup of the storage list (JSON); exit 0 all\n"
		     "armed, 1 refused, 2 bad list, 3 no daemon or reply",
	  .parse = parse_connect,
	  .run = run_connect,
	  .description = connect_description,
	  .opts = connect_opts,
	  .unreachable = CTL_EXIT_UNREACHABLE },
	{ .name = "raw",
	  .usage = "[LINE]",
	  .summary = "send LINE, or each line of stdin, as it is, and\n"
		     "print each reply as one JSON line",
	  .parse = parse_raw,
	  .run = run_raw,
	  .description =
		  "Sends LINE, or each line of standard input, to the daemon as it\n"
		  "is, even when it is not valid JSON, and prints each reply as\n"
		  "one JSON line. Exits 1 when a reply was an error." },
	{},
};

static const struct opt_spec global_opts[] = {
	{ "socket", 's', true, "PATH", NULL, KIND_STRING,
	  "the control socket\n(default " IOFENCE_DEFAULT_SOCKET ")" },
	{ "json", 'j', true, NULL, NULL, KIND_BOOL,
	  "print replies as JSON (watch: one line per event)" },
	{ "timeout", 't', true, "DUR", NULL, KIND_DURATION,
	  "wait at most DUR for each reply (default 30s;\n"
	  "setup, teardown and peer wait for their own deadline)" },
	{ "help", 'h', true, NULL, NULL, KIND_BOOL, "show this help and exit" },
	{ "version", 'V', true, NULL, NULL, KIND_BOOL,
	  "show iofencectl's version and exit" },
	{},
};

static const struct subcommand *subcommand_find(const char *name)
{
	for (const struct subcommand *sc = subcommands; sc->name; sc++)
		if (!strcmp(name, sc->name) ||
		    (sc->execute && !strcmp(name, sc->execute)))
			return sc;
	return NULL;
}

static void unknown_command(const char *name)
{
	struct suggestion sg = { .typed = name };
	const char *near;

	suggest_consider(&sg, "help");
	for (const struct subcommand *sc = subcommands; sc->name; sc++)
		suggest_consider(&sg, sc->name);
	near = suggest_result(&sg);
	fprintf(stderr,
		"iofencectl: unknown command '%s'%s%s%s; see 'iofencectl --help'\n",
		name, near ? " (did you mean " : "", near ? near : "",
		near ? "?)" : "");
}

/* "  -s, --socket PATH   what it is", aligned at @column. */
static void print_options(FILE *out, const struct opt_spec *opts, int column)
{
	for (const struct opt_spec *o = opts; o && o->name; o++) {
		int n = fprintf(out, "  ");

		if (o->short_too)
			n += fprintf(out, "-%c, ", o->val);
		else
			n += fprintf(out, "    ");
		n += fprintf(out, "--%s%s%s", o->name, o->arg ? " " : "",
			     o->arg ? o->arg : "");
		if (n + 2 > column)
			fprintf(out, "\n%*s", column, "");
		else
			fprintf(out, "%*s", column - n, "");
		print_indented(out, o->help, column);
	}
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: iofencectl [OPTION]... COMMAND [ARG]...\n"
		"Talks to iofenced over its control socket.\n"
		"\n"
		"Commands (the protocol command's name works too, e.g. query-status):\n");
	for (const struct subcommand *sc = subcommands; sc->name; sc++) {
		int n = fprintf(out, "  %s%s", sc->name, *sc->usage ? " " : "");

		n += fprintf(out, "%s", sc->usage);
		if (strchr(sc->usage, '\n') || n >= HELP_COLUMN)
			fprintf(out, "\n%*s", HELP_COLUMN, "");
		else
			fprintf(out, "%*s", HELP_COLUMN - n, "");
		print_indented(out, sc->summary, HELP_COLUMN);
	}
	fprintf(out, "  help [COMMAND]%*s", HELP_COLUMN - 16, "");
	print_indented(out, "this help, or a command's, with its options",
		       HELP_COLUMN);
	fprintf(out, "\nOptions (before the command):\n");
	print_options(out, global_opts, HELP_COLUMN);
	fprintf(out,
		"\n"
		"DUR is " DURATION_RULE ".\n"
		"Run 'iofencectl help COMMAND' (or COMMAND --help) for a command's\n"
		"options, and the --storage SPEC keys under 'iofencectl help setup'.\n"
		"\n"
		"Exit status: 0 on success (watch: also when interrupted), 1 on an\n"
		"error reply, 2 on a usage or connection error, 3 when a teardown\n"
		"named something not armed.\n");
}

/* iofencectl help NAME, and NAME --help. */
static void sub_help(const struct subcommand *sc)
{
	static const struct opt_spec help_opt[] = {
		{ "help", 'h', true, NULL, NULL, KIND_BOOL,
		  "show this help and exit" },
		{},
	};

	int n = printf("Usage: iofencectl [OPTION]... %s", sc->name);

	/* Its arguments on the line, or under it when they do not fit. */
	if (n + 1 + (int)strcspn(sc->usage, "\n") > 79) {
		printf("\n%*s", 8, "");
		print_indented(stdout, sc->usage, 0);
	} else {
		printf("%s", *sc->usage ? " " : "");
		print_indented(stdout, sc->usage, 0);
	}
	putchar('\n');
	print_indented(stdout, sc->description ? sc->description : sc->summary,
		       0);
	printf("\nOptions:\n");
	print_options(stdout, sc->opts, HELP_COLUMN);
	print_options(stdout, help_opt, HELP_COLUMN);
	if (sc->opts == setup_opts) {
		printf("\nSPEC is KEY=VALUE,... (a value cannot hold a comma); the keys,\n"
		       "by their short names (the protocol's work too):\n");
		spec_keys_help(stdout, HELP_COLUMN);
		printf("Other keys go to the daemon, which refuses them by name.\n");
	}
	for (const struct opt_spec *o = sc->opts; o && o->name; o++)
		if (o->kind == KIND_DURATION && o->arg) {
			printf("\nDUR is " DURATION_RULE ".\n");
			break;
		}
	if (sc->execute)
		printf("\nThe protocol command: %s, see iofence-protocol(7).\n",
		       sc->execute);
	printf("Options before the command (--socket, --json, --timeout):\n"
	       "see 'iofencectl --help'.\n");
}

/*
 * The subcommand's arguments ask for its help: -h or --help, not as the
 * value of one of its options, before any "--".
 */
static bool wants_help(const struct subcommand *sc, int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const struct opt_spec *o;

		if (!strcmp(argv[i], "--"))
			return false;
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
			return true;
		for (o = sc->opts; o && o->name; o++) {
			if (o->arg && !strncmp(argv[i], "--", 2) &&
			    !strcmp(argv[i] + 2, o->name)) {
				i++;
				break;
			}
		}
	}
	return false;
}

static void version(void)
{
	printf("iofencectl %d.%d.%d\n"
	       "The daemon's version: iofencectl version (asks the daemon).\n",
	       IOFENCE_VERSION_MAJOR, IOFENCE_VERSION_MINOR,
	       IOFENCE_VERSION_MICRO);
}

/* iofencectl help [NAME]. */
static int help(int argc, char **argv)
{
	const struct subcommand *sc;

	if (argc == 1) {
		usage(stdout);
		return CTL_EXIT_OK;
	}
	if (argc > 2) {
		fprintf(stderr,
			"iofencectl: help: takes one command; see 'iofencectl --help'\n");
		return CTL_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "help")) {
		usage(stdout);
		return CTL_EXIT_OK;
	}
	sc = subcommand_find(argv[1]);
	if (!sc) {
		unknown_command(argv[1]);
		return CTL_EXIT_USAGE;
	}
	sub_help(sc);
	return CTL_EXIT_OK;
}

int main(int argc, char **argv)
{
	struct option opts[OPT_ENTRIES_MAX + 1];
	char shorts[2 * OPT_ENTRIES_MAX + 3];
	struct client cl = { .fd = -1, .timeout_ms = CTL_DEFAULT_TIMEOUT_MS };
	struct invocation inv = { 0 };
	const char *path = IOFENCE_DEFAULT_SOCKET, *why;
	const struct subcommand *sc;
	json_t *greeting, *err;
	int c, status = CTL_EXIT_USAGE;
	uint64_t ms;

	getopt_table(global_opts, opts, shorts, sizeof(shorts));
	/* Options end at the command: the rest are the command's. */
	memmove(shorts + 1, shorts, strlen(shorts) + 1);
	shorts[0] = '+';
	opterr = 0;
	while ((c = getopt_long(argc, argv, shorts, opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'j':
			cl.json = true;
			break;
		case 't':
			if (parse_duration(optarg, &ms, &why) || !ms ||
			    ms > INT_MAX) {
				fprintf(stderr,
					"iofencectl: --timeout %s: must be a positive duration (" DURATION_RULE
					"); see 'iofencectl --help'\n",
					optarg);
				return CTL_EXIT_USAGE;
			}
			cl.timeout_ms = (int)ms;
			cl.timeout_given = true;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		case 'V':
			version();
			return CTL_EXIT_OK;
		case ':':
			fprintf(stderr,
				"iofencectl: %s needs a value; see 'iofencectl --help'\n",
				argv[optind - 1]);
			return CTL_EXIT_USAGE;
		default:
			option_error(
				"", global_opts, argv[optind - 1],
				strncmp(argv[optind - 1], "--", 2) ? optopt : 0,
				"iofencectl --help");
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr,
			"iofencectl: no command given; see 'iofencectl --help'\n");
		return CTL_EXIT_USAGE;
	}
	if (!strcmp(argv[optind], "help"))
		return help(argc - optind, argv + optind);
	sc = subcommand_find(argv[optind]);
	if (!sc) {
		unknown_command(argv[optind]);
		return CTL_EXIT_USAGE;
	}
	if (wants_help(sc, argc - optind, argv + optind)) {
		sub_help(sc);
		return CTL_EXIT_OK;
	}
	inv.argc = argc - optind;
	inv.argv = argv + optind;
	inv.args = json_object();
	if (!inv.args)
		return CTL_EXIT_USAGE;
	status = sc->parse ? sc->parse(&inv) : parse_positional(sc, &inv);
	if (status)
		goto out;
	/* A request without arguments says so by leaving them out. */
	if (!json_object_size(inv.args)) {
		json_decref(inv.args);
		inv.args = NULL;
	}
	cl.sub = sc->name;
	cl.opts = sc->opts;
	cl.positional = sc->positional;

	status = sc->unreachable ? sc->unreachable : CTL_EXIT_USAGE;
	if (client_connect(&cl, path))
		goto out;
	cl.wait_ms = cl.timeout_ms;
	greeting = client_read(&cl, now_ms() + cl.timeout_ms);
	if (!greeting)
		goto out;
	err = json_object_get(greeting, "error");
	if (err) {
		fprintf(stderr, "iofencectl: %s\n", str_of(err, "desc"));
		json_decref(greeting);
		goto out;
	}
	json_decref(greeting);
	status = (sc->run ? sc->run : run_simple)(&cl, sc, &inv);
out:
	if (status && sc->fail_status && !inv.answered)
		status = sc->fail_status;
	json_decref(inv.args);
	if (cl.fd >= 0)
		close(cl.fd);
	linebuf_free(&cl.in);
	return status;
}
