// SPDX-License-Identifier: GPL-2.0-only
/*
 * Control-plane latency against a running iofenced: query-status round
 * trips, and setup→armed for batches of 1, 16, 64 and 256 storages, while
 * background clients keep the daemon busy with queries.
 *
 *   bench_ctl SOCKET WORKDIR [ROUNDS]
 *
 * With --pipeline K, query-status throughput instead: N clients, each
 * keeping K requests in flight for S seconds, and the latency of each
 * request from its send to its reply. --execute names another command
 * without arguments (query-version: the server's own cost per request).
 *
 *   bench_ctl --pipeline K [--clients N] [--seconds S] [--execute CMD] SOCKET
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
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

#define PIPE_MAX 4096
#define PIPE_CLIENTS_MAX 256

struct pipe_client {
	pthread_t thread;
	const char *sock;
	const char *req; /* the request line, newline included */
	int depth;
	double end_us;
	/* Round trips in µs, as many as were answered. */
	double *lat;
	size_t n, cap;
	int failed;
};

static void lat_add(struct pipe_client *p, double us)
{
	if (p->n == p->cap) {
		p->cap = p->cap ? 2 * p->cap : 65536;
		p->lat = realloc(p->lat, p->cap * sizeof(*p->lat));
		if (!p->lat)
			exit(1);
	}
	p->lat[p->n++] = us;
}

static int send_all(int fd, const char *buf, size_t len)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

/*
 * Replies are counted by their newlines, not parsed, so that the client
 * costs little beside the daemon; each must still be a return, not an
 * error. Replies come in request order, so a ring of send times pairs them.
 */
static void *pipe_client_run(void *arg)
{
	struct pipe_client *p = arg;
	const char *req = p->req;
	const size_t rlen = strlen(req);
	double sent_at[PIPE_MAX];
	size_t head = 0, tail = 0; /* sent, answered */
	char *out = malloc(PIPE_MAX * rlen);
	bool at_line_start = true;
	char buf[256 * 1024];
	struct conn c;

	conn_open(&c, p->sock);
	for (;;) {
		double now = now_us();
		size_t want = now < p->end_us ? tail + p->depth - head : 0;
		bool line_ok = true;
		ssize_t n;

		for (size_t i = 0; i < want; i++) {
			memcpy(out + i * rlen, req, rlen);
			sent_at[(head + i) % PIPE_MAX] = now;
		}
		if (want && send_all(c.fd, out, want * rlen)) {
			p->failed = 1;
			break;
		}
		head += want;
		if (head == tail)
			break;
		n = recv(c.fd, buf, sizeof(buf), 0);
		if (n <= 0) {
			p->failed = 1;
			break;
		}
		now = now_us();
		for (ssize_t i = 0; i < n; i++) {
			if (at_line_start)
				line_ok = n - i < 10 ||
					  !strncmp(buf + i, "{\"return\"", 9);
			if (at_line_start && !line_ok) {
				fprintf(stderr, "bench: error reply: %.200s\n",
					buf + i);
				p->failed = 1;
				goto out;
			}
			at_line_start = buf[i] == '\n';
			if (at_line_start)
				lat_add(p, now - sent_at[tail++ % PIPE_MAX]);
		}
	}
out:
	close(c.fd);
	linebuf_free(&c.in);
	free(out);
	return NULL;
}

static int pipeline_bench(const char *sock, const char *cmd, int clients,
			  int depth, double seconds)
{
	char req[128];
	struct pipe_client *p = calloc(clients, sizeof(*p));
	double t0 = now_us(), elapsed, *all;
	size_t total = 0, k = 0;
	int failed = 0;
	char what[96];

	snprintf(req, sizeof(req), "{\"execute\":\"%s\"}\n", cmd);
	for (int i = 0; i < clients; i++) {
		p[i].sock = sock;
		p[i].req = req;
		p[i].depth = depth;
		p[i].end_us = t0 + seconds * 1e6;
		if (pthread_create(&p[i].thread, NULL, pipe_client_run, &p[i]))
			return 1;
	}
	for (int i = 0; i < clients; i++) {
		pthread_join(p[i].thread, NULL);
		total += p[i].n;
		failed |= p[i].failed;
	}
	elapsed = (now_us() - t0) / 1e6;
	all = malloc((total ? total : 1) * sizeof(*all));
	for (int i = 0; i < clients; i++) {
		memcpy(all + k, p[i].lat, p[i].n * sizeof(*all));
		k += p[i].n;
		free(p[i].lat);
	}
	printf("%s pipelined: %d clients x %d in flight, %.1f s: %zu requests, %.0f per second\n",
	       cmd, clients, depth, elapsed, total, total / elapsed);
	if (total) {
		snprintf(what, sizeof(what), "%s, %d x %d in flight", cmd,
			 clients, depth);
		qsort(all, total, sizeof(*all), cmp);
		printf("%-34s n=%-7zu p50 %8.1f us   p99 %8.1f us   max %8.1f us\n",
		       what, total, all[total / 2], all[total * 99 / 100],
		       all[total - 1]);
	}
	free(all);
	free(p);
	return failed || !total;
}

static int pipeline_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "clients", required_argument, NULL, 'c' },
		{ "pipeline", required_argument, NULL, 'k' },
		{ "seconds", required_argument, NULL, 's' },
		{ "execute", required_argument, NULL, 'e' },
		{},
	};
	const char *cmd = "query-status";
	int clients = 4, depth = 32, c;
	double seconds = 5;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			clients = atoi(optarg);
			break;
		case 'k':
			depth = atoi(optarg);
			break;
		case 's':
			seconds = atof(optarg);
			break;
		case 'e':
			cmd = optarg;
			break;
		default:
			return 2;
		}
	}
	if (optind != argc - 1 || clients < 1 || clients > PIPE_CLIENTS_MAX ||
	    depth < 1 || depth > PIPE_MAX || seconds <= 0 ||
	    strspn(cmd, "abcdefghijklmnopqrstuvwxyz-") != strlen(cmd) ||
	    strlen(cmd) > 64) {
		fprintf(stderr,
			"usage: bench_ctl --pipeline K [--clients N] [--seconds S] [--execute CMD] SOCKET\n"
			"       (N up to %d, K up to %d)\n",
			PIPE_CLIENTS_MAX, PIPE_MAX);
		return 2;
	}
	return pipeline_bench(argv[optind], cmd, clients, depth, seconds);
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

	for (int i = 1; i < argc; i++)
		if (!strncmp(argv[i], "--", 2))
			return pipeline_main(argc, argv);
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
