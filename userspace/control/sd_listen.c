// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "sd_listen.h"

/* A decimal number, all of @s, in 0..@max. */
static int parse_num(const char *s, long max, long *out)
{
	char *end;
	long v;

	if (!s || !*s || *s == '-' || *s == '+')
		return -EINVAL;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

int sd_listen_count(const char *listen_pid, const char *listen_fds, long pid)
{
	long p, n;

	if (!listen_fds || !listen_pid)
		return 0;
	if (parse_num(listen_pid, LONG_MAX, &p) || p == 0 ||
	    parse_num(listen_fds, INT_MAX - SD_LISTEN_FDS_START, &n))
		return -EINVAL;
	return p == pid ? (int)n : 0;
}

/* The @i-th ':'-separated name of @names (may be NULL) into @out. */
static void nth_name(const char *names, int i, char *out, size_t len)
{
	const char *p = names, *end;

	out[0] = '\0';
	for (; p && i > 0; i--) {
		p = strchr(p, ':');
		if (p)
			p++;
	}
	if (!p)
		return;
	end = strchrnul(p, ':');
	snprintf(out, len, "%.*s", (int)(end - p), p);
}

static int sockopt_int(int fd, int opt, int *val)
{
	socklen_t len = sizeof(*val);

	return getsockopt(fd, SOL_SOCKET, opt, val, &len) ? -errno : 0;
}

/*
 * Why @fd cannot be the control socket (a static string), or NULL; its
 * bound name into @path when it can.
 */
static const char *check_socket(int fd, char *path, size_t len)
{
	struct sockaddr_un addr;
	socklen_t alen = sizeof(addr);
	size_t n;
	int v;

	if (sockopt_int(fd, SO_DOMAIN, &v))
		return errno == ENOTSOCK ? "not a socket" : "no socket options";
	if (v != AF_UNIX)
		return "not an AF_UNIX socket";
	if (sockopt_int(fd, SO_TYPE, &v) || v != SOCK_STREAM)
		return "not a stream socket";
	if (sockopt_int(fd, SO_ACCEPTCONN, &v) || !v)
		return "not listening";
	memset(&addr, 0, sizeof(addr));
	if (getsockname(fd, (struct sockaddr *)&addr, &alen))
		return "no name (getsockname)";
	path[0] = '\0';
	if (alen <= offsetof(struct sockaddr_un, sun_path))
		return NULL;
	n = alen - offsetof(struct sockaddr_un, sun_path);
	if (addr.sun_path[0])
		snprintf(path, len, "%.*s", (int)strnlen(addr.sun_path, n),
			 addr.sun_path);
	else
		/* Abstract: the name is every byte after the NUL. */
		snprintf(path, len, "@%.*s", (int)(n - 1), addr.sun_path + 1);
	return NULL;
}

int sd_listen_take(struct sd_socket *s)
{
	const char *pid_s = getenv("LISTEN_PID");
	const char *fds_s = getenv("LISTEN_FDS");
	char *names = getenv("LISTEN_FDNAMES");
	char name[sizeof(s->name)], path[sizeof(s->path)];
	int n, chosen = -1, ret = 0;

	memset(s, 0, sizeof(*s));
	s->fd = -1;
	n = sd_listen_count(pid_s, fds_s, getpid());
	if (n < 0) {
		pr_err("socket activation: LISTEN_PID=%s LISTEN_FDS=%s do not parse",
		       pid_s, fds_s);
		ret = n;
	} else if (!n && fds_s && pid_s) {
		pr_warn("socket activation: LISTEN_PID=%s is not this process (%d); its sockets are not taken",
			pid_s, (int)getpid());
	} else if (!n && fds_s) {
		pr_warn("socket activation: LISTEN_FDS without LISTEN_PID; ignored");
	}
	names = names ? strdup(names) : NULL;
	unsetenv("LISTEN_PID");
	unsetenv("LISTEN_FDS");
	unsetenv("LISTEN_FDNAMES");
	for (int i = 0; i < n; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		int flags = fcntl(fd, F_GETFD);

		if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC)) {
			pr_err("socket activation: fd %d of LISTEN_FDS=%d: %s",
			       fd, n, strerror(errno));
			ret = -EBADF;
		}
	}
	for (int i = 0; i < n && !ret; i++) {
		int fd = SD_LISTEN_FDS_START + i;
		const char *why = check_socket(fd, path, sizeof(path));

		nth_name(names, i, name, sizeof(name));
		if (why) {
			pr_warn("socket activation: fd %d (%s) is %s; not the control socket",
				fd, *name ? name : "unnamed", why);
			continue;
		}
		if (chosen < 0 ||
		    (!strcmp(name, "control") && strcmp(s->name, "control"))) {
			chosen = fd;
			memcpy(s->path, path, sizeof(path));
			memcpy(s->name, name, sizeof(name));
		}
	}
	free(names);
	if (!ret && n && chosen < 0) {
		pr_err("socket activation: none of the %d fds passed is a listening AF_UNIX stream socket",
		       n);
		ret = -ENOTSOCK;
	}
	/* What is not the control socket is no business of this daemon. */
	for (int i = 0; i < n; i++)
		if (SD_LISTEN_FDS_START + i != chosen)
			close(SD_LISTEN_FDS_START + i);
	if (ret) {
		if (chosen >= 0)
			close(chosen);
		return ret;
	}
	if (chosen >= 0) {
		s->passed = true;
		s->fd = chosen;
	}
	return 0;
}
