/* SPDX-License-Identifier: GPL-2.0-only */
#ifndef IOFENCE_LOG_H
#define IOFENCE_LOG_H

#include <syslog.h>

/*
 * Log lines go to stderr. Under systemd (JOURNAL_STREAM set) each line
 * starts with the sd-daemon "<N>" priority prefix so the journal keeps
 * the level; elsewhere they read as plain text.
 */
void log_init(const char *ident, int max_prio);
void log_msg(int prio, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/*
 * Where formatted lines go instead of stderr (NULL: stderr again): the
 * daemon's logger thread, so that no thread that fences ever waits on a
 * full pipe to the journal. Set while no other thread logs.
 */
typedef void (*log_sink_fn)(int prio, const char *line);
void log_set_sink(log_sink_fn sink);
/* Writes one formatted line to stderr now. */
void log_write(int prio, const char *line);

#define pr_crit(...) log_msg(LOG_CRIT, __VA_ARGS__)
#define pr_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define pr_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define pr_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define pr_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define pr_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
