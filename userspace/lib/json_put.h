/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Puts that update a JSON object in place: a key's first put creates it,
 * later ones change its value and allocate nothing (numbers change in
 * place, true, false and null are jansson's singletons). For a view whose
 * shape is fixed and which is read far more often than it changes shape:
 * query-status, polled by every agent and monitor of the host.
 */
#ifndef IOFENCE_JSON_PUT_H
#define IOFENCE_JSON_PUT_H

#include <stdbool.h>
#include <string.h>
#include <jansson.h>

static inline void json_put_int(json_t *o, const char *key, json_int_t v)
{
	json_t *x = json_object_get(o, key);

	if (json_is_integer(x))
		json_integer_set(x, v);
	else
		json_object_set_new(o, key, json_integer(v));
}

static inline void json_put_bool(json_t *o, const char *key, bool v)
{
	json_object_set_new(o, key, json_boolean(v));
}

/* A NULL @v puts null. */
static inline void json_put_str(json_t *o, const char *key, const char *v)
{
	const char *was = json_string_value(json_object_get(o, key));

	if (!v)
		json_object_set_new(o, key, json_null());
	else if (!was || strcmp(was, v))
		json_object_set_new(o, key, json_string(v));
}

/* The object under @key, made when there is none; NULL without memory. */
static inline json_t *json_put_obj(json_t *o, const char *key)
{
	json_t *x = json_object_get(o, key);

	if (json_is_object(x))
		return x;
	x = json_object();
	return json_object_set_new(o, key, x) ? NULL : x;
}

/* The array under @key, emptied, or made; NULL without memory. */
static inline json_t *json_put_array(json_t *o, const char *key)
{
	json_t *x = json_object_get(o, key);

	if (json_is_array(x)) {
		json_array_clear(x);
		return x;
	}
	x = json_array();
	return json_object_set_new(o, key, x) ? NULL : x;
}

#endif
