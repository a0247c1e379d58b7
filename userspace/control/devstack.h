/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A storage's devices from sysfs alone: a block device, the partitions on
 * it, the disk it is a partition of, the devices stacked on it (holders:
 * dm, md, LVM, recursively) and those it is stacked on (slaves), each with
 * its role (enum iofence_dev_role). Reading sysfs never touches a storage.
 * A loop device's backing device is not found here: the ioctl that tells
 * it stats the backing file, which may hang (tracker.c asks it off-thread).
 */
#ifndef IOFENCE_DEVSTACK_H
#define IOFENCE_DEVSTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <linux/types.h>

#include "iofence.h"

/* Devices of one storage. */
#define DEVSTACK_MAX 32
/* Levels of stacking followed each way. */
#define DEVSTACK_DEPTH 8

struct devstack_entry {
	dev_t dev;
	enum iofence_dev_role role;
};

struct devstack {
	struct devstack_entry e[DEVSTACK_MAX];
	unsigned int n;
	bool truncated; /* more devices than DEVSTACK_MAX: the rest left out */
};

/* @dev as @role unless it is there already; false when it was. */
bool devstack_add(struct devstack *st, dev_t dev, enum iofence_dev_role role);
bool devstack_has(const struct devstack *st, dev_t dev);

/*
 * Adds block device @dev as @role, and what it sits on or under, from
 * @sysfs_root ("/sys", or a test tree). Returns 0, or -ENOENT when @dev
 * has no sysfs entry (it is added alone).
 */
int devstack_add_block(struct devstack *st, dev_t dev,
		       enum iofence_dev_role role, const char *sysfs_root);

/* @dev is a loop device (it has a loop/ folder in sysfs). */
bool devstack_is_loop(dev_t dev, const char *sysfs_root);

/* The node name of @dev ("loop0", DEVNAME of its uevent): 0 or -errno. */
int devstack_devname(dev_t dev, const char *sysfs_root, char *buf, size_t len);

const char *devstack_role_name(enum iofence_dev_role role);

#endif
