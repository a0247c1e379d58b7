// SPDX-License-Identifier: GPL-2.0-only
/*
 * faultfs - pass-through FUSE file system that injects storage faults.
 *
 * The iofence tests need storage that can turn slow, hang or fail on demand
 * and recover again, without remounting and without touching the writer.
 * faultfs mirrors a backing directory and, per file, delays, blocks or fails
 * the data path (read, write, fsync, fallocate).  Modes are switched at run
 * time through a virtual control file in the mount root; see usage().
 */
#define FUSE_USE_VERSION 31

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define CTL_NAME ".faultfs-ctl"
#define CTL_PATH "/" CTL_NAME

/* readdir(3) hides entries with inode 0; keep clear of real ones too. */
#define CTL_INO ((ino_t)-2)

/*
 * Control handles carry a bit that no fd has, so handle-based operations can
 * tell them apart even when libfuse has no path to pass.
 */
#define CTL_FH_TAG (1ULL << 63)

/*
 * Hung and slowed requests wake up this often to notice that the session is
 * being torn down: libfuse joins its workers on exit and cannot cancel one
 * that is inside a handler, so a hang that never ends would keep faultfs (and
 * the mount) alive forever.
 */
#define POLL_MS 100

/* A delay longer than a day is a typo, not a test. */
#define SLOW_MAX_MS (24u * 3600u * 1000u)

/*
 * libfuse stops at 10 worker threads by default.  Every hung request pins one
 * worker, so a handful of stuck writers would leave no thread to serve the
 * control file that is supposed to release them.
 */
#define DEFAULT_MAX_THREADS "-omax_threads=64"

enum fault_mode {
	FAULT_HEALTHY,
	FAULT_SLOW,
	FAULT_HANG,
	FAULT_EIO,
};

static const char *const mode_names[] = {
	[FAULT_HEALTHY] = "healthy",
	[FAULT_SLOW] = "slow",
	[FAULT_HANG] = "hang",
	[FAULT_EIO] = "eio",
};

/*
 * State is keyed by path name, not by inode: tests name the file they want to
 * break, possibly before it exists, and renames are not part of any scenario.
 * Entries are never freed while mounted, so request handlers may keep a
 * pointer across unlocked sections.
 */
struct fault_file {
	struct fault_file *next;
	bool has_mode; /* false: follow the "*" default */
	enum fault_mode mode;
	unsigned int slow_ms;
	uint64_t served;
	uint64_t failed;
	unsigned int hung;
	char name[];
};

struct ctl_handle {
	char *text;
	size_t len;
};

static struct {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	enum fault_mode def_mode;
	unsigned int def_ms;
	struct fault_file *files;
	struct fault_file **tail;
	struct fuse *fuse;
	int base_fd;
	int page_cache;
	struct timespec started;
} ff = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.tail = &ff.files,
	.base_fd = -1,
};

static bool is_ctl(const char *path)
{
	return path && strcmp(path, CTL_PATH) == 0;
}

static struct ctl_handle *ctl_of(const struct fuse_file_info *fi)
{
	if (!fi || !(fi->fh & CTL_FH_TAG))
		return NULL;
	return (struct ctl_handle *)(uintptr_t)(fi->fh & ~CTL_FH_TAG);
}

/*
 * Attribute changes go by path whenever there is one: the kernel passes a
 * handle for open directories too, and those belong to libfuse, not to us.
 */
static bool by_fd(const char *path, const struct fuse_file_info *fi)
{
	return !path && fi && !ctl_of(fi);
}

/*
 * Backing paths are relative to base_fd, so that daemonizing (chdir "/") and
 * a later rename of the backing directory do not matter.
 */
static const char *rel(const char *path)
{
	while (*path == '/')
		path++;
	return *path ? path : ".";
}

static struct timespec ts_after_ms(const struct timespec *t, unsigned int ms)
{
	struct timespec r = *t;

	r.tv_sec += ms / 1000;
	r.tv_nsec += (long)(ms % 1000) * 1000000L;
	if (r.tv_nsec >= 1000000000L) {
		r.tv_sec++;
		r.tv_nsec -= 1000000000L;
	}
	return r;
}

static int ts_cmp(const struct timespec *a, const struct timespec *b)
{
	if (a->tv_sec != b->tv_sec)
		return a->tv_sec < b->tv_sec ? -1 : 1;
	if (a->tv_nsec != b->tv_nsec)
		return a->tv_nsec < b->tv_nsec ? -1 : 1;
	return 0;
}

/* Caller holds ff.lock. */
static struct fault_file *file_find(const char *name, bool create)
{
	struct fault_file *f;
	size_t len;

	for (f = ff.files; f; f = f->next)
		if (strcmp(f->name, name) == 0)
			return f;
	if (!create)
		return NULL;
	len = strlen(name);
	f = calloc(1, sizeof(*f) + len + 1);
	if (!f)
		return NULL;
	memcpy(f->name, name, len + 1);
	*ff.tail = f;
	ff.tail = &f->next;
	return f;
}

static enum fault_mode eff_mode(const struct fault_file *f)
{
	return f && f->has_mode ? f->mode : ff.def_mode;
}

static unsigned int eff_ms(const struct fault_file *f)
{
	return f && f->has_mode ? f->slow_ms : ff.def_ms;
}

static bool stopping(void)
{
	return ff.fuse && fuse_session_exited(fuse_get_session(ff.fuse));
}

/*
 * Gate for one data request: returns 0 when the request may go to the backing
 * file, -EIO when it must fail.  The mode is re-read after every wait, so a
 * hang released into "slow" or "eio" behaves as the new mode says.  *fp is
 * set for the accounting in fault_leave(); it is NULL only if out of memory.
 */
static int fault_enter(const char *path, struct fault_file **fp)
{
	struct timespec start, now, until, poll;
	struct fault_file *f;
	enum fault_mode mode;
	int ret = 0;

	pthread_mutex_lock(&ff.lock);
	f = file_find(rel(path ? path : "/"), true);
	*fp = f;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		mode = eff_mode(f);
		if (mode == FAULT_HEALTHY)
			break;
		if (mode == FAULT_EIO || stopping()) {
			ret = -EIO;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		poll = ts_after_ms(&now, POLL_MS);
		if (mode == FAULT_HANG) {
			if (f)
				f->hung++;
			pthread_cond_timedwait(&ff.changed, &ff.lock, &poll);
			if (f)
				f->hung--;
			/* A delay that follows a hang counts from the release. */
			clock_gettime(CLOCK_MONOTONIC, &start);
			continue;
		}
		until = ts_after_ms(&start, eff_ms(f));
		if (ts_cmp(&now, &until) >= 0)
			break;
		pthread_cond_timedwait(&ff.changed, &ff.lock,
				       ts_cmp(&poll, &until) < 0 ? &poll :
								   &until);
	}
	pthread_mutex_unlock(&ff.lock);
	return ret;
}

static void fault_leave(struct fault_file *f, int res)
{
	if (!f)
		return;
	pthread_mutex_lock(&ff.lock);
	if (res < 0)
		f->failed++;
	else
		f->served++;
	pthread_mutex_unlock(&ff.lock);
}

/* ---- control file ---- */

static char *ctl_render(size_t *lenp)
{
	uint64_t served = 0, failed = 0;
	unsigned int hung = 0;
	struct fault_file *f;
	char *text = NULL;
	FILE *out;

	out = open_memstream(&text, lenp);
	if (!out)
		return NULL;
	for (f = ff.files; f; f = f->next) {
		served += f->served;
		failed += f->failed;
		hung += f->hung;
	}
	/* The "*" line carries the default mode and the totals. */
	fprintf(out,
		"mode=%s ms=%u served=%" PRIu64 " failed=%" PRIu64
		" hung=%u file=*\n",
		mode_names[ff.def_mode], ff.def_ms, served, failed, hung);
	for (f = ff.files; f; f = f->next)
		fprintf(out,
			"mode=%s ms=%u served=%" PRIu64 " failed=%" PRIu64
			" hung=%u file=%s\n",
			mode_names[eff_mode(f)],
			eff_mode(f) == FAULT_SLOW ? eff_ms(f) : 0, f->served,
			f->failed, f->hung, f->name);
	if (fclose(out)) {
		free(text);
		return NULL;
	}
	return text;
}

static int parse_mode(const char *word, enum fault_mode *mode)
{
	size_t i;

	for (i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++) {
		if (strcmp(word, mode_names[i]) == 0) {
			*mode = (enum fault_mode)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Splits off the next blank-separated word of *s, NUL-terminating it. */
static char *next_word(char **s)
{
	char *w = *s + strspn(*s, " \t");
	char *end;

	if (!*w)
		return NULL;
	end = w + strcspn(w, " \t");
	*s = *end ? end + 1 : end;
	*end = '\0';
	return w;
}

/*
 * One command line: "<mode> [ms] <file>" or "reset <file>".  The file is the
 * rest of the line so names with blanks work; "*" means every file.  Caller
 * holds ff.lock.
 */
static int ctl_command(char *line)
{
	enum fault_mode mode = FAULT_HEALTHY;
	unsigned long ms = 0;
	struct fault_file *f;
	bool reset = false;
	char *word, *name, *end;

	word = next_word(&line);
	if (!word || word[0] == '#')
		return 0;
	if (strcmp(word, "reset") == 0)
		reset = true;
	else if (parse_mode(word, &mode))
		return -EINVAL;
	if (mode == FAULT_SLOW) {
		word = next_word(&line);
		if (!word)
			return -EINVAL;
		errno = 0;
		ms = strtoul(word, &end, 10);
		if (errno || *end || end == word || word[0] == '-' ||
		    ms > SLOW_MAX_MS)
			return -EINVAL;
	}

	name = line + strspn(line, " \t");
	end = name + strlen(name);
	while (end > name &&
	       (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = '\0';
	while (*name == '/')
		name++;
	if (!*name || strcmp(name, CTL_NAME) == 0)
		return -EINVAL;

	if (strcmp(name, "*") == 0) {
		for (f = ff.files; f; f = f->next) {
			if (reset) {
				f->served = 0;
				f->failed = 0;
			} else {
				f->has_mode = false;
			}
		}
		if (!reset) {
			ff.def_mode = mode;
			ff.def_ms = (unsigned int)ms;
		}
	} else if (reset) {
		f = file_find(name, false);
		if (f) {
			f->served = 0;
			f->failed = 0;
		}
	} else {
		f = file_find(name, true);
		if (!f)
			return -ENOMEM;
		f->has_mode = true;
		f->mode = mode;
		f->slow_ms = (unsigned int)ms;
	}
	return 0;
}

static int ctl_write(const char *buf, size_t size)
{
	char *text, *line, *nl;
	int ret = 0;

	/* Each write() carries whole commands; a final newline is optional. */
	text = strndup(buf, size);
	if (!text)
		return -ENOMEM;
	pthread_mutex_lock(&ff.lock);
	for (line = text; line && !ret; line = nl) {
		nl = strchr(line, '\n');
		if (nl)
			*nl++ = '\0';
		ret = ctl_command(line);
	}
	pthread_cond_broadcast(&ff.changed);
	pthread_mutex_unlock(&ff.lock);
	free(text);
	return ret ? ret : (int)size;
}

static int ctl_read(struct ctl_handle *h, char *buf, size_t size, off_t off)
{
	size_t n = 0;
	char *text;

	pthread_mutex_lock(&ff.lock);
	/* Reading from the start again shows the current state. */
	if (off == 0 || !h->text) {
		text = ctl_render(&n);
		if (!text) {
			pthread_mutex_unlock(&ff.lock);
			return -ENOMEM;
		}
		free(h->text);
		h->text = text;
		h->len = n;
	}
	n = 0;
	if ((size_t)off < h->len) {
		n = h->len - (size_t)off;
		if (n > size)
			n = size;
		memcpy(buf, h->text + off, n);
	}
	pthread_mutex_unlock(&ff.lock);
	return (int)n;
}

static void ctl_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_ino = CTL_INO;
	st->st_uid = getuid();
	st->st_gid = getgid();
	/* Real content is generated on read; direct_io makes size moot. */
	st->st_size = 0;
	st->st_atim = ff.started;
	st->st_mtim = ff.started;
	st->st_ctim = ff.started;
}

/* ---- pass-through operations ---- */

/*
 * With allow_other a root daemon would otherwise leave root-owned files
 * behind for every user who creates one.
 */
static bool own_new(uid_t *uid, gid_t *gid)
{
	struct fuse_context *ctx = fuse_get_context();

	if (geteuid() != 0 || !ctx || ctx->uid == 0)
		return false;
	*uid = ctx->uid;
	*gid = ctx->gid;
	return true;
}

static void *ff_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	cfg->use_ino = 1;
	/* Tests may change the backing directory behind our back. */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	ff.fuse = fuse_get_context()->fuse;
	return NULL;
}

static int ff_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	if (is_ctl(path) || ctl_of(fi)) {
		ctl_stat(st);
		return 0;
	}
	/* The kernel sends a handle for regular files only. */
	if (fi) {
		if (fstat((int)fi->fh, st))
			return -errno;
		return 0;
	}
	if (fstatat(ff.base_fd, rel(path), st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	return 0;
}

static int ff_readdir(const char *path, void *buf, fuse_fill_dir_t filler,
		      off_t off, struct fuse_file_info *fi,
		      enum fuse_readdir_flags flags)
{
	bool root = strcmp(path, "/") == 0;
	struct dirent *de;
	struct stat st;
	int fd, res = 0;
	DIR *dir;

	(void)off;
	(void)fi;
	(void)flags;
	fd = openat(ff.base_fd, rel(path), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	for (;;) {
		errno = 0;
		de = readdir(dir);
		if (!de) {
			res = -errno;
			break;
		}
		/* The control file shadows a backing file of the same name. */
		if (root && strcmp(de->d_name, CTL_NAME) == 0)
			continue;
		memset(&st, 0, sizeof(st));
		st.st_ino = de->d_ino;
		st.st_mode = (mode_t)DTTOIF(de->d_type);
		if (filler(buf, de->d_name, &st, 0, 0))
			break;
	}
	closedir(dir);
	if (root && !res) {
		ctl_stat(&st);
		filler(buf, CTL_NAME, &st, 0, 0);
	}
	return res;
}

static int ff_mkdir(const char *path, mode_t mode)
{
	uid_t uid;
	gid_t gid;

	if (is_ctl(path))
		return -EEXIST;
	if (mkdirat(ff.base_fd, rel(path), mode))
		return -errno;
	if (own_new(&uid, &gid))
		(void)!fchownat(ff.base_fd, rel(path), uid, gid,
				AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int ff_rmdir(const char *path)
{
	if (unlinkat(ff.base_fd, rel(path), AT_REMOVEDIR))
		return -errno;
	return 0;
}

static int ff_unlink(const char *path)
{
	if (is_ctl(path))
		return -EPERM;
	if (unlinkat(ff.base_fd, rel(path), 0))
		return -errno;
	return 0;
}

static int ff_rename(const char *from, const char *to, unsigned int flags)
{
	if (is_ctl(from) || is_ctl(to))
		return -EPERM;
	if (renameat2(ff.base_fd, rel(from), ff.base_fd, rel(to), flags))
		return -errno;
	return 0;
}

static int ff_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int res;

	if (is_ctl(path) || ctl_of(fi))
		return -EPERM;
	if (by_fd(path, fi))
		res = fchmod((int)fi->fh, mode);
	else
		res = fchmodat(ff.base_fd, rel(path), mode, 0);
	return res ? -errno : 0;
}

static int ff_chown(const char *path, uid_t uid, gid_t gid,
		    struct fuse_file_info *fi)
{
	int res;

	if (is_ctl(path) || ctl_of(fi))
		return -EPERM;
	if (by_fd(path, fi))
		res = fchown((int)fi->fh, uid, gid);
	else
		res = fchownat(ff.base_fd, rel(path), uid, gid,
			       AT_SYMLINK_NOFOLLOW);
	return res ? -errno : 0;
}

static int ff_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	int fd, res;

	/* "echo cmd > ctl" truncates first; that must not fail. */
	if (is_ctl(path) || ctl_of(fi))
		return 0;
	/* Only regular files truncate, so a handle here is a backing fd. */
	if (fi)
		return ftruncate((int)fi->fh, size) ? -errno : 0;
	fd = openat(ff.base_fd, rel(path), O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	res = ftruncate(fd, size) ? -errno : 0;
	close(fd);
	return res;
}

static int ff_utimens(const char *path, const struct timespec tv[2],
		      struct fuse_file_info *fi)
{
	int res;

	if (is_ctl(path) || ctl_of(fi))
		return 0;
	if (by_fd(path, fi))
		res = futimens((int)fi->fh, tv);
	else
		res = utimensat(ff.base_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW);
	return res ? -errno : 0;
}

static int ff_statfs(const char *path, struct statvfs *sv)
{
	(void)path;
	return fstatvfs(ff.base_fd, sv) ? -errno : 0;
}

/*
 * O_DIRECT stays off the backing fd: the buffers libfuse hands us are not
 * aligned for it, and the writer's intent, that its I/O skips the cache and
 * reaches the storage (us), is met by direct_io.  Without page_cache every
 * open is direct_io, so that no fault can hide behind cached pages.
 */
static void set_open_flags(struct fuse_file_info *fi)
{
	fi->direct_io = !ff.page_cache || (fi->flags & O_DIRECT);
	fi->keep_cache = 0;
}

static int open_ctl(struct fuse_file_info *fi)
{
	struct ctl_handle *h = calloc(1, sizeof(*h));

	if (!h)
		return -ENOMEM;
	fi->fh = (uintptr_t)h | CTL_FH_TAG;
	fi->direct_io = 1;
	fi->keep_cache = 0;
	return 0;
}

static int ff_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	uid_t uid;
	gid_t gid;
	int fd;

	if (is_ctl(path))
		return open_ctl(fi);
	fd = openat(ff.base_fd, rel(path),
		    (fi->flags & ~O_DIRECT) | O_CREAT | O_CLOEXEC, mode);
	if (fd < 0)
		return -errno;
	if (own_new(&uid, &gid))
		(void)!fchown(fd, uid, gid);
	fi->fh = (uint64_t)fd;
	set_open_flags(fi);
	return 0;
}

static int ff_open(const char *path, struct fuse_file_info *fi)
{
	int fd;

	if (is_ctl(path))
		return open_ctl(fi);
	fd = openat(ff.base_fd, rel(path), (fi->flags & ~O_DIRECT) | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	fi->fh = (uint64_t)fd;
	set_open_flags(fi);
	return 0;
}

static int ff_release(const char *path, struct fuse_file_info *fi)
{
	struct ctl_handle *h = ctl_of(fi);

	(void)path;
	if (h) {
		free(h->text);
		free(h);
		return 0;
	}
	close((int)fi->fh);
	return 0;
}

static int ff_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	struct fault_file *f;
	size_t done = 0;
	ssize_t n;
	int res;

	if (ctl_of(fi))
		return ctl_read(ctl_of(fi), buf, size, off);
	res = fault_enter(path, &f);
	/* Short reads are only allowed at EOF, so finish partial ones. */
	while (!res && done < size) {
		n = pread((int)fi->fh, buf + done, size - done,
			  off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			res = -errno;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	fault_leave(f, res);
	return res ? res : (int)done;
}

static int ff_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct fault_file *f;
	size_t done = 0;
	ssize_t n;
	int res;

	if (ctl_of(fi))
		return ctl_write(buf, size);
	res = fault_enter(path, &f);
	while (!res && done < size) {
		n = pwrite((int)fi->fh, buf + done, size - done,
			   off + (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			res = -errno;
		else if (n == 0)
			res = -EIO;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	fault_leave(f, res);
	return res ? res : (int)done;
}

static int ff_fsync(const char *path, int datasync, struct fuse_file_info *fi)
{
	struct fault_file *f;
	int res;

	if (ctl_of(fi))
		return 0;
	res = fault_enter(path, &f);
	if (!res && (datasync ? fdatasync((int)fi->fh) : fsync((int)fi->fh)))
		res = -errno;
	fault_leave(f, res);
	return res;
}

/* The loop driver turns discards into hole punches; they are writes too. */
static int ff_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	struct fault_file *f;
	int res;

	if (ctl_of(fi))
		return -EOPNOTSUPP;
	res = fault_enter(path, &f);
	if (!res && fallocate((int)fi->fh, mode, off, len))
		res = -errno;
	fault_leave(f, res);
	return res;
}

static const struct fuse_operations ff_ops = {
	.init = ff_init,
	.getattr = ff_getattr,
	.readdir = ff_readdir,
	.mkdir = ff_mkdir,
	.rmdir = ff_rmdir,
	.unlink = ff_unlink,
	.rename = ff_rename,
	.chmod = ff_chmod,
	.chown = ff_chown,
	.truncate = ff_truncate,
	.utimens = ff_utimens,
	.statfs = ff_statfs,
	.create = ff_create,
	.open = ff_open,
	.release = ff_release,
	.read = ff_read,
	.write = ff_write,
	.fsync = ff_fsync,
	.fallocate = ff_fallocate,
};

/* ---- command line ---- */

struct ff_opts {
	const char *backing;
	int page_cache;
	int help;
};

enum { KEY_HELP };

static const struct fuse_opt ff_optspec[] = {
	{ "page_cache", offsetof(struct ff_opts, page_cache), 1 },
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_END,
};

static void usage(const char *prog)
{
	printf("usage: %s [-f] [-o options] <backing-dir> <mountpoint>\n"
	       "\n"
	       "Mirrors <backing-dir> at <mountpoint> and injects faults into\n"
	       "read, write, fsync and fallocate of chosen files.  Control:\n"
	       "write commands to <mountpoint>/" CTL_NAME ", one per line:\n"
	       "    healthy <file>      pass requests through\n"
	       "    slow <ms> <file>    delay each request by <ms>\n"
	       "    hang <file>         block requests until the mode changes\n"
	       "    eio <file>          fail requests with EIO\n"
	       "    reset <file>        zero the counters\n"
	       "<file> is relative to the mount root; \"*\" sets the default\n"
	       "and drops all per-file modes.  Reading the control file lists\n"
	       "mode, ms, served, failed and hung requests per file.\n"
	       "\n"
	       "faultfs options:\n"
	       "    -o page_cache       use the page cache unless O_DIRECT\n"
	       "                        (default: every open is direct_io)\n"
	       "\n",
	       prog);
}

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct ff_opts *o = data;

	(void)outargs;
	if (key == KEY_HELP) {
		o->help = 1;
		return 1;
	}
	if (key == FUSE_OPT_KEY_NONOPT && !o->backing) {
		o->backing = arg;
		return 0;
	}
	return 1;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct ff_opts o = { 0 };
	pthread_condattr_t ca;
	int ret;

	if (fuse_opt_parse(&args, &o, ff_optspec, opt_proc))
		return 2;
	if (o.help) {
		usage(argv[0]);
		/* An empty program name keeps libfuse from a second usage line. */
		args.argv[0][0] = '\0';
		ret = fuse_main(args.argc, args.argv, &ff_ops, NULL);
		fuse_opt_free_args(&args);
		return ret;
	}
	if (!o.backing) {
		usage(argv[0]);
		fuse_opt_free_args(&args);
		return 2;
	}
	ff.page_cache = o.page_cache;
	clock_gettime(CLOCK_REALTIME, &ff.started);
	ff.base_fd = open(o.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ff.base_fd < 0) {
		fprintf(stderr, "faultfs: %s: %s\n", o.backing,
			strerror(errno));
		fuse_opt_free_args(&args);
		return 1;
	}

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ff.changed, &ca);
	pthread_condattr_destroy(&ca);

	/* The kernel already applied the caller's umask to every mode. */
	umask(0);

	/* In front of the user's options, so that theirs win. */
	if (fuse_opt_insert_arg(&args, 1, DEFAULT_MAX_THREADS) ||
	    fuse_opt_insert_arg(&args, 1, "-ofsname=faultfs,subtype=faultfs")) {
		fuse_opt_free_args(&args);
		return 1;
	}
	ret = fuse_main(args.argc, args.argv, &ff_ops, NULL);
	fuse_opt_free_args(&args);
	close(ff.base_fd);
	return ret;
}
