// SPDX-License-Identifier: GPL-2.0-only
/*
 * The state file as the daemon reads it at start (persist_load(), then
 * load_state() and the re-arm of each stored storage): its frame, the
 * host state, the journal, and each storage's parameters. The state dir
 * is root's, but a torn write, a disk that flips bits or an admin's edit
 * make any bytes possible, and none may crash the start or be half
 * applied. What loads must save and load again unchanged.
 */
#include <errno.h>
#include <string.h>
#include <zlib.h>

#include "daemon.h"
#include "fuzz.h"
#include "journal.h"
#include "state_file.h"
#include "storage.h"

/* The frame: what decodes encodes again, and decodes the same. */
static void frame_again(json_t *doc)
{
	json_t *again = NULL;
	size_t len;
	char *buf, err[256];

	buf = state_encode(doc, &len);
	if (!buf) {
		FUZZ_CHECK(errno == ENOMEM || errno == EFBIG);
		return;
	}
	FUZZ_CHECK(!state_decode(buf, len, &again, err, sizeof(err)));
	FUZZ_CHECK(json_equal(doc, again));
	json_decref(again);
	free(buf);
}

static void journal_again(json_t *saved)
{
	static struct journal j, k;
	char err[256];
	json_t *copy, *list;
	bool lost;
	uint64_t last;

	journal_init(&j);
	journal_init(&k);
	if (journal_load(&j, saved, err, sizeof(err)))
		goto out;
	last = journal_last_seq(&j);
	list = journal_since(&j, 0, &lost);
	FUZZ_CHECK(list);
	FUZZ_CHECK(json_array_size(list) <= JOURNAL_MAX);
	json_decref(list);
	copy = journal_save(&j);
	FUZZ_CHECK(copy);
	FUZZ_CHECK(!journal_load(&k, copy, err, sizeof(err)));
	FUZZ_CHECK(journal_last_seq(&k) == last);
	json_decref(copy);
	/* Numbers only grow, also after a load. */
	if (j.next_seq < INT64_MAX) {
		json_t *ev = journal_add(&j, "FUZZ", NULL);

		FUZZ_CHECK(ev);
		FUZZ_CHECK((uint64_t)json_integer_value(
				   json_object_get(ev, "seq")) > last);
	}
out:
	journal_free(&j);
	journal_free(&k);
}

/* As the re-arm reads a stored storage; its params persist as they load. */
static void storage_again(json_t *entry, size_t i)
{
	const char *host =
		json_string_value(json_object_get(entry, "host_uuid"));
	struct storage_params p, q;
	struct args_err e;
	json_t *saved;

	if (host)
		(void)storage_uuid_valid(host);
	/* A refusal always says why: nothing of @e is left unset. */
	memset(&e, 0, sizeof(e));
	if (storage_params_parse(json_object_get(entry, "params"), i, &p, &e)) {
		FUZZ_CHECK(e.msg[0]);
		storage_params_free(&p);
		return;
	}
	saved = storage_params_json(&p);
	FUZZ_CHECK(saved);
	FUZZ_CHECK(!storage_params_parse(saved, i, &q, &e));
	FUZZ_CHECK(storage_params_equal(&p, &q));
	FUZZ_CHECK(p.connected == q.connected);
	json_decref(saved);
	storage_params_free(&p);
	storage_params_free(&q);
}

static void state_one(const uint8_t *data, size_t size)
{
	json_t *doc, *entry;
	enum host_state hs;
	const char *name;
	char err[256];
	size_t i;

	if (state_decode((const char *)data, size, &doc, err, sizeof(err))) {
		FUZZ_CHECK(!doc);
		FUZZ_CHECK(err[0]);
		return;
	}
	FUZZ_CHECK(json_is_object(doc));
	frame_again(doc);
	name = json_string_value(json_object_get(doc, "host_state"));
	if (name && !host_state_parse(name, &hs))
		FUZZ_CHECK(!strcmp(host_state_name(hs), name));
	if (json_object_get(doc, "journal"))
		journal_again(json_object_get(doc, "journal"));
	json_array_foreach(json_object_get(doc, "storages"), i, entry)
		storage_again(entry, i);
	json_decref(doc);
}

int fuzz_state(const uint8_t *data, size_t size)
{
	const uint8_t *nl = memchr(data, '\n', size);
	const uint8_t *body = nl ? nl + 1 : data;
	size_t len = size - (body - data), hlen;
	char header[64];
	uint8_t *buf;

	state_one(data, size);
	/*
	 * What follows the header again, framed with its right length and
	 * CRC: a fuzzer does not find CRCs, and the document, the journal
	 * and the storages lie behind one.
	 */
	hlen = snprintf(header, sizeof(header), "%s %d %zu %08lx\n",
			STATE_FILE_MAGIC, STATE_FILE_VERSION, len,
			crc32(crc32(0L, Z_NULL, 0), body, (uInt)len));
	buf = malloc(hlen + len);
	if (!buf)
		return 0;
	memcpy(buf, header, hlen);
	memcpy(buf + hlen, body, len);
	state_one(buf, hlen + len);
	free(buf);
	return 0;
}
FUZZ_ENTRY(fuzz_state);
