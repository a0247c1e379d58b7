/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The control protocol's message layer (QMP style, newline-delimited JSON):
 * parsing requests and building greetings, replies, errors and events.
 * Pure functions over jansson values, no I/O, so tests drive them directly.
 */
#ifndef IOFENCE_PROTO_H
#define IOFENCE_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define IOFENCE_VERSION_MAJOR 0
#define IOFENCE_VERSION_MINOR 1
#define IOFENCE_VERSION_MICRO 0

/* One protocol line, newline excluded. Longer lines close the connection. */
#define PROTO_MAX_LINE (64 * 1024)

enum proto_class {
	PROTO_GENERIC_ERROR,
	PROTO_COMMAND_NOT_FOUND,
	PROTO_INVALID_ARGUMENT,
	PROTO_HOST_NOT_CONNECTED,
	PROTO_PERMISSION_DENIED,
	PROTO_LIMIT_EXCEEDED,
	PROTO_TIMEOUT,
	PROTO_ARMING_FAILED,
	PROTO_NOT_FOUND,
	PROTO_PEER_NOT_DEAD,
	PROTO_CLASS_COUNT,
};

const char *proto_class_name(enum proto_class cls);

struct proto_request {
	json_t *root; /* owns everything below */
	const char *execute;
	json_t *arguments; /* an object, empty when the request had none */
	json_t *id; /* NULL when the request had none */
};

/*
 * Parses one line. On success fills @req (release with
 * proto_request_free()) and returns 0. On failure returns -EINVAL and sets
 * *@err to a complete error reply that names what was wrong, carrying the
 * request's id when one could be read.
 */
int proto_parse_request(const char *line, size_t len, struct proto_request *req,
			json_t **err);
void proto_request_free(struct proto_request *req);

/*
 * Makes @s valid UTF-8 in place, as jansson wants every string: a
 * sequence cut by the end of @s is dropped, any other invalid byte
 * becomes '?'. For text cut to a buffer or quoting a request.
 */
void proto_utf8_fix(char *s);

/* Messages; each returns a new reference. @id is borrowed and may be NULL. */
json_t *proto_greeting(json_t *capabilities); /* steals @capabilities */
json_t *proto_return(json_t *ret, json_t *id); /* steals @ret */
json_t *proto_error(enum proto_class cls, json_t *id, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
json_t *proto_event(const char *name, uint64_t seq, json_t *data, int64_t sec,
		    int64_t usec); /* steals @data */

/*
 * Serialises @msg (stolen) as one compact line with its trailing newline,
 * in a malloc'ed buffer. Returns NULL on allocation failure.
 */
char *proto_dump_line(json_t *msg, size_t *len);

#endif
