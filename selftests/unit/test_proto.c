// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for the control protocol's message layer (proto.c) and the
 * line framer in front of it (linebuf.c). Both are pure, so every hostile
 * input a client could send is replayed here without a socket.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <jansson.h>

#include "linebuf.h"
#include "proto.h"
#include "alloc_count.h"

/* For literals with embedded NULs, where strlen() would stop short. */
#define LIT(s) (s), (sizeof(s) - 1)

/*
 * The parser gets an unterminated heap copy of exactly @n bytes, so ASan
 * flags any read past the length the caller handed over.
 */
static int parse_n(const char *s, size_t n, struct proto_request *req,
		   json_t **err)
{
	char *copy = malloc(n ? n : 1);
	int rc;

	cr_assert_not_null(copy);
	memcpy(copy, s, n);
	rc = proto_parse_request(copy, n, req, err);
	free(copy);
	return rc;
}

static int parse(const char *s, struct proto_request *req, json_t **err)
{
	return parse_n(s, strlen(s), req, err);
}

static void parse_ok_n(const char *s, size_t n, struct proto_request *req)
{
	json_t *err = (json_t *)1;
	int rc = parse_n(s, n, req, &err);

	cr_assert_eq(rc, 0, "rejected '%.*s'", (int)n, s);
	cr_assert_null(err);
	cr_assert_not_null(req->root);
	cr_assert_not_null(req->execute);
	cr_assert(json_is_object(req->arguments));
	/* The request owns its arguments, so freeing root frees them too. */
	cr_assert_eq(json_object_get(req->root, "arguments"), req->arguments);
}

static void parse_ok(const char *s, struct proto_request *req)
{
	parse_ok_n(s, strlen(s), req);
}

/* Returns the error reply for a line that must be refused. */
static json_t *refuse_n(const char *s, size_t n)
{
	struct proto_request req;
	json_t *err = NULL;
	int rc = parse_n(s, n, &req, &err);

	cr_assert_eq(rc, -EINVAL, "accepted '%.*s'", (int)n, s);
	cr_assert_not_null(err, "no error reply for '%.*s'", (int)n, s);
	/* A caller that frees the request on every path must not double free. */
	cr_assert_null(req.root);
	cr_assert_null(req.execute);
	cr_assert_null(req.arguments);
	cr_assert_null(req.id);
	return err;
}

static json_t *refuse(const char *s)
{
	return refuse_n(s, strlen(s));
}

/* Asserts the QMP error shape and returns the desc, valid while @err is. */
static const char *error_desc(json_t *err, const char *cls)
{
	json_t *e = json_object_get(err, "error");
	const char *desc;

	cr_assert(json_is_object(err));
	cr_assert(json_is_object(e));
	cr_assert_eq(json_object_size(e), 2);
	cr_assert_str_eq(json_string_value(json_object_get(e, "class")), cls);
	desc = json_string_value(json_object_get(e, "desc"));
	cr_assert_not_null(desc);
	cr_assert_null(json_object_get(err, "return"));
	return desc;
}

static void assert_desc(json_t *err, const char *cls, const char *want)
{
	cr_assert_str_eq(error_desc(err, cls), want);
}

/*
 * Line and column are checked when positive; jansson's own wording is only
 * matched by substring so a library update does not break the suite.
 */
static void assert_parse_error(json_t *err, int line, int column,
			       const char *what)
{
	const char *desc = error_desc(err, "GenericError");
	int l = -1, c = -1, off = -1;

	cr_assert_eq(sscanf(desc, "parse error at line %d column %d: %n", &l,
			    &c, &off),
		     2, "desc '%s'", desc);
	cr_assert_gt(off, 0, "desc '%s'", desc);
	cr_assert_neq(desc[off], '\0', "desc '%s' has no reason", desc);
	if (line > 0)
		cr_assert_eq(l, line, "desc '%s'", desc);
	if (column > 0)
		cr_assert_eq(c, column, "desc '%s'", desc);
	if (what)
		cr_assert_not_null(strstr(desc + off, what),
				   "desc '%s' lacks '%s'", desc, what);
	/* Nothing was parsed, so there is no id to echo. */
	cr_assert_null(json_object_get(err, "id"));
}

/* Dumps @msg (stolen) and checks the one-line framing invariant. */
static char *dump_line_checked(json_t *msg, size_t *len)
{
	char *line = proto_dump_line(msg, len);

	cr_assert_not_null(line);
	cr_assert_gt(*len, 1);
	cr_assert_eq(strlen(line), *len, "raw NUL inside the dumped line");
	cr_assert_eq(line[*len - 1], '\n');
	cr_assert_eq(memchr(line, '\n', *len - 1), NULL,
		     "newline before the end of '%s'", line);
	return line;
}

static void assert_dump_eq(json_t *msg, const char *want)
{
	size_t len;
	char *line = dump_line_checked(msg, &len);

	cr_assert_str_eq(line, want);
	free(line);
}

/* Parses a dumped line back, without its newline, as a client would. */
static json_t *reload_line(const char *line, size_t len)
{
	json_error_t jerr;
	json_t *v = json_loadb(line, len - 1, 0, &jerr);

	cr_assert_not_null(v, "own output does not parse: %s", jerr.text);
	return v;
}

/* ---------------------------------------------------------------- */
/* Valid requests                                                   */

Test(proto_parse, execute_only_gets_empty_arguments)
{
	struct proto_request req;

	parse_ok("{\"execute\":\"query-status\"}", &req);
	cr_assert_str_eq(req.execute, "query-status");
	cr_assert_eq(json_object_size(req.arguments), 0);
	cr_assert_null(req.id);
	proto_request_free(&req);
	cr_assert_null(req.root);
}

Test(proto_parse, with_arguments)
{
	struct proto_request req;

	parse_ok("{\"execute\":\"setup\",\"arguments\":{\"host\":\"h1\","
		 "\"reconnect\":true,\"storages\":[{\"id\":1}]}}",
		 &req);
	cr_assert_str_eq(req.execute, "setup");
	cr_assert_eq(json_object_size(req.arguments), 3);
	cr_assert_str_eq(
		json_string_value(json_object_get(req.arguments, "host")),
		"h1");
	cr_assert(json_is_true(json_object_get(req.arguments, "reconnect")));
	cr_assert(json_is_array(json_object_get(req.arguments, "storages")));
	proto_request_free(&req);
}

Test(proto_parse, empty_arguments_object)
{
	struct proto_request req;

	parse_ok("{\"execute\":\"x\",\"arguments\":{}}", &req);
	cr_assert_eq(json_object_size(req.arguments), 0);
	proto_request_free(&req);
}

Test(proto_parse, key_order_and_whitespace_do_not_matter)
{
	struct proto_request req;

	parse_ok(" \t{ \"id\" : 9 ,\r\n\"arguments\" : { \"a\" : 1 } , "
		 "\"execute\" : \"x\" } \t ",
		 &req);
	cr_assert_str_eq(req.execute, "x");
	cr_assert_eq(json_integer_value(req.id), 9);
	cr_assert_eq(json_integer_value(json_object_get(req.arguments, "a")),
		     1);
	proto_request_free(&req);
}

Test(proto_parse, id_number)
{
	struct proto_request req;

	parse_ok("{\"execute\":\"x\",\"id\":42}", &req);
	cr_assert(json_is_integer(req.id));
	cr_assert_eq(json_integer_value(req.id), 42);
	proto_request_free(&req);

	parse_ok("{\"execute\":\"x\",\"id\":-1.5e3}", &req);
	cr_assert(json_is_real(req.id));
	cr_assert(json_real_value(req.id) == -1500.0);
	proto_request_free(&req);
}

Test(proto_parse, id_string)
{
	struct proto_request req;

	parse_ok("{\"execute\":\"x\",\"id\":\"req-\\u00e9-1\"}", &req);
	cr_assert_str_eq(json_string_value(req.id), "req-\xc3\xa9-1");
	proto_request_free(&req);
}

Test(proto_parse, id_object_and_array)
{
	struct proto_request req;
	json_t *want = json_pack("{s:i,s:[s,n]}", "n", 1, "tag", "a");

	parse_ok("{\"id\":{\"n\":1,\"tag\":[\"a\",null]},\"execute\":\"x\"}",
		 &req);
	cr_assert(json_equal(req.id, want));
	proto_request_free(&req);
	json_decref(want);

	parse_ok("{\"execute\":\"x\",\"id\":[]}", &req);
	cr_assert(json_is_array(req.id));
	proto_request_free(&req);
}

Test(proto_parse, id_null_is_an_id)
{
	struct proto_request req;

	/* A JSON null id is still echoed, unlike a missing one. */
	parse_ok("{\"execute\":\"x\",\"id\":null}", &req);
	cr_assert_not_null(req.id);
	cr_assert(json_is_null(req.id));
	proto_request_free(&req);
}

Test(proto_parse, len_bounds_the_input)
{
	static const char buf[] = "{\"execute\":\"x\"}GARBAGE";
	struct proto_request req;

	parse_ok_n(buf, strlen("{\"execute\":\"x\"}"), &req);
	cr_assert_str_eq(req.execute, "x");
	proto_request_free(&req);
}

Test(proto_parse, free_is_idempotent)
{
	struct proto_request req;

	parse_ok("{\"execute\":\"x\"}", &req);
	proto_request_free(&req);
	proto_request_free(&req);
}

/* ---------------------------------------------------------------- */
/* Malformed JSON                                                   */

Test(proto_parse, invalid_token_position)
{
	json_t *err = refuse("{\"execute\":x}");

	assert_parse_error(err, 1, 12, "invalid token");
	json_decref(err);
}

Test(proto_parse, position_counts_lines)
{
	/* The reported position must be jansson's, not a guess from the start. */
	json_t *err = refuse("\n\n  {\"execute\":x}");

	assert_parse_error(err, 3, 14, "invalid token");
	json_decref(err);
}

Test(proto_parse, truncated_and_trailing_garbage)
{
	static const char *const bad[] = {
		"{\"execute\":\"x\"",
		"{\"execute\":\"x",
		"{\"execute\":\"x\",}",
		"{\"execute\":\"x\"}}",
		"{\"execute\":\"x\"} {\"execute\":\"y\"}",
		"{'execute':'x'}",
		"{execute:\"x\"}",
		"{\"execute\":\"x\\q\"}",
		"{\"execute\":\"x\",\"id\":01}",
		"{\"execute\":\"x\",\"id\":NaN}",
		"{\"execute\":\"x\",\"id\":1e99999}",
		"{\"execute\":\"x\",\"id\":99999999999999999999}",
		"\xef\xbb\xbf{\"execute\":\"x\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		assert_parse_error(err, 1, 0, NULL);
		json_decref(err);
	}
}

Test(proto_parse, empty_and_blank_input)
{
	static const char *const bad[] = { "", " ", "\t\r", "\n" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		assert_parse_error(err, 0, 0, NULL);
		json_decref(err);
	}
}

Test(proto_parse, not_an_object)
{
	static const char *const bad[] = { "[]", "[{\"execute\":\"x\"}]" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		assert_desc(err, "GenericError",
			    "request: must be a JSON object");
		cr_assert_null(json_object_get(err, "id"));
		json_decref(err);
	}
}

Test(proto_parse, bare_scalars_are_refused)
{
	/* Decoding without JSON_DECODE_ANY makes these parse errors. */
	static const char *const bad[] = { "\"execute\"", "42", "null",
					   "true" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		error_desc(err, "GenericError");
		cr_assert_null(json_object_get(err, "id"));
		json_decref(err);
	}
}

/* ---------------------------------------------------------------- */
/* Structurally wrong requests                                      */

Test(proto_parse, execute_missing)
{
	json_t *err = refuse("{}");

	assert_desc(err, "GenericError", "execute: missing");
	cr_assert_null(json_object_get(err, "id"));
	json_decref(err);

	err = refuse("{\"arguments\":{},\"id\":\"a\"}");
	assert_desc(err, "GenericError", "execute: missing");
	cr_assert_str_eq(json_string_value(json_object_get(err, "id")), "a");
	json_decref(err);
}

Test(proto_parse, execute_not_a_string)
{
	static const char *const bad[] = {
		"{\"execute\":1,\"id\":7}",    "{\"execute\":null,\"id\":7}",
		"{\"execute\":true,\"id\":7}", "{\"execute\":[],\"id\":7}",
		"{\"execute\":{},\"id\":7}",   "{\"execute\":[\"x\"],\"id\":7}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		assert_desc(err, "GenericError", "execute: must be a string");
		cr_assert_eq(json_integer_value(json_object_get(err, "id")), 7);
		json_decref(err);
	}
}

Test(proto_parse, arguments_not_an_object)
{
	static const char *const bad[] = {
		"{\"execute\":\"x\",\"arguments\":[],\"id\":{\"k\":1}}",
		"{\"execute\":\"x\",\"arguments\":null,\"id\":{\"k\":1}}",
		"{\"execute\":\"x\",\"arguments\":\"{}\",\"id\":{\"k\":1}}",
		"{\"execute\":\"x\",\"arguments\":0,\"id\":{\"k\":1}}",
		"{\"execute\":\"x\",\"arguments\":false,\"id\":{\"k\":1}}",
	};
	json_t *id = json_pack("{s:i}", "k", 1);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		assert_desc(err, "GenericError",
			    "arguments: must be an object");
		cr_assert(json_equal(json_object_get(err, "id"), id));
		json_decref(err);
	}
	json_decref(id);
}

Test(proto_parse, unknown_key_carries_id)
{
	json_t *err = refuse("{\"execute\":\"x\",\"id\":5,\"bogus\":1}");

	assert_desc(err, "GenericError",
		    "request: unknown key 'bogus' (allowed: execute, "
		    "arguments, id)");
	cr_assert_eq(json_integer_value(json_object_get(err, "id")), 5);
	json_decref(err);
}

Test(proto_parse, unknown_key_before_id)
{
	/* The id must be found even when the offending key precedes it. */
	json_t *err = refuse("{\"bogus\":1,\"id\":\"late\",\"execute\":\"x\"}");

	error_desc(err, "GenericError");
	cr_assert_str_eq(json_string_value(json_object_get(err, "id")), "late");
	json_decref(err);
}

Test(proto_parse, unknown_key_is_case_sensitive)
{
	json_t *err = refuse("{\"execute\":\"x\",\"Arguments\":{}}");

	assert_desc(err, "GenericError",
		    "request: unknown key 'Arguments' (allowed: execute, "
		    "arguments, id)");
	cr_assert_null(json_object_get(err, "id"));
	json_decref(err);
}

Test(proto_parse, unknown_key_wins_over_bad_execute)
{
	/* Whichever is reported, the reply must still carry the id. */
	json_t *err = refuse("{\"execute\":3,\"x\":1,\"id\":[1]}");

	cr_assert_not_null(
		strstr(error_desc(err, "GenericError"), "unknown key 'x'"));
	cr_assert(json_is_array(json_object_get(err, "id")));
	json_decref(err);
}

Test(proto_parse, error_id_outlives_request)
{
	/* The error must own its id, as the request is gone by now. */
	json_t *err = refuse("{\"execute\":1,\"id\":{\"deep\":[\"v\"]}}");
	json_t *id = json_object_get(err, "id");

	cr_assert_eq(id->refcount, 1);
	cr_assert_str_eq(json_string_value(json_array_get(
				 json_object_get(id, "deep"), 0)),
			 "v");
	json_decref(err);
}

Test(proto_parse, duplicate_keys)
{
	static const char *const bad[] = {
		"{\"execute\":\"a\",\"execute\":\"b\"}",
		"{\"execute\":\"a\",\"id\":1,\"id\":2}",
		"{\"execute\":\"a\",\"arguments\":{},\"arguments\":{}}",
		"{\"execute\":\"a\",\"arguments\":{\"x\":1,\"x\":2}}",
		"{\"execute\":\"a\",\"arguments\":{\"o\":{\"y\":1,\"y\":1}}}",
		"{\"execute\":\"a\",\"arguments\":{\"\\u0078\":1,\"x\":2}}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		assert_parse_error(err, 1, 0, "duplicate object key");
		json_decref(err);
	}
}

/* ---------------------------------------------------------------- */
/* Unicode                                                          */

Test(proto_unicode, valid_utf8_accepted)
{
	/* 2-, 3- and 4-byte sequences, raw and as escapes. */
	struct proto_request req;

	parse_ok("{\"execute\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\","
		 "\"arguments\":{\"\xf0\x9d\x84\x9e\":\"\xe4\xb8\xad\"}}",
		 &req);
	cr_assert_str_eq(req.execute, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	cr_assert_str_eq(json_string_value(json_object_get(req.arguments,
							   "\xf0\x9d\x84\x9e")),
			 "\xe4\xb8\xad");
	proto_request_free(&req);

	parse_ok("{\"execute\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}", &req);
	cr_assert_str_eq(req.execute, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
	proto_request_free(&req);

	/* The highest code point, U+10FFFF. */
	parse_ok("{\"execute\":\"\xf4\x8f\xbf\xbf\"}", &req);
	proto_request_free(&req);
}

Test(proto_unicode, round_trip_through_dump_line)
{
	static const char *const want =
		"{\"return\":{\"echo\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"
		"\"},\"id\":\"\xf0\x9f\x94\x92\"}\n";
	struct proto_request req;
	json_t *back;
	size_t len;
	char *line;

	parse_ok("{\"execute\":\"\\u00e9\\u20ac\\ud83d\\ude00\","
		 "\"id\":\"\xf0\x9f\x94\x92\"}",
		 &req);
	line = dump_line_checked(
		proto_return(json_pack("{s:s}", "echo", req.execute), req.id),
		&len);
	/* Non-ASCII is emitted as raw UTF-8, not as \u escapes. */
	cr_assert_str_eq(line, want);
	back = reload_line(line, len);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(back, "return"), "echo")),
			 req.execute);
	cr_assert(json_equal(json_object_get(back, "id"), req.id));
	json_decref(back);
	free(line);
	proto_request_free(&req);
}

Test(proto_unicode, invalid_utf8_rejected)
{
	static const char *const bad[] = {
		"{\"execute\":\"\x80\"}", /* lone continuation byte */
		"{\"execute\":\"\xc3\x28\"}", /* bad continuation */
		"{\"execute\":\"\xe2\x82\"}", /* truncated sequence */
		"{\"execute\":\"\xf0\x9f\x98\"}", /* truncated 4-byte */
		"{\"execute\":\"\xc0\xaf\"}", /* overlong '/' */
		"{\"execute\":\"\xe0\x80\xaf\"}", /* overlong, 3 bytes */
		"{\"execute\":\"\xed\xa0\x80\"}", /* UTF-16 surrogate */
		"{\"execute\":\"\xf4\x90\x80\x80\"}", /* above U+10FFFF */
		"{\"execute\":\"\xf8\x88\x80\x80\x80\"}", /* 5-byte form */
		"{\"execute\":\"\xff\"}",
		"{\"execute\":\"x\",\"arguments\":{\"\xfe\":1}}",
		"{\"execute\":\"x\",\"id\":\"\xc3\"}",
		"{\"execute\":\"x\"}\xc3",
		"\xff{\"execute\":\"x\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		assert_parse_error(err, 1, 0, "unable to decode byte");
		json_decref(err);
	}
}

Test(proto_unicode, lone_surrogate_escapes_rejected)
{
	static const char *const bad[] = {
		"{\"execute\":\"\\ud800\"}",
		"{\"execute\":\"\\udc00\"}",
		"{\"execute\":\"\\ud83d\\u0041\"}",
		"{\"execute\":\"\\ude00\\ud83d\"}",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		json_t *err = refuse(bad[i]);

		assert_parse_error(err, 1, 0, "nvalid Unicode");
		json_decref(err);
	}
}

Test(proto_unicode, escaped_nul_rejected)
{
	/*
	 * Strings are handed on as C strings, so jansson's default refusal
	 * of \u0000 is what keeps "a\u0000b" from becoming "a".
	 */
	json_t *err = refuse("{\"execute\":\"setup\\u0000x\"}");

	assert_parse_error(err, 1, 0, "\\u0000 is not allowed");
	json_decref(err);

	err = refuse("{\"execute\":\"x\",\"arguments\":{\"h\":\"\\u0000\"}}");
	assert_parse_error(err, 1, 0, "\\u0000 is not allowed");
	json_decref(err);

	err = refuse("{\"execute\":\"x\",\"arguments\":{\"k\\u0000\":1}}");
	assert_parse_error(err, 1, 0, "NUL byte in object key");
	json_decref(err);

	/* Must not be folded into "id" and accepted. */
	err = refuse("{\"execute\":\"x\",\"id\\u0000\":1}");
	assert_parse_error(err, 1, 0, "NUL byte in object key");
	json_decref(err);
}

Test(proto_unicode, nul_in_dumped_string_is_escaped)
{
	/* Our own output may carry a NUL; it must not end the C string. */
	size_t len;
	char *line = dump_line_checked(
		proto_return(json_pack("{s:s%}", "v", "a\0b", (size_t)3), NULL),
		&len);

	cr_assert_str_eq(line, "{\"return\":{\"v\":\"a\\u0000b\"}}\n");
	free(line);
}

Test(proto_unicode, long_multibyte_unknown_key_still_gets_error)
{
	/*
	 * The desc is cut to a fixed size; the cut must not split a UTF-8
	 * sequence, or the reply cannot be built and the client gets none.
	 */
	char buf[1024];
	json_t *err;
	size_t n;

	n = (size_t)snprintf(buf, sizeof(buf),
			     "{\"execute\":\"x\",\"id\":7,\"");
	for (int i = 0; i < 300; i++) {
		memcpy(buf + n, "\xc3\xa9", 2);
		n += 2;
	}
	memcpy(buf + n, "\":1}", 4);
	n += 4;

	err = refuse_n(buf, n);
	cr_assert_not_null(
		strstr(error_desc(err, "GenericError"), "unknown key"));
	cr_assert_eq(json_integer_value(json_object_get(err, "id")), 7);
	json_decref(err);
}

/* ---------------------------------------------------------------- */
/* Hostile input                                                    */

Test(proto_hostile, deep_open_brackets)
{
	size_t n = 100000;
	char *buf = malloc(n);
	json_t *err;

	cr_assert_not_null(buf);
	memset(buf, '[', n);
	err = refuse_n(buf, n);
	assert_parse_error(err, 1, 0, "depth");
	json_decref(err);
	free(buf);
}

Test(proto_hostile, deep_balanced_brackets)
{
	size_t n = 100000;
	char *buf = malloc(2 * n);
	json_t *err;

	cr_assert_not_null(buf);
	memset(buf, '[', n);
	memset(buf + n, ']', n);
	err = refuse_n(buf, 2 * n);
	assert_parse_error(err, 1, 0, "depth");
	json_decref(err);
	free(buf);
}

Test(proto_hostile, deep_nesting_inside_arguments)
{
	static const char head[] = "{\"execute\":\"x\",\"arguments\":";
	size_t depth = 50000, n = 0;
	char *buf = malloc(sizeof(head) + 6 * depth + 2);
	json_t *err;

	cr_assert_not_null(buf);
	memcpy(buf, head, sizeof(head) - 1);
	n = sizeof(head) - 1;
	for (size_t i = 0; i < depth; i++) {
		memcpy(buf + n, "{\"a\":", 5);
		n += 5;
	}
	buf[n++] = '1';
	memset(buf + n, '}', depth + 1);
	n += depth + 1;

	err = refuse_n(buf, n);
	assert_parse_error(err, 1, 0, "depth");
	json_decref(err);
	free(buf);
}

Test(proto_hostile, embedded_nul_bytes)
{
	json_t *err;

	/* Raw NUL inside a string is a control character. */
	err = refuse_n(LIT("{\"execute\":\"a\0b\"}"));
	assert_parse_error(err, 1, 0, "control character");
	json_decref(err);

	/* A NUL must not truncate the request into something valid. */
	err = refuse_n(LIT("{\"execute\":\"x\"}\0"));
	assert_parse_error(err, 1, 0, NULL);
	json_decref(err);

	err = refuse_n(LIT("{\"execute\":\"x\"}\0{\"bogus\":1}"));
	assert_parse_error(err, 1, 0, NULL);
	json_decref(err);

	err = refuse_n(LIT("{\"exe\0cute\":\"x\"}"));
	assert_parse_error(err, 1, 0, NULL);
	json_decref(err);

	err = refuse_n(LIT("{\"execute\":\"x\",\0\"id\":1}"));
	assert_parse_error(err, 1, 0, NULL);
	json_decref(err);

	err = refuse_n(LIT("\0"));
	assert_parse_error(err, 1, 0, NULL);
	json_decref(err);
}

Test(proto_hostile, huge_string_value)
{
	static const char head[] = "{\"execute\":\"x\",\"id\":\"";
	size_t body = PROTO_MAX_LINE, n;
	struct proto_request req;
	char *buf = malloc(sizeof(head) + body + 2);

	cr_assert_not_null(buf);
	memcpy(buf, head, sizeof(head) - 1);
	n = sizeof(head) - 1;
	memset(buf + n, 'z', body);
	n += body;
	memcpy(buf + n, "\"}", 2);
	n += 2;
	parse_ok_n(buf, n, &req);
	cr_assert_eq(json_string_length(req.id), body);
	proto_request_free(&req);
	free(buf);
}

/* ---------------------------------------------------------------- */
/* Message builders                                                 */

Test(proto_msg, class_names)
{
	static const struct {
		enum proto_class cls;
		const char *name;
	} want[] = {
		{ PROTO_GENERIC_ERROR, "GenericError" },
		{ PROTO_COMMAND_NOT_FOUND, "CommandNotFound" },
		{ PROTO_INVALID_ARGUMENT, "InvalidArgument" },
		{ PROTO_HOST_NOT_CONNECTED, "HostNotConnected" },
		{ PROTO_PERMISSION_DENIED, "PermissionDenied" },
		{ PROTO_LIMIT_EXCEEDED, "LimitExceeded" },
		{ PROTO_TIMEOUT, "Timeout" },
		{ PROTO_ARMING_FAILED, "ArmingFailed" },
		{ PROTO_NOT_FOUND, "NotFound" },
		{ PROTO_PEER_NOT_DEAD, "PeerNotDead" },
	};

	/* A class added to the enum must be added here too. */
	cr_assert_eq(sizeof(want) / sizeof(want[0]), PROTO_CLASS_COUNT);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_assert_str_eq(proto_class_name(want[i].cls), want[i].name);
}

Test(proto_msg, class_name_out_of_range)
{
	cr_assert_str_eq(proto_class_name(PROTO_CLASS_COUNT), "GenericError");
	cr_assert_str_eq(proto_class_name((enum proto_class)1000),
			 "GenericError");
	cr_assert_str_eq(proto_class_name((enum proto_class) - 1),
			 "GenericError");
}

Test(proto_msg, error_shape)
{
	json_t *id = json_integer(3);
	json_t *msg = proto_error(PROTO_INVALID_ARGUMENT, id,
				  "storages[%d].interval_ms: must be >= %d", 1,
				  100);

	assert_desc(msg, "InvalidArgument",
		    "storages[1].interval_ms: must be >= 100");
	cr_assert_eq(json_object_get(msg, "id"), id);
	cr_assert_eq(json_object_size(msg), 2);
	/* @id is borrowed: the message took its own reference. */
	cr_assert_eq(id->refcount, 2);
	assert_dump_eq(msg, "{\"error\":{\"class\":\"InvalidArgument\","
			    "\"desc\":\"storages[1].interval_ms: must be >= "
			    "100\"},\"id\":3}\n");
	cr_assert_eq(id->refcount, 1);
	json_decref(id);
}

Test(proto_msg, error_without_id)
{
	json_t *msg = proto_error(PROTO_TIMEOUT, NULL, "took %s", "too long");

	assert_desc(msg, "Timeout", "took too long");
	cr_assert_eq(json_object_size(msg), 1);
	json_decref(msg);
}

Test(proto_msg, error_out_of_range_class)
{
	json_t *msg = proto_error(PROTO_CLASS_COUNT, NULL, "x");

	assert_desc(msg, "GenericError", "x");
	json_decref(msg);
}

Test(proto_msg, error_ids_of_every_type)
{
	json_t *ids[] = {
		json_integer(-7), json_real(0.5),
		json_string("s"), json_pack("{s:[]}", "k"),
		json_array(),	  json_true(),
		json_null(),
	};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		json_t *msg = proto_error(PROTO_NOT_FOUND, ids[i], "gone");

		cr_assert_not_null(msg);
		cr_assert(json_equal(json_object_get(msg, "id"), ids[i]));
		json_decref(msg);
		json_decref(ids[i]);
	}
}

Test(proto_msg, error_long_desc_is_truncated_not_lost)
{
	char big[4096];
	json_t *msg;

	memset(big, 'd', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	msg = proto_error(PROTO_GENERIC_ERROR, NULL, "%s", big);
	cr_assert_not_null(msg);
	cr_assert_gt(strlen(error_desc(msg, "GenericError")), 0);
	json_decref(msg);
}

Test(proto_msg, error_long_multibyte_desc_is_truncated_not_lost)
{
	/* Same as above with a cut that lands inside a UTF-8 sequence. */
	char big[4096];
	json_t *msg;
	size_t n = 0;

	big[n++] = 'x';
	while (n + 4 < sizeof(big)) {
		memcpy(big + n, "\xf0\x9f\x98\x80", 4);
		n += 4;
	}
	big[n] = '\0';
	msg = proto_error(PROTO_GENERIC_ERROR, NULL, "%s", big);
	cr_assert_not_null(msg, "error reply lost to a split UTF-8 sequence");
	error_desc(msg, "GenericError");
	json_decref(msg);
}

Test(proto_msg, return_shape)
{
	json_t *ret = json_pack("{s:i}", "armed", 2);
	json_t *id = json_string("abc");
	json_t *msg;

	json_incref(ret);
	msg = proto_return(ret, id);
	cr_assert_eq(json_object_get(msg, "return"), ret);
	cr_assert_eq(json_object_get(msg, "id"), id);
	cr_assert_eq(json_object_size(msg), 2);
	/* @ret was stolen, @id borrowed. */
	cr_assert_eq(ret->refcount, 2);
	cr_assert_eq(id->refcount, 2);
	assert_dump_eq(msg, "{\"return\":{\"armed\":2},\"id\":\"abc\"}\n");
	cr_assert_eq(ret->refcount, 1);
	cr_assert_eq(id->refcount, 1);
	json_decref(ret);
	json_decref(id);
}

Test(proto_msg, return_null_is_empty_object)
{
	assert_dump_eq(proto_return(NULL, NULL), "{\"return\":{}}\n");
}

Test(proto_msg, return_non_object)
{
	json_t *id = json_object();

	assert_dump_eq(proto_return(json_pack("[i,s]", 1, "a"), id),
		       "{\"return\":[1,\"a\"],\"id\":{}}\n");
	json_decref(id);
}

Test(proto_msg, greeting_shape)
{
	json_t *caps = json_pack("[s]", "events");
	json_t *msg, *g, *v;

	json_incref(caps);
	msg = proto_greeting(caps);
	g = json_object_get(msg, "iofence");
	v = json_object_get(g, "version");
	cr_assert_eq(json_object_size(msg), 1);
	cr_assert_eq(json_object_size(g), 3);
	cr_assert_eq(json_object_size(v), 3);
	cr_assert_eq(json_integer_value(json_object_get(v, "major")),
		     IOFENCE_VERSION_MAJOR);
	cr_assert_eq(json_integer_value(json_object_get(v, "minor")),
		     IOFENCE_VERSION_MINOR);
	cr_assert_eq(json_integer_value(json_object_get(v, "micro")),
		     IOFENCE_VERSION_MICRO);
	cr_assert_str_eq(json_string_value(json_object_get(g, "package")),
			 "iofence");
	cr_assert_eq(json_object_get(g, "capabilities"), caps);
	/* @capabilities was stolen, like @ret and @data elsewhere. */
	cr_assert_eq(caps->refcount, 2);
	json_decref(msg);
	cr_assert_eq(caps->refcount, 1);
	json_decref(caps);
}

Test(proto_msg, greeting_dump)
{
	json_t *caps = json_pack("[s]", "events");
	char want[256];

	snprintf(want, sizeof(want),
		 "{\"iofence\":{\"version\":{\"major\":%d,\"minor\":%d,"
		 "\"micro\":%d},\"package\":\"iofence\","
		 "\"capabilities\":[\"events\"]}}\n",
		 IOFENCE_VERSION_MAJOR, IOFENCE_VERSION_MINOR,
		 IOFENCE_VERSION_MICRO);
	assert_dump_eq(proto_greeting(caps), want);
}

Test(proto_msg, greeting_without_capabilities)
{
	json_t *msg = proto_greeting(NULL);
	json_t *caps = json_object_get(json_object_get(msg, "iofence"),
				       "capabilities");
	size_t refs;

	cr_assert(json_is_array(caps));
	cr_assert_eq(json_array_size(caps), 0);
	refs = caps->refcount;
	json_decref(msg);
	/* Only the greeting may hold the default array, or it leaks. */
	cr_assert_eq(refs, 1, "default capabilities leak (%zu refs)", refs);
}

Test(proto_msg, event_shape)
{
	json_t *data = json_pack("{s:s}", "storage", "/dev/sdb");
	json_t *msg, *ts;

	json_incref(data);
	msg = proto_event("FENCE_FIRED", 42, data, 1700000000, 123456);
	cr_assert_eq(json_object_size(msg), 4);
	cr_assert_str_eq(json_string_value(json_object_get(msg, "event")),
			 "FENCE_FIRED");
	cr_assert_eq(json_integer_value(json_object_get(msg, "seq")), 42);
	cr_assert_eq(json_object_get(msg, "data"), data);
	ts = json_object_get(msg, "timestamp");
	cr_assert_eq(json_object_size(ts), 2);
	cr_assert_eq(json_integer_value(json_object_get(ts, "seconds")),
		     1700000000);
	cr_assert_eq(json_integer_value(json_object_get(ts, "microseconds")),
		     123456);
	/* @data was stolen. */
	cr_assert_eq(data->refcount, 2);
	assert_dump_eq(msg, "{\"event\":\"FENCE_FIRED\",\"seq\":42,"
			    "\"data\":{\"storage\":\"/dev/sdb\"},"
			    "\"timestamp\":{\"seconds\":1700000000,"
			    "\"microseconds\":123456}}\n");
	cr_assert_eq(data->refcount, 1);
	json_decref(data);
}

Test(proto_msg, event_without_data)
{
	assert_dump_eq(proto_event("HOST_STATE", 0, NULL, 0, 0),
		       "{\"event\":\"HOST_STATE\",\"seq\":0,\"data\":{},"
		       "\"timestamp\":{\"seconds\":0,\"microseconds\":0}}\n");
}

Test(proto_msg, event_large_values)
{
	json_t *msg = proto_event("E", INT64_MAX, NULL, INT64_MAX, 999999);

	cr_assert_eq(json_integer_value(json_object_get(msg, "seq")),
		     INT64_MAX);
	cr_assert_eq(json_integer_value(json_object_get(
			     json_object_get(msg, "timestamp"), "seconds")),
		     INT64_MAX);
	json_decref(msg);
}

Test(proto_dump, null_message)
{
	size_t len = 12345;

	cr_assert_null(proto_dump_line(NULL, &len));
}

Test(proto_dump, newlines_in_strings_stay_escaped)
{
	json_t *id = json_string("id\nwith\r\nbreaks\n");
	json_t *back;
	size_t len;
	char *line;

	line = dump_line_checked(proto_error(PROTO_GENERIC_ERROR, id,
					     "line1\nline2\r\n%s", "\n\n"),
				 &len);
	cr_assert_eq(memchr(line, '\r', len), NULL);
	cr_assert_neq(line[len - 2], '\n');
	back = reload_line(line, len);
	cr_assert_str_eq(json_string_value(json_object_get(
				 json_object_get(back, "error"), "desc")),
			 "line1\nline2\r\n\n\n");
	cr_assert(json_equal(json_object_get(back, "id"), id));
	json_decref(back);
	free(line);
	json_decref(id);
}

Test(proto_dump, nested_message_is_compact)
{
	json_t *ret = json_pack("{s:[{s:i},{s:b}],s:{}}", "storages", "id", 1,
				"armed", 1, "skipped");

	assert_dump_eq(
		proto_return(ret, NULL),
		"{\"return\":{\"storages\":[{\"id\":1},{\"armed\":true}],"
		"\"skipped\":{}}}\n");
}

/* ---------------------------------------------------------------- */
/* Leaks and allocation failure, counted through jansson's hooks    */

/* The counting allocator lives in alloc_count.c. */

static const char *const oom_lines[] = {
	"{\"execute\":\"x\"}",
	"{\"execute\":\"setup\",\"arguments\":{\"a\":[1,{\"b\":\"c\"}]},"
	"\"id\":{\"k\":\"v\"}}",
	"{\"bogus\":1,\"id\":\"late\",\"execute\":\"x\"}",
	"{\"execute\":1,\"id\":2}",
	"{\"execute\":\"x\",\"arguments\":[],\"id\":2}",
	"{\"execute\":\"x\",\"execute\":\"y\"}",
	"[1,2,3]",
	"{\"execute\":x}",
};

Test(proto_leak, parse_paths_free_everything, .init = counting_init,
     .fini = counting_fini)
{
	for (size_t i = 0; i < sizeof(oom_lines) / sizeof(oom_lines[0]); i++) {
		struct proto_request req;
		json_t *err = NULL;

		if (parse(oom_lines[i], &req, &err) == 0)
			proto_request_free(&req);
		json_decref(err);
		cr_assert_eq(live_allocs, 0, "leak after '%s'", oom_lines[i]);
	}
}

Test(proto_leak, builders_free_everything, .init = counting_init,
     .fini = counting_fini)
{
	json_t *id = json_pack("{s:s}", "k", "v");
	json_t *caps = json_array();

	json_decref(proto_error(PROTO_TIMEOUT, id, "x %d", 1));
	json_decref(proto_return(json_pack("{s:i}", "a", 1), id));
	json_decref(proto_return(NULL, NULL));
	json_decref(proto_event("E", 1, json_pack("[i]", 1), 2, 3));
	json_decref(proto_event("E", 1, NULL, 2, 3));
	json_decref(proto_greeting(caps));
	json_decref(id);
	cr_assert_eq(live_allocs, 0);
}

Test(proto_leak, greeting_default_capabilities, .init = counting_init,
     .fini = counting_fini)
{
	json_decref(proto_greeting(NULL));
	cr_assert_eq(live_allocs, 0, "%ld jansson allocations leaked",
		     live_allocs);
}

Test(proto_oom, parse_request, .init = counting_init, .fini = counting_fini)
{
	for (size_t i = 0; i < sizeof(oom_lines) / sizeof(oom_lines[0]); i++) {
		for (long n = 0;; n++) {
			const char *s = oom_lines[i];
			struct proto_request req;
			json_t *err = NULL;
			int rc, failed;

			fail_after(n);
			rc = parse(s, &req, &err);
			failed = alloc_failed;
			fail_after(-1);

			if (rc == 0) {
				json_t *owned =
					json_object_get(req.root, "arguments");

				cr_assert_null(err);
				cr_assert_not_null(req.execute);
				/*
				 * Compared through root before touching
				 * arguments: a failed insertion has already
				 * freed them. Expect, not assert, so both
				 * failure modes get reported.
				 */
				cr_expect_not_null(
					req.arguments,
					"'%s' failing allocation %ld: "
					"accepted with NULL arguments",
					s, n);
				cr_expect_eq(owned, req.arguments,
					     "'%s' failing allocation %ld: "
					     "arguments not owned by the "
					     "request (already freed)",
					     s, n);
				if (req.arguments && owned == req.arguments)
					cr_assert(
						json_is_object(req.arguments));
				proto_request_free(&req);
			} else {
				cr_assert_eq(rc, -EINVAL);
				cr_assert_null(req.root);
				/* Without memory there may be no reply. */
				cr_assert(err || failed);
				if (err)
					error_desc(err, "GenericError");
				json_decref(err);
			}
			cr_assert_eq(live_allocs, 0,
				     "'%s' failing allocation %ld leaks", s, n);
			if (!failed)
				break;
		}
	}
}

Test(proto_oom, builders, .init = counting_init, .fini = counting_fini)
{
	/* Under memory pressure a builder may fail, but not leak or crash. */
	for (long n = 0;; n++) {
		json_t *id = json_integer(1);
		json_t *caps = json_pack("[s]", "c");
		int failed;

		fail_after(n);
		json_decref(proto_error(PROTO_TIMEOUT, id, "x"));
		json_decref(proto_return(json_pack("{s:i}", "a", 1), id));
		json_decref(proto_return(NULL, id));
		json_decref(proto_event("E", 1, json_pack("[i]", 1), 2, 3));
		json_decref(proto_event("E", 1, NULL, 2, 3));
		json_decref(proto_greeting(caps));
		failed = alloc_failed;
		fail_after(-1);
		json_decref(id);
		cr_assert_eq(live_allocs, 0, "failing allocation %ld leaks", n);
		if (!failed)
			break;
	}
}

/* ---------------------------------------------------------------- */
/* Line framing                                                     */

static void feed(struct linebuf *lb, const char *s, size_t n)
{
	size_t avail;
	char *p = linebuf_space(lb, &avail);

	cr_assert_geq(avail, n, "room for %zu of %zu bytes", avail, n);
	memcpy(p, s, n);
	linebuf_commit(lb, n);
}

static void expect_line(struct linebuf *lb, const char *want, size_t want_len)
{
	char *line = NULL;
	size_t len = (size_t)-1;

	cr_assert_eq(linebuf_next(lb, &line, &len), 1);
	cr_assert_eq(len, want_len);
	cr_assert(memcmp(line, want, len) == 0, "got '%.*s', want '%.*s'",
		  (int)len, line, (int)want_len, want);
	cr_assert_eq(line[len], '\0');
}

#define EXPECT_LINE(lb, s) expect_line((lb), LIT(s))

static void expect_none(struct linebuf *lb)
{
	char *line;
	size_t len;

	cr_assert_eq(linebuf_next(lb, &line, &len), 0);
}

static void init_lb(struct linebuf *lb, size_t max)
{
	cr_assert_eq(linebuf_init(lb, max), 0);
}

Test(linebuf, empty_buffer_has_no_line)
{
	struct linebuf lb;
	size_t avail;

	init_lb(&lb, 16);
	expect_none(&lb);
	linebuf_space(&lb, &avail);
	/* Room for the longest line and its newline. */
	cr_assert_eq(avail, 17);
	linebuf_free(&lb);
	linebuf_free(&lb);
}

Test(linebuf, several_lines_in_one_commit)
{
	struct linebuf lb;

	init_lb(&lb, 64);
	feed(&lb, LIT("one\ntwo\nthree\npart"));
	EXPECT_LINE(&lb, "one");
	EXPECT_LINE(&lb, "two");
	EXPECT_LINE(&lb, "three");
	expect_none(&lb);
	feed(&lb, LIT("ial\n"));
	EXPECT_LINE(&lb, "partial");
	expect_none(&lb);
	linebuf_free(&lb);
}

Test(linebuf, line_split_across_commits)
{
	struct linebuf lb;

	init_lb(&lb, 64);
	feed(&lb, LIT("{\"exec"));
	expect_none(&lb);
	feed(&lb, LIT("ute\":"));
	expect_none(&lb);
	feed(&lb, LIT("\"x\"}\n{"));
	EXPECT_LINE(&lb, "{\"execute\":\"x\"}");
	expect_none(&lb);
	feed(&lb, LIT("}\n"));
	EXPECT_LINE(&lb, "{}");
	linebuf_free(&lb);
}

Test(linebuf, byte_at_a_time)
{
	static const char stream[] = "a\n\nbc\r\ndef\n";
	static const char *const want[] = { "a", "", "bc", "def" };
	struct linebuf lb;
	size_t got = 0;

	init_lb(&lb, 4);
	for (size_t i = 0; i < sizeof(stream) - 1; i++) {
		char *line;
		size_t len;
		int rc;

		feed(&lb, &stream[i], 1);
		while ((rc = linebuf_next(&lb, &line, &len)) == 1) {
			cr_assert_lt(got, sizeof(want) / sizeof(want[0]));
			cr_assert_str_eq(line, want[got]);
			cr_assert_eq(len, strlen(want[got]));
			got++;
		}
		cr_assert_eq(rc, 0);
	}
	cr_assert_eq(got, sizeof(want) / sizeof(want[0]));
	linebuf_free(&lb);
}

Test(linebuf, crlf_stripping)
{
	struct linebuf lb;

	init_lb(&lb, 64);
	feed(&lb, LIT("a\r\n\r\nmid\rcr\nx\r\r\n"));
	EXPECT_LINE(&lb, "a");
	EXPECT_LINE(&lb, "");
	/* Only a CR right before the newline is framing. */
	EXPECT_LINE(&lb, "mid\rcr");
	EXPECT_LINE(&lb, "x\r");
	expect_none(&lb);
	/* The CR and LF of one terminator may arrive separately. */
	feed(&lb, LIT("split\r"));
	expect_none(&lb);
	feed(&lb, LIT("\n"));
	EXPECT_LINE(&lb, "split");
	/* A lone CR is not a line terminator. */
	feed(&lb, LIT("cr\rcr\r"));
	expect_none(&lb);
	linebuf_free(&lb);
}

Test(linebuf, empty_lines)
{
	struct linebuf lb;

	init_lb(&lb, 8);
	feed(&lb, LIT("\n\n\nx\n\n"));
	EXPECT_LINE(&lb, "");
	EXPECT_LINE(&lb, "");
	EXPECT_LINE(&lb, "");
	EXPECT_LINE(&lb, "x");
	EXPECT_LINE(&lb, "");
	expect_none(&lb);
	linebuf_free(&lb);
}

Test(linebuf, embedded_nul_passes_through)
{
	/* Framing is binary-safe; rejecting NULs is the parser's job. */
	struct linebuf lb;

	init_lb(&lb, 16);
	feed(&lb, LIT("a\0b\n\0\n"));
	EXPECT_LINE(&lb, "a\0b");
	EXPECT_LINE(&lb, "\0");
	linebuf_free(&lb);
}

Test(linebuf, exactly_max_line_accepted)
{
	struct linebuf lb;
	size_t avail;

	init_lb(&lb, 8);
	feed(&lb, LIT("12345678\n"));
	EXPECT_LINE(&lb, "12345678");
	expect_none(&lb);

	/* The same with its newline in a later commit. */
	feed(&lb, LIT("abcdefgh"));
	expect_none(&lb);
	linebuf_space(&lb, &avail);
	cr_assert_eq(avail, 1);
	feed(&lb, LIT("\n"));
	EXPECT_LINE(&lb, "abcdefgh");
	linebuf_free(&lb);
}

Test(linebuf, max_plus_one_rejected)
{
	struct linebuf lb;
	char *line;
	size_t len, avail;

	init_lb(&lb, 8);
	feed(&lb, LIT("123456789"));
	cr_assert_eq(linebuf_next(&lb, &line, &len), -EMSGSIZE);
	linebuf_space(&lb, &avail);
	cr_assert_eq(avail, 0);
	linebuf_free(&lb);
}

Test(linebuf, max_plus_one_across_commits)
{
	struct linebuf lb;
	char *line;
	size_t len;

	init_lb(&lb, 8);
	feed(&lb, LIT("ok\n1234"));
	EXPECT_LINE(&lb, "ok");
	expect_none(&lb);
	feed(&lb, LIT("5678"));
	expect_none(&lb);
	feed(&lb, LIT("9"));
	cr_assert_eq(linebuf_next(&lb, &line, &len), -EMSGSIZE);
	linebuf_free(&lb);
}

Test(linebuf, compaction_after_partial_consumption)
{
	struct linebuf lb;
	size_t avail;
	char *p;

	init_lb(&lb, 16);
	feed(&lb, LIT("abc\ndefg"));
	EXPECT_LINE(&lb, "abc");
	expect_none(&lb);
	p = linebuf_space(&lb, &avail);
	/* The unfinished "defg" moved to the front, freeing what "abc\n" used. */
	cr_assert_eq(lb.start, 0);
	cr_assert_eq(lb.len, 4);
	cr_assert_eq(p, lb.buf + 4);
	cr_assert_eq(avail, 17 - 4);
	cr_assert(memcmp(lb.buf, "defg", 4) == 0);
	feed(&lb, LIT("h\n"));
	EXPECT_LINE(&lb, "defgh");
	linebuf_free(&lb);
}

Test(linebuf, compaction_makes_room_for_max_line)
{
	/* A full buffer whose head was consumed must not look oversized. */
	struct linebuf lb;
	size_t avail;

	init_lb(&lb, 8);
	feed(&lb, LIT("ab\ncdefgh"));
	linebuf_space(&lb, &avail);
	cr_assert_eq(avail, 0);
	EXPECT_LINE(&lb, "ab");
	expect_none(&lb);
	feed(&lb, LIT("ij\n"));
	EXPECT_LINE(&lb, "cdefghij");
	expect_none(&lb);
	linebuf_space(&lb, &avail);
	cr_assert_eq(avail, 9);
	linebuf_free(&lb);
}

Test(linebuf, full_buffer_of_lines_drains)
{
	struct linebuf lb;
	size_t avail;

	init_lb(&lb, 8);
	feed(&lb, LIT("a\nb\nc\nd\ne"));
	linebuf_space(&lb, &avail);
	cr_assert_eq(avail, 0);
	EXPECT_LINE(&lb, "a");
	EXPECT_LINE(&lb, "b");
	EXPECT_LINE(&lb, "c");
	EXPECT_LINE(&lb, "d");
	expect_none(&lb);
	feed(&lb, LIT("\n"));
	EXPECT_LINE(&lb, "e");
	linebuf_free(&lb);
}

/* ---------------------------------------------------------------- */
/* Framer and parser together, at the real limit                    */

static char *request_of_size(size_t size)
{
	static const char head[] = "{\"execute\":\"x\",\"id\":\"";
	char *buf = malloc(size);

	cr_assert_not_null(buf);
	cr_assert_gt(size, sizeof(head) + 2);
	memcpy(buf, head, sizeof(head) - 1);
	memset(buf + sizeof(head) - 1, 'p', size - (sizeof(head) - 1) - 2);
	memcpy(buf + size - 2, "\"}", 2);
	return buf;
}

Test(pipeline, max_protocol_line_accepted)
{
	struct linebuf lb;
	struct proto_request req;
	char *buf = request_of_size(PROTO_MAX_LINE);
	char *line;
	size_t len;

	init_lb(&lb, PROTO_MAX_LINE);
	feed(&lb, buf, PROTO_MAX_LINE);
	feed(&lb, LIT("\n"));
	cr_assert_eq(linebuf_next(&lb, &line, &len), 1);
	cr_assert_eq(len, PROTO_MAX_LINE);
	parse_ok_n(line, len, &req);
	cr_assert_str_eq(req.execute, "x");
	proto_request_free(&req);
	linebuf_free(&lb);
	free(buf);
}

Test(pipeline, over_max_protocol_line_rejected)
{
	struct linebuf lb;
	char *buf = request_of_size(PROTO_MAX_LINE + 1);
	char *line;
	size_t len;

	init_lb(&lb, PROTO_MAX_LINE);
	feed(&lb, buf, PROTO_MAX_LINE + 1);
	cr_assert_eq(linebuf_next(&lb, &line, &len), -EMSGSIZE);
	linebuf_free(&lb);
	free(buf);
}

Test(pipeline, mixed_stream)
{
	struct linebuf lb;
	struct proto_request req;
	json_t *err;
	char *line;
	size_t len;

	init_lb(&lb, 256);
	feed(&lb,
	     LIT("{\"execute\":\"a\",\"id\":1}\r\n"
		 "\n"
		 "{\"execute\":\"b\0\"}\n"
		 "{\"execute\":\"c\",\"arguments\":{\"k\":\"\xf0\x9f\x98\x80\"}}"
		 "\n"));

	cr_assert_eq(linebuf_next(&lb, &line, &len), 1);
	parse_ok_n(line, len, &req);
	cr_assert_str_eq(req.execute, "a");
	proto_request_free(&req);

	cr_assert_eq(linebuf_next(&lb, &line, &len), 1);
	cr_assert_eq(len, 0);

	cr_assert_eq(linebuf_next(&lb, &line, &len), 1);
	cr_assert_eq(parse_n(line, len, &req, &err), -EINVAL);
	assert_parse_error(err, 1, 0, "control character");
	json_decref(err);

	cr_assert_eq(linebuf_next(&lb, &line, &len), 1);
	parse_ok_n(line, len, &req);
	cr_assert_str_eq(req.execute, "c");
	cr_assert_str_eq(json_string_value(json_object_get(req.arguments, "k")),
			 "\xf0\x9f\x98\x80");
	proto_request_free(&req);

	expect_none(&lb);
	linebuf_free(&lb);
}
