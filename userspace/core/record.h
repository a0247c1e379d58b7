/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The heartbeat record: what this host writes to a storage every interval
 * and what its peers read back. One record is one aligned block, 512 or
 * 4096 bytes (the device's logical block size; 4096 on file systems), so
 * that one O_DIRECT write replaces it whole. On a block device each host
 * owns one RECORD_SLOT_SIZE slot of the configured region; the record
 * takes the start of its slot.
 *
 * All fields little-endian; unused bytes zero:
 *
 *   off  len  field
 *     0    4  magic "IOFR" (49 4f 46 52)
 *     4    2  format version (RECORD_VERSION)
 *     6    2  state (enum record_state)
 *     8    4  record size in bytes (512 or 4096)
 *    12    4  CRC-32 (zlib) of the whole record with these 4 bytes zero
 *    16    8  sequence number, strictly increasing per host and storage
 *    24    8  writer's CLOCK_REALTIME, ns
 *    32    8  writer's CLOCK_MONOTONIC, ns (meaningful with the boot id)
 *    40   16  writer's boot id (/proc/sys/kernel/random/boot_id, binary)
 *    56    4  interval_ms
 *    60    4  timeout_ms
 *    64    4  fence_deadline_ms after the last successful write; 0: none
 *    68    2  number of VM uuids that follow
 *    70    2  number of VMs that did not fit
 *    72   64  host uuid, NUL-padded (no terminator at 64 characters),
 *             printable ASCII (0x21-0x7e)
 *   136   64  storage uuid, the same way
 *   200 16×n  VM uuids, binary (RFC 4122 byte order)
 *
 * An rbd storage's record is a RADOS object, iofence.<host uuid>: the
 * 4096-byte record above, then an address block of RECORD_ADDRS_SIZE
 * bytes, what a peer needs to have the cluster refuse this host's writes
 * (the addresses its Ceph clients, its VMs' included, connect from):
 *
 *   off  len  field
 *     0    4  magic "IOFA" (49 4f 46 41)
 *     4    2  format version (1)
 *     6    2  length L of the text
 *     8    4  CRC-32 (zlib) of the block with these 4 bytes zero
 *    12    L  the addresses, ' '-separated, as Ceph writes an entity
 *             address: "IP:0/0" (port and nonce 0: every client from
 *             that IP), "[IPv6]:0/0"
 *
 * The record's own checksum does not cover it: a reader that knows
 * only records reads the first 4096 bytes and is unchanged.
 */
#ifndef IOFENCE_RECORD_H
#define IOFENCE_RECORD_H

#include <stddef.h>
#include <stdint.h>

#define RECORD_MAGIC "IOFR"
#define RECORD_VERSION 1
#define RECORD_SIZE_MIN 512
#define RECORD_SIZE_MAX 4096
/* Stride of the host slots in a block storage's region. */
#define RECORD_SLOT_SIZE 4096
#define RECORD_UUID_MAX 64
#define RECORD_HEADER_SIZE 200
#define RECORD_VM_UUID_SIZE 16
#define RECORD_VMS_MAX \
	((RECORD_SIZE_MAX - RECORD_HEADER_SIZE) / RECORD_VM_UUID_SIZE)

#define RECORD_ADDRS_MAGIC "IOFA"
#define RECORD_ADDRS_SIZE 512
#define RECORD_ADDRS_TEXT_MAX (RECORD_ADDRS_SIZE - 12 - 1)
/* A record and its address block: what an rbd heartbeat writes. */
#define RECORD_BUF_SIZE (RECORD_SIZE_MAX + RECORD_ADDRS_SIZE)

enum record_state {
	RECORD_ARMED = 1,
	RECORD_FENCING = 2, /* lost: victims being killed */
	RECORD_FENCED = 3,
	RECORD_CLEAN_SHUTDOWN = 4, /* heartbeats stopped on purpose */
};

struct record {
	uint32_t size; /* 512 or 4096 */
	enum record_state state;
	uint64_t seq;
	uint64_t realtime_ns;
	uint64_t monotonic_ns;
	uint8_t boot_id[16];
	uint32_t interval_ms;
	uint32_t timeout_ms;
	uint32_t fence_deadline_ms;
	char host_uuid[RECORD_UUID_MAX + 1];
	char storage_uuid[RECORD_UUID_MAX + 1];
	uint16_t nvms;
	uint16_t vms_omitted;
	uint8_t vms[RECORD_VMS_MAX][RECORD_VM_UUID_SIZE];
};

/* How many VM uuids a record of @size bytes holds. */
unsigned int record_vm_capacity(uint32_t size);
/*
 * Sets the record's VM list from textual uuids: as many as fit its size,
 * the rest counted in vms_omitted. Uuids that do not parse are skipped
 * (and not counted: they are no VM identity a peer could use).
 */
void record_set_vms(struct record *r, const char *const *uuids, unsigned int n);
/*
 * Encodes @r into @buf of exactly r->size bytes. -EINVAL when the size is
 * not 512 or 4096, a uuid is too long, the state is unknown or nvms
 * exceeds the capacity; @buf is then untouched.
 */
int record_encode(const struct record *r, void *buf);
/*
 * Decodes the @len bytes at @buf (at least the record's own size).
 * 0; -ENODATA: all zero, never written; -EBADMSG: not a record (magic,
 * size, CRC, counts, state or uuid text wrong); -EPROTONOSUPPORT: a newer
 * version.
 */
int record_decode(const void *buf, size_t len, struct record *r);

/*
 * The address block: @addrs (at most RECORD_ADDRS_TEXT_MAX bytes, else
 * -EINVAL) into @buf of RECORD_ADDRS_SIZE bytes; and back, into @out of
 * @size bytes, NUL-terminated: 0, -ENODATA (no block), -EBADMSG (a bad
 * one: magic, length, CRC, or bytes that are no printable address text),
 * -EPROTONOSUPPORT (a newer version).
 */
int record_addrs_encode(const char *addrs, void *buf);
/*
 * The addresses a client's (rados_getaddrs(): "127.0.0.2:0/3141",
 * "[v2:127.0.0.2:0/3141,v1:...]", "[::1]:0/3141") come to, as a peer
 * blocklists them: each IP once, "IP:0/0" (every client from it, the
 * host's VMs included). Into @out of @len bytes, ' '-separated.
 */
void record_addrs_of_client(const char *client, char *out, size_t len);
int record_addrs_decode(const void *buf, size_t len, char *out, size_t size);

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx" (any case) <-> 16 bytes. */
int record_uuid_parse(const char *s, uint8_t out[RECORD_VM_UUID_SIZE]);
void record_uuid_format(const uint8_t in[RECORD_VM_UUID_SIZE], char out[37]);
const char *record_state_name(enum record_state s);
/*
 * This boot's id, read once (thread-safe; the daemon reads it before its
 * fencing core starts); zeros when unreadable.
 */
const uint8_t *record_boot_id(void);

#endif
