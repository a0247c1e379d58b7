/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A storage: what the caller asked for (its parameters, validated) and what
 * arming it holds (its open heartbeat target and its block device). The
 * armed storages live in a table by uuid; each has a small stable index,
 * which the BPF maps carry as the storage's handle.
 */
#ifndef IOFENCE_STORAGE_H
#define IOFENCE_STORAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

#include "args.h"

/* Storages armed at once, over all hosts. */
#define STORAGE_MAX 1024
/* Longest uuid of a storage or host (also a file name on the storage). */
#define STORAGE_UUID_MAX 64
#define STORAGE_VICTIMS_MAX 16
/* Host slots of a block storage's heartbeat region: 0 .. this. */
#define BLOCK_SLOT_MAX 4095

enum storage_type {
	STORAGE_FILE, /* a shared file system: target is its mount path */
	STORAGE_BLOCK, /* a shared block device: target is its device path */
	STORAGE_RBD, /* a Ceph pool, reached through librados */
};

enum fence_strategy {
	FENCE_FORCE, /* kill victims, escalate to a watchdog reset */
	FENCE_KILL_ONLY, /* kill victims, never reset the host */
	FENCE_PERMISSIVE, /* report only */
};

struct storage_params {
	char *uuid;
	enum storage_type type;
	char *target;
	uint64_t region_offset; /* block: where the heartbeat slots start */
	uint32_t slot; /* block: this host's slot in the region */
	/* rbd: the cluster and the pool; target is "rbd:POOL[/NAMESPACE]" */
	char *pool;
	char *ns; /* NULL: the default namespace */
	char *ceph_conf;
	char *ceph_client; /* "client.<id>" */
	char *keyring; /* NULL: the conf's, or Ceph's default */
	bool connected; /* false: skipped, never armed */
	uint32_t interval_ms;
	uint32_t io_timeout_ms;
	uint32_t max_attempts;
	uint32_t timeout_ms; /* after defaults: never 0 */
	enum fence_strategy strategy;
	uint32_t kill_grace_ms;
	char *victims[STORAGE_VICTIMS_MAX]; /* executable name patterns */
	unsigned int nvictims;
	char *fence_hook; /* NULL: none */
};

struct fencer_link;
struct loop;
struct rados_link;

struct storage {
	struct storage_params p;
	char *host_uuid;
	dev_t dev; /* block device carrying it; 0 when none (NFS, FUSE) */
	dev_t fs_dev; /* file: st_dev of the mount, anonymous ones too */
	int target_fd; /* file: the mount's folder (O_PATH); block: -1 */
	int record_fd; /* where heartbeats go: record file or device */
	uint32_t record_size; /* 512 or 4096: one O_DIRECT block */
	uint64_t record_offset; /* of this host's record in record_fd */
	/* file: the record file's st_dev and st_ino; 0: not known */
	dev_t record_dev;
	ino_t record_ino;
	bool record_direct; /* opened O_DIRECT (false: the fs refused it) */
	uint64_t next_seq; /* staging: after the record found there */
	bool record_mine; /* staging: it held this host's record of it */
	bool target_changed; /* its path names something else now, told */
	bool record_unread; /* staging: re-arming could not read it */
	uint64_t t_ok_ns; /* staging: that record's time, this boot; or 0 */
	struct fencer_link *hb; /* its fencer in the core, once committed */
	/* rbd: its connection (staged, then shared with the fencer) */
	struct rados_link *rados;
	char rados_addrs[256]; /* rbd: as the record publishes them */
	uint32_t idx;
	bool reconnect; /* armed by a host reconnect */
	uint64_t flight; /* the setup that armed or last updated it */
	int64_t armed_real_s;
	int64_t updated_real_s;
	/*
	 * query-status's object for it, built at the first query: all but
	 * "heartbeat" and "io" is fixed once the storage is committed (an
	 * update commits a new struct storage).
	 */
	json_t *status;
};

struct storage_table {
	struct storage *slot[STORAGE_MAX];
	unsigned int count;
};

const char *storage_type_name(enum storage_type type);
const char *fence_strategy_name(enum fence_strategy s);

/*
 * Parses storages[@i] of a setup request into @p, defaults applied;
 * returns 0 or -EINVAL with the field and the rule in @e. Release @p
 * with storage_params_free() either way.
 */
int storage_params_parse(json_t *obj, unsigned int i, struct storage_params *p,
			 struct args_err *e);
/* The parameters as JSON, defaults included: persisted and reported. */
json_t *storage_params_json(const struct storage_params *p);
/* Same parameters (connected aside): arming again is a no-op. */
bool storage_params_equal(const struct storage_params *a,
			  const struct storage_params *b);
int storage_params_copy(struct storage_params *dst,
			const struct storage_params *src);
void storage_params_free(struct storage_params *p);
/* rbd: the object of @host's record, "iofence.<host>", into @buf. */
void storage_rbd_object(const char *host, char *buf, size_t len);
#define STORAGE_RBD_OBJECT_MAX (sizeof("iofence.") + STORAGE_UUID_MAX)
/* A uuid is also a file name: 1..64 of [A-Za-z0-9._:-], no leading '.'. */
bool storage_uuid_valid(const char *s);

struct storage *storage_find(struct storage_table *t, const char *uuid);
/* Puts @s in a free slot and sets s->idx; -ENOSPC when full. */
int storage_insert(struct storage_table *t, struct storage *s);
void storage_remove(struct storage_table *t, struct storage *s);
/* Other armed storages on the same block device as @s. */
unsigned int storage_dev_users(struct storage_table *t,
			       const struct storage *s);
unsigned int storage_host_count(struct storage_table *t, const char *host);
/*
 * Closes what the storage holds (through @l's io-wq: a close on a dead
 * storage blocks) and frees it. The loop is the control plane's, set
 * once by storage_set_closer().
 */
void storage_free(struct storage *s);
void storage_set_closer(struct loop *l);

#define storage_for_each(t, i, s)               \
	for ((i) = 0; (i) < STORAGE_MAX; (i)++) \
		if (((s) = (t)->slot[(i)]) != NULL)

#endif
