// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofencectl connect: what the connect agent runs right after the
 * hypervisor connect step. It reads the storage list the way a management
 * node sends it, checks every item before anything goes out, then says
 * the host is connecting and arms the storages in one setup, and tells per
 * storage what came of it. Its exit status is the agent's decision.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "deadlines.h"
#include "timeline.h"

#define CONNECT_USAGE                                  \
	"--host UUID [--reconnect] [--deadline DUR]\n" \
	"        [--storages FILE|-]"

/* A management node's storage type, and what iofence makes of it. */
struct type_name {
	const char *name;
	const char *type; /* "file" or "block" */
};

/*
 * File storages heartbeat into a file under their mount path; block
 * storages into a slot of a region of the shared device; rbd storages
 * into an object of their Ceph pool (CloudStack's RBD pools: VMs reach
 * them through librbd; an image mapped with krbd is a "block" storage).
 * The names are those of the management nodes (CloudStack's pool types
 * among them), matched without regard to case.
 */
static const struct type_name type_names[] = {
	{ "file", "file" },
	{ "nfs", "file" },
	{ "networkfilesystem", "file" },
	{ "sharedmountpoint", "file" },
	{ "filesystem", "file" },
	{ "gluster", "file" },
	{ "block", "block" },
	{ "lun", "block" },
	{ "iscsi", "block" },
	{ "fc", "block" },
	{ "clvm", "block" },
	{ "rbd", "rbd" },
	{ "ceph", "rbd" },
	{},
};

#define TYPE_RULE                                                      \
	"file, nfs, NetworkFilesystem, SharedMountPoint, Filesystem, " \
	"Gluster (a file system), block, lun, iscsi, fc, CLVM (a "     \
	"shared block device) or RBD, ceph (a Ceph pool)"

enum field_kind {
	F_STRING,
	F_TYPE,
	F_PATH,
	F_BOOL,
	F_DURATION,
	F_COUNT,
	F_STRATEGY,
	F_LIST,
	F_NAME, /* rbd: a pool, namespace or client name; the daemon checks */
};

/* An item's field, and the protocol's name of the storage key it sets. */
struct field {
	const char *name;
	const char *key;
	enum field_kind kind;
	uint64_t min, max; /* F_DURATION in ms, F_COUNT */
	bool block_only;
	bool rbd_only;
};

#define FIELD(n, k, kd, ...)                                 \
	{                                                    \
		.name = n, .key = k, .kind = kd, __VA_ARGS__ \
	}

static const struct field fields[] = {
	FIELD("uuid", "uuid", F_STRING),
	FIELD("type", "type", F_TYPE),
	FIELD("path", "target", F_PATH),
	FIELD("mount_path", "target", F_PATH),
	FIELD("target", "target", F_PATH),
	FIELD("connected", "connected", F_BOOL),
	FIELD("interval", "interval_ms", F_DURATION, .min = TL_INTERVAL_MIN_MS,
	      .max = TL_INTERVAL_MAX_MS),
	FIELD("io_timeout", "io_timeout_ms", F_DURATION,
	      .min = TL_IO_TIMEOUT_MIN_MS, .max = TL_INTERVAL_MAX_MS),
	FIELD("attempts", "max_attempts", F_COUNT, .min = TL_ATTEMPTS_MIN,
	      .max = TL_ATTEMPTS_MAX),
	FIELD("timeout", "timeout_ms", F_DURATION, .min = TL_INTERVAL_MIN_MS,
	      .max = TL_TIMEOUT_MAX_MS),
	FIELD("kill_grace", "kill_grace_ms", F_DURATION, .min = 0,
	      .max = TL_KILL_GRACE_MAX_MS),
	FIELD("strategy", "strategy", F_STRATEGY),
	FIELD("victims", "victims", F_LIST, .min = 1,
	      .max = STORAGE_VICTIMS_MAX),
	FIELD("fence_hook", "fence_hook", F_PATH),
	FIELD("region_offset", "region_offset", F_COUNT, .min = 0,
	      .max = INT64_MAX, .block_only = true),
	FIELD("slot", "slot", F_COUNT, .min = 0, .max = BLOCK_SLOT_MAX,
	      .block_only = true),
	FIELD("pool", "pool", F_NAME, .rbd_only = true),
	FIELD("namespace", "namespace", F_NAME, .rbd_only = true),
	FIELD("ceph_conf", "ceph_conf", F_PATH, .rbd_only = true),
	FIELD("client", "client", F_NAME, .rbd_only = true),
	FIELD("keyring", "keyring", F_PATH, .rbd_only = true),
	{ .name = NULL },
};

/* What went wrong with an item: its place, its field, the rule. */
struct item_err {
	size_t index;
	const char *uuid; /* NULL until known */
	char msg[256];
};

static int item_fail(struct item_err *e, const char *field, const char *fmt,
		     ...) __attribute__((format(printf, 3, 4)));
static int item_fail(struct item_err *e, const char *field, const char *fmt,
		     ...)
{
	int n = 0;
	va_list ap;

	if (field)
		n = snprintf(e->msg, sizeof(e->msg), "%s: ", field);
	va_start(ap, fmt);
	vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static bool uuid_valid(const char *s)
{
	size_t n = strlen(s);

	return n && n <= STORAGE_UUID_MAX && s[0] != '.' &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			 "0123456789._:-") == n;
}

/* Absolute and normalised, as the daemon takes paths. */
static const char *path_rule(const char *p)
{
	if (p[0] != '/')
		return "must be an absolute path";
	if (strlen(p) >= PATH_MAX)
		return "too long";
	if (p[1] && p[strlen(p) - 1] == '/')
		return "must be normalised (no trailing '/')";
	for (const char *c = p + 1; *c;) {
		size_t n = strcspn(c, "/");

		if ((n == 0 && c[n]) || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return "must be normalised (no '//', '.' or '..')";
		c += n + (c[n] == '/');
	}
	return NULL;
}

/*
 * A duration of the list: a JSON integer is seconds, as management nodes
 * speak (CloudStack's KVM HA heartbeat interval is in seconds); a string
 * is one of iofencectl's durations, with its unit, since a bare number
 * there would mean milliseconds.
 */
static int duration_of(json_t *v, const struct field *f, uint64_t *ms,
		       struct item_err *e)
{
	const char *s = json_string_value(v), *why;
	size_t n;

	if (json_is_integer(v)) {
		json_int_t sec = json_integer_value(v);

		if (sec < 0 || (uint64_t)sec > f->max / 1000 + 1)
			goto range;
		*ms = (uint64_t)sec * 1000;
	} else if (s) {
		n = strlen(s);
		if (!n || s[n - 1] < 'a' || s[n - 1] > 'z')
			return item_fail(
				e, f->name,
				"\"%s\" has no unit: a string is a duration like 500ms, 2s, 1.5s or 1m (a number is seconds)",
				s);
		if (parse_duration(s, ms, &why))
			return item_fail(e, f->name, "\"%s\": %s", s, why);
	} else {
		return item_fail(
			e, f->name,
			"must be a whole number of seconds, or a string with a unit (500ms, 2s, 1.5s, 1m)");
	}
	if (*ms >= f->min && *ms <= f->max)
		return 0;
range:
	return item_fail(e, f->name, "must be between %s and %s",
			 fmt_duration(f->min).s, fmt_duration(f->max).s);
}

static const char *type_of(const char *name)
{
	for (const struct type_name *t = type_names; t->name; t++)
		if (!strcasecmp(name, t->name))
			return t->type;
	return NULL;
}

/* One field @v of an item into the storage object @st. */
static int field_parse(const struct field *f, json_t *v, json_t *st,
		       struct item_err *e)
{
	const char *s = json_string_value(v), *why;
	json_t *out = NULL, *pat;
	uint64_t ms;
	size_t i;

	switch (f->kind) {
	case F_NAME:
		if (!s || !*s)
			return item_fail(e, f->name,
					 "must be a non-empty string");
		out = json_string(s);
		break;
	case F_STRING:
		if (!s || !uuid_valid(s))
			return item_fail(
				e, f->name,
				"must be a string of 1 to %d of A-Z a-z 0-9 . _ : - not starting with '.'",
				STORAGE_UUID_MAX);
		out = json_string(s);
		break;
	case F_TYPE:
		if (!s)
			return item_fail(e, f->name, "must be a string: %s",
					 TYPE_RULE);
		if (!type_of(s))
			return item_fail(e, f->name, "unknown type \"%s\": %s",
					 s, TYPE_RULE);
		out = json_string(type_of(s));
		break;
	case F_PATH:
		if (!s)
			return item_fail(e, f->name,
					 "must be a string (a path)");
		why = path_rule(s);
		if (why)
			return item_fail(e, f->name, "\"%s\" %s", s, why);
		out = json_string(s);
		break;
	case F_BOOL:
		if (!json_is_boolean(v))
			return item_fail(e, f->name, "must be true or false");
		out = json_incref(v);
		break;
	case F_DURATION:
		if (duration_of(v, f, &ms, e))
			return -EINVAL;
		out = json_integer((json_int_t)ms);
		break;
	case F_COUNT:
		if (!json_is_integer(v) || json_integer_value(v) < 0 ||
		    (uint64_t)json_integer_value(v) < f->min ||
		    (uint64_t)json_integer_value(v) > f->max)
			return item_fail(
				e, f->name,
				"must be a whole number from %llu to %llu",
				(unsigned long long)f->min,
				(unsigned long long)f->max);
		if (!strcmp(f->key, "region_offset") &&
		    json_integer_value(v) % 4096)
			return item_fail(e, f->name,
					 "must be a multiple of 4096");
		out = json_incref(v);
		break;
	case F_STRATEGY:
		if (!s || (strcmp(s, "force") && strcmp(s, "kill-only") &&
			   strcmp(s, "permissive")))
			return item_fail(
				e, f->name,
				"must be \"force\", \"kill-only\" or \"permissive\"");
		out = json_string(s);
		break;
	case F_LIST:
		if (!json_is_array(v) || json_array_size(v) < f->min ||
		    json_array_size(v) > f->max)
			return item_fail(e, f->name,
					 "must be a list of 1 to %llu patterns",
					 (unsigned long long)f->max);
		json_array_foreach(v, i, pat) {
			s = json_string_value(pat);
			if (!s || !*s || strlen(s) > 64 || strchr(s, '/'))
				return item_fail(
					e, f->name,
					"[%zu] must be a string of 1 to 64 characters without '/'",
					i);
		}
		out = json_incref(v);
		break;
	}
	if (!out || json_object_set_new(st, f->key, out))
		return item_fail(e, f->name, "out of memory");
	return 0;
}

static const struct field *field_find(const char *name)
{
	for (const struct field *f = fields; f->name; f++)
		if (!strcmp(name, f->name))
			return f;
	return NULL;
}

/* The rules between an item's figures, as the daemon has them. */
static int timeline_check(json_t *st, struct item_err *e)
{
	json_int_t iv = json_object_get(st, "interval_ms") ?
				int_of(st, "interval_ms") :
				TL_INTERVAL_DEFAULT_MS;
	json_int_t n = json_object_get(st, "max_attempts") ?
			       int_of(st, "max_attempts") :
			       TL_ATTEMPTS_DEFAULT;

	if (json_object_get(st, "io_timeout_ms") &&
	    int_of(st, "io_timeout_ms") > iv)
		return item_fail(e, "io_timeout",
				 "must not be longer than interval (%s)",
				 fmt_duration(iv).s);
	if (json_object_get(st, "timeout_ms")) {
		if (int_of(st, "timeout_ms") < iv)
			return item_fail(
				e, "timeout",
				"must not be shorter than interval (%s)",
				fmt_duration(iv).s);
	} else if (iv * n > TL_TIMEOUT_MAX_MS) {
		return item_fail(
			e, "attempts",
			"interval × attempts is %s, over %s; lower one of them or give timeout",
			fmt_duration(iv * n).s,
			fmt_duration(TL_TIMEOUT_MAX_MS).s);
	}
	return 0;
}

/* Item @item of the list as a setup storage object, or NULL and why. */
static json_t *item_parse(json_t *item, struct item_err *e)
{
	json_t *st, *v;
	const char *name, *target = NULL, *pool_from = NULL;
	const struct field *f;
	bool block, rbd;

	if (!json_is_object(item)) {
		item_fail(e, NULL, "must be an object");
		return NULL;
	}
	/* The uuid first, so that every later error can name the item. */
	v = json_object_get(item, "uuid");
	if (!v) {
		item_fail(e, "uuid", "missing (every storage has one)");
		return NULL;
	}
	if (json_is_string(v))
		e->uuid = json_string_value(v);
	st = json_object();
	if (!st) {
		item_fail(e, NULL, "out of memory");
		return NULL;
	}
	rbd = json_is_string(json_object_get(item, "type")) &&
	      type_of(str_of(item, "type")) &&
	      !strcmp(type_of(str_of(item, "type")), "rbd");
	json_object_foreach(item, name, v) {
		f = field_find(name);
		if (!f) {
			/* A misspelt field would silently be a default. */
			item_fail(e, name,
				  "unknown field (see iofencectl(8), CONNECT)");
			goto fail;
		}
		if (rbd && f->kind == F_PATH && !strcmp(f->key, "target")) {
			/* CloudStack's RBD pool: its path is the pool's name. */
			f = field_find("pool");
			if (pool_from) {
				item_fail(e, name,
					  "given with %s: both name the pool",
					  pool_from);
				goto fail;
			}
			pool_from = name;
		} else if (rbd && !strcmp(f->key, "pool")) {
			if (pool_from) {
				item_fail(e, name,
					  "given with %s: both name the pool",
					  pool_from);
				goto fail;
			}
			pool_from = name;
		} else if (f->kind == F_PATH && !strcmp(f->key, "target")) {
			if (target) {
				item_fail(
					e, name,
					"given with %s: path, mount_path and target are one field",
					target);
				goto fail;
			}
			target = f->name;
		}
		if (field_parse(f, v, st, e))
			goto fail;
	}
	if (!json_object_get(st, "type")) {
		item_fail(e, "type", "missing: %s", TYPE_RULE);
		goto fail;
	}
	if (rbd && !pool_from) {
		item_fail(
			e, "pool",
			"missing: an rbd storage names its Ceph pool (pool, or path)");
		goto fail;
	}
	if (!target && !rbd) {
		item_fail(
			e, "path",
			"missing: the mount path of a file system, or the shared block device (path, mount_path or target)");
		goto fail;
	}
	if (timeline_check(st, e))
		goto fail;
	block = !strcmp(str_of(st, "type"), "block");
	for (f = fields; f->name; f++) {
		if (f->block_only && !block && json_object_get(item, f->name)) {
			item_fail(e, f->name, "only for block storages");
			goto fail;
		}
		if (f->rbd_only && !rbd && json_object_get(item, f->name)) {
			item_fail(e, f->name, "only for rbd storages");
			goto fail;
		}
	}
	return st;
fail:
	json_decref(st);
	return NULL;
}

static json_t *list_load(const char *file, struct item_err *e)
{
	json_error_t jerr;
	json_t *doc;
	FILE *in = stdin;

	if (strcmp(file, "-")) {
		in = fopen(file, "r");
		if (!in) {
			fprintf(stderr, "iofencectl: connect: %s: %s\n", file,
				strerror(errno));
			return NULL;
		}
	}
	doc = json_loadf(in, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	if (in != stdin)
		fclose(in);
	if (!doc)
		fprintf(stderr,
			"iofencectl: connect: storage list (%s): not valid JSON: line %d, column %d: %s\n",
			strcmp(file, "-") ? file : "stdin", jerr.line,
			jerr.column, jerr.text);
	return doc;
}

/*
 * The storage list: a JSON array of items, or an object with such an
 * array under "storages" (a management node's whole message; its other
 * members are not ours). Every item is checked before anything is sent.
 */
static json_t *storages_parse(const char *file)
{
	json_t *doc, *list, *out = NULL, *item, *st;
	struct item_err e = { 0 };
	size_t i, j;

	doc = list_load(file, &e);
	if (!doc)
		return NULL;
	list = json_is_object(doc) ? json_object_get(doc, "storages") : doc;
	if (!json_is_array(list)) {
		fprintf(stderr, "iofencectl: connect: storage list: %s\n",
			json_is_object(doc) ?
				"\"storages\" must be an array of storages" :
				"must be a JSON array of storages, or an object with one under \"storages\"");
		goto out;
	}
	out = json_array();
	json_array_foreach(list, i, item) {
		e = (struct item_err){ .index = i };
		st = item_parse(item, &e);
		for (j = 0; st && j < i; j++)
			if (!strcmp(str_of(json_array_get(out, j), "uuid"),
				    str_of(st, "uuid"))) {
				item_fail(&e, "uuid", "same as storages[%zu]",
					  j);
				json_decref(st);
				st = NULL;
			}
		if (!st) {
			fprintf(stderr,
				"iofencectl: connect: storages[%zu]%s%s%s: %s; nothing was sent\n",
				i, e.uuid ? " (" : "", e.uuid ? e.uuid : "",
				e.uuid ? ")" : "", e.msg);
			json_decref(out);
			out = NULL;
			goto out;
		}
		json_array_append_new(out, st);
	}
out:
	json_decref(doc);
	return out;
}

const struct opt_spec connect_opts[] = {
	{ "host", 'H', false, "UUID", NULL, KIND_STRING,
	  "this host (required)" },
	{ "reconnect", 'r', false, NULL, NULL, KIND_BOOL,
	  "the reconnect path: setup with reconnect and\n"
	  "no_status_check" },
	{ "deadline", 'd', false, "DUR", NULL, KIND_DURATION,
	  "the setup's deadline (default 30s)" },
	{ "storages", 'S', false, "FILE|-", NULL, KIND_STRING,
	  "the storage list (default -: stdin)" },
	{},
};

_Static_assert(SETUP_DEFAULT_DEADLINE_MS == 30000, "connect's help says 30s");

const char connect_description[] =
	"The connect agent's call right after the hypervisor connect step of\n"
	"a connect or a reconnect: reads the host's storage list (JSON, from\n"
	"FILE or stdin), checks every item, then unless the host state is\n"
	"connected sends set-host-state connecting, and arms the storages in\n"
	"one setup (with --reconnect: reconnect and no_status_check) within\n"
	"DUR. Prints one line per storage: armed, updated, unchanged, skipped\n"
	"(not connected on this host) or failed (why).\n"
	"\n"
	"The list: [{\"uuid\": ..., \"type\": ..., \"path\": ..., ...}, ...], or\n"
	"an object with that array under \"storages\". Fields: uuid, type,\n"
	"path (or mount_path or target), connected (default true), interval,\n"
	"io_timeout, timeout, kill_grace (a number of seconds, or a string\n"
	"with a unit: 500ms, 2s, 1.5s, 1m), attempts, strategy, victims (a\n"
	"list), fence_hook, region_offset and slot (block only).\n"
	"type: " TYPE_RULE ".\n"
	"\n"
	"Exit status: 0 every connected storage armed, updated or unchanged;\n"
	"1 the daemon refused (nothing was changed: setup is all or nothing);\n"
	"2 usage or a bad storage list (nothing was sent); 3 no daemon, or no\n"
	"reply in time (what is armed is unknown: query status).";

int parse_connect(struct invocation *inv)
{
	const char *host = NULL, *file = "-", *why;
	bool reconnect = false;
	uint64_t deadline = SETUP_DEFAULT_DEADLINE_MS;
	json_t *list;
	int c;

	options_start();
	while ((c = next_option(inv, connect_opts)) != -1) {
		switch (c) {
		case 'H':
			host = optarg;
			break;
		case 'r':
			reconnect = true;
			break;
		case 'd':
			if (parse_duration(optarg, &deadline, &why) ||
			    deadline < SETUP_MIN_DEADLINE_MS ||
			    deadline > SETUP_MAX_DEADLINE_MS) {
				fprintf(stderr,
					"iofencectl: connect: --deadline %s: must be a duration from %s to %s (" DURATION_RULE
					")\n",
					optarg,
					fmt_duration(SETUP_MIN_DEADLINE_MS).s,
					fmt_duration(SETUP_MAX_DEADLINE_MS).s);
				return CTL_EXIT_USAGE;
			}
			break;
		case 'S':
			file = optarg;
			break;
		default:
			return CTL_EXIT_USAGE;
		}
	}
	if (optind < inv->argc)
		return no_more_arguments(inv);
	if (!host || !uuid_valid(host)) {
		fprintf(stderr,
			"iofencectl: connect: %s; see 'iofencectl help connect'\n",
			host ? "--host: must be 1 to 64 of A-Z a-z 0-9 . _ : - not starting with '.'" :
			       "needs --host");
		return CTL_EXIT_USAGE;
	}
	list = storages_parse(file);
	if (!list)
		return CTL_EXIT_USAGE;
	json_object_set_new(inv->args, "host_uuid", json_string(host));
	if (reconnect) {
		json_object_set_new(inv->args, "reconnect", json_true());
		json_object_set_new(inv->args, "no_status_check", json_true());
	}
	json_object_set_new(inv->args, "timeout_ms",
			    json_integer((json_int_t)deadline));
	json_object_set_new(inv->args, "storages", list);
	inv->deadline_ms = (int)deadline;
	return CTL_EXIT_OK;
}

/*
 * The index of the storage a flight's error names ("storages[2] (ps3):
 * ..."), with the rest of the text in *@rest; -1 when it names none.
 */
static long error_item(const char *desc, const char **rest)
{
	char *end;
	long i;

	if (strncmp(desc, "storages[", 9))
		return -1;
	i = strtol(desc + 9, &end, 10);
	if (end == desc + 9 || *end != ']')
		return -1;
	end = strstr(end, ": ");
	*rest = end ? end + 2 : desc;
	return i;
}

/* Every storage failed: the daemon refused the setup as a whole. */
static void print_refused(json_t *storages, json_t *err)
{
	const char *desc = str_of(err, "desc"), *rest = desc;
	long culprit = error_item(desc, &rest);
	json_t *st;
	size_t i;

	json_array_foreach(storages, i, st) {
		const char *uuid = str_of(st, "uuid");

		if (json_is_false(json_object_get(st, "connected")))
			printf("%s: skipped (not connected on this host)\n",
			       uuid);
		else if ((long)i == culprit)
			printf("%s: failed (%s)\n", uuid, rest);
		else if (culprit >= 0)
			printf("%s: failed (nothing changed: storages[%ld] failed)\n",
			       uuid, culprit);
		else
			printf("%s: failed (%s: %s)\n", uuid,
			       str_of(err, "class"), desc);
	}
}

/* Leaves the host state alone when it is connected already: see below. */
static int say_connecting(struct client *cl)
{
	json_t *reply, *state;
	const char *now;
	int ret;

	reply = client_call(cl, "query-status", NULL, cl->timeout_ms);
	if (!reply)
		return CTL_EXIT_UNREACHABLE;
	now = str_of(json_object_get(reply, "return"), "host_state");
	/*
	 * Not backwards from connected: the late setup of a connect flow,
	 * or one running next to this call, needs the state the management
	 * side last gave, or it is refused with HostNotConnected.
	 */
	if (!strcmp(now, "connected")) {
		json_decref(reply);
		return CTL_EXIT_OK;
	}
	json_decref(reply);
	state = json_pack("{s:s}", "state", "connecting");
	reply = client_call(cl, "set-host-state", state, cl->timeout_ms);
	json_decref(state);
	if (!reply)
		return CTL_EXIT_UNREACHABLE;
	ret = CTL_EXIT_OK;
	if (json_object_get(reply, "error")) {
		json_t *err = json_object_get(reply, "error");

		if (cl->json)
			print_json(reply);
		fprintf(stderr,
			"iofencectl: connect: set-host-state connecting: %s: %s\n",
			str_of(err, "class"), str_of(err, "desc"));
		ret = CTL_EXIT_ERROR_REPLY;
	}
	json_decref(reply);
	return ret;
}

int run_connect(struct client *cl, const struct subcommand *sc,
		struct invocation *inv)
{
	json_t *storages = json_object_get(inv->args, "storages");
	json_t *reply, *ret, *err, *st;
	int status, wait;
	size_t i;

	if (!json_array_size(storages)) {
		fprintf(stderr,
			"iofencectl: connect: the storage list is empty: nothing to arm\n");
		return say_connecting(cl);
	}
	status = say_connecting(cl);
	if (status)
		return status;
	/*
	 * The setup's reply comes once its state is written, which its own
	 * deadline does not bound: give up sooner, and nobody knows what is
	 * armed.
	 */
	wait = clamp_int((int64_t)inv->deadline_ms + CTL_PERSIST_MARGIN_MS);
	reply = client_call(cl, "setup", inv->args, wait);
	if (!reply) {
		fprintf(stderr,
			"iofencectl: connect: no reply to setup: what is armed is unknown (see iofencectl status)\n");
		return CTL_EXIT_UNREACHABLE;
	}
	err = json_object_get(reply, "error");
	if (err) {
		if (cl->json)
			print_json(reply);
		else
			print_refused(storages, err);
		fprintf(stderr, "iofencectl: connect: setup refused: %s: %s\n",
			str_of(err, "class"), str_of(err, "desc"));
		json_decref(reply);
		return CTL_EXIT_ERROR_REPLY;
	}
	ret = json_object_get(reply, "return");
	status = CTL_EXIT_OK;
	json_array_foreach(json_object_get(ret, "storages"), i, st) {
		const char *r = str_of(st, "result");

		if (strcmp(r, "armed") && strcmp(r, "updated") &&
		    strcmp(r, "unchanged") && strcmp(r, "skipped"))
			status = CTL_EXIT_ERROR_REPLY;
	}
	if (cl->json)
		print_json(ret);
	else
		json_array_foreach(json_object_get(ret, "storages"), i, st) {
			printf("%s: %s", str_of(st, "uuid"),
			       str_of(st, "result"));
			if (json_object_get(st, "reason"))
				printf(" (%s)", str_of(st, "reason"));
			putchar('\n');
		}
	json_decref(reply);
	return status;
}
