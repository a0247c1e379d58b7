// SPDX-License-Identifier: GPL-2.0-only
/*
 * systemd's side of sd_notify, for test_systemd: the NOTIFY_SOCKET a
 * daemon under test talks to.
 *
 *   notify_sink PATH
 *
 * Binds an AF_UNIX datagram socket at PATH (removing what was there),
 * prints "listening", then one line per assignment of each datagram:
 *
 *   <CLOCK_MONOTONIC ms, 3 decimals> <sender pid> <NAME=value>
 *
 * until SIGTERM or SIGINT, when it removes PATH and exits.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t done;

static void on_term(int sig)
{
	done = 1;
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	union {
		char buf[CMSG_SPACE(sizeof(struct ucred))];
		struct cmsghdr align;
	} ctl;
	struct sigaction sa = { .sa_handler = on_term };
	static char msg[4097];
	int fd, one = 1;

	if (argc != 2 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: notify_sink PATH\n");
		return 2;
	}
	/* Not SA_RESTART: the signal ends the wait in recvmsg(). */
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	setvbuf(stdout, NULL, _IOLBF, 0);
	strcpy(addr.sun_path, argv[1]);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one))) {
		perror("socket");
		return 1;
	}
	unlink(argv[1]);
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror(argv[1]);
		return 1;
	}
	printf("listening\n");
	while (!done) {
		struct iovec iov = { msg, sizeof(msg) - 1 };
		struct msghdr mh = {
			.msg_iov = &iov,
			.msg_iovlen = 1,
			.msg_control = ctl.buf,
			.msg_controllen = sizeof(ctl.buf),
		};
		struct cmsghdr *c;
		struct timespec ts;
		pid_t pid = 0;
		ssize_t n;
		char *line, *save;

		n = recvmsg(fd, &mh, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("recvmsg");
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET &&
			    c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cred;

				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
				pid = cred.pid;
			}
		}
		msg[n] = '\0';
		for (line = strtok_r(msg, "\n", &save); line;
		     line = strtok_r(NULL, "\n", &save))
			printf("%lld.%03ld %d %s\n",
			       (long long)ts.tv_sec * 1000 +
				       ts.tv_nsec / 1000000,
			       (ts.tv_nsec / 1000) % 1000, (int)pid, line);
	}
	close(fd);
	unlink(argv[1]);
	return 0;
}
