// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto.h"

static const char *const class_names[PROTO_CLASS_COUNT] = {
	[PROTO_GENERIC_ERROR] = "GenericError",
	[PROTO_COMMAND_NOT_FOUND] = "CommandNotFound",
	[PROTO_INVALID_ARGUMENT] = "InvalidArgument",
	[PROTO_HOST_NOT_CONNECTED] = "HostNotConnected",
	[PROTO_PERMISSION_DENIED] = "PermissionDenied",
	[PROTO_LIMIT_EXCEEDED] = "LimitExceeded",
	[PROTO_TIMEOUT] = "Timeout",
	[PROTO_ARMING_FAILED] = "ArmingFailed",
	[PROTO_NOT_FOUND] = "NotFound",
	[PROTO_PEER_NOT_DEAD] = "PeerNotDead",
};

const char *proto_class_name(enum proto_class cls)
{
	if ((unsigned)cls >= PROTO_CLASS_COUNT)
		return class_names[PROTO_GENERIC_ERROR];
	return class_names[cls];
}

/*
 * jansson refuses a string that is not UTF-8, which would leave the client
 * with no reply at all. A description cut at the buffer's end may split a
 * sequence, and one that quotes the request may hold any bytes (a parse
 * error quotes the token jansson stopped at, invalid UTF-8 included).
 */
void proto_utf8_fix(char *str)
{
	unsigned char *s = (unsigned char *)str;

	while (*s) {
		unsigned int n, cp, i;

		if (*s < 0x80) {
			s++;
			continue;
		}
		n = *s >= 0xc2 && *s <= 0xdf ? 2 :
		    *s >= 0xe0 && *s <= 0xef ? 3 :
		    *s >= 0xf0 && *s <= 0xf4 ? 4 :
					       0;
		cp = *s & (0x7f >> n);
		for (i = 1; i < n && (s[i] & 0xc0) == 0x80; i++)
			cp = cp << 6 | (s[i] & 0x3f);
		if (n && i < n && !s[i]) {
			*s = '\0';
			return;
		}
		/* Overlong forms, surrogates and past U+10FFFF, as jansson. */
		if (!n || i < n || (n == 3 && cp < 0x800) ||
		    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff)) {
			*s++ = '?';
			continue;
		}
		s += n;
	}
}

static json_t *verror(enum proto_class cls, json_t *id, const char *fmt,
		      va_list ap)
{
	char desc[512];
	json_t *msg;

	vsnprintf(desc, sizeof(desc), fmt, ap);
	proto_utf8_fix(desc);
	msg = json_pack("{s:{s:s,s:s}}", "error", "class",
			proto_class_name(cls), "desc", desc);
	if (msg && id)
		json_object_set(msg, "id", id);
	return msg;
}

json_t *proto_error(enum proto_class cls, json_t *id, const char *fmt, ...)
{
	va_list ap;
	json_t *msg;

	va_start(ap, fmt);
	msg = verror(cls, id, fmt, ap);
	va_end(ap);
	return msg;
}

json_t *proto_return(json_t *ret, json_t *id)
{
	json_t *msg = json_object();

	if (!msg) {
		json_decref(ret);
		return NULL;
	}
	json_object_set_new(msg, "return", ret ? ret : json_object());
	if (id)
		json_object_set(msg, "id", id);
	return msg;
}

json_t *proto_greeting(json_t *capabilities)
{
	return json_pack("{s:{s:{s:i,s:i,s:i},s:s,s:o}}", "iofence", "version",
			 "major", IOFENCE_VERSION_MAJOR, "minor",
			 IOFENCE_VERSION_MINOR, "micro", IOFENCE_VERSION_MICRO,
			 "package", "iofence", "capabilities",
			 capabilities ? capabilities : json_array());
}

json_t *proto_event(const char *name, uint64_t seq, json_t *data, int64_t sec,
		    int64_t usec)
{
	return json_pack("{s:s,s:I,s:o,s:{s:I,s:I}}", "event", name, "seq",
			 (json_int_t)seq, "data", data ? data : json_object(),
			 "timestamp", "seconds", (json_int_t)sec,
			 "microseconds", (json_int_t)usec);
}

static int fail(json_t **err, json_t *msg)
{
	*err = msg;
	return -EINVAL;
}

int proto_parse_request(const char *line, size_t len, struct proto_request *req,
			json_t **err)
{
	json_error_t jerr;
	json_t *root, *exec, *val;
	const char *key;

	memset(req, 0, sizeof(*req));
	*err = NULL;
	/* Duplicate keys are ambiguous in a command, so refuse them. */
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root)
		return fail(err,
			    proto_error(PROTO_GENERIC_ERROR, NULL,
					"parse error at line %d column %d: %s",
					jerr.line, jerr.column, jerr.text));
	if (!json_is_object(root)) {
		json_decref(root);
		return fail(err, proto_error(PROTO_GENERIC_ERROR, NULL,
					     "request: must be a JSON object"));
	}
	req->root = root;
	req->id = json_object_get(root, "id");
	json_object_foreach(root, key, val) {
		if (strcmp(key, "execute") && strcmp(key, "arguments") &&
		    strcmp(key, "id")) {
			fail(err,
			     proto_error(
				     PROTO_GENERIC_ERROR, req->id,
				     "request: unknown key '%s' (allowed: execute, arguments, id)",
				     key));
			goto out_free;
		}
	}
	exec = json_object_get(root, "execute");
	if (!json_is_string(exec)) {
		fail(err,
		     proto_error(PROTO_GENERIC_ERROR, req->id, "execute: %s",
				 exec ? "must be a string" : "missing"));
		goto out_free;
	}
	req->execute = json_string_value(exec);
	req->arguments = json_object_get(root, "arguments");
	if (!req->arguments) {
		req->arguments = json_object();
		if (!req->arguments ||
		    json_object_set_new(root, "arguments", req->arguments)) {
			fail(err, proto_error(PROTO_GENERIC_ERROR, req->id,
					      "out of memory"));
			goto out_free;
		}
	} else if (!json_is_object(req->arguments)) {
		fail(err, proto_error(PROTO_GENERIC_ERROR, req->id,
				      "arguments: must be an object"));
		goto out_free;
	}
	return 0;

out_free:
	/* The error holds its own reference to the id. */
	proto_request_free(req);
	return -EINVAL;
}

void proto_request_free(struct proto_request *req)
{
	json_decref(req->root);
	memset(req, 0, sizeof(*req));
}

char *proto_dump_line(json_t *msg, size_t *len)
{
	char *text, *line;
	size_t n;

	if (!msg)
		return NULL;
	/* Compact output never contains a raw newline: strings escape it. */
	text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(msg);
	if (!text)
		return NULL;
	n = strlen(text);
	line = realloc(text, n + 2);
	if (!line) {
		free(text);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*len = n + 1;
	return line;
}
