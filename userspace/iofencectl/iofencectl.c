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
#include "ctl_server.h"
#include "deadlines.h"
#include "linebuf.h"
#include "proto.h"

/* How long to wait for the daemon's reply unless --timeout says. */
#define CTL_DEFAULT_TIMEOUT_MS 30000
/*
 * setup and teardown answer once the state file is written, which their
 * own deadline does not bound: a write already under way, then theirs,
 * each of five stages of up to PERSIST_STEP_DEADLINE_MS. A client that
 * gave up sooner would not know what is armed.
 */
#define CTL_PERSIST_MARGIN_MS (2 * 5 * PERSIST_STEP_DEADLINE_MS)
/* Where a subcommand's summary starts in --help. */
#define HELP_COLUMN 26

enum {
	CTL_EXIT_OK,
	CTL_EXIT_ERROR_REPLY,
	CTL_EXIT_USAGE, /* also: no connection, no reply */
};

struct client {
	int fd;
	struct linebuf in;
	int timeout_ms; /* for each reply */
	bool timeout_given; /* then also for setup and teardown */
	int wait_ms; /* what the read under way waits, for its error */
	json_int_t next_id;
	bool json;
};

/* What the command line asked of a subcommand. */
struct invocation {
	int argc;
	char **argv; /* argv[0] is the subcommand */
	json_t *args; /* the request's arguments; NULL: none */
	int deadline_ms; /* the daemon's own deadline for it; 0: none */
};

struct subcommand {
	const char *name;
	const char *execute; /* the protocol command, also accepted as name */
	const char *usage; /* its arguments, for --help */
	const char *summary;
	const char *positional; /* the key of its one argument; NULL: none */
	int (*parse)(struct invocation *inv);
	void (*print)(json_t *ret);
	/* NULL: one request, its reply printed by print(). */
	int (*run)(struct client *cl, const struct subcommand *sc,
		   struct invocation *inv);
};

/* watch ends on SIGINT or SIGTERM with status 0. */
static volatile sig_atomic_t interrupted;

/* Short formatted text, returned by value so it can go inline in printf. */
struct text {
	char s[64];
};

/* --- values from the command line ------------------------------------ */

enum kind { KIND_STRING, KIND_UINT, KIND_DURATION, KIND_BOOL, KIND_LIST };

/* A --storage key: the protocol's name, and a shorter one for people. */
struct spec_key {
	const char *name;
	const char *alias;
	enum kind kind;
};

static const struct spec_key spec_keys[] = {
	{ "uuid", NULL, KIND_STRING },
	{ "type", NULL, KIND_STRING },
	{ "target", NULL, KIND_STRING },
	{ "region_offset", "offset", KIND_UINT },
	{ "slot", NULL, KIND_UINT },
	{ "connected", NULL, KIND_BOOL },
	{ "interval_ms", "interval", KIND_DURATION },
	{ "io_timeout_ms", "io_timeout", KIND_DURATION },
	{ "max_attempts", "attempts", KIND_UINT },
	{ "timeout_ms", "timeout", KIND_DURATION },
	{ "strategy", NULL, KIND_STRING },
	{ "kill_grace_ms", "kill_grace", KIND_DURATION },
	{ "victims", NULL, KIND_LIST },
	{ "fence_hook", NULL, KIND_STRING },
	{},
};

#define DURATION_RULE "500ms, 2s, 1.5s, 1m, or a number of ms"

/*
 * Reads the decimal digits at *@p as a number; -ERANGE above @max, which
 * lets callers bound what they multiply later, -EINVAL without a digit.
 */
static int parse_digits(const char **p, uint64_t max, uint64_t *out,
			unsigned int *ndigits)
{
	uint64_t v = 0;
	unsigned int n = 0;

	for (; **p >= '0' && **p <= '9'; (*p)++, n++) {
		if (v > (max - (**p - '0')) / 10)
			return -ERANGE;
		v = v * 10 + (**p - '0');
	}
	*out = v;
	*ndigits = n;
	return n ? 0 : -EINVAL;
}

/*
 * "500ms", "2s", "1.5s", "1m", "1h" or a bare number of ms, to ms. In
 * integers throughout, so "1.1s" is exactly 1100 and not 1100.0000001.
 */
static int parse_duration(const char *s, uint64_t *ms, const char **why)
{
	static const struct {
		const char *suffix;
		uint64_t ms;
	} units[] = {
		{ "", 1 },	{ "ms", 1 },	  { "s", 1000 },
		{ "m", 60000 }, { "h", 3600000 },
	};
	/* Small enough that any unit times it fits in an int64. */
	const uint64_t whole_max = 1000000000000ull;
	uint64_t whole, frac = 0, scale = 1;
	unsigned int n;
	const char *p = s;
	int ret = parse_digits(&p, whole_max, &whole, &n);

	*why = ret == -ERANGE ? "too large" :
				"not a duration (" DURATION_RULE ")";
	if (ret)
		return ret;
	if (*p == '.') {
		p++;
		if (parse_digits(&p, whole_max, &frac, &n) || n > 9)
			return -EINVAL;
		while (n--)
			scale *= 10;
	}
	for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
		if (strcmp(p, units[i].suffix))
			continue;
		if (frac * units[i].ms % scale) {
			*why = "not a whole number of milliseconds";
			return -EINVAL;
		}
		*ms = whole * units[i].ms + frac * units[i].ms / scale;
		return 0;
	}
	return -EINVAL;
}

/* @text as a JSON value of @kind, or NULL with the reason in *@why. */
static json_t *parse_value(enum kind kind, const char *text, const char **why)
{
	json_t *list, *item;
	char *copy, *tok, *rest;
	unsigned int n;
	uint64_t v;
	int ret;

	*why = "not valid UTF-8";
	switch (kind) {
	case KIND_UINT:
		ret = parse_digits(&text, INT64_MAX, &v, &n);
		if (ret || *text) {
			*why = ret == -ERANGE ?
				       "too large" :
				       "not a whole number (0, 1, 2 ...)";
			return NULL;
		}
		return json_integer((json_int_t)v);
	case KIND_DURATION:
		return parse_duration(text, &v, why) ?
			       NULL :
			       json_integer((json_int_t)v);
	case KIND_BOOL:
		if (!strcasecmp(text, "true") || !strcasecmp(text, "yes") ||
		    !strcmp(text, "1"))
			return json_true();
		if (!strcasecmp(text, "false") || !strcasecmp(text, "no") ||
		    !strcmp(text, "0"))
			return json_false();
		*why = "not true, false, yes, no, 1 or 0";
		return NULL;
	case KIND_LIST:
		/* Empty patterns go too: the daemon names what is wrong. */
		list = json_array();
		copy = rest = strdup(text);
		if (!copy) {
			json_decref(list);
			return NULL;
		}
		while (list && (tok = strsep(&rest, ":"))) {
			item = json_string(tok);
			if (!item || json_array_append_new(list, item)) {
				json_decref(list);
				list = NULL;
			}
		}
		free(copy);
		return list;
	case KIND_STRING:
	default:
		return json_string(text);
	}
}

static const struct spec_key *spec_key_find(const char *key)
{
	for (const struct spec_key *k = spec_keys; k->name; k++)
		if (!strcmp(key, k->name) ||
		    (k->alias && !strcmp(key, k->alias)))
			return k;
	return NULL;
}

/*
 * A --storage SPEC, "uuid=U,type=T,target=P,...", to a storage object;
 * NULL after saying what was wrong. Unknown keys go as strings, so the
 * daemon names them in its error.
 */
static json_t *parse_storage(const char *spec)
{
	char *copy = strdup(spec), *tok, *save = NULL;
	json_t *st = json_object();
	const char *why = copy && st ? NULL : "out of memory";
	bool bare = false; /* the token is no key=value at all */

	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok && !why;
	     tok = strtok_r(NULL, ",", &save)) {
		char *val = strchr(tok, '=');
		const struct spec_key *k;
		const char *name;
		json_t *v;

		if (!val || val == tok) {
			why = "is not KEY=VALUE";
			bare = true;
			break;
		}
		*val++ = '\0';
		k = spec_key_find(tok);
		name = k ? k->name : tok;
		if (json_object_get(st, name)) {
			why = "given twice";
			break;
		}
		v = parse_value(k ? k->kind : KIND_STRING, val, &why);
		if (!v || json_object_set_new(st, name, v))
			break;
		why = NULL;
	}
	if (why) {
		fprintf(stderr, "iofencectl: --storage %s: %s%s%s%s\n", spec,
			bare ? "'" : "", tok ? tok : "", bare ? "' " : ": ",
			why);
		json_decref(st);
		st = NULL;
	}
	free(copy);
	return st;
}

/* --- human output ----------------------------------------------------- */

static int clamp_int(int64_t v)
{
	return v > INT_MAX ? INT_MAX : v < INT_MIN ? INT_MIN : (int)v;
}

static json_int_t int_of(json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

static const char *str_of(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

/* 500ms, 2s, 1.5s, 1m15s, 1h: the forms a setup takes, where they fit. */
static struct text fmt_duration(json_int_t ms)
{
	struct text t;
	int n = 0;

	if (ms < 1000) {
		if (ms)
			snprintf(t.s, sizeof(t.s), "%lldms", (long long)ms);
		else
			snprintf(t.s, sizeof(t.s), "0s");
		return t;
	}
	if (ms >= 3600000)
		n += snprintf(t.s + n, sizeof(t.s) - n, "%lldh",
			      (long long)(ms / 3600000));
	if (ms % 3600000 >= 60000)
		n += snprintf(t.s + n, sizeof(t.s) - n, "%lldm",
			      (long long)(ms % 3600000 / 60000));
	if (ms % 60000) {
		n += snprintf(t.s + n, sizeof(t.s) - n, "%lld",
			      (long long)(ms % 60000 / 1000));
		if (ms % 1000) {
			n += snprintf(t.s + n, sizeof(t.s) - n, ".%03lld",
				      (long long)(ms % 1000));
			while (t.s[n - 1] == '0')
				t.s[--n] = '\0';
		}
		snprintf(t.s + n, sizeof(t.s) - n, "s");
	}
	return t;
}

static struct text fmt_bytes(json_int_t bytes)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB",
					     "PiB" };
	double v = bytes;
	struct text t;
	int u = -1;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u < 0)
		snprintf(t.s, sizeof(t.s), "%lld B", (long long)bytes);
	else
		snprintf(t.s, sizeof(t.s), "%.1f %s", v, units[u]);
	return t;
}

/*
 * Local time, ISO 8601 with the offset from UTC; to the millisecond
 * unless @usec < 0 (times the daemon keeps in whole seconds).
 */
static struct text fmt_time(json_int_t sec, json_int_t usec)
{
	time_t when = (time_t)sec;
	struct text t;
	struct tm tm;
	size_t n;

	if (!localtime_r(&when, &tm)) {
		snprintf(t.s, sizeof(t.s), "%lld", (long long)sec);
		return t;
	}
	n = strftime(t.s, sizeof(t.s), "%Y-%m-%dT%H:%M:%S", &tm);
	if (usec >= 0)
		n += snprintf(t.s + n, sizeof(t.s) - n, ".%03lld",
			      (long long)(usec / 1000));
	strftime(t.s + n, sizeof(t.s) - n, "%z", &tm);
	return t;
}

/* "force" publishes a deadline after t_ok; the others promise none. */
static struct text fmt_deadline(json_t *timeline)
{
	json_int_t ms = int_of(timeline, "fence_deadline_ms");
	struct text t;

	if (ms)
		return fmt_duration(ms);
	snprintf(t.s, sizeof(t.s), "none");
	return t;
}

/* Writes the storage's devices hold, and how long the oldest has waited. */
static void print_in_flight(json_t *f)
{
	json_t *age = json_object_get(f, "oldest_write_ms");

	if (!json_is_object(f))
		return;
	printf("; in flight %lld reads, %lld writes",
	       (long long)int_of(f, "reads"), (long long)int_of(f, "writes"));
	if (json_is_object(age))
		printf(" (the oldest for %s)",
		       fmt_duration(int_of(age, "min")).s);
}

/* The daemon's heartbeat writes as the kernel saw them complete. */
static void print_kernel_heartbeats(json_t *h)
{
	if (!json_is_true(json_object_get(h, "seen_by_kernel")))
		return;
	printf("; kernel-seen heartbeats %lld", (long long)int_of(h, "count"));
	if (json_is_integer(json_object_get(h, "since_ms")))
		printf(", the last one %s ago",
		       fmt_duration(int_of(h, "since_ms")).s);
}

/* The kernel write fence of the storage, where the BPF LSM runs. */
static void print_kernel_fence(json_t *k)
{
	json_t *why = json_object_get(k, "reasons"), *r;
	size_t i;

	if (!json_is_true(json_object_get(k, "active")))
		return;
	if (!json_is_true(json_object_get(k, "fenced"))) {
		if (json_is_integer(json_object_get(k, "switch_in_ms")))
			printf("; kernel fence armed, the switch in %s",
			       fmt_duration(int_of(k, "switch_in_ms")).s);
		return;
	}
	printf("; KERNEL FENCED (");
	json_array_foreach(why, i, r)
		printf("%s%s", i ? ", " : "", json_string_value(r));
	printf(") for %s, %lld writes refused",
	       fmt_duration(int_of(k, "since_ms")).s,
	       (long long)int_of(k, "writes_refused"));
}

/* What the BPF tracker saw on the storage's device, or why nothing. */
static void print_io(json_t *io)
{
	if (!json_is_object(io)) {
		printf("no block device (no I/O evidence)\n");
		return;
	}
	printf("device %s: ", str_of(io, "device"));
	if (!json_is_true(json_object_get(io, "tracked"))) {
		printf("not tracked\n");
		return;
	}
	printf("%lld completions, %lld errors, %s",
	       (long long)int_of(io, "completions"),
	       (long long)int_of(io, "errors"),
	       fmt_bytes(int_of(io, "bytes")).s);
	if (int_of(io, "last_error"))
		printf(", last error %lld",
		       (long long)int_of(io, "last_error"));
	print_in_flight(json_object_get(io, "in_flight"));
	print_kernel_heartbeats(json_object_get(io, "heartbeats"));
	print_kernel_fence(json_object_get(io, "kernel_fence"));
	putchar('\n');
}

static void print_json(json_t *v)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
					   JSON_ENCODE_ANY);

	if (text)
		puts(text);
	free(text);
}

static int max_width(json_t *list, const char *key, int min)
{
	json_t *item;
	size_t i;
	int w = min;

	json_array_foreach(list, i, item) {
		int n = (int)strlen(str_of(item, key));

		if (n > w)
			w = n;
	}
	return w;
}

/* The host column only earns its width when there is more than one. */
static bool one_host(json_t *list)
{
	const char *first = str_of(json_array_get(list, 0), "host_uuid");
	json_t *s;
	size_t i;

	json_array_foreach(list, i, s)
		if (strcmp(str_of(s, "host_uuid"), first))
			return false;
	return true;
}

static void print_status(json_t *ret)
{
	json_t *bpf = json_object_get(ret, "bpf");
	json_t *list = json_object_get(ret, "storages");
	size_t i, n = json_array_size(list);
	bool hosts = !one_host(list);
	int uw = max_width(list, "uuid", 7),
	    hw = max_width(list, "host_uuid", 4);
	json_t *s;

	printf("iofenced: host %s, up %s, %lld requests served, %lld connections, last event %lld\n",
	       str_of(ret, "host_state"),
	       fmt_duration(int_of(ret, "uptime_ms") / 100 * 100).s,
	       (long long)int_of(ret, "requests"),
	       (long long)int_of(ret, "connections"),
	       (long long)int_of(ret, "last_seq"));
	if (json_is_true(json_object_get(bpf, "active")))
		printf("BPF tracker: active, pinned in %s\n",
		       str_of(bpf, "pin_dir"));
	else
		printf("BPF tracker: off (no block I/O evidence)\n");
	printf("%zu storage%s armed", n, n == 1 ? "" : "s");
	if (n && !hosts)
		printf(" for host %s",
		       str_of(json_array_get(list, 0), "host_uuid"));
	putchar('\n');
	if (!n)
		return;
	printf("%-*s ", uw, "STORAGE");
	if (hosts)
		printf("%-*s ", hw, "HOST");
	printf("%-8s %-5s %-8s %-8s %-10s %-8s %s\n", "STATE", "TYPE",
	       "INTERVAL", "TIMEOUT", "STRATEGY", "DEADLINE", "TARGET");
	json_array_foreach(list, i, s) {
		json_t *p = json_object_get(s, "params");
		json_t *io = json_object_get(s, "io");

		printf("%-*s ", uw, str_of(s, "uuid"));
		if (hosts)
			printf("%-*s ", hw, str_of(s, "host_uuid"));
		printf("%-8s %-5s %-8s %-8s %-10s %-8s %s\n",
		       str_of(json_object_get(s, "heartbeat"), "state"),
		       str_of(p, "type"),
		       fmt_duration(int_of(p, "interval_ms")).s,
		       fmt_duration(int_of(p, "timeout_ms")).s,
		       str_of(p, "strategy"),
		       fmt_deadline(json_object_get(s, "timeline")).s,
		       str_of(p, "target"));
		/* Evidence under its storage; nothing to say without it. */
		if (json_is_true(json_object_get(io, "tracked"))) {
			printf("%*s", uw + 1, "");
			print_io(io);
		}
	}
}

static void print_heartbeat(json_t *hb)
{
	json_t *fence = json_object_get(hb, "fence"), *v;
	size_t i;

	printf("heartbeat %s, record %lld written %s ago, %lld ok, %lld failed, %lld timed out",
	       str_of(hb, "state"), (long long)int_of(hb, "seq"),
	       fmt_duration(int_of(hb, "since_ok_ms")).s,
	       (long long)int_of(hb, "writes_ok"),
	       (long long)int_of(hb, "writes_failed"),
	       (long long)int_of(hb, "writes_timed_out"));
	if (json_object_get(hb, "last_error") &&
	    !json_is_null(json_object_get(hb, "last_error")))
		printf(" (%s)", str_of(hb, "last_error"));
	printf("\nlatency   last %lld us, max %lld us%s\n",
	       (long long)int_of(json_object_get(hb, "latency_us"), "last"),
	       (long long)int_of(json_object_get(hb, "latency_us"), "max"),
	       json_is_true(json_object_get(hb, "direct")) ? "" :
							     " (no O_DIRECT)");
	if (!fence)
		return;
	printf("fenced    %s: %s%s%s\n",
	       fmt_time(int_of(fence, "fenced_at"), -1).s,
	       str_of(fence, "reason"),
	       json_is_true(json_object_get(fence, "escalated")) ?
		       ", escalated" :
		       "",
	       json_is_true(json_object_get(fence, "restored")) ?
		       "; storage restored, unfence to resume" :
		       "");
	json_array_foreach(json_object_get(fence, "victims"), i, v)
		printf("victim    %lld %s (%s): %s\n",
		       (long long)int_of(v, "pid"), str_of(v, "exe"),
		       str_of(v, "why"), str_of(v, "result"));
}

static void print_storage(json_t *s)
{
	json_t *p = json_object_get(s, "params");
	json_t *tl = json_object_get(s, "timeline");
	json_t *v;
	size_t i;

	printf("storage   %s (index %lld)\n", str_of(s, "uuid"),
	       (long long)int_of(s, "index"));
	printf("host      %s, armed by %s, flight %lld\n",
	       str_of(s, "host_uuid"),
	       json_is_true(json_object_get(s, "reconnect")) ? "a reconnect" :
							       "a connect",
	       (long long)int_of(s, "flight"));
	printf("armed     %s", fmt_time(int_of(s, "armed_at"), -1).s);
	if (int_of(s, "updated_at") != int_of(s, "armed_at"))
		printf(", updated %s", fmt_time(int_of(s, "updated_at"), -1).s);
	printf("\ntarget    %s %s", str_of(p, "type"), str_of(p, "target"));
	if (json_object_get(p, "slot"))
		printf(", slot %lld of the region at %lld",
		       (long long)int_of(p, "slot"),
		       (long long)int_of(p, "region_offset"));
	printf("\nheartbeat every %s, I/O timeout %s, %lld attempts\n",
	       fmt_duration(int_of(p, "interval_ms")).s,
	       fmt_duration(int_of(p, "io_timeout_ms")).s,
	       (long long)int_of(p, "max_attempts"));
	printf("fence     after %s, %s, kill grace %s, victims",
	       fmt_duration(int_of(p, "timeout_ms")).s, str_of(p, "strategy"),
	       fmt_duration(int_of(p, "kill_grace_ms")).s);
	json_array_foreach(json_object_get(p, "victims"), i, v)
		printf(" %s", json_string_value(v));
	if (json_object_get(p, "fence_hook"))
		printf(", hook %s", str_of(p, "fence_hook"));
	printf("\ntimeline  late %s, fence %s, escalate %s after the last good heartbeat\n",
	       fmt_duration(int_of(tl, "late_ms")).s,
	       fmt_duration(int_of(tl, "fence_ms")).s,
	       fmt_duration(int_of(tl, "escalate_ms")).s);
	printf("deadline  %s\n", fmt_deadline(tl).s);
	print_heartbeat(json_object_get(s, "heartbeat"));
	printf("io        ");
	print_io(json_object_get(s, "io"));
}

static void print_version(json_t *ret)
{
	printf("%s %lld.%lld.%lld\n", str_of(ret, "package"),
	       (long long)int_of(ret, "major"), (long long)int_of(ret, "minor"),
	       (long long)int_of(ret, "micro"));
}

static void print_capabilities(json_t *ret)
{
	json_t *c;
	size_t i;

	printf("capabilities:");
	json_array_foreach(json_object_get(ret, "capabilities"), i, c)
		printf(" %s", json_string_value(c));
	printf("\nBPF tracker: %s\n",
	       json_is_true(json_object_get(ret, "bpf")) ? "active" : "off");
}

static void print_commands(json_t *ret)
{
	json_t *list = json_object_get(ret, "commands"), *c;
	int w = max_width(list, "name", 7);
	size_t i;

	printf("%-*s %-8s %s\n", w, "COMMAND", "CHANGES", "SUMMARY");
	json_array_foreach(list, i, c)
		printf("%-*s %-8s %s\n", w, str_of(c, "name"),
		       json_is_true(json_object_get(c, "mutating")) ? "state" :
								      "-",
		       str_of(c, "summary"));
}

static void print_host_state(json_t *ret)
{
	const char *state = str_of(ret, "state");
	const char *prev = str_of(ret, "previous");

	if (strcmp(state, prev))
		printf("host state %s (was %s)\n", state, prev);
	else
		printf("host state %s (unchanged)\n", state);
}

static void print_unfence(json_t *ret)
{
	printf("%s: unfenced, heartbeats %s\n", str_of(ret, "uuid"),
	       str_of(ret, "state"));
}

static void print_peer(json_t *ret)
{
	json_t *r = json_object_get(ret, "record"), *v;
	size_t i;

	printf("host %s on %s: %s", str_of(ret, "host"), str_of(ret, "storage"),
	       str_of(ret, "liveness"));
	if (json_object_get(ret, "progress"))
		printf(", %lld heartbeats in %s",
		       (long long)int_of(ret, "progress"),
		       fmt_duration(int_of(ret, "window_ms")).s);
	if (json_object_get(ret, "reason"))
		printf(" (%s)", str_of(ret, "reason"));
	putchar('\n');
	if (!r)
		return;
	printf("record seq %lld, %s, every %s, timeout %s, ",
	       (long long)int_of(r, "seq"), str_of(r, "state"),
	       fmt_duration(int_of(r, "interval_ms")).s,
	       fmt_duration(int_of(r, "timeout_ms")).s);
	if (int_of(r, "fence_deadline_ms"))
		printf("fence deadline %s\n",
		       fmt_duration(int_of(r, "fence_deadline_ms")).s);
	else
		printf("no fence deadline\n");
	printf("VMs:");
	json_array_foreach(json_object_get(r, "vms"), i, v)
		printf(" %s", json_string_value(v));
	if (int_of(r, "vms_omitted"))
		printf(" (and %lld more)", (long long)int_of(r, "vms_omitted"));
	if (!json_array_size(json_object_get(r, "vms")) &&
	    !int_of(r, "vms_omitted"))
		printf(" none");
	putchar('\n');
}

/* setup and teardown: the flight, then each storage's result. */
static void print_flight(json_t *ret)
{
	json_t *s;
	size_t i;

	printf("flight %lld%s\n", (long long)int_of(ret, "flight"),
	       json_is_true(json_object_get(ret, "joined")) ? " (joined)" : "");
	json_array_foreach(json_object_get(ret, "storages"), i, s) {
		printf("%s: %s", str_of(s, "uuid"), str_of(s, "result"));
		if (json_object_get(s, "reason"))
			printf(" (%s)", str_of(s, "reason"));
		putchar('\n');
	}
}

/* A value of an event's data: bare when that cannot be misread. */
static void print_data_value(json_t *v)
{
	const char *s = json_string_value(v);
	char *text;

	if (s && *s && !s[strcspn(s, " \t\n\"=\\")]) {
		fputs(s, stdout);
		return;
	}
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	fputs(text ? text : "?", stdout);
	free(text);
}

/* SEQ TIME EVENT key=value ..., or the message as one JSON line. */
static void print_event(const struct client *cl, json_t *ev)
{
	json_t *ts = json_object_get(ev, "timestamp");
	json_t *data = json_object_get(ev, "data"), *v;
	const char *key;
	char *text;

	if (cl->json) {
		text = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(text ? text : "");
		free(text);
		return;
	}
	printf("%lld %s %s", (long long)int_of(ev, "seq"),
	       fmt_time(int_of(ts, "seconds"), int_of(ts, "microseconds")).s,
	       str_of(ev, "event"));
	if (json_is_object(data)) {
		json_object_foreach(data, key, v) {
			printf(" %s=", key);
			print_data_value(v);
		}
	} else if (data && !json_is_null(data)) {
		printf(" data=");
		print_data_value(data);
	}
	putchar('\n');
}

/* --- the connection ------------------------------------------------- */

static int client_connect(struct client *cl, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "iofencectl: %s: path too long\n", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd < 0 ||
	    connect(cl->fd, (struct sockaddr *)&addr, sizeof(addr))) {
		fprintf(stderr, "iofencectl: cannot connect to %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	/*
	 * Requests are bounded by PROTO_MAX_LINE, replies are not: a status
	 * of many storages is longer. None is longer than what the daemon
	 * queues for one connection before it gives up on it.
	 */
	return linebuf_init(&cl->in, CTL_MAX_OUTPUT);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The next message from the daemon, or NULL after printing why not, or
 * silently once interrupted. @deadline < 0: wait as long as it takes.
 */
static json_t *client_read(struct client *cl, int64_t deadline)
{
	json_error_t jerr;
	size_t len, avail;
	char *line, *buf;
	ssize_t n;
	int ret;

	for (;;) {
		ret = linebuf_next(&cl->in, &line, &len);
		if (ret < 0) {
			fprintf(stderr,
				"iofencectl: reply longer than %d bytes\n",
				CTL_MAX_OUTPUT);
			return NULL;
		}
		if (ret > 0) {
			json_t *msg = json_loadb(line, len, 0, &jerr);

			if (!msg)
				fprintf(stderr, "iofencectl: bad reply: %s\n",
					jerr.text);
			return msg;
		}
		struct pollfd pfd = { .fd = cl->fd, .events = POLLIN };
		int64_t left = deadline < 0 ? -1 : deadline - now_ms();

		if (interrupted)
			return NULL;
		if (deadline >= 0 && left <= 0) {
			fprintf(stderr, "iofencectl: no reply within %s\n",
				fmt_duration(cl->wait_ms).s);
			return NULL;
		}
		ret = poll(&pfd, 1, clamp_int(left));
		if (ret <= 0) {
			if (ret < 0 && errno != EINTR) {
				fprintf(stderr, "iofencectl: poll: %s\n",
					strerror(errno));
				return NULL;
			}
			continue;
		}
		buf = linebuf_space(&cl->in, &avail);
		n = recv(cl->fd, buf, avail, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "iofencectl: connection closed%s%s\n",
				n ? ": " : "", n ? strerror(errno) : "");
			return NULL;
		}
		linebuf_commit(&cl->in, n);
	}
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "iofencectl: send: %s\n",
				strerror(errno));
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * Sends @execute with @args (borrowed; NULL: none) and returns the reply
 * to it within @wait_ms, skipping events: who wants them asks the journal.
 */
static json_t *client_call(struct client *cl, const char *execute, json_t *args,
			   int wait_ms)
{
	int64_t deadline = now_ms() + wait_ms;
	json_t *req, *id, *msg = NULL;
	size_t len;
	char *line;
	int ret;

	id = json_integer(++cl->next_id);
	req = json_pack("{s:s,s:O}", "execute", execute, "id", id);
	if (req && args)
		json_object_set(req, "arguments", args);
	line = proto_dump_line(req, &len);
	ret = line ? send_all(cl->fd, line, len) : -ENOMEM;
	free(line);
	cl->wait_ms = wait_ms;
	while (!ret && (msg = client_read(cl, deadline))) {
		/* Errors about the line itself carry no id. */
		if (json_equal(json_object_get(msg, "id"), id) ||
		    (json_object_get(msg, "error") &&
		     !json_object_get(msg, "id")))
			break;
		json_decref(msg);
	}
	json_decref(id);
	return msg;
}

/*
 * One request: CTL_EXIT_OK with the reply in *@reply, or the exit status
 * after saying what went wrong.
 */
static int call(struct client *cl, const char *execute, json_t *args,
		int wait_ms, json_t **reply)
{
	json_t *err;

	*reply = client_call(cl, execute, args, wait_ms);
	if (!*reply)
		return CTL_EXIT_USAGE;
	err = json_object_get(*reply, "error");
	if (!err)
		return CTL_EXIT_OK;
	if (cl->json)
		print_json(*reply);
	fprintf(stderr, "iofencectl: %s: %s\n", str_of(err, "class"),
		str_of(err, "desc"));
	json_decref(*reply);
	*reply = NULL;
	return CTL_EXIT_ERROR_REPLY;
}

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
	json_decref(reply);
	return CTL_EXIT_OK;
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
	interrupted = 1;
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
	if (interrupted)
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
	  .print = print_peer },
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

	status = CTL_EXIT_USAGE;
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
	json_decref(inv.args);
	if (cl.fd >= 0)
		close(cl.fd);
	linebuf_free(&cl.in);
	return status;
}
