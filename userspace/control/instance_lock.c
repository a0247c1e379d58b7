// SPDX-License-Identifier: GPL-2.0-only
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "deadlines.h"
#include "instance_lock.h"
#include "paths.h"
#include "log.h"

/* Attempts when the locked path was replaced under us (see lock_path). */
#define LOCK_TRIES 8

/* The locks this process holds: their pid moves with the daemon. */
static struct instance_lock *held;
static void write_pid(int fd)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());

	/* Written over, then cut: a reader never sees an empty file. */
	if (pwrite(fd, buf, n, 0) != n || ftruncate(fd, n))
		pr_warn("cannot record our pid in a lock file: %s",
			strerror(errno));
}

/*
 * detach() forks after the locks are taken, and the child is the daemon:
 * the lock files name it, not the parent that exits. It is the only
 * fork() (fence hooks are posix_spawn()ed, which runs no fork handlers).
 */
static void after_fork_child(void)
{
	if (!held)
		return;
	if (held->state_fd >= 0)
		write_pid(held->state_fd);
	if (held->socket_fd >= 0)
		write_pid(held->socket_fd);
}

static pid_t read_pid(int fd)
{
	char buf[24];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	long pid;
	char *end;

	if (n <= 0)
		return 0;
	buf[n] = '\0';
	pid = strtol(buf, &end, 10);
	if (end == buf || pid <= 0 || pid > INT_MAX)
		return 0;
	/* A pid left by a daemon that died: not the holder. */
	if (kill(pid, 0) && errno == ESRCH)
		return 0;
	return pid;
}

/* Whether /proc/<pid>/fdinfo/<fd> shows an flock on inode @ino. */
static bool fd_holds_flock(int pid, int fd, ino_t ino)
{
	char path[64], line[256], pat[32];
	bool found = false;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid, fd);
	snprintf(pat, sizeof(pat), ":%llu ", (unsigned long long)ino);
	f = fopen(path, "re");
	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f))
		found = !strncmp(line, "lock:", 5) && strstr(line, "FLOCK") &&
			strstr(line, pat);
	fclose(f);
	return found;
}

/* A /proc entry name as a number, or -1 when it is none. */
static int proc_num(const char *name)
{
	char *end;
	long n = strtol(name, &end, 10);

	return isdigit((unsigned char)name[0]) && !*end && n <= INT_MAX ? n :
									  -1;
}

/*
 * The process holding an flock on the folder @path (inode @ino), found
 * through the fds of every process: a folder on bpffs holds no file to
 * write a pid into, and /proc/locks names the process that took the
 * lock, which is the parent that exited when the daemon detached.
 * readlink() and fdinfo only read the fd table; nothing here reaches a
 * file system, so a process with files on a hung storage costs nothing.
 */
static pid_t dir_holder(const char *path, ino_t ino)
{
	char real[PATH_MAX], link[PATH_MAX], fdpath[64];
	struct dirent *p, *e;
	int pid, fd, found = 0;
	DIR *proc, *fds;
	ssize_t n;

	if (!realpath(path, real))
		return 0;
	proc = opendir("/proc");
	if (!proc)
		return 0;
	while (!found && (p = readdir(proc))) {
		pid = proc_num(p->d_name);
		if (pid <= 0 || pid == getpid())
			continue;
		snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd", pid);
		fds = opendir(fdpath);
		if (!fds)
			continue;
		while (!found && (e = readdir(fds))) {
			fd = proc_num(e->d_name);
			if (fd < 0)
				continue;
			snprintf(fdpath, sizeof(fdpath), "/proc/%d/fd/%d", pid,
				 fd);
			n = readlink(fdpath, link, sizeof(link) - 1);
			if (n <= 0)
				continue;
			link[n] = '\0';
			if (!strcmp(link, real) && fd_holds_flock(pid, fd, ino))
				found = pid;
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

/*
 * Opens @path (a folder with @dir, else a lock file, created) and locks
 * it. A lock on a file that is no longer at @path (removed, or a folder
 * rmdir()ed by a daemon that was stopping, and made again) guards
 * nothing: try again on what the path names now. Returns 0 with *@fdp
 * locked; -EBUSY with *@fdp the open, unlocked file, to learn who holds
 * it from; or a negative errno.
 */
static int lock_path(const char *path, bool dir, int *fdp)
{
	struct stat a, b;
	int fd, ret;

	*fdp = -1;
	for (int i = 0; i < LOCK_TRIES; i++) {
		if (dir) {
			ret = mkdir_parents(path, 0700);
			if (!ret && mkdir(path, 0700) && errno != EEXIST)
				ret = -errno;
			if (ret)
				return ret;
			fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		} else {
			fd = open(path,
				  O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
				  0600);
		}
		if (fd < 0) {
			if (errno == ENOENT)
				continue;
			return -errno;
		}
		if (flock(fd, LOCK_EX | LOCK_NB)) {
			ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
			if (ret == -EBUSY)
				*fdp = fd;
			else
				close(fd);
			return ret;
		}
		if (!fstat(fd, &a) && !stat(path, &b) && a.st_dev == b.st_dev &&
		    a.st_ino == b.st_ino) {
			*fdp = fd;
			return 0;
		}
		close(fd);
	}
	return -ESTALE;
}

/* Why @what @path cannot be ours: taken (and by whom), or another error. */
static void refuse(const char *what, const char *path, const char *lock, int fd,
		   bool dir, int err)
{
	char holding[PATH_MAX + 48];
	struct stat st;
	pid_t pid = 0;

	if (err != -EBUSY) {
		pr_err("%s %s: cannot lock %s: %s", what, path, lock,
		       strerror(-err));
		return;
	}
	if (!dir)
		pid = read_pid(fd);
	else if (!fstat(fd, &st))
		pid = dir_holder(path, st.st_ino);
	if (pid)
		snprintf(holding, sizeof(holding), "pid %d, holding %s",
			 (int)pid, dir ? "a lock on it" : lock);
	else
		snprintf(holding, sizeof(holding), "holding %s",
			 dir ? "a lock on it" : lock);
	pr_err("%s %s: another iofenced is serving it (%s); one daemon per state dir, socket and pin dir: not starting",
	       what, path, holding);
}

/* Locks @lock for @what @path into *@out, or says why not. */
static int take(const char *what, const char *path, const char *lock, bool dir,
		int *out)
{
	int fd, ret = lock_path(lock, dir, &fd);

	for (int waited = 0; ret == -EBUSY && waited < INSTANCE_WAIT_MS;
	     waited += INSTANCE_POLL_MS) {
		close(fd);
		usleep(INSTANCE_POLL_MS * 1000);
		ret = lock_path(lock, dir, &fd);
	}

	if (!ret) {
		*out = fd;
		return 0;
	}
	/* No bpffs: the tracker cannot pin there either, nothing to guard. */
	if (dir && ret != -EBUSY && ret != -ESTALE) {
		pr_warn("pin dir %s: %s; not locked, and the BPF tracker cannot pin there either",
			path, strerror(-ret));
		return 0;
	}
	refuse(what, path, lock, fd, dir, ret);
	if (fd >= 0)
		close(fd);
	return ret;
}

int instance_lock(const struct config *cfg, struct instance_lock *lk)
{
	char sock_lock[PATH_MAX], state_lock[PATH_MAX];
	static bool handler;
	int ret;

	lk->state_fd = lk->socket_fd = lk->pin_fd = -1;
	if (!handler) {
		ret = pthread_atfork(NULL, NULL, after_fork_child);
		if (ret) {
			pr_err("pthread_atfork: %s", strerror(ret));
			return -ret;
		}
		handler = true;
	}
	if (snprintf(state_lock, sizeof(state_lock), "%s/%s", cfg->state_dir,
		     INSTANCE_LOCK_FILE) >= (int)sizeof(state_lock) ||
	    snprintf(sock_lock, sizeof(sock_lock), "%s%s", cfg->socket_path,
		     INSTANCE_LOCK_SUFFIX) >= (int)sizeof(sock_lock)) {
		pr_err("state dir or socket path: longer than %d bytes",
		       PATH_MAX);
		return -ENAMETOOLONG;
	}

	if (mkdir(cfg->state_dir, 0700) && errno != EEXIST) {
		ret = -errno;
		pr_err("state dir %s: %s", cfg->state_dir, strerror(errno));
		return ret;
	}
	ret = take("state dir", cfg->state_dir, state_lock, false,
		   &lk->state_fd);
	if (ret)
		goto fail;
	ret = mkdir_parents(sock_lock, 0755);
	if (ret) {
		pr_err("socket path %s: cannot create its folder: %s",
		       cfg->socket_path, strerror(-ret));
		goto fail;
	}
	ret = take("socket", cfg->socket_path, sock_lock, false,
		   &lk->socket_fd);
	if (ret)
		goto fail;
	if (!cfg->no_bpf) {
		ret = take("pin dir", cfg->pin_dir, cfg->pin_dir, true,
			   &lk->pin_fd);
		if (ret)
			goto fail;
	}
	write_pid(lk->state_fd);
	write_pid(lk->socket_fd);
	held = lk;
	return 0;

fail:
	instance_unlock(lk);
	return ret;
}

void instance_unlock(struct instance_lock *lk)
{
	int *fds[] = { &lk->pin_fd, &lk->socket_fd, &lk->state_fd };

	if (held == lk)
		held = NULL;
	for (unsigned int i = 0; i < 3; i++) {
		if (*fds[i] < 0)
			continue;
		/* Not close() alone: a hung worker may share our fd table. */
		flock(*fds[i], LOCK_UN);
		close(*fds[i]);
		*fds[i] = -1;
	}
}
