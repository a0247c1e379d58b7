// SPDX-License-Identifier: GPL-2.0-only
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "devstack.h"

bool devstack_has(const struct devstack *st, dev_t dev)
{
	for (unsigned int i = 0; i < st->n; i++)
		if (st->e[i].dev == dev)
			return true;
	return false;
}

bool devstack_add(struct devstack *st, dev_t dev, enum iofence_dev_role role)
{
	if (devstack_has(st, dev))
		return false;
	if (st->n >= DEVSTACK_MAX) {
		st->truncated = true;
		return false;
	}
	st->e[st->n].dev = dev;
	st->e[st->n].role = role;
	st->n++;
	return true;
}

const char *devstack_role_name(enum iofence_dev_role role)
{
	switch (role) {
	case IOFENCE_DEV_TARGET:
		return "target";
	case IOFENCE_DEV_FS:
		return "file system";
	case IOFENCE_DEV_PARTITION:
		return "partition";
	case IOFENCE_DEV_WHOLE_DISK:
		return "whole disk";
	case IOFENCE_DEV_HOLDER:
		return "holder";
	case IOFENCE_DEV_SLAVE:
		return "slave";
	case IOFENCE_DEV_LOOP_BACKING:
		return "loop backing";
	}
	return "unknown";
}

/* The sysfs folder of block device @dev, or -errno. */
static int dev_dir(dev_t dev, const char *root)
{
	char path[PATH_MAX];
	int fd;

	if (snprintf(path, sizeof(path), "%s/dev/block/%u:%u", root, major(dev),
		     minor(dev)) >= (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return fd < 0 ? -errno : fd;
}

/* "MAJ:MIN\n" from @dirfd/@name (a "dev" file). */
static int read_dev(int dirfd, const char *name, dev_t *out)
{
	unsigned int ma, mi;
	char buf[32];
	ssize_t n;
	int fd;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -EINVAL;
	buf[n] = '\0';
	if (sscanf(buf, "%u:%u", &ma, &mi) != 2)
		return -EINVAL;
	*out = makedev(ma, mi);
	return 0;
}

static bool has(int dirfd, const char *name)
{
	return !faccessat(dirfd, name, F_OK, 0);
}

/*
 * The devices named in @dirfd/@sub ("holders", "slaves": links to their
 * folders), or with @sub NULL the partitions in @dirfd itself; @fn runs
 * for each.
 */
typedef void (*each_fn)(struct devstack *st, dev_t dev, const char *root,
			unsigned int depth);

static void each_dev(struct devstack *st, int parent, const char *sub,
		     each_fn fn, const char *root, unsigned int depth)
{
	char path[NAME_MAX + 16];
	struct dirent *de;
	int fd;
	DIR *d;
	dev_t dev;

	fd = openat(parent, sub ? sub : ".",
		    O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		if (!sub) {
			snprintf(path, sizeof(path), "%s/partition",
				 de->d_name);
			if (!has(dirfd(d), path))
				continue;
		}
		snprintf(path, sizeof(path), "%s/dev", de->d_name);
		if (!read_dev(dirfd(d), path, &dev))
			fn(st, dev, root, depth);
	}
	closedir(d);
}

static void up(struct devstack *st, dev_t dev, const char *root,
	       unsigned int depth);
static void down(struct devstack *st, dev_t dev, const char *root,
		 unsigned int depth);

static void up_holder(struct devstack *st, dev_t dev, const char *root,
		      unsigned int depth)
{
	if (devstack_add(st, dev, IOFENCE_DEV_HOLDER))
		up(st, dev, root, depth + 1);
}

static void up_partition(struct devstack *st, dev_t dev, const char *root,
			 unsigned int depth)
{
	if (devstack_add(st, dev, IOFENCE_DEV_PARTITION))
		up(st, dev, root, depth + 1);
}

/* What sits on @dev: its holders and, on a whole disk, its partitions. */
static void up(struct devstack *st, dev_t dev, const char *root,
	       unsigned int depth)
{
	int fd;

	if (depth >= DEVSTACK_DEPTH || (fd = dev_dir(dev, root)) < 0)
		return;
	each_dev(st, fd, "holders", up_holder, root, depth);
	if (!has(fd, "partition"))
		each_dev(st, fd, NULL, up_partition, root, depth);
	close(fd);
}

static void down_slave(struct devstack *st, dev_t dev, const char *root,
		       unsigned int depth)
{
	if (devstack_add(st, dev, IOFENCE_DEV_SLAVE))
		down(st, dev, root, depth + 1);
}

/* What @dev sits on: the disk of a partition, its slaves. */
static void down(struct devstack *st, dev_t dev, const char *root,
		 unsigned int depth)
{
	dev_t whole;
	int fd;

	if (depth >= DEVSTACK_DEPTH || (fd = dev_dir(dev, root)) < 0)
		return;
	/* A partition's folder is inside its disk's. */
	if (has(fd, "partition") && !read_dev(fd, "../dev", &whole) &&
	    devstack_add(st, whole, IOFENCE_DEV_WHOLE_DISK))
		down(st, whole, root, depth + 1);
	each_dev(st, fd, "slaves", down_slave, root, depth);
	close(fd);
}

int devstack_add_block(struct devstack *st, dev_t dev,
		       enum iofence_dev_role role, const char *sysfs_root)
{
	int fd;

	devstack_add(st, dev, role);
	fd = dev_dir(dev, sysfs_root);
	if (fd < 0)
		return fd;
	close(fd);
	up(st, dev, sysfs_root, 0);
	down(st, dev, sysfs_root, 0);
	return 0;
}

bool devstack_is_loop(dev_t dev, const char *sysfs_root)
{
	int fd = dev_dir(dev, sysfs_root);
	bool loop;

	if (fd < 0)
		return false;
	loop = has(fd, "loop");
	close(fd);
	return loop;
}

int devstack_devname(dev_t dev, const char *sysfs_root, char *buf, size_t len)
{
	char text[1024], *p, *end;
	ssize_t n;
	int dfd, fd;

	dfd = dev_dir(dev, sysfs_root);
	if (dfd < 0)
		return dfd;
	fd = openat(dfd, "uevent", O_RDONLY | O_CLOEXEC);
	close(dfd);
	if (fd < 0)
		return -errno;
	n = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (n < 0)
		return -errno;
	text[n] = '\0';
	for (p = text; p && *p; p = end ? end + 1 : NULL) {
		end = strchr(p, '\n');
		if (end)
			*end = '\0';
		if (!strncmp(p, "DEVNAME=", 8)) {
			if (!p[8] || p[8] == '/' || strstr(p + 8, ".."))
				return -EINVAL;
			if ((size_t)snprintf(buf, len, "%s", p + 8) >= len)
				return -ENAMETOOLONG;
			return 0;
		}
	}
	return -ENOENT;
}
