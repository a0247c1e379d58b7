// SPDX-License-Identifier: GPL-2.0-only
/*
 * faultfs - pass-through FUSE file system that injects storage faults.
 *
 * The iofence tests need storage that can turn slow, hang or fail on demand
 * and recover again, without remounting and without touching the writer.
 * faultfs mirrors a backing directory and, per file, delays, blocks or fails
 * the data path (read, write, fsync, fallocate), or blocks every operation
 * on the file ("dead"), as a hard-mounted NFS server that went away does.
 * Modes are switched at run time through a virtual control file in the mount
 * root, or through a Unix socket outside the mount (--ctl-socket), which
 * keeps working when the mount is wedged; see usage().
 *
 * -o sync_dio (or --sync-dio) withholds FUSE_CAP_ASYNC_DIO from the kernel,
 * as libfuse2 servers do: every O_DIRECT request then blocks its submitter,
 * aio and io_uring included, instead of being queued in the background.
 */
/* 3.12: the loop config that carries max_threads. */
#define FUSE_USE_VERSION 312

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse.h>
#include <fuse_lowlevel.h>
#include <inttypes.h>
#include <limits.h>
#include <linux/fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/un.h>
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

/*
 * Held background requests (release, queued async direct I/O) count against
 * the kernel's limit of background requests per connection, 12 by default;
 * past it, the background requests of every other file queue behind them.
 */
#define MAX_BACKGROUND 64

/*
 * One control connection is a script in, a reply out.  A client that sends
 * neither EOF nor a whole script in time is dropped, so that it cannot keep
 * the control thread from the next one.
 */
#define CTL_REQ_MAX 65536
#define CTL_IO_TIMEOUT_S 2

enum fault_mode {
	FAULT_HEALTHY,
	FAULT_SLOW,
	FAULT_HANG,
	FAULT_EIO,
	FAULT_DEAD,
};

static const char *const mode_names[] = {
	[FAULT_HEALTHY] = "healthy", [FAULT_SLOW] = "slow",
	[FAULT_HANG] = "hang",	     [FAULT_EIO] = "eio",
	[FAULT_DEAD] = "dead",
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
	/* Held requests that belong to no file entry: the root directory's. */
	unsigned int anon_hung;
	struct fuse *fuse;
	int base_fd;
	int page_cache;
	int sync_dio;
	int ctl_fd;
	struct timespec started;
} ff = {
	.lock = PTHREAD_MUTEX_INITIALIZER,
	.tail = &ff.files,
	.base_fd = -1,
	.ctl_fd = -1,
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

/* The file entry name a request's path is filed under; NULL for the root. */
static const char *key_of(const char *path)
{
	if (!path)
		return NULL;
	while (*path == '/')
		path++;
	return *path ? path : NULL;
}

/*
 * Gate for one request on up to two paths (a rename has two; path2 may be
 * NULL): returns 0 when the request may go to the backing directory, -EIO
 * when it must fail.  "dead" on any of its paths holds every request;
 * the other modes apply to data requests (read, write, fsync, fallocate)
 * only.  The modes are re-read after every wait, so a hang released into
 * "slow" or "eio" behaves as the new mode says, and a dead file released
 * into "hang" still hangs its data.  For data requests *fp is set for the
 * accounting in fault_leave(); it is NULL only if out of memory.
 */
static int fault_gate(const char *path, const char *path2, bool data,
		      struct fault_file **fp)
{
	const char *keys[2] = { key_of(path), key_of(path2) };
	struct fault_file *f[2] = { NULL, NULL };
	struct timespec start, now, until, poll;
	int i, n = path2 ? 2 : 1, dead, ret = 0;
	enum fault_mode mode;
	unsigned int *hung;

	pthread_mutex_lock(&ff.lock);
	/*
	 * Data requests always get an entry, for their counters; the others
	 * only once held, so that a directory walk does not list every name.
	 */
	for (i = 0; i < n; i++)
		if (keys[i])
			f[i] = file_find(keys[i], data && i == 0);
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		dead = -1;
		for (i = 0; i < n && dead < 0; i++)
			if (eff_mode(f[i]) == FAULT_DEAD)
				dead = i;
		mode = dead >= 0 ? FAULT_DEAD : eff_mode(f[0]);
		if (!data && mode != FAULT_DEAD)
			break;
		if (mode == FAULT_HEALTHY)
			break;
		if (mode == FAULT_EIO || stopping()) {
			ret = -EIO;
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
		poll = ts_after_ms(&now, POLL_MS);
		if (mode == FAULT_DEAD || mode == FAULT_HANG) {
			i = dead >= 0 ? dead : 0;
			if (!f[i] && keys[i])
				f[i] = file_find(keys[i], true);
			hung = f[i] ? &f[i]->hung : &ff.anon_hung;
			(*hung)++;
			pthread_cond_timedwait(&ff.changed, &ff.lock, &poll);
			(*hung)--;
			/* A delay that follows a hang counts from the release. */
			clock_gettime(CLOCK_MONOTONIC, &start);
			continue;
		}
		until = ts_after_ms(&start, eff_ms(f[0]));
		if (ts_cmp(&now, &until) >= 0)
			break;
		pthread_cond_timedwait(&ff.changed, &ff.lock,
				       ts_cmp(&poll, &until) < 0 ? &poll :
								   &until);
	}
	pthread_mutex_unlock(&ff.lock);
	if (fp)
		*fp = f[0];
	return ret;
}

static int fault_enter(const char *path, struct fault_file **fp)
{
	return fault_gate(path, NULL, true, fp);
}

/* Gate for a request outside the data path: only "dead" holds it. */
static int fault_meta(const char *path)
{
	return fault_gate(path, NULL, false, NULL);
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
	unsigned int hung = ff.anon_hung;
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

/*
 * Runs a script of whole command lines, as one write() to the control file
 * or one connection to the control socket carries; a final newline is
 * optional.  Lines before a bad one stay applied.  With statusp, the state
 * after the script is rendered there, under the same lock.
 */
static int ctl_apply(const char *buf, size_t size, char **statusp, size_t *lenp)
{
	char *text, *line, *nl;
	int ret = 0;

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
	if (!ret && statusp) {
		*statusp = ctl_render(lenp);
		if (!*statusp)
			ret = -ENOMEM;
	}
	pthread_mutex_unlock(&ff.lock);
	free(text);
	return ret;
}

static int ctl_write(const char *buf, size_t size)
{
	int ret = ctl_apply(buf, size, NULL, NULL);

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

/* ---- control socket ---- */

/*
 * The control file sits in the mount, and a wedged mount can make it
 * unreachable: a create held in the root directory keeps the directory
 * locked, and a lookup of the control file waits behind it.  The socket is
 * outside the mount, and its thread takes nothing but ff.lock, which held
 * requests release while they wait.
 */

static int send_all(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len) {
		n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void set_io_timeout(int fd, int seconds)
{
	struct timeval tv = { .tv_sec = seconds };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
}

/*
 * A connection carries a script up to the client's EOF, as a write() to the
 * control file does; the reply is "ok" and the status listing after it, or
 * "error <reason>", each line ending in a newline.
 */
static void ctl_serve_one(int fd)
{
	char *req, *status = NULL, head[128];
	size_t len = 0, slen = 0;
	ssize_t n;
	int ret = 0;

	req = malloc(CTL_REQ_MAX);
	if (!req)
		return;
	set_io_timeout(fd, CTL_IO_TIMEOUT_S);
	for (;;) {
		if (len == CTL_REQ_MAX) {
			ret = -E2BIG;
			break;
		}
		n = recv(fd, req + len, CTL_REQ_MAX - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
			break;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (!ret)
		ret = ctl_apply(req, len, &status, &slen);
	if (ret) {
		snprintf(head, sizeof(head), "error %s\n", strerror(-ret));
		send_all(fd, head, strlen(head));
	} else if (!send_all(fd, "ok\n", 3)) {
		send_all(fd, status, slen);
	}
	free(status);
	free(req);
}

static void *ctl_thread(void *arg)
{
	sigset_t all;
	int fd;

	(void)arg;
	/* Signals are for libfuse's main thread, which ends the session. */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (;;) {
		fd = accept4(ff.ctl_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			/* Out of fds or memory: retry, without spinning. */
			if (errno != EINTR && errno != ECONNABORTED)
				usleep(POLL_MS * 1000);
			continue;
		}
		ctl_serve_one(fd);
		close(fd);
	}
	return NULL;
}

static int ctl_addr(const char *path, struct sockaddr_un *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	strcpy(sa->sun_path, path);
	return 0;
}

/*
 * Binds the control socket, taking the path over from a faultfs that died
 * without removing it, never from a live one or from a file that is not a
 * socket.  *st identifies the socket, for the unlink at exit.
 */
static int ctl_listen(const char *path, struct stat *st)
{
	struct sockaddr_un sa;
	struct stat old;
	int fd, probe, ret;
	mode_t mask;

	ret = ctl_addr(path, &sa);
	if (ret)
		return ret;
	if (lstat(path, &old) == 0) {
		if (!S_ISSOCK(old.st_mode))
			return -EEXIST;
		probe = socket(AF_UNIX,
			       SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		if (probe < 0)
			return -errno;
		ret = connect(probe, (struct sockaddr *)&sa, sizeof(sa)) ?
			      -errno :
			      0;
		close(probe);
		/* A full backlog is a live server too. */
		if (!ret || ret == -EAGAIN)
			return -EADDRINUSE;
		if (ret != -ECONNREFUSED)
			return ret;
		if (unlink(path) && errno != ENOENT)
			return -errno;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* Whoever may connect may release or break the storage. */
	mask = umask(077);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ? -errno : 0;
	umask(mask);
	if (!ret && listen(fd, 16))
		ret = -errno;
	if (!ret && lstat(path, st))
		ret = -errno;
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* A later faultfs may have taken the path over since. */
static void ctl_unlink(const char *path, const struct stat *mine)
{
	struct stat st;

	if (!lstat(path, &st) && st.st_dev == mine->st_dev &&
	    st.st_ino == mine->st_ino)
		unlink(path);
}

/*
 * faultfs --ctl <socket> [command...]: one round trip to a running faultfs.
 * The words make one command line; without any, the status is printed.
 */
static int ctl_client(const char *path, int argc, char *argv[])
{
	char *cmd = NULL, *reply = NULL, buf[4096];
	size_t cmd_len = 0, reply_len = 0;
	struct sockaddr_un sa;
	FILE *out;
	ssize_t n;
	int fd, i, ret;

	ret = ctl_addr(path, &sa);
	if (ret)
		goto err;
	out = open_memstream(&cmd, &cmd_len);
	if (!out) {
		ret = -errno;
		goto err;
	}
	for (i = 0; i < argc; i++)
		fprintf(out, "%s%s", i ? " " : "", argv[i]);
	if (argc)
		fputc('\n', out);
	if (fclose(out)) {
		ret = -ENOMEM;
		goto err;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		ret = -errno;
		goto err;
	}
	set_io_timeout(fd, 10);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		ret = -errno;
		close(fd);
		goto err;
	}
	ret = send_all(fd, cmd, cmd_len);
	if (!ret && shutdown(fd, SHUT_WR))
		ret = -errno;
	out = ret ? NULL : open_memstream(&reply, &reply_len);
	if (!ret && !out)
		ret = -errno;
	while (out) {
		n = recv(fd, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			ret = errno == EAGAIN ? -ETIMEDOUT : -errno;
		if (n <= 0)
			break;
		fwrite(buf, 1, (size_t)n, out);
	}
	if (out && fclose(out) && !ret)
		ret = -ENOMEM;
	close(fd);
	if (ret)
		goto err;
	free(cmd);
	if (reply_len >= 3 && strncmp(reply, "ok\n", 3) == 0) {
		if (!argc)
			fwrite(reply + 3, 1, reply_len - 3, stdout);
		free(reply);
		return fflush(stdout) ? 1 : 0;
	}
	if (reply_len > 6 && strncmp(reply, "error ", 6) == 0)
		fprintf(stderr, "faultfs: %s: %.*s\n", path,
			(int)strcspn(reply + 6, "\n"), reply + 6);
	else
		fprintf(stderr, "faultfs: %s: no reply\n", path);
	free(reply);
	return 1;
err:
	fprintf(stderr, "faultfs: %s: %s\n", path, strerror(-ret));
	free(cmd);
	free(reply);
	return 1;
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
	pthread_t thread;
	int err;

	cfg->use_ino = 1;
	/*
	 * Tests may change the backing directory behind our back, and a dead
	 * file must block every fresh lookup and stat: the kernel asks us
	 * each time instead of answering from its caches.
	 */
	cfg->entry_timeout = 0;
	cfg->attr_timeout = 0;
	cfg->negative_timeout = 0;
	if (ff.sync_dio)
		conn->want &= ~FUSE_CAP_ASYNC_DIO;
	conn->max_background = MAX_BACKGROUND;
	ff.fuse = fuse_get_context()->fuse;
	/* Here, not in main(): fuse_daemonize() may fork. */
	if (ff.ctl_fd >= 0) {
		err = pthread_create(&thread, NULL, ctl_thread, NULL);
		if (err)
			fprintf(stderr, "faultfs: control socket thread: %s\n",
				strerror(err));
		else
			pthread_detach(thread);
	}
	return NULL;
}

static int ff_getattr(const char *path, struct stat *st,
		      struct fuse_file_info *fi)
{
	int res;

	if (is_ctl(path) || ctl_of(fi)) {
		ctl_stat(st);
		return 0;
	}
	/* Lookups end here too: a dead name cannot even be found. */
	res = fault_meta(path);
	if (res)
		return res;
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
	res = fault_meta(path);
	if (res)
		return res;
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
	int res;

	if (is_ctl(path))
		return -EEXIST;
	res = fault_meta(path);
	if (res)
		return res;
	if (mkdirat(ff.base_fd, rel(path), mode))
		return -errno;
	if (own_new(&uid, &gid))
		(void)!fchownat(ff.base_fd, rel(path), uid, gid,
				AT_SYMLINK_NOFOLLOW);
	return 0;
}

static int ff_rmdir(const char *path)
{
	int res = fault_meta(path);

	if (res)
		return res;
	if (unlinkat(ff.base_fd, rel(path), AT_REMOVEDIR))
		return -errno;
	return 0;
}

static int ff_unlink(const char *path)
{
	int res;

	if (is_ctl(path))
		return -EPERM;
	res = fault_meta(path);
	if (res)
		return res;
	if (unlinkat(ff.base_fd, rel(path), 0))
		return -errno;
	return 0;
}

static int ff_rename(const char *from, const char *to, unsigned int flags)
{
	int res;

	if (is_ctl(from) || is_ctl(to))
		return -EPERM;
	res = fault_gate(from, to, false, NULL);
	if (res)
		return res;
	if (renameat2(ff.base_fd, rel(from), ff.base_fd, rel(to), flags))
		return -errno;
	return 0;
}

static int ff_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	int res;

	if (is_ctl(path) || ctl_of(fi))
		return -EPERM;
	res = fault_meta(path);
	if (res)
		return res;
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
	res = fault_meta(path);
	if (res)
		return res;
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
	res = fault_meta(path);
	if (res)
		return res;
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
	res = fault_meta(path);
	if (res)
		return res;
	if (by_fd(path, fi))
		res = futimens((int)fi->fh, tv);
	else
		res = utimensat(ff.base_fd, rel(path), tv, AT_SYMLINK_NOFOLLOW);
	return res ? -errno : 0;
}

static int ff_statfs(const char *path, struct statvfs *sv)
{
	int res = fault_meta(path);

	if (res)
		return res;
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
	fd = fault_meta(path);
	if (fd < 0)
		return fd;
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
	fd = fault_meta(path);
	if (fd < 0)
		return fd;
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

	if (h) {
		free(h->text);
		free(h);
		return 0;
	}
	/* The fd goes even when the wait ends in teardown. */
	fault_meta(path);
	close((int)fi->fh);
	return 0;
}

/*
 * close() waits for this.  Like close() on the backing file, a dup's close
 * reports what a flush of it would, on a backing NFS mount for one.
 */
static int ff_flush(const char *path, struct fuse_file_info *fi)
{
	int fd, res;

	if (ctl_of(fi))
		return 0;
	res = fault_meta(path);
	if (res)
		return res;
	fd = dup((int)fi->fh);
	if (fd < 0)
		return -errno;
	return close(fd) ? -errno : 0;
}

/* Directory handles stay libfuse's; these only let "dead" hold them. */
static int ff_opendir(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	return fault_meta(path);
}

static int ff_releasedir(const char *path, struct fuse_file_info *fi)
{
	(void)fi;
	fault_meta(path);
	return 0;
}

/* Without default_permissions the kernel asks for access(2) and chdir(2). */
static int ff_access(const char *path, int mask)
{
	int res;

	if (is_ctl(path))
		return 0;
	res = fault_meta(path);
	if (res)
		return res;
	return faccessat(ff.base_fd, rel(path), mask, AT_EACCESS) ? -errno : 0;
}

static int ff_readlink(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int res;

	if (size == 0)
		return -EINVAL;
	res = fault_meta(path);
	if (res)
		return res;
	n = readlinkat(ff.base_fd, rel(path), buf, size - 1);
	if (n < 0)
		return -errno;
	/* libfuse wants it NUL-terminated, truncated if need be. */
	buf[n] = '\0';
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
	.flush = ff_flush,
	.opendir = ff_opendir,
	.releasedir = ff_releasedir,
	.access = ff_access,
	.readlink = ff_readlink,
	.read = ff_read,
	.write = ff_write,
	.fsync = ff_fsync,
	.fallocate = ff_fallocate,
};

/* ---- session ---- */

/*
 * libfuse before 3.17.1 turns FUSE_CAP_PARALLEL_DIROPS on but leaves it out
 * of its INIT reply, so the kernel serializes lookups and readdirs per
 * directory: one held lookup of a dead name would hold the lookup of every
 * other uncached name, and every listing, in its directory.  faultfs reads
 * and writes the device itself to add the flag on the way out, when the
 * kernel offered it.
 */
static _Atomic bool init_seen;
static _Atomic uint64_t init_unique;

static ssize_t io_read(int fd, void *buf, size_t len, void *userdata)
{
	const struct fuse_in_header *in = buf;
	const struct fuse_init_in *arg = (const void *)(in + 1);
	ssize_t n = read(fd, buf, len);

	(void)userdata;
	if (n >= (ssize_t)(sizeof(*in) + offsetof(struct fuse_init_in, flags) +
			   sizeof(arg->flags)) &&
	    in->opcode == FUSE_INIT && (arg->flags & FUSE_PARALLEL_DIROPS)) {
		atomic_store(&init_unique, in->unique);
		atomic_store(&init_seen, true);
	}
	return n;
}

static ssize_t io_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	struct fuse_out_header *out = iov[0].iov_base;
	struct fuse_init_out *arg;

	(void)userdata;
	if (atomic_load(&init_seen) && count >= 2 &&
	    iov[0].iov_len == sizeof(*out) && out->error == 0 &&
	    out->unique == atomic_load(&init_unique) &&
	    iov[1].iov_len >= offsetof(struct fuse_init_out, flags) +
				      sizeof(arg->flags)) {
		arg = iov[1].iov_base;
		arg->flags |= FUSE_PARALLEL_DIROPS;
		atomic_store(&init_seen, false);
	}
	return writev(fd, iov, count);
}

/* fuse_main(), but on the device through io_read() and io_writev(). */
static int run(struct fuse_args *args)
{
	static const struct fuse_custom_io io = {
		.read = io_read,
		.writev = io_writev,
	};
	struct fuse_loop_config *cfg = NULL;
	struct fuse_cmdline_opts opts;
	struct fuse_session *se;
	struct fuse *fuse;
	int ret;

	if (fuse_parse_cmdline(args, &opts))
		return 1;
	if (opts.show_version) {
		printf("FUSE library version %s\n", fuse_pkgversion());
		fuse_lowlevel_version();
		ret = 0;
		goto out;
	}
	if (!opts.mountpoint) {
		fprintf(stderr, "faultfs: no mountpoint\n");
		ret = 2;
		goto out;
	}
	fuse = fuse_new(args, &ff_ops, sizeof(ff_ops), NULL);
	if (!fuse) {
		ret = 3;
		goto out;
	}
	if (fuse_mount(fuse, opts.mountpoint)) {
		ret = 4;
		goto out_destroy;
	}
	se = fuse_get_session(fuse);
	if (fuse_session_custom_io(se, &io, fuse_session_fd(se))) {
		ret = 4;
		goto out_unmount;
	}
	if (fuse_daemonize(opts.foreground)) {
		ret = 5;
		goto out_unmount;
	}
	if (fuse_set_signal_handlers(se)) {
		ret = 6;
		goto out_unmount;
	}
	if (opts.singlethread) {
		ret = fuse_loop(fuse);
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg) {
			ret = 7;
			goto out_signals;
		}
		fuse_loop_cfg_set_clone_fd(cfg, (unsigned int)opts.clone_fd);
		/* Unset, it is UINT_MAX, which libfuse would log as invalid. */
		if (opts.max_idle_threads != UINT_MAX)
			fuse_loop_cfg_set_idle_threads(cfg,
						       opts.max_idle_threads);
		fuse_loop_cfg_set_max_threads(cfg, opts.max_threads);
		ret = fuse_loop_mt(fuse, cfg);
	}
	ret = ret ? 8 : 0;
out_signals:
	fuse_remove_signal_handlers(se);
out_unmount:
	fuse_unmount(fuse);
out_destroy:
	fuse_destroy(fuse);
out:
	fuse_loop_cfg_destroy(cfg);
	free(opts.mountpoint);
	return ret;
}

/* ---- command line ---- */

struct ff_opts {
	const char *backing;
	char *ctl_socket;
	int page_cache;
	int sync_dio;
	int help;
};

enum { KEY_HELP };

static const struct fuse_opt ff_optspec[] = {
	{ "page_cache", offsetof(struct ff_opts, page_cache), 1 },
	{ "sync_dio", offsetof(struct ff_opts, sync_dio), 1 },
	{ "--sync-dio", offsetof(struct ff_opts, sync_dio), 1 },
	{ "ctl_socket=%s", offsetof(struct ff_opts, ctl_socket), 0 },
	/* Matches "--ctl-socket=PATH" too, with the '=' kept: see main(). */
	{ "--ctl-socket %s", offsetof(struct ff_opts, ctl_socket), 0 },
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_END,
};

static void usage(const char *prog)
{
	printf("usage: %s [-f] [-o options] [--ctl-socket PATH] [--sync-dio]\n"
	       "                 <backing-dir> <mountpoint>\n"
	       "       %s --ctl PATH [command]\n"
	       "\n"
	       "Mirrors <backing-dir> at <mountpoint> and injects faults into\n"
	       "chosen files.  Control: write commands to\n"
	       "<mountpoint>/" CTL_NAME " or send them to the control socket,\n"
	       "one per line:\n"
	       "    healthy <file>      pass requests through\n"
	       "    slow <ms> <file>    delay each data request by <ms>\n"
	       "    hang <file>         block data requests until the mode changes\n"
	       "    eio <file>          fail data requests with EIO\n"
	       "    dead <file>         block every request on <file>, lookup,\n"
	       "                        stat, open, flush (close) and release\n"
	       "                        included, until the mode changes\n"
	       "    reset <file>        zero the counters\n"
	       "Data requests are read, write, fsync and fallocate.  <file> is a\n"
	       "path relative to the mount root; \"*\" sets the default, drops\n"
	       "all per-file modes, and makes \"dead *\" hold every request on\n"
	       "the mount, the root directory and statfs included.  Reading the\n"
	       "control file lists mode, ms, served and failed data requests,\n"
	       "and requests held now (hung) per file.\n"
	       "\n"
	       "faultfs options:\n"
	       "    -o page_cache       use the page cache unless O_DIRECT\n"
	       "                        (default: every open is direct_io)\n"
	       "    -o sync_dio, --sync-dio\n"
	       "                        do not offer asynchronous direct I/O\n"
	       "                        (FUSE_CAP_ASYNC_DIO): every O_DIRECT\n"
	       "                        request, aio and io_uring included,\n"
	       "                        blocks its submitter while it is held\n"
	       "    -o ctl_socket=PATH, --ctl-socket PATH\n"
	       "                        also serve the control commands on a\n"
	       "                        Unix socket outside the mount, which\n"
	       "                        answers while the mount is wedged\n"
	       "\n"
	       "--ctl PATH [command]: send one command to the control socket at\n"
	       "PATH; without a command, print the status listing.  Exits 0 if\n"
	       "faultfs accepted it.\n"
	       "\n",
	       prog, prog);
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
	char *ctl_path = NULL, *cwd, *sock;
	pthread_condattr_t ca;
	struct stat ctl_st;
	int ret;

	if (argc >= 2 && strcmp(argv[1], "--ctl") == 0) {
		if (argc < 3) {
			usage(argv[0]);
			return 2;
		}
		return ctl_client(argv[2], argc - 3, argv + 3);
	}
	if (fuse_opt_parse(&args, &o, ff_optspec, opt_proc))
		return 2;
	if (o.help) {
		usage(argv[0]);
		printf("FUSE options:\n");
		fuse_cmdline_help();
		fuse_lib_help(&args);
		fuse_opt_free_args(&args);
		return 0;
	}
	if (!o.backing) {
		usage(argv[0]);
		fuse_opt_free_args(&args);
		return 2;
	}
	ff.page_cache = o.page_cache;
	ff.sync_dio = o.sync_dio;
	clock_gettime(CLOCK_REALTIME, &ff.started);
	ff.base_fd = open(o.backing, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (ff.base_fd < 0) {
		fprintf(stderr, "faultfs: %s: %s\n", o.backing,
			strerror(errno));
		fuse_opt_free_args(&args);
		return 1;
	}
	if (o.ctl_socket) {
		sock = o.ctl_socket + (o.ctl_socket[0] == '=');
		/* Absolute, for the unlink after daemonizing (chdir "/"). */
		cwd = sock[0] == '/' ? NULL : getcwd(NULL, 0);
		if (sock[0] == '/')
			ctl_path = strdup(sock);
		else if (!cwd || asprintf(&ctl_path, "%s/%s", cwd, sock) < 0)
			ctl_path = NULL;
		free(cwd);
		ret = ctl_path ? ctl_listen(ctl_path, &ctl_st) : -ENOMEM;
		if (ret < 0) {
			fprintf(stderr, "faultfs: %s: %s\n", sock,
				strerror(-ret));
			free(ctl_path);
			close(ff.base_fd);
			fuse_opt_free_args(&args);
			return 1;
		}
		ff.ctl_fd = ret;
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
	ret = run(&args);
	fuse_opt_free_args(&args);
	if (ctl_path)
		ctl_unlink(ctl_path, &ctl_st);
	free(ctl_path);
	free(o.ctl_socket);
	close(ff.base_fd);
	return ret;
}
