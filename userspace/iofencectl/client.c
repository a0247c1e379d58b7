// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofencectl's connection to the daemon: one request at a time, its reply
 * found by id among the events, every wait bounded.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "array_size.h"
#include "ctl.h"
#include "ctl_server.h"
#include "proto.h"

int client_connect(struct client *cl, const char *path)
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

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The next message from the daemon, or NULL after printing why not, or
 * silently once interrupted. @deadline < 0: wait as long as it takes.
 */
json_t *client_read(struct client *cl, int64_t deadline)
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

		if (ctl_interrupted)
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

int send_all(int fd, const char *buf, size_t len)
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
json_t *client_call(struct client *cl, const char *execute, json_t *args,
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

/* --- the daemon's errors in the command line's words ------------------ */

/*
 * A member of the request, as the command line gave it: @where the
 * storage ("--storage #2 (uuid ps2)"; empty for an option of its own),
 * @what the key or option ("interval=", "--timeout"; empty: the storage
 * itself), @value what it was set to, as given ("50ms"; empty: unknown).
 */
struct words {
	char where[160];
	char what[96];
	char value[96];
	char item[32]; /* which item of a list value: " (pattern #2)" */
	bool key; /* @what is a --storage key: KEY=VALUE */
	enum kind kind;
	json_t *json; /* the value, borrowed from the request; or NULL */
};

static const struct opt_spec *opt_of(const struct client *cl, const char *key)
{
	for (const struct opt_spec *o = cl->opts; o && o->name; o++)
		if (o->key && !strcmp(o->key, key))
			return o;
	return NULL;
}

/* @v as given on the command line: durations with their unit. */
static void value_text(char *buf, size_t len, json_t *v, enum kind kind)
{
	json_t *item;
	size_t i, n = 0;

	buf[0] = '\0';
	if (json_is_integer(v) && kind == KIND_DURATION)
		snprintf(buf, len, "%s", fmt_duration(json_integer_value(v)).s);
	else if (json_is_integer(v))
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, len, "%s", json_is_true(v) ? "yes" : "no");
	else if (json_is_string(v))
		snprintf(buf, len, "%s", json_string_value(v));
	else if (json_is_array(v))
		json_array_foreach(v, i, item)
			if (n < len)
				n += snprintf(buf + n, len - n, "%s%s",
					      i ? ":" : "",
					      json_string_value(item) ?
						      json_string_value(item) :
						      "?");
}

/* "name[3]" at @p: the name's length, and the index in *@idx (or -1). */
static size_t path_part(const char *p, long *idx)
{
	size_t n = strcspn(p, "[.");

	*idx = -1;
	if (p[n] == '[')
		*idx = strtol(p + n + 1, NULL, 10);
	return n;
}

static const char *after_part(const char *p)
{
	p += strcspn(p, "[.");
	if (*p == '[')
		p = strchr(p, ']') ? strchr(p, ']') + 1 : p + strlen(p);
	return *p == '.' ? p + 1 : p;
}

static struct words words_of(const struct client *cl, json_t *args,
			     const char *member)
{
	struct words w = { .kind = KIND_STRING };
	char top[48], sub[48];
	const struct opt_spec *o;
	json_t *v, *item = NULL;
	long i, j;
	size_t n = path_part(member, &i);
	const char *rest = after_part(member), *word;

	snprintf(top, sizeof(top), "%.*s", (int)n, member);
	v = json_object_get(args, top);
	o = opt_of(cl, top);
	if (i >= 0) {
		/* An item of a list, which only --storage makes. */
		item = json_array_get(v, i);
		n = snprintf(w.where, sizeof(w.where), "%s%s #%ld",
			     o ? "--" : "", o ? o->name : top, i + 1);
		if (json_is_string(json_object_get(item, "uuid")))
			snprintf(w.where + n, sizeof(w.where) - n, " (uuid %s)",
				 json_string_value(
					 json_object_get(item, "uuid")));
		else if (json_is_string(item))
			snprintf(w.where + n, sizeof(w.where) - n, " (%s)",
				 json_string_value(item));
	} else if (o) {
		snprintf(w.what, sizeof(w.what), "--%s", o->name);
		w.kind = o->kind;
		w.json = v;
		value_text(w.value, sizeof(w.value), v, o->kind);
	} else if (cl->positional && !strcmp(top, cl->positional)) {
		snprintf(w.what, sizeof(w.what), "%s", cl->sub);
		value_text(w.value, sizeof(w.value), v, KIND_STRING);
	} else {
		snprintf(w.what, sizeof(w.what), "%s", top);
	}
	if (!*rest || !json_is_object(item))
		return w;
	/* A key of that storage, perhaps one item of its list. */
	n = path_part(rest, &j);
	snprintf(sub, sizeof(sub), "%.*s", (int)n, rest);
	word = spec_key_word(sub);
	w.key = true;
	w.kind = spec_key_kind(sub);
	snprintf(w.what, sizeof(w.what), "%s=", word ? word : sub);
	v = json_object_get(item, sub);
	/* One item of its list: the list as given, and which one. */
	if (j >= 0 && json_array_size(v) > 1)
		snprintf(w.item, sizeof(w.item), " (pattern #%ld)", j + 1);
	w.json = v;
	value_text(w.value, sizeof(w.value), v, w.kind);
	return w;
}

/* What is named, with its value when it had one: "interval=50ms". */
static const char *named(const struct words *w, char *buf, size_t len)
{
	if (!w->value[0])
		snprintf(buf, len, "%s", w->what);
	else
		snprintf(buf, len, "%s%s%s%s", w->what, w->key ? "" : " ",
			 w->value, w->item);
	return buf;
}

/* A bound, in the unit of the member it bounds. */
static struct text bound_text(const struct words *w, json_t *v)
{
	struct text t;

	value_text(t.s, sizeof(t.s), v, w->kind);
	return t;
}

/*
 * Why the daemon has the rule that one member bounds another: the two
 * limits of the timeline (iofence-protocol(7), "The timeline").
 */
static const char *bound_reason(const char *member, const char *bound)
{
	static const struct {
		const char *member, *bound, *why;
	} reasons[] = {
		{ "timeout_ms", "interval_ms",
		  "the fence would come before the next heartbeat is due" },
		{ "io_timeout_ms", "interval_ms",
		  "a heartbeat write must end before the next one is due" },
	};
	const char *m = strrchr(member, '.'), *b = strrchr(bound, '.');

	m = m ? m + 1 : member;
	b = b ? b + 1 : bound;
	for (size_t i = 0; i < ARRAY_SIZE(reasons); i++)
		if (!strcmp(m, reasons[i].member) &&
		    !strcmp(b, reasons[i].bound))
			return reasons[i].why;
	return NULL;
}

/*
 * A rule between two keys: "timeout=1s is below interval=2s: ...;
 * timeout= must be at least interval=", or above a maximum (!@below).
 */
static void say_bound(char *buf, size_t len, const struct client *cl,
		      json_t *args, const struct words *w, const char *name,
		      const char *member, const char *bound, json_t *value,
		      bool below)
{
	struct words b = words_of(cl, args, bound);
	const char *why = bound_reason(member, bound);

	snprintf(buf, len, "%s is %s %s%s: %s%s%s must be at %s %s", name,
		 below ? "below" : "above", b.what, bound_text(w, value).s,
		 why ? why : "", why ? "; " : "", w->what,
		 below ? "least" : "most", b.what);
}

/* A range error: "interval=50ms: must be between 100ms and 10m". */
static void say_range(char *buf, size_t len, const struct client *cl,
		      json_t *args, const struct words *w, json_t *data)
{
	json_t *min = json_object_get(data, "min");
	json_t *max = json_object_get(data, "max");
	const char *minm =
		json_string_value(json_object_get(data, "min_member"));
	const char *maxm =
		json_string_value(json_object_get(data, "max_member"));
	const char *member = json_string_value(json_object_get(data, "member"));
	bool have = json_is_integer(w->json);
	json_int_t v = json_integer_value(w->json);
	char name[256];

	named(w, name, sizeof(name));
	if (have && minm && v < json_integer_value(min))
		say_bound(buf, len, cl, args, w, name, member, minm, min, true);
	else if (have && maxm && v > json_integer_value(max))
		say_bound(buf, len, cl, args, w, name, member, maxm, max,
			  false);
	else
		snprintf(buf, len, "%s: must be between %s and %s", name,
			 bound_text(w, min).s, bound_text(w, max).s);
}

/* The text of an error, in the command line's words where it has them. */
static void error_words(char *buf, size_t len, const struct client *cl,
			json_t *args, json_t *err)
{
	json_t *data = json_object_get(err, "data");
	const char *rule = json_string_value(json_object_get(data, "rule"));
	const char *member = json_string_value(json_object_get(data, "member"));
	const char *reason = json_string_value(json_object_get(data, "reason"));
	const char *other;
	struct words w, o, f;
	struct suggestion sg = { 0 };
	char name[256], factor[256], head[200] = "", *p;
	size_t n;

	if (rule && !strcmp(rule, "host_state")) {
		snprintf(
			buf, len,
			"host state is %s; setup needs connected (iofencectl set-host-state connected), or --no-status-check for this one request",
			str_of(data, "state"));
		return;
	}
	if (!rule || !member || !reason) {
		snprintf(buf, len, "%s", str_of(err, "desc"));
		return;
	}
	w = words_of(cl, args, member);
	if (w.where[0])
		snprintf(head, sizeof(head), "%s: ", w.where);
	n = snprintf(buf, len, "%s", head);
	p = buf + (n < len ? n : len - 1);
	len -= p - buf;
	if (!strcmp(rule, "range") ||
	    (!strcmp(rule, "type") && json_object_get(data, "min") &&
	     w.kind == KIND_DURATION)) {
		say_range(p, len, cl, args, &w, data);
	} else if (!strcmp(rule, "product")) {
		o = words_of(cl, args,
			     json_string_value(json_array_get(
				     json_object_get(data, "factors"), 0)));
		f = words_of(cl, args,
			     json_string_value(json_array_get(
				     json_object_get(data, "factors"), 1)));
		snprintf(
			p, len,
			"%s defaults to %s x %s = %s, above its maximum of %s; lower one of them, or give %s",
			w.what, named(&o, name, sizeof(name)),
			named(&f, factor, sizeof(factor)),
			fmt_duration(int_of(data, "value")).s,
			fmt_duration(int_of(data, "max")).s, w.what);
	} else if (!strcmp(rule, "missing") && !strcmp(reason, "missing")) {
		snprintf(p, len, "%s is missing", w.what);
	} else if (!strcmp(rule, "unknown")) {
		/* The name as it was given, the protocol's or not. */
		snprintf(name, sizeof(name), "%s", w.what);
		if (w.key) {
			name[strcspn(name, "=")] = '\0';
			sg.typed = name;
			spec_keys_consider(&sg);
		}
		snprintf(p, len, "unknown %s '%s'%s%s%s",
			 w.key ? "key" : "argument", name,
			 suggest_result(&sg) ? " (did you mean " : "",
			 suggest_result(&sg) ? suggest_result(&sg) : "",
			 suggest_result(&sg) ? "=?)" : "");
	} else if (!strcmp(rule, "duplicate")) {
		other = json_string_value(json_object_get(data, "same_as"));
		o = words_of(cl, args, other ? other : "");
		snprintf(p, len, "the same storage as %s", o.where);
	} else if (!w.what[0] || !strcmp(w.what, "uuid=")) {
		/* The storage itself, already named with its uuid. */
		snprintf(p, len, "%s", reason);
	} else {
		snprintf(p, len, "%s: %s", named(&w, name, sizeof(name)),
			 reason);
	}
}

/*
 * One request: CTL_EXIT_OK with the reply in *@reply, or the exit status
 * after saying what went wrong. With --json an error reply goes to
 * stdout as it came; the line on stderr says it in the command line's
 * words, from the error's data (iofence-protocol(7), "Errors").
 */
int call(struct client *cl, const char *execute, json_t *args, int wait_ms,
	 json_t **reply)
{
	char text[1024];
	json_t *err;

	*reply = client_call(cl, execute, args, wait_ms);
	if (!*reply)
		return CTL_EXIT_USAGE;
	err = json_object_get(*reply, "error");
	if (!err)
		return CTL_EXIT_OK;
	if (cl->json)
		print_json(*reply);
	error_words(text, sizeof(text), cl, args, err);
	fprintf(stderr, "iofencectl: %s: %s\n", str_of(err, "class"), text);
	json_decref(*reply);
	*reply = NULL;
	return CTL_EXIT_ERROR_REPLY;
}
