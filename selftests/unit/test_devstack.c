// SPDX-License-Identifier: GPL-2.0-only
/*
 * Unit tests for a storage's device set from sysfs (devstack.c), on a fake
 * sysfs tree laid out as the kernel lays it out: /sys/dev/block/MAJ:MIN
 * links into /sys/devices, partitions inside their disk's folder,
 * holders/ and slaves/ links between stacked devices. A device left out
 * is I/O that no evidence shows; one too many is another storage's I/O
 * counted here.
 *
 *   sdb 8:16, with partitions sdb1 8:17 and sdb2 8:18
 *   dm-0 253:0 on sdb1, dm-1 253:1 on dm-0 (LVM on a partition)
 *   loop3 7:3
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "devstack.h"

static char root[256];

static void put(const char *rel, const char *text)
{
	char path[PATH_MAX], *slash;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	for (slash = strchr(path + strlen(root) + 1, '/'); slash;
	     slash = strchr(slash + 1, '/')) {
		*slash = '\0';
		cr_assert(!mkdir(path, 0755) || errno == EEXIST, "mkdir %s: %s",
			  path, strerror(errno));
		*slash = '/';
	}
	if (!text) {
		cr_assert(!mkdir(path, 0755) || errno == EEXIST);
		return;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	cr_assert(fd >= 0, "create %s: %s", path, strerror(errno));
	cr_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	close(fd);
}

static void link_to(const char *rel, const char *target)
{
	char path[PATH_MAX];

	snprintf(path, sizeof(path), "%s/%s", root, rel);
	cr_assert(!symlink(target, path), "symlink %s: %s", path,
		  strerror(errno));
}

/* A block device folder with its dev file, holders/ and slaves/. */
static void blockdev(const char *dir, const char *dev)
{
	char rel[PATH_MAX], text[32];

	snprintf(rel, sizeof(rel), "%s/dev", dir);
	snprintf(text, sizeof(text), "%s\n", dev);
	put(rel, text);
	snprintf(rel, sizeof(rel), "%s/holders", dir);
	put(rel, NULL);
	snprintf(rel, sizeof(rel), "%s/slaves", dir);
	put(rel, NULL);
}

#define SDB "devices/pci0000:00/0000:00:04.0/block/sdb"
#define VBLK "devices/virtual/block"

static void tree(void)
{
	snprintf(root, sizeof(root), "/tmp/iofence-devstack.XXXXXX");
	cr_assert(mkdtemp(root));
	blockdev(SDB, "8:16");
	put(SDB "/size", "1000\n");
	blockdev(SDB "/sdb1", "8:17");
	put(SDB "/sdb1/partition", "1\n");
	blockdev(SDB "/sdb2", "8:18");
	put(SDB "/sdb2/partition", "2\n");
	put(SDB "/queue/scheduler", "none\n");
	blockdev(VBLK "/dm-0", "253:0");
	blockdev(VBLK "/dm-1", "253:1");
	blockdev(VBLK "/loop3", "7:3");
	put(VBLK "/loop3/loop/backing_file", "/srv/disk.img\n");
	put(VBLK "/loop3/uevent",
	    "MAJOR=7\nMINOR=3\nDEVNAME=loop3\nDEVTYPE=disk\n");
	put(SDB "/uevent", "MAJOR=8\nMINOR=16\nDEVNAME=sdb\n");
	link_to(SDB "/sdb1/holders/dm-0",
		"../../../../../../virtual/block/dm-0");
	link_to(VBLK "/dm-0/slaves/sdb1",
		"../../../../pci0000:00/0000:00:04.0/block/sdb/sdb1");
	link_to(VBLK "/dm-0/holders/dm-1", "../../dm-1");
	link_to(VBLK "/dm-1/slaves/dm-0", "../../dm-0");
	put("dev/block", NULL);
	link_to("dev/block/8:16", "../../" SDB);
	link_to("dev/block/8:17", "../../" SDB "/sdb1");
	link_to("dev/block/8:18", "../../" SDB "/sdb2");
	link_to("dev/block/253:0", "../../" VBLK "/dm-0");
	link_to("dev/block/253:1", "../../" VBLK "/dm-1");
	link_to("dev/block/7:3", "../../" VBLK "/loop3");
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

static void untree(void)
{
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(devstack, .init = tree, .fini = untree);

/* The role of @dev in @st, or 0 when it is not there. */
static enum iofence_dev_role role(const struct devstack *st, unsigned int ma,
				  unsigned int mi)
{
	for (unsigned int i = 0; i < st->n; i++)
		if (st->e[i].dev == makedev(ma, mi))
			return st->e[i].role;
	return 0;
}

Test(devstack, whole_disk_brings_its_partitions_and_what_sits_on_them)
{
	struct devstack st = { 0 };

	cr_assert_eq(devstack_add_block(&st, makedev(8, 16), IOFENCE_DEV_TARGET,
					root),
		     0);
	cr_expect_eq(st.n, 5);
	cr_expect_eq(role(&st, 8, 16), IOFENCE_DEV_TARGET);
	cr_expect_eq(role(&st, 8, 17), IOFENCE_DEV_PARTITION);
	cr_expect_eq(role(&st, 8, 18), IOFENCE_DEV_PARTITION);
	cr_expect_eq(role(&st, 253, 0), IOFENCE_DEV_HOLDER);
	cr_expect_eq(role(&st, 253, 1), IOFENCE_DEV_HOLDER);
	cr_expect_not(st.truncated);
}

Test(devstack, top_of_a_stack_goes_down_to_the_disk_not_to_its_neighbours)
{
	struct devstack st = { 0 };

	cr_assert_eq(devstack_add_block(&st, makedev(253, 1),
					IOFENCE_DEV_TARGET, root),
		     0);
	cr_expect_eq(st.n, 4);
	cr_expect_eq(role(&st, 253, 1), IOFENCE_DEV_TARGET);
	cr_expect_eq(role(&st, 253, 0), IOFENCE_DEV_SLAVE);
	cr_expect_eq(role(&st, 8, 17), IOFENCE_DEV_SLAVE);
	cr_expect_eq(role(&st, 8, 16), IOFENCE_DEV_WHOLE_DISK);
	/* The disk's other partition is another storage's business. */
	cr_expect_eq(role(&st, 8, 18), 0);
}

Test(devstack, partition_goes_up_and_down)
{
	struct devstack st = { 0 };

	cr_assert_eq(devstack_add_block(&st, makedev(8, 17), IOFENCE_DEV_FS,
					root),
		     0);
	cr_expect_eq(st.n, 4);
	cr_expect_eq(role(&st, 8, 17), IOFENCE_DEV_FS);
	cr_expect_eq(role(&st, 253, 0), IOFENCE_DEV_HOLDER);
	cr_expect_eq(role(&st, 253, 1), IOFENCE_DEV_HOLDER);
	cr_expect_eq(role(&st, 8, 16), IOFENCE_DEV_WHOLE_DISK);
	cr_expect_eq(role(&st, 8, 18), 0);
}

Test(devstack, unknown_device_is_added_alone)
{
	struct devstack st = { 0 };

	cr_expect_eq(devstack_add_block(&st, makedev(9, 9), IOFENCE_DEV_TARGET,
					root),
		     -ENOENT);
	cr_expect_eq(st.n, 1);
	cr_expect_eq(role(&st, 9, 9), IOFENCE_DEV_TARGET);
}

Test(devstack, a_device_is_listed_once_with_its_first_role)
{
	struct devstack st = { 0 };

	cr_expect(devstack_add(&st, makedev(8, 16), IOFENCE_DEV_TARGET));
	cr_expect_not(devstack_add(&st, makedev(8, 16), IOFENCE_DEV_HOLDER));
	devstack_add_block(&st, makedev(253, 1), IOFENCE_DEV_TARGET, root);
	cr_expect_eq(role(&st, 8, 16), IOFENCE_DEV_TARGET);
	cr_expect_eq(role(&st, 253, 1), IOFENCE_DEV_TARGET);
}

Test(devstack, a_cycle_ends)
{
	struct devstack st = { 0 };

	/* A loop the kernel never makes, but a broken tree could. */
	link_to(VBLK "/dm-1/holders/dm-0", "../../dm-0");
	cr_assert_eq(devstack_add_block(&st, makedev(253, 0),
					IOFENCE_DEV_TARGET, root),
		     0);
	cr_expect_eq(role(&st, 253, 1), IOFENCE_DEV_HOLDER);
	cr_expect_eq(role(&st, 8, 17), IOFENCE_DEV_SLAVE);
}

Test(devstack, too_many_devices_are_cut_and_said)
{
	struct devstack st = { 0 };
	char rel[PATH_MAX], dev[16], target[PATH_MAX];

	for (int i = 0; i < DEVSTACK_MAX + 4; i++) {
		snprintf(rel, sizeof(rel), VBLK "/dm-%d", 10 + i);
		snprintf(dev, sizeof(dev), "253:%d", 10 + i);
		blockdev(rel, dev);
		snprintf(rel, sizeof(rel), VBLK "/loop3/holders/dm-%d", 10 + i);
		snprintf(target, sizeof(target), "../../dm-%d", 10 + i);
		link_to(rel, target);
	}
	cr_assert_eq(devstack_add_block(&st, makedev(7, 3), IOFENCE_DEV_TARGET,
					root),
		     0);
	cr_expect_eq(st.n, DEVSTACK_MAX);
	cr_expect(st.truncated);
}

Test(devstack, loop_devices_and_their_names)
{
	char name[32];

	cr_expect(devstack_is_loop(makedev(7, 3), root));
	cr_expect_not(devstack_is_loop(makedev(8, 16), root));
	cr_expect_not(devstack_is_loop(makedev(9, 9), root));
	cr_assert_eq(devstack_devname(makedev(7, 3), root, name, sizeof(name)),
		     0);
	cr_expect_str_eq(name, "loop3");
	cr_expect_eq(devstack_devname(makedev(253, 0), root, name,
				      sizeof(name)),
		     -ENOENT);
	put(VBLK "/dm-0/uevent", "DEVNAME=../../etc/passwd\n");
	cr_expect_eq(devstack_devname(makedev(253, 0), root, name,
				      sizeof(name)),
		     -EINVAL);
}

Test(devstack, role_names)
{
	cr_expect_str_eq(devstack_role_name(IOFENCE_DEV_LOOP_BACKING),
			 "loop backing");
	cr_expect_str_eq(devstack_role_name(IOFENCE_DEV_WHOLE_DISK),
			 "whole disk");
	cr_expect_str_eq(devstack_role_name(0), "unknown");
}
