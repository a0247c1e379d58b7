/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Reading command arguments out of JSON, with errors that name the field
 * by its full path ("storages[2].interval_ms: must be ...") and the rule
 * it broke. Each getter returns 0, or -EINVAL with the message in @e.
 *
 * The error reply also carries the same facts for programs (its "data",
 * iofence-protocol(7)): the member, the rule by name and its bounds, so
 * that a client can say it in its own words without reading the desc.
 */
#ifndef IOFENCE_ARGS_H
#define IOFENCE_ARGS_H

#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>

#include "proto.h"

/* The rules an error names; args_rule_name() has their protocol names. */
enum args_rule {
	ARGS_INVALID, /* the reason says what is wrong */
	ARGS_MISSING,
	ARGS_UNKNOWN,
	ARGS_TYPE,
	ARGS_RANGE,
	ARGS_PRODUCT,
	ARGS_DUPLICATE,
	ARGS_FAILED, /* a step of arming it failed */
	ARGS_HOST_STATE,
	ARGS_RULE_COUNT,
};

#define ARGS_MEMBER_MAX 96

struct args_err {
	char msg[384];
	unsigned int reason; /* where in msg the reason starts */
	char member[ARGS_MEMBER_MAX];
	enum args_rule rule;
	const char *type; /* ARGS_TYPE: what it must be */
	bool bounded; /* ARGS_RANGE, ARGS_PRODUCT: min and max hold */
	uint64_t min, max, value;
	/*
	 * Other members of the rule: ARGS_RANGE the one whose value min
	 * ([0]) or max ([1]) is, ARGS_PRODUCT the factors, ARGS_DUPLICATE
	 * the earlier member of the same value ([0]).
	 */
	char other[2][ARGS_MEMBER_MAX];
};

int args_fail(struct args_err *e, const char *path, const char *key,
	      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* args_fail() naming @rule. */
int args_fail_rule(struct args_err *e, enum args_rule rule, const char *path,
		   const char *key, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

const char *args_rule_name(enum args_rule rule);
/* The error's "data" object, or NULL (out of memory). */
json_t *args_data(const struct args_err *e);
/* The error reply of class @cls for @e, with its data. */
json_t *args_error(enum proto_class cls, json_t *id, const struct args_err *e);

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
