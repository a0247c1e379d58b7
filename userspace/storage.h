/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The armed storages, by uuid. Each has a small stable index, which the
 * BPF maps carry as the storage's handle.
 */
#ifndef IOFENCE_STORAGE_H
#define IOFENCE_STORAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* Storages armed at once, over all hosts. */
#define STORAGE_MAX 1024

enum storage_type {
	STORAGE_FILE, /* a shared file system: target is its mount path */
	STORAGE_BLOCK, /* a shared block device: target is its device path */
};

struct storage {
	char *uuid;
	char *host_uuid;
	enum storage_type type;
	char *target;
	dev_t dev; /* block device carrying it; 0 when none (NFS, FUSE) */
	uint32_t idx;
	bool reconnect; /* armed by a host reconnect */
	uint64_t armed_mono_ms;
	int64_t armed_real_s;
};

struct storage_table {
	struct storage *slot[STORAGE_MAX];
	unsigned int count;
};

const char *storage_type_name(enum storage_type type);
int storage_type_parse(const char *name, enum storage_type *type);

struct storage *storage_find(struct storage_table *t, const char *uuid);
/* Puts @s in a free slot and sets s->idx; -ENOSPC when full. */
int storage_insert(struct storage_table *t, struct storage *s);
void storage_remove(struct storage_table *t, struct storage *s);
/* Other armed storages on the same block device as @s. */
unsigned int storage_dev_users(struct storage_table *t,
			       const struct storage *s);
void storage_free(struct storage *s);

#define storage_for_each(t, i, s)                                 \
	for ((i) = 0; (i) < STORAGE_MAX; (i)++)                   \
		if (((s) = (t)->slot[(i)]) != NULL)

#endif
