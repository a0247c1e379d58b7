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

#include "record.h"
#include "victims.h"

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

static int is_kthread(int dirfd)
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
	if (!p || sscanf(p + 1, " %*c %*d %*d %*d %*d %*d %u", &flags) != 1)
		return -EINVAL;
	return !!(flags & PF_KTHREAD);
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
 * not known to be on it; the process itself vanishing is up to the
 * caller's next read of its /proc directory.
 */
static const char *link_use(const struct devset *set, int dirfd,
			    const char *path, const char *why)
{
	dev_t dev, rdev;

	if (link_devs(dirfd, path, &dev, &rdev))
		return NULL;
	if (devset_has(set, dev))
		return why;
	if (rdev && devset_has(set, rdev))
		return "block device";
	return NULL;
}

static int fd_use(const struct devset *set, int dirfd, const char **why)
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
		*why = link_use(set, fd, name, "fd");
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

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
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
			v = hexval(c);
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

/* 1 with @why when the process uses @set, 0 when not, or -errno. */
static int usage(const struct devset *set, int dirfd, const char **why)
{
	int ret;

	/* Links first: reading maps takes the process's mmap lock. */
	ret = fd_use(set, dirfd, why);
	if (ret)
		return ret;
	*why = link_use(set, dirfd, "cwd", "cwd");
	if (*why)
		return 1;
	/* The executable is a mapping known without the mmap lock. */
	*why = link_use(set, dirfd, "exe", "mapping");
	if (*why)
		return 1;
	ret = maps_use(set, dirfd);
	if (ret > 0)
		*why = "mapping";
	return ret;
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
		for (ssize_t i = 0; i < n; i++) {
			if (buf[i]) {
				if (arg.len < UUID_LEN)
					arg.s[arg.len] = buf[i];
				arg.len++;
			} else if (cmdline_arg_end(&arg, uuid)) {
				goto out;
			}
		}
	}
	/* A rewritten command line may end without its NUL. */
	if (!ret && arg.len)
		cmdline_arg_end(&arg, uuid);
out:
	close(fd);
	return ret;
}

struct check {
	bool want_pidfd;
	bool want_uuid;
};

/*
 * 1 and @v filled when process @name (@pid) is a victim, 0 when not or
 * gone, or -errno when its /proc entries cannot be read: a process that
 * cannot be looked at cannot be ruled out.
 */
static int check_process(const struct devset *set,
			 const struct victim_filter *f, int procfd,
			 const char *name, pid_t pid, struct check how,
			 struct victim *v)
{
	char link[32], path[PATH_MAX];
	const char *exe, *why = NULL;
	int dirfd, pidfd = -1, ret = 0;

	/*
	 * Not a candidate when its name cannot be read, whatever the error:
	 * else one process hidden from us (some sandboxes hide their init
	 * even from root) would fail every scan.
	 */
	snprintf(link, sizeof(link), "%s/exe", name);
	exe = exe_name(procfd, link, path, sizeof(path), &ret);
	if (!exe)
		return 0;
	if (!filter_matches(f, exe))
		return 0;

	dirfd = openat(procfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return vanished(-errno) ? 0 : -errno;
	if (how.want_pidfd) {
		pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
		if (pidfd < 0) {
			ret = -errno;
			goto out;
		}
	}
	/*
	 * /proc/<pid> opened on a process answers only while that process
	 * lives: reading its exe again after pidfd_open() proves the pid was
	 * not recycled in between, so the pidfd, the checks and the name
	 * below are all about one process.
	 */
	exe = exe_name(dirfd, "exe", path, sizeof(path), &ret);
	if (!exe)
		goto out;
	if (!filter_matches(f, exe))
		goto out;
	/*
	 * Kernel threads stop above, having no exe link; the flag is what
	 * defines them, should that ever change.
	 */
	ret = is_kthread(dirfd);
	if (ret)
		goto out_not;
	ret = usage(set, dirfd, &why);
	if (ret <= 0)
		goto out;

	v->pid = pid;
	snprintf(v->exe, sizeof(v->exe), "%s", exe);
	v->why = why;
	v->vm_uuid[0] = '\0';
	/* The uuid only names the VM: a victim without one is still one. */
	if (how.want_uuid) {
		ret = read_vm_uuid(dirfd, v->vm_uuid);
		if (vanished(ret))
			goto out;
	}
	v->pidfd = pidfd;
	pidfd = -1;
	ret = 1;
	goto out;
out_not:
	if (ret > 0)
		ret = 0;
out:
	if (pidfd >= 0)
		close(pidfd);
	close(dirfd);
	return vanished(ret) ? 0 : ret;
}

/* victims_scan() into @out, or victims_vm_uuids() into @uuids. */
static int scan(const struct devset *set, const struct victim_filter *f,
		const char *proc_root, struct victim *out, char (*uuids)[37],
		unsigned int max)
{
	DIRSCAN_BUF(dents, 8192);
	struct dirscan d;
	struct victim v;
	const char *name;
	pid_t me = getpid();
	int procfd, found = 0, ret = 0;

	procfd = open(proc_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return -errno;
	dirscan_init(&d, procfd, dents, sizeof(dents));
	while ((name = dirscan_next(&d, &ret))) {
		unsigned int slot = (unsigned int)found;
		struct check how = {
			.want_pidfd = out && slot < max,
			.want_uuid = uuids || slot < max,
		};
		char *end;
		long pid;

		pid = strtol(name, &end, 10);
		if (*end || pid <= 1 || pid > INT_MAX || pid == me ||
		    pid == f->self)
			continue;
		ret = check_process(set, f, procfd, name, (pid_t)pid, how, &v);
		if (ret < 0)
			break;
		if (!ret || (uuids && !v.vm_uuid[0]))
			continue;
		if (slot < max) {
			if (out)
				out[slot] = v;
			else
				memcpy(uuids[slot], v.vm_uuid, 37);
		}
		found++;
		ret = 0;
	}
	close(procfd);
	if (ret < 0) {
		if (out)
			victims_release(out, (unsigned int)found < max ?
						     (unsigned int)found :
						     max);
		return ret;
	}
	return found;
}

int victims_scan(const struct devset *set, const struct victim_filter *f,
		 const char *proc_root, struct victim *out, unsigned int max)
{
	return scan(set, f, proc_root, out, NULL, max);
}

int victims_vm_uuids(const struct devset *set, const struct victim_filter *f,
		     const char *proc_root, char (*uuids)[37], unsigned int max)
{
	return scan(set, f, proc_root, NULL, uuids, max);
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
