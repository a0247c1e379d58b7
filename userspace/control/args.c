// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

static const char *const rule_names[ARGS_RULE_COUNT] = {
	[ARGS_INVALID] = "invalid",	  [ARGS_MISSING] = "missing",
	[ARGS_UNKNOWN] = "unknown",	  [ARGS_TYPE] = "type",
	[ARGS_RANGE] = "range",		  [ARGS_PRODUCT] = "product",
	[ARGS_DUPLICATE] = "duplicate",	  [ARGS_FAILED] = "failed",
	[ARGS_HOST_STATE] = "host_state",
};

const char *args_rule_name(enum args_rule rule)
{
	return (unsigned int)rule < ARGS_RULE_COUNT ? rule_names[rule] :
						      rule_names[ARGS_INVALID];
}

static int vfail(struct args_err *e, enum args_rule rule, const char *path,
		 const char *key, const char *fmt, va_list ap)
{
	size_t n;

	memset(e, 0, sizeof(*e));
	e->rule = rule;
	if (path && *path)
		snprintf(e->member, sizeof(e->member), "%s.%s", path, key);
	else
		snprintf(e->member, sizeof(e->member), "%s", key);
	n = snprintf(e->msg, sizeof(e->msg), "%s: ", e->member);
	if (n < sizeof(e->msg)) {
		e->reason = n;
		vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
	} else {
		e->reason = strlen(e->msg);
	}
	/* Both go into the reply's strings, and a key may be cut anywhere. */
	proto_utf8_fix(e->member);
	proto_utf8_fix(e->msg);
	return -EINVAL;
}

int args_fail(struct args_err *e, const char *path, const char *key,
	      const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(e, ARGS_INVALID, path, key, fmt, ap);
	va_end(ap);
	return ret;
}

int args_fail_rule(struct args_err *e, enum args_rule rule, const char *path,
		   const char *key, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = vfail(e, rule, path, key, fmt, ap);
	va_end(ap);
	return ret;
}

json_t *args_data(const struct args_err *e)
{
	json_t *d = json_object();

	if (!d)
		return NULL;
	if (e->member[0])
		json_object_set_new(d, "member", json_string(e->member));
	json_object_set_new(d, "rule", json_string(args_rule_name(e->rule)));
	json_object_set_new(d, "reason", json_string(e->msg + e->reason));
	if (e->type)
		json_object_set_new(d, "type", json_string(e->type));
	if (e->bounded) {
		json_object_set_new(d, "min", json_integer((json_int_t)e->min));
		json_object_set_new(d, "max", json_integer((json_int_t)e->max));
	}
	if (e->rule == ARGS_RANGE && e->other[0][0])
		json_object_set_new(d, "min_member", json_string(e->other[0]));
	if (e->rule == ARGS_RANGE && e->other[1][0])
		json_object_set_new(d, "max_member", json_string(e->other[1]));
	if (e->rule == ARGS_PRODUCT) {
		json_object_set_new(d, "max", json_integer((json_int_t)e->max));
		json_object_set_new(d, "value",
				    json_integer((json_int_t)e->value));
		json_object_set_new(d, "factors",
				    json_pack("[s,s]", e->other[0],
					      e->other[1]));
	}
	if (e->rule == ARGS_DUPLICATE)
		json_object_set_new(d, "same_as", json_string(e->other[0]));
	return d;
}

json_t *args_error(enum proto_class cls, json_t *id, const struct args_err *e)
{
	json_t *msg = proto_error(cls, id, "%s", e->msg);
	json_t *data = args_data(e);

	if (msg && data)
		json_object_set_new(json_object_get(msg, "error"), "data",
				    data);
	else
		json_decref(data);
	return msg;
}

int args_only(json_t *obj, const char *path, const char *const *allowed,
	      struct args_err *e)
{
	const char *key;
	json_t *val;

	json_object_foreach(obj, key, val) {
		const char *const *a;

		for (a = allowed; *a; a++)
			if (!strcmp(*a, key))
				break;
		if (!*a)
			return args_fail_rule(e, ARGS_UNKNOWN, path, key,
					      "unknown argument");
	}
	return 0;
}

static json_t *get(json_t *obj, const char *path, const char *key,
		   bool required, struct args_err *e, int *ret)
{
	json_t *v = json_object_get(obj, key);

	*ret = 0;
	if (!v && required)
		*ret = args_fail_rule(e, ARGS_MISSING, path, key, "missing");
	return v;
}

int args_string(json_t *obj, const char *path, const char *key, bool required,
		const char **out, struct args_err *e)
{
	int ret;
	json_t *v = get(obj, path, key, required, e, &ret);

	if (!v)
		return ret;
	if (!json_is_string(v)) {
		args_fail_rule(e, ARGS_TYPE, path, key, "must be a string");
		e->type = "string";
		return -EINVAL;
	}
	if (!json_string_length(v))
		return args_fail(e, path, key, "must not be empty");
	if (strlen(json_string_value(v)) != json_string_length(v))
		return args_fail(e, path, key, "must not contain NUL");
	*out = json_string_value(v);
	return 0;
}

int args_bool(json_t *obj, const char *path, const char *key, bool *out,
	      struct args_err *e)
{
	int ret;
	json_t *v = get(obj, path, key, false, e, &ret);

	if (!v)
		return ret;
	if (!json_is_boolean(v)) {
		args_fail_rule(e, ARGS_TYPE, path, key,
			       "must be true or false");
		e->type = "boolean";
		return -EINVAL;
	}
	*out = json_is_true(v);
	return 0;
}

int args_uint(json_t *obj, const char *path, const char *key, bool required,
	      uint64_t min, uint64_t max, uint64_t *out, struct args_err *e)
{
	int ret;
	json_t *v = get(obj, path, key, required, e, &ret);
	json_int_t i;

	if (!v)
		return ret;
	if (!json_is_integer(v)) {
		args_fail_rule(e, ARGS_TYPE, path, key,
			       "must be an integer between %llu and %llu",
			       (unsigned long long)min,
			       (unsigned long long)max);
		e->type = "integer";
		e->bounded = true;
		e->min = min;
		e->max = max;
		return -EINVAL;
	}
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max) {
		args_fail_rule(e, ARGS_RANGE, path, key,
			       "must be between %llu and %llu",
			       (unsigned long long)min,
			       (unsigned long long)max);
		e->bounded = true;
		e->min = min;
		e->max = max;
		return -EINVAL;
	}
	*out = (uint64_t)i;
	return 0;
}

int args_path(json_t *obj, const char *path, const char *key, bool required,
	      const char **out, struct args_err *e)
{
	const char *p = NULL, *c;
	int ret = args_string(obj, path, key, required, &p, e);

	if (ret || !p)
		return ret;
	if (p[0] != '/')
		return args_fail(e, path, key, "must be an absolute path");
	if (strlen(p) >= PATH_MAX)
		return args_fail(e, path, key, "longer than %d bytes",
				 PATH_MAX - 1);
	if (p[1] && p[strlen(p) - 1] == '/')
		return args_fail(e, path, key,
				 "must be normalised (no trailing '/')");
	/* Each component between slashes must be a plain name. */
	for (c = p + 1; *c;) {
		size_t n = strcspn(c, "/");

		if ((n == 0 && c[n]) || (n == 1 && c[0] == '.') ||
		    (n == 2 && c[0] == '.' && c[1] == '.'))
			return args_fail(
				e, path, key,
				"must be normalised (no '//', '.' or '..')");
		c += n;
		if (*c == '/')
			c++;
	}
	*out = p;
	return 0;
}
