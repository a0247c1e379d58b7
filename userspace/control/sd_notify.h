/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The sd_notify protocol: one datagram to $NOTIFY_SOCKET. A few lines, so
 * no libsystemd. Without NOTIFY_SOCKET every call is a no-op.
 */
#ifndef IOFENCE_SD_NOTIFY_H
#define IOFENCE_SD_NOTIFY_H

#include <stdint.h>

int sd_notify_send(const char *state);
/* $WATCHDOG_USEC in ms when it is meant for this process, else 0. */
uint64_t sd_watchdog_ms(void);

#endif
