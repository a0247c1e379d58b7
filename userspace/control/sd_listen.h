/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Socket activation, the sd_listen_fds(3) protocol, by hand like
 * sd_notify.h: the service manager (or systemd-socket-activate) passes
 * listening sockets as fds 3, 4, ... and says so in $LISTEN_PID (the
 * process they are for), $LISTEN_FDS (how many) and, optionally,
 * $LISTEN_FDNAMES (their names, ':'-separated).
 */
#ifndef IOFENCE_SD_LISTEN_H
#define IOFENCE_SD_LISTEN_H

#include <stdbool.h>
#include <sys/un.h>

#define SD_LISTEN_FDS_START 3

/* The control socket that was passed. */
struct sd_socket {
	bool passed;
	int fd;
	/* Its bound name: a path, "@name" (abstract) or "" (none). */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	char name[64]; /* from $LISTEN_FDNAMES, or "" */
};

/*
 * Takes the sockets passed to this process: each is made close-on-exec,
 * and the variables are removed whatever they say, so that no child (a
 * fence hook) takes them for its own. Call before any thread starts and
 * before a fork (LISTEN_PID names the process that was started).
 *
 * The control socket is the one named "control", else the first, that is
 * a listening AF_UNIX stream socket; the other fds are closed. Returns 0
 * with @s->passed false when nothing was passed (or not to this process),
 * 0 with @s filled in, or a negative errno, logged, when what was passed
 * is unusable: malformed variables, or no listening AF_UNIX stream socket.
 */
int sd_listen_take(struct sd_socket *s);

/*
 * What the variables mean, without taking anything: the fd count for
 * @pid, 0 when none are passed to it, -EINVAL when they do not parse.
 * Pure, for tests.
 */
int sd_listen_count(const char *listen_pid, const char *listen_fds, long pid);

#endif
