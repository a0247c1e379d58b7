// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofencectl: the client of iofenced's control socket, for the connect
 * agent, operators and scripts. Prints replies for people, or as JSON with
 * --json; exits non-zero on an error reply, with its text on stderr.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "linebuf.h"
#include "proto.h"

/* How long to wait for the daemon's reply unless --timeout says. */
#define CTL_DEFAULT_TIMEOUT_MS 30000

struct client {
	int fd;
	struct linebuf in;
	int timeout_ms;
	bool json;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: iofencectl [OPTION]... COMMAND [ARG]...\n"
		"Talks to iofenced over its control socket.\n"
		"\n"
		"Commands:\n"
		"  status                     the daemon and every armed storage (query-status)\n"
		"  version                    the daemon's version (query-version)\n"
		"  commands                   the commands the daemon serves (query-commands)\n"
		"  setup --host UUID --storage uuid=U,type=file|block,target=PATH [--storage ...]\n"
		"                             arm storages of a host\n"
		"  raw [LINE]                 send LINE, or each line of stdin, as it is and\n"
		"                             print each reply as one JSON line\n"
		"\n"
		"Options:\n"
		"  -s, --socket PATH   control socket (default " IOFENCE_DEFAULT_SOCKET ")\n"
		"  -j, --json          print replies as JSON\n"
		"  -t, --timeout MS    wait at most MS for the reply (default %d)\n"
		"  -h, --help          show this help and exit\n"
		"\n"
		"Exit status: 0 on success, 1 on an error reply, 2 on a usage or\n"
		"connection error.\n",
		CTL_DEFAULT_TIMEOUT_MS);
}

static int client_connect(struct client *cl, const char *path)
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
	return linebuf_init(&cl->in, PROTO_MAX_LINE);
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The next message from the daemon, or NULL after printing why not. */
static json_t *client_read(struct client *cl, int64_t deadline)
{
	json_error_t jerr;
	size_t len, avail;
	char *line, *buf;
	ssize_t n;
	int ret;

	for (;;) {
		ret = linebuf_next(&cl->in, &line, &len);
		if (ret < 0) {
			fprintf(stderr, "iofencectl: reply longer than %d bytes\n",
				PROTO_MAX_LINE);
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
		int64_t left = deadline - now_ms();

		if (left <= 0 || poll(&pfd, 1, left) == 0) {
			fprintf(stderr, "iofencectl: no reply within %d ms\n",
				cl->timeout_ms);
			return NULL;
		}
		buf = linebuf_space(&cl->in, &avail);
		n = recv(cl->fd, buf, avail, 0);
		if (n <= 0) {
			fprintf(stderr, "iofencectl: connection closed%s%s\n",
				n ? ": " : "", n ? strerror(errno) : "");
			return NULL;
		}
		linebuf_commit(&cl->in, n);
	}
}

static int send_all(int fd, const char *buf, size_t len)
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

/* Sends @req (stolen) and returns the reply to it, skipping events. */
static json_t *client_call(struct client *cl, json_t *req)
{
	int64_t deadline = now_ms() + cl->timeout_ms;
	json_t *id = json_object_get(req, "id");
	json_t *msg;
	size_t len;
	char *line;
	int ret;

	if (!id) {
		json_object_set_new(req, "id", json_integer(1));
		id = json_object_get(req, "id");
	}
	json_incref(id);
	line = proto_dump_line(req, &len);
	ret = line ? send_all(cl->fd, line, len) : -ENOMEM;
	free(line);
	msg = NULL;
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

static void print_status(json_t *ret)
{
	json_t *bpf = json_object_get(ret, "bpf");
	json_t *list = json_object_get(ret, "storages");
	json_t *s;
	size_t i;

	printf("iofenced: up %.1f s, %lld requests served, %lld connections\n",
	       json_integer_value(json_object_get(ret, "uptime_ms")) / 1000.0,
	       json_integer_value(json_object_get(ret, "requests")),
	       json_integer_value(json_object_get(ret, "connections")));
	if (json_is_true(json_object_get(bpf, "active")))
		printf("BPF tracker: active, pinned in %s\n",
		       json_string_value(json_object_get(bpf, "pin_dir")));
	else
		printf("BPF tracker: off (no block I/O evidence)\n");
	printf("%zu storages armed\n", json_array_size(list));
	if (!json_array_size(list))
		return;
	printf("%-36s %-5s %-8s %12s %8s %14s  %s\n", "STORAGE", "TYPE",
	       "DEVICE", "COMPLETIONS", "ERRORS", "BYTES", "TARGET");
	json_array_foreach(list, i, s) {
		json_t *io = json_object_get(s, "io");
		const char *dev = json_string_value(json_object_get(io, "device"));

		printf("%-36s %-5s %-8s %12lld %8lld %14lld  %s\n",
		       json_string_value(json_object_get(s, "uuid")),
		       json_string_value(json_object_get(s, "type")),
		       dev ? dev : "-",
		       json_integer_value(json_object_get(io, "completions")),
		       json_integer_value(json_object_get(io, "errors")),
		       json_integer_value(json_object_get(io, "bytes")),
		       json_string_value(json_object_get(s, "target")));
	}
}

static void print_setup(json_t *ret)
{
	json_t *s;
	size_t i;

	json_array_foreach(json_object_get(ret, "storages"), i, s)
		printf("%s: %s\n", json_string_value(json_object_get(s, "uuid")),
		       json_string_value(json_object_get(s, "result")));
}

static void print_json(json_t *v)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
					   JSON_ENCODE_ANY);

	if (text)
		puts(text);
	free(text);
}

/* "uuid=U,type=T,target=P" to a storage object; NULL after an error. */
static json_t *parse_storage(const char *spec)
{
	char *copy = strdup(spec), *tok, *save = NULL;
	json_t *st = json_object();

	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');

		if (!eq || eq == tok) {
			fprintf(stderr,
				"iofencectl: --storage %s: '%s' is not key=value\n",
				spec, tok);
			json_decref(st);
			st = NULL;
			break;
		}
		*eq = '\0';
		json_object_set_new(st, tok, json_string(eq + 1));
	}
	free(copy);
	return st;
}

static json_t *build_setup(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "storage", required_argument, NULL, 'S' },
		{},
	};
	json_t *args = json_object(), *list = json_array(), *st;
	int c;

	json_object_set_new(args, "storages", list);
	optind = 1;
	while ((c = getopt_long(argc, argv, "H:S:", opts, NULL)) != -1) {
		switch (c) {
		case 'H':
			json_object_set_new(args, "host_uuid",
					    json_string(optarg));
			break;
		case 'S':
			st = parse_storage(optarg);
			if (!st)
				goto err;
			json_array_append_new(list, st);
			break;
		default:
			goto err;
		}
	}
	return json_pack("{s:s,s:o}", "execute", "setup", "arguments", args);
err:
	json_decref(args);
	return NULL;
}

/*
 * raw: each line of stdin (or the one argument) goes to the daemon as it
 * is, even when it is not valid JSON, and each reply is printed on a line
 * of its own. Returns 0, or 1 when any reply was an error.
 */
static int run_raw(struct client *cl, int argc, char **argv)
{
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int status = 0;

	if (argc > 2) {
		fprintf(stderr, "iofencectl: raw takes at most one argument\n");
		return 2;
	}
	for (;;) {
		json_t *msg;
		char *text;

		if (argc == 2) {
			if (line)
				break;
			line = strdup(argv[1]);
			n = strlen(line);
		} else if ((n = getline(&line, &cap, stdin)) < 0) {
			break;
		}
		while (n && line[n - 1] == '\n')
			line[--n] = '\0';
		if (!n)
			continue;
		/*
		 * When the daemon refuses a line mid-way (too long) and
		 * closes, its error is still waiting to be read.
		 */
		if (send_all(cl->fd, line, n) || send_all(cl->fd, "\n", 1))
			status = 2;
		/* The reply to this line: the next message not an event. */
		do {
			msg = client_read(cl, now_ms() + cl->timeout_ms);
			if (!msg) {
				free(line);
				return 2;
			}
			if (!json_object_get(msg, "event"))
				break;
			json_decref(msg);
		} while (1);
		if (json_object_get(msg, "error") && !status)
			status = 1;
		text = json_dumps(msg, JSON_COMPACT | JSON_PRESERVE_ORDER);
		puts(text ? text : "");
		fflush(stdout);
		free(text);
		json_decref(msg);
		if (status == 2)
			break;
	}
	free(line);
	return status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct client cl = { .fd = -1, .timeout_ms = CTL_DEFAULT_TIMEOUT_MS };
	const char *path = IOFENCE_DEFAULT_SOCKET, *cmd;
	json_t *req = NULL, *reply, *greeting, *err;
	int c, status = 2;

	while ((c = getopt_long(argc, argv, "+s:jt:h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			path = optarg;
			break;
		case 'j':
			cl.json = true;
			break;
		case 't':
			cl.timeout_ms = atoi(optarg);
			if (cl.timeout_ms <= 0) {
				fprintf(stderr, "iofencectl: --timeout: must be a positive number of ms\n");
				return 2;
			}
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	argc -= optind;
	argv += optind;
	if (!strcmp(cmd, "status") || !strcmp(cmd, "query-status"))
		req = json_pack("{s:s}", "execute", "query-status");
	else if (!strcmp(cmd, "version") || !strcmp(cmd, "query-version"))
		req = json_pack("{s:s}", "execute", "query-version");
	else if (!strcmp(cmd, "commands") || !strcmp(cmd, "query-commands"))
		req = json_pack("{s:s}", "execute", "query-commands");
	else if (!strcmp(cmd, "setup"))
		req = build_setup(argc, argv);
	else if (strcmp(cmd, "raw"))
		fprintf(stderr, "iofencectl: unknown command '%s' (see --help)\n",
			cmd);
	if (!req && strcmp(cmd, "raw"))
		return 2;

	if (client_connect(&cl, path))
		goto out;
	greeting = client_read(&cl, now_ms() + cl.timeout_ms);
	if (!greeting)
		goto out;
	err = json_object_get(greeting, "error");
	if (err) {
		fprintf(stderr, "iofencectl: %s\n",
			json_string_value(json_object_get(err, "desc")));
		json_decref(greeting);
		goto out;
	}
	json_decref(greeting);
	if (!req) {
		status = run_raw(&cl, argc, argv);
		goto out;
	}
	reply = client_call(&cl, req);
	req = NULL;
	if (!reply)
		goto out;
	err = json_object_get(reply, "error");
	if (err) {
		if (cl.json)
			print_json(reply);
		fprintf(stderr, "iofencectl: %s: %s\n",
			json_string_value(json_object_get(err, "class")),
			json_string_value(json_object_get(err, "desc")));
		status = 1;
	} else {
		json_t *ret = json_object_get(reply, "return");

		if (cl.json)
			print_json(ret);
		else if (!strcmp(cmd, "status") || !strcmp(cmd, "query-status"))
			print_status(ret);
		else if (!strcmp(cmd, "setup"))
			print_setup(ret);
		else
			print_json(ret);
		status = 0;
	}
	json_decref(reply);
out:
	json_decref(req);
	if (cl.fd >= 0)
		close(cl.fd);
	linebuf_free(&cl.in);
	return status;
}
