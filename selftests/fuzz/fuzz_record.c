// SPDX-License-Identifier: GPL-2.0-only
/*
 * A peer's heartbeat record is written by another host: every byte is
 * input. The decoders get it exactly as read (no padding, so a read past
 * the end is caught), and what they accept must survive re-encoding.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <zlib.h>

#include "fuzz.h"
#include "record.h"

static bool same_record(const struct record *a, const struct record *b)
{
	return a->size == b->size && a->state == b->state && a->seq == b->seq &&
	       a->realtime_ns == b->realtime_ns &&
	       a->monotonic_ns == b->monotonic_ns &&
	       !memcmp(a->boot_id, b->boot_id, sizeof(a->boot_id)) &&
	       a->interval_ms == b->interval_ms &&
	       a->timeout_ms == b->timeout_ms &&
	       a->fence_deadline_ms == b->fence_deadline_ms &&
	       !strcmp(a->host_uuid, b->host_uuid) &&
	       !strcmp(a->storage_uuid, b->storage_uuid) &&
	       a->nvms == b->nvms && a->vms_omitted == b->vms_omitted &&
	       !memcmp(a->vms, b->vms, (size_t)a->nvms * RECORD_VM_UUID_SIZE);
}

static void record_one(const uint8_t *data, size_t size)
{
	static uint8_t buf[RECORD_SIZE_MAX];
	static struct record r, again;
	char vm[37];

	if (record_decode(data, size, &r))
		return;
	FUZZ_CHECK(r.size <= size);
	FUZZ_CHECK(r.nvms <= record_vm_capacity(r.size));
	FUZZ_CHECK(strlen(r.host_uuid) <= RECORD_UUID_MAX);
	FUZZ_CHECK(strlen(r.storage_uuid) <= RECORD_UUID_MAX);
	FUZZ_CHECK(record_state_name(r.state) != NULL);
	for (unsigned int i = 0; i < r.nvms; i++) {
		uint8_t bin[RECORD_VM_UUID_SIZE];

		record_uuid_format(r.vms[i], vm);
		FUZZ_CHECK(!record_uuid_parse(vm, bin));
		FUZZ_CHECK(!memcmp(bin, r.vms[i], sizeof(bin)));
	}
	FUZZ_CHECK(!record_encode(&r, buf));
	FUZZ_CHECK(!record_decode(buf, r.size, &again));
	FUZZ_CHECK(same_record(&r, &again));
}

static void addrs_one(const uint8_t *data, size_t size)
{
	static uint8_t buf[RECORD_ADDRS_SIZE];
	char out[RECORD_ADDRS_TEXT_MAX + 1], again[RECORD_ADDRS_TEXT_MAX + 1];
	int ret;

	ret = record_addrs_decode(data, size, out, sizeof(out));
	if (ret)
		return;
	FUZZ_CHECK(strlen(out) <= RECORD_ADDRS_TEXT_MAX);
	FUZZ_CHECK(!record_addrs_encode(out, buf));
	FUZZ_CHECK(
		!record_addrs_decode(buf, sizeof(buf), again, sizeof(again)));
	FUZZ_CHECK(!strcmp(out, again));
	/* Too small an output is refused, never overrun. */
	if (out[0])
		FUZZ_CHECK(record_addrs_decode(data, size, again,
					       strlen(out)) == -ENOSPC);
}

/* What rados_getaddrs() returned, as the heartbeat turns it into a block. */
static void client_one(const uint8_t *data, size_t size)
{
	static uint8_t buf[RECORD_ADDRS_SIZE];
	char *client = malloc(size + 1);
	char out[RECORD_ADDRS_TEXT_MAX + 1], again[RECORD_ADDRS_TEXT_MAX + 1];
	size_t small = size % 16;

	if (!client)
		return;
	memcpy(client, data, size);
	client[size] = '\0';
	record_addrs_of_client(client, out, sizeof(out));
	FUZZ_CHECK(strlen(out) < sizeof(out));
	if (!record_addrs_encode(out, buf)) {
		FUZZ_CHECK(!record_addrs_decode(buf, sizeof(buf), again,
						sizeof(again)));
		FUZZ_CHECK(!strcmp(out, again));
	}
	/* A small output gets what fits, NUL-terminated, never more. */
	if (small) {
		record_addrs_of_client(client, again, small);
		FUZZ_CHECK(strlen(again) < small);
	}
	free(client);
}

/*
 * A copy of @len bytes with the CRC-32 at @off (of @size bytes, these 4
 * zero) made right: a fuzzer does not find CRCs, and every field of a
 * record lies behind one. In a buffer of exactly @len bytes.
 */
static uint8_t *crc_fixed(const uint8_t *data, size_t len, uint32_t size,
			  size_t off)
{
	uint8_t *p = malloc(len);
	uLong crc;

	if (!p)
		return NULL;
	memcpy(p, data, len);
	memset(p + off, 0, 4);
	crc = crc32(crc32(0L, Z_NULL, 0), p, size);
	for (int i = 0; i < 4; i++)
		p[off + i] = (uint8_t)(crc >> (8 * i));
	return p;
}

static void fixed_one(const uint8_t *data, size_t size)
{
	uint32_t rsize;
	uint8_t *p;

	if (size >= RECORD_SIZE_MIN) {
		rsize = (uint32_t)data[8] | (uint32_t)data[9] << 8 |
			(uint32_t)data[10] << 16 | (uint32_t)data[11] << 24;
		if (rsize != RECORD_SIZE_MIN && rsize != RECORD_SIZE_MAX)
			rsize = RECORD_SIZE_MIN;
		if (rsize <= size && (p = crc_fixed(data, size, rsize, 12))) {
			record_one(p, size);
			free(p);
		}
	}
	if (size >= RECORD_ADDRS_SIZE &&
	    (p = crc_fixed(data, RECORD_ADDRS_SIZE, RECORD_ADDRS_SIZE, 8))) {
		addrs_one(p, RECORD_ADDRS_SIZE);
		free(p);
	}
	if (size >= RECORD_SIZE_MAX + RECORD_ADDRS_SIZE &&
	    (p = crc_fixed(data + RECORD_SIZE_MAX, RECORD_ADDRS_SIZE,
			   RECORD_ADDRS_SIZE, 8))) {
		addrs_one(p, RECORD_ADDRS_SIZE);
		free(p);
	}
}

int fuzz_record(const uint8_t *data, size_t size)
{
	fixed_one(data, size);
	record_one(data, size);
	addrs_one(data, size);
	/* An rbd object: the record, then its address block. */
	if (size > RECORD_SIZE_MAX)
		addrs_one(data + RECORD_SIZE_MAX, size - RECORD_SIZE_MAX);
	client_one(data, size);
	return 0;
}
FUZZ_ENTRY(fuzz_record);
