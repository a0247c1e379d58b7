// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for the state file framing (state_file.c) and the event
 * journal (journal.c). A daemon that misreads its state file re-arms the
 * wrong thing or forgets a fence, so every way the bytes on disk can be
 * torn or altered is replayed here, and the journal is driven across its
 * wrap-around and through a save and load.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <criterion/criterion.h>
#include <jansson.h>
#include <zlib.h>

#include "journal.h"
#include "state_file.h"
#include "alloc_count.h"

#define LIT(s) (s), (sizeof(s) - 1)
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---------------------------------------------------------------- */
/* Counting jansson allocator, for leaks and allocation failures    */

/* The counting allocator lives in alloc_count.c. */

/* ---------------------------------------------------------------- */
/* State file helpers                                               */

/*
 * The decoder gets an unterminated heap copy of exactly @n bytes, so ASan
 * flags any read past the length it was handed.
 */
static int decode_n(const void *s, size_t n, json_t **doc, char *err,
		    size_t errlen)
{
	char *copy = malloc(n ? n : 1);
	int rc;

	cr_assert_not_null(copy);
	memcpy(copy, s, n);
	rc = state_decode(copy, n, doc, err, errlen);
	free(copy);
	return rc;
}

static void expect_reject(const void *s, size_t n, const char *want)
{
	json_t *doc = (json_t *)1;
	char err[256] = "";
	int rc;

	rc = decode_n(s, n, &doc, err, sizeof(err));
	cr_assert_eq(rc, -EINVAL, "%zu bytes accepted (rc %d), wanted '%s'", n,
		     rc, want);
	cr_assert_null(doc);
	cr_assert(strstr(err, want), "error '%s' does not name '%s'", err,
		  want);
}

static uint32_t crc_of(const char *s, size_t n)
{
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)s, (uInt)n);
}

/*
 * Frames @body by hand; NULL fields get the right value, so each test
 * spoils exactly the one it names.
 */
static char *frame(const char *ver, const char *len, const char *crc,
		   const char *body, size_t body_len, size_t *out_len)
{
	char lenbuf[32], crcbuf[16];
	char *buf = NULL;
	size_t n;
	FILE *f;

	snprintf(lenbuf, sizeof(lenbuf), "%zu", body_len);
	snprintf(crcbuf, sizeof(crcbuf), "%08x", crc_of(body, body_len));
	f = open_memstream(&buf, &n);
	cr_assert_not_null(f);
	fprintf(f, "iofence-state %s %s %s\n", ver ? ver : "1",
		len ? len : lenbuf, crc ? crc : crcbuf);
	fwrite(body, 1, body_len, f);
	fclose(f);
	*out_len = n;
	return buf;
}

static void expect_frame_reject(const char *ver, const char *len,
				const char *crc, const char *body,
				const char *want)
{
	size_t n;
	char *buf = frame(ver, len, crc, body, strlen(body), &n);

	expect_reject(buf, n, want);
	free(buf);
}

static json_t *sample_doc(void)
{
	json_t *doc = json_loads(
		"{\"armed\":{\"storage\":[\"/dev/sdb\",\"/dev/sdc\"],"
		"\"timeout_ms\":5000,\"interval_ms\":1000},"
		"\"host_state\":\"up\",\"unicode\":\"\\u017c\\u00f3\\u0142w "
		"\\u2713\",\"neg\":-42,\"big\":9223372036854775807,"
		"\"real\":1.5,\"t\":true,\"f\":false,\"n\":null,"
		"\"empty\":{},\"none\":[],\"esc\":\"a\\\"b\\\\c\\n\"}",
		0, NULL);

	cr_assert_not_null(doc);
	return doc;
}

static char *encode_sample(size_t *len)
{
	json_t *doc = sample_doc();
	char *buf = state_encode(doc, len);

	cr_assert_not_null(buf);
	json_decref(doc);
	return buf;
}

/* Where the body starts, for tests that spoil the body alone. */
static size_t body_off(const char *buf, size_t len)
{
	const char *nl = memchr(buf, '\n', len);

	cr_assert_not_null(nl);
	return (size_t)(nl - buf) + 1;
}

/* ---------------------------------------------------------------- */
/* State file: encoding                                             */

Test(state_encode, round_trip)
{
	json_t *doc = sample_doc(), *back = NULL;
	char err[256] = "";
	size_t len;
	char *buf = state_encode(doc, &len);

	cr_assert_not_null(buf);
	cr_assert_eq(decode_n(buf, len, &back, err, sizeof(err)), 0, "%s", err);
	cr_assert(json_equal(doc, back));
	cr_assert_eq(back->refcount, 1);
	json_decref(back);
	json_decref(doc);
	free(buf);
}

Test(state_encode, exact_bytes)
{
	json_t *doc = json_pack("{s:i,s:[s]}", "b", 2, "a", "x");
	const char *body = "{\"a\":[\"x\"],\"b\":2}";
	char want[128];
	size_t len;
	char *buf = state_encode(doc, &len);

	cr_assert_not_null(buf);
	snprintf(want, sizeof(want), "iofence-state 1 %zu %08x\n%s",
		 strlen(body), crc_of(body, strlen(body)), body);
	cr_assert_eq(len, strlen(want));
	cr_assert(memcmp(buf, want, len) == 0, "got '%.*s', want '%s'",
		  (int)len, buf, want);
	/* Terminated for logging, but not counted. */
	cr_assert_eq(buf[len], '\0');
	json_decref(doc);
	free(buf);
}

Test(state_encode, known_crc)
{
	/* zlib's CRC-32 of "{}", pinned so the checksum cannot drift. */
	json_t *doc = json_object();
	size_t len;
	char *buf = state_encode(doc, &len);

	cr_assert_not_null(buf);
	cr_assert_str_eq(buf, "iofence-state 1 2 a3a6bf43\n{}");
	json_decref(doc);
	free(buf);
}

Test(state_encode, key_order_does_not_matter)
{
	json_t *a = json_loads("{\"x\":1,\"y\":{\"q\":1,\"p\":2},\"a\":3}", 0,
			       NULL);
	json_t *b = json_loads("{\"a\":3,\"y\":{\"p\":2,\"q\":1},\"x\":1}", 0,
			       NULL);
	size_t la, lb;
	char *ba = state_encode(a, &la), *bb = state_encode(b, &lb);

	cr_assert_not_null(ba);
	cr_assert_not_null(bb);
	cr_assert_eq(la, lb);
	cr_assert(memcmp(ba, bb, la) == 0);
	free(ba);
	free(bb);
	json_decref(a);
	json_decref(b);
}

Test(state_encode, doc_is_borrowed)
{
	json_t *doc = sample_doc();
	size_t len;
	char *buf = state_encode(doc, &len);

	cr_assert_not_null(buf);
	cr_assert_eq(doc->refcount, 1);
	json_decref(doc);
	free(buf);
}

Test(state_encode, refuses_non_objects)
{
	json_t *bad[] = { json_array(), json_integer(1), json_string("s"),
			  json_null() };
	size_t len = 12345;

	errno = 0;
	cr_assert_null(state_encode(NULL, &len));
	cr_assert_eq(errno, EINVAL);
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 0;
		cr_assert_null(state_encode(bad[i], &len));
		cr_assert_eq(errno, EINVAL);
		json_decref(bad[i]);
	}
	cr_assert_eq(len, 12345);
}

Test(state_encode, refuses_oversized_body)
{
	/* {"s":"..."} is 8 bytes around the string. */
	size_t n = STATE_FILE_MAX - 8 + 1;
	char *s = malloc(n + 1);
	json_t *doc;
	size_t len;

	cr_assert_not_null(s);
	memset(s, 'x', n);
	s[n] = '\0';
	doc = json_pack("{s:s}", "s", s);
	cr_assert_not_null(doc);
	errno = 0;
	cr_assert_null(state_encode(doc, &len));
	cr_assert_eq(errno, EFBIG);
	json_decref(doc);
	free(s);
}

Test(state_encode, largest_body_round_trips)
{
	size_t n = STATE_FILE_MAX - 8;
	char *s = malloc(n + 1), *buf, err[256] = "";
	json_t *doc, *back = NULL;
	size_t len;

	cr_assert_not_null(s);
	memset(s, 'x', n);
	s[n] = '\0';
	doc = json_pack("{s:s}", "s", s);
	buf = state_encode(doc, &len);
	cr_assert_not_null(buf);
	cr_assert_eq(len - body_off(buf, len), STATE_FILE_MAX);
	cr_assert_eq(state_decode(buf, len, &back, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert(json_equal(doc, back));
	json_decref(back);
	json_decref(doc);
	free(buf);
	free(s);
}

/* ---------------------------------------------------------------- */
/* State file: decoding what is wrong                               */

Test(state_decode, empty_input)
{
	json_t *doc = (json_t *)1;
	char err[64] = "";

	cr_assert_eq(state_decode(NULL, 0, &doc, err, sizeof(err)), -EINVAL);
	cr_assert_null(doc);
	cr_assert_str_eq(err, "empty input");
	expect_reject("", 0, "empty input");
}

Test(state_decode, bad_magic)
{
	static const char *const cases[] = {
		"{}",
		"iofence-stat 1 2 a3a6bf43\n{}",
		"IOFENCE-STATE 1 2 a3a6bf43\n{}",
		"iofence-state\t1 2 a3a6bf43\n{}",
		"iofence-state1 2 a3a6bf43\n{}",
		" iofence-state 1 2 a3a6bf43\n{}",
		"\n",
		"x",
	};

	for (size_t i = 0; i < ARRAY_SIZE(cases); i++)
		expect_reject(cases[i], strlen(cases[i]), "bad magic");
	/* Binary junk, NULs included. */
	expect_reject(LIT("\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), "bad magic");
}

Test(state_decode, header_without_newline)
{
	char junk[4096];

	expect_reject(LIT("iofence-state 1 2 a3a6bf43"),
		      "header without newline");
	expect_reject(LIT("iofence-state 1 2 a3a6bf43{}"),
		      "header without newline");
	expect_reject(LIT("iofence-state "), "header without newline");
	/* A prefix of the magic is a torn file, not a foreign one. */
	expect_reject(LIT("iofence-st"), "header without newline");
	/* The search for the newline stops early on a long first line. */
	memcpy(junk, "iofence-state ", 14);
	memset(junk + 14, '1', sizeof(junk) - 15);
	junk[sizeof(junk) - 1] = '\n';
	expect_reject(junk, sizeof(junk), "header without newline");
}

Test(state_decode, unknown_version)
{
	expect_frame_reject("2", NULL, NULL, "{}", "unknown version '2'");
	expect_frame_reject("0", NULL, NULL, "{}", "unknown version '0'");
	expect_frame_reject("11", NULL, NULL, "{}", "unknown version '11'");
	expect_frame_reject("99999999999999999999999", NULL, NULL, "{}",
			    "unknown version");
	/* Named even when the rest of the header is of a layout to come. */
	expect_reject(LIT("iofence-state 2\n{}"), "unknown version '2'");
	expect_reject(LIT("iofence-state 2 whatever\n{}"),
		      "unknown version '2'");
}

Test(state_decode, bad_version)
{
	static const char *const vers[] = { "x",  "-1",	 "+1",	"01",
					    "1x", "0x1", "1.0", "" };

	for (size_t i = 0; i < ARRAY_SIZE(vers); i++)
		expect_frame_reject(vers[i], NULL, NULL, "{}", "version");
	expect_reject(LIT("iofence-state 1\n{}"), "length and crc missing");
}

Test(state_decode, bad_length)
{
	static const char *const lens[] = { "x",   "-2",  "+2", "02",  "2x",
					    "0x2", "2.0", "",	"1e1", " 2" };

	for (size_t i = 0; i < ARRAY_SIZE(lens); i++)
		expect_frame_reject(NULL, lens[i], NULL, "{}", "length");
	expect_reject(LIT("iofence-state 1 2\n{}"), "crc missing");
}

Test(state_decode, oversized_length)
{
	char len[32];

	snprintf(len, sizeof(len), "%d", STATE_FILE_MAX + 1);
	expect_frame_reject(NULL, len, NULL, "{}", "exceeds the limit");
	expect_frame_reject(NULL, "4294967298", NULL, "{}",
			    "exceeds the limit");
	expect_frame_reject(NULL, "18446744073709551618", NULL, "{}",
			    "exceeds the limit");
	expect_frame_reject(NULL, "99999999999999999999999999999999", NULL,
			    "{}", "exceeds the limit");
	/* At the limit the length is believed, and found not to match. */
	snprintf(len, sizeof(len), "%d", STATE_FILE_MAX);
	expect_frame_reject(NULL, len, NULL, "{}", "length mismatch");
}

Test(state_decode, bad_crc_field)
{
	static const char *const crcs[] = {
		"1D12FA4D", "1d12fa4",	 "a3a6bf430", "1d12fa4g",
		"",	    "0x1d12fa4", " a3a6bf43", "a3a6bf43 ",
	};

	for (size_t i = 0; i < ARRAY_SIZE(crcs); i++)
		expect_frame_reject(NULL, NULL, crcs[i], "{}", "crc");
}

Test(state_decode, crc_mismatch_message)
{
	json_t *doc = NULL;
	char err[256] = "";
	size_t n;
	char *buf = frame(NULL, NULL, "1a2b3c4d", LIT("{}"), &n);

	cr_assert_eq(decode_n(buf, n, &doc, err, sizeof(err)), -EINVAL);
	cr_assert_null(doc);
	cr_assert_str_eq(err, "crc mismatch: header 1a2b3c4d, body a3a6bf43");
	free(buf);
}

Test(state_decode, length_mismatch)
{
	size_t n;
	char *buf = encode_sample(&n), *longer;

	/* One byte short of what the header promises. */
	expect_reject(buf, n - 1, "truncated");
	/* Anything after the body, even only a newline. */
	longer = malloc(n + 1);
	cr_assert_not_null(longer);
	memcpy(longer, buf, n);
	longer[n] = '\n';
	expect_reject(longer, n + 1, "trailing bytes");
	longer[n] = '\0';
	expect_reject(longer, n + 1, "length mismatch");
	free(longer);
	free(buf);
	/* A header with no body after it at all. */
	expect_reject(LIT("iofence-state 1 2 a3a6bf43\n"), "truncated");
}

Test(state_decode, body_not_an_object)
{
	static const char *const bodies[] = { "[]",   "[{}]", "1",   "\"s\"",
					      "null", "true", "-0.5" };

	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++)
		expect_frame_reject(NULL, NULL, NULL, bodies[i],
				    "not a JSON object");
}

Test(state_decode, body_not_json)
{
	/* Correctly framed, so only the parser can tell. */
	static const char *const bodies[] = {
		"",	      "{",	  "{\"a\":}",
		"{}{}",	      "{} x",	  "{'a':1}",
		"{\"a\":1,}", "\xff\xfe", "{\"a\":\"\xc3\"}",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++)
		expect_frame_reject(NULL, NULL, NULL, bodies[i], "body: ");
	expect_frame_reject(NULL, NULL, NULL, "{\"a\":1,\"a\":2}", "duplicate");
}

Test(state_decode, body_with_nul)
{
	size_t n;
	char *buf = frame(NULL, NULL, NULL, LIT("{\"a\":\"x\0y\"}"), &n);

	expect_reject(buf, n, "body: ");
	free(buf);
	buf = frame(NULL, NULL, NULL, LIT("{\"a\":\"\\u0000\"}"), &n);
	expect_reject(buf, n, "body: ");
	free(buf);
}

Test(state_decode, every_bit_flip_in_body_is_a_crc_mismatch)
{
	size_t n;
	char *buf = encode_sample(&n);
	size_t off = body_off(buf, n);

	for (size_t i = off; i < n; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (char)(1 << bit);
			expect_reject(buf, n, "crc mismatch: header ");
			buf[i] ^= (char)(1 << bit);
		}
	}
	free(buf);
}

Test(state_decode, every_bit_flip_in_header_is_caught)
{
	/*
	 * The CRC does not cover the header; only its strict syntax does.
	 * Each field has one spelling, so no flip yields the same file.
	 */
	size_t n;
	char *buf = encode_sample(&n);
	size_t off = body_off(buf, n);
	json_t *doc = (json_t *)1;
	char err[256];

	for (size_t i = 0; i < off; i++) {
		for (int bit = 0; bit < 8; bit++) {
			buf[i] ^= (char)(1 << bit);
			err[0] = '\0';
			cr_assert_eq(decode_n(buf, n, &doc, err, sizeof(err)),
				     -EINVAL, "flip of bit %d at %zu accepted",
				     bit, i);
			cr_assert_null(doc);
			cr_assert_neq(err[0], '\0');
			buf[i] ^= (char)(1 << bit);
		}
	}
	free(buf);
}

Test(state_decode, every_truncation_is_rejected)
{
	size_t n;
	char *buf = encode_sample(&n);

	for (size_t i = 0; i < n; i++) {
		json_t *doc = (json_t *)1;
		char err[256] = "";

		cr_assert_eq(decode_n(buf, i, &doc, err, sizeof(err)), -EINVAL,
			     "torn at %zu of %zu accepted", i, n);
		cr_assert_null(doc);
		cr_assert_neq(err[0], '\0', "no reason given at %zu", i);
	}
	free(buf);
}

Test(state_decode, error_buffer_is_optional_and_bounded)
{
	json_t *doc = (json_t *)1;
	char err[8];

	cr_assert_eq(state_decode(LIT("junk"), &doc, NULL, 0), -EINVAL);
	cr_assert_null(doc);
	memset(err, 'z', sizeof(err));
	cr_assert_eq(state_decode(LIT("junk"), &doc, err, sizeof(err)),
		     -EINVAL);
	cr_assert_eq(err[sizeof(err) - 1], '\0');
	cr_assert_eq(strlen(err), sizeof(err) - 1);
	/* Zero length leaves the buffer alone. */
	memset(err, 'z', sizeof(err));
	cr_assert_eq(state_decode(LIT("junk"), &doc, err, 0), -EINVAL);
	cr_assert_eq(err[0], 'z');
}

/* ---------------------------------------------------------------- */
/* State file: memory                                               */

Test(state_leak, every_path_frees_everything, .init = counting_init,
     .fini = counting_fini)
{
	static const char *const bodies[] = {
		"{}",
		"[]",
		"{\"a\":[1,2,{\"b\":\"c\"}]}",
		"{\"a\":1,\"a\":2}",
		"{\"a\":[1,2,{\"b\":",
		"\"s\"",
	};

	for (size_t i = 0; i < ARRAY_SIZE(bodies); i++) {
		json_t *doc = NULL;
		char err[256];
		size_t n;
		char *buf = frame(NULL, NULL, NULL, bodies[i],
				  strlen(bodies[i]), &n);

		decode_n(buf, n, &doc, err, sizeof(err));
		json_decref(doc);
		free(buf);
		cr_assert_eq(live_allocs, 0, "leak after '%s'", bodies[i]);
	}
}

Test(state_oom, encode, .init = counting_init, .fini = counting_fini)
{
	for (long n = 0;; n++) {
		json_t *doc = sample_doc();
		size_t len;
		char *buf;
		int failed;

		fail_after(n);
		errno = 0;
		buf = state_encode(doc, &len);
		failed = alloc_failed;
		fail_after(-1);
		if (!buf) {
			cr_assert(failed);
			cr_assert_eq(errno, ENOMEM);
		}
		free(buf);
		json_decref(doc);
		cr_assert_eq(live_allocs, 0, "failing allocation %ld leaks", n);
		if (!failed) {
			cr_assert_not_null(buf);
			break;
		}
	}
}

/*
 * jansson 2.14 abort()s (assertion in lex_unget_unsave()) when an
 * allocation fails while it lexes a number of more than 15 characters, so
 * this document keeps its numbers short; all else is as in sample_doc().
 */
static json_t *oom_doc(void)
{
	json_t *doc = sample_doc();

	json_object_set_new(doc, "big", json_integer(123456789));
	return doc;
}

Test(state_oom, decode, .init = counting_init, .fini = counting_fini)
{
	json_t *src = oom_doc();
	size_t len;
	char *buf = state_encode(src, &len);

	cr_assert_not_null(buf);
	json_decref(src);
	cr_assert_eq(live_allocs, 0);
	for (long n = 0;; n++) {
		json_t *doc = NULL;
		char err[256] = "";
		int rc, failed;

		fail_after(n);
		rc = decode_n(buf, len, &doc, err, sizeof(err));
		failed = alloc_failed;
		fail_after(-1);
		if (rc) {
			/*
			 * jansson's lexer reports some failed allocations
			 * as syntax errors, so -EINVAL is possible too; what
			 * matters here is no crash and no leak.
			 */
			cr_assert(failed, "allocation %ld: %s", n, err);
			cr_assert(rc == -ENOMEM || rc == -EINVAL,
				  "allocation %ld: rc %d", n, rc);
			cr_assert_null(doc);
		} else {
			json_t *want = oom_doc();

			cr_assert(json_equal(doc, want));
			json_decref(want);
		}
		json_decref(doc);
		cr_assert_eq(live_allocs, 0, "failing allocation %ld leaks", n);
		if (!failed)
			break;
	}
	free(buf);
}

/* ---------------------------------------------------------------- */
/* Journal helpers                                                  */

static uint64_t seq_of(const json_t *msg)
{
	json_t *seq = json_object_get(msg, "seq");

	cr_assert(json_is_integer(seq));
	return (uint64_t)json_integer_value(seq);
}

static json_t *add(struct journal *j, uint64_t want_seq)
{
	json_t *msg =
		journal_add(j, "FENCE_FIRED",
			    json_pack("{s:I}", "n", (json_int_t)want_seq));

	cr_assert_not_null(msg);
	cr_assert_eq(seq_of(msg), want_seq);
	return msg;
}

static void fill(struct journal *j, uint64_t n)
{
	for (uint64_t i = 1; i <= n; i++)
		add(j, i);
}

/* Asserts the events after @since are exactly @first..@last. */
static void expect_since(const struct journal *j, uint64_t since,
			 uint64_t first, uint64_t last, bool want_lost)
{
	bool lost = !want_lost;
	json_t *arr = journal_since(j, since, &lost);
	size_t i;
	json_t *ev;

	cr_assert_not_null(arr);
	cr_assert(json_is_array(arr));
	cr_assert_eq(lost, want_lost, "since %" PRIu64 ": lost %d", since,
		     lost);
	cr_assert_eq(json_array_size(arr), last >= first ? last - first + 1 : 0,
		     "since %" PRIu64 ": %zu events", since,
		     json_array_size(arr));
	json_array_foreach(arr, i, ev) {
		cr_assert_eq(seq_of(ev), first + i);
		/* Shared with the journal, not copied. */
		cr_assert_eq(ev->refcount, 2);
	}
	json_decref(arr);
}

/* The journal's whole content, to tell it was left alone. */
static char *snapshot(const struct journal *j)
{
	json_t *saved = journal_save(j);
	char *s;

	cr_assert_not_null(saved);
	s = json_dumps(saved, JSON_COMPACT | JSON_SORT_KEYS);
	cr_assert_not_null(s);
	json_decref(saved);
	return s;
}

static json_t *event_json(uint64_t seq)
{
	return json_pack("{s:s,s:I,s:{},s:{s:I,s:I}}", "event", "E", "seq",
			 (json_int_t)seq, "data", "timestamp", "seconds",
			 (json_int_t)1700000000, "microseconds", (json_int_t)5);
}

/* ---------------------------------------------------------------- */
/* Journal: adding and reading                                      */

Test(journal, starts_empty)
{
	struct journal j;
	json_t *saved;

	journal_init(&j);
	cr_assert_eq(j.next_seq, 1);
	cr_assert_eq(journal_last_seq(&j), 0);
	expect_since(&j, 0, 1, 0, false);
	expect_since(&j, 5, 1, 0, false);
	saved = journal_save(&j);
	cr_assert_eq(json_object_size(saved), 2);
	cr_assert_eq(json_integer_value(json_object_get(saved, "next_seq")), 1);
	cr_assert_eq(json_array_size(json_object_get(saved, "events")), 0);
	json_decref(saved);
	journal_free(&j);
}

Test(journal, add_builds_the_event_message)
{
	struct journal j;
	json_t *data = json_pack("{s:s}", "storage", "/dev/sdb");
	json_t *msg, *ts;
	struct timespec before, after;
	int64_t t, lo, hi;

	journal_init(&j);
	json_incref(data);
	clock_gettime(CLOCK_REALTIME, &before);
	msg = journal_add(&j, "FENCE_FIRED", data);
	clock_gettime(CLOCK_REALTIME, &after);
	cr_assert_not_null(msg);
	cr_assert_eq(json_object_size(msg), 4);
	cr_assert_str_eq(json_string_value(json_object_get(msg, "event")),
			 "FENCE_FIRED");
	cr_assert_eq(seq_of(msg), 1);
	cr_assert_eq(json_object_get(msg, "data"), data);
	/* Stolen: one reference ours, one the message's. */
	cr_assert_eq(data->refcount, 2);
	json_decref(data);

	ts = json_object_get(msg, "timestamp");
	cr_assert_eq(json_object_size(ts), 2);
	t = json_integer_value(json_object_get(ts, "seconds")) * 1000000 +
	    json_integer_value(json_object_get(ts, "microseconds"));
	lo = (int64_t)before.tv_sec * 1000000 + before.tv_nsec / 1000;
	hi = (int64_t)after.tv_sec * 1000000 + after.tv_nsec / 1000;
	cr_assert(t >= lo && t <= hi,
		  "timestamp %" PRId64 " not in [%" PRId64 ", %" PRId64 "]", t,
		  lo, hi);
	cr_assert_lt(json_integer_value(json_object_get(ts, "microseconds")),
		     1000000);

	/* Borrowed: the journal holds the only reference. */
	cr_assert_eq(msg->refcount, 1);
	cr_assert_eq(journal_last_seq(&j), 1);
	journal_free(&j);
}

Test(journal, add_without_data)
{
	struct journal j;
	json_t *msg;

	journal_init(&j);
	msg = journal_add(&j, "HOST_STATE", NULL);
	cr_assert_not_null(msg);
	cr_assert(json_is_object(json_object_get(msg, "data")));
	cr_assert_eq(json_object_size(json_object_get(msg, "data")), 0);
	journal_free(&j);
}

Test(journal, failed_add_uses_no_number)
{
	struct journal j;
	json_t *data = json_pack("{s:i}", "a", 1);

	journal_init(&j);
	add(&j, 1);
	/* A NULL name makes the message impossible to build. */
	cr_assert_null(journal_add(&j, NULL, data));
	cr_assert_eq(journal_last_seq(&j), 1);
	add(&j, 2);
	expect_since(&j, 0, 1, 2, false);
	journal_free(&j);
}

Test(journal, sequence_numbers_grow)
{
	struct journal j;

	journal_init(&j);
	fill(&j, 10);
	cr_assert_eq(journal_last_seq(&j), 10);
	cr_assert_eq(j.count, 10);
	expect_since(&j, 0, 1, 10, false);
	journal_free(&j);
}

Test(journal, since_before_wrap)
{
	struct journal j;

	journal_init(&j);
	fill(&j, 20);
	expect_since(&j, 0, 1, 20, false);
	expect_since(&j, 7, 8, 20, false);
	expect_since(&j, 19, 20, 20, false);
	expect_since(&j, 20, 1, 0, false);
	expect_since(&j, 21, 1, 0, false);
	expect_since(&j, 1000, 1, 0, false);
	expect_since(&j, UINT64_MAX, 1, 0, false);
	journal_free(&j);
}

Test(journal, exactly_full)
{
	struct journal j;

	journal_init(&j);
	fill(&j, JOURNAL_MAX);
	cr_assert_eq(j.count, JOURNAL_MAX);
	expect_since(&j, 0, 1, JOURNAL_MAX, false);
	add(&j, JOURNAL_MAX + 1);
	cr_assert_eq(j.count, JOURNAL_MAX);
	expect_since(&j, 0, 2, JOURNAL_MAX + 1, true);
	expect_since(&j, 1, 2, JOURNAL_MAX + 1, false);
	journal_free(&j);
}

Test(journal, wrap_around)
{
	const uint64_t total = 3 * JOURNAL_MAX + 7;
	const uint64_t oldest = total - JOURNAL_MAX + 1;
	struct journal j;

	journal_init(&j);
	fill(&j, total);
	cr_assert_eq(j.count, JOURNAL_MAX);
	cr_assert_eq(journal_last_seq(&j), total);

	expect_since(&j, 0, oldest, total, true);
	expect_since(&j, 1, oldest, total, true);
	/* The last number whose successor was dropped. */
	expect_since(&j, oldest - 2, oldest, total, true);
	/* The successor is the oldest kept: nothing missed. */
	expect_since(&j, oldest - 1, oldest, total, false);
	expect_since(&j, oldest, oldest + 1, total, false);
	expect_since(&j, oldest + 100, oldest + 101, total, false);
	expect_since(&j, total - 1, total, total, false);
	expect_since(&j, total, 1, 0, false);
	expect_since(&j, total + 1, 1, 0, false);
	expect_since(&j, UINT64_MAX, 1, 0, false);
	expect_since(&j, UINT64_MAX - 1, 1, 0, false);
	journal_free(&j);
}

Test(journal, wrap_keeps_every_message_once)
{
	struct journal j;

	journal_init(&j);
	for (uint64_t i = 1; i <= 2 * JOURNAL_MAX + 3; i++) {
		json_t *msg = add(&j, i);

		/* The borrowed message is the one the journal keeps. */
		cr_assert_eq(msg->refcount, 1);
		cr_assert_eq(j.count, i < JOURNAL_MAX ? i : JOURNAL_MAX);
		for (unsigned int k = 0; k < j.count; k++) {
			json_t *m = j.ring[(j.head + k) % JOURNAL_MAX];

			cr_assert_eq(seq_of(m), i - j.count + 1 + k);
		}
	}
	journal_free(&j);
}

Test(journal, lost_may_be_null)
{
	struct journal j;
	json_t *arr;

	journal_init(&j);
	fill(&j, JOURNAL_MAX + 5);
	arr = journal_since(&j, 0, NULL);
	cr_assert_eq(json_array_size(arr), JOURNAL_MAX);
	json_decref(arr);
	journal_free(&j);
}

Test(journal, since_outlives_dropped_events)
{
	struct journal j;
	json_t *arr;

	journal_init(&j);
	fill(&j, 3);
	arr = journal_since(&j, 0, NULL);
	/* Push all three out; the copies handed out must stay usable. */
	for (uint64_t i = 4; i <= JOURNAL_MAX + 3; i++)
		add(&j, i);
	cr_assert_eq(json_array_size(arr), 3);
	for (size_t i = 0; i < 3; i++) {
		json_t *ev = json_array_get(arr, i);

		cr_assert_eq(seq_of(ev), i + 1);
		cr_assert_eq(ev->refcount, 1);
	}
	json_decref(arr);
	journal_free(&j);
}

Test(journal, free_twice_and_reuse)
{
	struct journal j;

	journal_init(&j);
	fill(&j, JOURNAL_MAX + 1);
	journal_free(&j);
	journal_free(&j);
	cr_assert_eq(j.count, 0);
	cr_assert_eq(journal_last_seq(&j), 0);
	fill(&j, 2);
	journal_free(&j);
}

/* ---------------------------------------------------------------- */
/* Journal: save and load                                           */

Test(journal_persist, save_shape)
{
	struct journal j;
	json_t *saved, *events, *ev;
	size_t i;

	journal_init(&j);
	fill(&j, JOURNAL_MAX + 10);
	saved = journal_save(&j);
	cr_assert_not_null(saved);
	cr_assert_eq(json_object_size(saved), 2);
	cr_assert_eq(json_integer_value(json_object_get(saved, "next_seq")),
		     JOURNAL_MAX + 11);
	events = json_object_get(saved, "events");
	cr_assert_eq(json_array_size(events), JOURNAL_MAX);
	json_array_foreach(events, i, ev)
		cr_assert_eq(seq_of(ev), 11 + i);
	json_decref(saved);
	journal_free(&j);
}

Test(journal_persist, round_trip)
{
	struct journal a, b;
	json_t *saved;
	char err[256] = "";
	char *sa, *sb;

	journal_init(&a);
	journal_init(&b);
	fill(&a, 2 * JOURNAL_MAX + 17);
	saved = journal_save(&a);
	cr_assert_eq(journal_load(&b, saved, err, sizeof(err)), 0, "%s", err);
	json_decref(saved);

	sa = snapshot(&a);
	sb = snapshot(&b);
	cr_assert_str_eq(sa, sb);
	free(sa);
	free(sb);
	cr_assert_eq(journal_last_seq(&b), 2 * JOURNAL_MAX + 17);
	expect_since(&b, 0, JOURNAL_MAX + 18, 2 * JOURNAL_MAX + 17, true);
	expect_since(&b, JOURNAL_MAX + 17, JOURNAL_MAX + 18,
		     2 * JOURNAL_MAX + 17, false);

	/* Numbers carry on across the restart, and the ring keeps turning. */
	add(&b, 2 * JOURNAL_MAX + 18);
	expect_since(&b, 0, JOURNAL_MAX + 19, 2 * JOURNAL_MAX + 18, true);
	journal_free(&a);
	journal_free(&b);
}

Test(journal_persist, round_trip_through_state_file)
{
	struct journal a, b;
	json_t *doc, *back = NULL;
	char err[256] = "";
	char *buf, *sa, *sb;
	size_t len;

	journal_init(&a);
	journal_init(&b);
	fill(&a, JOURNAL_MAX + 3);
	doc = json_pack("{s:s,s:o}", "host_state", "up", "journal",
			journal_save(&a));
	buf = state_encode(doc, &len);
	cr_assert_not_null(buf);
	cr_assert_eq(decode_n(buf, len, &back, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(journal_load(&b, json_object_get(back, "journal"), err,
				  sizeof(err)),
		     0, "%s", err);
	sa = snapshot(&a);
	sb = snapshot(&b);
	cr_assert_str_eq(sa, sb);
	free(sa);
	free(sb);
	free(buf);
	json_decref(back);
	json_decref(doc);
	journal_free(&a);
	journal_free(&b);
}

Test(journal_persist, load_empty)
{
	struct journal j;
	json_t *saved =
		json_pack("{s:I,s:[]}", "next_seq", (json_int_t)1, "events");
	char err[256] = "";

	journal_init(&j);
	fill(&j, 3);
	cr_assert_eq(journal_load(&j, saved, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(j.count, 0);
	cr_assert_eq(journal_last_seq(&j), 0);
	expect_since(&j, 0, 1, 0, false);
	json_decref(saved);
	journal_free(&j);
}

Test(journal_persist, load_nothing_kept_but_numbers_used)
{
	struct journal j;
	json_t *saved =
		json_pack("{s:I,s:[]}", "next_seq", (json_int_t)5, "events");
	char err[256] = "";

	journal_init(&j);
	cr_assert_eq(journal_load(&j, saved, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(journal_last_seq(&j), 4);
	/* Events 1..4 happened and are gone. */
	expect_since(&j, 0, 1, 0, true);
	expect_since(&j, 3, 1, 0, true);
	expect_since(&j, 4, 1, 0, false);
	add(&j, 5);
	expect_since(&j, 3, 5, 5, true);
	expect_since(&j, 4, 5, 5, false);
	json_decref(saved);
	journal_free(&j);
}

Test(journal_persist, load_keeps_newest)
{
	struct journal j;
	json_t *events = json_array();
	json_t *saved;
	char err[256] = "";

	for (uint64_t i = 1; i <= JOURNAL_MAX + 44; i++)
		json_array_append_new(events, event_json(i));
	saved = json_pack("{s:I,s:o}", "next_seq", (json_int_t)JOURNAL_MAX + 45,
			  "events", events);
	journal_init(&j);
	cr_assert_eq(journal_load(&j, saved, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(j.count, JOURNAL_MAX);
	expect_since(&j, 0, 45, JOURNAL_MAX + 44, true);
	expect_since(&j, 44, 45, JOURNAL_MAX + 44, false);
	json_decref(saved);
	journal_free(&j);
}

Test(journal_persist, load_with_gaps)
{
	struct journal j;
	json_t *saved = json_pack("{s:I,s:[o,o,o]}", "next_seq",
				  (json_int_t)100, "events", event_json(10),
				  event_json(20), event_json(30));
	bool lost;
	json_t *arr;
	char err[256] = "";

	journal_init(&j);
	cr_assert_eq(journal_load(&j, saved, err, sizeof(err)), 0, "%s", err);
	/* The newest event that can be seen; numbers after it were never. */
	cr_assert_eq(journal_last_seq(&j), 30);
	cr_assert_eq(j.next_seq, 100, "numbering goes on past the gap");
	arr = journal_since(&j, 15, &lost);
	cr_assert_eq(json_array_size(arr), 2);
	cr_assert_eq(seq_of(json_array_get(arr, 0)), 20);
	cr_assert_not(lost);
	json_decref(arr);
	arr = journal_since(&j, 8, &lost);
	cr_assert_eq(json_array_size(arr), 3);
	cr_assert(lost);
	json_decref(arr);
	arr = journal_since(&j, 9, &lost);
	cr_assert_not(lost);
	json_decref(arr);
	add(&j, 100);
	json_decref(saved);
	journal_free(&j);
}

Test(journal_persist, load_copies)
{
	struct journal j;
	json_t *saved = json_pack("{s:I,s:[o]}", "next_seq", (json_int_t)2,
				  "events", event_json(1));
	json_t *ev = json_array_get(json_object_get(saved, "events"), 0);
	json_t *arr;
	char err[256] = "";

	journal_init(&j);
	cr_assert_eq(journal_load(&j, saved, err, sizeof(err)), 0, "%s", err);
	/* Later changes to the document do not reach the journal. */
	json_object_set_new(ev, "seq", json_integer(77));
	json_object_set_new(ev, "extra", json_true());
	arr = journal_since(&j, 0, NULL);
	cr_assert_eq(json_array_size(arr), 1);
	cr_assert_neq(json_array_get(arr, 0), ev);
	cr_assert_eq(seq_of(json_array_get(arr, 0)), 1);
	cr_assert_null(json_object_get(json_array_get(arr, 0), "extra"));
	cr_assert_eq(saved->refcount, 1);
	json_decref(arr);
	json_decref(saved);
	journal_free(&j);
}

struct bad_load {
	const char *json;
	const char *want;
};

#define EV(seq)                                          \
	"{\"event\":\"E\",\"seq\":" #seq ",\"data\":{}," \
	"\"timestamp\":{\"seconds\":1,\"microseconds\":2}}"
#define EV_WITH(fields) "{\"event\":\"E\",\"seq\":1," fields "}"
#define TS_DATA "\"data\":{},"

static const struct bad_load bad_loads[] = {
	{ "[]", "journal: must be an object" },
	{ "\"x\"", "journal: must be an object" },
	{ "{}", "next_seq" },
	{ "{\"events\":[]}", "next_seq" },
	{ "{\"next_seq\":\"1\",\"events\":[]}", "next_seq" },
	{ "{\"next_seq\":0,\"events\":[]}", "next_seq" },
	{ "{\"next_seq\":-3,\"events\":[]}", "next_seq" },
	{ "{\"next_seq\":1.0,\"events\":[]}", "next_seq" },
	{ "{\"next_seq\":null,\"events\":[]}", "next_seq" },
	{ "{\"next_seq\":1}", "events" },
	{ "{\"next_seq\":1,\"events\":{}}", "events" },
	{ "{\"next_seq\":1,\"events\":null}", "events" },
	{ "{\"next_seq\":1,\"events\":[],\"x\":1}", "unknown field 'x'" },
	{ "{\"next_seq\":5,\"events\":[1]}", "events[0]: must be an object" },
	{ "{\"next_seq\":5,\"events\":[" EV(1) ",[]]}",
	  "events[1]: must be an object" },
	/* Each field missing, mistyped or out of range in turn. */
	{ "{\"next_seq\":5,\"events\":[{\"seq\":1,\"data\":{},"
	  "\"timestamp\":{\"seconds\":1,\"microseconds\":2}}]}",
	  "events[0].event" },
	{ "{\"next_seq\":5,\"events\":[{\"event\":7,\"seq\":1,\"data\":{},"
	  "\"timestamp\":{\"seconds\":1,\"microseconds\":2}}]}",
	  "events[0].event" },
	{ "{\"next_seq\":5,\"events\":[{\"event\":\"E\",\"data\":{},"
	  "\"timestamp\":{\"seconds\":1,\"microseconds\":2}}]}",
	  "events[0].seq" },
	{ "{\"next_seq\":5,\"events\":[" EV("1") "]}", "events[0].seq" },
	{ "{\"next_seq\":5,\"events\":[" EV(0) "]}", "events[0].seq" },
	{ "{\"next_seq\":5,\"events\":[" EV(-1) "]}", "events[0].seq" },
	{ "{\"next_seq\":5,\"events\":[" EV(1.5) "]}", "events[0].seq" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(
		  "\"timestamp\":{\"seconds\":1,\"microseconds\":2}") "]}",
	  "events[0].data" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(TS_DATA "\"t\":1") "]}",
	  "unknown field 't'" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH("\"data\":{}") "]}",
	  "events[0].timestamp" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(TS_DATA
						 "\"timestamp\":1") "]}",
	  "events[0].timestamp" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(
		  TS_DATA "\"timestamp\":{\"microseconds\":2}") "]}",
	  "events[0].timestamp.seconds" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(
		  TS_DATA
		  "\"timestamp\":{\"seconds\":\"1\",\"microseconds\":2}") "]}",
	  "events[0].timestamp.seconds" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(
		  TS_DATA "\"timestamp\":{\"seconds\":1}") "]}",
	  "events[0].timestamp.microseconds" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(
		  TS_DATA
		  "\"timestamp\":{\"seconds\":1,\"microseconds\":-1}") "]}",
	  "events[0].timestamp.microseconds" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(
		  TS_DATA "\"timestamp\":{\"seconds\":1,"
			  "\"microseconds\":1000000}") "]}",
	  "events[0].timestamp.microseconds" },
	{ "{\"next_seq\":5,\"events\":[" EV_WITH(
		  TS_DATA "\"timestamp\":{\"seconds\":1,\"microseconds\":2,"
			  "\"nanoseconds\":3}") "]}",
	  "events[0].timestamp: unknown field 'nanoseconds'" },
	/* Order and bounds of the numbers. */
	{ "{\"next_seq\":5,\"events\":[" EV(2) "," EV(2) "]}",
	  "events[1].seq" },
	{ "{\"next_seq\":5,\"events\":[" EV(3) "," EV(2) "]}",
	  "events[1].seq" },
	{ "{\"next_seq\":5,\"events\":[" EV(1) "," EV(5) "]}",
	  "events[1].seq: 5 is not below next_seq 5" },
	{ "{\"next_seq\":1,\"events\":[" EV(1) "]}",
	  "events[0].seq: 1 is not below next_seq 1" },
};

Test(journal_persist, load_rejects_malformed)
{
	for (size_t i = 0; i < ARRAY_SIZE(bad_loads); i++) {
		struct journal j;
		json_error_t jerr;
		json_t *saved =
			json_loads(bad_loads[i].json, JSON_DECODE_ANY, &jerr);
		char err[256] = "";
		char *before, *after;
		int rc;

		cr_assert_not_null(saved, "case %zu: %s", i, jerr.text);
		journal_init(&j);
		fill(&j, 5);
		before = snapshot(&j);
		rc = journal_load(&j, saved, err, sizeof(err));
		cr_assert_eq(rc, -EINVAL, "case %zu '%s' accepted", i,
			     bad_loads[i].json);
		cr_assert(strstr(err, bad_loads[i].want),
			  "case %zu: error '%s' does not name '%s'", i, err,
			  bad_loads[i].want);
		after = snapshot(&j);
		cr_assert_str_eq(before, after, "case %zu changed the journal",
				 i);
		/* Still working, and still counting from where it was. */
		add(&j, 6);
		free(before);
		free(after);
		json_decref(saved);
		journal_free(&j);
	}
}

Test(journal_persist, load_rejects_null)
{
	struct journal j;
	char err[256] = "";

	journal_init(&j);
	cr_assert_eq(journal_load(&j, NULL, err, sizeof(err)), -EINVAL);
	cr_assert_str_eq(err, "journal: must be an object");
	cr_assert_eq(journal_load(&j, NULL, NULL, 0), -EINVAL);
	journal_free(&j);
}

Test(journal_persist, load_checks_events_it_would_drop)
{
	/* A bad old event is corruption, even though it would be dropped. */
	struct journal j;
	json_t *events = json_array();
	json_t *saved;
	char err[256] = "";

	for (uint64_t i = 1; i <= JOURNAL_MAX + 10; i++)
		json_array_append_new(events, event_json(i));
	json_object_del(json_array_get(events, 3), "data");
	saved = json_pack("{s:I,s:o}", "next_seq", (json_int_t)JOURNAL_MAX + 11,
			  "events", events);
	journal_init(&j);
	cr_assert_eq(journal_load(&j, saved, err, sizeof(err)), -EINVAL);
	cr_assert(strstr(err, "events[3].data"), "%s", err);
	cr_assert_eq(j.count, 0);
	json_decref(saved);
	journal_free(&j);
}

/* ---------------------------------------------------------------- */
/* Journal: memory                                                  */

Test(journal_leak, every_path_frees_everything, .init = counting_init,
     .fini = counting_fini)
{
	struct journal j;
	json_t *arr, *saved;
	char err[256];

	journal_init(&j);
	fill(&j, 2 * JOURNAL_MAX + 1);
	arr = journal_since(&j, 0, NULL);
	json_decref(arr);
	saved = journal_save(&j);
	cr_assert_eq(journal_load(&j, saved, err, sizeof(err)), 0);
	json_decref(saved);
	for (size_t i = 0; i < ARRAY_SIZE(bad_loads); i++) {
		saved = json_loads(bad_loads[i].json, JSON_DECODE_ANY, NULL);
		journal_load(&j, saved, err, sizeof(err));
		json_decref(saved);
	}
	journal_free(&j);
	cr_assert_eq(live_allocs, 0, "%ld jansson allocations leaked",
		     live_allocs);
}

Test(journal_oom, add, .init = counting_init, .fini = counting_fini)
{
	for (long n = 0;; n++) {
		struct journal j;
		json_t *msg;
		int failed;

		journal_init(&j);
		fill(&j, JOURNAL_MAX);
		fail_after(n);
		msg = journal_add(&j, "E", json_pack("{s:[i]}", "a", 1));
		failed = alloc_failed;
		fail_after(-1);
		if (msg) {
			cr_assert_eq(journal_last_seq(&j), JOURNAL_MAX + 1);
			expect_since(&j, 0, 2, JOURNAL_MAX + 1, true);
		} else {
			cr_assert(failed);
			cr_assert_eq(journal_last_seq(&j), JOURNAL_MAX);
			expect_since(&j, 0, 1, JOURNAL_MAX, false);
		}
		journal_free(&j);
		cr_assert_eq(live_allocs, 0, "failing allocation %ld leaks", n);
		if (!failed)
			break;
	}
}

Test(journal_oom, since_and_save, .init = counting_init, .fini = counting_fini)
{
	struct journal j;

	journal_init(&j);
	fill(&j, 40);
	for (long n = 0;; n++) {
		json_t *arr, *saved;
		int failed;

		fail_after(n);
		arr = journal_since(&j, 10, NULL);
		saved = journal_save(&j);
		failed = alloc_failed;
		fail_after(-1);
		if (arr)
			cr_assert_eq(json_array_size(arr), 30);
		if (saved)
			cr_assert_eq(json_array_size(
					     json_object_get(saved, "events")),
				     40);
		cr_assert(failed || (arr && saved));
		json_decref(arr);
		json_decref(saved);
		/* Only the journal's own messages are left. */
		for (unsigned int k = 0; k < j.count; k++)
			cr_assert_eq(
				j.ring[(j.head + k) % JOURNAL_MAX]->refcount,
				1);
		if (!failed)
			break;
	}
	journal_free(&j);
	cr_assert_eq(live_allocs, 0);
}

Test(journal_oom, load, .init = counting_init, .fini = counting_fini)
{
	struct journal src;
	json_t *saved;

	journal_init(&src);
	fill(&src, 20);
	saved = journal_save(&src);
	journal_free(&src);
	cr_assert_not_null(saved);

	for (long n = 0;; n++) {
		struct journal j;
		char err[256] = "";
		int rc, failed;

		journal_init(&j);
		fill(&j, 2);
		fail_after(n);
		rc = journal_load(&j, saved, err, sizeof(err));
		failed = alloc_failed;
		fail_after(-1);
		if (rc) {
			cr_assert_eq(rc, -ENOMEM, "allocation %ld: %s", n, err);
			cr_assert_eq(journal_last_seq(&j), 2);
			expect_since(&j, 0, 1, 2, false);
		} else {
			cr_assert_eq(journal_last_seq(&j), 20);
			expect_since(&j, 0, 1, 20, false);
		}
		journal_free(&j);
		if (!failed)
			break;
	}
	json_decref(saved);
	cr_assert_eq(live_allocs, 0);
}

Test(journal, held_events_are_hidden_until_released_or_dropped)
{
	struct journal j;
	json_t *arr, *a, *b;
	bool lost;

	journal_init(&j);
	journal_add(&j, "SHOWN", NULL);
	a = journal_add_held(&j, "HELD_A", NULL);
	b = journal_add_held(&j, "HELD_B", NULL);
	cr_assert(a && b);
	arr = journal_since(&j, 0, &lost);
	cr_expect_eq(json_array_size(arr), 1, "held events are not shown");
	json_decref(arr);
	cr_expect_eq(journal_last_seq(&j), 1);

	journal_release(&j, seq_of(a));
	journal_drop(&j, seq_of(b));
	arr = journal_since(&j, 0, &lost);
	cr_expect_eq(json_array_size(arr), 2);
	json_decref(arr);
	cr_expect_eq(journal_last_seq(&j), 2);
	cr_expect_eq(json_string_value(json_object_get(
			     journal_add(&j, "NEXT", NULL), "event")) != NULL,
		     1);
	cr_expect_eq(journal_last_seq(&j), 4,
		     "a dropped number is never reused");
	journal_free(&j);
}
