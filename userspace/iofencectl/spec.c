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

#include "ctl.h"

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
