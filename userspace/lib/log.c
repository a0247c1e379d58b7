// SPDX-License-Identifier: GPL-2.0-only
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "log.h"

static const char *log_ident = "iofence";
static int log_max_prio = LOG_INFO;
static bool log_journal;
static log_sink_fn log_sink;

void log_init(const char *ident, int max_prio)
{
	log_ident = ident;
	log_max_prio = max_prio;
	log_journal = getenv("JOURNAL_STREAM") != NULL;
}

void log_set_sink(log_sink_fn sink)
{
	__atomic_store_n(&log_sink, sink, __ATOMIC_RELEASE);
}

void log_msg(int prio, const char *fmt, ...)
{
	log_sink_fn sink = __atomic_load_n(&log_sink, __ATOMIC_ACQUIRE);
	char line[1024];
	va_list ap;

	if (prio > log_max_prio)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (sink)
		sink(prio, line);
	else
		log_write(prio, line);
}

void log_write(int prio, const char *line)
{
	static const char *const level[] = {
		"emerg",   "alert",  "crit", "error",
		"warning", "notice", "info", "debug",
	};

	/* One fprintf per line keeps lines whole when stderr is shared. */
	if (log_journal)
		fprintf(stderr, "<%d>%s\n", prio, line);
	else
		fprintf(stderr, "%s: %s: %s\n", log_ident, level[prio & 7],
			line);
}
