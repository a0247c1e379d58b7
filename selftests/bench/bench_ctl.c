// SPDX-License-Identifier: GPL-2.0-only
/*
 * Control-plane latency against a running iofenced: query-status round
 * trips, and setup→armed for batches of 1, 16, 64 and 256 storages, while
 * background clients keep the daemon busy with queries.
 *
 *   bench_ctl SOCKET WORKDIR [ROUNDS]
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "linebuf.h"
#include "proto.h"

/* Background clients; $BENCH_LOAD overrides. */
#define LOAD_CLIENTS 4
#define LOAD_MAX 64

struct conn {
	int fd;
	struct linebuf in;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static json_t *next_msg(struct conn *c)
{
	size_t len, avail;
	char *line, *buf;
	ssize_t n;

	for (;;) {
		if (linebuf_next(&c->in, &line, &len) > 0)
			return json_loadb(line, len, 0, NULL);
		buf = linebuf_space(&c->in, &avail);
		n = recv(c->fd, buf, avail, 0);
		if (n <= 0) {
			fprintf(stderr, "bench: connection closed\n");
			exit(1);
		}
		linebuf_commit(&c->in, n);
	}
}

static void conn_open(struct conn *c, const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	c->fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (connect(c->fd, (struct sockaddr *)&addr, sizeof(addr))) {
		fprintf(stderr, "bench: connect %s: %s\n", path,
			strerror(errno));
		exit(1);
	}
	linebuf_init(&c->in, 16 * PROTO_MAX_LINE);
	json_decref(next_msg(c)); /* greeting */
}

/* Sends @req and returns the round trip in µs; fails on an error reply. */
static double call(struct conn *c, const char *req)
{
	double t0 = now_us();
	json_t *r;

	if (send(c->fd, req, strlen(req), 0) < 0 || send(c->fd, "\n", 1, 0) < 0)
		exit(1);
	r = next_msg(c);
	if (!r || json_object_get(r, "error")) {
		fprintf(stderr, "bench: error reply: %s\n",
			r ? json_dumps(r, 0) : "unparsable");
		exit(1);
	}
	json_decref(r);
	return now_us() - t0;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *what, double *v, int n)
{
	qsort(v, n, sizeof(*v), cmp);
	printf("%-34s n=%-4d p50 %8.1f us   p99 %8.1f us   max %8.1f us\n",
	       what, n, v[n / 2],
	       v[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1], v[n - 1]);
}

static char *setup_req(const char *dir, int round, int n)
{
	json_t *list = json_array(), *req;
	char path[512], uuid[64];
	char *s;

	for (int i = 0; i < n; i++) {
		snprintf(path, sizeof(path), "%s/m%d", dir, i);
		mkdir(path, 0755);
		snprintf(uuid, sizeof(uuid), "bench-%d-%d", round, i);
		json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "uuid",
						      uuid, "type", "file",
						      "target", path));
	}
	req = json_pack("{s:s,s:{s:s,s:b,s:o}}", "execute", "setup",
			"arguments", "host_uuid", "bench-host",
			"no_status_check", 1, "storages", list);
	s = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	return s;
}

/* What the daemon itself spent in its handlers, by its own account. */
static void handler_time(struct conn *c)
{
	const char *req = "{\"execute\":\"query-status\"}\n";
	json_t *r, *h;

	if (send(c->fd, req, strlen(req), 0) < 0)
		exit(1);
	r = next_msg(c);
	h = json_object_get(json_object_get(r, "return"), "handler_ns");
	printf("%-34s n=%-4lld mean %7.1f us   max %8.1f us\n",
	       "daemon time in handlers",
	       json_integer_value(json_object_get(json_object_get(r, "return"),
						  "requests")),
	       json_integer_value(json_object_get(h, "mean")) / 1e3,
	       json_integer_value(json_object_get(h, "max")) / 1e3);
	json_decref(r);
}

static void load_client(const char *sock)
{
	struct conn c;

	conn_open(&c, sock);
	for (;;)
		call(&c, "{\"execute\":\"query-status\"}");
}

int main(int argc, char **argv)
{
	static const int sizes[] = { 1, 16, 64, 256 };
	int rounds = argc > 3 ? atoi(argv[3]) : 50;
	int nload = getenv("BENCH_LOAD") ? atoi(getenv("BENCH_LOAD")) :
					   LOAD_CLIENTS;
	pid_t load[LOAD_MAX];
	double *v = calloc(rounds > 1000 ? rounds : 1000, sizeof(double));
	struct conn c;
	char what[64];

	if (argc < 3) {
		fprintf(stderr, "usage: bench_ctl SOCKET WORKDIR [ROUNDS]\n");
		return 2;
	}
	conn_open(&c, argv[1]);
	for (int i = 0; i < 1000; i++)
		v[i] = call(&c, "{\"execute\":\"query-status\"}");
	report("query-status round trip, idle", v, 1000);
	handler_time(&c);

	if (nload < 0 || nload > LOAD_MAX)
		nload = LOAD_CLIENTS;
	for (int i = 0; i < nload; i++) {
		load[i] = fork();
		if (!load[i])
			load_client(argv[1]);
	}
	for (int i = 0; i < 1000; i++)
		v[i] = call(&c, "{\"execute\":\"query-status\"}");
	snprintf(what, sizeof(what), "query-status, %d clients loading", nload);
	report(what, v, 1000);

	for (unsigned int s = 0; s < sizeof(sizes) / sizeof(*sizes); s++) {
		for (int r = 0; r < rounds; r++) {
			char *req = setup_req(argv[2], r, sizes[s]);

			v[r] = call(&c, req);
			free(req);
			call(&c,
			     "{\"execute\":\"teardown\",\"arguments\":{\"host_uuid\":\"bench-host\"}}");
		}
		snprintf(what, sizeof(what),
			 "setup->armed, %3d storages, load %d", sizes[s],
			 nload);
		report(what, v, rounds);
	}
	/* Status with a realistic armed set: 64 storages, no load. */
	for (int i = 0; i < nload; i++) {
		kill(load[i], SIGKILL);
		waitpid(load[i], NULL, 0);
	}
	nload = 0;
	char *req = setup_req(argv[2], 0, 64);

	call(&c, req);
	free(req);
	for (int i = 0; i < 1000; i++)
		v[i] = call(&c, "{\"execute\":\"query-status\"}");
	report("query-status, 64 storages armed", v, 1000);
	call(&c,
	     "{\"execute\":\"teardown\",\"arguments\":{\"host_uuid\":\"bench-host\"}}");
	for (int i = 0; i < nload; i++) {
		kill(load[i], SIGKILL);
		waitpid(load[i], NULL, 0);
	}
	free(v);
	return 0;
}
