// SPDX-License-Identifier: GPL-2.0-only
/*
 * The protocol's line framing, as a connection takes its bytes: a
 * stream received in pieces of varying size into a linebuf, split into
 * lines, and each line parsed as a request (proto.c). The lines must be
 * exactly those of the stream, with a trailing CR removed; a line too
 * long for the buffer ends the stream, once the buffer grew as far as
 * it may (as ctl_server.c grows a connection's); and every error reply,
 * whatever bytes the line had, is one line of valid JSON.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "fuzz.h"
#include "linebuf.h"
#include "proto.h"

static bool blank(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return false;
	return true;
}

static void reply_line(json_t *msg)
{
	size_t len;
	char *line = proto_dump_line(msg, &len);

	FUZZ_CHECK(line);
	FUZZ_CHECK(memchr(line, '\n', len) == line + len - 1);
	free(line);
}

static void handle(char *line, size_t len)
{
	struct proto_request req;
	json_t *err;
	unsigned int pad = len % 8;

	if (blank(line, len))
		return;
	if (proto_parse_request(line, len, &req, &err))
		reply_line(err);
	else
		proto_request_free(&req);
	/*
	 * Any text of a request in an error's desc, cut at the desc's size
	 * anywhere, UTF-8 or not, still makes a reply.
	 */
	reply_line(proto_error(PROTO_GENERIC_ERROR, NULL, "%.*s%s", pad,
			       "        ", line));
}

/* Like ctl_server.c's inbuf_grow(): twice the room, up to @cap_max. */
static bool grow(struct linebuf *lb, size_t cap_max)
{
	size_t cap = 2 * lb->cap + 1;
	char *p;

	if (lb->cap >= cap_max)
		return false;
	if (cap > cap_max)
		cap = cap_max;
	p = realloc(lb->buf, cap + 1);
	FUZZ_CHECK(p);
	lb->buf = p;
	lb->cap = cap;
	return true;
}

static void frame(const uint8_t *data, size_t size, size_t max_line,
		  size_t cap_max)
{
	size_t fed = 0, off = 0; /* bytes given; start of the next line */
	const uint8_t *nl;
	struct linebuf lb;
	char *line, *space;
	size_t len, avail, n;
	int ret;

	FUZZ_CHECK(!linebuf_init(&lb, max_line));
	for (;;) {
		while ((ret = linebuf_next(&lb, &line, &len)) == 1) {
			size_t raw;

			nl = memchr(data + off, '\n', fed - off);
			FUZZ_CHECK(nl);
			raw = nl - (data + off);
			FUZZ_CHECK(raw < lb.cap);
			if (raw && data[off + raw - 1] == '\r')
				raw--;
			FUZZ_CHECK(len == raw);
			FUZZ_CHECK(!memcmp(line, data + off, len));
			FUZZ_CHECK(line[len] == '\0');
			handle(line, len);
			off = nl - data + 1;
		}
		if (ret) {
			FUZZ_CHECK(ret == -EMSGSIZE);
			FUZZ_CHECK(fed - off >= lb.cap);
			FUZZ_CHECK(!memchr(data + off, '\n', fed - off));
			if (grow(&lb, cap_max))
				continue;
			break;
		}
		FUZZ_CHECK(!memchr(data + off, '\n', fed - off));
		if (fed == size)
			break;
		space = linebuf_space(&lb, &avail);
		FUZZ_CHECK(avail > 0);
		/* Pieces of 1 to 64 bytes, as the stream itself says. */
		n = 1 + data[fed] % 64;
		if (n > avail)
			n = avail;
		if (n > size - fed)
			n = size - fed;
		memcpy(space, data + fed, n);
		linebuf_commit(&lb, n);
		fed += n;
	}
	linebuf_free(&lb);
}

int fuzz_linebuf(const uint8_t *data, size_t size)
{
	frame(data, size, 15, 255);
	frame(data, size, PROTO_MAX_LINE, PROTO_MAX_LINE + 1);
	return 0;
}
FUZZ_ENTRY(fuzz_linebuf);
