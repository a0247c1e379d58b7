// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "hex.h"
#include "record.h"

#define OFF_MAGIC 0
#define OFF_VERSION 4
#define OFF_STATE 6
#define OFF_SIZE 8
#define OFF_CRC 12
#define OFF_SEQ 16
#define OFF_REALTIME 24
#define OFF_MONOTONIC 32
#define OFF_BOOT_ID 40
#define OFF_INTERVAL 56
#define OFF_TIMEOUT 60
#define OFF_DEADLINE 64
#define OFF_NVMS 68
#define OFF_OMITTED 70
#define OFF_HOST 72
#define OFF_STORAGE 136
#define OFF_VMS RECORD_HEADER_SIZE

#define UUID_TEXT_LEN 36
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

/*
 * Byte by byte so the layout is the same on any host, and so no struct
 * padding or alignment can ever leak into what peers read.
 */
static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	uint32_t v = 0;

	for (int i = 3; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static bool size_valid(uint32_t size)
{
	return size == RECORD_SIZE_MIN || size == RECORD_SIZE_MAX;
}

static bool state_valid(unsigned int s)
{
	return s >= RECORD_ARMED && s <= RECORD_CLEAN_SHUTDOWN;
}

/* The CRC field reads as zero, so a block can be checked where it lies. */
static uint32_t crc_of(const uint8_t *buf, uint32_t size, uint32_t off)
{
	static const uint8_t zero[4];
	uLong crc = crc32(0L, Z_NULL, 0);

	crc = crc32(crc, buf, off);
	crc = crc32(crc, zero, sizeof(zero));
	crc = crc32(crc, buf + off + 4, size - (off + 4));
	return (uint32_t)crc;
}

static uint32_t record_crc(const uint8_t *buf, uint32_t size)
{
	return crc_of(buf, size, OFF_CRC);
}

unsigned int record_vm_capacity(uint32_t size)
{
	/* Any other size is no record, so nothing fits in it. */
	if (!size_valid(size))
		return 0;
	return (size - RECORD_HEADER_SIZE) / RECORD_VM_UUID_SIZE;
}

void record_set_vms(struct record *r, const char *const *uuids, unsigned int n)
{
	unsigned int cap = record_vm_capacity(r->size);
	unsigned int omitted = 0;
	uint8_t bin[RECORD_VM_UUID_SIZE];

	memset(r->vms, 0, sizeof(r->vms));
	r->nvms = 0;
	for (unsigned int i = 0; i < n; i++) {
		if (!uuids[i] || record_uuid_parse(uuids[i], bin))
			continue;
		if (r->nvms < cap)
			memcpy(r->vms[r->nvms++], bin, sizeof(bin));
		else if (omitted < UINT16_MAX)
			omitted++;
	}
	r->vms_omitted = (uint16_t)omitted;
}

int record_encode(const struct record *r, void *buf)
{
	uint8_t *p = buf;

	if (!size_valid(r->size) || !state_valid(r->state) ||
	    strnlen(r->host_uuid, sizeof(r->host_uuid)) > RECORD_UUID_MAX ||
	    strnlen(r->storage_uuid, sizeof(r->storage_uuid)) >
		    RECORD_UUID_MAX ||
	    r->nvms > record_vm_capacity(r->size))
		return -EINVAL;

	memset(p, 0, r->size);
	memcpy(p + OFF_MAGIC, RECORD_MAGIC, 4);
	put_le16(p + OFF_VERSION, RECORD_VERSION);
	put_le16(p + OFF_STATE, (uint16_t)r->state);
	put_le32(p + OFF_SIZE, r->size);
	put_le64(p + OFF_SEQ, r->seq);
	put_le64(p + OFF_REALTIME, r->realtime_ns);
	put_le64(p + OFF_MONOTONIC, r->monotonic_ns);
	memcpy(p + OFF_BOOT_ID, r->boot_id, sizeof(r->boot_id));
	put_le32(p + OFF_INTERVAL, r->interval_ms);
	put_le32(p + OFF_TIMEOUT, r->timeout_ms);
	put_le32(p + OFF_DEADLINE, r->fence_deadline_ms);
	put_le16(p + OFF_NVMS, r->nvms);
	put_le16(p + OFF_OMITTED, r->vms_omitted);
	memcpy(p + OFF_HOST, r->host_uuid,
	       strnlen(r->host_uuid, RECORD_UUID_MAX));
	memcpy(p + OFF_STORAGE, r->storage_uuid,
	       strnlen(r->storage_uuid, RECORD_UUID_MAX));
	memcpy(p + OFF_VMS, r->vms, (size_t)r->nvms * RECORD_VM_UUID_SIZE);
	put_le32(p + OFF_CRC, record_crc(p, r->size));
	return 0;
}

/*
 * A text field of RECORD_UUID_MAX bytes. Past the first NUL only zeros:
 * anything else there is a writer that does not follow this format, and
 * two different blocks must never decode to the same record. Before it
 * only printable ASCII, as every uuid a setup accepts is: a peer's bytes
 * go into logs and replies, which must stay UTF-8 and free of control
 * characters.
 */
static int get_text(const uint8_t *p, char out[RECORD_UUID_MAX + 1])
{
	size_t len = strnlen((const char *)p, RECORD_UUID_MAX);

	for (size_t i = 0; i < len; i++) {
		if (p[i] < 0x21 || p[i] > 0x7e)
			return -EBADMSG;
	}
	for (size_t i = len; i < RECORD_UUID_MAX; i++) {
		if (p[i])
			return -EBADMSG;
	}
	memcpy(out, p, len);
	out[len] = '\0';
	return 0;
}

static bool all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (p[i])
			return false;
	}
	return true;
}

int record_decode(const void *buf, size_t len, struct record *r)
{
	const uint8_t *p = buf;
	struct record d;
	uint32_t size, crc;
	uint16_t version, state;

	if (len < RECORD_SIZE_MIN)
		return -EBADMSG;
	/*
	 * Every record starts with its magic, so a zero first block is a slot
	 * nobody wrote, whatever follows it.
	 */
	if (all_zero(p, RECORD_SIZE_MIN))
		return -ENODATA;
	if (memcmp(p + OFF_MAGIC, RECORD_MAGIC, 4))
		return -EBADMSG;
	/* Before size and CRC: a newer format may define both differently. */
	version = get_le16(p + OFF_VERSION);
	if (!version)
		return -EBADMSG;
	if (version > RECORD_VERSION)
		return -EPROTONOSUPPORT;
	size = get_le32(p + OFF_SIZE);
	if (!size_valid(size) || size > len)
		return -EBADMSG;
	crc = get_le32(p + OFF_CRC);
	if (crc != record_crc(p, size))
		return -EBADMSG;

	memset(&d, 0, sizeof(d));
	state = get_le16(p + OFF_STATE);
	if (!state_valid(state))
		return -EBADMSG;
	d.size = size;
	d.state = (enum record_state)state;
	d.seq = get_le64(p + OFF_SEQ);
	d.realtime_ns = get_le64(p + OFF_REALTIME);
	d.monotonic_ns = get_le64(p + OFF_MONOTONIC);
	memcpy(d.boot_id, p + OFF_BOOT_ID, sizeof(d.boot_id));
	d.interval_ms = get_le32(p + OFF_INTERVAL);
	d.timeout_ms = get_le32(p + OFF_TIMEOUT);
	d.fence_deadline_ms = get_le32(p + OFF_DEADLINE);
	d.nvms = get_le16(p + OFF_NVMS);
	d.vms_omitted = get_le16(p + OFF_OMITTED);
	if (d.nvms > record_vm_capacity(size))
		return -EBADMSG;
	if (get_text(p + OFF_HOST, d.host_uuid) ||
	    get_text(p + OFF_STORAGE, d.storage_uuid))
		return -EBADMSG;
	/* The slots past nvms are not read: a later writer may use them. */
	memcpy(d.vms, p + OFF_VMS, (size_t)d.nvms * RECORD_VM_UUID_SIZE);
	*r = d;
	return 0;
}

static bool is_dash_pos(int i)
{
	return i == 8 || i == 13 || i == 18 || i == 23;
}

int record_uuid_parse(const char *s, uint8_t out[RECORD_VM_UUID_SIZE])
{
	uint8_t bin[RECORD_VM_UUID_SIZE];
	int nib = 0;

	/* Stops at a NUL on its own: no position accepts one. */
	for (int i = 0; i < UUID_TEXT_LEN; i++) {
		int v;

		if (is_dash_pos(i)) {
			if (s[i] != '-')
				return -EINVAL;
			continue;
		}
		v = hex_digit(s[i]);
		if (v < 0)
			return -EINVAL;
		if (nib % 2)
			bin[nib / 2] |= (uint8_t)v;
		else
			bin[nib / 2] = (uint8_t)(v << 4);
		nib++;
	}
	if (s[UUID_TEXT_LEN])
		return -EINVAL;
	memcpy(out, bin, sizeof(bin));
	return 0;
}

void record_uuid_format(const uint8_t in[RECORD_VM_UUID_SIZE], char out[37])
{
	static const char hex[] = "0123456789abcdef";
	int o = 0;

	for (int i = 0; i < RECORD_VM_UUID_SIZE; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[in[i] >> 4];
		out[o++] = hex[in[i] & 0xf];
	}
	out[o] = '\0';
}

const char *record_state_name(enum record_state s)
{
	switch (s) {
	case RECORD_ARMED:
		return "armed";
	case RECORD_FENCING:
		return "fencing";
	case RECORD_FENCED:
		return "fenced";
	case RECORD_CLEAN_SHUTDOWN:
		return "clean-shutdown";
	}
	return "unknown";
}

/*
 * The boot id cannot change while we run, so one read serves every record.
 * Not locked: the daemon is one thread.
 */
static uint8_t boot_id[RECORD_VM_UUID_SIZE];

/* Reads procfs: once, before the fencing core starts (see record.h). */
static void boot_id_read(void)
{
	uint8_t *id = boot_id;
	char text[UUID_TEXT_LEN + 2];
	ssize_t n;
	int fd;

	fd = open(BOOT_ID_PATH, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < UUID_TEXT_LEN)
		return;
	text[n] = '\0';
	if (text[UUID_TEXT_LEN] == '\n')
		text[UUID_TEXT_LEN] = '\0';
	/* Writes @id only when the whole text parses. */
	record_uuid_parse(text, id);
}

const uint8_t *record_boot_id(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, boot_id_read);
	return boot_id;
}

/* --- the address block of an rbd storage's object ------------------------ */

#define ADDRS_OFF_VERSION 4
#define ADDRS_OFF_LEN 6
#define ADDRS_OFF_CRC 8
#define ADDRS_OFF_TEXT 12
#define ADDRS_VERSION 1

static bool addr_char(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
	       (c >= 'A' && c <= 'F') || strchr(".:/[] ", c);
}

int record_addrs_encode(const char *addrs, void *buf)
{
	size_t n = strlen(addrs);
	uint8_t *p = buf;

	if (n > RECORD_ADDRS_TEXT_MAX)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!addr_char(addrs[i]))
			return -EINVAL;
	memset(p, 0, RECORD_ADDRS_SIZE);
	memcpy(p, RECORD_ADDRS_MAGIC, 4);
	put_le16(p + ADDRS_OFF_VERSION, ADDRS_VERSION);
	put_le16(p + ADDRS_OFF_LEN, (uint16_t)n);
	memcpy(p + ADDRS_OFF_TEXT, addrs, n);
	put_le32(p + ADDRS_OFF_CRC,
		 crc_of(p, RECORD_ADDRS_SIZE, ADDRS_OFF_CRC));
	return 0;
}

int record_addrs_decode(const void *buf, size_t len, char *out, size_t size)
{
	const uint8_t *p = buf;
	size_t n;

	if (len < RECORD_ADDRS_SIZE || all_zero(p, RECORD_ADDRS_SIZE))
		return -ENODATA;
	if (memcmp(p, RECORD_ADDRS_MAGIC, 4))
		return -EBADMSG;
	if (get_le16(p + ADDRS_OFF_VERSION) > ADDRS_VERSION)
		return -EPROTONOSUPPORT;
	n = get_le16(p + ADDRS_OFF_LEN);
	if (get_le16(p + ADDRS_OFF_VERSION) != ADDRS_VERSION ||
	    n > RECORD_ADDRS_TEXT_MAX ||
	    get_le32(p + ADDRS_OFF_CRC) !=
		    crc_of(p, RECORD_ADDRS_SIZE, ADDRS_OFF_CRC) ||
	    !all_zero(p + ADDRS_OFF_TEXT + n,
		      RECORD_ADDRS_SIZE - ADDRS_OFF_TEXT - n))
		return -EBADMSG;
	for (size_t i = 0; i < n; i++)
		if (!addr_char((char)p[ADDRS_OFF_TEXT + i]))
			return -EBADMSG;
	if (n >= size)
		return -ENOSPC;
	memcpy(out, p + ADDRS_OFF_TEXT, n);
	out[n] = '\0';
	return 0;
}

/*
 * What a peer blocklists to cut this host off: the IP its clients come
 * from, every client of it (port and nonce 0), not this connection alone,
 * since the host's VMs have connections of their own. "127.0.0.2:0/123"
 * and "v2:127.0.0.2:0/123" give "127.0.0.2:0/0".
 */
/* @word is one of the ' '-separated words of @list. */
static bool has_word(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = list; (p = strstr(p, word)); p += n)
		if ((p == list || p[-1] == ' ') && (!p[n] || p[n] == ' '))
			return true;
	return false;
}

void record_addrs_of_client(const char *client, char *out, size_t len)
{
	char one[RECORD_ADDRS_TEXT_MAX + 8];
	char list[RECORD_ADDRS_TEXT_MAX + 1], *save = NULL, *tok;
	size_t n = 0;

	out[0] = '\0';
	/* One address, or an address vector "[v2:A,v1:B]". */
	snprintf(list, sizeof(list), "%s", client);
	tok = list;
	if (!strncmp(tok, "[v", 2) || !strncmp(tok, "[any:", 5)) {
		tok++;
		tok[strcspn(tok, "]")] = '\0';
	}
	for (tok = strtok_r(tok, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		char *slash, *colon;

		if (!strncmp(tok, "v1:", 3) || !strncmp(tok, "v2:", 3))
			tok += 3;
		else if (!strncmp(tok, "any:", 4))
			tok += 4;
		/* HOST:PORT/NONCE, HOST an IPv4 address or "[IPv6]" */
		slash = strchr(tok, '/');
		if (slash)
			*slash = '\0';
		colon = strrchr(tok, ':');
		if (!colon || colon == tok)
			continue;
		*colon = '\0';
		snprintf(one, sizeof(one), "%s:0/0", tok);
		if (has_word(out, one))
			continue; /* v1 and v2 of one IP: once */
		if (n + strlen(one) + 1 < len)
			n += snprintf(out + n, len - n, "%s%s", n ? " " : "",
				      one);
	}
}
