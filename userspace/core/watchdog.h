/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The host's last resort: a watchdog device the daemon pets from its loop
 * while every armed storage is inside its contract. A fence that cannot
 * finish under "force" holds the petting, and the device resets the host
 * within its timeout, which is part of every published fence deadline.
 *
 * The device is opened at start (/dev/watchdog or a configured path; a
 * FIFO or a plain file serves as a test device: it receives one 'k' per
 * keepalive). Its timeout is set with WDIOC_SETTIMEOUT where the driver
 * has it. A shutdown with nothing armed that counts on it disarms it
 * with the magic close ('V'). One that leaves such storages armed (a
 * restart to come), or an escalated one, leaves it armed: the reset
 * still comes within the timeout unless a new daemon pets it first.
 *
 * Without a device, escalation cannot reset anything: that is logged once
 * and fence deadlines are published as none (0).
 */
#ifndef IOFENCE_WATCHDOG_H
#define IOFENCE_WATCHDOG_H

#include <stdbool.h>
#include <stdint.h>

#include "loop.h"

#define WATCHDOG_DEFAULT_PATH "/dev/watchdog"

struct watchdog {
	struct loop *loop;
	int fd; /* -1: none */
	char *path;
	uint32_t timeout_ms; /* 0: none */
	bool holding; /* an escalated fence wants the reset */
	uint64_t pets;
	uint64_t last_pet_ms;
	/* Keepalives whose write failed, the last one's errno, and whether
	 * the last one failed (an episode, told once). */
	uint64_t failed;
	int last_errno;
	bool failing;
	struct loop_op timer;
	struct __kernel_timespec every;
};

/*
 * Opens @path ("none" or NULL: no watchdog) and sets its timeout to
 * @timeout_s, or reads the device's own when 0. A path that cannot be
 * opened is a hard error only when it was asked for explicitly
 * (@required): the default device may simply not exist.
 */
int watchdog_open(struct watchdog *w, struct loop *l, const char *path,
		  unsigned int timeout_s, bool required);
/* Pets now and then every timeout / WATCHDOG_PETS_PER_TIMEOUT. */
void watchdog_start(struct watchdog *w);
/* Holds (true) or resumes (false) the petting, logging the change. */
void watchdog_hold(struct watchdog *w, bool hold);
/*
 * Magic close, unless holding or @promised (storages armed with a fence
 * deadline that counts on the device): then a last pet, and the reset
 * comes within the timeout unless a new daemon pets it first.
 */
void watchdog_close(struct watchdog *w, unsigned int promised);

#endif
