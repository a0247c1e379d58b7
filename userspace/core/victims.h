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
 * from the inode cache on NFS and FUSE instead of asking the server). A
 * process can still hold a read of its entries: maps and cmdline take
 * its mmap lock, which a thread in D state on the lost storage can hold,
 * and an exec stuck paging in a binary from a dead mount has held
 * readlink of its exe. So the scan runs off the fencing thread, in
 * passes (what can be known without the mmap lock, fds, working
 * directory, executable, is reported for every process before any maps
 * or cmdline is read, and a kill can be sent the moment a victim is
 * known), and each process's reads of a pass run on a helper thread
 * with a deadline (victims_probe.h): one that does not answer within
 * PROBE_DEADLINE_MS is given up on, a skip (-ETIMEDOUT) if it was a
 * candidate (by its executable's name, or its comm when that is all that
 * was read), and the scan goes on. While a read of it is still stuck, no
 * scan reads that process again (the same kind of entries): it is the
 * same skip at once. A victim whose command line does not answer is
 * reported unnamed, as one whose command line cannot be read.
 *
 * Each candidate's pidfd is opened before its /proc entries are read, so
 * the checks and the kill are about one process: a PID recycled after the
 * pidfd_open() is never signalled.
 *
 * A process whose entries cannot be read is skipped and counted, never
 * the end of the scan: one unreadable process must not spare the others.
 * A process that exits during the scan is neither.
 *
 * An rbd storage (the filter's rbd_pool set) has no device: a VM reaches
 * it through librbd's sockets, which name no pool. Its victims are the
 * processes matching the filter whose command line names a disk in the
 * pool and namespace (rbd_cmdline.h); the device set is not looked at.
 * Pass 1 opens their pidfds and finds nothing; the command line, which
 * takes the mmap lock, is read in pass 2 in place of the maps, into an
 * RBD_CMDLINE_MAX buffer on the heap (the helper's probe's: reused by
 * the scan, taken along by a probe given up on), and gives the disks and
 * the VM uuid at once. Without that buffer, each candidate is a skip
 * (-ENOMEM).
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
	/* "fd", "cwd", "mapping", "block device" or "rbd disk" */
	const char *why;
};

struct victim_filter {
	char *const *patterns; /* fnmatch(3) on the executable's basename */
	unsigned int npatterns;
	pid_t self; /* never a victim: the daemon */
	/*
	 * Set: an rbd storage's search, by command line, for disks in this
	 * pool and RADOS namespace (NULL or "": the default one). NULL: by
	 * device set, as for every other storage.
	 */
	const char *rbd_pool;
	const char *rbd_ns;
};

struct victim_scan_stats {
	/* candidate processes looked at (matched the filter by name) */
	unsigned int examined;
	/* processes whose /proc entries could not be read: skipped */
	unsigned int skipped;
	int last_err; /* negative errno of the last skip; 0 when none */
	pid_t last_pid; /* the process of that skip */
	/* the scan reached its end (false only if /proc itself failed mid-way) */
	bool complete;
};

/*
 * A victim, reported as soon as it is known to use the set: before the
 * mappings or command line of any process are read (an rbd search's
 * victims, known only by their command line, as soon as it is read). The
 * callee takes v->pidfd (it must close it or keep it); v->vm_uuid is
 * still "".
 */
typedef void (*victim_found_fn)(struct victim *v, void *arg);
/*
 * Later, the VM uuid of a victim reported by found(), when one was read:
 * in pass 3, or for an rbd victim right after its found().
 */
typedef void (*victim_named_fn)(pid_t pid, const char *vm_uuid, void *arg);

/*
 * Pass 1: every process matching the filter by name gets its pidfd and
 * its fds, cwd and executable checked (no mmap lock): found() for each
 * match at once. Pass 2: the candidates not matched yet have their maps
 * read: found() for each match. Pass 3: the command line of each victim
 * found, for its VM uuid: named(). For an rbd storage pass 1 finds
 * nothing and pass 2 reads command lines instead of maps: found() then
 * named() for each process naming a disk of the pool (a command line that
 * cannot be read whole and names none is a skip); pass 3 has nothing left
 * to read. A process whose entries cannot be read is skipped and counted
 * in @st, never the end of the scan. Returns the number of victims found,
 * or a negative errno only when @proc_root itself cannot be opened.
 *
 * @named may be NULL: then pass 3 is skipped. @st may be NULL.
 *
 * A candidate whose fds, cwd or executable could not all be read in pass
 * 1 is still looked at in pass 2: it is skipped only if its maps do not
 * prove it a victim either. A victim whose command line cannot be read is
 * reported unnamed, not skipped.
 *
 * No process holds the scan longer than PROBE_DEADLINE_MS per pass (see
 * above), and passes 2 and 3 come after every victim the first pass can
 * see has been reported. A victim
 * killed from found() has most often exited before pass 3, its command
 * line gone with its memory: the census (victims_vm_uuids()) read before
 * the fence names it.
 *
 * Memory and fds are bounded: the first candidates and victims kept past
 * pass 1 hold their pidfd and /proc directory open (VICTIM_SCAN_FDS fds
 * in all); later ones keep their pid and start time and are opened again
 * (pidfd first, then the start time checked through the new directory), so
 * a recycled pid is never taken for them. Past VICTIM_SCAN_KEEP such
 * processes, a candidate is skipped (-ENOSPC) and a victim goes unnamed.
 */
#define VICTIM_SCAN_FDS 128
#define VICTIM_SCAN_KEEP 16384
int victims_scan_each(const struct devset *set, const struct victim_filter *f,
		      const char *proc_root, victim_found_fn found,
		      victim_named_fn named, void *arg,
		      struct victim_scan_stats *st);

/*
 * victims_scan_each() into @out: at most @max entries, each with an open
 * pidfd and its VM uuid. Returns how many were found (which may exceed
 * @max: the rest are not returned and hold no pidfd), or a negative errno
 * when /proc cannot be opened. Processes that cannot be read are skipped.
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
 * VMs found (possibly more than @max), or a negative errno when /proc
 * cannot be opened. Processes that cannot be read are skipped and counted
 * in @st (may be NULL), here also a victim whose command line cannot be
 * read: it is a VM the record may miss.
 */
int victims_vm_uuids(const struct devset *set, const struct victim_filter *f,
		     const char *proc_root, char (*uuids)[37], unsigned int max,
		     struct victim_scan_stats *st);

#endif
