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
#include "instance_lock.h"
#include "log.h"
#include "sd_notify.h"

struct watchdog_timer {
	struct loop_op op;
	struct __kernel_timespec every;
	struct loop *loop;
};

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
			pr_info("%s: shutting down",
				strsignal(d->siginfo.ssi_signo));
			sd_notify_send("STOPPING=1");
			loop_stop(&d->loop);
			return;
		case SIGHUP:
			pr_info("SIGHUP: %u storages armed, %u connections; nothing to reload",
				d->storages.count, d->ctl.nconns);
			break;
		}
	}
	sig_arm(d);
}

static int signals_open(struct daemon *d)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL))
		return -errno;
	signal(SIGPIPE, SIG_IGN);
	d->sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (d->sigfd < 0)
		return -errno;
	d->sig_op.cb = sig_done;
	sig_arm(d);
	return 0;
}

static void watchdog_arm(struct watchdog_timer *w)
{
	struct io_uring_sqe *sqe = loop_sqe(w->loop, &w->op);

	io_uring_prep_timeout(sqe, &w->every, 0, 0);
}

/* Pets systemd's watchdog at half its period, from the loop itself. */
static void watchdog_done(struct loop_op *op, int res, unsigned int flags)
{
	struct watchdog_timer *w = container_of(op, struct watchdog_timer, op);

	if (w->loop->stopping)
		return;
	sd_notify_send("WATCHDOG=1");
	watchdog_arm(w);
}

/*
 * Memory pressure and CPU load must not make the loop miss a deadline:
 * its memory stays resident and it runs above ordinary work. Where the
 * limits forbid either, say so and go on: a fence a little late is
 * better than none.
 */
static void harden(const struct config *cfg)
{
	struct sched_param sp = { .sched_priority = cfg->rt_priority };

	if (mlockall(MCL_CURRENT | MCL_FUTURE))
		pr_warn("mlockall: %s; memory pressure may delay a fence (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK=infinity)",
			strerror(errno));
	if (!cfg->rt_priority)
		pr_info("real-time scheduling off (--rt-priority 0)");
	else if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp))
		pr_warn("SCHED_FIFO priority %d: %s; CPU load may delay a fence",
			cfg->rt_priority, strerror(errno));
}

/*
 * Without --foreground the parent waits on a pipe until the child has its
 * socket listening, so `iofenced && iofencectl ...` never races.
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

int main(int argc, char **argv)
{
	static struct daemon d;
	struct instance_lock lk;
	struct watchdog_timer wd = { .op.cb = watchdog_done, .loop = &d.loop };
	int ready_fd = -1;
	uint64_t wd_ms;
	int ret;

	ret = config_load(&d.cfg, argc, argv);
	if (ret)
		return ret > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	log_init("iofenced", d.cfg.verbose ? LOG_DEBUG : LOG_INFO);
	/* Before anything touches the state, the socket or the pins. */
	if (instance_lock(&d.cfg, &lk)) {
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
	harden(&d.cfg);
	ret = daemon_open(&d, ready_fd);
	if (ret) {
		instance_unlock(&lk);
		return EXIT_FAILURE;
	}
	ret = signals_open(&d);
	if (ret) {
		pr_err("signalfd: %s", strerror(-ret));
		daemon_close(&d);
		instance_unlock(&lk);
		return EXIT_FAILURE;
	}
	wd_ms = sd_watchdog_ms();
	if (wd_ms) {
		wd.every.tv_sec = wd_ms / 2 / 1000;
		wd.every.tv_nsec = (wd_ms / 2 % 1000) * 1000000;
		watchdog_arm(&wd);
	}
	ret = loop_run(&d.loop);
	if (!ret)
		ret = d.exit_code;
	daemon_close(&d);
	instance_unlock(&lk);
	return ret ? EXIT_FAILURE : EXIT_SUCCESS;
}
