// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "state_file.h"
#include "errmsg.h"

#define DUMP_FLAGS (JSON_COMPACT | JSON_SORT_KEYS)
/*
 * Magic, one version and one length of at most 8 digits, the CRC and the
 * separators fit with room to spare; a newline further away than this
 * means the bytes were never a header.
 */
#define HEADER_MAX 64

static uint32_t body_crc(const char *body, size_t len)
{
	/* zlib takes a uInt, which STATE_FILE_MAX keeps us well below. */
	return (uint32_t)crc32(crc32(0L, Z_NULL, 0), (const Bytef *)body,
			       (uInt)len);
}

char *state_encode(json_t *doc, size_t *len)
{
	char header[HEADER_MAX];
	size_t body_len, hlen;
	char *buf;
	int n;

	/* Decode refuses anything else, so never write it. */
	if (!json_is_object(doc)) {
		errno = EINVAL;
		return NULL;
	}
	/* Sized first so the body is dumped once, straight into place. */
	body_len = json_dumpb(doc, NULL, 0, DUMP_FLAGS);
	if (!body_len) {
		errno = ENOMEM;
		return NULL;
	}
	if (body_len > STATE_FILE_MAX) {
		errno = EFBIG;
		return NULL;
	}
	/* The CRC is always 8 digits, so a zero stands in to size the header. */
	n = snprintf(header, sizeof(header), "%s %d %zu %08x\n",
		     STATE_FILE_MAGIC, STATE_FILE_VERSION, body_len, 0u);
	if (n < 0 || (size_t)n >= sizeof(header)) {
		errno = EOVERFLOW;
		return NULL;
	}
	hlen = (size_t)n;
	buf = malloc(hlen + body_len + 1);
	if (!buf)
		return NULL;
	if (json_dumpb(doc, buf + hlen, body_len, DUMP_FLAGS) != body_len) {
		free(buf);
		errno = ENOMEM;
		return NULL;
	}
	snprintf(header, sizeof(header), "%s %d %zu %08x\n", STATE_FILE_MAGIC,
		 STATE_FILE_VERSION, body_len, body_crc(buf + hlen, body_len));
	memcpy(buf, header, hlen);
	/* Not counted in *len; lets a caller log the buffer as a string. */
	buf[hlen + body_len] = '\0';
	*len = hlen + body_len;
	return buf;
}

/*
 * A decimal field as state_encode() writes it: digits only and no leading
 * zero, so that each value has exactly one spelling and a flipped bit in
 * the header cannot yield an equivalent one. Values beyond @max saturate
 * to @max + 1, which the caller reports.
 */
static const char *parse_dec(const char *p, const char *end, unsigned long max,
			     unsigned long *val)
{
	const char *start = p;
	unsigned long v = 0;

	while (p < end && *p >= '0' && *p <= '9') {
		if (v <= max)
			v = v * 10 + (unsigned long)(*p - '0');
		p++;
	}
	if (p == start || (*start == '0' && p - start > 1))
		return NULL;
	*val = v > max ? max + 1 : v;
	return p;
}

/* Lowercase only, as written, for the same reason as parse_dec(). */
static const char *parse_crc(const char *p, const char *end, uint32_t *val)
{
	uint32_t v = 0;
	int i;

	if (end - p < 8)
		return NULL;
	for (i = 0; i < 8; i++, p++) {
		if (*p >= '0' && *p <= '9')
			v = v << 4 | (uint32_t)(*p - '0');
		else if (*p >= 'a' && *p <= 'f')
			v = v << 4 | (uint32_t)(*p - 'a' + 10);
		else
			return NULL;
	}
	*val = v;
	return p;
}

/* For error messages: the header field at @p, up to a space or @end. */
static int field_len(const char *p, const char *end)
{
	const char *sp = memchr(p, ' ', (size_t)(end - p));

	return (int)((sp ? sp : end) - p);
}

int state_decode(const char *buf, size_t len, json_t **doc, char *err,
		 size_t errlen)
{
	const size_t mlen = strlen(STATE_FILE_MAGIC);
	const char *p, *q, *nl, *body;
	unsigned long version, length;
	uint32_t want, got;
	size_t body_len;
	json_error_t jerr;
	json_t *root;

	*doc = NULL;
	if (!buf || !len)
		return errmsg_invalid(err, errlen, "empty input");
	/* A short file that is a prefix of the magic is torn, not foreign. */
	if (memcmp(buf, STATE_FILE_MAGIC " ", len < mlen + 1 ? len : mlen + 1))
		return errmsg_invalid(err, errlen, "bad magic: not an %s file",
				      STATE_FILE_MAGIC);
	nl = memchr(buf, '\n', len < HEADER_MAX ? len : HEADER_MAX);
	if (!nl && len < HEADER_MAX)
		return errmsg_invalid(err, errlen, "header without newline");
	if (!nl)
		return errmsg_invalid(
			err, errlen,
			"header without newline in its first %d bytes",
			HEADER_MAX);
	p = buf + mlen + 1;

	q = parse_dec(p, nl, 1000000, &version);
	if (!q || (q != nl && *q != ' '))
		return errmsg_invalid(err, errlen,
				      "version: '%.*s' is not a number",
				      field_len(p, nl), p);
	/* Before the rest: a later version may lay the header out anew. */
	if (version != STATE_FILE_VERSION)
		return errmsg_invalid(err, errlen,
				      "unknown version '%.*s' (expected %d)",
				      (int)(q - p), p, STATE_FILE_VERSION);
	if (q == nl)
		return errmsg_invalid(err, errlen,
				      "header: length and crc missing");
	p = q + 1;

	q = parse_dec(p, nl, STATE_FILE_MAX, &length);
	if (!q || (q != nl && *q != ' '))
		return errmsg_invalid(err, errlen,
				      "length: '%.*s' is not a number",
				      field_len(p, nl), p);
	if (length > STATE_FILE_MAX)
		return errmsg_invalid(err, errlen,
				      "length: '%.*s' exceeds the limit of %d",
				      (int)(q - p), p, STATE_FILE_MAX);
	if (q == nl)
		return errmsg_invalid(err, errlen, "header: crc missing");
	p = q + 1;

	q = parse_crc(p, nl, &want);
	if (!q || q != nl)
		return errmsg_invalid(
			err, errlen,
			"crc: '%.*s' is not 8 lowercase hex digits",
			(int)(nl - p), p);

	body = nl + 1;
	body_len = len - (size_t)(body - buf);
	if (body_len != length)
		return errmsg_invalid(
			err, errlen,
			"length mismatch: header says %lu bytes, body has "
			"%zu (%s)",
			length, body_len,
			body_len < length ? "truncated" : "trailing bytes");
	got = body_crc(body, body_len);
	if (got != want)
		return errmsg_invalid(err, errlen,
				      "crc mismatch: header %08x, body %08x",
				      want, got);

	memset(&jerr, 0, sizeof(jerr));
	/* A duplicate key would leave it open which value was meant. */
	root = json_loadb(body, body_len,
			  JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	/*
	 * Must not pass for corruption, or the caller would discard the file.
	 * jansson reports a failed setup of its lexer with no text and no
	 * code at all, hence jerr zeroed above and the empty text too.
	 */
	if (!root && (json_error_code(&jerr) == json_error_out_of_memory ||
		      !jerr.text[0])) {
		errmsg_invalid(err, errlen, "body: out of memory");
		return -ENOMEM;
	}
	if (!root)
		return errmsg_invalid(err, errlen,
				      "body: %s at line %d column %d",
				      jerr.text, jerr.line, jerr.column);
	if (!json_is_object(root)) {
		json_decref(root);
		return errmsg_invalid(err, errlen, "body is not a JSON object");
	}
	*doc = root;
	return 0;
}
