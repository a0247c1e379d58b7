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
};

volatile sig_atomic_t ctl_interrupted;

/* --- subcommands: their arguments ------------------------------------ */

/*
 * getopt_long over a subcommand's own options, which are all long;
 * errors name the subcommand.
 */
static int next_option(struct invocation *inv, const struct option *opts)
{
	int c = getopt_long(inv->argc, inv->argv, ":", opts, NULL);

	/* optopt is set for a short option, which none of them is. */
	if (c == '?' && optopt)
		fprintf(stderr,
			"iofencectl: %s: unknown option '-%c' (see --help)\n",
			inv->argv[0], optopt);
	else if (c == '?')
		fprintf(stderr,
			"iofencectl: %s: unknown option '%s' (see --help)\n",
			inv->argv[0], inv->argv[optind - 1]);
	else if (c == ':')
		fprintf(stderr, "iofencectl: %s: %s needs a value\n",
			inv->argv[0], inv->argv[optind - 1]);
	return c;
}

static void options_start(void)
{
	/* 0, not 1: glibc then forgets what the last parse left behind. */
	optind = 0;
	opterr = 0;
}

static int no_more_arguments(struct invocation *inv)
{
	if (optind >= inv->argc)
		return CTL_EXIT_OK;
	fprintf(stderr,
		"iofencectl: %s: unexpected argument '%s' (see --help)\n",
		inv->argv[0], inv->argv[optind]);
	return CTL_EXIT_USAGE;
}

/* Sets @key of the arguments to @text read as @kind; says why not. */
static int set_arg(struct invocation *inv, const char *key, enum kind kind,
		   const char *opt, const char *text)
{
	const char *why;
	json_t *v = parse_value(kind, text, &why);

	if (!v) {
		fprintf(stderr, "iofencectl: %s: %s %s: %s\n", inv->argv[0],
			opt, text, why);
		return CTL_EXIT_USAGE;
	}
	json_object_set_new(inv->args, key, v);
	return CTL_EXIT_OK;
}

static int append_arg(struct invocation *inv, json_t *list, const char *opt,
		      const char *text)
{
	json_t *v = json_string(text);

	if (v && !json_array_append_new(list, v))
		return CTL_EXIT_OK;
	fprintf(stderr, "iofencectl: %s: %s %s: not valid UTF-8\n",
		inv->argv[0], opt, text);
	return CTL_EXIT_USAGE;
}

static int parse_setup(struct invocation *inv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "reconnect", no_argument, NULL, 'r' },
		{ "no-status-check", no_argument, NULL, 'n' },
		{ "timeout", required_argument, NULL, 't' },
		{ "storage", required_argument, NULL, 'S' },
		{},
	};
	json_t *list = json_array(), *st;
	int c, ret = CTL_EXIT_OK;

	inv->deadline_ms = SETUP_DEFAULT_DEADLINE_MS;
	options_start();
	while (!ret && (c = next_option(inv, opts)) != -1) {
		switch (c) {
		case 'H':
			ret = set_arg(inv, "host_uuid", KIND_STRING, "--host",
				      optarg);
			break;
		case 'r':
			json_object_set_new(inv->args, "reconnect",
					    json_true());
			break;
		case 'n':
			json_object_set_new(inv->args, "no_status_check",
					    json_true());
			break;
		case 't':
			ret = set_arg(inv, "timeout_ms", KIND_DURATION,
				      "--timeout", optarg);
			if (!ret)
				inv->deadline_ms = clamp_int(
					int_of(inv->args, "timeout_ms"));
			break;
		case 'S':
			st = parse_storage(optarg);
			if (st)
				json_array_append_new(list, st);
			else
				ret = CTL_EXIT_USAGE;
			break;
		default:
			ret = CTL_EXIT_USAGE;
		}
	}
	json_object_set_new(inv->args, "storages", list);
	if (ret)
		return ret;
	if (!json_object_get(inv->args, "host_uuid") ||
	    !json_array_size(list)) {
		fprintf(stderr,
			"iofencectl: setup: needs --host and at least one --storage (see --help)\n");
		return CTL_EXIT_USAGE;
	}
	return no_more_arguments(inv);
}

static int parse_teardown(struct invocation *inv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "storage", required_argument, NULL, 'S' },
		{},
	};
	json_t *list = json_array();
	int c, ret = CTL_EXIT_OK;

	inv->deadline_ms = SETUP_DEFAULT_DEADLINE_MS;
	options_start();
	while (!ret && (c = next_option(inv, opts)) != -1) {
		if (c == 'H')
			ret = set_arg(inv, "host_uuid", KIND_STRING, "--host",
				      optarg);
		else if (c == 'S')
			/* A uuid dropped here would widen what goes. */
			ret = append_arg(inv, list, "--storage", optarg);
		else
			ret = CTL_EXIT_USAGE;
	}
	/* Without --storage: every storage of the host. */
	if (json_array_size(list))
		json_object_set(inv->args, "storages", list);
	json_decref(list);
	if (ret)
		return ret;
	if (!json_object_get(inv->args, "host_uuid")) {
		fprintf(stderr,
			"iofencectl: teardown: needs --host (see --help)\n");
		return CTL_EXIT_USAGE;
	}
	return no_more_arguments(inv);
}

/* peer: a query-peer waits out its observation window. */
static int parse_peer(struct invocation *inv)
{
	static const struct option opts[] = {
		{ "storage", required_argument, NULL, 'S' },
		{ "host", required_argument, NULL, 'H' },
		{ "slot", required_argument, NULL, 'n' },
		{ "window", required_argument, NULL, 'w' },
		{},
	};
	json_t *w;
	int c, ret = CTL_EXIT_OK;

	options_start();
	while (!ret && (c = next_option(inv, opts)) != -1) {
		if (c == 'S')
			ret = set_arg(inv, "storage", KIND_STRING, "--storage",
				      optarg);
		else if (c == 'H')
			ret = set_arg(inv, "host", KIND_STRING, "--host",
				      optarg);
		else if (c == 'n')
			ret = set_arg(inv, "slot", KIND_UINT, "--slot", optarg);
		else if (c == 'w')
			ret = set_arg(inv, "window_ms", KIND_DURATION,
				      "--window", optarg);
		else
			ret = CTL_EXIT_USAGE;
	}
	if (ret)
		return ret;
	if (!json_object_get(inv->args, "storage") ||
	    !json_object_get(inv->args, "host")) {
		fprintf(stderr,
			"iofencectl: peer: needs --storage and --host (see --help)\n");
		return CTL_EXIT_USAGE;
	}
	/* Without --window the peer's own timeout decides: up to the max. */
	w = json_object_get(inv->args, "window_ms");
	inv->deadline_ms = w ? json_integer_value(w) + PEER_READS_MARGIN_MS :
			       PEER_WINDOW_MAX_MS + PEER_READS_MARGIN_MS;
	return no_more_arguments(inv);
}

/* events and watch. */
static int parse_since(struct invocation *inv)
{
	static const struct option opts[] = {
		{ "since", required_argument, NULL, 'S' },
		{},
	};
	int c, ret = CTL_EXIT_OK;

	options_start();
	while (!ret && (c = next_option(inv, opts)) != -1)
		ret = c == 'S' ? set_arg(inv, "since", KIND_UINT, "--since",
					 optarg) :
				 CTL_EXIT_USAGE;
	return ret ? ret : no_more_arguments(inv);
}

static int parse_raw(struct invocation *inv)
{
	if (inv->argc <= 2)
		return CTL_EXIT_OK;
	fprintf(stderr, "iofencectl: raw takes at most one argument\n");
	return CTL_EXIT_USAGE;
}

/* What subcommands with no options take: nothing, or one positional. */
static int parse_positional(const struct subcommand *sc, struct invocation *inv)
{
	if (!sc->positional) {
		if (inv->argc == 1)
			return CTL_EXIT_OK;
		fprintf(stderr, "iofencectl: %s: takes no arguments\n",
			inv->argv[0]);
		return CTL_EXIT_USAGE;
	}
	if (inv->argc != 2 || inv->argv[1][0] == '-') {
		fprintf(stderr, "iofencectl: %s: takes one argument, %s\n",
			inv->argv[0], sc->usage);
		return CTL_EXIT_USAGE;
	}
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
	int status =
		call(cl, sc->execute, inv->args, reply_wait(cl, inv), &reply);

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

static const struct subcommand subcommands[] = {
	{ .name = "status",
	  .execute = "query-status",
	  .usage = "",
	  .summary = "the host state and every armed storage",
	  .print = print_status },
	{ .name = "storage",
	  .execute = "query-storage",
	  .usage = "UUID",
	  .summary = "one armed storage in detail",
	  .positional = "uuid",
	  .print = print_storage },
	{ .name = "version",
	  .execute = "query-version",
	  .usage = "",
	  .summary = "the daemon's version",
	  .print = print_version },
	{ .name = "capabilities",
	  .execute = "query-capabilities",
	  .usage = "",
	  .summary = "what the daemon can do on this machine",
	  .print = print_capabilities },
	{ .name = "commands",
	  .execute = "query-commands",
	  .usage = "",
	  .summary = "the protocol commands the daemon serves",
	  .print = print_commands },
	{ .name = "set-host-state",
	  .execute = "set-host-state",
	  .usage = "connecting|connected|disconnected",
	  .summary = "record the host's state on the management side",
	  .positional = "state",
	  .print = print_host_state },
	{ .name = "setup",
	  .execute = "setup",
	  .usage =
		  "--host UUID [--reconnect] [--no-status-check] [--timeout DUR]\n"
		  "        --storage SPEC [--storage SPEC]...",
	  .summary = "arm storages of a host, all or nothing; setup\n"
		     "needs host state connected, or --no-status-check",
	  .parse = parse_setup,
	  .print = print_flight },
	{ .name = "teardown",
	  .execute = "teardown",
	  .usage = "--host UUID [--storage UUID]...",
	  .summary = "disarm those storages of the host, or all of them",
	  .parse = parse_teardown,
	  .print = print_flight },
	{ .name = "unfence",
	  .execute = "unfence",
	  .usage = "UUID",
	  .summary = "lift a storage's fence once its heartbeats\n"
		     "succeed again",
	  .positional = "uuid",
	  .print = print_unfence },
	{ .name = "peer",
	  .execute = "query-peer",
	  .usage = "--storage UUID --host UUID [--slot N] [--window DUR]",
	  .summary = "whether another host still writes heartbeats\n"
		     "there (waits DUR, default its timeout)",
	  .parse = parse_peer,
	  .print = print_peer,
	  .status_of = peer_status,
	  .fail_status = PEER_EXIT_FAILED },
	{ .name = "metrics",
	  .execute = "query-status",
	  .usage = "",
	  .summary = "the daemon's figures in the OpenMetrics text\n"
		     "format, for node_exporter's textfile collector",
	  .print = print_metrics },
	{ .name = "events",
	  .execute = "query-events",
	  .usage = "[--since N]",
	  .summary = "the journalled events after number N (default 0)",
	  .parse = parse_since,
	  .run = run_events },
	{ .name = "watch",
	  .execute = "subscribe",
	  .usage = "[--since N]",
	  .summary = "the journalled events after N, if given, then\n"
		     "every new event as it comes, until interrupted",
	  .parse = parse_since,
	  .run = run_watch },
	{ .name = "connect",
	  .usage = "--host UUID [--reconnect] [--deadline DUR]\n"
		   "        [--storages FILE|-]",
	  .summary = "the connect agent's hook: set-host-state connecting,\n"
		     "then setup of the storage list (JSON); exit 0 all\n"
		     "armed, 1 refused, 2 bad list, 3 no daemon or reply",
	  .parse = parse_connect,
	  .run = run_connect,
	  .unreachable = CTL_EXIT_UNREACHABLE },
	{ .name = "raw",
	  .usage = "[LINE]",
	  .summary = "send LINE, or each line of stdin, as it is, and\n"
		     "print each reply as one JSON line",
	  .parse = parse_raw,
	  .run = run_raw },
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

/* Text with '\n' in it, each further line indented to @column. */
static void print_indented(FILE *out, const char *text, int column)
{
	for (const char *nl; (nl = strchr(text, '\n')); text = nl + 1)
		fprintf(out, "%.*s\n%*s", (int)(nl - text), text, column, "");
	fprintf(out, "%s\n", text);
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
	fprintf(out,
		"\n"
		"SPEC is one storage as comma-separated KEY=VALUE; uuid, type (file\n"
		"or block) and target (a path) are required. Optional: region_offset\n"
		"(or offset) and slot (block only), connected (true/false/yes/no/1/0),\n"
		"interval, io_timeout, timeout (when to fence) and kill_grace (each a\n"
		"DUR), attempts (or max_attempts), strategy (force, kill-only or\n"
		"permissive), victims (PATTERN:PATTERN...), fence_hook (a path).\n"
		"Other keys are passed on as strings.\n"
		"DUR is " DURATION_RULE ".\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH   control socket (default " IOFENCE_DEFAULT_SOCKET
		")\n"
		"  -j, --json          print replies as JSON (watch: one line per event)\n"
		"  -t, --timeout DUR   wait at most DUR for each reply (default %s;\n"
		"                      setup and teardown wait for their own deadline)\n"
		"  -h, --help          show this help and exit\n"
		"\n"
		"Exit status: 0 on success (watch: also when interrupted), 1 on an\n"
		"error reply, 2 on a usage or connection error.\n",
		fmt_duration(CTL_DEFAULT_TIMEOUT_MS).s);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct client cl = { .fd = -1, .timeout_ms = CTL_DEFAULT_TIMEOUT_MS };
	struct invocation inv = { 0 };
	const char *path = IOFENCE_DEFAULT_SOCKET, *why;
	const struct subcommand *sc;
	json_t *greeting, *err;
	int c, status = CTL_EXIT_USAGE;
	uint64_t ms;

	while ((c = getopt_long(argc, argv, "+s:jt:h", opts, NULL)) != -1) {
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
					")\n",
					optarg);
				return CTL_EXIT_USAGE;
			}
			cl.timeout_ms = (int)ms;
			cl.timeout_given = true;
			break;
		case 'h':
			usage(stdout);
			return CTL_EXIT_OK;
		default:
			usage(stderr);
			return CTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return CTL_EXIT_USAGE;
	}
	sc = subcommand_find(argv[optind]);
	if (!sc) {
		fprintf(stderr,
			"iofencectl: unknown command '%s' (see --help)\n",
			argv[optind]);
		return CTL_EXIT_USAGE;
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
