/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef IOFENCE_CONFIG_H
#define IOFENCE_CONFIG_H

#include <stdbool.h>

#include "sanitizer.h"

#define IOFENCE_DEFAULT_CONFIG "/etc/iofence/iofenced.conf"
#define IOFENCE_DEFAULT_SOCKET "/run/iofence/iofenced.sock"
#define IOFENCE_DEFAULT_STATE_DIR "/var/lib/iofence"
#define IOFENCE_DEFAULT_PIN_DIR "/sys/fs/bpf/iofence"
#define IOFENCE_DEFAULT_MAX_CONNECTIONS 64
/* Seconds a connection may sit without a request before it is closed. */
#define IOFENCE_DEFAULT_IDLE_TIMEOUT 120
/* Above ordinary work, below the kernel's own real-time threads. */
#define IOFENCE_DEFAULT_RT_PRIORITY 10
/*
 * 0 in an ASan build. Its allocator waits for its locks by spinning
 * (sched_yield() in a loop), which a SCHED_FIFO thread never stops doing
 * for an ordinary one: when the thread that holds the lock is an
 * ordinary one it waits for the kernel's RT throttling to let it run
 * again, about 1 s each time (measured: 20 ms of small allocations took
 * 0.98 s on two FIFO threads beside two ordinary ones, 29 ms with glibc's
 * malloc, whose waiters sleep). Its daemons stalled for seconds in CI
 * that way; real-time scheduling is tested by the build without it.
 */
#define IOFENCE_BUILD_RT_PRIORITY (BUILD_ASAN ? 0 : IOFENCE_DEFAULT_RT_PRIORITY)

struct config {
	char *config_path;
	char *socket_path;
	char *socket_group; /* may connect and query; NULL: root only */
	char *control_group; /* may change state; NULL: root only */
	char *state_dir;
	char *pin_dir;
	bool foreground;
	bool no_bpf;
	bool verbose;
	int max_connections;
	int idle_timeout_s; /* 0: connections never time out */
	char *watchdog; /* "none": no watchdog */
	bool watchdog_required; /* configured: not opening it is an error */
	int watchdog_timeout_s; /* 0: the device's own */
	char *fence_hook; /* for storages without their own; NULL: none */
	int rt_priority; /* SCHED_FIFO priority; 0: SCHED_OTHER */
};

/*
 * Fills @cfg from the defaults, then the config file, then the command
 * line (which wins). Returns 0 to run, 1 when --help/--version was served,
 * or a negative errno after printing what was wrong.
 */
int config_load(struct config *cfg, int argc, char **argv);
void config_free(struct config *cfg);

#endif
