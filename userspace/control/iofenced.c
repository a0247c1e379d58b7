// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofenced: sets up the loop, the kernel tracker and the control socket,
 * then runs the loop until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon.h"
#include "deadlines.h"
#include "rados_link.h"
#include "instance_lock.h"
#include "log.h"
#include "logger.h"
#include "sd_listen.h"
#include "sd_notify.h"
#include "spawner.h"

static void sig_arm(struct daemon *d)
{
	struct io_uring_sqe *sqe = loop_sqe(&d->loop, &d->sig_op);

	io_uring_prep_read(sqe, d->sigfd, &d->siginfo, sizeof(d->siginfo), 0);
}

static void sig_done(struct loop_op *op, int res, unsigned int flags)
{
	struct daemon *d = container_of(op, struct daemon, sig_op);

	if (d->loop.stopping)
		return;
	if (res == sizeof(d->siginfo)) {
		switch (d->siginfo.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			pr_info("%s: shutting down; %u storages stay armed",
				strsignal(d->siginfo.ssi_signo),
				d->storages.count);
			daemon_stop(d);
			return;
		case SIGHUP:
			pr_info("SIGHUP: %u storages armed, %u connections; nothing to reload",
				d->storages.count, d->ctl.nconns);
			break;
		}
	}
	sig_arm(d);
}

/*
 * Blocked before any thread starts, so that every thread inherits the
 * mask and SIGTERM reaches the signalfd only, never a default action.
 */
static int signals_block(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, mask, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int signals_open(struct daemon *d, const sigset_t *mask)
{
	d->sigfd = signalfd(-1, mask, SFD_CLOEXEC);
	if (d->sigfd < 0)
		return -errno;
	d->sig_op.cb = sig_done;
	sig_arm(d);
	return 0;
}

/* VmLck of this process in KiB, or -1 when it cannot be read. */
static long locked_kib(void)
{
	FILE *f = fopen("/proc/self/status", "re");
	char line[128];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmLck: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/*
 * Memory pressure must not make the core miss a deadline: its memory
 * stays resident. Where the limits forbid it, say so and go on: a fence
 * a little late is better than none. (The core thread alone runs at
 * real-time priority, core.c; the control plane stays an ordinary one.)
 */
static void harden(void)
{
	/*
	 * Everything mapped now (the program, its libraries, the heap) is
	 * made resident and locked. What is mapped later is locked as it is
	 * touched (MCL_ONFAULT), not whole: librados starts a dozen threads
	 * per Ceph connection with 8 MiB stacks each, of which a few pages
	 * are ever used, and locking them whole would cost ~100 MiB per rbd
	 * storage. Pages once used stay resident all the same.
	 */
	if (mlockall(MCL_CURRENT | MCL_FUTURE)) {
		pr_warn("mlockall: %s; memory pressure may delay a fence (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK=infinity)",
			strerror(errno));
		return;
	}
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT))
		pr_warn("mlockall(MCL_ONFAULT): %s; new mappings (thread stacks) are locked whole",
			strerror(errno));
	/*
	 * A sanitizer build's runtime takes mlockall() over and does
	 * nothing (its shadow memory could never be locked): check what
	 * the kernel says is locked.
	 */
	if (locked_kib() == 0)
		pr_warn("mlockall: nothing is locked although it succeeded (a sanitizer build ignores it); memory pressure may delay a fence");
}

/*
 * Without --foreground the parent waits on a pipe until the child has its
 * socket listening, so `iofenced && iofencectl ...` never races. A socket
 * passed by socket activation was taken before (LISTEN_PID names the
 * parent): the child inherits it like any fd.
 */
static int detach(int *ready_fd)
{
	int pfd[2];
	pid_t pid;
	char c;

	if (pipe2(pfd, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(pfd[1]);
		_exit(read(pfd[0], &c, 1) == 1 ? EXIT_SUCCESS : EXIT_FAILURE);
	}
	close(pfd[0]);
	setsid();
	*ready_fd = pfd[1];
	return 0;
}

/*
 * The control socket systemd (or systemd-socket-activate) passed, if any.
 * It is served instead of --socket; when the two differ the log says
 * which one is, and the socket lock goes next to it (next to --socket
 * only for a passed socket with no path, abstract or unnamed).
 */
static int take_socket(struct daemon *d)
{
	struct sd_socket *l = &d->listen;
	char *path;
	int ret = sd_listen_take(l);

	if (ret || !l->passed)
		return ret;
	if (l->path[0] != '/') {
		pr_info("socket: serving %s socket fd %d%s%s%s, passed by the service manager; --socket %s names its lock only",
			l->path[0] ? l->path : "an unnamed", l->fd,
			l->name[0] ? " (" : "", l->name, l->name[0] ? ")" : "",
			d->cfg.socket_path);
		return 0;
	}
	if (!strcmp(l->path, d->cfg.socket_path)) {
		pr_info("socket: %s%s%s%s, passed by the service manager",
			l->path, l->name[0] ? " (" : "", l->name,
			l->name[0] ? ")" : "");
		return 0;
	}
	pr_warn("socket: serving %s, which the service manager passed, not --socket %s",
		l->path, d->cfg.socket_path);
	/* Its lock and the status name the socket that is served. */
	path = strdup(l->path);
	if (!path)
		return -ENOMEM;
	free(d->cfg.socket_path);
	d->cfg.socket_path = path;
	return 0;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	struct instance_lock lk;
	sigset_t mask;
	int ready_fd = -1;
	bool closed;
	int ret;

	ret = config_load(&d.cfg, argc, argv);
	if (ret)
		return ret > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	log_init("iofenced", d.cfg.verbose ? LOG_DEBUG : LOG_INFO);
	/* Before a thread or a fork: the variables go, and LISTEN_PID is us. */
	if (take_socket(&d)) {
		config_free(&d.cfg);
		return EXIT_FAILURE;
	}
	/* Before anything touches the state, the socket or the pins. */
	if (daemon_make_state_dir(d.cfg.state_dir) ||
	    instance_lock(&d.cfg, &lk)) {
		config_free(&d.cfg);
		return EXIT_FAILURE;
	}
	/* The ring must be made after the fork: rings are not shared. */
	if (!d.cfg.foreground && (ret = detach(&ready_fd))) {
		pr_err("cannot detach: %s", strerror(-ret));
		config_free(&d.cfg);
		instance_unlock(&lk);
		return EXIT_FAILURE;
	}
	/* Threads are made after the fork too: none would survive it. */
	if (logger_start())
		pr_warn("no logger thread: log lines are written where they are made");
	/* Its fd table is copied now, before any storage is opened. */
	ret = spawner_start();
	if (ret)
		pr_warn("no spawner thread (%s): fence hooks start from workers, and hang in execve while their storage is dead",
			strerror(-ret));
	harden();
	ret = signals_block(&mask);
	if (!ret)
		ret = daemon_open(&d, ready_fd);
	if (ret)
		goto out;
	ret = signals_open(&d, &mask);
	if (ret) {
		pr_err("signalfd: %s", strerror(-ret));
		daemon_close(&d);
		goto out;
	}
	/* Told from the control plane's pulse, while both sides progress. */
	d.sd_watchdog_ms = sd_watchdog_ms();
	ret = loop_run(&d.loop);
	if (!ret)
		ret = d.exit_code;
	daemon_close(&d);
out:
	/*
	 * Released by hand: a thread stuck on a dead storage can keep this
	 * process in the kernel after it returns, and must not keep a new
	 * daemon out.
	 */
	instance_unlock(&lk);
	/*
	 * Ceph connections shut down on their own threads, within librados'
	 * timeouts. One still inside librados when the time is up must not
	 * see librados' static destructors run under it: the process ends
	 * without exit handlers then.
	 */
	closed = rados_links_closed(SHUTDOWN_QUIESCE_MS);
	if (!closed)
		pr_warn("%u Ceph connections still closing; exiting without them",
			rados_links_alive());
	spawner_stop();
	/* Last: it may wait for stderr. */
	logger_stop();
	if (!closed)
		_exit(ret ? EXIT_FAILURE : EXIT_SUCCESS);
	return ret ? EXIT_FAILURE : EXIT_SUCCESS;
}
