/* SPDX-License-Identifier: GPL-2.0-only */
/* The daemon's state: everything the loop owns. */
#ifndef IOFENCE_DAEMON_H
#define IOFENCE_DAEMON_H

#include <sys/signalfd.h>

#include "config.h"
#include "ctl_server.h"
#include "loop.h"
#include "storage.h"
#include "tracker.h"

struct daemon {
	struct config cfg;
	struct loop loop;
	struct tracker tracker;
	struct storage_table storages;
	struct ctl_server ctl;
	gid_t socket_gid; /* (gid_t)-1: root only */
	int sigfd;
	struct signalfd_siginfo siginfo;
	struct loop_op sig_op;
	uint64_t start_mono_ms;
	uint64_t requests; /* served since start */
};

#endif
