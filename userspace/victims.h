/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Finding and killing the processes that write to a lost storage.
 *
 * A victim is a process, matching the storage's victim filter (fnmatch(3)
 * patterns on the basename of /proc/<pid>/exe), that has an open file, a
 * memory mapping, or its working directory on the storage, or that holds
 * the storage's block device open. "On the storage" means on a device of
 * its device set: the file system's st_dev for a shared file system, or
 * the block device and every device stacked on it (dm, LVM, md: the
 * holders in sysfs, recursively) for a shared block device.
 *
 * Never PID 1, never this process, never a kernel thread.
 *
 * The scan must not hang on the lost storage it looks at: it reads only
 * procfs (fd links are statx'ed with AT_STATX_DONT_SYNC, which answers
 * from the inode cache on NFS and FUSE instead of asking the server) and
 * checks fds and the working directory before mappings (reading maps takes
 * the process's mmap lock).
 *
 * Each candidate's pidfd is opened before its /proc entries are read, so
 * the checks and the kill are about one process: a PID recycled after the
 * pidfd_open() is never signalled.
 */
#ifndef IOFENCE_VICTIMS_H
#define IOFENCE_VICTIMS_H

#include <stdbool.h>
#include <sys/types.h>

#define DEVSET_MAX 64
#define VICTIM_EXE_MAX 64

struct devset {
	dev_t dev[DEVSET_MAX];
	unsigned int n;
};

/* Adds @dev alone; -ENOSPC when full. Adding a member again is a no-op. */
int devset_add(struct devset *set, dev_t dev);
/*
 * Adds block device @dev and every device stacked on it, reading
 * /sys/dev/block/<maj>:<min>/holders/ recursively (@sysfs_root: "/sys",
 * or a test tree). -ENOSPC when the set is full.
 */
int devset_add_stack(struct devset *set, dev_t dev, const char *sysfs_root);
bool devset_has(const struct devset *set, dev_t dev);

struct victim {
	pid_t pid;
	int pidfd; /* -1 once released */
	char exe[VICTIM_EXE_MAX]; /* basename of the executable */
	char vm_uuid[37]; /* qemu's -uuid argument; "" when none */
	const char *why; /* "fd", "cwd", "mapping" or "block device" */
};

struct victim_filter {
	char *const *patterns; /* fnmatch(3) on the executable's basename */
	unsigned int npatterns;
	pid_t self; /* never a victim: the daemon */
};

/*
 * Scans /proc (@proc_root: "/proc" or a test tree) for the victims of
 * @set, filling at most @max entries of @out, each with an open pidfd.
 * Returns how many were found (which may exceed @max: the rest are not
 * returned and hold no pidfd), or a negative errno when /proc cannot be
 * read. Processes that vanish during the scan are skipped.
 */
int victims_scan(const struct devset *set, const struct victim_filter *f,
		 const char *proc_root, struct victim *out, unsigned int max);
/* SIGKILL through the pidfd: 0, or a negative errno (-ESRCH: gone). */
int victim_kill(const struct victim *v);
/* Closes the pidfds of @n victims. */
void victims_release(struct victim *v, unsigned int n);
/*
 * The VM uuids of the processes matching @f that use @set, for the
 * heartbeat record: like victims_scan() but opens no pidfd. Writes at
 * most @max uuids of 37 bytes each into @uuids; returns the number of
 * VMs found (possibly more than @max) or a negative errno.
 */
int victims_vm_uuids(const struct devset *set, const struct victim_filter *f,
		     const char *proc_root, char (*uuids)[37],
		     unsigned int max);

#endif
