// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "args.h"

int args_fail(struct args_err *e, const char *path, const char *key,
	      const char *fmt, ...)
{
	size_t n;
	va_list ap;

	if (path && *path)
		n = snprintf(e->msg, sizeof(e->msg), "%s.%s: ", path, key);
	else
		n = snprintf(e->msg, sizeof(e->msg), "%s: ", key);
	if (n < sizeof(e->msg)) {
		va_start(ap, fmt);
		vsnprintf(e->msg + n, sizeof(e->msg) - n, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
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
			return args_fail(e, path, key, "unknown argument");
	}
	return 0;
}

static json_t *get(json_t *obj, const char *path, const char *key,
		   bool required, struct args_err *e, int *ret)
{
	json_t *v = json_object_get(obj, key);

	*ret = 0;
	if (!v && required)
		*ret = args_fail(e, path, key, "missing");
	return v;
}

int args_string(json_t *obj, const char *path, const char *key, bool required,
		const char **out, struct args_err *e)
{
	int ret;
	json_t *v = get(obj, path, key, required, e, &ret);

	if (!v)
		return ret;
	if (!json_is_string(v))
		return args_fail(e, path, key, "must be a string");
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
	if (!json_is_boolean(v))
		return args_fail(e, path, key, "must be true or false");
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
	if (!json_is_integer(v))
		return args_fail(e, path, key,
				 "must be an integer between %llu and %llu",
				 (unsigned long long)min,
				 (unsigned long long)max);
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i < min || (uint64_t)i > max)
		return args_fail(e, path, key, "must be between %llu and %llu",
				 (unsigned long long)min,
				 (unsigned long long)max);
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
