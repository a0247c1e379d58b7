// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <criterion/criterion.h>

#include "harness.h"
#include "linebuf.h"
#include "log.h"
#include "proto.h"

/* Client-side framing, one per fd the tests open. */
#define HARNESS_FDS 1024
static struct linebuf client_in[HARNESS_FDS];

static void open_daemon(struct harness *h)
{
	/* Never the host's real watchdog. */
	const char *argv[24] = { "iofenced", "--foreground", "--socket",
				 h->sock,    "--state-dir",  h->state,
				 "--no-bpf", "--watchdog",   "none" };
	int argc = 9, ret;

	for (int i = 0; h->extra[i]; i++)
		argv[argc++] = h->extra[i];
	memset(&h->d, 0, sizeof(h->d));
	cr_assert_eq(config_load(&h->d.cfg, argc, (char **)argv), 0);
	ret = daemon_open(&h->d, -1);
	cr_assert_eq(ret, 0, "daemon_open: %s", strerror(-ret));
	h->running = true;
	/* The socket opens once re-arming from the state is over. */
	for (int i = 0; i < HARNESS_REPLY_MS / 10 && h->d.ctl.fd < 0; i++)
		harness_pump(h, 10);
	cr_assert(h->d.ctl.fd >= 0, "the daemon never opened its socket");
}

void harness_start(struct harness *h, const char *const *extra)
{
	memset(h, 0, sizeof(*h));
	log_init("iofenced", LOG_CRIT);
	snprintf(h->dir, sizeof(h->dir), "/tmp/iofence-unit.XXXXXX");
	cr_assert_not_null(mkdtemp(h->dir));
	chmod(h->dir, 0755);
	snprintf(h->sock, sizeof(h->sock), "%s/sock", h->dir);
	snprintf(h->state, sizeof(h->state), "%s/state", h->dir);
	for (int i = 0; extra && extra[i] && i < 7; i++)
		h->extra[i] = extra[i];
	open_daemon(h);
}

void harness_restart(struct harness *h)
{
	daemon_close(&h->d);
	open_daemon(h);
}

void harness_reopen(struct harness *h)
{
	open_daemon(h);
}

static int rm_one(const char *path, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	return remove(path);
}

void harness_stop(struct harness *h)
{
	if (h->running)
		daemon_close(&h->d);
	h->running = false;
	nftw(h->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

bool harness_client_only;

void harness_pump(struct harness *h, unsigned int ms)
{
	/* A forked client must not reap the daemon's completions. */
	if (harness_client_only)
		usleep(ms * 1000);
	else
		loop_run_once(&h->d.loop, ms);
}

const char *harness_path(struct harness *h, const char *name, char *buf,
			 size_t len)
{
	snprintf(buf, len, "%s/%s", h->dir, name);
	return buf;
}

int harness_connect(struct harness *h)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	json_t *greeting;

	cr_assert(fd >= 0 && fd < HARNESS_FDS);
	strcpy(addr.sun_path, h->sock);
	cr_assert_eq(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0,
		     "connect: %s", strerror(errno));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	linebuf_free(&client_in[fd]);
	cr_assert_eq(linebuf_init(&client_in[fd], PROTO_MAX_LINE), 0);
	greeting = harness_read(h, fd);
	cr_assert_not_null(greeting);
	json_decref(greeting);
	return fd;
}

void harness_send(int fd, const char *fmt, ...)
{
	char *line;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vasprintf(&line, fmt, ap);
	va_end(ap);
	cr_assert(n >= 0);
	for (int off = 0; off < n;) {
		ssize_t k = send(fd, line + off, n - off, MSG_NOSIGNAL);

		cr_assert(k > 0 || errno == EAGAIN, "send: %s",
			  strerror(errno));
		off += k > 0 ? k : 0;
	}
	cr_assert_eq(send(fd, "\n", 1, MSG_NOSIGNAL), 1);
	free(line);
}

json_t *harness_read(struct harness *h, int fd)
{
	struct linebuf *lb = &client_in[fd];

	for (int i = 0; i < HARNESS_REPLY_MS; i++) {
		size_t len, avail;
		char *line, *buf;
		ssize_t n;

		if (linebuf_next(lb, &line, &len) > 0) {
			json_t *msg = json_loadb(line, len, 0, NULL);

			cr_assert_not_null(msg, "bad line from the daemon: %s",
					   line);
			return msg;
		}
		buf = linebuf_space(lb, &avail);
		n = recv(fd, buf, avail, 0);
		if (n > 0) {
			linebuf_commit(lb, n);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
			return NULL;
		harness_pump(h, 1);
	}
	cr_assert_fail("no message within %d ms", HARNESS_REPLY_MS);
	return NULL;
}

json_t *harness_call(struct harness *h, int fd, const char *fmt, ...)
{
	json_t *msg;
	char *line;
	va_list ap;

	va_start(ap, fmt);
	cr_assert(vasprintf(&line, fmt, ap) >= 0);
	va_end(ap);
	harness_send(fd, "%s", line);
	free(line);
	while ((msg = harness_read(h, fd)) && json_object_get(msg, "event"))
		json_decref(msg);
	cr_assert_not_null(msg, "connection closed before the reply");
	return msg;
}

const char *reply_class(json_t *reply)
{
	return json_string_value(
		json_object_get(json_object_get(reply, "error"), "class"));
}

const char *reply_desc(json_t *reply)
{
	return json_string_value(
		json_object_get(json_object_get(reply, "error"), "desc"));
}

json_t *reply_ret(json_t *reply)
{
	return json_object_get(reply, "return");
}

void harness_loop_attach(struct harness *h, uint64_t size, const void *data,
			 size_t len, uint64_t off, char *dev, size_t dev_len)
{
	char img[128], cmd[256], line[160] = "";
	FILE *p;
	int fd, st;

	harness_path(h, "disk.img", img, sizeof(img));
	fd = open(img, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	cr_assert(fd >= 0, "%s: %s", img, strerror(errno));
	cr_assert_eq(ftruncate(fd, (off_t)size), 0);
	if (data)
		cr_assert_eq(pwrite(fd, data, len, (off_t)off), (ssize_t)len);
	cr_assert_eq(fsync(fd), 0);
	close(fd);
	snprintf(cmd, sizeof(cmd), "losetup -f --show %s 2>&1", img);
	p = popen(cmd, "r");
	if (!p) {
		fprintf(stderr, "SKIP: popen losetup: %s\n", strerror(errno));
		cr_skip_test("SKIP: popen losetup: %s", strerror(errno));
	}
	if (!fgets(line, sizeof(line), p))
		line[0] = '\0';
	st = pclose(p);
	line[strcspn(line, "\n")] = '\0';
	if (st || strncmp(line, "/dev/", 5)) {
		fprintf(stderr, "SKIP: losetup failed (%d): %s\n", st, line);
		cr_skip_test("SKIP: losetup failed (%d): %s", st, line);
	}
	snprintf(dev, dev_len, "%s", line);
}
