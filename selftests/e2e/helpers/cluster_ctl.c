// SPDX-License-Identifier: GPL-2.0-only
/*
 * The client of a simulated cluster (test_cluster, cluster_bench): many
 * daemons asked about each other at once, and the records of hosts that
 * no daemon runs for.
 *
 *   cluster_ctl query [--window MS] [--parallel N] [--timeout S]
 *                     STORAGE ASKERS TARGETS
 *
 * ASKERS is a file of "HOST SOCKET" lines, TARGETS a file of host names,
 * one a line. Every asker is asked query-peer about every target but
 * itself, over one connection per asker with the requests pipelined, at
 * most N (default 256) in flight over all connections and 256 on one: a
 * window is mostly waiting, and 4032 queries one after the other would
 * take hours. One line per query, in the order of the files:
 *
 *   ASKER TARGET LIVENESS LATENCY_US PROGRESS REASON...
 *
 * (LIVENESS is "error:<class>" for an error reply and "missing" for no
 * reply; PROGRESS "-" when the reply has none), then
 *
 *   summary queries=Q alive=A dead=D unknown=U error=E missing=M
 *           wall_ms=W p50_us=.. p99_us=.. max_us=..
 *
 * Exit 0 when every query was answered, 1 when not (a connection lost,
 * --timeout, default 120 s, passed), 2 on bad usage.
 *
 *   cluster_ctl records [--interval MS] [--timeout MS] [--every MS]
 *                       DIR STORAGE PREFIX COUNT
 *
 * Writes the records (record.h) of COUNT hosts PREFIX0000, PREFIX0001...
 * into DIR, a file storage's .iofence folder, state armed, as their
 * daemons would; with --every, again every MS with the next sequence
 * number until SIGTERM: peers that are alive.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>

#include "linebuf.h"
#include "record.h"

#define CONN_INFLIGHT_MAX 256
#define NAME_MAX_LEN 64
#define REPLY_LINE_MAX (256 * 1024)

struct asker {
	char host[NAME_MAX_LEN + 1];
	char sock[108];
	int fd;
	struct linebuf in;
	unsigned int next; /* the next target to ask about */
	unsigned int inflight;
	bool lost;
};

struct answer {
	double sent_us;
	double lat_us;
	bool done;
	char liveness[48];
	long long progress; /* -1: none */
	char *reason;
};

static double now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: cluster_ctl query [--window MS] [--parallel N] [--timeout S] STORAGE ASKERS TARGETS\n"
		"       cluster_ctl records [--interval MS] [--timeout MS] [--every MS] DIR STORAGE PREFIX COUNT\n");
	exit(2);
}

static char **read_lines(const char *path, unsigned int *n)
{
	char **v = NULL, *line = NULL;
	size_t cap = 0, len;
	unsigned int count = 0;
	FILE *f = fopen(path, "r");

	if (!f) {
		fprintf(stderr, "cluster_ctl: %s: %s\n", path, strerror(errno));
		exit(2);
	}
	while (getline(&line, &cap, f) > 0) {
		len = strcspn(line, "\r\n");
		line[len] = '\0';
		if (!len)
			continue;
		v = realloc(v, (count + 1) * sizeof(*v));
		if (!v || !(v[count] = strdup(line)))
			exit(2);
		count++;
	}
	free(line);
	fclose(f);
	*n = count;
	return v;
}

/*
 * The next whole message on @a, waiting at most @ms, or none at all when
 * @ms < 0; NULL when there is none (an unparsable line comes as {}).
 */
static json_t *recv_msg(struct asker *a, int ms)
{
	struct pollfd p = { .fd = a->fd, .events = POLLIN };
	size_t avail, len;
	char *line, *buf;
	ssize_t n;
	json_t *m;
	int ret;

	for (;;) {
		ret = linebuf_next(&a->in, &line, &len);
		if (ret > 0) {
			m = json_loadb(line, len, 0, NULL);
			return m ?: json_object();
		}
		if (ret < 0) {
			a->lost = true;
			return NULL;
		}
		if (ms >= 0 && poll(&p, 1, ms) <= 0)
			return NULL;
		buf = linebuf_space(&a->in, &avail);
		n = recv(a->fd, buf, avail, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			if (ms < 0)
				return NULL;
			continue;
		}
		if (n <= 0) {
			a->lost = true;
			return NULL;
		}
		linebuf_commit(&a->in, n);
	}
}

static int asker_connect(struct asker *a)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	json_t *greeting;

	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", a->sock);
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a->fd < 0 || connect(a->fd, (struct sockaddr *)&addr, sizeof(addr)))
		return -errno;
	if (linebuf_init(&a->in, REPLY_LINE_MAX))
		return -ENOMEM;
	greeting = recv_msg(a, 10000);
	if (!greeting)
		return -ETIMEDOUT;
	json_decref(greeting);
	return 0;
}

static int send_line(int fd, const char *s)
{
	size_t len = strlen(s);

	while (len) {
		ssize_t n = send(fd, s, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -errno;
		s += n;
		len -= n;
	}
	return 0;
}

/* A reply to one of the queries: true when it is one not answered yet. */
static bool take_reply(struct answer *ans, unsigned int nans, json_t *m)
{
	json_t *id = json_object_get(m, "id"), *r, *v;
	struct answer *x;
	json_int_t i;

	if (!json_is_integer(id))
		return false; /* not ours: an event */
	i = json_integer_value(id);
	if (i < 0 || (json_int_t)nans <= i || ans[i].done)
		return false;
	x = &ans[i];
	x->done = true;
	x->lat_us = now_us() - x->sent_us;
	x->progress = -1;
	r = json_object_get(m, "return");
	if (!r) {
		r = json_object_get(m, "error");
		snprintf(x->liveness, sizeof(x->liveness), "error:%s",
			 json_string_value(json_object_get(r, "class")) ?: "?");
		v = json_object_get(r, "desc");
	} else {
		snprintf(x->liveness, sizeof(x->liveness), "%s",
			 json_string_value(json_object_get(r, "liveness")) ?:
									     "?");
		v = json_object_get(r, "progress");
		if (json_is_integer(v))
			x->progress = json_integer_value(v);
		v = json_object_get(r, "reason");
	}
	if (json_string_value(v))
		x->reason = strdup(json_string_value(v));
	return true;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static int do_query(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "window", required_argument, NULL, 'w' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "timeout", required_argument, NULL, 't' },
		{},
	};
	long window = -1, parallel = 256, timeout_s = 120;
	unsigned int nask, ntgt, nans, inflight = 0, left, i, j, k, nlat = 0;
	unsigned int cnt[5] = { 0 };
	char **asklines, **targets;
	struct answer *ans;
	struct asker *as;
	struct pollfd *pfd;
	double t0, end, *lat;
	int c, rc = 0;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'w')
			window = atol(optarg);
		else if (c == 'p')
			parallel = atol(optarg);
		else if (c == 't')
			timeout_s = atol(optarg);
		else
			usage();
	}
	if (argc - optind != 3 || parallel < 1)
		usage();
	const char *storage = argv[optind];

	asklines = read_lines(argv[optind + 1], &nask);
	targets = read_lines(argv[optind + 2], &ntgt);
	as = calloc(nask ? nask : 1, sizeof(*as));
	pfd = calloc(nask ? nask : 1, sizeof(*pfd));
	nans = nask * ntgt;
	ans = calloc(nans ? nans : 1, sizeof(*ans));
	lat = calloc(nans ? nans : 1, sizeof(*lat));
	if (!as || !pfd || !ans || !lat)
		return 2;
	left = 0;
	for (i = 0; i < nask; i++) {
		as[i].fd = -1;
		if (sscanf(asklines[i], "%64s %107s", as[i].host, as[i].sock) !=
		    2)
			usage();
		for (j = 0; j < ntgt; j++)
			if (strcmp(targets[j], as[i].host))
				left++;
			else
				ans[i * ntgt + j].done = true; /* not asked */
	}

	t0 = now_us();
	end = t0 + timeout_s * 1e6;
	for (i = 0; i < nask; i++) {
		int err = asker_connect(&as[i]);

		if (err) {
			fprintf(stderr, "cluster_ctl: %s (%s): %s\n",
				as[i].host, as[i].sock, strerror(-err));
			as[i].lost = true;
		}
	}

	while (left && now_us() < end) {
		bool sent = true;
		int n = 0;

		/* One more request per asker and turn, round the askers. */
		while (sent && inflight < parallel) {
			sent = false;
			for (i = 0; i < nask && inflight < parallel; i++) {
				struct asker *a = &as[i];
				char req[512];

				while (a->next < ntgt &&
				       !strcmp(targets[a->next], a->host))
					a->next++;
				if (a->lost || a->next >= ntgt ||
				    a->inflight >= CONN_INFLIGHT_MAX)
					continue;
				k = i * ntgt + a->next;
				if (window >= 0)
					snprintf(
						req, sizeof(req),
						"{\"execute\":\"query-peer\",\"arguments\":{\"storage\":\"%s\",\"host\":\"%s\",\"window_ms\":%ld},\"id\":%u}\n",
						storage, targets[a->next],
						window, k);
				else
					snprintf(
						req, sizeof(req),
						"{\"execute\":\"query-peer\",\"arguments\":{\"storage\":\"%s\",\"host\":\"%s\"},\"id\":%u}\n",
						storage, targets[a->next], k);
				ans[k].sent_us = now_us();
				if (send_line(a->fd, req)) {
					a->lost = true;
					continue;
				}
				a->next++;
				a->inflight++;
				inflight++;
				sent = true;
			}
		}
		for (i = 0; i < nask; i++) {
			pfd[i].fd = as[i].lost || !as[i].inflight ? -1 :
								    as[i].fd;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
			if (pfd[i].fd >= 0)
				n++;
		}
		if (!n)
			break; /* nothing in flight and nothing to send */
		if (poll(pfd, nask, 100) < 0 && errno != EINTR)
			break;
		for (i = 0; i < nask; i++) {
			json_t *m;

			if (!pfd[i].revents)
				continue;
			while ((m = recv_msg(&as[i], -1))) {
				if (take_reply(ans, nans, m)) {
					as[i].inflight--;
					inflight--;
					left--;
				}
				json_decref(m);
			}
			if (as[i].lost) {
				inflight -= as[i].inflight;
				as[i].inflight = 0;
			}
		}
	}

	for (i = 0; i < nask; i++) {
		for (j = 0; j < ntgt; j++) {
			struct answer *x = &ans[i * ntgt + j];

			if (!strcmp(targets[j], as[i].host))
				continue;
			if (!x->liveness[0]) {
				snprintf(x->liveness, sizeof(x->liveness),
					 "missing");
				x->progress = -1;
				rc = 1;
			} else {
				lat[nlat++] = x->lat_us;
			}
			if (!strcmp(x->liveness, "alive"))
				cnt[0]++;
			else if (!strcmp(x->liveness, "dead"))
				cnt[1]++;
			else if (!strcmp(x->liveness, "unknown"))
				cnt[2]++;
			else if (!strcmp(x->liveness, "missing"))
				cnt[4]++;
			else
				cnt[3]++;
			if (x->progress >= 0)
				printf("%s %s %s %.0f %lld %s\n", as[i].host,
				       targets[j], x->liveness, x->lat_us,
				       x->progress, x->reason ?: "");
			else
				printf("%s %s %s %.0f - %s\n", as[i].host,
				       targets[j], x->liveness, x->lat_us,
				       x->reason ?: "");
		}
	}
	qsort(lat, nlat, sizeof(*lat), cmp_double);
	printf("summary queries=%u alive=%u dead=%u unknown=%u error=%u missing=%u wall_ms=%.0f p50_us=%.0f p99_us=%.0f max_us=%.0f\n",
	       cnt[0] + cnt[1] + cnt[2] + cnt[3] + cnt[4], cnt[0], cnt[1],
	       cnt[2], cnt[3], cnt[4], (now_us() - t0) / 1e3,
	       nlat ? lat[nlat / 2] : 0.0,
	       nlat ? lat[(nlat * 99) / 100 < nlat ? (nlat * 99) / 100 :
						     nlat - 1] :
		      0.0,
	       nlat ? lat[nlat - 1] : 0.0);

	for (i = 0; i < nask; i++) {
		if (as[i].fd >= 0)
			close(as[i].fd);
		linebuf_free(&as[i].in);
		free(asklines[i]);
	}
	for (j = 0; j < ntgt; j++)
		free(targets[j]);
	for (k = 0; k < nans; k++)
		free(ans[k].reason);
	free(asklines);
	free(targets);
	free(as);
	free(pfd);
	free(ans);
	free(lat);
	return rc;
}

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	stop = 1;
}

static uint64_t clock_ns(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* One record, written whole at offset 0 as the daemon writes its own. */
static int write_record(int dirfd, struct record *r, void *buf)
{
	int fd, err = 0;

	r->realtime_ns = clock_ns(CLOCK_REALTIME);
	r->monotonic_ns = clock_ns(CLOCK_MONOTONIC);
	if (record_encode(r, buf))
		return -EINVAL;
	fd = openat(dirfd, r->host_uuid,
		    O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_DIRECT,
		    0644);
	if (fd < 0 && errno == EINVAL)
		fd = openat(dirfd, r->host_uuid,
			    O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return -errno;
	if (pwrite(fd, buf, r->size, 0) != (ssize_t)r->size)
		err = errno ? -errno : -EIO;
	close(fd);
	return err;
}

static int do_records(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "interval", required_argument, NULL, 'i' },
		{ "timeout", required_argument, NULL, 't' },
		{ "every", required_argument, NULL, 'e' },
		{},
	};
	long interval = 1000, timeout = 5000, every = 0, count;
	struct sigaction sa = { .sa_handler = on_term };
	struct record *r;
	uint64_t seq = 1;
	void *buf;
	int c, dirfd, err;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (c == 'i')
			interval = atol(optarg);
		else if (c == 't')
			timeout = atol(optarg);
		else if (c == 'e')
			every = atol(optarg);
		else
			usage();
	}
	if (argc - optind != 4)
		usage();
	count = atol(argv[optind + 3]);
	if (count < 0 || count > 10000 ||
	    strlen(argv[optind + 1]) > RECORD_UUID_MAX ||
	    strlen(argv[optind + 2]) > RECORD_UUID_MAX - 4)
		usage();
	dirfd = open(argv[optind], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0) {
		fprintf(stderr, "cluster_ctl: %s: %s\n", argv[optind],
			strerror(errno));
		return 1;
	}
	r = calloc(1, sizeof(*r));
	if (!r || posix_memalign(&buf, RECORD_SIZE_MAX, RECORD_SIZE_MAX))
		return 1;
	r->size = RECORD_SIZE_MAX;
	r->state = RECORD_ARMED;
	memcpy(r->boot_id, record_boot_id(), sizeof(r->boot_id));
	r->interval_ms = interval;
	r->timeout_ms = timeout;
	snprintf(r->storage_uuid, sizeof(r->storage_uuid), "%s",
		 argv[optind + 1]);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	do {
		for (long i = 0; i < count && !stop; i++) {
			snprintf(r->host_uuid, sizeof(r->host_uuid), "%s%04ld",
				 argv[optind + 2], i);
			r->seq = seq;
			err = write_record(dirfd, r, buf);
			if (err) {
				fprintf(stderr, "cluster_ctl: %s/%s: %s\n",
					argv[optind], r->host_uuid,
					strerror(-err));
				return 1;
			}
		}
		seq++;
		if (every && !stop)
			usleep(every * 1000);
	} while (every && !stop);
	free(buf);
	free(r);
	close(dirfd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "query"))
		return do_query(argc - 1, argv + 1);
	if (!strcmp(argv[1], "records"))
		return do_records(argc - 1, argv + 1);
	usage();
	return 2;
}
