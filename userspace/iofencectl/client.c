// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofencectl's connection to the daemon: one request at a time, its reply
 * found by id among the events, every wait bounded.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "ctl_server.h"
#include "proto.h"

int client_connect(struct client *cl, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (strlen(path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "iofencectl: %s: path too long\n", path);
		return -ENAMETOOLONG;
	}
	strcpy(addr.sun_path, path);
	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd < 0 ||
	    connect(cl->fd, (struct sockaddr *)&addr, sizeof(addr))) {
		fprintf(stderr, "iofencectl: cannot connect to %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	/*
	 * Requests are bounded by PROTO_MAX_LINE, replies are not: a status
	 * of many storages is longer. None is longer than what the daemon
	 * queues for one connection before it gives up on it.
	 */
	return linebuf_init(&cl->in, CTL_MAX_OUTPUT);
}

int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * The next message from the daemon, or NULL after printing why not, or
 * silently once interrupted. @deadline < 0: wait as long as it takes.
 */
json_t *client_read(struct client *cl, int64_t deadline)
{
	json_error_t jerr;
	size_t len, avail;
	char *line, *buf;
	ssize_t n;
	int ret;

	for (;;) {
		ret = linebuf_next(&cl->in, &line, &len);
		if (ret < 0) {
			fprintf(stderr,
				"iofencectl: reply longer than %d bytes\n",
				CTL_MAX_OUTPUT);
			return NULL;
		}
		if (ret > 0) {
			json_t *msg = json_loadb(line, len, 0, &jerr);

			if (!msg)
				fprintf(stderr, "iofencectl: bad reply: %s\n",
					jerr.text);
			return msg;
		}
		struct pollfd pfd = { .fd = cl->fd, .events = POLLIN };
		int64_t left = deadline < 0 ? -1 : deadline - now_ms();

		if (ctl_interrupted)
			return NULL;
		if (deadline >= 0 && left <= 0) {
			fprintf(stderr, "iofencectl: no reply within %s\n",
				fmt_duration(cl->wait_ms).s);
			return NULL;
		}
		ret = poll(&pfd, 1, clamp_int(left));
		if (ret <= 0) {
			if (ret < 0 && errno != EINTR) {
				fprintf(stderr, "iofencectl: poll: %s\n",
					strerror(errno));
				return NULL;
			}
			continue;
		}
		buf = linebuf_space(&cl->in, &avail);
		n = recv(cl->fd, buf, avail, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "iofencectl: connection closed%s%s\n",
				n ? ": " : "", n ? strerror(errno) : "");
			return NULL;
		}
		linebuf_commit(&cl->in, n);
	}
}

int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "iofencectl: send: %s\n",
				strerror(errno));
			return -errno;
		}
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * Sends @execute with @args (borrowed; NULL: none) and returns the reply
 * to it within @wait_ms, skipping events: who wants them asks the journal.
 */
json_t *client_call(struct client *cl, const char *execute, json_t *args,
		    int wait_ms)
{
	int64_t deadline = now_ms() + wait_ms;
	json_t *req, *id, *msg = NULL;
	size_t len;
	char *line;
	int ret;

	id = json_integer(++cl->next_id);
	req = json_pack("{s:s,s:O}", "execute", execute, "id", id);
	if (req && args)
		json_object_set(req, "arguments", args);
	line = proto_dump_line(req, &len);
	ret = line ? send_all(cl->fd, line, len) : -ENOMEM;
	free(line);
	cl->wait_ms = wait_ms;
	while (!ret && (msg = client_read(cl, deadline))) {
		/* Errors about the line itself carry no id. */
		if (json_equal(json_object_get(msg, "id"), id) ||
		    (json_object_get(msg, "error") &&
		     !json_object_get(msg, "id")))
			break;
		json_decref(msg);
	}
	json_decref(id);
	return msg;
}

/*
 * One request: CTL_EXIT_OK with the reply in *@reply, or the exit status
 * after saying what went wrong.
 */
int call(struct client *cl, const char *execute, json_t *args, int wait_ms,
	 json_t **reply)
{
	json_t *err;

	*reply = client_call(cl, execute, args, wait_ms);
	if (!*reply)
		return CTL_EXIT_USAGE;
	err = json_object_get(*reply, "error");
	if (!err)
		return CTL_EXIT_OK;
	if (cl->json)
		print_json(*reply);
	fprintf(stderr, "iofencectl: %s: %s\n", str_of(err, "class"),
		str_of(err, "desc"));
	json_decref(*reply);
	*reply = NULL;
	return CTL_EXIT_ERROR_REPLY;
}
