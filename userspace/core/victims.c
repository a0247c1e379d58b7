// SPDX-License-Identifier: GPL-2.0-only
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "hex.h"
#include "rbd_cmdline.h"
#include "record.h"
#include "victims.h"
#include "victims_probe.h"

#define PF_KTHREAD 0x00200000
#define DELETED_SUFFIX " (deleted)"
#define UUID_LEN 36
/* qemu's -uuid comes early in its arguments; the cap bounds other matches. */
#define CMDLINE_MAX (64 * 1024)

bool devset_has(const struct devset *set, dev_t dev)
{
	for (unsigned int i = 0; i < set->n; i++)
		if (set->dev[i] == dev)
			return true;
	return false;
}

int devset_add(struct devset *set, dev_t dev)
{
	if (devset_has(set, dev))
		return 0;
	if (set->n >= DEVSET_MAX)
		return -ENOSPC;
	set->dev[set->n++] = dev;
	return 0;
}

static bool vanished(int err)
{
	return err == -ENOENT || err == -ESRCH;
}

/* getdents64() over a caller's buffer: no allocation per directory. */
struct dirscan {
	int fd;
	char *buf;
	size_t size, pos, len;
};

#define DIRSCAN_BUF(name, size) \
	char name[size] __attribute__((aligned(__alignof__(struct dirent64))))

static void dirscan_init(struct dirscan *d, int fd, char *buf, size_t size)
{
	d->fd = fd;
	d->buf = buf;
	d->size = size;
	d->pos = 0;
	d->len = 0;
}

/* The next name not starting with '.'; NULL at the end or with *err set. */
static const char *dirscan_next(struct dirscan *d, int *err)
{
	const struct dirent64 *de;
	ssize_t n;

	for (;;) {
		if (d->pos >= d->len) {
			n = getdents64(d->fd, d->buf, d->size);
			if (n <= 0) {
				*err = n < 0 ? -errno : 0;
				return NULL;
			}
			d->len = (size_t)n;
			d->pos = 0;
		}
		de = (const struct dirent64 *)(d->buf + d->pos);
		d->pos += de->d_reclen;
		if (de->d_name[0] != '.')
			return de->d_name;
	}
}

/* Reads a small file whole, NUL-terminated; the length or -errno. */
static ssize_t read_small(int dirfd, const char *path, char *buf, size_t size)
{
	size_t len = 0;
	ssize_t n;
	int fd, err = 0;

	fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (len < size - 1) {
		n = read(fd, buf + len, size - 1 - len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (!n)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return err ? err : (ssize_t)len;
}

static int parse_devnum(const char *s, dev_t *dev)
{
	unsigned long maj, min;
	char *end;

	errno = 0;
	maj = strtoul(s, &end, 10);
	if (end == s || *end != ':' || errno)
		return -EINVAL;
	s = end + 1;
	min = strtoul(s, &end, 10);
	if (end == s || (*end && *end != '\n') || errno || maj > UINT_MAX ||
	    min > UINT_MAX)
		return -EINVAL;
	*dev = makedev(maj, min);
	return 0;
}

/* Adds the holders of @dev, queueing the ones new to the set. */
static int add_holders(struct devset *set, dev_t dev, const char *sysfs_root,
		       dev_t *queue, unsigned int *tail)
{
	DIRSCAN_BUF(dents, 1024);
	char path[PATH_MAX], num[32];
	struct dirscan d;
	const char *name;
	dev_t holder;
	ssize_t n;
	int fd, ret = 0;

	n = snprintf(path, sizeof(path), "%s/dev/block/%u:%u/holders",
		     sysfs_root, major(dev), minor(dev));
	if (n < 0 || (size_t)n >= sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	dirscan_init(&d, fd, dents, sizeof(dents));
	while ((name = dirscan_next(&d, &ret))) {
		n = snprintf(path, sizeof(path), "%s/class/block/%s/dev",
			     sysfs_root, name);
		if (n < 0 || (size_t)n >= sizeof(path)) {
			ret = -ENAMETOOLONG;
			break;
		}
		n = read_small(AT_FDCWD, path, num, sizeof(num));
		/* A holder removed since the listing no longer writes. */
		if (n == -ENOENT)
			continue;
		if (n < 0) {
			ret = (int)n;
			break;
		}
		ret = parse_devnum(num, &holder);
		if (ret)
			break;
		if (devset_has(set, holder))
			continue;
		ret = devset_add(set, holder);
		if (ret)
			break;
		queue[(*tail)++] = holder;
	}
	close(fd);
	return ret;
}

int devset_add_stack(struct devset *set, dev_t dev, const char *sysfs_root)
{
	/*
	 * Breadth-first: only devices new to the set are queued, so cycles
	 * and shared holders end, and the queue never outgrows the set.
	 */
	dev_t queue[DEVSET_MAX + 1];
	unsigned int head = 0, tail = 0;
	int ret;

	ret = devset_add(set, dev);
	if (ret)
		return ret;
	queue[tail++] = dev;
	while (head < tail) {
		ret = add_holders(set, queue[head++], sysfs_root, queue, &tail);
		if (ret)
			return ret;
	}
	return 0;
}

/*
 * The basename of the executable @path links to, inside @buf; NULL with
 * *err set when the link cannot be read (kernel threads and zombies have
 * none).
 */
static const char *exe_name(int dirfd, const char *path, char *buf, size_t size,
			    int *err)
{
	size_t slen = strlen(DELETED_SUFFIX);
	const char *slash;
	ssize_t n;

	n = readlinkat(dirfd, path, buf, size);
	if (n < 0) {
		*err = -errno;
		return NULL;
	}
	if ((size_t)n >= size) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	buf[n] = '\0';
	/* A binary replaced by a package upgrade still names the VM. */
	if ((size_t)n > slen && !strcmp(buf + n - slen, DELETED_SUFFIX))
		buf[n - slen] = '\0';
	slash = strrchr(buf, '/');
	return slash ? slash + 1 : buf;
}

static bool filter_matches(const struct victim_filter *f, const char *name)
{
	for (unsigned int i = 0; i < f->npatterns; i++)
		if (!fnmatch(f->patterns[i], name, 0))
			return true;
	return false;
}

/*
 * Whether the process is a kernel thread, and its start time: with the
 * pid, who it is, for a process looked at again without its fds.
 */
static int proc_stat(int dirfd, bool *kthread, unsigned long long *start)
{
	char buf[1024];
	unsigned int flags;
	const char *p;
	ssize_t n;

	n = read_small(dirfd, "stat", buf, sizeof(buf));
	if (n < 0)
		return (int)n;
	/* comm may hold spaces and parentheses: the fields follow the last ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 1,
			 " %*c %*d %*d %*d %*d %*d %u %*u %*u %*u %*u %*u %*u"
			 " %*d %*d %*d %*d %*d %*d %llu",
			 &flags, start) != 2)
		return -EINVAL;
	*kthread = flags & PF_KTHREAD;
	return 0;
}

/*
 * The device of what @path (a /proc link) names, and the device it is
 * when a block device node (0 otherwise). Never a round trip to a file
 * server: AT_STATX_DONT_SYNC answers from the inode cache.
 */
static int link_devs(int dirfd, const char *path, dev_t *dev, dev_t *rdev)
{
	struct statx stx;

	if (statx(dirfd, path, AT_STATX_DONT_SYNC, STATX_TYPE, &stx)) {
		if (errno != EACCES)
			return -errno;
		/*
		 * FUSE refuses attributes to the processes its mount does not
		 * allow (no allow_other), root too, but gives st_dev alone for
		 * an empty mask.
		 */
		if (statx(dirfd, path, AT_STATX_DONT_SYNC, 0, &stx))
			return -errno;
	}
	*dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
	*rdev = 0;
	if ((stx.stx_mask & STATX_TYPE) && S_ISBLK(stx.stx_mode))
		*rdev = makedev(stx.stx_rdev_major, stx.stx_rdev_minor);
	return 0;
}

/*
 * Whether a link target is on @set. A target that cannot be stat'ed is
 * not known to be on it: *err says so, unless it is gone (an fd closed
 * since the listing; the process itself vanishing is up to the caller's
 * next read of its /proc directory).
 */
static const char *link_use(const struct devset *set, int dirfd,
			    const char *path, const char *why, int *err)
{
	dev_t dev, rdev;
	int ret;

	ret = link_devs(dirfd, path, &dev, &rdev);
	if (ret) {
		if (!vanished(ret))
			*err = ret;
		return NULL;
	}
	if (devset_has(set, dev))
		return why;
	if (rdev && devset_has(set, rdev))
		return "block device";
	return NULL;
}

static int fd_use(const struct devset *set, int dirfd, const char **why,
		  int *err)
{
	DIRSCAN_BUF(dents, 2048);
	struct dirscan d;
	const char *name;
	int fd, ret = 0;

	fd = openat(dirfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dirscan_init(&d, fd, dents, sizeof(dents));
	while ((name = dirscan_next(&d, &ret))) {
		*why = link_use(set, fd, name, "fd", err);
		if (*why) {
			ret = 1;
			break;
		}
	}
	close(fd);
	return ret;
}

/* Line by line without holding a line: paths in maps have no bound. */
struct maps_line {
	unsigned int field;
	unsigned long maj, min, ino;
	bool minor, bad, done;
};

static bool maps_line_uses(const struct devset *set, const struct maps_line *l)
{
	return l->field == 4 && !l->bad && l->ino &&
	       devset_has(set, makedev(l->maj, l->min));
}

/* Feeds @n bytes of maps; true once a line maps a file on @set. */
static bool maps_feed(const struct devset *set, struct maps_line *l,
		      const char *buf, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = buf[i];
		int v;

		if (c == '\n') {
			if (!l->done && maps_line_uses(set, l))
				return true;
			memset(l, 0, sizeof(*l));
			continue;
		}
		if (l->done)
			continue;
		if (c == ' ') {
			/* "start-end perms offset maj:min inode   path" */
			if (l->field == 4) {
				if (maps_line_uses(set, l))
					return true;
				l->done = true;
			} else {
				l->field++;
			}
			continue;
		}
		if (l->field == 3) {
			v = hex_digit(c);
			if (c == ':')
				l->minor = true;
			else if (v < 0)
				l->bad = true;
			else if (l->minor)
				l->min = l->min * 16 + (unsigned long)v;
			else
				l->maj = l->maj * 16 + (unsigned long)v;
		} else if (l->field == 4) {
			if (c < '0' || c > '9')
				l->bad = true;
			else
				l->ino = l->ino * 10 + (unsigned long)(c - '0');
		}
	}
	return false;
}

static int maps_use(const struct devset *set, int dirfd)
{
	struct maps_line line = { 0 };
	char buf[4096];
	ssize_t n;
	int fd, ret = 0;

	fd = openat(dirfd, "maps", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (;;) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		if (n <= 0)
			break;
		if (maps_feed(set, &line, buf, (size_t)n)) {
			ret = 1;
			break;
		}
	}
	close(fd);
	return ret;
}

/*
 * 1 with @why when an fd, the working directory or the executable of the
 * process is on @set; 0 when none is, with *err set when one could not be
 * read. None of these takes the process's mmap lock.
 */
static int links_use(const struct devset *set, int dirfd, const char **why,
		     int *err)
{
	int ret;

	ret = fd_use(set, dirfd, why, err);
	if (ret > 0)
		return 1;
	if (ret < 0 && !vanished(ret))
		*err = ret;
	*why = link_use(set, dirfd, "cwd", "cwd", err);
	if (*why)
		return 1;
	/* The executable is a mapping known without the mmap lock. */
	*why = link_use(set, dirfd, "exe", "mapping", err);
	return *why ? 1 : 0;
}

/* What the heartbeat record can carry is what counts as a VM uuid. */
static bool uuid_valid(char *s, size_t len)
{
	uint8_t bin[RECORD_VM_UUID_SIZE];

	if (len != UUID_LEN)
		return false;
	s[len] = '\0';
	return !record_uuid_parse(s, bin);
}

/* Arguments are NUL-terminated; only short ones can be "-uuid" or a uuid. */
struct cmdline_arg {
	char s[UUID_LEN + 1];
	size_t len; /* may exceed UUID_LEN: then s holds a prefix */
	bool after_uuid; /* the previous argument was -uuid */
};

/* Ends the current argument; true once it is the uuid, copied to @uuid. */
static bool cmdline_arg_end(struct cmdline_arg *a, char *uuid)
{
	if (a->after_uuid && uuid_valid(a->s, a->len)) {
		memcpy(uuid, a->s, UUID_LEN);
		uuid[UUID_LEN] = '\0';
		return true;
	}
	/* qemu takes its options with one dash or two. */
	a->after_uuid = (a->len == 5 && !memcmp(a->s, "-uuid", 5)) ||
			(a->len == 6 && !memcmp(a->s, "--uuid", 6));
	a->len = 0;
	return false;
}

/* Feeds @n bytes of a command line; true once the uuid is in @uuid. */
static bool cmdline_feed(struct cmdline_arg *a, const char *buf, size_t n,
			 char *uuid)
{
	for (size_t i = 0; i < n; i++) {
		if (buf[i]) {
			if (a->len < UUID_LEN)
				a->s[a->len] = buf[i];
			a->len++;
		} else if (cmdline_arg_end(a, uuid)) {
			return true;
		}
	}
	return false;
}

/*
 * The VM uuid of a command line already read, @len bytes; @cut: there was
 * more, and the last argument may be a prefix of the real one.
 */
static void cmdline_vm_uuid(const char *buf, size_t len, bool cut, char *uuid)
{
	struct cmdline_arg arg = { .len = 0 };

	uuid[0] = '\0';
	if (!cmdline_feed(&arg, buf, len, uuid) && !cut && arg.len)
		cmdline_arg_end(&arg, uuid);
}

static int read_vm_uuid(int dirfd, char *uuid)
{
	struct cmdline_arg arg = { .len = 0 };
	size_t total = 0;
	char buf[4096];
	ssize_t n;
	int fd, ret = 0;

	uuid[0] = '\0';
	fd = openat(dirfd, "cmdline", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	while (total < CMDLINE_MAX) {
		n = read(fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = -errno;
		if (n <= 0)
			break;
		total += (size_t)n;
		if (cmdline_feed(&arg, buf, (size_t)n, uuid))
			goto out;
	}
	/* A rewritten command line may end without its NUL. */
	if (!ret && arg.len)
		cmdline_arg_end(&arg, uuid);
out:
	close(fd);
	return ret;
}

/* A process opened for its checks. */
struct proc {
	int dirfd; /* its /proc directory */
	int pidfd; /* -1 when not wanted */
	unsigned long long start;
	char exe[VICTIM_EXE_MAX];
};

static void proc_close(struct proc *p)
{
	if (p->pidfd >= 0)
		close(p->pidfd);
	if (p->dirfd >= 0)
		close(p->dirfd);
	p->pidfd = -1;
	p->dirfd = -1;
}

/*
 * What one scan keeps of a process past pass 1: a candidate for pass 2,
 * or a victim to name in pass 3.
 */
struct kept {
	pid_t pid;
	int dirfd; /* -1 when not held: opened again by pid and start time */
	int pidfd; /* likewise; -1 for a victim, whose pidfd was handed over */
	int err; /* a check of pass 1 that failed: a skip unless maps prove use */
	unsigned long long start;
	enum { KEPT_CANDIDATE, KEPT_VICTIM, KEPT_DONE } state;
};

/*
 * What the reads of a scan need: its own copies, shared with its probes
 * by reference, since an abandoned probe outlives the scan.
 */
struct scan_ctx {
	int refs;
	int procfd;
	bool rbd; /* by command line: the filter's rbd_pool is set */
	struct devset set;
	struct victim_filter f; /* patterns only: what names a candidate */
	char **patterns;
};

static struct scan_ctx *ctx_get(struct scan_ctx *c)
{
	__atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED);
	return c;
}

static void ctx_put(struct scan_ctx *c)
{
	if (!c || __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL))
		return;
	if (c->procfd >= 0)
		close(c->procfd);
	for (unsigned int i = 0; i < c->f.npatterns; i++)
		free(c->patterns[i]);
	free(c->patterns);
	free(c);
}

static struct scan_ctx *ctx_new(const struct devset *set,
				const struct victim_filter *f)
{
	struct scan_ctx *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->refs = 1;
	c->procfd = -1;
	c->rbd = f->rbd_pool;
	c->set = *set;
	c->patterns =
		calloc(f->npatterns ? f->npatterns : 1, sizeof(*c->patterns));
	if (!c->patterns) {
		free(c);
		return NULL;
	}
	c->f.patterns = c->patterns;
	c->f.self = f->self;
	for (unsigned int i = 0; i < f->npatterns; i++) {
		c->patterns[i] = strdup(f->patterns[i]);
		if (!c->patterns[i]) {
			ctx_put(c);
			return NULL;
		}
		c->f.npatterns++;
	}
	return c;
}

/*
 * The reads of one process, on a helper (victims_probe.h): only what it
 * owns and its scan_ctx, never the scan, which may be over when a read
 * that blocked returns.
 */
struct vprobe {
	struct probe p;
	struct scan_ctx *c;
	enum { VP_LOOK, VP_MAPS, VP_CMDLINE, VP_NAME } what;
	bool want_pidfd;
	char name[16]; /* VP_LOOK: the /proc entry */
	struct kept k; /* the others: the kept process, its fds the probe's */
	/* what it found */
	enum { LOOK_NONE, LOOK_SKIP, LOOK_CANDIDATE, LOOK_VICTIM } look;
	bool examined;
	int ret, err;
	const char *why;
	struct proc proc; /* opened: the caller's once the probe is back */
	char uuid[UUID_LEN + 1];
	char *cmdline; /* VP_CMDLINE: RBD_CMDLINE_MAX bytes */
	ssize_t len;
	bool cut;
};

static void kept_fds_close(struct kept *k)
{
	struct proc p = { .dirfd = k->dirfd, .pidfd = k->pidfd };

	k->dirfd = -1;
	k->pidfd = -1;
	proc_close(&p);
}

static void vprobe_free(struct vprobe *vp)
{
	if (!vp)
		return;
	proc_close(&vp->proc);
	kept_fds_close(&vp->k);
	free(vp->cmdline);
	ctx_put(vp->c);
	free(vp);
}

/* The probe is the first member: a vprobe is its probe. */
static struct vprobe *vprobe_of(struct probe *p)
{
	return (struct vprobe *)p;
}

static void vprobe_drop(struct probe *p)
{
	vprobe_free(vprobe_of(p));
}

/* The command name of process @name, "" when it cannot be read. */
static void read_comm(int procfd, const char *name, char *comm, size_t size)
{
	char path[32];
	ssize_t n;

	snprintf(path, sizeof(path), "%s/comm", name);
	n = read_small(procfd, path, comm, size);
	if (n <= 0) {
		comm[0] = '\0';
		return;
	}
	if (comm[n - 1] == '\n')
		comm[n - 1] = '\0';
}

/*
 * Opens process @pid (entry @name of /proc): its directory, then its
 * pidfd when wanted, then reads its exe again through the directory.
 * 1: a candidate, with the fds of @p open; 0: gone, no longer a match, or
 * a kernel thread; -errno: its entries cannot be read.
 */
static int proc_open(const struct scan_ctx *c, const char *name, pid_t pid,
		     bool want_pidfd, struct proc *p)
{
	char path[PATH_MAX];
	const char *exe;
	bool kthread = false;
	int ret = 0;

	p->pidfd = -1;
	p->dirfd = openat(c->procfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0) {
		ret = -errno;
		return vanished(ret) ? 0 : ret;
	}
	if (want_pidfd) {
		p->pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (p->pidfd < 0) {
			ret = -errno;
			goto fail;
		}
	}
	/*
	 * /proc/<pid> opened on a process answers only while that process
	 * lives: reading its exe again after pidfd_open() proves the pid was
	 * not recycled in between, so the pidfd, the checks and the name are
	 * all about one process.
	 */
	exe = exe_name(p->dirfd, "exe", path, sizeof(path), &ret);
	if (!exe)
		goto fail;
	if (!filter_matches(&c->f, exe))
		goto fail;
	snprintf(p->exe, sizeof(p->exe), "%s", exe);
	/*
	 * Kernel threads stop above, having no exe link; the flag is what
	 * defines them, should that ever change.
	 */
	ret = proc_stat(p->dirfd, &kthread, &p->start);
	if (ret)
		goto fail;
	if (kthread)
		goto fail;
	return 1;
fail:
	proc_close(p);
	return vanished(ret) ? 0 : ret;
}

/*
 * Opens a kept process again, without the fds it once had: it is the
 * same process only if it started at the same time (the pidfd is opened
 * first, so a pid recycled after the check is not that pidfd's either).
 */
static int proc_reopen(const struct scan_ctx *c, const struct kept *k,
		       bool want_pidfd, struct proc *p)
{
	char name[16];
	int ret;

	snprintf(name, sizeof(name), "%d", k->pid);
	ret = proc_open(c, name, k->pid, want_pidfd, p);
	if (ret > 0 && p->start != k->start) {
		proc_close(p);
		ret = 0;
	}
	return ret;
}

/* The kept process @k, with the fds it holds (now @p's) or opened again. */
static int kept_open(const struct scan_ctx *c, struct kept *k, bool want_pidfd,
		     struct proc *p)
{
	char path[PATH_MAX];
	const char *exe;
	int ret = 0;

	if (k->dirfd < 0)
		return proc_reopen(c, k, want_pidfd, p);
	*p = (struct proc){ .dirfd = k->dirfd, .pidfd = k->pidfd };
	k->dirfd = -1;
	k->pidfd = -1;
	/* Still the program it was: it may have exec'd since. */
	exe = exe_name(p->dirfd, "exe", path, sizeof(path), &ret);
	if (!exe || !filter_matches(&c->f, exe)) {
		proc_close(p);
		return vanished(ret) ? 0 : ret;
	}
	snprintf(p->exe, sizeof(p->exe), "%s", exe);
	p->start = k->start;
	return 1;
}

/* Pass 1 on one process: by name, then by its fds, cwd and executable. */
static void look_run(struct vprobe *vp)
{
	const struct scan_ctx *c = vp->c;
	char link[32], path[PATH_MAX], comm[PROBE_NOTE_MAX];
	const char *exe, *why = NULL;
	int ret, err = 0;

	/*
	 * The command name first: reading it takes nothing a process can
	 * hold (the task lock only), so a caller that gave up on what
	 * follows can still tell whether this was a candidate.
	 */
	read_comm(c->procfd, vp->name, comm, sizeof(comm));
	if (comm[0])
		probe_note(&vp->p, comm);
	/*
	 * A process whose executable cannot be read is a candidate only if
	 * its command name (comm, which any process may set) matches: then
	 * it is one this scan cannot examine, and a skip. Otherwise not one
	 * at all, whatever the error: kernel threads and zombies have no
	 * executable, and some sandboxes hide their init even from root.
	 */
	snprintf(link, sizeof(link), "%s/exe", vp->name);
	exe = exe_name(c->procfd, link, path, sizeof(path), &ret);
	if (!exe) {
		if (!vanished(ret) && comm[0] && filter_matches(&c->f, comm)) {
			vp->look = LOOK_SKIP;
			vp->ret = ret;
		}
		return;
	}
	if (!filter_matches(&c->f, exe))
		return;
	/* The full name, should what follows block: comm is cut at 15. */
	probe_note(&vp->p, exe);
	vp->examined = true;
	ret = proc_open(c, vp->name, vp->p.pid, vp->want_pidfd, &vp->proc);
	if (ret <= 0) {
		if (ret) {
			vp->look = LOOK_SKIP;
			vp->ret = ret;
		}
		return;
	}
	/* librbd holds only sockets: an rbd victim shows in pass 2 alone. */
	if (!c->rbd && links_use(&c->set, vp->proc.dirfd, &why, &err)) {
		vp->look = LOOK_VICTIM;
		vp->why = why;
		return;
	}
	vp->look = LOOK_CANDIDATE;
	vp->err = err;
}

/* Pass 2: the maps, under the process's mmap lock. */
static void maps_run(struct vprobe *vp)
{
	int ret = kept_open(vp->c, &vp->k, vp->want_pidfd, &vp->proc);

	if (ret > 0) {
		ret = maps_use(&vp->c->set, vp->proc.dirfd);
		if (ret <= 0)
			proc_close(&vp->proc);
	}
	vp->ret = ret;
}

/* Pass 2 of an rbd search: the command line, under the mmap lock. */
static void cmdline_run(struct vprobe *vp)
{
	int ret = kept_open(vp->c, &vp->k, vp->want_pidfd, &vp->proc);

	if (ret > 0) {
		vp->len = rbd_cmdline_read(vp->proc.dirfd, vp->cmdline,
					   RBD_CMDLINE_MAX, &vp->cut);
		if (vp->len < 0) {
			ret = (int)vp->len;
			proc_close(&vp->proc);
		}
	}
	vp->ret = ret;
}

/* Pass 3: a victim's VM uuid, from its command line. */
static void name_run(struct vprobe *vp)
{
	int ret = kept_open(vp->c, &vp->k, false, &vp->proc);

	vp->uuid[0] = '\0';
	if (ret > 0) {
		ret = read_vm_uuid(vp->proc.dirfd, vp->uuid);
		proc_close(&vp->proc);
	}
	vp->ret = ret;
}

static void vprobe_run(struct probe *p)
{
	struct vprobe *vp = vprobe_of(p);

	switch (vp->what) {
	case VP_LOOK:
		look_run(vp);
		break;
	case VP_MAPS:
		maps_run(vp);
		break;
	case VP_CMDLINE:
		cmdline_run(vp);
		break;
	case VP_NAME:
		name_run(vp);
		break;
	}
}

struct scan {
	const struct devset *set;
	const struct victim_filter *f;
	struct scan_ctx *c;
	struct vprobe *probe; /* back from its last run: reused */
	bool want_pidfd;
	bool census; /* an unnamed VM is missing from the record: a skip */
	victim_found_fn found;
	victim_named_fn named;
	void *arg;
	struct victim_scan_stats st;
	struct kept *kept;
	unsigned int nkept, cap;
	unsigned int held; /* fds held by kept[] */
	int nfound;
};

static void skip(struct scan *s, pid_t pid, int err)
{
	s->st.skipped++;
	s->st.last_err = err;
	s->st.last_pid = pid;
}

/*
 * A probe for @what on process @pid, or NULL (out of memory). @k: the
 * kept process it reads, whose fds go to the probe.
 */
static struct vprobe *vprobe_get(struct scan *s, int what, pid_t pid,
				 struct kept *k)
{
	struct vprobe *vp = s->probe;

	if (!vp) {
		vp = calloc(1, sizeof(*vp));
		if (!vp)
			return NULL;
		vp->c = ctx_get(s->c);
		vp->p.run = vprobe_run;
		vp->p.drop = vprobe_drop;
		vp->proc = (struct proc){ .dirfd = -1, .pidfd = -1 };
		vp->k = (struct kept){ .dirfd = -1, .pidfd = -1 };
		s->probe = vp;
	}
	if (what == VP_CMDLINE && !vp->cmdline &&
	    !(vp->cmdline = malloc(RBD_CMDLINE_MAX)))
		return NULL;
	vp->what = what;
	vp->p.pid = pid;
	vp->p.kind = what == VP_LOOK ? PROBE_PROC : PROBE_MM;
	vp->want_pidfd = s->want_pidfd;
	vp->look = LOOK_NONE;
	vp->examined = false;
	vp->ret = vp->err = 0;
	vp->why = NULL;
	/* What the last run left open: nothing, unless it failed early. */
	proc_close(&vp->proc);
	kept_fds_close(&vp->k);
	if (k) {
		vp->k = *k;
		s->held -= (k->dirfd >= 0) + (k->pidfd >= 0);
		k->dirfd = -1;
		k->pidfd = -1;
	}
	return vp;
}

/*
 * Runs @vp with its deadline: 0, or -ETIMEDOUT with the probe gone to
 * its helper (its name, as far as it was read, in @note).
 */
static int vprobe_run_in_time(struct scan *s, struct vprobe *vp, char *note,
			      size_t len)
{
	int ret = probe_run(&vp->p, PROBE_DEADLINE_MS, note, len);

	if (ret)
		s->probe = NULL;
	return ret;
}

/*
 * A process whose reads were given up on, or still are by another
 * search: as for an executable that cannot be read, a skip only if the
 * name it was known by (its exe, else its comm) is a candidate's.
 */
static void stuck_skip(struct scan *s, pid_t pid, const char *name)
{
	if (name[0] && filter_matches(s->f, name))
		skip(s, pid, -ETIMEDOUT);
}

/* A new entry of kept[], or NULL with *err set past the bound. */
static struct kept *keep(struct scan *s, pid_t pid, int *err)
{
	struct kept *grown;
	unsigned int cap;

	if (s->nkept == s->cap) {
		if (s->cap >= VICTIM_SCAN_KEEP) {
			*err = -ENOSPC;
			return NULL;
		}
		cap = s->cap ? s->cap * 2 : 64;
		if (cap > VICTIM_SCAN_KEEP)
			cap = VICTIM_SCAN_KEEP;
		grown = realloc(s->kept, cap * sizeof(*grown));
		if (!grown) {
			*err = -ENOMEM;
			return NULL;
		}
		s->kept = grown;
		s->cap = cap;
	}
	s->kept[s->nkept] = (struct kept){
		.pid = pid,
		.dirfd = -1,
		.pidfd = -1,
		.state = KEPT_CANDIDATE,
	};
	return &s->kept[s->nkept++];
}

/* Holds the open fds of @p in @k while the budget allows; closes the rest. */
static void keep_fds(struct scan *s, struct kept *k, struct proc *p)
{
	unsigned int need = (p->dirfd >= 0) + (p->pidfd >= 0);

	k->start = p->start;
	if (s->held + need <= VICTIM_SCAN_FDS) {
		k->dirfd = p->dirfd;
		k->pidfd = p->pidfd;
		p->dirfd = -1;
		p->pidfd = -1;
		s->held += need;
	}
	proc_close(p);
}

static void kept_close(struct scan *s, struct kept *k)
{
	s->held -= (k->dirfd >= 0) + (k->pidfd >= 0);
	kept_fds_close(k);
}

/*
 * Reports a victim, handing its pidfd over, and keeps it for its name when
 * pass 3 is to run (in @k, the candidate it was, or a new entry). A victim
 * whose command line was read already comes with its @uuid ("" for none):
 * named at once, nothing left for pass 3.
 */
static void report(struct scan *s, pid_t pid, struct proc *p, const char *why,
		   struct kept *k, const char *uuid)
{
	struct victim v = { .pid = pid, .pidfd = p->pidfd, .why = why };
	int err = 0;

	snprintf(v.exe, sizeof(v.exe), "%s", p->exe);
	p->pidfd = -1;
	s->nfound++;
	s->found(&v, s->arg);
	if (uuid && uuid[0] && s->named)
		s->named(pid, uuid, s->arg);
	if (!s->named || uuid) {
		proc_close(p);
		if (k)
			k->state = KEPT_DONE;
		return;
	}
	if (!k)
		k = keep(s, pid, &err);
	if (!k) {
		proc_close(p);
		if (s->census)
			skip(s, pid, err);
		return;
	}
	k->state = KEPT_VICTIM;
	keep_fds(s, k, p);
}

/* Pass 1 on process @name: by name, then by its fds, cwd and executable. */
static void look(struct scan *s, const char *name, pid_t pid)
{
	char note[PROBE_NOTE_MAX];
	struct vprobe *vp;
	struct kept *k;
	int ret;

	/* Another search's read of it is still stuck: this one would be. */
	if (probe_stuck(pid, PROBE_PROC, note, sizeof(note))) {
		stuck_skip(s, pid, note);
		return;
	}
	vp = vprobe_get(s, VP_LOOK, pid, NULL);
	if (!vp) {
		skip(s, pid, -ENOMEM);
		return;
	}
	snprintf(vp->name, sizeof(vp->name), "%s", name);
	if (vprobe_run_in_time(s, vp, note, sizeof(note))) {
		stuck_skip(s, pid, note);
		return;
	}
	if (vp->examined)
		s->st.examined++;
	switch (vp->look) {
	case LOOK_NONE:
		break;
	case LOOK_SKIP:
		skip(s, pid, vp->ret);
		break;
	case LOOK_VICTIM:
		report(s, pid, &vp->proc, vp->why, NULL, NULL);
		break;
	case LOOK_CANDIDATE:
		k = keep(s, pid, &ret);
		if (!k) {
			proc_close(&vp->proc);
			skip(s, pid, ret);
			break;
		}
		k->err = vp->err;
		keep_fds(s, k, &vp->proc);
		break;
	}
}

/*
 * The probe of pass 2 or 3 on kept process @k, run in time: NULL when it
 * cannot be read now (stuck or given up: a skip for the caller to count,
 * -ETIMEDOUT in *err; or out of memory).
 */
static struct vprobe *kept_probe(struct scan *s, struct kept *k, int what,
				 int *err)
{
	struct vprobe *vp;

	*err = -ETIMEDOUT;
	if (probe_stuck(k->pid, PROBE_MM, NULL, 0)) {
		kept_close(s, k);
		return NULL;
	}
	vp = vprobe_get(s, what, k->pid, k);
	if (!vp) {
		kept_close(s, k);
		*err = -ENOMEM;
		return NULL;
	}
	if (vprobe_run_in_time(s, vp, NULL, 0))
		return NULL;
	return vp;
}

/* Pass 2 on a kept candidate: its maps, under its mmap lock. */
static void look_maps(struct scan *s, struct kept *k)
{
	struct vprobe *vp;
	int ret;

	vp = kept_probe(s, k, VP_MAPS, &ret);
	if (vp) {
		ret = vp->ret;
		if (ret > 0) {
			report(s, k->pid, &vp->proc, "mapping", k, NULL);
			return;
		}
		/* Nothing proves it a victim, and not all could be read. */
		if (!ret)
			ret = k->err;
	}
	if (ret < 0 && !vanished(ret))
		skip(s, k->pid, ret);
	k->state = KEPT_DONE;
}

/*
 * Pass 2 of an rbd search on a kept candidate: its command line, under its
 * mmap lock, names its disks and its VM uuid.
 */
static void look_cmdline(struct scan *s, struct kept *k)
{
	char uuid[UUID_LEN + 1];
	struct vprobe *vp;
	int ret;

	vp = kept_probe(s, k, VP_CMDLINE, &ret);
	if (vp) {
		ret = vp->ret;
		if (ret > 0) {
			ret = rbd_cmdline_disks(vp->cmdline, (size_t)vp->len,
						vp->cut, s->f->rbd_pool,
						s->f->rbd_ns, NULL, 0);
			if (ret > 0) {
				cmdline_vm_uuid(vp->cmdline, (size_t)vp->len,
						vp->cut, uuid);
				report(s, k->pid, &vp->proc, "rbd disk", k,
				       uuid);
				return;
			}
			proc_close(&vp->proc);
		}
	}
	/* An exited process reads as empty: no disk, no skip. */
	if (ret < 0 && !vanished(ret))
		skip(s, k->pid, ret);
	k->state = KEPT_DONE;
}

/* Pass 3 on a victim: its VM uuid, from its command line. */
static void name_victim(struct scan *s, struct kept *k)
{
	struct vprobe *vp;
	int ret;

	vp = kept_probe(s, k, VP_NAME, &ret);
	if (vp) {
		ret = vp->ret;
		if (!ret && vp->uuid[0])
			s->named(k->pid, vp->uuid, s->arg);
	}
	/* The uuid only names the VM: a victim without one is still one. */
	if (ret < 0 && !vanished(ret) && s->census)
		skip(s, k->pid, ret);
	k->state = KEPT_DONE;
}

static int scan(struct scan *s, const char *proc_root,
		struct victim_scan_stats *st)
{
	DIRSCAN_BUF(dents, 8192);
	struct dirscan d;
	const char *name;
	pid_t me = getpid();
	int ret = 0;

	s->c = ctx_new(s->set, s->f);
	if (!s->c) {
		if (st)
			*st = s->st;
		return -ENOMEM;
	}
	s->c->procfd = open(proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->c->procfd < 0) {
		ret = -errno;
		ctx_put(s->c);
		if (st)
			*st = s->st;
		return ret;
	}
	dirscan_init(&d, s->c->procfd, dents, sizeof(dents));
	while ((name = dirscan_next(&d, &ret))) {
		char *end;
		long pid;

		pid = strtol(name, &end, 10);
		if (*end || pid <= 1 || pid > INT_MAX || pid == me ||
		    pid == s->f->self)
			continue;
		look(s, name, (pid_t)pid);
	}
	/* What was listed before /proc failed is still looked at. */
	s->st.complete = !ret;
	for (unsigned int i = 0; i < s->nkept; i++) {
		if (s->kept[i].state != KEPT_CANDIDATE)
			continue;
		if (s->c->rbd)
			look_cmdline(s, &s->kept[i]);
		else
			look_maps(s, &s->kept[i]);
	}
	for (unsigned int i = 0; i < s->nkept; i++)
		if (s->kept[i].state == KEPT_VICTIM)
			name_victim(s, &s->kept[i]);
	for (unsigned int i = 0; i < s->nkept; i++)
		kept_close(s, &s->kept[i]);
	free(s->kept);
	vprobe_free(s->probe);
	ctx_put(s->c);
	if (st)
		*st = s->st;
	return s->nfound;
}

int victims_scan_each(const struct devset *set, const struct victim_filter *f,
		      const char *proc_root, victim_found_fn found,
		      victim_named_fn named, void *arg,
		      struct victim_scan_stats *st)
{
	struct scan s = {
		.set = set,
		.f = f,
		.want_pidfd = true,
		.found = found,
		.named = named,
		.arg = arg,
	};

	return scan(&s, proc_root, st);
}

struct collect {
	struct victim *out;
	unsigned int max, n;
};

static void collect_found(struct victim *v, void *arg)
{
	struct collect *c = arg;

	if (c->n < c->max)
		c->out[c->n] = *v;
	else if (v->pidfd >= 0)
		close(v->pidfd);
	c->n++;
}

static void collect_named(pid_t pid, const char *vm_uuid, void *arg)
{
	struct collect *c = arg;

	for (unsigned int i = 0; i < c->n && i < c->max; i++)
		if (c->out[i].pid == pid)
			snprintf(c->out[i].vm_uuid, sizeof(c->out[i].vm_uuid),
				 "%s", vm_uuid);
}

int victims_scan(const struct devset *set, const struct victim_filter *f,
		 const char *proc_root, struct victim *out, unsigned int max)
{
	struct collect c = { .out = out, .max = max };

	/* No command line is read for names nobody keeps. */
	return victims_scan_each(set, f, proc_root, collect_found,
				 max ? collect_named : NULL, &c, NULL);
}

struct census {
	char (*uuids)[37];
	unsigned int max, n;
};

static void census_found(struct victim *v, void *arg)
{
}

static void census_named(pid_t pid, const char *vm_uuid, void *arg)
{
	struct census *c = arg;

	if (c->n < c->max)
		snprintf(c->uuids[c->n], sizeof(c->uuids[c->n]), "%s", vm_uuid);
	c->n++;
}

int victims_vm_uuids(const struct devset *set, const struct victim_filter *f,
		     const char *proc_root, char (*uuids)[37], unsigned int max,
		     struct victim_scan_stats *st)
{
	struct census c = { .uuids = uuids, .max = max };
	struct scan s = {
		.set = set,
		.f = f,
		.census = true,
		.found = census_found,
		.named = census_named,
		.arg = &c,
	};
	int ret;

	ret = scan(&s, proc_root, st);
	return ret < 0 ? ret : (int)c.n;
}

int victim_kill(const struct victim *v)
{
	if (v->pidfd < 0)
		return -EBADF;
	if (syscall(SYS_pidfd_send_signal, v->pidfd, SIGKILL, NULL, 0))
		return -errno;
	return 0;
}

void victims_release(struct victim *v, unsigned int n)
{
	for (unsigned int i = 0; i < n; i++) {
		if (v[i].pidfd >= 0)
			close(v[i].pidfd);
		v[i].pidfd = -1;
	}
}
