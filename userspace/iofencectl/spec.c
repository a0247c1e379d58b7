// SPDX-License-Identifier: GPL-2.0-only
/*
 * Values from iofencectl's command line: durations, --storage specs,
 * each to the JSON the protocol takes, with the reason when it is not one.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "array_size.h"
#include "ctl.h"

/*
 * A --storage key: the protocol's name, a shorter one for people, and
 * what it means, for `iofencectl help setup` (its value's form first).
 */
struct spec_key {
	const char *name;
	const char *alias;
	enum kind kind;
	const char *help;
};

static const struct spec_key spec_keys[] = {
	{ "uuid", NULL, KIND_STRING, "NAME  required: the storage" },
	{ "type", NULL, KIND_STRING,
	  "file|block|rbd  required: a shared file system, a shared\n"
	  "block device written directly, or a Ceph pool" },
	{ "target", NULL, KIND_STRING,
	  "PATH  required: a file storage's mount point, a block\n"
	  "storage's device (rbd: none; it is rbd:POOL[/NAMESPACE])" },
	{ "pool", NULL, KIND_STRING,
	  "NAME  rbd only, required: the pool of the VMs' images" },
	{ "namespace", "ns", KIND_STRING,
	  "NAME  rbd only: their RADOS namespace (default none)" },
	{ "ceph_conf", "conf", KIND_STRING,
	  "PATH  rbd only: the cluster's ceph.conf\n"
	  "(default /etc/ceph/ceph.conf)" },
	{ "client", NULL, KIND_STRING,
	  "NAME  rbd only: the Ceph user, client.ID or ID\n"
	  "(default client.admin)" },
	{ "keyring", NULL, KIND_STRING,
	  "PATH  rbd only: its keyring (default: the conf's)" },
	{ "region_offset", "offset", KIND_UINT,
	  "N  block only: the bytes before the heartbeat slots\n"
	  "(a multiple of 4096, default 0)" },
	{ "slot", NULL, KIND_UINT,
	  "N  block only: this host's slot, 0 to 4095 (default 0)" },
	{ "connected", NULL, KIND_BOOL,
	  "yes|no  no: not connected on this host, so skipped\n"
	  "(true/false and 1/0 work too; default yes)" },
	{ "interval_ms", "interval", KIND_DURATION,
	  "DUR  the heartbeat interval, 100ms to 10m (default 2s)" },
	{ "io_timeout_ms", "io_timeout", KIND_DURATION,
	  "DUR  the bound of one heartbeat write, 10ms to the\n"
	  "interval (default: the interval)" },
	{ "max_attempts", "attempts", KIND_UINT,
	  "N  heartbeats that may fail before the storage counts\n"
	  "as lost, 1 to 100 (default 5)" },
	{ "timeout_ms", "timeout", KIND_DURATION,
	  "DUR  when to fence after the last good heartbeat: the\n"
	  "interval to 1h (default: interval x attempts)" },
	{ "strategy", NULL, KIND_STRING,
	  "force|kill-only|permissive  what a fence does: kill,\n"
	  "and reset the host when that is not enough; kill\n"
	  "only; report only (default force)" },
	{ "kill_grace_ms", "kill_grace", KIND_DURATION,
	  "DUR  how long victims get before force escalates,\n"
	  "0 to 10m (default 5s)" },
	{ "victims", NULL, KIND_LIST,
	  "PATTERN:...  the executable names a fence may kill\n"
	  "(default qemu-system-*:qemu-kvm:qemu)" },
	{ "fence_hook", NULL, KIND_STRING,
	  "PATH  a program to run on fencing" },
	{},
};

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
int parse_duration(const char *s, uint64_t *ms, const char **why)
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
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
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
json_t *parse_value(enum kind kind, const char *text, const char **why)
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

const char *spec_key_word(const char *key)
{
	const struct spec_key *k = spec_key_find(key);

	if (!k)
		return NULL;
	return k->alias ? k->alias : k->name;
}

enum kind spec_key_kind(const char *key)
{
	const struct spec_key *k = spec_key_find(key);

	return k ? k->kind : KIND_STRING;
}

void spec_keys_consider(struct suggestion *sg)
{
	for (const struct spec_key *k = spec_keys; k->name; k++)
		suggest_consider(sg, k->alias ? k->alias : k->name);
}

/*
 * KEY=FORM, then the meaning; the protocol's name, where it differs,
 * in parentheses.
 */
void spec_keys_help(FILE *out, int column)
{
	for (const struct spec_key *k = spec_keys; k->name; k++) {
		const char *form = k->help, *text = strstr(form, "  ");
		int n = fprintf(out, "  %s=%.*s", k->alias ? k->alias : k->name,
				(int)(text - form), form);

		if (k->alias)
			n += fprintf(out, " (or %s=)", k->name);
		text += 2;
		if (n >= column)
			fprintf(out, "\n%*s", column, "");
		else
			fprintf(out, "%*s", column - n, "");
		print_indented(out, text, column);
	}
}

/*
 * Optimal string alignment distance: insertions, deletions,
 * substitutions and swaps of two neighbours each count one. Names are
 * short; longer ones are simply far.
 */
static int edit_distance(const char *a, const char *b)
{
	enum { MAX = 48 };
	int d[MAX + 1][MAX + 1];
	size_t la = strlen(a), lb = strlen(b);

	if (la > MAX || lb > MAX)
		return MAX;
	for (size_t i = 0; i <= la; i++)
		d[i][0] = i;
	for (size_t j = 0; j <= lb; j++)
		d[0][j] = j;
	for (size_t i = 1; i <= la; i++) {
		for (size_t j = 1; j <= lb; j++) {
			int cost = a[i - 1] != b[j - 1];
			int v = d[i - 1][j - 1] + cost;

			if (d[i - 1][j] + 1 < v)
				v = d[i - 1][j] + 1;
			if (d[i][j - 1] + 1 < v)
				v = d[i][j - 1] + 1;
			if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
			    a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
				v = d[i - 2][j - 2] + 1;
			d[i][j] = v;
		}
	}
	return d[la][lb];
}

void suggest_consider(struct suggestion *sg, const char *name)
{
	size_t n = strlen(sg->typed);
	int dist = edit_distance(sg->typed, name);

	/* "stat" for "status": the start of one name is close too. */
	if (n >= 3 && !strncmp(name, sg->typed, n) && dist > 1)
		dist = 1;
	if (!sg->best || dist < sg->dist) {
		sg->best = name;
		sg->dist = dist;
		sg->ties = 0;
	} else if (dist == sg->dist && strcmp(name, sg->best)) {
		sg->ties++;
	}
}

const char *suggest_result(const struct suggestion *sg)
{
	size_t n = strlen(sg->typed);
	/* Close: a slip of a key or two, fewer in short names. */
	int near = n <= 4 ? 1 : n <= 8 ? 2 : 3;

	if (!sg->best || sg->ties || sg->dist > near || !sg->dist)
		return NULL;
	return sg->best;
}

/*
 * A --storage SPEC, "uuid=U,type=T,target=P,...", to a storage object;
 * NULL after saying what was wrong. Unknown keys go as strings, so the
 * daemon names them in its error.
 */
json_t *parse_storage(const char *spec)
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
