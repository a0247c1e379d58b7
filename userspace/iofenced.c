// SPDX-License-Identifier: GPL-2.0-only
/*
 * iofenced: sets up the loop, the kernel tracker and the control socket,
 * then runs the loop until SIGTERM or SIGINT.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "commands.h"
#include "daemon.h"
#include "deadlines.h"
#include "log.h"
#include "sd_notify.h"

/* SQ entries: enough for every connection's recv and send at once. */
#define LOOP_ENTRIES 1024

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

static int resolve_group(const char *name, gid_t *gid)
{
	struct group *gr;

	*gid = (gid_t)-1;
	if (!name)
		return 0;
	errno = 0;
	gr = getgrnam(name);
	if (!gr) {
		pr_err("socket_group %s: %s", name,
		       errno ? strerror(errno) : "no such group");
		return -EINVAL;
	}
	*gid = gr->gr_gid;
	return 0;
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

/*
 * What a previous run left: the host state, the journal, and the storages,
 * which are re-armed before the socket opens, so no request ever sees a
 * daemon that has forgotten what it guarded.
 */
static int load_state(struct daemon *d)
{
	json_t *doc, *storages;
	const char *hs;
	char err[256];
	int ret = persist_load(&d->persist, &doc);

	if (ret || !doc) {
		setup_rearm(d, NULL);
		return 0;
	}
	hs = json_string_value(json_object_get(doc, "host_state"));
	if (hs && host_state_parse(hs, &d->host_state))
		pr_warn("state: unknown host_state '%s'; using connecting", hs);
	if (json_object_get(doc, "journal") &&
	    journal_load(&d->journal, json_object_get(doc, "journal"), err,
			 sizeof(err)))
		pr_err("state: journal: %s; starting a new one", err);
	storages = json_object_get(doc, "storages");
	pr_info("state: re-arming %zu storages", json_array_size(storages));
	d->starting = true;
	setup_rearm(d, storages);
	json_decref(doc);
	return 0;
}

void daemon_started(struct daemon *d)
{
	int ret;

	if (!d->starting && d->ctl.fd >= 0)
		return;
	d->starting = false;
	ret = ctl_server_open(&d->ctl, &d->loop, d->cfg.socket_path,
			      d->socket_gid, d->cfg.max_connections,
			      proto_greeting(commands_capabilities()),
			      commands_dispatch, d);
	if (ret) {
		d->exit_code = ret;
		loop_stop(&d->loop);
		return;
	}
	pr_info("ready on %s (state %s, %u storages armed)",
		d->cfg.socket_path, d->cfg.state_dir, d->storages.count);
	sd_notify_send("READY=1");
	if (d->ready_fd >= 0) {
		if (write(d->ready_fd, "r", 1) != 1)
			pr_warn("cannot tell the parent we are ready");
		close(d->ready_fd);
		d->ready_fd = -1;
	}
}

static void free_storages(struct daemon *d)
{
	struct storage *s;
	unsigned int i;

	storage_for_each(&d->storages, i, s) {
		storage_remove(&d->storages, s);
		storage_free(s);
	}
}

int main(int argc, char **argv)
{
	static struct daemon d;
	struct watchdog_timer wd = { .op.cb = watchdog_done, .loop = &d.loop };
	uint64_t wd_ms;
	int ret;

	ret = config_load(&d.cfg, argc, argv);
	if (ret)
		return ret > 0 ? EXIT_SUCCESS : EXIT_FAILURE;
	log_init("iofenced", d.cfg.verbose ? LOG_DEBUG : LOG_INFO);
	d.start_mono_ms = loop_now_ms();
	d.sigfd = -1;

	list_init(&d.flights);
	list_init(&d.ctl.conns);
	d.ctl.fd = -1;
	d.ready_fd = -1;
	d.host_state = HOST_CONNECTING;
	journal_init(&d.journal);
	ret = resolve_group(d.cfg.socket_group, &d.socket_gid);
	if (!ret)
		ret = resolve_group(d.cfg.control_group, &d.control_gid);
	if (ret)
		goto out_cfg;
	if (mkdir(d.cfg.state_dir, 0700) && errno != EEXIST) {
		ret = -errno;
		pr_err("state dir %s: %s", d.cfg.state_dir, strerror(errno));
		goto out_cfg;
	}
	if (!d.cfg.foreground && (ret = detach(&d.ready_fd))) {
		pr_err("cannot detach: %s", strerror(-ret));
		goto out_cfg;
	}
	ret = loop_init(&d.loop, LOOP_ENTRIES);
	if (ret)
		goto out_cfg;
	ret = signals_open(&d);
	if (ret) {
		pr_err("signalfd: %s", strerror(-ret));
		goto out_loop;
	}
	if (d.cfg.no_bpf)
		pr_info("BPF tracker off (--no-bpf): no block I/O evidence");
	else
		tracker_open(&d.tracker, d.cfg.pin_dir);

	ret = persist_open(&d.persist, &d, d.cfg.state_dir);
	if (ret)
		goto out_tracker;

	wd_ms = sd_watchdog_ms();
	if (wd_ms) {
		wd.every.tv_sec = wd_ms / 2 / 1000;
		wd.every.tv_nsec = (wd_ms / 2 % 1000) * 1000000;
		watchdog_arm(&wd);
	}
	load_state(&d);

	ret = loop_run(&d.loop);
	if (!ret)
		ret = d.exit_code;
	loop_quiesce(&d.loop, SHUTDOWN_QUIESCE_MS);
	/* Ends the flights waiting on a write; queued ones then fail. */
	persist_close(&d.persist);
	ctl_server_close(&d.ctl);
out_tracker:
	tracker_close(&d.tracker, true);
	free_storages(&d);
	if (d.sigfd >= 0)
		close(d.sigfd);
out_loop:
	loop_exit(&d.loop);
out_cfg:
	journal_free(&d.journal);
	config_free(&d.cfg);
	if (d.ready_fd >= 0)
		close(d.ready_fd);
	return ret ? EXIT_FAILURE : EXIT_SUCCESS;
}
