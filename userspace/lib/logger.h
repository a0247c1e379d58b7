/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * The daemon's logger thread: every thread hands it formatted lines by
 * message, and it alone writes stderr. A journal that stops reading
 * fills the pipe and blocks the logger, nobody else: past
 * LOGGER_PENDING_MAX waiting lines, new ones are dropped and counted,
 * and the count is written once the logger moves again.
 */
#ifndef IOFENCE_LOGGER_H
#define IOFENCE_LOGGER_H

#define LOGGER_PENDING_MAX 4096
/* How long the stop waits for the logger to write what is left. */
#define LOGGER_STOP_MS 1000

int logger_start(void);
/* Back to writing stderr directly; what is left is written, if it can. */
void logger_stop(void);

#endif
