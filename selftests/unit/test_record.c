// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for the heartbeat record (record.c). Peers on other hosts
 * read these blocks to decide whether this host is alive, so the byte
 * layout is pinned against a hand-built block, and every way a block can
 * be torn, flipped or written by someone else must be refused rather than
 * read as a different record.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <zlib.h>

#include "record.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* 64 characters: the longest a host or storage uuid may be. */
#define UUID64 \
	"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_"
#define UUID64_OTHER \
	"_-ZYXWVUTSRQPONMLKJIHGFEDCBAzyxwvutsrqponmlkjihgfedcba9876543210"

/* ---------------------------------------------------------------- */
/* Helpers                                                          */

/* Every field set, each to something no other field holds. */
static void sample(struct record *r, uint32_t size)
{
	memset(r, 0, sizeof(*r));
	r->size = size;
	r->state = RECORD_FENCING;
	r->seq = 0x8000000000000001ull;
	r->realtime_ns = 0x17a2b3c4d5e6f708ull;
	r->monotonic_ns = 0x0000123456789abcull;
	for (int i = 0; i < 16; i++)
		r->boot_id[i] = (uint8_t)(0xc0 + i);
	r->interval_ms = 1000;
	r->timeout_ms = 0xfffffffe;
	r->fence_deadline_ms = 12345;
	strcpy(r->host_uuid, UUID64);
	strcpy(r->storage_uuid, UUID64_OTHER);
	r->nvms = (uint16_t)record_vm_capacity(size);
	r->vms_omitted = 0xffff;
	for (unsigned int v = 0; v < r->nvms; v++) {
		for (int i = 0; i < RECORD_VM_UUID_SIZE; i++)
			r->vms[v][i] = (uint8_t)(v * 16 + i + 1);
	}
}

static void assert_record_eq(const struct record *a, const struct record *b)
{
	cr_assert_eq(a->size, b->size);
	cr_assert_eq(a->state, b->state);
	cr_assert_eq(a->seq, b->seq);
	cr_assert_eq(a->realtime_ns, b->realtime_ns);
	cr_assert_eq(a->monotonic_ns, b->monotonic_ns);
	cr_assert(memcmp(a->boot_id, b->boot_id, sizeof(a->boot_id)) == 0);
	cr_assert_eq(a->interval_ms, b->interval_ms);
	cr_assert_eq(a->timeout_ms, b->timeout_ms);
	cr_assert_eq(a->fence_deadline_ms, b->fence_deadline_ms);
	cr_assert_str_eq(a->host_uuid, b->host_uuid);
	cr_assert_str_eq(a->storage_uuid, b->storage_uuid);
	cr_assert_eq(a->nvms, b->nvms);
	cr_assert_eq(a->vms_omitted, b->vms_omitted);
	cr_assert(memcmp(a->vms, b->vms, a->nvms * sizeof(a->vms[0])) == 0);
}

/*
 * The decoder gets a heap copy of exactly @len bytes, so ASan flags any
 * read past the length it was handed.
 */
static int decode_n(const void *buf, size_t len, struct record *r)
{
	void *copy = malloc(len ? len : 1);
	int rc;

	cr_assert_not_null(copy);
	memcpy(copy, buf, len);
	rc = record_decode(copy, len, r);
	free(copy);
	return rc;
}

/* Written independently of record.c, so the two cannot agree by accident. */
static uint32_t crc_with_hole(const uint8_t *buf, size_t size)
{
	uint8_t *copy = malloc(size);
	uLong crc;

	cr_assert_not_null(copy);
	memcpy(copy, buf, size);
	memset(copy + 12, 0, 4);
	crc = crc32(crc32(0L, Z_NULL, 0), copy, (uInt)size);
	free(copy);
	return (uint32_t)crc;
}

static uint32_t le32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void set_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void set_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

/* After a test spoils a field: a valid CRC, so only that field is wrong. */
static void reseal(uint8_t *buf, size_t size)
{
	set_le32(buf + 12, crc_with_hole(buf, size));
}

static uint8_t *encode_sample(struct record *r, uint32_t size)
{
	uint8_t *buf = malloc(size);

	cr_assert_not_null(buf);
	sample(r, size);
	cr_assert_eq(record_encode(r, buf), 0);
	return buf;
}

/* The decoder must leave its output alone unless it returns 0. */
static void expect_decode_fails(const uint8_t *buf, size_t len, int want)
{
	struct record out, untouched;
	int rc;

	memset(&out, 0x5a, sizeof(out));
	memcpy(&untouched, &out, sizeof(out));
	rc = decode_n(buf, len, &out);
	cr_assert_eq(rc, want, "rc %d (%s), want %d (%s)", rc, strerror(-rc),
		     want, strerror(-want));
	cr_assert(memcmp(&out, &untouched, sizeof(out)) == 0,
		  "output written on failure");
}

/* ---------------------------------------------------------------- */
/* Capacity                                                         */

Test(record_capacity, values)
{
	static const uint32_t no_record[] = {
		0,    16,   199,  200,	511,  513,
		1024, 2048, 4095, 4097, 8192, UINT32_MAX,
	};

	cr_assert_eq(record_vm_capacity(512), 19);
	cr_assert_eq(record_vm_capacity(4096), 243);
	cr_assert_eq(RECORD_VMS_MAX, 243);
	for (size_t i = 0; i < ARRAY_SIZE(no_record); i++)
		cr_assert_eq(record_vm_capacity(no_record[i]), 0, "size %u",
			     no_record[i]);
}

/* ---------------------------------------------------------------- */
/* Encoding                                                         */

static void round_trip(uint32_t size)
{
	struct record r, back;
	uint8_t *buf = encode_sample(&r, size);

	cr_assert_eq(r.nvms, record_vm_capacity(size));
	cr_assert_eq(strlen(r.host_uuid), RECORD_UUID_MAX);
	cr_assert_eq(strlen(r.storage_uuid), RECORD_UUID_MAX);
	memset(&back, 0x5a, sizeof(back));
	cr_assert_eq(decode_n(buf, size, &back), 0);
	assert_record_eq(&r, &back);
	free(buf);
}

Test(record_encode, round_trip_512)
{
	round_trip(512);
}

Test(record_encode, round_trip_4096)
{
	round_trip(4096);
}

Test(record_encode, round_trip_every_state)
{
	static const enum record_state states[] = {
		RECORD_ARMED,
		RECORD_FENCING,
		RECORD_FENCED,
		RECORD_CLEAN_SHUTDOWN,
	};
	uint8_t buf[512];
	struct record r, back;

	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		sample(&r, 512);
		r.state = states[i];
		cr_assert_eq(record_encode(&r, buf), 0);
		cr_assert_eq(decode_n(buf, sizeof(buf), &back), 0);
		cr_assert_eq(back.state, states[i]);
	}
}

Test(record_encode, round_trip_empty_fields)
{
	uint8_t buf[4096];
	struct record r, back;

	memset(&r, 0, sizeof(r));
	r.size = 4096;
	r.state = RECORD_ARMED;
	cr_assert_eq(record_encode(&r, buf), 0);
	memset(&back, 0x5a, sizeof(back));
	cr_assert_eq(decode_n(buf, sizeof(buf), &back), 0);
	assert_record_eq(&r, &back);
	cr_assert_str_eq(back.host_uuid, "");
}

/*
 * The layout in record.h, written out byte by byte, so that neither side
 * of the code can move a field without this failing.
 */
static void golden_record(struct record *r)
{
	memset(r, 0, sizeof(*r));
	r->size = 512;
	r->state = RECORD_FENCED;
	r->seq = 0x0102030405060708ull;
	r->realtime_ns = 0x1112131415161718ull;
	r->monotonic_ns = 0x2122232425262728ull;
	for (int i = 0; i < 16; i++)
		r->boot_id[i] = (uint8_t)(0x30 + i);
	r->interval_ms = 0x41424344;
	r->timeout_ms = 0x51525354;
	r->fence_deadline_ms = 0x61626364;
	strcpy(r->host_uuid, "host-a");
	strcpy(r->storage_uuid, "stor");
	r->nvms = 2;
	r->vms_omitted = 0x0304;
	for (int i = 0; i < 16; i++) {
		r->vms[0][i] = (uint8_t)(0xa0 + i);
		r->vms[1][i] = (uint8_t)(0xb0 + i);
	}
}

static void golden_bytes(uint8_t want[512])
{
	static const uint8_t head[72] = {
		/* 0: magic "IOFR" */
		0x49,
		0x4f,
		0x46,
		0x52,
		/* 4: version 1 */
		0x01,
		0x00,
		/* 6: state 3, fenced */
		0x03,
		0x00,
		/* 8: size 512 */
		0x00,
		0x02,
		0x00,
		0x00,
		/* 12: CRC, filled in below */
		0x00,
		0x00,
		0x00,
		0x00,
		/* 16: seq */
		0x08,
		0x07,
		0x06,
		0x05,
		0x04,
		0x03,
		0x02,
		0x01,
		/* 24: realtime */
		0x18,
		0x17,
		0x16,
		0x15,
		0x14,
		0x13,
		0x12,
		0x11,
		/* 32: monotonic */
		0x28,
		0x27,
		0x26,
		0x25,
		0x24,
		0x23,
		0x22,
		0x21,
		/* 40: boot id, as is */
		0x30,
		0x31,
		0x32,
		0x33,
		0x34,
		0x35,
		0x36,
		0x37,
		0x38,
		0x39,
		0x3a,
		0x3b,
		0x3c,
		0x3d,
		0x3e,
		0x3f,
		/* 56: interval, 60: timeout, 64: deadline */
		0x44,
		0x43,
		0x42,
		0x41,
		0x54,
		0x53,
		0x52,
		0x51,
		0x64,
		0x63,
		0x62,
		0x61,
		/* 68: nvms 2, 70: omitted 0x0304 */
		0x02,
		0x00,
		0x04,
		0x03,
	};

	memset(want, 0, 512);
	memcpy(want, head, sizeof(head));
	memcpy(want + 72, "host-a", 6);
	memcpy(want + 136, "stor", 4);
	for (int i = 0; i < 16; i++) {
		want[200 + i] = (uint8_t)(0xa0 + i);
		want[216 + i] = (uint8_t)(0xb0 + i);
	}
	reseal(want, 512);
}

Test(record_encode, golden_layout)
{
	uint8_t buf[512], want[512];
	struct record r;

	golden_record(&r);
	golden_bytes(want);
	cr_assert_eq(record_encode(&r, buf), 0);
	for (size_t i = 0; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], want[i], "byte %zu: %02x, want %02x", i,
			     buf[i], want[i]);
	/* zlib's CRC-32 of this block, pinned so the checksum cannot drift. */
	cr_assert_eq(le32_at(buf + 12), 0x794cdb38u, "crc %08x",
		     le32_at(buf + 12));
}

Test(record_decode, golden_layout)
{
	uint8_t want[512];
	struct record r, back;

	golden_record(&r);
	golden_bytes(want);
	cr_assert_eq(decode_n(want, sizeof(want), &back), 0);
	assert_record_eq(&r, &back);
}

Test(record_encode, golden_layout_4096)
{
	uint8_t buf[4096];
	struct record r;

	golden_record(&r);
	r.size = 4096;
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(record_encode(&r, buf), 0);
	cr_assert_eq(buf[8], 0x00);
	cr_assert_eq(buf[9], 0x10);
	cr_assert_eq(buf[10], 0x00);
	cr_assert_eq(buf[11], 0x00);
	cr_assert_eq(le32_at(buf + 12), crc_with_hole(buf, sizeof(buf)));
	for (size_t i = 232; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0, "byte %zu not zeroed", i);
}

Test(record_encode, uuid_of_64_fills_its_field)
{
	uint8_t buf[512];
	struct record r;

	golden_record(&r);
	strcpy(r.host_uuid, UUID64);
	strcpy(r.storage_uuid, UUID64);
	cr_assert_eq(record_encode(&r, buf), 0);
	cr_assert(memcmp(buf + 72, UUID64, 64) == 0);
	cr_assert(memcmp(buf + 136, UUID64, 64) == 0);
	cr_assert_eq(buf[200], 0xa0);
}

Test(record_encode, zeroes_unused_bytes)
{
	uint8_t buf[512];
	struct record r;

	golden_record(&r);
	/* Garbage in the struct past what counts must not reach the disk. */
	memset(r.host_uuid + 7, 'x', sizeof(r.host_uuid) - 7);
	memset(r.vms[2], 0xee, sizeof(r.vms) - 2 * sizeof(r.vms[0]));
	memset(buf, 0xff, sizeof(buf));
	cr_assert_eq(record_encode(&r, buf), 0);
	for (size_t i = 72 + 6; i < 136; i++)
		cr_assert_eq(buf[i], 0, "byte %zu", i);
	for (size_t i = 136 + 4; i < 200; i++)
		cr_assert_eq(buf[i], 0, "byte %zu", i);
	for (size_t i = 232; i < sizeof(buf); i++)
		cr_assert_eq(buf[i], 0, "byte %zu", i);
}

static void expect_encode_rejects(const struct record *r, const char *what)
{
	uint8_t buf[4096], untouched[4096];

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	memcpy(untouched, buf, sizeof(buf));
	cr_assert_eq(record_encode(r, buf), -EINVAL, "%s accepted", what);
	cr_assert(memcmp(buf, untouched, sizeof(buf)) == 0, "%s: buf touched",
		  what);
}

Test(record_encode, rejects_bad_size)
{
	static const uint32_t sizes[] = { 0, 200, 511, 513, 1024, 4095, 8192 };
	struct record r;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		sample(&r, 512);
		r.nvms = 0;
		r.size = sizes[i];
		expect_encode_rejects(&r, "size");
	}
}

Test(record_encode, rejects_bad_state)
{
	static const unsigned int states[] = { 0, 5, 0xffff, 0x10001 };
	struct record r;

	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		sample(&r, 512);
		r.state = (enum record_state)states[i];
		expect_encode_rejects(&r, "state");
	}
}

Test(record_encode, rejects_too_many_vms)
{
	struct record r;

	sample(&r, 512);
	r.nvms = 20;
	expect_encode_rejects(&r, "20 VMs in 512");
	sample(&r, 4096);
	r.nvms = 244;
	expect_encode_rejects(&r, "244 VMs in 4096");
	sample(&r, 4096);
	r.nvms = UINT16_MAX;
	expect_encode_rejects(&r, "65535 VMs");
}

Test(record_encode, rejects_unterminated_uuids)
{
	struct record r;

	sample(&r, 512);
	memset(r.host_uuid, 'h', sizeof(r.host_uuid));
	expect_encode_rejects(&r, "host uuid of 65");
	sample(&r, 512);
	memset(r.storage_uuid, 's', sizeof(r.storage_uuid));
	expect_encode_rejects(&r, "storage uuid of 65");
}

/* ---------------------------------------------------------------- */
/* Decoding what is wrong                                           */

Test(record_decode, all_zero)
{
	uint8_t *zero = calloc(1, 8192);

	cr_assert_not_null(zero);
	expect_decode_fails(zero, 512, -ENODATA);
	expect_decode_fails(zero, 4096, -ENODATA);
	expect_decode_fails(zero, 8192, -ENODATA);
	/* Too short to be a block at all, zero or not. */
	expect_decode_fails(zero, 511, -EBADMSG);
	expect_decode_fails(zero, 0, -EBADMSG);
	free(zero);
}

Test(record_decode, short_buffer)
{
	struct record r;
	uint8_t *buf = encode_sample(&r, 512);

	for (size_t len = 0; len < 512; len += 37)
		expect_decode_fails(buf, len, -EBADMSG);
	expect_decode_fails(buf, 511, -EBADMSG);
	free(buf);
}

Test(record_decode, torn_4096)
{
	struct record r;
	uint8_t *buf = encode_sample(&r, 4096);

	expect_decode_fails(buf, 512, -EBADMSG);
	expect_decode_fails(buf, 4095, -EBADMSG);
	free(buf);
}

Test(record_decode, longer_buffer_is_fine)
{
	struct record r, back;
	uint8_t *buf = calloc(1, 8192);

	cr_assert_not_null(buf);
	sample(&r, 512);
	cr_assert_eq(record_encode(&r, buf), 0);
	/* What follows the record in the slot is not its business. */
	memset(buf + 512, 0xa5, 8192 - 512);
	cr_assert_eq(decode_n(buf, 8192, &back), 0);
	assert_record_eq(&r, &back);
	free(buf);
}

Test(record_decode, wrong_size_field)
{
	static const uint32_t sizes[] = { 0, 511, 513, 1024, 2048, 8192 };
	uint8_t buf[8192] = { 0 };
	struct record r;

	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		sample(&r, 512);
		cr_assert_eq(record_encode(&r, buf), 0);
		set_le32(buf + 8, sizes[i]);
		reseal(buf, 512);
		expect_decode_fails(buf, sizeof(buf), -EBADMSG);
	}
}

Test(record_decode, size_512_in_a_4096_record)
{
	uint8_t buf[4096];
	struct record r;

	sample(&r, 4096);
	cr_assert_eq(record_encode(&r, buf), 0);
	set_le32(buf + 8, 512);
	reseal(buf, 512);
	/* 243 VMs do not fit the 512 bytes the record now claims. */
	expect_decode_fails(buf, sizeof(buf), -EBADMSG);
}

Test(record_decode, bad_magic)
{
	static const char *const magics[] = { "IOFr", "RFOI", "IOF\0", "xxxx" };
	struct record r;
	uint8_t *buf = encode_sample(&r, 512);

	for (size_t i = 0; i < ARRAY_SIZE(magics); i++) {
		memcpy(buf, magics[i], 4);
		reseal(buf, 512);
		expect_decode_fails(buf, 512, -EBADMSG);
	}
	free(buf);
}

Test(record_decode, future_version)
{
	static const uint16_t versions[] = { 2, 3, 0x100, 0xffff };
	struct record r;
	uint8_t *buf = encode_sample(&r, 512);

	for (size_t i = 0; i < ARRAY_SIZE(versions); i++) {
		set_le16(buf + 4, versions[i]);
		reseal(buf, 512);
		expect_decode_fails(buf, 512, -EPROTONOSUPPORT);
		/* A newer format may checksum differently: not a bad record. */
		buf[100] ^= 1;
		expect_decode_fails(buf, 512, -EPROTONOSUPPORT);
		buf[100] ^= 1;
	}
	free(buf);
}

Test(record_decode, version_zero)
{
	struct record r;
	uint8_t *buf = encode_sample(&r, 512);

	set_le16(buf + 4, 0);
	reseal(buf, 512);
	expect_decode_fails(buf, 512, -EBADMSG);
	free(buf);
}

Test(record_decode, bad_state)
{
	static const uint16_t states[] = { 0, 5, 6, 0x0101, 0xffff };
	struct record r;
	uint8_t *buf = encode_sample(&r, 512);

	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		set_le16(buf + 6, states[i]);
		reseal(buf, 512);
		expect_decode_fails(buf, 512, -EBADMSG);
	}
	free(buf);
}

Test(record_decode, vms_over_capacity)
{
	struct record r, back;
	uint8_t *buf = encode_sample(&r, 512);
	uint8_t *big;

	set_le16(buf + 68, 20);
	reseal(buf, 512);
	expect_decode_fails(buf, 512, -EBADMSG);
	set_le16(buf + 68, 0xffff);
	reseal(buf, 512);
	expect_decode_fails(buf, 512, -EBADMSG);
	free(buf);

	big = encode_sample(&r, 4096);
	cr_assert_eq(decode_n(big, 4096, &back), 0);
	cr_assert_eq(back.nvms, 243);
	set_le16(big + 68, 244);
	reseal(big, 4096);
	expect_decode_fails(big, 4096, -EBADMSG);
	free(big);
}

Test(record_decode, crc_mismatch)
{
	struct record r;
	uint8_t *buf = encode_sample(&r, 512);

	set_le32(buf + 12, le32_at(buf + 12) + 1);
	expect_decode_fails(buf, 512, -EBADMSG);
	set_le32(buf + 12, 0);
	expect_decode_fails(buf, 512, -EBADMSG);
	free(buf);
}

Test(record_decode, crc_covers_bytes_past_the_vms)
{
	struct record r;
	uint8_t buf[512];

	golden_record(&r);
	cr_assert_eq(record_encode(&r, buf), 0);
	buf[511] = 1;
	expect_decode_fails(buf, sizeof(buf), -EBADMSG);
}

Test(record_decode, ignores_bytes_past_the_vms)
{
	struct record r, back;
	uint8_t buf[512];

	golden_record(&r);
	cr_assert_eq(record_encode(&r, buf), 0);
	memset(buf + 232, 0xee, sizeof(buf) - 232);
	reseal(buf, sizeof(buf));
	memset(&back, 0x5a, sizeof(back));
	cr_assert_eq(decode_n(buf, sizeof(buf), &back), 0);
	assert_record_eq(&r, &back);
}

Test(record_decode, uuid_padding_must_be_zero)
{
	struct record r;
	uint8_t buf[512];

	golden_record(&r);
	cr_assert_eq(record_encode(&r, buf), 0);
	/* "host-a\0x": a second string hidden behind the first. */
	buf[72 + 7] = 'x';
	reseal(buf, sizeof(buf));
	expect_decode_fails(buf, sizeof(buf), -EBADMSG);

	cr_assert_eq(record_encode(&r, buf), 0);
	buf[136 + 63] = 'x';
	reseal(buf, sizeof(buf));
	expect_decode_fails(buf, sizeof(buf), -EBADMSG);
}

/*
 * A peer's uuid text goes into logs and replies: bytes that are not
 * printable ASCII (a control character, a space, invalid UTF-8) make the
 * block no record, however good its CRC.
 */
Test(record_decode, uuid_text_must_be_printable_ascii)
{
	static const uint8_t bad[] = { 0x01, 0x09, 0x0a, 0x1b, ' ',
				       0x7f, 0x80, 0xc3, 0xff };
	struct record r, out;
	uint8_t buf[512];

	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		for (int field = 72; field <= 136; field += 64) {
			golden_record(&r);
			cr_assert_eq(record_encode(&r, buf), 0);
			/* "host-a" / "stor": its second byte spoiled. */
			buf[field + 1] = bad[i];
			reseal(buf, sizeof(buf));
			expect_decode_fails(buf, sizeof(buf), -EBADMSG);
		}
	}
	/* The ends of the range are text. */
	golden_record(&r);
	strcpy(r.host_uuid, "!~");
	strcpy(r.storage_uuid, "a:b.c_d-e");
	cr_assert_eq(record_encode(&r, buf), 0);
	cr_assert_eq(record_decode(buf, sizeof(buf), &out), 0);
	cr_assert_str_eq(out.host_uuid, "!~");
	cr_assert_str_eq(out.storage_uuid, "a:b.c_d-e");
}

/*
 * Whatever one flipped bit does, the block must not come back as a record:
 * a peer would read some other host's state, sequence or deadline.
 */
static void every_bit_flip(uint32_t size)
{
	struct record r, out, untouched;
	uint8_t *buf = encode_sample(&r, size);

	memset(&untouched, 0x5a, sizeof(untouched));
	for (size_t bit = 0; bit < (size_t)size * 8; bit++) {
		int rc;

		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		memcpy(&out, &untouched, sizeof(out));
		rc = record_decode(buf, size, &out);
		cr_assert(rc == -EBADMSG || rc == -EPROTONOSUPPORT,
			  "bit %zu (byte %zu): rc %d", bit, bit / 8, rc);
		cr_assert(memcmp(&out, &untouched, sizeof(out)) == 0,
			  "bit %zu: output written", bit);
		buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	cr_assert_eq(record_decode(buf, size, &out), 0);
	free(buf);
}

Test(record_decode, every_bit_flip_512)
{
	every_bit_flip(512);
}

Test(record_decode, every_bit_flip_4096)
{
	every_bit_flip(4096);
}

/* ---------------------------------------------------------------- */
/* The VM list                                                      */

static char **make_uuids(unsigned int n)
{
	char **u = calloc(n, sizeof(*u));

	cr_assert_not_null(u);
	for (unsigned int i = 0; i < n; i++) {
		u[i] = malloc(37);
		cr_assert_not_null(u[i]);
		snprintf(u[i], 37, "%08x-0000-4000-8000-%012x", i + 1, i);
	}
	return u;
}

static void free_uuids(char **u, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++)
		free(u[i]);
	free(u);
}

static void expect_vm(const struct record *r, unsigned int slot,
		      const char *text)
{
	char got[37];

	record_uuid_format(r->vms[slot], got);
	cr_assert_str_eq(got, text, "slot %u", slot);
}

static void overflow(uint32_t size, unsigned int n)
{
	unsigned int cap = record_vm_capacity(size);
	char **u = make_uuids(n);
	struct record r;

	sample(&r, size);
	record_set_vms(&r, (const char *const *)u, n);
	cr_assert_eq(r.nvms, cap);
	cr_assert_eq(r.vms_omitted, n - cap);
	/* The first ones keep their place; the rest are only counted. */
	for (unsigned int i = 0; i < cap; i++)
		expect_vm(&r, i, u[i]);
	free_uuids(u, n);
}

Test(record_set_vms, overflow_512)
{
	overflow(512, 25);
}

Test(record_set_vms, overflow_4096)
{
	overflow(4096, 300);
}

Test(record_set_vms, exactly_full)
{
	char **u = make_uuids(19);
	struct record r;

	sample(&r, 512);
	record_set_vms(&r, (const char *const *)u, 19);
	cr_assert_eq(r.nvms, 19);
	cr_assert_eq(r.vms_omitted, 0);
	free_uuids(u, 19);
}

Test(record_set_vms, omitted_saturates)
{
	const unsigned int n = 70000;
	const char **u = calloc(n, sizeof(*u));
	struct record r;

	cr_assert_not_null(u);
	for (unsigned int i = 0; i < n; i++)
		u[i] = "6ba7b810-9dad-11d1-80b4-00c04fd430c8";
	sample(&r, 512);
	record_set_vms(&r, u, n);
	cr_assert_eq(r.nvms, 19);
	cr_assert_eq(r.vms_omitted, UINT16_MAX);
	free(u);
}

Test(record_set_vms, skips_invalid)
{
	static const char *const u[] = {
		"not a uuid",
		"00000001-0000-4000-8000-000000000001",
		"",
		"00000002-0000-4000-8000-00000000000",
		"00000003-0000-4000-8000-0000000000033",
		"00000004-0000-4000-8000-00000000000g",
		"00000005-0000-4000-8000-000000000005",
	};
	struct record r;

	sample(&r, 512);
	record_set_vms(&r, u, ARRAY_SIZE(u));
	cr_assert_eq(r.nvms, 2);
	cr_assert_eq(r.vms_omitted, 0);
	expect_vm(&r, 0, u[1]);
	expect_vm(&r, 1, u[6]);
}

Test(record_set_vms, invalid_ones_are_not_counted_as_omitted)
{
	const unsigned int n = 30;
	char **u = make_uuids(n);
	struct record r;

	/* Every other one spoilt: 15 good, 19 fit, nothing omitted. */
	for (unsigned int i = 1; i < n; i += 2)
		u[i][8] = 'x';
	sample(&r, 512);
	record_set_vms(&r, (const char *const *)u, n);
	cr_assert_eq(r.nvms, 15);
	cr_assert_eq(r.vms_omitted, 0);
	for (unsigned int i = 0; i < 15; i++)
		expect_vm(&r, i, u[2 * i]);
	free_uuids(u, n);
}

Test(record_set_vms, replaces_the_previous_list)
{
	static const char *const one[] = {
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8",
	};
	char **u = make_uuids(40);
	struct record r;
	uint8_t buf[512];

	sample(&r, 512);
	record_set_vms(&r, (const char *const *)u, 40);
	record_set_vms(&r, one, 1);
	cr_assert_eq(r.nvms, 1);
	cr_assert_eq(r.vms_omitted, 0);
	expect_vm(&r, 0, one[0]);
	record_set_vms(&r, NULL, 0);
	cr_assert_eq(r.nvms, 0);
	cr_assert_eq(r.vms_omitted, 0);
	cr_assert_eq(record_encode(&r, buf), 0);
	free_uuids(u, 40);
}

Test(record_set_vms, bad_size_holds_none)
{
	char **u = make_uuids(3);
	struct record r;

	sample(&r, 512);
	r.size = 1000;
	record_set_vms(&r, (const char *const *)u, 3);
	cr_assert_eq(r.nvms, 0);
	cr_assert_eq(r.vms_omitted, 3);
	free_uuids(u, 3);
}

Test(record_set_vms, round_trips_through_a_record)
{
	char **u = make_uuids(243);
	struct record r, back;
	uint8_t buf[4096];

	sample(&r, 4096);
	record_set_vms(&r, (const char *const *)u, 243);
	cr_assert_eq(record_encode(&r, buf), 0);
	cr_assert_eq(decode_n(buf, sizeof(buf), &back), 0);
	cr_assert_eq(back.nvms, 243);
	for (unsigned int i = 0; i < 243; i++)
		expect_vm(&back, i, u[i]);
	free_uuids(u, 243);
}

/* ---------------------------------------------------------------- */
/* Uuids, state names, boot id                                      */

Test(record_uuid, parse_byte_order)
{
	static const uint8_t want[16] = {
		0x6b, 0xa7, 0xb8, 0x10, 0x9d, 0xad, 0x11, 0xd1,
		0x80, 0xb4, 0x00, 0xc0, 0x4f, 0xd4, 0x30, 0xc8,
	};
	uint8_t got[16];

	cr_assert_eq(record_uuid_parse("6ba7b810-9dad-11d1-80b4-00c04fd430c8",
				       got),
		     0);
	cr_assert(memcmp(got, want, 16) == 0);
	cr_assert_eq(record_uuid_parse("6BA7B810-9DAD-11D1-80B4-00C04FD430C8",
				       got),
		     0);
	cr_assert(memcmp(got, want, 16) == 0);
}

Test(record_uuid, format_round_trip)
{
	const char *mixed = "6Ba7B810-9dAD-11d1-80B4-00c04Fd430C8";
	uint8_t bin[16], again[16];
	char text[37];

	cr_assert_eq(record_uuid_parse(mixed, bin), 0);
	record_uuid_format(bin, text);
	cr_assert_str_eq(text, "6ba7b810-9dad-11d1-80b4-00c04fd430c8");

	/* Every byte value in every position. */
	for (int base = 0; base < 256; base += 16) {
		for (int i = 0; i < 16; i++)
			bin[i] = (uint8_t)(base + i * 17);
		record_uuid_format(bin, text);
		cr_assert_eq(strlen(text), 36);
		cr_assert_eq(record_uuid_parse(text, again), 0, "%s", text);
		cr_assert(memcmp(bin, again, 16) == 0, "%s", text);
	}
}

Test(record_uuid, rejects)
{
	static const char *const bad[] = {
		"",
		"6ba7b810-9dad-11d1-80b4-00c04fd430c",
		"6ba7b810-9dad-11d1-80b4-00c04fd430c88",
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8-",
		" 6ba7b810-9dad-11d1-80b4-00c04fd430c8",
		"6ba7b810-9dad-11d1-80b4-00c04fd430c8\n",
		"6ba7b8109dad-11d1-80b4-00c04fd430c8a",
		"6ba7b810a9dad-11d1-80b4-00c04fd430c8",
		"6ba7b81-09dad-11d1-80b4-00c04fd430c8",
		"6ba7b810-9dad-11d1-80b400c04fd430c8",
		"6ba7b810_9dad_11d1_80b4_00c04fd430c8",
		"6ba7b810-9dad-11d1-80b4-00c04fd430cg",
		"6ba7b810-9dad-11d1-80b4-00c04fd430c ",
		"g6a7b810-9dad-11d1-80b4-00c04fd430c8",
		"6ba7b810-9dad-11d1-80b4-00c04fd4\xc3\xa9\x38",
		"{6ba7b810-9dad-11d1-80b4-00c04fd430c8}",
		"6ba7b8109dad11d180b400c04fd430c8",
		"------------------------------------",
	};
	uint8_t out[16], untouched[16];

	memset(out, 0x77, sizeof(out));
	memcpy(untouched, out, sizeof(out));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		cr_assert_eq(record_uuid_parse(bad[i], out), -EINVAL,
			     "'%s' accepted", bad[i]);
		cr_assert(memcmp(out, untouched, sizeof(out)) == 0,
			  "'%s': output written", bad[i]);
	}
}

Test(record_uuid, parse_reads_no_further_than_it_must)
{
	/* Exactly the string's bytes on the heap, so ASan sees an overread. */
	const char *s = "6ba7b810-9dad";
	char *copy = strdup(s);
	uint8_t out[16];

	cr_assert_not_null(copy);
	cr_assert_eq(record_uuid_parse(copy, out), -EINVAL);
	free(copy);
}

Test(record_state, names)
{
	cr_assert_str_eq(record_state_name(RECORD_ARMED), "armed");
	cr_assert_str_eq(record_state_name(RECORD_FENCING), "fencing");
	cr_assert_str_eq(record_state_name(RECORD_FENCED), "fenced");
	cr_assert_str_eq(record_state_name(RECORD_CLEAN_SHUTDOWN),
			 "clean-shutdown");
	cr_assert_str_eq(record_state_name((enum record_state)0), "unknown");
	cr_assert_str_eq(record_state_name((enum record_state)5), "unknown");
}

Test(record_boot_id, matches_proc)
{
	static const uint8_t zero[16];
	const uint8_t *id = record_boot_id();
	char text[64] = "", got[37];
	FILE *f;

	cr_assert_not_null(id);
	cr_assert(memcmp(id, zero, 16) != 0, "boot id is all zero");
	/* Read once: the same bytes every time. */
	cr_assert_eq(record_boot_id(), id);
	f = fopen("/proc/sys/kernel/random/boot_id", "r");
	cr_assert_not_null(f);
	cr_assert_not_null(fgets(text, sizeof(text), f));
	fclose(f);
	text[strcspn(text, "\n")] = '\0';
	record_uuid_format(id, got);
	cr_assert_str_eq(got, text);
}

/* The address block of an rbd storage's object. */
Test(record_addrs, round_trip)
{
	uint8_t buf[RECORD_ADDRS_SIZE];
	char out[RECORD_ADDRS_TEXT_MAX + 1];

	cr_assert_eq(record_addrs_encode("127.0.0.2:0/0 [::1]:0/0", buf), 0);
	cr_expect(!memcmp(buf, "IOFA", 4));
	cr_assert_eq(record_addrs_decode(buf, sizeof(buf), out, sizeof(out)),
		     0);
	cr_expect_str_eq(out, "127.0.0.2:0/0 [::1]:0/0");
	cr_assert_eq(record_addrs_encode("", buf), 0);
	cr_assert_eq(record_addrs_decode(buf, sizeof(buf), out, sizeof(out)),
		     0);
	cr_expect_str_eq(out, "");
}

Test(record_addrs, refused_when_not_an_address)
{
	uint8_t buf[RECORD_ADDRS_SIZE];
	char big[RECORD_ADDRS_TEXT_MAX + 2];

	cr_expect_eq(record_addrs_encode("127.0.0.2:0/0;rm -rf /", buf),
		     -EINVAL);
	memset(big, '1', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	cr_expect_eq(record_addrs_encode(big, buf), -EINVAL);
	big[sizeof(big) - 2] = '\0';
	cr_expect_eq(record_addrs_encode(big, buf), 0, "the longest fits");
}

Test(record_addrs, hostile_blocks)
{
	uint8_t buf[RECORD_ADDRS_SIZE], bad[RECORD_ADDRS_SIZE];
	char out[64];

	memset(bad, 0, sizeof(bad));
	cr_expect_eq(record_addrs_decode(bad, sizeof(bad), out, sizeof(out)),
		     -ENODATA, "never written");
	cr_expect_eq(record_addrs_decode(bad, 100, out, sizeof(out)), -ENODATA,
		     "short: no block at all");
	cr_assert_eq(record_addrs_encode("10.0.0.1:0/0", buf), 0);
	memcpy(bad, buf, sizeof(bad));
	bad[13] = '9'; /* a byte of the text: the CRC no longer holds */
	cr_expect_eq(record_addrs_decode(bad, sizeof(bad), out, sizeof(out)),
		     -EBADMSG);
	memcpy(bad, buf, sizeof(bad));
	bad[0] = 'X';
	cr_expect_eq(record_addrs_decode(bad, sizeof(bad), out, sizeof(out)),
		     -EBADMSG, "magic");
	memcpy(bad, buf, sizeof(bad));
	bad[4] = 2; /* a newer version: its CRC is not checked */
	cr_expect_eq(record_addrs_decode(bad, sizeof(bad), out, sizeof(out)),
		     -EPROTONOSUPPORT);
	memcpy(bad, buf, sizeof(bad));
	bad[6] = 0xff; /* a length past the block */
	bad[7] = 0xff;
	cr_expect_eq(record_addrs_decode(bad, sizeof(bad), out, sizeof(out)),
		     -EBADMSG);
	cr_expect_eq(record_addrs_decode(buf, sizeof(buf), out, 5), -ENOSPC,
		     "no room for it: said, not cut");
}

Test(record_addrs, of_a_client_as_ceph_prints_it)
{
	static const struct {
		const char *client, *host;
	} cases[] = {
		{ "127.0.0.2:0/3141592653", "127.0.0.2:0/0" },
		{ "v2:10.1.2.3:0/77", "10.1.2.3:0/0" },
		{ "[v2:10.1.2.3:0/77,v1:10.1.2.3:0/77]", "10.1.2.3:0/0" },
		{ "[v2:10.1.2.3:0/7,v1:10.9.9.9:0/7]",
		  "10.1.2.3:0/0 10.9.9.9:0/0" },
		{ "[::1]:0/42", "[::1]:0/0" },
		{ "[v2:10.1.2.30:0/7,v1:10.1.2.3:0/7]",
		  "10.1.2.30:0/0 10.1.2.3:0/0" },
		{ "any:192.168.0.5:0/1", "192.168.0.5:0/0" },
		{ "", "" },
		{ "nonsense", "" },
	};
	char out[RECORD_ADDRS_TEXT_MAX + 1];

	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		record_addrs_of_client(cases[i].client, out, sizeof(out));
		cr_expect_str_eq(out, cases[i].host, "%s", cases[i].client);
	}
}
