// SPDX-License-Identifier: GPL-2.0-only
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "deadlines.h"
#include "fence_hook.h"
#include "log.h"

static void reaped(struct fence_hook *h)
{
	int status;

	if (waitpid(h->pid, &status, WNOHANG) != h->pid)
		return;
	if (WIFEXITED(status) && !WEXITSTATUS(status))
		pr_info("%s: done", h->what);
	else if (WIFEXITED(status))
		pr_warn("%s: exit status %d", h->what, WEXITSTATUS(status));
	else
		pr_warn("%s: killed by %s", h->what,
			strsignal(WTERMSIG(status)));
	close(h->pidfd);
	h->pidfd = -1;
	h->pid = 0;
}

static void reap_done(struct loop_op *op, int res, unsigned int flags)
{
	reaped(container_of(op, struct fence_hook, reap));
}

static void poll_done(struct timed_op *t, int res)
{
	struct fence_hook *h = container_of(t, struct fence_hook, op);

	if (res == -ETIMEDOUT) {
		pr_warn("%s: still running after %d ms; killed", h->what,
			FENCE_HOOK_DEADLINE_MS);
		syscall(SYS_pidfd_send_signal, h->pidfd, SIGKILL, NULL, 0);
	}
}

static void poll_idle(struct timed_op *t)
{
	struct fence_hook *h = container_of(t, struct fence_hook, op);

	reaped(h);
	if (h->pid > 0 && !h->loop->stopping)
		io_uring_prep_poll_add(loop_sqe(h->loop, &h->reap), h->pidfd,
				       POLLIN);
}

void fence_hook_init(struct fence_hook *h, struct loop *l)
{
	*h = (struct fence_hook){ .loop = l, .pidfd = -1 };
	timed_op_init(&h->op, poll_done, NULL);
	h->op.idle = poll_idle;
	h->reap.cb = reap_done;
}

void fence_hook_run(struct fence_hook *h, const char *path,
		    const char *const env[])
{
	char *const argv[] = { (char *)path, NULL };
	struct sched_param sp = { 0 };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	int ret;

	snprintf(h->what, sizeof(h->what), "fence hook %s", path);
	if (h->pid > 0) {
		pr_warn("%s: the previous run is still going; not started again",
			h->what);
		return;
	}
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	posix_spawnattr_init(&attr);
	/* Not the daemon's blocked signals nor its real-time priority. */
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setschedpolicy(&attr, SCHED_OTHER);
	posix_spawnattr_setschedparam(&attr, &sp);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
						POSIX_SPAWN_SETSIGDEF |
						POSIX_SPAWN_SETSCHEDULER);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	ret = posix_spawn(&h->pid, path, &fa, &attr, argv, (char *const *)env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (ret) {
		h->pid = 0;
		pr_err("%s: cannot start: %s", h->what, strerror(ret));
		return;
	}
	h->pidfd = syscall(SYS_pidfd_open, h->pid, 0);
	if (h->pidfd < 0) {
		/* Cannot watch it: wait for it the blocking way, at once. */
		pr_err("%s: pidfd_open: %s; killed", h->what, strerror(errno));
		kill(h->pid, SIGKILL);
		waitpid(h->pid, NULL, 0);
		h->pid = 0;
		return;
	}
	pr_info("%s: started, pid %d", h->what, h->pid);
	io_uring_prep_poll_add(timed_op_sqe(h->loop, &h->op), h->pidfd, POLLIN);
	timed_op_submit(h->loop, &h->op, FENCE_HOOK_DEADLINE_MS);
}
