/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * A real daemon inside the test process: the same daemon_open() as
 * iofenced, its loop pumped by the test between requests, and clients on
 * its real socket. The control plane runs only when a test pumps it, so
 * tests control its interleavings; the fencing core runs in its own
 * thread, as in iofenced, and its reports wait for the next pump.
 */
#ifndef IOFENCE_HARNESS_H
#define IOFENCE_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "daemon.h"

/* How long a test waits for a reply before it fails. */
#define HARNESS_REPLY_MS 10000

struct harness {
	struct daemon d;
	char dir[64]; /* everything of this daemon lives below */
	char sock[96];
	char state[96];
	const char *extra[8]; /* more iofenced options */
	bool running;
};

/* Starts with private paths, --no-bpf, and @extra options (NULL-ended). */
void harness_start(struct harness *h, const char *const *extra);
/* daemon_close() and daemon_open() again on the same state dir. */
void harness_restart(struct harness *h);
/* daemon_open() again after the test closed it (and edited its state). */
void harness_reopen(struct harness *h);
/* Stops it and removes its folder. */
void harness_stop(struct harness *h);
/* Set in a forked client process: waiting never runs the loop. */
extern bool harness_client_only;
/* Runs the loop for up to @ms. */
void harness_pump(struct harness *h, unsigned int ms);

/* A client: connected, greeting read. Non-blocking fd. */
int harness_connect(struct harness *h);
void harness_send(int fd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The next message on @fd, pumping the loop meanwhile; NULL at EOF. */
json_t *harness_read(struct harness *h, int fd);
/* The reply to a request (events skipped). */
json_t *harness_call(struct harness *h, int fd, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A path under the harness folder, in a static buffer per call site. */
const char *harness_path(struct harness *h, const char *name, char *buf,
			 size_t len);

/*
 * A loop device on a @size file of zeros under the harness folder, with
 * @len bytes of @data at @off first when @data is given; its path into
 * @dev. Skips the test when losetup cannot do it.
 */
void harness_loop_attach(struct harness *h, uint64_t size, const void *data,
			 size_t len, uint64_t off, char *dev, size_t dev_len);

/* Reply helpers. */
const char *reply_class(json_t *reply); /* NULL for a success */
const char *reply_desc(json_t *reply);
json_t *reply_ret(json_t *reply);

#endif
