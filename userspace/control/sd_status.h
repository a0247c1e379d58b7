/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The line `systemctl status` shows for the daemon (sd_notify's STATUS=):
 * what is armed, how it fares, and what guards it, for a person.
 */
#ifndef IOFENCE_SD_STATUS_H
#define IOFENCE_SD_STATUS_H

#include <stdbool.h>
#include <stddef.h>

enum sd_phase {
	SD_STARTING, /* re-arming the stored state */
	SD_RUNNING,
	SD_STOPPING,
};

enum sd_kernel_fence {
	SD_KFENCE_ON, /* the BPF LSM programs refuse a fenced storage's writes */
	SD_KFENCE_NO_LSM, /* the tracker runs, its LSM programs do not */
	SD_KFENCE_NO_BPF, /* the tracker could not load */
	SD_KFENCE_OFF, /* --no-bpf */
};

struct sd_status {
	enum sd_phase phase;
	unsigned int stored; /* starting: storages of the state file */
	unsigned int armed; /* of which late and fenced */
	unsigned int late, fenced;
	unsigned int unarmed; /* stored, failed to re-arm, tried again */
	const char *watchdog; /* its path; NULL: none */
	unsigned int watchdog_timeout_ms;
	bool watchdog_held; /* not petted: a reset is coming */
	enum sd_kernel_fence kernel_fence;
	const char *host_state; /* NULL: not said */
};

/*
 * Writes the line into @buf (always terminated; cut short when @len is
 * too small). Returns the length it wanted, as snprintf does.
 */
size_t sd_status_text(const struct sd_status *st, char *buf, size_t len);

#endif
