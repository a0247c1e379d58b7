/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading command arguments out of JSON, with errors that name the field
 * by its full path ("storages[2].interval_ms: must be ...") and the rule
 * it broke. Each getter returns 0, or -EINVAL with the message in @e.
 */
#ifndef IOFENCE_ARGS_H
#define IOFENCE_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

struct args_err {
	char msg[384];
};

int args_fail(struct args_err *e, const char *path, const char *key,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Refuses keys of @obj not in the NULL-terminated @allowed. */
int args_only(json_t *obj, const char *path, const char *const *allowed,
	      struct args_err *e);
/* Absent and not @required: *@out untouched, returns 0. */
int args_string(json_t *obj, const char *path, const char *key, bool required,
		const char **out, struct args_err *e);
int args_bool(json_t *obj, const char *path, const char *key, bool *out,
	      struct args_err *e);
int args_uint(json_t *obj, const char *path, const char *key, bool required,
	      uint64_t min, uint64_t max, uint64_t *out, struct args_err *e);
/* An absolute path with no "//", "." or ".." components, and no NUL. */
int args_path(json_t *obj, const char *path, const char *key, bool required,
	      const char **out, struct args_err *e);

#endif
