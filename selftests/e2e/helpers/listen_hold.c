// SPDX-License-Identifier: GPL-2.0-only
/*
 * The socket unit's side of socket activation, for test_systemd: holds a
 * listening socket across several runs of a daemon, as systemd does
 * across a restart, so that clients wait in its backlog meanwhile.
 *
 *   listen_hold PATH RUNS PROGRAM [ARG]...
 *
 * Binds and listens on the AF_UNIX stream socket PATH, prints
 * "listening", then runs PROGRAM RUNS times, one after the other, each
 * with the socket as fd 3 and LISTEN_FDS=1, LISTEN_PID (its own pid) and
 * LISTEN_FDNAMES=control set. Every run but the first starts at a
 * SIGUSR1 that comes after the one before has exited (one that comes
 * while a run is in progress is ignored). Prints, with a CLOCK_MONOTONIC time
 * in ms: "<ms> run N pid P" at each start, "<ms> run N exit S" at each
 * end (S: the exit status, or 128 + the signal). SIGTERM or SIGINT
 * passes SIGTERM on to the run in progress, removes PATH and exits.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static pid_t start(int lfd, char **argv, const sigset_t *old)
{
	char pid[16];
	pid_t p = fork();

	if (p)
		return p;
	sigprocmask(SIG_SETMASK, old, NULL);
	if (dup2(lfd, 3) < 0) /* dup2 clears FD_CLOEXEC on the copy */
		_exit(127);
	if (lfd != 3)
		close(lfd);
	snprintf(pid, sizeof(pid), "%d", (int)getpid());
	setenv("LISTEN_PID", pid, 1);
	setenv("LISTEN_FDS", "1", 1);
	setenv("LISTEN_FDNAMES", "control", 1);
	execvp(argv[0], argv);
	perror(argv[0]);
	_exit(127);
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	sigset_t mask, old;
	int lfd, runs, run = 0, sig;
	pid_t child = 0;

	if (argc < 4 || strlen(argv[1]) >= sizeof(addr.sun_path) ||
	    (runs = atoi(argv[2])) < 1) {
		fprintf(stderr,
			"usage: listen_hold PATH RUNS PROGRAM [ARG]...\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigemptyset(&mask);
	sigaddset(&mask, SIGCHLD);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, &old);
	strcpy(addr.sun_path, argv[1]);
	/* Kept away from fd 3, which each run's copy takes. */
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd >= 0 && lfd <= 3) {
		int hi = fcntl(lfd, F_DUPFD_CLOEXEC, 10);

		close(lfd);
		lfd = hi;
	}
	unlink(argv[1]);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) ||
	    listen(lfd, 64)) {
		perror(argv[1]);
		return 1;
	}
	printf("listening\n");
	child = start(lfd, argv + 3, &old);
	printf("%lld run %d pid %d\n", mono_ms(), ++run, (int)child);
	for (;;) {
		if (sigwait(&mask, &sig))
			continue;
		if (sig == SIGTERM || sig == SIGINT) {
			if (child > 0)
				kill(child, SIGTERM);
			break;
		}
		if (sig == SIGCHLD) {
			int st;
			pid_t p;

			while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
				if (p != child)
					continue;
				printf("%lld run %d exit %d\n", mono_ms(), run,
				       WIFEXITED(st) ? WEXITSTATUS(st) :
						       128 + WTERMSIG(st));
				child = 0;
			}
			if (!child && run >= runs)
				break;
			continue;
		}
		/* SIGUSR1: the next run, once the last one is over. */
		if (child || run >= runs)
			continue;
		child = start(lfd, argv + 3, &old);
		printf("%lld run %d pid %d\n", mono_ms(), ++run, (int)child);
	}
	close(lfd);
	unlink(argv[1]);
	return 0;
}
